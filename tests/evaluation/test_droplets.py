"""The droplet detector on hand-made images whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.evaluation import droplets


def _face(size: int = 64) -> np.ndarray:
    """A mid-grey textured image with black hair along the top rows."""
    rng = np.random.default_rng(0)
    img = rng.integers(110, 170, size=(size, size, 3)).astype(np.uint8)
    img[: size // 8] = 10  # black hair: already dark in the input
    return img


def _disk(img: np.ndarray, row: float, col: float, radius: float, value: int = 5) -> np.ndarray:
    out = img.copy()
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    out[(yy - row) ** 2 + (xx - col) ** 2 <= radius**2] = value
    return out


def test_a_new_black_disk_is_a_droplet_and_where_it_is():
    face = _face()
    out = _disk(face, 40, 20, 3.5)  # ~37 px at 64 px, as seen in translations
    (found,) = droplets.droplets(face, out)
    assert found[0] == pytest.approx(40, abs=0.5) and found[1] == pytest.approx(20, abs=0.5)
    assert 30 <= found[2] <= 45


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda f: f.copy(), "unchanged"),
        (lambda f: _disk(f, 40, 20, 1.5), "a dot too small to see (~9 px)"),
        (lambda f: _disk(f, 4, 30, 4), "darker hair where the input was already dark"),
        (lambda f: _disk(f, 40, 20, 3.5, value=90), "a grey blob, not near-black"),
        (np.zeros_like, "all black: nothing around it to be isolated from"),
        (lambda f: _disk(f, 36, 32, 10.5), "a dark disk of ~350 px: a background, not a droplet"),
    ],
)
def test_what_is_not_a_droplet(make, why):
    face = _face()
    assert droplets.droplets(face, make(face)) == [], why


def _patch(face, inside: int, around: int) -> np.ndarray:
    """`face` with a disk of luminance `inside` (radius 3.5) in a ring of `around` (6.5)."""
    return _disk(_disk(face, 40, 20, 6.5, value=around), 40, 20, 3.5, value=inside)


def test_a_dark_patch_of_the_input_drawn_a_little_darker_is_not_a_droplet():
    # Rule: new dark is >= 25 darker than the input, or a surround >= 20 lighter, or
    # pitch-black (< 10). An input patch of 40 drawn at 20 (20 darker) in an unchanged
    # surround of 80 is not new; with the surround lightened to 110 (by 30) it is.
    face = _face()
    dark_patch = _patch(face, 40, 80)
    assert droplets.droplets(dark_patch, _patch(face, 20, 80)) == []
    assert len(droplets.droplets(dark_patch, _patch(face, 20, 110))) == 1
    assert len(droplets.droplets(dark_patch, _patch(face, 14, 80))) == 1  # 26 darker
    # 30 drawn at 8 (22 darker) in a surround lightened from 60 to 75 (by 15): only
    # pitch-black counts.
    assert len(droplets.droplets(_patch(face, 30, 60), _patch(face, 8, 75))) == 1
    assert droplets.droplets(_patch(face, 30, 60), _patch(face, 12, 75)) == []


def test_rates_written_before_the_new_darkness_cue_read_back_without_it():
    current = droplets.DropletRates(0.05, {"3": 0.1}).to_json()
    assert droplets.DropletRates.from_json(current).rule == droplets.DropletRule()
    older = dict(current, rule={k: v for k, v in current["rule"].items() if k in _OLDER_FIELDS})
    rates = droplets.DropletRates.from_json(older)
    rule = rates.rule
    assert not rule.new_darkness and "rule before new darkness" in rates.title
    assert droplets.DropletRates.from_json(current).title == "droplets (new dark round blobs)"
    face = _face()  # what that rule counted: the dark patch drawn a little darker
    assert len(droplets.droplets(_patch(face, 40, 80), _patch(face, 20, 80), rule)) == 1


_OLDER_FIELDS = ("dark", "contrast", "band", "min_area", "min_fill", "max_aspect", "min_solidity")


def test_rates_written_before_the_size_bound_read_back_without_it():
    # A disk of radius 9.5 (~280 px) is a droplet by the bound of 300 px; radius 10.5 (~350
    # px) only by a rule without it, as files written before the bound counted.
    face = _face()
    assert len(droplets.droplets(face, _disk(face, 36, 32, 9.5))) == 1
    current = droplets.DropletRates(0.05, {}).to_json()
    older = dict(current, rule={k: v for k, v in current["rule"].items() if k != "max_area"})
    rates = droplets.DropletRates.from_json(older)
    assert rates.rule.max_area == 0 and "before their size was bounded" in rates.title
    assert len(droplets.droplets(face, _disk(face, 36, 32, 10.5), rates.rule)) == 1


def test_a_dark_band_across_the_eyes_is_not_a_droplet():
    face = _face()
    band = face.copy()
    band[28:33, 10:54] = 5  # glasses drawn as a shadow: 44 x 5
    assert droplets.droplets(face, band) == []
    hollow = face.copy()
    hollow[30:42, 20:32] = 5
    hollow[32:40, 22:30] = face[32:40, 22:30]  # a ring: its box is mostly not dark
    assert droplets.droplets(face, hollow) == []


def test_the_area_scales_with_the_image_size_and_flags_are_per_image():
    big = _face(128)
    assert droplets.droplets(big, _disk(big, 80, 40, 3)) == []  # 29 px at 128 = 7 px at 64
    assert len(droplets.droplets(big, _disk(big, 80, 40, 7))) == 1
    faces = np.stack([_face(), _face()])
    outs = np.stack([_disk(faces[0], 40, 20, 3.5), faces[1]])
    assert droplets.droplet_flags(faces, outs).tolist() == [True, False]
    with pytest.raises(ValueError, match="differ in shape"):
        droplets.droplets(faces[0], big)


def test_two_dark_lenses_mirrored_at_one_height_are_not_droplets():
    face = _face()
    lenses = _disk(_disk(face, 30, 20, 4), 30, 43, 4)  # mirrored about the centre (31.5)
    assert droplets.droplets(face, lenses) == []
    one_lens_and_a_droplet = _disk(_disk(face, 30, 20, 4), 50, 50, 4)
    assert len(droplets.droplets(face, one_lens_and_a_droplet)) == 2


def test_first_flagged_lists_the_translations_with_a_droplet_in_order_up_to_a_limit():
    face = _face()
    outputs = [face, _disk(face, 40, 20, 3.5), face, _disk(face, 30, 44, 3.5)]
    inputs = np.stack([face] * 4)
    found = droplets.first_flagged(inputs, np.stack(outputs), limit=5)
    assert [i for i, _ in found] == [1, 3]
    assert found[1][1][0][:2] == pytest.approx((30, 44), abs=0.5)
    assert [i for i, _ in droplets.first_flagged(inputs, np.stack(outputs), limit=1)] == [1]


def test_the_report_shows_each_flagged_translation_beside_its_input_with_the_droplet_boxed():
    from xplore_tf.evaluation import html_report

    face = _face()
    out = _disk(face, 40, 20, 3.5)
    flagged = html_report.FlaggedTranslations(
        inputs=face[None], outputs=out[None], marks=[droplets.droplets(face, out)], looked_at=9
    )
    image = flagged.image(zoom=3)
    assert image.shape == (192, 2 * 192 + 2, 3)  # input | 2 px | output, 3 x larger
    np.testing.assert_array_equal(image[:, :192], np.repeat(np.repeat(face, 3, 0), 3, 1))
    red = np.all(image == (255, 0, 0), axis=-1)
    rows, cols = np.nonzero(red)
    assert not red[:, :194].any()  # boxes on the output only
    # A square around the droplet at (40, 20), half-side sqrt(area) ~ 6 px, zoomed 3 x.
    assert rows.min() < 40 * 3 < rows.max() and cols.min() < 194 + 20 * 3 < cols.max()
    assert 30 <= rows.max() - rows.min() <= 45
    small = html_report.FlaggedTranslations(face[None, ::2, ::2], out[None, ::2, ::2], [[]], 1)
    assert flagged.image().shape[0] == small.image().shape[0] == 128  # 64 px x 2, 32 px x 4
    page = html_report._droplets_section(flagged)
    assert "The first 1 of the 9 translations" in page and "data:image/png" in page
    none = np.zeros((0, 64, 64, 3), np.uint8)
    empty = html_report.FlaggedTranslations(none, none, [], looked_at=9)
    assert "flagged none of 9" in html_report._droplets_section(empty)
