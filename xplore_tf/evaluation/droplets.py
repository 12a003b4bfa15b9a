"""Droplets: solid dark round blobs a translation adds that were not in its input.

Generators built on instance normalisation learn to plant a strong local spike so that a
signal survives the per-sample normalisation; it shows as a black "droplet" beside the head,
on the hair or in a corner (Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020, §2.1). This module finds them the way a person would: a connected
region of the output that is near-black, isolated (the band around it is much brighter),
compact, round and solid (not a band, a ring or a hair line), large enough to see but not
the size of a whole dark background, not the same isolated dark blob in the input
(sunglasses, a dark eye), and without a dark twin mirrored across the face's centre line
(two lenses or eyes drawn as shadows). Droplets often sit where
the input had dark hair that the translation lightened, so "new" means two things: not an
isolated blob in the input, and newly dark: the blob is clearly darker than the input was
there, or its surround clearly lighter, or it is pitch-black. A dark thing of the input
drawn about as dark (clothing or the shadow under the chin at the bottom edge, dark hair at
the hairline, a dark cap) is not one. The thresholds were checked against translations
labelled by eye (`tools/droplet_labels_check.py`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

REFERENCE_SIZE = 64  # px: `min_area` is given at this image size and scales with the area


@dataclasses.dataclass(frozen=True)
class DropletRule:
    """What counts as a droplet. Luminance is 0-255 (ITU-R BT.601 weights); sizes are px at
    64 x 64 and scale with the image."""

    dark: float = 30.0  # output luminance below this is near-black
    contrast: float = 40.0  # the band around the blob is brighter than `dark` by this, mean
    band: int = 3  # width of that band
    min_area: int = 15
    # At most ~4x the area of the widest droplet described (10 px across, ~80 px): a whole
    # dark background or sweater that passes every other test is not one. 0 = no bound
    # (metrics.json written before it).
    max_area: int = 300
    min_fill: float = 0.55  # region area / its bounding box area (a disk: 0.785)
    max_aspect: float = 2.0  # bounding box long side / short side
    min_solidity: float = 0.9  # region area / its area with holes filled (a ring: low)
    # New darkness: the blob is this much darker than the input there, or its band this much
    # lighter than the input's (dark hair lightened around a spot the generator kept dark).
    new_darkness: bool = True  # False: the rule before this cue (metrics.json without it)
    min_darkening: float = 25.0
    min_lightening: float = 20.0
    black: float = 10.0  # or the blob's mean luminance is below this: pitch-black, new or not


def luminance(rgb: np.ndarray) -> np.ndarray:
    """uint8/float [..., 3] -> float32 [...] in 0-255."""
    rgb = np.asarray(rgb, np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def droplets(inp: np.ndarray, out: np.ndarray, rule: DropletRule = DropletRule()) -> list[tuple]:
    """The droplets `out` adds to `inp`: one (row, column, area) per blob, area in px.

    inp, out: uint8 [H, W, 3], the same size (the input as the model saw it, its output).
    Raises ValueError when the shapes differ.
    """
    if inp.shape != out.shape:
        raise ValueError(f"input {inp.shape} and output {out.shape} differ in shape")
    y_in, y_out = luminance(inp), luminance(out)
    scale = out.shape[0] / REFERENCE_SIZE
    labels, _ = ndimage.label(y_out < rule.dark)
    found = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[box] == index
        area = int(region.sum())
        h, w = region.shape
        if (
            area < rule.min_area * scale**2
            or 0 < rule.max_area * scale**2 < area
            or max(h, w) > rule.max_aspect * min(h, w)
            or area < rule.min_fill * h * w
            or area < rule.min_solidity * ndimage.binary_fill_holes(region).sum()
        ):
            continue
        blob = labels == index
        band = ndimage.binary_dilation(blob, iterations=max(1, round(rule.band * scale))) & ~blob
        if not band.any() or y_out[band].mean() < rule.dark + rule.contrast:
            continue  # part of a dark area (hair, background), not an isolated blob
        if (y_in[blob] < rule.dark).mean() > 0.5 and y_in[band].mean() >= rule.dark + rule.contrast:
            continue  # the same isolated blob was in the input
        inside = y_out[blob].mean()
        darkened = y_in[blob].mean() - inside
        lightened = y_out[band].mean() - y_in[band].mean()
        new_dark = darkened >= rule.min_darkening or lightened >= rule.min_lightening
        if rule.new_darkness and not new_dark and inside >= rule.black:
            continue  # a dark thing of the input kept about as it was (hair, clothing, shadow)
        if _has_a_twin(blob, band, y_out, rule):
            continue  # one of two lenses or eyes drawn as shadows: a droplet comes alone
        rows, cols = np.nonzero(blob)
        found.append((float(rows.mean()), float(cols.mean()), area))
    return found


def _has_a_twin(blob: np.ndarray, band: np.ndarray, y_out: np.ndarray, rule: DropletRule) -> bool:
    """Whether the blob's mirror image across the vertical centre line is darkish and
    darker than its own surround: the other lens of a pair on an aligned face (which may
    miss the `dark` threshold the first one passed). A blob on the centre line has none."""
    twin, twin_band = blob[:, ::-1], band[:, ::-1]
    if (twin & blob).any():
        return False
    inside, around = y_out[twin].mean(), y_out[twin_band & ~blob].mean()
    return inside < rule.dark + rule.contrast and around - inside >= rule.contrast / 2


def droplet_flags(inputs: np.ndarray, outputs: np.ndarray, rule: DropletRule = DropletRule()):
    """bool [N]: which translations carry at least one droplet. uint8 [N, H, W, 3] each."""
    return np.array([bool(droplets(x, y, rule)) for x, y in zip(inputs, outputs, strict=True)])


def first_flagged(
    inputs: np.ndarray, outputs: np.ndarray, limit: int, rule: DropletRule = DropletRule()
) -> list[tuple[int, list[tuple]]]:
    """Up to `limit` translations carrying a droplet, in order: (index, its droplets as
    `droplets` gives them). uint8 [N, H, W, 3] each; for a person to check the detector."""
    found = []
    for i, (x, y) in enumerate(zip(inputs, outputs, strict=True)):
        if len(found) >= limit:
            break
        if blobs := droplets(x, y, rule):
            found.append((i, blobs))
    return found


@dataclasses.dataclass(frozen=True)
class DropletRates:
    """metrics.json's `realism.droplets`: the share of translations carrying a droplet."""

    rate_random: float  # translations into one random other cluster each
    per_cluster: dict[str, float]  # str(cluster) -> translations into that transfer cluster
    rule: DropletRule = DropletRule()

    @property
    def title(self) -> str:
        """How summaries name these rates: an older file's rule says so."""
        if not self.rule.new_darkness:
            return "droplets (dark round blobs, by the rule before new darkness counted)"
        if not self.rule.max_area:
            return "droplets (new dark round blobs, by the rule before their size was bounded)"
        return "droplets (new dark round blobs)"

    def to_json(self) -> dict:
        return {
            "rate_random": self.rate_random,
            "per_cluster": dict(self.per_cluster),
            "rule": dataclasses.asdict(self.rule),
        }

    @classmethod
    def from_json(cls, d: dict) -> DropletRates:
        # Older files: no new-darkness cue, no size bound.
        rule = DropletRule(**{"new_darkness": False, "max_area": 0, **d["rule"]})
        return cls(d["rate_random"], dict(d["per_cluster"]), rule)


__all__ = [
    "DropletRates",
    "DropletRule",
    "droplet_flags",
    "droplets",
    "first_flagged",
    "luminance",
]
