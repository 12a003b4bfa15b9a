"""xplore_tf/common/faces.py geometry without a detector: similarity fit, alignment, paste-back."""

from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.common import faces


def _similarity(scale: float, angle: float, shift=(0.0, 0.0)) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_similarity_matrix_recovers_a_known_transform_and_matches_skimage():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    truth = _similarity(0.7, 0.4, (12.0, -30.0))
    np.testing.assert_allclose(
        faces.similarity_matrix(src, faces.transform_points(truth, src)), truth, atol=1e-9
    )
    # With noise: the least-squares optimum is Umeyama's, as scikit-image computes it.
    transform = pytest.importorskip("skimage.transform")
    dst = faces.transform_points(truth, src) + rng.normal(0, 3, (5, 2))
    if hasattr(transform.SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        ref = transform.SimilarityTransform.from_estimate(src, dst)
    else:
        ref = transform.SimilarityTransform()
        ref.estimate(src, dst)
    np.testing.assert_allclose(faces.similarity_matrix(src, dst), ref.params[:2], atol=1e-6)


def test_similarity_matrix_refuses_degenerate_points():
    with pytest.raises(ValueError, match="coincide"):
        faces.similarity_matrix(np.ones((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match=">= 2"):
        faces.similarity_matrix(np.ones((1, 2)), np.zeros((1, 2)))


def test_template_is_celeba_central_square_scaled():
    t178 = faces.template_points("mtcnn", 178)
    np.testing.assert_allclose(t178, np.asarray(faces.TEMPLATES["mtcnn"]) - [0, 20])
    t128 = faces.template_points("mtcnn", 128)
    np.testing.assert_allclose((t128 + 0.5) * 178 / 128 - 0.5, t178, atol=1e-9)
    # The eyes are level and the face is centred: a CelebA-like framing.
    assert abs(t128[0, 1] - t128[1, 1]) < 1.0 and abs(t128[:2, 0].mean() - 63.5) < 2.0
    with pytest.raises(ValueError, match="unknown face detector"):
        faces.template_points("haar", 128)


def _dot(height: int, width: int, x: float, y: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    g = 30 + 220 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.rint(g)[:, :, None], 3, axis=2).astype(np.uint8)


def _centroid(image: np.ndarray) -> np.ndarray:
    w = image[:, :, 0].astype(np.float64) - 30
    w[w < 5] = 0
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


@pytest.mark.parametrize("scale", [2.5, 1.0, 0.45, 0.2])
def test_align_puts_a_photo_point_where_the_matrix_says(scale):
    """Pixel-centre conventions in both the direct and the box-reduced (scale < 1/2) path."""
    point = np.array([310.3, 207.8])
    photo = _dot(420, 560, *point, sigma=3.0 / scale)
    size = 48
    matrix = _similarity(scale, 0.5)
    matrix[:, 2] = [size / 2 + 1.7, size / 2 - 2.2] - matrix[:, :2] @ point
    crop = faces.align(photo, matrix, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    want = faces.transform_points(matrix, point[None])[0]
    np.testing.assert_allclose(_centroid(crop), want, atol=0.1)


def test_align_mirrors_the_photo_beyond_its_border():
    photo = np.zeros((40, 40, 3), np.uint8)
    photo[:, :10] = 200  # a bright band at x = 0..9
    # The crop shows photo x in [-20, 20): x = -10..-1 mirror the band, x = -20..-11 are dark.
    crop = faces.align(photo, np.array([[1.0, 0, 20], [0, 1.0, 0]]), 40)[:, :, 0]
    assert crop[:, 12:18].min() >= 199 and crop[:, 22:28].min() >= 199
    assert crop[:, 2:8].max() <= 1 and crop[:, 32:38].max() <= 1


def test_head_mask_is_one_in_the_middle_zero_at_the_edges():
    mask = faces.head_mask(64, 0.12)
    assert mask.shape == (64, 64) and mask.dtype == np.float32
    assert mask[32, 32] == 1.0 and mask[0].max() == 0.0 and mask[:, 0].max() == 0.0
    assert 0.0 < mask[32, 4] < 1.0  # the feathered band
    with pytest.raises(ValueError, match="feather"):
        faces.head_mask(64, 0.0)


def test_paste_back_with_an_identity_translator_round_trips():
    """Outside the mask the photo is untouched; inside, only resampling error remains."""
    rng = np.random.default_rng(3)
    from PIL import Image

    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    photo = np.asarray(Image.fromarray(small).resize((400, 300), Image.Resampling.BICUBIC))
    matrix = _similarity(0.9, -0.35)
    matrix[:, 2] = [48, 48] - matrix[:, :2] @ [210.0, 140.0]
    crop = faces.align(photo, matrix, 96)
    pasted = faces.paste_back(photo, [crop], [matrix])
    coverage = faces.paste_back(
        np.zeros_like(photo), [np.full((96, 96, 3), 255, np.uint8)], [matrix]
    )[:, :, 0]
    diff = np.abs(pasted.astype(int) - photo)
    assert diff[coverage == 0].max() == 0 and (coverage == 0).mean() > 0.8
    inside = coverage > 0
    assert diff[inside].mean() < 1.5 and diff[inside].max() <= 12


def test_paste_translations_maps_the_model_output_back():
    """A model output of another size (and a model-side centre crop) lands where the crop was."""
    photo = _dot(200, 260, 140.0, 90.0, sigma=4.0)
    matrix = _similarity(1.1, 0.2)
    matrix[:, 2] = [32, 32] - matrix[:, :2] @ [140.0, 90.0]

    class Aligned:
        crop = faces.align(photo, matrix, 64)

    Aligned.matrix = matrix

    def brighten_centre(crops):  # the model: 32x32 output of the central 48 px of its input
        out = np.full((32, 32, 3), 30, np.uint8)
        out[14:18, 14:18] = 250  # a dot at the output's centre (15.5, 15.5)
        return [out for _ in crops]

    pasted = faces.paste_translations(photo, [Aligned], brighten_centre, crop_size=48)
    # The output's centre is the aligned crop's centre, which is photo point (140, 90).
    changed = np.abs(pasted.astype(int) - photo)[:, :, 0]
    yy, xx = np.nonzero(changed > 100)
    np.testing.assert_allclose([xx.mean(), yy.mean()], [140.0, 90.0], atol=1.0)
    assert np.array_equal(faces.paste_translations(photo, [], brighten_centre), photo)


def test_paste_edits_adds_only_the_change_and_a_zero_edit_is_the_photo():
    """Only the edit crosses back: a zero edit returns the photo bit for bit, a dot added at
    a crop point lands on the photo point the inverse warp gives (within 1 px), and nothing
    outside the head mask changes."""
    rng = np.random.default_rng(5)
    photo = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    matrix = _similarity(0.6, 0.3)
    matrix[:, 2] = [64, 64] - matrix[:, :2] @ [210.0, 150.0]
    zero = faces.paste_edits(photo, [np.zeros((128, 128, 3), np.float32)], [matrix])
    np.testing.assert_array_equal(zero, photo)
    dot = np.zeros((128, 128, 3), np.float32)
    dot[70:74, 50:54] = 300.0  # centre (51.5, 71.5) in crop pixels
    flat = np.full_like(photo, 60)
    pasted = faces.paste_edits(flat, [dot], [matrix]).astype(int)
    ys, xs = np.nonzero(pasted[:, :, 0] > 160)
    expected = faces.transform_points(faces.invert(matrix), [[51.5, 71.5]])[0]
    np.testing.assert_allclose([xs.mean(), ys.mean()], expected, atol=1.0)
    everywhere = faces.paste_edits(flat, [np.full((128, 128, 3), 50.0, np.float32)], [matrix])
    coverage = faces.paste_back(
        np.zeros_like(photo), [np.full((128, 128, 3), 255, np.uint8)], [matrix]
    )[:, :, 0]
    changed = (everywhere != flat).any(axis=2)
    assert changed.any() and not changed[coverage == 0].any()
    mask = faces.paste_mask(photo.shape, matrix, 128)
    assert mask.max() == 1.0 and not changed[mask == 0].any()
    np.testing.assert_array_equal(changed, np.rint(mask * 50) > 0)  # 50 * mask, rounded
    with pytest.raises(ValueError, match="1 edits but 2 matrices"):
        faces.paste_edits(photo, [dot], [matrix, matrix])


def test_full_resolution_paste_translations_pastes_the_edit_of_the_square_the_model_saw():
    """With full_resolution the model returns the centre square (crop_size) at its size; its
    difference from that square is what reaches the photo."""
    photo = np.full((200, 260, 3), 90, np.uint8)
    matrix = _similarity(1.1, 0.2)
    matrix[:, 2] = [32, 32] - matrix[:, :2] @ [140.0, 90.0]

    class Aligned:
        crop = faces.align(photo, matrix, 64)

    Aligned.matrix = matrix

    def identity(crops):
        return [faces.centre_square(c, 48).copy() for c in crops]

    def darken_centre(crops):
        out = identity(crops)
        for o in out:
            o[22:26, 22:26] = 0  # a dark dot at the square's centre (23.5, 23.5)
        return out

    same = faces.paste_translations(photo, [Aligned], identity, crop_size=48, full_resolution=True)
    np.testing.assert_array_equal(same, photo)
    pasted = faces.paste_translations(
        photo, [Aligned], darken_centre, crop_size=48, full_resolution=True
    )
    ys, xs = np.nonzero(pasted[:, :, 0] < 45)
    np.testing.assert_allclose([xs.mean(), ys.mean()], [140.0, 90.0], atol=1.0)
    with pytest.raises(ValueError, match="not a full-resolution translation"):
        faces.paste_translations(
            photo, [Aligned], lambda crops: [c[:32, :32] for c in crops], full_resolution=True
        )


def test_unknown_or_missing_detector_is_one_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown face detector"):
        faces.make_detector("haar")
    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda name: None)
    assert not faces.detector_available("mtcnn")
    with pytest.raises(faces.DetectorMissing, match=r"pip install 'xplore_tf\[prepare\]'"):
        faces.MtcnnDetector()


def test_faces_found_only_in_rotated_copies_map_back_to_the_photo():
    """detect_faces' retry: a face seen only in the +-20 degree copies lands where it is."""
    photo = _dot(120, 160, 100.0, 50.0, sigma=3.0)

    class RotatedOnly(faces.Detector):
        name = "mtcnn"

        def detect(self, rgb):
            if rgb.shape == photo.shape:
                return []  # upright: missed
            c = _centroid(rgb)  # the dot, wherever the rotation put it
            marks = c + np.array([[-10, -5], [10, -5], [0, 0], [-8, 12], [8, 12]], float)
            return [faces.Face((c[0] - 20, c[1] - 25, c[0] + 20, c[1] + 25), 0.9, marks)]

    (face,) = faces.detect_faces(photo, RotatedOnly())  # seen in both copies: kept once
    np.testing.assert_allclose(face.landmarks[2], [100.0, 50.0], atol=0.2)
    np.testing.assert_allclose([face.box[2] - face.box[0], face.box[3] - face.box[1]], [40, 50])
    assert faces.detect_faces(photo, RotatedOnly(), retry_angles=()) == []


def test_a_long_thin_photo_is_searched_rotated_in_windows_of_bounded_size():
    """A 24 x 12000 strip rotated as a whole needs a ~46 MP canvas (8 GB inside MTCNN); in
    windows each canvas stays under twice the photo's pixels, and the windows cover it."""
    assert faces.retry_windows(300, 400) == [(0, 300, 0, 400)]
    windows = faces.retry_windows(24, 12000)
    assert windows[0] == (0, 24, 0, 48) and windows[-1] == (0, 24, 11952, 12000)
    covered = np.zeros(12000, bool)
    for y0, y1, x0, x1 in windows:
        covered[x0:x1] = True
        assert (y0, y1, x1 - x0) == (0, 24, 48)
    assert covered.all()
    tall = faces.retry_windows(5000, 30)
    assert tall[0] == (0, 60, 0, 30) and tall[-1] == (4940, 5000, 0, 30)

    canvases = []

    class Recording(faces.Detector):
        name = "recording"

        def detect(self, rgb):
            canvases.append(rgb.shape[0] * rgb.shape[1])
            return []

    strip = np.random.default_rng(0).integers(0, 256, (24, 12000, 3), dtype=np.uint8)
    assert faces.detect_faces(strip, Recording()) == []
    assert max(canvases[1:]) <= 2 * 24 * 48  # each rotated window's canvas
    assert len(canvases) == 1 + 2 * len(windows)
