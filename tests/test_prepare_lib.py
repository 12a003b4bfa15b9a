"""Real photos in, real photos out: detection, alignment, faces.csv, --prepare, paste-back.

Needs the face detector (`pip install -e ".[prepare]"`: mtcnn) and scikit-image's bundled
photos; skips cleanly without them. The in-the-wild accuracy test also needs
../shared/data/celeba10k (it builds its photos from those faces, never copying them).
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import pytest
from PIL import Image
from tests_support import shared_dir

from tools import wild_faces
from xplore_tf import config as config_lib
from xplore_tf import prepare_lib
from xplore_tf.common import faces, pixels

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not faces.detector_available("mtcnn"), reason="mtcnn not installed (xplore_tf[prepare])"
    ),
]
PREP = config_lib.PrepareConfig(min_face_size=20)


@pytest.fixture(scope="module")
def detector():
    return faces.make_detector("mtcnn", min_face_size=PREP.min_face_size)


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data")
    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}


@pytest.fixture(scope="module")
def astronaut_face(photos, detector):
    (face,) = faces.find_faces(photos["astronaut"], detector, size=128)
    return face


def _save(path, rgb, **kw) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rgb).save(path, **kw)
    return str(path)


def _read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_prepare_folder_real_photos_and_odd_files(tmp_path, photos, detector):
    """astronaut: one face; coffee, chelsea, a 1x1 and a grey photo: none, listed; a broken
    file: unreadable, listed; nothing is fatal. faces.csv maps the crop back to its photo."""
    raw = tmp_path / "raw"
    _save(raw / "trip" / "astronaut.jpg", photos["astronaut"], quality=95)
    _save(raw / "coffee.png", photos["coffee"])
    _save(raw / "chelsea.jpg", photos["chelsea"])
    _save(raw / "dot.png", np.full((1, 1, 3), 128, np.uint8))
    _save(raw / "grey.png", np.full((90, 120, 3), 128, np.uint8))
    (raw / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    out = tmp_path / "aligned"
    summary = prepare_lib.prepare_folder(str(raw), str(out), PREP, detector=detector)
    assert (summary.photos, summary.photos_with_faces, summary.faces) == (6, 1, 1)
    assert summary.no_face == ["chelsea.jpg", "coffee.png", "dot.png", "grey.png"]
    assert list(summary.unreadable) == ["broken.jpg"]
    text = prepare_lib.format_summary(summary)
    assert "no face found in 4 photos: chelsea.jpg, coffee.png, dot.png, grey.png" in text
    assert "images/s" in text and "unreadable in 1 photos: broken.jpg" in text
    (row,) = _read_csv(out / "faces.csv")
    assert (row["image"], row["source"], row["face"]) == (
        "trip/astronaut_f0.png",
        "trip/astronaut.jpg",
        "0",
    )
    assert float(row["score"]) > 0.9
    crop = pixels.read_rgb(str(out / "trip" / "astronaut_f0.png"))
    assert crop.shape == (128, 128, 3)
    # The row's transform reproduces the crop from the photo; its landmarks land on the template.
    matrix = np.array([float(row[k]) for k in ("m00", "m01", "m02", "m10", "m11", "m12")])
    photo = pixels.read_rgb(str(raw / "trip" / "astronaut.jpg"))
    again = faces.align(photo, matrix.reshape(2, 3), 128)
    assert np.abs(again.astype(int) - crop).max() <= 1
    marks = np.array([float(row[f"{n}_{a}"]) for n in faces.LANDMARKS for a in "xy"])
    placed = faces.transform_points(matrix.reshape(2, 3), marks.reshape(5, 2))
    assert np.abs(placed - faces.template_points("mtcnn", 128)).max() < 4.0
    # A rerun that finds nothing removes the crop the earlier run wrote, and nothing else.
    (out / "notes.txt").write_text("mine")

    class Blind(faces.Detector):
        name = "mtcnn"

        def detect(self, rgb):
            return []

    assert prepare_lib.prepare_folder(str(raw), str(out), PREP, detector=Blind()).faces == 0
    assert not (out / "trip" / "astronaut_f0.png").exists() and (out / "notes.txt").exists()
    assert _read_csv(out / "faces.csv") == []


def test_a_killed_prepare_goes_on_from_the_photo_in_flight(tmp_path, photos, detector):
    """A kill (here an exception from the detector at the 4th photo) loses only that photo:
    started again, the run detects the remaining photos only and ends as an uninterrupted
    run would; a long, thin photo on the way is searched in bounded windows."""
    raw = tmp_path / "raw"
    for i in range(6):
        _save(raw / f"p{i}.jpg", photos["astronaut"] if i % 2 == 0 else photos["coffee"])
    _save(raw / "strip.png", np.full((24, 600, 3), 128, np.uint8))  # > 3 x long: windows
    astronauts = []
    armed = [True]

    class Killed(faces.Detector):
        name = "mtcnn"

        def detect(self, rgb):
            if rgb.shape[:2] == photos["astronaut"].shape[:2]:
                astronauts.append(1)
                if armed[0] and len(astronauts) == 3:
                    raise KeyboardInterrupt  # as a kill, in the middle of p4
            return detector.detect(rgb)

    out = tmp_path / "aligned"
    with pytest.raises(KeyboardInterrupt):
        prepare_lib.prepare_folder(str(raw), str(out), PREP, detector=Killed())
    assert (out / prepare_lib.PROGRESS).exists() and not (out / "faces.csv").exists()
    armed[0] = False
    astronauts.clear()
    summary = prepare_lib.prepare_folder(str(raw), str(out), PREP, detector=Killed())
    assert len(astronauts) == 1  # only p4 again: p0 and p2 were done before the kill
    assert (summary.photos, summary.faces) == (7, 3) and "strip.png" in summary.no_face
    assert not (out / prepare_lib.PROGRESS).exists()
    again = prepare_lib.prepare_folder(str(raw), str(tmp_path / "whole"), PREP, detector=detector)
    assert _read_csv(out / "faces.csv") == _read_csv(tmp_path / "whole" / "faces.csv")
    assert again.no_face == summary.no_face


def test_prepare_refuses_output_inside_the_photos(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(ValueError, match="inside --images_dir"):
        prepare_lib.prepare_folder(str(tmp_path / "raw"), str(tmp_path / "raw" / "out"), PREP)
    with pytest.raises(FileNotFoundError, match="--images_dir"):
        prepare_lib.prepare_folder(str(tmp_path / "none"), str(tmp_path / "out"), PREP)


def test_several_faces_in_one_photo_and_largest(astronaut_face, detector):
    rng = np.random.default_rng(4)
    photo = wild_faces.make_photo(
        [astronaut_face.crop] * 3, ["a"] * 3, rng, scale_range=(0.45, 0.9), max_side=640
    )
    upright = pixels.decode_rgb(photo.data)  # through the EXIF orientation
    found = faces.find_faces(upright, detector, size=128)
    assert len(found) == 3
    sizes = [f.face.size for f in found]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    for i in range(3):
        assert wild_faces.match([f.face for f in found], photo, i, 128, "mtcnn") is not None
    (largest,) = faces.find_faces(upright, detector, size=128, faces="largest")
    assert largest.face.size == sizes[0]
    assert faces.find_faces(upright, detector, min_face_size=sizes[0] + 1) == []
    assert faces.find_faces(upright, detector, min_score=1.01) == []


def test_face_cut_by_the_border_is_found_and_padded(photos, astronaut_face, detector):
    x_left_eye = astronaut_face.face.landmarks[0, 0]
    cut = np.ascontiguousarray(photos["astronaut"][:, int(x_left_eye) - 40 :])  # cheek cut off
    (face,) = faces.find_faces(cut, detector, size=128)
    shifted = astronaut_face.face.landmarks - [int(x_left_eye) - 40, 0]
    assert np.abs(face.face.landmarks[:2] - shifted[:2]).max() < 3.0
    # The crop's part beyond the photo's left edge mirrors the photo (no black wedge).
    assert face.crop[:, :8].mean() > 20


def test_wild_set_detection_rate_and_eye_error(detector):
    """celeba10k faces pasted at scale 0.3-1.5, rotation +-30 deg, random position and EXIF
    orientation: >= 95 % detected, mean eye-position error <= 2 px at 128 px."""
    root = shared_dir()
    celeba = os.path.join(root, "data", "celeba10k", "images") if root else ""
    if not os.path.isdir(celeba):
        pytest.skip("needs ../shared/data/celeba10k")
    names = wild_faces.list_faces(celeba)[9000:9024]
    rng = np.random.default_rng(14)
    detected, errors = 0, []
    for name in names:
        crop = pixels.read_rgb(os.path.join(celeba, name))
        photo = wild_faces.make_photo([crop], [name], rng, max_side=480)
        upright = pixels.decode_rgb(photo.data)
        assert np.abs(upright.astype(int) - photo.upright).mean() < 6  # EXIF undone (JPEG q92)
        found = faces.find_faces(upright, detector, size=128, min_face_size=20)
        i = wild_faces.match([f.face for f in found], photo, 0, 128, "mtcnn")
        if i is None:
            continue
        detected += 1
        e = wild_faces.eye_errors(
            found[i].matrix, photo.matrices[0], photo.source_sizes[0], 128, "mtcnn"
        )
        errors.append(e.mean())
    assert detected >= 0.95 * len(names), f"detected {detected}/{len(names)}"
    assert np.mean(errors) <= 2.0, f"mean eye error {np.mean(errors):.2f} px"


def test_paste_back_identity_round_trip_on_a_real_photo(photos):
    """With an identity translator the photo is unchanged outside the face mask and within a
    small resampling tolerance inside it; the output is the whole photo."""
    photo = photos["astronaut"]
    seen = []

    def identity(pngs):
        seen.extend(pngs)
        return pngs

    options = faces.PasteOptions(min_face_size=20, aligned_size=128)
    pasted, found = faces.translate_photo(photo, identity, options)
    assert found == 1 and len(seen) == 1 and pasted.shape == photo.shape
    diff = np.abs(pasted.astype(int) - photo)
    blank = faces.translate_photo(
        np.zeros_like(photo), lambda p: p, options
    )  # no face in a black photo: unchanged
    assert blank[1] == 0 and not blank[0].any()
    # Where the face mask is zero the photo is untouched.
    (aligned,) = faces.find_faces(photo, faces.make_detector("mtcnn", min_face_size=20))
    coverage = faces.paste_back(
        np.zeros_like(photo), [np.full((128, 128, 3), 255, np.uint8)], [aligned.matrix]
    )[:, :, 0]
    assert diff[coverage == 0].max() == 0
    assert diff[coverage > 0].mean() < 4.0


def test_dataset_folder_prepare_feeds_cluster_and_train(tmp_path, photos, detector):
    """--dataset=folder --prepare: the images folder becomes WORKDIR/prepared, made once."""
    from xplore_tf.data import sources

    raw = tmp_path / "raw"
    _save(raw / "a.jpg", photos["astronaut"][::2, ::2], quality=95)
    _save(raw / "b.png", photos["coffee"][::4, ::4])
    config = config_lib.Config(
        workdir=str(tmp_path / "run"),
        data=config_lib.DataConfig(dataset="folder", images_dir=str(raw)),
        prepare=dataclasses.replace(PREP, enabled=True),
    )
    root = sources.prepare_inputs(config)
    assert root == config.prepared_dir and os.path.isfile(os.path.join(root, "a_f0.png"))
    stamp = os.stat(os.path.join(root, "faces.csv")).st_mtime_ns
    assert sources.prepare_inputs(config) == root  # reused, not prepared again
    assert os.stat(os.path.join(root, "faces.csv")).st_mtime_ns == stamp
    _save(raw / "c.png", photos["chelsea"][::4, ::4])  # the folder changed: prepared again
    sources.prepare_inputs(config)
    assert os.stat(os.path.join(root, "faces.csv")).st_mtime_ns != stamp
    with pytest.raises(ValueError, match="--prepare needs photos"):
        sources.prepare_inputs(
            dataclasses.replace(config, data=config_lib.DataConfig(dataset="synthetic"))
        )


@pytest.fixture
def parsed_flags():
    from absl import flags

    yield flags.FLAGS
    flags.FLAGS.unparse_flags()


def test_prepare_binary(tmp_path, photos, parsed_flags, capsys):
    from xplore_tf import prepare

    raw = tmp_path / "raw"
    _save(raw / "astronaut.png", photos["astronaut"][::2, ::2])
    _save(raw / "grey.jpg", np.full((90, 120, 3), 128, np.uint8))
    parsed_flags(
        [
            "prog",
            f"--images_dir={raw}",
            f"--out={tmp_path / 'out'}",
            "--faces=largest",
            "--aligned_size=64",
        ]
    )
    prepare.main(["prog"])
    printed = capsys.readouterr().out
    assert "prepared 1 faces from 1 of 2 photos" in printed and "64 px crops" in printed
    assert "no face found in 1 photos: grey.jpg" in printed
    assert pixels.read_rgb(str(tmp_path / "out" / "astronaut_f0.png")).shape == (64, 64, 3)
    parsed_flags.unparse_flags()
    parsed_flags(["prog", f"--images_dir={raw}"])
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["prog"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "xplore_tf.prepare: error: --out is required: the folder to write the aligned faces into"
    )
