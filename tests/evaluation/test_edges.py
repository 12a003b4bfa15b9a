"""The edge judge: HOG features and a probe that tells drawn rims from a dark band."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")

from xplore_tf.evaluation import edges  # noqa: E402


def _face(rng, size=64) -> np.ndarray:
    img = rng.integers(150, 200, size=(size, size, 3)).astype(np.uint8)
    img[: size // 8] = 40  # hair
    return img


def _rims(img, rng) -> np.ndarray:
    """Glasses drawn as objects: two dark rectangular rims and a bridge at eye height."""
    out, top = img.copy(), 26 + int(rng.integers(-2, 3))
    for left in (14, 36):
        out[top : top + 9, left : left + 14] = 30
        out[top + 2 : top + 7, left + 2 : left + 12] = img[top + 2 : top + 7, left + 2 : left + 12]
    out[top + 3 : top + 5, 28:36] = 30
    return out


def _shade(img, rng) -> np.ndarray:
    """Glasses painted as a shade, as a small generator does: a soft dark band across the
    eyes (a Gaussian profile, 3 px wide), no rims."""
    centre = 30.5 + rng.integers(-2, 3)
    rows = np.exp(-0.5 * ((np.arange(img.shape[0]) - centre) / 3.0) ** 2)
    cols = np.clip((np.arange(img.shape[1]) - 10) / 6, 0, 1) * np.clip(
        (54 - np.arange(img.shape[1])) / 6, 0, 1
    )
    dark = 1.0 - 0.65 * rows[:, None] * cols[None, :]
    return (img * dark[..., None]).astype(np.uint8)


def test_hog_features_have_one_layout_at_every_size():
    rng = np.random.default_rng(0)
    for size in (32, 64, 128):
        f = edges.hog_features(np.stack([_face(rng, size)] * 2))
        assert f.shape == (2, 7 * 7 * 36) and f.dtype == np.float32
    # blind to colour: a hue change of the same grey levels gives the same features
    face = _face(rng)
    np.testing.assert_allclose(
        edges.hog_features(face[None]), edges.hog_features(face[None, :, :, ::-1]), atol=1e-6
    )


def test_the_edge_judge_sees_rims_and_not_a_soft_dark_shade():
    rng = np.random.default_rng(1)
    faces = [_face(rng) for _ in range(120)]
    with_glasses = np.arange(120) % 2 == 1
    x = np.stack([_rims(f, rng) if g else f for f, g in zip(faces, with_glasses, strict=True)])
    judge = edges.edge_judge(x, with_glasses[:, None], ["Eyeglasses"], seed=0)
    assert judge.name.startswith(edges.NAME) and "(120 images)" in judge.name
    test = [_face(rng) for _ in range(20)]
    rims = judge.decisions(np.stack([_rims(f, rng) for f in test]))[:, 0]
    shade = judge.decisions(np.stack([_shade(f, rng) for f in test]))[:, 0]
    plain = judge.decisions(np.stack(test))[:, 0]
    assert rims.mean() > 0.9 and plain.mean() < 0.1
    assert shade.mean() < 0.5, "a dark shade passes for glasses"
    with pytest.raises(ValueError, match="only 3 labelled images"):
        edges.edge_judge(x[:3], with_glasses[:3, None], ["Eyeglasses"], seed=0)
