"""Tests of the procedural synthetic face generator (xplore_tf.data.synthetic)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

from xplore_tf.data import synthetic as syn

GEOMETRY = syn.IdentityGeometry(0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
BASE = syn.FaceAttributes(
    hair_color="brown",
    hair_style="short",
    skin_tone=1,
    glasses=False,
    smile=False,
    background=0,
)
ZERO = syn.Jitter.zero()


def _render(size: int = 64, geometry: syn.IdentityGeometry = GEOMETRY, **changes) -> np.ndarray:
    return syn.render_face(dataclasses.replace(BASE, **changes), geometry, ZERO, size)


def _nearest(color: np.ndarray, palette: dict) -> object:
    return min(palette, key=lambda k: float(np.sum((color - np.asarray(palette[k])) ** 2)))


def _color_mask(image: np.ndarray, color: tuple[int, int, int], tol: float) -> np.ndarray:
    diff = image.astype(np.float32) - np.asarray(color, dtype=np.float32)
    return np.sqrt(np.sum(diff**2, axis=-1)) < tol


def _read_labels(out_dir: str) -> list[dict[str, str]]:
    with open(os.path.join(out_dir, syn.LABELS_NAME), newline="") as f:
        return list(csv.DictReader(f))


def _read_all_bytes(out_dir: str) -> dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(out_dir)):
        with open(os.path.join(out_dir, name), "rb") as f:
            out[name] = f.read()
    return out


# --- rendering -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 256])
def test_render_shapes_and_dtype(size):
    rng = np.random.default_rng(3)
    image = syn.render_face(
        syn.sample_attributes(rng), syn.sample_identity(rng), syn.sample_jitter(rng), size
    )
    assert image.shape == (size, size, 3)
    assert image.dtype == np.uint8
    assert image.std() > 10  # something was drawn


@pytest.mark.parametrize("size", [31, 257, 0, 64.0])
def test_render_rejects_bad_size(size):
    with pytest.raises(ValueError, match="between 32 and 256|must be an int"):
        syn.render_face(BASE, GEOMETRY, ZERO, size)


def test_invalid_parameters_raise():
    with pytest.raises(ValueError, match="hair_color"):
        dataclasses.replace(BASE, hair_color="green")
    with pytest.raises(ValueError, match="face_width"):
        dataclasses.replace(GEOMETRY, face_width=1.5)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("hair_color", syn.HAIR_COLORS)
@pytest.mark.parametrize("style", ["short", "long"])
def test_hair_colour_matches_label(size, hair_color, style):
    image = _render(size, hair_color=hair_color, hair_style=style, skin_tone=2)
    bald = _render(size, hair_color=hair_color, hair_style="bald", skin_tone=2)
    hair_pixels = image[np.any(image != bald, axis=-1)]
    assert len(hair_pixels) > 0.03 * size * size
    median = np.median(hair_pixels.astype(np.float32), axis=0)
    assert _nearest(median, syn.HAIR_PALETTE) == hair_color


def test_long_hair_falls_below_the_face_and_bald_hides_colour():
    short = _render(hair_style="short", hair_color="red")
    long = _render(hair_style="long", hair_color="red")
    red_rows = lambda img: np.nonzero(_color_mask(img, syn.HAIR_PALETTE["red"], 20).any(1))[0]  # noqa: E731
    assert red_rows(long).max() > red_rows(short).max() + 10
    bald = [_render(hair_style="bald", hair_color=c) for c in syn.HAIR_COLORS]
    assert all(np.array_equal(bald[0], b) for b in bald[1:])


@pytest.mark.parametrize("size", [32, 64])
def test_glasses_pixels_iff_labelled(size):
    rng = np.random.default_rng(0)
    for _ in range(12):
        attrs = syn.sample_attributes(rng)
        geometry = syn.sample_identity(rng)
        for glasses in (False, True):
            a = dataclasses.replace(attrs, glasses=glasses)
            image = syn.render_face(a, geometry, ZERO, size)
            eye_band = image[size // 5 : 3 * size // 5]
            found = int(_color_mask(eye_band, syn.GLASSES_COLOR, 30).sum())
            assert (found > 0) == glasses, (a, found)


@pytest.mark.parametrize("mouth_width", [0.0, 1.0])
def test_smile_is_an_upward_curve_and_neutral_a_line(mouth_width):
    size = 64
    geometry = dataclasses.replace(GEOMETRY, mouth_width=mouth_width)
    extents = {}
    for smile in (False, True):
        image = _render(size, geometry, smile=smile, skin_tone=0)
        mask = _color_mask(image, syn.MOUTH_COLOR, 40)
        mask[:, : size // 4] = False
        mask[:, 3 * size // 4 :] = False
        rows, cols = np.nonzero(mask)
        assert len(rows) > 0
        extents[smile] = rows.max() - rows.min()
        if smile:
            left = rows[cols == cols.min()].mean()
            right = rows[cols == cols.max()].mean()
            centre = rows[np.abs(cols - size / 2) <= 1].max()
            assert left < centre - 2 and right < centre - 2  # corners go up
    assert extents[False] <= 2
    assert extents[True] >= extents[False] + 2


def test_background_corner_matches_label_with_jitter():
    rng = np.random.default_rng(1)
    for background in syn.BACKGROUNDS:
        assert tuple(_render(background=background)[0, 0]) == syn.BACKGROUND_PALETTE[background]
    palette = dict(enumerate(syn.BACKGROUND_PALETTE))
    for _ in range(20):
        attrs = syn.sample_attributes(rng)
        image = syn.render_face(attrs, syn.sample_identity(rng), syn.sample_jitter(rng), 32)
        for corner in (image[:3, :3], image[:3, -3:]):
            mean = corner.reshape(-1, 3).astype(np.float32).mean(0)
            assert _nearest(mean, palette) == attrs.background


def test_jitter_changes_pixels_but_render_is_pure():
    rng = np.random.default_rng(2)
    jitter = syn.sample_jitter(rng)
    a = syn.render_face(BASE, GEOMETRY, jitter, 48)
    b = syn.render_face(BASE, GEOMETRY, jitter, 48)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, syn.render_face(BASE, GEOMETRY, ZERO, 48))


def test_make_sample_sheet(tmp_path):
    out = syn.make_sample_sheet(str(tmp_path / "docs" / "sheet.png"), size=32, rows=2, cols=3)
    with Image.open(out) as sheet:
        assert sheet.size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)


# --- data set generation ----------------------------------------------------------------


def test_generate_is_deterministic_per_seed(tmp_path):
    a = syn.generate(str(tmp_path / "a"), num=10, size=32, seed=7, progress=False)
    syn.generate(str(tmp_path / "b"), num=10, size=32, seed=7, progress=False)
    syn.generate(str(tmp_path / "c"), num=10, size=32, seed=8, progress=False)
    files_a = _read_all_bytes(str(tmp_path / "a"))
    assert files_a == _read_all_bytes(str(tmp_path / "b"))
    files_c = _read_all_bytes(str(tmp_path / "c"))
    assert files_a[syn.LABELS_NAME] != files_c[syn.LABELS_NAME]
    assert files_a["000000.png"] != files_c["000000.png"]
    assert a["images_per_sec"] > 0 and a["num_identities"] == 3
    # Any single image can be re-rendered from (seed, index) alone.
    _, attrs, geometry, jitter = syn.sample_item(7, 9, images_per_identity=4)
    with Image.open(tmp_path / "a" / "000009.png") as img:
        assert np.array_equal(np.asarray(img), syn.render_face(attrs, geometry, jitter, 32))


def test_labels_agree_with_images_and_identities_repeat(tmp_path):
    out = str(tmp_path / "ds")
    syn.generate(out, num=12, size=32, seed=3, images_per_identity=4, progress=False)
    rows = _read_labels(out)
    assert list(rows[0]) == list(syn.CSV_COLUMNS)
    assert len(rows) == 12
    assert sorted(f for f in os.listdir(out) if f.endswith(".png")) == [r["image"] for r in rows]
    assert [int(r["identity"]) for r in rows] == [i // 4 for i in range(12)]
    palette = dict(enumerate(syn.BACKGROUND_PALETTE))
    for r in rows:
        groups = {
            "hair_": syn.HAIR_COLORS,
            "style_": syn.HAIR_STYLES,
            "skin_": syn.SKIN_TONES,
            "background_": syn.BACKGROUNDS,
        }
        for prefix, values in groups.items():
            assert sum(int(r[f"{prefix}{v}"]) for v in values) == 1
        assert r[f"hair_{r['hair_color']}"] == "1" and r[f"style_{r['hair_style']}"] == "1"
        assert r[f"skin_{r['skin_tone']}"] == "1" and r[f"background_{r['background']}"] == "1"
        with Image.open(os.path.join(out, r["image"])) as img:
            corner = np.asarray(img)[:3, :3].reshape(-1, 3).astype(np.float32).mean(0)
        assert _nearest(corner, palette) == int(r["background"])
        assert all(0.0 <= float(r[f]) <= 1.0 for f in syn.IDENTITY_FIELDS)

    def geometry(r):
        return tuple(float(r[f]) for f in syn.IDENTITY_FIELDS)

    images = {r["image"]: np.asarray(Image.open(os.path.join(out, r["image"]))) for r in rows}
    for ident in range(3):
        group = rows[4 * ident : 4 * ident + 4]
        assert len({geometry(r) for r in group}) == 1
        firsts = [images[r["image"]] for r in group]
        assert all(not np.array_equal(firsts[0], other) for other in firsts[1:])
    assert len({geometry(rows[4 * i]) for i in range(3)}) == 3


def test_ensure_synthetic_reuses_and_regenerates(tmp_path, monkeypatch):
    out = str(tmp_path / "faces")
    params = dict(num=6, size=32, seed=1, images_per_identity=2)
    assert syn.ensure_synthetic(out, **params) == out
    manifest_path = os.path.join(out, syn.MANIFEST_NAME)
    with open(manifest_path) as f:
        manifest = json.load(f)
    assert manifest["complete"] is True and manifest["num"] == 6
    mtimes = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in os.listdir(out)}

    def fail(*args, **kwargs):
        raise AssertionError("must not regenerate a complete data set")

    with monkeypatch.context() as m:
        m.setattr(syn, "generate", fail)
        assert syn.ensure_synthetic(out, **params) == out
    assert mtimes == {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in os.listdir(out)}

    syn.ensure_synthetic(out, **{**params, "seed": 2})
    with open(manifest_path) as f:
        assert json.load(f)["seed"] == 2
    syn.ensure_synthetic(out, **{**params, "num": 4})
    assert len(_read_labels(out)) == 4
    assert sum(n.endswith(".png") for n in os.listdir(out)) == 4
    assert sorted(os.listdir(tmp_path)) == ["faces"]  # no temp or old dirs left behind


def test_interrupted_generation_leaves_previous_set(tmp_path, monkeypatch):
    out = str(tmp_path / "faces")
    syn.ensure_synthetic(out, num=4, size=32, seed=0)
    before = _read_all_bytes(out)
    calls = []
    real = syn.render_face

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(syn, "render_face", flaky)
    with pytest.raises(KeyboardInterrupt):
        syn.ensure_synthetic(out, num=4, size=32, seed=5)
    assert _read_all_bytes(out) == before
    assert sorted(os.listdir(tmp_path)) == ["faces"]
    assert syn.is_complete(out, num=4, size=32, seed=0)
    assert not syn.is_complete(out, num=4, size=32, seed=5)


def test_generate_refuses_to_clobber_foreign_directory(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing"):
        syn.generate(str(foreign), num=2, size=32, seed=0, progress=False)
    assert (foreign / "precious.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="between 32 and 256"):
        syn.ensure_synthetic(str(tmp_path / "x"), num=2, size=300, seed=0)
