"""The clustering stage end to end on a tiny folder with a known partition."""

from __future__ import annotations

import colorsys
import dataclasses
import json
import os
import shutil

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
            **{
                "num_clusters": 3,
                "kmeans_nredo": 2,
                "contact_sheet_members": 4,
                "thumbnail_size": 16,
                **cluster,
            }
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


# Ten hues: different directions after the features' L2 normalisation (unlike grey levels).
COLOURS = [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h / 10, 1.0, 1.0)) for h in range(10)]


@pytest.fixture(scope="module")
def copied_folder(tmp_path_factory):
    """20 distinct faces (10 colours x 2), each copied twice more: 60 files, 40 copies."""
    root = tmp_path_factory.mktemp("copies")
    rng = np.random.default_rng(0)
    colour_of = {}
    for g, colour in enumerate(COLOURS):
        for j in range(2):
            img = np.clip(
                np.full((16, 16, 3), colour, float) + rng.normal(0, 6, (16, 16, 3)), 0, 255
            )
            name = f"c{g:02d}_{j}.png"
            Image.fromarray(img.astype(np.uint8)).save(root / name)
            colour_of[name] = g
            for m in (1, 2):
                os.makedirs(root / "copies", exist_ok=True)
                (root / "copies" / f"c{g:02d}_{j}_copy{m}.png").write_bytes(
                    (root / name).read_bytes()
                )
    return root, colour_of


def test_exact_duplicates_are_clustered_once_and_inherit_the_cluster(copied_folder, tmp_path):
    root, colour_of = copied_folder
    cfg = _config(tmp_path / "w", root, num_clusters=10, kmeans_nredo=3)
    summary = pipeline.run_clustering(cfg)
    assert summary["images_listed"] == 60 and summary["images_distinct"] == 20
    assert summary["images_clustered"] == 20 and summary["duplicates_count"] == 40
    assert summary["num_clusters"] == 10 and summary["clusters_merged"] == 0
    originals = {d["image"]: d["original"] for d in summary["duplicates"]}
    assert originals["copies/c03_1_copy2.png"] == "c03_1.png" and len(originals) == 40
    assert "40 exact duplicates" in pipeline.format_summary(summary)

    images, clusters, dists = artifacts.read_assignments(
        os.path.join(cfg.clusters_dir, "assignments.csv")
    )
    assert len(images) == 60
    cluster = dict(zip(images, clusters.tolist(), strict=True))
    distance = dict(zip(images, dists.tolist(), strict=True))
    for copy, original in originals.items():
        assert cluster[copy] == cluster[original] and distance[copy] == distance[original]
    # The 10 colours are the 10 clusters, each of the 2 distinct faces of its colour.
    assert report.normalized_mutual_information(
        [cluster[p] for p in colour_of], list(colour_of.values())
    ) == pytest.approx(1.0)
    stats = artifacts.read_stats(os.path.join(cfg.clusters_dir, "stats.npz"))
    assert stats.sizes.tolist() == [2] * 10


def test_k_is_checked_against_distinct_images(copied_folder, tmp_path):
    root, _ = copied_folder
    with pytest.raises(ValueError) as info:
        pipeline.run_clustering(_config(tmp_path / "w", root, num_clusters=21))
    assert str(info.value) == (
        f"{root}: 20 distinct images (of 60 listed; 40 exact duplicates) is fewer than "
        "--num_clusters=21"
    )
    # k = 20 clusters of at least --min_cluster_size=2 from 20 images cannot be: said so.
    with pytest.raises(
        ValueError, match="20 images cannot fill 20 clusters of 2: use --num_clusters=10"
    ):
        pipeline.run_clustering(_config(tmp_path / "w", root, num_clusters=20))


def test_features_are_cached_and_reused_until_the_images_change(folder, tmp_path):
    root, truth = folder
    cfg = _config(tmp_path / "w", root)
    first = pipeline.run_clustering(cfg)
    assert not first["features_cached"]
    assert os.path.exists(os.path.join(cfg.clusters_dir, "features.npy"))
    # Another k, PCA, whitening, method and seed: same features, from the cache.
    again = pipeline.run_clustering(
        dataclasses.replace(
            _config(tmp_path / "w", root, num_clusters=4, pca_dim=8, pca_whiten=True, pca_l2=True),
            seed=3,
        )
    )
    assert again["features_cached"] and again["num_clusters"] == 4 and again["pca_dim"] == 8
    assert again["images_skipped"] == 1 and again["skipped"][0]["image"] == "broken.jpg"
    assert again["space"] == "l2 -> pca 8 whitened -> l2"
    # Another image list: extracted again.
    extra = tmp_path / "more"
    shutil.copytree(root, extra)
    Image.new("RGB", (40, 48), (220, 30, 30)).save(extra / "new.png")
    moved = pipeline.run_clustering(_config(tmp_path / "w", extra))
    assert not moved["features_cached"] and moved["images_clustered"] == 37
    off = pipeline.run_clustering(_config(tmp_path / "w2", root, feature_cache=False))
    assert not os.path.exists(os.path.join(tmp_path / "w2", "clusters", "features.npy"))
    assert not off["features_cached"]


def test_scan_clustering_recovers_colours(folder, tmp_path):
    root, truth = folder
    cfg = _config(
        tmp_path / "w",
        root,
        method="scan",
        scan_neighbors=5,
        scan_heads=2,
        scan_hidden=16,
        scan_epochs=50,
        scan_batch_size=18,
        scan_learning_rate=1e-2,
        pca_dim=16,
    )
    summary = pipeline.run_clustering(cfg)
    assert summary["clustering"] == "scan" and summary["num_clusters"] == 3
    images, clusters, _ = artifacts.read_assignments(
        os.path.join(cfg.clusters_dir, "assignments.csv")
    )
    colours = [truth[p] for p in images]
    assert report.normalized_mutual_information(clusters, colours) == pytest.approx(1.0)
    stats = artifacts.read_stats(os.path.join(cfg.clusters_dir, "stats.npz"))
    assert stats.sizes.tolist() == [12, 12, 12] and (stats.stds > 0).all()
