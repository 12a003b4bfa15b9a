"""The evaluation stage: a perfect and a random generator must score far apart; the binary."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image
from tests_support import TINY_MODEL_FLAGS, run_binary, tiny_config

from xplore_tf import config as config_lib
from xplore_tf.clustering import artifacts
from xplore_tf.data import sources, synthetic
from xplore_tf.evaluation import pipeline

SIZE = 48
PER_IDENTITY = 4


def _background_clusters_run(workdir) -> config_lib.Config:
    """A synthetic run whose 4 "discovered" clusters are the 4 background colours."""
    config = config_lib.Config(
        workdir=str(workdir),
        seed=1,
        data=config_lib.DataConfig(
            synthetic_num=400, synthetic_size=SIZE, synthetic_images_per_identity=PER_IDENTITY
        ),
        report=config_lib.ReportConfig(min_cluster_size=5),
        model=config_lib.ModelConfig(image_size=SIZE),
        eval=config_lib.EvalConfig(
            eval_images=100,
            probe_train_images=300,
            identity_regressor_epochs=15,
            identity_regressor_members=2,  # the ensemble path, at a test's cost
            identity_max_pairs=100,
            report_images=3,
            report_clusters=4,
        ),
    )
    root = sources.resolve_images_dir(config)
    with open(os.path.join(root, synthetic.LABELS_NAME), newline="") as f:
        rows = list(csv.DictReader(f))
    images = [r["image"] for r in rows]
    clusters = np.array([int(r["background"]) for r in rows])
    artifacts.write_assignments(
        os.path.join(config.clusters_dir, artifacts.ASSIGNMENTS),
        images,
        clusters,
        np.zeros(len(images)),
    )
    rng = np.random.default_rng(0)
    artifacts.write_stats(
        os.path.join(config.clusters_dir, artifacts.STATS),
        artifacts.ClusterStats(
            centroids=rng.normal(size=(4, 8)).astype(np.float32),
            stds=np.ones((4, 8), np.float32),
            sizes=np.bincount(clusters, minlength=4),
            pca_mean=np.zeros(768, np.float32),
            pca_matrix=np.zeros((768, 8), np.float32),
            extractor="pixels",
            image_size=64,
            crop_size=0,
        ),
    )
    return config


def _perfect_translator(config):
    """Re-renders each input's identity, attributes and jitter with the target background."""
    root = config.images_dir
    lookup = {}
    for name in sorted(os.listdir(root)):
        if name.endswith(".png"):
            x = np.asarray(Image.open(os.path.join(root, name)).convert("RGB"))
            lookup[x.tobytes()] = int(name[:-4])

    def translate(images, cluster_ids):
        out = []
        for x, c in zip(images, cluster_ids, strict=True):
            index = lookup[np.ascontiguousarray(x).tobytes()]
            _, attrs, geometry, jitter = synthetic.sample_item(
                config.data.synthetic_seed, index, images_per_identity=PER_IDENTITY
            )
            attrs = dataclasses.replace(attrs, background=int(c))
            out.append(synthetic.render_face(attrs, geometry, jitter, SIZE))
        return np.stack(out)

    return translate


def _perfect_strength(config):
    """Below strength 0.5 the input itself, from 0.5 on the perfect translation."""
    perfect = _perfect_translator(config)

    def strength(images, cluster_ids, strengths, source_ids):
        assert len(images) == len(cluster_ids) == len(strengths) == len(source_ids)
        out = images.copy()
        strong = np.asarray(strengths) >= 0.5
        if strong.any():
            out[strong] = perfect(images[strong], np.asarray(cluster_ids)[strong])
        return out

    return strength


def _noise(images, cluster_ids):
    rng = np.random.default_rng(int(cluster_ids[0]) + 100 * len(images))
    return rng.integers(0, 256, images.shape, dtype=np.uint8)


def test_perfect_and_random_generators_score_far_apart(tmp_path):
    config = _background_clusters_run(tmp_path)
    config = dataclasses.replace(
        config, eval=dataclasses.replace(config.eval, strengths=(1.0, 0.0, 0.25, 0.5))
    )
    perfect = pipeline.run_evaluation(
        config,
        translate_fn=_perfect_translator(config),
        strength_fn=_perfect_strength(config),
    )
    noise = pipeline.run_evaluation(config, translate_fn=_noise)

    for m in (perfect, noise):
        assert {m[s]["status"] for s in pipeline.SECTIONS} == {"ok"}
        assert m["transfer"]["split"] == "by identity"
        assert (m["transfer"]["eval_images"], m["transfer"]["train_images"]) == (100, 300)
    # Discovery: each background_b is captured by cluster b with precision 1.
    captured = {r["attribute"]: r for r in perfect["discovery"]["attributes"]}
    assert [captured[f"background_{b}"]["best_cluster"] for b in range(4)] == [0, 1, 2, 3]
    assert captured["background_2"]["best_precision"] == 1.0

    # Transfer: exactly the four background attributes are targets; the probe sees them.
    ta = {r["attribute"]: r for r in perfect["transfer"]["attributes"]}
    assert sorted(ta) == [f"background_{b}" for b in range(4)]
    for r in ta.values():
        assert r["judge_balanced_accuracy"] > 0.9
        assert r["rate_lacking"] > 0.9 and r["baseline_lacking"] < 0.1
        assert 50 < r["inputs_lacking"] < r["inputs"] == 100  # ~3/4 have another background
    assert perfect["transfer"]["mean_rate_lacking"] > 0.9
    # (Uniform noise is grey on average: the probe calls it at most two of the backgrounds.)
    assert noise["transfer"]["mean_rate_lacking"] <= 0.5
    assert (
        noise["transfer"]["mean_baseline_lacking"] == perfect["transfer"]["mean_baseline_lacking"]
    )

    # Identity: the perfect translation keeps the geometry, noise does not.
    pi, ni = perfect["identity"], noise["identity"]
    assert pi["embedder"] == "geometry" and pi["regressor"]["r2"] > 0.15
    assert pi["same_identity"]["pairs"] > 0 and pi["different_identity"]["pairs"] > 0
    assert pi["same_identity"]["mean_distance"] < pi["different_identity"]["mean_distance"]
    assert pi["translation"]["mean_distance"] < 0.5 * ni["translation"]["mean_distance"]
    assert pi["translation"]["verification_rate"] > ni["translation"]["verification_rate"] + 0.3
    assert pi["relative_distance"] > 0.5 > ni["relative_distance"]

    # Realism: translations that are real renders sit at the real-vs-real floor; noise far.
    pr, nr = perfect["realism"], noise["realism"]
    assert pr["fd_pixels"] < 3 * pr["fd_pixels_real_reference"]
    assert nr["fd_pixels"] > 10 * pr["fd_pixels"]

    # Strength curve: alpha sorted; below 0.5 the input comes back (no transfer, the
    # person kept, L1 = 0); from 0.5 on the perfect translation (the transfer section's).
    sc = perfect["strength_curve"]
    assert sc["status"] == "ok" and sc["strengths"] == [0.0, 0.25, 0.5, 1.0]
    assert sorted(sc["targets"]) == sorted(ta) and sc["transfer_monotonic"]
    by_alpha = {p["strength"]: p for p in sc["curve"]}
    assert by_alpha[0.0]["mean_l1_to_input"] == 0.0 == by_alpha[0.25]["mean_l1_to_input"]
    assert by_alpha[0.0]["mean_rate_lacking"] == pytest.approx(sc["baseline_lacking"])
    assert by_alpha[1.0]["mean_rate_lacking"] == pytest.approx(
        perfect["transfer"]["mean_rate_lacking"]
    )
    assert by_alpha[0.0]["mean_identity_verified"] > by_alpha[1.0]["mean_identity_verified"] - 0.05
    assert by_alpha[0.0]["mean_identity_verified"] > 0.9
    assert noise["strength_curve"] == {
        "status": "skipped",
        "reason": "no strength_fn: evaluating a custom translate_fn",
    }

    # The report of the last run (noise) is on disk, with its matrix.
    eval_dir = tmp_path / "eval"
    with open(eval_dir / "metrics.json") as f:
        assert json.load(f)["realism"]["fd_pixels"] == pytest.approx(nr["fd_pixels"])
    page = (eval_dir / "report.html").read_text()
    assert page.count("<img") == 3 * (1 + 4) and "background_3" in page
    assert (eval_dir / "translation_matrix.png").exists()
    assert [c["cluster"] for c in perfect["clusters"]] == [0, 1, 2, 3]
    assert perfect["clusters"][1]["top_attributes"][0] == {
        "attribute": "background_1",
        "precision": 1.0,
    }
    text = pipeline.format_summary(perfect)
    assert "background_0" in text and "fd_pixels" in text and "geometry" in text
    assert "strength curve (100 held-out images into 4 attribute clusters" in text


def test_translate_fn_output_is_checked():
    images = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="translate_fn returned"):
        pipeline.translate_all(lambda x, c: x[:, :4], images, np.zeros(3), batch_size=2)
    with pytest.raises(ValueError, match="translate_fn returned"):
        pipeline.translate_all(lambda x, c: x.astype(np.float32), images, np.zeros(3), batch_size=2)
    out = pipeline.translate_all(lambda x, c: x + 1, images, np.zeros(3), batch_size=2)
    assert out.shape == images.shape and (out == 1).all()


def test_split_is_disjoint_by_identity():
    identities = np.repeat(np.arange(10), 4).astype(str)
    eval_idx, train_idx = pipeline.split_eval_train(
        40, identities, eval_count=10, train_count=100, seed=0
    )
    assert len(eval_idx) == 10 and len(train_idx) == 28  # 12 in eval's groups, 2 left out
    assert not set(identities[eval_idx]) & set(identities[train_idx])
    eval_idx, train_idx = pipeline.split_eval_train(40, None, eval_count=10, train_count=5, seed=0)
    assert len(eval_idx) == 10 and len(train_idx) == 5 and not set(eval_idx) & set(train_idx)
    # With --holdout, eval images come from the held-out pool only (here: the last 6 images,
    # identities 8 and 9); training images avoid their identities, inside the pool or not.
    pool = np.arange(34, 40)
    eval_idx, train_idx = pipeline.split_eval_train(
        40, identities, eval_count=5, train_count=100, seed=0, eval_pool=pool
    )
    assert len(eval_idx) == 5 and set(eval_idx) <= set(pool)
    assert not set(identities[eval_idx]) & set(identities[train_idx])
    assert len(train_idx) == 40 - 4 * len(set(identities[eval_idx]))


def test_evaluate_binary_on_a_tiny_trained_run(tmp_path):

    from xplore_tf import train_lib

    result = train_lib.train(tiny_config(tmp_path, num_steps=2))
    assert result.step == 2
    res = run_binary(
        "xplore_tf.evaluate",
        f"--workdir={tmp_path}",
        "--seed=3",
        "--synthetic_num=48",
        "--synthetic_size=32",
        *TINY_MODEL_FLAGS,
        "--report_min_cluster_size=2",
        "--transfer_min_precision=0",
        "--eval_images=16",
        "--identity_regressor_epochs=1",
        "--identity_regressor_members=1",
        "--report_images=2",
        "--report_clusters=3",
        "--strengths=1,0",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    with open(tmp_path / "eval" / "metrics.json") as f:
        metrics = json.load(f)
    assert {"discovery", "transfer", "identity", "realism", "clusters", "step"} <= set(metrics)
    assert metrics["step"] == 2 and metrics["checkpoint"].endswith("ckpt-2")
    assert all(metrics[s]["status"] == "ok" for s in pipeline.SECTIONS)
    assert len(metrics["transfer"]["attributes"]) == len(metrics["discovery"]["attributes"])
    assert metrics["realism"]["fd_pixels"] >= 0 and metrics["identity"]["embedder"] == "geometry"
    assert (tmp_path / "eval" / "report.html").stat().st_size > 1000
    assert "realism: fd_pixels" in res.stdout and "metrics.json" in res.stdout
    # The strength curve's alpha = 1 is exactly the transfer section's translation.
    sc = metrics["strength_curve"]
    assert sc["status"] == "ok" and sc["strengths"] == [0.0, 1.0]
    at_one = {r["attribute"]: r["rate_all"] for r in sc["curve"][1]["attributes"]}
    assert at_one == {r["attribute"]: r["rate_all"] for r in metrics["transfer"]["attributes"]}
    assert (
        "strength curve (" in res.stdout
        and "Strength curve" in (tmp_path / "eval" / "report.html").read_text()
    )
