"""`translate --paste_back` and `serving/client.py --paste_back`: whole photos out.

Both detect and align the faces of a real photo (scikit-image's astronaut), translate each
aligned crop with the tiny exported model, and blend it back; the client must give the same
pixels through a server as translate gives locally. Skips without mtcnn or scikit-image.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests_support import tiny_export, tiny_trained_run

from serving import client as client_lib
from serving import client_common as common
from serving import dev_server, faces
from xplore_tf import translate_lib

pytestmark = pytest.mark.skipif(
    not faces.detector_available("mtcnn"), reason="mtcnn not installed (xplore_tf[prepare])"
)


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


def _coverage(rgb: np.ndarray) -> np.ndarray:
    """Where paste-back may change the photo: the warped crop square of each face."""
    found = faces.find_faces(rgb, faces.make_detector("mtcnn", min_face_size=20))
    assert len(found) == 1
    return faces.paste_back(
        np.zeros_like(rgb), [np.full((128, 128, 3), 255, np.uint8)], [found[0].matrix]
    )[:, :, 0]


def test_translate_and_client_paste_back_the_same_whole_photo(exported, photo, tmp_path):
    run, base = exported
    saved_model = os.path.join(base, "xplore", "1")
    (local,) = translate_lib.translate_files(
        run,
        [photo],
        cluster=1,
        out=str(tmp_path / "local"),
        saved_model=saved_model,
        paste_back=True,
    )
    assert local == str(tmp_path / "local" / "astronaut_c001.png")
    original = common.read_rgb(photo)
    pasted = common.read_rgb(local)
    assert pasted.shape == original.shape  # the whole photo, not a square
    diff = np.abs(pasted.astype(int) - original).max(axis=2)
    covered = _coverage(original) > 0
    assert diff[~covered].max() == 0  # untouched outside the face
    assert diff[covered].mean() > 5  # the (tiny, untrained) model changed the face

    srv, port = dev_server.serve(base, port=0)
    try:
        args = client_lib.parse_args(
            [
                f"--server=127.0.0.1:{port}",
                f"--image={photo}",
                "--cluster=1",
                "--paste_back",
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
