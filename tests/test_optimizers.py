"""Tests of xplore_tf.optimizers.FusedAdam against keras.optimizers.Adam."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from xplore_tf.optimizers import FusedAdam


def _train(optimizer_cls, strategy, steps=5, **kwargs):
    """A few Adam steps on a least-squares toy; returns the optimizer and the values of w, b
    and the optimizer's variables after its step counter (learning rate, m and v of each)."""
    with strategy.scope():
        w = keras.Variable(np.arange(6, dtype="float32").reshape(2, 3) / 7, name="w")
        b = keras.Variable(np.ones(3, "float32"), name="b")
        optimizer = optimizer_cls(1e-2, beta_1=0.5, beta_2=0.99, **kwargs)
        optimizer.build([w, b])

    @tf.function
    def step(x):
        def replica(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(tf.matmul(x, w) + b))
            optimizer.apply(tape.gradient(loss, [w, b]), [w, b])

        strategy.run(replica, (x,))

    rng = np.random.default_rng(0)
    for _ in range(steps):
        step(tf.constant(rng.normal(size=(4, 2)), "float32"))
    return optimizer, [v.numpy() for v in (w, b, *optimizer.variables[1:])]


@pytest.mark.parametrize(
    "strategy",
    [tf.distribute.OneDeviceStrategy("/cpu:0"), tf.distribute.MirroredStrategy(["/cpu:0"])],
    ids=["one_device", "mirrored"],
)
def test_fused_adam_equals_keras_adam(strategy):
    fused, got = _train(FusedAdam, strategy)
    _, want = _train(keras.optimizers.Adam, strategy)
    assert int(fused.iterations.numpy()) == 5
    assert len(got) == len(want) == 2 + 1 + 4
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    assert not np.allclose(got[0], np.arange(6).reshape(2, 3) / 7)  # it did train


def test_fused_adam_config_and_checkpoint_are_keras_adams(tmp_path):
    """A checkpoint written with keras.optimizers.Adam restores into FusedAdam (runs from
    before the change resume), and the config round-trips."""
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    adam, state = _train(keras.optimizers.Adam, strategy, steps=3)
    path = tf.train.Checkpoint(optimizer=adam).save(str(tmp_path / "ckpt"))
    fused, _ = _train(FusedAdam, strategy, steps=1)
    tf.train.Checkpoint(optimizer=fused).restore(path).assert_existing_objects_matched()
    restored = [v.numpy() for v in fused.variables]
    for g, w in zip(restored, [adam.iterations.numpy(), *state[2:]], strict=True):
        np.testing.assert_array_equal(g, w)
    clone = FusedAdam.from_config(fused.get_config())
    assert clone.get_config() == fused.get_config()


def test_amsgrad_uses_keras_update():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    _, got = _train(FusedAdam, strategy, amsgrad=True)
    _, want = _train(keras.optimizers.Adam, strategy, amsgrad=True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)
