"""TF Serving's --enable_batching as xplore_tf.testing.dev_server reproduces it, and the model under it.

What TF Serving's batching session does (tensorflow_serving/batching/batching_session.cc):
it concatenates every input of concurrent requests to one signature along dimension 0, so
requests whose tensors differ beyond dimension 0 (serving_default images of another H x W)
fail the WHOLE batch, as does any error of the graph run; a signature without inputs cannot
be batched. These tests pin the stand-in to that behaviour (so a regression of the model or
the docs shows up here), check that every signature has a batchable path (translate_bytes
for images of any size, clusters_batched for the cluster list), and load the batching
server with 4 clients x 250 requests, 10 % of them malformed.
"""

from __future__ import annotations

import os
import threading
import time

import grpc
import numpy as np
import pytest
from tests_support import PROJECT_ROOT, call_signature, tiny_export

from xplore_tf.common import pixels as common
from xplore_tf.common import predict_client as predict
from xplore_tf.common import signatures as sig
from xplore_tf.testing import dev_server

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

K = 4  # clusters of the tiny run
S = 16  # its resolution
NAMES = ["alpha", "", "Beta", ""]


def _images(n: int, h: int = S, w: int = S, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _close(got: np.ndarray, expected: np.ndarray) -> bool:
    """Equal up to float round-off: a batch may move a rare pixel by 1 (oneDNN kernels
    differ with the batch size); another image's translation differs by ~50 on average."""
    if got.shape != expected.shape:
        return False
    diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    return int(diff.max(initial=0)) <= 1 and float((diff > 0).mean()) < 0.01


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_export(tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(base):
    """The served SavedModel's path, for its unbatched answers in process."""
    return os.path.join(base, "xplore", "1")


def _stub(port: int):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.max_receive_message_length", predict.MAX_MESSAGE_BYTES)],
    )
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _concurrently(stub, requests: list) -> list:
    """Sends the requests at once (one thread each); returns responses or RpcErrors."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def send(i):
        barrier.wait()
        try:
            results[i] = stub.Predict(requests[i], timeout=60)
        except grpc.RpcError as e:
            results[i] = e

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ---------------------------------------------------------------- merge and split (no server)
def test_a_request_alone_is_checked_before_batching():
    ok = {"a": np.zeros((2, 3)), "b": np.zeros(2)}
    assert dev_server.batch_size_of(ok) == 2
    for inputs, text in (
        ({}, "must have at least one input tensor"),
        ({"a": np.zeros(()), "b": np.zeros(1)}, "must have at least one dimension"),
        ({"a": np.zeros((2, 3)), "b": np.zeros(1)}, "must have equal 0th-dimension size"),
    ):
        with pytest.raises(dev_server.Status) as info:
            dev_server.batch_size_of(inputs)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and text in info.value.message


def test_merge_concatenates_and_fails_the_batch_on_other_shapes_or_dtypes():
    a = {"image": _images(1, seed=1), "cluster_id": np.array([0], np.int32)}
    b = {"image": _images(2, seed=2), "cluster_id": np.array([1, 2], np.int32)}
    merged, padding = dev_server.merge_batch([a, b])
    assert padding == 0 and merged["image"].shape == (3, S, S, 3)
    np.testing.assert_array_equal(merged["cluster_id"], [0, 1, 2])
    other_size = {"image": _images(1, 20, 20), "cluster_id": np.array([0], np.int32)}
    names = {"image": "serving_default_image:0"}
    with pytest.raises(dev_server.Status) as info:
        dev_server.merge_batch([a, other_size], names)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message.startswith(
        "Tensors with name 'serving_default_image:0' from different tasks have different shapes "
        "and padding is turned off."
    )
    floats = {"image": _images(1).astype(np.float32), "cluster_id": np.array([0], np.int32)}
    with pytest.raises(dev_server.Status) as info:
        dev_server.merge_batch([a, floats])
    assert info.value.code == grpc.StatusCode.INTERNAL
    assert "different data types. Got uint8 and float." in info.value.message
    # Strings of any length concatenate: encoded images of any size batch together.
    merged, _ = dev_server.merge_batch(
        [{"b": np.array([b"x" * 9], object)}, {"b": np.array([b"y", b"zz"], object)}]
    )
    assert list(merged["b"]) == [b"x" * 9, b"y", b"zz"]


def test_allowed_batch_sizes_pad_with_the_last_requests_first_row_and_split_drops_it():
    a = {"x": np.array([[1, 1]]), "id": np.array([7])}
    b = {"x": np.array([[2, 2], [3, 3]]), "id": np.array([8, 9])}
    merged, padding = dev_server.merge_batch([a, b], allowed_batch_sizes=(2, 5, 8))
    assert padding == 2
    np.testing.assert_array_equal(merged["x"], [[1, 1], [2, 2], [3, 3], [2, 2], [2, 2]])
    np.testing.assert_array_equal(merged["id"], [7, 8, 9, 8, 8])
    first, second = dev_server.split_outputs({"y": merged["x"] * 10}, [1, 2], padding)
    np.testing.assert_array_equal(first["y"], [[10, 10]])
    np.testing.assert_array_equal(second["y"], [[20, 20], [30, 30]])
    for outputs, text in (
        ({"y": np.zeros(())}, "has 0 dimensions"),
        ({"y": np.zeros(4)}, "does not equal the sum of the 0th dimension sizes"),
    ):
        with pytest.raises(dev_server.Status) as info:
            dev_server.split_outputs(outputs, [1, 2], padding)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert text in info.value.message


def test_pad_variable_length_inputs_would_change_the_images():
    # Why serving/batching.config keeps it off: a 2x2 image batched with a 3x3 one is padded
    # at the bottom and right with its first pixel, so the model crops another picture.
    small = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3) + 1
    big = np.zeros((1, 3, 3, 3), np.uint8)
    merged, _ = dev_server.merge_batch(
        [{"image": small}, {"image": big}], pad_variable_length_inputs=True
    )
    assert merged["image"].shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(merged["image"][0, :2, :2], small[0])
    assert (merged["image"][0, 2, :] == 1).all() and (merged["image"][0, :, 2] == 1).all()


def test_batching_config_parses_and_bad_ones_are_refused(tmp_path):
    params = dev_server.BatchingParameters.from_file(
        os.path.join(PROJECT_ROOT, "serving", "batching.config")
    )
    assert params.max_batch_size == 16 and params.batch_timeout_micros == 5000
    assert params.num_batch_threads == 2 and params.max_enqueued_batches == 100
    assert not params.pad_variable_length_inputs and params.allowed_batch_sizes == ()
    parse = dev_server.BatchingParameters.parse
    assert parse("allowed_batch_sizes: 4 allowed_batch_sizes: 8 max_batch_size { value: 8 }")
    for text, message in (
        ("max_batch_size { value: 8 } allowed_batch_sizes: 4", "must match max_batch_size"),
        ("max_batch_size: 8", "max_batch_size"),  # a wrapper, written { value: 8 }
        ("batch_size { value: 8 }", 'no field named "batch_size"'),
        ("enable_large_batch_splitting { value: true }", "not emulated"),
        ("num_batch_threads { value: 0 }", "num_batch_threads must be >= 1"),
    ):
        with pytest.raises(ValueError, match=message):
            parse(text)


# ---------------------------------------------------------------- batches over gRPC
@pytest.fixture(scope="module")
def pairs(base):
    """A batching server whose batches hold exactly two 1-row requests: a batch closes when
    full (2 rows), and a lone request would wait 3 s, so two concurrent requests always
    share a batch."""
    params = dev_server.BatchingParameters(
        max_batch_size=2, batch_timeout_micros=3_000_000, num_batch_threads=1
    )
    server, port = dev_server.serve(base, port=0, batching=params)
    channel, stub = _stub(port)
    yield server, port, stub
    channel.close()
    server.stop(None)


def _one_batch(server, stub, label: str, requests: list) -> list:
    before = server.batcher.stats[label].multi_request_batches
    results = _concurrently(stub, requests)
    assert server.batcher.stats[label].multi_request_batches == before + 1
    return results


def _serving_default(images: np.ndarray, ids) -> object:
    return predict.make_request(
        sig.SERVING_DEFAULT, {sig.IMAGE: images, sig.CLUSTER_ID: np.asarray(ids, np.int32)}
    )


def _translate_bytes(pngs: list[bytes], ids) -> object:
    return predict.make_request(
        sig.TRANSLATE_BYTES,
        {sig.IMAGE_BYTES: np.array(pngs, object), sig.CLUSTER_ID: np.asarray(ids, np.int32)},
    )


def test_serving_default_images_of_another_size_fail_the_whole_batch(pairs, loaded):
    server, _, stub = pairs
    results = _one_batch(
        server,
        stub,
        sig.SERVING_DEFAULT,
        [_serving_default(_images(1, seed=3), [1]), _serving_default(_images(1, 20, 24), [2])],
    )
    # TF Serving's answer to both clients, the S x S one included.
    for result in results:
        assert isinstance(result, grpc.RpcError)
        assert result.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "Tensors with name 'serving_default_image:0' from different tasks" in (
            result.details()
        )
    # Same-size images batch fine, and each client gets its own answer.
    images = _images(2, seed=4)
    results = _one_batch(
        server,
        stub,
        sig.SERVING_DEFAULT,
        [_serving_default(images[:1], [1]), _serving_default(images[1:], [3])],
    )
    for result, image, c in zip(results, images, (1, 3), strict=True):
        got = predict.parse_response(result)[sig.IMAGE]
        expected = call_signature(loaded, sig.SERVING_DEFAULT, image=image[None], cluster_id=[c])
        assert _close(got, expected[sig.IMAGE])


def test_translate_bytes_batches_images_of_any_size(pairs, loaded):
    server, _, stub = pairs
    pngs = [common.png_bytes(_images(1, 40, 30, seed=5)[0]), common.png_bytes(_images(1)[0])]
    results = _one_batch(
        server,
        stub,
        sig.TRANSLATE_BYTES,
        [_translate_bytes(pngs[:1], [0]), _translate_bytes(pngs[1:], [2])],
    )
    for result, png, c in zip(results, pngs, (0, 2), strict=True):
        (got,) = predict.parse_response(result)[sig.IMAGE_BYTES]
        expected = call_signature(loaded, sig.TRANSLATE_BYTES, image_bytes=[png], cluster_id=[c])
        assert _close(common.decode(got), common.decode(expected[sig.IMAGE_BYTES][0]))


def test_a_request_failing_in_the_graph_fails_its_whole_batch(pairs):
    # TF Serving runs a batch as one session run with one status: a cluster id out of
    # range (or an undecodable image) sent by one client fails the other's request too.
    server, _, stub = pairs
    png = common.png_bytes(_images(1)[0])
    results = _one_batch(
        server,
        stub,
        sig.TRANSLATE_BYTES,
        [_translate_bytes([png], [K]), _translate_bytes([png], [0])],
    )
    for result in results:
        assert result.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"cluster_id must be in [0, {K})" in result.details()


def test_different_dtypes_fail_the_whole_batch(pairs):
    server, _, stub = pairs
    results = _one_batch(
        server,
        stub,
        sig.SERVING_DEFAULT,
        [_serving_default(_images(1).astype(np.float32), [0]), _serving_default(_images(1), [0])],
    )
    for result in results:
        assert result.code() == grpc.StatusCode.INTERNAL
        assert "Cannot concatenate tensors that have different data types" in result.details()


def test_the_cluster_list_under_batching(pairs):
    server, port, stub = pairs
    rows = predict.make_request(sig.CLUSTERS_BATCHED, {sig.ROWS: np.zeros(1, np.int32)})
    for result in _one_batch(server, stub, sig.CLUSTERS_BATCHED, [rows, rows]):
        out = predict.parse_response(result)
        assert out[sig.CLUSTER_ID].shape == (1, K) and out[sig.SIZE].shape == (1, K)
        assert [n.decode() for n in out[sig.NAME][0]] == NAMES
    # The input-less `clusters` cannot be batched: refused alone, as TF Serving refuses it.
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(predict.make_request(sig.CLUSTERS, {}), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "Batching Run() must have at least one input tensor"
    # The client resolves names through clusters_batched (a lone request: one timeout).
    with predict.ServingClient(f"127.0.0.1:{port}") as client:
        info = client.clusters()
    assert list(info.ids) == list(range(K)) and info.names == NAMES


@pytest.mark.parametrize(
    "inputs, text",
    [
        (
            {
                sig.IMAGE_BYTES: np.array([b"a", b"b"], object),
                sig.CLUSTER_ID: np.zeros(1, np.int32),
            },
            "Batching Run() input tensors must have equal 0th-dimension size",
        ),
        (
            {sig.IMAGE_BYTES: np.array(b"a", object), sig.CLUSTER_ID: np.array(0, np.int32)},
            "Batching Run() input tensors must have at least one dimension",
        ),
        (
            {sig.IMAGE_BYTES: np.array([b"a"] * 3, object), sig.CLUSTER_ID: np.zeros(3, np.int32)},
            "Task size 3 is larger than maximum input batch size 2",
        ),
    ],
    ids=["unequal rows", "scalars", "too many rows"],
)
def test_requests_that_cannot_be_batched_fail_alone(pairs, inputs, text):
    server, _, stub = pairs
    batches = server.batcher.stats[sig.TRANSLATE_BYTES].batches
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(predict.make_request(sig.TRANSLATE_BYTES, inputs), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == text
    assert server.batcher.stats[sig.TRANSLATE_BYTES].batches == batches  # never queued


def test_client_falls_back_to_clusters_for_exports_without_clusters_batched(tmp_path):
    import tensorflow as tf

    class Old(tf.Module):
        @tf.function(input_signature=[])
        def clusters(self):
            return {
                sig.CLUSTER_ID: tf.range(2, dtype=tf.int32),
                sig.SIZE: tf.constant([5, 6], tf.int64),
                sig.NAME: tf.constant(["a", ""]),
            }

    old = Old()
    tf.saved_model.save(old, str(tmp_path / "old" / "1"), signatures={sig.CLUSTERS: old.clusters})
    server, port = dev_server.serve(str(tmp_path), port=0)
    try:
        with predict.ServingClient(f"127.0.0.1:{port}", "old") as client:
            info = client.clusters()
        assert list(info.ids) == [0, 1] and info.names == ["a", ""]
    finally:
        server.stop(None)
    params = dev_server.BatchingParameters(num_batch_threads=1)
    server, port = dev_server.serve(str(tmp_path), port=0, batching=params)
    try:
        with predict.ServingClient(f"127.0.0.1:{port}", "old") as client:
            with pytest.raises(predict.ServingError) as info:
                client.clusters()
        assert info.value.code == "INVALID_ARGUMENT"
        assert "must have at least one input tensor" in str(info.value)
        assert "re-export the model, pass a numeric cluster id" in str(info.value)
    finally:
        server.stop(None)


# ---------------------------------------------------------------- load
LOAD_CONFIG = """
max_batch_size { value: 8 }
batch_timeout_micros { value: 20000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
allowed_batch_sizes: 4
allowed_batch_sizes: 8
pad_variable_length_inputs: false
"""
CLIENTS, REQUESTS = 4, 250
BYTES_SIZES = [(16, 16), (40, 30), (23, 57), (64, 48)]


def _malformed(kind: str, png: bytes, image: np.ndarray):
    """A bad request TF Serving refuses alone, before batching, and the text it answers."""
    ids = np.zeros(1, np.int32)
    if kind == "missing input":
        return predict.make_request(sig.SERVING_DEFAULT, {sig.IMAGE: image}), (
            "Missing but required: {cluster_id}"
        )
    if kind == "extra input":
        inputs = {sig.IMAGE_BYTES: np.array([png], object), sig.CLUSTER_ID: ids, "mask": ids}
        return predict.make_request(sig.TRANSLATE_BYTES, inputs), "Sent extra: {mask}"
    if kind == "unequal rows":
        inputs = {sig.IMAGE_BYTES: np.array([png, png], object), sig.CLUSTER_ID: ids}
        return predict.make_request(sig.TRANSLATE_BYTES, inputs), "equal 0th-dimension size"
    if kind == "scalars":
        inputs = {sig.IMAGE_BYTES: np.array(png, object), sig.CLUSTER_ID: np.array(0, np.int32)}
        return predict.make_request(sig.TRANSLATE_BYTES, inputs), "at least one dimension"
    if kind == "unparseable tensor":
        request = predict.make_request(sig.SERVING_DEFAULT, {sig.IMAGE: image, sig.CLUSTER_ID: ids})
        request.inputs[sig.IMAGE].tensor_content = b"\x00" * 5
        return request, "tensor parsing error: image"
    if kind == "unknown output":
        request = predict.make_request(sig.SERVING_DEFAULT, {sig.IMAGE: image, sig.CLUSTER_ID: ids})
        request.output_filter.append("logits")
        return request, "output tensor alias not found in signature: logits"
    if kind == "too many rows":
        inputs = {
            sig.IMAGE_BYTES: np.array([png] * 9, object),
            sig.CLUSTER_ID: np.zeros(9, np.int32),
        }
        return predict.make_request(sig.TRANSLATE_BYTES, inputs), (
            "Task size 9 is larger than maximum input batch size 8"
        )
    if kind == "legacy clusters":
        return predict.make_request(sig.CLUSTERS, {}), "must have at least one input tensor"
    if kind == "unknown signature":
        inputs = {sig.IMAGE: image, sig.CLUSTER_ID: ids}
        return predict.make_request("translate", inputs), (
            'Serving signature name: "translate" not found'
        )
    if kind == "no rows":
        return predict.make_request(sig.CLUSTERS_BATCHED, {}), "Missing but required: {rows}"
    raise AssertionError(kind)


MALFORMED = [
    "missing input",
    "extra input",
    "unequal rows",
    "scalars",
    "unparseable tensor",
    "unknown output",
    "too many rows",
    "legacy clusters",
    "unknown signature",
    "no rows",
]


def test_load_4_clients_x_250_requests_mixed_sizes_10_percent_malformed(base, loaded, tmp_path):
    config = tmp_path / "batching.config"
    config.write_text(LOAD_CONFIG)
    params = dev_server.BatchingParameters.from_file(str(config))
    # Inputs and their unbatched answers (each image into every cluster).
    pngs = []  # (PNG bytes, [expected uint8 [S,S,3] per cluster])
    for i, (h, w) in enumerate(BYTES_SIZES * 3):
        png = common.png_bytes(_images(1, h, w, seed=100 + i)[0])
        out = [
            call_signature(loaded, sig.TRANSLATE_BYTES, image_bytes=[png], cluster_id=[c])
            for c in range(K)
        ]
        pngs.append((png, [common.decode(o[sig.IMAGE_BYTES][0]) for o in out]))
    pixels = []  # (uint8 [S,S,3], [expected per cluster]): serving_default gets S x S only
    for i in range(4):
        image = _images(1, seed=200 + i)[0]
        out = [
            call_signature(loaded, sig.SERVING_DEFAULT, image=image[None], cluster_id=[c])
            for c in range(K)
        ]
        pixels.append((image, [o[sig.IMAGE][0] for o in out]))
    table = call_signature(loaded, sig.CLUSTERS)

    server, port = dev_server.serve(base, port=0, batching=params)
    counts = {"good": 0, "good_correct": 0, "bad": 0, "bad_invalid_argument": 0}
    failures: list[str] = []
    lock = threading.Lock()

    def client(t: int) -> None:
        channel, stub = _stub(port)
        local_rng = np.random.default_rng(t)
        try:
            for i in range(REQUESTS):
                g = t * REQUESTS + i
                if g % 10 == 0:  # 10 % malformed
                    kind = MALFORMED[(g // 10) % len(MALFORMED)]
                    request, text = _malformed(kind, pngs[g % len(pngs)][0], pixels[0][0][None])
                    try:
                        stub.Predict(request, timeout=60)
                        ok, why = False, f"{kind}: answered"
                    except grpc.RpcError as e:
                        ok = e.code() == grpc.StatusCode.INVALID_ARGUMENT and text in e.details()
                        why = f"{kind}: {e.code().name}: {e.details()}"
                    with lock:
                        counts["bad"] += 1
                        counts["bad_invalid_argument"] += ok
                        failures.extend([] if ok else [why])
                    continue
                n = int(local_rng.integers(1, 4))
                ids = local_rng.integers(0, K, n).astype(np.int32)
                choice = local_rng.random()
                try:
                    if choice < 0.5:  # encoded images of mixed sizes (also within a request)
                        picks = local_rng.integers(0, len(pngs), n)
                        response = stub.Predict(
                            _translate_bytes([pngs[p][0] for p in picks], ids), timeout=60
                        )
                        out = predict.parse_response(response)[sig.IMAGE_BYTES]
                        ok = len(out) == n and all(
                            _close(common.decode(b), pngs[p][1][c])
                            for b, p, c in zip(out, picks, ids, strict=True)
                        )
                    elif choice < 0.8:  # decoded pixels, S x S as the docs ask under batching
                        picks = local_rng.integers(0, len(pixels), n)
                        images = np.stack([pixels[p][0] for p in picks])
                        response = stub.Predict(_serving_default(images, ids), timeout=60)
                        out = predict.parse_response(response)[sig.IMAGE]
                        ok = len(out) == n and all(
                            _close(o, pixels[p][1][c])
                            for o, p, c in zip(out, picks, ids, strict=True)
                        )
                    else:  # the cluster list, n rows
                        request = predict.make_request(
                            sig.CLUSTERS_BATCHED, {sig.ROWS: np.arange(n, dtype=np.int32)}
                        )
                        out = predict.parse_response(stub.Predict(request, timeout=60))
                        ok = all(
                            out[key].shape == (n, K)
                            and all(list(row) == list(table[key]) for row in out[key])
                            for key in (sig.CLUSTER_ID, sig.SIZE, sig.NAME)
                        )
                    why = f"request {g}: wrong answer"
                except grpc.RpcError as e:
                    ok, why = False, f"request {g}: {e.code().name}: {e.details()}"
                with lock:
                    counts["good"] += 1
                    counts["good_correct"] += ok
                    failures.extend([] if ok else [why])
        finally:
            channel.close()

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(t,)) for t in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        # Still serving.
        channel, stub = _stub(port)
        with channel:
            alive = stub.Predict(_translate_bytes([pngs[1][0]], [3]), timeout=60)
        stats = dict(server.batcher.stats)
    finally:
        server.stop(None)
    print(f"\nload: {counts} in {elapsed:.1f} s; batches: {stats}")
    assert not failures, failures[:10]
    assert counts == {
        "good": 900,
        "good_correct": 900,
        "bad": 100,
        "bad_invalid_argument": 100,
    }
    (png,) = predict.parse_response(alive)[sig.IMAGE_BYTES]
    assert _close(common.decode(png), pngs[1][1][3])
    # Requests were really merged, padded to allowed sizes, and no batch ever failed.
    for label in (sig.TRANSLATE_BYTES, sig.SERVING_DEFAULT):
        assert stats[label].multi_request_batches > 0, stats
    assert sum(s.padding_rows for s in stats.values()) > 0
    assert not any(s.failed_batches for s in stats.values()), stats
    assert sum(s.requests for s in stats.values()) == 900 + 1  # good ones + the last
