"""Training: schedule, exact resume, 1-vs-2-replica equivalence, divergence, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from tests_support import (
    PROJECT_ROOT,
    TINY_MODEL_FLAGS,
    copy_of_tiny_run,
    newest_checkpoint,
    run_binary,
    tiny_config,
)

from xplore_tf import train_lib

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model


def _weights(workdir):
    """All checkpointed variables of the latest checkpoint, by name."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(newest_checkpoint(os.path.join(workdir, "checkpoints")))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "save_counter" not in name and "OBJECT_GRAPH" not in name
    }


def test_learning_rate_schedule_by_hand():
    assert train_lib.learning_rate(1e-4, 0, 200, 100) == 1e-4
    assert train_lib.learning_rate(1e-4, 100, 200, 100) == 1e-4
    assert train_lib.learning_rate(1e-4, 150, 200, 100) == pytest.approx(5e-5)
    assert train_lib.learning_rate(1e-4, 200, 200, 100) == 0.0
    assert train_lib.learning_rate(1e-4, 150, 200, 0) == 1e-4


def test_resume_equals_uninterrupted_across_strategies(tmp_path):
    # The first half under one_device, the second resumed under "mirrored" (what every config
    # in configs/ uses: its step is a MirroredVariable): both strategies save and restore the
    # same state, and the split run ends where the uninterrupted one does.
    whole = train_lib.train(tiny_config(tmp_path / "whole"))
    assert whole.step == 6
    first = train_lib.train(tiny_config(tmp_path / "split", strategy="one_device"), max_steps=3)
    assert first.step == 3
    second = train_lib.train(tiny_config(tmp_path / "split"))
    assert second.step == 6
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a.keys() == b.keys() and len(a) > 50
    for name in a:
        if isinstance(a[name], bytes):  # the clusters fingerprint
            assert a[name] == b[name], name
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-5, err_msg=name)
    # The run also wrote what a user watches.
    train_dir = tmp_path / "whole" / "train"
    assert sorted(os.listdir(train_dir / "samples")) == ["step_0000003.png", "step_0000006.png"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(train_dir))
    assert [r["step"] for r in whole.history] == [2, 4, 6]
    paper_terms = {"D/adv", "D/gp", "D/cls", "G/adv", "G/cls", "G/rec", "G/lat"}
    assert paper_terms <= set(whole.history[-1]) and "G/self" not in whole.history[-1]
    assert whole.history[-1]["lr"] == 0.0


@pytest.mark.parametrize(
    "model, train, terms",
    [
        # GANimation's penalty (the demo-config CLI test trains the default "edit") with gated
        # skips; plain skips at one level are test_celeba10k_config_options_train_three_steps'.
        (
            {"output_mode": "masked", "skip_connections": "gated"},
            {
                "lambda_mask": 0.1,
                "mask_penalty": "keep",
                "cls_neighbors": 2,
                "cls_credit_neighbors": 1,
            },
            {"G/mask"},
        ),
        # HF bypass in bfloat16 (what auto picks on AMX CPUs: the checkpoint restores for
        # export), with blended and extrapolated targets and the self term
        (
            {"hf_bypass": True},
            {
                "mixed_precision": "mixed_bfloat16",
                "lambda_self": 10.0,
                "blend_prob": 0.5,
                "extrapolate_prob": 1.0,
            },
            {"G/self"},
        ),
        # StyleGAN2's demodulated decoder in bfloat16 (its demodulation runs in float32)
        (
            {"decoder_norm": "demod", "skip_connections": "plain", "skip_levels": 1},
            {"mixed_precision": "mixed_bfloat16", "lambda_self": 3.0},
            {"G/self"},
        ),
    ],
    ids=["masked-gated", "hf_bypass-bfloat16-blend-extrapolate", "demod-bfloat16"],
)
def test_identity_options_train_two_steps(tmp_path, model, train, terms):
    cfg = tiny_config(tmp_path, num_steps=2, n_critic=1, summary_every=1, **train)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model))
    result = train_lib.train(cfg)
    last = result.history[-1]
    assert result.step == 2 and terms <= set(last)
    assert all(np.isfinite(v) for v in last.values())
    # The trained generator of that variant restores for export.
    from xplore_tf import export_lib

    assert export_lib.load_generator(cfg).step == 2


def test_celeba10k_config_options_train_three_steps(tmp_path, monkeypatch):
    # The real-face config's generator and loss settings (one skip level, HF bypass,
    # resize-conv upsampling, a generator without per-sample statistics: demodulated decoder,
    # no encoder norm; lambda_self/lambda_cls, n_critic, extrapolated targets; a critic one
    # downsampling deeper than StarGAN's; the credited neighbour) with the sizes
    # shrunk. Any instance norm left trains through the fused path (threshold lowered: the
    # shrunk maps would not reach it).
    from absl import flags

    from xplore_tf.models import layers

    monkeypatch.setattr(layers, "FUSED_MIN_ELEMENTS", 0)

    from xplore_tf import checkpoints
    from xplore_tf import flags as xflags

    try:
        flags.FLAGS(["prog", f"--flagfile={PROJECT_ROOT}/configs/celeba10k_mobilenet.cfg"])
        real = xflags.config_from_flags()
    finally:
        flags.FLAGS.unparse_flags()
    assert (real.model.skip_connections, real.model.skip_levels) == ("plain", 1)
    assert (real.model.decoder_norm, real.model.encoder_norm) == ("demod", "none")
    assert real.train.extrapolate_prob == 0.3
    assert (real.train.cls_neighbors, real.train.cls_credit_neighbors) == (15, 1)
    cfg = tiny_config(tmp_path, num_steps=3, summary_every=1)  # n_critic 3: one G step

    # D one downsampling deeper than StarGAN's rule (a 1 x 1 map), as the real config's D;
    # its last conv as PatchMatmulConv2D's matrix product, like the real D's.
    def rule(c):  # StarGAN's depth at the config's image size
        return checkpoints.discriminator_downsamplings(
            dataclasses.replace(c, model=dataclasses.replace(c.model, d_num_down=0))
        )

    assert real.model.d_num_down == rule(real) + 1
    sizes = {**{k: getattr(cfg.model, k) for k in TINY_SIZES}, "d_channels": 16}
    sizes["d_num_down"] = rule(cfg) + 1
    model = dataclasses.replace(real.model, **sizes)
    train = dataclasses.replace(
        cfg.train,
        **{
            k: getattr(real.train, k)
            for k in ("n_critic", "lambda_cls", "lambda_self", "extrapolate_prob")
        },
        # The credited neighbour as configured; the neighbour count scaled to the tiny k.
        cls_neighbors=min(real.train.cls_neighbors, cfg.cluster.num_clusters - 1),
        cls_credit_neighbors=real.train.cls_credit_neighbors,
        lambda_chroma=1.0,  # off in the config; its option trains under the config's settings
    )
    cfg = dataclasses.replace(cfg, model=model, train=train)
    result = train_lib.train(cfg)
    assert result.step == 3 and {"G/self", "G/chroma"} <= set(result.history[-1])
    from xplore_tf import export_lib

    assert export_lib.load_generator(cfg).generator.decoder.skip_levels == 1
    from xplore_tf.clustering import artifacts

    stats = artifacts.read_stats(os.path.join(cfg.clusters_dir, artifacts.STATS))
    assert checkpoints.build_discriminator(cfg, stats).convs[-1].as_matmul


def test_demo_config_in_bfloat16_keeps_the_spectral_norm_kernels_float32(tmp_path):
    # configs/demo.cfg's model and losses, shrunk, in bfloat16 (what auto picks for it on AMX
    # CPUs) under "mirrored": every training-mode G pass rewrites the encoder's spectral-norm
    # kernels, and Keras' own wrapper stored them rounded to bfloat16. The run ends on a
    # D-only iteration, so the checkpoint holds a kernel that a G pass wrote last.
    import tensorflow as tf
    from absl import flags

    from xplore_tf import flags as xflags

    try:
        flags.FLAGS(["prog", f"--flagfile={PROJECT_ROOT}/configs/demo.cfg"])
        demo = xflags.config_from_flags()
    finally:
        flags.FLAGS.unparse_flags()
    cfg = tiny_config(tmp_path, mixed_precision="mixed_bfloat16")
    sizes = {k: getattr(cfg.model, k) for k in TINY_SIZES}
    n_critic = demo.train.n_critic
    train = {
        k: getattr(demo.train, k) for k in ("n_critic", "lambda_self", "lambda_mask", "lambda_cls")
    }
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(demo.model, **sizes),
        train=dataclasses.replace(cfg.train, num_steps=n_critic + 1, **train),
    )
    assert cfg.train.strategy == "mirrored"
    result = train_lib.train(cfg)
    assert result.step == n_critic + 1 and "G/self" in result.history[-1]
    kernels = {
        name: w
        for name, w in _weights(tmp_path).items()
        if name.startswith("generator/")
        and "_sn.." in name
        and name.endswith("kernel/.ATTRIBUTES/VARIABLE_VALUE")
    }
    assert len(kernels) == 2 * cfg.model.g_res_blocks
    for name, w in kernels.items():
        assert w.dtype == np.float32 and np.isfinite(w).all(), name
        rounded = tf.cast(tf.cast(w, tf.bfloat16), tf.float32).numpy()
        assert not np.array_equal(w, rounded), f"{name} holds bfloat16 values only"


def _blend_trainer(tmp_path, blend_prob, condition="mean_std", extrapolate_prob=0.0, **train):
    import tensorflow as tf

    from xplore_tf.clustering import artifacts

    rng = np.random.default_rng(0)
    k, d = 5, 6
    stats = artifacts.ClusterStats(
        centroids=rng.normal(size=(k, d)).astype("float32"),
        stds=rng.uniform(0.5, 1, (k, d)).astype("float32"),
        sizes=np.full(k, 10),
        pca_mean=np.zeros(8, "float32"),
        pca_matrix=np.zeros((8, d), "float32"),
        extractor="pixels",
        image_size=16,
        crop_size=0,
    )
    cfg = tiny_config(tmp_path, blend_prob=blend_prob, extrapolate_prob=extrapolate_prob, **train)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=condition))
    trainer = train_lib.Trainer(cfg, stats, tf.distribute.OneDeviceStrategy("/cpu:0"))
    n = 200
    cluster = rng.integers(0, k, n).astype("int32")
    batch = {
        "cluster": cluster,
        "target": ((cluster + rng.integers(1, k, n)) % k).astype("int32"),
        "position": rng.permutation(10_000)[:n].astype("int64"),
    }
    table = np.asarray(trainer.condition(np.arange(k)))
    return trainer, batch, table


def test_a_mask_weight_without_a_mask_is_one_line(tmp_path):
    """--lambda_mask with an output mode that has no mask (the demo's flagfile sets it):
    one line naming both flags before any step, not a traceback from the loss."""
    import tensorflow as tf

    cfg = tiny_config(tmp_path, lambda_mask=0.01)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, output_mode="residual"))
    with pytest.raises(ValueError, match=r"--lambda_mask=0.01 .* --output_mode=residual"):
        train_lib.Trainer(cfg, None, tf.distribute.OneDeviceStrategy("/cpu:0"))


def test_without_blending_targets_are_the_clusters(tmp_path):
    trainer, batch, table = _blend_trainer(tmp_path, 0.0)
    condition, labels = trainer.target(batch)
    np.testing.assert_array_equal(labels, batch["target"])
    np.testing.assert_array_equal(condition, table[batch["target"]])


@pytest.mark.parametrize("condition_mode", ["mean_std", "onehot"])
def test_blended_targets_are_convex_mixes_of_three_clusters(tmp_path, condition_mode):
    trainer, batch, table = _blend_trainer(tmp_path, 0.5, condition_mode)
    condition, labels = (np.asarray(v) for v in trainer.target(batch))
    n, k = labels.shape
    # Labels are distributions over at most c, t and one more cluster ...
    assert (labels >= 0).all()
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-6)
    others = labels.copy()
    others[np.arange(n), batch["cluster"]] = 0
    others[np.arange(n), batch["target"]] = 0
    assert ((others > 0).sum(1) <= 1).all()
    # ... and the condition is the same blend of the clusters' conditions.
    np.testing.assert_allclose(condition, labels @ table, atol=1e-5)
    # About half the samples keep their plain target, bit for bit.
    plain = np.all(labels == np.eye(k, dtype="float32")[batch["target"]], axis=1)
    assert 0.35 < plain.mean() < 0.65
    np.testing.assert_array_equal(condition[plain], table[batch["target"][plain]])
    # (1-a-b, a, b) is uniform on the simplex (each mean 1/3) and t2 = t one time in k:
    # the mean weight on t is 1/3 + 1/(3k) = 0.4.
    assert 0.3 < labels[~plain, batch["target"][~plain]].mean() < 0.5
    # A sample's blend is a function of its position: the same in any order.
    order = np.arange(n)[::-1]
    again = trainer.target({key: v[order] for key, v in batch.items()})
    np.testing.assert_array_equal(np.asarray(again[1]), labels[order])


def test_extrapolated_targets_lie_past_their_cluster_with_its_hard_label(tmp_path):
    trainer, batch, table = _blend_trainer(tmp_path, 0.0, extrapolate_prob=0.5)
    condition, labels = (np.asarray(v) for v in trainer.target(batch))
    np.testing.assert_array_equal(labels, batch["target"])
    source, target = table[batch["cluster"]], table[batch["target"]]
    plain = np.all(condition == target, axis=1)
    assert 0.35 < plain.mean() < 0.65
    # The others are s_c + beta (s_t - s_c) with one beta per row, uniform on [1, 2]
    # (the mean half; the std half is the same line floored at MIN_STD).
    d = trainer.stats.dim
    step = target[~plain, :d] - source[~plain, :d]
    beta = np.sum((condition[~plain, :d] - source[~plain, :d]) * step, 1) / np.sum(step**2, 1)
    np.testing.assert_allclose(
        condition[~plain, :d], source[~plain, :d] + beta[:, None] * step, atol=1e-5
    )
    assert beta.min() >= 1 - 1e-5 and beta.max() <= 2 + 1e-5 and 1.35 < beta.mean() < 1.65
    # With blending too, a row is blended or extrapolated, never both.
    trainer, batch, table = _blend_trainer(tmp_path, 0.5, extrapolate_prob=1.0)
    condition, labels = (np.asarray(v) for v in trainer.target(batch))
    hard = np.all(labels == np.eye(table.shape[0], dtype="float32")[batch["target"]], axis=1)
    np.testing.assert_allclose(condition[~hard], labels[~hard] @ table, atol=1e-5)
    assert not np.any(np.all(condition[hard] == table[batch["target"][hard]], axis=1))


def test_cls_neighbors_mark_each_target_and_its_nearest_centroids(tmp_path):
    import tensorflow as tf

    trainer, _, _ = _blend_trainer(tmp_path, 0.0, cls_neighbors=2)
    centroids = trainer.stats.centroids
    k = centroids.shape[0]
    expected = np.zeros((k, k), bool)
    for t in range(k):
        gaps = np.linalg.norm(centroids - centroids[t], axis=1)
        expected[t, np.argsort(gaps)[:3]] = True  # t itself (gap 0) and its 2 nearest
    np.testing.assert_array_equal(np.asarray(trainer.cls_candidates), expected)
    assert _blend_trainer(tmp_path, 0.0)[0].cls_candidates is None  # 0: all k (paper)
    credit = _blend_trainer(tmp_path, 0.0, cls_neighbors=2, cls_credit_neighbors=1)[0].cls_credit
    for t in range(k):  # t and its one nearest, which the candidates include
        nearest = np.argsort(np.linalg.norm(centroids - centroids[t], axis=1))[:2]
        np.testing.assert_array_equal(np.flatnonzero(np.asarray(credit)[t]), np.sort(nearest))
    assert trainer.cls_credit is None
    for train, message in [
        ({"cls_neighbors": 5}, r"--cls_neighbors=5: expected fewer than the 5 clusters"),
        ({"cls_neighbors": 2, "blend_prob": 0.5}, r"--cls_neighbors needs hard targets"),
        (
            {"cls_neighbors": 0, "cls_credit_neighbors": 1, "blend_prob": 0.5},
            r"--cls_credit_neighbors needs hard",
        ),
        (
            {"cls_neighbors": 2, "cls_credit_neighbors": 2},
            r"--cls_credit_neighbors=2: expected fewer than --cls_neighbors=2",
        ),
    ]:
        cfg = dataclasses.replace(
            trainer.config, train=dataclasses.replace(trainer.config.train, **train)
        )
        with pytest.raises(ValueError, match=message):
            train_lib.Trainer(cfg, trainer.stats, tf.distribute.OneDeviceStrategy("/cpu:0"))


@pytest.mark.parametrize("cls_neighbors", [0, 3], ids=["all_k", "neighbors"])
def test_combined_targets_are_two_clusters_at_once_asked_for_both(tmp_path, cls_neighbors):
    """--combine_prob: about that share of the samples is translated toward
    s_t + s_t2 - s_c (not extrapolated), t2 never c and its credited group disjoint from
    t's, with G's classification asked for t and for t2, each softmax without the other's
    group; the other samples keep their plain target and a second term of 0."""
    import tensorflow as tf

    trainer, batch, table = _blend_trainer(
        tmp_path,
        0.0,
        extrapolate_prob=1.0,
        combine_prob=0.5,
        cls_neighbors=cls_neighbors,
        cls_credit_neighbors=1,
        n_critic=1,
    )
    t, c = batch["target"], batch["cluster"]
    second = trainer.second_target(batch)
    t2, combined = (np.asarray(v) for v in second)
    groups = np.asarray(trainer.cls_credit)
    allowed = ~(groups[t] @ groups.T) & (np.arange(5) != c[:, None])
    assert 0.3 < combined.mean() < 0.6 and not combined[~allowed.any(1)].any()
    assert allowed[np.arange(len(t)), t2][combined].all()
    # Uniform among the allowed: rows with the same (t, c) and two choices get both.
    two = combined & (allowed.sum(1) == 2)
    assert any(len(set(t2[two & (t == a) & (c == b)])) == 2 for a in range(5) for b in range(5))
    condition, labels = (np.asarray(v) for v in trainer.target(batch))
    np.testing.assert_array_equal(labels, t)
    d = trainer.stats.dim
    pair = table[t] + table[t2] - table[c]
    np.testing.assert_allclose(condition[combined, :d], pair[combined, :d], atol=1e-5)
    # The other rows are all extrapolated (extrapolate_prob 1): none is the plain target.
    assert not np.any(np.all(condition[~combined] == table[t[~combined]], axis=1))
    (first, first_options), (other, other_options) = (
        tuple(np.asarray(v) for v in pair)
        for pair in trainer.classification_targets(batch, t, second)
    )
    options = np.ones((5, 5), bool) if not cls_neighbors else np.asarray(trainer.cls_candidates)
    np.testing.assert_array_equal(first, groups[t])
    np.testing.assert_array_equal(first_options[~combined], options[t[~combined]])
    np.testing.assert_array_equal(other[combined], groups[t2[combined]])
    assert not np.any(first_options[combined] & groups[t2[combined]])
    assert not np.any(other_options[combined] & groups[t[combined]])
    np.testing.assert_array_equal(other[~combined], groups[t[~combined]])
    np.testing.assert_array_equal(other_options[~combined], groups[t[~combined]])
    assert (first & first_options).any(1).all() and (other & other_options).any(1).all()
    # A sample's second target is a function of its position: the same in any order.
    order = np.arange(len(t))[::-1]
    again = trainer.second_target({key: v[order] for key, v in batch.items()})
    np.testing.assert_array_equal(np.asarray(again[0]), t2[order])
    if cls_neighbors:  # the configs' case: the step runs both terms on combined rows
        rows = np.flatnonzero(combined)[:2].tolist() + np.flatnonzero(~combined)[:2].tolist()
        batch = {k: tf.constant(v[rows]) for k, v in batch.items()}
        batch["image"] = tf.constant(
            np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
        )
        assert 0 < trainer.train_step(0, batch)["G/cls"] < 50  # a masked-out label: ~1e9
    cfg = dataclasses.replace(
        trainer.config, train=dataclasses.replace(trainer.config.train, blend_prob=0.5)
    )
    with pytest.raises(ValueError, match=r"--combine_prob needs hard targets"):
        train_lib.Trainer(cfg, trainer.stats, tf.distribute.OneDeviceStrategy("/cpu:0"))


def test_credited_groups_reach_gs_classification_term(tmp_path):
    # With all 5 clusters credited as the target's group, G's classification term is
    # -log(1) = 0 whatever D says; with t alone it is not.
    import tensorflow as tf

    terms = {}
    for credit in (0, 4):
        trainer, batch, _ = _blend_trainer(tmp_path, 0.0, cls_credit_neighbors=credit, n_critic=1)
        batch = {k: tf.constant(v[:4]) for k, v in batch.items()}
        batch["image"] = tf.constant(
            np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
        )
        terms[credit] = float(trainer.train_step(0, batch)["G/cls"])
    assert terms[4] == pytest.approx(0.0, abs=1e-6) and terms[0] > 0.1


def test_lazy_gradient_penalty_on_every_nth_d_step_weighted_n_times(tmp_path):
    # --gp_every=2 (StyleGAN2's lazy regularisation): D steps 0 and 2 add 2 * lambda_gp * gp,
    # steps 1 and 3 no penalty at all. n_critic 100: only D steps here.
    import tensorflow as tf

    trainer, batch, _ = _blend_trainer(tmp_path, 0.0, gp_every=2, n_critic=100)
    rng = np.random.default_rng(1)
    batch = {k: tf.constant(v[:4]) for k, v in batch.items()}
    batch["image"] = tf.constant(rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32"))
    t = trainer.config.train
    for step in range(4):
        s = trainer.train_step(step, batch)
        without_gp = s["D/adv"] + t.lambda_cls * s["D/cls"]
        if step % 2:
            assert "D/gp" not in s
            assert s["D/total"] == pytest.approx(without_gp, rel=1e-5)
        else:
            assert s["D/gp"] > 0
            expected = without_gp + 2 * t.lambda_gp * s["D/gp"]
            assert s["D/total"] == pytest.approx(expected, rel=1e-5)
    paper, _, _ = _blend_trainer(tmp_path / "paper", 0.0)
    assert paper._d_step_without_penalty is None  # gp_every 1: one D step function


def test_r1_steps_use_the_nonsaturating_loss_and_the_penalty_on_real_images(tmp_path):
    """--gan_loss=r1: D's terms are the logistic loss of its logits on the batch and R1 of
    the real images (recomputed here from the discriminator as it was before the step);
    G's step runs and reports the non-saturating G/adv (> 0)."""
    import tensorflow as tf

    from xplore_tf import losses

    trainer, batch, _ = _blend_trainer(tmp_path, 0.0, gan_loss="r1", lambda_gp=1.0, n_critic=1)
    rng = np.random.default_rng(1)
    batch = {k: tf.constant(v[:4]) for k, v in batch.items()}
    batch["image"] = tf.constant(rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32"))
    d = trainer.discriminator
    r1 = losses.r1_penalty(lambda x: d(x, training=True)[0], batch["image"])
    s = trainer.train_step(0, batch)
    assert s["D/gp"] == pytest.approx(float(r1), rel=1e-4)
    assert s["D/adv"] > 0 and s["G/adv"] > 0  # softplus terms, never negative
    t = trainer.config.train
    expected = s["D/adv"] + s["D/gp"] + t.lambda_cls * s["D/cls"]
    assert s["D/total"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("lambda_self", [0.0, 10.0], ids=["paper", "self"])
def test_shared_g_forward_is_the_d_then_g_update_on_one_fake(tmp_path, lambda_self):
    # --share_g_forward runs an iteration's D and G updates on one G(x, s_t). The plain D step
    # then G step compute the same once G's random and power-iteration state is put back
    # between the two, so the G step's forward repeats the D step's. Two iterations: the
    # second one's Adam steps depend on the gradients' size, not only their sign, and its
    # noise scales are no longer 0.
    import tensorflow as tf

    train = {"n_critic": 1, "lambda_self": lambda_self, "mixed_precision": "none"}
    shared, batch, _ = _blend_trainer(tmp_path / "shared", 0.0, share_g_forward=True, **train)
    plain, _, _ = _blend_trainer(tmp_path / "plain", 0.0, **train)
    assert shared.step_functions(0) == [shared._dg_step]
    assert plain.step_functions(0) == [plain._d_step, plain._g_step]
    # Adam moves a weight by ~lr * sign(g) while |g| << epsilon does not hold, so weights
    # whose gradient is 0 up to rounding (biases before instance norm) would follow the
    # rounding's sign. With epsilon 1 the steps are ~lr * g: they compare to a tolerance.
    for optimizer in (shared.g_optimizer, shared.d_optimizer, plain.g_optimizer, plain.d_optimizer):
        optimizer.epsilon = 1.0
    for model in ("generator", "discriminator"):
        for a, b in zip(
            getattr(shared, model).variables, getattr(plain, model).variables, strict=True
        ):
            b.assign(a)
    rng = np.random.default_rng(2)
    batch = {k: tf.constant(v[:4]) for k, v in batch.items()}
    batch["image"] = tf.constant(rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32"))

    for _ in range(2):
        fused = shared.reduce(shared._dg_step(batch))
        g_state = [(v, v.numpy()) for v in plain.generator.variables if not v.trainable]
        separate = plain.reduce(plain._d_step(batch))
        for v, value in g_state:
            v.assign(value)
        separate.update(plain.reduce(plain._g_step(batch)))
        assert fused.keys() == separate.keys()
        for key in fused:
            assert fused[key] == pytest.approx(separate[key], rel=1e-4, abs=1e-6), key
    for model in ("generator", "discriminator"):
        for a, b in zip(
            getattr(shared, model).variables, getattr(plain, model).variables, strict=True
        ):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)
    assert shared.d_optimizer.iterations.numpy() == shared.g_optimizer.iterations.numpy() == 2


def test_shared_g_forward_trains_with_lazy_penalty_in_bfloat16(tmp_path, monkeypatch):
    # The flag with --gp_every and mixed precision under "mirrored" (every config's
    # strategy): n_critic 2 and gp_every 3 run each of the four step functions once.
    ran = []
    step_functions = train_lib.Trainer.step_functions

    def recorded(self, step):
        names = {
            id(self._d_step): "D",
            id(self._d_step_without_penalty): "D, no penalty",
            id(self._dg_step): "D+G",
            id(self._dg_step_without_penalty): "D+G, no penalty",
        }
        functions = step_functions(self, step)
        ran.append([names[id(f)] for f in functions])
        return functions

    monkeypatch.setattr(train_lib.Trainer, "step_functions", recorded)
    cfg = tiny_config(
        tmp_path,
        num_steps=4,
        n_critic=2,
        gp_every=3,
        share_g_forward=True,
        mixed_precision="mixed_bfloat16",
    )
    result = train_lib.train(cfg)
    assert result.step == 4
    assert ran == [["D"], ["D+G, no penalty"], ["D, no penalty"], ["D+G"]]
    last = result.history[-1]
    assert {"D/gp", "G/adv", "G/rec"} <= set(last)
    assert all(np.isfinite(v) for v in last.values())


TINY_SIZES = ("image_size", "g_channels", "g_res_blocks", "mlp_hidden", "d_channels", "d_num_down")


def test_diverged_run_stops_with_clear_error_and_keeps_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, checkpoint_every=2)
    real_step = train_lib.Trainer.train_step

    def diverging_step(self, step, batch):
        scalars = real_step(self, step, batch)
        return {**scalars, "G/rec": float("nan")} if step == 3 else scalars

    monkeypatch.setattr(train_lib.Trainer, "train_step", diverging_step)
    with pytest.raises(train_lib.TrainingDivergedError, match=r"step 3: non-finite loss .*G/rec"):
        train_lib.train(cfg)
    # The checkpoint of step 2 is the last one: nothing after the bad step was saved.
    assert newest_checkpoint(cfg.checkpoint_dir).endswith("ckpt-2")


EQUIVALENCE = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
sys.path.insert(0, sys.argv[1])
from tests_support import tiny_config
from xplore_tf import train_lib
from xplore_tf.clustering import artifacts

rng = np.random.default_rng(0)
k, d = 4, 6
stats = artifacts.ClusterStats(
    centroids=rng.normal(size=(k, d)).astype("float32"), stds=rng.uniform(0.5, 1, (k, d)).astype("float32"),
    sizes=np.full(k, 10), pca_mean=np.zeros(8, "float32"), pca_matrix=np.zeros((8, d), "float32"),
    extractor="pixels", image_size=64, crop_size=0)
cfg = tiny_config(sys.argv[2], n_critic=1, batch_size=4)
batch = {
    "image": rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32"),
    "cluster": np.array([0, 1, 2, 3], "int32"),
    "target": np.array([1, 2, 3, 0], "int32"),
    "position": np.arange(4, dtype="int64"),
}
results = []
for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(devices)
    trainer = train_lib.Trainer(cfg, stats, strategy)
    ds = tf.data.Dataset.from_tensor_slices(batch).batch(4)
    dist_batch = next(iter(strategy.experimental_distribute_dataset(ds)))
    scalars = trainer.train_step(0, dist_batch)
    weights = {}
    for model in (trainer.generator, trainer.discriminator, trainer.generator_ema):
        for v in model.trainable_variables:
            # Noise scales get noise-dependent gradients (noise differs per replica draw);
            # every other weight must match exactly.
            if "noise" not in v.path:
                weights[v.path] = np.asarray(v.value if hasattr(v, "value") else v).tolist()
    results.append({"replicas": strategy.num_replicas_in_sync, "scalars": scalars, "weights": weights})
print(json.dumps(results))
"""


def test_one_step_on_two_replicas_equals_one_replica(tmp_path):
    res = subprocess.run(
        [sys.executable, "-c", EQUIVALENCE, os.path.dirname(__file__), str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    one, two = json.loads(res.stdout.strip().splitlines()[-1])
    assert (one["replicas"], two["replicas"]) == (1, 2)
    for name in one["scalars"]:
        assert one["scalars"][name] == pytest.approx(two["scalars"][name], rel=1e-5, abs=1e-6), name
    assert one["weights"].keys() == two["weights"].keys() and len(one["weights"]) > 20
    for name, w in one["weights"].items():
        np.testing.assert_allclose(w, two["weights"][name], rtol=1e-5, atol=1e-5, err_msg=name)


# configs/demo.cfg shrunk to the tiny model: what a user runs, minus the size.
SHRUNK_DEMO = [
    "--flagfile=configs/demo.cfg",
    "--synthetic_num=48",
    "--synthetic_size=32",
    "--kmeans_nredo=1",
    "--contact_sheet_members=4",
    *TINY_MODEL_FLAGS,
    # D wide enough that its last conv (64 filters on a 2x2 map) runs as PatchMatmulConv2D's
    # matrix product, as the demo's and the paper's D tails do.
    "--d_channels=16",
    "--batch_size=4",
    "--n_critic=2",
    "--mixed_precision=none",  # auto's bfloat16 costs ~17 s of tracing here; trained below
    "--log_every=1",
    "--summary_every=1",
    "--sample_every=2",
    "--sample_images=2",
    "--sample_clusters=2",
    "--checkpoint_every=2",
]


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_with_the_shells_code_for_a_signal(tmp_path):
    """SIGINT: a checkpoint, the resume line, exit code 130 (so `train && evaluate` stops)."""
    import signal

    workdir = f"--workdir={tmp_path}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xplore_tf.train", *SHRUNK_DEMO, workdir, "--num_steps=100000"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, checkpoints = time.time() + 600, tmp_path / "checkpoints"
    while time.time() < deadline and not (
        checkpoints.is_dir() and any(n.endswith(".index") for n in os.listdir(checkpoints))
    ):
        time.sleep(0.5)  # training has begun once its first checkpoint is written
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "stopped at step" in out and "the same command resumes from it" in out


def test_demo_config_trains_exports_and_resumes_via_the_cli(tmp_path):
    workdir = [f"--workdir={tmp_path}", f"--export_dir={tmp_path / 'export'}"]
    first = run_binary("xplore_tf.train", *SHRUNK_DEMO, *workdir, "--num_steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "trained to step 2" in first.stdout
    sheets = tmp_path / "clusters" / "montages" / "index.html"
    assert f"the clusters' contact sheets: {sheets}" in first.stdout and sheets.is_file()
    assert "step 2/2" in first.stderr and "images/s" in first.stderr
    assert (tmp_path / "clusters" / "stats.npz").exists()
    assert (tmp_path / "train" / "samples" / "step_0000002.png").exists()
    assert (tmp_path / "flags_train.txt").exists()
    # --export_dir: the binary exports G_ema of the final checkpoint.
    assert f"exported {tmp_path / 'export' / 'xplore' / '1'}" in first.stdout
    second = run_binary("xplore_tf.train", *SHRUNK_DEMO, *workdir, "--num_steps=4")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stderr and "at step 2" in second.stderr
    assert "trained to step 4" in second.stdout
    assert "step 3/4" in second.stderr and "step 1/4" not in second.stderr
    # One export per finished command, the second from the resumed run's last checkpoint.
    assert sorted(os.listdir(tmp_path / "export" / "xplore")) == ["1", "2"]
    with open(tmp_path / "export" / "xplore" / "2" / "assets.extra" / "xplore_tf.json") as f:
        assert json.load(f)["step"] == 4


def test_resume_with_other_model_flags_is_one_line_and_keeps_the_checkpoints(
    tmp_path, tmp_path_factory
):
    """A workdir trained with another architecture (e.g. configs/demo.cfg's earlier direct
    output, now masked): one line naming the checkpoint and the model flags; nothing lost."""
    cfg = copy_of_tiny_run(tmp_path_factory, tmp_path)
    before = sorted(os.listdir(cfg.checkpoint_dir))
    masked = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, output_mode="masked"),
        train=dataclasses.replace(cfg.train, num_steps=4, lambda_mask=0.01),
    )
    with pytest.raises(ValueError) as e:
        train_lib.train(masked)
    message = str(e.value)
    assert "\n" not in message and len(message) < 700, message
    assert "ckpt-2: its models do not match the ones these flags build" in message
    assert "--output_mode" in message and "--noresume" in message
    assert sorted(os.listdir(cfg.checkpoint_dir)) == before


def test_training_removes_what_an_interrupted_save_or_prune_left(tmp_path, tmp_path_factory):
    """A kill inside a save leaves `ckpt-N_temp/`; one inside a prune (index first, then the
    data) leaves data shards without their index. The next start removes both, with a
    warning, and keeps every listed checkpoint."""
    import shutil

    cfg = copy_of_tiny_run(tmp_path_factory, tmp_path)
    newest = newest_checkpoint(cfg.checkpoint_dir)
    orphan = os.path.join(cfg.checkpoint_dir, "ckpt-1.data-00000-of-00001")
    shutil.copy(newest + ".data-00000-of-00001", orphan)  # its index already pruned
    os.makedirs(os.path.join(cfg.checkpoint_dir, "ckpt-3_temp", "part-00000-of-00001"))
    before = sorted(os.listdir(cfg.checkpoint_dir))
    assert train_lib.train(cfg).step == 2
    after = sorted(os.listdir(cfg.checkpoint_dir))
    assert after == [n for n in before if n not in ("ckpt-1.data-00000-of-00001", "ckpt-3_temp")]
    assert "ckpt-2.index" in after


def test_checkpoint_of_other_clusters_is_refused_everywhere(tmp_path, tmp_path_factory):
    """Re-clustering (another k) after training: resume, export, evaluate and translate
    refuse with one line naming both fingerprints; nothing is written."""
    from xplore_tf import checkpoints, config, export_lib, translate_lib
    from xplore_tf.clustering import artifacts, pipeline
    from xplore_tf.evaluation import pipeline as eval_pipeline

    cfg = copy_of_tiny_run(tmp_path_factory, tmp_path)
    old = artifacts.clusters_fingerprint(cfg.clusters_dir)
    reclustered = dataclasses.replace(cfg, cluster=dataclasses.replace(cfg.cluster, num_clusters=3))
    pipeline.run_clustering(reclustered)
    new = artifacts.clusters_fingerprint(cfg.clusters_dir)
    assert new != old
    listing = sorted(os.listdir(cfg.checkpoint_dir)), sorted(os.listdir(cfg.train_dir))

    def refused(fn):
        with pytest.raises(checkpoints.ClusterMismatchError) as e:
            fn()
        message = str(e.value)
        assert "\n" not in message and old in message and new in message, message
        return message

    message = refused(
        lambda: train_lib.train(
            dataclasses.replace(reclustered, train=dataclasses.replace(cfg.train, num_steps=4))
        )
    )
    assert "--noresume" in message and "ckpt-2" in message
    export_cfg = dataclasses.replace(
        reclustered, export=config.ExportConfig(export_dir=str(tmp_path / "export"))
    )
    refused(lambda: export_lib.export(export_cfg))
    refused(lambda: translate_lib.Translator.from_checkpoint(reclustered))
    refused(
        lambda: eval_pipeline.checkpoint_translate_fn(
            reclustered, newest_checkpoint(cfg.checkpoint_dir)
        )
    )
    assert (sorted(os.listdir(cfg.checkpoint_dir)), sorted(os.listdir(cfg.train_dir))) == listing
    assert not (tmp_path / "export").exists()
    # --noresume starts over on the new clusters; the fingerprint moves with it.
    train_lib.train(
        dataclasses.replace(reclustered, train=dataclasses.replace(cfg.train, resume=False))
    )
    assert checkpoints.checkpoint_fingerprint(newest_checkpoint(cfg.checkpoint_dir)) == new
    assert export_lib.export(export_cfg).version == 1


def _tiny_cli_flags(workdir) -> list[str]:
    return [
        f"--workdir={workdir}",
        "--synthetic_num=48",
        "--synthetic_size=32",
        "--kmeans_nredo=1",
        *TINY_MODEL_FLAGS,
        "--batch_size=4",
        "--num_steps=2",
        "--mixed_precision=none",  # auto's bfloat16 traces longer; the result is the same
    ]


@pytest.fixture(scope="module")
def cli_trained_run(tmp_path_factory):
    """A workdir the train binary trained with `_tiny_cli_flags` (shared: copy before use)."""
    workdir = tmp_path_factory.mktemp("cli_trained_run")
    res = run_binary("xplore_tf.train", *_tiny_cli_flags(workdir))
    assert res.returncode == 0, res.stderr[-3000:]
    return workdir


def _copy_of_cli_trained_run(cli_trained_run, workdir) -> list[str]:
    """`cli_trained_run` copied into `workdir`: its binary flags pointing there."""
    import shutil

    shutil.copytree(cli_trained_run, workdir, dirs_exist_ok=True)
    return _tiny_cli_flags(workdir)


def test_train_cli_names_the_cluster_mismatch_in_one_line(tmp_path, cli_trained_run):
    flags = _copy_of_cli_trained_run(cli_trained_run, tmp_path)
    flags = [f for f in flags if not f.startswith("--num_clusters")]
    assert run_binary("xplore_tf.cluster", *flags, "--num_clusters=3").returncode == 0
    res = run_binary("xplore_tf.train", *flags, "--num_clusters=3", "--num_steps=4")
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("xplore_tf.train: error: ") and "trained on clusters" in last
    assert "Tensor" not in res.stderr and "Traceback" not in res.stderr


def _tensorboard_events(logdir, tag):
    """Events of `tag` as TensorBoard's own loader reads them (the plugins' accumulator,
    with its restart purging off: the files themselves must hold each step once)."""
    from tensorboard.backend.event_processing import plugin_event_accumulator

    acc = plugin_event_accumulator.EventAccumulator(
        str(logdir), size_guidance={"tensors": 0}, purge_orphaned_data=False
    )
    acc.Reload()
    return acc.Tensors(tag)


def _tensorboard_steps(logdir, tag):
    return [e.step for e in _tensorboard_events(logdir, tag)]


def test_resumed_run_shows_each_step_once_in_tensorboard(tmp_path):
    import tensorflow as tf

    cfg = tiny_config(tmp_path, summary_every=1, sample_every=1, checkpoint_every=4)
    train_lib.train(cfg)
    # As if the process died after logging step 6 but before its final checkpoint:
    # the resumed run restarts from step 4 and logs steps 5 and 6 again.
    for name in os.listdir(cfg.checkpoint_dir):
        if name.startswith("ckpt-6"):
            os.remove(os.path.join(cfg.checkpoint_dir, name))
    tf.compat.v1.train.update_checkpoint_state(
        cfg.checkpoint_dir, os.path.join(cfg.checkpoint_dir, "ckpt-4")
    )
    assert _tensorboard_steps(cfg.train_dir, "D/adv") == [1, 2, 3, 4, 5, 6]
    resumed_at = time.time()
    assert train_lib.train(cfg).step == 6
    for tag in ("D/adv", "samples", "eval/target_accuracy"):
        assert _tensorboard_steps(cfg.train_dir, tag) == [1, 2, 3, 4, 5, 6], tag
    # Steps 5 and 6 are the resumed process's; the first process's were dropped.
    walls = {e.step: e.wall_time for e in _tensorboard_events(cfg.train_dir, "D/adv")}
    assert walls[4] < resumed_at <= walls[5] <= walls[6]

    # A --noresume run in the same workdir replaces the whole history.
    train_lib.train(
        dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=False, num_steps=2))
    )
    assert _tensorboard_steps(cfg.train_dir, "D/adv") == [1, 2]


# ---------------------------------------------------------------- never lose work silently
def test_a_workdir_named_like_a_glob_pattern_resumes_prunes_and_exports(tmp_path_factory):
    """`runs/exp[1]`: TensorFlow reads `[1]` as a pattern; the run still resumes from its
    checkpoint (never step 0), keeps --keep_checkpoints of them, and exports."""
    from xplore_tf import config, export_lib

    workdir = tmp_path_factory.mktemp("runs") / "exp[1]"
    cfg = copy_of_tiny_run(tmp_path_factory, workdir)
    cfg = dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, num_steps=4, checkpoint_every=1, keep_checkpoints=2),
    )
    result = train_lib.train(cfg)
    assert (result.step, result.steps_run) == (4, 2)  # resumed at 2, not started over
    assert sorted(os.listdir(cfg.checkpoint_dir)) == [
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
    ]
    export_cfg = dataclasses.replace(cfg, export=config.ExportConfig())
    exported = export_lib.export(export_cfg)
    assert exported.checkpoint.endswith("ckpt-4") and exported.step == 4


def _cut(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _damaged_newer_checkpoint(cfg, step: int) -> str:
    """ckpt-<step>: a copy of the run's newest checkpoint whose data file is cut in half."""
    import shutil

    newest = newest_checkpoint(cfg.checkpoint_dir)
    damaged = os.path.join(cfg.checkpoint_dir, f"ckpt-{step}")
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(newest + suffix, damaged + suffix)
    _cut(damaged + ".data-00000-of-00001")
    return damaged


def test_resume_and_export_fall_back_past_a_damaged_checkpoint(tmp_path, tmp_path_factory, caplog):
    from xplore_tf import config, export_lib

    cfg = copy_of_tiny_run(tmp_path_factory, tmp_path)
    damaged = _damaged_newer_checkpoint(cfg, 9)
    export_cfg = dataclasses.replace(cfg, export=config.ExportConfig())
    with caplog.at_level("WARNING", logger="absl"):
        exported = export_lib.export(export_cfg)
    assert exported.checkpoint.endswith("ckpt-2")
    assert f"skipping checkpoint {damaged}: unreadable (IndexError: Read less bytes" in caplog.text
    caplog.clear()
    cfg4 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, num_steps=4))
    with caplog.at_level("INFO", logger="absl"):
        result = train_lib.train(cfg4)
    assert "resumed from" in caplog.text and f"skipping checkpoint {damaged}" in caplog.text
    assert (result.step, result.steps_run) == (4, 2)


def test_checkpoint_files_that_none_restore_stop_the_run_in_one_line(tmp_path, tmp_path_factory):
    cfg = copy_of_tiny_run(tmp_path_factory, tmp_path)
    _cut(newest_checkpoint(cfg.checkpoint_dir) + ".index")
    before = sorted(os.listdir(cfg.checkpoint_dir))
    cfg4 = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, num_steps=4))
    with pytest.raises(ValueError) as info:
        train_lib.train(cfg4)
    message = str(info.value)
    assert "\n" not in message
    assert f"{cfg.checkpoint_dir} holds checkpoint files but none can be read" in message
    assert "ckpt-2: unreadable" in message and "--noresume" in message
    assert sorted(os.listdir(cfg.checkpoint_dir)) == before  # nothing written over them


def test_a_finished_training_run_again_says_there_is_nothing_to_do(tmp_path, cli_trained_run):
    flags = _copy_of_cli_trained_run(cli_trained_run, tmp_path)
    again = run_binary("xplore_tf.train", *flags)
    assert again.returncode == 0
    assert again.stdout.strip().splitlines()[0] == (
        "already trained to step 2 (--num_steps=2): nothing to do; checkpoint "
        f"{tmp_path}/checkpoints/ckpt-2"
    )
