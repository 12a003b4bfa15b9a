"""Runs an extractor over a list of image files, batch by batch, with progress output.

Framing (what part of each image the extractor sees), `--feature_framing`:
  - `crop`: the centre square of `--crop_size` px (0 = the shorter side), as the paper
    crops CelebA's 178x218 aligned faces to 178x178 (default);
  - `whole`: the whole image, padded with black to a square (centred): nothing is cut, so
    the top of the head (hair, hats, baldness) stays in view. On celeba10k it found more
    attributes than the centre crop (docs/experiments/2026-12-04-discovery.md).
Both then resize (bicubic) to the extractor's input side.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import numpy as np
from absl import logging
from PIL import Image

from xplore_tf.common import pixels
from xplore_tf.data import images as images_lib
from xplore_tf.features.base import FeatureExtractor

FRAMINGS = ("crop", "whole")


def load_whole(path: str, *, size: int) -> np.ndarray:
    """One file -> uint8 [size, size, 3]: the whole image padded with black to a centred
    square, then resized (bicubic). Decoding as everywhere (`pixels.read_rgb`).

    Raises:
        ImageError: the file cannot be decoded (one line naming it).
    """
    im = Image.fromarray(pixels.read_rgb(path))
    side = max(im.width, im.height)
    if im.width != im.height:
        square = Image.new("RGB", (side, side))
        square.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
        im = square
    if side != size:
        im = im.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8)


def framed_dataset(
    root: str,
    rel_paths: Sequence[str],
    *,
    size: int,
    crop_size: int = 0,
    framing: str = "crop",
    skip_log: images_lib.SkipLog | None = None,
):
    """tf.data of (index int64, image uint8 [size, size, 3]) for readable files, in order.

    `crop` is `images.image_dataset`; `whole` decodes the same way and pads instead of
    cropping. Unreadable files are logged to `skip_log` and left out.

    Raises:
        ValueError: an unknown framing.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"--feature_framing: unknown {framing!r}; expected one of {FRAMINGS}")
    return images_lib.image_dataset(
        root,
        rel_paths,
        size=size,
        crop_size=crop_size,
        skip_log=skip_log,
        load=functools.partial(load_whole, size=size) if framing == "whole" else None,
    )


def extract_features(
    extractor: FeatureExtractor,
    root: str,
    rel_paths: Sequence[str],
    *,
    crop_size: int = 0,
    framing: str = "crop",
    batch_size: int = 32,
    skip_log: images_lib.SkipLog | None = None,
    log_every_s: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Features of every readable image, framed by `framing` (see the module doc).

    Returns (kept [M] int64 indices into rel_paths, features [M, D] float32, timing dict
    with extract_seconds and images_per_second). Unreadable files are skipped (see
    `images.image_dataset`) and absent from `kept`.
    """
    import tensorflow as tf

    ds = framed_dataset(
        root,
        rel_paths,
        size=extractor.input_size,
        crop_size=crop_size,
        framing=framing,
        skip_log=skip_log,
    )
    ds = ds.batch(batch_size).prefetch(2)

    @tf.function(reduce_retracing=True, autograph=False)
    def _features(images):
        return extractor(tf.cast(images, tf.float32))

    start = time.perf_counter()
    kept, feats = _extract_batches(ds, _features, total=len(rel_paths), log_every_s=log_every_s)
    seconds = time.perf_counter() - start
    if not feats:
        return (
            np.zeros((0,), np.int64),
            np.zeros((0, extractor.feature_dim), np.float32),
            {
                "extract_seconds": seconds,
                "images_per_second": 0.0,
            },
        )
    kept_arr = np.concatenate(kept).astype(np.int64)
    return (
        kept_arr,
        np.concatenate(feats),
        {
            "extract_seconds": seconds,
            "images_per_second": len(kept_arr) / max(seconds, 1e-9),
        },
    )


def _extract_batches(
    ds, features: Callable, *, total: int, log_every_s: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """([index batch [B] int64], [feature batch [B, D] float32]) of every batch of `ds`.

    `ds` yields (indices into the listing, images) batches in order; progress (images/s,
    ETA of the `total` listed) is logged at most every `log_every_s` seconds.
    """
    kept, feats = [], []
    start = last_log = time.perf_counter()
    done = 0
    for index, batch in ds:
        feats.append(features(batch).numpy().astype(np.float32))
        kept.append(index.numpy())
        done = int(index.numpy()[-1]) + 1
        now = time.perf_counter()
        if now - last_log >= log_every_s:
            rate = sum(len(k) for k in kept) / (now - start)
            eta = (total - done) / max(rate, 1e-9)
            logging.info(
                "features: %d/%d images, %.1f images/s, ETA %.0f s", done, total, rate, eta
            )
            last_log = now
    return kept, feats
