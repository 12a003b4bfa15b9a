"""The clustering stage end to end on a tiny folder with a known partition."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from tests_support import make_folder

from xplore_tf import config as config_lib
from xplore_tf.clustering import artifacts, pipeline, report


def _config(workdir, images_dir, **cluster):
    return config_lib.Config(
        workdir=str(workdir),
        seed=0,
        data=config_lib.DataConfig(dataset="folder", images_dir=str(images_dir)),
        cluster=config_lib.ClusterConfig(
            num_clusters=3, kmeans_nredo=2, contact_sheet_members=4, thumbnail_size=16, **cluster
        ),
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    return root, make_folder(str(root))


def test_run_clustering_recovers_colours_and_writes_artifacts(folder, tmp_path):
    root, truth = folder
    cfg = _config(tmp_path / "w1", root, projector=True)
    summary = pipeline.run_clustering(cfg)
    assert summary["images_listed"] == 37 and summary["images_clustered"] == 36
    assert summary["images_skipped"] == 1 and summary["skipped"][0]["image"] == "broken.jpg"
    assert pipeline.clusters_exist(cfg)

    images, clusters, dists = artifacts.read_assignments(
        os.path.join(cfg.clusters_dir, "assignments.csv")
    )
    assert sorted(images) == sorted(truth) and (dists >= 0).all()
    colours = [truth[p] for p in images]
    assert report.normalized_mutual_information(clusters, colours) == pytest.approx(1.0)

    stats = artifacts.read_stats(os.path.join(cfg.clusters_dir, "stats.npz"))
    assert stats.centroids.shape == stats.stds.shape == (3, summary["pca_dim"])
    assert stats.sizes.tolist() == np.bincount(clusters).tolist() and stats.extractor == "pixels"
    assert (stats.stds > 0).all()

    montages = os.path.join(cfg.clusters_dir, "montages")
    for c in range(3):
        with Image.open(os.path.join(montages, f"cluster_{c:03d}.jpg")) as im:
            assert im.size == (32, 32)  # 4 members -> 2x2 grid of 16 px thumbnails
    page = open(os.path.join(montages, "index.html")).read()
    assert page.count("<figure>") == 3 and "12 images" in page
    assert os.path.exists(os.path.join(cfg.clusters_dir, "projector", "projector_config.pbtxt"))
    with open(os.path.join(cfg.clusters_dir, "summary.json")) as f:
        assert json.load(f)["num_clusters"] == 3


def test_deterministic(folder, tmp_path):
    root, _ = folder
    out = []
    for name in ("a", "b"):
        cfg = _config(tmp_path / name, root)
        pipeline.run_clustering(cfg)
        out.append(open(os.path.join(cfg.clusters_dir, "assignments.csv")).read())
    assert out[0] == out[1]


def test_input_errors_are_clear(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no images found"):
        pipeline.run_clustering(_config(tmp_path / "w", empty))
    few = tmp_path / "few"
    few.mkdir()
    Image.new("RGB", (8, 8)).save(few / "one.png")
    with pytest.raises(ValueError, match="fewer than --num_clusters=3"):
        pipeline.run_clustering(_config(tmp_path / "w", few))
    with pytest.raises(ValueError, match="needs --feature_weights"):
        pipeline.run_clustering(_config(tmp_path / "w", few, feature_extractor="mobilenet_v2"))
    with pytest.raises(FileNotFoundError, match="--feature_weights"):
        pipeline.run_clustering(_config(tmp_path / "w", few, feature_weights="/no/such.npz"))
    assert not (tmp_path / "w" / "clusters" / "stats.npz").exists()
