"""Listing and decoding: odd but valid images are normalised, broken ones are skipped."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from xplore_tf.data import images


def _save(path, array, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, **kw)


def test_list_images_recursive_sorted_and_filtered(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    for rel in ["b.JPG", "a.png", "sub/c.jpeg", "sub/deeper/d.bmp", "e.webp"]:
        _save(str(tmp_path / rel), rgb)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / ".cache").mkdir()
    _save(str(tmp_path / ".cache" / "x.png"), rgb)
    assert images.list_images(str(tmp_path)) == [
        "a.png",
        "b.JPG",
        "e.webp",
        "sub/c.jpeg",
        "sub/deeper/d.bmp",
    ]


def test_list_images_missing_folder_is_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        images.list_images(str(tmp_path / "nope"))


def test_modes_become_rgb(tmp_path):
    gray = np.full((10, 10), 200, np.uint8)
    _save(str(tmp_path / "gray.png"), gray)
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 255
    rgba[:5, :, 3] = 0  # top half transparent
    _save(str(tmp_path / "rgba.png"), rgba)
    Image.fromarray(np.full((10, 10, 3), 30, np.uint8)).convert("P").save(tmp_path / "pal.png")
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")

    g = images.load_image(str(tmp_path / "gray.png"), size=10)
    assert g.shape == (10, 10, 3) and g.dtype == np.uint8 and (g == 200).all()
    a = images.load_image(str(tmp_path / "rgba.png"), size=10)
    np.testing.assert_array_equal(a[0, 0], [0, 0, 0])  # transparent -> black
    np.testing.assert_array_equal(a[9, 0], [255, 0, 0])
    p = images.load_image(str(tmp_path / "pal.png"), size=10)
    assert p.shape == (10, 10, 3) and abs(int(p.mean()) - 30) <= 2
    c = images.load_image(str(tmp_path / "cmyk.jpg"), size=10)
    assert c.shape == (10, 10, 3) and c[..., 0].mean() > 200 and c[..., 1].mean() < 60


def test_exif_orientation_is_honoured(tmp_path):
    # Stored landscape: left half red, right half blue. Orientation 6 = rotate 90 CW to view.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20, 0] = 255
    stored[:, 20:, 2] = 255
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = images.load_image(str(tmp_path / "rot.jpg"), size=20)
    # Viewed upright the image is portrait 20x40 with red on top; the centre square crop
    # keeps rows 10..30 of 40: top half red-ish, bottom half blue-ish.
    assert out[2, 10, 0] > 200 and out[2, 10, 2] < 60
    assert out[17, 10, 2] > 200 and out[17, 10, 0] < 60


def test_center_crop_box():
    assert images.center_crop_box(89, 109, 0) == (0, 10, 89, 99)
    assert images.center_crop_box(178, 218, 178) == (0, 20, 178, 198)
    assert images.center_crop_box(100, 100, 50) == (25, 25, 75, 75)


def test_dataset_skips_and_counts_bad_files(tmp_path):
    good = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    _save(str(tmp_path / "a_good.png"), good)
    _save(str(tmp_path / "d_good.jpg"), good, quality=95)
    (tmp_path / "b_text.jpg").write_text("this is not a jpeg")
    (tmp_path / "c_empty.png").write_bytes(b"")
    full = (tmp_path / "d_good.jpg").read_bytes()
    (tmp_path / "e_truncated.jpg").write_bytes(full[: len(full) // 2])
    png = (tmp_path / "a_good.png").read_bytes()
    (tmp_path / "f_truncated.png").write_bytes(png[: len(png) - 30])

    rel = images.list_images(str(tmp_path))
    log = images.SkipLog()
    ds = images.image_dataset(str(tmp_path), rel, size=16, skip_log=log)
    got = [(int(i), img.numpy()) for i, img in ds]
    assert [rel[i] for i, _ in got] == ["a_good.png", "d_good.jpg"]
    np.testing.assert_array_equal(got[0][1], good)
    assert sorted(p for p, _ in log.skipped) == [
        "b_text.jpg",
        "c_empty.png",
        "e_truncated.jpg",
        "f_truncated.png",
    ]
    assert log.count == 4
