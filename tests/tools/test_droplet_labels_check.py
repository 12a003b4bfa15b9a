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
    assert len(rows) == 92 + 192
    assert sum(r.selection == "random" for r in rows) == 192
    assert {r.label for r in rows} == set(dlc.LABELS)
    flagged = [r.label != "not_droplet" for r in rows]
    counts = dlc.confusion(rows, flagged)
    assert counts[("flagged", "droplet")] == [32, 0]
    assert counts[("random", "not_droplet")] == [0, 189]


def test_bad_labels_name_the_file_line_and_what_was_expected(tmp_path):
    header = "selection,model,image,target_cluster,label\n"
    with pytest.raises(ValueError, match=r"line 2: label 'blob'.*expected one of"):
        dlc.read_labels(_write(tmp_path, header + "random,m,a.jpg,3,blob\n"))
    with pytest.raises(ValueError, match=r"line 3: target_cluster 'x' is not an int"):
        dlc.read_labels(
            _write(tmp_path, header + "random,m,a.jpg,3,droplet\nflagged,m,b,x,unsure\n")
        )
    with pytest.raises(ValueError, match=r"missing columns \['selection'\]"):
        dlc.read_labels(_write(tmp_path, "model,image,target_cluster,label\n"))


def test_rule_changes_parse_or_say_which_fields_exist():
    rule = dlc.parse_rule("black=8,band=2,new_darkness=false")
    assert rule.black == 8.0 and rule.band == 2 and isinstance(rule.band, int)
    assert rule.new_darkness is False and dlc.parse_rule("new_darkness=1").new_darkness
    assert dlc.parse_rule("") == dlc.parse_rule(" ".strip())
    for bad in ("blackness=8", "black", "black="):
        with pytest.raises(ValueError, match="expected NAME=VALUE with NAME one of"):
            dlc.parse_rule(bad)


def test_a_runs_flags_that_this_version_removed_are_left_out(tmp_path, capsys):
    from absl import flags

    import xplore_tf.flags  # noqa: F401  (defines the flags)

    path = tmp_path / "flags_train.txt"
    path.write_text("--g_channels=32\n--nohf_bypass\n--contrast_prob=0.5\n")
    assert dlc._known_flags(str(path), flags.FLAGS) == ["--g_channels=32", "--nohf_bypass"]
    assert "leaving out --contrast_prob=0.5" in capsys.readouterr().out
