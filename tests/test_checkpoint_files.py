"""xplore_tf/checkpoint_files.py: lookup without glob patterns, damage, debris, pruning."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from tests_support import with_file_size_limit

from xplore_tf import checkpoint_files


def _checkpoint(value: float = 1.0):
    import tensorflow as tf

    return tf.train.Checkpoint(
        step=tf.Variable(7, dtype=tf.int64),
        weights=tf.Variable(np.full((200, 200), value, np.float32)),
    )


@pytest.mark.parametrize("folder", ["plain", "exp[1]", "a*b?c{d}"])
def test_any_folder_name_is_found_written_and_read(tmp_path, folder):
    """`[`, `]`, `*`, `?` in a folder name are TensorFlow glob syntax; here they are names."""
    d = str(tmp_path / folder / "checkpoints")
    for step in (100, 200):
        checkpoint_files.write(_checkpoint(step), d, step)
    assert checkpoint_files.steps(d) == [200, 100]
    newest = checkpoint_files.prefix_of(d, 200)
    assert checkpoint_files.is_whole(newest)
    assert checkpoint_files.read_tensor(newest, "step/.ATTRIBUTES/VARIABLE_VALUE") == 7
    assert checkpoint_files.read_tensor(newest, "no/such/key") is None
    restored = _checkpoint(0.0)
    restored.restore(checkpoint_files.readable(newest)).assert_existing_objects_matched()
    assert float(restored.weights[0, 0]) == 200.0


def test_a_stale_checkpoint_list_misleads_nobody(tmp_path):
    d = str(tmp_path)
    checkpoint_files.write(_checkpoint(), d, 100)
    with open(os.path.join(d, "checkpoint"), "w") as f:  # CheckpointManager's list, stale
        f.write('model_checkpoint_path: "ckpt-900"\nall_model_checkpoint_paths: "ckpt-900"\n')
    assert checkpoint_files.steps(d) == [100] and checkpoint_files.holds_work(d)
    assert not checkpoint_files.holds_work(str(tmp_path / "none"))


def _cut(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("damage", ["data", "index", "shard"])
def test_newest_skips_a_damaged_checkpoint_and_names_it(tmp_path, damage):
    d = str(tmp_path)
    for step in (100, 200):
        checkpoint_files.write(_checkpoint(step), d, step)
    bad = checkpoint_files.prefix_of(d, 200)
    if damage == "data":
        _cut(bad + ".data-00000-of-00001")
    elif damage == "index":
        _cut(bad + ".index")
    else:
        os.remove(bad + ".data-00000-of-00001")
    restored = _checkpoint(0.0)

    def accept(prefix):
        restored.restore(checkpoint_files.readable(prefix)).assert_existing_objects_matched()

    found, skipped = checkpoint_files.newest(d, accept)
    assert found == checkpoint_files.prefix_of(d, 100)
    assert float(restored.weights[0, 0]) == 100.0
    assert [p for p, _ in skipped] == [bad]
    expected = {"data": "Read less bytes", "index": "not an sstable", "shard": "missing"}
    assert expected[damage] in skipped[0][1]
    _cut(found + ".index")
    found, skipped = checkpoint_files.newest(d, accept)
    assert found is None and len(skipped) == 2
    line = checkpoint_files.no_checkpoint_error(d, skipped, "start over with --noresume")
    assert "ckpt-200" in line and "ckpt-100" in line and "\n" not in line


def test_prune_keeps_the_newest_and_debris_is_what_a_kill_leaves(tmp_path):
    d = str(tmp_path)
    for step in (1, 2, 3, 4):
        checkpoint_files.write(_checkpoint(), d, step)
    assert checkpoint_files.prune(d, 2) == [checkpoint_files.prefix_of(d, s) for s in (2, 1)]
    assert checkpoint_files.steps(d) == [4, 3] and checkpoint_files.debris(d) == []
    os.remove(os.path.join(d, "ckpt-3.index"))  # a prune killed between index and data
    os.makedirs(os.path.join(d, "ckpt-5_temp"))  # a save killed before its merge
    assert sorted(checkpoint_files.remove_debris(d)) == [
        "ckpt-3.data-00000-of-00001",
        "ckpt-5_temp",
    ]
    assert sorted(os.listdir(d)) == ["ckpt-4.data-00000-of-00001", "ckpt-4.index"]


WRITE_UNDER_LIMIT = r"""
import sys
import numpy as np
import tensorflow as tf
from xplore_tf import checkpoint_files
folder = sys.argv[1]
small = tf.train.Checkpoint(weights=tf.Variable(np.zeros(10, np.float32)))
checkpoint_files.write(small, folder, 1)
big = tf.train.Checkpoint(weights=tf.Variable(np.zeros((1000, 1000), np.float32)))
try:
    checkpoint_files.write(big, folder, 2)
except checkpoint_files.CheckpointWriteError as e:
    print("ERROR", e)
"""


def test_a_write_that_runs_out_of_space_is_one_line_and_leaves_nothing(tmp_path):
    """A file-size limit (as `ulimit -f`, or a full disk): the save fails with one line naming
    the checkpoint and the one kept, and its partial files are gone."""

    folder = tmp_path / "exp[2]"
    out = subprocess.run(
        with_file_size_limit([sys.executable, "-c", WRITE_UNDER_LIMIT, str(folder)], kib=977),
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=120,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, out.stdout + out.stderr[-2000:]
    assert f"cannot write checkpoint {folder}/ckpt-2" in lines[0]
    assert "the newest checkpoint kept is ckpt-1" in lines[0]
    assert sorted(os.listdir(folder)) == ["ckpt-1.data-00000-of-00001", "ckpt-1.index"]
