"""PCA fitted on the data, kept as (mean, matrix) so new images can be projected later."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm [N, D] (paper §2.4: features are L2-normalised)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def fit_pca(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of x [N, D]: returns (mean [D], matrix [D, d]) with d = min(dim, D, N).

    Signs are fixed (largest-magnitude loading of each axis positive) so the transform
    is deterministic across LAPACK builds.
    """
    x = np.asarray(x, np.float64)
    n, d_in = x.shape
    d = min(dim, d_in, n)
    mean = x.mean(axis=0)
    centered = x - mean
    if d_in <= n:
        cov = centered.T @ centered / max(n - 1, 1)
        eigval, eigvec = np.linalg.eigh(cov)
        matrix = eigvec[:, np.argsort(eigval)[::-1][:d]]
    else:  # fewer samples than dimensions: the thin SVD is cheaper
        _, _, vt = np.linalg.svd(centered, full_matrices=False)
        matrix = vt[:d].T
    flip = np.sign(matrix[np.argmax(np.abs(matrix), axis=0), np.arange(d)])
    matrix = matrix * np.where(flip == 0, 1.0, flip)
    return mean.astype(np.float32), matrix.astype(np.float32)


def apply_pca(x: np.ndarray, mean: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Projects x [N, D] to [N, d]."""
    return ((np.asarray(x, np.float32) - mean) @ matrix).astype(np.float32)
