"""The training loop of XploreGAN (DESIGN.md §3-4): the library behind `xplore_tf.train`.

Three parts, as TF-GAN and Model Garden split training: the step (`train_step.Trainer`: G, D,
G_ema, optimizers and the distributed D and G updates), the distribution set-up
(`distribute`: strategy, TF_CONFIG, the chief) and this loop (inputs, resume, checkpoints,
signals, TensorBoard summaries, sample grids).

The checkpoint holds G, D, G_ema, both optimizers, the step and the data position, and every
random draw is a function of (seed, step or sample position), so a resumed run is the run
that was interrupted.

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
import io
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence

import numpy as np
from absl import logging

from xplore_tf import checkpoint_files, checkpoints, io_utils
from xplore_tf.clustering import artifacts, pipeline
from xplore_tf.common import pixels
from xplore_tf.config import Config
from xplore_tf.data import images as images_lib
from xplore_tf.data import sources
from xplore_tf.data import training as training_data
from xplore_tf.distribute import (
    is_chief,
    is_multi_worker,
    make_strategy,
    max_over_workers,
    peers_named,
    tf_config_task,
    worker_name,
    writes_workdir,
)
from xplore_tf.train_step import Trainer, learning_rate

# The step's and the set-up's names that callers reach through this module.
__all__ = [
    "Trainer",
    "TrainResult",
    "TrainingDivergedError",
    "is_chief",
    "learning_rate",
    "load_training_data",
    "make_strategy",
    "sample_grid",
    "summary_writer",
    "tf_config_task",
    "train",
    "writes_workdir",
]

SCALARS = (
    "D/adv",
    "D/gp",
    "D/cls",
    "G/adv",
    "G/cls",
    "G/rec",
    "G/lat",
    "G/self",
    "G/mask",
    "G/chroma",
)


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
    signal: int = 0  # the signal that stopped this process (0: none, or another worker's)
    chief: bool = True  # this process writes the run's files (the only one but multi-worker)
    steps_run: int = 0  # iterations this call trained (0: the run had reached num_steps)


def sample_grid(
    inputs: np.ndarray, translations: list[np.ndarray], labels: Sequence[str] = ()
) -> np.ndarray:
    """Rows = inputs; first column the input, then one column per target cluster.

    inputs and each translation: uint8 [N,S,S,3]. With `labels` (one per column), a header
    row names the columns. Returns uint8 [header + N*S, (1 + len(translations))*S, 3].
    """
    columns = [inputs, *translations]
    return pixels.grid([[col[i] for col in columns] for i in range(len(inputs))], labels)


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


@dataclasses.dataclass
class _Run:
    """What one call of `train` works with, after the distribution set-up."""

    config: Config
    strategy: object
    trainer: Trainer
    data: training_data.TrainingData
    stats: artifacts.ClusterStats
    chief: bool
    # Element-wise max of ints over the workers (a collective); None on one machine.
    over_workers: Callable[..., list[int]] | None


def _set_up(config: Config) -> _Run:
    """The strategy, the inputs (the chief clusters first when needed) and the Trainer."""
    import keras

    # The strategy first: MultiWorkerMirroredStrategy must exist before other TF work.
    strategy = make_strategy(config.train.strategy)
    chief, multi_worker = is_chief(strategy), is_multi_worker(strategy)
    over_workers = max_over_workers(strategy) if multi_worker else None
    if chief:
        data, stats = load_training_data(config)  # clusters first when missing
    if multi_worker:
        over_workers(0)  # a barrier: the others wait while the chief clusters
        if not chief:
            if not pipeline.clusters_exist(config):
                raise FileNotFoundError(
                    f"{worker_name(strategy)}: no clusters in {config.clusters_dir} after the "
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
        f" ({worker_name(strategy)}{', chief' if chief else ''})" if multi_worker else "",
        config.train.batch_size,
    )
    fingerprint = artifacts.clusters_fingerprint(config.clusters_dir)
    trainer = Trainer(config, stats, strategy, clusters_fingerprint=fingerprint)
    logging.info(
        "precision: %s (--mixed_precision=%s)", trainer.precision, config.train.mixed_precision
    )
    return _Run(config, strategy, trainer, data, stats, chief, over_workers)


def _check_same_start(run: _Run, resume_from: str | None) -> None:
    """All workers must continue from the same state (a shared WORKDIR)."""
    start, position = int(run.trainer.step.numpy()), int(run.trainer.position.numpy())
    top_step, top_position, low_step, low_position = run.over_workers(
        start, position, -start, -position
    )
    if (top_step, top_position) != (-low_step, -low_position):
        raise ValueError(
            f"{worker_name(run.strategy)}: the workers start from different checkpoints "
            f"(steps {-low_step}..{top_step}; this one: {resume_from or 'none'} at step "
            f"{start}): --workdir must be one folder shared by all workers"
        )


def _distributed_batches(run: _Run, skip_log: images_lib.SkipLog):
    """An iterator of the strategy's global batches, from the checkpoint's data position.

    Each worker reads every global batch and keeps its replicas' slices (positions are
    consecutive in a batch; replica r of R gets the r-th slice, as on one machine), so the
    split does not depend on how many machines hold the replicas, nor on skipped files.
    """
    import tensorflow as tf

    config = run.config
    dataset = training_data.training_dataset(
        run.data,
        image_size=config.model.image_size,
        batch_size=config.train.batch_size,
        seed=config.seed,
        start_position=int(run.trainer.position.numpy()),
        crop_size=config.data.crop_size,
        flip=config.train.random_flip,
        skip_log=skip_log,
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(run.strategy.experimental_distribute_dataset(dataset.with_options(options)))


def _save(run: _Run, step: int) -> str:
    """Writes a checkpoint at `step` (pruning old ones); returns the chief's prefix."""
    config = run.config
    logging.info("saving checkpoint %d", step)
    if run.chief:
        written = checkpoint_files.write(run.trainer.checkpoint, config.checkpoint_dir, step)
        checkpoint_files.prune(config.checkpoint_dir, config.train.keep_checkpoints)
        return written
    # Every worker takes part in every save (TensorFlow's multi-worker pattern: saving may
    # run collectives); the others' copy goes to a scratch folder, deleted at once.
    scratch = tempfile.mkdtemp(prefix="xplore_tf-worker-checkpoint-")
    try:
        checkpoint_files.write(run.trainer.checkpoint, scratch, step)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return checkpoint_files.prefix_of(config.checkpoint_dir, step)


class _SampleGrids:
    """Fixed inputs (the first images of the set) into the largest clusters, written as a
    labelled PNG grid and a TensorBoard image, with D's target accuracy on them."""

    def __init__(self, config: Config, data: training_data.TrainingData, stats):
        t = config.train
        n = min(t.sample_images, len(data.images))
        self.config = config
        self.inputs = np.stack(
            [
                images_lib.load_image(
                    os.path.join(data.root, p),
                    size=config.model.image_size,
                    crop_size=config.data.crop_size,
                )
                for p in data.images[:n]
            ]
        )
        self.clusters = np.argsort(-stats.sizes, kind="stable")[: t.sample_clusters]
        self.labels = ["input", *(f"c{c}" for c in self.clusters)]
        self.targets = (np.asarray(data.clusters[:n]) + 1 + np.arange(n)) % stats.num_clusters

    def target_accuracy(self, trainer: Trainer) -> float:
        return trainer.target_accuracy(self.inputs, self.targets)

    def write(self, trainer: Trainer, writer, step: int) -> None:
        import tensorflow as tf

        n = len(self.inputs)
        translations = [trainer.translate(self.inputs, np.full(n, c)) for c in self.clusters]
        grid = sample_grid(self.inputs, translations, self.labels)
        path = os.path.join(self.config.train_dir, "samples", f"step_{step:07d}.png")
        io_utils.write_bytes(path, _png(grid))
        accuracy = self.target_accuracy(trainer)
        with writer.as_default(step=step):
            tf.summary.image("samples", grid[None], max_outputs=1)
            tf.summary.scalar("eval/target_accuracy", accuracy)


@contextlib.contextmanager
def _stop_signals():
    """Records SIGINT/SIGTERM in the yielded list instead of stopping (the loop saves first)."""
    received: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, frame: received.append(signum))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Progress:
    """The loop's log lines (losses, images/s, ETA) and TensorBoard scalars."""

    def __init__(self, config: Config, writer, *, start: int, end: int):
        self.train, self.writer, self.end = config.train, writer, end
        self.last: dict = {}
        self.history: list[dict] = []
        self.rate = 0.0
        self.window = (time.perf_counter(), start)

    def after_step(self, step: int, scalars: dict) -> None:
        import tensorflow as tf

        t = self.train
        self.last.update(scalars)
        if step % t.log_every == 0 or step == self.end:
            now = time.perf_counter()
            self.rate = (step - self.window[1]) * t.batch_size / max(now - self.window[0], 1e-9)
            self.window = (now, step)
            eta = (self.end - step) * t.batch_size / max(self.rate, 1e-9)
            terms = " ".join(f"{k}={self.last[k]:.3f}" for k in SCALARS if k in self.last)
            logging.info(
                "step %d/%d %s | %.1f images/s, ETA %s",
                step,
                t.num_steps,
                terms,
                self.rate,
                time.strftime("%H:%M:%S", time.gmtime(eta)),
            )
        if step % t.summary_every == 0 or step == self.end:
            record = {"step": step, **{k: self.last[k] for k in SCALARS if k in self.last}}
            record["lr"] = float(learning_rate(t.g_lr, step, t.num_steps, t.lr_decay_steps))
            record["images_per_second"] = self.rate
            self.history.append(record)
            with self.writer.as_default(step=step):
                for k, v in record.items():
                    if k != "step":
                        tf.summary.scalar(k if "/" in k else f"train/{k}", v)


@dataclasses.dataclass
class _LoopState:
    step: int
    saved_at: int
    checkpoint: str | None
    stop_signal: list[int]
    stop_agreed: bool = False  # multi-worker: a signal on any worker stops all after this step


def _one_iteration(run: _Run, state: _LoopState, iterator) -> dict:
    """One training iteration on the next batch; advances the step and the data position.

    Raises:
        TrainingDivergedError: a loss is NaN or Inf (nothing saved).
    """
    multi_worker = run.over_workers is not None
    peers = peers_named if multi_worker else lambda *args: contextlib.nullcontext()
    with peers(run.strategy, state.step, state.checkpoint):
        batch = next(iterator)
        scalars = run.trainer.train_step(state.step, batch)
    bad = {k: v for k, v in scalars.items() if not math.isfinite(v)}
    if bad:
        raise TrainingDivergedError(
            f"step {state.step}: non-finite loss {bad}; stopped without saving, the last good "
            f"checkpoint is {state.checkpoint}. Lower --g_lr/--d_lr or check the data."
        )
    local = run.strategy.experimental_local_results(batch["position"])
    position = int(np.concatenate([np.asarray(p) for p in local]).max())  # this worker's part
    if multi_worker:
        with peers_named(run.strategy, state.step, state.checkpoint):
            position, stop = run.over_workers(position, int(bool(state.stop_signal)))
        state.stop_agreed = bool(stop)
    state.step += 1
    run.trainer.step.assign(state.step)
    run.trainer.position.assign(position + 1)
    return scalars


def _loop(run: _Run, state: _LoopState, end: int, progress: _Progress, samples, iterator):
    """Iterations until `end` or a stop signal, with logs, summaries, samples and saves."""
    t = run.config.train
    multi_worker = run.over_workers is not None
    while state.step < end and not (state.stop_agreed if multi_worker else state.stop_signal):
        scalars = _one_iteration(run, state, iterator)
        progress.after_step(state.step, scalars)
        if run.chief and (state.step % t.sample_every == 0 or state.step == end):
            samples.write(run.trainer, progress.writer, state.step)
        if state.step % t.checkpoint_every == 0:
            state.checkpoint = _save(run, state.step)
            state.saved_at = state.step


def _log_stop(state: _LoopState) -> None:
    if state.stop_signal:
        logging.warning(
            "signal %d: saving a checkpoint at step %d and stopping",
            state.stop_signal[0],
            state.step,
        )
    elif state.stop_agreed:
        logging.warning(
            "another worker was signalled: saving a checkpoint at step %d and stopping",
            state.step,
        )


def train(config: Config, *, max_steps: int | None = None) -> TrainResult:
    """Trains (or resumes) up to `config.train.num_steps`, or `max_steps` more iterations.

    Writes checkpoints to WORKDIR/checkpoints, TensorBoard events and sample grids to
    WORKDIR/train. Ctrl-C (SIGINT) and SIGTERM save a checkpoint before stopping.

    Raises:
        TrainingDivergedError: a loss became NaN or Inf.
        ValueError: a checkpoint that does not fit the flags or clusters, workers that start
            from different checkpoints or lost contact (one line each).
    """
    import tensorflow as tf

    tf.get_logger().setLevel("WARNING")  # TF's per-save INFO lines drown the progress lines
    t = config.train
    run = _set_up(config)
    if run.chief:
        for name in checkpoint_files.remove_debris(config.checkpoint_dir):
            logging.warning("removed %s: left by an interrupted save", name)
    resume_from = _resume(config, run.trainer, run.strategy) if t.resume else None
    if run.over_workers is not None:
        _check_same_start(run, resume_from)
    start = int(run.trainer.step.numpy())
    end = t.num_steps if max_steps is None else min(t.num_steps, start + max_steps)
    skip_log = images_lib.SkipLog()
    iterator = _distributed_batches(run, skip_log)
    samples = _SampleGrids(config, run.data, run.stats)
    writer = (
        summary_writer(config.train_dir, first_step=start + 1)
        if run.chief
        else tf.summary.create_noop_writer()
    )
    progress = _Progress(config, writer, start=start, end=end)
    started = time.perf_counter()
    with _stop_signals() as received:
        state = _LoopState(step=start, saved_at=start, checkpoint=resume_from, stop_signal=received)
        try:
            _loop(run, state, end, progress, samples, iterator)
        finally:
            writer.flush()
    _log_stop(state)
    if (state.step > start and state.saved_at != state.step) or not state.checkpoint:
        state.checkpoint = _save(run, state.step)
    accuracy = samples.target_accuracy(run.trainer)
    elapsed = time.perf_counter() - started
    if skip_log.count:
        logging.warning("%d unreadable image visits were skipped during training", skip_log.count)
    return TrainResult(
        step=state.step,
        history=progress.history,
        images_per_second=(state.step - start) * t.batch_size / max(elapsed, 1e-9),
        target_accuracy=accuracy,
        checkpoint=state.checkpoint,
        stopped_by_signal=bool(state.stop_signal) or state.stop_agreed,
        signal=state.stop_signal[0] if state.stop_signal else 0,
        chief=run.chief,
        steps_run=state.step - start,
    )
