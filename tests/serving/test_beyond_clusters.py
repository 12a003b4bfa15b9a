"""Strength, combinations and reference groups on the client side, and over gRPC."""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests_support import call_signature, face, file_bytes, tiny_export

from serving import client as client_lib
from xplore_tf.common import beyond_clusters as bc
from xplore_tf.common import pixels as common
from xplore_tf.common import signatures as sig
from xplore_tf.testing import dev_server

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model


# ---------------------------------------------------------------- parsing (no server)
def test_cluster_weights_parse_or_say_what_was_expected():
    assert bc.parse_cluster_weights("12") is None and bc.parse_cluster_weights("blond") is None
    assert bc.parse_cluster_weights("12:1.0, blond:0.5") == [("12", 1.0), ("blond", 0.5)]
    assert bc.parse_cluster_weights("3:0") == [("3", 0.0)]
    for text, match in (
        ("12:x", r"weight 'x' is not a number; expected ID_OR_NAME:WEIGHT"),
        ("12:1,:0.5", r"':0.5' has no target"),
        ("12:1,31", r"'31' has no target"),
        ("12:-1", "must be a number >= 0"),
        ("12:inf", "must be a number >= 0"),
        ("12:1,12:0.5", "'12' is given twice"),
        ("1:1.5,2:1", r"the weights sum to 2.5; at most 2"),
    ):
        with pytest.raises(ValueError, match=match) as info:
            bc.parse_cluster_weights(text)
        assert str(info.value).startswith(f"--cluster={text}") and "\n" not in str(info.value)
    np.testing.assert_array_equal(bc.weight_vector([(2, 1.0), (0, 0.5)], 4), [0.5, 0, 1.0, 0])
    with pytest.raises(ValueError, match=r"--cluster: cluster 4 does not exist \(ids are 0..3\)"):
        bc.weight_vector([(4, 1.0)], 4)


def test_a_combination_does_not_depend_on_order_and_a_zero_weight_adds_nothing():
    def vector(text):
        return bc.weight_vector([(int(c), w) for c, w in bc.parse_cluster_weights(text)], 4)

    np.testing.assert_array_equal(vector("1:1,3:0.5"), vector("3:0.5,1:1"))
    # A zero weight gives the one-hot vector of the other cluster: the same request as the
    # single translation (whose condition is that cluster's row exactly, tests/test_export_lib.py).
    np.testing.assert_array_equal(vector("2:1,0:0"), np.eye(4, dtype=np.float32)[2])


@pytest.mark.parametrize("value", [-0.1, 2.01, float("nan"), "strong"])
def test_strength_out_of_bounds_is_one_line(value):
    with pytest.raises(ValueError, match=r"^--strength=.*(expected a number in \[0, 2\]|not a n)"):
        bc.check_strength(value)
    assert bc.check_strength("1.25") == 1.25 and bc.check_strength(0) == 0.0


def test_output_names_carry_the_strength_mix_or_group(tmp_path):
    labels = [bc.strength_label(12, 0.5), bc.mix_label([(12, 1.0), (31, 0.5)])]
    labels.append(bc.reference_label(str(tmp_path / "blond") + "/"))
    assert labels == ["c012_s0.5", "mix_c012x1_c031x0.5", "ref_blond"]
    paths = common.output_paths("out", ["a/x.jpg", "b/y.png"], ["c012_s0.5", "c012_s0.5"])
    assert paths == [os.path.join("out", "x_c012_s0.5.png"), os.path.join("out", "y_c012_s0.5.png")]
    assert common.output_paths("o/{stem}-{cluster}.png", ["x.jpg"], ["ref_blond"]) == [
        "o/x-ref_blond.png"
    ]


def test_reference_folder_reading(tmp_path):
    with pytest.raises(ValueError, match=r"--reference_dir: .*nowhere' is not a folder"):
        bc.read_reference_images(str(tmp_path / "nowhere"))
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / ".hidden" / "x.png").write_bytes(common.png_bytes(face()))
    (tmp_path / "empty" / "notes.txt").write_text("-")
    with pytest.raises(ValueError, match=r"--reference_dir: .*empty: no images found"):
        bc.read_reference_images(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ValueError, match=r"none of its 1 images is readable \(e\.g\. a\.jpg: "):
        bc.read_reference_images(str(bad))
    good = tmp_path / "good"
    (good / "sub").mkdir(parents=True)
    png = common.png_bytes(face(seed=1))
    (good / "sub" / "one.png").write_bytes(png)
    (good / "z_copy.png").write_bytes(png)
    (good / "two.jpg").write_bytes(b"broken")
    (good / "three.PNG").write_bytes(common.png_bytes(face(seed=2)))
    group = bc.read_reference_images(str(good))
    assert group.names == ["sub/one.png", "three.PNG"]
    assert group.duplicates == {"z_copy.png": "sub/one.png"}
    assert [rel for rel, _ in group.skipped] == ["two.jpg"] and len(group.encoded) == 2


# ---------------------------------------------------------------- the client, over gRPC
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tiny_export(tmp_path_factory)
    srv, port = dev_server.serve(base, port=0)
    yield f"127.0.0.1:{port}", base
    srv.stop(None)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beyond_inputs")
    paths = []
    for i, shape in enumerate(((24, 20), (16, 16))):
        path = str(folder / f"in{i}.png")
        with open(path, "wb") as f:
            f.write(common.png_bytes(face(*shape, seed=10 + i)))
        paths.append(path)
    return paths


def _local(base: str, name: str, **inputs) -> dict:
    """The SavedModel's own answer, in process (what the server must return)."""
    return call_signature(os.path.join(base, "xplore", "1"), name, **inputs)


def _read(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        return common.decode(f.read())


@pytest.mark.parametrize("resolution", ["input", "model"])
def test_client_strength_and_mix_are_the_served_translations(server, inputs, tmp_path, resolution):
    """At the model's resolution translate_strength and translate_mix answer; at the input's
    (the default), translate_full with the same weights."""
    address, base = server
    args = [
        f"--server={address}",
        f"--image={','.join(inputs)}",
        f"--out={tmp_path}",
        f"--output_resolution={resolution}",
    ]
    images = file_bytes(inputs)

    def expected(model_signature, weights, **model_inputs):
        if resolution == "model":
            return _local(base, model_signature, image_bytes=images, **model_inputs)
        tiled = np.tile(np.array(weights, np.float32), (2, 1))
        return _local(base, sig.TRANSLATE_FULL, image_bytes=images, cluster_weights=tiled)

    written = client_lib.run(client_lib.parse_args([*args, "--cluster=Beta", "--strength=0.5"]))
    assert written == [str(tmp_path / "in0_c002_s0.5.png"), str(tmp_path / "in1_c002_s0.5.png")]
    served = expected(
        sig.TRANSLATE_STRENGTH,
        [0, 0, 0.5, 0],
        cluster_id=np.array([2, 2]),
        strength=np.array([0.5, 0.5]),
    )[sig.IMAGE_BYTES]
    for path, png in zip(written, served, strict=True):
        np.testing.assert_array_equal(_read(path), common.decode(png))
    written = client_lib.run(client_lib.parse_args([*args, "--cluster=alpha:1,3:0.5"]))
    assert written[0] == str(tmp_path / "in0_mix_c000x1_c003x0.5.png")
    weights = np.tile(np.array([1.0, 0, 0, 0.5], np.float32), (2, 1))
    served = expected(sig.TRANSLATE_MIX, [1.0, 0, 0, 0.5], cluster_weights=weights)
    for path, png in zip(written, served[sig.IMAGE_BYTES], strict=True):
        np.testing.assert_array_equal(_read(path), common.decode(png))


def test_client_keep_is_mix_condition_then_the_full_condition(server, inputs, tmp_path):
    address, base = server
    args = [f"--server={address}", f"--image={','.join(inputs)}", f"--out={tmp_path}"]
    written = client_lib.run(client_lib.parse_args([*args, "--cluster=Beta", "--keep=alpha"]))
    assert written[0] == str(tmp_path / "in0_c002_keep_c000.png")
    images = file_bytes(inputs)
    condition = _local(
        base,
        sig.MIX_CONDITION,
        image_bytes=images,
        cluster_weights=np.tile(np.array([0, 0, 1, 0], np.float32), (2, 1)),
        keep_clusters=np.tile(np.array([1, 0, 0, 0], np.float32), (2, 1)),
    )[sig.CONDITION]
    served = _local(base, sig.TRANSLATE_FULL_CONDITION, image_bytes=images, condition=condition)[
        sig.IMAGE_BYTES
    ]
    for path, png in zip(written, served, strict=True):
        np.testing.assert_array_equal(_read(path), common.decode(png))


def test_client_reference_group_warns_when_far(server, inputs, tmp_path, capsys):
    address, base = server
    group = tmp_path / "group"
    group.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):  # noise: far from every synthetic-face cluster
        (group / f"{i}.png").write_bytes(
            common.png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        )
    out = tmp_path / "out"
    args = [f"--server={address}", f"--image={inputs[0]}", f"--out={out}"]
    assert client_lib.main([*args, f"--reference_dir={group}"]) == 0
    err = capsys.readouterr().err
    assert "lies far from every training cluster" in err and len(err.strip().splitlines()) == 1
    reference = _local(
        base,
        sig.REFERENCE_CONDITION,
        reference_bytes=file_bytes(sorted(str(p) for p in group.iterdir()))[None],
    )
    assert reference[sig.RELATIVE_DISTANCE][0] > sig.FAR_FROM_CLUSTERS
    expected = _local(
        base,
        sig.TRANSLATE_FULL_CONDITION,
        image_bytes=file_bytes(inputs[:1]),
        condition=reference[sig.CONDITION],
    )[sig.IMAGE_BYTES][0]
    np.testing.assert_array_equal(_read(str(out / "in0_ref_group.png")), common.decode(expected))
    assert client_lib.main([*args, f"--reference_dir={group}", "--output_resolution=model"]) == 0
    expected = _local(
        base,
        sig.TRANSLATE_CONDITION,
        image_bytes=file_bytes(inputs[:1]),
        condition=reference[sig.CONDITION],
    )[sig.IMAGE_BYTES][0]
    np.testing.assert_array_equal(_read(str(out / "in0_ref_group.png")), common.decode(expected))


def test_client_reference_edit_shared_is_shared_condition_then_the_full_condition(
    server, inputs, tmp_path
):
    address, base = server
    group = tmp_path / "group"
    group.mkdir()
    for i in range(3):
        (group / f"{i}.png").write_bytes(common.png_bytes(face(28, 28, seed=50 + i)))
    args = [f"--server={address}", f"--image={','.join(inputs)}", f"--out={tmp_path / 'out'}"]
    written = client_lib.run(
        client_lib.parse_args(
            [*args, f"--reference_dir={group}", "--reference_edit=shared", "--strength=0.5"]
        )
    )
    assert written[0] == str(tmp_path / "out" / "in0_ref_group_shared_s0.5.png")
    images = file_bytes(inputs)
    reference = _local(
        base,
        sig.REFERENCE_CONDITION,
        reference_bytes=file_bytes(sorted(str(p) for p in group.iterdir()))[None],
    )[sig.CONDITION]
    condition = _local(
        base,
        sig.SHARED_CONDITION,
        image_bytes=images,
        condition=np.repeat(reference, 2, axis=0),
        strength=np.full(2, 0.5, np.float32),
    )[sig.CONDITION]
    served = _local(base, sig.TRANSLATE_FULL_CONDITION, image_bytes=images, condition=condition)
    for path, png in zip(written, served[sig.IMAGE_BYTES], strict=True):
        np.testing.assert_array_equal(_read(path), common.decode(png))


def test_client_bad_beyond_inputs_are_one_line_and_exit_2(server, inputs, tmp_path, capsys):
    address, _ = server
    (tmp_path / "empty").mkdir()
    args = [f"--server={address}", f"--image={inputs[0]}", f"--out={tmp_path / 'x.png'}"]
    for extra, expected in (
        (["--cluster=1", "--strength=2.5"], "--strength=2.5: expected a number in [0, 2]"),
        (["--cluster=1", "--strength=-1"], "--strength=-1.0: expected a number in [0, 2]"),
        (["--cluster=1:x"], "--cluster=1:x: weight 'x' is not a number"),
        (["--cluster=9:1"], "--cluster: cluster 9 does not exist (ids are 0..3)"),
        (["--cluster=1:1", "--strength=0.5"], "--strength applies to one --cluster"),
        (["--cluster=1", "--strength=4"], "--strength=4.0: expected"),
        ([f"--reference_dir={tmp_path / 'empty'}"], "empty: no images found"),
        ([f"--reference_dir={tmp_path}", "--cluster=1"], "--reference_dir is the target"),
        (
            [f"--reference_dir={tmp_path}", "--strength=0.5"],
            "--strength with --reference_dir needs --reference_edit=shared",
        ),
        (
            ["--cluster=1", "--reference_edit=shared"],
            "--reference_edit=shared needs --reference_dir",
        ),
        (["--all_clusters", "--keep=1"], "--keep applies to a --cluster translation"),
        (["--cluster=1", "--keep=1,1"], "--keep=1,1: 1 given twice"),
        (["--cluster=1", "--keep=9"], "--keep: cluster 9 does not exist (ids are 0..3)"),
    ):
        assert client_lib.main([*args, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("serving.client: error: ") and expected in err, (extra, err)
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
