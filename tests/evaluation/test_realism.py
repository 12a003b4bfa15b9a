"""Fréchet distance: hand-checkable values, and the feature path of in-memory images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from xplore_tf.evaluation import realism


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu = rng.normal(size=6)
    assert realism.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_shifted_means_give_squared_distance():
    sigma = np.diag([1.0, 2.0, 3.0])
    mu1, mu2 = np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, -2.0])
    assert realism.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(9.0)


def test_known_covariances():
    # Diagonal: FD = sum (sqrt(a) - sqrt(b))^2 = (1-2)^2 + (3-1)^2 = 5, plus ||dmu||^2 = 1.
    fd = realism.frechet_distance(
        np.zeros(2), np.diag([1.0, 9.0]), np.array([1.0, 0.0]), np.diag([4.0, 1.0])
    )
    assert fd == pytest.approx(1.0 + 5.0)
    # 1-D: FD = (m1-m2)^2 + (s1-s2)^2.
    assert realism.frechet_distance([2.0], [[4.0]], [0.0], [[1.0]]) == pytest.approx(4.0 + 1.0)
    # Non-commuting covariances against scipy's general sqrtm.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T, b @ b.T + 0.1 * np.eye(5)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert realism.frechet_distance(np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(expected)


def test_rank_deficient_covariances_stay_finite_and_nonnegative():
    rng = np.random.default_rng(2)
    f1 = rng.normal(size=(5, 20))  # 5 samples in 20 dims: covariance of rank 4
    f2 = rng.normal(size=(5, 20)) + 3.0
    same = realism.frechet_distance_of_features(f1, f1)
    far = realism.frechet_distance_of_features(f1, f2)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(far) and far > 20 * 9 * 0.5  # mean shift alone is 180


def test_feature_statistics_checks_shapes():
    mu, sigma = realism.feature_statistics(np.array([[0.0, 1.0], [2.0, 3.0]]))
    np.testing.assert_allclose(mu, [1.0, 2.0])
    np.testing.assert_allclose(sigma, [[2.0, 2.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="at least 2"):
        realism.feature_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="different shapes"):
        realism.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_extractor_features_resize_in_memory_images():
    from xplore_tf import features

    extractor = features.build_extractor("pixels")  # 64 px input, 16x16x3 mean colours
    images = np.zeros((3, 32, 32, 3), np.uint8)
    images[1] = 255
    images[2, :, :16] = 255  # left half white
    f = realism.extractor_features(extractor, images, batch_size=2)
    assert f.shape == (3, 768)
    np.testing.assert_allclose(f[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(f[1], 1.0, atol=1e-5)
    grid = f[2].reshape(16, 16, 3)
    np.testing.assert_allclose(grid[:, :7], 1.0, atol=1e-5)
    np.testing.assert_allclose(grid[:, 9:], 0.0, atol=1e-5)
    # One compiled function per extractor: calls with other images and batch sizes do not
    # trace it again (TensorFlow warns about retracing when each call defines its own).
    fn = realism._features_function(extractor)
    traced = fn.experimental_get_tracing_count()
    for n in (5, 7, 2):
        realism.extractor_features(extractor, np.zeros((n, 32, 32, 3), np.uint8), batch_size=4)
    assert realism._features_function(extractor) is fn
    assert fn.experimental_get_tracing_count() <= traced + 1  # at most one shape-relaxed trace


def test_inception_weights_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="--inception_weights"):
        realism.build_inception_extractor(str(tmp_path / "missing.h5"))
