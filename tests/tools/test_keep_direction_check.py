"""tools/keep_direction_check.py's argument parsing (its maths: tests/clustering/test_space.py)."""

from __future__ import annotations

from tools import keep_direction_check as kdc


def test_pairs_parse_names_and_clusters():
    assert kdc._pairs("Male:10,Blond_Hair:47") == {"Male": 10, "Blond_Hair": 47}
