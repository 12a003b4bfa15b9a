"""The training input pipeline: images with their pseudo-label and a random target cluster.

The stream of samples is a pure function of (seed, sample position): epoch e visits the
images in a stateless shuffle seeded by (seed, e), and each sample's flip and target
cluster come from a stateless draw seeded by (seed, position). Resuming at position P
therefore rebuilds exactly the stream an uninterrupted run would have seen, without
checkpointing a tf.data iterator (which PIL decoding in a numpy_function cannot do).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from xplore_tf.data import images as images_lib


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What the pipeline reads: images relative to `root` and their pseudo-labels."""

    root: str
    images: tuple[str, ...]
    clusters: np.ndarray  # [N] int32 pseudo-labels c_i
    num_clusters: int


def random_target(cluster, num_clusters: int, seed):
    """A target cluster drawn uniformly among the k-1 clusters other than `cluster`.

    The paper draws the target at random per sample; excluding the source cluster means
    every G step asks for a real translation (the cycle term covers the identity mapping).
    """
    import tensorflow as tf

    offset = tf.random.stateless_uniform(
        [], seed=seed, minval=1, maxval=max(num_clusters, 2), dtype=tf.int32
    )
    return (cluster + offset) % num_clusters


def _is_ok(element, ok):
    return ok


def _drop_ok(element, ok):
    return element


def training_dataset(
    data: TrainingData,
    *,
    image_size: int,
    batch_size: int,
    seed: int,
    start_position: int = 0,
    crop_size: int = 0,
    flip: bool = True,
    skip_log: images_lib.SkipLog | None = None,
):
    """An endless tf.data.Dataset of global batches, starting at sample `start_position`.

    Each element is a dict: `image` float32 [B,S,S,3] in [-1,1], `cluster` int32 [B]
    (source pseudo-label), `target` int32 [B] (random other cluster), `position` int64 [B]
    (global sample positions, for exact resume). Unreadable files are skipped (warned once
    per visit) and do not stop training.
    """
    import tensorflow as tf

    n = len(data.images)
    if n == 0:
        raise ValueError(f"{data.root}: no images to train on")
    skip_log = skip_log if skip_log is not None else images_lib.SkipLog()
    paths = [os.path.join(data.root, p) for p in data.images]
    clusters = tf.constant(np.asarray(data.clusters, np.int32))
    start_epoch = start_position // n

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )
        positions = epoch * n + tf.range(n, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((positions, order))

    def _load(index):
        i = int(index)
        try:
            return images_lib.load_image(paths[i], size=image_size, crop_size=crop_size), True
        except images_lib.ImageError as e:  # any decoder failure on this one file
            skip_log.add(data.images[i], e.reason)
            return np.zeros((image_size, image_size, 3), np.uint8), False

    def load(position, index):
        image, ok = tf.numpy_function(_load, [index], (tf.uint8, tf.bool))
        image.set_shape((image_size, image_size, 3))
        ok.set_shape(())
        sample_seed = tf.stack([tf.cast(seed, tf.int64) + 1, position])
        image = tf.cast(image, tf.float32) / 127.5 - 1.0
        if flip:
            do_flip = tf.random.stateless_uniform([], seed=sample_seed) < 0.5
            image = tf.cond(do_flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
        cluster = tf.gather(clusters, index)
        target = random_target(cluster, data.num_clusters, sample_seed + [0, 1])
        return {"image": image, "cluster": cluster, "target": target, "position": position}, ok

    ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_order)
    ds = ds.skip(start_position - start_epoch * n)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(_is_ok).map(_drop_ok)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
