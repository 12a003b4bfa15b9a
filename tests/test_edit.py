"""xplore_tf/edit.py: the generator's edit carried to an image's own resolution."""

from __future__ import annotations

import numpy as np
import pytest

from xplore_tf import edit


@pytest.mark.parametrize("side", [16, 17, 64, 130, 401])
def test_a_zero_edit_returns_the_image_bit_for_bit(side):
    image = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = edit.carry_edit(image, np.zeros((32, 32, 3), np.float32)).numpy()
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("side", [20, 64, 257])
def test_a_constant_shift_at_low_resolution_is_the_same_shift_at_full(side):
    image = np.random.default_rng(0).integers(20, 230, (side, side, 3), dtype=np.uint8)
    shift = np.array([12.0, -7.0, 3.0], np.float32)
    out = edit.carry_edit(image, np.broadcast_to(shift, (32, 32, 3))).numpy()
    np.testing.assert_array_equal(out.astype(int) - image, np.broadcast_to(shift, out.shape))


def test_the_edit_lands_where_it_was_made_and_is_clipped():
    """A bright square at the low-resolution centre lands at the full-resolution centre; a
    push past 255 or below 0 is clipped, never wrapped."""
    delta = np.zeros((32, 32, 3), np.float32)
    delta[12:20, 12:20] = 200.0
    image = np.full((320, 320, 3), 100, np.uint8)
    out = edit.carry_edit(image, delta).numpy().astype(int)
    assert out[160, 160].tolist() == [255, 255, 255]  # 100 + 200 clipped
    assert (out[:60] == 100).all() and (out[:, -60:] == 100).all()  # far from the edit
    ys, xs = np.nonzero(out[:, :, 0] > 200)
    np.testing.assert_allclose([xs.mean(), ys.mean()], [159.5, 159.5], atol=0.5)
    low = edit.carry_edit(np.full((64, 64, 3), 50, np.uint8), -delta).numpy()
    assert (low[28:36, 28:36] == 0).all()  # 50 - 200 clipped to 0, not wrapped to 106


def test_the_residual_edit_is_what_the_generator_drew_differently_from_its_input():
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    target = images.astype(np.float32) + 5.0
    out = edit.model_edit(images, target, None, base="residual", face_colour="generator")
    np.testing.assert_allclose(out.numpy(), 5.0)
    source = target - 2.0
    out = edit.model_edit(images, target, source, base="difference", face_colour="generator")
    np.testing.assert_allclose(out.numpy(), 2.0)
    with pytest.raises(ValueError, match="edit base must be one of"):
        edit.model_edit(images, target, source, base="input")
    with pytest.raises(ValueError, match="face colour must be one of"):
        edit.model_edit(images, target, source, face_colour="skin")


def test_no_cast_removes_a_face_wide_cast_and_keeps_local_edits():
    """A cast over the whole image is removed in the inner face (where the mask is 1) and
    kept outside it (hair, background); an edit on the eyes, away from the cheeks, stays."""
    size = 64
    images = np.full((1, size, size, 3), 120, np.uint8)
    cast = np.array([9.0, -4.0, 6.0], np.float32)
    target = images.astype(np.float32) + cast
    eyes = (slice(30, 36), slice(22, 42))  # y 83-100 of the 178-px square: above the cheeks
    target[0][eyes] -= 60.0  # dark glasses
    out = edit.model_edit(images, target, None, face_colour="no_cast").numpy()[0]
    mask = edit.face_mask(size)
    centre = mask == 1.0
    assert centre.sum() > 300
    np.testing.assert_allclose(out[centre & ~_region(size, eyes)], 0.0, atol=1e-5)
    np.testing.assert_allclose(out[0, 0], cast)  # a corner: outside the face, the full edit
    np.testing.assert_allclose(out[33, 32], -60.0, atol=1e-5)  # the glasses: the full edit
    np.testing.assert_allclose(edit.skin_cast(target - 120.0).numpy()[0], cast)


def _region(size, index):
    region = np.zeros((size, size), bool)
    region[index] = True
    return region


def test_masks_sit_on_the_cheeks_and_the_inner_face():
    cheeks = edit.cheek_mask(178)
    assert cheeks.sum() == 2 * 21 * 24  # two 21 x 24 px boxes at the square's own scale
    assert not cheeks[:, 80:98].any()  # not on the nose
    face = edit.face_mask(178)
    assert face[100, 88] == 1.0 and face[0, 0] == 0.0 and face[100, 10] == 0.0


def test_luminance_keeps_the_face_hue_and_passes_brightness():
    """Inside the face only the edit's luminance passes (grey, R = G = B); outside, all of it."""
    size = 64
    images = np.full((1, size, size, 3), 120, np.uint8)
    target = images.astype(np.float32)
    target[0, :, :] += np.array([30.0, -10.0, 0.0], np.float32)  # a pink wash everywhere...
    target[0, 40:44, 24:40] -= 50.0  # ...and a dark beard line below the mouth
    no_cast = edit.model_edit(images, target, None, face_colour="no_cast").numpy()[0]
    out = edit.model_edit(images, target, None, face_colour="luminance").numpy()[0]
    inside = edit.face_mask(size) == 1.0
    np.testing.assert_allclose(out[inside][:, 0], out[inside][:, 1], atol=1e-4)  # grey
    np.testing.assert_allclose(out[inside][:, 1], out[inside][:, 2], atol=1e-4)
    beard = no_cast[42, 32] @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(out[42, 32], [beard] * 3, atol=1e-4)
    np.testing.assert_allclose(out[0, 0], [30.0, -10.0, 0.0])  # outside the face: all of it
