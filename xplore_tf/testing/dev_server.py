"""A small in-process gRPC PredictionService for tests and local development.

    python -m xplore_tf.testing.dev_server --model_base_path=runs/demo/export --port=8500
    python -m xplore_tf.testing.dev_server --model_base_path=runs/demo/export --port=8500 \\
        --enable_batching --batching_parameters_file=serving/batching.config

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

Batching (`--enable_batching`, `serve(batching=BatchingParameters(...))`) reproduces TF
Serving's session-level batching (tensorflow_serving/batching/batching_session.cc over a
SharedBatchScheduler), so tests see its failure modes:

- one queue per signature (and per set of requested outputs); concurrent requests are
  appended to the open batch until `max_batch_size` rows, and a batch runs when full or when
  its first request has waited `batch_timeout_micros`, on one of `num_batch_threads` threads;
- before queueing, each request alone is checked (only it fails, INVALID_ARGUMENT):
  "Batching Run() must have at least one input tensor" (a signature without inputs),
  "... input tensors must have at least one dimension", "... must have equal 0th-dimension
  size", "Task size N is larger than maximum input batch size M"; a full queue
  (`max_enqueued_batches`) is UNAVAILABLE;
- a batch concatenates each input along dimension 0; tensors whose shapes differ beyond
  dimension 0 fail THE WHOLE BATCH with FAILED_PRECONDITION ("Tensors with name '...' from
  different tasks have different shapes and padding is turned off..."), different dtypes
  with INTERNAL ("Tensor concat operation failed: ..."), and any error of the graph run
  (a bad cluster id, an undecodable image) is returned to every request of the batch;
- `allowed_batch_sizes` pads a batch up to the next allowed size with copies of the first
  row of its last request (those output rows are dropped); `pad_variable_length_inputs` pads
  each tensor at the end of every dimension but 0 with its own first element;
- outputs must have a batch dimension of the batch's size (FAILED_PRECONDITION otherwise) and
  are split back per request.
Not emulated: large-batch splitting (`enable_large_batch_splitting`, refused), per-request
RunOptions timeouts, and the bypass of the batcher that some TF Serving versions take for
requests whose `output_filter` picks a subset of the outputs (here they get their own queue).

It keeps serving after every error. `model_spec.version` selects a version (default: the
largest on disk, rescanned on every request, as TF Serving's latest-version policy picks up
new exports); versions load lazily and stay loaded. Not implemented: version labels,
model_config_file, Classify/Regress/MultiInference (UNIMPLEMENTED), REST.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from absl import logging  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from xplore_tf.common import signatures as sig  # noqa: E402

_VERSION = re.compile(r"^[0-9]+$")
MAX_MESSAGE_BYTES = sig.MAX_MESSAGE_BYTES  # the client's too


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
    """Loads one SavedModel version folder with its signatures."""
    import tensorflow as tf

    from xplore_tf import io_utils  # `runs/exp[1]`: TensorFlow globs the path it loads

    loaded = tf.saved_model.load(io_utils.glob_safe(path))
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


def _to_status(error: BaseException) -> Status:
    """Any exception raised while serving -> the Status TF Serving would answer."""
    import tensorflow as tf

    if isinstance(error, Status):
        return error
    if isinstance(error, tf.errors.OpError):
        code = grpc.StatusCode.INTERNAL
        for candidate in grpc.StatusCode:
            if candidate.value[0] == error.error_code:
                code = candidate
        return Status(code, _short(error.message))
    logging.error("internal error while serving", exc_info=error)
    return Status(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


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


def _dtype_enum(array: np.ndarray) -> int:
    """The TensorFlow DataType enum of a numpy array from tf.make_ndarray (0 if none)."""
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    if array.dtype == object or array.dtype.kind in ("S", "U"):
        return types_pb2.DT_STRING
    try:
        return tf.as_dtype(array.dtype).as_datatype_enum
    except TypeError:
        return types_pb2.DT_INVALID


def _parse_inputs(servable: Servable, signature_name: str, request) -> dict[str, np.ndarray]:
    """The request's inputs as numpy arrays; the set of keys must be the signature's.

    As TF Serving, nothing more is checked per request here: dtypes and shapes are checked
    against the signature when the tensors are run (after batching, when batching is on).
    """
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
    arrays = {}
    for key in sorted(specs):
        try:
            arrays[key] = tf.make_ndarray(request.inputs[key])
        except (ValueError, TypeError) as e:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT, f"tensor parsing error: {key}: {e}"
            ) from None
    return arrays


def _check_tensors(servable: Servable, signature_name: str, arrays: Mapping[str, np.ndarray]):
    """numpy inputs -> tf.Tensors, after checking dtype and shape against the signature."""
    import tensorflow as tf

    tensors = {}
    for key, spec in servable.inputs[signature_name].items():
        array = arrays[key]
        dtype = _dtype_enum(array)
        if dtype != spec.dtype.as_datatype_enum:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expects arg '{key}' to be {_dtype_string(spec.dtype.as_datatype_enum)} but "
                f"{_dtype_string(dtype)} is provided",
            )
        if not spec.shape.is_compatible_with(array.shape):
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input '{key}' has shape {list(array.shape)} but signature "
                f"'{signature_name}' expects {spec.shape}",
            )
        tensors[key] = tf.constant(array, dtype=spec.dtype)
    return tensors


# ---------------------------------------------------------------------- batching
# BatchingParameters of tensorflow_serving/servables/tensorflow/session_bundle_config.proto
# (not in tensorflow-serving-api's wheel): built here so that --batching_parameters_file is
# parsed by protobuf's own text format, as tensorflow_model_server parses it. Field numbers
# do not matter to the text format.
_WRAPPED_FIELDS = (
    ("max_batch_size", "Int64Value"),
    ("batch_timeout_micros", "Int64Value"),
    ("max_enqueued_batches", "Int64Value"),
    ("num_batch_threads", "Int64Value"),
    ("thread_pool_name", "StringValue"),
    ("enable_large_batch_splitting", "BoolValue"),
    ("max_execution_batch_size", "Int64Value"),
)


@functools.lru_cache(maxsize=1)
def _batching_parameters_message():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="serving/dev_server/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[wrappers.name],
    )
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, (name, wrapper) in enumerate(_WRAPPED_FIELDS, start=1):
        message.field.add(
            name=name,
            number=number,
            type=field.TYPE_MESSAGE,
            type_name=f".google.protobuf.{wrapper}",
            label=field.LABEL_OPTIONAL,
        )
    message.field.add(
        name="allowed_batch_sizes", number=20, type=field.TYPE_INT64, label=field.LABEL_REPEATED
    )
    message.field.add(
        name="pad_variable_length_inputs",
        number=21,
        type=field.TYPE_BOOL,
        label=field.LABEL_OPTIONAL,
    )
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's BatchingParameters (`--batching_parameters_file`) for the stand-in.

    Defaults are TF Serving's for an omitted field (SharedBatchScheduler's QueueOptions):
    1000 rows per batch, no timeout, 10 enqueued batches, one batch thread per CPU.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        object.__setattr__(self, "allowed_batch_sizes", tuple(self.allowed_batch_sizes))
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(s < 1 for s in sizes) or any(
                b <= a for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ):
                raise ValueError(f"allowed_batch_sizes must increase and be >= 1: {list(sizes)}")
            if sizes[-1] != self.max_batch_size:  # tensorflow_model_server's own check
                raise ValueError(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry "
                    f"was {sizes[-1]}; expected {self.max_batch_size}"
                )

    @classmethod
    def parse(cls, text: str, source: str = "batching parameters") -> BatchingParameters:
        """Parses the text format of TF Serving's BatchingParameters; ValueError if bad."""
        from google.protobuf import text_format

        try:
            proto = text_format.Parse(text, _batching_parameters_message()())
        except text_format.ParseError as e:
            raise ValueError(f"{source}: {e}") from None
        if proto.HasField("enable_large_batch_splitting") and (
            proto.enable_large_batch_splitting.value
        ):
            raise ValueError(
                f"{source}: enable_large_batch_splitting is not emulated by the dev server"
            )
        if proto.HasField("max_execution_batch_size"):
            raise ValueError(f"{source}: max_execution_batch_size is not emulated")
        values = {
            name: getattr(proto, name).value
            for name in ("max_batch_size", "batch_timeout_micros")
            + ("max_enqueued_batches", "num_batch_threads")
            if proto.HasField(name)
        }
        try:
            return cls(
                **values,
                allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
                pad_variable_length_inputs=proto.pad_variable_length_inputs,
            )
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def from_file(cls, path: str) -> BatchingParameters:
        """Reads a `--batching_parameters_file`."""
        with open(path, encoding="utf-8") as f:
            return cls.parse(f.read(), source=path)


def batch_size_of(inputs: Mapping[str, np.ndarray]) -> int:
    """Rows of one request, checked as TF Serving checks it before queueing it.

    Every input needs a dimension 0 and all of them the same size; a request without any
    input cannot be batched. Raises INVALID_ARGUMENT (this request only) otherwise.
    """
    if not inputs:
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT, "Batching Run() must have at least one input tensor"
        )
    size = None
    for array in inputs.values():
        if array.ndim == 0:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Batching Run() input tensors must have at least one dimension",
            )
        if size is None:
            size = int(array.shape[0])
        elif array.shape[0] != size:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Batching Run() input tensors must have equal 0th-dimension size",
            )
    return size


def _round_up(allowed_batch_sizes: Sequence[int], rows: int) -> int:
    """The smallest allowed batch size >= rows (rows itself without allowed sizes)."""
    return next((s for s in allowed_batch_sizes if s >= rows), rows)


def _pad_to(array: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    """pad_variable_length_inputs: grows every dimension but 0 to `dims`, at the end, with
    the tensor's first element."""
    if tuple(array.shape[1:]) == tuple(dims[1:]):
        return array
    if array.size == 0:
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT, "Got empty tensor in batch of non-empty tensors."
        )
    if not 1 <= array.ndim <= 6:
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT, "Only tensors with rank from 1 to 6 can be padded."
        )
    out = np.full((array.shape[0], *dims[1:]), array.flat[0], dtype=array.dtype)
    out[tuple(slice(0, d) for d in array.shape)] = array
    return out


def merge_batch(
    tasks: Sequence[Mapping[str, np.ndarray]],
    names: Mapping[str, str] | None = None,
    *,
    allowed_batch_sizes: Sequence[int] = (),
    pad_variable_length_inputs: bool = False,
) -> tuple[dict[str, np.ndarray], int]:
    """Concatenates the inputs of a batch's requests along dimension 0, as TF Serving.

    `tasks` are the requests' {input key: array} in arrival order, each already checked by
    `batch_size_of`; `names` maps input keys to graph tensor names (for messages). Returns the
    merged inputs and the number of padding rows appended (`allowed_batch_sizes`). Raises the
    Status that fails the WHOLE batch: FAILED_PRECONDITION when an input's shapes differ
    beyond dimension 0 (padding off), INTERNAL when its dtypes differ.
    """
    names = names or {}
    sizes = [batch_size_of(task) for task in tasks]
    rows = sum(sizes)
    padding = _round_up(allowed_batch_sizes, rows) - rows if rows else 0
    keys = sorted(tasks[0])
    if any(sorted(task) != keys for task in tasks):
        raise Status(
            grpc.StatusCode.INTERNAL, "One or more tasks does not conform to batch signature"
        )
    max_dims = {}
    if pad_variable_length_inputs:
        for key in keys:
            ranks = {task[key].ndim for task in tasks}
            if len(ranks) > 1:
                raise Status(
                    grpc.StatusCode.INTERNAL,
                    f"Tensor concat operation failed: tensors named '{names.get(key, key)}' "
                    f"have different ranks {sorted(ranks)}",
                )
            max_dims[key] = np.max([task[key].shape for task in tasks], axis=0)
    # Padding rows repeat the first row of the last request (that has rows).
    donor = max((i for i, size in enumerate(sizes) if size), default=len(tasks) - 1)
    pieces: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    for i, task in enumerate(tasks):
        for key in keys:
            array = task[key]
            if pad_variable_length_inputs:
                array = _pad_to(array, max_dims[key])
            elif i and array.shape[1:] != pieces[key][0].shape[1:]:
                # TF Serving's text, words run together as in its source.
                raise Status(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Tensors with name '{names.get(key, key)}' from different tasks have "
                    "different shapes and padding is turned off.Set pad_variable_length_inputs "
                    "to true, or ensure that all tensors with the same namehave equal "
                    "dimensions starting with the first dim.",
                )
            pieces[key].append(array)
    merged = {}
    for key in sorted(keys, key=lambda k: names.get(k, k)):
        parts = pieces[key]
        if padding:
            parts = [*parts, *[parts[donor][:1]] * padding]
        dtypes = [_dtype_enum(p) for p in parts]
        odd = next((d for d in dtypes if d != dtypes[0]), None)
        if odd is not None:
            raise Status(
                grpc.StatusCode.INTERNAL,
                "Tensor concat operation failed: INVALID_ARGUMENT: Cannot concatenate tensors "
                f"that have different data types. Got {_dtype_string(dtypes[0])} and "
                f"{_dtype_string(odd)}.",
            )
        merged[key] = np.concatenate(parts, axis=0)
    return merged, padding


def split_outputs(
    outputs: Mapping[str, np.ndarray], sizes: Sequence[int], padding: int = 0
) -> list[dict[str, np.ndarray]]:
    """A batch's outputs -> each request's rows (padding rows dropped), as TF Serving.

    Every output needs dimension 0 of the batch's size, else FAILED_PRECONDITION (the whole
    batch): a signature whose outputs do not follow its inputs' rows cannot be batched.
    """
    total = sum(sizes) + padding
    for array in outputs.values():
        if array.ndim == 0:
            raise Status(
                grpc.StatusCode.FAILED_PRECONDITION, "Batched output tensor has 0 dimensions"
            )
        if array.shape[0] != total:
            raise Status(
                grpc.StatusCode.FAILED_PRECONDITION,
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                "dimension sizes of the input tensors",
            )
    bounds = np.cumsum([0, *sizes])
    return [
        {key: array[bounds[i] : bounds[i + 1]] for key, array in outputs.items()}
        for i in range(len(sizes))
    ]


@dataclasses.dataclass
class BatchStats:
    """What a Batcher did for one signature (for tests and logs)."""

    batches: int = 0
    requests: int = 0
    rows: int = 0
    padding_rows: int = 0
    multi_request_batches: int = 0  # batches that merged requests of several calls
    largest_batch_requests: int = 0
    failed_batches: int = 0


class _Task:
    """One request waiting in a batch."""

    def __init__(self, inputs: Mapping[str, np.ndarray], size: int):
        self.inputs = inputs
        self.size = size
        self.done = threading.Event()
        self.status: Status | None = None
        self.outputs: dict[str, np.ndarray] | None = None


class _Batch:
    def __init__(self, start: float):
        self.tasks: list[_Task] = []
        self.size = 0  # rows
        self.start = start  # arrival of the first request
        self.closed = False


@dataclasses.dataclass
class _Queue:
    label: str
    names: Mapping[str, str]  # input key -> graph tensor name
    run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    batches: collections.deque = dataclasses.field(default_factory=collections.deque)


class Batcher:
    """TF Serving's batching session: a queue per signature, batch threads shared by all.

    `run()` blocks the calling (gRPC) thread until its request's batch has run; batch
    threads take a batch when it is full or its first request has waited the timeout,
    round-robin over the queues, merge, run, split and wake every request of the batch.
    """

    def __init__(self, params: BatchingParameters):
        self.params = params
        self.stats: dict[str, BatchStats] = collections.defaultdict(BatchStats)
        self._cv = threading.Condition()
        self._queues: dict[tuple, _Queue] = {}
        self._next = 0
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"dev_server-batch-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(
        self,
        key: tuple,
        inputs: Mapping[str, np.ndarray],
        run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
        *,
        names: Mapping[str, str] | None = None,
        label: str = "",
    ) -> dict[str, np.ndarray]:
        """One request's outputs, computed in a batch with concurrent requests of `key`.

        `run` computes a merged batch's outputs; a queue keeps the `run` of the request that
        created it (every request of one key runs the same signature of the same version).
        `names` maps input keys to graph tensor names for messages. Raises Status: this
        request's own (checked before queueing) or its whole batch's.
        """
        size = batch_size_of(inputs)
        limit = self.params.max_batch_size
        if size > limit:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Task size {size} is larger than maximum input batch size {limit}",
            )
        task = _Task(inputs, size)
        with self._cv:
            if self._stopped:
                raise Status(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(label or str(key), dict(names or {}), run)
            batch = queue.batches[-1] if queue.batches else None
            if batch is None or batch.closed or batch.size + size > limit:
                if len(queue.batches) >= self.params.max_enqueued_batches:
                    raise Status(
                        grpc.StatusCode.UNAVAILABLE,
                        "The batch scheduling queue to which this task was submitted is full",
                    )
                if batch is not None:
                    batch.closed = True
                batch = _Batch(time.monotonic())
                queue.batches.append(batch)
            batch.tasks.append(task)
            batch.size += size
            self._cv.notify_all()
        task.done.wait()
        if task.status is not None:
            raise task.status
        return task.outputs

    def _ready(self, batch: _Batch, now: float) -> bool:
        timeout = self.params.batch_timeout_micros / 1e6
        return bool(batch.tasks) and (
            batch.closed or batch.size >= self.params.max_batch_size or now - batch.start >= timeout
        )

    def _take_locked(self) -> tuple[_Queue, _Batch] | None:
        queues = list(self._queues.values())
        now = time.monotonic()
        for j in range(len(queues)):
            queue = queues[(self._next + j) % len(queues)]
            if queue.batches and self._ready(queue.batches[0], now):
                self._next = (self._next + j + 1) % len(queues)
                batch = queue.batches.popleft()
                batch.closed = True
                return queue, batch
        return None

    def _wait_locked(self) -> float | None:
        """Seconds until the earliest open batch times out (None: nothing is waiting)."""
        timeout = self.params.batch_timeout_micros / 1e6
        starts = [q.batches[0].start for q in self._queues.values() if q.batches]
        if not starts:
            return None
        return max(0.0, min(starts) + timeout - time.monotonic())

    def _work(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._stopped:
                        return
                    taken = self._take_locked()
                    if taken is not None:
                        break
                    self._cv.wait(self._wait_locked())
            self._process(*taken)

    def _process(self, queue: _Queue, batch: _Batch) -> None:
        tasks = batch.tasks
        sizes = [task.size for task in tasks]
        padding = 0
        try:
            merged, padding = merge_batch(
                [task.inputs for task in tasks],
                queue.names,
                allowed_batch_sizes=self.params.allowed_batch_sizes,
                pad_variable_length_inputs=self.params.pad_variable_length_inputs,
            )
            results = split_outputs(queue.run(merged), sizes, padding)
            status = None
        except Exception as e:  # every request of the batch gets the batch's status
            status, results = _to_status(e), None
            logging.info(
                "batch of %d requests to %s failed: %s: %s",
                len(tasks),
                queue.label,
                status.code.name,
                status.message,
            )
        with self._cv:
            stats = self.stats[queue.label]
            stats.batches += 1
            stats.requests += len(tasks)
            stats.rows += sum(sizes)
            stats.padding_rows += padding
            stats.multi_request_batches += len(tasks) > 1
            stats.largest_batch_requests = max(stats.largest_batch_requests, len(tasks))
            stats.failed_batches += status is not None
        for i, task in enumerate(tasks):
            if status is not None:
                task.status = Status(status.code, status.message)
            else:
                task.outputs = results[i]
            task.done.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Fails queued requests with UNAVAILABLE and ends the batch threads."""
        with self._cv:
            self._stopped = True
            pending = [t for q in self._queues.values() for b in q.batches for t in b.tasks]
            for queue in self._queues.values():
                queue.batches.clear()
            self._cv.notify_all()
        for task in pending:
            task.status = Status(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            task.done.set()
        for thread in self._threads:
            thread.join(timeout)


# ---------------------------------------------------------------------- the service
class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over a ModelRepository (batched when `batcher`)."""

    def __init__(self, repository: ModelRepository, batcher: Batcher | None = None):
        self.repository = repository
        self.batcher = batcher

    def _servable_and_signature(self, request) -> tuple[Servable, str]:
        name, version, signature_name = _model_spec(request)
        servable = self.repository.get(name, version)
        if signature_name not in servable.functions:
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'Serving signature name: "{signature_name}" not found in signature def',
            )
        return servable, signature_name

    @staticmethod
    def _run(servable: Servable, signature_name: str, keys: Sequence[str], arrays) -> dict:
        """Runs a signature on numpy inputs (one request, or a merged batch)."""
        tensors = _check_tensors(servable, signature_name, arrays)
        results = servable.functions[signature_name](**tensors)
        return {key: results[key].numpy() for key in keys}

    def _predict(self, request) -> predict_pb2.PredictResponse:
        import tensorflow as tf

        servable, signature_name = self._servable_and_signature(request)
        outputs = list(servable.functions[signature_name].structured_outputs)
        for alias in request.output_filter:
            if alias not in outputs:
                raise Status(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{','.join(sorted(outputs))}}}.",
                )
        if len(set(request.output_filter)) < len(request.output_filter):
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"duplicate output tensor alias in output_filter: {list(request.output_filter)}",
            )
        keys = list(request.output_filter) or outputs
        arrays = _parse_inputs(servable, signature_name, request)
        run = functools.partial(self._run, servable, signature_name, keys)
        if self.batcher is None:
            results = run(arrays)
        else:
            signature_def = servable.signature_defs.get(signature_name)
            names = {k: v.name for k, v in signature_def.inputs.items()} if signature_def else {}
            results = self.batcher.run(
                (servable.name, servable.version, signature_name, tuple(keys)),
                arrays,
                run,
                names=names,
                label=signature_name,
            )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for key in keys:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(results[key]))
        return response

    def _call(self, method, request, context):
        try:
            return method(request)
        except Exception as e:  # the server must survive any request
            status = _to_status(e)
        logging.info("%s: %s: %s", type(request).__name__, status.code.name, status.message)
        context.abort(status.code, status.message)

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


class DevServer:
    """The running gRPC server (`stop(grace)`, `wait_for_termination()`) and its batcher."""

    def __init__(self, server: grpc.Server, batcher: Batcher | None):
        self.server = server
        self.batcher = batcher

    def stop(self, grace: float | None):
        """Stops serving, then the batch threads; returns gRPC's stop event."""
        event = self.server.stop(grace)
        if self.batcher is not None:
            event.wait()
            self.batcher.stop()
        return event

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self.server.wait_for_termination(timeout)


def serve(
    model_base_path: str,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    max_workers: int | None = None,
    preload: bool = True,
    batching: BatchingParameters | None = None,
) -> tuple[DevServer, int]:
    """Starts the server; returns it (call `.stop(grace)`) and the bound port.

    `port=0` picks a free port. `preload` loads the latest version of every model now, so
    the first request does not pay for loading. `batching` batches concurrent requests as
    `tensorflow_model_server --enable_batching` does. `max_workers` (RPC threads) defaults
    to 4, or with batching to twice max_batch_size (8 to 64): a request holds its thread
    while it waits for its batch, and TF Serving advises about 2 x max_batch_size clients.
    """
    repository = ModelRepository(model_base_path)
    if preload:
        for model in repository.models():
            repository.get(model)
    if max_workers is None:
        max_workers = 4 if batching is None else min(64, max(8, 2 * batching.max_batch_size))
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # gRPC's Python servers share a port by default (SO_REUSEPORT): a second server
            # on it would take half the clients. One server per port, as TF Serving.
            ("grpc.so_reuseport", 0),
        ],
    )
    batcher = Batcher(batching) if batching is not None else None
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(repository, batcher), server
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises where older releases returned 0
        bound = 0
    if not bound:
        if batcher is not None:
            batcher.stop()
        raise OSError(f"cannot listen on {host}:{port}: the port is in use (or not this host's)")
    server.start()
    return DevServer(server, batcher), bound


def main(argv: list[str]) -> None:
    from absl import flags

    f = flags.FLAGS
    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {argv[1:]}")
    if not f.model_base_path:
        raise SystemExit("--model_base_path is required (the folder holding <model>/<version>/)")
    if f.batching_parameters_file and not f.enable_batching:
        raise SystemExit("--batching_parameters_file needs --enable_batching")
    batching = None
    if f.enable_batching:
        try:
            batching = (
                BatchingParameters.from_file(f.batching_parameters_file)
                if f.batching_parameters_file
                else BatchingParameters()
            )
        except (OSError, ValueError) as e:
            raise SystemExit(f"--batching_parameters_file: {e}") from None
    try:
        server, port = serve(
            f.model_base_path,
            port=f.port,
            host=f.host,
            max_workers=f.max_workers,
            batching=batching,
        )
    except OSError as e:
        raise SystemExit(f"xplore_tf.testing.dev_server: error: {e}") from None
    models = ModelRepository(f.model_base_path).models()
    print(
        f"xplore_tf.testing.dev_server (a development stand-in for tensorflow_model_server) on "
        f"{f.host}:{port}: models {models}; batching: {batching or 'off'}",
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
    flags.DEFINE_integer(
        "max_workers", None, "Threads answering RPCs (default 4; with batching 2 x batch size)."
    )
    flags.DEFINE_boolean(
        "enable_batching",
        False,
        "Batch concurrent requests per signature as tensorflow_model_server --enable_batching.",
    )
    flags.DEFINE_string(
        "batching_parameters_file",
        None,
        "TF Serving BatchingParameters text file (e.g. serving/batching.config); "
        "needs --enable_batching. Default: TF Serving's defaults.",
    )


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
