"""PCA fitted on the data, kept as (mean, matrix) so new images can be projected later.

Optionally whitened: every principal axis is scaled to unit variance (the matrix absorbs
the scaling, so `apply_pca` is unchanged). Whitening stops the few dominant directions of
ImageNet features (pose, lighting, background) from deciding every k-means distance; on
celeba10k it raised the attributes found at k = 100 (docs/experiments/2026-12-04-discovery.md).
"""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm [N, D] (paper §2.4: features are L2-normalised)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def fit_pca(
    x: np.ndarray, dim: int, *, whiten: bool = False, eps: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of x [N, D]: returns (mean [D], matrix [D, d]) with d = min(dim, D, N).

    Signs are fixed (largest-magnitude loading of each axis positive) so the transform
    is deterministic across LAPACK builds. With `whiten`, column j is divided by
    sqrt(lambda_j + eps * lambda_0) (lambda_j the variance along axis j, sample covariance
    with N - 1): the projected data has unit variance per axis, and axes with almost no
    variance are not blown up without bound.
    """
    x = np.asarray(x, np.float64)
    n, d_in = x.shape
    d = min(dim, d_in, n)
    mean = x.mean(axis=0)
    centered = x - mean
    if d_in <= n:
        cov = centered.T @ centered / max(n - 1, 1)
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1][:d]
        matrix, variances = eigvec[:, order], np.maximum(eigval[order], 0.0)
    else:  # fewer samples than dimensions: the thin SVD is cheaper
        _, sv, vt = np.linalg.svd(centered, full_matrices=False)
        matrix, variances = vt[:d].T, sv[:d] ** 2 / max(n - 1, 1)
    flip = np.sign(matrix[np.argmax(np.abs(matrix), axis=0), np.arange(d)])
    matrix = matrix * np.where(flip == 0, 1.0, flip)
    if whiten:
        top = float(variances[0]) if d else 0.0
        matrix = matrix / np.sqrt(variances + eps * top + 1e-30)
    return mean.astype(np.float32), matrix.astype(np.float32)


def apply_pca(x: np.ndarray, mean: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Projects x [N, D] to [N, d]."""
    return ((np.asarray(x, np.float32) - mean) @ matrix).astype(np.float32)


def to_space(
    feats: np.ndarray, mean: np.ndarray, matrix: np.ndarray, *, l2_after: bool
) -> np.ndarray:
    """Pooled features [N, D] -> points [N, d] of the clustering space: L2, PCA, L2 again
    when `l2_after` (--pca_l2). The transform `cluster` fits (`pipeline.clustering_space`)
    and applies to new images (`clustering/space.py`)."""
    points = apply_pca(l2_normalize(feats), mean, matrix)
    return l2_normalize(points) if l2_after else points
