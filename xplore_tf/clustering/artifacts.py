"""The clustering stage's artifacts: `assignments.csv` and `stats.npz` (DESIGN.md §1).

Both are plain formats a person or another tool can read: CSV, and an .npz holding only
numeric and unicode arrays (loaded with allow_pickle=False). Both are written atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os

import numpy as np

from xplore_tf import io_utils

ASSIGNMENTS = "assignments.csv"
STATS = "stats.npz"
ASSIGNMENT_COLUMNS = ("image", "cluster", "distance")


@dataclasses.dataclass(frozen=True)
class ClusterStats:
    """Everything later stages need about the discovered clusters."""

    centroids: np.ndarray  # [k, d] float32, mu_k in PCA space
    stds: np.ndarray  # [k, d] float32, sigma_k in PCA space
    sizes: np.ndarray  # [k] int64
    pca_mean: np.ndarray  # [D] float32
    pca_matrix: np.ndarray  # [D, d] float32
    extractor: str  # --feature_extractor that produced the features
    image_size: int  # the extractor's input side in px
    crop_size: int  # centre crop applied before resizing (0 = shorter side)

    @property
    def num_clusters(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])


def write_stats(path: str, stats: ClusterStats) -> None:
    io_utils.write_npz(
        path,
        centroids=stats.centroids.astype(np.float32),
        stds=stats.stds.astype(np.float32),
        sizes=stats.sizes.astype(np.int64),
        pca_mean=stats.pca_mean.astype(np.float32),
        pca_matrix=stats.pca_matrix.astype(np.float32),
        extractor=np.array(stats.extractor),
        image_size=np.array(stats.image_size, np.int64),
        crop_size=np.array(stats.crop_size, np.int64),
    )


def read_stats(path: str) -> ClusterStats:
    """Loads stats.npz; a missing key or inconsistent shape is a ValueError naming the file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no cluster statistics; run `python -m xplore_tf.cluster`")
    with np.load(path, allow_pickle=False) as z:
        fields = [f.name for f in dataclasses.fields(ClusterStats)]
        missing = [f for f in fields if f not in z.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; expected {fields}")
        stats = ClusterStats(
            centroids=z["centroids"],
            stds=z["stds"],
            sizes=z["sizes"],
            pca_mean=z["pca_mean"],
            pca_matrix=z["pca_matrix"],
            extractor=str(z["extractor"]),
            image_size=int(z["image_size"]),
            crop_size=int(z["crop_size"]),
        )
    k, d = stats.centroids.shape
    if stats.stds.shape != (k, d) or stats.sizes.shape != (k,) or stats.pca_matrix.shape[1] != d:
        raise ValueError(
            f"{path}: inconsistent shapes centroids {stats.centroids.shape}, stds "
            f"{stats.stds.shape}, sizes {stats.sizes.shape}, pca_matrix {stats.pca_matrix.shape}"
        )
    return stats


def clusters_fingerprint(clusters_dir: str) -> str:
    """16 hex digits of SHA-256 over `stats.npz` and `assignments.csv` of a clusters folder.

    Identifies one clustering result: checkpoints and exports record it, so a model is never
    paired with other clusters than those it was trained on (see `xplore_tf.checkpoints`).

    Raises:
        FileNotFoundError: either file is missing.
    """
    digest = hashlib.sha256()
    for name in (STATS, ASSIGNMENTS):
        path = os.path.join(clusters_dir, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: missing; run `python -m xplore_tf.cluster`")
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:16]


def write_assignments(
    path: str, images: list[str], clusters: np.ndarray, distances: np.ndarray
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ASSIGNMENT_COLUMNS)
    for image, c, d in zip(images, clusters, distances, strict=True):
        w.writerow((image, int(c), f"{float(d):.6f}"))
    io_utils.write_text(path, buf.getvalue())


def read_assignments(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(relative image paths, cluster ids [N] int32, distances [N] float32)."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path}: no cluster assignments; run `python -m xplore_tf.cluster`"
        )
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header[:3]) != ASSIGNMENT_COLUMNS:
            raise ValueError(
                f"{path}: expected header {','.join(ASSIGNMENT_COLUMNS)}, got {header}"
            )
        images, clusters, dists = [], [], []
        for line, row in enumerate(reader, start=2):
            try:
                images.append(row[0])
                clusters.append(int(row[1]))
                dists.append(float(row[2]))
            except (IndexError, ValueError) as e:
                raise ValueError(f"{path}:{line}: malformed row {row}: {e}") from None
    return images, np.asarray(clusters, np.int32), np.asarray(dists, np.float32)
