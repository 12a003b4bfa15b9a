"""The clustering stage end to end: images -> features -> PCA -> k-means -> artifacts."""

from __future__ import annotations

import os
import time

import numpy as np
from absl import logging

from xplore_tf import features as features_lib
from xplore_tf import io_utils
from xplore_tf.clustering import artifacts, contact_sheets, kmeans, pca
from xplore_tf.config import Config
from xplore_tf.data import images as images_lib
from xplore_tf.data import sources
from xplore_tf.features import extract


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
            "(see README: converting PyTorch checkpoints)"
        )


def run_clustering(config: Config) -> dict:
    """Discovers attribute clusters and writes WORKDIR/clusters/; returns the summary.

    Lists the images folder (links followed), clusters each distinct file once (exact
    duplicates, same bytes, are reported and take their original's cluster), skips and
    counts unreadable files. ValueError when there are fewer distinct (or readable) images
    than --num_clusters.
    """
    c = config.cluster
    _check_extractor_weights(config)
    root = sources.resolve_images_dir(config)
    listing = images_lib.scan_images(root)
    listed = listing.images
    if not listed:
        raise ValueError(
            f"{root}: no images found (looked for {', '.join(images_lib.IMAGE_EXTENSIONS)})"
        )
    # Exact copies (same file bytes) are clustered once: k-means on repeated points makes
    # zero-spread clusters. Each copy gets its original's cluster in assignments.csv.
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
    if len(rel_paths) < c.num_clusters:
        raise ValueError(
            f"{root}: {len(rel_paths)} distinct images (of {len(listed)} listed; "
            f"{len(duplicates)} exact duplicates) is fewer than --num_clusters={c.num_clusters}"
        )
    if len(rel_paths) < c.num_clusters * c.min_cluster_size:
        logging.warning(
            "%d distinct images cannot fill %d clusters of --min_cluster_size=%d: expect "
            "clusters to be merged (or fewer --num_clusters)",
            len(rel_paths),
            c.num_clusters,
            c.min_cluster_size,
        )
    logging.info(
        "clustering %d distinct images from %s into %d clusters",
        len(rel_paths),
        root,
        c.num_clusters,
    )
    if os.path.exists(os.path.join(config.checkpoint_dir, "checkpoint")):
        logging.warning(
            "%s holds a run trained on the clusters being replaced: if they change, `train` "
            "will refuse to resume it (train with --noresume, or use a new --workdir)",
            config.checkpoint_dir,
        )

    extractor = features_lib.build_extractor(c.feature_extractor, c.feature_weights or None)
    skip_log = images_lib.SkipLog()
    kept, feats, timing = extract.extract_features(
        extractor,
        root,
        rel_paths,
        crop_size=config.data.crop_size,
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
    if len(kept) < c.num_clusters:
        raise ValueError(
            f"{root}: only {len(kept)} readable images ({skip_log.count} skipped), fewer than "
            f"--num_clusters={c.num_clusters}"
        )

    start = time.perf_counter()
    normalized = pca.l2_normalize(feats)
    pca_mean, pca_matrix = pca.fit_pca(normalized, c.pca_dim)
    if pca_matrix.shape[1] < c.pca_dim:
        logging.warning(
            "--pca_dim=%d reduced to %d (feature dim %d, %d images)",
            c.pca_dim,
            pca_matrix.shape[1],
            feats.shape[1],
            len(feats),
        )
    reduced = pca.apply_pca(normalized, pca_mean, pca_matrix)
    result = kmeans.discover_clusters(
        reduced,
        c.num_clusters,
        niter=c.kmeans_niter,
        nredo=c.kmeans_nredo,
        seed=config.seed,
        max_points_per_centroid=c.max_points_per_centroid,
        min_cluster_size=c.min_cluster_size,
    )
    kmeans_seconds = time.perf_counter() - start

    out = config.clusters_dir
    images = [rel_paths[i] for i in kept]
    stats = artifacts.ClusterStats(
        centroids=result.centroids,
        stds=result.stds,
        sizes=result.sizes,
        pca_mean=pca_mean,
        pca_matrix=pca_matrix,
        extractor=c.feature_extractor,
        image_size=extractor.input_size,
        crop_size=config.data.crop_size,
    )
    artifacts.write_stats(os.path.join(out, artifacts.STATS), stats)
    index_html = contact_sheets.write_contact_sheets(
        os.path.join(out, "montages"),
        root,
        images,
        result.labels,
        result.distances,
        result.sizes,
        members=c.contact_sheet_members,
        thumb=c.thumbnail_size,
        crop_size=config.data.crop_size,
        title=f"{len(result.sizes)} clusters of {root} ({c.feature_extractor})",
        names=contact_sheets.read_cluster_names(os.path.join(out, contact_sheets.CLUSTER_NAMES)),
    )
    if c.projector:
        write_projector(os.path.join(out, "projector"), reduced, images, result.labels)
    # Copies of a clustered original take its cluster and distance; copies of a skipped
    # (unreadable) original are as unreadable and are left out with it.
    row = {p: i for i, p in enumerate(images)}
    assigned = sorted(
        [(p, int(result.labels[i]), float(result.distances[i])) for p, i in row.items()]
        + [
            (d, int(result.labels[row[o]]), float(result.distances[row[o]]))
            for d, o in duplicates.items()
            if o in row
        ]
    )
    summary = {
        "images_dir": root,
        "images_listed": len(listed),
        "images_distinct": len(rel_paths),
        "images_clustered": len(kept),
        "images_skipped": skip_log.count,
        "images_assigned": len(assigned),
        "skipped": [{"image": p, "reason": r} for p, r in skip_log.skipped],
        "duplicates_count": len(duplicates),
        "duplicates": [{"image": d, "original": o} for d, o in duplicates.items()],
        "links_skipped": listing.links_skipped,
        "files_ignored": listing.ignored,
        "extractor": c.feature_extractor,
        "feature_dim": int(feats.shape[1]),
        "pca_dim": int(pca_matrix.shape[1]),
        "num_clusters": int(len(result.sizes)),
        "clusters_merged": result.merged,
        "cluster_sizes": result.sizes.tolist(),
        "kmeans_objective": result.objective,
        "extract_seconds": round(timing["extract_seconds"], 3),
        "extract_images_per_second": round(timing["images_per_second"], 2),
        "kmeans_seconds": round(kmeans_seconds, 3),
        "contact_sheets": index_html,
    }
    io_utils.write_json(os.path.join(out, "summary.json"), summary)
    # Last: assignments.csv completes the set (`clusters_exist`), so a kill at any moment
    # before it leaves a folder the next run clusters again.
    artifacts.write_assignments(
        os.path.join(out, artifacts.ASSIGNMENTS),
        [p for p, _, _ in assigned],
        np.asarray([label for _, label, _ in assigned], np.int32),
        np.asarray([dist for _, _, dist in assigned], np.float32),
    )
    return summary


def format_summary(summary: dict) -> str:
    sizes = np.asarray(summary["cluster_sizes"])
    order = np.argsort(-sizes, kind="stable")
    size_text = " ".join(f"{int(i)}:{int(sizes[i])}" for i in order)
    return "\n".join(
        [
            f"images: {summary['images_clustered']} clustered, {summary['images_skipped']} skipped, "
            f"{summary['duplicates_count']} exact duplicates (of {summary['images_listed']} "
            f"listed in {summary['images_dir']})",
            f"features: {summary['extractor']} dim {summary['feature_dim']} -> PCA {summary['pca_dim']}, "
            f"{summary['extract_seconds']:.1f} s ({summary['extract_images_per_second']:.1f} images/s)",
            f"k-means: {summary['num_clusters']} clusters ({summary['clusters_merged']} merged), "
            f"{summary['kmeans_seconds']:.1f} s",
            f"cluster sizes (id:size, largest first): {size_text}",
            f"contact sheets: {summary['contact_sheets']}",
        ]
    )


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
