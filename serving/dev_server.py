"""A small in-process gRPC PredictionService for tests and local development.

    python -m serving.dev_server --model_base_path=runs/demo/export --port=8500

NOT the production server: production serving is `tensorflow_model_server` (or the
`tensorflow/serving` Docker image, see serving/README.md), which cannot be installed from
PyPI or Debian. This stand-in loads the same SavedModels from the same layout,
`<model_base_path>/<model_name>/<version>/`, answers the same `PredictionService.Predict`
and `GetModelMetadata` RPCs, and maps errors to the status codes TF Serving uses, so the
client and the exported signatures are tested over real gRPC on 127.0.0.1:

    unknown model or version                    NOT_FOUND ("Servable not found for request: ...")
    unknown signature                           INVALID_ARGUMENT ("Serving signature name: ... not found")
    missing/extra inputs, wrong dtype or shape  INVALID_ARGUMENT
    InvalidArgumentError raised by the graph    INVALID_ARGUMENT (bad cluster id, undecodable image)
    any other TensorFlow error                  its own code; anything else INTERNAL

(For an unknown signature TF Serving is not uniform: its REST and metadata paths answer
INVALID_ARGUMENT `Serving signature name: "x" not found in signature def`, which this server
follows, while its gRPC Predict on the classic session path answers FAILED_PRECONDITION
`Serving signature key "x" not found.` The client prints either as one line.)

It keeps serving after every error. `model_spec.version` selects a version (default: the
largest on disk, rescanned on every request, as TF Serving's latest-version policy picks up
new exports); versions load lazily and stay loaded. Not implemented: version labels,
model_config_file, batching, Classify/Regress/MultiInference (UNIMPLEMENTED), REST.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
from absl import logging  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import signatures as sig  # noqa: E402

_VERSION = re.compile(r"^[0-9]+$")
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class Status(Exception):
    """An RPC failure with the gRPC code TF Serving would return."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass
class Servable:
    """One loaded version of a model."""

    name: str
    version: int
    path: str
    loaded: object  # the tf.saved_model.load result (kept alive: it owns the variables)
    functions: dict  # signature name -> ConcreteFunction
    inputs: dict  # signature name -> {input key: tf.TensorSpec}
    signature_defs: dict  # signature name -> SignatureDef proto (for GetModelMetadata)


def _signature_defs(path: str) -> dict:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return dict(proto.meta_graphs[0].signature_def) if proto.meta_graphs else {}


def load_servable(name: str, version: int, path: str) -> Servable:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    functions = dict(loaded.signatures)
    inputs = {key: dict(fn.structured_input_signature[1]) for key, fn in functions.items()}
    return Servable(name, version, path, loaded, functions, inputs, _signature_defs(path))


class ModelRepository:
    """SavedModels under `<base_path>/<model_name>/<version>/`, loaded on first use."""

    def __init__(self, base_path: str):
        if not os.path.isdir(base_path):
            raise FileNotFoundError(f"--model_base_path: {base_path!r} is not a folder")
        self.base_path = base_path
        self._lock = threading.Lock()
        self._servables: dict[tuple[str, int], Servable] = {}

    def models(self) -> list[str]:
        return sorted(
            m for m in os.listdir(self.base_path) if not m.startswith(".") and self.versions(m)
        )

    def versions(self, model: str) -> list[int]:
        folder = os.path.join(self.base_path, model)
        if not model or "/" in model or model.startswith(".") or not os.path.isdir(folder):
            return []
        return sorted(
            int(v)
            for v in os.listdir(folder)
            if _VERSION.match(v) and os.path.isfile(os.path.join(folder, v, "saved_model.pb"))
        )

    def get(self, model: str, version: int | None = None) -> Servable:
        versions = self.versions(model)
        if version is None:
            if not versions:
                raise Status(
                    grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({model})"
                )
            version = versions[-1]
        elif version not in versions:
            raise Status(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({model}, {version})",
            )
        key = (model, version)
        with self._lock:
            if key not in self._servables:
                path = os.path.join(self.base_path, model, str(version))
                logging.info("loading %s version %d from %s", model, version, path)
                self._servables[key] = load_servable(model, version, path)
            return self._servables[key]


def _short(message: str) -> str:
    """The useful part of a TensorFlow error message (no graph node and trace lines)."""
    lines = []
    for line in message.splitlines():
        line = line.strip()
        if (
            not line
            or line == "Graph execution error:"
            or line.startswith(("Detected at node", "<stack traces", "[[{{node"))
        ):
            continue
        lines.append(re.sub(r"\s*\[\[\{\{node .*$", "", line))
    return " ".join(lines) or message.strip()


def _model_spec(request) -> tuple[str, int | None, str]:
    spec = request.model_spec
    if not spec.name:
        raise Status(grpc.StatusCode.INVALID_ARGUMENT, "Missing model_spec.name")
    if spec.WhichOneof("version_choice") == "version_label":
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"version labels are not supported by the dev server: {spec.version_label!r}",
        )
    version = spec.version.value if spec.HasField("version") else None
    return spec.name, version, spec.signature_name or sig.SERVING_DEFAULT


def _dtype_string(enum: int) -> str:
    """TensorFlow's DataTypeString: DT_FLOAT -> "float", DT_UINT8 -> "uint8"."""
    from tensorflow.core.framework import types_pb2

    try:
        return types_pb2.DataType.Name(enum).removeprefix("DT_").lower()
    except ValueError:
        return f"unknown dtype {enum}"


def _input_tensors(servable: Servable, signature_name: str, request) -> dict:
    import tensorflow as tf

    specs = servable.inputs[signature_name]
    sent, expected = set(request.inputs), set(specs)
    if sent != expected:
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}.",
        )
    tensors = {}
    for key, spec in specs.items():
        proto = request.inputs[key]
        if proto.dtype != spec.dtype.as_datatype_enum:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expects arg '{key}' to be {_dtype_string(spec.dtype.as_datatype_enum)} but "
                f"{_dtype_string(proto.dtype)} is provided",
            )
        try:
            array = tf.make_ndarray(proto)
        except (ValueError, TypeError) as e:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT, f"input '{key}' is a malformed TensorProto: {e}"
            ) from None
        if not spec.shape.is_compatible_with(array.shape):
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input '{key}' has shape {list(array.shape)} but signature "
                f"'{signature_name}' expects {spec.shape}",
            )
        tensors[key] = tf.constant(array, dtype=spec.dtype)
    return tensors


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over a ModelRepository."""

    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def _servable_and_signature(self, request) -> tuple[Servable, str]:
        name, version, signature_name = _model_spec(request)
        servable = self.repository.get(name, version)
        if signature_name not in servable.functions:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'Serving signature name: "{signature_name}" not found in signature def',
            )
        return servable, signature_name

    def _predict(self, request) -> predict_pb2.PredictResponse:
        import tensorflow as tf

        servable, signature_name = self._servable_and_signature(request)
        function = servable.functions[signature_name]
        outputs = list(function.structured_outputs)
        for alias in request.output_filter:
            if alias not in outputs:
                raise Status(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{','.join(sorted(outputs))}}}.",
                )
        tensors = _input_tensors(servable, signature_name, request)
        results = function(**tensors)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for key in request.output_filter or outputs:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(results[key].numpy()))
        return response

    def _call(self, method, request, context):
        import tensorflow as tf

        try:
            return method(request)
        except Status as s:
            code, message = s.code, s.message
        except tf.errors.OpError as e:
            code = grpc.StatusCode.INTERNAL
            for candidate in grpc.StatusCode:
                if candidate.value[0] == e.error_code:
                    code = candidate
            message = _short(e.message)
        except Exception as e:  # the server must survive any request
            logging.exception("internal error serving %s", type(request).__name__)
            code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"
        logging.info("%s: %s: %s", type(request).__name__, code.name, message)
        context.abort(code, message)

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        return self._call(self._predict, request, context)

    def _metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        name, version, _ = _model_spec(request)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Metadata field(s) {fields} not supported: request ['signature_def']",
            )
        servable = self.repository.get(name, version)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802 (gRPC method name)
        return self._call(self._metadata, request, context)


def serve(
    model_base_path: str,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    max_workers: int = 4,
    preload: bool = True,
) -> tuple[grpc.Server, int]:
    """Starts the server; returns it (call `.stop(grace)`) and the bound port.

    `port=0` picks a free port. `preload` loads the latest version of every model now, so
    the first request does not pay for loading.
    """
    repository = ModelRepository(model_base_path)
    if preload:
        for model in repository.models():
            repository.get(model)
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(repository), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind {host}:{port}")
    server.start()
    return server, bound


def main(argv: list[str]) -> None:
    from absl import flags

    f = flags.FLAGS
    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {argv[1:]}")
    if not f.model_base_path:
        raise SystemExit("--model_base_path is required (the folder holding <model>/<version>/)")
    server, port = serve(f.model_base_path, port=f.port, host=f.host, max_workers=f.max_workers)
    models = ModelRepository(f.model_base_path).models()
    print(
        f"serving.dev_server (a development stand-in for tensorflow_model_server) on "
        f"{f.host}:{port}: models {models}",
        flush=True,
    )
    server.wait_for_termination()


def _define_flags() -> None:
    """Flags of this dev tool only (not an xplore_tf stage), defined when run as a program."""
    from absl import flags

    flags.DEFINE_string(
        "model_base_path", None, "Folder holding <model_name>/<version>/ SavedModels."
    )
    flags.DEFINE_integer("port", 8500, "gRPC port (0 = any free port). TF Serving: 8500.")
    flags.DEFINE_string(
        "host", "127.0.0.1", "Address to bind; 0.0.0.0 exposes the unauthenticated server."
    )
    flags.DEFINE_integer("max_workers", 4, "Threads answering RPCs.")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
