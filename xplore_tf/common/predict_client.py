"""TF Serving's Predict API from numpy: TensorProtos built by hand, a client for one model.

`ServingClient` calls a model served by `tensorflow_model_server` (or
`xplore_tf.testing.dev_server`) over gRPC with TF Serving's own `PredictionServiceStub`:
`predict(signature, {name: array})` -> {name: array}, the model's signature names (from
`GetModelMetadata`), its cluster list, and translation of encoded images. Requests are
TensorProtos built from numpy arrays (`make_request`) and responses parsed back the same way
(`parse_response`); no TensorFlow op runs. gRPC failures are `ServingError` ("CODE: details").
Used by the command-line client (`serving/client.py`) and the explore page's `--server`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from xplore_tf.common import pixels as common
from xplore_tf.common import signatures as sig

MAX_MESSAGE_BYTES = sig.MAX_MESSAGE_BYTES  # the dev server's too

_NUMPY_TO_DTYPE = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.int8): types_pb2.DT_INT8,
    np.dtype(np.int16): types_pb2.DT_INT16,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
}
_DTYPE_TO_NUMPY = {v: k for k, v in _NUMPY_TO_DTYPE.items()}
# Which repeated field of TensorProto holds the values of each dtype when tensor_content
# is empty (TF Serving answers with these typed fields).
_VALUE_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


class ServingError(RuntimeError):
    """A failed RPC, readable in one line: `CODE: details`."""

    def __init__(self, code: str, details: str):
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> ServingError:
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        name = code.name if code is not None else "UNKNOWN"
        return cls(name, " ".join((details or "").split()))


# ---------------------------------------------------------------------- TensorProtos
def make_tensor_proto(value) -> tensor_pb2.TensorProto:
    """A numpy array (or nested list) -> TensorProto, without TensorFlow ops.

    bytes/str arrays become DT_STRING (`string_val`); numbers are stored little-endian in
    `tensor_content`, as TensorFlow does.
    """
    array = np.asarray(value)
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in array.shape]
        )
    )
    if array.dtype.kind in ("S", "U", "O"):
        proto.dtype = types_pb2.DT_STRING
        for item in array.reshape(-1):
            if isinstance(item, str):
                item = item.encode("utf-8")
            if not isinstance(item, bytes):
                raise TypeError(f"string tensors hold bytes or str, got {type(item).__name__}")
            proto.string_val.append(item)
        return proto
    if array.dtype not in _NUMPY_TO_DTYPE:
        raise TypeError(f"unsupported dtype {array.dtype} for a TensorProto")
    proto.dtype = _NUMPY_TO_DTYPE[array.dtype]
    proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return proto


def make_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """TensorProto -> numpy array, from `tensor_content` or the typed value fields.

    DT_STRING gives an object array of bytes. As in TensorFlow, a typed field shorter than
    the tensor repeats its last value (a single value fills the tensor).
    """
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if proto.dtype == types_pb2.DT_STRING:
        values = list(proto.string_val)
        if len(values) not in (count, 1) and count:
            raise ValueError(f"string tensor of shape {shape} holds {len(values)} values")
        out = np.empty(count, dtype=object)
        out[:] = values if len(values) == count else values * count
        return out.reshape(shape)
    if proto.dtype not in _DTYPE_TO_NUMPY:
        raise TypeError(f"unsupported TensorProto dtype {types_pb2.DataType.Name(proto.dtype)}")
    dtype = _DTYPE_TO_NUMPY[proto.dtype]
    if proto.tensor_content:
        flat = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        if flat.size != count:
            raise ValueError(f"tensor_content holds {flat.size} values for shape {shape}")
        return flat.astype(dtype).reshape(shape)
    values = getattr(proto, _VALUE_FIELD[proto.dtype])
    if proto.dtype == types_pb2.DT_HALF:
        flat = np.asarray(values, np.uint16).view(np.float16)
    else:
        flat = np.asarray(values).astype(dtype)
    if flat.size > count:
        raise ValueError(f"{flat.size} values for shape {shape}")
    if flat.size < count:
        fill = flat[-1] if flat.size else dtype.type(0)
        flat = np.concatenate([flat, np.full(count - flat.size, fill, dtype)])
    return flat.reshape(shape)


def make_request(
    signature_name: str,
    inputs: Mapping[str, object],
    *,
    model: str = sig.DEFAULT_MODEL_NAME,
    version: int | None = None,
    output_filter: Sequence[str] = (),
) -> predict_pb2.PredictRequest:
    """A PredictRequest for `model` (latest version unless `version`) and one signature."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def parse_response(response: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    """{output key: numpy array} of a PredictResponse."""
    return {key: make_ndarray(proto) for key, proto in response.outputs.items()}


def _signature_missing(error: ServingError, signature_name: str) -> bool:
    """Whether a failed Predict says the model has no such signature.

    TF Serving's gRPC Predict answers FAILED_PRECONDITION `Serving signature key "x" not
    found.`; its REST path and xplore_tf.testing.dev_server INVALID_ARGUMENT `Serving signature name:
    "x" not found in signature def`.
    """
    return (
        error.code in ("FAILED_PRECONDITION", "INVALID_ARGUMENT", "NOT_FOUND")
        and f'"{signature_name}"' in error.details
        and "not found" in error.details
    )


# ---------------------------------------------------------------------- the client
class ServingClient:
    """Predict calls against one model of a TF Serving (or xplore_tf.testing.dev_server) endpoint."""

    def __init__(
        self,
        server: str,
        model: str = sig.DEFAULT_MODEL_NAME,
        *,
        version: int | None = None,
        timeout: float = 30.0,
        max_batch: int = 16,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if not timeout > 0:
            raise ValueError(f"--timeout must be > 0 seconds, got {timeout}")
        self.model = model
        self.version = version
        self.timeout = timeout
        self.max_batch = max_batch
        self.channel = grpc.insecure_channel(
            server,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def predict(self, signature_name: str, inputs: Mapping[str, object]) -> dict[str, np.ndarray]:
        """One Predict RPC; gRPC failures become ServingError (a missing beyond-clusters
        signature says so in its details)."""
        request = make_request(signature_name, inputs, model=self.model, version=self.version)
        try:
            response = self.stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as e:
            error = ServingError.from_rpc(e)
            if signature_name in sig.BEYOND_SIGNATURES and _signature_missing(
                error, signature_name
            ):
                raise ServingError(
                    error.code,
                    f"the served model has no {signature_name} signature: it was exported "
                    "before it existed or without its clustering extractor (see its "
                    "assets.extra/xplore_tf.json, beyond_clusters_missing); export it again",
                ) from None
            raise error from None
        return parse_response(response)

    def signature_names(self) -> set[str]:
        """The served model's signature names (GetModelMetadata's signature_def)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model
        if self.version is not None:
            request.model_spec.version.value = self.version
        request.metadata_field.append("signature_def")
        try:
            response = self.stub.GetModelMetadata(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingError.from_rpc(e) from None
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return set(signature_map.signature_def)

    def clusters(self) -> common.ClusterInfo:
        """The model's cluster ids, sizes and names.

        Asks `clusters_batched` (one row, which works with and without TF Serving's
        --enable_batching); an export made before that signature existed is asked through
        the input-less `clusters`, which only a server without batching answers.
        """
        try:
            outputs = self.predict(sig.CLUSTERS_BATCHED, {sig.ROWS: np.zeros(1, np.int32)})
        except ServingError as e:
            if not _signature_missing(e, sig.CLUSTERS_BATCHED):
                raise
        else:
            return common.ClusterInfo.from_outputs({k: v[0] for k, v in outputs.items()})
        try:
            return common.ClusterInfo.from_outputs(self.predict(sig.CLUSTERS, {}))
        except ServingError as e:
            if "must have at least one input tensor" not in e.details:
                raise
            raise ServingError(
                e.code,
                f"{e.details} (this export has no {sig.CLUSTERS_BATCHED} signature, and the "
                "server batches: re-export the model, pass a numeric cluster id, or ask a "
                "server without --enable_batching)",
            ) from None

    def translate_bytes(self, encoded: Sequence[bytes], cluster_ids: Sequence[int]) -> list[bytes]:
        """Encoded images into clusters -> PNG bytes, in requests of at most max_batch."""
        if len(encoded) != len(cluster_ids):
            raise ValueError(f"{len(encoded)} images but {len(cluster_ids)} cluster ids")
        out: list[bytes] = []
        for chunk in common.batches(encoded, self.max_batch):
            data = np.empty(len(encoded[chunk]), dtype=object)
            data[:] = list(encoded[chunk])
            outputs = self.predict(
                sig.TRANSLATE_BYTES,
                {
                    sig.IMAGE_BYTES: data,
                    sig.CLUSTER_ID: np.asarray(cluster_ids[chunk], np.int32),
                },
            )
            out.extend(bytes(b) for b in outputs[sig.IMAGE_BYTES])
        return out

    def translate(self, images: np.ndarray, cluster_ids: Sequence[int]) -> np.ndarray:
        """uint8 [N,H,W,3] into clusters [N] -> uint8 [N,S,S,3] (`serving_default`)."""
        images = np.asarray(images)
        outs = []
        for start in range(0, len(images), self.max_batch):
            chunk = slice(start, start + self.max_batch)
            outputs = self.predict(
                sig.SERVING_DEFAULT,
                {
                    sig.IMAGE: images[chunk],
                    sig.CLUSTER_ID: np.asarray(cluster_ids[chunk], np.int32),
                },
            )
            outs.append(outputs[sig.IMAGE])
        return np.concatenate(outs) if outs else np.zeros((0, 0, 0, 3), np.uint8)
