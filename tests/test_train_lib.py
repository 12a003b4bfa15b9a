"""Training: schedule, exact resume, 1-vs-2-replica equivalence, divergence, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from tests_support import PROJECT_ROOT, TINY_MODEL_FLAGS, run_binary, tiny_config

from xplore_tf import train_lib


def _weights(workdir):
    """All checkpointed variables of the latest checkpoint, by name."""
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
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


def test_resume_equals_uninterrupted(tmp_path):
    whole = train_lib.train(tiny_config(tmp_path / "whole"))
    assert whole.step == 6
    first = train_lib.train(tiny_config(tmp_path / "split"), max_steps=3)
    assert first.step == 3
    second = train_lib.train(tiny_config(tmp_path / "split"))
    assert second.step == 6
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a.keys() == b.keys() and len(a) > 50
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-5, err_msg=name)
    # The run also wrote what a user watches.
    train_dir = tmp_path / "whole" / "train"
    assert sorted(os.listdir(train_dir / "samples")) == ["step_0000003.png", "step_0000006.png"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(train_dir))
    assert [r["step"] for r in whole.history] == [2, 4, 6]
    assert set(train_lib.SCALARS) <= set(whole.history[-1])
    assert whole.history[-1]["lr"] == 0.0


def test_diverged_run_stops_with_clear_error_and_keeps_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, checkpoint_every=2)
    real_step = train_lib.Trainer.train_step

    def diverging_step(self, step, batch):
        scalars = real_step(self, step, batch)
        return {**scalars, "G/rec": float("nan")} if step == 3 else scalars

    monkeypatch.setattr(train_lib.Trainer, "train_step", diverging_step)
    with pytest.raises(train_lib.TrainingDivergedError, match=r"step 3: non-finite loss .*G/rec"):
        train_lib.train(cfg)
    import tensorflow as tf

    # The checkpoint of step 2 is the last one: nothing after the bad step was saved.
    assert tf.train.latest_checkpoint(cfg.checkpoint_dir).endswith("ckpt-2")


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


def test_train_cli_end_to_end(tmp_path):
    res = run_binary(
        "xplore_tf.train",
        f"--workdir={tmp_path}",
        "--synthetic_num=48",
        "--synthetic_size=32",
        "--kmeans_nredo=1",
        *TINY_MODEL_FLAGS,
        "--batch_size=4",
        "--num_steps=4",
        "--n_critic=2",
        "--log_every=2",
        "--sample_every=4",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "trained to step 4" in res.stdout
    assert "step 4/4" in res.stderr and "images/s" in res.stderr
    assert (tmp_path / "clusters" / "stats.npz").exists()
    assert (tmp_path / "train" / "samples" / "step_0000004.png").exists()
    assert (tmp_path / "flags_train.txt").exists()
