from __future__ import annotations

import numpy as np

from xplore_tf.clustering import pca


def test_l2_normalize_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(pca.l2_normalize(x), [[0.6, 0.8], [0, 0], [1, 0]], atol=1e-7)


def test_pca_recovers_known_axes_and_variance_order():
    rng = np.random.default_rng(0)
    # Variance 9 along (1,1)/sqrt2, variance 1 along (1,-1)/sqrt2, 0 along z.
    a = rng.normal(0, 3, 5000)
    b = rng.normal(0, 1, 5000)
    x = np.stack([(a + b) / np.sqrt(2), (a - b) / np.sqrt(2), np.zeros(5000)], 1) + [5, -2, 1]
    mean, matrix = pca.fit_pca(x, 2)
    np.testing.assert_allclose(mean, [5, -2, 1], atol=0.15)
    assert matrix.shape == (3, 2)
    np.testing.assert_allclose(np.abs(matrix[:, 0]), [1 / np.sqrt(2), 1 / np.sqrt(2), 0], atol=0.02)
    np.testing.assert_allclose(np.abs(matrix[:, 1]), [1 / np.sqrt(2), 1 / np.sqrt(2), 0], atol=0.02)
    y = pca.apply_pca(x, mean, matrix)
    np.testing.assert_allclose(y.std(0), [3, 1], rtol=0.05)


def test_pca_dim_is_clamped_and_signs_deterministic():
    x = np.random.default_rng(1).normal(size=(10, 50))
    mean, m1 = pca.fit_pca(x, 256)
    assert m1.shape == (50, 10)
    _, m2 = pca.fit_pca(x.copy(), 256)
    np.testing.assert_array_equal(m1, m2)
    top = m1[np.argmax(np.abs(m1), axis=0), np.arange(10)]
    assert (top > 0).all()


def test_whitening_against_a_hand_computed_case():
    # Mean 0; sample variances (N - 1 = 3): 8/3 along x, 2/3 along y, no covariance.
    x = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    mean, matrix = pca.fit_pca(x, 2, whiten=True, eps=0.0)
    np.testing.assert_allclose(mean, [0, 0], atol=1e-7)
    np.testing.assert_allclose(
        np.abs(matrix), [[1 / np.sqrt(8 / 3), 0], [0, 1 / np.sqrt(2 / 3)]], atol=1e-6
    )
    y = pca.apply_pca(x, mean, matrix)
    np.testing.assert_allclose(y.var(axis=0, ddof=1), [1.0, 1.0], rtol=1e-5)
    # eps bounds the scale of an axis without variance: eps * largest variance is added.
    flat = np.array([[1.0, 5.0], [-1.0, 5.0], [3.0, 5.0], [-3.0, 5.0]])
    _, m = pca.fit_pca(flat, 2, whiten=True, eps=0.01)
    top = 20.0 / 3.0  # variance along x
    np.testing.assert_allclose(
        np.abs(m).max(axis=0), [1 / np.sqrt(top * 1.01), 1 / np.sqrt(0.01 * top)], rtol=1e-5
    )
