"""tools/droplet_labels_check.py's reading and counting (the detector: tests/evaluation)."""

from __future__ import annotations

import os

import pytest

from tools import droplet_labels_check as dlc

LABELS = os.path.join(
    os.path.dirname(__file__), "..", "..", "docs", "experiments", "2026-12-06-droplet-labels.csv"
)


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return str(path)


def test_the_committed_labels_read_and_count_by_hand():
    rows = dlc.read_labels(LABELS)
    assert len(rows) == 92 + 192 + 24  # the 24 flags of the two adopted D 6 + credit models
    assert sum(r.selection == "random" for r in rows) == 192
    assert {r.label for r in rows} == set(dlc.LABELS)
    flagged = [r.label != "not_droplet" for r in rows]
    counts = dlc.confusion(rows, flagged)
    assert counts[("flagged", "droplet")] == [32 + 3, 0]
    assert counts[("random", "not_droplet")] == [0, 189]


def test_bad_labels_name_the_file_line_and_what_was_expected(tmp_path):
    header = "selection,model,image,target_cluster,label\n"
    with pytest.raises(ValueError, match=r"line 2: label 'blob'; expected one of"):
        dlc.read_labels(_write(tmp_path, header + "random,m,a.jpg,3,blob\n"))
    with pytest.raises(ValueError, match=r"line 3: target_cluster 'x' is not an int"):
        dlc.read_labels(
            _write(tmp_path, header + "random,m,a.jpg,3,droplet\nflagged,m,b,x,unsure\n")
        )
    with pytest.raises(ValueError, match=r"missing columns \['selection'\]"):
        dlc.read_labels(_write(tmp_path, "model,image,target_cluster,label\n"))


def test_rule_changes_parse_or_say_which_fields_exist():
    from xplore_tf.evaluation import droplets

    rule = dlc.parse_rule("black=8,band=2,new_darkness=false")
    assert rule.black == 8.0 and rule.band == 2 and isinstance(rule.band, int)
    assert rule.new_darkness is False and dlc.parse_rule("new_darkness=1").new_darkness
    assert dlc.parse_rule("") == droplets.DropletRule()
    for bad in ("blackness=8", "black", "black="):
        with pytest.raises(ValueError, match="expected NAME=VALUE with NAME one of"):
            dlc.parse_rule(bad)
    with pytest.raises(ValueError, match="--rule 'black=x': expected a float"):
        dlc.parse_rule("black=x")
    with pytest.raises(ValueError, match="--rule 'new_darkness=yes': expected a bool"):
        dlc.parse_rule("new_darkness=yes")


def test_a_runs_flags_that_this_version_removed_are_left_out(tmp_path, capsys):
    from absl import flags

    import xplore_tf.flags  # noqa: F401  (defines the flags)

    path = tmp_path / "flags_train.txt"
    path.write_text("--g_channels=32\n--nohf_bypass\n--contrast_prob=0.5\n")
    assert dlc._known_flags(str(path), flags.FLAGS) == ["--g_channels=32", "--nohf_bypass"]
    assert "leaving out --contrast_prob=0.5" in capsys.readouterr().out


def test_each_run_is_loaded_from_its_own_folder_with_only_its_own_flags(tmp_path, monkeypatch):
    import numpy as np
    from absl import flags

    from xplore_tf.data import sources
    from xplore_tf.evaluation import droplets, generator, labelled

    loaded = []

    class Unchanged:  # a generator that returns its input: no droplet anywhere
        def translate(self, x, targets):
            return x

    def checkpoint_generator_fns(config, checkpoint):
        loaded.append((config.workdir, config.model.g_channels))
        return Unchanged()

    def load_images(root, paths, *, size, crop_size):
        return list(range(len(paths))), np.full((len(paths), size, size, 3), 128, np.uint8)

    monkeypatch.setattr(generator, "checkpoint_generator_fns", checkpoint_generator_fns)
    monkeypatch.setattr(sources, "prepare_inputs", lambda config: str(tmp_path))
    monkeypatch.setattr(labelled, "load_images", load_images)
    wide, default = tmp_path / "wide", tmp_path / "default"
    for run, extra in ((wide, "--g_channels=32\n"), (default, "")):
        run.mkdir()
        (run / "flags_train.txt").write_text("# recorded\n--workdir=/moved/away\n" + extra)
    rows = [dlc.Labelled("random", "m", "a.jpg", 1, "not_droplet")]
    try:
        assert dlc.flags_of_run(str(wide), rows, droplets.DropletRule()) == [False]
        assert dlc.flags_of_run(str(default), rows, droplets.DropletRule()) == [False]
    finally:
        flags.FLAGS.unparse_flags()
    assert loaded == [(str(wide), 32), (str(default), flags.FLAGS["g_channels"].default)]


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    labels = _write(tmp_path, "selection,model,image,target_cluster,label\n")
    assert dlc.main([f"--labels={labels}", f"--run=m={tmp_path}"]) == 2
    assert capsys.readouterr().err == (
        f"error: --run 'm={tmp_path}': expected MODEL=WORKDIR of a trained run\n"
    )
