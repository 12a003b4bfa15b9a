from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.clustering import artifacts


def _stats():
    rng = np.random.default_rng(0)
    return artifacts.ClusterStats(
        centroids=rng.normal(size=(3, 4)).astype(np.float32),
        stds=rng.uniform(0.1, 1, size=(3, 4)).astype(np.float32),
        sizes=np.array([5, 7, 9]),
        pca_mean=rng.normal(size=6).astype(np.float32),
        pca_matrix=rng.normal(size=(6, 4)).astype(np.float32),
        extractor="mobilenet_v2",
        image_size=224,
        crop_size=0,
    )


def test_stats_round_trip_without_pickle(tmp_path):
    path = str(tmp_path / "stats.npz")
    s = _stats()
    artifacts.write_stats(path, s)
    with np.load(path, allow_pickle=False) as z:  # must not need pickles
        assert z["extractor"].dtype.kind == "U"
    r = artifacts.read_stats(path)
    for name in ("centroids", "stds", "sizes", "pca_mean", "pca_matrix"):
        np.testing.assert_array_equal(getattr(r, name), getattr(s, name))
    assert (r.extractor, r.image_size, r.crop_size) == ("mobilenet_v2", 224, 0)
    assert (r.num_clusters, r.dim) == (3, 4)
    assert not list(tmp_path.glob(".tmp-*"))


def test_stats_missing_array_and_bad_shape(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, centroids=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="bad.npz: missing arrays"):
        artifacts.read_stats(str(p))
    s = _stats()
    p2 = str(tmp_path / "shape.npz")
    artifacts.write_stats(p2, artifacts.ClusterStats(**{**s.__dict__, "stds": np.zeros((2, 4))}))
    with pytest.raises(ValueError, match="inconsistent shapes"):
        artifacts.read_stats(p2)
    with pytest.raises(FileNotFoundError, match="xplore_tf.cluster"):
        artifacts.read_stats(str(tmp_path / "none.npz"))


def test_assignments_round_trip(tmp_path):
    path = str(tmp_path / "assignments.csv")
    names = ["a.jpg", "sub/b, with comma.png", "c.jpg"]
    artifacts.write_assignments(path, names, np.array([2, 0, 1]), np.array([0.5, 1.25, 3.0]))
    images, clusters, dists = artifacts.read_assignments(path)
    assert images == names
    np.testing.assert_array_equal(clusters, [2, 0, 1])
    np.testing.assert_allclose(dists, [0.5, 1.25, 3.0])
    assert open(path).readline().strip() == "image,cluster,distance"


def test_assignments_malformed(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("image,cluster,distance\nx.jpg,notanint,1.0\n")
    with pytest.raises(ValueError, match=r"a.csv:2: malformed row"):
        artifacts.read_assignments(str(p))
    p.write_text("path,label\n")
    with pytest.raises(ValueError, match="expected header"):
        artifacts.read_assignments(str(p))
