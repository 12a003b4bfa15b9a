"""Export: SavedModel round trip against G_ema, signatures, errors in the graph, versions."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from tests_support import TINY_CLUSTER_NAMES, TINY_MODEL_FLAGS, run_binary, tiny_trained_run

from xplore_tf import config as config_lib
from xplore_tf import export_lib
from xplore_tf.clustering import artifacts
from xplore_tf.common import signatures as sig
from xplore_tf.models.generator import condition_vector

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model


def _with_export(config, **export):
    return dataclasses.replace(config, export=config_lib.ExportConfig(**export))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    import tensorflow as tf

    base = tmp_path_factory.mktemp("export")
    result = export_lib.export(_with_export(run, export_dir=str(base)))
    return result, tf.saved_model.load(result.path)


def _stats(config):
    """The run's cluster statistics (what load_generator reads, without building G)."""
    return artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))


def _images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _serve(loaded, name, **inputs):
    import tensorflow as tf

    fn = loaded.signatures[name]
    specs = fn.structured_input_signature[1]
    out = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def test_load_generator_restores_g_ema_of_the_checkpoint(run):
    import keras
    import tensorflow as tf

    from xplore_tf import checkpoints

    loaded = export_lib.load_generator(run)
    assert loaded.checkpoint.endswith("ckpt-2") and loaded.step == 2
    reader = tf.train.load_checkpoint(loaded.checkpoint)
    weights = checkpoints.variables_by_path(loaded.generator)
    for key, variable in weights.items():
        escaped = key.replace(".", "..")  # how object-graph checkpoints escape dots
        stored = reader.get_tensor(f"generator_ema/{escaped}/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_array_equal(np.asarray(variable), stored, err_msg=key)
    # ...which is not what the same seed initialises (training moved G_ema).
    keras.utils.set_random_seed(run.seed)
    fresh = checkpoints.build_generator(run, loaded.stats)
    changed = [
        k
        for k, v in checkpoints.variables_by_path(fresh).items()
        if not np.array_equal(np.asarray(v), np.asarray(weights[k]))
    ]
    assert changed


def test_serving_default_equals_eager_g_ema(run, exported):
    result, loaded = exported
    assert result.version == 1 and result.step == 2
    g = export_lib.load_generator(run)
    images = _images(4)
    ids = np.array([0, 3, 1, 2], np.int32)
    x = images.astype(np.float32) / 127.5 - 1.0
    cond = condition_vector(ids, g.stats.centroids, g.stats.stds, mode=run.model.condition)
    y = np.asarray(g.generator((x, cond), training=False), np.float32)
    eager = np.clip((y + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)

    served = _serve(loaded, sig.SERVING_DEFAULT, image=images, cluster_id=ids)[sig.IMAGE]
    assert served.dtype == np.uint8 and served.shape == (4, 16, 16, 3)
    diff = np.abs(served.astype(int) - eager.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    # The target cluster matters: the same image into other clusters is another image.
    other = _serve(loaded, sig.SERVING_DEFAULT, image=images, cluster_id=(ids + 1) % 4)
    assert np.abs(other[sig.IMAGE].astype(int) - served.astype(int)).max() > 1


def test_any_input_size_is_centre_cropped_and_resized(exported):
    _, loaded = exported
    pattern = _images(1, seed=1)
    wide = np.zeros((1, 16, 40, 3), np.uint8)
    wide[:, :, 12:28] = pattern  # the centre 16x16 square is the pattern, the rest black
    ids = np.array([2], np.int32)
    expected = _serve(loaded, sig.SERVING_DEFAULT, image=pattern, cluster_id=ids)[sig.IMAGE]
    got = _serve(loaded, sig.SERVING_DEFAULT, image=wide, cluster_id=ids)[sig.IMAGE]
    np.testing.assert_array_equal(got, expected)
    # A flat colour stays that flat colour through the bicubic resize (any size in).
    flat_small = np.full((1, 16, 16, 3), (200, 40, 90), np.uint8)
    flat_big = np.full((1, 50, 37, 3), (200, 40, 90), np.uint8)
    a = _serve(loaded, sig.SERVING_DEFAULT, image=flat_small, cluster_id=ids)[sig.IMAGE]
    b = _serve(loaded, sig.SERVING_DEFAULT, image=flat_big, cluster_id=ids)[sig.IMAGE]
    np.testing.assert_array_equal(a, b)


def test_translate_bytes_round_trip_is_lossless(exported):
    import tensorflow as tf

    _, loaded = exported
    images = _images(3, seed=2)
    ids = np.array([1, 0, 3], np.int32)
    pngs = np.array([tf.io.encode_png(im).numpy() for im in images], dtype=object)
    out = _serve(loaded, sig.TRANSLATE_BYTES, image_bytes=pngs, cluster_id=ids)[sig.IMAGE_BYTES]
    assert out.shape == (3,)
    decoded = np.stack([tf.io.decode_png(b).numpy() for b in out])
    expected = _serve(loaded, sig.SERVING_DEFAULT, image=images, cluster_id=ids)[sig.IMAGE]
    np.testing.assert_array_equal(decoded, expected)
    # JPEG of another size works too.
    jpeg = tf.io.encode_jpeg(np.zeros((30, 20, 3), np.uint8)).numpy()
    out = _serve(
        loaded,
        sig.TRANSLATE_BYTES,
        image_bytes=np.array([jpeg], object),
        cluster_id=np.array([0], np.int32),
    )
    assert tf.io.decode_png(out[sig.IMAGE_BYTES][0]).shape == (16, 16, 3)


def test_clusters_signature_has_ids_sizes_and_names(run, exported):
    _, loaded = exported
    out = _serve(loaded, sig.CLUSTERS)
    stats = _stats(run)
    np.testing.assert_array_equal(out[sig.CLUSTER_ID], np.arange(4, dtype=np.int32))
    assert out[sig.CLUSTER_ID].dtype == np.int32 and out[sig.SIZE].dtype == np.int64
    np.testing.assert_array_equal(out[sig.SIZE], stats.sizes)
    expected = [TINY_CLUSTER_NAMES.get(str(i), "") for i in range(4)]
    assert [n.decode() for n in out[sig.NAME]] == expected == ["alpha", "", "Beta", ""]


@pytest.mark.parametrize(
    "case, inputs, match",
    [
        ("id -1", dict(cluster_id=[0, -1]), r"cluster_id must be in \[0, 4\)"),
        ("id k", dict(cluster_id=[4, 0]), r"cluster_id must be in \[0, 4\)"),
        ("batch sizes differ", dict(cluster_id=[0]), "same batch size"),
        ("empty image", dict(image=np.zeros((2, 0, 8, 3), np.uint8)), "height and width"),
    ],
)
def test_bad_serving_default_requests_are_invalid_argument(exported, case, inputs, match):
    import tensorflow as tf

    _, loaded = exported
    request = {"image": _images(2), "cluster_id": [0, 1], **inputs}
    request["cluster_id"] = np.asarray(request["cluster_id"], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        _serve(loaded, sig.SERVING_DEFAULT, **request)


@pytest.mark.parametrize("data", [b"not an image", b"", b"\x89PNG\r\n\x1a\n truncated"])
def test_undecodable_bytes_are_invalid_argument(exported, data):
    import tensorflow as tf

    _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError):
        _serve(
            loaded,
            sig.TRANSLATE_BYTES,
            image_bytes=np.array([data], object),
            cluster_id=np.array([0], np.int32),
        )


def test_empty_batch_returns_empty(exported):
    _, loaded = exported
    out = _serve(
        loaded,
        sig.SERVING_DEFAULT,
        image=np.zeros((0, 16, 16, 3), np.uint8),
        cluster_id=np.zeros(0, np.int32),
    )
    assert out[sig.IMAGE].shape == (0, 16, 16, 3)
    out = _serve(
        loaded,
        sig.TRANSLATE_BYTES,
        image_bytes=np.zeros(0, object),
        cluster_id=np.zeros(0, np.int32),
    )
    assert out[sig.IMAGE_BYTES].shape == (0,)


def test_versions_increase_never_overwrite_and_leave_no_temp(run, exported, tmp_path, monkeypatch):
    import tensorflow as tf

    result, _ = exported
    model_dir = os.path.dirname(result.path)
    os.makedirs(os.path.join(model_dir, ".tmp-7-crashed"))  # a crashed export: ignored
    os.makedirs(os.path.join(model_dir, "notes"))
    assert export_lib.next_version(model_dir) == 2
    assert export_lib.next_version(str(tmp_path / "none")) == 1
    config = _with_export(run, export_dir=os.path.dirname(model_dir), version=1)
    with pytest.raises(ValueError, match="never overwritten"):
        export_lib.export(config)

    def failing_save(module, path, signatures=None):
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    before = set(os.listdir(model_dir))
    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export_lib.export(_with_export(run, export_dir=os.path.dirname(model_dir)))
    assert set(os.listdir(model_dir)) == before  # no version 2, no temporary folder


def test_no_checkpoint_is_an_error_unless_allow_untrained(run, tmp_path):
    workdir = tmp_path / "fresh"
    shutil.copytree(run.clusters_dir, workdir / "clusters")
    config = _with_export(dataclasses.replace(run, workdir=str(workdir)))
    with pytest.raises(ValueError, match="no checkpoint in .*--allow_untrained"):
        export_lib.export(config)
    result = export_lib.export(_with_export(config, allow_untrained=True))
    assert result.path == str(workdir / "export" / "xplore" / "1") and result.checkpoint == ""
    with open(os.path.join(result.path, export_lib.METADATA)) as f:
        assert json.load(f)["untrained"] is True


def test_checkpoint_of_another_architecture_is_a_clear_error(run):
    wider = dataclasses.replace(run, model=dataclasses.replace(run.model, g_channels=8))
    with pytest.raises(ValueError, match="does not match the generator"):
        export_lib.load_generator(wider)


def test_the_saved_model_holds_the_methods_as_signatures_only(exported):
    # Not also as functions of the object: `tf.saved_model.save` would trace each such
    # function a second time, in its own graph, for an attribute nothing loads.
    result, loaded = exported
    assert sorted(loaded.signatures) == sorted(result.signatures)
    assert not any(hasattr(loaded, name) for name in result.signatures)


def test_saved_model_cli_lists_the_signatures(exported):
    result, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip("saved_model_cli is not installed beside this python")
    res = subprocess.run(
        [cli, "show", "--all", "--dir", result.path],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    for name in sig.SIGNATURES:
        assert f"signature_def['{name}']" in res.stdout
    for text in ("DT_UINT8", "DT_STRING", "DT_INT64", "(-1, -1, -1, 3)", "(-1, 16, 16, 3)"):
        assert text in res.stdout, text


def test_export_cli_writes_the_next_version(run, tmp_path):
    base = tmp_path / "models"
    os.makedirs(base / "faces" / "1")  # an earlier version: the CLI writes 2
    res = run_binary(
        "xplore_tf.export",
        f"--workdir={run.workdir}",
        f"--export_dir={base}",
        "--model_name=faces",
        *TINY_MODEL_FLAGS,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"exported version 2 to {base / 'faces' / '2'}" in res.stdout
    assert (base / "faces" / "2" / "saved_model.pb").exists()


def test_translate_bytes_decodes_awkward_files_as_training_does(exported):
    """End to end in the SavedModel: the raw file's translation equals that of the pixels
    the training pipeline decodes (serving_default), or the model's one refusal."""
    import tensorflow as tf
    from tests_support import awkward_images

    from xplore_tf.common import pixels as common

    _, loaded = exported
    ids = np.array([2], np.int32)
    for item in awkward_images():
        request = dict(image_bytes=np.array([item.data], object), cluster_id=ids)
        if item.refused or item.model_refuses:
            with pytest.raises(tf.errors.InvalidArgumentError) as info:
                _serve(loaded, sig.TRANSLATE_BYTES, **request)
            reason = item.refused or item.model_refuses
            assert reason == "*" or reason in " ".join(info.value.message.split()), item.name
            continue
        out = _serve(loaded, sig.TRANSLATE_BYTES, **request)[sig.IMAGE_BYTES]
        pixels = common.decode_rgb(item.data)
        expected = _serve(loaded, sig.SERVING_DEFAULT, image=pixels[None], cluster_id=ids)
        np.testing.assert_array_equal(
            tf.io.decode_png(out[0]).numpy(), expected[sig.IMAGE][0], err_msg=item.name
        )


# ---------------------------------------------------------------- beyond fixed clusters
def _pngs(images) -> np.ndarray:
    from xplore_tf.common import pixels as common

    out = np.empty(len(images), object)
    out[:] = [common.png_bytes(im) for im in images]
    return out


def _decoded(pngs) -> np.ndarray:
    import tensorflow as tf

    return np.stack([tf.io.decode_png(b).numpy() for b in pngs])


def test_strength_zero_and_one_are_the_own_and_the_target_cluster(exported):
    _, loaded = exported
    pngs = _pngs(_images(4, seed=5))
    targets = np.array([1, 2, 3, 0], np.int32)

    def strength(alpha):
        return _serve(
            loaded,
            sig.TRANSLATE_STRENGTH,
            image_bytes=pngs,
            cluster_id=targets,
            strength=np.full(4, alpha, np.float32),
        )

    zero, one = strength(0.0), strength(1.0)
    source = zero[sig.SOURCE_CLUSTER]
    assert source.dtype == np.int32 and set(source) <= set(range(4))
    np.testing.assert_array_equal(source, one[sig.SOURCE_CLUSTER])
    own = _serve(loaded, sig.TRANSLATE_BYTES, image_bytes=pngs, cluster_id=source)
    into = _serve(loaded, sig.TRANSLATE_BYTES, image_bytes=pngs, cluster_id=targets)
    # Exactly: alpha = 0 conditions on s_src itself, alpha = 1 on s_target itself.
    np.testing.assert_array_equal(_decoded(zero[sig.IMAGE_BYTES]), _decoded(own[sig.IMAGE_BYTES]))
    np.testing.assert_array_equal(_decoded(one[sig.IMAGE_BYTES]), _decoded(into[sig.IMAGE_BYTES]))
    half = _decoded(strength(0.5)[sig.IMAGE_BYTES]).astype(int)
    moved = source != targets
    assert np.abs(half[moved] - _decoded(own[sig.IMAGE_BYTES])[moved]).max() > 0


def test_mix_is_the_blended_condition(run, exported):
    from xplore_tf.clustering import space as space_lib

    _, loaded = exported
    stats = _stats(run)
    pngs = _pngs(_images(2, seed=6))
    weights = np.zeros((2, 4), np.float32)
    weights[0, 2] = 1.0  # one-hot: the plain translation into cluster 2
    weights[1, [1, 3]] = [1.0, 0.5]  # --cluster=1:1.0,3:0.5
    out = _serve(loaded, sig.TRANSLATE_MIX, image_bytes=pngs, cluster_weights=weights)
    plain = _serve(loaded, sig.TRANSLATE_BYTES, image_bytes=pngs[:1], cluster_id=np.array([2]))
    np.testing.assert_array_equal(
        _decoded(out[sig.IMAGE_BYTES][:1]), _decoded(plain[sig.IMAGE_BYTES])
    )
    table = np.asarray(
        condition_vector(np.arange(4), stats.centroids, stats.stds, mode=run.model.condition)
    )
    source = table[out[sig.SOURCE_CLUSTER]]
    blended = np.asarray(
        space_lib.blend_conditions(source, weights, table, std_from=stats.dim), np.float32
    )
    by_condition = _serve(loaded, sig.TRANSLATE_CONDITION, image_bytes=pngs, condition=blended)
    np.testing.assert_array_equal(
        _decoded(out[sig.IMAGE_BYTES]), _decoded(by_condition[sig.IMAGE_BYTES])
    )


def test_reference_condition_equals_the_cluster_statistics_code(run, exported, tmp_path):
    """In-graph group statistics = `space.group_statistics` (the cluster stage's code) on
    images already at the extractor's input size (64 px: no resize on either path)."""
    from tests_support import face

    from xplore_tf.clustering import space as space_lib

    _, loaded = exported
    stats = _stats(run)
    images = [face(64, 64, seed=s) for s in range(5)]
    images[3] = np.roll(images[3], 9, axis=1)
    for i, im in enumerate(images):
        (tmp_path / f"{i}.png").write_bytes(_pngs([im])[0])
    expected = space_lib.group_statistics(run, stats, str(tmp_path))
    groups = np.stack([_pngs(images), _pngs(images[::-1])])  # [N=2 groups, M=5]
    out = _serve(loaded, sig.REFERENCE_CONDITION, reference_bytes=groups)
    assert out[sig.CONDITION].shape == (2, 2 * stats.dim)
    for g in range(2):
        np.testing.assert_allclose(
            out[sig.CONDITION][g], np.concatenate([expected.mean, expected.std]), atol=2e-5
        )
    np.testing.assert_array_equal(out[sig.NEAREST_CLUSTER], [expected.nearest] * 2)
    np.testing.assert_allclose(out[sig.DISTANCE], expected.distance, rtol=1e-4)
    np.testing.assert_allclose(out[sig.RELATIVE_DISTANCE], expected.relative_distance, rtol=1e-4)
    # The condition translates like any other: a cluster's own row gives that cluster.
    pngs = _pngs(_images(2, seed=7))
    table = np.asarray(
        condition_vector(np.arange(4), stats.centroids, stats.stds, mode=run.model.condition)
    )
    via_condition = _serve(
        loaded, sig.TRANSLATE_CONDITION, image_bytes=pngs, condition=table[[3, 3]]
    )
    plain = _serve(loaded, sig.TRANSLATE_BYTES, image_bytes=pngs, cluster_id=np.array([3, 3]))
    np.testing.assert_array_equal(
        _decoded(via_condition[sig.IMAGE_BYTES]), _decoded(plain[sig.IMAGE_BYTES])
    )
    # Empty batches stay empty.
    empty = _serve(loaded, sig.REFERENCE_CONDITION, reference_bytes=np.zeros((0, 0), object))
    assert empty[sig.CONDITION].shape == (0, 2 * stats.dim)
    empty = _serve(
        loaded,
        sig.TRANSLATE_STRENGTH,
        image_bytes=np.zeros(0, object),
        cluster_id=np.zeros(0, np.int32),
        strength=np.zeros(0, np.float32),
    )
    assert empty[sig.IMAGE_BYTES].shape == (0,) and empty[sig.SOURCE_CLUSTER].shape == (0,)


def test_mix_condition_keeps_the_kept_clusters_directions(run, exported):
    """mix_condition with nothing kept is translate_mix's condition (the same PNGs through
    translate_condition); with a cluster kept, the edit has no part along its direction and
    the length it had (space.keep_directions)."""
    _, loaded = exported
    pngs = _pngs(_images(3, seed=11))
    weights = np.zeros((3, 4), np.float32)
    weights[:, 2], weights[2, 1] = 1.0, 0.5
    plain = _serve(
        loaded,
        sig.MIX_CONDITION,
        image_bytes=pngs,
        cluster_weights=weights,
        keep_clusters=np.zeros((3, 4)),
    )
    mixed = _serve(loaded, sig.TRANSLATE_MIX, image_bytes=pngs, cluster_weights=weights)
    via = _serve(loaded, sig.TRANSLATE_CONDITION, image_bytes=pngs, condition=plain[sig.CONDITION])
    np.testing.assert_array_equal(plain[sig.SOURCE_CLUSTER], mixed[sig.SOURCE_CLUSTER])
    np.testing.assert_array_equal(_decoded(via[sig.IMAGE_BYTES]), _decoded(mixed[sig.IMAGE_BYTES]))
    stats = _stats(run)
    table = np.asarray(
        condition_vector(np.arange(4), stats.centroids, stats.stds, mode=run.model.condition)
    )
    keep = np.zeros((3, 4), np.float32)
    keep[:, 0] = 1.0
    kept = _serve(
        loaded, sig.MIX_CONDITION, image_bytes=pngs, cluster_weights=weights, keep_clusters=keep
    )
    source = table[kept[sig.SOURCE_CLUSTER]]
    edit, before = kept[sig.CONDITION] - source, plain[sig.CONDITION] - source
    direction = table[0] - table.mean(axis=0)
    moving = np.linalg.norm(before, axis=1) > 0  # an input already in cluster 2 has no edit
    assert moving.any()
    np.testing.assert_allclose(edit[moving] @ direction, 0.0, atol=1e-4)
    np.testing.assert_allclose(
        np.linalg.norm(edit, axis=1), np.linalg.norm(before, axis=1), rtol=1e-4
    )


def test_shared_condition_is_the_space_code_and_strength_zero_the_inputs_own(run, exported):
    """shared_condition = space.shared_conditions on each input's own cluster's row (the
    source translate_mix finds); strength 0 gives exactly the input's own condition."""
    from xplore_tf.clustering import space as space_lib

    _, loaded = exported
    stats = _stats(run)
    table = np.asarray(
        condition_vector(np.arange(4), stats.centroids, stats.stds, mode=run.model.condition)
    )
    pngs = _pngs(_images(3, seed=12))
    group = np.repeat(table[[1]] + 0.3, 3, axis=0)
    strength = np.array([1.0, 0.5, 0.0], np.float32)
    out = _serve(loaded, sig.SHARED_CONDITION, image_bytes=pngs, condition=group, strength=strength)
    mixed = _serve(loaded, sig.TRANSLATE_MIX, image_bytes=pngs, cluster_weights=np.zeros((3, 4)))
    np.testing.assert_array_equal(out[sig.SOURCE_CLUSTER], mixed[sig.SOURCE_CLUSTER])
    source = table[out[sig.SOURCE_CLUSTER]]
    expected = space_lib.shared_conditions(source, group, table, strength, mean_dim=stats.dim)
    np.testing.assert_allclose(out[sig.CONDITION], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[sig.CONDITION][2], source[2])
    assert np.abs(out[sig.CONDITION][0] - source[0]).max() > 0


def _module_signatures(run, **export):
    """The signatures of a ServingModule built in process with these ExportConfig fields."""
    from xplore_tf import translate_lib

    module = export_lib.serving_module(_with_export(run, **export), export_lib.load_generator(run))
    translator = translate_lib.Translator(module.signature_functions(), source="test")
    return lambda name, **inputs: translator.predict(name, inputs)


@pytest.mark.parametrize(
    "base, colour",
    [("residual", "no_cast"), ("difference", "generator"), ("residual", "luminance")],
)
def test_full_resolution_adds_the_edit_to_the_input_square_at_its_own_size(run, base, colour):
    """translate_full: each input's centre square at its own size plus up(edit), the edit
    measured at the model's size (xplore_tf/edit.py). With the difference base no edit
    (weights 0, or the source's own condition) is the square bit for bit, whatever its size."""
    from xplore_tf import edit

    serve = _module_signatures(run, edit_base=base, face_colour=colour)
    rng = np.random.default_rng(9)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((37, 50, 3), (16, 16, 3))]
    squares = [images[0][:, 6:43], images[1]]
    pngs = _pngs(images)
    zero = serve(sig.TRANSLATE_FULL, image_bytes=pngs, cluster_weights=np.zeros((2, 4)))
    table = np.asarray(
        condition_vector(
            np.arange(4), _stats(run).centroids, _stats(run).stds, mode=run.model.condition
        )
    )
    own = serve(
        sig.TRANSLATE_FULL_CONDITION,
        image_bytes=pngs,
        condition=table[zero[sig.SOURCE_CLUSTER]],
    )
    for out in (zero, own):
        for png, square in zip(out[sig.IMAGE_BYTES], squares, strict=True):
            got = _decoded([png])[0]
            assert got.shape == square.shape
            if (base, colour) == ("difference", "generator"):
                np.testing.assert_array_equal(got, square)
    # Into cluster 2: the edit of the model-resolution translations (rounded to uint8 by
    # those signatures, hence the tolerance of 2 levels), carried to each square's size.
    weights = np.zeros((2, 4), np.float32)
    weights[:, 2] = 1.0
    full = serve(sig.TRANSLATE_FULL, image_bytes=pngs, cluster_weights=weights)
    np.testing.assert_array_equal(full[sig.SOURCE_CLUSTER], zero[sig.SOURCE_CLUSTER])

    def strength(alpha):
        out = serve(
            sig.TRANSLATE_STRENGTH,
            image_bytes=pngs,
            cluster_id=[2, 2],
            strength=[alpha, alpha],
        )
        return _decoded(out[sig.IMAGE_BYTES]).astype(np.float32)

    model_inputs = np.stack(
        [export_lib.frame_images(sq[None], size=16).numpy()[0] for sq in squares]
    )
    edits = edit.model_edit(
        model_inputs, strength(1.0), strength(0.0), base=base, face_colour=colour
    ).numpy()
    for png, square, delta in zip(full[sig.IMAGE_BYTES], squares, edits, strict=True):
        got = _decoded([png])[0].astype(int)
        expected = edit.carry_edit(square, delta).numpy().astype(int)
        assert got.shape == square.shape and np.abs(got - expected).max() <= 2
        assert np.abs(got - square).max() > 0  # the tiny model changed something


@pytest.mark.parametrize(
    "name, inputs, match",
    [
        ("full", dict(cluster_weights=[[1, 0, 0, 0], [0, -1, 0, 0]]), "must be >= 0"),
        ("full", dict(cluster_weights=[[1, 0, 0, 0]]), "same batch size"),
        ("full_condition", dict(condition="nan"), "condition must be finite"),
        ("strength", dict(strength=[0.5, -0.1]), r"strength must be in \[0, 2\]"),
        ("strength", dict(strength=[2.5, 1.0]), r"strength must be in \[0, 2\]"),
        ("strength", dict(strength=[np.nan, 1.0]), r"strength must be in \[0, 2\]"),
        ("strength", dict(strength=[1.0]), "same batch size"),
        ("strength", dict(cluster_id=[0, 4]), r"cluster_id must be in \[0, 4\)"),
        (
            "mix",
            dict(cluster_weights=[[1, 0, 0, 0], [0, -1, 0, 0]]),
            "cluster_weights must be >= 0",
        ),
        ("mix", dict(cluster_weights=[[1, 1.5, 0, 0], [0, 1, 0, 0]]), "sum to at most 2"),
        ("reference", dict(reference_bytes=np.zeros((2, 0), object)), "at least one image"),
        ("reference", dict(reference_bytes=[[b"not an image"]]), "not a PNG"),
        ("condition", dict(condition="nan"), "condition must be finite"),
        ("condition", dict(condition="one row"), "same batch size"),
        ("keep", dict(keep_clusters=[[1, 0, 0, 0]]), "same batch size"),
        ("keep", dict(keep_clusters=[[np.inf, 0, 0, 0]] * 2), "keep_clusters must be finite"),
        ("keep", dict(cluster_weights=[[3, 0, 0, 0]] * 2), "sum to at most 2"),
        ("shared", dict(strength=[0.5, 2.5]), r"strength must be in \[0, 2\]"),
        ("shared", dict(strength=[0.5]), "same batch size"),
        ("shared", dict(condition="nan"), "condition must be finite"),
    ],
)
def test_bad_beyond_cluster_requests_are_invalid_argument(run, exported, name, inputs, match):
    import tensorflow as tf

    _, loaded = exported
    pngs = _pngs(_images(2, seed=8))
    cond_dim = 2 * _stats(run).dim
    condition = np.ones((2, cond_dim), np.float32)
    if inputs.get("condition") == "nan":
        condition[1, 0] = np.nan
    elif inputs.get("condition") == "one row":
        condition = condition[:1]
    signature, request = {
        "strength": (
            sig.TRANSLATE_STRENGTH,
            dict(image_bytes=pngs, cluster_id=[0, 1], strength=[1.0, 1.0]),
        ),
        "mix": (sig.TRANSLATE_MIX, dict(image_bytes=pngs, cluster_weights=np.eye(4)[:2])),
        "reference": (sig.REFERENCE_CONDITION, dict(reference_bytes=pngs[None])),
        "condition": (sig.TRANSLATE_CONDITION, dict(image_bytes=pngs, condition=condition)),
        "full": (sig.TRANSLATE_FULL, dict(image_bytes=pngs, cluster_weights=np.eye(4)[:2])),
        "keep": (
            sig.MIX_CONDITION,
            dict(image_bytes=pngs, cluster_weights=np.eye(4)[:2], keep_clusters=np.eye(4)[:2]),
        ),
        "full_condition": (
            sig.TRANSLATE_FULL_CONDITION,
            dict(image_bytes=pngs, condition=condition),
        ),
        "shared": (
            sig.SHARED_CONDITION,
            dict(image_bytes=pngs, condition=condition, strength=[1.0, 1.0]),
        ),
    }[name]
    request.update({k: v for k, v in inputs.items() if k != "condition"})
    request = {
        k: np.asarray(v, object) if k == "reference_bytes" else v for k, v in request.items()
    }
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        _serve(loaded, signature, **request)


def test_beyond_signatures_are_left_out_with_the_reason_when_the_extractor_is_missing(
    run, tmp_path
):
    from xplore_tf import translate_lib

    loaded = export_lib.load_generator(run)
    missing = dataclasses.replace(
        run,
        cluster=dataclasses.replace(run.cluster, feature_weights=str(tmp_path / "gone.npz")),
    )
    module = export_lib.serving_module(missing, loaded)
    assert sorted(module.signature_functions()) == sorted(sig.BASE_SIGNATURES)
    assert "gone.npz' does not exist" in module.beyond_clusters_reason
    translator = translate_lib.Translator(
        module.signature_functions(),
        source="test",
        keep_alive=module,
        missing_reason=module.beyond_clusters_reason,
    )
    with pytest.raises(ValueError, match="no translate_strength signature .*gone.npz"):
        translator.predict(sig.TRANSLATE_STRENGTH, {})
    # In process, a signature is traced when first used, once: naming, listing and checking
    # them traced none.
    assert module._traced == {}
    translator.clusters()
    translator.clusters()
    assert list(module._traced) == [sig.CLUSTERS]
    assert module.signature_function(sig.CLUSTERS) is translator.functions[sig.CLUSTERS]
    # Two threads' first calls of one signature trace it once and get the same function.
    barrier = threading.Barrier(2)

    def first_call():
        barrier.wait()
        return module.signature_function(sig.SERVING_DEFAULT)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a, b = (f.result() for f in [pool.submit(first_call), pool.submit(first_call)])
    assert a is b is module.signature_functions()[sig.SERVING_DEFAULT]
    with pytest.raises(KeyError):
        module.signature_functions()[sig.TRANSLATE_STRENGTH]
    # A one-hot model has strength and mix, but no reference-group condition.
    onehot = dataclasses.replace(run, model=dataclasses.replace(run.model, condition="onehot"))
    from xplore_tf import checkpoints

    generator = checkpoints.build_generator(onehot, loaded.stats)
    module = export_lib.ServingModule(
        generator,
        loaded.stats,
        condition="onehot",
        crop_size=0,
        names=[""] * 4,
        space=export_lib.clustering_space(run, loaded.stats),
    )
    assert set(module.signature_functions()) == set(sig.SIGNATURES) - {
        sig.REFERENCE_CONDITION,
        sig.TRANSLATE_CONDITION,
        sig.TRANSLATE_FULL_CONDITION,
        sig.MIX_CONDITION,
        sig.SHARED_CONDITION,
    }


def test_export_metadata_describes_the_clustering_space(exported):
    result, _ = exported
    with open(os.path.join(result.path, export_lib.METADATA)) as f:
        meta = json.load(f)
    assert meta["signatures"] == sorted(sig.SIGNATURES)
    assert meta["max_strength"] == sig.MAX_STRENGTH and "beyond_clusters_missing" not in meta
    assert meta["clustering_space"]["extractor"] == "pixels"
    assert meta["clustering_space"]["input_size"] == 64
