"""The clustering space after `cluster`: new images in it, group statistics, blended conditions.

ASIN conditions the generator on statistics s = (mu, sigma) of the clustering space (paper
§2.2: a cluster's centroid and per-dimension std), not on a class index, so other statistics
of that space are conditions too (docs/guide/beyond_clusters.md):

- a *reference group*: the mean and std of a folder of images (`group_statistics`), computed
  by the code that computes every cluster's (`kmeans.cluster_stats`, floored at
  `kmeans.MIN_STD`);
- a *blend* (`blend_conditions`): condition = s_src + sum_i w_i (s_i - s_src), with s_src the
  statistics of the input's own cluster, its nearest centroid. One target with w = alpha is
  the strength alpha (0 = the input's own cluster, 1 = the target's, above 1 extrapolates, up
  to `xplore_tf.common.signatures.MAX_STRENGTH`);
- a group's *shared part* (`shared_conditions`): each input keeps its own statistics and moves
  along the direction from the clusters' centre (the unweighted mean of the centroids) to the
  group's mean: what the group's members have in common;
- a *contrast* edit (`contrast_conditions`): each input moved toward what sets a cluster apart
  from its nearest clusters (measured in docs/experiments/2026-12-06-combinations-reference-groups.md;
  the generator, trained on clusters, barely follows it).

New images enter the space `cluster` fitted: the same extractor, weights, blocks, mirror
averaging, framing, crop and input size (`pipeline.clustering_extractor`), then
`pca.to_space` with the stored PCA. `check_same_space` refuses flags that would build another
space. The functions ending in `_ops` are the same maths in keras.ops, run inside the
exported model's graph (export_module) and tested against the numpy code here.

"Far" from the clusters: the group's mean lies outside every training cluster's RMS radius
r_k = sqrt(sum_j sigma_kj^2), the root mean square distance of the cluster's members to its
centroid (exact from the stored population stds). `relative distance` = min_k ||m - mu_k|| /
r_k; the group is far when it exceeds `xplore_tf.common.signatures.FAR_FROM_CLUSTERS` (1.0): its
mean is then farther from every centroid than that cluster's typical member is.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
from absl import logging

from xplore_tf import features as features_lib
from xplore_tf.clustering import artifacts, kmeans, pca, pipeline
from xplore_tf.common import signatures as sig
from xplore_tf.config import Config
from xplore_tf.data import images as images_lib
from xplore_tf.features import cache as cache_lib
from xplore_tf.features import extract


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def check_same_space(config: Config, stats: artifacts.ClusterStats) -> None:
    """Checks that `config` embeds new images where `cluster` put the training images.

    Compares the feature and space flags with what the clusters of `config.clusters_dir`
    record: stats.npz (extractor, input size, crop), summary.json (blocks, framing, mirror,
    the second L2 of --pca_l2) and, when the feature cache records it, the SHA-256 of the
    weights file. Older artifacts without a field are not checked on it.

    Raises:
        ValueError: a flag differs, naming it with both values.
        FileNotFoundError: --feature_weights names no file, or is empty for an extractor
            that needs weights.
    """
    c = config.cluster
    pairs = {
        "--feature_extractor": (stats.extractor, c.feature_extractor),
        "--feature_input_size (px)": (
            stats.image_size,
            features_lib.input_size(c.feature_extractor, c.feature_input_size),
        ),
        "--crop_size": (stats.crop_size, config.data.crop_size),
    }
    summary = _read_json(os.path.join(config.clusters_dir, pipeline.SUMMARY))
    recorded = {
        "--feature_blocks": ("feature_blocks", list(c.feature_blocks)),
        "--feature_framing": ("feature_framing", c.feature_framing),
        "--feature_mirror": ("feature_mirror", c.feature_mirror),
    }
    for flag, (key, value) in recorded.items():
        if key in summary:
            pairs[flag] = (summary[key], value)
    if "space" in summary:
        pairs["--pca_l2"] = (str(summary["space"]).endswith("-> l2"), c.pca_l2)
    key = _read_json(os.path.join(config.clusters_dir, cache_lib.MANIFEST)).get("key", {})
    if (
        stats.extractor in features_lib.NEEDS_WEIGHTS
        and not c.feature_weights
        and key.get("weights_sha256", "?")
    ):
        raise FileNotFoundError(
            f"--feature_weights is empty: the clusters were made with {stats.extractor}, whose "
            "weights file places new images in their space"
        )
    if c.feature_weights and not os.path.isfile(c.feature_weights):
        raise FileNotFoundError(
            f"--feature_weights: {c.feature_weights!r} does not exist (the {stats.extractor} "
            "weights the clusters were made with)"
        )
    if key.get("extractor") == stats.extractor and "weights_sha256" in key:
        pairs["--feature_weights (SHA-256)"] = (
            key["weights_sha256"][:12],
            cache_lib.file_sha256(c.feature_weights)[:12],
        )
    differ = [
        f"{flag}: {was!r} there, {now!r} here" for flag, (was, now) in pairs.items() if was != now
    ]
    if differ:
        raise ValueError(
            f"{config.clusters_dir} was clustered with other feature flags ({'; '.join(differ)}): "
            "pass the flags `cluster` ran with (WORKDIR/flags_cluster.txt)"
        )


def cluster_radii(stds: np.ndarray) -> np.ndarray:
    """RMS radius of each cluster, sqrt(sum_j sigma_kj^2): stds [k, d] -> [k] float32."""
    return np.sqrt(np.square(np.asarray(stds, np.float64)).sum(axis=1)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class GroupStats:
    """A reference group's statistics in the clustering space, and where it lies."""

    mean: np.ndarray  # [d] float32, the group's centroid
    std: np.ndarray  # [d] float32, per-dimension population std, >= kmeans.MIN_STD
    images: list[str]  # the images used, relative to the folder
    skipped: list[tuple[str, str]]  # unreadable files (relative path, reason)
    duplicates: dict[str, str]  # exact copies left out: {copy: original}
    nearest: int  # the cluster whose radius the group lies deepest in
    distance: float  # ||mean - mu_nearest||
    relative_distance: float  # distance / r_nearest: > FAR_FROM_CLUSTERS is far

    @property
    def far(self) -> bool:
        return self.relative_distance > sig.FAR_FROM_CLUSTERS


def embed_files(
    config: Config,
    stats: artifacts.ClusterStats,
    root: str,
    rel_paths: list[str],
    *,
    extractor: features_lib.FeatureExtractor | None = None,
    skip_log: images_lib.SkipLog | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Points of image files in the clustering space, as `cluster` computes them.

    Features of `pipeline.clustering_extractor` (or `extractor`) on the --feature_framing of
    each file (`extract.extract_features`: Pillow decoding and resize), then `pca.to_space`
    with the stored PCA. Unreadable files are logged to `skip_log` and left out.

    Returns:
        (kept int64 [M] indices into rel_paths, points float32 [M, d]).
    """
    c = config.cluster
    kept, feats, _ = extract.extract_features(
        extractor or pipeline.clustering_extractor(config),
        root,
        rel_paths,
        crop_size=config.data.crop_size,
        framing=c.feature_framing,
        batch_size=c.batch_size,
        skip_log=skip_log,
        log_every_s=60.0,
    )
    if not len(kept):
        return kept, np.zeros((0, stats.dim), np.float32)
    return kept, pca.to_space(feats, stats.pca_mean, stats.pca_matrix, l2_after=c.pca_l2)


def list_reference_images(folder: str) -> list[str]:
    """The images below a --reference_dir, listed as `cluster` lists a folder (recursive).

    Raises:
        FileNotFoundError: `folder` is not a folder.
        ValueError: no image in it.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--reference_dir: {folder!r} is not a folder")
    listed = images_lib.scan_images(folder).images
    if not listed:
        raise ValueError(
            f"--reference_dir: {folder}: no images found (looked for "
            f"{', '.join(images_lib.IMAGE_EXTENSIONS)})"
        )
    return listed


def group_statistics(
    config: Config,
    stats: artifacts.ClusterStats,
    folder: str,
    *,
    extractor: features_lib.FeatureExtractor | None = None,
) -> GroupStats:
    """Mean [d] and std [d] of the images below `folder`, as `cluster` computes a cluster's.

    The cluster stage's rules end to end: images listed recursively (`images.scan_images`),
    exact duplicates counted once, unreadable files skipped with a warning, points of
    `embed_files`, then `kmeans.cluster_stats` with every image in one cluster and the std
    floored at `kmeans.MIN_STD` (as `kmeans.discover_clusters` floors sigma_k). So the
    members of a training cluster give back that cluster's stored (mu, sigma). The exported
    model's `reference_condition` computes the same in-graph, with TensorFlow's bicubic
    resize to the extractor's input instead of Pillow's.

    Raises:
        FileNotFoundError: `folder` is not a folder.
        ValueError: no image in it, or none readable.
    """
    listed = list_reference_images(folder)
    duplicates = images_lib.find_duplicates(folder, listed)
    rel_paths = [p for p in listed if p not in duplicates]
    skip_log = images_lib.SkipLog()
    kept, points = embed_files(
        config, stats, folder, rel_paths, extractor=extractor, skip_log=skip_log
    )
    skipped = sorted(skip_log.skipped)  # tf.data decodes in parallel: any order
    if not len(kept):
        path, reason = skipped[0]
        raise ValueError(
            f"--reference_dir: {folder}: none of its {len(rel_paths)} images is readable "
            f"(e.g. {path}: {reason})"
        )
    if len(kept) == 1:
        logging.warning(
            "--reference_dir: one readable image has no spread: its std is the floor %g",
            kmeans.MIN_STD,
        )
    means, stds, _ = kmeans.cluster_stats(points, np.zeros(len(points), np.int32), 1)
    mean, std = means[0], np.maximum(stds[0], kmeans.MIN_STD).astype(np.float32)
    nearest, distance, relative = (
        np.asarray(t)
        for t in distances_to_clusters_ops(mean[None], stats.centroids, cluster_radii(stats.stds))
    )
    return GroupStats(
        mean=mean,
        std=std,
        images=[rel_paths[i] for i in kept],
        skipped=skipped,
        duplicates=duplicates,
        nearest=int(nearest[0]),
        distance=float(distance[0]),
        relative_distance=float(relative[0]),
    )


# ---------------------------------------------------------------- the same maths in keras.ops
def to_space_ops(feats, pca_mean, pca_matrix, *, l2_after: bool):
    """`pca.to_space` in keras.ops (in-graph): features [N, D] -> points [N, d] float32."""
    from keras import ops

    def l2(x):
        return x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)

    points = ops.matmul(l2(ops.cast(feats, "float32")) - pca_mean, pca_matrix)
    return l2(points) if l2_after else points


def squared_distances_ops(points, centroids):
    """||p_n - mu_k||^2: points [N, d], centroids [k, d] -> [N, k] (keras.ops)."""
    from keras import ops

    return ops.sum(ops.square(points[:, None, :] - centroids[None, :, :]), axis=-1)


def nearest_cluster_ops(points, centroids):
    """The nearest centroid of each point: [N, d] -> int32 [N] (keras.ops)."""
    from keras import ops

    return ops.cast(ops.argmin(squared_distances_ops(points, centroids), axis=1), "int32")


def distances_to_clusters_ops(means, centroids, radii):
    """Where group means lie: means [N, d] -> (nearest int32 [N], distance [N], relative [N]).

    relative = ||m - mu_k|| / r_k minimised over k (r_k = `cluster_radii`), nearest = that k,
    distance = ||m - mu_nearest||. keras.ops: used in-graph and by `group_statistics`.
    """
    from keras import ops

    means = ops.cast(means, "float32")
    distance = ops.sqrt(ops.maximum(squared_distances_ops(means, centroids), 0.0))
    relative = distance / radii[None, :]
    nearest = ops.cast(ops.argmin(relative, axis=1), "int32")
    pick = ops.one_hot(nearest, ops.shape(relative)[1], dtype="float32")
    return nearest, ops.sum(pick * distance, axis=1), ops.sum(pick * relative, axis=1)


def group_statistics_ops(points):
    """`kmeans.cluster_stats` of each group: points [N, M, d] -> (mean [N, d], std [N, d]).

    Population std in float64 as cluster_stats, floored at kmeans.MIN_STD; float32 out.
    """
    from keras import ops

    x = ops.cast(points, "float64")
    mean = ops.mean(x, axis=1)
    std = ops.maximum(ops.sqrt(ops.var(x, axis=1)), kmeans.MIN_STD)
    return ops.cast(mean, "float32"), ops.cast(std, "float32")


def group_condition_ops(mean, std, *, mode: str):
    """A group's generator condition, laid out as `models.generator.condition_vector`'s:
    mean [N, d], std [N, d] -> concat(mean, std) [N, 2d] (`mean_std`) or mean [N, d] (`mean`).

    Raises:
        ValueError: `onehot` (a group has no cluster id) or an unknown mode.
    """
    from keras import ops

    if mode == "mean_std":
        return ops.concatenate([ops.cast(mean, "float32"), ops.cast(std, "float32")], axis=-1)
    if mode == "mean":
        return ops.cast(mean, "float32")
    raise ValueError(
        f"--condition={mode}: a reference group's condition needs cluster statistics "
        "(mean_std or mean), not one-hot cluster ids"
    )


def blend_conditions(source, weights, table, *, std_from: int | None = None, keep=None):
    """condition = s_src + sum_i w_i (s_i - s_src), as (1 - sum_i w_i) s_src + W @ table.

    Args:
        source: s_src, float32 [N, C], the condition of each input's own cluster.
        weights: W, float32 [N, k], each input's weight per cluster (strength alpha into t:
            alpha * one_hot(t)).
        table: float32 [k, C], the condition of every cluster (`condition_vector`).
        std_from: with `mean_std` conditions, C // 2: where the std half starts; it is
            floored at kmeans.MIN_STD (extrapolating past a target can make it negative).
        keep: None, or float32 [N, k]: > 0 on the clusters whose direction the edit must
            not move along (`keep_directions`).
    Returns:
        float32 [N, C]. The convex form makes W = 0 give exactly s_src and a one-hot W give
        exactly that cluster's row; a `keep` of zeros gives exactly the plain blend.
    """
    from keras import ops

    total = ops.sum(weights, axis=1, keepdims=True)
    condition = (1.0 - total) * source + ops.matmul(weights, table)
    if keep is not None:
        condition = keep_directions(source, condition, table, keep)
    if std_from is None:
        return condition
    return ops.concatenate(
        [condition[:, :std_from], ops.maximum(condition[:, std_from:], kmeans.MIN_STD)], axis=-1
    )


def keep_directions(source, condition, table, keep):
    """The edit d = condition - s_src without its part along the kept clusters' directions,
    at d's length: s_src + |d| / |d'| d', d' = d - P d.

    Cluster j's direction is n_j = s_j - mean over clusters of s_i; P projects onto the span
    of the n_j with keep[:, j] > 0 (least squares, so kept directions need not be
    orthogonal). A cluster summarises everything its members share (a cluster of blond
    women is also a cluster of women): keeping the men's cluster takes the gender part out
    of an edit toward it. InterFaceGAN's conditional manipulation (Shen et al., CVPR 2020), in
    the clustering space instead of a GAN's latent space; the length is kept
    because the projected edit alone loses more of the target than it needs to
    (docs/experiments/2026-12-05-droplets-side-effects.md).

    Args:
        source: s_src, float32 [N, C].
        condition: s_src + d, float32 [N, C].
        table: float32 [k, C], every cluster's condition.
        keep: float32 [N, k], > 0 where the direction is kept.
    Returns:
        float32 [N, C]; rows with no kept cluster are `condition` bit for bit.
    """
    from keras import ops

    mask = ops.cast(keep > 0, "float32")  # [N, k]
    directions = table - ops.mean(table, axis=0, keepdims=True)  # [k, C]
    kept = mask[:, :, None] * directions[None]  # [N, k, C]: zero rows where not kept
    edit = condition - source
    gram = ops.einsum("nkc,njc->nkj", kept, kept) + (1.0 - mask)[:, :, None] * ops.eye(
        ops.shape(table)[0]
    )  # identity on the unkept rows: solvable, their coefficients 0
    coefficients = ops.solve(gram, ops.einsum("nkc,nc->nk", kept, edit)[:, :, None])
    along = ops.einsum("nkc,nk->nc", kept, coefficients[:, :, 0])  # P d
    rest = edit - along
    length, rest_length = ops.norm(edit, axis=-1), ops.norm(rest, axis=-1)
    scale = ops.where(rest_length > 0, length / ops.maximum(rest_length, 1e-30), 1.0)
    # = s_src + scale * rest, written so that P d = 0 leaves `condition` untouched
    return condition - along + (scale - 1.0)[:, None] * rest


# The shared part's length at strength 1, in mean distances between two centroids. A group's
# mean lies much nearer the centre than a cluster's (its members differ in everything else);
# on celeba10k a mixed-gender blond group needed about twice a typical translation's length to
# move the generator as far as the blond cluster does
# (docs/experiments/2026-12-06-combinations-reference-groups.md).
SHARED_LENGTH = 2.0


def shared_conditions(source, group, table, strength, *, mean_dim: int):
    """Each input's own condition moved by what a reference group shares.

    mean = mu_src + alpha * L * v / |v|, v = m_group - c: the direction from the centre c of
    the clusters (the mean of the table's rows) to the group's mean. What the members do not
    have in common averages out of v (a group of blond men and women lies at the centre's
    gender), so the edit carries what they share and the input keeps the rest; the std half
    (with `mean_std`) stays the input's own. L = SHARED_LENGTH x the mean distance between two
    centroids. It is the "difference from the average" edit of attribute vectors (Larsen et
    al. 2016, Upchurch et al. 2017) applied to ASIN's statistics, with the centroids' mean as
    the average. The length does not depend on how far the group's mean lies from c: a group
    that shares nothing still moves each input, along its sampling noise.

    Args:
        source: s_src, float32 [N, C], each input's own cluster's condition.
        group: float32 [N, C] (or [1, C]), the group's condition (`group_condition_ops`).
        table: float32 [k, C], every cluster's condition.
        strength: alpha, float32 [N], >= 0; 0 gives `source` exactly.
        mean_dim: d, where the mean half ends (C for `mean` conditions).
    Returns:
        float32 [N, C]. A group whose mean is the centre leaves `source` unchanged.
    """
    from keras import ops

    means = ops.cast(table[:, :mean_dim], "float32")
    k = ops.cast(ops.shape(means)[0], "float32")
    pairs = ops.sqrt(ops.maximum(squared_distances_ops(means, means), 0.0))
    length = SHARED_LENGTH * ops.sum(pairs) / ops.maximum(k * (k - 1.0), 1.0)
    v = ops.cast(group[:, :mean_dim], "float32") - ops.mean(means, axis=0, keepdims=True)
    norm = ops.norm(v, axis=-1, keepdims=True)
    unit = ops.where(norm > 0, v / ops.maximum(norm, 1e-30), 0.0)
    step = ops.cast(strength, "float32")[:, None] * length * unit
    return ops.concatenate([source[:, :mean_dim] + step, source[:, mean_dim:]], axis=-1)


def nearest_clusters(centroids, neighbors: int):
    """int32 [k, neighbors]: each cluster's `neighbors` nearest other clusters, nearest first.

    centroids: float [k, d], distances Euclidean. Raises ValueError for `neighbors` outside
    [1, k).
    """
    from keras import ops

    k = int(centroids.shape[0])
    if not 1 <= neighbors < k:
        raise ValueError(f"neighbors={neighbors}: expected 1 <= neighbors < k = {k}")
    centroids = ops.cast(centroids, "float32")
    distances = squared_distances_ops(centroids, centroids) + ops.eye(k) * 1e30  # not itself
    return ops.cast(ops.top_k(-distances, k=neighbors)[1], "int32")


def contrast_conditions(source, target, table, *, neighbors: int, mean_dim: int):
    """Each input moved toward what sets cluster t apart from its nearest clusters.

    mean = mu_src + L * v / |v|, v = mu_t - (the mean of the `neighbors` centroids nearest
    mu_t, t excluded), L = |mu_t - mu_src| (the plain edit's length); the std half (with
    `mean_std`) stays the input's own. A cluster's neighbours share most of what it is (the
    clusters nearest a cluster of blond women are other women), so v keeps what t has that
    they lack: an unsupervised stand-in for InterFaceGAN's conditional direction (Shen et al.,
    CVPR 2020), with neighbouring clusters in place of labels.

    Args:
        source: s_src, float32 [N, C], each input's own cluster's condition.
        target: int [N], the target clusters t.
        table: float32 [k, C], every cluster's condition.
        neighbors: how many nearest centroids make the contrast, 1 <= neighbors < k.
        mean_dim: d, where the mean half ends (C for `mean` conditions).
    Returns:
        float32 [N, C]; an input of cluster t itself gets `source` unchanged (L = 0).
    Raises:
        ValueError: `neighbors` outside [1, k).
    """
    from keras import ops

    means = ops.cast(table[:, :mean_dim], "float32")
    nearest = nearest_clusters(means, neighbors)
    directions = means - ops.mean(ops.take(means, nearest, axis=0), axis=1)  # [k, d]
    v = ops.take(directions, ops.cast(target, "int32"), axis=0)
    mu_src = ops.cast(source[:, :mean_dim], "float32")
    length = ops.norm(ops.take(means, ops.cast(target, "int32"), axis=0) - mu_src, axis=-1)
    unit = v / ops.maximum(ops.norm(v, axis=-1, keepdims=True), 1e-30)
    return ops.concatenate([mu_src + length[:, None] * unit, source[:, mean_dim:]], axis=-1)


__all__ = [
    "SHARED_LENGTH",
    "GroupStats",
    "blend_conditions",
    "check_same_space",
    "cluster_radii",
    "contrast_conditions",
    "distances_to_clusters_ops",
    "embed_files",
    "group_condition_ops",
    "group_statistics",
    "group_statistics_ops",
    "keep_directions",
    "nearest_clusters",
    "nearest_cluster_ops",
    "shared_conditions",
    "to_space_ops",
]
