"""tools/keep_direction_check.py's argument parsing (its maths: tests/clustering/test_space.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tools import keep_direction_check as kdc


def test_pairs_parse_names_and_clusters():
    assert kdc._pairs("Male:10,Blond_Hair:47") == {"Male": 10, "Blond_Hair": 47}


def test_strengths_parse_or_say_what_was_expected_naming_the_flag():
    assert kdc._strengths("1,1.5,1.0", "shared_strengths") == [1.0, 1.5]  # one row each
    with pytest.raises(SystemExit, match="--keep_strengths: expected numbers"):
        kdc._strengths("1,strong", "keep_strengths")
    for bad in ("", "2.5", "-1"):
        with pytest.raises(SystemExit, match=r"--shared_strengths=.* expected numbers in \[0, 2\]"):
            kdc._strengths(bad, "shared_strengths")


def test_cluster_lists_take_whole_numbers_or_say_what_was_expected_naming_the_flag():
    assert kdc._whole_numbers("24, 35,24", "keep_also") == [24, 35]  # one each
    assert kdc._whole_numbers("", "analog_neighbors") == []
    with pytest.raises(SystemExit, match="--keep_also: expected whole numbers"):
        kdc._whole_numbers("women", "keep_also")
    for bad in ("1,two", "-1", "1.5"):
        with pytest.raises(SystemExit, match="--analog_neighbors: expected whole numbers"):
            kdc._whole_numbers(bad, "analog_neighbors")


def test_analog_target_is_the_candidate_nearest_the_inputs_own_cluster():
    from types import SimpleNamespace

    centroids = np.array([[0.0], [1.0], [10.0], [11.0]], np.float32)
    s = SimpleNamespace(
        stats=SimpleNamespace(centroids=centroids),
        clusters=np.array([0, 3, 1]),
        held=np.array([0, 1, 2]),
    )
    # target 3's nearest other cluster is 2: inputs of clusters 0 and 1 go there, 3's stay
    assert kdc._analog_targets(s, 3, 1).tolist() == [2, 3, 2]
    assert kdc._analog_targets(s, 3, 3).tolist() == [0, 3, 1]  # every cluster a candidate
