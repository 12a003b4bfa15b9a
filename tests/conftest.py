"""Shared test setup: quiet TensorFlow without Grappler, single-threaded OpenBLAS, `tests_support`
importable."""

import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests do numpy/scipy algebra on tiny matrices. OpenBLAS's worker threads busy-wait, and on
# a shared, loaded 2-core machine that made such calls 20-40x slower (measured); TensorFlow
# keeps its own thread pools. Must be set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Tests see TensorFlow's kernels as users do: the package's oneDNN setting comes first.
import xplore_tf  # noqa: E402, F401


@pytest.fixture(autouse=True, scope="session")
def _no_grappler_in_test_processes():
    """Grappler rewrites each traced graph for speed (fusions, constant folding) on its first
    call: ~2 s per training step of the tiny models, a quarter of the suite's time, for
    graphs that then run a few times. Off in the test processes only; the binaries that
    tests start as subprocesses, and CI's kill/resume and user-install runs, keep it."""
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


@pytest.fixture(autouse=True)
def _float32_policy_after_each_test():
    """A test that trains in mixed_bfloat16 sets Keras' process-global policy (as the trainer
    must); later tests in the same worker build their models in float32 again."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")
