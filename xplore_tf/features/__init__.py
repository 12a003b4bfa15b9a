"""Pretrained feature extractors for attribute discovery, selected by name.

`build_extractor(name, weights_path=...)` is the one entry point the clustering stage uses.
Each builder takes `weights_path` (a `.npz` keyed by PyTorch state-dict names, see
`features/weights.py`) and returns a `FeatureExtractor`.
"""

from __future__ import annotations

from collections.abc import Callable

from xplore_tf.features.base import FeatureExtractor


def _pixels(weights_path: str | None) -> FeatureExtractor:
    from xplore_tf.features import pixel_stats

    return pixel_stats.build(weights_path)


def _mobilenet_v2(weights_path: str | None) -> FeatureExtractor:
    from xplore_tf.features import mobilenet_v2

    return mobilenet_v2.build(weights_path)


def _resnet50(weights_path: str | None) -> FeatureExtractor:
    from xplore_tf.features import resnet

    return resnet.build_resnet50(weights_path)


def _bagnet17(weights_path: str | None) -> FeatureExtractor:
    from xplore_tf.features import resnet

    return resnet.build_bagnet17(weights_path)


def _resnet50_keras(weights_path: str | None) -> FeatureExtractor:
    from xplore_tf.features import keras_apps

    return keras_apps.build_resnet50_keras(weights_path)


# name -> builder(weights_path) ; names are the values of --feature_extractor.
EXTRACTORS: dict[str, Callable[[str | None], FeatureExtractor]] = {
    "pixels": _pixels,
    "mobilenet_v2": _mobilenet_v2,
    "resnet50": _resnet50,
    "bagnet17": _bagnet17,
    "resnet50_keras": _resnet50_keras,
}

# Extractors that are meaningless without a weights file (a random ResNet is no prior).
NEEDS_WEIGHTS = frozenset({"mobilenet_v2", "resnet50", "bagnet17"})


def input_size(name: str) -> int:
    """The input side in px of extractor `name`, without building it.

    Raises:
        ValueError: an unknown name.
    """
    if name not in EXTRACTORS:
        raise ValueError(
            f"--feature_extractor: unknown extractor {name!r}; expected one of {sorted(EXTRACTORS)}"
        )
    if name == "pixels":
        from xplore_tf.features import pixel_stats

        return pixel_stats.INPUT_SIZE
    if name == "mobilenet_v2":
        from xplore_tf.features import mobilenet_v2

        return mobilenet_v2.INPUT_SIZE
    if name == "resnet50_keras":
        from xplore_tf.features import keras_apps

        return keras_apps.INPUT_SIZE
    from xplore_tf.features import resnet

    return resnet.INPUT_SIZE


def build_extractor(name: str, weights_path: str | None = None) -> FeatureExtractor:
    """Builds the extractor `name`, loading `weights_path` when given."""
    if name not in EXTRACTORS:
        raise ValueError(
            f"--feature_extractor: unknown extractor {name!r}; expected one of {sorted(EXTRACTORS)}"
        )
    return EXTRACTORS[name](weights_path)


__all__ = ["EXTRACTORS", "NEEDS_WEIGHTS", "FeatureExtractor", "build_extractor", "input_size"]
