"""Finding and decoding face images robustly, for every stage.

A folder of real photos always holds something odd: a grayscale scan, a 16-bit PNG, a PNG
with alpha, a phone picture stored sideways with an EXIF orientation tag, a truncated
download, a stray text file named .jpg, a symlinked subfolder, the same photo copied
twice. Each is either normalised, followed, reported or skipped with a warning and
counted, so a run never dies after minutes of work on one bad file.

Decoding is `xplore_tf.common.pixels.decode_rgb`, the one definition of "file -> RGB uint8
pixels" that every path running Python calls: training's tf.data (through
`tf.numpy_function`), clustering, preparation, translation, evaluation and the serving
client. The exported model takes encoded bytes and TF Serving runs no Python, so its graph
holds `decode_image_bytes`, the TensorFlow twin of `decode_rgb`; the two give the same
pixels or refuse alike on a corpus of awkward files
(tests/data/test_images.py::test_every_path_decodes_to_the_same_pixels_or_refuses_alike).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np
from absl import logging
from PIL import Image

from xplore_tf.common import pixels

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Extensions of images that are not listed (other formats): named in a warning.
OTHER_IMAGE_EXTENSIONS = (".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl")
ImageError = pixels.ImageError


@dataclasses.dataclass(frozen=True)
class ImageListing:
    """What `scan_images` found below a folder."""

    images: list[str]  # sorted POSIX paths relative to the folder
    links_skipped: list[str]  # folder links not followed (loops, second links to one folder)
    ignored: dict[str, int]  # extension (lower case, "" for none) -> files not listed


def scan_images(root: str) -> ImageListing:
    """Image files below `root`, recursively, following symbolic links to folders.

    A folder is entered once, by the first path that reaches it (sorted order), so a link
    to an ancestor (a loop) or a second link to one folder is not followed: each is logged
    as a warning naming it. Hidden files and folders (".name") are not listed. Files with
    other extensions are counted in `ignored` (a warning names image-like ones, e.g. .gif).
    Raises FileNotFoundError when `root` is not a folder.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"images folder {root!r} does not exist or is not a folder")
    found: list[str] = []
    skipped: list[str] = []
    ignored: collections.Counter[str] = collections.Counter()
    entered = {os.path.realpath(root)}
    for folder, dirs, files in os.walk(root, followlinks=True):
        keep = []
        for name in sorted(d for d in dirs if not d.startswith(".")):
            path = os.path.join(folder, name)
            real = os.path.realpath(path)
            if real in entered:
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                logging.warning(
                    "not following %s: it leads to %s, a folder already listed (a link loop "
                    "or a second link to one folder)",
                    rel,
                    real,
                )
                skipped.append(rel)
                continue
            entered.add(real)
            keep.append(name)
        dirs[:] = keep
        for name in files:
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in IMAGE_EXTENSIONS:
                rel = os.path.relpath(os.path.join(folder, name), root)
                found.append(rel.replace(os.sep, "/"))
            else:
                ignored[ext] += 1
    other = {e: c for e, c in sorted(ignored.items()) if e in OTHER_IMAGE_EXTENSIONS}
    if other:
        logging.warning(
            "%s: not listing %s (only %s are read; convert them to PNG)",
            root,
            ", ".join(f"{c} {e} file(s)" for e, c in other.items()),
            " ".join(IMAGE_EXTENSIONS),
        )
    return ImageListing(sorted(found), sorted(skipped), dict(sorted(ignored.items())))


def list_images(root: str) -> list[str]:
    """Image files below `root` (recursive, links followed), as sorted relative POSIX paths."""
    return scan_images(root).images


def _file_digest(path: str) -> str:
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_duplicates(root: str, rel_paths: Sequence[str]) -> dict[str, str]:
    """{duplicate: original}: files whose bytes equal an earlier file's in `rel_paths` order.

    Exact copies only (same file bytes, BLAKE2b of the content; files are hashed only when
    another file has the same size): a re-encoded or resized copy is a distinct image.
    Unreadable files are left to the decoder, which skips them.
    """
    by_size: dict[int, list[str]] = collections.defaultdict(list)
    for rel in rel_paths:
        try:
            by_size[os.path.getsize(os.path.join(root, rel))].append(rel)
        except OSError:
            continue
    duplicates: dict[str, str] = {}
    for group in by_size.values():
        if len(group) < 2:
            continue
        first: dict[str, str] = {}
        for rel in group:
            try:
                digest = _file_digest(os.path.join(root, rel))
            except OSError:
                continue
            if digest in first:
                duplicates[rel] = first[digest]
            else:
                first[digest] = rel
    order = {p: i for i, p in enumerate(rel_paths)}
    return dict(sorted(duplicates.items(), key=lambda item: order[item[0]]))


def center_crop_box(width: int, height: int, crop_size: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) of a centred square; crop_size 0 = the shorter side."""
    side = min(width, height) if crop_size <= 0 else min(crop_size, width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def load_image(path: str, *, size: int, crop_size: int = 0) -> np.ndarray:
    """Decodes one file to uint8 RGB [size, size, 3]: upright, centre-cropped, resized.

    Decoding is `xplore_tf.common.pixels.decode_rgb` (EXIF orientation, 16-bit, alpha over
    black, palettes, CMYK); then a centre square crop (`crop_size` px, 0 = the shorter
    side) and a bicubic resize to `size` x `size`. Raises ImageError (a ValueError, one
    line naming `path`) for any file that cannot be decoded, whatever the decoder raised.
    """
    im = Image.fromarray(pixels.read_rgb(path))
    im = im.crop(center_crop_box(im.width, im.height, crop_size))
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8)


@dataclasses.dataclass
class SkipLog:
    """Thread-safe record of files that could not be read (tf.data maps in parallel)."""

    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            self.skipped.append((path, reason))
        logging.warning("skipping unreadable image %s: %s", path, reason)

    @property
    def count(self) -> int:
        return len(self.skipped)


def _is_ok(index, image, ok):
    return ok


def _drop_ok(index, image, ok):
    return index, image


def image_dataset(
    root: str,
    rel_paths: Sequence[str],
    *,
    size: int,
    crop_size: int = 0,
    skip_log: SkipLog | None = None,
    load: Callable[[str], np.ndarray] | None = None,
):
    """A tf.data.Dataset of (index int64, image uint8 [size,size,3]) for readable files.

    Decoding runs in parallel inside tf.data (PIL releases the GIL while decoding); a file
    that fails to decode (ImageError: any decoder failure) is logged to `skip_log` and
    filtered out, keeping order otherwise. `load(path) -> uint8 [size,size,3]` replaces
    `load_image` (centre crop of `crop_size`, resize) for another framing of each file.
    """
    import tensorflow as tf

    skip_log = skip_log if skip_log is not None else SkipLog()
    blank = np.zeros((size, size, 3), np.uint8)
    if load is None:
        load = functools.partial(load_image, size=size, crop_size=crop_size)

    def _load(index: np.ndarray) -> tuple[np.ndarray, bool]:
        rel = rel_paths[int(index)]
        try:
            return load(os.path.join(root, rel)), True
        except ImageError as e:
            skip_log.add(rel, e.reason)
            return blank, False

    def _map(index):
        image, ok = tf.numpy_function(_load, [index], (tf.uint8, tf.bool))
        image.set_shape((size, size, 3))
        ok.set_shape(())
        return index, image, ok

    ds = tf.data.Dataset.range(len(rel_paths))
    ds = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(_is_ok)
    return ds.map(_drop_ok)


# ---------------------------------------------------------------- the in-graph twin
# TensorFlow is imported inside each function: listing and decoding files with Pillow
# (everything above) does not load it. Every helper below is traced into the caller's graph
# (tf.function, the SavedModel's `translate_bytes`): pure TF ops, Python branches only on
# static values.
_FORMAT_INDEX = {"PNG": 0, "JPEG": 1, "GIF": 2, "BMP": 3, "WEBP": 4}
_NOT_AN_IMAGE, _WEBP, _GIF, _BMP = 5, 4, 2, 3  # refusal codes (0 = decodable)


def decode_image_bytes(data):
    """TensorFlow twin of `xplore_tf.common.pixels.decode_rgb`, for the model's graph.

    `data`: scalar tf.string (one encoded image) -> uint8 [H, W, 3], upright RGB. Decodes
    PNG (8/16-bit, grey, grey+alpha, RGB, RGBA, palette), JPEG (EXIF orientation applied,
    the accurate integer DCT as Pillow), GIF (first frame) and uncompressed 24/32-bit BMP
    to the pixels `decode_rgb` gives. Raises InvalidArgumentError with `decode_rgb`'s
    wording for what it refuses (not an image, more than MAX_PIXELS pixels) and for what
    only the model refuses (WebP, other BMPs, GIFs whose first frame is partial: clients
    send those as PNG). Header fields are read with the rules of `pixels.read_header`.
    """
    import tensorflow as tf

    data = tf.convert_to_tensor(data, tf.string)
    reader = _ByteReader(data)
    index = _sniff_format(reader)
    width, height, orientation, code = _read_header(reader, index)
    check = _refusal_check(width, height, code)
    with tf.control_dependencies([check]):
        image = _decode_pixels(data, reader, index, width, height)
    image = _orient(image, orientation)
    return tf.ensure_shape(image, [None, None, 3])


class _ByteReader:
    """Random access to the bytes of one encoded image, in the graph.

    Positions are int64 tensors (scalars or vectors); a byte before the start or past the
    end reads as 0, so header fields of a truncated file read as zeros instead of failing.
    """

    def __init__(self, data):
        import tensorflow as tf

        raw = tf.io.decode_raw(data, tf.uint8)
        self.n = tf.size(raw, out_type=tf.int64)  # the file's length in bytes
        self._padded = tf.concat([raw, tf.zeros([1], tf.uint8)], 0)  # [n] = 0: past the end

    def u8(self, i):
        """The byte at `i` as int64 (0 outside the file)."""
        import tensorflow as tf

        i = tf.cast(i, tf.int64)
        inside = (i >= 0) & (i < self.n)
        return tf.cast(tf.gather(self._padded, tf.where(inside, i, self.n)), tf.int64)

    def be(self, i, size: int):
        """The `size`-byte big-endian unsigned integer at `i`."""
        import tensorflow as tf

        value = tf.zeros_like(tf.cast(i, tf.int64))
        for j in range(size):
            value = value * 256 + self.u8(i + j)
        return value

    def le(self, i, size: int):
        """The `size`-byte little-endian unsigned integer at `i`."""
        import tensorflow as tf

        value = tf.zeros_like(tf.cast(i, tf.int64))
        for j in reversed(range(size)):
            value = value * 256 + self.u8(i + j)
        return value

    def match(self, i, text: bytes):
        """True when the file holds `text` at `i` (all of it inside the file)."""
        import tensorflow as tf

        i = tf.cast(i, tf.int64)
        got = self.u8(i + tf.range(len(text), dtype=tf.int64))
        same = tf.reduce_all(tf.equal(got, tf.constant(list(text), tf.int64)))
        return (i >= 0) & (i + len(text) <= self.n) & same


def _int64(value):
    import tensorflow as tf

    return tf.constant(value, tf.int64)


def _walk(body, state):
    """tf.while_loop over `state` until its last element (done) is True, bounded by
    `pixels.MAX_HEADER_STEPS` steps as `pixels.read_header` is."""
    import tensorflow as tf

    return tf.while_loop(
        lambda *s: tf.logical_not(s[-1]),
        body,
        state,
        maximum_iterations=pixels.MAX_HEADER_STEPS,
    )


def _sniff_format(reader: _ByteReader):
    """int32 scalar: the format by its signature, as `_FORMAT_INDEX`; 5 = not an image."""
    import tensorflow as tf

    is_png = reader.match(0, pixels.PNG_SIGNATURE)
    is_jpeg = reader.match(0, b"\xff\xd8\xff")
    is_gif = reader.match(0, b"GIF87a") | reader.match(0, b"GIF89a")
    is_bmp = reader.match(0, b"BM")
    is_webp = reader.match(0, b"RIFF") & reader.match(8, b"WEBP")
    return tf.where(
        is_png,
        0,
        tf.where(is_jpeg, 1, tf.where(is_gif, 2, tf.where(is_bmp, 3, tf.where(is_webp, 4, 5)))),
    )


def _read_header(reader: _ByteReader, index):
    """(width, height, EXIF orientation 1..8, refusal code) int64 scalars of format `index`."""
    import tensorflow as tf

    def refused(code):
        return lambda: (_int64(0), _int64(0), _int64(1), _int64(code))

    return tf.switch_case(
        index,
        [
            functools.partial(_png_header, reader),
            functools.partial(_jpeg_header, reader),
            functools.partial(_gif_header, reader),
            functools.partial(_bmp_header, reader),
            refused(_WEBP),
            refused(_NOT_AN_IMAGE),
        ],
    )


def _tiff_orientation(reader: _ByteReader, start):
    """The EXIF orientation (1..8) in the TIFF block at `start` (after an optional
    `pixels.EXIF_PREFIX`); 1 when `start` < 0, the block is malformed or holds no valid tag."""
    import tensorflow as tf

    start = tf.where(reader.match(start, pixels.EXIF_PREFIX), start + 6, start)
    little, big = reader.match(start, b"II"), reader.match(start, b"MM")

    def read(i, size):
        return tf.where(little, reader.le(i, size), reader.be(i, size))

    valid = (little | big) & tf.equal(read(start + 2, 2), 42)
    ifd = start + read(start + 4, 4)
    count = tf.where(valid, read(ifd, 2), _int64(0))
    entries = ifd + 2 + 12 * tf.range(count, dtype=tf.int64)
    hits = tf.concat([tf.equal(read(entries, 2), pixels.EXIF_ORIENTATION_TAG), [True]], 0)
    first = tf.argmax(tf.cast(hits, tf.int32), output_type=tf.int64)
    entry = ifd + 2 + 12 * first
    kind = read(entry + 2, 2)
    value = tf.where(
        tf.equal(kind, 3),
        read(entry + 8, 2),
        tf.where(tf.equal(kind, 4), read(entry + 8, 4), _int64(0)),
    )
    ok = valid & (first < count) & (value >= 1) & (value <= 8)
    return tf.where(ok, value, _int64(1))


def _png_header(reader: _ByteReader):
    """IHDR's size and the orientation of the first eXIf chunk (chunks walked to IEND)."""
    import tensorflow as tf

    def body(pos, tiff, done):
        valid = pos + 8 <= reader.n
        tiff = tf.where(valid & (tiff < 0) & reader.match(pos + 4, b"eXIf"), pos + 8, tiff)
        done = tf.logical_not(valid) | reader.match(pos + 4, b"IEND")
        return pos + 12 + reader.be(pos, 4), tiff, done

    _, tiff, _ = _walk(body, (_int64(8), _int64(-1), tf.constant(False)))
    return reader.be(16, 4), reader.be(20, 4), _tiff_orientation(reader, tiff), _int64(0)


def _is_jpeg_frame_marker(marker):
    """SOF0..SOF15 (0xC0..0xCF) but DHT (C4), JPG (C8) and DAC (CC): a frame header."""
    import tensorflow as tf

    return (
        (marker >= 0xC0)
        & (marker <= 0xCF)
        & tf.not_equal(marker, 0xC4)
        & tf.not_equal(marker, 0xC8)
        & tf.not_equal(marker, 0xCC)
    )


def _jpeg_header(reader: _ByteReader):
    """The first frame header's size and the first APP1 Exif block's orientation, walking
    the marker segments up to the scan (SOS) or the end (EOI)."""
    import tensorflow as tf

    def body(pos, tiff, width, height, done):
        marker = reader.u8(pos + 1)
        invalid = tf.not_equal(reader.u8(pos), 0xFF) | (pos + 4 > reader.n)
        fill = tf.equal(marker, 0xFF)
        bare = tf.equal(marker, 0x01) | ((marker >= 0xD0) & (marker <= 0xD7))
        end = tf.equal(marker, 0xDA) | tf.equal(marker, 0xD9)
        length = reader.be(pos + 2, 2)
        segment = ~invalid & ~fill & ~bare & ~end
        bad = segment & (length < 2)
        use = segment & ~bad
        exif = use & tf.equal(marker, 0xE1) & (tiff < 0) & reader.match(pos + 4, pixels.EXIF_PREFIX)
        tiff = tf.where(exif, pos + 10, tiff)
        sof = use & _is_jpeg_frame_marker(marker) & (height < 0)
        height = tf.where(sof, reader.be(pos + 5, 2), height)
        width = tf.where(sof, reader.be(pos + 7, 2), width)
        step = tf.where(fill, _int64(1), tf.where(bare, _int64(2), 2 + length))
        return pos + step, tiff, width, height, invalid | end | bad

    state = (_int64(2), _int64(-1), _int64(0), _int64(-1), tf.constant(False))
    _, tiff, width, height, _ = _walk(body, state)
    return width, tf.maximum(height, 0), _tiff_orientation(reader, tiff), _int64(0)


def _gif_first_frame(reader: _ByteReader, start):
    """Offset of the first image descriptor (0x2C), skipping extension blocks from
    `start`; -1 when none comes before the end or another block."""
    import tensorflow as tf

    def body(pos, in_extension, frame, done):
        outside = pos >= reader.n
        value = reader.u8(pos)  # a sub-block's size, or a block's introducer
        is_extension = tf.equal(value, 0x21)
        new_pos = tf.where(in_extension, pos + value + 1, tf.where(is_extension, pos + 2, pos))
        new_in = tf.where(in_extension, tf.not_equal(value, 0), is_extension)
        image = ~outside & ~in_extension & tf.equal(value, 0x2C)
        frame = tf.where(image, pos, frame)
        done = outside | (~in_extension & ~is_extension)
        return new_pos, new_in, frame, done

    state = (start, tf.constant(False), _int64(-1), tf.constant(False))
    _, _, frame, _ = _walk(body, state)
    return frame


def _gif_header(reader: _ByteReader):
    """The screen's size; refused (_GIF) when the first frame does not cover the screen."""
    import tensorflow as tf

    width, height = reader.le(6, 2), reader.le(8, 2)
    flags = reader.u8(10)
    table = tf.where(  # the global colour table's size in bytes
        tf.not_equal(tf.bitwise.bitwise_and(flags, 0x80), 0),
        tf.bitwise.left_shift(_int64(3), tf.bitwise.bitwise_and(flags, 7) + 1),
        _int64(0),
    )
    frame = _gif_first_frame(reader, 13 + table)
    partial = (frame >= 0) & (
        tf.not_equal(reader.le(frame + 1, 2), 0)
        | tf.not_equal(reader.le(frame + 3, 2), 0)
        | tf.not_equal(reader.le(frame + 5, 2), width)
        | tf.not_equal(reader.le(frame + 7, 2), height)
    )
    return width, height, _int64(1), tf.where(partial, _int64(_GIF), _int64(0))


def _bmp_header(reader: _ByteReader):
    """The DIB header's size; refused (_BMP) unless uncompressed 24/32-bit BITMAPINFOHEADER."""
    import tensorflow as tf

    def signed(v):
        return tf.abs(tf.where(v >= 2**31, v - 2**32, v))

    dib = reader.le(14, 4)
    core = tf.equal(dib, 12)
    width = tf.where(core, reader.le(18, 2), signed(reader.le(18, 4)))
    height = tf.where(core, reader.le(20, 2), signed(reader.le(22, 4)))
    bits = tf.where(core, reader.le(24, 2), reader.le(28, 2))
    compression = tf.where(core, _int64(0), reader.le(30, 4))
    other = (
        tf.not_equal(dib, 40)
        | (tf.not_equal(bits, 24) & tf.not_equal(bits, 32))
        | tf.not_equal(compression, 0)
    )
    return width, height, _int64(1), tf.where(other, _int64(_BMP), _int64(0))


def _refusal_check(width, height, code):
    """An Assert op failing, with `decode_rgb`'s words, on a refusal code or too many pixels."""
    import tensorflow as tf

    too_large = width * height > pixels.MAX_PIXELS
    message = tf.where(
        tf.equal(code, _NOT_AN_IMAGE),
        pixels.NOT_AN_IMAGE,
        tf.where(
            too_large,
            tf.strings.format(pixels.TOO_LARGE, (width, height)),
            tf.where(
                tf.equal(code, _WEBP),
                pixels.WEBP_NOT_IN_MODEL,
                tf.where(tf.equal(code, _GIF), pixels.GIF_NOT_IN_MODEL, pixels.BMP_NOT_IN_MODEL),
            ),
        ),
    )
    return tf.debugging.Assert(tf.equal(code, 0) & ~too_large, [message])


def _decode_pixels(data, reader: _ByteReader, index, width, height):
    """uint8 [H, W, 3] as stored (before orientation) of a PNG, JPEG, GIF or BMP `index`."""
    import tensorflow as tf

    def jpeg():
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")

    def bmp():
        return tf.io.decode_bmp(data, channels=3)

    return tf.switch_case(
        tf.minimum(index, 3),
        [
            lambda: _decode_png(data, reader),
            jpeg,
            lambda: _decode_gif(data, width, height),
            bmp,
        ],
    )


def _decode_png(data, reader: _ByteReader):
    """A PNG's pixels as RGB; 16-bit samples keep their high byte (as Pillow)."""
    import tensorflow as tf

    deep = tf.equal(reader.u8(24), 16)  # IHDR bit depth
    image = tf.cond(
        deep,
        lambda: tf.cast(
            tf.bitwise.right_shift(
                tf.io.decode_png(data, dtype=tf.uint16), tf.constant(8, tf.uint16)
            ),
            tf.uint8,
        ),
        lambda: tf.io.decode_png(data),
    )
    return _to_rgb(image)


def _decode_gif(data, width, height):
    """A GIF's first frame; fails (GIF_NOT_IN_MODEL) when it is not the screen's size."""
    import tensorflow as tf

    first = tf.io.decode_gif(data)[0]
    shape = tf.shape(first, out_type=tf.int64)
    same = tf.equal(shape[0], height) & tf.equal(shape[1], width)
    with tf.control_dependencies([tf.debugging.Assert(same, [pixels.GIF_NOT_IN_MODEL])]):
        return tf.identity(first)


def _to_rgb(image):
    """uint8 [H,W,C], C = 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) -> [H,W,3], alpha
    composited over black with rounding as `pixels.decode_rgb`."""
    import tensorflow as tf

    def over_black(colour, alpha):
        mixed = (tf.cast(colour, tf.int32) * tf.cast(alpha, tf.int32) + 127) // 255
        return tf.cast(mixed, tf.uint8)

    def grey():
        return tf.tile(image[:, :, :1], [1, 1, 3])

    return tf.switch_case(
        tf.shape(image)[2] - 1,
        [
            grey,
            lambda: over_black(grey(), image[:, :, 1:2]),
            lambda: image[:, :, :3],
            lambda: over_black(image[:, :, :3], image[:, :, 3:4]),
        ],
    )


def _orient(image, orientation):
    """`image` turned upright by EXIF orientation 1..8 (int64 scalar), as `pixels.ORIENTATIONS`."""
    import tensorflow as tf

    def oriented(value):
        transpose, flip_rows, flip_columns = pixels.ORIENTATIONS[value]

        def branch():
            x = tf.transpose(image, [1, 0, 2]) if transpose else image
            if flip_rows:
                x = tf.reverse(x, [0])
            if flip_columns:
                x = tf.reverse(x, [1])
            return x

        return branch

    return tf.switch_case(tf.cast(orientation - 1, tf.int32), [oriented(v) for v in range(1, 9)])
