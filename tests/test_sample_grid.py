"""Image grids under a header that names their columns: the training sample grid (rows =
inputs, columns = the input then each target cluster) and the evaluation's translation matrix."""

from __future__ import annotations

import types

import numpy as np

from xplore_tf import train_lib
from xplore_tf.common import pixels
from xplore_tf.evaluation import html_report, transfer
from xplore_tf.evaluation import pipeline as eval_pipeline


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


def test_a_label_of_two_lines_makes_a_taller_header():
    one = pixels.column_header(["c1", "c2"], 64)
    two = pixels.column_header(["c1", "c2\nEyeglasses"], 64, gap=2)
    assert one.shape[1] == 128 and two.shape[1] == 130 and two.shape[0] > one.shape[0]


def test_translation_matrix_png_names_its_columns():
    inputs = np.zeros((2, 64, 64, 3), np.uint8)
    matrix = html_report.TranslationMatrix(
        inputs,
        [inputs + 100],
        headers=["cluster 7 · glasses (Eyeglasses)"],
        row_labels=["a", "b"],
        labels=["c7\nEyeglasses"],
    )
    image = matrix.image()
    header = image.shape[0] - (2 * 64 + 2)
    assert image.shape[1] == 2 * 64 + 2 and header > 20  # two lines over the cluster
    assert image[header + 10, 64 + 2 + 10, 0] == 100  # the translation under the header
    inked = [(image[:header, j * 66 : j * 66 + 64] < 128).sum() for j in range(2)]
    assert all(ink > 0 for ink in inked)


def test_matrix_headers_name_the_cluster_and_its_attributes():
    x = np.zeros((3, 8, 8, 3), np.uint8)
    translations = types.SimpleNamespace(matrix_columns={3: x, 7: x + 1})
    targets = [
        transfer.TransferTarget("Eyeglasses", 7, 0.9, 40),
        transfer.TransferTarget("Smiling", 7, 0.8, 40),
    ]
    matrix = eval_pipeline._translation_matrix(
        translations,
        x,
        ["a", "b", "c"],
        [3, 7],
        np.array([0, 2]),
        targets=targets,
        names={7: "glasses"},
    )
    assert matrix.headers == ["cluster 3", "cluster 7 · glasses (Eyeglasses, Smiling)"]
    assert matrix.labels == ["c3", "c7\nEyeglasses\nSmiling"]
    assert matrix.inputs.shape == (2, 8, 8, 3) and matrix.columns[1][0, 0, 0, 0] == 1
