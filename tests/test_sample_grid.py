"""The training sample grid: rows = inputs, columns = the input then each target cluster,
under a header that names the columns."""

from __future__ import annotations

import numpy as np

from xplore_tf import train_lib


def test_columns_in_order_under_a_header_naming_them():
    inputs = np.zeros((2, 32, 32, 3), np.uint8)
    grid = train_lib.sample_grid(inputs, [inputs + 100, inputs + 200])
    assert grid.shape == (64, 96, 3)
    assert [grid[40, 16 + 32 * j, 0] for j in range(3)] == [0, 100, 200]
    labelled = train_lib.sample_grid(inputs, [inputs + 100, inputs + 200], ["input", "c3", "c12"])
    header = labelled.shape[0] - 64
    assert 8 <= header <= 18 and np.array_equal(labelled[header:], grid)
    strip = labelled[:header].astype(int)
    assert (strip < 128).any(axis=2).sum() > 20  # text drawn
    inked = [(strip[:, 32 * j : 32 * (j + 1)] < 128).sum() for j in range(3)]
    assert all(ink > 0 for ink in inked) and inked[1] < inked[0]  # "c3" is shorter than "input"
