"""`resnet50_keras`: keras.applications.ResNet50 as an extractor (Caffe-converted weights).

An alternative to the torchvision port in `resnet.py` for users who already have Keras'
weights. `weights_path=None` means weights="imagenet", which Keras downloads on first use
(into ~/.keras/models) and therefore needs network access; offline, pass the local path of
`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` instead.
"""

from __future__ import annotations

import os

import keras

from xplore_tf.features.base import FeatureExtractor

INPUT_SIZE = 224
FEATURE_DIM = 2048
# keras.applications.resnet50.preprocess_input ("caffe" mode): BGR, minus the BGR pixel means.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="xplore_tf")
class CaffePreprocess(keras.layers.Layer):
    """[N,S,S,3] RGB in [0,255] -> BGR minus the ImageNet BGR means (no scaling)."""

    def call(self, images):
        bgr = keras.ops.flip(images, axis=-1)
        return bgr - keras.ops.convert_to_tensor(_CAFFE_BGR_MEAN, dtype=images.dtype)


def build_model(weights: str | None, input_size: int = INPUT_SIZE) -> keras.Model:
    """[N,S,S,3] in [0,255] -> [N,2048]; `weights` as keras.applications takes it (None = random)."""
    backbone = keras.applications.ResNet50(
        include_top=False,
        weights=weights,
        input_shape=(input_size, input_size, 3),
        pooling="avg",
    )
    inputs = keras.Input((input_size, input_size, 3), name="images")
    x = CaffePreprocess(name="preprocess")(inputs)
    model = keras.Model(inputs, backbone(x, training=False), name="resnet50_keras")
    model.trainable = False
    return model


def build_resnet50_keras(weights_path: str | None = None) -> FeatureExtractor:
    """The `resnet50_keras` extractor: `weights_path` is a local .h5, None = "imagenet" (network)."""
    if weights_path is not None and not os.path.isfile(weights_path):
        raise FileNotFoundError(f"resnet50_keras: weights file {weights_path} does not exist")
    if weights_path is not None:
        model = build_model(weights_path)
    else:
        try:
            model = build_model("imagenet")
        except Exception as e:  # keras.utils.get_file re-raises URL errors as plain Exception
            raise RuntimeError(
                "resnet50_keras: downloading the 'imagenet' weights failed (no network?); "
                "pass the local path of resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
            ) from e
    return FeatureExtractor("resnet50_keras", model, INPUT_SIZE, FEATURE_DIM)


__all__ = ["CaffePreprocess", "build_model", "build_resnet50_keras"]
