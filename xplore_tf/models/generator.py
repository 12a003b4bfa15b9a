"""XploreGAN generator G(x, s): encoder h, ASIN MLP f and decoder (DESIGN.md §3, paper §2.2, §2.4).

G translates images [N,S,S,3] in [-1, 1] towards the attribute cluster described by a
conditioning vector s (built from the cluster statistics by `condition_vector`):

    h(x) = Encoder(x)                      [N, S/4, S/4, 4*base]
    (gamma_l, beta_l)_l = split(f(s))      one pair [N, 4*base] per ASIN layer
    G(x, s) = Decoder(h(x), f(s))          [N, S, S, 3] in [-1, 1]

`Generator.forward` returns G(x, s) with h(x) (for the latent loss) and, for the masked
output, the attention mask; `Generator.encode` exposes h alone. Options of `Generator` add
published identity-preserving techniques for an ablation (all off by default): a masked
output (GANimation), encoder-decoder skips (AttGAN / STGAN) and a high-frequency bypass
(HifaFace).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import keras
from keras import ops

from xplore_tf.models.layers import (
    DECODER_NORMS,
    AsinResidualBlock,
    ConcatSkip,
    GatedSkip,
    InstanceNormalization,
    ResidualBlock,
    Upsample,
    build_once,
    high_frequency,
    masked_blend,
)

_PACKAGE = "xplore_tf"
CONDITION_MODES = ("mean_std", "mean", "onehot")
UPSAMPLE_MODES = ("transpose", "resize_conv")
OUTPUT_MODES = ("direct", "masked", "residual")
# |x| bound before artanh in the residual output (artanh(0.995) = 2.99): keeps it finite
RESIDUAL_CLIP = 0.995
SKIP_MODES = ("none", "plain", "gated")
ENCODER_NORMS = ("instance", "none")
HF_KERNEL_SIZE = 5  # binomial blur of the high-frequency bypass (~ Gaussian, sigma = 1 px)


def _as_shape(shape) -> tuple:
    return tuple(None if d is None else int(d) for d in shape)


def condition_dim(mode: str, *, stats_dim: int, num_clusters: int | None) -> int:
    """Width of the conditioning vector for `mode`: 2*d (mean_std), d (mean) or k (onehot)."""
    if mode == "mean_std":
        return 2 * stats_dim
    if mode == "mean":
        return stats_dim
    if mode == "onehot":
        if not num_clusters or num_clusters <= 0:
            raise ValueError("condition='onehot' needs num_clusters > 0.")
        return num_clusters
    raise ValueError(f"`condition` must be one of {CONDITION_MODES}, got {mode!r}.")


def condition_vector(cluster_ids, centroids, stds=None, *, mode: str = "mean_std"):
    """Conditioning input s of G for the clusters `cluster_ids` (paper §2.2).

    Args:
        cluster_ids: int [N], values in [0, k).
        centroids: mu, float [k, d] (cluster centroids in PCA space).
        stds: sigma, float [k, d] (per-dimension std of each cluster's members); only
            needed for `mode="mean_std"`.
        mode: "mean_std" -> concat(mu_c, sigma_c) [N, 2d] (paper default);
            "mean" -> mu_c [N, d]; "onehot" -> one_hot(c, k) [N, k] (k = len(centroids)).
    Returns:
        float32 [N, cond_dim].
    """
    if mode not in CONDITION_MODES:
        raise ValueError(f"`mode` must be one of {CONDITION_MODES}, got {mode!r}.")
    ids = ops.cast(cluster_ids, "int32")
    if len(ids.shape) != 1:
        raise ValueError(f"`cluster_ids` must have shape [N], got {tuple(ids.shape)}.")
    centroids = ops.convert_to_tensor(centroids, dtype="float32")
    if len(centroids.shape) != 2:
        raise ValueError(f"`centroids` must have shape [k, d], got {tuple(centroids.shape)}.")
    if mode == "onehot":
        return ops.one_hot(ids, int(centroids.shape[0]), dtype="float32")
    mean = ops.take(centroids, ids, axis=0)
    if mode == "mean":
        return mean
    if stds is None:
        raise ValueError("mode='mean_std' needs the `stds` table.")
    stds = ops.convert_to_tensor(stds, dtype="float32")
    if tuple(stds.shape) != tuple(centroids.shape):
        raise ValueError(
            f"`stds` shape {tuple(stds.shape)} must equal `centroids` shape "
            f"{tuple(centroids.shape)}."
        )
    return ops.concatenate([mean, ops.take(stds, ids, axis=0)], axis=-1)


def split_affine_params(params, layer_channels: Sequence[int]) -> list[tuple]:
    """Slices the MLP output [N, sum(2*C_l)] into one (gamma_l [N,C_l], beta_l [N,C_l]) per layer.

    Layout (MUNIT/TUNIT style): for each ASIN layer l in decoder order, C_l gammas then C_l
    betas.
    """
    expected = 2 * sum(layer_channels)
    width = params.shape[-1]
    if width is not None and width != expected:
        raise ValueError(
            f"affine params have width {width}, expected {expected} = 2 * sum({list(layer_channels)})."
        )
    pairs = []
    start = 0
    for channels in layer_channels:
        gamma = params[:, start : start + channels]
        beta = params[:, start + channels : start + 2 * channels]
        pairs.append((gamma, beta))
        start += 2 * channels
    return pairs


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AsinBiasInitializer(keras.initializers.Initializer):
    """Bias of the MLP's output layer: 1 for every gamma, 0 for every beta.

    ASIN uses gamma directly as the scale, so this starts every ASIN layer as a plain
    instance norm (StyleGAN initialises its style-scale biases to 1 the same way).
    """

    def __init__(self, layer_channels: Sequence[int]):
        self.layer_channels = [int(c) for c in layer_channels]

    def __call__(self, shape, dtype=None):
        expected = 2 * sum(self.layer_channels)
        if tuple(shape) != (expected,):
            raise ValueError(f"AsinBiasInitializer: shape {tuple(shape)} != ({expected},).")
        parts = []
        for channels in self.layer_channels:
            parts += [ops.ones((channels,)), ops.zeros((channels,))]
        return ops.cast(ops.concatenate(parts), dtype or "float32")

    def get_config(self):
        return {"layer_channels": self.layer_channels}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AsinMlp(keras.layers.Layer):
    """MLP f: conditioning vector [N, cond_dim] -> all ASIN affine params [N, sum(2*C_l)].

    Paper §2.2/§2.4: maps the cluster statistics to the (gamma, beta) of every ASIN layer of
    the decoder; 3 layers for CelebA, 7 for FFHQ/EmotioNet. `depth` counts all Dense layers:
    `depth - 1` hidden layers of `hidden_units` with ReLU, then one linear output layer.
    Use `split` to get the per-layer pairs.

    Args:
        layer_channels: C_l of each ASIN layer, in decoder order.
        depth: number of Dense layers (>= 1).
        hidden_units: width of the hidden layers.
    """

    def __init__(
        self, layer_channels: Sequence[int], *, depth: int = 3, hidden_units: int = 256, **kwargs
    ):
        super().__init__(**kwargs)
        if depth < 1:
            raise ValueError(f"AsinMlp: `depth` must be >= 1, got {depth}.")
        if not layer_channels:
            raise ValueError("AsinMlp: `layer_channels` must not be empty.")
        self.layer_channels = [int(c) for c in layer_channels]
        self.depth = int(depth)
        self.hidden_units = int(hidden_units)
        self.hidden = [
            keras.layers.Dense(self.hidden_units, activation="relu", name=f"hidden{i}")
            for i in range(self.depth - 1)
        ]
        self.out = keras.layers.Dense(
            self.num_params,
            bias_initializer=AsinBiasInitializer(self.layer_channels),
            name="affine",
        )

    @property
    def num_params(self) -> int:
        """Total width of the output: 2 * sum(C_l)."""
        return 2 * sum(self.layer_channels)

    def build(self, input_shape):
        shape = _as_shape(input_shape)
        if len(shape) != 2 or shape[-1] is None:
            raise ValueError(f"{self.name}: input must have shape [N, cond_dim], got {shape}.")
        for layer in [*self.hidden, self.out]:
            build_once(layer, shape)
            shape = _as_shape(layer.compute_output_shape(shape))
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: input_shape[-1]})

    def call(self, inputs):
        x = inputs
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)

    def split(self, params) -> list[tuple]:
        """[N, num_params] -> [(gamma_l [N,C_l], beta_l [N,C_l]) for each ASIN layer]."""
        return split_affine_params(params, self.layer_channels)

    def compute_output_shape(self, input_shape):
        return (_as_shape(input_shape)[0], self.num_params)

    def get_config(self):
        return {
            **super().get_config(),
            "layer_channels": self.layer_channels,
            "depth": self.depth,
            "hidden_units": self.hidden_units,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Encoder(keras.layers.Layer):
    """Content encoder h: [N,H,W,3] -> [N,H/4,W/4,4*base] (paper §2.4, StarGAN-derived).

    conv7x7(base)+IN+ReLU, conv4x4 s2 (2*base)+IN+ReLU, conv4x4 s2 (4*base)+IN+ReLU, then
    `num_res_blocks` residual blocks at 4*base with spectral-normalised convs.

    Args:
        base_channels: width of the first conv (paper: 64).
        num_res_blocks: paper: 6.
        spectral_norm: spectral-normalise the residual blocks' convs (paper: yes).
        norm: "instance" (paper) or "none": no per-sample statistics anywhere in the
            encoder (its convs get a bias instead), so no layer can carry signal past a
            normalisation with a local spike (StyleGAN2 §2's droplet cause).
    """

    def __init__(
        self,
        *,
        base_channels: int = 64,
        num_res_blocks: int = 6,
        spectral_norm: bool = True,
        norm: str = "instance",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if norm not in ENCODER_NORMS:
            raise ValueError(f"`norm` must be one of {ENCODER_NORMS}, got {norm!r}.")
        self.base_channels = int(base_channels)
        self.num_res_blocks = int(num_res_blocks)
        self.spectral_norm = bool(spectral_norm)
        self.norm = norm
        widths = [self.base_channels, 2 * self.base_channels, 4 * self.base_channels]
        bias = norm == "none"
        self.convs = [
            keras.layers.Conv2D(widths[0], 7, padding="same", use_bias=bias, name="conv0"),
            keras.layers.Conv2D(
                widths[1], 4, strides=2, padding="same", use_bias=bias, name="down1"
            ),
            keras.layers.Conv2D(
                widths[2], 4, strides=2, padding="same", use_bias=bias, name="down2"
            ),
        ]
        self.norms = [
            InstanceNormalization(name=f"norm{i}") if norm == "instance" else None for i in range(3)
        ]
        self.blocks = [
            ResidualBlock(widths[2], spectral_norm=self.spectral_norm, norm=norm, name=f"res{i}")
            for i in range(self.num_res_blocks)
        ]

    def build(self, input_shape):
        shape = _as_shape(input_shape)
        if len(shape) != 4 or shape[-1] is None:
            raise ValueError(f"{self.name}: input must be NHWC with known channels, got {shape}.")
        for size in shape[1:3]:
            if size is not None and size % 4:
                raise ValueError(f"{self.name}: H and W must be multiples of 4, got {shape}.")
        for conv, norm in zip(self.convs, self.norms, strict=True):
            build_once(conv, shape)
            shape = _as_shape(conv.compute_output_shape(shape))
            if norm is not None:
                build_once(norm, shape)
        for block in self.blocks:
            build_once(block, shape)

    def call(self, inputs, training=None, return_skips=False):
        """h [N,H/4,W/4,4*base]; with `return_skips`, (h, [skip_full, skip_half]).

        skip_full [N,H,W,base] is the output of conv0 (+IN+ReLU), skip_half
        [N,H/2,W/2,2*base] that of down1: the features the decoder's skip connections use.
        """
        x = inputs
        skips = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = conv(x)
            x = ops.relu(x if norm is None else norm(x))
            skips.append(x)
        for block in self.blocks:
            x = block(x, training=training)
        return (x, skips[:2]) if return_skips else x

    def skip_shapes(self, input_shape) -> list[tuple]:
        """Shapes of [skip_full, skip_half] for images of `input_shape` [N,H,W,3]."""
        n, h, w, _ = _as_shape(input_shape)
        return [
            (n, h, w, self.base_channels),
            (
                n,
                None if h is None else h // 2,
                None if w is None else w // 2,
                2 * self.base_channels,
            ),
        ]

    def compute_output_shape(self, input_shape):
        n, h, w, _ = _as_shape(input_shape)
        return (
            n,
            None if h is None else h // 4,
            None if w is None else w // 4,
            4 * self.base_channels,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "base_channels": self.base_channels,
            "num_res_blocks": self.num_res_blocks,
            "spectral_norm": self.spectral_norm,
            "norm": self.norm,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Decoder(keras.layers.Layer):
    """Decoder: (h [N,h,w,4*base], affine params [N,P]) -> images [N,4h,4w,3] in [-1, 1].

    Paper §2.4: `num_res_blocks` ASIN residual blocks (noise after every conv), two 2x
    upsampling layers (2*base, base) each + IN + ReLU, then conv7x7 -> tanh. The outputs are
    float32 whatever the dtype policy.

    Identity-preserving options (the defaults are the paper's architecture):

    - `skip_connections`: "none"; "plain" (AttGAN, He et al. TIP 2019; `layers.ConcatSkip`:
      conv1x1(concat(decoder, encoder))); "gated" (simplified STGAN selective transfer unit,
      Liu et al. CVPR 2019; `layers.GatedSkip`, gated by the target condition). The encoder
      feature of the same resolution is merged after each upsampling layer (+IN+ReLU):
      skip_half (2*base ch) after up1, skip_full (base ch) after up2.
    - `skip_levels`: how many upsampling layers, counted from the bottleneck, get a skip
      (AttGAN's `shortcut_layers`; its default is 1: more shortcuts reconstruct better but
      edit less). 2 = skip_half and skip_full; 1 = skip_half only (skip_full is still
      passed in and ignored, so the call signature does not depend on it).
    - `output_mode`: "direct" (tanh(conv7x7)) or "masked" (GANimation, Pumarola et al.
      ECCV 2018): a second conv7x7 head `to_mask` gives the attention mask
      A = sigmoid(conv7x7(x)) [N,4h,4w,1]; the caller blends A * C + (1 - A) * x_input
      (`layers.masked_blend`; `Generator` does it). The mask conv's bias starts at 0
      (A ~ 0.5, where the sigmoid's gradient is largest): no built-in bias towards copying
      the input, which is left to the explicit mask loss (`losses.mask_loss`, lambda_A) so
      that the ablation of that weight is not confounded by the init. GANimation's code also
      uses the default (near-zero) init.
      "residual" (learning residual images, Shen and Liu CVPR 2017): the conv7x7 output r
      is returned as it is, unbounded, and the caller outputs tanh(artanh(x) + r)
      (`Generator` does it): r = 0 gives back the input's every colour exactly, and the
      output stays in (-1, 1) without clipping.

    Call:
        inputs: `[h, params]` for skip_connections="none"; `[h, params, skip_full,
            skip_half]` for "plain"; `[h, params, skip_full, skip_half, condition]` for
            "gated". skip_full [N,4h,4w,base] and skip_half [N,2h,2w,2*base] are the
            encoder features in `Encoder(..., return_skips=True)` order; condition [N,D] is
            the target conditioning vector s.
    Returns:
        "direct": images [N,4h,4w,3] in [-1, 1]. "masked": (color C [N,4h,4w,3] in
        [-1, 1], mask A [N,4h,4w,1] in [0, 1]). "residual": r [N,4h,4w,3], unbounded.

    Args:
        base_channels: paper: 64.
        num_res_blocks: paper: 6.
        upsample: "transpose" (paper) or "resize_conv" (see `layers.Upsample`).
        noise_at_inference: see `layers.NoiseInjection`.
        output_mode: "direct" (paper), "masked" or "residual".
        skip_connections: "none" (paper), "plain" or "gated".
        skip_levels: 1 or 2 (see above); only used with skip_connections != "none".
        norm: "instance" (paper: ASIN blocks, instance norm after each upsampling) or
            "demod" (StyleGAN2-style: modulated convolutions in the blocks, see
            `layers.AsinResidualBlock`, and no normalisation after the upsampling layers:
            no statistic of the sample anywhere in the decoder).
    """

    def __init__(
        self,
        *,
        base_channels: int = 64,
        num_res_blocks: int = 6,
        upsample: str = "transpose",
        noise_at_inference: bool = False,
        output_mode: str = "direct",
        skip_connections: str = "none",
        skip_levels: int = 2,
        norm: str = "instance",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if norm not in DECODER_NORMS:
            raise ValueError(f"`norm` must be one of {DECODER_NORMS}, got {norm!r}.")
        self.norm = norm
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"`upsample` must be one of {UPSAMPLE_MODES}, got {upsample!r}.")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"`output_mode` must be one of {OUTPUT_MODES}, got {output_mode!r}.")
        if skip_connections not in SKIP_MODES:
            raise ValueError(
                f"`skip_connections` must be one of {SKIP_MODES}, got {skip_connections!r}."
            )
        self.base_channels = int(base_channels)
        self.num_res_blocks = int(num_res_blocks)
        self.upsample = upsample
        self.noise_at_inference = bool(noise_at_inference)
        self.output_mode = output_mode
        if skip_levels not in (1, 2):
            raise ValueError(f"`skip_levels` must be 1 or 2, got {skip_levels!r}.")
        self.skip_connections = skip_connections
        self.skip_levels = int(skip_levels)
        width = 4 * self.base_channels
        self.blocks = [
            AsinResidualBlock(
                width, noise_at_inference=self.noise_at_inference, norm=norm, name=f"res{i}"
            )
            for i in range(self.num_res_blocks)
        ]
        self.ups = [
            Upsample(2 * self.base_channels, mode=upsample, name="up1"),
            Upsample(self.base_channels, mode=upsample, name="up2"),
        ]
        self.up_norms = (
            [InstanceNormalization(name=f"up{i}_norm") for i in (1, 2)]
            if norm == "instance"
            else [None, None]
        )
        skip_layer = {"none": None, "plain": ConcatSkip, "gated": GatedSkip}[skip_connections]
        self.skips = (
            []
            if skip_layer is None
            else [
                skip_layer(2 * self.base_channels, name="skip1"),
                skip_layer(self.base_channels, name="skip2"),
            ][: self.skip_levels]
        )
        self.to_rgb = keras.layers.Conv2D(3, 7, padding="same", name="to_rgb")
        self.to_mask = (
            keras.layers.Conv2D(1, 7, padding="same", bias_initializer="zeros", name="to_mask")
            if output_mode == "masked"
            else None
        )

    @property
    def asin_layer_channels(self) -> list[int]:
        """Channels of each ASIN layer in call order (two per residual block)."""
        return [4 * self.base_channels] * (2 * self.num_res_blocks)

    @property
    def num_affine_params(self) -> int:
        return 2 * sum(self.asin_layer_channels)

    @property
    def num_inputs(self) -> int:
        """Length of the `inputs` list: 2, + 2 skips, + the condition when gated."""
        return 2 + 2 * bool(self.skips) + (self.skip_connections == "gated")

    def _check(self, shapes) -> tuple:
        if len(shapes) != self.num_inputs:
            names = ["h", "params", "skip_full", "skip_half", "condition"][: self.num_inputs]
            raise ValueError(
                f"{self.name}: skip_connections={self.skip_connections!r} expects inputs "
                f"[{', '.join(names)}], got {len(shapes)} inputs."
            )
        h_shape = _as_shape(shapes[0])
        if len(h_shape) != 4 or h_shape[-1] != 4 * self.base_channels:
            raise ValueError(
                f"{self.name}: h must be [N, h, w, {4 * self.base_channels}], got {h_shape}."
            )
        params_shape = _as_shape(shapes[1])
        if len(params_shape) != 2 or params_shape[-1] != self.num_affine_params:
            raise ValueError(
                f"{self.name}: affine params must be [N, {self.num_affine_params}], "
                f"got {params_shape}."
            )
        return h_shape

    def build(self, input_shape):
        shape = self._check(input_shape)
        affine = (shape[0], 4 * self.base_channels)
        for block in self.blocks:
            build_once(block, [shape] + [affine] * 4)
        extra = [_as_shape(s) for s in input_shape[2:]]
        for i, (up, norm) in enumerate(zip(self.ups, self.up_norms, strict=True)):
            build_once(up, shape)
            shape = _as_shape(up.compute_output_shape(shape))
            if norm is not None:
                build_once(norm, shape)
            if i < len(self.skips):
                build_once(self.skips[i], [shape, extra[1 - i], *extra[2:]])
        build_once(self.to_rgb, shape)
        if self.to_mask is not None:
            build_once(self.to_mask, shape)

    def call(self, inputs, training=None):
        self._check([t.shape for t in inputs])
        h, params, *extra = inputs
        pairs = split_affine_params(params, self.asin_layer_channels)
        x = h
        for i, block in enumerate(self.blocks):
            (gamma1, beta1), (gamma2, beta2) = pairs[2 * i], pairs[2 * i + 1]
            x = block([x, gamma1, beta1, gamma2, beta2], training=training)
        for i, (up, norm) in enumerate(zip(self.ups, self.up_norms, strict=True)):
            x = up(x)
            x = ops.relu(x if norm is None else norm(x))
            if i < len(self.skips):  # after up1: skip_half (extra[1]); up2: skip_full (extra[0])
                x = self.skips[i]([x, extra[1 - i], *extra[2:]])
        color = ops.cast(self.to_rgb(x), "float32")
        if self.output_mode == "residual":
            return color
        color = ops.tanh(color)
        if self.to_mask is None:
            return color
        return color, ops.sigmoid(ops.cast(self.to_mask(x), "float32"))

    def compute_output_shape(self, input_shape):
        n, h, w, _ = _as_shape(input_shape[0])
        size = (n, None if h is None else 4 * h, None if w is None else 4 * w)
        if self.to_mask is None:
            return size + (3,)
        return size + (3,), size + (1,)

    def get_config(self):
        return {
            **super().get_config(),
            "base_channels": self.base_channels,
            "num_res_blocks": self.num_res_blocks,
            "upsample": self.upsample,
            "noise_at_inference": self.noise_at_inference,
            "output_mode": self.output_mode,
            "skip_connections": self.skip_connections,
            "skip_levels": self.skip_levels,
            "norm": self.norm,
        }


class GeneratorOutput(NamedTuple):
    """What `Generator.forward` returns.

    images: G(x, s) [N,S,S,3] float32 in [-1, 1].
    content: h(x) [N,S/4,S/4,4*base], the encoder output (for the latent loss).
    mask: the attention mask A [N,S,S,1] in [0, 1] for output_mode="masked", else None.
    """

    images: Any
    content: Any
    mask: Any


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Generator(keras.Model):
    """G(x, s): images [N,S,S,3] in [-1,1] + condition [N,cond_dim] -> images [N,S,S,3] in [-1,1].

    Paper §2.2/§2.4 and DESIGN.md §3. Call as `G((images, condition), training=...)`, or
    `G.forward(images, condition)` for the `GeneratorOutput` (images, content h(x), mask);
    `training=True` draws the decoder noise and updates the spectral-norm power iteration;
    `training=False` is deterministic unless `noise_at_inference=True`.

    Identity-preserving options (ablation; the defaults build exactly the paper's variables):

    - `output_mode="masked"` (GANimation, Pumarola et al. ECCV 2018; also HiSD, PA-GAN):
      G predicts a colour image C and an attention mask A and outputs A*C + (1-A)*x, so
      unedited regions are copied from the input. See `Decoder` for the mask init.
    - `skip_connections="plain"|"gated"` (AttGAN, He et al. TIP 2019 / STGAN, Liu et al.
      CVPR 2019): encoder features at full and half resolution are merged into the decoder
      (see `Decoder`, `layers.ConcatSkip`, `layers.GatedSkip`); the gate sees the condition.
      `skip_levels=1` keeps only the half-resolution one (AttGAN's default of one shortcut).
    - `hf_bypass=True` (HifaFace, Gao et al. CVPR 2021): the input's high-frequency band
      x - blur(x) (`layers.high_frequency`, 5x5 binomial blur) is added to the generated
      image before clipping to [-1, 1], so G does not have to re-synthesise (or hide for
      the cycle loss) source detail. HifaFace feeds wavelet high-frequency sub-bands through
      learned skips to the end of the generator; we add a fixed Gaussian high-pass, which
      adds no weights. With output_mode="masked" the band is added to the colour image C,
      i.e. output = A * clip(C + hf(x), -1, 1) + (1 - A) * x: the copied region already
      holds x's detail, so the band is not counted twice.
    - `output_mode="residual"` (Shen and Liu, "Learning Residual Images for Face Attribute
      Manipulation", CVPR 2017): G outputs tanh(artanh(x) + r), r the decoder's last conv:
      the input's colours and detail come through wherever r is 0, so nothing has to be
      re-painted through the bottleneck. It already carries x's high frequencies: with
      `hf_bypass` it is a ValueError.

    Args:
        image_size: S (checked against the input; must be a multiple of 4).
        base_channels: paper: 64.
        num_res_blocks: residual blocks in the encoder and in the decoder (paper: 6 + 6).
        mlp_depth: Dense layers of the ASIN MLP (paper: 3 CelebA, 7 FFHQ/EmotioNet).
        mlp_hidden: hidden width of the MLP (paper: not given; MUNIT uses 256).
        condition: "mean_std" (paper default), "mean" or "onehot"; see `condition_vector`.
        stats_dim: d, the dimension of the cluster statistics (PCA dim, 256).
        num_clusters: k; required for condition="onehot".
        upsample: "transpose" (paper) or "resize_conv".
        noise_at_inference: draw decoder noise at inference too (StyleGAN); default off.
        output_mode: "direct" (paper), "masked" or "residual".
        skip_connections: "none" (paper), "plain" or "gated".
        skip_levels: 2 = skips at 1/2 and full resolution, 1 = at 1/2 only (see `Decoder`).
        hf_bypass: add the input's high-frequency band to the output (default off).
    """

    def __init__(
        self,
        image_size: int,
        *,
        base_channels: int = 64,
        num_res_blocks: int = 6,
        mlp_depth: int = 3,
        mlp_hidden: int = 256,
        condition: str = "mean_std",
        stats_dim: int = 256,
        num_clusters: int | None = None,
        upsample: str = "transpose",
        noise_at_inference: bool = False,
        output_mode: str = "direct",
        skip_connections: str = "none",
        skip_levels: int = 2,
        hf_bypass: bool = False,
        decoder_norm: str = "instance",
        encoder_norm: str = "instance",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if image_size <= 0 or image_size % 4:
            raise ValueError(f"`image_size` must be a positive multiple of 4, got {image_size}.")
        if output_mode == "residual" and hf_bypass:
            raise ValueError(
                "output_mode='residual' already passes the input's high frequencies through: "
                "turn hf_bypass off (--nohf_bypass)."
            )
        self.image_size = int(image_size)
        self.base_channels = int(base_channels)
        self.num_res_blocks = int(num_res_blocks)
        self.mlp_depth = int(mlp_depth)
        self.mlp_hidden = int(mlp_hidden)
        self.condition = condition
        self.stats_dim = int(stats_dim)
        self.num_clusters = None if num_clusters is None else int(num_clusters)
        self.upsample = upsample
        self.noise_at_inference = bool(noise_at_inference)
        self.output_mode = output_mode
        self.skip_connections = skip_connections
        self.skip_levels = int(skip_levels)
        self.hf_bypass = bool(hf_bypass)
        self.decoder_norm = decoder_norm
        self.encoder_norm = encoder_norm
        self.condition_dim = condition_dim(
            condition, stats_dim=self.stats_dim, num_clusters=self.num_clusters
        )
        self.encoder = Encoder(
            base_channels=self.base_channels,
            num_res_blocks=self.num_res_blocks,
            norm=encoder_norm,
            name="encoder",
        )
        self.decoder = Decoder(
            base_channels=self.base_channels,
            num_res_blocks=self.num_res_blocks,
            upsample=upsample,
            noise_at_inference=self.noise_at_inference,
            output_mode=output_mode,
            skip_connections=skip_connections,
            skip_levels=self.skip_levels,
            norm=decoder_norm,
            name="decoder",
        )
        self.mlp = AsinMlp(
            self.decoder.asin_layer_channels,
            depth=self.mlp_depth,
            hidden_units=self.mlp_hidden,
            name="asin_mlp",
        )

    @property
    def uses_skips(self) -> bool:
        return self.skip_connections != "none"

    @property
    def needs_images_to_decode(self) -> bool:
        """Whether decoding needs the input images (masked or residual output, high-frequency
        bypass)."""
        return self.output_mode != "direct" or self.hf_bypass

    def _check_images(self, shape) -> tuple:
        shape = _as_shape(shape)
        expected = (self.image_size, self.image_size, 3)
        if len(shape) != 4 or any(
            a is not None and a != b for a, b in zip(shape[1:], expected, strict=True)
        ):
            raise ValueError(
                f"{self.name}: images must be [N, {', '.join(map(str, expected))}], got {shape}."
            )
        return shape

    def _check_condition(self, shape) -> tuple:
        shape = _as_shape(shape)
        if len(shape) != 2 or shape[-1] != self.condition_dim:
            raise ValueError(
                f"{self.name}: condition must be [N, {self.condition_dim}] for "
                f"condition={self.condition!r}, got {shape}."
            )
        return shape

    def build(self, input_shape):
        """Creates all weights; `input_shape` = (images [N,S,S,3], condition [N,cond_dim])."""
        if len(input_shape) != 2:
            raise ValueError(f"{self.name}: expects inputs (images, condition).")
        images_shape = self._check_images(input_shape[0])
        cond_shape = self._check_condition(input_shape[1])
        build_once(self.encoder, images_shape)
        build_once(self.mlp, cond_shape)
        decoder_shapes = [
            self.encoder.compute_output_shape(images_shape),
            (cond_shape[0], self.mlp.num_params),
        ]
        if self.uses_skips:
            decoder_shapes += self.encoder.skip_shapes(images_shape)
        if self.skip_connections == "gated":
            decoder_shapes.append(cond_shape)
        build_once(self.decoder, decoder_shapes)
        self.built = True

    def call(self, inputs, training=None):
        images, condition = inputs
        return self.forward(images, condition, training=training).images

    def forward(self, images, condition, training=None) -> GeneratorOutput:
        """G(x, s) with its by-products; the encoder runs once.

        Args:
            images: x [N,S,S,3] in [-1, 1]; condition: s [N,cond_dim].
        Returns:
            GeneratorOutput(images [N,S,S,3], content h(x) [N,S/4,S/4,4*base],
            mask [N,S,S,1] or None for output_mode="direct").
        """
        self._check_images(images.shape)
        self._check_condition(condition.shape)
        if self.uses_skips:
            h, skips = self.encoder(images, training=training, return_skips=True)
        else:
            h, skips = self.encoder(images, training=training), None
        return self._decode(h, condition, images=images, skips=skips, training=training)

    def forward_each(self, images, conditions, training=None) -> list[GeneratorOutput]:
        """G(x, s_i) for several conditions of the same images: the encoder runs once, the
        decoder once on the m stacked copies (one bigger batch runs faster than m passes).

        Args:
            images: x [N,S,S,3] in [-1, 1]; conditions: m conditions [N,cond_dim] each.
        Returns:
            m GeneratorOutputs as `forward` returns them, sharing the content h(x).
        """
        self._check_images(images.shape)
        for condition in conditions:
            self._check_condition(condition.shape)
        m = len(conditions)
        if self.uses_skips:
            h, skips = self.encoder(images, training=training, return_skips=True)
        else:
            h, skips = self.encoder(images, training=training), None

        def stacked(t):
            return ops.concatenate([t] * m, axis=0)

        out = self._decode(
            stacked(h),
            ops.concatenate(list(conditions), axis=0),
            images=stacked(images),
            skips=None if skips is None else [stacked(s) for s in skips],
            training=training,
        )
        n = ops.shape(images)[0]

        def part(t, i):
            return None if t is None else t[i * n : (i + 1) * n]

        return [GeneratorOutput(part(out.images, i), h, part(out.mask, i)) for i in range(m)]

    def encode(self, images, training=None, *, return_skips: bool = False):
        """h(x): [N,S,S,3] -> [N,S/4,S/4,4*base]; used by the latent loss (paper §2.3).

        With `return_skips`: (h, [skip_full [N,S,S,base], skip_half [N,S/2,S/2,2*base]]),
        the encoder features `decode(..., skips=)` needs when skip_connections != "none".
        """
        self._check_images(images.shape)
        return self.encoder(images, training=training, return_skips=return_skips)

    def affine_params(self, condition):
        """f(s): [N,cond_dim] -> concatenated ASIN params [N, P] (see `AsinMlp.split`)."""
        self._check_condition(condition.shape)
        return self.mlp(condition)

    def decode(self, h, condition, training=None, *, images=None, skips=None):
        """Decoder(h, f(s)): h [N,S/4,S/4,4*base], condition [N,cond_dim] -> [N,S,S,3].

        `images` (x [N,S,S,3]) is required when output_mode is not "direct" or hf_bypass=True;
        `skips` (from `encode(x, return_skips=True)`) when skip_connections != "none".
        Use `forward` to also get the mask.
        """
        if self.uses_skips and skips is None:
            raise ValueError(
                f"{self.name}: skip_connections={self.skip_connections!r}: decode() needs "
                "`skips` from encode(images, return_skips=True), or use forward()."
            )
        if not self.uses_skips and skips is not None:
            raise ValueError(f"{self.name}: `skips` given but skip_connections='none'.")
        if self.needs_images_to_decode and images is None:
            raise ValueError(
                f"{self.name}: output_mode={self.output_mode!r}, hf_bypass={self.hf_bypass}: "
                "decode() needs the input `images`, or use forward()."
            )
        if images is not None:
            self._check_images(images.shape)
        return self._decode(h, condition, images=images, skips=skips, training=training).images

    def _decode(self, h, condition, *, images, skips, training) -> GeneratorOutput:
        inputs = [h, self.affine_params(condition)]
        if self.uses_skips:
            if len(skips) != 2:
                raise ValueError(f"{self.name}: `skips` must be [skip_full, skip_half].")
            inputs += list(skips)
        if self.skip_connections == "gated":
            inputs.append(ops.cast(condition, "float32"))
        out = self.decoder(inputs, training=training)
        color, mask = out if self.output_mode == "masked" else (out, None)
        if self.output_mode == "residual":
            x = ops.clip(ops.cast(images, "float32"), -RESIDUAL_CLIP, RESIDUAL_CLIP)
            color = ops.tanh(ops.arctanh(x) + color)
        if self.hf_bypass:
            band = high_frequency(images, kernel_size=HF_KERNEL_SIZE)
            color = ops.clip(color + band, -1.0, 1.0)
        result = color if mask is None else masked_blend(color, mask, images)
        return GeneratorOutput(result, h, mask)

    def compute_output_shape(self, input_shape):
        return (_as_shape(input_shape[0])[0], self.image_size, self.image_size, 3)

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "base_channels": self.base_channels,
            "num_res_blocks": self.num_res_blocks,
            "mlp_depth": self.mlp_depth,
            "mlp_hidden": self.mlp_hidden,
            "condition": self.condition,
            "stats_dim": self.stats_dim,
            "num_clusters": self.num_clusters,
            "upsample": self.upsample,
            "noise_at_inference": self.noise_at_inference,
            "output_mode": self.output_mode,
            "skip_connections": self.skip_connections,
            "skip_levels": self.skip_levels,
            "hf_bypass": self.hf_bypass,
            "decoder_norm": self.decoder_norm,
            "encoder_norm": self.encoder_norm,
        }
