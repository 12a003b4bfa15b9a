"""The gRPC client: hand-built TensorProtos, names, outputs, and runs against the dev server."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import numpy as np
import pytest
from tests_support import PROJECT_ROOT, tiny_export

from serving import client as client_lib
from xplore_tf.common import pixels as common
from xplore_tf.common import predict_client as predict
from xplore_tf.common import signatures as sig
from xplore_tf.testing import dev_server

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model


# ---------------------------------------------------------------- TensorProtos (no server)
@pytest.mark.parametrize(
    "value",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
        np.array([-1, 0, 7], np.int32),
        np.array([[1, 2**40]], np.int64),
        np.array([0.5, -2.25], np.float32),
        np.zeros((0, 5, 5, 3), np.uint8),
        np.array([b"\x89PNG", b""], object),
    ],
    ids=["uint8", "int32", "int64", "float32", "empty", "bytes"],
)
def test_tensor_protos_match_tensorflow(value):
    import tensorflow as tf

    proto = predict.make_tensor_proto(value)
    ours = tf.make_ndarray(proto)  # TensorFlow reads what we built...
    assert ours.dtype == (object if value.dtype == object else value.dtype)
    np.testing.assert_array_equal(ours, value)
    theirs = predict.make_ndarray(tf.make_tensor_proto(value))  # ...we read what it builds
    np.testing.assert_array_equal(theirs, value)
    assert theirs.shape == value.shape


def test_make_ndarray_reads_typed_fields_as_tf_serving_sends_them():
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    def proto(dtype, shape, **fields):
        p = tensor_pb2.TensorProto(dtype=dtype, **fields)
        p.tensor_shape.CopyFrom(
            tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
            )
        )
        return p

    got = predict.make_ndarray(proto(types_pb2.DT_UINT8, [2, 2], int_val=[1, 2, 3, 255]))
    np.testing.assert_array_equal(got, np.array([[1, 2], [3, 255]], np.uint8))
    assert got.dtype == np.uint8
    got = predict.make_ndarray(proto(types_pb2.DT_INT64, [3], int64_val=[9]))  # one fills all
    np.testing.assert_array_equal(got, [9, 9, 9])
    with pytest.raises(ValueError):
        predict.make_ndarray(proto(types_pb2.DT_INT32, [2], int_val=[1, 2, 3]))
    with pytest.raises(ValueError):
        predict.make_ndarray(proto(types_pb2.DT_UINT8, [4], tensor_content=b"\x00" * 3))


def test_make_request_fills_model_spec_and_inputs():
    request = predict.make_request(
        sig.TRANSLATE_BYTES,
        {sig.IMAGE_BYTES: np.array([b"x"], object), sig.CLUSTER_ID: np.array([3], np.int32)},
        model="faces",
        version=4,
    )
    assert request.model_spec.name == "faces" and request.model_spec.version.value == 4
    assert request.model_spec.signature_name == "translate_bytes"
    assert set(request.inputs) == {"image_bytes", "cluster_id"}
    latest = predict.make_request(sig.CLUSTERS, {})
    assert not latest.model_spec.HasField("version") and not latest.inputs


# ---------------------------------------------------------------- names and outputs
INFO = common.ClusterInfo(
    np.arange(4, dtype=np.int32), np.array([5, 6, 7, 8]), ["alpha", "", "Beta", ""]
)


def test_resolve_cluster_by_id_or_name():
    assert common.resolve_cluster("2", None) == 2
    assert common.resolve_cluster("-1", None) == -1  # the server rejects it, not the client
    assert common.resolve_cluster("Beta", INFO) == 2
    assert common.resolve_cluster("beta", INFO) == 2  # case-insensitive when unambiguous
    with pytest.raises(ValueError, match="no cluster of that name; named clusters: Beta, alpha"):
        common.resolve_cluster("blond", INFO)
    twins = common.ClusterInfo(INFO.ids, INFO.sizes, ["a", "x", "x", ""])
    with pytest.raises(ValueError, match=r"names several clusters: \[1, 2\]"):
        common.resolve_cluster("x", twins)


def test_output_paths_folder_file_and_pattern():
    assert common.output_paths("o.png", ["a/in.jpg"], [3]) == ["o.png"]
    assert common.output_paths("d", ["a/x.jpg", "y.png"], [3, 3]) == [
        os.path.join("d", "x_c003.png"),
        os.path.join("d", "y_c003.png"),
    ]
    assert common.output_paths("d", ["a/x.jpg", "b/x.png"], [1, 1]) == [
        os.path.join("d", "000_x_c001.png"),
        os.path.join("d", "001_x_c001.png"),
    ]
    assert common.output_paths("o/{index}-{stem}-{cluster}.png", ["p/q.jpg"], [7]) == [
        "o/0-q-7.png"
    ]
    with pytest.raises(ValueError, match="names one file"):
        common.output_paths("o.png", ["a.jpg", "b.jpg"], [1, 1])
    with pytest.raises(ValueError, match="same name"):
        common.output_paths("o/{cluster}.png", ["a.jpg", "b.jpg"], [1, 1])
    assert common.grid_path("g.png") == "g.png"
    assert common.grid_path("d") == os.path.join("d", "all_clusters.png")


# ---------------------------------------------------------------- against the dev server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tiny_export(tmp_path_factory)
    srv, port = dev_server.serve(base, port=0)
    yield f"127.0.0.1:{port}", base
    srv.stop(None)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    paths = []
    for name, shape in (("face.jpg", (40, 30, 3)), ("other.png", (16, 16, 3))):
        path = str(folder / name)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@functools.lru_cache(maxsize=1)
def _load(base: str):
    import tensorflow as tf

    return tf.saved_model.load(os.path.join(base, "xplore", "1"))


def _expected_png_pixels(base: str, path: str, cluster: int) -> np.ndarray:
    import tensorflow as tf

    loaded = _load(base)
    with open(path, "rb") as f:
        data = f.read()
    out = loaded.signatures[sig.TRANSLATE_BYTES](
        image_bytes=tf.constant([data]), cluster_id=tf.constant([cluster])
    )[sig.IMAGE_BYTES]
    return common.decode(out.numpy()[0])


def test_client_writes_the_served_translation(server, inputs, tmp_path):
    import tensorflow as tf

    address, base = server
    out = str(tmp_path / "out.png")
    common_args = [f"--server={address}", f"--image={inputs[0]}", "--cluster=3", f"--out={out}"]
    args = client_lib.parse_args([*common_args, "--output_resolution=model"])
    assert client_lib.run(args) == [out]
    got = common.decode(open(out, "rb").read())
    np.testing.assert_array_equal(got, _expected_png_pixels(base, inputs[0], 3))
    # By default: the input's centre square (30 x 30 of 40 x 30) at its own size, the edit
    # carried to it by translate_full with the weight 1 on cluster 3.
    assert client_lib.run(client_lib.parse_args(common_args)) == [out]
    with open(inputs[0], "rb") as f:
        full = _load(base).signatures[sig.TRANSLATE_FULL](
            image_bytes=tf.constant([f.read()]), cluster_weights=tf.constant([[0.0, 0, 0, 1]])
        )[sig.IMAGE_BYTES]
    got = common.decode(open(out, "rb").read())
    assert got.shape == (30, 30, 3)
    np.testing.assert_array_equal(got, common.decode(full.numpy()[0]))


def test_client_resolves_names_and_writes_a_folder(server, inputs, tmp_path):
    address, base = server
    args = client_lib.parse_args(
        [
            f"--server={address}",
            f"--image={','.join(inputs)}",
            "--cluster=beta",
            f"--out={tmp_path}",
            "--output_resolution=model",
        ]
    )
    written = client_lib.run(args)
    assert written == [str(tmp_path / "face_c002.png"), str(tmp_path / "other_c002.png")]
    got = common.decode(open(written[1], "rb").read())
    np.testing.assert_array_equal(got, _expected_png_pixels(base, inputs[1], 2))
    # serving_default (decoded pixels) gives the same pixels as translate_bytes (PNG in).
    args = client_lib.parse_args(
        [
            f"--server={address}",
            f"--image={inputs[1]}",
            "--cluster=2",
            f"--out={tmp_path / 'px.png'}",
            "--signature=serving_default",
            "--output_resolution=model",
        ]
    )
    client_lib.run(args)
    np.testing.assert_array_equal(common.decode(open(tmp_path / "px.png", "rb").read()), got)


def test_all_clusters_grid(server, inputs, tmp_path):
    address, _ = server
    args = client_lib.parse_args(
        [
            f"--server={address}",
            f"--image={inputs[0]}",
            f"--image={inputs[1]}",
            "--all_clusters",
            f"--out={tmp_path}",
            "--max_batch=3",  # k = 4 clusters: two requests per image
        ]
    )
    (path,) = client_lib.run(args)
    labelled = common.decode(open(path, "rb").read())
    header = labelled.shape[0] - 2 * 16  # "input", then each cluster's id and name
    assert path.endswith("all_clusters.png") and labelled.shape[1:] == (5 * 16, 3)
    assert 8 <= header <= 24 and (labelled[:header] < 128).any()
    row_two_cluster_2 = labelled[header + 16 :, 3 * 16 : 4 * 16]
    single = tmp_path / "single.png"
    client_lib.run(
        client_lib.parse_args(
            [
                f"--server={address}",
                f"--image={inputs[1]}",
                "--cluster=2",
                f"--out={single}",
                "--output_resolution=model",
            ]
        )
    )
    np.testing.assert_array_equal(row_two_cluster_2, common.decode(open(single, "rb").read()))


def test_errors_are_one_readable_line_and_exit_2(server, inputs, tmp_path, capsys):
    address, _ = server
    base_args = [f"--server={address}", f"--image={inputs[0]}", f"--out={tmp_path / 'x.png'}"]
    assert client_lib.main([*base_args, "--cluster=4", "--output_resolution=model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("serving.client: error: INVALID_ARGUMENT: ") and "[0, 4)" in err
    assert len(err.splitlines()) == 1
    assert client_lib.main([*base_args, "--cluster=4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "serving.client: error: --cluster: cluster 4 does not exist (ids are 0..3)"
    )
    assert client_lib.main([*base_args, "--cluster=1", "--signature=serving_default"]) == 2
    assert capsys.readouterr().err.strip() == (
        "serving.client: error: --signature=serving_default answers at the model's "
        "resolution: add --output_resolution=model"
    )
    assert client_lib.main([*base_args, "--cluster=1", "--timeout=0.0001"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("serving.client: error: DEADLINE_EXCEEDED: ")
    assert len(err.splitlines()) == 1
    assert client_lib.main([*base_args, "--cluster=1", "--model=faces"]) == 2
    assert "NOT_FOUND: Servable not found" in capsys.readouterr().err
    assert client_lib.main([*base_args, "--cluster=blond"]) == 2
    assert "no cluster of that name" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_client_binary_imports_no_model_code(server, inputs, tmp_path):
    address, _ = server
    out = tmp_path / "cli.png"
    res = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",  # lists every imported module on stderr
            "-m",
            "serving.client",
            f"--server={address}",
            f"--image={inputs[0]}",
            "--cluster=alpha",
            f"--out={out}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == str(out)
    assert common.decode(out.read_bytes()).shape == (30, 30, 3)  # the input's own size
    # A client machine needs no model code: of xplore_tf only the bottom layer was imported.
    # (TensorFlow itself is: the serving API's protos live in the tensorflow package, whose
    # __init__ loads all of TF, Keras included.)
    imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if "|" in line]
    assert "xplore_tf.common.pixels" in imported
    assert "tensorflow_serving.apis.predict_pb2" in imported
    ours = {m for m in imported if m.split(".")[0] == "xplore_tf"}
    assert ours and not {
        m for m in ours if m != "xplore_tf" and not m.startswith("xplore_tf.common")
    }


# ---------------------------------------------------------------- awkward inputs
def _expected_from_pixels(base: str, pixels: np.ndarray, cluster: int) -> np.ndarray:
    import tensorflow as tf

    out = _load(base).signatures[sig.SERVING_DEFAULT](
        image=tf.constant(pixels[None]), cluster_id=tf.constant([cluster])
    )
    return out[sig.IMAGE].numpy()[0]


@pytest.mark.parametrize("signature", [sig.TRANSLATE_BYTES, sig.SERVING_DEFAULT])
def test_awkward_inputs_are_served_as_their_training_pixels(server, tmp_path, signature):
    from tests_support import write_awkward

    address, base = server
    files = write_awkward(tmp_path / "in")
    names = [
        "png_grey16.png",
        "png_rgba_hidden_green.png",
        "jpeg_exif_6.jpg",
        "webp_exif_rotated.webp",
        "bmp_palette8.bmp",
        "gif_partial_frame.gif",
    ]
    args = client_lib.parse_args(
        [
            f"--server={address}",
            f"--image={','.join(files[n] for n in names)}",
            "--cluster=1",
            f"--out={tmp_path / 'out'}",
            f"--signature={signature}",
            "--output_resolution=model",
        ]
    )
    for path, name in zip(client_lib.run(args), names, strict=True):
        expected = _expected_from_pixels(base, common.read_rgb(files[name]), 1)
        np.testing.assert_array_equal(common.decode(open(path, "rb").read()), expected, name)


def test_unreadable_inputs_are_one_line_before_any_request(tmp_path, capsys, monkeypatch):
    from PIL import Image
    from tests_support import huge_png

    huge = tmp_path / "huge.png"
    huge.write_bytes(huge_png())
    unreachable = ["--server=127.0.0.1:1", "--cluster=0", f"--out={tmp_path / 'o.png'}"]
    assert client_lib.main([f"--image={huge}", *unreachable]) == 2
    assert capsys.readouterr().err.strip() == (
        f"serving.client: error: {huge}: image of 20000x9000 pixels is larger than the "
        "178956970 pixels accepted (decompression-bomb guard)"
    )
    face = tmp_path / "face.png"
    face.write_bytes(common.png_bytes(np.zeros((8, 8, 3), np.uint8)))

    def exif_crash(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(Image, "open", exif_crash)
    assert client_lib.main([f"--image={face}", *unreachable]) == 2
    assert capsys.readouterr().err.strip() == (
        f"serving.client: error: {face}: ZeroDivisionError: division by zero"
    )
    monkeypatch.undo()
    assert client_lib.main([f"--image={face}", *unreachable, "--all_clusters"]) == 2
    assert "pass --cluster=0 or --all_clusters, not both" in capsys.readouterr().err


def test_a_model_without_the_full_signatures_answers_at_its_resolution_with_a_warning(
    inputs, tmp_path, tmp_path_factory, capsys
):
    """An export made without its clustering extractor (or before translate_full existed):
    the client and translate fall back to the model's resolution and say why."""
    import dataclasses

    from tests_support import tiny_trained_run

    from xplore_tf import config as config_lib
    from xplore_tf import export_lib, translate_lib

    run = tiny_trained_run(tmp_path_factory)
    missing = dataclasses.replace(
        run,
        cluster=dataclasses.replace(run.cluster, feature_weights=str(tmp_path / "gone.npz")),
        export=config_lib.ExportConfig(export_dir=str(tmp_path / "export")),
    )
    export_lib.export(missing)
    srv, port = dev_server.serve(str(tmp_path / "export"), port=0)
    try:
        out = tmp_path / "out.png"
        args = [f"--server=127.0.0.1:{port}", f"--image={inputs[0]}", "--cluster=1", f"--out={out}"]
        assert client_lib.main(args) == 0
        warned = capsys.readouterr().err.strip()
        # A reference group needs the extractor in the graph: one line, not a traceback.
        reference = [*args[:2], f"--reference_dir={os.path.dirname(inputs[0])}", f"--out={out}"]
        reference.append("--reference_edit=shared")
        assert client_lib.main(reference) == 2
        refused = capsys.readouterr().err.strip()
    finally:
        srv.stop(None)
    error = refused.splitlines()[-1]
    assert error.startswith("serving.client: error: ")
    assert "the served model has no reference_condition signature: it was exported" in error
    err = warned
    assert err == (
        "serving.client: warning: the served model has no translate_full signature (exported "
        "before it existed or without its clustering extractor; export it again): output at "
        "the model's resolution"
    )
    assert common.decode(out.read_bytes()).shape == (16, 16, 3)
    (local,) = translate_lib.translate_files(
        missing, inputs[:1], cluster=1, out=str(tmp_path / "local.png")
    )
    assert common.decode(open(local, "rb").read()).shape == (16, 16, 3)


def test_large_uploads_travel_compressed_split_or_refused_by_name(tmp_path, monkeypatch):
    """A raw BMP goes as PNG when that is smaller; requests are split under the byte budget;
    a file too large even as PNG is one line naming it and the limit."""
    from PIL import Image

    smooth = np.tile(np.linspace(0, 255, 1500, dtype=np.uint8)[None, :, None], (1000, 1, 3))
    bmp = tmp_path / "scan.bmp"
    Image.fromarray(smooth).save(bmp)  # 4.5 MB raw
    monkeypatch.setattr(common, "_COMPRESS_ABOVE", 1_000_000)
    sent = common.read_image_bytes(str(bmp))
    assert sent[:8] == b"\x89PNG\r\n\x1a\n" and len(sent) < os.path.getsize(bmp) / 10
    np.testing.assert_array_equal(common.decode(sent), smooth)
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1500, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.bmp")
    monkeypatch.setattr(sig, "IMAGE_BYTES_LIMIT", 2_000_000)
    with pytest.raises(common.ImageError) as info:
        common.read_image_bytes(str(tmp_path / "noise.bmp"))
    assert str(info.value).startswith(f"{tmp_path / 'noise.bmp'}: 4 MiB even as PNG; one image")
    sizes = [b"x" * n for n in (30, 30, 30, 90, 10, 10)]
    chunks = list(common.batches(sizes, max_batch=4, max_bytes=64))
    assert [(c.start, c.stop) for c in chunks] == [(0, 2), (2, 3), (3, 4), (4, 6)]
    with pytest.raises(ValueError, match="--timeout must be > 0 seconds, got 0.0"):
        predict.ServingClient("127.0.0.1:1", timeout=0.0)
