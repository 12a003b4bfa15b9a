"""Detail and skin-colour measures of a translated photo (hand-checkable values)."""

from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.evaluation import photos


def test_laplacian_of_a_ramp_is_zero_and_of_a_dot_is_its_stencil():
    ramp = np.tile(np.arange(10, dtype=np.float64)[None, :, None], (8, 1, 3))
    np.testing.assert_allclose(photos.laplacian(ramp), 0.0)
    dot = np.zeros((5, 5, 3))
    dot[2, 2] = 3.0
    lap = photos.laplacian(dot)
    assert lap[2, 2] == -12.0 and lap[1, 2] == lap[2, 3] == 3.0 and lap[1, 1] == 0.0


def test_detail_kept_by_a_smooth_edit_and_lost_by_a_blur():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (64, 64, 3)).astype(np.float64)
    region = np.ones((64, 64), bool)
    same = photos.detail_kept(photo, photo, region)
    assert same.correlation == pytest.approx(1.0) and same.variance_ratio == pytest.approx(1.0)
    shifted = photos.detail_kept(photo, photo + np.linspace(0, 40, 64)[None, :, None], region)
    assert shifted.correlation == pytest.approx(1.0) and shifted.variance_ratio == pytest.approx(1)
    blurred = (photo + np.roll(photo, 1, 0) + np.roll(photo, 1, 1) + np.roll(photo, 1, (0, 1))) / 4
    lost = photos.detail_kept(photo, blurred, region)
    assert lost.correlation < 0.6 and lost.variance_ratio < 0.4
    with pytest.raises(ValueError, match="shapes differ"):
        photos.detail_kept(photo, photo[1:], region)


def test_lab_matches_the_textbook_values_and_scikit_image():
    np.testing.assert_allclose(photos.srgb_to_lab([255, 255, 255]), [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(photos.srgb_to_lab([0, 0, 0]), [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(photos.srgb_to_lab([255, 0, 0]), [53.24, 80.09, 67.20], atol=0.02)
    color = pytest.importorskip("skimage.color")
    rgb = np.random.default_rng(1).integers(0, 256, (20, 3))
    np.testing.assert_allclose(
        photos.srgb_to_lab(rgb), color.rgb2lab(rgb[None] / 255.0)[0], atol=1e-3
    )


def test_skin_colour_shift_reads_only_the_central_face():
    crop = np.full((178, 178, 3), 150, np.uint8)
    assert photos.skin_colour_shift(crop, crop) == 0.0
    x0, y0, x1, y1 = photos.central_face_box(178)
    assert (x0, y0, x1, y1) == (69, 92, 108, 132)
    hair = crop.copy()
    hair[:y0] = 250  # everything above the eyes changed: no shift of the face
    assert photos.skin_colour_shift(crop, hair) == 0.0
    tanned = crop.copy()
    tanned[y0:y1, x0:x1] = [170, 140, 120]
    expected = np.linalg.norm(photos.srgb_to_lab([170, 140, 120]) - photos.srgb_to_lab([150] * 3))
    assert photos.skin_colour_shift(crop, tanned) == pytest.approx(expected)
