"""Helpers shared by tests: tiny image folders with a known answer, running binaries."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
from PIL import Image

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def shared_dir() -> str | None:
    """`../shared` beside the project (or $XPLORE_SHARED), or None when absent."""
    path = os.environ.get("XPLORE_SHARED") or os.path.join(PROJECT_ROOT, "..", "shared")
    return path if os.path.isdir(path) else None


def make_folder(root: str, per_colour: int = 12, seed: int = 0) -> dict[str, str]:
    """A coloured square on grey per image, with noise, in 3 colours; plus one broken file.

    Returns {relative path: colour}: the partition a clustering must recover.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    for name, rgb in COLOURS.items():
        for i in range(per_colour):
            img = np.full((40, 48, 3), 128, np.float32)
            y, x = rng.integers(2, 10, 2)
            img[y : y + 28, x : x + 30] = rgb
            img += rng.normal(0, 12, img.shape)
            rel = f"{name}/{i:02d}.png" if i % 2 else f"{name}_{i:02d}.jpg"
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(root, rel))
            truth[rel] = name
    with open(os.path.join(root, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    return truth


def run_binary(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `python -m module args...` from the project root, capturing text output."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def with_file_size_limit(command: list[str], kib: int) -> list[str]:
    """`command` run under a file-size limit of `kib` KiB (as `ulimit -f`, like a full disk).

    Set by a shell, not by subprocess's `preexec_fn`: forking a test process that has
    TensorFlow's threads running and calling Python in the child is not safe (the child once
    died in gRPC's poller with "Bad file descriptor" on a loaded machine).
    """
    return ["bash", "-c", f'ulimit -f {int(kib)} && exec "$@"', "bash", *command]


# ---------------------------------------------------------------- a tiny trained run, shared
# Training even a tiny GAN costs seconds, so the export, serving and translate tests share
# one run per session (cached here: pytest fixtures cannot be shared across test files
# without a conftest). Treat it as read-only: export into your own tmp folder.
TINY_CLUSTER_NAMES = {"0": "alpha", "2": "Beta"}
_SHARED: dict = {}


def tiny_trained_run(tmp_path_factory):
    """Config of a tiny run trained for 2 steps (image_size 16, k = 4 clusters) under the
    shipped configs' MirroredStrategy, with cluster_names.json {0: alpha, 2: Beta}."""
    if "run" not in _SHARED:
        import json

        from xplore_tf import train_lib

        workdir = tmp_path_factory.mktemp("tiny_trained_run")
        config = tiny_config(workdir, num_steps=2)
        train_lib.train(config)
        with open(os.path.join(config.clusters_dir, "cluster_names.json"), "w") as f:
            json.dump(TINY_CLUSTER_NAMES, f)
        _SHARED["run"] = config
    return _SHARED["run"]


def copy_of_tiny_run(tmp_path_factory, workdir):
    """tiny_config(workdir, num_steps=2) on a private copy of `tiny_trained_run`: for tests
    that write into the run (train again, re-cluster, evaluate)."""
    import shutil

    shutil.copytree(tiny_trained_run(tmp_path_factory).workdir, workdir, dirs_exist_ok=True)
    return tiny_config(workdir, num_steps=2)


def tiny_export(tmp_path_factory) -> str:
    """Base folder holding `xplore/1/`, the SavedModel of `tiny_trained_run` (shared)."""
    if "export" not in _SHARED:
        import dataclasses

        from xplore_tf import config as config_lib
        from xplore_tf import export_lib

        config = tiny_trained_run(tmp_path_factory)
        base = tmp_path_factory.mktemp("tiny_export")
        config = dataclasses.replace(config, export=config_lib.ExportConfig(export_dir=str(base)))
        export_lib.export(config)
        _SHARED["export"] = str(base)
    return _SHARED["export"]


def newest_checkpoint(checkpoint_dir) -> str | None:
    """The prefix of the newest checkpoint listed in a run's checkpoints folder."""
    from xplore_tf import checkpoint_files

    steps = checkpoint_files.steps(str(checkpoint_dir))
    return checkpoint_files.prefix_of(str(checkpoint_dir), steps[0]) if steps else None


def load_saved_model(path: str):
    """tf.saved_model.load(path), once per path per session (loads take seconds)."""
    if ("loaded", path) not in _SHARED:
        import tensorflow as tf

        _SHARED["loaded", path] = tf.saved_model.load(path)
    return _SHARED["loaded", path]


def load_translators_once(monkeypatch) -> None:
    """`translate_lib.Translator.from_saved_model` loads each path once per test process
    (through `load_saved_model`), for tests that translate with one SavedModel many times;
    what they check is the translation or the refusal, not the load."""
    from xplore_tf import translate_lib

    real = translate_lib.Translator.from_saved_model.__func__

    def once(cls, path):
        if ("translator", path) not in _SHARED:
            _SHARED["translator", path] = real(cls, path)
        return _SHARED["translator", path]

    monkeypatch.setattr(translate_lib.Translator, "from_saved_model", classmethod(once))


def call_signature(path: str, name: str, **inputs) -> dict[str, np.ndarray]:
    """The SavedModel at `path` answering signature `name` in process: inputs cast to the
    signature's dtypes, outputs as numpy (what a server must return)."""
    import tensorflow as tf

    fn = load_saved_model(path).signatures[name]
    specs = fn.structured_input_signature[1]
    out = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def file_bytes(paths) -> np.ndarray:
    """object [N]: each file's bytes as the client sends them (`read_image_bytes`)."""
    from xplore_tf.common import pixels

    out = np.empty(len(paths), object)
    out[:] = [pixels.read_image_bytes(p) for p in paths]
    return out


# The model of `tiny_config` as command-line flags, for tests that run the binaries.
TINY_MODEL_FLAGS = [
    "--num_clusters=4",
    "--image_size=16",
    "--g_channels=4",
    "--g_res_blocks=1",
    "--mlp_hidden=8",
    "--d_channels=4",
    "--d_num_down=3",
]


def tiny_config(workdir, **train):
    """A run small enough to train in seconds: 48 synthetic faces, 16 px, k=4, under
    `--strategy=mirrored` as every config in configs/ (override with strategy=...)."""
    from xplore_tf import config as config_lib

    return config_lib.Config(
        workdir=str(workdir),
        seed=3,
        data=config_lib.DataConfig(dataset="synthetic", synthetic_num=48, synthetic_size=32),
        cluster=config_lib.ClusterConfig(num_clusters=4, kmeans_nredo=1, contact_sheet_members=4),
        model=config_lib.ModelConfig(
            image_size=16, g_channels=4, g_res_blocks=1, mlp_hidden=8, d_channels=4, d_num_down=3
        ),
        train=config_lib.TrainConfig(
            **{
                "batch_size": 4,
                "num_steps": 6,
                "n_critic": 2,
                "lr_decay_steps": 3,
                "strategy": "mirrored",
                "log_every": 2,
                "summary_every": 2,
                "sample_every": 3,
                "sample_images": 2,
                "sample_clusters": 3,
                "checkpoint_every": 100,
                **train,
            }
        ),
    )


def trainer_weights(trainer) -> dict[str, np.ndarray]:
    """Every variable of a `train_step.Trainer` (G, D, G_ema, both optimizers) as numpy, by
    name: what this process holds, e.g. a worker whose checkpoints are thrown away."""
    from xplore_tf import checkpoints

    weights = {}
    for name in ("generator", "discriminator", "generator_ema"):
        for key, v in checkpoints.variables_by_path(getattr(trainer, name)).items():
            weights[f"{name}/{key}"] = np.asarray(v.numpy())
    for optimizer in (trainer.g_optimizer, trainer.d_optimizer):
        for i, v in enumerate(optimizer.variables):
            weights[f"{optimizer.name}/{i:04d}.{v.path}"] = np.asarray(v.numpy())
    return weights


# ---------------------------------------------------------------- awkward encodings
# One corpus of image files that are valid but odd (or invalid), with the pixels a correct
# decoder must give, shared by the parity tests of every decoding path (loader, translate,
# client, the SavedModel's translate_bytes).
@dataclasses.dataclass(frozen=True)
class Awkward:
    """One test file: `truth` uint8 [H,W,3] (upright, alpha over black) or a refusal."""

    name: str
    data: bytes
    truth: np.ndarray | None = None
    lossy: float = 0.0  # > 0: compare mean |decoded - truth| <= lossy instead of max <= 1
    refused: str = ""  # substring of the refusal every path gives ("*": the decoder's words)
    model_refuses: str = ""  # the SavedModel refuses the raw bytes with this (clients convert)


def face(height: int = 24, width: int = 20, seed: int = 0) -> np.ndarray:
    """uint8 [H,W,3]: smooth gradients with noise, and no symmetry (orientation shows)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [40 + 200 * yy / height, 30 + 180 * xx / width, 120 + 100 * (yy * xx) / (height * width)],
        -1,
    )
    img[: height // 3, : width // 3] = (250, 30, 30)  # a red top-left corner
    img += np.random.default_rng(seed).normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(samples: np.ndarray, bit_depth: int, colour_type: int, extra: bytes = b"") -> bytes:
    """A PNG written here, for what Pillow cannot write (16-bit RGB, tRNS colour keys)."""
    import struct
    import zlib

    h, w = samples.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\x00" + samples[y].astype(dtype).tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def huge_png(width: int = 20000, height: int = 9000) -> bytes:
    """A real, valid greyscale PNG of width x height black pixels (~200 KB compressed)."""
    import struct
    import zlib

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _encode(im, fmt: str, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _over_black(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return ((rgb.astype(np.uint32) * alpha[..., None] + 127) // 255).astype(np.uint8)


def awkward_images() -> list[Awkward]:
    """The corpus: every encoding the README accepts, in its awkward variants."""
    from PIL import Image

    from xplore_tf.common import pixels as common

    out: list[Awkward] = []
    rgb = face()
    big = face(64, 64, seed=1)  # the 64 x 64 faces
    grey = rgb.mean(-1).astype(np.uint8)
    grey3 = np.repeat(grey[..., None], 3, -1)
    rng = np.random.default_rng(5)

    # ---- PNG
    out.append(Awkward("png_rgb8.png", _encode(Image.fromarray(rgb), "PNG"), rgb))
    out.append(Awkward("png_grey8.png", _encode(Image.fromarray(grey), "PNG"), grey3))
    g16 = big.mean(-1).astype(np.uint8).astype(np.uint16) * 257  # the issue: values x 257
    out.append(
        Awkward(
            "png_grey16.png",
            png_file(g16, 16, 0),
            np.repeat((g16 >> 8)[..., None], 3, -1).astype(np.uint8),
        )
    )
    noise = rng.integers(0, 257, rgb.shape)
    rgb16 = np.minimum(rgb.astype(np.int64) * 257 + noise, 65535).astype(np.uint16)
    out.append(Awkward("png_rgb16.png", png_file(rgb16, 16, 2), (rgb16 >> 8).astype(np.uint8)))
    alpha = rng.integers(0, 256, rgb.shape[:2]).astype(np.uint8)
    alpha[:4] = 0
    alpha[4:8] = 255
    rgba16 = np.dstack([rgb16, alpha.astype(np.uint16) * 257])
    out.append(
        Awkward(
            "png_rgba16.png",
            png_file(rgba16, 16, 6),
            _over_black((rgb16 >> 8).astype(np.uint8), alpha),
        )
    )
    la = np.dstack([grey, alpha])
    out.append(
        Awkward(
            "png_grey_alpha8.png",
            _encode(Image.fromarray(la, "LA"), "PNG"),
            _over_black(grey3, alpha),
        )
    )
    la16 = la.astype(np.uint16) * 257
    out.append(Awkward("png_grey_alpha16.png", png_file(la16, 16, 4), _over_black(grey3, alpha)))
    hidden = big.copy()
    big_alpha = np.full(big.shape[:2], 255, np.uint8)
    hidden[:, :32] = (0, 255, 0)  # the issue: transparent pixels that store green
    big_alpha[:, :32] = 0
    big_alpha[:8, 32:] = 128
    out.append(
        Awkward(
            "png_rgba_hidden_green.png",
            _encode(Image.fromarray(np.dstack([hidden, big_alpha]), "RGBA"), "PNG"),
            _over_black(hidden, big_alpha),
        )
    )
    palette = rng.integers(0, 256, (16, 3)).astype(np.uint8)
    index = rng.integers(0, 16, rgb.shape[:2]).astype(np.uint8)

    def paletted(bits: int = 8, **kw) -> bytes:
        im = Image.fromarray(index, "P")
        im.putpalette(palette.reshape(-1).tolist())
        return _encode(im, "PNG", bits=bits, **kw)

    out.append(Awkward("png_palette.png", paletted(), palette[index]))
    out.append(Awkward("png_palette_4bit.png", paletted(bits=4), palette[index]))
    entry_alpha = np.full(16, 255, np.uint8)
    entry_alpha[:3] = (0, 100, 200)
    out.append(
        Awkward(
            "png_palette_alpha.png",
            paletted(transparency=entry_alpha.tobytes()),
            _over_black(palette[index], entry_alpha[index]),
        )
    )
    bits = grey > 128
    out.append(
        Awkward(
            "png_1bit.png",
            _encode(Image.fromarray(bits), "PNG"),
            np.repeat(bits[..., None] * np.uint8(255), 3, -1),
        )
    )
    # Colour keys (tRNS on grey/RGB) are ignored: the stored colour shows (module docstring).
    key = _png_chunk(
        b"tRNS", bytes([0, int(rgb[0, 0, 0]), 0, int(rgb[0, 0, 1]), 0, int(rgb[0, 0, 2])])
    )
    out.append(Awkward("png_rgb_colour_key.png", png_file(rgb, 8, 2, key), rgb))
    key = _png_chunk(b"tRNS", bytes([0, int(grey[0, 0])]))
    out.append(Awkward("png_grey_colour_key.png", png_file(grey, 8, 0, key), grey3))
    exif = Image.Exif()
    exif[common.EXIF_ORIENTATION_TAG] = 6
    # Stored turned 90 degrees counter-clockwise: orientation 6 turns it back clockwise.
    rotated = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1)))
    out.append(Awkward("png_exif_rotated.png", _encode(rotated, "PNG", exif=exif), rgb))
    out.append(
        Awkward(
            "png_gamma.png",
            png_file(rgb, 8, 2, _png_chunk(b"gAMA", (45455).to_bytes(4, "big"))),
            rgb,
        )
    )

    # ---- JPEG (lossy: compared with the source by mean absolute difference)
    im = Image.fromarray(rgb)
    out.append(Awkward("jpeg_baseline.jpg", _encode(im, "JPEG", quality=95), rgb, lossy=6))
    out.append(
        Awkward(
            "jpeg_progressive.jpeg", _encode(im, "JPEG", quality=95, progressive=True), rgb, lossy=6
        )
    )
    out.append(
        Awkward("jpeg_grey.jpg", _encode(Image.fromarray(grey), "JPEG", quality=95), grey3, lossy=3)
    )
    out.append(
        Awkward("jpeg_cmyk.jpg", _encode(im.convert("CMYK"), "JPEG", quality=95), rgb, lossy=6)
    )
    # Stored so that the EXIF orientation turns it upright (the inverse of exif_transpose).
    inverse = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    for o in range(1, 9):
        exif = Image.Exif()
        exif[common.EXIF_ORIENTATION_TAG] = o
        stored = im.transpose(inverse[o]) if o > 1 else im
        data = _encode(stored, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())
        out.append(Awkward(f"jpeg_exif_{o}.jpg", data, rgb, lossy=3))
    # MPO (phones' multi-picture JPEG): the first picture.
    data = _encode(im, "MPO", quality=95, save_all=True, append_images=[Image.fromarray(255 - rgb)])
    out.append(Awkward("jpeg_mpo.jpg", data, rgb, lossy=6))
    data = _encode(im, "JPEG", quality=95, exif=b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0garbage")
    out.append(Awkward("jpeg_exif_malformed.jpg", data, rgb, lossy=6))

    # ---- GIF
    def gif(index_image, **kw) -> bytes:
        g = Image.fromarray(index_image, "P")
        g.putpalette(palette.reshape(-1).tolist())
        return _encode(g, "GIF", **kw)

    out.append(Awkward("gif_palette.gif", gif(index), palette[index]))
    seen = palette[index].copy()
    seen[index == 3] = 0
    out.append(Awkward("gif_transparent.gif", gif(index, transparency=3), seen))
    second = Image.fromarray((15 - index).astype(np.uint8), "P")
    second.putpalette(palette.reshape(-1).tolist())
    out.append(
        Awkward(
            "gif_animated.gif",
            gif(index, save_all=True, append_images=[second], duration=100, loop=0),
            palette[index],
        )
    )
    partial = bytearray(gif(index))
    partial[6:10] = (40).to_bytes(2, "little") + (30).to_bytes(2, "little")  # bigger screen
    with Image.open(__import__("io").BytesIO(bytes(partial))) as g:
        partial_truth = np.asarray(g.convert("RGB"))  # Pillow's canvas: the definition
    out.append(
        Awkward(
            "gif_partial_frame.gif",
            bytes(partial),
            partial_truth,
            model_refuses=common.GIF_NOT_IN_MODEL,
        )
    )

    # ---- BMP
    out.append(Awkward("bmp_rgb24.bmp", _encode(im, "BMP"), rgb))
    rgba = np.dstack([rgb, alpha])
    out.append(
        Awkward("bmp_rgb32.bmp", _encode(Image.fromarray(rgba, "RGBA"), "BMP"), rgb)
    )  # BI_RGB: 4th byte unused
    flipped = bytearray(_encode(im, "BMP"))
    offset = int.from_bytes(flipped[10:14], "little")
    row = (rgb.shape[1] * 3 + 3) // 4 * 4
    body = flipped[offset:]
    flipped[offset:] = b"".join(
        body[r * row : (r + 1) * row] for r in reversed(range(rgb.shape[0]))
    )
    flipped[22:26] = (-rgb.shape[0]).to_bytes(4, "little", signed=True)  # top-down rows
    out.append(Awkward("bmp_topdown.bmp", bytes(flipped), rgb))
    bmp_p = Image.fromarray(index, "P")
    bmp_p.putpalette(palette.reshape(-1).tolist())
    out.append(
        Awkward(
            "bmp_palette8.bmp",
            _encode(bmp_p, "BMP"),
            palette[index],
            model_refuses=common.BMP_NOT_IN_MODEL,
        )
    )
    out.append(
        Awkward(
            "bmp_grey8.bmp",
            _encode(Image.fromarray(grey), "BMP"),
            grey3,
            model_refuses=common.BMP_NOT_IN_MODEL,
        )
    )
    out.append(
        Awkward(
            "bmp_1bit.bmp",
            _encode(Image.fromarray(bits), "BMP"),
            np.repeat(bits[..., None] * np.uint8(255), 3, -1),
            model_refuses=common.BMP_NOT_IN_MODEL,
        )
    )

    # ---- WebP: decoded by Pillow; the model refuses it, clients send PNG
    webp = common.WEBP_NOT_IN_MODEL
    out.append(
        Awkward(
            "webp_lossy.webp", _encode(im, "WEBP", quality=95), rgb, lossy=6, model_refuses=webp
        )
    )
    out.append(
        Awkward("webp_lossless.webp", _encode(im, "WEBP", lossless=True), rgb, model_refuses=webp)
    )
    out.append(
        Awkward(
            "webp_alpha.webp",
            _encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True, exact=True),
            _over_black(rgb, alpha),
            model_refuses=webp,
        )
    )
    out.append(
        Awkward(
            "webp_animated.webp",
            _encode(
                im,
                "WEBP",
                save_all=True,
                append_images=[Image.fromarray(255 - rgb)],
                lossless=True,
                duration=100,
            ),
            rgb,
            model_refuses=webp,
        )
    )
    exif = Image.Exif()
    exif[common.EXIF_ORIENTATION_TAG] = 6
    out.append(
        Awkward(
            "webp_exif_rotated.webp",
            _encode(rotated, "WEBP", lossless=True, exif=exif.tobytes()),
            rgb,
            model_refuses=webp,
        )
    )

    # ---- refused by every path, with the same words (or the decoder's own for corrupt data)
    png = out[0].data
    jpeg = out[next(i for i, a in enumerate(out) if a.name == "jpeg_baseline.jpg")].data
    out.append(Awkward("text.jpg", b"this is not a jpeg", refused=common.NOT_AN_IMAGE))
    out.append(Awkward("empty.png", b"", refused=common.NOT_AN_IMAGE))
    out.append(Awkward("tiff_named.jpg", _encode(im, "TIFF"), refused=common.NOT_AN_IMAGE))
    out.append(Awkward("truncated.png", png[: len(png) - 40], refused="*"))
    out.append(Awkward("truncated.jpg", jpeg[: len(jpeg) // 2], refused="*"))
    huge = png_file(np.zeros((1, 1), np.uint8), 8, 0)
    huge = huge[:16] + (20000).to_bytes(4, "big") + (9000).to_bytes(4, "big") + huge[24:]
    out.append(Awkward("huge_header.png", huge, refused=common.TOO_LARGE.format(20000, 9000)))
    return out


def write_awkward(folder) -> dict[str, str]:
    """Writes `awkward_images()` into `folder`: {name: path}."""
    paths = {}
    os.makedirs(str(folder), exist_ok=True)
    for item in awkward_images():
        path = os.path.join(str(folder), item.name)
        with open(path, "wb") as f:
            f.write(item.data)
        paths[item.name] = path
    return paths
