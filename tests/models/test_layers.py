"""Tests of xplore_tf.models.layers: numerics against numpy, noise, shapes, serialisation."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from xplore_tf.models import layers as layers_module  # noqa: E402
from xplore_tf.models.layers import (  # noqa: E402
    AsinResidualBlock,
    AttributeSummaryInstanceNorm,
    ConcatSkip,
    GatedSkip,
    InstanceNormalization,
    NoiseInjection,
    ResidualBlock,
    SpectralNormalization,
    Upsample,
    binomial_taps,
    high_frequency,
    masked_blend,
)

BASE_CONFIG_KEYS = {"name", "trainable", "dtype"}


def numpy_instance_norm(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def rand(*shape, seed=0, scale=1.0, offset=0.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale + offset).astype("float32")


@pytest.fixture(params=["composed", "fused"])
def norm_kernel(request, monkeypatch):
    """Runs a test with each instance-norm implementation (the fused one from any size)."""
    if request.param == "fused":
        monkeypatch.setattr(layers_module, "FUSED_MIN_ELEMENTS", 0)
    else:
        monkeypatch.setattr(layers_module, "FUSED_MIN_ELEMENTS", float("inf"))
    return request.param


def test_instance_norm_matches_numpy_with_affine(norm_kernel):
    x = rand(2, 5, 6, 3, scale=3.0, offset=2.0)
    layer = InstanceNormalization()
    layer.build(x.shape)
    gamma, beta = rand(3, seed=1), rand(3, seed=2)
    layer.set_weights([gamma, beta])
    expected = numpy_instance_norm(x) * gamma + beta
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-5)


def test_instance_norm_without_affine_has_no_weights_and_normalises(norm_kernel):
    x = rand(2, 4, 4, 5, scale=10.0, offset=-7.0)
    layer = InstanceNormalization(center=False, scale=False, epsilon=1e-3)
    y = np.asarray(layer(x))
    assert layer.weights == []
    np.testing.assert_allclose(y, numpy_instance_norm(x, 1e-3), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)


def test_instance_norm_is_per_sample(norm_kernel):
    a, b = rand(1, 4, 4, 2, seed=3), rand(1, 4, 4, 2, seed=4) * 100
    layer = InstanceNormalization(center=False, scale=False)
    together = np.asarray(layer(np.concatenate([a, b])))
    np.testing.assert_allclose(together[:1], np.asarray(layer(a)), rtol=1e-5, atol=1e-6)


def test_instance_norm_rejects_non_nhwc():
    with pytest.raises(ValueError, match="4-D"):
        InstanceNormalization()(np.zeros((2, 3), "float32"))


def test_asin_matches_hand_computed_instance_norm(norm_kernel):
    x = rand(2, 3, 4, 3, scale=2.0, offset=1.0)
    gamma = np.array([[1.0, 2.0, -0.5], [0.0, 1.0, 3.0]], "float32")
    beta = np.array([[0.0, -1.0, 0.5], [2.0, 0.0, 1.0]], "float32")
    y = np.asarray(AttributeSummaryInstanceNorm()([x, gamma, beta]))
    expected = numpy_instance_norm(x) * gamma[:, None, None, :] + beta[:, None, None, :]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    # gamma is used directly (not 1 + gamma): gamma=0 gives exactly beta.
    np.testing.assert_allclose(y[1, ..., 0], 2.0, atol=1e-6)


def _both_paths(monkeypatch, x, dy, gamma, beta):
    """[(composed, fused)] pairs of the output and the gradients of x, gamma, beta of
    sum(y * dy), as float32 numpy arrays."""
    import tensorflow as tf

    results = []
    for threshold in (float("inf"), 0):
        monkeypatch.setattr(layers_module, "FUSED_MIN_ELEMENTS", threshold)
        with tf.GradientTape() as tape:
            tape.watch([x, gamma, beta])
            y = layers_module._instance_normalize(x, 1e-5, gamma, beta)
            loss = tf.reduce_sum(tf.cast(y * dy, tf.float32))
        assert y.dtype == x.dtype
        grads = tape.gradient(loss, [x, gamma, beta])
        results.append([np.asarray(tf.cast(t, tf.float32)) for t in (y, *grads)])
    return list(zip(*results, strict=True))


def test_fused_and_composed_instance_norm_agree_with_gradients(monkeypatch):
    # ASIN's per-sample affine and InstanceNormalization's shared one, float32: values and
    # the gradients of x, gamma and beta (dy random, so every term of the backward counts).
    import tensorflow as tf

    x = tf.constant(rand(3, 6, 5, 4, scale=2.0, offset=1.5))
    dy = tf.constant(rand(3, 6, 5, 4, seed=5))
    for gamma, beta in [
        (rand(3, 4, seed=1), rand(3, 4, seed=2)),  # per sample [N, C]
        (rand(4, seed=3), rand(4, seed=4)),  # shared [C]
    ]:
        for composed, fused in _both_paths(
            monkeypatch, x, dy, tf.constant(gamma), tf.constant(beta)
        ):
            np.testing.assert_allclose(fused, composed, rtol=1e-4, atol=1e-4)


def test_fused_and_composed_instance_norm_agree_in_bfloat16(monkeypatch):
    # The case the fused path is for: bfloat16 maps, float32 statistics and affine.
    import tensorflow as tf

    x = tf.constant(rand(2, 8, 8, 32, scale=2.0, offset=1.5), tf.bfloat16)
    dy = tf.constant(rand(2, 8, 8, 32, seed=5), tf.bfloat16)
    gamma, beta = tf.constant(rand(2, 32, seed=1)), tf.constant(rand(2, 32, seed=2))
    for composed, fused in _both_paths(monkeypatch, x, dy, gamma, beta):
        np.testing.assert_allclose(fused, composed, rtol=2e-2, atol=5e-2)


def test_instance_norm_composed_where_the_fused_kernel_cannot_run(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(layers_module, "FUSED_MIN_ELEMENTS", 0)
    # An empty batch, and float64 (FusedBatchNormV3 takes float32 / bfloat16 / float16).
    assert layers_module._instance_normalize(tf.zeros([0, 4, 4, 3]), 1e-5).shape == (0, 4, 4, 3)
    x = rand(2, 5, 6, 3, scale=3.0).astype("float64")
    y = layers_module._instance_normalize(tf.constant(x), 1e-5)
    assert y.dtype == tf.float64
    np.testing.assert_allclose(np.asarray(y), numpy_instance_norm(x), rtol=1e-6, atol=1e-6)
    # A per-sample affine whose batch is unknown, or a batch above FUSED_MAX_BATCH.
    fn = tf.function(lambda x, g: layers_module._instance_normalize(x, 1e-5, g, None))
    for x_spec, g_spec in [
        (tf.TensorSpec([2, 4, 4, 3]), tf.TensorSpec([None, 3])),
        (tf.TensorSpec([layers_module.FUSED_MAX_BATCH + 1, 4, 4, 3]), tf.TensorSpec([3])),
    ]:
        graph = fn.get_concrete_function(x_spec, g_spec).graph
        assert "FusedBatchNormV3" not in {op.type for op in graph.get_operations()}


def test_instance_norm_affine_stays_float32_under_mixed_bfloat16(norm_kernel):
    # gamma 1.004 is 1.0 in bfloat16 (its spacing at 1 is 2^-7): the output's spread shows
    # which one the layer used.
    x = rand(1, 64, 64, 16, scale=2.0)
    layer = InstanceNormalization(dtype="mixed_bfloat16")
    layer.build(x.shape)
    layer.set_weights([np.full(16, 1.004, "float32"), np.zeros(16, "float32")])
    y = np.asarray(layer(x)).astype("float32")
    assert y.std() == pytest.approx(1.004, abs=5e-4)


def test_instance_norm_uses_the_fused_kernel_from_paper_sizes():
    # FusedBatchNormV3 in the traced graph at 32x32x256 (paper128's residual maps), not at
    # the demo's 8x8x16; bfloat16 in, bfloat16 out either way.
    import tensorflow as tf

    def op_types(shape):
        fn = tf.function(lambda x: layers_module._instance_normalize(x, 1e-5))
        graph = fn.get_concrete_function(tf.TensorSpec(shape, tf.bfloat16)).graph
        assert graph.outputs[0].dtype == tf.bfloat16
        return {op.type for op in graph.get_operations()}

    assert "FusedBatchNormV3" in op_types((2, 32, 32, 256))
    assert "FusedBatchNormV3" not in op_types((2, 8, 8, 16))
    # Unknown batch (a SavedModel's serving signature): the composed form.
    assert "FusedBatchNormV3" not in op_types((None, 32, 32, 256))


def test_asin_has_no_weights():
    layer = AttributeSummaryInstanceNorm()
    layer([rand(1, 2, 2, 4), np.ones((1, 4), "float32"), np.zeros((1, 4), "float32")])
    assert layer.weights == []


@pytest.mark.parametrize(
    "gamma_shape, beta_shape",
    [((2, 4), (2, 3)), ((2, 3), (2, 4)), ((2, 3, 1), (2, 3)), ((3, 3), (3, 3))],
)
def test_asin_rejects_mismatched_affine_shapes(gamma_shape, beta_shape):
    x = rand(2, 4, 4, 3)
    with pytest.raises(ValueError):
        AttributeSummaryInstanceNorm()(
            [x, np.ones(gamma_shape, "float32"), np.zeros(beta_shape, "float32")]
        )


def test_noise_injection_is_identity_at_init_even_in_training():
    x = rand(2, 6, 6, 4)
    layer = NoiseInjection(seed=1)
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), x)
    assert [w.shape for w in layer.trainable_weights] == [(4,)]


def test_noise_injection_adds_per_pixel_noise_shared_across_channels():
    x = rand(2, 32, 32, 3)
    layer = NoiseInjection(seed=1)
    layer.build(x.shape)
    layer.set_weights([np.array([1.0, 2.0, -3.0], "float32")])
    delta = np.asarray(layer(x, training=True)) - x
    assert delta.shape == x.shape
    np.testing.assert_allclose(delta[..., 1], 2.0 * delta[..., 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(delta[..., 2], -3.0 * delta[..., 0], rtol=1e-5, atol=1e-5)
    noise = delta[..., 0]
    assert 0.85 < noise.std() < 1.15 and abs(noise.mean()) < 0.15
    assert not np.allclose(noise[0], noise[1])  # independent per sample
    second = np.asarray(layer(x, training=True)) - x
    assert not np.allclose(second, delta)  # fresh noise every call


def test_noise_injection_inference_modes_and_explicit_noise():
    x = rand(1, 4, 4, 2)
    scale = np.array([0.5, 1.0], "float32")
    quiet = NoiseInjection(seed=3)
    noisy = NoiseInjection(noise_at_inference=True, seed=3)
    for layer in (quiet, noisy):
        layer.build(x.shape)
        layer.set_weights([scale])
    np.testing.assert_array_equal(np.asarray(quiet(x, training=False)), x)
    np.testing.assert_array_equal(np.asarray(quiet(x)), x)
    assert not np.allclose(np.asarray(noisy(x, training=False)), x)
    noise = rand(1, 4, 4, 1, seed=9)
    for training in (False, True):
        np.testing.assert_allclose(
            np.asarray(quiet(x, training=training, noise=noise)), x + noise * scale, atol=1e-6
        )
    with pytest.raises(ValueError, match="noise"):
        quiet(x, noise=rand(1, 4, 4, 2))


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_residual_block_shape_and_skip(spectral_norm):
    x = rand(2, 8, 8, 6)
    block = ResidualBlock(6, spectral_norm=spectral_norm)
    y = np.asarray(block(x, training=True))
    assert y.shape == x.shape
    # Skip path: zeroing the last instance norm's affine removes the main path exactly.
    block.norm2.set_weights([np.zeros(6, "float32"), np.zeros(6, "float32")])
    np.testing.assert_allclose(np.asarray(block(x)), x, atol=1e-6)
    names = [w.path for w in block.weights]
    assert any("vector_u" in n for n in names) == spectral_norm


def test_residual_block_spectral_norm_normalises_kernel():
    # 20 power iterations from a random u: how close sigma gets to 1 depends on the draw,
    # so seed it (unseeded, the result depended on which tests ran before).
    keras.utils.set_random_seed(0)
    block = ResidualBlock(8, spectral_norm=True)
    x = rand(1, 6, 6, 8)
    for _ in range(20):
        block(x, training=True)
    kernel = np.asarray(block.conv1.layer.kernel).reshape(-1, 8)
    np.testing.assert_allclose(np.linalg.svd(kernel, compute_uv=False)[0], 1.0, rtol=0.05)


def test_residual_block_rejects_channel_mismatch_and_bad_norm():
    with pytest.raises(ValueError, match="filters"):
        ResidualBlock(4)(rand(1, 4, 4, 3))
    with pytest.raises(ValueError, match="norm"):
        ResidualBlock(4, norm="batch")


def test_residual_block_without_norm_uses_biased_convs():
    block = ResidualBlock(4, norm="none")
    block(rand(1, 4, 4, 4))
    assert len(block.weights) == 4  # two kernels + two biases, no norm weights


def asin_inputs(n=2, size=6, filters=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, filters)).astype("float32")
    params = [rng.normal(size=(n, filters)).astype("float32") for _ in range(4)]
    return [x, *params]


def test_asin_residual_block_shape_and_conditioning():
    block = AsinResidualBlock(4)
    inputs = asin_inputs()
    y = np.asarray(block(inputs))
    assert y.shape == inputs[0].shape
    changed = list(inputs)
    changed[4] = changed[4] + 1.0  # beta2 is added after the last ASIN: output shifts by it
    np.testing.assert_allclose(np.asarray(block(changed)) - y, 1.0, atol=1e-5)


def test_asin_residual_block_rejects_bad_inputs():
    block = AsinResidualBlock(4)
    inputs = asin_inputs()
    with pytest.raises(ValueError, match="expects inputs"):
        block(inputs[:3])
    bad = list(inputs)
    bad[1] = np.ones((2, 5), "float32")
    with pytest.raises(ValueError, match="channels"):
        AsinResidualBlock(4)(bad)
    with pytest.raises(ValueError, match="filters"):
        AsinResidualBlock(3)(inputs)


@pytest.mark.parametrize("mode", ["transpose", "resize_conv"])
def test_upsample_doubles_spatial_size(mode):
    layer = Upsample(5, mode=mode)
    assert np.asarray(layer(rand(2, 4, 6, 3))).shape == (2, 8, 12, 5)
    assert layer.compute_output_shape((2, 4, 6, 3)) == (2, 8, 12, 5)
    with pytest.raises(ValueError, match="mode"):
        Upsample(5, mode="bilinear")


LAYER_CASES = {
    "instance_norm": (
        lambda: InstanceNormalization(epsilon=1e-3, center=False),
        {"epsilon": 1e-3, "center": False, "scale": True},
        lambda: rand(2, 4, 4, 3),
    ),
    "asin": (
        lambda: AttributeSummaryInstanceNorm(epsilon=1e-4),
        {"epsilon": 1e-4},
        lambda: [rand(2, 4, 4, 3), rand(2, 3, seed=1), rand(2, 3, seed=2)],
    ),
    "noise": (
        lambda: NoiseInjection(noise_at_inference=False, seed=7),
        {"noise_at_inference": False, "seed": 7},
        lambda: rand(2, 4, 4, 3),
    ),
    "residual": (
        lambda: ResidualBlock(3, spectral_norm=True, norm="instance"),
        {"filters": 3, "spectral_norm": True, "norm": "instance"},
        lambda: rand(2, 4, 4, 3),
    ),
    "asin_residual": (
        lambda: AsinResidualBlock(3, noise_at_inference=False, epsilon=1e-5),
        {"filters": 3, "noise_at_inference": False, "epsilon": 1e-5, "norm": "instance"},
        lambda: asin_inputs(filters=3),
    ),
    "asin_residual_demod": (
        lambda: AsinResidualBlock(3, noise_at_inference=False, epsilon=1e-8, norm="demod"),
        {"filters": 3, "noise_at_inference": False, "epsilon": 1e-8, "norm": "demod"},
        lambda: asin_inputs(filters=3),
    ),
    "upsample": (
        lambda: Upsample(2, mode="resize_conv"),
        {"filters": 2, "mode": "resize_conv"},
        lambda: rand(2, 4, 4, 3),
    ),
    "concat_skip": (
        lambda: ConcatSkip(3),
        {"filters": 3},
        lambda: [rand(2, 4, 4, 3), rand(2, 4, 4, 2, seed=1)],
    ),
    "gated_skip": (
        lambda: GatedSkip(3),
        {"filters": 3},
        lambda: [rand(2, 4, 4, 3), rand(2, 4, 4, 2, seed=1), rand(2, 5, seed=2)],
    ),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_config_round_trip(case):
    make, expected_args, make_inputs = LAYER_CASES[case]
    layer = make()
    inputs = make_inputs()
    layer(inputs)
    # Randomise every weight so a wrongly restored layer cannot match by accident.
    layer.set_weights([rand(*w.shape, seed=i + 10) for i, w in enumerate(layer.get_weights())])
    config = layer.get_config()
    assert set(config) - BASE_CONFIG_KEYS == set(expected_args)
    assert {k: config[k] for k in expected_args} == expected_args
    clone = type(layer).from_config(config)
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        np.asarray(clone(inputs, training=False)),
        np.asarray(layer(inputs, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )
    # Also through Keras' registered-object serialisation (what model saving uses).
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config


# --- Identity-preserving building blocks. -----------------------------------------------


def test_binomial_taps():
    np.testing.assert_array_equal(binomial_taps(5), np.array([1, 4, 6, 4, 1]) / 16)
    assert binomial_taps(1) == [1.0] and sum(binomial_taps(7)) == 1.0
    for bad in (0, 4):
        with pytest.raises(ValueError, match="kernel_size"):
            binomial_taps(bad)


def test_high_frequency_of_a_constant_image_is_zero():
    x = np.full((2, 6, 7, 3), 0.5, "float32")
    np.testing.assert_allclose(np.asarray(high_frequency(x, kernel_size=5)), 0.0, atol=1e-7)


def test_high_frequency_of_a_delta():
    # One channel holds a unit impulse at the centre of a 9x9 image, the other is zero.
    # blur = outer(b, b) around the impulse with b = [1, 4, 6, 4, 1] / 16, so
    # hf = delta - outer(b, b): centre 1 - 36/256, (4,5) -24/256, (5,5) -16/256,
    # (4,6) -6/256, corner (6,6) -1/256, and 0 two pixels beyond the kernel's reach.
    x = np.zeros((1, 9, 9, 2), "float32")
    x[0, 4, 4, 0] = 1.0
    hf = np.asarray(high_frequency(x, kernel_size=5))
    assert hf[0, 4, 4, 0] == pytest.approx(220 / 256)
    assert hf[0, 4, 5, 0] == pytest.approx(-24 / 256)
    assert hf[0, 5, 5, 0] == pytest.approx(-16 / 256)
    assert hf[0, 4, 6, 0] == pytest.approx(-6 / 256)
    assert hf[0, 6, 6, 0] == pytest.approx(-1 / 256)
    b = np.array([1, 4, 6, 4, 1]) / 16
    expected = np.zeros((9, 9))
    expected[2:7, 2:7] = -np.outer(b, b)
    expected[4, 4] += 1.0
    np.testing.assert_allclose(hf[0, :, :, 0], expected, atol=1e-7)
    np.testing.assert_array_equal(hf[..., 1], 0.0)  # depthwise: channels stay separate


def test_high_frequency_of_a_linear_ramp_is_zero_inside():
    # A symmetric blur leaves a linear function unchanged away from the border.
    i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    x = (0.1 * i - 0.05 * j).astype("float32")[None, :, :, None]
    hf = np.asarray(high_frequency(x, kernel_size=5))
    np.testing.assert_allclose(hf[0, 2:-2, 2:-2, 0], 0.0, atol=1e-6)


def test_high_frequency_options_and_errors():
    x = rand(1, 4, 4, 3)
    np.testing.assert_array_equal(np.asarray(high_frequency(x, kernel_size=1)), 0.0)
    with pytest.raises(ValueError, match="kernel_size"):
        high_frequency(x, kernel_size=4)
    with pytest.raises(ValueError, match="exceed"):
        high_frequency(rand(1, 2, 2, 3), kernel_size=5)
    with pytest.raises(ValueError, match="NHWC"):
        high_frequency(rand(4, 4, 3), kernel_size=3)


def test_masked_blend_matches_the_formula():
    rng = np.random.default_rng(0)
    color, x = rand(2, 4, 5, 3, seed=1), rand(2, 4, 5, 3, seed=2)
    a = rng.uniform(0, 1, (2, 4, 5, 1)).astype("float32")
    expected = a * color + (1 - a) * x
    np.testing.assert_allclose(np.asarray(masked_blend(color, a, x)), expected, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(masked_blend(color, np.zeros_like(a), x)), x)
    np.testing.assert_array_equal(np.asarray(masked_blend(color, np.ones_like(a), x)), color)
    with pytest.raises(ValueError, match="mask"):
        masked_blend(color, rand(2, 4, 5, 3), x)
    with pytest.raises(ValueError, match="mask"):
        masked_blend(color, a[:, :2], x)


def test_concat_skip_matches_a_channel_matmul():
    x, skip = rand(2, 4, 4, 3), rand(2, 4, 4, 2, seed=1)
    layer = ConcatSkip(3)
    y = np.asarray(layer([x, skip]))
    kernel = layer.fuse.kernel.numpy()[0, 0]  # [5, 3]
    np.testing.assert_allclose(y, np.concatenate([x, skip], -1) @ kernel, rtol=1e-5, atol=1e-5)
    assert layer.fuse.bias is None


def test_gated_skip_matches_numpy_and_can_close():
    x, skip, cond = rand(2, 4, 4, 3), rand(2, 4, 4, 2, seed=1), rand(2, 5, seed=2)
    layer = GatedSkip(3)
    layer([x, skip, cond])
    layer.gate.bias.assign(rand(3, seed=3))
    w_gate, b_gate = layer.gate.kernel.numpy()[0, 0], layer.gate.bias.numpy()
    w_cond, w_proj = layer.gate_condition.kernel.numpy(), layer.project.kernel.numpy()[0, 0]
    logits = np.concatenate([x, skip], -1) @ w_gate + b_gate + (cond @ w_cond)[:, None, None]
    expected = x + 1 / (1 + np.exp(-logits)) * (skip @ w_proj)
    np.testing.assert_allclose(np.asarray(layer([x, skip, cond])), expected, rtol=1e-5, atol=1e-5)
    # The condition alone moves the gate.
    moved = np.asarray(layer([x, skip, cond + 1.0]))
    assert np.abs(moved - expected).mean() > 1e-4
    # A closed gate (sigmoid -> 0) passes the decoder features through unchanged.
    layer.gate.kernel.assign(np.zeros(layer.gate.kernel.shape, "float32"))
    layer.gate_condition.kernel.assign(np.zeros(layer.gate_condition.kernel.shape, "float32"))
    layer.gate.bias.assign(np.full((3,), -1e4, "float32"))
    np.testing.assert_array_equal(np.asarray(layer([x, skip, cond])), x)


def test_skip_layers_reject_bad_inputs():
    x, skip, cond = rand(2, 4, 4, 3), rand(2, 4, 4, 2, seed=1), rand(2, 5, seed=2)
    with pytest.raises(ValueError, match="filters"):
        ConcatSkip(4)([x, skip])
    with pytest.raises(ValueError, match="match"):
        ConcatSkip(3)([x, skip[:, :2, :2]])
    with pytest.raises(ValueError, match="expects inputs"):
        GatedSkip(3)([x, skip])
    with pytest.raises(ValueError, match="condition"):
        GatedSkip(3)([x, skip, cond[:, :, None]])
    with pytest.raises(ValueError, match="positive"):
        GatedSkip(0)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_spectral_norm_keeps_the_float32_kernel_under_a_mixed_policy(policy):
    # Keras' own wrapper computes W / sigma(W) from the kernel autocast to the compute
    # dtype and stores that: the float32 kernel came back rounded to bfloat16 after every
    # training call. Ours must store what a float32 wrapper stores, and still convolve in
    # the compute dtype.
    import tensorflow as tf

    x = rand(2, 6, 6, 4)
    kernel = rand(3, 3, 4, 8, seed=1) * 0.05 + 1e-4  # not representable in bfloat16
    stored = {}
    for name in ("float32", policy):
        layer = SpectralNormalization(
            keras.layers.Conv2D(8, 3, use_bias=False, dtype=name), dtype=name
        )
        layer(x)
        layer.set_weights([kernel, np.full((1, 8), 0.3, "float32")])  # kernel, vector_u
        y = layer(x, training=True)
        assert y.dtype == ("float32" if name == "float32" else policy.split("_")[1])
        stored[name] = [w.numpy() for w in (layer.layer.kernel, layer.vector_u)]
        assert all(w.dtype == "float32" for w in stored[name])
    for got, want in zip(stored[policy], stored["float32"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    rounded = tf.cast(tf.cast(stored[policy][0], tf.bfloat16), tf.float32).numpy()
    assert not np.array_equal(stored[policy][0], rounded)
