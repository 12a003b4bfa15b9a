"""Runs an extractor over a list of image files, batch by batch, with progress output."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from absl import logging

from xplore_tf.data import images as images_lib
from xplore_tf.features.base import FeatureExtractor


def extract_features(
    extractor: FeatureExtractor,
    root: str,
    rel_paths: Sequence[str],
    *,
    crop_size: int = 0,
    batch_size: int = 32,
    skip_log: images_lib.SkipLog | None = None,
    log_every_s: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Features of every readable image.

    Returns (kept [M] int64 indices into rel_paths, features [M, D] float32, timing dict).
    Unreadable files are skipped (see `images.image_dataset`) and absent from `kept`.
    """
    import tensorflow as tf

    ds = images_lib.image_dataset(
        root, rel_paths, size=extractor.input_size, crop_size=crop_size, skip_log=skip_log
    )
    ds = ds.batch(batch_size).prefetch(2)

    @tf.function(reduce_retracing=True)
    def _features(images):
        return extractor(tf.cast(images, tf.float32))

    kept, feats = [], []
    total = len(rel_paths)
    start = last_log = time.perf_counter()
    done = 0
    for index, batch in ds:
        feats.append(_features(batch).numpy().astype(np.float32))
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
