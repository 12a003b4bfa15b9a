"""The dev PredictionService over real gRPC on 127.0.0.1: answers and TF Serving's error codes."""

from __future__ import annotations

import os

import grpc
import numpy as np
import pytest
from tests_support import tiny_export

from xplore_tf.common import predict_client as predict
from xplore_tf.common import signatures as sig
from xplore_tf.testing import dev_server

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

K = 4  # clusters of the tiny run


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tiny_export(tmp_path_factory)
    srv, port = dev_server.serve(base, port=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    yield base, prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()
    srv.stop(None)


def _images(n: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _png(image: np.ndarray) -> bytes:
    from xplore_tf.common import pixels

    return pixels.png_bytes(image)


def _good_request(**spec):
    return predict.make_request(
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _images(2), sig.CLUSTER_ID: np.array([0, 3], np.int32)},
        **spec,
    )


def test_serving_default_equals_the_saved_model(server):
    import tensorflow as tf

    base, stub = server
    images, ids = _images(3), np.array([2, 0, 1], np.int32)
    response = stub.Predict(
        predict.make_request(sig.SERVING_DEFAULT, {sig.IMAGE: images, sig.CLUSTER_ID: ids}),
        timeout=30,
    )
    assert response.model_spec.name == "xplore" and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == sig.SERVING_DEFAULT
    got = predict.parse_response(response)[sig.IMAGE]
    loaded = tf.saved_model.load(os.path.join(base, "xplore", "1"))
    expected = loaded.signatures[sig.SERVING_DEFAULT](image=images, cluster_id=ids)[sig.IMAGE]
    np.testing.assert_array_equal(got, expected.numpy())


def test_translate_bytes_and_clusters(server):
    from xplore_tf.common import pixels

    _, stub = server
    images = _images(2)
    data = np.array([_png(im) for im in images], object)
    response = stub.Predict(
        predict.make_request(
            sig.TRANSLATE_BYTES,
            {sig.IMAGE_BYTES: data, sig.CLUSTER_ID: np.array([1, 1], np.int32)},
        ),
        timeout=30,
    )
    out = predict.parse_response(response)[sig.IMAGE_BYTES]
    assert out.shape == (2,) and all(pixels.decode(b).shape == (16, 16, 3) for b in out)
    response = stub.Predict(predict.make_request(sig.CLUSTERS, {}), timeout=30)
    info = pixels.ClusterInfo.from_outputs(predict.parse_response(response))
    assert list(info.ids) == [0, 1, 2, 3] and info.names == ["alpha", "", "Beta", ""]
    # The batchable cluster list: the same table once per row of `rows`.
    response = stub.Predict(
        predict.make_request(sig.CLUSTERS_BATCHED, {sig.ROWS: np.array([5, 0], np.int32)}),
        timeout=30,
    )
    table = predict.parse_response(response)
    assert table[sig.CLUSTER_ID].shape == (2, K) and table[sig.NAME].shape == (2, K)
    for row in range(2):
        assert list(table[sig.CLUSTER_ID][row]) == list(info.ids)
        assert list(table[sig.SIZE][row]) == list(info.sizes)
        assert [n.decode() for n in table[sig.NAME][row]] == info.names


def test_empty_batch_returns_empty(server):
    _, stub = server
    response = stub.Predict(
        predict.make_request(
            sig.SERVING_DEFAULT,
            {sig.IMAGE: np.zeros((0, 16, 16, 3), np.uint8), sig.CLUSTER_ID: np.zeros(0, np.int32)},
        ),
        timeout=30,
    )
    assert predict.parse_response(response)[sig.IMAGE].shape == (0, 16, 16, 3)


_IMG = _images(2)
_IDS = np.array([0, 1], np.int32)
BAD_REQUESTS = {
    "float image": (
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _IMG.astype(np.float32), sig.CLUSTER_ID: _IDS},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg 'image' to be uint8 but float is provided",
    ),
    "int64 cluster ids": (
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _IMG, sig.CLUSTER_ID: _IDS.astype(np.int64)},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "to be int32 but int64",
    ),
    "rank 3 image": (
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _IMG[0], sig.CLUSTER_ID: _IDS},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "input 'image' has shape [16, 16, 3]",
    ),
    "cluster -1": (
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _IMG, sig.CLUSTER_ID: np.array([0, -1], np.int32)},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "cluster_id must be in [0, 4)",
    ),
    "cluster k": (
        sig.TRANSLATE_BYTES,
        {
            sig.IMAGE_BYTES: np.array([_png(_IMG[0])], object),
            sig.CLUSTER_ID: np.array([K], np.int32),
        },
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "cluster_id must be in [0, 4)",
    ),
    "undecodable bytes": (
        sig.TRANSLATE_BYTES,
        {sig.IMAGE_BYTES: np.array([b"GIF89a?"], object), sig.CLUSTER_ID: np.array([0], np.int32)},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "",
    ),
    "missing input": (
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _IMG},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing but required: {cluster_id}",
    ),
    "extra input": (
        sig.CLUSTERS,
        {"mask": np.zeros(1, np.int32)},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "Sent extra: {mask}",
    ),
    "unknown model": (
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _IMG, sig.CLUSTER_ID: _IDS},
        {"model": "nope"},
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    ),
    "unknown version": (
        sig.SERVING_DEFAULT,
        {sig.IMAGE: _IMG, sig.CLUSTER_ID: _IDS},
        {"version": 7},
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(xplore, 7)",
    ),
    "unknown signature": (
        "translate",
        {sig.IMAGE: _IMG, sig.CLUSTER_ID: _IDS},
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        'Serving signature name: "translate" not found',
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_tf_serving_status_and_server_survives(server, case):
    _, stub = server
    signature, inputs, spec, code, text = BAD_REQUESTS[case]
    request = predict.make_request(signature, inputs, **spec)
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    assert info.value.code() == code, info.value.details()
    assert text in info.value.details()
    assert "\n" not in info.value.details() and "[[{{node" not in info.value.details()
    # Still serving.
    out = predict.parse_response(stub.Predict(_good_request(), timeout=30))
    assert out[sig.IMAGE].shape == (2, 16, 16, 3)


def test_malformed_tensor_proto_and_unknown_output_filter(server):
    _, stub = server
    request = _good_request()
    request.inputs[sig.IMAGE].tensor_content = b"\x00" * 5  # not 2*16*16*3 bytes
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request = _good_request()
    request.output_filter.append("logits")
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: logits" in info.value.details()


def test_new_versions_are_served_as_latest_and_old_ones_on_request(server, tmp_path_factory):
    import shutil

    from tensorflow_serving.apis import prediction_service_pb2_grpc

    shared_base, _ = server
    base = str(tmp_path_factory.mktemp("versions"))
    shutil.copytree(os.path.join(shared_base, "xplore", "1"), os.path.join(base, "xplore", "1"))
    srv, port = dev_server.serve(base, port=0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert stub.Predict(_good_request(), timeout=30).model_spec.version.value == 1
            # A new version appears (as xplore_tf.export writes it: a rename into place)...
            tmp = os.path.join(base, "xplore", ".tmp-5")
            shutil.copytree(os.path.join(base, "xplore", "1"), tmp)
            os.rename(tmp, os.path.join(base, "xplore", "5"))
            # ...and is served as the latest without a restart, as TF Serving does.
            latest = stub.Predict(_good_request(), timeout=60)
            assert latest.model_spec.version.value == 5
            first = stub.Predict(_good_request(version=1), timeout=30)
            assert first.model_spec.version.value == 1
            np.testing.assert_array_equal(
                predict.parse_response(latest)[sig.IMAGE],
                predict.parse_response(first)[sig.IMAGE],
            )
    finally:
        srv.stop(None)


def test_get_model_metadata_lists_signatures(server):
    from tensorflow_serving.apis import get_model_metadata_pb2

    _, stub = server
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "xplore"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    assert set(sig.SIGNATURES) <= set(signature_map.signature_def)
    inputs = signature_map.signature_def[sig.SERVING_DEFAULT].inputs
    assert set(inputs) == {sig.IMAGE, sig.CLUSTER_ID}
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_taken_port_is_one_error_never_a_shared_one(tmp_path_factory):
    """A second dev server on a server's port, or on a port a non-gRPC program holds: one
    line naming the port (gRPC's Python servers share ports by default)."""
    import socket

    base = tiny_export(tmp_path_factory)
    first, port = dev_server.serve(base, port=0, preload=False)
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: the port is in use"):
            dev_server.serve(base, port=port, preload=False)
    finally:
        first.stop(None)
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        taken = plain.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{taken}"):
            dev_server.serve(base, port=taken, preload=False)
