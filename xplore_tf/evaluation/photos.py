"""What a translation keeps of a real photo: its fine detail and the skin's colour.

Measures for a photo before and after a translation (`tools/full_resolution_check.py`,
docs/experiments/2026-12-04-full-resolution.md):

- `detail_kept`: the correlation between the Laplacians (the finest frequency band) of the
  two photos inside the translated region, and the ratio of their variances. A face
  replaced by a model's upscaled low-resolution output scores far below 1 on both (its
  detail is gone); an edit that only adds a smooth change scores near 1 on both (not
  blurred, not noisier). The Laplacian is the 4-neighbour one of the mean of R, G and B.
- `skin_colour_shift`: the CIE76 colour difference (Euclidean distance in CIELAB, D65)
  between the mean colours of the central face, from the eyes to the mouth, of two aligned
  crops: how far the face's overall tone moved (about 2.3 is the smallest difference people
  notice side by side).
"""

from __future__ import annotations

import dataclasses

import numpy as np

# The central face in CelebA's central 178 x 178 square (the aligned crops' framing, see
# xplore_tf/common/faces.TEMPLATES): between the eye centres (x 69-108) from the eye line (y 91.5)
# to the mouth corners' line (y 132).
CENTRAL_FACE = (69.1, 91.5, 108.0, 132.1)  # x0, y0, x1, y1


def laplacian(rgb: np.ndarray) -> np.ndarray:
    """float64 [H,W]: the 4-neighbour Laplacian of the mean of the channels (0 on the border)."""
    g = np.asarray(rgb, np.float64)
    g = g.mean(axis=2) if g.ndim == 3 else g
    out = np.zeros_like(g)
    out[1:-1, 1:-1] = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return out


@dataclasses.dataclass(frozen=True)
class DetailKept:
    correlation: float  # of the Laplacians, in [-1, 1]; 1 = the same fine detail
    variance_ratio: float  # var(after's Laplacian) / var(before's): < 1 blurred, > 1 noisier


def detail_kept(before: np.ndarray, after: np.ndarray, region: np.ndarray) -> DetailKept:
    """Fine detail of `after` against `before` (both [H,W,3]) inside bool `region` [H,W].

    Raises ValueError when the shapes differ or the region holds fewer than 2 pixels.
    """
    if np.shape(before) != np.shape(after) or np.shape(region) != np.shape(before)[:2]:
        raise ValueError(
            f"shapes differ: {np.shape(before)}, {np.shape(after)}, region {np.shape(region)}"
        )
    region = np.asarray(region, bool)
    if region.sum() < 2:
        raise ValueError("the region holds fewer than 2 pixels")
    a, b = laplacian(before)[region], laplacian(after)[region]
    correlation = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    return DetailKept(correlation, float(b.var() / max(a.var(), 1e-12)))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white, 2° observer) of sRGB colours [..., 3] in 0-255 -> [..., 3]."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ]
    )
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    eps = (6.0 / 29.0) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    return np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )


def central_face_box(size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in pixels of an aligned size x size crop: eyes to mouth (`CENTRAL_FACE`)."""
    scale = size / 178.0
    x0, y0, x1, y1 = (int(round(v * scale)) for v in CENTRAL_FACE)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def skin_colour_shift(before: np.ndarray, after: np.ndarray) -> float:
    """CIE76 delta E between the mean colours of the central face of two aligned crops [S,S,3]."""
    if np.shape(before) != np.shape(after):
        raise ValueError(f"crops differ in shape: {np.shape(before)} vs {np.shape(after)}")
    x0, y0, x1, y1 = central_face_box(np.shape(before)[0])
    means = [
        np.asarray(c, np.float64)[y0:y1, x0:x1].reshape(-1, 3).mean(0) for c in (before, after)
    ]
    return float(np.linalg.norm(srgb_to_lab(means[0]) - srgb_to_lab(means[1])))
