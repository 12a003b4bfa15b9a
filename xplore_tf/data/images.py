"""Finding and decoding face images robustly, for every stage.

A folder of real photos always holds something odd: a grayscale scan, a PNG with alpha,
a phone picture stored sideways with an EXIF orientation tag, a truncated download, a
stray text file named .jpg. Each is either normalised (RGB, upright) or skipped with a
warning and counted, so a run never dies after minutes of work on one bad file.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence

import numpy as np
from absl import logging
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(root: str) -> list[str]:
    """Image files below `root` (recursive), as sorted POSIX paths relative to `root`."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"images folder {root!r} does not exist or is not a folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                rel = os.path.relpath(os.path.join(folder, name), root)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def center_crop_box(width: int, height: int, crop_size: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) of a centred square; crop_size 0 = the shorter side."""
    side = min(width, height) if crop_size <= 0 else min(crop_size, width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def load_image(path: str, *, size: int, crop_size: int = 0) -> np.ndarray:
    """Decodes one file to uint8 RGB [size, size, 3]: EXIF-upright, centre-cropped, resized.

    Raises OSError/ValueError (from PIL) for corrupt, truncated or non-image files.
    """
    with Image.open(path) as im:
        im.load()  # decode fully now: truncated files fail here, not later
        im = ImageOps.exif_transpose(im)
        if im.mode != "RGB":
            # Palette and alpha images go through RGBA so transparent pixels become black
            # rather than whatever colour the file stored under them.
            if im.mode in ("P", "PA", "LA", "RGBA"):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (0, 0, 0, 255))
                im = Image.alpha_composite(background, im)
            im = im.convert("RGB")
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
):
    """A tf.data.Dataset of (index int64, image uint8 [size,size,3]) for readable files.

    Decoding runs in parallel inside tf.data (PIL releases the GIL while decoding); a file
    that fails to decode is logged to `skip_log` and filtered out, keeping order otherwise.
    """
    import tensorflow as tf

    skip_log = skip_log if skip_log is not None else SkipLog()
    blank = np.zeros((size, size, 3), np.uint8)

    def _load(index: np.ndarray) -> tuple[np.ndarray, bool]:
        rel = rel_paths[int(index)]
        try:
            return load_image(os.path.join(root, rel), size=size, crop_size=crop_size), True
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            skip_log.add(rel, f"{type(e).__name__}: {e}")
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
