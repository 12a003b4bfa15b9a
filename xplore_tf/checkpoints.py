"""The run's networks and their checkpoints, shared by training, export, translate and evaluate.

Imported by `train_step`, `train_lib` and `export_lib`, never importing them: it builds G
and D for a config and the run's cluster statistics, names their variables for `tf.train.Checkpoint`,
and ties every checkpoint to the clusters it was trained on.

A checkpoint stores the fingerprint of the cluster artifacts (`artifacts.clusters_fingerprint`)
beside the weights. A generator conditioned on one set of cluster statistics means nothing
with another (cluster 7 is another attribute after re-clustering, and k may have changed), so
resuming, exporting, translating or evaluating against different clusters is refused with one
line that names both fingerprints (`ClusterMismatchError`).
"""

from __future__ import annotations

import math
import re

from xplore_tf import checkpoint_files
from xplore_tf.clustering import artifacts
from xplore_tf.config import Config
from xplore_tf.models.discriminator import Discriminator
from xplore_tf.models.generator import Generator

# Checkpoint key of the fingerprint variable (tf.train.Checkpoint's naming of `fingerprint=`).
FINGERPRINT_KEY = "clusters_fingerprint/.ATTRIBUTES/VARIABLE_VALUE"
STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


class ClusterMismatchError(ValueError):
    """A checkpoint was trained on other clusters than the run's clusters folder holds."""


def discriminator_downsamplings(config: Config) -> int:
    """--d_num_down, or log2(image_size) - 1 when it is 0 (StarGAN's depth)."""
    m = config.model
    if m.d_num_down:
        return m.d_num_down
    return max(1, int(math.log2(m.image_size)) - 1)


def build_generator(config: Config, stats: artifacts.ClusterStats) -> Generator:
    """G for these cluster statistics, built (weights created) but not trained."""
    m = config.model
    generator = Generator(
        m.image_size,
        base_channels=m.g_channels,
        num_res_blocks=m.g_res_blocks,
        mlp_depth=m.mlp_depth,
        mlp_hidden=m.mlp_hidden,
        condition=m.condition,
        stats_dim=stats.dim,
        num_clusters=stats.num_clusters,
        upsample=m.upsample,
        output_mode=m.output_mode,
        skip_connections=m.skip_connections,
        skip_levels=m.skip_levels,
        hf_bypass=m.hf_bypass,
        decoder_norm=m.decoder_norm,
        encoder_norm=m.encoder_norm,
        name="generator",
    )
    generator.build(((None, m.image_size, m.image_size, 3), (None, generator.condition_dim)))
    return generator


def build_discriminator(config: Config, stats: artifacts.ClusterStats) -> Discriminator:
    """D (PatchGAN critic + k-way cluster head), built but not trained."""
    m = config.model
    discriminator = Discriminator(
        m.image_size,
        num_clusters=stats.num_clusters,
        base_channels=m.d_channels,
        num_down=discriminator_downsamplings(config),
        max_channels=m.d_max_channels,
        name="discriminator",
    )
    discriminator.build((None, m.image_size, m.image_size, 3))
    return discriminator


def variables_by_path(model) -> dict:
    """{variable path: variable} of every weight and state of a Keras model.

    tf.train.Checkpoint does not see Keras 3 sublayers kept in Python lists, nor the
    SeedGenerator states of the noise layers or the spectral-norm power-iteration vectors,
    so models are checkpointed as explicit, name-keyed variable maps. Export and translate
    restore G_ema through the same map.
    """
    # Keys: position in model.variables (stable for an architecture) + the path, minus the
    # process-global counters Keras puts in SeedGenerator names.
    return {
        f"{i:04d}.{re.sub(r'seed_generator_[0-9]+', 'seed_generator', v.path).replace('/', '.')}": v
        for i, v in enumerate(model.variables)
    }


def checkpoint_step(path: str) -> int | None:
    """Training step recorded in a checkpoint, or None when it has none.

    Raises the damage errors of `checkpoint_files.read_tensor` for unreadable files.
    """
    value = checkpoint_files.read_tensor(path, STEP_KEY)
    return None if value is None else int(value)


def checkpoint_fingerprint(path: str) -> str | None:
    """Cluster fingerprint recorded in a checkpoint; None for checkpoints that predate it.

    Raises the damage errors of `checkpoint_files.read_tensor` for unreadable files (a
    damaged checkpoint never passes for an old one).
    """
    value = checkpoint_files.read_tensor(path, FINGERPRINT_KEY)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def check_clusters(checkpoint: str, config: Config, *, start_over: str) -> str:
    """The run's cluster fingerprint, after checking `checkpoint` was trained on it.

    Raises:
        ClusterMismatchError: the checkpoint records another fingerprint; the message names
            both and `start_over` (what the user can do instead).
    """
    current = artifacts.clusters_fingerprint(config.clusters_dir)
    recorded = checkpoint_fingerprint(checkpoint)
    if recorded is not None and recorded != current:
        raise ClusterMismatchError(
            f"{checkpoint} was trained on clusters {recorded} but {config.clusters_dir} now "
            f"holds clusters {current} (re-clustered since?); {start_over}"
        )
    return current


def restore_generator_ema(generator: Generator, checkpoint: str) -> None:
    """Loads only the generator_ema entry of a training checkpoint into `generator`.

    Raises:
        ValueError: the checkpoint's G_ema does not fit the generator the flags build.
    """
    import tensorflow as tf

    try:
        status = tf.train.Checkpoint(generator_ema=variables_by_path(generator)).restore(
            checkpoint_files.readable(checkpoint)
        )
        status.expect_partial()  # only G_ema is wanted, not D, G or the optimizers
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise mismatch_error(checkpoint, "its G_ema does not match the generator", e) from None


def mismatch_error(checkpoint: str, what: str, error: Exception, hint: str = "") -> ValueError:
    """One line for a checkpoint that does not fit the models the flags build: names the
    checkpoint, the model flags to compare and TensorFlow's first line (shortened)."""
    first = str(error).strip().splitlines()[0][:200]
    return ValueError(
        f"{checkpoint}: {what} these flags build (check --image_size, --g_channels, "
        "--g_res_blocks, --mlp_depth, --mlp_hidden, --condition, --upsample, --output_mode, "
        f"--skip_connections, --skip_levels, --hf_bypass, --d_channels, --d_num_down against the training run"
        f"{hint}): {first}"
    )


def usable_generator(config: Config, generator: Generator) -> str | None:
    """Restores G_ema into `generator` from --checkpoint, else from the newest checkpoint
    of WORKDIR/checkpoints that is whole and was trained on the run's clusters; returns it
    (None: the folder holds no checkpoint file at all).

    Newer checkpoints whose files are damaged are skipped with a warning naming each.

    Raises:
        ValueError: the folder holds checkpoint files but none can be read (one line naming
            each and why), or --checkpoint cannot be read.
        ClusterMismatchError, ValueError: a checkpoint of other clusters or other models.
    """
    from absl import logging

    def accept(prefix: str) -> None:
        check_clusters(prefix, config, start_over="pass --checkpoint= of this run's training")
        restore_generator_ema(generator, prefix)

    if config.export.checkpoint:
        damage = checkpoint_files.damage_errors()
        try:
            accept(config.export.checkpoint)
        except damage as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(
                f"--checkpoint={config.export.checkpoint} cannot be read: {first}"
            ) from None
        return config.export.checkpoint
    found, skipped = checkpoint_files.newest(config.checkpoint_dir, accept)
    for prefix, why in skipped:
        logging.warning("skipping checkpoint %s: %s", prefix, why)
    if found is None and checkpoint_files.holds_work(config.checkpoint_dir):
        raise ValueError(
            checkpoint_files.no_checkpoint_error(
                config.checkpoint_dir, skipped, "pass --checkpoint= or train again"
            )
        )
    return found
