"""Export of G_ema as a SavedModel for TF Serving (DESIGN.md §5): the library behind
`xplore_tf.export`, also used by `xplore_tf.translate` (and meant for `evaluate`).

The SavedModel is written from an explicit `tf.Module` whose `tf.function`s have fixed input
signatures (Keras 3 models saved directly get a float default signature, DESIGN.md §6), with
the cluster statistics baked in as constants, so a served model needs nothing but its folder:

    serving_default   image uint8 [N,H,W,3], cluster_id int32 [N] -> image uint8 [N,S,S,3]
    translate_bytes   image_bytes string [N], cluster_id int32 [N] -> image_bytes string [N]
    clusters          ()                     -> cluster_id int32 [k], size int64 [k], name string [k]
    clusters_batched  rows int32 [N]         -> cluster_id int32 [N,k], size [N,k], name [N,k]

and, beyond fixed clusters (docs/beyond.md; the clustering extractor, PCA and centroids
are in the graph too, so s_src, the statistics of the input's nearest cluster, is found
there; left out, with the reason logged and written into assets.extra/xplore_tf.json,
when the extractor cannot be built here, e.g. its weights file is absent; the two that
take a condition are left out of --condition=onehot models):

    translate_strength   image_bytes [N], cluster_id [N], strength float32 [N]
                         -> image_bytes [N], source_cluster int32 [N]
    translate_mix        image_bytes [N], cluster_weights float32 [N,k]
                         -> image_bytes [N], source_cluster int32 [N]
    reference_condition  reference_bytes string [N,M] -> condition float32 [N,C],
                         nearest_cluster int32 [N], distance [N], relative_distance [N]
    translate_condition  image_bytes [N], condition float32 [N,C] -> image_bytes [N]
    translate_full       image_bytes [N], cluster_weights float32 [N,k]
                         -> image_bytes [N] at each input's own size, source_cluster [N]
    translate_full_condition  image_bytes [N], condition [N,C] -> the same

The two `_full` signatures carry the generator's edit to the input's own resolution
(`xplore_tf/edit.py`): any aligned face in, the same face back at its size.

Names come from `xplore_tf/common/signatures.py`, shared with the client. Preprocessing inside the
graph is the training pipeline's (`data/images.load_image`): a centre square crop
(`--crop_size`, 0 = the shorter side), then a bicubic resize with antialiasing to S x S
(skipped when the crop is already S x S), rounded to uint8. Bad requests fail inside the
graph with InvalidArgumentError (TF Serving: INVALID_ARGUMENT): a cluster id outside [0, k),
different batch sizes of the inputs, an empty image, an undecodable byte string, a strength
or weight outside [0, MAX_STRENGTH] (weights also in sum), an empty reference group, a
non-finite condition.
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

from xplore_tf import checkpoints, io_utils
from xplore_tf import edit as edit_lib
from xplore_tf.clustering import artifacts, contact_sheets, pipeline
from xplore_tf.clustering import space as space_lib
from xplore_tf.common import signatures as sig
from xplore_tf.config import Config
from xplore_tf.features.base import FeatureExtractor
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
    explicit = checkpoint or config.export.checkpoint
    if explicit and not os.path.exists(explicit + ".index"):
        raise FileNotFoundError(
            f"--checkpoint: {explicit!r} is not a checkpoint (no {explicit}.index)"
        )
    if allow_untrained is None:
        allow_untrained = config.export.allow_untrained
    keras.utils.set_random_seed(config.seed)
    with _float32_policy():
        generator = checkpoints.build_generator(config, stats)
    chosen = dataclasses.replace(
        config, export=dataclasses.replace(config.export, checkpoint=explicit or "")
    )
    path = checkpoints.usable_generator(chosen, generator)
    fingerprint = artifacts.clusters_fingerprint(config.clusters_dir)
    if path:
        return LoadedGenerator(
            generator, stats, path, checkpoints.checkpoint_step(path), fingerprint
        )
    if not allow_untrained:
        raise ValueError(
            f"no checkpoint in {config.checkpoint_dir}: train first (python -m xplore_tf.train), "
            "pass --checkpoint, or --allow_untrained to use a freshly initialised generator"
        )
    logging.warning(
        "\n%s\nNO CHECKPOINT: using a FRESHLY INITIALISED generator (--allow_untrained). Its "
        "outputs are noise-like; use it for plumbing tests and benchmarks only.\n%s",
        "!" * 78,
        "!" * 78,
    )
    return LoadedGenerator(generator, stats, "", None, fingerprint)


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


@dataclasses.dataclass(frozen=True)
class ClusteringSpace:
    """What the model needs to place new images in the clustering space, in-graph."""

    extractor: FeatureExtractor  # the clustering stage's, [N,E,E,3] float32 -> [N,D]
    framing: str  # --feature_framing: "crop" | "whole"
    crop_size: int  # the clusters' centre crop (0 = the shorter side)
    l2_after: bool  # --pca_l2


def clustering_space(config: Config, stats: artifacts.ClusterStats) -> ClusteringSpace:
    """The extractor and transform `cluster` used for `stats` (checked: `space.check_same_space`).

    Raises:
        ValueError, FileNotFoundError: flags that differ from the clusters', missing weights.
    """
    space_lib.check_same_space(config, stats)
    with _float32_policy():
        extractor = pipeline.clustering_extractor(config)
    return ClusteringSpace(
        extractor, config.cluster.feature_framing, stats.crop_size, config.cluster.pca_l2
    )


def optional_clustering_space(
    config: Config, stats: artifacts.ClusterStats
) -> tuple[ClusteringSpace | None, str]:
    """(`clustering_space`, "") or (None, why not): export never fails for want of it.

    Without the clustering extractor (its weights file absent here, or feature flags other
    than the clusters') the model still translates into clusters; it only lacks the
    beyond-clusters signatures (`sig.BEYOND_SIGNATURES`), and the log says why.
    """
    try:
        return clustering_space(config, stats), ""
    except (ValueError, FileNotFoundError) as e:
        return None, str(e)


def frame_images(images, *, size: int, crop_size: int = 0, framing: str = "crop"):
    """uint8 [N,H,W,3] -> uint8 [N,size,size,3], in-graph, as the data pipeline frames files.

    `crop`: the centre square of `crop_size` px (0 = the shorter side; `images.load_image`);
    `whole`: the whole image padded with black to a centred square (`extract.load_whole`).
    Then a bicubic resize with antialiasing (skipped when already size x size), rounded: the
    pipeline resizes with Pillow's bicubic, so pixels may differ by a rounding step.
    InvalidArgumentError for an empty image.
    """
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    checks = [
        tf.debugging.assert_positive(shape[1:3], message="image height and width must be > 0")
    ]
    with tf.control_dependencies(checks):
        if framing == "whole":
            side = tf.maximum(h, w)
            square = tf.image.pad_to_bounding_box(
                images, (side - h) // 2, (side - w) // 2, side, side
            )
        else:
            square = centre_square(images, crop_size)
            side = tf.shape(square)[1]

    def resize():
        x = tf.image.resize(
            tf.cast(square, tf.float32), [size, size], method="bicubic", antialias=True
        )
        return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)

    out = tf.cond(tf.equal(side, size), lambda: square, resize)
    return tf.ensure_shape(out, [None, size, size, 3])


def centre_square(images, crop_size: int = 0):
    """uint8 [N,H,W,3] -> [N,side,side,3], side = min(H, W, crop_size if > 0): the part of an
    image the model sees (`frame_images` with framing "crop", before its resize)."""
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    side = tf.minimum(h, w)
    if crop_size > 0:
        side = tf.minimum(side, crop_size)
    top, left = (h - side) // 2, (w - side) // 2
    return images[:, top : top + side, left : left + side, :]


class ServingModule(tf.Module):
    """G_ema + baked-in cluster statistics (+ the clustering space) behind named signatures.

    The exported object: `tf.saved_model.save(module, path, signatures=...)` with
    `signature_functions()`; also called in process by `xplore_tf.translate` and tests.

    The beyond-clusters signatures (docs/beyond.md) exist when `space` is given: they run the
    clustering extractor and PCA in-graph, so s_src is the condition of the input's nearest
    centroid and a group's condition its mean and std (`clustering/space.py`). A model
    conditioned on one-hot ids (`condition="onehot"`) has no reference-group signatures.
    The byte decoder, the generator and the extractor are each one inner `tf.function`
    with a fixed input signature, called by every signature that needs them: the
    SavedModel stores each graph once, not once per signature.
    """

    def __init__(
        self,
        generator: Generator,
        stats: artifacts.ClusterStats,
        *,
        condition: str,
        crop_size: int,
        names: list[str],
        space: ClusteringSpace | None = None,
        edit_base: str = edit_lib.RESIDUAL,
        face_colour: str = edit_lib.NO_CAST,
    ):
        super().__init__(name="xplore_serving")
        from xplore_tf.data import images as images_lib

        k = stats.num_clusters
        size = generator.image_size
        # Tracked here, so the SavedModel holds every weight the functions capture
        # (the Keras models themselves are only referenced from the closures below).
        self.model_variables = list(generator.variables)
        self.extractor_variables = list(space.extractor.model.variables) if space else []
        self.image_size = size
        self.num_clusters = k
        table = np.asarray(
            condition_vector(np.arange(k), stats.centroids, stats.stds, mode=condition),
            np.float32,
        )
        cond_dim = table.shape[1]
        conditions = tf.constant(table, name="cluster_conditions")  # [k, cond_dim]
        sizes = tf.constant(stats.sizes.astype(np.int64), name="cluster_sizes")
        ids = tf.range(k, dtype=tf.int32, name="cluster_ids")
        cluster_names = tf.constant(np.array(names, dtype=object), tf.string)
        empty_pixels = tf.zeros([0, size, size, 3], tf.float32)
        model_image = tf.TensorSpec([size, size, 3], tf.uint8)

        def same_batch(tensor, n, name):
            return tf.debugging.assert_equal(
                tf.shape(tensor)[0], n, message=f"image and {name} must have the same batch size N"
            )

        def check_ids(cluster_id, n):
            """Assertions: InvalidArgumentError at serving time, never garbage output."""
            return [
                same_batch(cluster_id, n, sig.CLUSTER_ID),
                tf.debugging.assert_greater_equal(
                    cluster_id, 0, message=f"cluster_id must be in [0, {k})"
                ),
                tf.debugging.assert_less(cluster_id, k, message=f"cluster_id must be in [0, {k})"),
            ]

        def to_model_input(images):
            """uint8 [N,H,W,3] -> uint8 [N,S,S,3]: centre crop, bicubic resize."""
            return frame_images(images, size=size, crop_size=crop_size)

        # The training pipeline's decoding, in-graph (data/images.py): EXIF orientation,
        # 16-bit, alpha over black; WebP and odd BMPs are refused. string [] -> uint8 [H,W,3].
        decode_one = tf.function(
            images_lib.decode_image_bytes, input_signature=[tf.TensorSpec([], tf.string)]
        )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def decode(image_bytes):
            """string [N] -> model inputs uint8 [N,S,S,3]."""
            return tf.map_fn(
                lambda data: to_model_input(decode_one(data)[tf.newaxis])[0],
                image_bytes,
                fn_output_signature=model_image,
            )

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, size, size, 3], tf.uint8),
                tf.TensorSpec([None, cond_dim], tf.float32),
            ]
        )
        def generate_pixels(images, condition_rows):
            """uint8 [N,S,S,3] under conditions [N,C] -> float32 [N,S,S,3] in [0, 255]."""

            def run():
                x = tf.cast(images, tf.float32) / 127.5 - 1.0
                y = tf.cast(generator((x, condition_rows), training=False), tf.float32)
                return tf.clip_by_value((y + 1.0) * 127.5, 0.0, 255.0)

            # An empty batch never reaches the convolutions (oneDNN's fused instance
            # norm rejects N = 0); it returns an empty result.
            out = tf.cond(tf.shape(images)[0] > 0, run, lambda: empty_pixels)
            return tf.ensure_shape(out, [None, size, size, 3])

        def generate(images, condition_rows):
            """uint8 [N,S,S,3] under conditions [N,C] -> uint8 [N,S,S,3] (as Trainer.translate)."""
            return tf.cast(generate_pixels(images, condition_rows) + 0.5, tf.uint8)

        def encode(images):
            return tf.map_fn(
                tf.io.encode_png, images, fn_output_signature=tf.TensorSpec([], tf.string)
            )

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8, name=sig.IMAGE),
                tf.TensorSpec([None], tf.int32, name=sig.CLUSTER_ID),
            ]
        )
        def serving_default(image, cluster_id):
            # Everything reading cluster_id waits for its checks (a gather would fail first,
            # with TensorFlow's words instead of ours).
            with tf.control_dependencies(check_ids(cluster_id, tf.shape(image)[0])):
                x = to_model_input(image)
                rows = tf.gather(conditions, cluster_id)
            return {sig.IMAGE: generate(x, rows)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES),
                tf.TensorSpec([None], tf.int32, name=sig.CLUSTER_ID),
            ]
        )
        def translate_bytes(image_bytes, cluster_id):
            with tf.control_dependencies(check_ids(cluster_id, tf.shape(image_bytes)[0])):
                images = decode(image_bytes)
                rows = tf.gather(conditions, cluster_id)
            return {sig.IMAGE_BYTES: encode(generate(images, rows))}

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

        self.functions = {
            sig.SERVING_DEFAULT: serving_default,
            sig.TRANSLATE_BYTES: translate_bytes,
            sig.CLUSTERS: clusters,
            sig.CLUSTERS_BATCHED: clusters_batched,
        }
        if space is not None:
            self.functions.update(
                _beyond_clusters_functions(
                    stats,
                    space,
                    condition=condition,
                    conditions=conditions,
                    size=size,
                    decode_one=decode_one,
                    decode=decode,
                    to_model_input=to_model_input,
                    generate=generate,
                    generate_pixels=generate_pixels,
                    crop_size=crop_size,
                    edit_base=edit_base,
                    face_colour=face_colour,
                    encode=encode,
                    check_ids=check_ids,
                    same_batch=same_batch,
                )
            )

    def signature_functions(self) -> dict:
        """{signature name: tf.function}, callable with the signatures' keyword inputs."""
        return dict(self.functions)


def _beyond_clusters_functions(
    stats: artifacts.ClusterStats,
    space: ClusteringSpace,
    *,
    condition: str,
    conditions,
    size: int,
    decode_one,
    decode,
    to_model_input,
    generate,
    generate_pixels,
    crop_size: int,
    edit_base: str,
    face_colour: str,
    encode,
    check_ids,
    same_batch,
) -> dict:
    """The strength, mix and reference-group signatures of `ServingModule` (docs/beyond.md)."""
    k, dim = stats.num_clusters, stats.dim
    cond_dim = int(conditions.shape[1])
    std_from = dim if condition == "mean_std" else None
    extractor = space.extractor
    feature_size = extractor.input_size
    centroids = tf.constant(stats.centroids.astype(np.float32), name="centroids")
    radii = tf.constant(space_lib.cluster_radii(stats.stds), name="cluster_radii")
    pca_mean = tf.constant(stats.pca_mean.astype(np.float32), name="pca_mean")
    pca_matrix = tf.constant(stats.pca_matrix.astype(np.float32), name="pca_matrix")
    bound = sig.MAX_STRENGTH
    model_image = tf.TensorSpec([size, size, 3], tf.uint8)
    feature_image = tf.TensorSpec([feature_size, feature_size, 3], tf.uint8)

    def to_feature_input(images):
        """uint8 [N,H,W,3] -> uint8 [N,E,E,3], framed as the clustering stage frames files."""
        return frame_images(
            images, size=feature_size, crop_size=space.crop_size, framing=space.framing
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def decode_both(image_bytes):
        """string [N] -> (model inputs uint8 [N,S,S,3], feature inputs uint8 [N,E,E,3])."""

        def one(data):
            image = decode_one(data)[tf.newaxis]
            return to_model_input(image)[0], to_feature_input(image)[0]

        return tf.map_fn(one, image_bytes, fn_output_signature=(model_image, feature_image))

    @tf.function(input_signature=[tf.TensorSpec([None, feature_size, feature_size, 3], tf.uint8)])
    def points_of(feature_images):
        """uint8 [N,E,E,3] -> points [N,d] of the clustering space (empty in, empty out)."""

        def run():
            feats = extractor(tf.cast(feature_images, tf.float32))
            return space_lib.to_space_ops(feats, pca_mean, pca_matrix, l2_after=space.l2_after)

        out = tf.cond(tf.shape(feature_images)[0] > 0, run, lambda: tf.zeros([0, dim], tf.float32))
        return tf.ensure_shape(out, [None, dim])

    def source_of(image_bytes):
        """-> (model inputs uint8 [N,S,S,3], each input's nearest cluster [N], its s_src)."""
        images, feature_images = decode_both(image_bytes)
        source = space_lib.nearest_cluster_ops(points_of(feature_images), centroids)
        return images, source, tf.gather(conditions, source)

    def blend(s_src, weights):
        """s_src + sum_i w_i (s_i - s_src) [N,C]."""
        return space_lib.blend_conditions(s_src, weights, conditions, std_from=std_from)

    def translate_blended(image_bytes, weights):
        """Toward s_src + sum_i w_i (s_i - s_src) -> (PNG bytes [N], s_src's cluster [N])."""
        images, source, s_src = source_of(image_bytes)
        blended = blend(s_src, weights)
        return {sig.IMAGE_BYTES: encode(generate(images, blended)), sig.SOURCE_CLUSTER: source}

    def full_resolution(image_bytes, images, target, s_src):
        """PNG bytes [N]: each input's framed square at its own size + the edit (xplore_tf.edit)."""
        if edit_base == edit_lib.DIFFERENCE:
            n = tf.shape(images)[0]
            both = generate_pixels(tf.concat([images, images], 0), tf.concat([target, s_src], 0))
            g_target, g_source = both[:n], both[n:]
        else:
            g_target, g_source = generate_pixels(images, target), None
        delta = edit_lib.model_edit(
            images, g_target, g_source, base=edit_base, face_colour=face_colour
        )

        def one(args):
            data, edit = args
            square = centre_square(decode_one(data)[tf.newaxis], crop_size)[0]
            return tf.io.encode_png(edit_lib.carry_edit(square, edit))

        return tf.map_fn(
            one, (image_bytes, delta), fn_output_signature=tf.TensorSpec([], tf.string)
        )

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES),
            tf.TensorSpec([None], tf.int32, name=sig.CLUSTER_ID),
            tf.TensorSpec([None], tf.float32, name=sig.STRENGTH),
        ]
    )
    def translate_strength(image_bytes, cluster_id, strength):
        n = tf.shape(image_bytes)[0]
        message = f"strength must be in [0, {bound:g}]"
        checks = check_ids(cluster_id, n) + [
            same_batch(strength, n, sig.STRENGTH),
            tf.debugging.assert_greater_equal(strength, 0.0, message=message),
            tf.debugging.assert_less_equal(strength, bound, message=message),
        ]
        with tf.control_dependencies(checks):
            weights = tf.one_hot(cluster_id, k, dtype=tf.float32) * strength[:, tf.newaxis]
        return translate_blended(image_bytes, weights)

    def checked_weights(image_bytes, cluster_weights):
        message = f"cluster_weights must be >= 0 and sum to at most {bound:g} per image"
        checks = [
            same_batch(cluster_weights, tf.shape(image_bytes)[0], sig.CLUSTER_WEIGHTS),
            tf.debugging.assert_greater_equal(cluster_weights, 0.0, message=message),
            tf.debugging.assert_less_equal(
                tf.reduce_sum(cluster_weights, axis=1), bound * (1.0 + 1e-6), message=message
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(cluster_weights)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES),
            tf.TensorSpec([None, k], tf.float32, name=sig.CLUSTER_WEIGHTS),
        ]
    )
    def translate_mix(image_bytes, cluster_weights):
        return translate_blended(image_bytes, checked_weights(image_bytes, cluster_weights))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES),
            tf.TensorSpec([None, k], tf.float32, name=sig.CLUSTER_WEIGHTS),
        ]
    )
    def translate_full(image_bytes, cluster_weights):
        weights = checked_weights(image_bytes, cluster_weights)
        images, source, s_src = source_of(image_bytes)
        out = full_resolution(image_bytes, images, blend(s_src, weights), s_src)
        return {sig.IMAGE_BYTES: out, sig.SOURCE_CLUSTER: source}

    functions = {
        sig.TRANSLATE_STRENGTH: translate_strength,
        sig.TRANSLATE_MIX: translate_mix,
        sig.TRANSLATE_FULL: translate_full,
    }
    if condition == "onehot":
        logging.info(
            "--condition=onehot: no %s/%s/%s signatures (a group has no cluster id)",
            sig.REFERENCE_CONDITION,
            sig.TRANSLATE_CONDITION,
            sig.TRANSLATE_FULL_CONDITION,
        )
        return functions

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name=sig.REFERENCE_BYTES)])
    def reference_condition(reference_bytes):
        """N groups of M encoded images -> their conditions and distances to the clusters."""
        shape = tf.shape(reference_bytes)
        n, m = shape[0], shape[1]
        checks = [
            tf.debugging.assert_equal(
                tf.logical_or(tf.equal(n, 0), m > 0),
                True,
                message="a reference group needs at least one image (reference_bytes [N,M], M >= 1)",
            )
        ]
        with tf.control_dependencies(checks):
            flat = tf.reshape(reference_bytes, [-1])
        feature_images = tf.map_fn(
            lambda data: to_feature_input(decode_one(data)[tf.newaxis])[0],
            flat,
            fn_output_signature=feature_image,
        )
        points = tf.reshape(points_of(feature_images), [n, m, dim])
        mean, std = space_lib.group_statistics_ops(points)
        nearest, distance, relative = space_lib.distances_to_clusters_ops(mean, centroids, radii)
        group = space_lib.group_condition_ops(mean, std, mode=condition)
        return {
            sig.CONDITION: tf.ensure_shape(group, [None, cond_dim]),
            sig.NEAREST_CLUSTER: nearest,
            sig.DISTANCE: distance,
            sig.RELATIVE_DISTANCE: relative,
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES),
            tf.TensorSpec([None, cond_dim], tf.float32, name=sig.CONDITION),
        ]
    )
    def translate_condition(image_bytes, condition):  # noqa: F811 (the input's name)
        checks = [
            same_batch(condition, tf.shape(image_bytes)[0], sig.CONDITION),
            tf.debugging.assert_all_finite(condition, "condition must be finite"),
        ]
        with tf.control_dependencies(checks):
            images = decode(image_bytes)
        return {sig.IMAGE_BYTES: encode(generate(images, condition))}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES),
            tf.TensorSpec([None, cond_dim], tf.float32, name=sig.CONDITION),
        ]
    )
    def translate_full_condition(image_bytes, condition):
        checks = [
            same_batch(condition, tf.shape(image_bytes)[0], sig.CONDITION),
            tf.debugging.assert_all_finite(condition, "condition must be finite"),
        ]
        with tf.control_dependencies(checks):
            images, source, s_src = source_of(image_bytes)
        out = full_resolution(image_bytes, images, condition, s_src)
        return {sig.IMAGE_BYTES: out, sig.SOURCE_CLUSTER: source}

    functions[sig.REFERENCE_CONDITION] = reference_condition
    functions[sig.TRANSLATE_CONDITION] = translate_condition
    functions[sig.TRANSLATE_FULL_CONDITION] = translate_full_condition
    return functions


def serving_module(config: Config, loaded: LoadedGenerator) -> ServingModule:
    """The `tf.Module` that is exported: also callable in process (translate, tests).

    The beyond-clusters signatures are left out, with a warning saying why, when the
    clustering space cannot be rebuilt here (`optional_clustering_space`).
    """
    space, reason = optional_clustering_space(config, loaded.stats)
    if space is None:
        logging.warning(
            "no %s signatures in this model (they run the clustering extractor in-graph): %s",
            "/".join(sig.BEYOND_SIGNATURES),
            reason,
        )
    module = ServingModule(
        loaded.generator,
        loaded.stats,
        condition=config.model.condition,
        crop_size=config.data.crop_size,
        names=cluster_names(config, loaded.stats.num_clusters),
        space=space,
        edit_base=config.export.edit_base,
        face_colour=config.export.face_colour,
    )
    module.beyond_clusters_reason = reason
    return module


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


def _beyond_clusters_metadata(
    config: Config, loaded: LoadedGenerator, module: ServingModule
) -> dict:
    """What assets.extra/xplore_tf.json says of the beyond-clusters signatures."""
    if module.beyond_clusters_reason:
        return {"beyond_clusters_missing": module.beyond_clusters_reason}
    return {
        "max_strength": sig.MAX_STRENGTH,
        "far_from_clusters": sig.FAR_FROM_CLUSTERS,
        "full_resolution": {
            "edit_base": config.export.edit_base,
            "face_colour": config.export.face_colour,
        },
        "clustering_space": {
            "extractor": loaded.stats.extractor,
            "input_size": loaded.stats.image_size,
            "framing": config.cluster.feature_framing,
            "crop_size": loaded.stats.crop_size,
            "blocks": list(config.cluster.feature_blocks),
            "mirror": config.cluster.feature_mirror,
            "pca_dim": loaded.stats.dim,
            "pca_l2": config.cluster.pca_l2,
        },
    }


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
        try:
            tf.saved_model.save(
                module,
                tmp,
                signatures={name_: fn.get_concrete_function() for name_, fn in functions.items()},
            )
        except (tf.errors.OpError, OSError) as e:
            raise OSError(
                f"cannot write the export {final}: {io_utils.write_failure(e)} (disk full or a "
                "file-size limit?); nothing was written there"
            ) from None
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
                **_beyond_clusters_metadata(config, loaded, module),
                "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            },
        )
        os.chmod(tmp, 0o777 & ~io_utils.umask())  # mkdtemp makes it 0700
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
