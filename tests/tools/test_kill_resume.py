"""The kill -9 / resume check's parts: where its kills land and what it counts as a broken
artifact. The check itself (`python -m tools.kill_resume --kills=20`: every resume
succeeds, no artifact is half-written, the final weights are exact) runs in CI before the
tests (.ci/run), not in them: one run of it costs more than a minute."""

from __future__ import annotations

import os
import random


def test_kills_land_in_every_phase_clustering_first_export_last():
    """The plan of `python -m tools.kill_resume --kills=20` (CI runs it before the tests:
    20 kills, then the final weights against an uninterrupted run's)."""
    from tools import kill_resume

    phases = kill_resume.plan(20, random.Random(0))
    assert phases[:2] == ["clustering"] * 2 and phases[-4:] == ["export"] * 4
    assert set(phases[2:-4]) == {"training", "checkpoint"} and len(phases) == 20
    assert kill_resume.plan(3, random.Random(0))[::2] == ["clustering", "export"]


def test_check_artifacts_reads_every_listed_checkpoint_and_flags_debris_after_a_restart(
    tmp_path,
):
    """Every checkpoint with an index must load; what a kill inside a save or a prune leaves
    (a `_temp` folder, data without an index) is a finding only once training has started
    again (which removes it: `checkpoint_files.remove_debris`)."""
    import tensorflow as tf

    from tools import kill_resume
    from xplore_tf import checkpoint_files

    folder = str(tmp_path / "checkpoints")
    checkpoint = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64))
    for n in (2, 4, 6):
        checkpoint_files.write(checkpoint, folder, n)
    assert kill_resume.check_artifacts(str(tmp_path)) == []
    os.remove(os.path.join(folder, "ckpt-2.index"))  # a prune cut short: data left over
    os.makedirs(os.path.join(folder, "ckpt-8_temp"))  # a save cut short
    assert kill_resume.check_artifacts(str(tmp_path), just_killed=True) == []
    assert len(kill_resume.check_artifacts(str(tmp_path))) == 1
    assert sorted(checkpoint_files.remove_debris(folder)) == [
        "ckpt-2.data-00000-of-00001",
        "ckpt-8_temp",
    ]
    assert kill_resume.check_artifacts(str(tmp_path)) == []
    with open(os.path.join(folder, "ckpt-6.index"), "r+b") as f:
        f.truncate(10)  # a listed checkpoint that does not load
    problems = kill_resume.check_artifacts(str(tmp_path))
    assert len(problems) == 1 and problems[0].startswith(os.path.join(folder, "ckpt-6"))
