"""Local translation without a server: SavedModel or checkpoint, ids or names, grids, the CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest
from absl import flags
from tests_support import (
    TINY_MODEL_FLAGS,
    call_signature,
    file_bytes,
    load_saved_model,
    load_translators_once,
    tiny_export,
    tiny_trained_run,
)

from xplore_tf import translate, translate_lib
from xplore_tf.common import pixels as common
from xplore_tf.common import signatures as sig

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model


@pytest.fixture(autouse=True)
def _translators_load_once(monkeypatch):
    load_translators_once(monkeypatch)


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


def _served(saved_model: str, path: str, cluster: int) -> np.ndarray:
    import tensorflow as tf

    loaded = load_saved_model(saved_model)
    with open(path, "rb") as f:
        data = f.read()
    out = loaded.signatures[sig.TRANSLATE_BYTES](
        image_bytes=tf.constant([data]), cluster_id=tf.constant([cluster])
    )
    return common.decode(out[sig.IMAGE_BYTES].numpy()[0])


def test_saved_model_translation_by_name_equals_the_served_one(run, saved_model, images, tmp_path):
    written = translate_lib.translate_files(
        run,
        images,
        cluster="Beta",
        out=str(tmp_path),
        saved_model=saved_model,
        output_resolution="model",
    )
    assert written == [str(tmp_path / "a_c002.png"), str(tmp_path / "b_c002.png")]
    for path, image in zip(written, images, strict=True):
        np.testing.assert_array_equal(_pixels(path), _served(saved_model, image, 2))


def test_input_resolution_is_the_served_full_translation(run, saved_model, images, tmp_path):
    """By default each image comes back at its own size (the centre square the model sees:
    20 x 20 of the 24 x 20 input), as `translate_full` with the weight 1 on the target."""
    written = translate_lib.translate_files(
        run, images, cluster="Beta", out=str(tmp_path), saved_model=saved_model
    )
    served = call_signature(
        saved_model,
        sig.TRANSLATE_FULL,
        image_bytes=file_bytes(images),
        cluster_weights=np.array([[0, 0, 1.0, 0]] * 2),
    )[sig.IMAGE_BYTES]
    for path, png, side in zip(written, served, (20, 16), strict=True):
        assert _pixels(path).shape == (side, side, 3)
        np.testing.assert_array_equal(_pixels(path), common.decode(png))


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
    labelled = _pixels(path)
    header = labelled.shape[0] - 2 * 16  # "input", then each cluster's id and name
    assert path == str(tmp_path / "all_clusters.png") and labelled.shape[1:] == (5 * 16, 3)
    assert 8 <= header <= 24 and (labelled[:header] < 128).any()
    grid = labelled[header:]
    # The grid runs batches of 3 and 1, _served batches of 1: CPU kernels round a value
    # differently now and then across batch sizes (~1 in 40,000 here).
    for cell, expected in (
        (grid[:16, 16:32], _served(saved_model, images[0], 0)),
        (grid[16:, 64:], _served(saved_model, images[1], 3)),
    ):
        diff = np.abs(cell.astype(int) - expected.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_bad_inputs_are_value_errors(run, saved_model, images, tmp_path):
    with pytest.raises(ValueError, match=r"--cluster: cluster 4 does not exist \(ids are 0..3\)"):
        translate_lib.translate_files(
            run, images[:1], cluster=4, out=str(tmp_path), saved_model=saved_model
        )
    with pytest.raises(ValueError, match="cluster_id must be in"):  # the model's own check
        translate_lib.translate_files(
            run,
            images[:1],
            cluster=4,
            out=str(tmp_path),
            saved_model=saved_model,
            output_resolution="model",
        )
    with pytest.raises(ValueError, match="--output_resolution='photo': expected one of"):
        translate_lib.translate_files(
            run, images[:1], cluster=0, out="o", saved_model=saved_model, output_resolution="photo"
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
    assert err == (
        "xplore_tf.translate: error: pass --cluster=ID_OR_NAME, --all_clusters or "
        "--reference_dir=DIR"
    )


def _served_pixels(saved_model: str, pixels: np.ndarray, cluster: int) -> np.ndarray:
    import tensorflow as tf

    out = load_saved_model(saved_model).signatures[sig.SERVING_DEFAULT](
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
        run,
        paths,
        cluster=1,
        out=str(tmp_path / "out"),
        saved_model=saved_model,
        output_resolution="model",
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


# ---------------------------------------------------------------- beyond fixed clusters
@pytest.mark.parametrize("source", ["saved_model", "checkpoint"])
def test_strength_and_mix_equal_the_served_signatures(run, saved_model, images, tmp_path, source):
    model = saved_model if source == "saved_model" else ""
    written = translate_lib.translate_files(
        run,
        images,
        cluster="Beta",
        strength=0.25,
        out=str(tmp_path),
        saved_model=model,
        output_resolution="model",
    )
    assert written == [str(tmp_path / "a_c002_s0.25.png"), str(tmp_path / "b_c002_s0.25.png")]
    served = call_signature(
        saved_model,
        sig.TRANSLATE_STRENGTH,
        image_bytes=file_bytes(images),
        cluster_id=np.array([2, 2]),
        strength=np.array([0.25, 0.25]),
    )[sig.IMAGE_BYTES]
    for path, png in zip(written, served, strict=True):
        diff = np.abs(_pixels(path).astype(int) - common.decode(png).astype(int))
        assert diff.max() <= (0 if model else 1)  # a checkpoint's graph may round differently
    written = translate_lib.translate_files(
        run,
        images[:1],
        cluster="1:0.5,alpha:1",
        out=str(tmp_path),
        saved_model=model,
        output_resolution="model",
    )
    assert written == [str(tmp_path / "a_mix_c001x0.5_c000x1.png")]
    served = call_signature(
        saved_model,
        sig.TRANSLATE_MIX,
        image_bytes=file_bytes(images[:1]),
        cluster_weights=np.array([[1.0, 0.5, 0, 0]]),
    )[sig.IMAGE_BYTES]
    diff = np.abs(_pixels(written[0]).astype(int) - common.decode(served[0]).astype(int))
    assert diff.max() <= (0 if model else 1)


def test_strength_mix_and_reference_at_input_resolution_ask_the_full_signatures(
    run, saved_model, images, tmp_path
):
    """At the input's resolution (the default) a strength is the weight alpha on the target,
    a combination its weights, a reference group its condition: all through translate_full*."""
    from tests_support import face

    group = tmp_path / "group"
    group.mkdir()
    for i in range(3):
        (group / f"r{i}.png").write_bytes(common.png_bytes(face(40, 32, seed=30 + i)))
    reference = call_signature(
        saved_model,
        sig.REFERENCE_CONDITION,
        reference_bytes=file_bytes(sorted(str(p) for p in group.glob("*.png")))[None],
    )[sig.CONDITION]
    cases = [
        (dict(cluster="Beta", strength=0.25), sig.TRANSLATE_FULL, [0, 0, 0.25, 0]),
        (dict(cluster="1:0.5,alpha:1"), sig.TRANSLATE_FULL, [1, 0.5, 0, 0]),
        (dict(reference_dir=str(group)), sig.TRANSLATE_FULL_CONDITION, None),
    ]
    for options, signature, weights in cases:
        (path,) = translate_lib.translate_files(
            run, images[:1], out=str(tmp_path / "out"), saved_model=saved_model, **options
        )
        inputs = (
            dict(cluster_weights=np.array([weights], np.float32))
            if weights
            else dict(condition=reference)
        )
        served = call_signature(
            saved_model, signature, image_bytes=file_bytes(images[:1]), **inputs
        )
        got = _pixels(path)
        assert got.shape == (20, 20, 3), options  # a.jpg's 20 x 20 centre square
        np.testing.assert_array_equal(got, common.decode(served[sig.IMAGE_BYTES][0]))


@pytest.mark.parametrize("resolution", ["input", "model"])
def test_keep_asks_mix_condition_then_the_condition_signature(
    run, saved_model, images, tmp_path, resolution
):
    """--keep: each image's condition from mix_condition (the kept clusters marked), then
    translate_full_condition / translate_condition with it; named in the output file."""
    (path,) = translate_lib.translate_files(
        run,
        images[1:],
        cluster="Beta",
        keep="alpha,3",
        out=str(tmp_path),
        saved_model=saved_model,
        output_resolution=resolution,
    )
    assert os.path.basename(path).endswith("_c002_keep_c000_c003.png")
    image_bytes = file_bytes(images[1:2])
    condition = call_signature(
        saved_model,
        sig.MIX_CONDITION,
        image_bytes=image_bytes,
        cluster_weights=np.array([[0, 0, 1, 0]], np.float32),
        keep_clusters=np.array([[1, 0, 0, 1]], np.float32),
    )[sig.CONDITION]
    signature = sig.TRANSLATE_FULL_CONDITION if resolution == "input" else sig.TRANSLATE_CONDITION
    served = call_signature(saved_model, signature, image_bytes=image_bytes, condition=condition)
    np.testing.assert_array_equal(_pixels(path), common.decode(served[sig.IMAGE_BYTES][0]))


def test_reference_dir_translates_toward_the_groups_statistics(
    run, saved_model, images, tmp_path, caplog
):
    from tests_support import face

    group = tmp_path / "blond"
    (group / "more").mkdir(parents=True)
    for i in range(3):
        (group / ("more" if i else "") / f"r{i}.png").write_bytes(
            common.png_bytes(face(40, 32, seed=20 + i))
        )
    (group / "unreadable.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with caplog.at_level("INFO", logger="absl"):
        (path,) = translate_lib.translate_files(
            run,
            images[:1],
            reference_dir=str(group),
            out=str(tmp_path),
            saved_model=saved_model,
            output_resolution="model",
        )
    assert path == str(tmp_path / "a_ref_blond.png")
    assert "skipping unreadable image unreadable.jpg" in caplog.text
    assert "--reference_dir: 3 images; nearest training cluster" in caplog.text
    group_bytes = file_bytes(sorted(str(p) for p in group.rglob("r*.png")))
    reference = call_signature(
        saved_model, sig.REFERENCE_CONDITION, reference_bytes=group_bytes[None]
    )
    served = call_signature(
        saved_model,
        sig.TRANSLATE_CONDITION,
        image_bytes=file_bytes(images[:1]),
        condition=reference[sig.CONDITION],
    )[sig.IMAGE_BYTES][0]
    np.testing.assert_array_equal(_pixels(path), common.decode(served))
    far = reference[sig.RELATIVE_DISTANCE][0] > sig.FAR_FROM_CLUSTERS
    assert ("lies far from every training cluster" in caplog.text) == far


@pytest.mark.parametrize("resolution", ["input", "model"])
def test_reference_edit_shared_asks_shared_condition_then_the_condition_signature(
    run, saved_model, images, tmp_path, resolution
):
    """--reference_edit=shared: the group's condition (reference_condition), each image's
    shared condition at --strength (shared_condition), then the condition signature."""
    from tests_support import face

    group = tmp_path / "blond"
    group.mkdir()
    for i in range(3):
        (group / f"r{i}.png").write_bytes(common.png_bytes(face(40, 32, seed=40 + i)))
    (path,) = translate_lib.translate_files(
        run,
        images[:1],
        reference_dir=str(group),
        reference_edit="shared",
        strength=0.5,
        out=str(tmp_path / "out"),
        saved_model=saved_model,
        output_resolution=resolution,
    )
    assert path == str(tmp_path / "out" / "a_ref_blond_shared_s0.5.png")
    image_bytes = file_bytes(images[:1])
    reference = call_signature(
        saved_model,
        sig.REFERENCE_CONDITION,
        reference_bytes=file_bytes(sorted(str(p) for p in group.glob("*.png")))[None],
    )[sig.CONDITION]
    condition = call_signature(
        saved_model,
        sig.SHARED_CONDITION,
        image_bytes=image_bytes,
        condition=reference,
        strength=np.array([0.5], np.float32),
    )[sig.CONDITION]
    signature = sig.TRANSLATE_FULL_CONDITION if resolution == "input" else sig.TRANSLATE_CONDITION
    served = call_signature(saved_model, signature, image_bytes=image_bytes, condition=condition)
    np.testing.assert_array_equal(_pixels(path), common.decode(served[sig.IMAGE_BYTES][0]))


def test_bad_beyond_inputs_are_one_line(run, saved_model, images, tmp_path, parsed_flags):
    def translate(**options):
        return translate_lib.translate_files(
            run, images[:1], out=str(tmp_path), saved_model=saved_model, **options
        )

    (tmp_path / "empty").mkdir()
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    for options, match in (
        (dict(cluster=1, strength=-0.5), r"--strength=-0.5: expected a number in \[0, 2\]"),
        (dict(cluster=1, strength=2.5), r"--strength=2.5: expected a number in \[0, 2\]"),
        (dict(cluster="1:one"), "weight 'one' is not a number"),
        (dict(cluster="7:1"), r"cluster 7 does not exist \(ids are 0..3\)"),
        (dict(cluster="gamma:1"), "no cluster of that name"),
        (dict(cluster="1:1", strength=0.5), "--strength applies to one --cluster"),
        (dict(cluster=1, reference_dir=str(tmp_path)), "--reference_dir is the target"),
        (dict(reference_dir=str(tmp_path / "empty")), "empty: no images found"),
        (dict(reference_dir=str(tmp_path / "unreadable")), "none of its 1 images is readable"),
        (dict(cluster=9, strength=0.5), r"cluster 9 does not exist \(ids are 0..3\)"),
        (dict(cluster=9, strength=0.5, output_resolution="model"), r"must be in \[0, 4\)"),
        (dict(cluster=1, keep="0,,2"), "--keep=0,,2: expected ID_OR_NAME"),
        (dict(cluster=1, keep="0,0"), "--keep=0,0: 0 given twice"),
        (dict(cluster=1, keep="gamma"), "--keep='gamma': no cluster of that name"),
        (dict(cluster=1, keep="7"), r"--keep: cluster 7 does not exist \(ids are 0..3\)"),
        (dict(cluster=1, keep="alpha,0"), "--keep: cluster 0 is given twice"),
        (dict(reference_dir=str(tmp_path), keep="0"), "--keep applies to a --cluster"),
        (dict(all_clusters=True, keep="0"), "--keep applies to a --cluster"),
        (
            dict(reference_dir=str(tmp_path), strength=0.5),
            "--strength with --reference_dir needs --reference_edit=shared",
        ),
        (dict(cluster=1, reference_edit="shared"), "--reference_edit=shared needs --reference_dir"),
        (
            dict(reference_dir=str(tmp_path), reference_edit="half"),
            "--reference_edit=half: expected one of group, shared",
        ),
    ):
        with pytest.raises(ValueError, match=match) as info:
            translate(**options)
        assert "\n" not in str(info.value), options
    with pytest.raises(FileNotFoundError, match="none' is not a folder"):
        translate(reference_dir=str(tmp_path / "none"))
    # The flag itself is bounded where it is defined.
    with pytest.raises(flags.IllegalFlagValueError, match="strength"):
        parsed_flags(["prog", f"--workdir={run.workdir}", "--strength=2.5"])


def test_a_saved_model_in_a_folder_named_like_a_glob_pattern_loads(
    run, saved_model, images, tmp_path
):
    """TensorFlow globs the path of a SavedModel's variables: `exp[1]` must still load, in
    translate and in the dev server."""
    import shutil

    from serving import client as client_lib
    from xplore_tf.testing import dev_server

    base = tmp_path / "exp[1]"
    shutil.copytree(saved_model, base / "xplore" / "1")
    out = translate_lib.translate_files(
        run,
        images[:1],
        cluster=1,
        out=str(tmp_path / "o.png"),
        saved_model=str(base / "xplore" / "1"),
    )
    srv, port = dev_server.serve(str(base), port=0)
    try:
        args = ["--server=127.0.0.1:%d" % port, f"--image={images[0]}", "--cluster=1"]
        assert client_lib.main([*args, f"--out={tmp_path / 's.png'}"]) == 0
    finally:
        srv.stop(None)
    np.testing.assert_array_equal(_pixels(out[0]), _pixels(str(tmp_path / "s.png")))
