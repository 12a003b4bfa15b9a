"""Local translation without a server: SavedModel or checkpoint, ids or names, grids, the CLI."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from absl import flags
from tests_support import TINY_MODEL_FLAGS, tiny_export, tiny_trained_run

from serving import client_common as common
from serving import signatures as sig
from xplore_tf import translate, translate_lib


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return os.path.join(tiny_export(tmp_path_factory), "xplore", "1")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("translate_inputs")
    rng = np.random.default_rng(1)
    paths = []
    for name, shape in (("a.jpg", (24, 20, 3)), ("b.png", (16, 16, 3))):
        paths.append(str(folder / name))
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(paths[-1])
    return paths


def _pixels(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        return common.decode(f.read())


@functools.lru_cache(maxsize=2)
def _load(path: str):
    import tensorflow as tf

    return tf.saved_model.load(path)


def _served(saved_model: str, path: str, cluster: int) -> np.ndarray:
    import tensorflow as tf

    loaded = _load(saved_model)
    with open(path, "rb") as f:
        data = f.read()
    out = loaded.signatures[sig.TRANSLATE_BYTES](
        image_bytes=tf.constant([data]), cluster_id=tf.constant([cluster])
    )
    return common.decode(out[sig.IMAGE_BYTES].numpy()[0])


def test_saved_model_translation_by_name_equals_the_served_one(run, saved_model, images, tmp_path):
    written = translate_lib.translate_files(
        run, images, cluster="Beta", out=str(tmp_path), saved_model=saved_model
    )
    assert written == [str(tmp_path / "a_c002.png"), str(tmp_path / "b_c002.png")]
    for path, image in zip(written, images, strict=True):
        np.testing.assert_array_equal(_pixels(path), _served(saved_model, image, 2))


def test_checkpoint_translation_equals_the_saved_model(run, saved_model, images, tmp_path):
    from_model = translate_lib.translate_files(
        run, images[:1], cluster=1, out=str(tmp_path / "m.png"), saved_model=saved_model
    )
    from_checkpoint = translate_lib.translate_files(
        run, images[:1], cluster=1, out=str(tmp_path / "c.png")
    )
    a, b = _pixels(from_model[0]).astype(int), _pixels(from_checkpoint[0]).astype(int)
    assert np.abs(a - b).max() <= 1


def test_all_clusters_grid(run, saved_model, images, tmp_path):
    (path,) = translate_lib.translate_files(
        run, images, all_clusters=True, out=str(tmp_path), saved_model=saved_model, max_batch=3
    )
    grid = _pixels(path)
    assert path == str(tmp_path / "all_clusters.png") and grid.shape == (2 * 16, 5 * 16, 3)
    np.testing.assert_array_equal(grid[:16, 16:32], _served(saved_model, images[0], 0))
    np.testing.assert_array_equal(grid[16:, 64:], _served(saved_model, images[1], 3))


def test_bad_inputs_are_value_errors(run, saved_model, images, tmp_path):
    with pytest.raises(ValueError, match="cluster_id must be in"):
        translate_lib.translate_files(
            run, images[:1], cluster=4, out=str(tmp_path), saved_model=saved_model
        )
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ValueError, match="JPEG"):
        translate_lib.translate_files(
            run, [str(broken)], cluster=0, out=str(tmp_path), saved_model=saved_model
        )
    with pytest.raises(FileNotFoundError, match="no such file"):
        translate_lib.translate_files(run, [str(tmp_path / "x.jpg")], cluster=0, out="o")
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        translate_lib.translate_files(run, images, cluster=0, out="o", saved_model=str(tmp_path))


@pytest.fixture
def parsed_flags():
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()


def test_translate_binary(run, images, tmp_path, parsed_flags, capsys):
    parsed_flags(
        [
            "prog",
            f"--workdir={run.workdir}",
            *TINY_MODEL_FLAGS,
            f"--images={','.join(images)}",
            "--cluster=alpha",
            f"--out={tmp_path}/{{stem}}-{{cluster}}.png",
        ]
    )
    translate.main(["prog"])
    assert capsys.readouterr().out.split() == [str(tmp_path / "a-0.png"), str(tmp_path / "b-0.png")]
    assert _pixels(str(tmp_path / "b-0.png")).shape == (16, 16, 3)
    parsed_flags.unparse_flags()
    parsed_flags(["prog", f"--workdir={run.workdir}", *TINY_MODEL_FLAGS, f"--images={images[0]}"])
    with pytest.raises(SystemExit) as exit_info:
        translate.main(["prog"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "xplore_tf.translate: error: pass --cluster=ID_OR_NAME or --all_clusters"


def _served_pixels(saved_model: str, pixels: np.ndarray, cluster: int) -> np.ndarray:
    import tensorflow as tf

    out = _load(saved_model).signatures[sig.SERVING_DEFAULT](
        image=tf.constant(pixels[None]), cluster_id=tf.constant([cluster])
    )
    return out[sig.IMAGE].numpy()[0]


AWKWARD_INPUTS = [
    "png_grey16.png",
    "png_rgba_hidden_green.png",
    "jpeg_exif_6.jpg",
    "webp_alpha.webp",
    "bmp_palette8.bmp",
]


def test_awkward_inputs_translate_as_their_training_pixels(run, saved_model, tmp_path):
    from tests_support import write_awkward

    files = write_awkward(tmp_path / "in")
    paths = [files[n] for n in AWKWARD_INPUTS]
    written = translate_lib.translate_files(
        run, paths, cluster=1, out=str(tmp_path / "out"), saved_model=saved_model
    )
    for path, image in zip(written, paths, strict=True):
        expected = _served_pixels(saved_model, common.read_rgb(image), 1)
        np.testing.assert_array_equal(_pixels(path), expected)


def test_unreadable_inputs_are_one_line_naming_the_file(run, saved_model, tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "face.png"
    path.write_bytes(common.png_bytes(np.zeros((8, 8, 3), np.uint8)))

    def exif_crash(*args, **kwargs):
        raise ZeroDivisionError("division by zero")  # as EXIF parsing in some Pillow releases

    monkeypatch.setattr(Image, "open", exif_crash)
    with pytest.raises(ValueError) as info:
        translate_lib.translate_files(run, [str(path)], cluster=0, out="o", saved_model=saved_model)
    assert str(info.value) == f"{path}: ZeroDivisionError: division by zero"


def test_huge_png_is_exit_2_and_one_line(tmp_path, parsed_flags, capsys):
    from tests_support import huge_png

    huge = tmp_path / "huge.png"
    huge.write_bytes(huge_png())  # 20000 x 9000 greyscale, as in the issue
    parsed_flags(["prog", f"--workdir={tmp_path}", f"--images={huge}", "--cluster=0"])
    with pytest.raises(SystemExit) as exit_info:
        translate.main(["prog"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"xplore_tf.translate: error: {huge}: image of 20000x9000 pixels is larger than the "
        "178956970 pixels accepted (decompression-bomb guard)"
    )


def test_contradicting_flags_are_errors(run, saved_model, images, tmp_path, parsed_flags, capsys):
    parsed_flags(
        [
            "prog",
            f"--workdir={run.workdir}",
            f"--images={images[0]}",
            "--cluster=0",
            f"--saved_model={saved_model}",
            f"--checkpoint={run.workdir}/checkpoints/ckpt-2",
        ]
    )
    with pytest.raises(SystemExit) as exit_info:
        translate.main(["prog"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "xplore_tf.translate: error: --saved_model and --checkpoint both choose the model: pass one"
    )
    with pytest.raises(ValueError, match="pass --cluster=2 or --all_clusters, not both"):
        translate_lib.translate_files(
            run, images, cluster=2, all_clusters=True, out=str(tmp_path), saved_model=saved_model
        )
