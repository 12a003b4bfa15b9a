"""SCAN's neighbour-consistency heads (clustering/scan.py): loss by hand, blobs recovered."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from xplore_tf.clustering import report, scan


def test_scan_loss_by_hand():
    # B = 2 anchors, H = 1 head, k = 2 clusters.
    a = np.array([[[1.0, 0.0]], [[0.5, 0.5]]], np.float32)
    n = np.array([[[1.0, 0.0]], [[1.0, 0.0]]], np.float32)
    total, consistency, entropy = scan.scan_loss(a, n, entropy_weight=2.0)
    # dots: 1 and 0.5 -> consistency = -(log 1 + log 0.5) / 2 = log(2) / 2.
    # mean prediction (0.75, 0.25) -> entropy = -(0.75 log 0.75 + 0.25 log 0.25).
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    np.testing.assert_allclose(np.asarray(consistency), [np.log(2) / 2], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(entropy), [h], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(total), [np.log(2) / 2 - 2 * h], rtol=1e-5)


def test_mine_neighbors_excludes_self():
    x = np.array([[0.0], [1.0], [3.0], [10.0], [12.0]])
    np.testing.assert_array_equal(scan.mine_neighbors(x, 1)[:, 0], [1, 0, 1, 4, 3])
    assert scan.mine_neighbors(x, 2).tolist()[3] == [4, 2]
    with pytest.raises(ValueError, match="--scan_neighbors=5 must be in"):
        scan.mine_neighbors(x, 5)


def test_heads_shape_config_round_trip_and_errors():
    layer = scan.ClusteringHeads(3, heads=2, hidden=4, seed=1)
    probs = np.asarray(layer(np.ones((5, 6), np.float32)))
    assert probs.shape == (5, 2, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    clone = scan.ClusteringHeads.from_config(layer.get_config())
    assert (clone.num_clusters, clone.heads, clone.hidden, clone.seed) == (3, 2, 4, 1)
    assert keras.saving.get_registered_object("xplore_tf>ClusteringHeads") is scan.ClusteringHeads
    with pytest.raises(ValueError, match="expects \\[N, d\\]"):
        scan.ClusteringHeads(3)(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="num_clusters >= 2"):
        scan.ClusteringHeads(1)


def test_scan_recovers_known_blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 10, (4, 8))
    truth = np.repeat(np.arange(4), 50)
    x = (centers[truth] + rng.normal(0, 0.5, (200, 8))).astype(np.float32)
    result = scan.train_scan(
        x, 4, num_neighbors=5, heads=2, hidden=16, epochs=40, batch_size=50, seed=0
    )
    assert result.probs.shape == (200, 4) and result.losses.shape == (2,)
    assert result.best_head == int(np.argmin(result.losses))
    assert report.normalized_mutual_information(result.labels, truth) == pytest.approx(1.0)
    clusters = scan.clustering_from_probs(x, result.probs)
    assert sorted(clusters.sizes.tolist()) == [50, 50, 50, 50]
    np.testing.assert_allclose(
        np.sort(clusters.centroids[:, 0]), np.sort(x.reshape(4, 50, 8).mean(1)[:, 0]), rtol=1e-5
    )


def test_clustering_from_probs_drops_empty_and_merges_small_by_hand():
    x = np.array([[0.0], [1.0], [10.0], [11.0], [12.0], [5.0]], np.float32)
    # Cluster 1 is never the most probable (empty); cluster 3 has one member, whose second
    # choice is cluster 0, so it joins cluster 0. Survivors 0 and 2 become ids 0 and 1.
    probs = np.array(
        [
            [0.9, 0.05, 0.03, 0.02],
            [0.9, 0.05, 0.03, 0.02],
            [0.1, 0.05, 0.8, 0.05],
            [0.1, 0.05, 0.8, 0.05],
            [0.1, 0.05, 0.8, 0.05],
            [0.3, 0.0, 0.1, 0.6],
        ],
        np.float32,
    )
    result = scan.clustering_from_probs(x, probs, min_cluster_size=2)
    np.testing.assert_array_equal(result.labels, [0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(result.sizes, [3, 3])
    np.testing.assert_allclose(result.centroids[:, 0], [2.0, 11.0])
    np.testing.assert_allclose(result.distances, [2, 1, 1, 0, 1, 3])
    assert result.merged == 2
