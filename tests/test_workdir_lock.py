"""One writer per workdir: a second writer stops with one line; a killed holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from tests_support import PROJECT_ROOT

from xplore_tf import workdir_lock

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

HOLD = r"""
import sys, time
from xplore_tf import workdir_lock
try:
    workdir_lock.hold(sys.argv[1], "train")
except workdir_lock.WorkdirBusyError as e:
    print("BUSY", e, flush=True)
    sys.exit(3)
print("HELD", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(workdir, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(workdir), str(seconds)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "HELD"
    return proc


def test_a_second_writer_is_told_who_holds_the_workdir(tmp_path):
    proc = _holder(tmp_path, 60)
    try:
        with pytest.raises(workdir_lock.WorkdirBusyError) as info:
            workdir_lock.hold(str(tmp_path), "export")
        message = str(info.value)
        assert message.startswith(f"{tmp_path} is in use by xplore_tf.train (PID {proc.pid} on ")
        assert "another --workdir" in message and "\n" not in message
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_never_blocks_the_next_run(tmp_path):
    proc = _holder(tmp_path, 60)
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops the lock
    proc.wait()
    workdir_lock.hold(str(tmp_path), "train")  # the stale file is taken over at once
    try:
        with open(tmp_path / workdir_lock.LOCK_FILE) as f:
            assert f.read().startswith(f"xplore_tf.train (PID {os.getpid()} on ")
        workdir_lock.hold(str(tmp_path), "train")  # held already: a no-op
    finally:
        workdir_lock.release(str(tmp_path))


@pytest.mark.parametrize("stage", ["train", "cluster", "export", "evaluate"])
def test_every_writing_binary_stops_in_one_line_while_another_holds_the_workdir(tmp_path, stage):
    proc = _holder(tmp_path, 120)
    try:
        start = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", f"xplore_tf.{stage}", f"--workdir={tmp_path}"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
    finally:
        proc.kill()
        proc.wait()
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"xplore_tf.{stage}: error: {tmp_path} is in use by xplore_tf.train (PID {proc.pid}"
    ), last
    assert time.perf_counter() - start < 60  # refused at once, before any work
    assert sorted(os.listdir(tmp_path)) == [workdir_lock.LOCK_FILE]
