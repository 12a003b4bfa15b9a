"""The training step of XploreGAN (paper §2.3-2.4): G, D, G_ema, their optimizers and the
distributed D and G updates.

Each iteration runs one discriminator update (G without a tape: its output is a constant for
D) and, every `n_critic` iterations, one generator update followed by the EMA update of G
(with `--share_g_forward`, those two updates share one G forward pass). Per-replica losses
are scaled by the *global* batch size so summed replica gradients equal the global-batch
gradient. Every random draw is a function of (seed, sample position), so a resumed run sees
the targets the interrupted one would have seen.
"""

from __future__ import annotations

import functools

import numpy as np

from xplore_tf import checkpoints, hardware
from xplore_tf import losses as losses_lib
from xplore_tf.clustering import artifacts, space
from xplore_tf.common import signatures as sig
from xplore_tf.config import Config
from xplore_tf.models.generator import condition_vector


def learning_rate(base: float, step, num_steps: int, decay_steps: int):
    """Constant, then linear decay to 0 over the last `decay_steps` (StarGAN schedule)."""
    if decay_steps <= 0:
        return base
    remaining = num_steps - step
    return base * min(1.0, max(0.0, remaining / decay_steps))


class Trainer:
    """G, D, G_ema, optimizers and the distributed step functions of one run."""

    def __init__(
        self,
        config: Config,
        stats: artifacts.ClusterStats,
        strategy,
        *,
        clusters_fingerprint: str = "",
    ):
        import keras
        import tensorflow as tf

        self.config = config
        self.stats = stats
        self.strategy = strategy
        t = config.train
        if t.batch_size % strategy.num_replicas_in_sync:
            raise ValueError(
                f"--batch_size={t.batch_size} is not divisible by the "
                f"{strategy.num_replicas_in_sync} replicas"
            )
        if t.combine_prob and t.blend_prob:
            raise ValueError("--combine_prob needs hard targets: pass --blend_prob=0")
        if t.lambda_mask and config.model.output_mode != "masked":
            raise ValueError(
                f"--lambda_mask={t.lambda_mask:g} weighs the attention mask of "
                f"--output_mode=masked; --output_mode={config.model.output_mode} has none: "
                "pass --lambda_mask=0"
            )
        # Set every time (float32 included): the policy is process-global.
        self.precision = hardware.resolve_mixed_precision(config.train.mixed_precision)
        keras.mixed_precision.set_global_policy(self.precision)
        with strategy.scope():
            self.generator = checkpoints.build_generator(config, stats)
            self.discriminator = checkpoints.build_discriminator(config, stats)
            self.generator_ema = checkpoints.build_generator(config, stats)
            self.generator_ema.set_weights(self.generator.get_weights())
            self.g_optimizer = self._optimizer(t.g_lr, "g_optimizer")
            self.d_optimizer = self._optimizer(t.d_lr, "d_optimizer")
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.position = tf.Variable(0, dtype=tf.int64, trainable=False, name="position")
        # Which clusters the weights belong to (checkpoints.check_clusters); a plain host
        # variable outside the strategy scope: it is metadata, never replicated or updated.
        self.clusters_fingerprint = tf.Variable(
            clusters_fingerprint, dtype=tf.string, trainable=False, name="clusters_fingerprint"
        )
        with strategy.scope():
            self.checkpoint = tf.train.Checkpoint(
                generator=checkpoints.variables_by_path(self.generator),
                discriminator=checkpoints.variables_by_path(self.discriminator),
                generator_ema=checkpoints.variables_by_path(self.generator_ema),
                g_optimizer=self.g_optimizer,
                d_optimizer=self.d_optimizer,
                step=self.step,
                position=self.position,
                clusters_fingerprint=self.clusters_fingerprint,
            )
        self.centroids = tf.constant(stats.centroids, tf.float32)
        self.stds = tf.constant(stats.stds, tf.float32)
        self.cls_candidates, self.cls_credit = self._classification_groups()
        # The step functions, each traced once: with --gp_every > 1 the D steps between two
        # penalties skip it; with --share_g_forward the iterations that have a G step run
        # it fused with their D step.
        self._d_step = self._step_function(self._d_replica_step)
        self._d_step_without_penalty = (
            self._step_function(self._d_replica_step, penalty=False) if t.gp_every > 1 else None
        )
        self._g_step = self._step_function(self._g_replica_step)
        self._dg_step = self._step_function(self._dg_replica_step) if t.share_g_forward else None
        self._dg_step_without_penalty = (
            self._step_function(self._dg_replica_step, penalty=False)
            if t.share_g_forward and t.gp_every > 1
            else None
        )
        self._ema_update = tf.function(self._ema_cross_replica, autograph=False)

    def _classification_groups(self):
        """(candidates, credit): the bool [k, k] masks of G's classification target
        (--cls_neighbors, --cls_credit_neighbors; `_nearest_mask`), each None when 0.

        Raises ValueError unless the credited clusters are fewer than the candidates."""
        t = self.config.train
        if t.cls_neighbors and t.cls_credit_neighbors >= t.cls_neighbors:
            raise ValueError(
                f"--cls_credit_neighbors={t.cls_credit_neighbors}: expected fewer than "
                f"--cls_neighbors={t.cls_neighbors} (the credited clusters are among them)"
            )
        return (
            self._nearest_mask(t.cls_neighbors, "cls_neighbors"),
            self._nearest_mask(t.cls_credit_neighbors, "cls_credit_neighbors"),
        )

    def _nearest_mask(self, neighbors: int, flag: str):
        """bool [k, k] whose row t marks t and its `neighbors` nearest clusters: those G's
        classification softmax is taken over (--cls_neighbors) or those it credits as t
        (--cls_credit_neighbors), for target t; None for 0.

        Raises ValueError for `neighbors` >= k or with blended (soft) targets."""
        import tensorflow as tf

        if not neighbors:
            return None
        k = int(self.centroids.shape[0])
        if neighbors >= k:
            raise ValueError(f"--{flag}={neighbors}: expected fewer than the {k} clusters")
        if self.config.train.blend_prob:
            raise ValueError(f"--{flag} needs hard targets: pass --blend_prob=0")
        nearest = space.nearest_clusters(self.centroids, neighbors)  # [k, neighbors]
        return tf.reduce_any(tf.one_hot(nearest, k) > 0, axis=1) | tf.eye(k, dtype=tf.bool)

    def _optimizer(self, lr: float, name: str):
        import keras

        from xplore_tf import optimizers

        t = self.config.train
        opt = optimizers.FusedAdam(lr, beta_1=t.beta1, beta_2=t.beta2, name=name)
        if self.precision == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale")
        return opt

    # ------------------------------------------------------------------ steps
    def condition(self, cluster_ids):
        return condition_vector(
            cluster_ids, self.centroids, self.stds, mode=self.config.model.condition
        )

    def _sample_uniforms(self, positions, *, stream: int, shape):
        """U[0, 1) draws [N, *shape], each a function of (seed + stream, sample position)
        only: the same whatever the number of replicas, and the same after a resume."""
        import tensorflow as tf

        seed = tf.cast(self.config.seed, tf.int64) + stream
        return tf.map_fn(
            lambda position: tf.random.stateless_uniform(shape, seed=tf.stack([seed, position])),
            positions,
            fn_output_signature=tf.float32,
        )

    def target(self, batch, second=None):
        """G's target condition [N, C] and the classification target G is trained toward.

        Without blending, extrapolation or combination (the paper) these are the target
        clusters' conditions and their ids t [N]. With blending (`--blend_prob`), each
        sample whose draw falls below blend_prob gets the blend
        s_c + a (s_t - s_c) + b (s_t2 - s_c) (`space.blend_conditions`, the form `--strength`
        and combinations use), with (1-a-b, a, b) uniform on the simplex (normalised
        exponentials: Dirichlet(1, 1, 1)) and t2 a uniformly drawn cluster; the label is then
        the same blend of the clusters, (1-a-b) onehot(c) + a onehot(t) + b onehot(t2),
        float [N, k]. With combination (`--combine_prob`), the samples `second_target` marks
        get s_t + s_t2 - s_c and keep the label t (`classification_targets` adds t2);
        `second` is that method's result when the caller has it. With extrapolation, a
        fraction extrapolate_prob of the samples that are neither blended nor combined gets
        s_c + beta (s_t - s_c), beta uniform on [1, MAX_STRENGTH] (the strengths past 1 that
        translate and the SavedModel accept), and keeps the hard label t. Every sample's
        draws are a function of (seed, sample position): the D and G steps of an iteration,
        any number of replicas and a resumed run all see the same targets.
        """
        import tensorflow as tf

        t, c = batch["target"], batch["cluster"]
        train = self.config.train
        condition, labels = self.condition(t), t
        if not (train.blend_prob or train.extrapolate_prob or train.combine_prob):
            return condition, labels
        k = int(self.centroids.shape[0])
        std_from = self.stats.dim if self.config.model.condition == "mean_std" else None
        table = self.condition(tf.range(k))
        source = self.condition(c)
        one_hot_t = tf.one_hot(t, k)
        not_extrapolated = tf.zeros_like(t, tf.bool)
        if train.blend_prob:
            draws = self._sample_uniforms(batch["position"], stream=3, shape=[5])
            other = tf.minimum(tf.cast(draws[:, 1] * k, tf.int32), k - 1)
            exponentials = -tf.math.log1p(-draws[:, 2:])  # [N, 3], each Exp(1)
            simplex = tf.math.divide_no_nan(
                exponentials, tf.reduce_sum(exponentials, axis=1, keepdims=True)
            )
            weights = simplex[:, 1:2] * one_hot_t + simplex[:, 2:3] * tf.one_hot(other, k)
            blended = space.blend_conditions(source, weights, table, std_from=std_from)
            # Rows that are not blended keep the plain target exactly (no matmul rounding).
            not_extrapolated = draws[:, 0] < train.blend_prob
            condition = tf.where(not_extrapolated[:, None], blended, condition)
            labels = tf.where(
                not_extrapolated[:, None], weights + simplex[:, :1] * tf.one_hot(c, k), one_hot_t
            )
        if train.combine_prob:
            t2, not_extrapolated = self.second_target(batch) if second is None else second
            weights = one_hot_t + tf.one_hot(t2, k)
            pair = space.blend_conditions(source, weights, table, std_from=std_from)
            condition = tf.where(not_extrapolated[:, None], pair, condition)
        if train.extrapolate_prob:
            draws = self._sample_uniforms(batch["position"], stream=4, shape=[2])
            beta = 1.0 + (sig.MAX_STRENGTH - 1.0) * draws[:, 1:2]
            beyond = space.blend_conditions(source, beta * one_hot_t, table, std_from=std_from)
            chosen = (draws[:, 0] < train.extrapolate_prob) & ~not_extrapolated
            condition = tf.where(chosen[:, None], beyond, condition)
        return condition, labels

    def _groups(self):
        """bool [k, k]: row t marks the clusters G's classification credits as t."""
        import tensorflow as tf

        if self.cls_credit is not None:
            return self.cls_credit
        return tf.eye(int(self.centroids.shape[0]), dtype=tf.bool)

    def second_target(self, batch):
        """(t2 int32 [N], combined bool [N]) for `--combine_prob`: which samples get a
        second target cluster, and which. t2 is uniform among the clusters other than the
        input's own cluster c whose credited group shares no cluster with t's (the argmax
        of uniform draws over them); a sample is combined when its draw falls below
        combine_prob and such a cluster exists. The draws are a function of (seed, sample
        position), as `target`'s."""
        import tensorflow as tf

        t, c = batch["target"], batch["cluster"]
        k = int(self.centroids.shape[0])
        groups = tf.cast(self._groups(), tf.float32)
        overlapping = tf.matmul(groups, groups, transpose_b=True) > 0  # [k, k], i ~ i
        allowed = ~(tf.gather(overlapping, t) | (tf.one_hot(c, k) > 0))
        draws = self._sample_uniforms(batch["position"], stream=5, shape=[k + 1])
        t2 = tf.argmax(tf.where(allowed, draws[:, 1:], -1.0), axis=1, output_type=tf.int32)
        combined = (draws[:, 0] < self.config.train.combine_prob) & tf.reduce_any(allowed, 1)
        return t2, combined

    def classification_targets(self, batch, labels, second=None):
        """G's classification targets: ((labels, candidates), second pair or None), each
        pair as `losses.cluster_classification_loss` takes it.

        labels: `target`'s. With --cls_credit_neighbors the labels become t's credited
        group, bool [N, k]; with --cls_neighbors the candidates are t and its nearest
        (None = all k). `second`: `second_target`'s (t2, combined), for --combine_prob.
        A combined sample is asked for both targets, each over its own candidates without
        the other's group: a softmax per target whose negatives are the clusters neither
        asks for, so it gets two classification terms. The second pair of a sample that is
        not combined is (group of t, group of t): a loss of exactly 0."""
        import tensorflow as tf

        t = batch["target"]
        options = self.cls_candidates
        candidates = None if options is None else tf.gather(options, t)
        if self.cls_credit is not None:
            labels = tf.gather(self.cls_credit, t)
        if second is None:
            return (labels, candidates), None
        t2, combined = second
        groups = self._groups()
        options = tf.ones_like(groups) if options is None else options
        first, other = tf.gather(groups, t), tf.gather(groups, t2)
        combined = combined[:, None]
        return (
            (first, tf.gather(options, t) & ~(combined & other)),
            (
                tf.where(combined, other, first),
                tf.where(combined, tf.gather(options, t2) & ~first, first),
            ),
        )

    def _step_function(self, replica_fn, **kwargs):
        """tf.function(batch -> per-replica scalars) running replica_fn(batch, **kwargs)."""
        import tensorflow as tf

        def run(batch):
            return self.strategy.run(functools.partial(replica_fn, **kwargs), args=(batch,))

        # No AutoGraph (as in export_module): the steps use TensorFlow's own control flow.
        return tf.function(run, autograph=False)

    def _scaled(self, optimizer, loss):
        return optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss

    def _d_replica_step(self, batch, penalty: bool = True, fake=None):
        """One D update. With penalty=False (--gp_every's steps in between), no gradient
        penalty; on the steps with one it weighs lambda_gp * gp_every (StyleGAN2, Karras et
        al. 2020, section 3.1: lazy regularisation keeps its mean weight). fake: G(x, s_t)
        [N,S,S,3] when the caller has it (`_dg_replica_step`), else computed here."""
        import tensorflow as tf

        t = self.config.train
        x, c = batch["image"], batch["cluster"]
        if fake is None:
            cond_t, _ = self.target(batch)
            # G runs without a tape: D's update never needs G's gradients.
            fake = self.generator((x, cond_t), training=True)
        fake = tf.stop_gradient(fake)
        # The gradient penalty's interpolation weight, one per sample.
        alpha = self._sample_uniforms(batch["position"], stream=2, shape=[])
        alpha = tf.reshape(alpha, [-1, 1, 1, 1])
        with tf.GradientTape() as tape:
            # Real and fake through D in one batch (D has no normalisation, so this is
            # the two passes' result): its deep layers are weight-bound at small batches.
            n = tf.shape(x)[0]
            src, cls = self.discriminator(tf.concat([x, tf.cast(fake, x.dtype)], 0), training=True)
            real_src, fake_src, real_cls = src[:n], src[n:], cls[:n]
            gp = self._penalty(x, fake, alpha) if penalty else tf.zeros([])
            total, terms = losses_lib.discriminator_loss(
                real_scores=real_src,
                fake_scores=fake_src,
                real_logits=real_cls,
                source_labels=c,
                penalty=gp,
                lambda_cls=t.lambda_cls,
                lambda_gp=t.lambda_gp * t.gp_every if penalty else 0.0,
                global_batch_size=t.batch_size,
                gan_loss=t.gan_loss,
            )
            if not penalty:
                del terms["D/gp"]
            scaled = self._scaled(self.d_optimizer, total)
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.d_optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {**terms, "D/total": total}

    def _penalty(self, x, fake, alpha):
        """D's gradient penalty: WGAN-GP's on interpolates, or R1 on the real images."""

        def critic(images):
            return self.discriminator(images, training=True)[0]

        batch = self.config.train.batch_size
        if self.config.train.gan_loss == "r1":
            return losses_lib.r1_penalty(critic, x, global_batch_size=batch)
        return losses_lib.gradient_penalty(critic, x, fake, alpha, global_batch_size=batch)

    def _g_conditions(self, batch):
        """A G update's (s_t, classification targets, s_c): see `target` and
        `classification_targets`."""
        second = self.second_target(batch) if self.config.train.combine_prob else None
        cond_t, labels = self.target(batch, second)
        targets = self.classification_targets(batch, labels, second)
        return cond_t, targets, self.condition(batch["cluster"])

    def _g_forward(self, x, cond_t, cond_c):
        """G(x, s_t) and, when --lambda_self weighs it, G(x, s_c): (translated, own or None)."""
        if self.config.train.lambda_self:
            # Self-reconstruction G(x, s_c) ≈ x (FUNIT/TUNIT), only when weighted: it shares
            # the encoder pass and the decoder batch of G(x, s_t).
            return self.generator.forward_each(x, [cond_t, cond_c], training=True)
        return self.generator.forward(x, cond_t, training=True), None

    def _g_update(self, tape, batch, cond_c, cls_targets, translated, own):
        """The rest of G's loss after its forward pass, recorded on `tape`, and G's update."""

        t = self.config.train
        x = batch["image"]
        (target_labels, candidates), second = cls_targets
        with tape:
            cycled = self.generator.forward(translated.images, cond_c, training=True)
            masks = [o.mask for o in (translated, cycled, own) if o and o.mask is not None]
            fake_src, fake_cls = self.discriminator(translated.images, training=True)
            total, terms = losses_lib.generator_loss(
                fake_scores=fake_src,
                fake_logits=fake_cls,
                target_labels=target_labels,
                images=x,
                reconstructed=cycled.images,
                h_real=translated.content,
                h_fake=cycled.content,
                lambda_cls=t.lambda_cls,
                lambda_rec=t.lambda_rec,
                lambda_lat=t.lambda_lat,
                self_reconstructed=own.images if own is not None else None,
                lambda_self=t.lambda_self,
                mask=masks if t.lambda_mask and masks else None,
                lambda_mask=t.lambda_mask,
                mask_penalty=t.mask_penalty,
                global_batch_size=t.batch_size,
                gan_loss=t.gan_loss,
                lambda_chroma=t.lambda_chroma,
                cls_candidates=candidates,
                cls_second=second,
            )
            scaled = self._scaled(self.g_optimizer, total)
        variables = self.generator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.g_optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {**terms, "G/total": total}

    def _g_replica_step(self, batch):
        """One G update (paper §2.4: adversarial, classification, cycle and latent losses)."""
        import tensorflow as tf

        cond_t, cls_targets, cond_c = self._g_conditions(batch)
        with tf.GradientTape() as tape:
            translated, own = self._g_forward(batch["image"], cond_t, cond_c)
        return self._g_update(tape, batch, cond_c, cls_targets, translated, own)

    def _dg_replica_step(self, batch, penalty: bool = True):
        """A D update then a G update that share one G(x, s_t) (--share_g_forward).

        The same updates in the same order as `_d_replica_step` then `_g_replica_step`, but
        G's forward pass runs once, on G's tape, and D's update uses its output. So the D
        step's fake has the G step's decoder noise, G's training-mode passes (and with them
        its spectral-norm power iteration) are two instead of three, and under mixed
        precision the fake is G.forward's (float32 inputs to the output blend) rather than
        G's call's. D's update is not recorded on G's tape, and G's loss reads D's
        variables after the update (tf.function orders a resource's reads after its earlier
        writes).
        """
        import tensorflow as tf

        cond_t, cls_targets, cond_c = self._g_conditions(batch)
        with tf.GradientTape() as tape:
            translated, own = self._g_forward(batch["image"], cond_t, cond_c)
        d_terms = self._d_replica_step(batch, penalty, fake=translated.images)
        g_terms = self._g_update(tape, batch, cond_c, cls_targets, translated, own)
        return {**d_terms, **g_terms}

    def _ema_cross_replica(self):
        import tensorflow as tf

        # Warm-up as tf.train.ExponentialMovingAverage(num_updates=...): early on the average
        # follows G closely instead of staying near the random initial weights for ~1/(1-decay)
        # G steps, which matters for short runs such as the demo.
        updates = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.train.ema_decay, (1.0 + updates) / (10.0 + updates))
        for ema, w in zip(
            self.generator_ema.trainable_variables, self.generator.trainable_variables, strict=True
        ):
            ema.assign(decay * ema + (1.0 - decay) * w)
        for ema, w in zip(
            self.generator_ema.non_trainable_variables,
            self.generator.non_trainable_variables,
            strict=True,
        ):
            ema.assign(w)

    def reduce(self, per_replica: dict) -> dict:
        """Sums replica losses (each already divided by the global batch) to global values."""
        import tensorflow as tf

        return {
            k: float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None))
            for k, v in per_replica.items()
        }

    def set_learning_rates(self, step: int) -> float:
        t = self.config.train
        factor = learning_rate(1.0, step, t.num_steps, t.lr_decay_steps)
        self.g_optimizer.learning_rate = t.g_lr * factor
        self.d_optimizer.learning_rate = t.d_lr * factor
        return t.g_lr * factor

    def train_step(self, step: int, batch) -> dict:
        """One iteration: a D step, and a G step + EMA update every n_critic iterations."""
        self.set_learning_rates(step)
        scalars = {}
        for step_fn in self.step_functions(step):
            scalars.update(self.reduce(step_fn(batch)))
        if self.has_g_step(step):
            self._ema_update()
        return scalars

    def has_g_step(self, step: int) -> bool:
        """Whether iteration `step` updates G (and G_ema): every n_critic-th does."""
        return (step + 1) % self.config.train.n_critic == 0

    def step_functions(self, step: int) -> list:
        """The tf.functions iteration `step` runs, in order (each takes the batch)."""
        t = self.config.train
        lazy = t.gp_every > 1 and step % t.gp_every
        if not self.has_g_step(step):
            return [self._d_step_without_penalty if lazy else self._d_step]
        if self._dg_step is not None:
            return [self._dg_step_without_penalty if lazy else self._dg_step]
        return [self._d_step_without_penalty if lazy else self._d_step, self._g_step]

    # ------------------------------------------------------------------ samples
    def translate(
        self, images: np.ndarray, clusters: np.ndarray, *, ema: bool = True
    ) -> np.ndarray:
        """images uint8 [N,S,S,3] into clusters [N] -> uint8 [N,S,S,3] (no noise)."""
        g = self.generator_ema if ema else self.generator
        x = images.astype(np.float32) / 127.5 - 1.0
        y = g((x, self.condition(clusters.astype(np.int32))), training=False)
        return np.clip((np.asarray(y, np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)

    def target_accuracy(self, images: np.ndarray, targets: np.ndarray) -> float:
        """Fraction of G_ema(x, t) that D's cluster head assigns to t."""
        fakes = self.translate(images, targets).astype(np.float32) / 127.5 - 1.0
        _, logits = self.discriminator(fakes, training=False)
        return float(np.mean(np.argmax(np.asarray(logits), axis=1) == targets))
