"""The projection of tools/keep_direction_check.py, by hand."""

from __future__ import annotations

import numpy as np

from tools import keep_direction_check as kdc


def test_the_kept_direction_is_removed_and_rescaling_keeps_the_length():
    d = np.array([[3.0, 4.0], [0.0, 2.0], [5.0, 0.0]])
    out = kdc.project_out(d, np.array([2.0, 0.0]), rescale=False)
    np.testing.assert_allclose(out, [[0, 4], [0, 2], [0, 0]])
    scaled = kdc.project_out(d, np.array([1.0, 0.0]), rescale=True)
    np.testing.assert_allclose(scaled, [[0, 5], [0, 2], [0, 0]])  # all along it: nothing left


def test_pairs_parse_names_and_clusters():
    assert kdc._pairs("Male:10,Blond_Hair:47") == {"Male": 10, "Blond_Hair": 47}
