"""The colour-blotch detector on hand-made faces whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xplore_tf.evaluation import blotches, photos

SKIN = (205, 150, 120)  # CIELAB about (66, 16, 21): a typical light skin


def _face(size: int = 64) -> np.ndarray:
    """Skin everywhere, with a little texture, dark hair along the top rows."""
    rng = np.random.default_rng(0)
    img = np.clip(np.array(SKIN) + rng.integers(-6, 7, size=(size, size, 3)), 0, 255)
    img[: size // 8] = 30
    return img.astype(np.uint8)


def _patch(img: np.ndarray, top: int, left: int, side: int, rgb) -> np.ndarray:
    out = img.copy()
    out[top : top + side, left : left + side] = rgb
    return out


def test_the_face_box_is_the_central_face():
    mask = blotches.face_mask(64)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (27, 53, 18, 45)
    assert blotches.face_mask(128).sum() == pytest.approx(4 * mask.sum(), rel=0.1)


@pytest.mark.parametrize(
    "rgb, sign",
    [((150, 175, 110), 1), ((150, 120, 170), -1)],  # a green cheek, purple lips
)
def test_a_green_or_purple_patch_on_the_face_is_one_blotch(rgb, sign):
    face = _face()
    out = _patch(face, 36, 26, 8, rgb)
    (found,) = blotches.blotches(face, out)
    row, col, area = found
    assert row == pytest.approx(39.5, abs=1) and col == pytest.approx(29.5, abs=1)
    assert 40 <= area <= 100  # the 8 x 8 patch, widened by the 3 px smoothing
    shift = blotches.hue_shift_map(face, out)[39, 29]
    assert np.sign(shift) == sign and abs(shift) > 10


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda f: f.copy(), "unchanged"),
        (lambda f: np.clip(f * 0.7, 0, 255).astype(np.uint8), "a darker face: same hue"),
        (lambda f: _patch(f, 36, 26, 8, (225, 140, 110)), "a redder cheek: along skin's hue"),
        (lambda f: _patch(f, 36, 26, 3, (150, 175, 110)), "a green dot too small to see"),
        (lambda f: _patch(f, 0, 0, 12, (60, 200, 60)), "green outside the face (a background)"),
    ],
)
def test_what_is_not_a_blotch(make, why):
    face = _face()
    assert blotches.blotches(face, make(face)) == [], why


def test_sizes_scale_with_the_image_and_flags_are_per_image():
    face = _face(128)
    out = _patch(face, 72, 52, 16, (150, 175, 110))
    (found,) = blotches.blotches(face, out)
    assert 200 <= found[2] <= 400
    small = _patch(face, 72, 52, 5, (150, 175, 110))  # 25 px: a 6 px dot at 64 px
    assert blotches.blotches(face, small) == []
    shares = blotches.blotch_shares(np.stack([face, face]), np.stack([face, out]))
    assert shares[0] == 0 and shares[1] == pytest.approx(found[2] / blotches.face_mask(128).sum())
    rates = blotches.BlotchRates.measure(np.stack([face, face]), np.stack([face, out]), {3: 0.25})
    assert (rates.rate_random, rates.per_cluster) == (0.5, {"3": 0.25})
    assert blotches.BlotchRates.from_json(json.loads(json.dumps(rates.to_json()))) == rates


def test_the_skin_direction_is_the_inputs_own():
    """A darker skin tone moved along its own hue is no blotch; across it is."""
    dark = np.full((64, 64, 3), (120, 80, 60), np.uint8)
    lab = photos.srgb_to_lab(np.array([120.0, 80.0, 60.0]))
    assert lab[1] > 0 and lab[2] > 0
    assert blotches.blotches(dark, np.full_like(dark, (100, 62, 45))) == []
    assert blotches.blotches(dark, _patch(dark, 36, 26, 8, (90, 95, 60)))


def test_shapes_must_match():
    with pytest.raises(ValueError, match="square"):
        blotches.blotches(_face(64), _face(128))
