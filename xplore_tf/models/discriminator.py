"""XploreGAN discriminator D: PatchGAN critic + cluster classifier (DESIGN.md §3, paper §2.4).

StarGAN's discriminator: `num_down` conv4x4 stride-2 layers with LeakyReLU(0.01) and no
normalisation (WGAN-GP forbids batch statistics in the critic), then two heads on the
final [N, S/2^num_down, S/2^num_down, C] map:

- `out_src`: conv3x3 stride 1 -> a 1-channel patch map of critic scores [N, h, w, 1];
- `out_cls`: conv with kernel = the remaining spatial size (valid) -> cluster logits [N, k].

The convolutions whose output map is small next to their width (D's deep tail, the class
head) run as one matrix product (`PatchMatmulConv2D`): same variables, same result up to
float rounding, several times faster on CPUs.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from xplore_tf.models.layers import build_once

_PACKAGE = "xplore_tf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PatchMatmulConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` computed as a matrix product when the output map is small.

    When the output map has at most `filters / 4` positions (h_out * w_out), the layer
    gathers each output position's receptive field (im2col: a patch matrix
    [N * h_out * w_out, k * k * C_in], one `take` from the flattened padded map) and
    multiplies it with the kernel reshaped to [k * k * C_in, filters]. That is the
    convolution's own arithmetic, summed in another order, so the result equals `Conv2D`'s
    up to float rounding (tested). Otherwise it is plain `Conv2D`. Variables, their names and
    the config are `Conv2D`'s, so checkpoints of either load into the other.

    Why: such layers (a few positions, many weights: StarGAN's 1024 -> 2048 conv on a 4x4
    map at 128 px) are weight-bound, and oneDNN's and Eigen's convolution kernels handle them
    badly. `python -m tools.bench_d_layers` times forward + WGAN-GP's double backward of
    each layer of the paper's D at 128 px both ways: the matrix product wins on every layer
    the filters/4 rule picks (bfloat16 1.7x at 16x16x256 -> 512 up to 11x at 4x4x1024 ->
    2048; float32 and oneDNN capped at AVX2 1.0-5.3x) and loses on the larger maps before
    them (0.5-0.9x). Channels-last and undilated only (ValueError at build time otherwise).
    """

    def build(self, input_shape):
        super().build(input_shape)
        if self.data_format != "channels_last" or tuple(self.dilation_rate) != (1, 1):
            raise ValueError(f"{self.name}: only channels_last and dilation 1 are supported.")
        _, h_out, w_out, _ = self.compute_output_shape(input_shape)
        self.as_matmul = h_out * w_out * 4 <= self.filters

    def convolution_op(self, inputs, kernel):
        if not self.as_matmul:
            return super().convolution_op(inputs, kernel)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        _, h, w, c = inputs.shape
        _, h_out, w_out, _ = self.compute_output_shape(inputs.shape)
        if self.padding == "same":  # TensorFlow's rule: the extra row/column goes after
            ph = max((h_out - 1) * sh + kh - h, 0)
            pw = max((w_out - 1) * sw + kw - w, 0)
            inputs = ops.pad(
                inputs, [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]]
            )
        _, hp, wp, _ = inputs.shape
        # One gather of each output position's receptive field from the flattened padded map:
        # its gradient is one scatter-add, where per-position slices cost one full-size
        # StridedSliceGrad each plus their sum (1.5x slower at 8x8x512 -> 1024 in bfloat16).
        index = [
            (i * sh + a) * wp + j * sw + b
            for i in range(h_out)
            for j in range(w_out)
            for a in range(kh)
            for b in range(kw)
        ]  # row-major positions, then the kernel's own HW order
        patches = ops.take(
            ops.reshape(inputs, (-1, hp * wp, c)), np.array(index, np.int32), axis=1
        )  # [N, h_out * w_out * kh * kw, C]
        outputs = ops.matmul(
            ops.reshape(patches, (-1, kh * kw * c)), ops.reshape(kernel, (kh * kw * c, -1))
        )
        return ops.reshape(outputs, (-1, h_out, w_out, self.filters))


def leaky_relu(x, negative_slope: float = 0.01):
    """LeakyReLU (StarGAN's 0.01 slope) as x * slope(x), the slope (1 or 0.01) held constant.

    The same values and first derivative as `tf.nn.leaky_relu`, and the true second
    derivative (0) without computing it: the gradient is one multiplication by the saved
    slope, and the gradient penalty's double backprop through it another. TensorFlow's
    LeakyReluGrad instead has an all-zero derivative that is pushed back through every
    forward conv (a fifth of the paper128 D step's time); max(x, 0.01 x), used before,
    stops there too but costs a comparison, two selects, a product and a sum per backward.
    """
    one = ops.cast(1.0, x.dtype)
    slope = ops.stop_gradient(ops.where(x > 0, one, ops.cast(negative_slope, x.dtype)))
    return x * slope


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
            PatchMatmulConv2D(
                min(self.base_channels * 2**i, self.max_channels),
                4,
                strides=2,
                padding="same",
                name=f"down{i}",
            )
            for i in range(self.num_down)
        ]
        self.out_src = PatchMatmulConv2D(1, 3, padding="same", use_bias=False, name="out_src")
        self.out_cls = PatchMatmulConv2D(
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
            x = leaky_relu(x)
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
