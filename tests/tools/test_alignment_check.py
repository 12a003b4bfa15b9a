"""tools/alignment_check.py: how alike two sets of edits are, checked by hand."""

import numpy as np
import pytest

from tools import alignment_check


def test_the_same_edit_on_other_inputs_correlates_fully():
    rng = np.random.default_rng(0)
    a = rng.integers(50, 200, (3, 4, 4, 3))
    b = a + 10  # the other alignment: every pixel 10 levels brighter
    edit = rng.integers(-20, 20, (3, 4, 4, 3))
    result = alignment_check.compare(a, a + edit, b, b + edit)
    assert result["photos"] == 3
    assert result["inputs_differ"] == result["outputs_differ"] == 10.0
    assert result["edit_correlation_median"] == pytest.approx(1.0)
    assert result["edit_size_ratio"] == pytest.approx(1.0)


def test_an_edit_half_as_large_and_one_reversed():
    a = np.zeros((2, 2, 2, 3))
    edit = np.array([1.0, -1.0] * 6).reshape(2, 2, 3)  # both photos: the same pattern
    out_a = a + np.stack([edit, edit])
    out_b = a + np.stack([0.5 * edit, -edit])  # half as large; reversed
    result = alignment_check.compare(a, out_a, a, out_b)
    # correlations 1 and -1: median 0, 10th percentile -1 + 0.1 * 2
    assert result["edit_correlation_median"] == pytest.approx(0.0)
    assert result["edit_correlation_p10"] == pytest.approx(-0.8)
    assert result["edit_size_ratio"] == pytest.approx(0.75)


def test_an_edit_that_changes_nothing_is_left_out_of_the_correlation():
    rng = np.random.default_rng(1)
    a = rng.integers(50, 200, (3, 4, 4, 3))
    edit = rng.integers(-20, 20, (3, 4, 4, 3))
    out_b = a + edit
    out_b[2] = a[2]  # the third photo's second translation changed nothing
    result = alignment_check.compare(a, a + edit, a, out_b)
    assert result["edit_correlation_median"] == pytest.approx(1.0)
