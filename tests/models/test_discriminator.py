"""Tests of xplore_tf.models.discriminator: head shapes, widths, validation, serialisation,
and PatchMatmulConv2D against keras.layers.Conv2D."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplore_tf.models.discriminator import (  # noqa: E402
    Discriminator,
    PatchMatmulConv2D,
    leaky_relu,
)


def images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("size, num_down, patch", [(32, 4, 2), (32, 5, 1), (16, 3, 2), (32, 2, 8)])
def test_output_shapes(size, num_down, patch):
    d = Discriminator(size, 7, base_channels=4, num_down=num_down)
    src, cls = d(images(3, size))
    assert tuple(src.shape) == (3, patch, patch, 1)
    assert tuple(cls.shape) == (3, 7)
    assert src.dtype == "float32" and cls.dtype == "float32"
    assert d.final_size == patch
    assert d.compute_output_shape((3, size, size, 3)) == ((3, patch, patch, 1), (3, 7))


def test_widths_double_and_are_capped_and_no_normalisation():
    d = Discriminator(32, 3, base_channels=4, num_down=5, max_channels=16)
    d.build((None, 32, 32, 3))
    assert [c.filters for c in d.convs] == [4, 8, 16, 16, 16]
    assert [c.kernel_size for c in d.convs] == [(4, 4)] * 5
    assert d.out_cls.kernel_size == (1, 1) and d.out_src.kernel_size == (3, 3)
    # Only convs: every weight is a conv kernel or bias (no norm layers in a WGAN-GP critic).
    assert all(w.path.endswith(("kernel", "bias")) for w in d.weights)
    assert len(d.weights) == 2 * 5 + 2


def test_samples_are_scored_independently():
    d = Discriminator(16, 2, base_channels=4, num_down=3)
    x = images(2, 16)
    src, cls = d(x)
    src0, cls0 = d(x[:1])
    np.testing.assert_allclose(np.asarray(src)[:1], np.asarray(src0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(cls)[:1], np.asarray(cls0), rtol=1e-5, atol=1e-6)


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_down"):
        Discriminator(48, 3, num_down=5)
    with pytest.raises(ValueError, match="num_down"):
        Discriminator(32, 3, num_down=0)
    d = Discriminator(32, 3, base_channels=4, num_down=4)
    with pytest.raises(ValueError, match="images"):
        d(images(1, 16))


def test_config_round_trip_and_save_load(tmp_path):
    keras.utils.set_random_seed(0)
    d = Discriminator(16, 4, base_channels=4, num_down=3, max_channels=8)
    x = images(2, 16)
    src, cls = (np.asarray(t) for t in d(x))
    config = d.get_config()
    expected_args = {
        "image_size": 16,
        "num_clusters": 4,
        "base_channels": 4,
        "num_down": 3,
        "max_channels": 8,
    }
    assert {k: config[k] for k in expected_args} == expected_args
    assert set(config) - {"name", "trainable", "dtype"} == set(expected_args)
    clone = Discriminator.from_config(config)
    clone(x)
    clone.set_weights(d.get_weights())
    np.testing.assert_allclose(np.asarray(clone(x)[0]), src, rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "d.keras")
    keras.saving.save_model(d, path)
    loaded = keras.saving.load_model(path)
    lsrc, lcls = loaded(x)
    np.testing.assert_allclose(np.asarray(lsrc), src, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(lcls), cls, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "size, channels, filters, kernel, stride, padding, as_matmul",
    [
        (4, 8, 64, 4, 2, "same", True),  # D's tail: 4x4 -> 2x2
        (1, 8, 16, 3, 1, "same", True),  # out_src on a 1x1 map: only the centre tap
        (2, 8, 20, 2, 1, "valid", True),  # out_cls: kernel = map
        (7, 3, 200, 4, 3, "same", True),  # odd padding (1 before, 2 after), 3x3 positions
        (5, 3, 300, 3, 2, "valid", True),
        (8, 4, 64, 4, 2, "same", True),  # 16 positions * 4 <= 64 filters
        (8, 4, 60, 4, 2, "same", False),  # 16 positions * 4 > 60 filters: plain Conv2D
    ],
)
def test_patch_matmul_conv_equals_conv2d_with_the_double_backward(
    size, channels, filters, kernel, stride, padding, as_matmul
):
    """Values, both first derivatives and WGAN-GP's second derivative (the kernel gradient
    of the input gradient's norm) equal Conv2D's with the same weights."""
    x = tf.constant(np.random.default_rng(1).normal(size=(3, size, size, channels)), "float32")
    layers = [
        cls(filters, kernel, strides=stride, padding=padding)
        for cls in (PatchMatmulConv2D, keras.layers.Conv2D)
    ]
    for layer in layers:
        layer.build(x.shape)
    layers[1].set_weights(layers[0].get_weights())
    assert layers[0].as_matmul is as_matmul
    results = []
    for layer in layers:
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x)
                score = tf.reduce_sum(tf.sin(y))
            dx, dk = inner.gradient(score, [x, layer.kernel])
            penalty = tf.reduce_sum(tf.square(dx))
        results.append([y, dx, dk, outer.gradient(penalty, layer.kernel)])
    for got, want in zip(*results, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_weight_bound_tail_runs_as_matmul_with_conv2d_variables():
    """The paper's D at 128 px (2048 filters on 2x2) and the demo's at 32 px use the matrix
    product for the layers whose output map has <= filters/4 positions; the variables keep
    Conv2D's paths, so checkpoints from before the change load."""
    for size, width, num_down, k, expected in [
        (128, 64, 6, 100, [False] * 3 + [True, True, True, False, True]),
        (32, 16, 4, 20, [False] * 2 + [True, True, False, True]),
    ]:
        d = Discriminator(size, k, base_channels=width, num_down=num_down)
        d.build((None, size, size, 3))
        layers = [*d.convs, d.out_src, d.out_cls]
        assert [layer.as_matmul for layer in layers] == expected
        assert [w.path for w in d.convs[-1].weights] == [
            f"{d.name}/down{num_down - 1}/kernel",
            f"{d.name}/down{num_down - 1}/bias",
        ]


def test_patch_matmul_conv_rejects_dilation():
    with pytest.raises(ValueError, match="dilation"):
        PatchMatmulConv2D(4, 3, dilation_rate=2).build((1, 8, 8, 2))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_leaky_relu_matches_tensorflows_with_the_double_backward(dtype):
    """D's LeakyReLU: values, the input gradient and WGAN-GP's second derivative (the weight
    gradient of the input gradient's norm, through a matrix product before it) equal
    tf.nn.leaky_relu's (alpha 0.01; at 0 the slope is 0.01, as in PyTorch), negatives included."""
    rng = np.random.default_rng(0)
    x = tf.constant(np.concatenate([rng.normal(size=(4, 6)), np.zeros((1, 6))]), dtype)
    w = tf.constant(rng.normal(size=(6, 5)), dtype)
    v = tf.constant(rng.normal(size=(5,)), dtype)
    results = []
    for activation in (leaky_relu, lambda h: tf.nn.leaky_relu(h, alpha=0.01)):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = activation(tf.matmul(x, w))
                score = tf.reduce_sum(y * v)
            dx = inner.gradient(score, x)
            penalty = tf.reduce_sum(tf.square(tf.cast(dx, "float32")))
        dw = outer.gradient(penalty, w)
        results.append([tf.cast(t, "float32").numpy() for t in (y, dx, dw)])
    assert (results[1][0] < 0).any() and (results[1][0] > 0).any()
    for got, want in zip(*results, strict=True):
        np.testing.assert_array_equal(got, want)
