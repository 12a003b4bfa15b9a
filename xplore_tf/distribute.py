"""The distribution set-up of training: the tf.distribute strategy, TF_CONFIG, the chief, and
the collectives that keep several workers in step (DESIGN.md §4).

`MultiWorkerMirroredStrategy` reads the cluster from TF_CONFIG; every worker runs the same
loop on one shared WORKDIR; the chief writes the run's files. Helpers here know nothing of
GANs: they take a strategy and plain integers.
"""

from __future__ import annotations

import contextlib
import json
import os

from xplore_tf import cli
from xplore_tf.config import Config

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


def worker_name(strategy) -> str:
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}" if resolver else "worker"


def is_multi_worker(strategy) -> bool:
    """Replicas on other machines than this one (MultiWorkerMirroredStrategy over >1 worker)."""
    return len(strategy.extended.worker_devices) < strategy.num_replicas_in_sync


def max_over_workers(strategy):
    """f(int values) -> their element-wise maximum over all workers (a collective: every
    worker must call it the same number of times)."""
    import tensorflow as tf

    @tf.function(autograph=False)
    def gathered_max(values):
        per_replica = strategy.run(lambda v: v[None], args=(values,))
        return tf.reduce_max(strategy.gather(per_replica, axis=0), axis=0)

    def over_workers(*values: int) -> list[int]:
        padded = [*values, *[-(2**62)] * (4 - len(values))]  # one shape: traced once
        return [int(v) for v in gathered_max(tf.constant(padded, tf.int64)).numpy()[: len(values)]]

    return over_workers


@contextlib.contextmanager
def peers_named(strategy, step: int, checkpoint: str | None):
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
            f"{worker_name(strategy)}: lost contact with another worker at step {step} "
            f"({cli.one_line(e)[:200]}); restart every worker with the same command: they "
            f"resume from the last checkpoint ({checkpoint or 'none yet'})"
        ) from None
