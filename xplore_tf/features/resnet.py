"""torchvision ResNet-50 and bethgelab's BagNet-17 in Keras 3, layer-for-layer.

Layers are named after the PyTorch modules (`conv1`, `layer3.2.bn2`, `layer1.0.downsample.0`)
so `weights.load_torch_weights` maps the state dicts 1:1; BN epsilon is 1e-5 and the
ImageNet mean/std normalisation happens inside the model.

ResNet-50 (v1.5): stride on the bottleneck's 3x3 conv; torch's symmetric padding is made
explicit (ZeroPadding2D + 'valid'), because Keras' 'same' pads stride-2 convs bottom/right only.
Stylized-ImageNet checkpoints (texture-vs-shape) are the same architecture.

BagNet-17 ("Approximating CNNs with Bag-of-local-Features models", ICLR 2019): the ResNet-50
bottleneck stack with a 17x17 receptive field. Stem: conv1 1x1 -> conv2 3x3 'valid' -> bn1 ->
ReLU, no max-pool (the published checkpoints have a single stem BN, `bn1`, after conv2). Stage
strides [2,2,2,1]; only the first block of stages 1-3 has a 3x3 middle conv, all others 1x1;
every conv is unpadded. A 3x3 'valid' conv makes the residual branch output smaller than the
shortcut, and the reference crops the shortcut's bottom/right rows and columns
(`residual[:, :, :-d, :-d]`), so the features depend on that exact alignment.
"""

from __future__ import annotations

import os

import keras
from keras import layers

from xplore_tf.features import weights
from xplore_tf.features.base import FeatureExtractor

INPUT_SIZE = 224
FEATURE_DIM = 2048
NUM_CLASSES = 1000
_BLOCKS = (3, 4, 6, 3)
_WIDTHS = (64, 128, 256, 512)
_EXPANSION = 4
_RESNET_STRIDES = (1, 2, 2, 2)
_BAGNET_STRIDES = (2, 2, 2, 1)
_BAGNET17_KERNEL3 = (1, 1, 1, 0)  # per stage: how many leading blocks get a 3x3 middle conv


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=1e-5, name=name)


def _conv(filters: int, kernel: int, stride: int, name: str) -> layers.Conv2D:
    return layers.Conv2D(
        filters, kernel, strides=stride, padding="valid", use_bias=False, name=name
    )


def _bottleneck(x, width: int, stride: int, kernel: int, name: str, *, bagnet: bool):
    """[N,H,W,C] -> [N,H',W',4*width]; torch-style ('resnet') or unpadded ('bagnet') 3x3."""
    out_channels = width * _EXPANSION
    y = layers.ReLU(name=f"{name}.relu1")(
        _bn(f"{name}.bn1")(_conv(width, 1, 1, f"{name}.conv1")(x))
    )
    if kernel > 1 and not bagnet:
        y = layers.ZeroPadding2D(kernel // 2, name=f"{name}.pad2")(y)
    y = _conv(width, kernel, stride, f"{name}.conv2")(y)
    y = layers.ReLU(name=f"{name}.relu2")(_bn(f"{name}.bn2")(y))
    y = _bn(f"{name}.bn3")(_conv(out_channels, 1, 1, f"{name}.conv3")(y))

    shortcut = x
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = _conv(out_channels, 1, stride, f"{name}.downsample.0")(x)
        shortcut = _bn(f"{name}.downsample.1")(shortcut)
    dh = shortcut.shape[1] - y.shape[1]
    dw = shortcut.shape[2] - y.shape[2]
    if dh or dw:  # BagNet only: keep the top-left part of the larger shortcut
        shortcut = layers.Cropping2D(((0, dh), (0, dw)), name=f"{name}.crop")(shortcut)
    y = layers.Add(name=f"{name}.add")([y, shortcut])
    return layers.ReLU(name=f"{name}.relu3")(y)


def _stages(x, strides, kernel3, *, bagnet: bool):
    for stage, (blocks, width, stride, k3) in enumerate(
        zip(_BLOCKS, _WIDTHS, strides, kernel3, strict=True), start=1
    ):
        for b in range(blocks):
            kernel = 3 if b < k3 else 1
            x = _bottleneck(
                x, width, stride if b == 0 else 1, kernel, f"layer{stage}.{b}", bagnet=bagnet
            )
            if x.shape[1] is not None and x.shape[1] < 1:
                raise ValueError(f"input too small: layer{stage}.{b} output is {x.shape}")
    return x


def _head(x, include_top: bool, name: str) -> tuple[keras.KerasTensor, str]:
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    if include_top:
        return layers.Dense(NUM_CLASSES, name="fc")(x), f"{name}_classifier"
    return x, name


def _finish(inputs, x, name: str) -> keras.Model:
    model = keras.Model(inputs, x, name=name)
    model.trainable = False
    return model


def build_resnet50_model(input_size: int = INPUT_SIZE, *, include_top: bool = False) -> keras.Model:
    """Random-weight ResNet-50: [N,S,S,3] in [0,255] -> [N,2048] (or logits [N,1000])."""
    inputs = keras.Input((input_size, input_size, 3), name="images")
    x = weights.torch_preprocessing()(inputs)
    x = layers.ZeroPadding2D(3, name="pad1")(x)
    x = layers.ReLU(name="relu")(_bn("bn1")(_conv(64, 7, 2, "conv1")(x)))
    # torch pads the max-pool with -inf; after ReLU (x >= 0) zero padding gives the same max.
    x = layers.ZeroPadding2D(1, name="maxpool.pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="maxpool")(x)
    x = _stages(x, _RESNET_STRIDES, (3, 3, 3, 3), bagnet=False)
    x, name = _head(x, include_top, "resnet50")
    return _finish(inputs, x, name)


def build_bagnet17_model(input_size: int = INPUT_SIZE, *, include_top: bool = False) -> keras.Model:
    """Random-weight BagNet-17: [N,S,S,3] in [0,255] -> [N,2048] (or logits [N,1000])."""
    inputs = keras.Input((input_size, input_size, 3), name="images")
    x = weights.torch_preprocessing()(inputs)
    x = _conv(64, 1, 1, "conv1")(x)
    x = _conv(64, 3, 1, "conv2")(x)
    x = layers.ReLU(name="relu")(_bn("bn1")(x))
    x = _stages(x, _BAGNET_STRIDES, _BAGNET17_KERNEL3, bagnet=True)
    x, name = _head(x, include_top, "bagnet17")
    return _finish(inputs, x, name)


def _load(model: keras.Model, weights_path: str | os.PathLike | None) -> keras.Model:
    if weights_path is not None:
        weights.load_torch_weights(model, weights_path)
    return model


def build_resnet50(
    weights_path: str | None = None, input_size: int = INPUT_SIZE
) -> FeatureExtractor:
    """The `resnet50` extractor (torchvision ImageNet or Stylized-ImageNet checkpoint)."""
    model = _load(build_resnet50_model(input_size), weights_path)
    return FeatureExtractor("resnet50", model, input_size, FEATURE_DIM)


def build_bagnet17(
    weights_path: str | None = None, input_size: int = INPUT_SIZE
) -> FeatureExtractor:
    """The `bagnet17` extractor (bethgelab's published BagNet-17 checkpoint)."""
    model = _load(build_bagnet17_model(input_size), weights_path)
    return FeatureExtractor("bagnet17", model, input_size, FEATURE_DIM)


def build_resnet50_classifier(
    weights_path: str | None = None, input_size: int = INPUT_SIZE
) -> keras.Model:
    """ImageNet logits [N,1000] from a ResNet-50 checkpoint (sanity checks)."""
    return _load(build_resnet50_model(input_size, include_top=True), weights_path)


def build_bagnet17_classifier(
    weights_path: str | None = None, input_size: int = INPUT_SIZE
) -> keras.Model:
    """ImageNet logits [N,1000] from a BagNet-17 checkpoint (sanity checks)."""
    return _load(build_bagnet17_model(input_size, include_top=True), weights_path)


__all__ = [
    "FEATURE_DIM",
    "INPUT_SIZE",
    "build_bagnet17",
    "build_bagnet17_classifier",
    "build_bagnet17_model",
    "build_resnet50",
    "build_resnet50_classifier",
    "build_resnet50_model",
]
