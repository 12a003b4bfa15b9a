"""Training XploreGAN (paper §2.3-2.4, DESIGN.md §3-4): the library behind `xplore_tf.train`.

An explicit `tf.distribute` loop: models, optimizers and checkpoint restore live in the
strategy scope; each iteration runs one discriminator step (G without a tape: its output is
a constant for D) and, every `n_critic` iterations, one generator step followed by the EMA
update of G (with `--share_g_forward`, those two steps share one G forward pass).
Per-replica losses are scaled by the *global* batch size so summed replica gradients equal
the global-batch gradient.

Everything random is a function of (seed, step or sample position), and the checkpoint
holds G, D, G_ema, both optimizers, the step and the data position, so a resumed run is the
run that was interrupted.

Several machines (`--strategy=multi_worker`, MultiWorkerMirroredStrategy from TF_CONFIG):
every worker runs `train` on the same shared WORKDIR; each reads the whole stream of global
batches and keeps its own replicas' slices (tf.data's DATA auto-sharding), so the run equals
a one-machine run with the same replicas and global batch. The chief (`is_chief`) clusters
when needed, writes the checkpoints, TensorBoard events and sample grids; the other workers
take part in every save (a collective) but write it into a scratch folder that is deleted.
The workers agree after every step on the data position and on stopping, so Ctrl-C/SIGTERM
on any one of them stops all at the same step with a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence

import numpy as np
from absl import logging

from xplore_tf import checkpoint_files, checkpoints, cli, hardware, io_utils
from xplore_tf import losses as losses_lib
from xplore_tf.clustering import artifacts, pipeline, space
from xplore_tf.common import signatures as sig
from xplore_tf.config import Config
from xplore_tf.data import images as images_lib
from xplore_tf.data import sources
from xplore_tf.data import training as training_data
from xplore_tf.models.generator import condition_vector

SCALARS = ("D/adv", "D/gp", "D/cls", "G/adv", "G/cls", "G/rec", "G/lat", "G/self", "G/mask")


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainResult:
    """What a run returns, for tests and the closing summary."""

    step: int
    history: list[dict]  # one dict of scalars per summary step
    images_per_second: float
    target_accuracy: float  # D's cluster head picks the target cluster on G_ema outputs
    checkpoint: str
    stopped_by_signal: bool = False
    chief: bool = True  # this process writes the run's files (the only one but multi-worker)
    steps_run: int = 0  # iterations this call trained (0: the run had reached num_steps)


_MULTI_WORKER_STRATEGY: list = []  # one per process, see make_strategy


def make_strategy(name: str):
    """'mirrored' = all local GPUs (one CPU device otherwise), 'multi_worker' via TF_CONFIG."""
    import tensorflow as tf

    if name == "multi_worker":
        # It configures the process's collective ops (its gRPC server) from TF_CONFIG, which
        # TensorFlow does once per process: a later run in the same process reuses it.
        if not _MULTI_WORKER_STRATEGY:
            task, address = tf_config_task()
            try:
                _MULTI_WORKER_STRATEGY.append(tf.distribute.MultiWorkerMirroredStrategy())
            except tf.errors.OpError as e:
                raise ValueError(
                    f"{task}: cannot start its gRPC server on {address} (TF_CONFIG): "
                    f"{cli.one_line(e)}; is the port in use, or the address not this "
                    "machine's?"
                ) from None
        return _MULTI_WORKER_STRATEGY[0]
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [tf.config.list_logical_devices("CPU")[0].name]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"--strategy: unknown strategy {name!r}")


def tf_config_task(environ=None) -> tuple[str, str]:
    """("worker 1", its "host:port") from TF_CONFIG, checked for what multi-worker needs.

    Raises:
        ValueError: one line naming TF_CONFIG: unset (a multi-worker run would silently be
            a one-machine run, and two of them two chiefs on one workdir), not JSON, or
            without a cluster entry for its task.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    form = '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}'
    if not raw.strip():
        raise ValueError(
            f"--strategy=multi_worker needs TF_CONFIG set on every machine ({form}); it is "
            "not set (docs/guide/training.md, 'Several machines')"
        )
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {raw[:120]}") from None
    task = parsed.get("task") if isinstance(parsed, dict) else None
    cluster = parsed.get("cluster") if isinstance(parsed, dict) else None
    if not isinstance(task, dict) or not isinstance(cluster, dict):
        raise ValueError(f"TF_CONFIG needs 'cluster' and 'task' entries ({form}): {raw[:120]}")
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind) if isinstance(kind, str) else None
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        raise ValueError(
            f"TF_CONFIG: task {kind!r} {index!r} has no entry in cluster[{kind!r}] ({form})"
        )
    return f"{kind} {index}", str(members[index])


def writes_workdir(config: Config) -> bool:
    """Whether this process writes the run's files: always, but on a multi-worker run's
    other workers (TF_CONFIG: not the chief, nor worker 0 of a cluster without one). Known
    before any strategy exists, so the binary can lock WORKDIR first."""
    if config.train.strategy != "multi_worker":
        return True
    task, _ = tf_config_task()
    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
    return task == "chief 0" or (task == "worker 0" and "chief" not in cluster)


def is_chief(strategy) -> bool:
    """True on the worker that writes checkpoints, events and samples (always, on one machine)."""
    return bool(strategy.extended.should_checkpoint)


def _worker_name(strategy) -> str:
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}" if resolver else "worker"


def _is_multi_worker(strategy) -> bool:
    """Replicas on other machines than this one (MultiWorkerMirroredStrategy over >1 worker)."""
    return len(strategy.extended.worker_devices) < strategy.num_replicas_in_sync


def _max_over_workers(strategy):
    """f(int values) -> their element-wise maximum over all workers (a collective: every
    worker must call it the same number of times)."""
    import tensorflow as tf

    @tf.function
    def gathered_max(values):
        per_replica = strategy.run(lambda v: v[None], args=(values,))
        return tf.reduce_max(strategy.gather(per_replica, axis=0), axis=0)

    def over_workers(*values: int) -> list[int]:
        padded = [*values, *[-(2**62)] * (4 - len(values))]  # one shape: traced once
        return [int(v) for v in gathered_max(tf.constant(padded, tf.int64)).numpy()[: len(values)]]

    return over_workers


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
        self._ema_update = tf.function(self._ema_cross_replica)

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

    def target(self, batch):
        """G's target condition [N, C] and the classification target G is trained toward.

        Without blending or extrapolation (`--blend_prob=0 --extrapolate_prob=0`, the paper)
        these are the target clusters' conditions and their ids t [N]. With blending, each
        sample whose draw falls below blend_prob gets the blend
        s_c + a (s_t - s_c) + b (s_t2 - s_c) (`space.blend_conditions`, the form `--strength`
        and combinations use), with (1-a-b, a, b) uniform on the simplex (normalised
        exponentials: Dirichlet(1, 1, 1)) and t2 a uniformly drawn cluster; the label is then
        the same blend of the clusters, (1-a-b) onehot(c) + a onehot(t) + b onehot(t2),
        float [N, k]. With extrapolation, a fraction extrapolate_prob of the samples that are
        not blended gets s_c + beta (s_t - s_c), beta uniform on [1, MAX_STRENGTH] (the
        strengths past 1 that translate and the SavedModel accept), and keeps the hard label
        t. Every sample's draws are a function of (seed, sample position): the D and G steps
        of an iteration, any number of replicas and a resumed run all see the same targets.
        """
        import tensorflow as tf

        t, c = batch["target"], batch["cluster"]
        p, p_extra = self.config.train.blend_prob, self.config.train.extrapolate_prob
        condition, labels = self.condition(t), t
        if not p and not p_extra:
            return condition, labels
        k = int(self.centroids.shape[0])
        std_from = self.stats.dim if self.config.model.condition == "mean_std" else None
        table = self.condition(tf.range(k))
        source = self.condition(c)
        one_hot_t = tf.one_hot(t, k)
        blended_rows = tf.zeros_like(t, tf.bool)
        if p:
            draws = self._sample_uniforms(batch["position"], stream=3, shape=[5])
            second = tf.minimum(tf.cast(draws[:, 1] * k, tf.int32), k - 1)
            exponentials = -tf.math.log1p(-draws[:, 2:])  # [N, 3], each Exp(1)
            simplex = tf.math.divide_no_nan(
                exponentials, tf.reduce_sum(exponentials, axis=1, keepdims=True)
            )
            weights = simplex[:, 1:2] * one_hot_t + simplex[:, 2:3] * tf.one_hot(second, k)
            blended = space.blend_conditions(source, weights, table, std_from=std_from)
            # Rows that are not blended keep the plain target exactly (no matmul rounding).
            blended_rows = draws[:, 0] < p
            condition = tf.where(blended_rows[:, None], blended, condition)
            labels = tf.where(
                blended_rows[:, None], weights + simplex[:, :1] * tf.one_hot(c, k), one_hot_t
            )
        if p_extra:
            draws = self._sample_uniforms(batch["position"], stream=4, shape=[2])
            beta = 1.0 + (sig.MAX_STRENGTH - 1.0) * draws[:, 1:2]
            beyond = space.blend_conditions(source, beta * one_hot_t, table, std_from=std_from)
            chosen = (draws[:, 0] < p_extra) & ~blended_rows
            condition = tf.where(chosen[:, None], beyond, condition)
        return condition, labels

    def _step_function(self, replica_fn, **kwargs):
        """tf.function(batch -> per-replica scalars) running replica_fn(batch, **kwargs)."""
        import tensorflow as tf

        def run(batch):
            return self.strategy.run(functools.partial(replica_fn, **kwargs), args=(batch,))

        return tf.function(run)

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
            gp = (
                losses_lib.gradient_penalty(
                    lambda images: self.discriminator(images, training=True)[0],
                    x,
                    fake,
                    alpha,
                    global_batch_size=t.batch_size,
                )
                if penalty
                else tf.zeros([])
            )
            total, terms = losses_lib.discriminator_loss(
                real_scores=real_src,
                fake_scores=fake_src,
                real_logits=real_cls,
                source_labels=c,
                penalty=gp,
                lambda_cls=t.lambda_cls,
                lambda_gp=t.lambda_gp * t.gp_every if penalty else 0.0,
                global_batch_size=t.batch_size,
            )
            if not penalty:
                del terms["D/gp"]
            scaled = self._scaled(self.d_optimizer, total)
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.d_optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {**terms, "D/total": total}

    def _g_conditions(self, batch):
        """A G update's (s_t, classification target, s_c): see `target`."""
        cond_t, target_labels = self.target(batch)
        return cond_t, target_labels, self.condition(batch["cluster"])

    def _g_forward(self, x, cond_t, cond_c):
        """G(x, s_t) and, when --lambda_self weighs it, G(x, s_c): (translated, own or None)."""
        if self.config.train.lambda_self:
            # Self-reconstruction G(x, s_c) ≈ x (FUNIT/TUNIT), only when weighted: it shares
            # the encoder pass and the decoder batch of G(x, s_t).
            return self.generator.forward_each(x, [cond_t, cond_c], training=True)
        return self.generator.forward(x, cond_t, training=True), None

    def _g_update(self, tape, batch, cond_c, target_labels, translated, own):
        """The rest of G's loss after its forward pass, recorded on `tape`, and G's update."""
        t = self.config.train
        x = batch["image"]
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
            )
            scaled = self._scaled(self.g_optimizer, total)
        variables = self.generator.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.g_optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {**terms, "G/total": total}

    def _g_replica_step(self, batch):
        """One G update (paper §2.4: adversarial, classification, cycle and latent losses)."""
        import tensorflow as tf

        cond_t, target_labels, cond_c = self._g_conditions(batch)
        with tf.GradientTape() as tape:
            translated, own = self._g_forward(batch["image"], cond_t, cond_c)
        return self._g_update(tape, batch, cond_c, target_labels, translated, own)

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

        cond_t, target_labels, cond_c = self._g_conditions(batch)
        with tf.GradientTape() as tape:
            translated, own = self._g_forward(batch["image"], cond_t, cond_c)
        d_terms = self._d_replica_step(batch, penalty, fake=translated.images)
        g_terms = self._g_update(tape, batch, cond_c, target_labels, translated, own)
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


def sample_grid(
    inputs: np.ndarray, translations: list[np.ndarray], labels: Sequence[str] = ()
) -> np.ndarray:
    """Rows = inputs; first column the input, then one column per target cluster.

    inputs and each translation: uint8 [N,S,S,3]. With `labels` (one per column), a header
    row names the columns. Returns uint8 [header + N*S, (1 + len(translations))*S, 3].
    """
    columns = [inputs, *translations]
    rows = [np.concatenate([col[i] for col in columns], axis=1) for i in range(len(inputs))]
    grid = np.concatenate(rows, axis=0)
    if not labels:
        return grid
    return np.concatenate([_column_header(labels, inputs.shape[2]), grid], axis=0)


def _column_header(labels: Sequence[str], width: int) -> np.ndarray:
    """A white strip with each label centred over its `width`-px column (Pillow's font)."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(8, min(14, width // 3))
    font = ImageFont.load_default(size=size)
    strip = Image.new("RGB", (width * len(labels), size + 4), "white")
    draw = ImageDraw.Draw(strip)
    for i, label in enumerate(labels):
        draw.text((i * width + width / 2, 2), label, fill="black", font=font, anchor="mt")
    return np.asarray(strip)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def summary_writer(logdir: str, *, first_step: int):
    """A tf.summary writer for `logdir`, after dropping every event at steps >= `first_step`
    from the run's earlier event files, so each step appears once.

    A resumed run restarts from its last checkpoint and logs again the steps between that
    checkpoint and the point where the earlier process stopped (a --noresume run: all of
    them). TensorBoard's restart mechanism (an event `SessionLog.START` purges later steps)
    does not cover this: the legacy loader never purges TF2 summaries (tensors), the plugin
    loader ignores the first START of a run, and the fast loader (TensorBoard's data server)
    does not purge. So the earlier files are rewritten (atomically) without those events;
    a record cut short by a kill ends the file's readable part.
    """
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    os.makedirs(logdir, exist_ok=True)
    for name in sorted(os.listdir(logdir)):
        if "tfevents" not in name:
            continue
        path = os.path.join(logdir, name)
        events, truncated = [], False
        try:
            for record in tf.data.TFRecordDataset(path):
                events.append(event_pb2.Event.FromString(record.numpy()))
        except tf.errors.DataLossError:
            truncated = True  # cut short by a kill: keep the whole records
        kept = [e for e in events if e.step < first_step or not e.HasField("summary")]
        if len(kept) == len(events) and not truncated:
            continue
        tmp = os.path.join(logdir, ".rewrite.tmp")  # no "tfevents" in it: TensorBoard skips it
        with tf.io.TFRecordWriter(tmp) as records:
            for event in kept:
                records.write(event.SerializeToString())
        os.replace(tmp, path)
        logging.info(
            "%s: dropped %d events of steps >= %d (logged again by this run)",
            path,
            len(events) - len(kept),
            first_step,
        )
    return tf.summary.create_file_writer(logdir)


def load_training_data(config: Config) -> tuple[training_data.TrainingData, artifacts.ClusterStats]:
    """Cluster artifacts and input images of the run, preparing the inputs (and clustering
    them) first when that was not done yet."""
    if pipeline.clusters_exist(config):
        sources.prepare_inputs(config)
    else:
        logging.info(
            "no clusters in %s yet: running the clustering stage first", config.clusters_dir
        )
        pipeline.run_clustering(config)
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    images, clusters, _ = artifacts.read_assignments(
        os.path.join(config.clusters_dir, artifacts.ASSIGNMENTS)
    )
    if len(images) and clusters.max() >= stats.num_clusters:
        raise ValueError(
            f"{config.clusters_dir}: assignments name cluster {clusters.max()} but stats.npz "
            f"has {stats.num_clusters}; re-run the clustering stage"
        )
    root = sources.images_dir(config)
    if config.train.holdout:
        keep, _ = sources.split_holdout(images, config.train.holdout)
        images, clusters = [images[i] for i in keep], clusters[keep]
    return training_data.TrainingData(root, tuple(images), clusters, stats.num_clusters), stats


def _resume(config: Config, trainer: Trainer, strategy) -> str | None:
    """Restores the newest checkpoint of WORKDIR/checkpoints that is whole and readable;
    returns it, or None when the folder holds no checkpoint file at all.

    A damaged newer checkpoint is skipped with a warning naming it. A folder that holds
    checkpoint files none of which restores stops the run (never a silent step 0 over them).

    Raises:
        ClusterMismatchError: the checkpoint was trained on other clusters.
        ValueError: its models differ from the flags', or no checkpoint restores.
    """
    fix = "start over with --noresume (or a new --workdir to keep the old run)"

    def restore(prefix: str) -> None:
        # Before the restore: a checkpoint of other clusters would otherwise fail deep inside
        # it with TensorFlow's shape dump (k or d changed).
        checkpoints.check_clusters(prefix, config, start_over=fix)
        with strategy.scope():
            try:
                status = trainer.checkpoint.restore(checkpoint_files.readable(prefix))
                status.assert_existing_objects_matched()
            except (AssertionError, ValueError) as e:
                raise checkpoints.mismatch_error(
                    prefix, "its models do not match the ones", e, f"; or {fix}"
                ) from None

    found, skipped = checkpoint_files.newest(config.checkpoint_dir, restore)
    for prefix, why in skipped:
        logging.warning("skipping checkpoint %s: %s", prefix, why)
    if found is None:
        if checkpoint_files.holds_work(config.checkpoint_dir):
            raise ValueError(
                checkpoint_files.no_checkpoint_error(config.checkpoint_dir, skipped, fix)
            )
        return None
    # The step is a MirroredVariable under MirroredStrategy: read it with .numpy().
    logging.info("resumed from %s at step %d", found, trainer.step.numpy())
    return found


@contextlib.contextmanager
def _peers_named(strategy, step: int, checkpoint: str | None):
    """A collective that fails because another worker is gone becomes one line saying so."""
    import tensorflow as tf

    try:
        yield
    except (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.AbortedError,
        tf.errors.CancelledError,
    ) as e:
        raise ValueError(
            f"{_worker_name(strategy)}: lost contact with another worker at step {step} "
            f"({cli.one_line(e)[:200]}); restart every worker with the same command: they "
            f"resume from the last checkpoint ({checkpoint or 'none yet'})"
        ) from None


def train(config: Config, *, max_steps: int | None = None) -> TrainResult:
    """Trains (or resumes) up to `config.train.num_steps`, or `max_steps` more iterations.

    Writes checkpoints to WORKDIR/checkpoints, TensorBoard events and sample grids to
    WORKDIR/train. Ctrl-C (SIGINT) and SIGTERM save a checkpoint before stopping.
    """
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("WARNING")  # TF's per-save INFO lines drown the progress lines
    t = config.train
    # The strategy first: MultiWorkerMirroredStrategy must exist before other TF work.
    strategy = make_strategy(t.strategy)
    chief, multi_worker = is_chief(strategy), _is_multi_worker(strategy)
    over_workers = _max_over_workers(strategy) if multi_worker else None
    if chief:
        data, stats = load_training_data(config)  # clusters first when missing
    if multi_worker:
        over_workers(0)  # a barrier: the others wait while the chief clusters
        if not chief:
            if not pipeline.clusters_exist(config):
                raise FileNotFoundError(
                    f"{_worker_name(strategy)}: no clusters in {config.clusters_dir} after the "
                    "chief's clustering stage: --workdir must be one folder shared by all "
                    "workers (same path on every machine)"
                )
            data, stats = load_training_data(config)
    keras.utils.set_random_seed(config.seed)  # same initial weights for the same seed
    logging.info(
        "training on %d images, %d clusters, %d replica(s)%s, global batch %d",
        len(data.images),
        stats.num_clusters,
        strategy.num_replicas_in_sync,
        f" ({_worker_name(strategy)}{', chief' if chief else ''})" if multi_worker else "",
        t.batch_size,
    )
    fingerprint = artifacts.clusters_fingerprint(config.clusters_dir)
    trainer = Trainer(config, stats, strategy, clusters_fingerprint=fingerprint)
    logging.info("precision: %s (--mixed_precision=%s)", trainer.precision, t.mixed_precision)
    if chief:
        for name in checkpoint_files.remove_debris(config.checkpoint_dir):
            logging.warning("removed %s: left by an interrupted save", name)
    resume_from = _resume(config, trainer, strategy) if t.resume else None
    path = resume_from

    def save(step: int) -> str:
        logging.info("saving checkpoint %d", step)
        if chief:
            written = checkpoint_files.write(trainer.checkpoint, config.checkpoint_dir, step)
            checkpoint_files.prune(config.checkpoint_dir, t.keep_checkpoints)
            return written
        # Every worker takes part in every save (TensorFlow's multi-worker pattern: saving
        # may run collectives); the others' copy goes to a scratch folder, deleted at once.
        scratch = tempfile.mkdtemp(prefix="xplore_tf-worker-checkpoint-")
        try:
            checkpoint_files.write(trainer.checkpoint, scratch, step)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return checkpoint_files.prefix_of(config.checkpoint_dir, step)  # the chief's

    start = int(trainer.step.numpy())
    if multi_worker:
        # All workers must continue from the same state (a shared WORKDIR).
        position = int(trainer.position.numpy())
        top_step, top_position, low_step, low_position = over_workers(
            start, position, -start, -position
        )
        if (top_step, top_position) != (-low_step, -low_position):
            raise ValueError(
                f"{_worker_name(strategy)}: the workers start from different checkpoints "
                f"(steps {-low_step}..{top_step}; this one: {resume_from or 'none'} at step "
                f"{start}): --workdir must be one folder shared by all workers"
            )
    end = t.num_steps if max_steps is None else min(t.num_steps, start + max_steps)

    skip_log = images_lib.SkipLog()
    dataset = training_data.training_dataset(
        data,
        image_size=config.model.image_size,
        batch_size=t.batch_size,
        seed=config.seed,
        start_position=int(trainer.position.numpy()),
        crop_size=config.data.crop_size,
        flip=t.random_flip,
        skip_log=skip_log,
    )
    # Each worker reads every global batch and keeps its replicas' slices (positions are
    # consecutive in a batch; replica r of R gets the r-th slice, as on one machine), so the
    # split does not depend on how many machines hold the replicas, nor on skipped files.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))

    # Fixed inputs for sample grids: the first images of the set, into the largest clusters.
    n_fixed = min(t.sample_images, len(data.images))
    fixed = np.stack(
        [
            images_lib.load_image(
                os.path.join(data.root, p),
                size=config.model.image_size,
                crop_size=config.data.crop_size,
            )
            for p in data.images[:n_fixed]
        ]
    )
    grid_clusters = np.argsort(-stats.sizes, kind="stable")[: t.sample_clusters]
    grid_labels = ["input", *(f"c{c}" for c in grid_clusters)]
    eval_targets = (
        np.asarray(data.clusters[:n_fixed]) + 1 + np.arange(n_fixed)
    ) % stats.num_clusters

    if chief:
        writer = summary_writer(config.train_dir, first_step=start + 1)
    else:
        writer = tf.summary.create_noop_writer()
    history: list[dict] = []
    last: dict = {}
    stop_signal: list[int] = []
    stop_agreed = False  # multi-worker: a signal on any worker stops all after this step

    def _on_signal(signum, frame):
        stop_signal.append(signum)

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    rate, started, window_start, window_step = 0.0, time.perf_counter(), time.perf_counter(), start
    step = saved_at = start
    try:
        while step < end and not (stop_agreed if multi_worker else stop_signal):
            with _peers_named(strategy, step, path) if multi_worker else contextlib.nullcontext():
                batch = next(iterator)
                scalars = trainer.train_step(step, batch)
            bad = {k: v for k, v in scalars.items() if not math.isfinite(v)}
            if bad:
                raise TrainingDivergedError(
                    f"step {step}: non-finite loss {bad}; stopped without saving, the last good "
                    f"checkpoint is {path}. Lower --g_lr/--d_lr or check the data."
                )
            last.update(scalars)
            positions = np.concatenate(
                [np.asarray(p) for p in strategy.experimental_local_results(batch["position"])]
            )
            position = int(positions.max())  # this worker's part of the global batch
            if multi_worker:
                with _peers_named(strategy, step, path):
                    position, stop = over_workers(position, int(bool(stop_signal)))
                stop_agreed = bool(stop)
            step += 1
            trainer.step.assign(step)
            trainer.position.assign(position + 1)

            if step % t.log_every == 0 or step == end:
                now = time.perf_counter()
                rate = (step - window_step) * t.batch_size / max(now - window_start, 1e-9)
                window_start, window_step = now, step
                eta = (end - step) * t.batch_size / max(rate, 1e-9)
                terms = " ".join(f"{k}={last[k]:.3f}" for k in SCALARS if k in last)
                logging.info(
                    "step %d/%d %s | %.1f images/s, ETA %s",
                    step,
                    t.num_steps,
                    terms,
                    rate,
                    time.strftime("%H:%M:%S", time.gmtime(eta)),
                )
            if step % t.summary_every == 0 or step == end:
                record = {"step": step, **{k: last[k] for k in SCALARS if k in last}}
                record["lr"] = float(learning_rate(t.g_lr, step, t.num_steps, t.lr_decay_steps))
                record["images_per_second"] = rate
                history.append(record)
                with writer.as_default(step=step):
                    for k, v in record.items():
                        if k != "step":
                            tf.summary.scalar(k if "/" in k else f"train/{k}", v)
            if chief and (step % t.sample_every == 0 or step == end):
                translations = [
                    trainer.translate(fixed, np.full(n_fixed, c)) for c in grid_clusters
                ]
                grid = sample_grid(fixed, translations, grid_labels)
                io_utils.write_bytes(
                    os.path.join(config.train_dir, "samples", f"step_{step:07d}.png"), _png(grid)
                )
                accuracy = trainer.target_accuracy(fixed, eval_targets)
                with writer.as_default(step=step):
                    tf.summary.image("samples", grid[None], max_outputs=1)
                    tf.summary.scalar("eval/target_accuracy", accuracy)
            if step % t.checkpoint_every == 0:
                path = save(step)
                saved_at = step
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        writer.flush()
    if stop_signal:
        logging.warning(
            "signal %d: saving a checkpoint at step %d and stopping", stop_signal[0], step
        )
    elif stop_agreed:
        logging.warning(
            "another worker was signalled: saving a checkpoint at step %d and stopping", step
        )
    if (step > start and saved_at != step) or not path:
        path = save(step)
    accuracy = trainer.target_accuracy(fixed, eval_targets)
    elapsed = time.perf_counter() - started
    if skip_log.count:
        logging.warning("%d unreadable image visits were skipped during training", skip_log.count)
    return TrainResult(
        step=step,
        history=history,
        images_per_second=(step - start) * t.batch_size / max(elapsed, 1e-9),
        target_accuracy=accuracy,
        checkpoint=path,
        stopped_by_signal=bool(stop_signal) or stop_agreed,
        chief=is_chief(strategy),
        steps_run=step - start,
    )
