"""Shared names are pure Python; the TF Serving config files parse."""

from __future__ import annotations

import ast
import os

from tests_support import PROJECT_ROOT

from xplore_tf.common import signatures as sig

SERVING = os.path.join(PROJECT_ROOT, "serving")
SIGNATURES_DIR = os.path.join(PROJECT_ROOT, "xplore_tf", "common")


def test_signatures_module_is_pure_constants():
    with open(os.path.join(SIGNATURES_DIR, "signatures.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert sig.SERVING_DEFAULT == "serving_default"  # TF Serving's default signature key
    assert len(set(sig.SIGNATURES)) == 12 and sig.CLUSTERS_BATCHED in sig.SIGNATURES
    assert sig.SIGNATURES == sig.BASE_SIGNATURES + sig.BEYOND_SIGNATURES
    keys = {
        sig.IMAGE,
        sig.IMAGE_BYTES,
        sig.CLUSTER_ID,
        sig.SIZE,
        sig.NAME,
        sig.ROWS,
        sig.STRENGTH,
        sig.CLUSTER_WEIGHTS,
        sig.SOURCE_CLUSTER,
        sig.REFERENCE_BYTES,
        sig.CONDITION,
        sig.NEAREST_CLUSTER,
        sig.DISTANCE,
        sig.RELATIVE_DISTANCE,
    }
    assert len(keys) == 14 and all(k.isidentifier() for k in keys)
    # the strength curve of docs/experiments/2026-12-01-beyond-clusters.md reaches 1.25
    assert sig.MAX_STRENGTH >= 1.25


def test_models_config_is_a_valid_model_server_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(os.path.join(SERVING, "models.config"), encoding="utf-8") as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == sig.DEFAULT_MODEL_NAME and model.base_path == "/models/xplore"
    assert model.model_platform == "tensorflow"


def test_batching_config_uses_known_fields():
    # BatchingParameters (session_bundle_config.proto) is not in tensorflow-serving-api's
    # wheel, so the text format is checked field by field.
    known = {
        "max_batch_size",
        "batch_timeout_micros",
        "max_enqueued_batches",
        "num_batch_threads",
        "thread_pool_name",
        "allowed_batch_sizes",
        "pad_variable_length_inputs",
        "enable_large_batch_splitting",
    }
    fields = {}
    with open(os.path.join(SERVING, "batching.config"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name = line.split()[0].rstrip(":")
                assert name in known, f"unknown BatchingParameters field {name!r}"
                fields[name] = line
    assert "max_batch_size" in fields and "pad_variable_length_inputs: false" in fields.values()
    # ...and protobuf's text format reads it as tensorflow_model_server would.
    from xplore_tf.testing import dev_server

    params = dev_server.BatchingParameters.from_file(os.path.join(SERVING, "batching.config"))
    assert params.max_batch_size == 16 and not params.pad_variable_length_inputs
