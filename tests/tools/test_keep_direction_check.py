"""tools/keep_direction_check.py's argument parsing and scoring (its maths: tests/clustering/test_space.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tools import keep_direction_check as kdc


def test_pairs_parse_names_and_clusters():
    assert kdc._pairs("Male:10,Blond_Hair:47") == {"Male": 10, "Blond_Hair": 47}


def test_shared_strengths_parse_or_say_what_was_expected():
    assert kdc._strengths("1,1.5") == [1.0, 1.5]
    with pytest.raises(SystemExit, match="--shared_strengths: expected numbers"):
        kdc._strengths("1,strong")
    for bad in ("", "2.5", "-1"):
        with pytest.raises(SystemExit, match=r"expected numbers in \[0, 2\]"):
            kdc._strengths(bad)


def test_balanced_accuracy_weighs_both_classes_alike():
    truth = np.array([1, 1, 1, 1, 0, 0], bool)
    judged = np.array([1, 1, 1, 0, 0, 1], bool)  # 3/4 of positives, 1/2 of negatives
    assert kdc._balanced_accuracy(judged, truth) == pytest.approx(0.625)
    assert np.isnan(kdc._balanced_accuracy(judged[:4], truth[:4]))  # no negatives
