"""weights.py: torch-name mapping, layout transposes and mismatch errors."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from xplore_tf.features import weights  # noqa: E402


def _tiny_model() -> keras.Model:
    """conv(bias) -> BN -> depthwise(x2) -> conv -> pool -> fc; torch-named layers."""
    x = inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-5, name="bn1")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False, name="dw.0")(x)
    x = keras.layers.Conv2D(5, 1, use_bias=False, name="layer1.0.conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(2, name="fc")(x)
    return keras.Model(inputs, x, name="tiny")


def _tiny_state(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return {
        "conv1.weight": r(4, 3, 3, 3),
        "conv1.bias": r(4),
        "bn1.weight": r(4),
        "bn1.bias": r(4),
        "bn1.running_mean": r(4),
        "bn1.running_var": np.abs(r(4)) + 0.5,
        "bn1.num_batches_tracked": np.array(7, np.int64),
        "dw.0.weight": r(8, 1, 3, 3),
        "layer1.0.conv2.weight": r(5, 8, 1, 1),
        "fc.weight": r(2, 5),
        "fc.bias": r(2),
    }


def _save(tmp_path, state, name="w.npz") -> str:
    path = str(tmp_path / name)
    np.savez(path, **state)
    return path


def test_expected_keys_and_torch_shapes():
    shapes = weights.expected_torch_shapes(_tiny_model())
    state = _tiny_state()
    assert shapes == {k: v.shape for k, v in state.items() if "num_batches" not in k}


def test_loads_with_torch_layouts(tmp_path):
    model = _tiny_model()
    state = _tiny_state()
    weights.load_torch_weights(model, _save(tmp_path, state))
    layer = model.get_layer
    np.testing.assert_array_equal(
        layer("conv1").kernel.numpy(), state["conv1.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(layer("conv1").bias.numpy(), state["conv1.bias"])
    bn = layer("bn1")
    for var, key in (
        (bn.gamma, "weight"),
        (bn.beta, "bias"),
        (bn.moving_mean, "running_mean"),
        (bn.moving_variance, "running_var"),
    ):
        np.testing.assert_array_equal(var.numpy(), state[f"bn1.{key}"])
    # depthwise [C*m,1,kh,kw] with C=4, m=2: torch channel 2c+j -> keras [:, :, c, j]
    dw = layer("dw.0").kernel.numpy()
    assert dw.shape == (3, 3, 4, 2)
    np.testing.assert_array_equal(dw[:, :, 1, 0], state["dw.0.weight"][2, 0])
    np.testing.assert_array_equal(dw[:, :, 3, 1], state["dw.0.weight"][7, 0])
    np.testing.assert_array_equal(layer("fc").kernel.numpy(), state["fc.weight"].T)


def test_depthwise_multiplier_matches_torch_grouped_conv(tmp_path):
    torch = pytest.importorskip("torch")
    model = _tiny_model()
    state = _tiny_state(1)
    weights.load_torch_weights(model, _save(tmp_path, state))
    x = np.random.default_rng(2).standard_normal((2, 8, 8, 3)).astype(np.float32)
    sub = keras.Model(model.input, model.get_layer("dw.0").output)
    got = np.asarray(sub(x, training=False))
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
    with torch.no_grad():
        y = torch.nn.functional.conv2d(
            torch.from_numpy(x.transpose(0, 3, 1, 2)), t["conv1.weight"], t["conv1.bias"], padding=1
        )
        y = torch.nn.functional.batch_norm(
            y, t["bn1.running_mean"], t["bn1.running_var"], t["bn1.weight"], t["bn1.bias"], eps=1e-5
        )
        y = torch.nn.functional.conv2d(y, t["dw.0.weight"], groups=4)
    np.testing.assert_allclose(got, y.numpy().transpose(0, 2, 3, 1), atol=1e-4, rtol=1e-4)


def test_module_prefix_and_classifier_keys(tmp_path):
    # Feature model without fc: fc.* and classifier.* keys are tolerated, module. is stripped.
    model = _tiny_model()
    feat = keras.Model(model.input, model.get_layer("pool").output, name="feat")
    state = {f"module.{k}": v for k, v in _tiny_state().items()}
    state["module.classifier.1.weight"] = np.zeros((3, 5), np.float32)
    weights.load_torch_weights(feat, _save(tmp_path, state))
    np.testing.assert_array_equal(feat.get_layer("bn1").gamma.numpy(), state["module.bn1.weight"])


def test_missing_unexpected_and_misshaped_in_one_error(tmp_path):
    state = _tiny_state()
    del state["bn1.running_var"]
    state["bn9.weight"] = np.zeros(3, np.float32)
    state["conv1.weight"] = np.zeros((4, 3, 5, 5), np.float32)
    path = _save(tmp_path, state, "bad.npz")
    model = _tiny_model()
    before = model.get_layer("fc").kernel.numpy().copy()
    with pytest.raises(ValueError) as err:
        weights.load_torch_weights(model, path)
    msg = str(err.value)
    assert path in msg
    assert "1 missing: [bn1.running_var]" in msg
    assert "1 unexpected: [bn9.weight]" in msg
    assert "1 mis-shaped: [conv1.weight: file [4, 3, 5, 5] vs model [4, 3, 3, 3]]" in msg
    # all-or-nothing: nothing was assigned
    np.testing.assert_array_equal(model.get_layer("fc").kernel.numpy(), before)


@pytest.mark.parametrize("kind", ["missing", "unexpected", "mis-shaped"])
def test_each_kind_alone(tmp_path, kind):
    state = _tiny_state()
    if kind == "missing":
        del state["fc.bias"]
    elif kind == "unexpected":
        state["layer9.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    else:
        state["bn1.bias"] = np.zeros(5, np.float32)
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match=f"1 {kind}:") as err:
        weights.load_torch_weights(_tiny_model(), path)
    assert path in str(err.value)


def test_long_lists_are_truncated(tmp_path):
    state = _tiny_state()
    for i in range(9):
        state[f"extra.{i}.weight"] = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match=r"9 unexpected: \[extra\.0\.weight, .*\(\+4 more\)"):
        weights.load_torch_weights(_tiny_model(), _save(tmp_path, state))


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        weights.load_torch_weights(_tiny_model(), tmp_path / "nope.npz")
    pth = tmp_path / "w.pth"
    pth.write_bytes(b"x")
    with pytest.raises(ValueError, match="convert_torch_weights"):
        weights.load_torch_weights(_tiny_model(), pth)


def test_preprocessing_is_torchvision_normalisation():
    x = np.array([[[[0.0, 128.0, 255.0]]]], np.float32)
    got = np.asarray(weights.torch_preprocessing()(x))
    want = (x / 255.0 - np.array(weights.IMAGENET_MEAN)) / np.array(weights.IMAGENET_STD)
    np.testing.assert_allclose(got, want, atol=1e-5)
