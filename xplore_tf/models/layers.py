"""Building blocks of the XploreGAN generator (DESIGN.md §3, paper §2.2 and §2.4).

All layers are channels-last (NHWC), written with `keras.ops` so they stay portable across
Keras backends (instance norm adds a TensorFlow-only fused path, `_instance_normalize`), and
serialisable: `get_config` returns exactly the constructor arguments
(plus Keras' base `name`/`dtype`/`trainable`).

Normalisation statistics are computed in float32 even under a `mixed_bfloat16` /
`mixed_float16` policy (as Keras' own normalisation layers do) and cast back afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

_PACKAGE = "xplore_tf"
_NORMS = ("instance", "none")
_LOW_PRECISION = ("float16", "bfloat16")


def _as_shape(shape) -> tuple:
    """A shape as a plain tuple (Keras hands shapes as tuples, lists or TensorShapes)."""
    return tuple(None if d is None else int(d) for d in shape)


def _check_feature_map(shape, *, layer: str, what: str = "inputs") -> tuple:
    """Validates a [N, H, W, C] shape with a known C; returns it as a tuple."""
    shape = _as_shape(shape)
    if len(shape) != 4:
        raise ValueError(f"{layer}: `{what}` must be a 4-D NHWC tensor, got shape {shape}.")
    if shape[-1] is None:
        raise ValueError(f"{layer}: the channel axis of `{what}` must be known, got {shape}.")
    return shape


def _check_affine(x_shape, gamma_shape, beta_shape, *, layer: str) -> None:
    """Validates x [N,H,W,C] against per-sample affine parameters gamma, beta [N,C]."""
    x_shape = _check_feature_map(x_shape, layer=layer, what="x")
    channels = x_shape[-1]
    for name, shape in (("gamma", gamma_shape), ("beta", beta_shape)):
        shape = _as_shape(shape)
        if len(shape) != 2:
            raise ValueError(f"{layer}: `{name}` must have shape [N, C], got {shape}.")
        if shape[-1] != channels:
            raise ValueError(
                f"{layer}: `{name}` has {shape[-1]} channels but x has {channels} "
                f"(x shape {x_shape}, {name} shape {shape})."
            )
        if None not in (shape[0], x_shape[0]) and shape[0] != x_shape[0]:
            raise ValueError(
                f"{layer}: `{name}` batch size {shape[0]} does not match x batch size {x_shape[0]}."
            )


# Per-sample maps at least this large (H * W * C elements) use the fused kernel: below it the
# per-sample ops cost more than they save (forward + backward, bfloat16: even at 32x32x16 and
# 64x64x16, 1.7x faster at 64x64x32, 1.96x at 32x32x256). Batches above FUSED_MAX_BATCH keep
# the composed form: one fused op per sample would make their graphs large.
FUSED_MIN_ELEMENTS = 65536
FUSED_MAX_BATCH = 64
_FUSED_DTYPES = ("float32", "bfloat16", "float16")  # what FusedBatchNormV3 takes


def _instance_normalize(x, epsilon: float, gamma=None, beta=None):
    """gamma * (x - mean) / sqrt(var + eps) + beta per sample and channel over H, W.

    x: [N, H, W, C]; gamma, beta: None (1 and 0), or float32 [C] (shared) or [N, C] (per
    sample). The variance is the biased (population) one, as in PyTorch's InstanceNorm2d and
    the StarGAN/MUNIT reference code. Returns x's dtype; statistics are float32.

    With the TensorFlow backend, a known batch size of 1 to FUSED_MAX_BATCH, per-sample maps
    of at least FUSED_MIN_ELEMENTS and a float32 / bfloat16 / float16 x, each sample goes
    through TensorFlow's fused batch-norm kernel (`FusedBatchNormV3` in training mode on a
    [1, H, W, C] slice is instance norm of that sample; it takes bfloat16 / float16 x with
    float32 statistics itself, and its gradient is one fused kernel too). Otherwise it is
    composed from `keras.ops`. The two agree to float rounding (tests/models/test_layers.py).
    Why: in a profile of the paper128 G step in bfloat16 the composed form's element-wise ops
    and casts were a large share of the step's time; the fused kernel is one pass.
    """
    shape = _as_shape(x.shape)
    if (
        keras.backend.backend() == "tensorflow"
        and None not in shape
        and 1 <= shape[0] <= FUSED_MAX_BATCH
        and math.prod(shape[1:]) >= FUSED_MIN_ELEMENTS
        and keras.backend.standardize_dtype(x.dtype) in _FUSED_DTYPES
        and all(_affine_rows(v) in (None, 1, shape[0]) for v in (gamma, beta))
    ):
        return _fused_instance_normalize(x, epsilon, gamma, beta)
    return ops.cast(_composed_instance_normalize(x, epsilon, gamma, beta), x.dtype)


def _affine_rows(v):
    """Rows of an affine parameter: None for none, 1 for a shared [C] one, N for [N, C] (-1
    when that N is unknown)."""
    if v is None:
        return None
    shape = _as_shape(v.shape)
    if len(shape) == 1:
        return 1
    return -1 if shape[0] is None else shape[0]


def _fused_instance_normalize(x, epsilon: float, gamma=None, beta=None):
    """`_instance_normalize` as one FusedBatchNormV3 per sample (static batch size)."""
    import tensorflow as tf

    n, channels = int(x.shape[0]), int(x.shape[-1])

    def per_sample(v, default):
        if v is None:
            v = tf.fill([channels], default)
        v = tf.cast(tf.reshape(v, [-1, channels]), tf.float32)
        return [v[0]] * n if v.shape[0] == 1 else tf.unstack(v, n)

    empty = tf.zeros([0], tf.float32)  # training mode: statistics come from the input
    outputs = [
        tf.raw_ops.FusedBatchNormV3(
            x=sample,
            scale=scale,
            offset=offset,
            mean=empty,
            variance=empty,
            epsilon=epsilon,
            data_format="NHWC",
            is_training=True,
        ).y
        for sample, scale, offset in zip(
            tf.split(x, n, axis=0), per_sample(gamma, 1.0), per_sample(beta, 0.0), strict=True
        )
    ]
    return tf.concat(outputs, axis=0)


def _composed_instance_normalize(x, epsilon: float, gamma=None, beta=None):
    """`_instance_normalize` from `keras.ops`, float32 result.

    Computed as x * scale + shift with scale = gamma / sqrt(var + eps) and shift = beta -
    mean * scale, both [N,1,1,C]: two full-size element-wise ops (and their gradients)
    instead of four, the same maths up to float rounding.
    """
    x = ops.cast(x, "float32")
    mean, variance = ops.moments(x, axes=[1, 2], keepdims=True)
    scale = ops.rsqrt(variance + epsilon)
    if gamma is not None:
        scale = scale * _per_channel(gamma)
    shift = -mean * scale
    if beta is not None:
        shift = shift + _per_channel(beta)
    return x * scale + shift


def _per_channel(v):
    """[C] or [N, C] -> [1 or N, 1, 1, C] float32 so it broadcasts over a feature map."""
    v = ops.cast(v, "float32")
    return ops.reshape(v, (-1, 1, 1, v.shape[-1]))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class InstanceNormalization(keras.layers.Layer):
    """Instance normalisation [N,H,W,C] -> [N,H,W,C] with an optional learned affine.

    Normalises each sample and channel over H, W (Ulyanov et al.), then applies a
    per-channel `scale * x_hat + offset`. Used after every conv of the encoder and of the
    decoder's upsampling layers (StarGAN architecture; paper §2.4). Our own layer because
    tensorflow-addons is end-of-life on Keras 3 (DESIGN.md §6).

    Args:
        epsilon: added to the variance before the square root.
        center: learn a per-channel offset (initialised to 0).
        scale: learn a per-channel scale (initialised to 1).
    """

    def __init__(self, *, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.gamma = None
        self.beta = None

    def build(self, input_shape):
        shape = _check_feature_map(input_shape, layer=self.name)
        channels = shape[-1]
        if self.scale:
            # autocast=False, as Keras' own normalisation layers: under a mixed policy the
            # affine stays float32 instead of being rounded to bfloat16 in the forward pass.
            self.gamma = self.add_weight(
                shape=(channels,), initializer="ones", name="gamma", autocast=False
            )
        if self.center:
            self.beta = self.add_weight(
                shape=(channels,), initializer="zeros", name="beta", autocast=False
            )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        return _instance_normalize(
            inputs,
            self.epsilon,
            gamma=self.gamma if self.scale else None,
            beta=self.beta if self.center else None,
        )

    def compute_output_shape(self, input_shape):
        return _as_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AttributeSummaryInstanceNorm(keras.layers.Layer):
    """ASIN: `gamma * IN(x) + beta` with gamma, beta [N,C] from the cluster statistics.

    Paper §2.2: AdaIN whose affine parameters are produced by the MLP f from a cluster's
    statistics (a summary of a *group* of images) instead of from one style image. The
    layer has no weights of its own.

    Convention: `gamma` is used directly as the scale (the paper's equation and MUNIT's
    AdaIN), not as `1 + gamma`. The MLP that produces it (`generator.AsinMlp`) therefore
    initialises the bias of its gamma outputs to 1 and of its beta outputs to 0, so at
    initialisation ASIN is close to a plain instance norm.

    Call:
        inputs: `[x, gamma, beta]` with x [N,H,W,C], gamma [N,C], beta [N,C].
    Returns:
        [N,H,W,C], in x's dtype.
    """

    def __init__(self, *, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.name}: expects inputs [x, gamma, beta], got {len(input_shape)} inputs."
            )
        _check_affine(*input_shape, layer=self.name)

    def call(self, inputs):
        x, gamma, beta = inputs
        _check_affine(x.shape, gamma.shape, beta.shape, layer=self.name)
        return _instance_normalize(x, self.epsilon, gamma=gamma, beta=beta)

    def compute_output_shape(self, input_shape):
        return _as_shape(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NoiseInjection(keras.layers.Layer):
    """Adds per-pixel Gaussian noise times a learned per-channel scale: [N,H,W,C] -> same.

    StyleGAN's noise input (paper §2.4: "pixel noise after every conv layer" of the decoder):
    one N(0,1) value per pixel, shared across channels, times a per-channel weight
    initialised to 0, so the layer starts as the identity.

    When noise is drawn: always when `training=True`; at inference only if
    `noise_at_inference=True` (StyleGAN keeps it; our default `False` makes inference,
    hence G_ema samples, export and save/load checks, deterministic — the expected value
    of the noise term is 0). An explicit `noise` [N,H,W,1] passed to `call` is always
    used, whatever `training` is, for reproducible sampling.

    Args:
        noise_at_inference: also draw noise when `training` is false/None.
        seed: integer seed of the layer's `keras.random.SeedGenerator` (None: derived from
            Python's RNG, i.e. from `keras.utils.set_random_seed`).
    """

    def __init__(self, *, noise_at_inference: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.noise_at_inference = bool(noise_at_inference)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.scale = None

    def build(self, input_shape):
        shape = _check_feature_map(input_shape, layer=self.name)
        self.scale = self.add_weight(shape=(shape[-1],), initializer="zeros", name="scale")
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: shape[-1]})

    def call(self, inputs, training=None, noise=None):
        if noise is None:
            if not (training or self.noise_at_inference):
                return inputs
            dynamic = ops.shape(inputs)
            noise = keras.random.normal(
                (dynamic[0], dynamic[1], dynamic[2], 1), dtype="float32", seed=self.seed_generator
            )
        else:
            noise_shape = _as_shape(noise.shape)
            expected = _as_shape(inputs.shape)[:3] + (1,)
            if len(noise_shape) != 4 or any(
                a is not None and b is not None and a != b
                for a, b in zip(noise_shape, expected, strict=True)
            ):
                raise ValueError(
                    f"{self.name}: `noise` must have shape [N, H, W, 1] = {expected}, "
                    f"got {noise_shape}."
                )
        return inputs + ops.cast(noise, inputs.dtype) * ops.cast(self.scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return _as_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "noise_at_inference": self.noise_at_inference,
            "seed": self.seed,
        }


def _conv(filters: int, kernel_size: int, *, strides: int = 1, use_bias: bool, name: str):
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=use_bias, name=name
    )


def build_once(layer: keras.layers.Layer, input_shape) -> None:
    """Builds a sublayer unless it is built already (e.g. by an earlier direct call)."""
    if not layer.built:
        layer.build(input_shape)


def _build_chain(layers: Sequence[keras.layers.Layer], shape) -> tuple:
    """Builds `layers` one after the other from `shape`; returns the final output shape."""
    shape = _as_shape(shape)
    for layer in layers:
        build_once(layer, shape)
        shape = _as_shape(layer.compute_output_shape(shape))
    return shape


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpectralNormalization(keras.layers.SpectralNormalization):
    """`keras.layers.SpectralNormalization` that keeps the kernel in float32 under a mixed
    policy.

    Keras' wrapper computes the normalised kernel W / sigma(W) inside the layer's call, where
    a `mixed_bfloat16` / `mixed_float16` policy reads the float32 kernel autocast to the
    compute dtype, and assigns the result back to the kernel: every training call rounded
    the stored kernel to bfloat16 (tests/models/test_layers.py), so optimizer updates below
    half a bfloat16 step (0.2-0.4 % of a weight) were lost, and the kernel was cast three
    times. Here the power iteration and the division read the variables as stored (float32);
    the wrapped layer still computes in its own dtype. Same variables, config and results
    under float32.
    """

    def call(self, inputs, training=False):
        if training:
            # Keras has no public switch for this: an AutocastScope without a dtype is
            # what a read outside any mixed-policy layer sees.
            from keras.src.backend.common.variables import AutocastScope

            with AutocastScope(None):
                kernel, vector_u = self.kernel.value, self.vector_u.value
                new_vector_u, new_kernel = ops.cond(
                    ops.all(ops.equal(kernel, 0)),
                    lambda: (vector_u, kernel),
                    self.normalized_weights,
                )
            self.vector_u.assign(new_vector_u)
            self.kernel.assign(new_kernel)
        return ops.cast(self.layer(inputs), inputs.dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualBlock(keras.layers.Layer):
    """Encoder residual block [N,H,W,F] -> [N,H,W,F]: x + IN(conv(ReLU(IN(conv(x))))).

    StarGAN's bottleneck block (conv3x3 -> IN -> ReLU -> conv3x3 -> IN, identity skip, no
    activation after the sum); paper §2.4 adds spectral normalisation to its convs.

    Args:
        filters: F, both the input and the output channel count.
        spectral_norm: wrap each conv in `SpectralNormalization` (Keras' wrapper with a
            float32 kernel; one power iteration per training call). Note the wrapper writes
            the normalised kernel back into the conv's kernel on every `training=True` call
            and uses the stored kernel as is at inference.
        norm: "instance" (affine instance norm) or "none" (convs then get a bias).
    """

    def __init__(
        self, filters: int, *, spectral_norm: bool = False, norm: str = "instance", **kwargs
    ):
        super().__init__(**kwargs)
        if norm not in _NORMS:
            raise ValueError(f"ResidualBlock: `norm` must be one of {_NORMS}, got {norm!r}.")
        if filters <= 0:
            raise ValueError(f"ResidualBlock: `filters` must be positive, got {filters}.")
        self.filters = int(filters)
        self.spectral_norm = bool(spectral_norm)
        self.norm = norm
        use_bias = norm == "none"
        self.conv1 = self._make_conv(use_bias, "conv1")
        self.conv2 = self._make_conv(use_bias, "conv2")
        if norm == "instance":
            self.norm1 = InstanceNormalization(name="norm1")
            self.norm2 = InstanceNormalization(name="norm2")
        else:
            self.norm1 = self.norm2 = None

    def _make_conv(self, use_bias: bool, name: str):
        conv = _conv(self.filters, 3, use_bias=use_bias, name=name)
        if self.spectral_norm:
            return SpectralNormalization(conv, name=f"{name}_sn")
        return conv

    def _main_path(self):
        return [x for x in (self.conv1, self.norm1, self.conv2, self.norm2) if x is not None]

    def build(self, input_shape):
        shape = _check_feature_map(input_shape, layer=self.name)
        if shape[-1] != self.filters:
            raise ValueError(
                f"{self.name}: input has {shape[-1]} channels but the block has "
                f"filters={self.filters}; the identity skip needs them equal."
            )
        _build_chain(self._main_path(), shape)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: self.filters})

    def call(self, inputs, training=None):
        y = self.conv1(inputs, training=training)
        if self.norm1 is not None:
            y = self.norm1(y)
        y = ops.relu(y)
        y = self.conv2(y, training=training)
        if self.norm2 is not None:
            y = self.norm2(y)
        return inputs + y

    def compute_output_shape(self, input_shape):
        return _as_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "spectral_norm": self.spectral_norm,
            "norm": self.norm,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AsinResidualBlock(keras.layers.Layer):
    """Decoder residual block with ASIN: [N,H,W,F] -> [N,H,W,F] (paper §2.4, DESIGN.md §3).

    `conv3x3 -> noise -> ASIN(gamma1, beta1) -> ReLU -> conv3x3 -> noise -> ASIN(gamma2,
    beta2)`, plus the identity skip. The convs have no bias (ASIN's mean subtraction would
    remove it).

    With `norm="demod"` no statistic of the sample is taken: each conv is StyleGAN2's
    modulated convolution with weight demodulation (Karras et al., CVPR 2020, §2.2), with
    gamma as its style and beta added after the noise as its bias:
    `modconv(gamma1) -> noise -> + beta1 -> ReLU -> modconv(gamma2) -> noise -> + beta2`.
    Instance normalisation lets a generator plant a strong local spike to carry signal past
    the per-sample statistics (the "droplet" artefact that paper traced); demodulation
    normalises by the expected statistics of the weights instead.

    Call:
        inputs: `[x, gamma1, beta1, gamma2, beta2]`, x [N,H,W,F], the others [N,F].
        training: draws the noise (see `NoiseInjection`).
    Args:
        filters: F.
        noise_at_inference: passed to both `NoiseInjection` layers.
        epsilon: ASIN's variance epsilon (demodulation's, with norm="demod").
        norm: "instance" (ASIN, the paper's) or "demod" (modulated convolutions).
    """

    def __init__(
        self,
        filters: int,
        *,
        noise_at_inference: bool = False,
        epsilon: float = 1e-5,
        norm: str = "instance",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if filters <= 0:
            raise ValueError(f"AsinResidualBlock: `filters` must be positive, got {filters}.")
        if norm not in DECODER_NORMS:
            raise ValueError(f"AsinResidualBlock: `norm` must be one of {DECODER_NORMS}.")
        self.norm = norm
        self.filters = int(filters)
        self.noise_at_inference = bool(noise_at_inference)
        self.epsilon = float(epsilon)
        self.conv1 = _conv(self.filters, 3, use_bias=False, name="conv1")
        self.noise1 = NoiseInjection(noise_at_inference=noise_at_inference, name="noise1")
        self.asin1 = AttributeSummaryInstanceNorm(epsilon=epsilon, name="asin1")
        self.conv2 = _conv(self.filters, 3, use_bias=False, name="conv2")
        self.noise2 = NoiseInjection(noise_at_inference=noise_at_inference, name="noise2")
        self.asin2 = AttributeSummaryInstanceNorm(epsilon=epsilon, name="asin2")

    def _check(self, shapes) -> tuple:
        if len(shapes) != 5:
            raise ValueError(
                f"{self.name}: expects inputs [x, gamma1, beta1, gamma2, beta2], "
                f"got {len(shapes)} inputs."
            )
        x_shape = _check_feature_map(shapes[0], layer=self.name, what="x")
        if x_shape[-1] != self.filters:
            raise ValueError(
                f"{self.name}: x has {x_shape[-1]} channels but the block has "
                f"filters={self.filters}; the identity skip needs them equal."
            )
        _check_affine(x_shape, shapes[1], shapes[2], layer=self.name)
        _check_affine(x_shape, shapes[3], shapes[4], layer=self.name)
        return x_shape

    def build(self, input_shape):
        x_shape = self._check(input_shape)
        affine = (x_shape[0], self.filters)
        pairs = ((self.conv1, self.noise1, self.asin1), (self.conv2, self.noise2, self.asin2))
        for conv, noise, asin in pairs:
            build_once(conv, x_shape)
            build_once(noise, x_shape)
            build_once(asin, [x_shape, affine, affine])

    def call(self, inputs, training=None):
        self._check([t.shape for t in inputs])
        x, gamma1, beta1, gamma2, beta2 = inputs
        if self.norm == "demod":
            y = self.noise1(modulated_conv(self.conv1, x, gamma1, self.epsilon), training=training)
            y = ops.relu(y + _map_rows(ops.cast(beta1, y.dtype)))
            y = self.noise2(modulated_conv(self.conv2, y, gamma2, self.epsilon), training=training)
            return x + y + _map_rows(ops.cast(beta2, y.dtype))
        y = self.noise1(self.conv1(x), training=training)
        y = ops.relu(self.asin1([y, gamma1, beta1]))
        y = self.noise2(self.conv2(y), training=training)
        y = self.asin2([y, gamma2, beta2])
        return x + y

    def compute_output_shape(self, input_shape):
        return _as_shape(input_shape[0])

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "noise_at_inference": self.noise_at_inference,
            "epsilon": self.epsilon,
            "norm": self.norm,
        }


DECODER_NORMS = ("instance", "demod")


def modulated_conv(conv, x, style, epsilon: float = 1e-8):
    """StyleGAN2's modulated convolution with weight demodulation, in its non-fused form
    (Karras et al., CVPR 2020, eq. 1-3): conv(x * s) * d with
    d[n, o] = 1 / sqrt(sum over taps k and inputs i of (w[k, i, o] * s[n, i])^2 + epsilon).

    conv: a built bias-free Conv2D with kernel [kh, kw, I, O]; x [N,H,W,I]; style s [N,I].
    Returns [N,H,W,O] in x's dtype; d is computed in float32.
    """
    kernel = ops.cast(conv.kernel, "float32")
    style = ops.cast(style, "float32")
    squared = ops.sum(ops.square(kernel), axis=(0, 1))  # [I, O]
    demod = ops.rsqrt(ops.matmul(ops.square(style), squared) + epsilon)  # [N, O]
    y = conv(x * _map_rows(ops.cast(style, x.dtype)))
    return y * _map_rows(ops.cast(demod, y.dtype))


def _map_rows(v):
    """[N, C] -> [N, 1, 1, C] in v's dtype, to scale a feature map per sample and channel."""
    return ops.reshape(v, (-1, 1, 1, v.shape[-1]))


_UPSAMPLE_MODES = ("transpose", "resize_conv")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Upsample(keras.layers.Layer):
    """2x learned upsampling [N,H,W,C] -> [N,2H,2W,F], without normalisation or activation.

    `mode="transpose"`: Conv2DTranspose 4x4 stride 2 (paper §2.4, StarGAN). `"resize_conv"`:
    nearest-neighbour 2x resize then conv3x3, which avoids the checkerboard artifacts of
    transposed convs (Odena et al., Distill 2016). No bias: an instance norm follows.

    Args:
        filters: F.
        mode: "transpose" or "resize_conv".
    """

    def __init__(self, filters: int, *, mode: str = "transpose", **kwargs):
        super().__init__(**kwargs)
        if mode not in _UPSAMPLE_MODES:
            raise ValueError(f"Upsample: `mode` must be one of {_UPSAMPLE_MODES}, got {mode!r}.")
        self.filters = int(filters)
        self.mode = mode
        if mode == "transpose":
            self.resize = None
            self.conv = keras.layers.Conv2DTranspose(
                self.filters, 4, strides=2, padding="same", use_bias=False, name="conv"
            )
        else:
            self.resize = keras.layers.UpSampling2D(2, interpolation="nearest", name="resize")
            self.conv = _conv(self.filters, 3, use_bias=False, name="conv")

    def build(self, input_shape):
        shape = _check_feature_map(input_shape, layer=self.name)
        _build_chain([x for x in (self.resize, self.conv) if x is not None], shape)

    def call(self, inputs):
        x = inputs if self.resize is None else self.resize(inputs)
        return self.conv(x)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = _as_shape(input_shape)
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "mode": self.mode}


def binomial_taps(kernel_size: int) -> list[float]:
    """Normalised binomial filter taps C(k-1, i) / 2^(k-1), e.g. 5 -> [1, 4, 6, 4, 1] / 16.

    The binomial filter is the standard small-support approximation of a Gaussian (k = 5
    is close to sigma = 1 px); its taps sum to exactly 1.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"`kernel_size` must be a positive odd integer, got {kernel_size}.")
    n = kernel_size - 1
    return [math.comb(n, i) / 2.0**n for i in range(kernel_size)]


def high_frequency(images, *, kernel_size: int = 5):
    """High-frequency band x - blur(x) of images [N,H,W,C] -> [N,H,W,C] float32.

    The identity-detail signal of HifaFace (Gao et al., CVPR 2021), which feeds the input's
    high frequencies (there: wavelet sub-bands) to the end of the generator. Here blur is a
    fixed separable `kernel_size` x `kernel_size` binomial filter applied per channel
    (depthwise) with reflect padding, so a constant image has exactly zero high frequency
    (zero padding would create false edges at the border). `kernel_size=1` gives zeros.
    H and W must exceed `kernel_size // 2` (reflect padding).
    """
    taps = binomial_taps(kernel_size)
    shape = _check_feature_map(images.shape, layer="high_frequency", what="images")
    radius = kernel_size // 2
    for size in shape[1:3]:
        if size is not None and size <= radius:
            raise ValueError(
                f"high_frequency: H and W must exceed kernel_size // 2 = {radius}, got {shape}."
            )
    x = ops.cast(images, "float32")
    if kernel_size == 1:
        return ops.zeros_like(x)
    channels = shape[-1]
    taps = ops.convert_to_tensor(taps, dtype="float32")
    vertical = ops.broadcast_to(
        ops.reshape(taps, (kernel_size, 1, 1, 1)), (kernel_size, 1, channels, 1)
    )
    horizontal = ops.reshape(vertical, (1, kernel_size, channels, 1))
    padded = ops.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="reflect")
    blurred = ops.depthwise_conv(padded, vertical, padding="valid")
    blurred = ops.depthwise_conv(blurred, horizontal, padding="valid")
    return x - blurred


def masked_blend(color, mask, images):
    """GANimation's output composition A * C + (1 - A) * x, float32 [N,H,W,C].

    Pumarola et al., ECCV 2018 (also used by HiSD and PA-GAN): where the attention mask A
    is 0 the input pixel is copied unchanged, so G only has to render the regions it edits.

    Args:
        color: C [N,H,W,C]; mask: A [N,H,W,1] in [0, 1]; images: x [N,H,W,C].
    """
    color_shape = _check_feature_map(color.shape, layer="masked_blend", what="color")
    mask_shape = _check_feature_map(mask.shape, layer="masked_blend", what="mask")
    images_shape = _check_feature_map(images.shape, layer="masked_blend", what="images")
    if mask_shape[-1] != 1 or not _compatible(color_shape, images_shape):
        raise ValueError(
            f"masked_blend: expects color [N,H,W,C], mask [N,H,W,1] and images [N,H,W,C], got "
            f"{color_shape}, {mask_shape} and {images_shape}."
        )
    if not _compatible(color_shape[:3], mask_shape[:3]):
        raise ValueError(
            f"masked_blend: mask {mask_shape} does not match color {color_shape} in N, H, W."
        )
    a = ops.cast(mask, "float32")
    return a * ops.cast(color, "float32") + (1.0 - a) * ops.cast(images, "float32")


def _compatible(a: tuple, b: tuple) -> bool:
    """Same rank and equal wherever both dimensions are known."""
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b, strict=True)
    )


def _check_skip(x_shape, skip_shape, *, filters: int, layer: str) -> tuple:
    """Validates decoder features x [N,H,W,filters] against encoder features skip [N,H,W,Cs]."""
    x_shape = _check_feature_map(x_shape, layer=layer, what="x")
    skip_shape = _check_feature_map(skip_shape, layer=layer, what="skip")
    if x_shape[-1] != filters:
        raise ValueError(f"{layer}: x has {x_shape[-1]} channels but filters={filters}.")
    if not _compatible(x_shape[:3], skip_shape[:3]):
        raise ValueError(f"{layer}: x {x_shape} and skip {skip_shape} must match in N, H and W.")
    return x_shape, skip_shape


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConcatSkip(keras.layers.Layer):
    """Plain encoder->decoder skip: conv1x1(concat(x, skip)) -> [N,H,W,F] (AttGAN).

    AttGAN (He et al., TIP 2019) concatenates encoder features into the decoder at the same
    resolution so identity detail need not pass through the bottleneck. The 1x1 conv
    (no bias: an instance norm or the biased to_rgb conv follows) brings the width back to
    the decoder's F; since the next decoder conv is linear too, this equals AttGAN's
    concatenation feeding the next layer directly, at a fixed width.

    Call:
        inputs: `[x, skip]`, x [N,H,W,F] decoder features, skip [N,H,W,Cs] encoder features.
    Args:
        filters: F.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        if filters <= 0:
            raise ValueError(f"ConcatSkip: `filters` must be positive, got {filters}.")
        self.filters = int(filters)
        self.fuse = _conv(self.filters, 1, use_bias=False, name="fuse")

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self.name}: expects inputs [x, skip], got {len(input_shape)}.")
        x_shape, skip_shape = _check_skip(*input_shape, filters=self.filters, layer=self.name)
        build_once(self.fuse, x_shape[:3] + (x_shape[-1] + skip_shape[-1],))

    def call(self, inputs):
        x, skip = inputs
        _check_skip(x.shape, skip.shape, filters=self.filters, layer=self.name)
        return self.fuse(ops.concatenate([x, ops.cast(skip, x.dtype)], axis=-1))

    def compute_output_shape(self, input_shape):
        return _as_shape(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GatedSkip(keras.layers.Layer):
    """Condition-gated skip, a simplified STGAN selective transfer unit -> [N,H,W,F].

        g   = sigmoid(conv1x1(concat(x, skip)) + dense(s))      [N,H,W,F]
        out = x + g * conv1x1(skip)

    STGAN (Liu et al., CVPR 2019) replaces AttGAN's plain skips by selective transfer units:
    a GRU-like cell that runs from the deepest to the shallowest level, carrying a hidden
    state (upsampled by a transposed conv) and the target-minus-source attribute vector,
    with reset and update gates and a tanh candidate. Implemented here: one independent
    update-style gate per level, computed from the decoder state x, the encoder feature
    skip and the target condition s (we have no source attribute vector), that decides per
    pixel and channel how much of the projected encoder feature is added to the decoder.
    No recurrent state across levels, no reset gate, no tanh candidate.

    The gate conv has a bias (zero-initialised: g starts near 0.5); the condition Dense and
    the projection conv have none.

    Call:
        inputs: `[x, skip, condition]`, x [N,H,W,F], skip [N,H,W,Cs], condition [N,D].
    Args:
        filters: F.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        if filters <= 0:
            raise ValueError(f"GatedSkip: `filters` must be positive, got {filters}.")
        self.filters = int(filters)
        self.gate = _conv(self.filters, 1, use_bias=True, name="gate")
        self.gate_condition = keras.layers.Dense(
            self.filters, use_bias=False, name="gate_condition"
        )
        self.project = _conv(self.filters, 1, use_bias=False, name="project")

    def _check(self, shapes) -> tuple:
        if len(shapes) != 3:
            raise ValueError(
                f"{self.name}: expects inputs [x, skip, condition], got {len(shapes)} inputs."
            )
        x_shape, skip_shape = _check_skip(
            shapes[0], shapes[1], filters=self.filters, layer=self.name
        )
        cond_shape = _as_shape(shapes[2])
        if len(cond_shape) != 2 or cond_shape[-1] is None:
            raise ValueError(f"{self.name}: condition must be [N, D], got {cond_shape}.")
        return x_shape, skip_shape, cond_shape

    def build(self, input_shape):
        x_shape, skip_shape, cond_shape = self._check(input_shape)
        build_once(self.gate, x_shape[:3] + (x_shape[-1] + skip_shape[-1],))
        build_once(self.gate_condition, cond_shape)
        build_once(self.project, skip_shape)

    def call(self, inputs):
        self._check([t.shape for t in inputs])
        x, skip, condition = inputs
        skip = ops.cast(skip, x.dtype)
        logits = self.gate(ops.concatenate([x, skip], axis=-1))
        bias = self.gate_condition(ops.cast(condition, x.dtype))
        gate = ops.sigmoid(
            logits + ops.cast(ops.expand_dims(ops.expand_dims(bias, 1), 1), logits.dtype)
        )
        return x + gate * self.project(skip)

    def compute_output_shape(self, input_shape):
        return _as_shape(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}
