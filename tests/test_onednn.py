"""TensorFlow's oneDNN CPU kernels (turned on by `import xplore_tf`) compute what its own
Eigen kernels compute: the same training step in two processes, oneDNN on and off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests_support import PROJECT_ROOT

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

# Two iterations of the real Trainer (n_critic=2: a D step, then D + G + EMA) at small widths
# on fixed random images; prints every loss of both iterations as JSON.
SCRIPT = r"""
import json, os
import numpy as np
import xplore_tf
import keras
import tensorflow as tf
from xplore_tf import config as config_lib, distribute, train_step
from xplore_tf.clustering import artifacts

config = config_lib.Config(
    workdir="/tmp/unused",
    model=config_lib.ModelConfig(image_size=16, g_channels=8, g_res_blocks=1, d_channels=8,
                                 d_num_down=3, mlp_hidden=16, skip_connections="plain",
                                 hf_bypass=True),
    train=config_lib.TrainConfig(batch_size=4, n_critic=2, lambda_self=10.0),
)
rng = np.random.default_rng(0)
k, d = 5, 16
stats = artifacts.ClusterStats(
    centroids=rng.normal(size=(k, d)).astype(np.float32),
    stds=rng.uniform(0.1, 1, (k, d)).astype(np.float32),
    sizes=np.full(k, 10), pca_mean=np.zeros(8, np.float32),
    pca_matrix=np.zeros((8, d), np.float32), extractor="pixels", image_size=16, crop_size=0)
keras.utils.set_random_seed(0)
trainer = train_step.Trainer(config, stats, distribute.make_strategy("one_device"))
batch = {
    "image": tf.constant(rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)),
    "cluster": tf.constant([0, 1, 2, 3], tf.int32),
    "target": tf.constant([1, 2, 3, 4], tf.int32),
    "position": tf.range(4, dtype=tf.int64),
}
print(json.dumps([trainer.train_step(step, batch) for step in range(2)]))
"""


def _losses(onednn: str) -> list[dict]:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_package_turns_onednn_on_unless_the_user_chose():
    code = "import os, xplore_tf; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    run = lambda env: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    assert run(env) == "1"
    assert run({**env, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "0"


def test_onednn_and_eigen_kernels_give_the_same_training_step():
    on, off = _losses("1"), _losses("0")
    assert on[0].keys() == off[0].keys() and "D/gp" in on[0] and "G/self" in on[1]
    # The first D step sees identical weights: only summation order differs.
    for key in on[0]:
        assert on[0][key] == pytest.approx(off[0][key], rel=1e-4, abs=1e-5), key
    # The second follows one Adam update, which can amplify last-bit differences of
    # near-zero gradients up to the learning rate: a looser bound.
    for key in on[1]:
        assert on[1][key] == pytest.approx(off[1][key], rel=1e-2, abs=1e-3), key
