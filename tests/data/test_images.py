"""Listing and decoding: odd but valid images are normalised, broken ones are skipped, and
every decoding path (loader, translate, client, the SavedModel's graph) sees the same pixels."""

from __future__ import annotations

import io
import logging
import os

import numpy as np
import pytest
from PIL import Image
from tests_support import awkward_images, write_awkward

from xplore_tf.common import pixels as common
from xplore_tf.data import images

AWKWARD = {a.name: a for a in awkward_images()}


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


# ---------------------------------------------------------------- one definition of pixels
@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    return write_awkward(tmp_path_factory.mktemp("awkward"))


@pytest.fixture(scope="module")
def in_graph():
    """The SavedModel's decoder (`decode_image_bytes`) as traced into translate_bytes."""
    import tensorflow as tf

    fn = tf.function(images.decode_image_bytes, input_signature=[tf.TensorSpec([], tf.string)])

    def run(data: bytes):
        """uint8 [H,W,3], or the refusal's message."""
        try:
            return fn(tf.constant(data)).numpy()
        except tf.errors.InvalidArgumentError as e:
            return " ".join(e.message.split())

    return run


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert isinstance(got, np.ndarray), got
    assert got.shape == want.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_every_path_decodes_to_the_same_pixels_or_refuses_alike(name, awkward, in_graph):
    item, path = AWKWARD[name], awkward[name]
    if item.refused:
        for call in (
            lambda: common.read_rgb(path),  # the definition
            lambda: images.load_image(path, size=8),  # cluster, train, evaluate
            lambda: common.read_image_bytes(path),  # translate and the client
        ):
            with pytest.raises(common.ImageError) as info:
                call()
            line = str(info.value)
            assert line.startswith(f"{path}: ") and "\n" not in line
            assert item.refused == "*" or item.refused in line
        graph = in_graph(item.data)  # a thin client sending the file as it is
        assert isinstance(graph, str) and (item.refused == "*" or item.refused in graph)
        return

    pixels = common.read_rgb(path)
    assert pixels.dtype == np.uint8 and pixels.shape == item.truth.shape
    error = np.abs(pixels.astype(int) - item.truth.astype(int))
    assert (error.mean() <= item.lossy) if item.lossy else (error.max() <= 1)
    # The loader of cluster/train/evaluate: the same pixels, centre-cropped (no resize here).
    side = min(pixels.shape[:2])
    top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
    _close(images.load_image(path, size=side), pixels[top : top + side, left : left + side])
    # translate and serving/client.py send read_image_bytes: the model decodes them alike.
    _close(in_graph(common.read_image_bytes(path)), pixels)
    # The raw file sent by a thin client: the same pixels, or the model's own refusal.
    graph = in_graph(item.data)
    if item.model_refuses:
        assert isinstance(graph, str) and item.model_refuses in graph
        assert common.read_header(item.data).not_in_model == item.model_refuses
    else:
        _close(graph, pixels)
        assert common.read_image_bytes(path) == item.data  # sent unchanged


def test_the_issues_inputs_decode_as_the_face(awkward):
    # 16-bit greyscale face (values x 257): was white (mean 255) in training.
    item = AWKWARD["png_grey16.png"]
    got = images.load_image(awkward["png_grey16.png"], size=64)
    np.testing.assert_array_equal(got, item.truth)
    assert abs(got.mean() - item.truth.mean()) < 0.5 and got.mean() < 200
    # RGBA with green under alpha 0: black everywhere alpha is 0, never green.
    got = images.load_image(awkward["png_rgba_hidden_green.png"], size=64)
    assert (got[:, :32] == 0).all()
    np.testing.assert_array_equal(got, AWKWARD["png_rgba_hidden_green.png"].truth)


def test_header_sizes_agree_with_pillow():
    for item in AWKWARD.values():
        if item.truth is None:
            continue
        header = common.read_header(item.data)
        with Image.open(io.BytesIO(item.data)) as im:
            assert (header.width, header.height) == im.size, item.name
        assert header.format == item.name.split("_")[0].upper()


def test_huge_images_are_refused_before_decoding(tmp_path):
    from tests_support import huge_png

    path = tmp_path / "huge.png"
    path.write_bytes(huge_png())  # 20000 x 9000 greyscale: Pillow's DecompressionBombError
    with pytest.raises(common.ImageError) as info:
        images.load_image(str(path), size=16)
    assert str(info.value) == (
        f"{path}: image of 20000x9000 pixels is larger than the 178956970 pixels accepted "
        "(decompression-bomb guard)"
    )


class _Boom:
    """Image.open that raises `error` for bytes ending in `marker` (a stand-in for any
    exception a Pillow plugin may raise, e.g. from EXIF parsing)."""

    def __init__(self, monkeypatch, **errors):
        self.errors = {k.encode(): v for k, v in errors.items()}
        self.real = Image.open
        monkeypatch.setattr(Image, "open", self)

    def __call__(self, fp, *args, **kwargs):
        data = fp.getvalue() if isinstance(fp, io.BytesIO) else b""
        for marker, error in self.errors.items():
            if data.endswith(marker):
                raise error
        return self.real(fp, *args, **kwargs)


def _marked_folder(root) -> list[str]:
    good = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    names = ["a_good.png", "b_zero.png", "c_bomb.png", "d_key.png", "e_good.png"]
    for name in names:
        data = common.png_bytes(good)
        marker = {"b_zero.png": b"ZERO", "c_bomb.png": b"BOMB", "d_key.png": b"KEYE"}
        (root / name).write_bytes(data + marker.get(name, b""))
    return names


def test_any_decoder_exception_skips_and_counts_the_file(tmp_path, monkeypatch):
    from xplore_tf.data import training
    from xplore_tf.evaluation import pipeline as evaluation

    names = _marked_folder(tmp_path)
    _Boom(
        monkeypatch,
        ZERO=ZeroDivisionError("division by zero"),
        BOMB=Image.DecompressionBombError("Image size exceeds limit"),
        KEYE=KeyError(274),
    )
    expected_skips = ["b_zero.png", "c_bomb.png", "d_key.png"]
    # clustering's dataset
    log = images.SkipLog()
    got = [int(i) for i, _ in images.image_dataset(str(tmp_path), names, size=16, skip_log=log)]
    assert [names[i] for i in got] == ["a_good.png", "e_good.png"]
    assert sorted(p for p, _ in log.skipped) == expected_skips and log.count == 3
    assert dict(log.skipped)["b_zero.png"] == "ZeroDivisionError: division by zero"
    # training's dataset
    log = images.SkipLog()
    data = training.TrainingData(str(tmp_path), tuple(names), np.zeros(5, np.int32), 2)
    stream = training.training_dataset(data, image_size=16, batch_size=2, seed=0, skip_log=log)
    batches = list(stream.take(2))  # 4 readable samples: epoch 0 is visited entirely
    assert [b["image"].shape for b in batches] == [(2, 16, 16, 3)] * 2
    assert sorted({p for p, _ in log.skipped}) == expected_skips
    # evaluation's loader
    kept, x = evaluation.load_images(str(tmp_path), names, size=16, crop_size=0)
    assert kept.tolist() == [0, 4] and x.shape == (2, 16, 16, 3)


def test_real_pillow_decompression_bomb_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow raises above 2 x 100 pixels
    path = tmp_path / "face.png"
    path.write_bytes(common.png_bytes(np.zeros((24, 20, 3), np.uint8)))
    with pytest.raises(
        common.ImageError, match=r"face.png: DecompressionBombError: Image size \(480"
    ):
        images.load_image(str(path), size=8)


@pytest.mark.parametrize("error", [MemoryError(), KeyboardInterrupt()])
def test_memory_error_and_interrupt_are_never_swallowed(tmp_path, monkeypatch, error):
    path = tmp_path / "face.png"
    path.write_bytes(common.png_bytes(np.zeros((8, 8, 3), np.uint8)) + b"STOP")
    _Boom(monkeypatch, STOP=error)
    with pytest.raises(type(error)):
        images.load_image(str(path), size=8)


# ---------------------------------------------------------------- listing: links, duplicates
def _tiny_pngs(folder, count: int, seed: int) -> None:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(
            os.path.join(folder, f"{i:02d}.png")
        )


def test_symlinked_subfolder_is_listed(tmp_path):
    root, elsewhere = tmp_path / "faces", tmp_path / "more_faces"
    _tiny_pngs(root, 20, seed=0)
    _tiny_pngs(elsewhere, 40, seed=1)
    os.symlink(elsewhere, root / "more", target_is_directory=True)
    listed = images.list_images(str(root))
    assert len(listed) == 60
    assert sum(p.startswith("more/") for p in listed) == 40


def test_link_loops_end_and_are_named(tmp_path, caplog):
    root = tmp_path / "faces"
    _tiny_pngs(root / "sub", 3, seed=0)
    _tiny_pngs(root, 2, seed=1)
    os.symlink(root, root / "sub" / "up", target_is_directory=True)  # a loop
    os.symlink(root / "sub", root / "zz_again", target_is_directory=True)  # a second link
    (root / "clip.gif").write_bytes(b"GIF89a")
    with caplog.at_level(logging.WARNING):
        listing = images.scan_images(str(root))
    assert len(listing.images) == 5
    assert listing.links_skipped == ["sub/up", "zz_again"]
    assert listing.ignored == {".gif": 1}
    text = caplog.text
    assert "not following sub/up" in text and "not following zz_again" in text
    assert "1 .gif file(s)" in text


def test_find_duplicates_by_file_bytes(tmp_path):
    _tiny_pngs(tmp_path, 3, seed=0)
    (tmp_path / "03.png").write_bytes((tmp_path / "01.png").read_bytes())
    (tmp_path / "04.png").write_bytes((tmp_path / "01.png").read_bytes())
    # The same pixels in another encoding are a distinct file (bytes differ).
    Image.open(tmp_path / "00.png").save(tmp_path / "05.bmp")
    rel = images.list_images(str(tmp_path))
    assert images.find_duplicates(str(tmp_path), rel) == {"03.png": "01.png", "04.png": "01.png"}
