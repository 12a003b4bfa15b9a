"""faiss k-means and the per-cluster statistics that condition the generator (paper §2.1).

The generator's ASIN layers are driven by each cluster's centroid mu_k and per-dimension
standard deviation sigma_k, so every cluster must have enough members for a meaningful
sigma: tiny or spread-less clusters are merged into their nearest neighbours (and said so).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from absl import logging

# Floor of every stored per-dimension std sigma_k (a zero would be an ASIN input the
# generator never sees); reference groups and blended conditions use it too.
MIN_STD = 1e-6


@dataclasses.dataclass(frozen=True)
class Clustering:
    """Pseudo-labels and cluster statistics in PCA space."""

    labels: np.ndarray  # [N] int32, the nearest centroid of each point
    distances: np.ndarray  # [N] float32, Euclidean distance to that centroid
    centroids: np.ndarray  # [k, d] float32, mean of each cluster's members
    stds: np.ndarray  # [k, d] float32, per-dimension std of each cluster's members
    sizes: np.ndarray  # [k] int64
    merged: int  # clusters merged away because they were too small or degenerate
    objective: float  # faiss k-means objective (sum of squared distances)


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding [k, d]: each new centroid drawn with probability ~ squared distance.

    faiss seeds with a uniform sample, which often puts two seeds in one blob and leaves
    Lloyd's iterations stuck in a split/merged local minimum; k-means++ avoids most of that.
    """
    centroids = np.empty((k, x.shape[1]), np.float32)
    centroids[0] = x[rng.integers(len(x))]
    d2 = ((x - centroids[0]) ** 2).sum(1)
    for i in range(1, k):
        total = float(d2.sum())
        j = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centroids[i] = x[j]
        d2 = np.minimum(d2, ((x - centroids[i]) ** 2).sum(1))
    return centroids


def faiss_kmeans(
    x: np.ndarray,
    k: int,
    *,
    niter: int = 50,
    nredo: int = 5,
    seed: int = 0,
    max_points_per_centroid: int = 0,
) -> tuple[np.ndarray, float]:
    """k-means centroids [k, d] of x [N, d] with faiss (GPU when faiss sees one).

    `nredo` runs from k-means++ seeds drawn with `seed`; the lowest objective wins.
    """
    import logging as std_logging

    std_logging.getLogger("faiss.loader").setLevel(std_logging.WARNING)  # quiet CPU probing
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    if n < k:
        raise ValueError(f"cannot make {k} clusters from {n} points")
    use_gpu = hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
    rng = np.random.default_rng(seed)
    best, best_obj = None, float("inf")
    for redo in range(nredo):
        km = faiss.Kmeans(
            x.shape[1],
            k,
            niter=niter,
            seed=seed + redo,
            verbose=False,
            gpu=use_gpu,
            max_points_per_centroid=max_points_per_centroid or max(n // k + 1, 256),
            min_points_per_centroid=1,
        )
        km.train(x, init_centroids=kmeans_plus_plus(x, k, rng))
        objective = float(km.obj[-1]) if len(km.obj) else float("inf")
        if best is None or objective < best_obj:
            best, best_obj = np.array(km.centroids, np.float32), objective
    return best, best_obj


def assign(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid [N] int32 and Euclidean distance [N] float32 (exact search)."""
    x = np.asarray(x, np.float32)
    c = np.asarray(centroids, np.float32)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, in blocks to bound memory on large sets.
    labels = np.empty(len(x), np.int32)
    dists = np.empty(len(x), np.float32)
    c_sq = (c * c).sum(1)
    for start in range(0, len(x), 8192):
        block = x[start : start + 8192]
        d2 = (block * block).sum(1, keepdims=True) - 2.0 * block @ c.T + c_sq
        labels[start : start + len(block)] = np.argmin(d2, axis=1)
        best = d2[np.arange(len(block)), labels[start : start + len(block)]]
        dists[start : start + len(block)] = np.sqrt(np.maximum(best, 0.0))
    return labels, dists


def cluster_stats(
    x: np.ndarray, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cluster centroid [k, d], per-dimension std [k, d] (population) and size [k]."""
    x = np.asarray(x, np.float64)
    sizes = np.bincount(labels, minlength=k).astype(np.int64)
    sums = np.zeros((k, x.shape[1]))
    sq = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x)
    np.add.at(sq, labels, x * x)
    safe = np.maximum(sizes, 1)[:, None]
    means = sums / safe
    var = np.maximum(sq / safe - means * means, 0.0)
    return means.astype(np.float32), np.sqrt(var).astype(np.float32), sizes


def discover_clusters(
    x: np.ndarray,
    k: int,
    *,
    niter: int = 50,
    nredo: int = 5,
    seed: int = 0,
    max_points_per_centroid: int = 0,
    min_cluster_size: int = 2,
    min_std: float = MIN_STD,
) -> Clustering:
    """k-means, then merges clusters too small or without spread into their nearest ones."""
    centroids, objective = faiss_kmeans(
        x,
        k,
        niter=niter,
        nredo=nredo,
        seed=seed,
        max_points_per_centroid=max_points_per_centroid,
    )
    merged = 0
    while True:
        labels, dists = assign(x, centroids)
        means, stds, sizes = cluster_stats(x, labels, len(centroids))
        bad = (sizes < min_cluster_size) | (stds.mean(axis=1) < min_std)
        if not bad.any():
            break
        if bad.all():
            n, m = len(x), min_cluster_size
            if np.ptp(np.asarray(x), axis=0).max(initial=0.0) == 0.0:
                why = "every image has the same features (are the images all identical?)"
            elif n < k * m:
                why = f"{n} images cannot fill {k} clusters of {m}: use --num_clusters={n // m} or fewer"
            else:
                why = "many images have identical features (near-duplicates?)"
            raise ValueError(
                f"every cluster is smaller than --min_cluster_size={m} or has zero spread: {why}"
            )
        # Drop the worst offender and re-assign its members to their nearest survivors.
        drop = int(np.argmin(np.where(bad, sizes, np.iinfo(np.int64).max)))
        logging.warning(
            "cluster %d has %d member(s) and mean std %.2g: merging it into its neighbours",
            drop,
            sizes[drop],
            stds[drop].mean(),
        )
        centroids = np.delete(centroids, drop, axis=0)
        merged += 1
    if merged:
        logging.warning("merged %d degenerate cluster(s): k is now %d", merged, len(centroids))
    # Distances to the stored centroids (member means), not to faiss' last iterate.
    dists = np.linalg.norm(np.asarray(x, np.float32) - means[labels], axis=1).astype(np.float32)
    return Clustering(
        labels=labels,
        distances=dists,
        centroids=means,
        stds=np.maximum(stds, min_std),
        sizes=sizes,
        merged=merged,
        objective=objective,
    )
