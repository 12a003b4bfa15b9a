"""The feature-extractor interface of the clustering stage (DESIGN.md §2).

An extractor is a frozen Keras model that takes RGB images as float32 in [0, 255],
shape [N, S, S, 3] with S = `input_size`, does its own preprocessing (ImageNet mean/std
or whatever it needs) and returns globally pooled last-conv features [N, feature_dim].
The data pipeline only resizes to `input_size`; everything else belongs to the extractor.
"""

from __future__ import annotations

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """A named, frozen network plus the input size it expects."""

    name: str
    model: keras.Model  # [N, S, S, 3] float32 in [0, 255] -> [N, feature_dim] float32
    input_size: int  # S, the square side the pipeline resizes to
    feature_dim: int

    def __call__(self, images):
        return self.model(images, training=False)
