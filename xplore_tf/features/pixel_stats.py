"""`pixels`: a weight-free extractor of the colour layout, for the synthetic face set.

The synthetic faces differ in large flat colour regions (background, hair, skin) and a few
small shapes (glasses, mouth). A 16x16 average-pooled RGB thumbnail keeps all of them at
64 px input, needs no pretrained weights, and makes the demo run anywhere. It is no prior
for real photos: use bagnet17 / resnet50 / mobilenet_v2 there.
"""

from __future__ import annotations

import keras

from xplore_tf.features.base import FeatureExtractor

INPUT_SIZE = 64
GRID = 16


def build(weights_path: str | None = None) -> FeatureExtractor:
    if weights_path:
        raise ValueError("--feature_weights: the 'pixels' extractor has no weights; leave it empty")
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.AveragePooling2D(INPUT_SIZE // GRID)(x)
    outputs = keras.layers.Flatten()(x)
    model = keras.Model(inputs, outputs, name="pixels")
    model.trainable = False
    return FeatureExtractor("pixels", model, INPUT_SIZE, GRID * GRID * 3)
