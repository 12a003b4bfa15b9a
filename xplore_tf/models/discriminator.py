"""XploreGAN discriminator D: PatchGAN critic + cluster classifier (DESIGN.md §3, paper §2.4).

StarGAN's discriminator: `num_down` conv4x4 stride-2 layers with LeakyReLU(0.01) and no
normalisation (WGAN-GP forbids batch statistics in the critic), then two heads on the
final [N, S/2^num_down, S/2^num_down, C] map:

- `out_src`: conv3x3 stride 1 -> a 1-channel patch map of critic scores [N, h, w, 1];
- `out_cls`: conv with kernel = the remaining spatial size (valid) -> cluster logits [N, k].
"""

from __future__ import annotations

import keras
from keras import ops

from xplore_tf.models.layers import build_once

_PACKAGE = "xplore_tf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Discriminator(keras.Model):
    """D(x): images [N,S,S,3] -> (src [N,S/2^n,S/2^n,1], cls logits [N,k]), both float32.

    Args:
        image_size: S; must be divisible by 2^num_down.
        num_clusters: k, the number of pseudo-label clusters.
        base_channels: width of the first conv; doubles per layer (StarGAN default 64).
        num_down: stride-2 convs (StarGAN default 6 at 128 px -> a 2x2 patch map).
        max_channels: cap on the width (StarGAN at 128 px reaches 2048 uncapped).
    """

    def __init__(
        self,
        image_size: int,
        num_clusters: int,
        *,
        base_channels: int = 64,
        num_down: int = 6,
        max_channels: int = 2048,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_down < 1:
            raise ValueError(f"`num_down` must be >= 1, got {num_down}.")
        if image_size <= 0 or image_size % (2**num_down):
            raise ValueError(
                f"`image_size` ({image_size}) must be a positive multiple of "
                f"2**num_down = {2**num_down}."
            )
        if num_clusters < 1:
            raise ValueError(f"`num_clusters` must be >= 1, got {num_clusters}.")
        self.image_size = int(image_size)
        self.num_clusters = int(num_clusters)
        self.base_channels = int(base_channels)
        self.num_down = int(num_down)
        self.max_channels = int(max_channels)
        self.convs = [
            keras.layers.Conv2D(
                min(self.base_channels * 2**i, self.max_channels),
                4,
                strides=2,
                padding="same",
                name=f"down{i}",
            )
            for i in range(self.num_down)
        ]
        self.out_src = keras.layers.Conv2D(1, 3, padding="same", use_bias=False, name="out_src")
        self.out_cls = keras.layers.Conv2D(
            self.num_clusters, self.final_size, padding="valid", use_bias=False, name="out_cls"
        )

    @property
    def final_size(self) -> int:
        """Side of the patch map: S / 2^num_down."""
        return self.image_size // 2**self.num_down

    def _check_images(self, shape) -> tuple:
        shape = tuple(None if d is None else int(d) for d in shape)
        expected = (self.image_size, self.image_size, 3)
        if len(shape) != 4 or any(
            a is not None and a != b for a, b in zip(shape[1:], expected, strict=True)
        ):
            raise ValueError(
                f"{self.name}: images must be [N, {self.image_size}, {self.image_size}, 3], "
                f"got {shape}."
            )
        return shape

    def build(self, input_shape):
        shape = self._check_images(input_shape)
        for conv in self.convs:
            build_once(conv, shape)
            shape = tuple(conv.compute_output_shape(shape))
        build_once(self.out_src, shape)
        build_once(self.out_cls, shape)
        self.built = True

    def call(self, inputs):
        self._check_images(inputs.shape)
        x = inputs
        for conv in self.convs:
            x = conv(x)
            # LeakyReLU(0.01) as max(x, 0.01 x): the same values and first derivative, but
            # its gradient is a select on a comparison, which has no derivative, so the
            # gradient penalty's double backprop stops there. TensorFlow's LeakyReluGrad
            # instead returns an all-zero derivative that is then pushed back through
            # every forward conv (a fifth of the paper128 D step's time, tools/bench_train).
            x = ops.maximum(x, 0.01 * x)
        src = ops.cast(self.out_src(x), "float32")
        cls = ops.cast(self.out_cls(x), "float32")
        return src, ops.reshape(cls, (-1, self.num_clusters))

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        return (n, self.final_size, self.final_size, 1), (n, self.num_clusters)

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "num_clusters": self.num_clusters,
            "base_channels": self.base_channels,
            "num_down": self.num_down,
            "max_channels": self.max_channels,
        }
