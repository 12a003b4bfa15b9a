"""tools.wild_faces: the in-the-wild photos built around aligned crops."""

from __future__ import annotations

import numpy as np

from tools import wild_faces
from xplore_tf.common import faces


def _band_colours(scene: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour of the photo just left and just right of a pasted red|blue crop."""
    crop = np.zeros((60, 40, 3), np.uint8)
    crop[:, :20] = (255, 0, 0)
    crop[:, 20:] = (0, 0, 255)
    photo = wild_faces.make_photo(
        [crop], ["c"], np.random.default_rng(0), max_angle=0.0, scale_range=(1, 1), scene=scene
    )
    to_crop = faces.invert(photo.matrices[0])  # recorded matrices are the crop's own
    h, w = photo.upright.shape[:2]
    yx = np.stack(np.mgrid[0:h, 0:w], -1).reshape(-1, 2)[:, ::-1].astype(np.float64)
    u, v = faces.transform_points(to_crop, yx).T
    rows = (v > 10) & (v < 50)
    left = rows & (u > -8) & (u < -3)  # just outside the crop, within 0.25 of its width
    right = rows & (u > 42) & (u < 47)
    pixels = photo.upright.reshape(-1, 3).astype(np.float64)
    return pixels[left].mean(0), pixels[right].mean(0)


def test_scene_mirrors_the_crop_beyond_its_edges():
    left, right = _band_colours(scene=0.25)
    np.testing.assert_allclose(left, (255, 0, 0), atol=3)  # the red edge, mirrored
    np.testing.assert_allclose(right, (0, 0, 255), atol=3)
    left, right = _band_colours(scene=0.0)  # the random background there instead
    assert np.abs(left - (255, 0, 0)).max() > 30 and np.abs(right - (0, 0, 255)).max() > 30
