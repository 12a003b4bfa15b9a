"""The generator as the evaluation calls it: G_ema of a checkpoint as plain numpy functions.

`checkpoint_generator_fns` conditions G exactly as the exported model does (the cluster
table's rows, `space.blend_conditions` for strengths); `translate_all` runs any of these
functions batch by batch and checks what it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from absl import logging

from xplore_tf.config import Config

# translate_fn(images uint8 [N,S,S,3], cluster_ids int [N]) -> uint8 [N,S,S,3]
TranslateFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
# strength_fn(images uint8 [N,S,S,3], cluster_ids int [N], strengths float [N],
#             source_ids int [N]) -> uint8 [N,S,S,3]: condition s_src + alpha (s_t - s_src)
# with s_src = the condition of each input's own cluster source_ids (docs/guide/beyond_clusters.md).
StrengthFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# condition_fn(images uint8 [N,S,S,3], conditions float32 [N,C]) -> uint8 [N,S,S,3]: G under
# any condition laid out as the cluster table's rows (a reference group's, a blend).
ConditionFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def checkpoint_translate_fn(
    config: Config, checkpoint: str, *, batch_size: int = 32
) -> tuple[TranslateFn, int | None]:
    """G_ema of `checkpoint` as a translate_fn (no noise at inference), and its step."""
    fns = checkpoint_generator_fns(config, checkpoint, batch_size=batch_size)
    return fns.translate, fns.step


class GeneratorFns(NamedTuple):
    """G_ema of a checkpoint, as the evaluation calls it."""

    translate: TranslateFn
    strength: StrengthFn
    condition: ConditionFn
    step: int | None
    checkpoint: str  # the one restored


def checkpoint_generator_fns(
    config: Config, checkpoint: str | None, *, batch_size: int = 32
) -> GeneratorFns:
    """G_ema of `checkpoint` (None: --checkpoint, else the run's newest readable one, as
    `export_lib.load_generator`) as a translate_fn, a strength_fn and a condition_fn, with
    its step and path.

    All condition G as the exported model does: translate_fn on the cluster's row of the
    condition table, strength_fn on `space.blend_conditions` (alpha = 0 gives exactly the
    source row, alpha = 1 exactly the target row), condition_fn on the conditions given.
    Cluster ids outside [0, k) and strengths outside [0, MAX_STRENGTH] are ValueErrors.
    """
    import tensorflow as tf

    from xplore_tf import export_lib
    from xplore_tf.clustering import space
    from xplore_tf.common import signatures as sig
    from xplore_tf.models.generator import condition_vector

    loaded = export_lib.load_generator(config, checkpoint, allow_untrained=False)
    generator, stats = loaded.generator, loaded.stats
    mode = config.model.condition
    k = stats.num_clusters
    table = tf.constant(
        np.asarray(condition_vector(np.arange(k), stats.centroids, stats.stds, mode=mode)),
        tf.float32,
    )
    std_from = stats.dim if mode == "mean_std" else None

    @tf.function(reduce_retracing=True, autograph=False)
    def _generate(images, conditions):
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        y = generator((x, conditions), training=False)
        return tf.cast(tf.clip_by_value((y + 1.0) * 127.5 + 0.5, 0.0, 255.0), tf.uint8)

    def check_ids(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int32)
        if ids.size and (ids.min() < 0 or ids.max() >= k):
            raise ValueError(f"cluster ids must be in [0, {k})")
        return ids

    def run(images: np.ndarray, conditions) -> np.ndarray:
        return np.concatenate(
            [
                _generate(
                    tf.constant(images[i : i + batch_size]), conditions[i : i + batch_size]
                ).numpy()
                for i in range(0, len(images), batch_size)
            ]
        )

    def translate(images: np.ndarray, cluster_ids: np.ndarray) -> np.ndarray:
        return run(images, tf.gather(table, check_ids(cluster_ids)))

    def strength(images, cluster_ids, strengths, source_ids) -> np.ndarray:
        alphas = np.asarray(strengths, np.float32)
        if alphas.size and not (
            np.isfinite(alphas).all() and 0 <= alphas.min() and alphas.max() <= sig.MAX_STRENGTH
        ):
            raise ValueError(f"strengths must be in [0, {sig.MAX_STRENGTH:g}]")
        source = tf.gather(table, check_ids(source_ids))
        weights = tf.one_hot(check_ids(cluster_ids), k) * alphas[:, None]
        return run(images, space.blend_conditions(source, weights, table, std_from=std_from))

    def condition(images, conditions) -> np.ndarray:
        return run(images, tf.constant(conditions, tf.float32))

    return GeneratorFns(translate, strength, condition, loaded.step, loaded.checkpoint)


def translate_all(
    translate_fn: TranslateFn | StrengthFn,
    images: np.ndarray,
    clusters: np.ndarray,
    *,
    batch_size: int,
    extra: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Runs translate_fn batch by batch and checks its output: uint8, same shape as input.

    `extra` per-image arrays [N] (a StrengthFn's strengths and source ids) are sliced
    alongside and passed after the cluster ids.
    """
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        more = [np.asarray(a)[i : i + batch_size] for a in extra]
        y = np.asarray(translate_fn(x, np.asarray(clusters[i : i + batch_size], np.int32), *more))
        if y.shape != x.shape or y.dtype != np.uint8:
            raise ValueError(
                f"translate_fn returned {y.dtype} {y.shape} for uint8 {x.shape}; expected the same"
            )
        out.append(y)
    return np.concatenate(out) if out else images[:0].copy()


class Progress:
    """Periodic log line with images/s and ETA for a translation loop of `total` images."""

    def __init__(self, total: int, every_s: float = 15.0):
        self.total, self.done, self.every_s = total, 0, every_s
        self.start = self.last = time.perf_counter()

    def add(self, n: int, what: str) -> None:
        """Counts n more translations (`what`: into which cluster, for the log)."""
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every_s or self.done >= self.total:
            rate = self.done / max(now - self.start, 1e-9)
            logging.info(
                "evaluation: %d/%d translations (%s), %.1f images/s, ETA %.0f s",
                self.done,
                self.total,
                what,
                rate,
                (self.total - self.done) / max(rate, 1e-9),
            )
            self.last = now


__all__ = [
    "ConditionFn",
    "GeneratorFns",
    "Progress",
    "StrengthFn",
    "TranslateFn",
    "checkpoint_generator_fns",
    "checkpoint_translate_fn",
    "translate_all",
]
