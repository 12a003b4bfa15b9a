from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.clustering import kmeans, report


def _blobs(seed=0, k=4, n=60, d=8):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 10, (k, d))
    truth = np.repeat(np.arange(k), n)
    return centers[truth] + rng.normal(0, 0.5, (k * n, d)), truth


def test_blobs_partition_is_recovered():
    x, truth = _blobs()
    result = kmeans.discover_clusters(x.astype(np.float32), 4, seed=3)
    assert report.normalized_mutual_information(result.labels, truth) == pytest.approx(1.0)
    assert sorted(result.sizes.tolist()) == [60, 60, 60, 60]
    assert result.merged == 0


def test_deterministic_for_a_seed():
    x, _ = _blobs(seed=1, k=6, n=30)
    a = kmeans.discover_clusters(x.astype(np.float32), 6, seed=7, nredo=2)
    b = kmeans.discover_clusters(x.astype(np.float32), 6, seed=7, nredo=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_cluster_stats_by_hand():
    x = np.array([[0.0, 0.0], [2.0, 4.0], [10.0, 10.0], [10.0, 12.0], [10.0, 14.0]])
    labels = np.array([0, 0, 1, 1, 1])
    means, stds, sizes = kmeans.cluster_stats(x, labels, 2)
    np.testing.assert_allclose(means, [[1, 2], [10, 12]])
    np.testing.assert_allclose(stds, [[1, 2], [0, np.sqrt(8 / 3)]], rtol=1e-6)
    np.testing.assert_array_equal(sizes, [2, 3])


def test_assign_nearest_and_distance():
    c = np.array([[0.0, 0.0], [10.0, 0.0]])
    labels, dists = kmeans.assign(np.array([[1.0, 0.0], [7.0, 4.0]]), c)
    np.testing.assert_array_equal(labels, [0, 1])
    np.testing.assert_allclose(dists, [1.0, 5.0], rtol=1e-6)


def test_degenerate_clusters_are_merged():
    # Three tight blobs plus one lone outlier: with k=4 the outlier forms a singleton
    # cluster, whose std would be zero; it must be merged away.
    x, _ = _blobs(seed=2, k=3, n=40, d=4)
    x = np.concatenate([x, np.full((1, 4), 100.0)]).astype(np.float32)
    result = kmeans.discover_clusters(x, 4, seed=0, min_cluster_size=2)
    assert result.merged >= 1
    assert len(result.sizes) == 4 - result.merged
    assert (result.sizes >= 2).all()
    assert (result.stds > 0).all()
    assert result.labels.max() == len(result.sizes) - 1


def test_fewer_points_than_clusters_is_error():
    with pytest.raises(ValueError, match="cannot make 5 clusters from 3 points"):
        kmeans.faiss_kmeans(np.zeros((3, 2), np.float32), 5)
