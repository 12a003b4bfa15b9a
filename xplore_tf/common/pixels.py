"""Client-side helpers with no gRPC and no TensorFlow (numpy + Pillow only).

Shared by `serving/client.py` (which must not need model code) and `xplore_tf.translate`
(which translates without a server), so both read inputs, resolve cluster names and name
outputs the same way.

It also holds THE definition of "image file -> RGB uint8 pixels" (`decode_rgb`), which
every stage uses: clustering, training and evaluation (`xplore_tf/data/images.py`), the
translate binary and this client. The exported model's `translate_bytes` signature decodes
in-graph with a TensorFlow twin of it (`xplore_tf.data.images.decode_image_bytes`) that
agrees pixel for pixel on the formats it decodes and refuses the others with the same words.
The definition:

- formats: PNG, JPEG (baseline, progressive, greyscale, CMYK, MPO's first picture), GIF
  (first frame), BMP, WebP (first frame), recognised by their signature bytes, not by
  the file name; anything else is refused (`NOT_AN_IMAGE`);
- size: more than `MAX_PIXELS` pixels is refused before decoding (`TOO_LARGE`);
- orientation: the EXIF orientation tag (1-8) of a JPEG's APP1 "Exif" segment, a PNG's
  eXIf chunk or a WebP's EXIF chunk is applied (XMP and text-chunk orientations are not);
- bit depth: 16-bit samples keep their high byte (`v >> 8`; 8-bit values scaled to 16 bits
  by v * 257 come back unchanged);
- alpha: an alpha channel (RGBA, grey+alpha, palette transparency, GIF transparency) is
  composited over black, `(c * a + 127) // 255`; colour-key transparency of greyscale and
  RGB PNGs (tRNS) is ignored, as TensorFlow's PNG decoder ignores it;
- colour: greyscale is repeated to RGB, palettes are looked up, CMYK and YCbCr converted by
  Pillow; no colour management (ICC profiles and gamma are not applied).

Every failure on one file (corrupt, truncated, unsupported, too large, or any exception
Pillow raises while decoding, except MemoryError) is an `ImageError`: one line naming the
file and the reason.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from xplore_tf.common import signatures as sig

GRID_NAME = "all_clusters.png"

# ---------------------------------------------------------------------- image files -> pixels
# Pillow's own limit (2 * Image.MAX_IMAGE_PIXELS by default, where it raises
# DecompressionBombError); fixed here so that every path, in-graph too, refuses the same files.
MAX_PIXELS = 178_956_970
# Formats the exported model decodes in-graph (`translate_bytes`); WebP is decoded here only.
MODEL_FORMATS = ("PNG", "JPEG", "GIF", "BMP")
FORMATS = (*MODEL_FORMATS, "WEBP")
_PIL_FORMATS = {
    "PNG": ("PNG",),
    "JPEG": ("JPEG",),  # also opens MPO (phone) files: their first picture
    "GIF": ("GIF",),
    "BMP": ("BMP",),
    "WEBP": ("WEBP",),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXIF_PREFIX = b"Exif\x00\x00"
EXIF_ORIENTATION_TAG = 0x0112
# Segments, chunks or blocks a header walk visits at most (a bound against hostile files).
MAX_HEADER_STEPS = 1 << 16
# EXIF orientation -> (transpose, then flip rows, then flip columns), as PIL's
# ImageOps.exif_transpose turns the stored image upright.
ORIENTATIONS = {
    1: (False, False, False),
    2: (False, False, True),
    3: (False, True, True),
    4: (False, True, False),
    5: (True, False, False),
    6: (True, False, True),
    7: (True, True, True),
    8: (True, True, False),
}

# Why a file is refused: the same words here and in the model's in-graph decoder.
NOT_AN_IMAGE = "not a PNG, JPEG, GIF, BMP or WebP image"
TOO_LARGE = (  # .format(width, height); tf.strings.format takes the same template
    "image of {}x{} pixels is larger than the " + str(MAX_PIXELS) + " pixels accepted "
    "(decompression-bomb guard)"
)
# Encodings the model refuses in-graph (clients send them as PNG of `decode_rgb` instead).
WEBP_NOT_IN_MODEL = (
    "WebP is not decoded inside the model (the WebP decoder of TensorFlow corrupts memory "
    "on animated WebP): send PNG (serving/client.py and xplore_tf.translate convert it)"
)
GIF_NOT_IN_MODEL = (
    "GIF whose first frame does not cover the whole image is not decoded inside the model: "
    "send PNG (serving/client.py and xplore_tf.translate convert it)"
)
BMP_NOT_IN_MODEL = (
    "BMP other than uncompressed 24/32-bit with a 40-byte header is not decoded inside the "
    "model: send PNG (serving/client.py and xplore_tf.translate convert it)"
)


class ImageError(ValueError):
    """One image file that cannot be read: `str(error)` is the one line `<name>: <reason>`."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{name}: {self.reason}")


class _Refused(Exception):
    """A reason to refuse a file, before the file's name is attached (see `decode_rgb`)."""


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding pixels (`read_header`)."""

    format: str  # one of FORMATS, "" when the signature bytes match none
    width: int  # stored width in px (before orientation); 0 when the header does not say
    height: int  # stored height in px; 0 when the header does not say
    orientation: int  # EXIF orientation 1..8 (1 = upright, also when absent or malformed)
    not_in_model: str  # "" when the model decodes these bytes as `decode_rgb`, else why not


class _Bytes:
    """Bounds-safe reads: a byte at or past the end reads as 0 (as the in-graph twin does)."""

    def __init__(self, data: bytes):
        self.data = data
        self.n = len(data)

    def u8(self, i: int) -> int:
        return self.data[i] if 0 <= i < self.n else 0

    def be(self, i: int, size: int) -> int:
        value = 0
        for j in range(size):
            value = value * 256 + self.u8(i + j)
        return value

    def le(self, i: int, size: int) -> int:
        value = 0
        for j in reversed(range(size)):
            value = value * 256 + self.u8(i + j)
        return value

    def match(self, i: int, text: bytes) -> bool:
        return 0 <= i and self.data[i : i + len(text)] == text


def sniff_format(data: bytes) -> str:
    """The format named by the signature bytes (one of FORMATS), or "" for none."""
    if data[:8] == PNG_SIGNATURE:
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return ""


def _tiff_orientation(r: _Bytes, start: int) -> int:
    """EXIF orientation (1..8) of the TIFF structure at `start` (-1 = none): 1 if malformed."""
    if start < 0:
        return 1
    if r.match(start, EXIF_PREFIX):
        start += 6
    if r.match(start, b"II"):
        read = r.le
    elif r.match(start, b"MM"):
        read = r.be
    else:
        return 1
    if read(start + 2, 2) != 42:
        return 1
    ifd = start + read(start + 4, 4)
    for i in range(read(ifd, 2)):
        entry = ifd + 2 + 12 * i
        if read(entry, 2) == EXIF_ORIENTATION_TAG:
            kind = read(entry + 2, 2)
            value = read(entry + 8, 2) if kind == 3 else read(entry + 8, 4) if kind == 4 else 0
            return value if 1 <= value <= 8 else 1
    return 1


def _jpeg_header(r: _Bytes) -> tuple[int, int, int]:
    """(width, height, TIFF start or -1): walks the marker segments up to the scan."""
    pos, tiff, width, height = 2, -1, 0, -1
    for _ in range(MAX_HEADER_STEPS):
        if r.u8(pos) != 0xFF or pos + 4 > r.n:
            break
        marker = r.u8(pos + 1)
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # segments without a length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        length = r.be(pos + 2, 2)
        if length < 2:
            break
        if marker == 0xE1 and tiff < 0 and r.match(pos + 4, EXIF_PREFIX):
            tiff = pos + 10
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and height < 0:
            height, width = r.be(pos + 5, 2), r.be(pos + 7, 2)
        pos += 2 + length
    return width, max(height, 0), tiff


def _png_exif(r: _Bytes) -> int:
    """Start of the first eXIf chunk's data, or -1: walks every chunk up to IEND."""
    pos, tiff = 8, -1
    for _ in range(MAX_HEADER_STEPS):
        if pos + 8 > r.n:
            break
        if tiff < 0 and r.match(pos + 4, b"eXIf"):
            tiff = pos + 8
        if r.match(pos + 4, b"IEND"):
            break
        pos += 12 + r.be(pos, 4)
    return tiff


def _gif_first_frame(r: _Bytes) -> int:
    """Offset of the first image descriptor (0x2C), or -1: skips extension blocks."""
    flags = r.u8(10)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    in_extension = False
    for _ in range(MAX_HEADER_STEPS):
        if pos >= r.n:
            break
        if in_extension:  # a sub-block: size byte, then data; size 0 ends the extension
            size = r.u8(pos)
            pos += size + 1
            in_extension = size != 0
            continue
        block = r.u8(pos)
        if block == 0x21:
            pos += 2
            in_extension = True
            continue
        return pos if block == 0x2C else -1
    return -1


def _webp_header(r: _Bytes) -> tuple[int, int, int]:
    """(width, height, TIFF start or -1) of a WebP (RIFF) file."""
    width = height = 0
    if r.match(12, b"VP8X"):
        width, height = 1 + r.le(24, 3), 1 + r.le(27, 3)
    elif r.match(12, b"VP8 "):
        width, height = r.le(26, 2) & 0x3FFF, r.le(28, 2) & 0x3FFF
    elif r.match(12, b"VP8L"):
        bits = r.le(21, 4)
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    pos, tiff = 12, -1
    for _ in range(MAX_HEADER_STEPS):
        if pos + 8 > r.n:
            break
        size = r.le(pos + 4, 4)
        if r.match(pos, b"EXIF"):
            tiff = pos + 8
            break
        pos += 8 + size + (size & 1)
    return width, height, tiff


def read_header(data: bytes) -> ImageHeader:
    """Format, stored size, EXIF orientation and in-model decodability of encoded bytes.

    Never raises: what the header does not say is 0 (size), 1 (orientation) or "" (format).
    The in-graph twin (`xplore_tf.data.images.decode_image_bytes`) reads the same fields
    with the same rules.
    """
    r = _Bytes(data)
    fmt = sniff_format(data)
    width = height = 0
    orientation = 1
    not_in_model = ""
    if fmt == "PNG":
        width, height = r.be(16, 4), r.be(20, 4)
        orientation = _tiff_orientation(r, _png_exif(r))
    elif fmt == "JPEG":
        width, height, tiff = _jpeg_header(r)
        orientation = _tiff_orientation(r, tiff)
    elif fmt == "GIF":
        width, height = r.le(6, 2), r.le(8, 2)
        frame = _gif_first_frame(r)
        if frame >= 0 and (r.le(frame + 1, 2), r.le(frame + 3, 2)) != (0, 0):
            not_in_model = GIF_NOT_IN_MODEL
        elif frame >= 0 and (r.le(frame + 5, 2), r.le(frame + 7, 2)) != (width, height):
            not_in_model = GIF_NOT_IN_MODEL
    elif fmt == "BMP":
        dib = r.le(14, 4)
        if dib == 12:  # OS/2 BITMAPCOREHEADER
            width, height, bits, compression = r.le(18, 2), r.le(20, 2), r.le(24, 2), 0
        else:
            width, height = r.le(18, 4), r.le(22, 4)
            width = abs(width - (1 << 32) if width >= 1 << 31 else width)
            height = abs(height - (1 << 32) if height >= 1 << 31 else height)
            bits, compression = r.le(28, 2), r.le(30, 4)
        if dib != 40 or bits not in (24, 32) or compression != 0:
            not_in_model = BMP_NOT_IN_MODEL
    elif fmt == "WEBP":
        width, height, tiff = _webp_header(r)
        orientation = _tiff_orientation(r, tiff)
        not_in_model = WEBP_NOT_IN_MODEL
    return ImageHeader(fmt, width, height, orientation, not_in_model)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Stored [H,W,C] pixels -> upright, for an EXIF orientation 1..8 (others: unchanged)."""
    transpose, flip_rows, flip_columns = ORIENTATIONS.get(orientation, ORIENTATIONS[1])
    if transpose:
        pixels = pixels.transpose(1, 0, 2)
    if flip_rows:
        pixels = pixels[::-1]
    if flip_columns:
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(pixels)


def composite_on_black(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 colour [H,W,C] over black with uint8 alpha [H,W,1]: (c * a + 127) // 255."""
    mixed = (colour.astype(np.uint32) * alpha.astype(np.uint32) + 127) // 255
    return mixed.astype(np.uint8)


def _pil_rgb(im: Image.Image) -> np.ndarray:
    """A loaded PIL image (first frame) -> uint8 [H,W,3], by the rules of `decode_rgb`."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Pillow's 16-bit greyscale: keep the high byte, as for 16-bit RGB(A) (which Pillow
        # itself reduces that way) and as the in-graph decoder does.
        grey = (np.clip(np.asarray(im), 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA", "LA", "La", "RGBA", "RGBa"):
        # Through RGBA so that palette and GIF transparency become alpha.
        rgba = np.asarray(im.convert("RGBA"), np.uint8)
        return composite_on_black(rgba[:, :, :3], rgba[:, :, 3:])
    if mode in ("1", "L", "RGB", "RGBX", "CMYK", "YCbCr"):
        # convert("RGB") ignores colour-key transparency (tRNS), as TensorFlow does.
        return np.asarray(im.convert("RGB"), np.uint8)
    raise _Refused(f"unsupported pixel mode {mode!r}")


def _decode(data: bytes) -> tuple[ImageHeader, np.ndarray]:
    header = read_header(data)
    if not header.format:
        raise _Refused(NOT_AN_IMAGE)
    if header.width * header.height > MAX_PIXELS:
        raise _Refused(TOO_LARGE.format(header.width, header.height))
    Image.init()  # registers every plugin (WebP): `formats=` does not load them
    try:
        with Image.open(io.BytesIO(data), formats=_PIL_FORMATS[header.format]) as im:
            im.load()  # decode now: truncated files fail here
            pixels = _pil_rgb(im)
    except Image.UnidentifiedImageError:
        raise _Refused(f"not a readable {header.format} image") from None
    return header, orient(pixels, header.orientation)


def _decode_named(data: bytes, name: str) -> tuple[ImageHeader, np.ndarray]:
    try:
        return _decode(data)
    except MemoryError:
        raise
    except _Refused as e:
        raise ImageError(name, str(e)) from None
    except Exception as e:  # any decoder failure on one file, e.g. in Pillow's plugins
        raise ImageError(name, f"{type(e).__name__}: {e}") from None


def decode_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """Encoded image bytes -> uint8 [H,W,3] RGB, upright: THE decoding of every stage.

    Rules in the module docstring. Raises ImageError (a ValueError; one line starting with
    `name`) for anything that cannot be decoded by them; MemoryError and KeyboardInterrupt
    pass through.
    """
    return _decode_named(data, name)[1]


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ImageError(path, e.strerror or type(e).__name__) from None


def read_rgb(path: str) -> np.ndarray:
    """An image file -> uint8 [H,W,3] RGB (`decode_rgb`); ImageError names `path`."""
    return decode_rgb(_read_file(path), path)


# Files above this size are sent as PNG when that is smaller (an uncompressed BMP).
_COMPRESS_ABOVE = 8 * 1024 * 1024


def read_image_bytes(path: str) -> bytes:
    """The bytes to send to `translate_bytes` for an image file, after checking it decodes.

    The file's own bytes when the model decodes them in-graph exactly as `decode_rgb`
    (PNG, JPEG with its EXIF orientation, GIF, 24/32-bit BMP) and they are not large for
    want of compression; otherwise (WebP, other BMPs, GIFs with a partial first frame, a
    large uncompressed BMP) a lossless PNG of `decode_rgb`'s pixels. A file that
    `decode_rgb` refuses, or that stays larger than `sig.IMAGE_BYTES_LIMIT` even as PNG, is
    an ImageError here, before anything is sent.
    """
    data = _read_file(path)
    header, pixels = _decode_named(data, path)
    if header.not_in_model:
        data = png_bytes(pixels)
    elif len(data) > _COMPRESS_ABOVE:
        data = min(data, png_bytes(pixels), key=len)
    if len(data) > sig.IMAGE_BYTES_LIMIT:
        raise ImageError(
            path,
            f"{len(data) / 2**20:.0f} MiB even as PNG; one image may be at most "
            f"{sig.IMAGE_BYTES_LIMIT / 2**20:.0f} MiB (a gRPC message holds "
            f"{sig.MAX_MESSAGE_BYTES / 2**20:.0f} MiB): shrink it first",
        )
    return data


def batches(encoded, max_batch: int, max_bytes: int | None = None):
    """Slices of `encoded` for one request each: at most `max_batch` images and `max_bytes`
    bytes in all (default `sig.REQUEST_IMAGE_BYTES`; one larger image goes alone)."""
    limit = sig.REQUEST_IMAGE_BYTES if max_bytes is None else max_bytes
    start = 0
    while start < len(encoded):
        end, size = start, 0
        while end < len(encoded) and end - start < max_batch:
            size += len(encoded[end])
            if end > start and size > limit:
                break
            end += 1
        yield slice(start, end)
        start = end


def png_bytes(array: np.ndarray) -> bytes:
    """uint8 [H,W,3] -> PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes, name: str = "image") -> np.ndarray:
    """Encoded image -> uint8 [H,W,3] (RGB): `decode_rgb`."""
    return decode_rgb(data, name)


def thumbnail(data: bytes, size: int) -> np.ndarray:
    """Encoded image -> uint8 [size,size,3]: centre square crop + bicubic resize (for grids)."""
    im = Image.fromarray(decode_rgb(data))
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side))
    return np.asarray(im.resize((size, size), Image.Resampling.BICUBIC), np.uint8)


def grid(rows: list[list[np.ndarray]], labels: Sequence[str] = ()) -> np.ndarray:
    """Tiles equally sized uint8 [S,S,3] images: rows[i][j] at row i, column j; with `labels`
    (one per column), under a `column_header` naming the columns."""
    tiled = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    if not labels:
        return tiled
    return np.concatenate([column_header(labels, rows[0][0].shape[1]), tiled], axis=0)


def column_header(labels: Sequence[str], width: int, gap: int = 0) -> np.ndarray:
    """A white strip with each label centred over its column, in Pillow's default font.

    labels: one per column; a label may hold several lines ("cluster 7\\nEyeglasses").
    width: each column's width in px; gap: px between two columns.
    Returns uint8 [H, len(labels) * (width + gap) - gap, 3], H fitting the most lines.
    """
    from PIL import ImageDraw, ImageFont

    size = max(8, min(11, width // 6))
    font = ImageFont.load_default(size=size)
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    columns = max(1, len(labels) * (width + gap) - gap)
    strip = Image.new("RGB", (columns, lines * (size + 2) + 2), "white")
    draw = ImageDraw.Draw(strip)
    for i, label in enumerate(labels):
        x = i * (width + gap) + width / 2
        draw.multiline_text(
            (x, 2), label, fill="black", font=font, anchor="ma", spacing=2, align="center"
        )
    return np.asarray(strip)


def _stems(paths: list[str]) -> list[str]:
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) < len(stems):  # a/x.jpg and b/x.jpg: keep both
        stems = [f"{i:03d}_{s}" for i, s in enumerate(stems)]
    return stems


def output_paths(out: str, inputs: list[str], clusters: list[int] | list[str]) -> list[str]:
    """Where the translation of inputs[i] into clusters[i] is written.

    `out` is a pattern when it contains "{" (fields {stem}, {index}, {cluster}), a file when
    it ends in .png (one output only), else a folder: `<out>/<stem>_c<cluster:03d>.png`.
    A label instead of a cluster id (a strength, a combination, a reference group:
    `xplore_tf/common/beyond_clusters.py`) names `<out>/<stem>_<label>.png` and fills {cluster}.
    """
    if not out:
        raise ValueError("an output (--out) is required")
    stems = _stems(inputs)
    if "{" in out:
        try:
            paths = [
                out.format(stem=s, index=i, cluster=c)
                for i, (s, c) in enumerate(zip(stems, clusters, strict=True))
            ]
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"--out pattern {out!r}: only {{stem}}, {{index}}, {{cluster}} exist ({e})"
            ) from None
        if len(set(paths)) < len(paths):
            raise ValueError(f"--out pattern {out!r} gives several outputs the same name")
        return paths
    if out.lower().endswith(".png"):
        if len(inputs) != 1:
            raise ValueError(
                f"--out={out} names one file but there are {len(inputs)} outputs: pass a "
                "folder or a pattern such as out/{stem}_{cluster}.png"
            )
        return [out]
    return [
        os.path.join(out, f"{s}_{c}.png" if isinstance(c, str) else f"{s}_c{c:03d}.png")
        for s, c in zip(stems, clusters, strict=True)
    ]


def grid_path(out: str) -> str:
    """Where the --all_clusters grid goes: `out` if it ends in .png, else `<out>/all_clusters.png`."""
    if not out:
        raise ValueError("an output (--out) is required")
    if "{" in out:
        return out.format(stem="all_clusters", index=0, cluster="all")
    return out if out.lower().endswith(".png") else os.path.join(out, GRID_NAME)


def write_file(path: str, data: bytes) -> None:
    """Writes bytes, creating the folder; a temporary name + rename so no half file remains."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """What the `clusters` signature returns."""

    ids: np.ndarray  # int32 [k]
    sizes: np.ndarray  # int64 [k]
    names: list[str]  # "" when unnamed

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, np.ndarray]) -> ClusterInfo:
        names = [
            n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
            for n in np.asarray(outputs[sig.NAME]).reshape(-1)
        ]
        return cls(np.asarray(outputs[sig.CLUSTER_ID]), np.asarray(outputs[sig.SIZE]), names)


def all_clusters_grid(
    info: ClusterInfo,
    encoded: Sequence[bytes],
    translate: Callable[[list[bytes], list[int]], list[bytes]],
) -> np.ndarray:
    """Every input (one row each: its thumbnail, then its translation into each of `info`'s
    clusters) as one uint8 [H, W, 3] image, the columns headed "input" and "c<id>" over the
    cluster's name. `translate(encoded, cluster_ids)` returns one encoded image per pair, all
    S x S (the model's resolution)."""
    ids = [int(i) for i in info.ids]
    labels = ["input", *(f"c{i}\n{name}".strip() for i, name in zip(ids, info.names, strict=True))]
    rows = []
    for data in encoded:
        outs = [decode(b) for b in translate([data] * len(ids), ids)]
        rows.append([thumbnail(data, outs[0].shape[0]), *outs])
    return grid(rows, labels)


def is_cluster_id(value: str | int) -> bool:
    return str(value).strip().lstrip("-").isdigit()


def check_output_resolution(value: str) -> str:
    """`value` if it is one of sig.OUTPUT_RESOLUTIONS, else one ValueError line."""
    if value not in sig.OUTPUT_RESOLUTIONS:
        raise ValueError(
            f"--output_resolution={value!r}: expected one of {', '.join(sig.OUTPUT_RESOLUTIONS)}"
        )
    return value


def resolve_cluster(value: str | int, info: ClusterInfo | None, flag: str = "--cluster") -> int:
    """A cluster id from an id ("12") or a name ("blond"; case-insensitive if unambiguous).

    Ids pass through unchecked (the model rejects ids outside [0, k) with INVALID_ARGUMENT);
    names need `info`. Errors name `flag`.
    """
    text = str(value).strip()
    if not text:
        raise ValueError("--cluster is empty: pass an id or a cluster name")
    if is_cluster_id(text):
        return int(text)
    if info is None:
        raise ValueError(f"{flag}={text!r} is a name: resolving it needs the model's clusters")
    for candidates in (
        [int(i) for i, n in zip(info.ids, info.names, strict=True) if n == text],
        [int(i) for i, n in zip(info.ids, info.names, strict=True) if n.lower() == text.lower()],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ValueError(f"{flag}={text!r} names several clusters: {candidates}")
    named = sorted({n for n in info.names if n})
    raise ValueError(
        f"{flag}={text!r}: no cluster of that name; named clusters: "
        + (", ".join(named) if named else "none (write cluster_names.json, then export again)")
    )


def split_paths(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated file arguments -> a flat list."""
    return [p.strip() for value in values or [] for p in value.split(",") if p.strip()]
