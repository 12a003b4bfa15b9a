"""Tests of xplore_tf.models.generator on tiny configurations (32 px, base 8, 2+2 blocks)."""

from __future__ import annotations

import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplore_tf.models.generator import (  # noqa: E402
    HF_KERNEL_SIZE,
    RESIDUAL_CLIP,
    AsinMlp,
    Decoder,
    Encoder,
    Generator,
    GeneratorOutput,
    condition_dim,
    condition_vector,
    split_affine_params,
)
from xplore_tf.models.layers import high_frequency  # noqa: E402

SIZE, BASE, BLOCKS, STATS, K = 32, 8, 2, 4, 5
TINY = dict(base_channels=BASE, num_res_blocks=BLOCKS, mlp_hidden=16, stats_dim=STATS)


def tiny_generator(**overrides) -> Generator:
    """A tiny generator, built (all weights created) through `Generator.build`."""
    keras.utils.set_random_seed(0)
    g = Generator(SIZE, **{**TINY, "num_clusters": K, **overrides})
    g.build(((None, SIZE, SIZE, 3), (None, g.condition_dim)))
    return g


def images(n=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")


def stats_tables(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(K, STATS)).astype("float32"), rng.uniform(0.1, 1, (K, STATS)).astype(
        "float32"
    )


def set_noise_scales(g: Generator, value: float) -> None:
    for block in g.decoder.blocks:
        for noise in (block.noise1, block.noise2):
            noise.scale.assign(np.full(noise.scale.shape, value, "float32"))


@pytest.mark.parametrize("upsample", ["transpose", "resize_conv"])
@pytest.mark.parametrize("condition", ["mean_std", "mean", "onehot"])
def test_generator_output_shape_and_range(upsample, condition):
    g = tiny_generator(upsample=upsample, condition=condition)
    centroids, stds = stats_tables()
    cond = condition_vector(np.array([0, 3]), centroids, stds, mode=condition)
    assert tuple(cond.shape) == (2, g.condition_dim)
    y = np.asarray(g((images(), cond), training=True))
    assert y.shape == (2, SIZE, SIZE, 3) and y.dtype == np.float32
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert y.std() > 1e-3  # not a constant image


def test_encode_shape_and_decode_consistency():
    keras.utils.set_random_seed(0)
    g = Generator(SIZE, **TINY)  # unbuilt: encode() may come before the first full call
    x = images()
    cond = np.random.default_rng(2).normal(size=(2, 2 * STATS)).astype("float32")
    h = g.encode(x)
    assert tuple(h.shape) == (2, SIZE // 4, SIZE // 4, 4 * BASE)
    np.testing.assert_allclose(
        np.asarray(g.decode(h, cond)), np.asarray(g((x, cond))), rtol=1e-5, atol=1e-6
    )


def test_mlp_slices_one_gamma_beta_pair_per_asin_layer():
    g = tiny_generator()
    assert g.decoder.asin_layer_channels == [4 * BASE] * (2 * BLOCKS)
    cond = np.ones((3, 2 * STATS), "float32")
    params = g.affine_params(cond)
    assert tuple(params.shape) == (3, 2 * BLOCKS * 2 * 4 * BASE)
    pairs = g.mlp.split(params)
    assert len(pairs) == 2 * BLOCKS
    assert all(tuple(a.shape) == (3, 4 * BASE) for pair in pairs for a in pair)
    rebuilt = np.concatenate([np.concatenate(pair, axis=-1) for pair in pairs], axis=-1)
    np.testing.assert_array_equal(rebuilt, np.asarray(params))


def test_split_affine_params_layout_and_width_check():
    params = np.arange(2 * (2 * 2 + 2 * 3), dtype="float32").reshape(2, 10)
    (g1, b1), (g2, b2) = split_affine_params(params, [2, 3])
    np.testing.assert_array_equal(g1, params[:, 0:2])
    np.testing.assert_array_equal(b1, params[:, 2:4])
    np.testing.assert_array_equal(g2, params[:, 4:7])
    np.testing.assert_array_equal(b2, params[:, 7:10])
    with pytest.raises(ValueError, match="width"):
        split_affine_params(params, [2, 2])


def test_mlp_depth_and_initial_gamma_one_beta_zero():
    mlp = AsinMlp([3, 2], depth=4, hidden_units=5)
    out = np.asarray(mlp(np.zeros((1, 6), "float32")))  # zero input: output = output bias
    assert len(mlp.hidden) == 3
    np.testing.assert_array_equal(out, [[1, 1, 1, 0, 0, 0, 1, 1, 0, 0]])
    single = AsinMlp([2], depth=1)
    single(np.zeros((1, 3), "float32"))
    assert single.hidden == [] and len(single.weights) == 2
    with pytest.raises(ValueError, match="depth"):
        AsinMlp([2], depth=0)


def test_condition_vector_modes():
    centroids = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "float32")
    stds = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], "float32")
    ids = np.array([2, 0], "int32")
    np.testing.assert_allclose(
        condition_vector(ids, centroids, stds, mode="mean_std"),
        [[5, 6, 0.5, 0.6], [1, 2, 0.1, 0.2]],
    )
    np.testing.assert_allclose(condition_vector(ids, centroids, mode="mean"), [[5, 6], [1, 2]])
    np.testing.assert_allclose(
        condition_vector(ids, centroids, mode="onehot"), [[0, 0, 1], [1, 0, 0]]
    )
    with pytest.raises(ValueError, match="stds"):
        condition_vector(ids, centroids, mode="mean_std")
    with pytest.raises(ValueError, match="mode"):
        condition_vector(ids, centroids, stds, mode="median")
    assert condition_dim("mean_std", stats_dim=4, num_clusters=None) == 8
    assert condition_dim("onehot", stats_dim=4, num_clusters=7) == 7
    with pytest.raises(ValueError, match="num_clusters"):
        Generator(SIZE, condition="onehot", **TINY)


def test_conditioning_changes_output_and_inference_is_deterministic():
    g = tiny_generator()
    set_noise_scales(g, 0.5)
    x = images()
    centroids, stds = stats_tables()
    c0 = condition_vector(np.array([0, 0]), centroids, stds)
    c1 = condition_vector(np.array([1, 1]), centroids, stds)
    y0 = np.asarray(g((x, c0), training=False))
    np.testing.assert_array_equal(np.asarray(g((x, c0), training=False)), y0)
    assert np.abs(np.asarray(g((x, c1), training=False)) - y0).mean() > 1e-3
    # training=True draws the decoder noise: two calls differ.
    t0, t1 = (np.asarray(g((x, c0), training=True)) for _ in range(2))
    assert np.abs(t0 - t1).mean() > 1e-4


def test_noise_at_inference_option():
    g = tiny_generator(noise_at_inference=True)
    cond = np.zeros((1, 2 * STATS), "float32")
    set_noise_scales(g, 0.5)
    a, b = (np.asarray(g((images(1), cond), training=False)) for _ in range(2))
    assert np.abs(a - b).mean() > 1e-4


def test_every_trainable_weight_gets_a_gradient():
    g = tiny_generator()
    x = tf.constant(images())
    cond = tf.constant(np.ones((2, 2 * STATS), "float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(g((x, cond), training=True))
    grads = tape.gradient(loss, g.trainable_variables)
    missing = [v.path for v, gr in zip(g.trainable_variables, grads, strict=True) if gr is None]
    assert missing == []


def test_generator_rejects_bad_inputs():
    g = tiny_generator()
    with pytest.raises(ValueError, match="condition"):
        g((images(), np.zeros((2, 3), "float32")))
    with pytest.raises(ValueError, match="images"):
        g((np.zeros((2, 16, 16, 3), "float32"), np.zeros((2, 2 * STATS), "float32")))
    with pytest.raises(ValueError, match="multiple of 4"):
        Generator(30, **TINY)
    with pytest.raises(ValueError, match="upsample"):
        Generator(SIZE, upsample="bilinear", **TINY)


def test_generator_config_round_trip_and_save_load(tmp_path):
    g = tiny_generator(upsample="resize_conv", condition="onehot", mlp_depth=2)
    x = images()
    cond = condition_vector(np.array([1, 4]), np.zeros((K, STATS), "float32"), mode="onehot")
    g((x, cond))
    set_noise_scales(g, 0.3)  # noise must not leak into inference outputs
    expected = np.asarray(g((x, cond), training=False))
    config = g.get_config()
    assert config["upsample"] == "resize_conv" and config["num_clusters"] == K

    clone = Generator.from_config(config)
    clone((x, cond))
    clone.set_weights(g.get_weights())
    np.testing.assert_allclose(np.asarray(clone((x, cond))), expected, rtol=1e-5, atol=1e-6)

    path = str(tmp_path / "g.keras")
    keras.saving.save_model(g, path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Generator) and loaded.get_config() == config
    np.testing.assert_allclose(
        np.asarray(loaded((x, cond), training=False)), expected, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(loaded.encode(x)), np.asarray(g.encode(x)), rtol=1e-5, atol=1e-6
    )


SUBLAYER_CASES = {
    "encoder": (
        lambda: Encoder(base_channels=4, num_res_blocks=1, spectral_norm=False, norm="none"),
        {"base_channels": 4, "num_res_blocks": 1, "spectral_norm": False, "norm": "none"},
        lambda: images(2)[:, :16, :16],
    ),
    "decoder": (
        lambda: Decoder(base_channels=4, num_res_blocks=1, upsample="resize_conv", norm="demod"),
        {
            "base_channels": 4,
            "num_res_blocks": 1,
            "upsample": "resize_conv",
            "noise_at_inference": False,
            "output_mode": "direct",
            "skip_connections": "none",
            "skip_levels": 2,
            "norm": "demod",
        },
        lambda: [images(2)[:, :4, :4, :1].repeat(16, -1), np.ones((2, 2 * 2 * 16), "float32")],
    ),
    "decoder_gated_skips": (
        lambda: Decoder(base_channels=4, num_res_blocks=1, skip_connections="gated", skip_levels=1),
        {
            "base_channels": 4,
            "num_res_blocks": 1,
            "upsample": "transpose",
            "noise_at_inference": False,
            "output_mode": "direct",
            "skip_connections": "gated",
            "skip_levels": 1,
            "norm": "instance",
        },
        lambda: [
            images(2)[:, :4, :4, :1].repeat(16, -1),
            np.ones((2, 2 * 2 * 16), "float32"),
            images(2)[:, :16, :16, :1].repeat(4, -1),
            images(2, seed=1)[:, :8, :8, :1].repeat(8, -1),
            np.ones((2, 5), "float32"),
        ],
    ),
    "mlp": (
        lambda: AsinMlp([3, 5], depth=2, hidden_units=7),
        {"layer_channels": [3, 5], "depth": 2, "hidden_units": 7},
        lambda: np.ones((2, 4), "float32"),
    ),
}


@pytest.mark.parametrize("case", sorted(SUBLAYER_CASES))
def test_sublayer_config_round_trip(case):
    make, expected_args, make_inputs = SUBLAYER_CASES[case]
    layer, inputs = make(), make_inputs()
    expected = np.asarray(layer(inputs))
    config = layer.get_config()
    assert set(config) - {"name", "trainable", "dtype"} == set(expected_args)
    assert {k: config[k] for k in expected_args} == expected_args
    clone = type(layer).from_config(config)
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(inputs)), expected, rtol=1e-5, atol=1e-6)


# Pinned BEFORE the identity-preservation options were added: with every option at its
# default the paper-width generator must keep exactly these variables.
PAPER_WIDTH_PARAMS = 17_275_011
PAPER_WIDTH_WEIGHTS = 95


def test_paper_width_default_generator_parameter_count_is_pinned():
    g = Generator(128, base_channels=64, num_res_blocks=6, mlp_depth=3, mlp_hidden=256)
    g.build(((None, 128, 128, 3), (None, g.condition_dim)))
    assert g.count_params() == PAPER_WIDTH_PARAMS
    assert len(g.weights) == PAPER_WIDTH_WEIGHTS


# --- Identity-preserving options: 16 px, base 4, 1 + 1 blocks. ---------------------------

SMALL = 16
SMALL_KW = dict(base_channels=4, num_res_blocks=1, mlp_depth=2, mlp_hidden=8, stats_dim=STATS)
VARIANTS = {
    "direct": {},
    "masked": {"output_mode": "masked"},
    "residual": {"output_mode": "residual", "skip_connections": "plain"},
    "plain": {"skip_connections": "plain"},
    "gated": {"skip_connections": "gated"},
    "plain_half": {"skip_connections": "plain", "skip_levels": 1},
    "hf": {"hf_bypass": True},
    "all": {"output_mode": "masked", "skip_connections": "gated", "hf_bypass": True},
}


def small_generator(size=SMALL, **options) -> Generator:
    keras.utils.set_random_seed(0)
    g = Generator(size, **SMALL_KW, **options)
    g.build(((None, size, size, 3), (None, g.condition_dim)))
    return g


def small_inputs(n=2, size=SMALL, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")
    return x, rng.normal(size=(n, 2 * STATS)).astype("float32")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_forward_returns_images_content_and_mask(variant):
    g = small_generator(**VARIANTS[variant])
    x, cond = small_inputs()
    out = g.forward(x, cond, training=False)
    assert isinstance(out, GeneratorOutput)
    y = np.asarray(out.images)
    assert y.shape == (2, SMALL, SMALL, 3) and y.dtype == np.float32
    assert np.abs(y).max() <= 1.0 and y.std() > 1e-3
    np.testing.assert_allclose(np.asarray(out.content), np.asarray(g.encode(x)), atol=1e-6)
    assert tuple(out.content.shape) == (2, SMALL // 4, SMALL // 4, 16)
    if g.output_mode != "masked":
        assert out.mask is None
    else:
        mask = np.asarray(out.mask)
        assert mask.shape == (2, SMALL, SMALL, 1)
        assert mask.min() >= 0.0 and mask.max() <= 1.0
    # call() is forward().images
    np.testing.assert_array_equal(np.asarray(g((x, cond), training=False)), y)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_forward_each_equals_one_forward_per_condition(variant):
    g = small_generator(**VARIANTS[variant])
    x, cond_a = small_inputs(n=3)
    _, cond_b = small_inputs(n=3, seed=1)
    outs = g.forward_each(x, [cond_a, cond_b], training=False)
    assert len(outs) == 2
    for out, cond in zip(outs, (cond_a, cond_b), strict=True):
        ref = g.forward(x, cond, training=False)
        np.testing.assert_allclose(np.asarray(out.images), np.asarray(ref.images), atol=1e-5)
        np.testing.assert_allclose(np.asarray(out.content), np.asarray(ref.content), atol=1e-6)
        if ref.mask is None:
            assert out.mask is None
        else:
            np.testing.assert_allclose(np.asarray(out.mask), np.asarray(ref.mask), atol=1e-6)
    assert not np.allclose(np.asarray(outs[0].images), np.asarray(outs[1].images))


def test_masked_output_blends_colour_and_mask():
    g = small_generator(output_mode="masked")
    x, cond = small_inputs()
    color, mask = g.decoder([g.encode(x), g.affine_params(cond)])
    color, mask = np.asarray(color), np.asarray(mask)
    assert 0.0 < mask.min() and mask.max() < 1.0 and mask.std() > 1e-4  # a genuine random A
    expected = mask * color + (1.0 - mask) * x
    out = g.forward(x, cond)
    np.testing.assert_allclose(np.asarray(out.images), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.mask), mask)
    # Mask head: 7x7 conv with 1 output channel, bias initialised to 0 (A starts at ~0.5).
    assert tuple(g.decoder.to_mask.kernel.shape) == (7, 7, 4, 1)
    np.testing.assert_array_equal(
        np.asarray(small_generator(output_mode="masked").decoder.to_mask.bias), [0.0]
    )


@pytest.mark.parametrize("hf_bypass", [False, True])
def test_zero_mask_returns_the_input_exactly(hf_bypass):
    g = small_generator(output_mode="masked", skip_connections="plain", hf_bypass=hf_bypass)
    g.decoder.to_mask.kernel.assign(np.zeros(g.decoder.to_mask.kernel.shape, "float32"))
    g.decoder.to_mask.bias.assign(np.array([-1e4], "float32"))  # sigmoid -> exactly 0
    x, cond = small_inputs()
    out = g.forward(x, cond, training=True)
    np.testing.assert_array_equal(np.asarray(out.mask), 0.0)
    np.testing.assert_array_equal(np.asarray(out.images), x)


@pytest.mark.parametrize("size", [16, 24])
@pytest.mark.parametrize("mode", ["plain", "gated"])
def test_skip_connection_shapes(mode, size):
    g = small_generator(size, skip_connections=mode)
    x, cond = small_inputs(size=size)
    h, skips = g.encode(x, return_skips=True)
    assert [tuple(t.shape) for t in skips] == [(2, size, size, 4), (2, size // 2, size // 2, 8)]
    assert g.encoder.skip_shapes((2, size, size, 3)) == [tuple(t.shape) for t in skips]
    y = g.forward(x, cond).images
    assert tuple(y.shape) == (2, size, size, 3)
    first, second = g.decoder.skips  # after up1 (2*base ch, half res), after up2 (base ch)
    if mode == "plain":
        assert tuple(first.fuse.kernel.shape) == (1, 1, 8 + 8, 8)
        assert tuple(second.fuse.kernel.shape) == (1, 1, 4 + 4, 4)
    else:
        assert tuple(first.gate.kernel.shape) == (1, 1, 16, 8)
        assert tuple(first.gate_condition.kernel.shape) == (2 * STATS, 8)
        assert tuple(second.project.kernel.shape) == (1, 1, 4, 4)
    np.testing.assert_allclose(
        np.asarray(g.decode(h, cond, skips=skips)), np.asarray(y), rtol=1e-6, atol=1e-6
    )


def test_skip_connections_pass_encoder_detail():
    # Zeroing the full-resolution encoder feature changes the output: the skip is used.
    g = small_generator(skip_connections="plain")
    x, cond = small_inputs()
    h, (full, half) = g.encode(x, return_skips=True)
    a = np.asarray(g.decode(h, cond, skips=[full, half]))
    b = np.asarray(g.decode(h, cond, skips=[full * 0, half]))
    assert np.abs(a - b).mean() > 1e-4


def test_one_skip_level_uses_only_the_half_resolution_feature():
    # AttGAN's single shortcut: skip_full is accepted and ignored, skip_half is used.
    both, half = (
        small_generator(skip_connections="plain"),
        small_generator(skip_connections="plain", skip_levels=1),
    )
    assert [s.name for s in half.decoder.skips] == ["skip1"]
    assert half.count_params() < both.count_params()
    x, cond = small_inputs()
    h, (full, half_res) = half.encode(x, return_skips=True)
    a = np.asarray(half.decode(h, cond, skips=[full, half_res]))
    np.testing.assert_array_equal(np.asarray(half.decode(h, cond, skips=[full * 0, half_res])), a)
    b = np.asarray(half.decode(h, cond, skips=[full, half_res * 0]))
    assert np.abs(a - b).mean() > 1e-4
    with pytest.raises(ValueError, match="skip_levels"):
        Generator(SMALL, skip_connections="plain", skip_levels=3, **SMALL_KW)


def test_residual_output_adds_to_the_input_in_artanh_space():
    g = small_generator(output_mode="residual")
    x, cond = small_inputs()
    r = np.asarray(g.decoder([g.encode(x), g.affine_params(cond)]))
    assert np.abs(r).max() > 0.1  # the raw conv, no tanh
    clipped = np.clip(x, -RESIDUAL_CLIP, RESIDUAL_CLIP)
    expected = np.tanh(np.arctanh(clipped) + r)
    np.testing.assert_allclose(np.asarray(g((x, cond))), expected, rtol=1e-5, atol=1e-5)
    # r = 0: every colour of the input comes back (beyond the clip bound)
    g.decoder.to_rgb.kernel.assign(np.zeros(g.decoder.to_rgb.kernel.shape, "float32"))
    g.decoder.to_rgb.bias.assign(np.zeros(3, "float32"))
    np.testing.assert_allclose(np.asarray(g((x, cond))), clipped, atol=1e-5)
    with pytest.raises(ValueError, match="--nohf_bypass"):
        Generator(SMALL, output_mode="residual", hf_bypass=True, **SMALL_KW)


def test_decode_needs_images_and_skips_when_the_options_do():
    x, cond = small_inputs()
    for options, missing in (
        ({"output_mode": "masked"}, "images"),
        ({"output_mode": "residual"}, "images"),
        ({"hf_bypass": True}, "images"),
        ({"skip_connections": "gated"}, "skips"),
    ):
        g = small_generator(**options)
        with pytest.raises(ValueError, match=missing):
            g.decode(g.encode(x), cond)
    g = small_generator()
    with pytest.raises(ValueError, match="skips"):
        g.decode(g.encode(x), cond, skips=g.encode(x, return_skips=True)[1])
    g = small_generator(**VARIANTS["all"])
    h, skips = g.encode(x, return_skips=True)
    np.testing.assert_allclose(
        np.asarray(g.decode(h, cond, images=x, skips=skips)),
        np.asarray(g.forward(x, cond).images),
        rtol=1e-6,
        atol=1e-6,
    )


def test_hf_bypass_adds_the_clipped_high_frequency_band():
    plain, bypass = small_generator(), small_generator(hf_bypass=True)
    assert len(bypass.weights) == len(plain.weights)  # no weights of its own
    bypass.set_weights(plain.get_weights())
    x, cond = small_inputs()
    without = np.asarray(plain((x, cond), training=False))
    band = np.asarray(high_frequency(x, kernel_size=HF_KERNEL_SIZE))
    assert (np.abs(without + band) > 1).any()  # the clipping matters for this input
    expected = np.clip(without + band, -1.0, 1.0)
    np.testing.assert_allclose(
        np.asarray(bypass((x, cond), training=False)), expected, rtol=1e-6, atol=1e-6
    )


def test_new_options_reject_bad_values():
    with pytest.raises(ValueError, match="output_mode"):
        Generator(SMALL, output_mode="soft", **SMALL_KW)
    with pytest.raises(ValueError, match="skip_connections"):
        Generator(SMALL, skip_connections="add", **SMALL_KW)
    decoder = Decoder(base_channels=4, num_res_blocks=1, skip_connections="plain")
    with pytest.raises(ValueError, match="skip_full"):
        decoder([np.zeros((1, 4, 4, 16), "float32"), np.zeros((1, 64), "float32")])


def test_get_config_holds_exactly_the_constructor_arguments():
    g = small_generator(**VARIANTS["all"])
    config = g.get_config()
    args = set(inspect.signature(Generator.__init__).parameters) - {"self", "kwargs"}
    assert args <= set(config) and set(config) - args <= {"name", "trainable", "dtype"}
    assert (config["output_mode"], config["skip_connections"], config["hf_bypass"]) == (
        "masked",
        "gated",
        True,
    )
    defaults = Generator(SMALL, **SMALL_KW).get_config()
    assert (defaults["output_mode"], defaults["skip_connections"], defaults["hf_bypass"]) == (
        "direct",
        "none",
        False,
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_option_config_round_trip(variant):
    g = small_generator(**VARIANTS[variant])
    x, cond = small_inputs()
    rng = np.random.default_rng(3)  # randomise every weight: a wrong restore cannot match
    g.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in g.get_weights()])
    expected = g.forward(x, cond, training=False)
    config = g.get_config()
    for key, value in VARIANTS[variant].items():
        assert config[key] == value
    clone = Generator.from_config(config)
    clone.build(((None, SMALL, SMALL, 3), (None, clone.condition_dim)))
    assert [v.path for v in clone.weights] == [v.path for v in g.weights]
    clone.set_weights(g.get_weights())
    got = clone.forward(x, cond, training=False)
    np.testing.assert_allclose(np.asarray(got.images), np.asarray(expected.images), atol=1e-6)
    if expected.mask is not None:
        np.testing.assert_allclose(np.asarray(got.mask), np.asarray(expected.mask), atol=1e-6)


def test_all_options_save_and_load(tmp_path):
    g = small_generator(**VARIANTS["all"])
    x, cond = small_inputs()
    expected = np.asarray(g((x, cond), training=False))
    path = str(tmp_path / "g.keras")
    keras.saving.save_model(g, path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Generator) and loaded.get_config() == g.get_config()
    np.testing.assert_allclose(
        np.asarray(loaded((x, cond), training=False)), expected, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_trainable_variable_gets_a_gradient_through_forward(variant):
    g = small_generator(**VARIANTS[variant])
    x, cond = (tf.constant(a) for a in small_inputs())
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(g.forward(x, cond, training=True).images)
    grads = tape.gradient(loss, g.trainable_variables)
    missing = [v.path for v, gr in zip(g.trainable_variables, grads, strict=True) if gr is None]
    assert missing == [] and len(grads) > 0


def test_modulated_conv_is_a_per_sample_conv_with_demodulated_weights():
    """StyleGAN2 eq. 1-3 by hand: w'[k,i,o] = s[i] w[k,i,o]; w'' = w' / sqrt(sum_{k,i} w'^2)."""
    from xplore_tf.models.layers import modulated_conv

    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)
    conv.build((None, 5, 5, 2))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 2)).astype("float32")
    style = np.array([[1.0, 2.0], [0.5, 0.0]], "float32")
    y = np.asarray(modulated_conv(conv, tf.constant(x), tf.constant(style), epsilon=0.0))
    w = np.asarray(conv.kernel)
    for n in range(2):
        modulated = w * style[n][None, None, :, None]
        demodulated = modulated / np.sqrt((modulated**2).sum(axis=(0, 1, 2)))
        expected = tf.nn.conv2d(x[n : n + 1], demodulated, 1, "SAME")[0]
        np.testing.assert_allclose(y[n], expected, rtol=1e-5, atol=1e-5)


def test_demodulated_decoder_takes_no_sample_statistics_and_round_trips():
    g = tiny_generator(decoder_norm="demod")
    assert all(norm is None for norm in g.decoder.up_norms)
    assert all(block.norm == "demod" for block in g.decoder.blocks)
    x, cond = images(), np.ones((2, 2 * STATS), "float32")
    y = np.asarray(g((x, cond)))
    assert y.shape == (2, SIZE, SIZE, 3) and np.abs(y).max() <= 1
    # Without per-sample normalisation, a translation of one image does not depend on the
    # others in the batch, and a brighter input region is not renormalised away.
    alone = np.asarray(g((x[:1], cond[:1])))
    np.testing.assert_allclose(alone[0], y[0], atol=1e-5)
    clone = Generator.from_config(g.get_config())
    clone((x, cond))
    clone.set_weights(g.get_weights())
    np.testing.assert_allclose(np.asarray(clone((x, cond))), y, atol=1e-6)
    with pytest.raises(ValueError, match="norm"):
        tiny_generator(decoder_norm="batch")
    paper = tiny_generator()
    assert len(paper.weights) == len(g.weights) + 4  # the two up-sampling instance norms


def test_encoder_without_normalisation_has_biased_convs_and_round_trips():
    g = tiny_generator(decoder_norm="demod", encoder_norm="none")
    assert all(norm is None for norm in g.encoder.norms)
    assert all(conv.use_bias for conv in g.encoder.convs)
    assert all(block.norm == "none" for block in g.encoder.blocks)
    x, cond = images(), np.ones((2, 2 * STATS), "float32")
    y = np.asarray(g((x, cond)))
    # No instance norm left anywhere in G: each image's translation is its own, whatever
    # the contrast of the image (instance norm would cancel a global gain on the input).
    np.testing.assert_allclose(np.asarray(g((x[1:], cond[1:])))[0], y[1], atol=1e-5)
    halved = np.asarray(g((x * 0.5, cond)))
    assert not np.allclose(halved, y, atol=1e-3)
    clone = Generator.from_config(g.get_config())
    clone((x, cond))
    clone.set_weights(g.get_weights())
    np.testing.assert_allclose(np.asarray(clone((x, cond))), y, atol=1e-6)
    with pytest.raises(ValueError, match="norm"):
        tiny_generator(encoder_norm="batch")
    paper = tiny_generator(decoder_norm="demod")
    blocks = len(paper.encoder.blocks)
    # 3 instance norms (gamma, beta) become 3 biases; each block's 2 norms become 2 biases.
    assert len(paper.weights) - len(g.weights) == 3 * 2 - 3 + blocks * (2 * 2 - 2)
