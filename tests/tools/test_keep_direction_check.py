"""tools/keep_direction_check.py's argument parsing (its maths: tests/clustering/test_space.py)."""

from __future__ import annotations

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


def test_keep_also_takes_cluster_ids_or_says_what_was_expected():
    assert kdc._cluster_ids("24,35") == [24, 35] and kdc._cluster_ids("") == []
    with pytest.raises(SystemExit, match="--keep_also: expected cluster ids"):
        kdc._cluster_ids("women")
