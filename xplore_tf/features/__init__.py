"""Pretrained feature extractors for attribute discovery, selected by name.

`build_extractor(name, weights_path=...)` is the one entry point the clustering stage uses.
Each builder takes `weights_path` (a `.npz` keyed by PyTorch state-dict names, see
`features/weights.py`) and returns a `FeatureExtractor`.
"""

from __future__ import annotations

from collections.abc import Callable

from xplore_tf.features.base import FeatureExtractor


def _fixed_size(name: str, default: int, input_size: int | None) -> None:
    if input_size not in (None, 0, default):
        raise ValueError(
            f"--feature_input_size={input_size}: the {name!r} extractor takes {default} px only"
        )


def _pixels(weights_path: str | None, input_size: int | None = None) -> FeatureExtractor:
    from xplore_tf.features import pixel_stats

    _fixed_size("pixels", pixel_stats.INPUT_SIZE, input_size)
    return pixel_stats.build(weights_path)


def _mobilenet_v2(weights_path: str | None, input_size: int | None = None) -> FeatureExtractor:
    from xplore_tf.features import mobilenet_v2

    return mobilenet_v2.build(weights_path, input_size or mobilenet_v2.INPUT_SIZE)


def _resnet50(weights_path: str | None, input_size: int | None = None) -> FeatureExtractor:
    from xplore_tf.features import resnet

    return resnet.build_resnet50(weights_path, input_size or resnet.INPUT_SIZE)


def _bagnet17(weights_path: str | None, input_size: int | None = None) -> FeatureExtractor:
    from xplore_tf.features import resnet

    return resnet.build_bagnet17(weights_path, input_size or resnet.INPUT_SIZE)


def _resnet50_keras(weights_path: str | None, input_size: int | None = None) -> FeatureExtractor:
    from xplore_tf.features import keras_apps

    _fixed_size("resnet50_keras", keras_apps.INPUT_SIZE, input_size)
    return keras_apps.build_resnet50_keras(weights_path)


# name -> builder(weights_path, input_size) ; names are the values of --feature_extractor.
EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {
    "pixels": _pixels,
    "mobilenet_v2": _mobilenet_v2,
    "resnet50": _resnet50,
    "bagnet17": _bagnet17,
    "resnet50_keras": _resnet50_keras,
}

# Extractors whose input side can be chosen (fully convolutional, globally pooled).
RESIZABLE = frozenset({"mobilenet_v2", "resnet50", "bagnet17"})

# Extractors that are meaningless without a weights file (a random ResNet is no prior).
NEEDS_WEIGHTS = frozenset({"mobilenet_v2", "resnet50", "bagnet17"})


def input_size(name: str, requested: int = 0) -> int:
    """The input side in px of extractor `name` (`requested` when > 0), without building it.

    Raises:
        ValueError: an unknown name, or a `requested` size a fixed-size extractor cannot take.
    """
    if name not in EXTRACTORS:
        raise ValueError(
            f"--feature_extractor: unknown extractor {name!r}; expected one of {sorted(EXTRACTORS)}"
        )
    if requested and name in RESIZABLE:
        return int(requested)
    if name == "pixels":
        from xplore_tf.features import pixel_stats

        _fixed_size(name, pixel_stats.INPUT_SIZE, requested)
        return pixel_stats.INPUT_SIZE
    if name == "mobilenet_v2":
        from xplore_tf.features import mobilenet_v2

        return mobilenet_v2.INPUT_SIZE
    if name == "resnet50_keras":
        from xplore_tf.features import keras_apps

        _fixed_size(name, keras_apps.INPUT_SIZE, requested)
        return keras_apps.INPUT_SIZE
    from xplore_tf.features import resnet

    return resnet.INPUT_SIZE


def build_extractor(
    name: str, weights_path: str | None = None, *, input_size: int = 0
) -> FeatureExtractor:
    """Builds the extractor `name`, loading `weights_path` when given.

    `input_size` > 0 feeds the network at that side instead of its own (224 for the ImageNet
    ports): the extractors in RESIZABLE are fully convolutional and globally pooled. On
    celeba10k, MobileNetV2 at 160 px clustered as well as at 224 px in half the time
    (docs/experiments/2026-12-04-discovery.md). Raises ValueError for an unknown name or an unsupported size.
    """
    if name not in EXTRACTORS:
        raise ValueError(
            f"--feature_extractor: unknown extractor {name!r}; expected one of {sorted(EXTRACTORS)}"
        )
    return EXTRACTORS[name](weights_path, input_size or None)


__all__ = [
    "EXTRACTORS",
    "NEEDS_WEIGHTS",
    "RESIZABLE",
    "FeatureExtractor",
    "build_extractor",
    "input_size",
]
