"""torchvision's MobileNetV2 (width 1.0) in Keras 3, layer-for-layer.

Layers are named after torchvision's modules (`features.3.conv.1.0`) so that
`weights.load_torch_weights` maps the state dict 1:1. Differences from
`keras.applications.MobileNetV2` that matter for torchvision weights: stride-2 3x3 convs are
padded symmetrically by 1 (explicit ZeroPadding2D(1) + 'valid'), BN epsilon is 1e-5, and the
input is normalised with ImageNet mean/std inside the model.
"""

from __future__ import annotations

import os

import keras
from keras import layers

from xplore_tf.features import weights
from xplore_tf.features.base import FeatureExtractor

INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_CLASSES = 1000
_STEM_CHANNELS = 32
# torchvision's inverted_residual_setting: (expand ratio t, out channels c, repeats n, stride s).
_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn_act(
    x, filters: int, kernel: int, stride: int, name: str, *, depthwise: bool = False
) -> keras.KerasTensor:
    """torchvision's Conv2dNormActivation: `<name>.0` conv, `<name>.1` BN, ReLU6."""
    padding = "same"  # stride 1 with an odd kernel: symmetric, as in torch
    if stride > 1 and kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}.pad")(x)
        padding = "valid"
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel, strides=stride, padding=padding, use_bias=False, name=f"{name}.0"
        )(x)
    else:
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, use_bias=False, name=f"{name}.0"
        )(x)
    x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}.1")(x)
    return layers.ReLU(max_value=6.0, name=f"{name}.relu6")(x)


def _inverted_residual(x, inp: int, oup: int, stride: int, expand: int, name: str):
    """[N,H,W,inp] -> [N,H/stride,W/stride,oup]; residual when shape is kept."""
    hidden = int(round(inp * expand))
    y = x
    i = 0
    if expand != 1:
        y = _conv_bn_act(y, hidden, 1, 1, f"{name}.conv.{i}")
        i += 1
    y = _conv_bn_act(y, hidden, 3, stride, f"{name}.conv.{i}", depthwise=True)
    y = layers.Conv2D(oup, 1, use_bias=False, name=f"{name}.conv.{i + 1}")(y)
    y = layers.BatchNormalization(epsilon=1e-5, name=f"{name}.conv.{i + 2}")(y)
    if stride == 1 and inp == oup:
        y = layers.Add(name=f"{name}.add")([x, y])
    return y


def build_model(input_size: int = INPUT_SIZE, *, include_top: bool = False) -> keras.Model:
    """Random-weight port: [N,S,S,3] in [0,255] -> pooled features [N,1280] or logits [N,1000]."""
    inputs = keras.Input((input_size, input_size, 3), name="images")
    x = weights.torch_preprocessing()(inputs)
    x = _conv_bn_act(x, _STEM_CHANNELS, 3, 2, "features.0")
    channels, index = _STEM_CHANNELS, 1
    for expand, out, repeats, stride in _SETTINGS:
        for r in range(repeats):
            x = _inverted_residual(
                x, channels, out, stride if r == 0 else 1, expand, f"features.{index}"
            )
            channels, index = out, index + 1
    x = _conv_bn_act(x, FEATURE_DIM, 1, 1, f"features.{index}")  # features.18
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    name = "mobilenet_v2"
    if include_top:
        # classifier.0 is Dropout(0.2): identity at inference.
        x = layers.Dense(NUM_CLASSES, name="classifier.1")(x)
        name = "mobilenet_v2_classifier"
    model = keras.Model(inputs, x, name=name)
    model.trainable = False
    return model


def _load(model: keras.Model, weights_path: str | os.PathLike | None) -> keras.Model:
    if weights_path is not None:
        weights.load_torch_weights(model, weights_path)
    return model


def build(weights_path: str | None = None, input_size: int = INPUT_SIZE) -> FeatureExtractor:
    """The `mobilenet_v2` extractor; random weights when `weights_path` is None."""
    model = _load(build_model(input_size), weights_path)
    return FeatureExtractor("mobilenet_v2", model, input_size, FEATURE_DIM)


def build_classifier(weights_path: str | None = None, input_size: int = INPUT_SIZE) -> keras.Model:
    """ImageNet logits [N,1000] (for sanity checks of a checkpoint on real photos)."""
    return _load(build_model(input_size, include_top=True), weights_path)


__all__ = ["FEATURE_DIM", "INPUT_SIZE", "build", "build_classifier", "build_model"]
