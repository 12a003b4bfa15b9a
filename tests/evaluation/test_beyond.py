"""metrics.json's reference-group and combination entries: round trips, files written before
the shared part and the single rates existed, and the lines and rows that show them."""

from __future__ import annotations

import json

import pytest

from xplore_tf.evaluation import beyond, html_report, summary


def _measure(rate: float, identity: float) -> beyond.HeldOutMeasure:
    return beyond.HeldOutMeasure(
        rate_all=rate,
        rate_lacking=rate,
        baseline_lacking=0.1,
        inputs_lacking=40,
        l1_to_input=0.05,
        identity_mean_distance=0.4,
        identity_verified=identity,
    )


GROUP = beyond.ReferenceGroup(
    attribute="Blond_Hair",
    group_images=20,
    inputs=480,
    attribute_cluster=6,
    nearest_cluster=6,
    distance=0.2,
    relative_distance=0.44,
    toward_group=_measure(0.425, 0.904),
    toward_nearest_cluster=_measure(0.699, 0.906),
    toward_shared=_measure(0.609, 0.873),
)
PAIR = beyond.Combination(
    pair="Male+Eyeglasses",
    clusters=(8, 14),
    inputs_lacking_both=293,
    both_present={"combined": 0.239, "only Male": 0.143, "only Eyeglasses": 0.218},
    baseline_both_present=0.01,
    combined_identity_verified=0.72,
    combined_l1_to_input=0.07,
    alone_rates={"Male": 0.25, "Eyeglasses": 0.6},
    alone_identity_verified={"Male": 0.87, "Eyeglasses": 0.918},
)


def _round_trip(cls, value):
    return cls.from_json(json.loads(json.dumps(value.to_json())))


def test_round_trips_keep_the_shared_part_and_the_single_rates():
    groups = beyond.ReferenceGroups(20, (GROUP,))
    assert _round_trip(beyond.ReferenceGroups, groups) == groups
    pairs = beyond.Combinations((PAIR,))
    assert _round_trip(beyond.Combinations, pairs) == pairs
    assert PAIR.independent == pytest.approx(0.25 * 0.6)
    assert PAIR.to_json()["independent"] == pytest.approx(0.15)
    assert groups.to_json()["mean_rate_lacking_shared"] == pytest.approx(0.609)


def test_files_written_before_the_shared_part_load_and_show_a_dash():
    old_group = GROUP.to_json()
    del old_group["toward_shared"]
    old_pair = PAIR.to_json()
    for key in ("alone_rates", "alone_identity_verified", "independent"):
        del old_pair[key]
    group = beyond.ReferenceGroup.from_json(old_group)
    pair = beyond.Combination.from_json(old_pair)
    assert group.toward_shared is None and pair.independent is None
    lines = summary._reference_group_lines(beyond.ReferenceGroups(20, (group,)))
    assert "shared part -  nearest cluster" in lines[1]
    assert len(summary._combination_lines(beyond.Combinations((pair,)))) == 2  # no second line
    html_report._reference_groups_section(beyond.ReferenceGroups(20, (group,)))
    html_report._combinations_section(beyond.Combinations((pair,)))


def test_summary_and_report_show_the_shared_part_and_what_independence_would_give():
    lines = summary._reference_group_lines(beyond.ReferenceGroups(20, (GROUP,)))
    assert "group 0.425  shared part 0.609  nearest cluster 6 0.699" in lines[1]
    assert "identity 0.904 / 0.873 / 0.906" in lines[1]
    text = "\n".join(summary._combination_lines(beyond.Combinations((PAIR,))))
    assert "if independent 0.150 (Male alone 0.250  Eyeglasses alone 0.600)" in text
    assert "identity combined 0.720, alone 0.870 / 0.918" in text
    page = html_report._reference_groups_section(beyond.ReferenceGroups(20, (GROUP,)))
    assert "0.425 / 0.609 / 0.699" in page and "0.904 / 0.873 / 0.906" in page
    page = html_report._combinations_section(beyond.Combinations((PAIR,)))
    assert "<td>0.150</td>" in page and "0.720 / 0.870 / 0.918" in page
