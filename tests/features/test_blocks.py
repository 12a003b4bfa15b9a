"""Multi-layer features (features/blocks.py) on a tiny hand-made network."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from xplore_tf.features import blocks
from xplore_tf.features.base import FeatureExtractor


def _tiny_extractor() -> FeatureExtractor:
    """[N,4,4,3] -> features.0 (1x1 conv = identity, 3 ch) -> features.1 (x2, 2 ch) -> pooled."""
    inputs = keras.Input((4, 4, 3))
    a = keras.layers.Conv2D(3, 1, use_bias=False, name="features.0.conv")(inputs)
    b = keras.layers.Conv2D(2, 1, use_bias=False, name="features.1.conv")(a)
    b = keras.layers.ReLU(name="features.1.relu")(b)
    out = keras.layers.GlobalAveragePooling2D(name="avgpool")(b)
    model = keras.Model(inputs, out, name="tiny")
    model.get_layer("features.0.conv").set_weights([np.eye(3).reshape(1, 1, 3, 3)])
    model.get_layer("features.1.conv").set_weights(
        [np.array([[2, 0], [0, 0], [0, 2]], float)[None, None]]
    )
    return FeatureExtractor("tiny", model, 4, 2)


def test_blocks_are_pooled_normalised_and_joined_by_hand():
    ext = _tiny_extractor()
    x = np.zeros((1, 4, 4, 3), np.float32)
    x[0, :2, :, 0] = 4.0  # channel 0: mean 2; channel 2: mean 1 (all ones)
    x[0, :, :, 2] = 1.0
    multi = blocks.with_blocks(ext, ["features.0", "last"])
    assert multi.feature_dim == 5 and multi.input_size == 4 and multi.name == "tiny"
    y = np.asarray(multi(x))[0]
    # features.0 pooled = (2, 0, 1) -> / sqrt(5); last = relu(2*2, 2*1) = (4, 2) -> / sqrt(20)
    np.testing.assert_allclose(y, [2 / 5**0.5, 0, 1 / 5**0.5, 4 / 20**0.5, 2 / 20**0.5], rtol=1e-5)
    # An exact layer name works too; the order of the list is the order of the features.
    y2 = np.asarray(blocks.with_blocks(ext, ["last", "features.0.conv"])(x))[0]
    np.testing.assert_allclose(y2, np.concatenate([y[3:], y[:3]]), rtol=1e-5)


def test_no_blocks_is_the_extractor_itself_and_errors_are_clear():
    ext = _tiny_extractor()
    assert blocks.with_blocks(ext, []) is ext and blocks.with_blocks(ext, ["last"]) is ext
    with pytest.raises(ValueError, match="tiny has no block 'features.7'; blocks are e.g. "):
        blocks.with_blocks(ext, ["features.7", "last"])
    with pytest.raises(ValueError, match="listed twice"):
        blocks.with_blocks(ext, ["last", "last"])
    with pytest.raises(ValueError, match="not a feature map"):
        blocks.with_blocks(ext, ["avgpool"])


def test_mobilenet_v2_block_names_resolve():
    from xplore_tf.features import mobilenet_v2

    model = mobilenet_v2.build_model(32)
    # features.13 ends with its residual add; features.14 (stride 2) with its projection BN.
    assert blocks.block_output(model, "features.13") is model.get_layer("features.13.add").output
    assert blocks.block_output(model, "features.14") is model.get_layer("features.14.conv.3").output
    assert tuple(blocks.block_output(model, "features.13").shape[1:]) == (2, 2, 96)


def test_mirror_average_by_hand():
    ext = _tiny_extractor()
    x = np.zeros((2, 4, 4, 3), np.float32)
    x[0, :, 0, 0] = 8.0  # left column only: its mirror has it in the right column
    x[1, :, :, 2] = 1.0  # symmetric: mirror average = plain features
    mirrored = blocks.with_mirror_average(blocks.with_blocks(ext, ["features.0"]))
    y = np.asarray(mirrored(x))
    np.testing.assert_allclose(y[0], [1, 0, 0], rtol=1e-6)  # pooled (2,0,0) both ways -> unit
    np.testing.assert_allclose(y[1], [0, 0, 1], rtol=1e-6)
    # A position-dependent model (it keeps only the left column) sees the mirror image too.
    inputs = keras.Input((4, 4, 3))
    left = keras.layers.Flatten()(keras.layers.Cropping2D(((0, 0), (0, 3)))(inputs))
    probe = FeatureExtractor("probe", keras.Model(inputs, left), 4, 12)
    z = np.asarray(blocks.with_mirror_average(probe)(x))
    np.testing.assert_allclose(z[0].reshape(4, 3)[:, 0], [4, 4, 4, 4])  # (8 + 0) / 2
    # get_config carries the architecture (weights travel separately, as for any Keras layer).
    original = mirrored.model.get_layer("mirror_average")
    layer = blocks.MirrorAverage.from_config(original.get_config())
    layer.build((None, 4, 4, 3))
    layer.model.set_weights(original.model.get_weights())
    np.testing.assert_allclose(np.asarray(layer(x)), y, rtol=1e-6)
