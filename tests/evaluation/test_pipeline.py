"""The evaluation stage: a perfect and a random generator must score far apart; the binary."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os

import numpy as np
import pytest
from PIL import Image
from tests_support import TINY_MODEL_FLAGS, copy_of_tiny_run, run_binary

from xplore_tf import config as config_lib
from xplore_tf.clustering import artifacts, kmeans
from xplore_tf.clustering import space as space_lib
from xplore_tf.data import sources, synthetic
from xplore_tf.evaluation import identity, pipeline

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

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
            identity_regressor_epochs=11,
            identity_regressor_members=2,  # the ensemble path, at a test's cost
            identity_max_pairs=100,
            report_images=3,
            report_clusters=4,
        ),
    )
    root = sources.prepare_inputs(config)
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

    @functools.lru_cache(maxsize=None)  # sections translate the same pairs again
    def render(index: int, background: int) -> np.ndarray:
        _, attrs, geometry, jitter = synthetic.sample_item(
            config.data.synthetic_seed, index, images_per_identity=PER_IDENTITY
        )
        attrs = dataclasses.replace(attrs, background=background)
        return synthetic.render_face(attrs, geometry, jitter, SIZE)

    def translate(images, cluster_ids):
        return np.stack(
            [
                render(lookup[np.ascontiguousarray(x).tobytes()], int(c))
                for x, c in zip(images, cluster_ids, strict=True)
            ]
        )

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


class _PerfectCondition:
    """A condition_fn that records its conditions and renders the perfect translation into
    the cluster whose table row is nearest to each condition."""

    def __init__(self, config, table):
        self.perfect, self.table, self.calls = _perfect_translator(config), table, []

    def __call__(self, images, conditions):
        self.calls.append(np.asarray(conditions).copy())
        d = ((conditions[:, None, :] - self.table[None]) ** 2).sum(-1)
        return self.perfect(images, d.argmin(1))


def _noise(images, cluster_ids):
    rng = np.random.default_rng(int(cluster_ids[0]) + 100 * len(images))
    return rng.integers(0, 256, images.shape, dtype=np.uint8)


def _fit_geometry_regressor_once(monkeypatch):
    """Both evaluations below fit the identity regressor on the same images with the same
    seed, so the same model: fit it once (it is half of this test's time)."""
    real, fitted = identity.fit_geometry_regressor, []

    def fit(images, geometry, **kwargs):
        for (seen_images, seen_geometry, seen_kwargs), regressor in fitted:
            if (
                seen_kwargs == kwargs
                and np.array_equal(seen_images, images)
                and np.array_equal(seen_geometry, geometry)
            ):
                return regressor
        fitted.append(((images, geometry, kwargs), real(images, geometry, **kwargs)))
        return fitted[-1][1]

    monkeypatch.setattr(identity, "fit_geometry_regressor", fit)
    return fitted


def test_perfect_and_random_generators_score_far_apart(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="absl")  # an earlier test may have quietened absl's
    fitted = _fit_geometry_regressor_once(monkeypatch)
    config = _background_clusters_run(tmp_path)
    config = dataclasses.replace(
        config,
        eval=dataclasses.replace(
            config.eval,
            strengths=(1.0, 0.0, 0.25, 0.5),
            reference_group_size=20,
            combinations=("background_0+background_1", "background_0+hair_pink"),
        ),
    )
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    table = np.concatenate([stats.centroids, stats.stds], axis=1)  # condition = mean_std
    condition_fn = _PerfectCondition(config, table)
    perfect = pipeline.run_evaluation(
        config,
        translate_fn=_perfect_translator(config),
        strength_fn=_perfect_strength(config),
        condition_fn=condition_fn,
    )
    # Long sections say where they are: one line as each pair starts and ends.
    assert "combination 2/2 background_0+hair_pink: starting" in caplog.text
    assert "combination background_0+background_1: both present " in caplog.text
    noise = pipeline.run_evaluation(config, translate_fn=_noise)
    assert len(fitted) == 1

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
    # The edge judge (HOG probe) rates the same targets, beside the main judge; the face
    # judge needs dlib as the identity embedder, and synthetic faces use the geometry one.
    second = perfect["transfer"]["second_judges"]
    assert second["edges"]["name"].startswith("logistic probe on HOG features")
    edge = [r["attribute"] for r in second["edges"]["attributes"]]
    assert edge == [r["attribute"] for r in perfect["transfer"]["attributes"]]
    assert second["face"]["name"] == (
        "skipped: needs dlib as the identity embedder (real faces); it is geometry"
    )
    # Side effects: into background_1 flips background_1 for the ~3/4 that lacked it;
    # re-rendering into the own cluster (the floor) flips almost nothing.
    changes = perfect["transfer"]["side_effects"]
    b1 = changes["attributes"].index("background_1")
    assert changes["targets"]["background_1 (cluster 1)"]["changed"][b1] > 0.5
    assert max(changes["floor"]["changed"]) < 0.1
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
    # Noise paints every face in colours no skin has; the renders mostly keep the skin.
    assert pr["blotches"]["rate_random"] < 0.3 and nr["blotches"]["rate_random"] > 0.95

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
    custom = {
        "status": "skipped",
        "reason": "evaluating a custom translate_fn: no generator to condition",
    }
    assert noise["strength_curve"] == noise["reference_groups"] == noise["combinations"] == custom

    # Reference groups: 20 held-out images with each background; the 80 others are
    # translated toward the group's statistics (pixels -> this run's PCA, which maps every
    # image to 0: mean 0, std at the floor) and toward the group's nearest cluster.
    rg = perfect["reference_groups"]
    assert rg["status"] == "ok" and [g["attribute"] for g in rg["groups"]] == sorted(ta)
    group_condition = np.concatenate([np.zeros(8), np.full(8, kmeans.MIN_STD)])
    nearest = int(np.argmin(np.linalg.norm(stats.centroids, axis=1) / np.sqrt(8)))
    # In call order: each group's condition and its shared part (80 rows each), then the pair.
    recorded = np.concatenate(condition_fn.calls)
    toward_group, toward_shared = recorded[: 8 * 80].reshape(4, 2, 80, -1).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(toward_group.reshape(-1, 16), np.tile(group_condition, (320, 1)))
    # What the group shares: every input's own statistics (the nearest cluster's row, the
    # space maps every image to 0) moved from the centroids' centre toward the group's mean.
    shared = space_lib.shared_conditions(
        table[[nearest]], group_condition[None], table, np.ones(1, np.float32), mean_dim=8
    )
    np.testing.assert_allclose(
        toward_shared.reshape(-1, 16), np.tile(np.asarray(shared), (320, 1)), atol=1e-6
    )
    for g in rg["groups"]:
        assert (g["group_images"], g["inputs"], g["nearest_cluster"]) == (20, 80, nearest)
        assert g["relative_distance"] == pytest.approx(
            np.linalg.norm(stats.centroids[nearest]) / np.sqrt(8), rel=1e-5
        )
        # The perfect condition_fn renders the nearest cluster too: both toward-rates agree.
        assert g["toward_group"]["rate_lacking"] == g["toward_nearest_cluster"]["rate_lacking"]

    # Combinations: condition = s_src + (s_a - s_src) + (s_b - s_src), exactly; a face has
    # one background, so both never appear; an attribute without a cluster is skipped.
    combined, only_a, only_b, halves = np.split(recorded[8 * 80 :], 4)
    ok, missing = perfect["combinations"]["pairs"]
    source = table[nearest]  # every image's nearest centroid (the space maps all to 0)
    expected = source + (table[0] - source) + (table[1] - source)
    expected[8:] = np.maximum(expected[8:], kmeans.MIN_STD)
    np.testing.assert_allclose(combined, np.tile(expected, (len(combined), 1)), atol=1e-6)
    np.testing.assert_allclose(only_a, np.tile(table[0], (len(only_a), 1)), atol=1e-6)
    np.testing.assert_allclose(only_b, np.tile(table[1], (len(only_b), 1)), atol=1e-6)
    np.testing.assert_allclose(halves, np.tile(table[:2].mean(0), (len(halves), 1)), atol=1e-6)
    assert ok["inputs_lacking_both"] == len(combined) > 40
    assert ok["both_present"]["combined"] == 0.0 and ok["baseline_both_present"] == 0.0
    # Each alone lands (the perfect renderer draws the cluster), so if the two landed
    # independently both would be there nearly always: the product of the two rates.
    alone = ok["alone_rates"]
    assert set(alone) == {"background_0", "background_1"} and min(alone.values()) > 0.9
    assert ok["independent"] == pytest.approx(alone["background_0"] * alone["background_1"])
    assert set(ok["alone_identity_verified"]) == set(alone)
    assert missing == {
        "pair": "background_0+hair_pink",
        "status": "skipped",
        "reason": "no transfer cluster for hair_pink (transfer targets: "
        + ", ".join(sorted(ta))
        + ")",
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
    assert "colour blotches (face patches off skin's hues): " in text
    assert "edge judge (logistic probe on HOG features (" in text
    assert "face judge: skipped: needs dlib" in text and "(floor " in text
    assert "strength curve (100 held-out images into 4 attribute clusters" in text
    assert "reference groups (20 held-out images" in text
    assert "background_0+background_1" in text and "skipped (no transfer cluster" in text


def test_without_scikit_image_the_edge_judge_says_why(monkeypatch):
    from xplore_tf.evaluation import edges

    monkeypatch.setattr(edges, "available", lambda: False)
    reason = pipeline._edge_judge(None, None, None)
    assert reason.startswith("skipped: scikit-image is not installed") and "[eval]" in reason


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


def test_evaluate_binary_on_a_tiny_trained_run(tmp_path, tmp_path_factory):
    copy_of_tiny_run(tmp_path_factory, tmp_path)  # trained 2 steps; evaluate writes into it
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
        "--reference_group_size=2",
        "--combinations=glasses+smile",
        "--side_effect_attributes=smile",
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
    page = (tmp_path / "eval" / "report.html").read_text()
    assert "strength curve (" in res.stdout and "Strength curve" in page
    assert "droplet detector flagged" in page  # the flagged translations, or that there are none
    # Reference groups and combinations run through the checkpoint's G as well.
    groups = [g for g in metrics["reference_groups"]["groups"] if g["status"] == "ok"]
    assert groups and all(g["group_images"] == 2 for g in groups)
    (pair,) = metrics["combinations"]["pairs"]
    assert pair["status"] == "ok" and set(pair["both_present"]) == {
        "combined",
        "only glasses",
        "only smile",
        "half each",
    }
    assert "Reference groups" in page and "Combined attributes" in page
    assert "reference groups (2 held-out" in res.stdout and "glasses+smile" in res.stdout
    # The summary's side effects are chosen among the watched attributes.
    assert metrics["transfer"]["side_effects"]["among"] == ["smile"]
    assert "side effects (the other attribute among smile whose" in res.stdout
