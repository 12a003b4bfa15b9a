"""The clustering stage end to end: images -> features -> PCA -> clusters -> artifacts.

Features come from the feature cache (`features/cache.py`) when nothing they depend on has
changed. The clustering space is L2 -> PCA (optionally whitened) -> optionally L2 again; the
clusters are the paper's k-means (§2.1) or SCAN's learned heads (`scan.py`). With several
`--num_clusters` values (a k sweep) one artifact set per k goes to clusters/k_sweep/kKKK/ and
a page comparing them to clusters/k_sweep.html (`sweep.py`); the main set is left alone.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
from absl import logging

from xplore_tf import features as features_lib
from xplore_tf import io_utils
from xplore_tf.clustering import artifacts, contact_sheets, kmeans, pca, report, scan, sweep
from xplore_tf.config import Config
from xplore_tf.data import images as images_lib
from xplore_tf.data import sources
from xplore_tf.features import blocks as blocks_lib
from xplore_tf.features import cache as cache_lib
from xplore_tf.features import extract

SUMMARY = "summary.json"
REPORT = "report.json"


def clusters_exist(config: Config) -> bool:
    d = config.clusters_dir
    return all(os.path.exists(os.path.join(d, f)) for f in (artifacts.ASSIGNMENTS, artifacts.STATS))


def _check_extractor_weights(config: Config) -> None:
    c = config.cluster
    if c.feature_weights and not os.path.isfile(c.feature_weights):
        raise FileNotFoundError(f"--feature_weights: {c.feature_weights!r} does not exist")
    if c.feature_extractor in features_lib.NEEDS_WEIGHTS and not c.feature_weights:
        raise ValueError(
            f"--feature_extractor={c.feature_extractor} needs --feature_weights=FILE.npz "
            "(see docs/guide/discovery.md: converting PyTorch checkpoints)"
        )


def run_clustering(config: Config) -> dict:
    """Discovers attribute clusters and writes WORKDIR/clusters/; returns the summary.

    Lists the images folder (links followed), clusters each distinct file once (exact
    duplicates, same bytes, are reported and take their original's cluster), skips and
    counts unreadable files. Features are reused from clusters/features.npy when its
    manifest matches (see `features/cache.py`). With `config.cluster.k_sweep` (several k),
    writes clusters/k_sweep/kKKK/ per k and clusters/k_sweep.html instead of the main set,
    and returns {"sweep": [summary per k], "k_sweep_html": path, ...}.

    Raises:
        ValueError: fewer distinct (or readable) images than the largest k.
        FileNotFoundError: a missing --feature_weights file or images folder.
    """
    c = config.cluster
    ks = tuple(c.k_sweep) or (c.num_clusters,)
    k_max = max(ks)
    _check_extractor_weights(config)
    root = sources.prepare_inputs(config)
    listing, rel_paths, duplicates = _distinct_images(config, root, k_max)
    logging.info(
        "clustering %d distinct images from %s into %s clusters",
        len(rel_paths),
        root,
        ", ".join(str(k) for k in ks),
    )
    if not c.k_sweep:
        _warn_if_trained(config)
    features = _features(config, root, rel_paths)
    if len(features.kept) < k_max:
        raise ValueError(
            f"{root}: only {len(features.kept)} readable images ({len(features.skipped)} "
            f"skipped), fewer than --num_clusters={k_max}"
        )
    start = time.perf_counter()
    space = clustering_space(features.features, config)
    prepare_seconds = time.perf_counter() - start
    common = _common_summary(config, root, listing, rel_paths, duplicates, features, space)
    images = [rel_paths[i] for i in features.kept]
    summaries = []
    for k, out in zip(ks, _output_dirs(config, ks), strict=True):
        summary = _cluster_and_write(
            config, out, k, root, images, duplicates, space, common, prepare_seconds=prepare_seconds
        )
        summary["attribute_report"] = _maybe_report(config, out, images, duplicates, summary)
        summaries.append(summary)
    if not c.k_sweep:
        return summaries[0]
    page = sweep.write_sweep_page(
        os.path.join(config.clusters_dir, sweep.SWEEP_PAGE),
        summaries,
        title=f"k sweep of {root} ({c.feature_extractor}, {c.method})",
        precision_threshold=config.report.precision_threshold,
    )
    return {**common, "sweep": summaries, "k_sweep_html": page}


def _distinct_images(
    config: Config, root: str, k_max: int
) -> tuple[images_lib.ImageListing, list[str], dict[str, str]]:
    """(the folder's listing, its distinct images in order, {duplicate: original}).

    Exact copies (same file bytes) are clustered once: k-means on repeated points makes
    zero-spread clusters. Each copy gets its original's cluster in assignments.csv.

    Raises:
        ValueError: no images, or fewer distinct images than `k_max`.
    """
    listing = images_lib.scan_images(root)
    listed = listing.images
    if not listed:
        raise ValueError(
            f"{root}: no images found (looked for {', '.join(images_lib.IMAGE_EXTENSIONS)})"
        )
    duplicates = images_lib.find_duplicates(root, listed)
    rel_paths = [p for p in listed if p not in duplicates]
    if duplicates:
        examples = ", ".join(f"{d} = {o}" for d, o in list(duplicates.items())[:5])
        logging.warning(
            "%d exact duplicate file(s) (same bytes) are clustered once, each with its "
            "original's cluster (all in clusters/summary.json): %s%s",
            len(duplicates),
            examples,
            ", ..." if len(duplicates) > 5 else "",
        )
    if len(rel_paths) < k_max:
        raise ValueError(
            f"{root}: {len(rel_paths)} distinct images (of {len(listed)} listed; "
            f"{len(duplicates)} exact duplicates) is fewer than --num_clusters={k_max}"
        )
    min_size = config.cluster.min_cluster_size
    if len(rel_paths) < k_max * min_size:
        logging.warning(
            "%d distinct images cannot fill %d clusters of --min_cluster_size=%d: expect "
            "clusters to be merged (or fewer --num_clusters)",
            len(rel_paths),
            k_max,
            min_size,
        )
    return listing, rel_paths, duplicates


def _warn_if_trained(config: Config) -> None:
    """Warns when WORKDIR holds a checkpoint trained on the clusters about to be replaced."""
    if os.path.exists(os.path.join(config.checkpoint_dir, "checkpoint")):
        logging.warning(
            "%s holds a run trained on the clusters being replaced: if they change, `train` "
            "will refuse to resume it (train with --noresume, or use a new --workdir)",
            config.checkpoint_dir,
        )


def _common_summary(
    config: Config,
    root: str,
    listing: images_lib.ImageListing,
    rel_paths: list[str],
    duplicates: dict[str, str],
    features: _Features,
    space: Space,
) -> dict:
    """The summary.json fields every k shares: the images, the features and the space."""
    c = config.cluster
    return {
        "images_dir": root,
        "images_listed": len(listing.images),
        "images_distinct": len(rel_paths),
        "images_clustered": len(features.kept),
        "images_skipped": len(features.skipped),
        "skipped": [{"image": p, "reason": r} for p, r in features.skipped],
        "duplicates_count": len(duplicates),
        "duplicates": [{"image": d, "original": o} for d, o in duplicates.items()],
        "links_skipped": listing.links_skipped,
        "files_ignored": listing.ignored,
        "extractor": c.feature_extractor,
        "feature_blocks": list(c.feature_blocks),
        "feature_framing": c.feature_framing,
        "feature_mirror": c.feature_mirror,
        "feature_input_size": features_lib.input_size(c.feature_extractor, c.feature_input_size),
        "feature_dim": int(features.features.shape[1]),
        "features_cached": features.cached,
        "space": space.description,
        "clustering": c.method,
        "extract_seconds": round(features.extract_seconds, 3),
        "extract_images_per_second": round(features.images_per_second, 2),
    }


def _output_dirs(config: Config, ks: tuple[int, ...]) -> list[str]:
    """One k: the main set in clusters/; a sweep: one set per k below clusters/k_sweep/."""
    if config.cluster.k_sweep:
        return [os.path.join(config.clusters_dir, sweep.SWEEP_DIR, sweep.k_folder(k)) for k in ks]
    return [config.clusters_dir]


def clustering_extractor(config: Config) -> features_lib.FeatureExtractor:
    """The extractor `cluster` runs: --feature_extractor with --feature_weights at
    --feature_input_size, the --feature_blocks pooled, averaged with the mirror image under
    --feature_mirror. [N, S, S, 3] float32 in [0, 255] -> [N, D].

    Raises:
        ValueError, FileNotFoundError: as `features.build_extractor`, `blocks.with_blocks`.
    """
    c = config.cluster
    extractor = features_lib.build_extractor(
        c.feature_extractor, c.feature_weights or None, input_size=c.feature_input_size
    )
    extractor = blocks_lib.with_blocks(extractor, c.feature_blocks)
    if c.feature_mirror:
        extractor = blocks_lib.with_mirror_average(extractor)
    return extractor


@dataclasses.dataclass(frozen=True)
class _Features:
    kept: np.ndarray  # [M] int64 indices into rel_paths
    features: np.ndarray  # [M, D] float32
    skipped: list[tuple[str, str]]
    extract_seconds: float
    images_per_second: float
    cached: bool  # reused from clusters/features.npy


def _features(config: Config, root: str, rel_paths: list[str]) -> _Features:
    """Pooled features of every readable image, from the cache when it matches."""
    c = config.cluster
    key = _cache_key(config, root, rel_paths) if c.feature_cache else None
    if key is not None:
        hit = cache_lib.load(config.clusters_dir, key)
        if hit is not None:
            logging.info(
                "features: %d images from the cache %s (extracted at %.1f images/s)",
                len(hit.kept),
                os.path.join(config.clusters_dir, cache_lib.FEATURES),
                hit.images_per_second,
            )
            return _Features(
                hit.kept,
                hit.features,
                hit.skipped,
                hit.extract_seconds,
                hit.images_per_second,
                True,
            )
    extractor = clustering_extractor(config)
    skip_log = images_lib.SkipLog()
    kept, feats, timing = extract.extract_features(
        extractor,
        root,
        rel_paths,
        crop_size=config.data.crop_size,
        framing=c.feature_framing,
        batch_size=c.batch_size,
        skip_log=skip_log,
    )
    logging.info(
        "features: %d images in %.1f s (%.1f images/s), %d skipped",
        len(kept),
        timing["extract_seconds"],
        timing["images_per_second"],
        skip_log.count,
    )
    result = _Features(
        kept,
        feats,
        list(skip_log.skipped),
        timing["extract_seconds"],
        timing["images_per_second"],
        False,
    )
    if key is not None and len(kept):
        cache_lib.save(
            config.clusters_dir,
            key,
            cache_lib.CachedFeatures(
                kept, feats, result.skipped, result.extract_seconds, result.images_per_second
            ),
        )
    return result


def _cache_key(config: Config, root: str, rel_paths: list[str]) -> cache_lib.CacheKey:
    """The feature cache's key: everything the features of `rel_paths` depend on."""
    c = config.cluster
    return cache_lib.make_key(
        extractor=c.feature_extractor,
        weights_path=c.feature_weights,
        blocks=c.feature_blocks,
        mirror=c.feature_mirror,
        framing=c.feature_framing,
        crop_size=config.data.crop_size,
        input_size=features_lib.input_size(c.feature_extractor, c.feature_input_size),
        images_dir=root,
        images=rel_paths,
    )


@dataclasses.dataclass(frozen=True)
class Space:
    """The points that are clustered and the transform that made them."""

    points: np.ndarray  # [N, d] float32
    pca_mean: np.ndarray  # [D]
    pca_matrix: np.ndarray  # [D, d], whitening included
    description: str  # e.g. "l2 -> pca 256 whitened -> l2"


def clustering_space(feats: np.ndarray, config: Config) -> Space:
    """feats [N, D] -> L2 -> PCA to --pca_dim (whitened with --pca_whiten) -> L2 with --pca_l2.

    The paper (§2.4) L2-normalises and reduces with PCA to 256; whitening and the second L2
    are this project's options (docs/experiments/2026-12-04-discovery.md). Cluster statistics live in this space.
    """
    c = config.cluster
    normalized = pca.l2_normalize(feats)
    pca_mean, pca_matrix = pca.fit_pca(normalized, c.pca_dim, whiten=c.pca_whiten)
    if pca_matrix.shape[1] < c.pca_dim:
        logging.warning(
            "--pca_dim=%d reduced to %d (feature dim %d, %d images)",
            c.pca_dim,
            pca_matrix.shape[1],
            feats.shape[1],
            len(feats),
        )
    points = pca.to_space(feats, pca_mean, pca_matrix, l2_after=c.pca_l2)
    description = (
        f"l2 -> pca {pca_matrix.shape[1]}{' whitened' if c.pca_whiten else ''}"
        f"{' -> l2' if c.pca_l2 else ''}"
    )
    return Space(points, pca_mean, pca_matrix, description)


def discover(points: np.ndarray, k: int, config: Config) -> kmeans.Clustering:
    """k clusters of points [N, d] by --clustering: k-means (paper) or SCAN heads."""
    c = config.cluster
    if c.method == "kmeans":
        return kmeans.discover_clusters(
            points,
            k,
            niter=c.kmeans_niter,
            nredo=c.kmeans_nredo,
            seed=config.seed,
            max_points_per_centroid=c.max_points_per_centroid,
            min_cluster_size=c.min_cluster_size,
        )
    if c.method == "scan":
        result = scan.train_scan(
            points,
            k,
            num_neighbors=min(c.scan_neighbors, len(points) - 1),
            entropy_weight=c.scan_entropy_weight,
            heads=c.scan_heads,
            hidden=c.scan_hidden,
            epochs=c.scan_epochs,
            batch_size=c.scan_batch_size,
            learning_rate=c.scan_learning_rate,
            seed=config.seed,
        )
        return scan.clustering_from_probs(
            points,
            result.probs,
            min_cluster_size=c.min_cluster_size,
            objective=float(result.losses[result.best_head]),
        )
    raise ValueError(f"--clustering: unknown method {c.method!r}; expected kmeans or scan")


def _cluster_and_write(
    config: Config,
    out: str,
    k: int,
    root: str,
    images: list[str],
    duplicates: dict[str, str],
    space: Space,
    common: dict,
    *,
    prepare_seconds: float,
) -> dict:
    """Clusters `space` into k and writes one artifact set into `out`; returns its summary."""
    start = time.perf_counter()
    result = discover(space.points, k, config)
    kmeans_seconds = time.perf_counter() - start + prepare_seconds
    artifacts.write_stats(os.path.join(out, artifacts.STATS), _cluster_stats(config, result, space))
    index_html = _write_contact_sheets(config, out, root, images, result)
    if config.cluster.projector:
        write_projector(os.path.join(out, "projector"), space.points, images, result.labels)
    assigned = _assignments(images, duplicates, result)
    spread = np.bincount(result.labels, weights=result.distances, minlength=len(result.sizes))
    summary = {
        **common,
        "images_assigned": len(assigned),
        "pca_dim": int(space.pca_matrix.shape[1]),
        "num_clusters_asked": int(k),
        "num_clusters": int(len(result.sizes)),
        "clusters_merged": result.merged,
        "cluster_sizes": result.sizes.tolist(),
        # mean distance of members to their centroid, per cluster (clustering space)
        "cluster_spread": np.round(spread / np.maximum(result.sizes, 1), 5).tolist(),
        "mean_spread": round(float(result.distances.mean()), 5),
        "kmeans_objective": result.objective,
        "kmeans_seconds": round(kmeans_seconds, 3),
        "contact_sheets": index_html,
    }
    io_utils.write_json(os.path.join(out, SUMMARY), summary)
    # Last: assignments.csv completes the set (`clusters_exist`), so a kill at any moment
    # before it leaves a folder the next run clusters again.
    artifacts.write_assignments(
        os.path.join(out, artifacts.ASSIGNMENTS),
        [p for p, _, _ in assigned],
        np.asarray([label for _, label, _ in assigned], np.int32),
        np.asarray([dist for _, _, dist in assigned], np.float32),
    )
    return summary


def _cluster_stats(
    config: Config, result: kmeans.Clustering, space: Space
) -> artifacts.ClusterStats:
    """What training reads of the clusters: centroids, spreads, sizes and the space."""
    c = config.cluster
    return artifacts.ClusterStats(
        centroids=result.centroids,
        stds=result.stds,
        sizes=result.sizes,
        pca_mean=space.pca_mean,
        pca_matrix=space.pca_matrix,
        extractor=c.feature_extractor,
        image_size=features_lib.input_size(c.feature_extractor, c.feature_input_size),
        crop_size=config.data.crop_size,
    )


def _write_contact_sheets(
    config: Config, out: str, root: str, images: list[str], result: kmeans.Clustering
) -> str:
    """Writes `out`/montages/ (one sheet per cluster, named as cluster_names.json says);
    returns the path of its index page."""
    c = config.cluster
    return contact_sheets.write_contact_sheets(
        os.path.join(out, os.path.dirname(contact_sheets.INDEX)),
        root,
        images,
        result.labels,
        result.distances,
        result.sizes,
        members=c.contact_sheet_members,
        thumb=c.thumbnail_size,
        crop_size=config.data.crop_size,
        title=f"{len(result.sizes)} clusters of {root} ({c.feature_extractor}, {c.method})",
        names=contact_sheets.read_cluster_names(os.path.join(out, contact_sheets.CLUSTER_NAMES)),
    )


def _assignments(
    images: list[str], duplicates: dict[str, str], result: kmeans.Clustering
) -> list[tuple[str, int, float]]:
    """Sorted (image, cluster, distance to its centroid) of every clustered image and copy.

    Copies of a clustered original take its cluster and distance; copies of a skipped
    (unreadable) original are as unreadable and are left out with it.
    """
    row = {p: i for i, p in enumerate(images)}
    return sorted(
        [(p, int(result.labels[i]), float(result.distances[i])) for p, i in row.items()]
        + [
            (d, int(result.labels[row[o]]), float(result.distances[row[o]]))
            for d, o in duplicates.items()
            if o in row
        ]
    )


def _maybe_report(
    config: Config, out: str, images: list[str], duplicates: dict[str, str], summary: dict
) -> dict | None:
    """The attribute report of one k (evaluation only) when labels are known, else None.

    Same rows as `python -m xplore_tf.evaluate`'s discovery part (`report.cluster_report`),
    also written to `out`/report.json.
    """
    labels_csv = sources.default_labels_csv(config)
    if not labels_csv or not os.path.exists(labels_csv):
        return None
    paths, clusters, _ = artifacts.read_assignments(os.path.join(out, artifacts.ASSIGNMENTS))
    r = config.report
    rows, matched = report.cluster_report(
        paths,
        clusters,
        labels_csv,
        attributes=r.attributes,
        min_cluster_size=r.min_cluster_size,
        precision_threshold=r.precision_threshold,
    )
    groups = report.group_report(paths, clusters, labels_csv)
    report.write_report(
        os.path.join(out, REPORT),
        rows,
        labels_csv=labels_csv,
        images_matched=matched,
        num_clusters=summary["num_clusters"],
        min_cluster_size=r.min_cluster_size,
        precision_threshold=r.precision_threshold,
        label_groups_nmi=groups,
    )
    return {
        "labels_csv": labels_csv,
        "images_matched": matched,
        "min_cluster_size": r.min_cluster_size,
        "attributes": [dataclasses.asdict(row) for row in rows],
        "label_groups_nmi": groups,
    }


def format_summary(summary: dict) -> str:
    """The lines `python -m xplore_tf.cluster` prints (one set, or a k sweep)."""
    features = (
        f"features: {summary['extractor']}"
        + (
            f" blocks {','.join(summary['feature_blocks'])}"
            if summary.get("feature_blocks")
            else ""
        )
        + f" dim {summary['feature_dim']} -> {summary.get('space', 'pca')}, "
        + (
            f"from the cache (extracted at {summary['extract_images_per_second']:.1f} images/s)"
            if summary.get("features_cached")
            else f"{summary['extract_seconds']:.1f} s ({summary['extract_images_per_second']:.1f} "
            "images/s)"
        )
    )
    lines = [
        f"images: {summary['images_clustered']} clustered, {summary['images_skipped']} skipped, "
        f"{summary['duplicates_count']} exact duplicates (of {summary['images_listed']} "
        f"listed in {summary['images_dir']})",
        features,
    ]
    for one in summary.get("sweep", [summary]):
        sizes = np.asarray(one["cluster_sizes"])
        order = np.argsort(-sizes, kind="stable")
        size_text = " ".join(f"{int(i)}:{int(sizes[i])}" for i in order)
        lines += [
            f"{'SCAN' if one.get('clustering') == 'scan' else 'k-means'}: "
            f"{one['num_clusters']} clusters "
            f"({one['clusters_merged']} merged), {one['kmeans_seconds']:.1f} s, mean distance "
            f"to centroid {one.get('mean_spread', 0.0):.3f}",
            f"cluster sizes (id:size, largest first): {size_text}",
        ]
        found = one.get("attribute_report")
        if found:
            best = ", ".join(
                f"{r['attribute']} {r['best_precision']:.2f} / {r['nmi']:.3f}"
                for r in found["attributes"]
            )
            groups = "".join(
                f"; {name} NMI {nmi:.3f}" for name, nmi in found.get("label_groups_nmi", {}).items()
            )
            lines.append(f"best-cluster precision / NMI: {best}{groups}")
        lines.append(f"contact sheets: {one['contact_sheets']}")
    if "k_sweep_html" in summary:
        lines.append(f"k sweep: {summary['k_sweep_html']}")
    return "\n".join(lines)


def write_projector(
    out_dir: str, embedding: np.ndarray, images: list[str], labels: np.ndarray
) -> None:
    """A TensorBoard projector of the PCA features, coloured by cluster (`tensorboard --logdir`)."""
    import tensorflow as tf
    from tensorboard.plugins import projector

    os.makedirs(out_dir, exist_ok=True)
    lines = ["image\tcluster"] + [f"{p}\t{int(c)}" for p, c in zip(images, labels, strict=True)]
    io_utils.write_text(os.path.join(out_dir, "metadata.tsv"), "\n".join(lines) + "\n")
    var = tf.Variable(embedding, name="cluster_features")
    tf.train.Checkpoint(embedding=var).save(os.path.join(out_dir, "embedding.ckpt"))
    cfg = projector.ProjectorConfig()
    emb = cfg.embeddings.add()
    emb.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    emb.metadata_path = "metadata.tsv"
    projector.visualize_embeddings(out_dir, cfg)


__all__ = ["clusters_exist", "format_summary", "run_clustering"]
