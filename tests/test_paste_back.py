"""`translate --paste_back` and `serving/client.py --paste_back`: whole photos out.

Both detect and align the faces of a real photo (scikit-image's astronaut), translate each
aligned crop with the tiny exported model, and blend it back; the client must give the same
pixels through a server as translate gives locally. Skips without mtcnn or scikit-image.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests_support import load_translators_once, tiny_export, tiny_trained_run

from serving import client as client_lib
from xplore_tf import translate_lib
from xplore_tf.common import faces
from xplore_tf.common import pixels as common
from xplore_tf.testing import dev_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not faces.detector_available("mtcnn"), reason="mtcnn not installed (xplore_tf[prepare])"
    ),
]


@pytest.fixture(autouse=True)
def _translators_load_once(monkeypatch):
    load_translators_once(monkeypatch)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    Image.fromarray(data.astronaut()[::2, ::2]).save(path, quality=95)  # 256 x 256
    return str(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tiny_trained_run(tmp_path_factory)
    return run, tiny_export(tmp_path_factory)


def _laplacian_correlation(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Correlation of the two images' Laplacians (their finest detail) inside `where`."""

    def laplacian(rgb):
        g = rgb.astype(np.float64).mean(axis=2)
        out = np.zeros_like(g)
        out[1:-1, 1:-1] = (
            g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
        )
        return out[where]

    return float(np.corrcoef(laplacian(a), laplacian(b))[0, 1])


def _coverage(rgb: np.ndarray) -> np.ndarray:
    """Where paste-back may change the photo: the warped crop square of each face."""
    found = faces.find_faces(rgb, faces.make_detector("mtcnn", min_face_size=20))
    assert len(found) == 1
    return faces.paste_back(
        np.zeros_like(rgb), [np.full((128, 128, 3), 255, np.uint8)], [found[0].matrix]
    )[:, :, 0]


@pytest.mark.parametrize("resolution", ["input", "model"])
def test_translate_and_client_paste_back_the_same_whole_photo(
    exported, photo, tmp_path, resolution
):
    run, base = exported
    saved_model = os.path.join(base, "xplore", "1")
    (local,) = translate_lib.translate_files(
        run,
        [photo],
        cluster=1,
        strength=2.0,  # the tiny model's largest edit
        out=str(tmp_path / "local"),
        saved_model=saved_model,
        paste_back=True,
        output_resolution=resolution,
    )
    assert local == str(tmp_path / "local" / "astronaut_c001_s2.png")
    original = common.read_rgb(photo)
    pasted = common.read_rgb(local)
    assert pasted.shape == original.shape  # the whole photo, not a square
    diff = np.abs(pasted.astype(int) - original).max(axis=2)
    covered = _coverage(original) > 0
    assert diff[~covered].max() == 0  # untouched outside the face
    assert diff[covered].mean() > 5  # the (tiny, untrained) model changed the face
    # At the model's resolution its 16 px output replaced the face's fine detail; at the
    # input's, only its smooth edit was added and the photo's own detail is all there.
    detail = _laplacian_correlation(original, pasted, covered)
    assert detail > 0.9 if resolution == "input" else detail < 0.5

    srv, port = dev_server.serve(base, port=0)
    try:
        args = client_lib.parse_args(
            [
                f"--server=127.0.0.1:{port}",
                f"--image={photo}",
                "--cluster=1",
                "--strength=2",
                "--paste_back",
                f"--output_resolution={resolution}",
                f"--out={tmp_path / 'served.png'}",
            ]
        )
        (served,) = client_lib.run(args)
    finally:
        srv.stop(None)
    np.testing.assert_array_equal(common.read_rgb(served), pasted)


def test_paste_back_errors_are_one_line(exported, photo, tmp_path, monkeypatch):
    run, base = exported
    saved_model = os.path.join(base, "xplore", "1")
    with pytest.raises(ValueError, match="--paste_back writes whole photos"):
        translate_lib.translate_files(
            run, [photo], all_clusters=True, out=str(tmp_path), paste_back=True
        )
    monkeypatch.setattr(faces, "detector_available", lambda name="mtcnn": False)
    with pytest.raises(ValueError, match=r"--paste_back: face detector 'mtcnn' is not installed"):
        translate_lib.translate_files(
            run, [photo], cluster=0, out=str(tmp_path), saved_model=saved_model, paste_back=True
        )
    args = [f"--image={photo}", "--cluster=0", "--paste_back", f"--out={tmp_path / 'x.png'}"]
    assert client_lib.main(args) == 2


def _nose_dot_translator(dark: list):
    """A stand-in full-resolution model: each aligned crop back at its size with a dark dot
    where the template puts the nose tip; records the crop sizes it saw."""
    from PIL import Image

    def translate_pngs(pngs: list[bytes]) -> list[bytes]:
        out = []
        for png in pngs:
            crop = common.decode(png).copy()
            side = crop.shape[0]
            x, y = faces.template_points("mtcnn", side)[2]
            r = max(1, side // 64)
            crop[int(y) - r : int(y) + r + 1, int(x) - r : int(x) + r + 1] = 0
            dark.append(side)
            out.append(common.png_bytes(np.asarray(Image.fromarray(crop))))
        return out

    return translate_pngs


@pytest.mark.parametrize("layout", ["two_faces", "small_face"])
def test_full_resolution_paste_puts_each_faces_edit_on_its_own_nose(photo, layout):
    """Several faces each get their own edit; a face smaller than the model's input is
    translated from an upscaled crop and its edit shrunk back into place."""
    from PIL import Image

    rgb = common.read_rgb(photo)
    if layout == "two_faces":
        rgb = np.concatenate([rgb, rgb[:, ::-1]], axis=1)  # 256 x 512, two astronauts
    else:
        rgb = np.asarray(Image.fromarray(rgb).resize((96, 96), Image.Resampling.LANCZOS))
    sides: list[int] = []
    options = faces.PasteOptions(min_face_size=10, full_resolution=True)
    out, found = faces.translate_photo(rgb, _nose_dot_translator(sides), options)
    assert found == (2 if layout == "two_faces" else 1) and sides == [128] * found
    detected = faces.find_faces(rgb, faces.make_detector("mtcnn"), min_face_size=10)
    changed = np.abs(out.astype(int) - rgb).max(axis=2) > 20
    for face in detected:
        nose = face.face.landmarks[2]
        near = changed[
            int(nose[1]) - 6 : int(nose[1]) + 7, max(int(nose[0]) - 6, 0) : int(nose[0]) + 7
        ]
        assert near.any(), (layout, nose)
    far = np.ones_like(changed)
    for face in detected:
        x, y = face.face.landmarks[2]
        far[max(int(y) - 12, 0) : int(y) + 13, max(int(x) - 12, 0) : int(x) + 13] = False
    assert not changed[far].any()  # nothing else moved: the dot is the whole edit


def test_an_exif_rotated_photo_comes_back_upright_with_the_same_edit(exported, photo, tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 is decoded upright, edited and
    written upright: the same pixels as the upright file gives."""
    from PIL import Image

    run, base = exported
    saved_model = os.path.join(base, "xplore", "1")
    upright = common.read_rgb(photo)
    sideways = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(np.rot90(upright, 1)).save(sideways, quality=100, exif=exif)
    decoded = common.read_rgb(str(sideways))
    assert np.abs(decoded.astype(int) - upright).mean() < 3  # upright again (JPEG aside)
    straight = tmp_path / "straight.png"
    straight.write_bytes(common.png_bytes(decoded))
    outs = [
        translate_lib.translate_files(
            run,
            [str(path)],
            cluster=1,
            strength=2.0,
            out=str(tmp_path / name),
            saved_model=saved_model,
            paste_back=True,
        )[0]
        for path, name in ((sideways, "a"), (straight, "b"))
    ]
    a, b = (common.read_rgb(p) for p in outs)
    assert a.shape == upright.shape
    np.testing.assert_array_equal(a, b)
