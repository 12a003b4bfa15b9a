"""What the extractor returns: multi-layer pooling and mirror averaging.

Multi-layer features: a mid-level block pooled beside the last conv layer.

The paper clusters the globally pooled *last* conv features (§2.1). Its CelebA extractor,
BagNet-17, is chosen for local texture cues (Brendel & Bethge, ICLR 2019); with a global
network such cues live in the middle blocks, whose small receptive fields see hair texture
and glasses' rims before the last layers pool them into object-level evidence. Here each
named block's output is globally average-pooled, L2-normalised on its own (so a block of 96
channels weighs as much as one of 1280) and the results are concatenated.

Block names are the extractor's torchvision module paths: `features.13` (MobileNetV2's last
block at 14x14), `layer3` (a ResNet stage); an exact Keras layer name is accepted too.

Mirror averaging (`with_mirror_average`): the features of an image and of its left-right
mirror image, averaged. Face attributes (hair colour, glasses, a smile) look the same in a
mirror, while head turn, light direction and hair parting flip; averaging removes their
antisymmetric part from the features (test-time flip augmentation, common in face
recognition). It doubles the extractor's work: pair it with a smaller `--feature_input_size`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from xplore_tf.features.base import FeatureExtractor

LAST = "last"  # the extractor's own output: its last conv layer, globally average-pooled


def block_output(model: keras.Model, block: str):
    """The output tensor [N, h, w, C] of `block` in `model`.

    `block` is an exact layer name, or a module path such as `features.13` / `layer3`,
    which means the last layer (in the model's order) named `<block>.*`.

    Raises:
        ValueError: no such layer, naming the model's top-level blocks.
    """
    names = [layer.name for layer in model.layers]
    if block in names:
        return model.get_layer(block).output
    inside = [n for n in names if n.startswith(block + ".")]
    if not inside:
        tops = sorted({".".join(n.split(".")[:2]) for n in names if "." in n})
        raise ValueError(
            f"--feature_blocks: {model.name} has no block {block!r}; blocks are e.g. "
            f"{', '.join(tops[:6])}, ... (or '{LAST}')"
        )
    return model.get_layer(inside[-1]).output


def with_blocks(extractor: FeatureExtractor, blocks: Sequence[str]) -> FeatureExtractor:
    """`extractor` with outputs [N, sum_b C_b]: each block globally pooled, L2-normalised, joined.

    `blocks` in order; `last` stands for the extractor's usual output (its pooled last conv
    layer). An empty list, or just `last`, returns `extractor` unchanged (the paper's
    features, not normalised here: the clustering stage normalises).

    Raises:
        ValueError: an unknown block, a block given twice, or a block whose output is not a
            4-D feature map.
    """
    blocks = list(blocks)
    if not blocks or blocks == [LAST]:
        return extractor
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"--feature_blocks: a block is listed twice in {blocks}")
    model = extractor.model
    outputs = []
    for block in blocks:
        if block == LAST:
            pooled = model.output
        else:
            fmap = block_output(model, block)
            if len(fmap.shape) != 4:
                raise ValueError(
                    f"--feature_blocks: {block!r} of {model.name} gives shape {fmap.shape}, "
                    "not a feature map [N, h, w, C]"
                )
            pooled = keras.layers.GlobalAveragePooling2D(name=f"blocks_pool.{block}")(fmap)
        outputs.append(keras.layers.UnitNormalization(axis=-1, name=f"blocks_l2.{block}")(pooled))
    joined = keras.layers.Concatenate(axis=-1, name="blocks")(outputs)
    multi = keras.Model(model.input, joined, name=f"{model.name}_blocks")
    multi.trainable = False
    return FeatureExtractor(extractor.name, multi, extractor.input_size, int(joined.shape[-1]))


@keras.saving.register_keras_serializable(package="xplore_tf")
class MirrorAverage(keras.layers.Layer):
    """Runs `model` on [N, S, S, 3] images and their left-right mirrors -> the mean [N, D].

    Raises:
        ValueError: an input that is not [N, S, S, C].
    """

    def __init__(self, model: keras.Model, **kw):
        super().__init__(**kw)
        self.model = model

    def call(self, images):
        if len(images.shape) != 4:
            raise ValueError(f"MirrorAverage expects images [N, S, S, C], got {images.shape}")
        both = keras.ops.concatenate([images, keras.ops.flip(images, axis=2)], axis=0)
        feats = self.model(both, training=False)
        n = keras.ops.shape(images)[0]
        return (feats[:n] + feats[n:]) / 2.0

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.model.output_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


def with_mirror_average(extractor: FeatureExtractor) -> FeatureExtractor:
    """`extractor` whose features [N, D] are the mean over each image and its mirror image."""
    size = extractor.input_size
    inputs = keras.Input((size, size, 3), name="images")
    outputs = MirrorAverage(extractor.model, name="mirror_average")(inputs)
    model = keras.Model(inputs, outputs, name=f"{extractor.model.name}_mirror")
    model.trainable = False
    return FeatureExtractor(extractor.name, model, size, extractor.feature_dim)


__all__ = ["LAST", "MirrorAverage", "block_output", "with_blocks", "with_mirror_average"]
