"""XploreGAN losses (paper §2.3, DESIGN.md §3): pure functions with documented shapes.

Objectives, with c the image's pseudo-label (source cluster) and t the target cluster:

    L_D = -E[D_src(x)] + E[D_src(G(x,s_t))] + lambda_gp * GP + lambda_cls * CE(D_cls(x), c)
    L_G = -E[D_src(G(x,s_t))] + lambda_cls * CE(D_cls(G(x,s_t)), t)
          + lambda_rec * |x - G(G(x,s_t), s_c)|_1 + lambda_lat * ||h(x) - h(G(x,s_t))||_2^2
          [+ lambda_self * |x - G(x,s_c)|_1 + lambda_mask * L_A(A)
           + lambda_chroma * (C(x, G(G(x,s_t), s_c)) + C(x, G(x,s_c)))]   (optional, default off)

With gan_loss="r1" the two adversarial terms are the non-saturating logistic loss instead,
E[softplus(-D_src(x))] + E[softplus(D_src(G(x,s_t)))] for D and E[softplus(-D_src(G(x,s_t)))]
for G, and GP is the R1 penalty on real images (StyleGAN2, StarGAN v2).

The optional terms serve the identity-preserving generator options: the self-reconstruction
loss of FUNIT/TUNIT and an attention-mask regulariser L_A for output_mode="masked" (an area
sparsity term, or GANimation's, which penalises the opposite area: `mask_loss`), and a
low-resolution colour term C on the reconstructions (`chroma_loss`) against colour casts
that the per-pixel L1 weighs too lightly.

Batch reduction. Every term is first reduced to one value per sample (the mean over the
patch map for critic scores, over all pixels/channels for L1, over all feature elements for
the latent loss), then over the batch:

- `global_batch_size=None`: the mean over the local batch;
- `global_batch_size=B`: sum over the local batch / B. Under `tf.distribute` each replica
  computes its share this way, so the replicas' losses (and gradients) *sum* to the
  global-batch mean — the scaling `MirroredStrategy` custom loops need (DESIGN.md §4).

All functions except `gradient_penalty` and `r1_penalty` use `keras.ops` only. These two
need the gradient of the critic with respect to its input, so they are the TensorFlow-specific
losses (`tf.GradientTape`). Values are computed in float32 whatever the inputs' dtype.

Loss weights default to StarGAN's (lambda_cls=1, lambda_gp=10, lambda_rec=10); the paper
does not state its values. lambda_lat=10 is our default (no StarGAN counterpart; DESIGN.md §3).
lambda_self, lambda_mask and lambda_chroma default to 0 (off); GANimation uses lambda_A = 0.1
for the mask.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

# "wgan_gp": WGAN-GP (paper §2.3); "r1": the non-saturating loss with the R1 penalty
GAN_LOSSES = ("wgan_gp", "r1")
LAMBDA_CLS = 1.0
LAMBDA_GP = 10.0
LAMBDA_REC = 10.0
LAMBDA_LAT = 10.0
# GANimation's lambda_TV = 1e-4 weights a *sum* of squared neighbour differences over its
# 128 x 128 masks (127 * 128 vertical and as many horizontal pairs). `mask_loss` averages
# each direction instead (resolution independent), so the same weighting relative to the
# mean(A) sparsity term is 1e-4 * 127 * 128 = 1.6256.
LAMBDA_TV = 1e-4 * 127 * 128
# ITU-R BT.601's blue- and red-difference rows (Cb, Cr) of RGB: the colour without the luma.
CHROMA_ROWS = (
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
CHROMA_POOL = 4


def _per_sample_mean(x):
    """[N, ...] -> [N]: float32 mean over all non-batch axes ([N] stays as is)."""
    x = ops.cast(x, "float32")
    if len(x.shape) == 0:
        raise ValueError("expected a batched tensor [N, ...], got a scalar.")
    if len(x.shape) == 1:
        return x
    return ops.mean(x, axis=tuple(range(1, len(x.shape))))


def reduce_batch(per_sample, *, global_batch_size: int | None = None):
    """[N] -> scalar: mean over the batch, or sum / global_batch_size when it is given."""
    per_sample = ops.cast(per_sample, "float32")
    if len(per_sample.shape) != 1:
        raise ValueError(f"expected per-sample values [N], got shape {tuple(per_sample.shape)}.")
    if global_batch_size is None:
        return ops.mean(per_sample)
    if global_batch_size <= 0:
        raise ValueError(f"`global_batch_size` must be positive, got {global_batch_size}.")
    return ops.sum(per_sample) / float(global_batch_size)


def _check_same_shape(a, b, *, names: str) -> None:
    if tuple(a.shape) != tuple(b.shape) and None not in (*a.shape, *b.shape):
        raise ValueError(
            f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}."
        )


def wasserstein_discriminator_loss(
    real_scores, fake_scores, *, global_batch_size: int | None = None
):
    """-E[D(x)] + E[D(G(x))] (WGAN critic loss, paper §2.3).

    Args:
        real_scores: critic scores of real images, [N] or a patch map [N, h, w, 1].
        fake_scores: same for translated images.
    Returns:
        scalar float32.
    """
    real = reduce_batch(_per_sample_mean(real_scores), global_batch_size=global_batch_size)
    fake = reduce_batch(_per_sample_mean(fake_scores), global_batch_size=global_batch_size)
    return fake - real


def wasserstein_generator_loss(fake_scores, *, global_batch_size: int | None = None):
    """-E[D(G(x))] (WGAN generator loss, paper §2.3). fake_scores: [N] or [N, h, w, 1]."""
    return -reduce_batch(_per_sample_mean(fake_scores), global_batch_size=global_batch_size)


def nonsaturating_discriminator_loss(
    real_scores, fake_scores, *, global_batch_size: int | None = None
):
    """E[softplus(-D(x))] + E[softplus(D(G(x)))]: the non-saturating logistic GAN loss
    (Goodfellow et al. 2014) as StyleGAN2 and StarGAN v2 train with it. Scores are logits,
    [N] or a patch map [N, h, w, 1] (softplus per patch, then the patch mean). Scalar float32."""
    real = _per_sample_mean(ops.softplus(-ops.cast(real_scores, "float32")))
    fake = _per_sample_mean(ops.softplus(ops.cast(fake_scores, "float32")))
    return reduce_batch(real + fake, global_batch_size=global_batch_size)


def nonsaturating_generator_loss(fake_scores, *, global_batch_size: int | None = None):
    """E[softplus(-D(G(x)))] (the non-saturating G loss). fake_scores: [N] or [N, h, w, 1]."""
    fake = _per_sample_mean(ops.softplus(-ops.cast(fake_scores, "float32")))
    return reduce_batch(fake, global_batch_size=global_batch_size)


def adversarial_losses(gan_loss: str):
    """(D's, G's) adversarial loss functions of `gan_loss` (one of `GAN_LOSSES`)."""
    if gan_loss == "wgan_gp":
        return wasserstein_discriminator_loss, wasserstein_generator_loss
    if gan_loss == "r1":
        return nonsaturating_discriminator_loss, nonsaturating_generator_loss
    raise ValueError(f"`gan_loss` must be one of {GAN_LOSSES}, got {gan_loss!r}.")


def sample_interpolation_weights(batch_size, *, ndim: int = 4, seed=None):
    """alpha ~ U(0, 1), one per sample, shape [N, 1, ..., 1] (rank `ndim`), float32.

    `seed`: an int, a `keras.random.SeedGenerator` or None (Keras' global generator).
    """
    return keras.random.uniform((batch_size,) + (1,) * (ndim - 1), dtype="float32", seed=seed)


def gradient_penalty(
    critic_fn,
    real,
    fake,
    alpha,
    *,
    epsilon: float = 1e-10,
    global_batch_size: int | None = None,
):
    """WGAN-GP penalty E[(||grad_x_hat D(x_hat)||_2 - 1)^2] (Gulrajani et al.; paper §2.3).

    x_hat = alpha * real + (1 - alpha) * fake with one alpha per sample. The gradient is that
    of the *sum* of the critic's output over the patch map (as StarGAN's `gradient_penalty`
    does with `grad_outputs=ones`); its norm is taken per sample over all non-batch axes,
    with `epsilon` inside the square root so the gradient of the norm is finite at 0
    (TF-GAN `wasserstein_gradient_penalty`).

    TensorFlow-specific (`tf.GradientTape`). Call it inside the outer tape of the D step so
    the penalty's gradient reaches D's weights (double backprop).

    Args:
        critic_fn: images [N, H, W, C] -> critic scores [N, ...] (D's `src` output).
        real, fake: [N, H, W, C]. `fake` should be a constant for D (no gradient into G).
        alpha: [N] or [N, 1, 1, 1] mixing weights in [0, 1]; see
            `sample_interpolation_weights`.
    Returns:
        scalar float32.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    _check_same_shape(real, fake, names="`real` and `fake`")
    rank = len(real.shape)
    alpha = tf.cast(alpha, tf.float32)
    if len(alpha.shape) == 1:
        alpha = tf.reshape(alpha, [-1] + [1] * (rank - 1))
    if len(alpha.shape) != rank or any(d not in (1, None) for d in alpha.shape[1:]):
        raise ValueError(
            f"`alpha` must have shape [N] or [N{', 1' * (rank - 1)}] (one weight per sample), "
            f"got {tuple(alpha.shape)}."
        )
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic_fn(x_hat)
        total = tf.reduce_sum(tf.cast(scores, tf.float32))
    grads = tape.gradient(total, x_hat)
    if grads is None:
        raise ValueError("gradient_penalty: the critic's output does not depend on its input.")
    grads = tf.cast(grads, tf.float32)
    squared = tf.reduce_sum(tf.square(grads), axis=list(range(1, rank)))
    norms = tf.sqrt(squared + epsilon)
    return reduce_batch(tf.square(norms - 1.0), global_batch_size=global_batch_size)


def r1_penalty(critic_fn, real, *, global_batch_size: int | None = None):
    """R1 = 0.5 * E[||grad_x D(x)||^2] on real images (Mescheder et al., "Which Training
    Methods for GANs do actually Converge?", ICML 2018; StyleGAN2 and StarGAN v2 weigh it by
    gamma / 2 with the 0.5 here, StarGAN v2's gamma being 1). The gradient is that of the sum
    of the critic's patch map, its squared norm taken per sample over all non-batch axes.

    TensorFlow-specific, like `gradient_penalty`: call it inside the outer tape of the D step.

    Args:
        critic_fn: images [N, H, W, C] -> critic logits [N, ...] (D's `src` output).
        real: [N, H, W, C].
    Returns:
        scalar float32.
    """
    real = tf.cast(real, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(tf.cast(critic_fn(real), tf.float32))
    grads = tape.gradient(total, real)
    if grads is None:
        raise ValueError("r1_penalty: the critic's output does not depend on its input.")
    squared = tf.reduce_sum(
        tf.square(tf.cast(grads, tf.float32)), axis=list(range(1, len(real.shape)))
    )
    return reduce_batch(0.5 * squared, global_batch_size=global_batch_size)


def cluster_classification_loss(
    logits, labels, *, candidates=None, global_batch_size: int | None = None
):
    """Softmax cross-entropy of cluster logits [N, k] against the target clusters (paper §2.3).

    D is trained on real images with their pseudo-labels c, G on translated images with the
    target clusters t. `labels` is either int cluster ids [N]; or, for blended targets
    (`--blend_prob`), a distribution over the clusters, float [N, k] with rows summing to 1:
    the loss is then -sum_j p_j log softmax(logits)_j (soft-label cross-entropy); or a group
    of clusters credited as one, bool [N, k] (`--cls_credit_neighbors`: t and its nearest
    clusters): the loss is then -log sum_{j credited} softmax(logits)_j, so any member of the
    group satisfies it (the likelihood of learning with multiple candidate labels, Jin and
    Ghahramani 2002).
    `candidates`, optional bool [N, k], restricts each row's softmax to its True clusters
    (`--cls_neighbors`: t and its nearest clusters); the label's cluster (for a credited
    group, at least one of its clusters) must be one of them: this is not checked, and a row
    without one gets a loss of about 1e9.
    """
    logits = ops.cast(logits, "float32")
    if len(logits.shape) != 2:
        raise ValueError(f"`logits` must have shape [N, k], got {tuple(logits.shape)}.")
    if candidates is not None:
        _check_same_shape(logits, candidates, names="`logits` and `candidates`")
        logits = ops.where(candidates, logits, -1e9)
    if len(labels.shape) == 2 and keras.backend.standardize_dtype(labels.dtype) == "bool":
        _check_same_shape(logits, labels, names="`logits` and credited `labels`")
        credited = ops.where(labels, logits, -1e9)
        per_sample = ops.logsumexp(logits, axis=-1) - ops.logsumexp(credited, axis=-1)
        return reduce_batch(per_sample, global_batch_size=global_batch_size)
    if len(labels.shape) == 2:
        _check_same_shape(logits, labels, names="`logits` and soft `labels`")
        per_sample = ops.categorical_crossentropy(
            ops.cast(labels, "float32"), logits, from_logits=True
        )
        return reduce_batch(per_sample, global_batch_size=global_batch_size)
    labels = ops.cast(labels, "int32")
    if len(labels.shape) != 1:
        raise ValueError(f"`labels` must have shape [N] or [N, k], got {tuple(labels.shape)}.")
    per_sample = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return reduce_batch(per_sample, global_batch_size=global_batch_size)


def cycle_reconstruction_loss(images, reconstructed, *, global_batch_size: int | None = None):
    """Mean absolute error |x - G(G(x, s_t), s_c)| (L1 cycle loss, paper §2.3).

    Args:
        images, reconstructed: [N, H, W, C]. Mean over all elements per sample, then batch.
    """
    _check_same_shape(images, reconstructed, names="`images` and `reconstructed`")
    diff = ops.abs(ops.cast(images, "float32") - ops.cast(reconstructed, "float32"))
    return reduce_batch(_per_sample_mean(diff), global_batch_size=global_batch_size)


def self_reconstruction_loss(images, reconstructed, *, global_batch_size: int | None = None):
    """Mean absolute error |x - G(x, s_own)| (self-reconstruction, FUNIT / TUNIT).

    G translating an image to its own cluster's condition must return the image unchanged
    (Liu et al. ICCV 2019; Baek et al. ICCV 2021), a direct identity constraint without the
    detour of the cycle. The same L1 as `cycle_reconstruction_loss`.

    Args:
        images: x [N, H, W, C]; reconstructed: G(x, s_c) [N, H, W, C].
    """
    return cycle_reconstruction_loss(images, reconstructed, global_batch_size=global_batch_size)


def chroma_loss(images, reconstructed, *, pool: int = CHROMA_POOL, global_batch_size=None):
    """Mean |Cb, Cr of avg_pool(x) - Cb, Cr of avg_pool(y)|: a colour term at low resolution.

    The per-pixel L1 of the reconstruction losses weighs a colour cast over a patch of skin
    (a green cheek, a purple lip) like a few pixels of misplaced edge: little. This term
    compares only the chroma (ITU-R BT.601 Cb and Cr, `CHROMA_ROWS`; luma and its edges
    are left to the L1) of `pool` x `pool` block means, where fine detail has cancelled out.

    Args:
        images, reconstructed: [N, H, W, 3] RGB in the same range; H and W divisible by
            `pool`.
        pool: the block side in pixels (4: a 64 px face is compared on a 16 x 16 grid).
    Returns:
        scalar float32 (`reduce_batch` of the per-sample mean over the grid and both
        chroma channels).
    Raises:
        ValueError: shapes differ, there are not 3 channels, or H, W are not divisible by
            `pool`.
    """
    _check_same_shape(images, reconstructed, names="`images` and `reconstructed`")
    height, width, channels = images.shape[1:]
    if channels != 3 or height % pool or width % pool:
        raise ValueError(
            f"chroma_loss needs [N, H, W, 3] with H and W divisible by pool={pool}; "
            f"got {tuple(images.shape)}."
        )
    rows = ops.convert_to_tensor(CHROMA_ROWS, "float32")

    def chroma(x):
        blocks = ops.average_pool(ops.cast(x, "float32"), pool, strides=pool, padding="valid")
        return ops.einsum("nhwc,kc->nhwk", blocks, rows)

    diff = ops.abs(chroma(images) - chroma(reconstructed))
    return reduce_batch(_per_sample_mean(diff), global_batch_size=global_batch_size)


MASK_PENALTIES = ("edit", "keep")


def mask_loss(
    mask,
    *,
    penalty: str = "edit",
    lambda_tv: float = LAMBDA_TV,
    global_batch_size: int | None = None,
):
    """Attention-mask regulariser: a mean term plus smoothness, for the blend A*C + (1-A)*x.

    Per sample, the mean term is

    - penalty="edit": mean(A), the share of the image that is re-synthesised. It pushes the
      mask to edit little (the sparsity loss of Attention-GAN, Chen et al. ECCV 2018). The
      cycle and self-reconstruction losses pull the same way, and at 64 px the three closed
      the mask entirely (docs/experiments/2026-12-02-identity.md).
    - penalty="keep": mean(1 - A), the share copied from the input. This is GANimation's
      regulariser (Pumarola et al. ECCV 2018, eq. 1 and §4.1). GANimation's mask weights the
      *input* (I_out = (1-M)*C + M*x) and it penalises mean(M) because "the masks saturate
      to 1, which makes the generator have no effect"; our A = 1 - M, so its term is
      mean(1 - A) here.

    The smoothness term is

        TV(A) = mean_ij (A[i+1,j] - A[i,j])^2 + mean_ij (A[i,j+1] - A[i,j])^2,

    GANimation's squared neighbour differences (paper eq.; its code uses absolute ones)
    averaged per direction instead of summed. The outer weight lambda_A is
    `generator_loss(lambda_mask=...)`.

    Args:
        mask: A [N, H, W, 1] in [0, 1], H, W >= 2.
        penalty: "edit" or "keep" (above).
        lambda_tv: GANimation's lambda_TV in our mean normalisation (see `LAMBDA_TV`).
    Returns:
        scalar float32.
    Raises:
        ValueError: a mask of another shape, or an unknown `penalty`.
    """
    if penalty not in MASK_PENALTIES:
        raise ValueError(f"`penalty` must be one of {MASK_PENALTIES}, got {penalty!r}.")
    mask = ops.cast(mask, "float32")
    shape = tuple(mask.shape)
    if len(shape) != 4 or shape[-1] != 1 or any(d is not None and d < 2 for d in shape[1:3]):
        raise ValueError(f"`mask` must have shape [N, H, W, 1] with H, W >= 2, got {shape}.")
    vertical = ops.square(mask[:, 1:, :, :] - mask[:, :-1, :, :])
    horizontal = ops.square(mask[:, :, 1:, :] - mask[:, :, :-1, :])
    smoothness = _per_sample_mean(vertical) + _per_sample_mean(horizontal)
    area = _per_sample_mean(mask if penalty == "edit" else 1.0 - mask)
    per_sample = area + lambda_tv * smoothness
    return reduce_batch(per_sample, global_batch_size=global_batch_size)


def latent_loss(h_real, h_fake, *, global_batch_size: int | None = None):
    """Squared L2 distance of encoder features, ||h(x) - h(G(x, s_t))||^2 (paper §2.3).

    Normalised as a mean over feature elements (mean squared error), not a sum, so its scale
    does not depend on the feature-map size. No gradient is stopped: both sides train G's
    encoder as in the paper's formulation.

    Args:
        h_real, h_fake: [N, h, w, C] encoder outputs.
    """
    _check_same_shape(h_real, h_fake, names="`h_real` and `h_fake`")
    diff = ops.square(ops.cast(h_real, "float32") - ops.cast(h_fake, "float32"))
    return reduce_batch(_per_sample_mean(diff), global_batch_size=global_batch_size)


def discriminator_loss(
    *,
    real_scores,
    fake_scores,
    real_logits,
    source_labels,
    penalty,
    lambda_cls: float = LAMBDA_CLS,
    lambda_gp: float = LAMBDA_GP,
    global_batch_size: int | None = None,
    gan_loss: str = "wgan_gp",
):
    """L_D = adv + lambda_gp * gp + lambda_cls * cls; returns (total, unweighted terms).

    Args:
        real_scores, fake_scores: D's patch maps [N, h, w, 1] on real and translated images.
        real_logits: D's cluster logits on real images [N, k].
        source_labels: the real images' pseudo-labels c [N].
        penalty: the scalar from `gradient_penalty` ("wgan_gp") or `r1_penalty` ("r1"),
            already batch-reduced with the same `global_batch_size`.
        gan_loss: one of `GAN_LOSSES`: which adversarial loss (`adversarial_losses`).
    Returns:
        (total scalar, {"D/adv", "D/gp", "D/cls"} unweighted scalars).
    """
    d_adv, _ = adversarial_losses(gan_loss)
    terms = {
        "D/adv": d_adv(real_scores, fake_scores, global_batch_size=global_batch_size),
        "D/gp": ops.cast(penalty, "float32"),
        "D/cls": cluster_classification_loss(
            real_logits, source_labels, global_batch_size=global_batch_size
        ),
    }
    total = terms["D/adv"] + lambda_gp * terms["D/gp"] + lambda_cls * terms["D/cls"]
    return total, terms


def generator_loss(
    *,
    fake_scores,
    fake_logits,
    target_labels,
    images,
    reconstructed,
    h_real,
    h_fake,
    lambda_cls: float = LAMBDA_CLS,
    lambda_rec: float = LAMBDA_REC,
    lambda_lat: float = LAMBDA_LAT,
    global_batch_size: int | None = None,
    self_reconstructed=None,
    lambda_self: float = 0.0,
    mask=None,
    lambda_mask: float = 0.0,
    mask_penalty: str = "edit",
    lambda_tv: float = LAMBDA_TV,
    gan_loss: str = "wgan_gp",
    lambda_chroma: float = 0.0,
    cls_candidates=None,
    cls_second=None,
):
    """L_G = adv + lambda_cls * cls + lambda_rec * rec + lambda_lat * lat
    [+ lambda_self * self] [+ lambda_mask * mask] [+ lambda_chroma * chroma];
    returns (total, terms).

    Args:
        fake_scores: D's patch map on G(x, s_t) [N, h, w, 1].
        fake_logits: D's cluster logits on G(x, s_t) [N, k].
        target_labels: target clusters t [N], a distribution over clusters [N, k] for
            blended targets, or bool [N, k] for credited groups (`cluster_classification_loss`).
        images: x [N, H, W, 3]; reconstructed: G(G(x, s_t), s_c) [N, H, W, 3].
        h_real: h(x); h_fake: h(G(x, s_t)); both [N, H/4, W/4, C].
        self_reconstructed: optional G(x, s_c) [N, H, W, 3] (`self_reconstruction_loss`),
            weighted lambda_self (default 0).
        mask: optional attention mask A [N, H, W, 1] (`mask_loss`), or a list of masks
            whose losses are summed (GANimation regularises the masks of both the
            translation and the reconstruction).
        lambda_mask: GANimation's lambda_A (default 0; the paper uses 0.1).
        mask_penalty, lambda_tv: passed to `mask_loss` (`penalty`, `lambda_tv`).
        gan_loss: one of `GAN_LOSSES`: which adversarial loss (`adversarial_losses`).
        lambda_chroma: weight of `chroma_loss` on the cycle reconstruction plus, when given,
            on `self_reconstructed` (default 0: not computed).
        cls_candidates: optional bool [N, k], the clusters each row's classification softmax
            is taken over (`cluster_classification_loss`'s `candidates`; default all k).
        cls_second: optional (labels, candidates): a second target's, added to "G/cls".
    Returns:
        (total scalar, {"G/adv", "G/cls", "G/rec", "G/lat"} unweighted scalars, plus
        "G/self" when `self_reconstructed` is given, "G/mask" when `mask` is given and
        "G/chroma" when `lambda_chroma` is set).
    """
    if lambda_self and self_reconstructed is None:
        raise ValueError("`lambda_self` is set but `self_reconstructed` is None.")
    if lambda_mask and mask is None:
        raise ValueError("`lambda_mask` is set but `mask` is None.")
    _, g_adv = adversarial_losses(gan_loss)
    batch = {"global_batch_size": global_batch_size}
    pairs = [(target_labels, cls_candidates)] + ([cls_second] if cls_second else [])
    cls = sum(cluster_classification_loss(fake_logits, y, candidates=m, **batch) for y, m in pairs)
    weighted = {  # name: (weight, unweighted term)
        "G/adv": (1.0, g_adv(fake_scores, **batch)),
        "G/cls": (lambda_cls, cls),
        "G/rec": (lambda_rec, cycle_reconstruction_loss(images, reconstructed, **batch)),
        "G/lat": (lambda_lat, latent_loss(h_real, h_fake, **batch)),
    }
    if self_reconstructed is not None:
        own = self_reconstruction_loss(images, self_reconstructed, **batch)
        weighted["G/self"] = (lambda_self, own)
    if mask is not None:
        masks = _masks_loss(mask, mask_penalty, lambda_tv, global_batch_size)
        weighted["G/mask"] = (lambda_mask, masks)
    if lambda_chroma:
        outputs = [reconstructed] + ([] if self_reconstructed is None else [self_reconstructed])
        chroma = sum(chroma_loss(images, y, **batch) for y in outputs)
        weighted["G/chroma"] = (lambda_chroma, chroma)
    total = sum(weight * term for weight, term in weighted.values())
    return total, {name: term for name, (_, term) in weighted.items()}


def _masks_loss(mask, penalty: str, lambda_tv: float, global_batch_size: int | None):
    """`mask_loss` of one mask, or the sum over a list of them."""
    masks = mask if isinstance(mask, (list, tuple)) else [mask]
    if not masks:
        raise ValueError("`mask` must be a tensor or a non-empty list of tensors.")
    return sum(
        mask_loss(m, penalty=penalty, lambda_tv=lambda_tv, global_batch_size=global_batch_size)
        for m in masks
    )
