"""Export of G_ema as a SavedModel for TF Serving (DESIGN.md §5): the library behind
`xplore_tf.export`, also used by `xplore_tf.translate` (and meant for `evaluate`).

The SavedModel is written from an explicit `tf.Module` whose `tf.function`s have fixed input
signatures (Keras 3 models saved directly get a float default signature, DESIGN.md §6), with
the cluster statistics baked in as constants, so a served model needs nothing but its folder:

    serving_default   image uint8 [N,H,W,3], cluster_id int32 [N] -> image uint8 [N,S,S,3]
    translate_bytes   image_bytes string [N], cluster_id int32 [N] -> image_bytes string [N]
    clusters          ()                     -> cluster_id int32 [k], size int64 [k], name string [k]
    clusters_batched  rows int32 [N]         -> cluster_id int32 [N,k], size [N,k], name [N,k]

Names come from `serving/signatures.py`, shared with the client. Preprocessing inside the
graph is the training pipeline's (`data/images.load_image`): a centre square crop
(`--crop_size`, 0 = the shorter side), then a bicubic resize with antialiasing to S x S
(skipped when the crop is already S x S), rounded to uint8. Bad requests fail inside the
graph with InvalidArgumentError (TF Serving: INVALID_ARGUMENT): a cluster id outside [0, k),
different batch sizes of image and cluster_id, an empty image, an undecodable byte string.
An empty batch (N = 0) returns N = 0 outputs.

Versions are numeric folders `<export_dir>/<model_name>/<version>/`; a version is written
into a hidden temporary folder beside it and renamed into place, so TF Serving (which
polls the model folder) never sees a half-written model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from serving import signatures as sig
from xplore_tf import checkpoints, io_utils
from xplore_tf.clustering import artifacts, contact_sheets
from xplore_tf.config import Config
from xplore_tf.models.generator import Generator, condition_vector

METADATA = os.path.join("assets.extra", "xplore_tf.json")
PREPROCESSING = (
    "centre square crop (crop_size, 0 = shorter side), bicubic resize with antialiasing to "
    "image_size x image_size (skipped when already that size), rounded to uint8"
)
_VERSION = re.compile(r"^[0-9]+$")
_TEMP = re.compile(r"^\.tmp-[0-9]+-([0-9]+)-")  # .tmp-<version>-<pid>-<random>


@dataclasses.dataclass
class LoadedGenerator:
    """G_ema of a run, ready for inference, with what was used to build it."""

    generator: Generator
    stats: artifacts.ClusterStats
    checkpoint: str  # "" when freshly initialised (--allow_untrained)
    step: int | None  # training step of the checkpoint, when recorded
    clusters_fingerprint: str  # of the clusters folder it was loaded with

    @property
    def untrained(self) -> bool:
        return not self.checkpoint


@dataclasses.dataclass
class ExportResult:
    path: str  # the version folder
    version: int
    checkpoint: str
    step: int | None
    signatures: tuple[str, ...]


@contextlib.contextmanager
def _float32_policy():
    """Builds inference models in float32 even after training set a mixed global policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def load_generator(
    config: Config, checkpoint: str | None = None, *, allow_untrained: bool | None = None
) -> LoadedGenerator:
    """G_ema of `checkpoint` (default: --checkpoint, else the latest in WORKDIR/checkpoints).

    Builds the models of `config` for the run's cluster statistics and restores only the
    generator_ema entry of the training checkpoint. Without any checkpoint this is a
    ValueError unless `allow_untrained` (default: --allow_untrained), which returns a freshly
    initialised generator (seeded by --seed) and logs a loud warning.
    """
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    path = checkpoint or checkpoints.latest(config)
    if path and not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"--checkpoint: {path!r} is not a checkpoint (no {path}.index)")
    if allow_untrained is None:
        allow_untrained = config.export.allow_untrained
    if not path and not allow_untrained:
        raise ValueError(
            f"no checkpoint in {config.checkpoint_dir}: train first (python -m xplore_tf.train), "
            "pass --checkpoint, or --allow_untrained to use a freshly initialised generator"
        )
    fingerprint = (
        checkpoints.check_clusters(
            path,
            config,
            start_over="use the clusters of that run, or train anew on these clusters "
            "(python -m xplore_tf.train --noresume, or a new --workdir)",
        )
        if path
        else artifacts.clusters_fingerprint(config.clusters_dir)
    )
    keras.utils.set_random_seed(config.seed)
    with _float32_policy():
        generator = checkpoints.build_generator(config, stats)
    if not path:
        logging.warning(
            "\n%s\nNO CHECKPOINT: using a FRESHLY INITIALISED generator (--allow_untrained). Its "
            "outputs are noise-like; use it for plumbing tests and benchmarks only.\n%s",
            "!" * 78,
            "!" * 78,
        )
        return LoadedGenerator(generator, stats, "", None, fingerprint)
    checkpoints.restore_generator_ema(generator, path)
    return LoadedGenerator(generator, stats, path, checkpoints.checkpoint_step(path), fingerprint)


def cluster_names(config: Config, num_clusters: int) -> list[str]:
    """Name of every cluster from WORKDIR/clusters/cluster_names.json ("" when unnamed)."""
    names = contact_sheets.read_cluster_names(
        os.path.join(config.clusters_dir, contact_sheets.CLUSTER_NAMES)
    )
    unknown = sorted(c for c in names if not 0 <= c < num_clusters)
    if unknown:
        logging.warning(
            "cluster_names.json names clusters %s outside [0, %d)", unknown, num_clusters
        )
    return [names.get(c, "") for c in range(num_clusters)]


class ServingModule(tf.Module):
    """G_ema + baked-in cluster statistics behind the named signatures.

    The exported object: `tf.saved_model.save(module, path, signatures=...)` with
    `signature_functions()`; also called in process by `xplore_tf.translate` and tests.
    """

    def __init__(
        self,
        generator: Generator,
        stats: artifacts.ClusterStats,
        *,
        condition: str,
        crop_size: int,
        names: list[str],
    ):
        super().__init__(name="xplore_serving")
        k = stats.num_clusters
        size = generator.image_size
        # Tracked here, so the SavedModel holds every weight the functions capture
        # (the Keras model itself is only referenced from the closures below).
        self.model_variables = list(generator.variables)
        self.image_size = size
        self.num_clusters = k
        table = np.asarray(
            condition_vector(np.arange(k), stats.centroids, stats.stds, mode=condition),
            np.float32,
        )
        conditions = tf.constant(table, name="cluster_conditions")  # [k, cond_dim]
        sizes = tf.constant(stats.sizes.astype(np.int64), name="cluster_sizes")
        ids = tf.range(k, dtype=tf.int32, name="cluster_ids")
        cluster_names = tf.constant(np.array(names, dtype=object), tf.string)

        def check_ids(cluster_id, n):
            """Assertions: InvalidArgumentError at serving time, never garbage output."""
            return [
                tf.debugging.assert_equal(
                    tf.shape(cluster_id)[0],
                    n,
                    message="image and cluster_id must have the same batch size N",
                ),
                tf.debugging.assert_greater_equal(
                    cluster_id, 0, message=f"cluster_id must be in [0, {k})"
                ),
                tf.debugging.assert_less(cluster_id, k, message=f"cluster_id must be in [0, {k})"),
            ]

        def to_model_input(images):
            """uint8 [N,H,W,3] -> uint8 [N,S,S,3]: centre crop, bicubic resize."""
            shape = tf.shape(images)
            h, w = shape[1], shape[2]
            checks = [
                tf.debugging.assert_positive(
                    shape[1:3], message="image height and width must be > 0"
                )
            ]
            with tf.control_dependencies(checks):
                side = tf.minimum(h, w)
                if crop_size > 0:
                    side = tf.minimum(side, crop_size)
            top, left = (h - side) // 2, (w - side) // 2
            crop = images[:, top : top + side, left : left + side, :]

            def resize():
                x = tf.image.resize(
                    tf.cast(crop, tf.float32), [size, size], method="bicubic", antialias=True
                )
                return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)

            out = tf.cond(tf.equal(side, size), lambda: crop, resize)
            return tf.ensure_shape(out, [None, size, size, 3])

        def translate(images, cluster_id):
            """uint8 [N,S,S,3] into clusters [N] -> uint8 [N,S,S,3] (as Trainer.translate)."""

            def run():
                x = tf.cast(images, tf.float32) / 127.5 - 1.0
                y = generator((x, tf.gather(conditions, cluster_id)), training=False)
                y = tf.cast(y, tf.float32)
                return tf.cast(tf.clip_by_value((y + 1.0) * 127.5 + 0.5, 0.0, 255.0), tf.uint8)

            # An empty batch never reaches the convolutions (oneDNN's fused instance
            # norm rejects N = 0); it returns an empty result.
            out = tf.cond(
                tf.shape(images)[0] > 0,
                run,
                lambda: tf.zeros([0, size, size, 3], tf.uint8),
            )
            return tf.ensure_shape(out, [None, size, size, 3])

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8, name=sig.IMAGE),
                tf.TensorSpec([None], tf.int32, name=sig.CLUSTER_ID),
            ]
        )
        def serving_default(image, cluster_id):
            with tf.control_dependencies(check_ids(cluster_id, tf.shape(image)[0])):
                x = to_model_input(image)
            return {sig.IMAGE: translate(x, cluster_id)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES),
                tf.TensorSpec([None], tf.int32, name=sig.CLUSTER_ID),
            ]
        )
        def translate_bytes(image_bytes, cluster_id):
            def decode(data):
                # The training pipeline's decoding, in-graph (data/images.py): EXIF
                # orientation, 16-bit, alpha over black; WebP and odd BMPs are refused.
                from xplore_tf.data import images as images_lib

                image = images_lib.decode_image_bytes(data)
                return to_model_input(image[tf.newaxis])[0]

            with tf.control_dependencies(check_ids(cluster_id, tf.shape(image_bytes)[0])):
                images = tf.map_fn(
                    decode,
                    image_bytes,
                    fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
                )
            out = translate(images, cluster_id)
            encoded = tf.map_fn(
                tf.io.encode_png, out, fn_output_signature=tf.TensorSpec([], tf.string)
            )
            return {sig.IMAGE_BYTES: encoded}

        @tf.function(input_signature=[])
        def clusters():
            return {
                sig.CLUSTER_ID: tf.identity(ids),
                sig.SIZE: tf.identity(sizes),
                sig.NAME: tf.identity(cluster_names),
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name=sig.ROWS)])
        def clusters_batched(rows):
            """The cluster list once per element of `rows` (values ignored): [N,k] outputs.

            Batchable under TF Serving's --enable_batching, which needs an input and outputs
            with a batch dimension; nothing here can fail, so it never fails a batch.
            """
            n = tf.shape(rows)[0]
            return {
                sig.CLUSTER_ID: tf.tile(ids[tf.newaxis], [n, 1]),
                sig.SIZE: tf.tile(sizes[tf.newaxis], [n, 1]),
                sig.NAME: tf.tile(cluster_names[tf.newaxis], [n, 1]),
            }

        self.serving_default = serving_default
        self.translate_bytes = translate_bytes
        self.clusters = clusters
        self.clusters_batched = clusters_batched

    def signature_functions(self) -> dict:
        """{signature name: tf.function}, callable with the signatures' keyword inputs."""
        return {
            sig.SERVING_DEFAULT: self.serving_default,
            sig.TRANSLATE_BYTES: self.translate_bytes,
            sig.CLUSTERS: self.clusters,
            sig.CLUSTERS_BATCHED: self.clusters_batched,
        }


def serving_module(config: Config, loaded: LoadedGenerator):
    """The `tf.Module` that is exported: also callable in process (translate, tests)."""
    return ServingModule(
        loaded.generator,
        loaded.stats,
        condition=config.model.condition,
        crop_size=config.data.crop_size,
        names=cluster_names(config, loaded.stats.num_clusters),
    )


def existing_versions(model_dir: str) -> list[int]:
    """Numeric version folders of a model folder, ascending (temporary folders ignored)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(model_dir)
        if _VERSION.match(name) and os.path.isdir(os.path.join(model_dir, name))
    )


def next_version(model_dir: str) -> int:
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def version_of_checkpoint(config: Config, checkpoint: str) -> str | None:
    """The newest export version folder made from `checkpoint`, or None."""
    model_dir = os.path.join(config.export_base_dir, config.export.model_name)
    for version in reversed(existing_versions(model_dir)):
        path = os.path.join(model_dir, str(version))
        try:
            with open(os.path.join(path, METADATA)) as f:
                if json.load(f).get("checkpoint") == checkpoint:
                    return path
        except (OSError, ValueError):
            continue
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_orphaned_temp_dirs(model_dir: str) -> None:
    """Removes the temporary folders of exports whose process died (e.g. kill -9)."""
    for name in os.listdir(model_dir):
        match = _TEMP.match(name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def export(
    config: Config, *, checkpoint: str | None = None, version: int | None = None
) -> ExportResult:
    """Writes G_ema of the run as `<export_base_dir>/<model_name>/<version>/`.

    `version` (default --export_version; 0 = next) must not exist yet. Returns where it went.
    """
    name = config.export.model_name
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ValueError(f"--model_name: {name!r} is not a folder name")
    loaded = load_generator(config, checkpoint)
    module = serving_module(config, loaded)
    model_dir = os.path.join(config.export_base_dir, name)
    version = version or config.export.version or next_version(model_dir)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise ValueError(
            f"{final} exists: versions are never overwritten; pass --export_version=0 (next) "
            "or a new number"
        )
    os.makedirs(model_dir, exist_ok=True)
    _remove_orphaned_temp_dirs(model_dir)
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{version}-{os.getpid()}-")
    functions = module.signature_functions()
    try:
        tf.saved_model.save(
            module,
            tmp,
            signatures={name_: fn.get_concrete_function() for name_, fn in functions.items()},
        )
        io_utils.write_json(
            os.path.join(tmp, METADATA),
            {
                "model_name": name,
                "version": version,
                "image_size": loaded.generator.image_size,
                "num_clusters": loaded.stats.num_clusters,
                "condition": config.model.condition,
                "crop_size": config.data.crop_size,
                "preprocessing": PREPROCESSING,
                "checkpoint": loaded.checkpoint,
                "step": loaded.step,
                "clusters_fingerprint": loaded.clusters_fingerprint,
                "untrained": loaded.untrained,
                "signatures": sorted(functions),
                "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            },
        )
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        os.rename(tmp, final)  # atomic; fails if the version appeared meanwhile
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    logging.info("exported %s (checkpoint %s)", final, loaded.checkpoint or "none: untrained")
    return ExportResult(
        path=final,
        version=version,
        checkpoint=loaded.checkpoint,
        step=loaded.step,
        signatures=tuple(sorted(functions)),
    )
