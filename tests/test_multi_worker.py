"""`--strategy=multi_worker`: two worker processes on 127.0.0.1 (TF_CONFIG) train the tiny
model as one machine does with the same replicas and global batch, write each artifact
once (from the chief), stop together on a signal to either worker, and resume exactly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from tests_support import PROJECT_ROOT, newest_checkpoint

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
STEPS = 4  # G steps at iterations 2 and 4 (n_critic=2): the noise scales leave 0 at 2

# One worker of the cluster: TF_CONFIG comes from the environment, as for a user.
# argv: tests dir, workdir, phase ("first": stopped by a SIGTERM to the non-chief during
# step 2; "resume": resumed to the end by new processes), num_steps.
WORKER = r"""
import json, os, signal, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import tensorflow as tf
from absl import logging
from tests_support import tiny_config, trainer_weights
from xplore_tf import train_lib

logging.set_verbosity(logging.INFO)  # as the CLI's: progress and "resumed from" lines
workdir, phase, num_steps = sys.argv[2], sys.argv[3], int(sys.argv[4])
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
trainers, managers, samples = [], [], []


class Recorded(train_lib.Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        trainers.append(self)

    def train_step(self, step, batch):
        scalars = super().train_step(step, batch)
        if phase == "first" and index == 1 and step == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as a cluster manager would, to one worker
        return scalars


def write(checkpoint, directory, step, _write=train_lib.checkpoint_files.write):
    if directory not in managers:
        managers.append(directory)
    return _write(checkpoint, directory, step)


def write_bytes(path, data, _write=train_lib.io_utils.write_bytes):
    if os.path.basename(os.path.dirname(path)) == "samples":
        samples.append(os.path.basename(path))
    _write(path, data)


# Patched where the loop looks them up (train_lib's globals), not where they are defined.
train_lib.Trainer, train_lib.checkpoint_files.write = Recorded, write
train_lib.io_utils.write_bytes = write_bytes
result = train_lib.train(tiny_config(workdir, strategy="multi_worker", num_steps=num_steps))
np.savez(f"{workdir}-{phase}-worker{index}.npz", **trainer_weights(trainers[-1]))
print("RESULT " + json.dumps({
    "chief": train_lib.is_chief(trainers[-1].strategy), "step": result.step,
    "checkpoint": result.checkpoint, "stopped": result.stopped_by_signal, "samples": samples,
    "managers": [(d, os.path.exists(d)) for d in managers],
}), flush=True)
"""

# The same global batch on one machine with the same two replicas (two logical CPUs).
REFERENCE = r"""
import sys
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests_support import tiny_config
from xplore_tf import train_lib

# Patched where the loop looks it up (train_lib's globals), not in xplore_tf.distribute.
train_lib.make_strategy = lambda name: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert train_lib.train(tiny_config(sys.argv[2], num_steps=int(sys.argv[4]))).step == int(sys.argv[4])
"""

# Five TensorFlow processes on a shared 2-core machine: one thread pool thread each.
QUIET = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


def _launch(script, workdir, phase, **env):
    return subprocess.Popen(
        [sys.executable, "-c", script, TESTS_DIR, str(workdir), phase, str(STEPS)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **QUIET, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _workers(workdir, phase):
    """Both workers of a phase, on two free ports of 127.0.0.1."""
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [
        _launch(
            WORKER,
            workdir,
            phase,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
        )
        for i in range(2)
    ]


def _wait(processes, timeout=240):
    """[(RESULT record or None, stderr)] per process, all exited with 0 (killed on timeout)."""
    deadline, outputs = time.monotonic() + timeout, []
    try:
        for p in processes:
            out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
            assert p.returncode == 0, err[-4000:]
            records = [json.loads(x[7:]) for x in out.splitlines() if x.startswith("RESULT ")]
            outputs.append((records[-1] if records else None, err))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return outputs


def _checkpoint(workdir):
    """Every variable of the latest checkpoint of a run (G, D, G_ema, optimizers, step...)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(newest_checkpoint(f"{workdir}/checkpoints"))
    return {
        name.split("/.ATTRIBUTES")[0]: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "save_counter" not in name and "OBJECT_GRAPH" not in name
    }


def _dump(path):
    with np.load(path) as f:
        return dict(f)


def _max_abs_diff(a, b, what):
    """max |a - b| over all variables, after asserting rtol=atol=1e-5 (the 1-vs-2-replica
    test's tolerance) and equal non-numeric entries (the clusters fingerprint)."""
    assert a.keys() == b.keys() and len(a) > 50, what
    diff = 0.0
    for name, x in a.items():
        if isinstance(x, bytes):
            assert x == b[name], f"{what}: {name}"
            continue
        np.testing.assert_allclose(x, b[name], rtol=1e-5, atol=1e-5, err_msg=f"{what}: {name}")
        if x.size:
            diff = max(diff, float(np.max(np.abs(x.astype(np.float64) - b[name]))))
    return diff


def test_two_workers_equal_one_machine_write_once_and_resume(tmp_path):
    started = time.monotonic()
    run, reference = tmp_path / "run", tmp_path / "reference"
    # Phase 1: both workers start, the chief clusters (the other waits), the non-chief gets
    # SIGTERM during step 2: both stop at step 2 with one checkpoint. Meanwhile one machine
    # (same two replicas, same global batch) trains the same run uninterrupted.
    (chief, chief_err), (other, other_err), _ = _wait(
        [*_workers(run, "first"), _launch(REFERENCE, reference, "reference")]
    )
    assert chief["chief"] and not other["chief"], (chief, other)
    ckpt_2 = str(run / "checkpoints" / "ckpt-2")
    for record in (chief, other):
        assert (record["step"], record["stopped"], record["checkpoint"]) == (2, True, ckpt_2)
    assert "signal 15: saving a checkpoint at step 2 and stopping" in other_err
    assert "another worker was signalled: saving a checkpoint at step 2" in chief_err
    assert "running the clustering stage first" in chief_err
    assert "running the clustering stage" not in other_err
    # Phase 2: new processes (new ports) resume both from ckpt-2 and train to the end.
    (resumed, resumed_err), (resumed_other, resumed_other_err) = _wait(_workers(run, "resume"))
    seconds = time.monotonic() - started
    for record, err in ((resumed, resumed_err), (resumed_other, resumed_other_err)):
        assert f"resumed from {ckpt_2} at step 2" in err, err[-3000:]
        ckpt = str(run / "checkpoints" / f"ckpt-{STEPS}")
        assert (record["step"], record["stopped"], record["checkpoint"]) == (STEPS, False, ckpt)

    # Written once, by the chief: its checkpoints, events and sample grids; the other worker
    # saved into a throwaway folder (outside the workdir), deleted after each save.
    for record, other_record in ((chief, other), (resumed, resumed_other)):
        assert record["managers"] == [[str(run / "checkpoints"), True]]
        [(scratch, exists)] = other_record["managers"]
        assert not exists and not scratch.startswith(str(tmp_path)), scratch
        assert other_record["samples"] == []
    assert resumed["samples"] == ["step_0000003.png", "step_0000004.png"]
    assert sorted(os.listdir(run / "checkpoints")) == [
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        f"ckpt-{STEPS}.data-00000-of-00001",
        f"ckpt-{STEPS}.index",
    ]
    assert len([f for f in os.listdir(run / "train") if "tfevents" in f]) == 2  # 1 per chief

    # The weights: identical on both workers at each stop; the resumed two-worker run
    # equals the uninterrupted one-machine run, noise scales included (same replicas, so
    # the same per-replica noise draws).
    diffs = {
        "workers at step 2": _max_abs_diff(
            _dump(f"{run}-first-worker0.npz"), _dump(f"{run}-first-worker1.npz"), "step 2"
        ),
        "workers at the end": _max_abs_diff(
            _dump(f"{run}-resume-worker0.npz"), _dump(f"{run}-resume-worker1.npz"), "end"
        ),
        "2 workers (resumed) vs 1 machine": _max_abs_diff(
            _checkpoint(run), _checkpoint(reference), "vs one machine"
        ),
    }
    print(f"max |difference| {diffs} ({seconds:.0f} s)")
    assert diffs["workers at step 2"] == diffs["workers at the end"] == 0.0, diffs


def test_tf_config_mistakes_are_named_in_one_line(tmp_path):
    import pytest

    from xplore_tf import train_lib

    ok = {
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 1},
    }
    assert train_lib.tf_config_task({"TF_CONFIG": json.dumps(ok)}) == ("worker 1", "127.0.0.1:2")
    for environ, match in (
        ({}, "--strategy=multi_worker needs TF_CONFIG set on every machine"),
        ({"TF_CONFIG": '{"cluster": {"worker": ["a:1"] "task": 1}'}, "TF_CONFIG is not valid JSON"),
        ({"TF_CONFIG": '{"cluster": {"worker": ["a:1"]}}'}, "needs 'cluster' and 'task'"),
        (
            {"TF_CONFIG": json.dumps({**ok, "task": {"type": "worker", "index": 2}})},
            r"task 'worker' 2 has no entry",
        ),
    ):
        with pytest.raises(ValueError, match=match) as info:
            train_lib.tf_config_task(environ)
        assert "\n" not in str(info.value)


def _train_multi_worker(workdir, tf_config: dict | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "xplore_tf.train",
            f"--workdir={workdir}",
            "--strategy=multi_worker",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_a_worker_whose_port_is_taken_says_which_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = {
            "cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
            "task": {"type": "worker", "index": 0},
        }
        res = _train_multi_worker(tmp_path, config)
    assert res.returncode == 2, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"xplore_tf.train: error: worker 0: cannot start its gRPC server on 127.0.0.1:{port}"
    ), last
    assert "Traceback" not in res.stderr
    res = _train_multi_worker(tmp_path, None)
    assert res.returncode == 2
    assert "needs TF_CONFIG set on every machine" in res.stderr.strip().splitlines()[-1]
