"""Colour blotches: patches of a translated face whose colour left the hues of skin.

A small generator trained briefly paints the low frequencies of a face from its bottleneck,
and what comes back is often a face with green or yellow cheeks, blue or purple lips and
orange bands: colours no skin has, which a person sees at once and which neither the
Frechet distance nor the droplet detector reports. This module finds them on aligned faces:

1. both images are smoothed (a box filter 3 px wide at 64 px) and converted to CIELAB;
2. the input's skin is where its central face has a hue angle of skin (0-90 degrees: red
   to yellow; skin of every ethnicity lies in a narrow band of CIELAB hue angles, Xiao et
   al., "Characterising the variations in ethnic skin colours", Skin Research and
   Technology 2017) and some colour; its skin-tone direction is the median (a*, b*) there;
3. a skin pixel is shifted when its (a*, b*) moved across that direction by
   more than `hue_shift` units: toward green and yellow on one side, blue and purple on the
   other. Moving along it (a tan, a paler face, a redder or paler lip) does not count;
4. a blotch is a connected region of shifted pixels at least `min_area` px large.

The central face is a fixed box of the aligned crop (`FACE_BOX`, in the coordinates of
CelebA's central 178 x 178 square as `photos.CENTRAL_FACE`): on faces aligned otherwise, or
not aligned, the rate means little.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from xplore_tf.evaluation import photos

REFERENCE_SIZE = 64  # px: `min_area` and `smooth` are given at this size and scale with it
# cheeks, nose, mouth and chin, from above the eyebrows to below the mouth (x0, y0, x1, y1)
FACE_BOX = (50.0, 75.0, 128.0, 150.0)


@dataclasses.dataclass(frozen=True)
class BlotchRule:
    """What counts as a colour blotch; sizes are px at 64 x 64 and scale with the image."""

    hue_shift: float = 10.0  # CIELAB a*b* units across the skin-tone direction
    min_area: int = 15
    smooth: int = 3  # box filter width before comparing
    skin_hues: tuple[float, float] = (0.0, 90.0)  # CIELAB hue angles of skin, degrees
    min_chroma: float = 5.0  # below it a pixel is grey, its hue meaningless


def face_mask(size: int) -> np.ndarray:
    """bool [size, size]: `FACE_BOX` of an aligned size x size crop."""
    x0, y0, x1, y1 = (int(round(v * size / 178.0)) for v in FACE_BOX)
    mask = np.zeros((size, size), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def hue_shift_map(inp: np.ndarray, out: np.ndarray, rule: BlotchRule = BlotchRule()) -> np.ndarray:
    """float [S, S]: how far each pixel's (a*, b*) moved across the input's skin-tone
    direction, in CIELAB units (signed: + toward green-yellow, - toward blue-purple); NaN
    where the input is not skin-coloured (`rule.skin_hues`, `rule.min_chroma`) or outside
    the central face.

    inp, out: uint8 [S, S, 3], the same square size. Raises ValueError otherwise.
    """
    if inp.shape != out.shape or inp.shape[0] != inp.shape[1]:
        raise ValueError(f"input {inp.shape} and output {out.shape}: expected one square size")
    width = max(1, round(rule.smooth * inp.shape[0] / REFERENCE_SIZE))
    ab_in, ab_out = (
        photos.srgb_to_lab(ndimage.uniform_filter(np.asarray(v, np.float64), (width, width, 1)))[
            ..., 1:
        ]
        for v in (inp, out)
    )
    hue = np.degrees(np.arctan2(ab_in[..., 1], ab_in[..., 0]))
    skin = (
        face_mask(inp.shape[0])
        & (hue >= rule.skin_hues[0])
        & (hue <= rule.skin_hues[1])
        & (np.hypot(ab_in[..., 0], ab_in[..., 1]) >= rule.min_chroma)
    )
    if not skin.any():
        return np.full(inp.shape[:2], np.nan)
    tone = np.median(ab_in[skin], axis=0)
    across = np.array([-tone[1], tone[0]]) / np.linalg.norm(tone)
    return np.where(skin, (ab_out - ab_in) @ across, np.nan)


def blotches(inp: np.ndarray, out: np.ndarray, rule: BlotchRule = BlotchRule()) -> list[tuple]:
    """The colour blotches `out` has on the central face of `inp`: one (row, column, area)
    per blotch, area in px. uint8 [S, S, 3] each; ValueError when the shapes differ."""
    with np.errstate(invalid="ignore"):
        shifted = np.abs(hue_shift_map(inp, out, rule)) > rule.hue_shift  # NaN: False
    labels, count = ndimage.label(shifted)
    min_area = rule.min_area * (inp.shape[0] / REFERENCE_SIZE) ** 2
    found = []
    for index in range(1, count + 1):
        rows, cols = np.nonzero(labels == index)
        if len(rows) >= min_area:
            found.append((float(rows.mean()), float(cols.mean()), len(rows)))
    return found


def blotch_shares(inputs: np.ndarray, outputs: np.ndarray, rule: BlotchRule = BlotchRule()):
    """float [N] in [0, 1]: the share of each translation's central face (`face_mask`) its
    blotches cover; > 0 where it carries one. uint8 [N, S, S, 3] each."""
    face = face_mask(np.shape(inputs)[1]).sum() if len(inputs) else 1
    return np.array(
        [
            sum(b[2] for b in blotches(x, y, rule)) / face
            for x, y in zip(inputs, outputs, strict=True)
        ]
    )


@dataclasses.dataclass(frozen=True)
class BlotchRates:
    """metrics.json's `realism.blotches`: the share of translations carrying a blotch."""

    rate_random: float  # translations into one random other cluster each
    per_cluster: dict[str, float]  # str(cluster) -> translations into that transfer cluster
    face_share_random: float  # mean share of the central face blotched, random clusters
    rule: BlotchRule = BlotchRule()

    @classmethod
    def measure(cls, inputs, outputs, per_cluster: dict) -> BlotchRates:
        """From the translations into random clusters (uint8 [N, S, S, 3] each) and
        {transfer cluster: rate}."""
        shares = blotch_shares(inputs, outputs)
        return cls(
            rate_random=float((shares > 0).mean()),
            per_cluster={str(c): rate for c, rate in per_cluster.items()},
            face_share_random=float(shares.mean()),
        )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> BlotchRates:
        rule = {**d["rule"], "skin_hues": tuple(d["rule"]["skin_hues"])}
        return cls(**{**d, "rule": BlotchRule(**rule)})


__all__ = ["BlotchRates", "BlotchRule", "blotch_shares", "blotches", "face_mask", "hue_shift_map"]
