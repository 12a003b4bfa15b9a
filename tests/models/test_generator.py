"""Tests of xplore_tf.models.generator on tiny configurations (32 px, base 8, 2+2 blocks)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplore_tf.models.generator import (  # noqa: E402
    AsinMlp,
    Decoder,
    Encoder,
    Generator,
    condition_dim,
    condition_vector,
    split_affine_params,
)

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
        lambda: Encoder(base_channels=4, num_res_blocks=1, spectral_norm=False),
        {"base_channels": 4, "num_res_blocks": 1, "spectral_norm": False},
        lambda: images(2)[:, :16, :16],
    ),
    "decoder": (
        lambda: Decoder(base_channels=4, num_res_blocks=1, upsample="resize_conv"),
        {
            "base_channels": 4,
            "num_res_blocks": 1,
            "upsample": "resize_conv",
            "noise_at_inference": False,
        },
        lambda: [images(2)[:, :4, :4, :1].repeat(16, -1), np.ones((2, 2 * 2 * 16), "float32")],
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
