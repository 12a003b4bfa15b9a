"""The exported object: `ServingModule`, G_ema + the cluster statistics behind named signatures.

Shaped as TensorFlow Model Garden's `ExportModule` (official/core/export_base.py): the
constructor only stores state, every serving signature is a method of the same name, and
`signatures()` maps each signature name to that method traced as a concrete function for
`tf.saved_model.save(module, path, signatures=module.signatures())`.

The methods are traced for fixed input signatures (Keras 3 models saved directly get a
float default signature), with the cluster statistics baked in as constants, so a served
model needs nothing but its folder:

    serving_default   image uint8 [N,H,W,3], cluster_id int32 [N] -> image uint8 [N,S,S,3]
    translate_bytes   image_bytes string [N], cluster_id int32 [N] -> image_bytes string [N]
    clusters          ()                     -> cluster_id int32 [k], size int64 [k], name string [k]
    clusters_batched  rows int32 [N]         -> cluster_id int32 [N,k], size [N,k], name [N,k]

and, beyond fixed clusters (docs/guide/beyond_clusters.md; the clustering extractor, PCA and
centroids are in the graph too, so s_src, the statistics of the input's nearest cluster, is found
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
    mix_condition        image_bytes [N], cluster_weights [N,k], keep_clusters float32 [N,k]
                         -> condition [N,C], source_cluster [N]
    shared_condition     image_bytes [N], condition [N,C], strength [N]
                         -> condition [N,C], source_cluster [N]

Every `tf.function` here is traced with `autograph=False`: the graph code branches and loops
with TensorFlow's own ops (`tf.cond`, `tf.map_fn`, `tf.while_loop`), so AutoGraph's
rewriting of every Python function it calls would add tracing time and nothing else; a
Python `if` on a tensor fails at trace time instead of being converted.

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

Also here: the in-graph framing of images as the data pipeline frames files
(`frame_images`, `centre_square`) and what the beyond-clusters signatures need to place new
images in the clustering space (`ClusteringSpace`).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from absl import logging

from xplore_tf import edit as edit_lib
from xplore_tf.clustering import artifacts
from xplore_tf.clustering import space as space_lib
from xplore_tf.common import signatures as sig
from xplore_tf.features.base import FeatureExtractor
from xplore_tf.models.generator import Generator, condition_vector


@dataclasses.dataclass(frozen=True)
class ClusteringSpace:
    """What the model needs to place new images in the clustering space, in-graph."""

    extractor: FeatureExtractor  # the clustering stage's, [N,E,E,3] float32 -> [N,D]
    framing: str  # --feature_framing: "crop" | "whole"
    crop_size: int  # the clusters' centre crop (0 = the shorter side)
    l2_after: bool  # --pca_l2


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


def shared_graph(input_signature):
    """Decorator: a helper method of `ServingModule` run as one graph shared by the signatures.

    `input_signature(module)` gives its TensorSpecs (shapes depend on the model: S, k, C, E).
    The method is traced once per module for them, outside any graph being built
    (`tf.init_scope`), and every call is a call of that concrete function: the SavedModel
    stores the graph once, not once per signature. The `tf.function` is kept out of the
    module's attributes, so it is not saved as a function of its own.
    """

    def decorate(method):
        function = tf.function(method, autograph=False)

        @functools.wraps(method)
        def call(module, *args):
            with tf.init_scope():
                bound = function.__get__(module, type(module))
                concrete = bound.get_concrete_function(*input_signature(module))
            return concrete(*args)

        return call

    return decorate


@dataclasses.dataclass(frozen=True, eq=False)
class _Models:
    """The Keras models the signatures call, kept out of `tf.Module` tracking: the SavedModel
    holds their variables (`ServingModule.model_variables`, `.extractor_variables`)."""

    generator: Generator
    space: ClusteringSpace | None


@dataclasses.dataclass(frozen=True, eq=False)
class _SpaceConstants:
    """The clustering space baked into the graph: centroids [k,d], radii [k], PCA."""

    centroids: tf.Tensor
    radii: tf.Tensor
    pca_mean: tf.Tensor
    pca_matrix: tf.Tensor
    dim: int  # d

    @classmethod
    def of(cls, stats: artifacts.ClusterStats) -> _SpaceConstants:
        return cls(
            tf.constant(stats.centroids.astype(np.float32), name="centroids"),
            tf.constant(space_lib.cluster_radii(stats.stds), name="cluster_radii"),
            tf.constant(stats.pca_mean.astype(np.float32), name="pca_mean"),
            tf.constant(stats.pca_matrix.astype(np.float32), name="pca_matrix"),
            stats.dim,
        )


# Held while a `ServingModule` traces a signature (rare: once per name and module).
_TRACE_LOCK = threading.Lock()


class _LazySignatures(Mapping):
    """{signature name: concrete function} of one module, each traced on first access."""

    def __init__(self, module: ServingModule):
        self._module = module
        self._names = tuple(module.input_signatures())

    def __getitem__(self, name: str):
        return self._module.signature_function(name)

    def __contains__(self, name) -> bool:  # without tracing
        return name in self._names

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class ServingModule(tf.Module):
    """G_ema + baked-in cluster statistics (+ the clustering space) behind named signatures.

    The exported object: `tf.saved_model.save(module, path, signatures=module.signatures())`;
    also called in process by `xplore_tf.translate`, the explore page and tests
    (`signature_functions()`: each signature traced on its first use).

    The beyond-clusters signatures (docs/guide/beyond_clusters.md) exist when `space` is given:
    they run the clustering extractor and PCA in-graph, so s_src is the condition of the input's
    nearest centroid and a group's condition its mean and std (`clustering/space.py`). A model
    conditioned on one-hot ids (`condition="onehot"`) has no reference-group signatures.
    The byte decoders, the generator and the extractor are each one graph with a fixed input
    signature (`shared_graph`), called by every signature that needs them.

    Each signature is the method of its name, traced by `signatures()` for
    `input_signatures()`; the SavedModel holds them as signatures only (read them from
    `tf.saved_model.load(path).signatures`).
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
        # Tracked here, so the SavedModel holds every weight the signatures capture.
        self.model_variables = list(generator.variables)
        self.extractor_variables = list(space.extractor.model.variables) if space else []
        self._models = _Models(generator, space)
        self.image_size = generator.image_size
        self.num_clusters = stats.num_clusters
        self.beyond_clusters_reason = ""  # why `space` is None (set by export_lib)
        self._condition_mode = condition
        self._crop_size = crop_size
        self._edit_base = edit_base
        self._face_colour = face_colour
        table = condition_vector(
            np.arange(stats.num_clusters), stats.centroids, stats.stds, mode=condition
        )
        self._conditions = tf.constant(np.asarray(table, np.float32), name="cluster_conditions")
        self._sizes = tf.constant(stats.sizes.astype(np.int64), name="cluster_sizes")
        self._ids = tf.range(stats.num_clusters, dtype=tf.int32, name="cluster_ids")
        self._names = tf.constant(np.array(names, dtype=object), tf.string)
        self._space_constants = _SpaceConstants.of(stats) if space else None
        if space and condition == "onehot":
            logging.info(
                "--condition=onehot: no %s/%s/%s/%s/%s signatures (they take a condition)",
                sig.REFERENCE_CONDITION,
                sig.TRANSLATE_CONDITION,
                sig.TRANSLATE_FULL_CONDITION,
                sig.MIX_CONDITION,
                sig.SHARED_CONDITION,
            )

    # ------------------------------------------------------------------ the signature map
    @property
    def condition_dim(self) -> int:
        """C, the width of a condition row."""
        return int(self._conditions.shape[1])

    def input_signatures(self) -> dict[str, list[tf.TensorSpec]]:
        """{signature name: its inputs} of every signature this module serves, in order."""
        image_bytes = tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES)
        cluster_id = tf.TensorSpec([None], tf.int32, name=sig.CLUSTER_ID)
        specs = {
            sig.SERVING_DEFAULT: [
                tf.TensorSpec([None, None, None, 3], tf.uint8, name=sig.IMAGE),
                cluster_id,
            ],
            sig.TRANSLATE_BYTES: [image_bytes, cluster_id],
            sig.CLUSTERS: [],
            sig.CLUSTERS_BATCHED: [tf.TensorSpec([None], tf.int32, name=sig.ROWS)],
        }
        if self._space_constants is None:
            return specs
        weights = tf.TensorSpec([None, self.num_clusters], tf.float32, name=sig.CLUSTER_WEIGHTS)
        specs[sig.TRANSLATE_STRENGTH] = [
            image_bytes,
            cluster_id,
            tf.TensorSpec([None], tf.float32, name=sig.STRENGTH),
        ]
        specs[sig.TRANSLATE_MIX] = [image_bytes, weights]
        specs[sig.TRANSLATE_FULL] = [image_bytes, weights]
        if self._condition_mode == "onehot":
            return specs
        condition = tf.TensorSpec([None, self.condition_dim], tf.float32, name=sig.CONDITION)
        references = tf.TensorSpec([None, None], tf.string, name=sig.REFERENCE_BYTES)
        specs[sig.REFERENCE_CONDITION] = [references]
        specs[sig.TRANSLATE_CONDITION] = [image_bytes, condition]
        specs[sig.TRANSLATE_FULL_CONDITION] = [image_bytes, condition]
        keep = tf.TensorSpec([None, self.num_clusters], tf.float32, name=sig.KEEP_CLUSTERS)
        specs[sig.MIX_CONDITION] = [image_bytes, weights, keep]
        strength = tf.TensorSpec([None], tf.float32, name=sig.STRENGTH)
        specs[sig.SHARED_CONDITION] = [image_bytes, condition, strength]
        return specs

    def signatures(self) -> dict:
        """{signature name: concrete function} for `tf.saved_model.save(signatures=...)`.

        Each is the method of the same name traced once per module for `input_signatures()`
        (as Model Garden's `get_inference_signatures`); callable with the keyword inputs.
        """
        return {name: self.signature_function(name) for name in self.input_signatures()}

    def signature_functions(self) -> Mapping:
        """`signatures()` for callers in process (`xplore_tf.translate`, the explore page,
        tests): a read-only mapping that traces each signature on its first use, so a caller
        of one signature does not wait for all of them. Safe to share between threads: a
        signature is traced once, under a lock (`signature_function`)."""
        return _LazySignatures(self)

    def signature_function(self, name: str):
        """The concrete function of signature `name`, traced on the first call. KeyError for a
        name that is not among `input_signatures()`."""
        if name in self._traced:
            return self._traced[name]
        with _TRACE_LOCK:  # two threads' first calls trace once
            if name in self._traced:
                return self._traced[name]
            specs = self.input_signatures()[name]
            # The methods are plain Python, wrapped here: `tf.saved_model.save` traces every
            # `tf.function` attribute of the module again inside its own graph (for the
            # object graph, which nothing here loads: every consumer reads `.signatures`),
            # which would double the export's time.
            self._traced[name] = tf.function(
                getattr(self, name), autograph=False
            ).get_concrete_function(*specs)
        return self._traced[name]

    @functools.cached_property
    def _traced(self) -> dict:
        # A cached_property is stored past tf.Module's tracking.
        return {}

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _same_batch(tensor, n, name):
        return tf.debugging.assert_equal(
            tf.shape(tensor)[0], n, message=f"image and {name} must have the same batch size N"
        )

    def _check_ids(self, cluster_id, n):
        """Assertions: InvalidArgumentError at serving time, never garbage output."""
        k = self.num_clusters
        return [
            self._same_batch(cluster_id, n, sig.CLUSTER_ID),
            tf.debugging.assert_greater_equal(
                cluster_id, 0, message=f"cluster_id must be in [0, {k})"
            ),
            tf.debugging.assert_less(cluster_id, k, message=f"cluster_id must be in [0, {k})"),
        ]

    # ------------------------------------------------------------------ decoding, G, encoding
    def _model_image_spec(self, batch: bool = False) -> tf.TensorSpec:
        """uint8 [S,S,3], or [None,S,S,3] with `batch`: a model input."""
        s = self.image_size
        return tf.TensorSpec([None, s, s, 3] if batch else [s, s, 3], tf.uint8)

    def _to_model_input(self, images):
        """uint8 [N,H,W,3] -> uint8 [N,S,S,3]: centre crop, bicubic resize."""
        return frame_images(images, size=self.image_size, crop_size=self._crop_size)

    @shared_graph(lambda module: [tf.TensorSpec([], tf.string)])
    def _decode_one(self, data):
        """string [] -> uint8 [H,W,3]: the training pipeline's decoding (data/images.py):
        EXIF orientation, 16-bit, alpha over black; WebP and odd BMPs are refused."""
        from xplore_tf.data import images as images_lib

        return images_lib.decode_image_bytes(data)

    @shared_graph(lambda module: [tf.TensorSpec([None], tf.string)])
    def _decode(self, image_bytes):
        """string [N] -> model inputs uint8 [N,S,S,3]."""
        return tf.map_fn(
            lambda data: self._to_model_input(self._decode_one(data)[tf.newaxis])[0],
            image_bytes,
            fn_output_signature=self._model_image_spec(),
        )

    @shared_graph(
        lambda module: [
            module._model_image_spec(batch=True),
            tf.TensorSpec([None, module.condition_dim], tf.float32),
        ]
    )
    def _generate_pixels(self, images, condition_rows):
        """uint8 [N,S,S,3] under conditions [N,C] -> float32 [N,S,S,3] in [0, 255]."""
        s = self.image_size

        def run():
            x = tf.cast(images, tf.float32) / 127.5 - 1.0
            y = tf.cast(self._models.generator((x, condition_rows), training=False), tf.float32)
            return tf.clip_by_value((y + 1.0) * 127.5, 0.0, 255.0)

        # An empty batch never reaches the convolutions (oneDNN's fused instance
        # norm rejects N = 0); it returns an empty result.
        empty = tf.zeros([0, s, s, 3], tf.float32)
        out = tf.cond(tf.shape(images)[0] > 0, run, lambda: empty)
        return tf.ensure_shape(out, [None, s, s, 3])

    def _generate(self, images, condition_rows):
        """uint8 [N,S,S,3] under conditions [N,C] -> uint8 [N,S,S,3] (as Trainer.translate)."""
        return tf.cast(self._generate_pixels(images, condition_rows) + 0.5, tf.uint8)

    @staticmethod
    def _encode(images):
        """uint8 [N,H,W,3] -> PNG bytes [N]."""
        return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.TensorSpec([], tf.string))

    # ------------------------------------------------------------------ fixed clusters
    def serving_default(self, image, cluster_id):
        """image uint8 [N,H,W,3], cluster_id int32 [N] -> {image: uint8 [N,S,S,3]}."""
        # Everything reading cluster_id waits for its checks (a gather would fail first,
        # with TensorFlow's words instead of ours).
        with tf.control_dependencies(self._check_ids(cluster_id, tf.shape(image)[0])):
            x = self._to_model_input(image)
            rows = tf.gather(self._conditions, cluster_id)
        return {sig.IMAGE: self._generate(x, rows)}

    def translate_bytes(self, image_bytes, cluster_id):
        """image_bytes string [N], cluster_id int32 [N] -> {image_bytes: PNG [N]}."""
        with tf.control_dependencies(self._check_ids(cluster_id, tf.shape(image_bytes)[0])):
            images = self._decode(image_bytes)
            rows = tf.gather(self._conditions, cluster_id)
        return {sig.IMAGE_BYTES: self._encode(self._generate(images, rows))}

    def clusters(self):
        """() -> {cluster_id int32 [k], size int64 [k], name string [k]}."""
        return {
            sig.CLUSTER_ID: tf.identity(self._ids),
            sig.SIZE: tf.identity(self._sizes),
            sig.NAME: tf.identity(self._names),
        }

    def clusters_batched(self, rows):
        """The cluster list once per element of `rows` (values ignored): [N,k] outputs.

        Batchable under TF Serving's --enable_batching, which needs an input and outputs
        with a batch dimension; nothing here can fail, so it never fails a batch.
        """
        n = tf.shape(rows)[0]
        return {
            sig.CLUSTER_ID: tf.tile(self._ids[tf.newaxis], [n, 1]),
            sig.SIZE: tf.tile(self._sizes[tf.newaxis], [n, 1]),
            sig.NAME: tf.tile(self._names[tf.newaxis], [n, 1]),
        }

    # ------------------------------------------------------------------ the clustering space
    def _feature_image_spec(self, batch: bool = False) -> tf.TensorSpec:
        """uint8 [E,E,3], or [None,E,E,3] with `batch`: a clustering extractor input."""
        e = self._models.space.extractor.input_size
        return tf.TensorSpec([None, e, e, 3] if batch else [e, e, 3], tf.uint8)

    def _to_feature_input(self, images):
        """uint8 [N,H,W,3] -> uint8 [N,E,E,3], framed as the clustering stage frames files."""
        space = self._models.space
        return frame_images(
            images,
            size=space.extractor.input_size,
            crop_size=space.crop_size,
            framing=space.framing,
        )

    @shared_graph(lambda module: [tf.TensorSpec([None], tf.string)])
    def _decode_both(self, image_bytes):
        """string [N] -> (model inputs uint8 [N,S,S,3], feature inputs uint8 [N,E,E,3])."""

        def one(data):
            image = self._decode_one(data)[tf.newaxis]
            return self._to_model_input(image)[0], self._to_feature_input(image)[0]

        return tf.map_fn(
            one,
            image_bytes,
            fn_output_signature=(self._model_image_spec(), self._feature_image_spec()),
        )

    @shared_graph(lambda module: [module._feature_image_spec(batch=True)])
    def _points_of(self, feature_images):
        """uint8 [N,E,E,3] -> points [N,d] of the clustering space (empty in, empty out)."""
        space, constants = self._models.space, self._space_constants
        dim = constants.dim

        def run():
            feats = space.extractor(tf.cast(feature_images, tf.float32))
            return space_lib.to_space_ops(
                feats, constants.pca_mean, constants.pca_matrix, l2_after=space.l2_after
            )

        out = tf.cond(tf.shape(feature_images)[0] > 0, run, lambda: tf.zeros([0, dim], tf.float32))
        return tf.ensure_shape(out, [None, dim])

    def _source_of(self, image_bytes):
        """-> (model inputs uint8 [N,S,S,3], each input's nearest cluster [N], its s_src)."""
        images, feature_images = self._decode_both(image_bytes)
        source = space_lib.nearest_cluster_ops(
            self._points_of(feature_images), self._space_constants.centroids
        )
        return images, source, tf.gather(self._conditions, source)

    # ------------------------------------------------------------------ beyond clusters
    def _blend(self, s_src, weights, keep=None):
        """s_src + sum_i w_i (s_i - s_src) [N,C], without the kept clusters' directions."""
        std_from = self._space_constants.dim if self._condition_mode == "mean_std" else None
        return space_lib.blend_conditions(
            s_src, weights, self._conditions, std_from=std_from, keep=keep
        )

    def _translate_blended(self, image_bytes, weights):
        """Toward s_src + sum_i w_i (s_i - s_src) -> (PNG bytes [N], s_src's cluster [N])."""
        images, source, s_src = self._source_of(image_bytes)
        blended = self._blend(s_src, weights)
        return {
            sig.IMAGE_BYTES: self._encode(self._generate(images, blended)),
            sig.SOURCE_CLUSTER: source,
        }

    def _full_resolution(self, image_bytes, images, target, s_src):
        """PNG bytes [N]: each input's framed square at its own size + the edit (xplore_tf.edit)."""
        if self._edit_base == edit_lib.DIFFERENCE:
            n = tf.shape(images)[0]
            both = self._generate_pixels(
                tf.concat([images, images], 0), tf.concat([target, s_src], 0)
            )
            g_target, g_source = both[:n], both[n:]
        else:
            g_target, g_source = self._generate_pixels(images, target), None
        delta = edit_lib.model_edit(
            images, g_target, g_source, base=self._edit_base, face_colour=self._face_colour
        )

        def one(args):
            data, edit = args
            square = centre_square(self._decode_one(data)[tf.newaxis], self._crop_size)[0]
            return tf.io.encode_png(edit_lib.carry_edit(square, edit))

        return tf.map_fn(
            one, (image_bytes, delta), fn_output_signature=tf.TensorSpec([], tf.string)
        )

    def _checked_weights(self, image_bytes, cluster_weights):
        """cluster_weights [N,k], once checked: each >= 0, per image in sum <= MAX_STRENGTH."""
        bound = sig.MAX_STRENGTH
        message = f"cluster_weights must be >= 0 and sum to at most {bound:g} per image"
        checks = [
            self._same_batch(cluster_weights, tf.shape(image_bytes)[0], sig.CLUSTER_WEIGHTS),
            tf.debugging.assert_greater_equal(cluster_weights, 0.0, message=message),
            tf.debugging.assert_less_equal(
                tf.reduce_sum(cluster_weights, axis=1), bound * (1.0 + 1e-6), message=message
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(cluster_weights)

    def _strength_checks(self, strength, n):
        """Assertions on strength [N] given with N images: same N, in [0, MAX_STRENGTH]."""
        message = f"strength must be in [0, {sig.MAX_STRENGTH:g}]"
        return [
            self._same_batch(strength, n, sig.STRENGTH),
            tf.debugging.assert_greater_equal(strength, 0.0, message=message),
            tf.debugging.assert_less_equal(strength, sig.MAX_STRENGTH, message=message),
        ]

    def _condition_checks(self, image_bytes, condition):
        """Assertions on a condition [N,C] given with N images: same N, all finite."""
        return [
            self._same_batch(condition, tf.shape(image_bytes)[0], sig.CONDITION),
            tf.debugging.assert_all_finite(condition, "condition must be finite"),
        ]

    def translate_strength(self, image_bytes, cluster_id, strength):
        """Into `cluster_id` with `strength` alpha in [0, MAX_STRENGTH]:
        -> {image_bytes: PNG [N], source_cluster int32 [N]}."""
        n = tf.shape(image_bytes)[0]
        checks = self._check_ids(cluster_id, n) + self._strength_checks(strength, n)
        with tf.control_dependencies(checks):
            weights = tf.one_hot(cluster_id, self.num_clusters, dtype=tf.float32)
            weights = weights * strength[:, tf.newaxis]
        return self._translate_blended(image_bytes, weights)

    def translate_mix(self, image_bytes, cluster_weights):
        """Toward several clusters: -> {image_bytes: PNG [N], source_cluster int32 [N]}."""
        weights = self._checked_weights(image_bytes, cluster_weights)
        return self._translate_blended(image_bytes, weights)

    def translate_full(self, image_bytes, cluster_weights):
        """As `translate_mix`, the PNGs at each input's own resolution."""
        weights = self._checked_weights(image_bytes, cluster_weights)
        images, source, s_src = self._source_of(image_bytes)
        out = self._full_resolution(image_bytes, images, self._blend(s_src, weights), s_src)
        return {sig.IMAGE_BYTES: out, sig.SOURCE_CLUSTER: source}

    def reference_condition(self, reference_bytes):
        """N groups of M encoded images [N,M] -> their conditions [N,C] and distances to the
        clusters: {condition, nearest_cluster, distance, relative_distance}."""
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
            lambda data: self._to_feature_input(self._decode_one(data)[tf.newaxis])[0],
            flat,
            fn_output_signature=self._feature_image_spec(),
        )
        constants = self._space_constants
        points = tf.reshape(self._points_of(feature_images), [n, m, constants.dim])
        mean, std = space_lib.group_statistics_ops(points)
        nearest, distance, relative = space_lib.distances_to_clusters_ops(
            mean, constants.centroids, constants.radii
        )
        group = space_lib.group_condition_ops(mean, std, mode=self._condition_mode)
        return {
            sig.CONDITION: tf.ensure_shape(group, [None, self.condition_dim]),
            sig.NEAREST_CLUSTER: nearest,
            sig.DISTANCE: distance,
            sig.RELATIVE_DISTANCE: relative,
        }

    def mix_condition(self, image_bytes, cluster_weights, keep_clusters):
        """`translate_mix`'s condition without the edit's part along the kept clusters'
        directions: -> {condition [N,C], source_cluster int32 [N]}."""
        weights = self._checked_weights(image_bytes, cluster_weights)
        checks = [
            self._same_batch(keep_clusters, tf.shape(image_bytes)[0], sig.KEEP_CLUSTERS),
            tf.debugging.assert_all_finite(keep_clusters, "keep_clusters must be finite"),
        ]
        with tf.control_dependencies(checks):
            _, source, s_src = self._source_of(image_bytes)
        condition = self._blend(s_src, weights, keep=keep_clusters)
        return {
            sig.CONDITION: tf.ensure_shape(condition, [None, self.condition_dim]),
            sig.SOURCE_CLUSTER: source,
        }

    def shared_condition(self, image_bytes, condition, strength):
        """Each input's own condition moved by what the group with condition [N,C] (a
        `reference_condition`) shares, `strength` [N] in [0, MAX_STRENGTH]
        (`space.shared_conditions`): -> {condition [N,C], source_cluster int32 [N]}."""
        checks = self._condition_checks(image_bytes, condition) + self._strength_checks(
            strength, tf.shape(image_bytes)[0]
        )
        with tf.control_dependencies(checks):
            _, source, s_src = self._source_of(image_bytes)
        shared = space_lib.shared_conditions(
            s_src, condition, self._conditions, strength, mean_dim=self._space_constants.dim
        )
        return {
            sig.CONDITION: tf.ensure_shape(shared, [None, self.condition_dim]),
            sig.SOURCE_CLUSTER: source,
        }

    def translate_condition(self, image_bytes, condition):
        """Toward any condition [N,C] (e.g. `reference_condition`'s): -> {image_bytes: PNG}."""
        with tf.control_dependencies(self._condition_checks(image_bytes, condition)):
            images = self._decode(image_bytes)
        return {sig.IMAGE_BYTES: self._encode(self._generate(images, condition))}

    def translate_full_condition(self, image_bytes, condition):
        """As `translate_condition`, the PNGs at each input's own resolution, with
        source_cluster [N]."""
        with tf.control_dependencies(self._condition_checks(image_bytes, condition)):
            images, source, s_src = self._source_of(image_bytes)
        out = self._full_resolution(image_bytes, images, condition, s_src)
        return {sig.IMAGE_BYTES: out, sig.SOURCE_CLUSTER: source}
