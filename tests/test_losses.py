"""Golden-value tests of xplore_tf.losses (hand-computed expectations in the comments)."""

from __future__ import annotations

import functools
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplore_tf import losses  # noqa: E402

# Patch maps [2, 2, 2, 1]: per-sample means real = (1, 2.5), fake = (0.5, -1.5).
REAL = np.array([[1, 1, 1, 1], [1, 2, 3, 4]], "float32").reshape(2, 2, 2, 1)
FAKE = np.array([[0.5, 0.5, 0.5, 0.5], [-3, 0, -3, 0]], "float32").reshape(2, 2, 2, 1)


def test_wasserstein_losses():
    # -mean(1, 2.5) + mean(0.5, -1.5) = -1.75 - 0.5
    assert float(losses.wasserstein_discriminator_loss(REAL, FAKE)) == pytest.approx(-2.25)
    # -mean(0.5, -1.5) = 0.5
    assert float(losses.wasserstein_generator_loss(FAKE)) == pytest.approx(0.5)
    # Flat [N] scores work as well.
    assert float(losses.wasserstein_generator_loss(np.array([1.0, 3.0]))) == pytest.approx(-2.0)


def _softplus(v):
    return math.log1p(math.exp(v))


def test_nonsaturating_losses():
    # Per-patch softplus, then the patch mean, then the batch mean.
    real = (_softplus(-1), (_softplus(-1) + _softplus(-2) + _softplus(-3) + _softplus(-4)) / 4)
    fake = (_softplus(0.5), (2 * _softplus(-3) + 2 * _softplus(0)) / 4)
    d = losses.nonsaturating_discriminator_loss(REAL, FAKE)
    assert float(d) == pytest.approx((sum(real) + sum(fake)) / 2, rel=1e-6)
    g = losses.nonsaturating_generator_loss(FAKE)
    assert float(g) == pytest.approx(
        (_softplus(-0.5) + (2 * _softplus(3) + 2 * _softplus(0)) / 4) / 2
    )
    # Undecided logits (0): D pays 2 ln 2, G ln 2.
    zeros = np.zeros(4, "float32")
    assert float(losses.nonsaturating_discriminator_loss(zeros, zeros)) == pytest.approx(
        2 * math.log(2)
    )
    assert float(losses.nonsaturating_generator_loss(zeros)) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="gan_loss"):
        losses.adversarial_losses("hinge")


def test_global_batch_size_divides_the_local_sum():
    # Local batch of 2 out of a global batch of 4: (-(1 + 2.5) + (0.5 - 1.5)) / 4.
    value = losses.wasserstein_discriminator_loss(REAL, FAKE, global_batch_size=4)
    assert float(value) == pytest.approx(-4.5 / 4)
    with pytest.raises(ValueError, match="global_batch_size"):
        losses.wasserstein_generator_loss(FAKE, global_batch_size=0)


def test_cluster_classification_loss():
    # Sample 0: uniform over 3 -> ln 3. Sample 1: softmax([0, ln 3])[1] = 3/4 -> ln(4/3).
    logits = np.array([[0.0, 0.0, 0.0], [0.0, math.log(3.0), -1e9]], "float32")
    labels = np.array([1, 1])
    value = losses.cluster_classification_loss(logits, labels)
    assert float(value) == pytest.approx((math.log(3) + math.log(4 / 3)) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="labels"):
        losses.cluster_classification_loss(logits, labels[:, None])


def test_cluster_classification_loss_over_candidate_clusters():
    # Sample 0's softmax over clusters {0, 1} of logits [0, ln 3, 5]: 3/4 -> ln(4/3); sample
    # 1's over {1, 2} of [9, 0, 0]: 1/2 -> ln 2. Cluster 0's logit no longer counts.
    logits = np.array([[0.0, math.log(3.0), 5.0], [9.0, 0.0, 0.0]], "float32")
    candidates = np.array([[True, True, False], [False, True, True]])
    value = losses.cluster_classification_loss(logits, np.array([1, 2]), candidates=candidates)
    assert float(value) == pytest.approx((math.log(4 / 3) + math.log(2)) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="candidates"):
        losses.cluster_classification_loss(logits, np.array([1, 2]), candidates=candidates[:1])


def test_cluster_classification_loss_credits_a_group_of_clusters_as_one():
    # Sample 0 credits {0, 1} of softmax [1/4, 1/4, 1/2]: -ln(1/2) = ln 2. Sample 1 credits
    # {1, 2} of softmax over candidates {1, 2} of [0, ln 3, 9]: all of it -> 0.
    logits = np.array([[0.0, 0.0, math.log(2.0)], [0.0, math.log(3.0), 9.0]], "float32")
    credited = np.array([[True, True, False], [False, True, True]])
    candidates = np.array([[True, True, True], [False, True, True]])
    value = losses.cluster_classification_loss(logits, credited, candidates=candidates)
    assert float(value) == pytest.approx(math.log(2) / 2, rel=1e-6)
    # A group of one is the hard label.
    hard = np.array([2, 1])
    assert float(
        losses.cluster_classification_loss(logits, np.eye(3, dtype=bool)[hard])
    ) == pytest.approx(float(losses.cluster_classification_loss(logits, hard)), rel=1e-6)
    with pytest.raises(ValueError, match="credited"):
        losses.cluster_classification_loss(logits, credited[:, :2])


def test_cluster_classification_loss_with_soft_labels():
    # Half on cluster 0, half on 1: sample 0 (uniform over 3) -> ln 3; sample 1
    # (softmax [1/4, 3/4, 0]) -> (ln 4 + ln(4/3)) / 2.
    logits = np.array([[0.0, 0.0, 0.0], [0.0, math.log(3.0), -1e9]], "float32")
    soft = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], "float32")
    expected = (math.log(3) + (math.log(4) + math.log(4 / 3)) / 2) / 2
    assert float(losses.cluster_classification_loss(logits, soft)) == pytest.approx(expected)
    # One-hot rows are the hard labels.
    hard = np.array([1, 1])
    assert float(
        losses.cluster_classification_loss(logits, np.eye(3, dtype="float32")[hard])
    ) == pytest.approx(float(losses.cluster_classification_loss(logits, hard)), rel=1e-6)


def test_cycle_reconstruction_loss_is_mean_absolute_error():
    x = np.zeros((2, 2, 2, 1), "float32")
    rec = np.array([1, -1, 2, 0, 0, 0, 0, -4], "float32").reshape(2, 2, 2, 1)
    assert float(losses.cycle_reconstruction_loss(x, rec)) == pytest.approx(8 / 8)
    with pytest.raises(ValueError, match="same shape"):
        losses.cycle_reconstruction_loss(x, rec[:, :1])


def test_self_reconstruction_loss_is_the_same_l1():
    x = np.zeros((2, 2, 2, 1), "float32")
    rec = np.array([1, -1, 2, 0, 0, 0, 0, -4], "float32").reshape(2, 2, 2, 1)
    assert float(losses.self_reconstruction_loss(x, rec)) == pytest.approx(1.0)
    assert float(losses.self_reconstruction_loss(x, rec, global_batch_size=4)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same shape"):
        losses.self_reconstruction_loss(x, rec[:, :1])


# Masks [2, 2, 2, 1]. Sample 0: constant 0.5 -> mean 0.5, TV 0.
# Sample 1: rows [0, 1], [0, 1] -> mean 0.5; vertical differences (0, 0) -> 0;
# horizontal differences (1, 1) -> squared mean 1; TV = 0 + 1 = 1.
def test_chroma_loss_compares_block_means_of_cb_and_cr():
    x = np.zeros((2, 8, 8, 3), "float32")
    blue = x.copy()
    blue[..., 2] = 0.4  # Cb = 0.5 * 0.4 = 0.2, Cr = -0.081312 * 0.4
    assert float(losses.chroma_loss(x, blue)) == pytest.approx((0.2 + 0.4 * 0.081312) / 2)
    grey = np.zeros_like(x)
    grey[..., :] = np.linspace(-1, 1, 8, dtype="float32")[:, None, None]  # luma only
    assert float(losses.chroma_loss(x, grey)) == pytest.approx(0.0, abs=1e-6)
    # Red and green pixels that average to one colour in each 4 x 4 block: fine detail cancels.
    stripes = np.zeros_like(x)
    stripes[:, :, 0::2, 0] = 0.5
    stripes[:, :, 1::2, 1] = 0.5
    even = np.zeros_like(x)
    even[..., :2] = 0.25
    assert float(losses.chroma_loss(even, stripes)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.chroma_loss(even, stripes, pool=1)) > 0.1
    with pytest.raises(ValueError, match="divisible by pool=3"):
        losses.chroma_loss(x, x, pool=3)


MASK = np.array([[0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]], "float32").reshape(2, 2, 2, 1)


def test_mask_loss_is_sparsity_plus_weighted_smoothness():
    # lambda_tv = 0.5: per sample 0.5 and 0.5 + 0.5 * 1 = 1.0 -> mean 0.75.
    assert float(losses.mask_loss(MASK, lambda_tv=0.5)) == pytest.approx(0.75)
    assert float(losses.mask_loss(MASK, lambda_tv=0.0)) == pytest.approx(0.5)
    # Default lambda_TV = 1e-4 * 127 * 128 (GANimation's weight for its pixel sum at 128 px).
    assert losses.LAMBDA_TV == pytest.approx(1.6256)
    assert float(losses.mask_loss(MASK)) == pytest.approx(0.5 + 1.6256 / 2)
    # A single sample of a batch of 4: (0.5 + 0.5 * 1) / 4.
    assert float(losses.mask_loss(MASK[1:], lambda_tv=0.5, global_batch_size=4)) == pytest.approx(
        0.25
    )
    # Squared differences: a 0.5 step costs a quarter of a full step.
    half = MASK[1:] * 0.5  # mean 0.25, horizontal (0.5^2) -> TV 0.25
    assert float(losses.mask_loss(half, lambda_tv=2.0)) == pytest.approx(0.25 + 0.5)
    for bad in (MASK[..., 0], np.concatenate([MASK, MASK], -1), MASK[:, :1]):
        with pytest.raises(ValueError, match="mask"):
            losses.mask_loss(bad)


def test_keep_penalty_is_ganimations_mean_of_the_input_weight():
    # GANimation blends I_out = (1 - M) * C + M * x and penalises mean(M); here M = 1 - A.
    half = MASK[1:] * 0.5  # A: rows [0, 0.5] -> mean(A) 0.25, mean(1 - A) 0.75, TV 0.25
    assert float(losses.mask_loss(half, penalty="keep", lambda_tv=0.0)) == pytest.approx(0.75)
    assert float(losses.mask_loss(half, penalty="keep", lambda_tv=2.0)) == pytest.approx(1.25)
    # A mask that copies the input everywhere (A = 0) costs 1 under "keep", 0 under "edit".
    closed = np.zeros((1, 3, 3, 1), "float32")
    assert float(losses.mask_loss(closed, penalty="keep")) == pytest.approx(1.0)
    assert float(losses.mask_loss(closed, penalty="edit")) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="penalty"):
        losses.mask_loss(half, penalty="area")


def test_latent_loss_is_mean_squared_error_over_elements():
    h_real = np.zeros((2, 1, 1, 2), "float32")
    h_fake = np.array([3, 0, 1, 1], "float32").reshape(2, 1, 1, 2)
    # per sample: (9 + 0)/2 = 4.5 and (1 + 1)/2 = 1 -> mean 2.75
    assert float(losses.latent_loss(h_real, h_fake)) == pytest.approx(2.75)


def linear_critic(w):
    """D(x) = sum(w * x) per sample; its input gradient is w everywhere."""
    return lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])


@pytest.mark.parametrize("scale, expected", [(3.0, 4.0), (1.0, 0.0), (0.5, 0.25)])
def test_gradient_penalty_of_linear_critic(scale, expected):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 3, 3, 2)).astype("float32")
    w *= scale / np.linalg.norm(w)
    real = rng.normal(size=(4, 3, 3, 2)).astype("float32")
    fake = rng.normal(size=(4, 3, 3, 2)).astype("float32")
    alpha = losses.sample_interpolation_weights(4, seed=1)
    value = losses.gradient_penalty(linear_critic(w), real, fake, alpha)
    assert float(value) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("scale", [3.0, 1.0, 0.5])
def test_r1_penalty_of_linear_critic_is_half_the_squared_weight_norm(scale):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 3, 3, 2)).astype("float32")
    w *= scale / np.linalg.norm(w)
    real = rng.normal(size=(4, 3, 3, 2)).astype("float32")
    value = losses.r1_penalty(linear_critic(w), real)
    assert float(value) == pytest.approx(0.5 * scale**2, rel=1e-5)
    # a patch map is summed before the gradient: two copies of D double it, R1 x4
    doubled = losses.r1_penalty(lambda x: tf.stack([linear_critic(w)(x)] * 2, 1), real)
    assert float(doubled) == pytest.approx(2 * scale**2, rel=1e-5)
    with pytest.raises(ValueError, match="does not depend"):
        losses.r1_penalty(lambda x: tf.zeros([4]), real)


def test_gradient_penalty_uses_one_alpha_per_sample():
    # D(x) = 0.5 * sum(x^2) per sample: gradient = x_hat = alpha_i * real_i (fake = 0).
    # ||real_i|| = 2 (four ones) -> norms (0.5, 2.0) -> penalties (0.25, 1.0) -> mean 0.625.
    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    real = np.ones((2, 2, 2, 1), "float32")
    fake = np.zeros_like(real)
    for alpha in (np.array([0.25, 1.0]), np.array([0.25, 1.0]).reshape(2, 1, 1, 1)):
        value = losses.gradient_penalty(critic, real, fake, alpha)
        assert float(value) == pytest.approx(0.625, abs=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        losses.gradient_penalty(critic, real, fake, np.full((2, 2, 2, 1), 0.5, "float32"))


def test_gradient_penalty_sums_the_patch_map():
    # A 2x2 patch map of the same linear critic: the summed output has gradient 4w.
    w = np.full((1, 2, 2, 1), 0.25, "float32")  # ||w|| = 0.5 -> ||4w|| = 2 -> (2-1)^2 = 1

    def critic(x):
        score = tf.reduce_sum(x * w, axis=[1, 2, 3])
        return tf.tile(tf.reshape(score, [-1, 1, 1, 1]), [1, 2, 2, 1])

    real = np.ones((3, 2, 2, 1), "float32")
    value = losses.gradient_penalty(critic, real, -real, np.full((3,), 0.3, "float32"))
    assert float(value) == pytest.approx(1.0, abs=1e-5)


def test_gradient_penalty_backpropagates_to_critic_weights():
    # GP = (||w|| - 1)^2 -> dGP/dw = 2 (||w|| - 1) w / ||w||; with ||w|| = 3 that is 4w/3.
    w0 = np.zeros((1, 2, 2, 1), "float32")
    w0.flat[:2] = [3.0 / math.sqrt(2)] * 2
    w = tf.Variable(w0)
    real = np.ones((2, 2, 2, 1), "float32")
    with tf.GradientTape() as tape:
        value = losses.gradient_penalty(linear_critic(w), real, real * 0, np.array([0.2, 0.7]))
    grad = tape.gradient(value, w)
    assert float(value) == pytest.approx(4.0, abs=1e-5)
    np.testing.assert_allclose(np.asarray(grad), 4.0 * w0 / 3.0, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_rejects_input_independent_critic():
    real = np.ones((2, 2, 2, 1), "float32")
    with pytest.raises(ValueError, match="depend"):
        losses.gradient_penalty(lambda x: tf.ones([2]), real, real, np.array([0.5, 0.5]))


def test_sample_interpolation_weights():
    alpha = np.asarray(losses.sample_interpolation_weights(64, seed=3))
    assert alpha.shape == (64, 1, 1, 1)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0 and alpha.std() > 0.1
    np.testing.assert_array_equal(
        alpha, np.asarray(losses.sample_interpolation_weights(64, seed=3))
    )
    assert losses.sample_interpolation_weights(5, ndim=2).shape == (5, 1)


def test_discriminator_loss_combines_named_terms():
    logits = np.array([[0.0, 0.0], [0.0, 0.0]], "float32")  # CE = ln 2 for any label
    total, terms = losses.discriminator_loss(
        real_scores=REAL,
        fake_scores=FAKE,
        real_logits=logits,
        source_labels=np.array([0, 1]),
        penalty=tf.constant(0.5),
        lambda_cls=2.0,
        lambda_gp=10.0,
    )
    assert set(terms) == {"D/adv", "D/gp", "D/cls"}
    assert float(terms["D/adv"]) == pytest.approx(-2.25)
    assert float(terms["D/gp"]) == pytest.approx(0.5)
    assert float(terms["D/cls"]) == pytest.approx(math.log(2))
    assert float(total) == pytest.approx(-2.25 + 5.0 + 2.0 * math.log(2), rel=1e-6)
    _, r1_terms = losses.discriminator_loss(
        real_scores=REAL,
        fake_scores=FAKE,
        real_logits=logits,
        source_labels=np.array([0, 1]),
        penalty=tf.constant(0.5),
        gan_loss="r1",
    )
    expected = losses.nonsaturating_discriminator_loss(REAL, FAKE)
    assert float(r1_terms["D/adv"]) == pytest.approx(float(expected))


def test_generator_loss_combines_named_terms_with_default_weights():
    x = np.zeros((2, 2, 2, 1), "float32")
    rec = np.full_like(x, 0.5)  # L1 = 0.5
    h = np.zeros((2, 1, 1, 2), "float32")
    h_fake = np.ones_like(h)  # MSE = 1
    logits = np.array([[0.0, 0.0], [0.0, 0.0]], "float32")
    inputs = dict(
        fake_scores=FAKE,
        fake_logits=logits,
        target_labels=np.array([1, 0]),
        images=x,
        reconstructed=rec,
        h_real=h,
        h_fake=h_fake,
    )
    total, terms = losses.generator_loss(**inputs)
    assert set(terms) == {"G/adv", "G/cls", "G/rec", "G/lat"}
    expected = {"G/adv": 0.5, "G/cls": math.log(2), "G/rec": 0.5, "G/lat": 1.0}
    for name, value in expected.items():
        assert float(terms[name]) == pytest.approx(value, rel=1e-6)
    # Defaults lambda_cls=1, lambda_rec=10, lambda_lat=10.
    assert float(total) == pytest.approx(0.5 + math.log(2) + 5.0 + 10.0, rel=1e-6)
    # Each row's softmax over its target alone (--cls_neighbors): probability 1, G/cls 0.
    _, terms = losses.generator_loss(**inputs, cls_candidates=np.eye(2, dtype=bool)[[1, 0]])
    assert float(terms["G/cls"]) == pytest.approx(0.0, abs=1e-6)


def test_generator_loss_asks_for_both_targets_of_a_combination():
    # --combine_prob: row 0 asks for clusters 0 and 1 of logits [2, 1, 0, 0], each over
    # a softmax without the other: ln(e^2 + 2) - 2 and ln(e + 2) - 1. Row 1 is not
    # combined: its second pair is (its target, its target), a loss of exactly 0; its first
    # is cluster 3 of [0, 0, 0, 0] over all four: ln 4.
    x = np.zeros((2, 2, 2, 1), "float32")
    h = np.zeros((2, 1, 1, 2), "float32")
    logits = np.array([[2.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], "float32")
    eye = np.eye(4, dtype=bool)
    first = (eye[[0, 3]], np.array([[1, 0, 1, 1], [1, 1, 1, 1]], bool))
    second = (eye[[1, 3]], np.array([[0, 1, 1, 1], [0, 0, 0, 1]], bool))
    _, terms = losses.generator_loss(
        fake_scores=FAKE,
        fake_logits=logits,
        target_labels=first[0],
        cls_candidates=first[1],
        cls_second=second,
        images=x,
        reconstructed=x,
        h_real=h,
        h_fake=h,
    )
    expected = (math.log(math.e**2 + 2) - 2 + math.log(math.e + 2) - 1 + math.log(4)) / 2
    assert float(terms["G/cls"]) == pytest.approx(expected, rel=1e-6)


def test_generator_loss_optional_self_and_mask_terms():
    x = np.zeros((2, 2, 2, 1), "float32")
    h = np.zeros((2, 1, 1, 2), "float32")
    logits = np.zeros((2, 2), "float32")
    common = dict(
        fake_scores=FAKE,
        fake_logits=logits,
        target_labels=np.array([1, 0]),
        images=x,
        reconstructed=x,
        h_real=h,
        h_fake=h,
    )
    base_total, base_terms = losses.generator_loss(**common)
    assert set(base_terms) == {"G/adv", "G/cls", "G/rec", "G/lat"}  # 0.5 + ln 2
    total, terms = losses.generator_loss(
        **common,
        self_reconstructed=np.full_like(x, -0.25),  # L1 = 0.25
        lambda_self=4.0,
        mask=MASK,  # 0.75 with lambda_tv = 0.5 (see above)
        lambda_mask=0.1,
        lambda_tv=0.5,
    )
    assert set(terms) == {"G/adv", "G/cls", "G/rec", "G/lat", "G/self", "G/mask"}
    assert float(terms["G/self"]) == pytest.approx(0.25)
    assert float(terms["G/mask"]) == pytest.approx(0.75)
    assert float(total) == pytest.approx(float(base_total) + 4.0 * 0.25 + 0.1 * 0.75, rel=1e-6)
    # A list of masks (translation and reconstruction) sums their losses.
    _, terms = losses.generator_loss(**common, mask=[MASK, MASK[::-1]], lambda_tv=0.5)
    assert float(terms["G/mask"]) == pytest.approx(1.5)
    # mask_penalty reaches mask_loss: 1 - A of a closed mask.
    closed = np.zeros_like(MASK)
    _, terms = losses.generator_loss(**common, mask=closed, mask_penalty="keep")
    assert float(terms["G/mask"]) == pytest.approx(1.0)
    # Given with weight 0: logged, not added.
    total, terms = losses.generator_loss(**common, self_reconstructed=x + 1)
    assert float(terms["G/self"]) == pytest.approx(1.0)
    assert float(total) == pytest.approx(float(base_total))
    with pytest.raises(ValueError, match="self_reconstructed"):
        losses.generator_loss(**common, lambda_self=1.0)
    # The colour term: on the cycle reconstruction, plus the self one when given.
    blue = np.zeros((2, 4, 4, 3), "float32")
    blue[..., 2] = 0.4
    colour = {**common, "images": np.zeros_like(blue), "reconstructed": blue}
    one = (0.2 + 0.4 * 0.081312) / 2
    plain_total, _ = losses.generator_loss(**colour)
    total, terms = losses.generator_loss(**colour, lambda_chroma=2.0)
    assert float(terms["G/chroma"]) == pytest.approx(one)
    assert float(total) == pytest.approx(float(plain_total) + 2.0 * one, rel=1e-6)
    _, terms = losses.generator_loss(**colour, self_reconstructed=blue, lambda_chroma=2.0)
    assert float(terms["G/chroma"]) == pytest.approx(2 * one)
    with pytest.raises(ValueError, match="mask"):
        losses.generator_loss(**common, lambda_mask=1.0)


def test_replica_shares_sum_to_the_global_batch_mean():
    """Two 'replicas' with global_batch_size=N reproduce the loss of the whole batch of N."""
    rng = np.random.default_rng(5)
    n = 6
    real_s, fake_s = rng.normal(size=(2, n, 2, 2, 1)).astype("float32")
    logits = rng.normal(size=(n, 4)).astype("float32")
    labels = rng.integers(0, 4, n)
    x, rec = rng.normal(size=(2, n, 4, 4, 3)).astype("float32")
    h1, h2 = rng.normal(size=(2, n, 2, 2, 3)).astype("float32")
    w = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    alpha = rng.uniform(size=(n,)).astype("float32")

    def gp_critic(v):
        return tf.reduce_sum(tf.square(v) * w, axis=[1, 2, 3])

    cases = [
        (losses.wasserstein_discriminator_loss, (real_s, fake_s)),
        (losses.wasserstein_generator_loss, (fake_s,)),
        (losses.cluster_classification_loss, (logits, labels)),
        (losses.cycle_reconstruction_loss, (x, rec)),
        (losses.latent_loss, (h1, h2)),
        (losses.self_reconstruction_loss, (x, rec)),
        (losses.mask_loss, (np.abs(x[..., :1]),)),
        (functools.partial(losses.gradient_penalty, gp_critic), (x, rec, alpha)),
    ]
    for fn, args in cases:
        whole = float(fn(*args))
        shares = [
            float(fn(*(a[part] for a in args), global_batch_size=n))
            for part in (slice(0, 4), slice(4, n))
        ]
        assert sum(shares) == pytest.approx(whole, rel=1e-5, abs=1e-6)
        assert shares[0] != pytest.approx(whole, rel=1e-3)  # a share is not the whole
