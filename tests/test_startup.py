"""TensorFlow's CPU-only start-up notices are left out of a binary's terminal, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys

from tests_support import PROJECT_ROOT

from xplore_tf import startup

# As TensorFlow 2.21 prints them on a machine without a GPU (prefixes shortened).
NOTICES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796451968.920507   19193 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors",
    "I0000 00:00:1796451968.924645   19193 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "I0000 00:00:1796451969.007248   19193 cpu_feature_guard.cc:227] This TensorFlow binary "
    "is optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796451974.919009   19193 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
)


def test_the_cpu_notices_are_recognised_and_other_lines_are_not():
    assert all(startup.is_notice(line) for line in NOTICES)
    for line in (
        "E0000 00:00:1.0 1 op_kernel.cc:1] OP_REQUIRES failed: Not found: libfoo.so",
        "ImportError: libcudnn.so.9: cannot open shared object file",
        "W0000 00:00:1.0 1 cpu_allocator_impl.cc:83] Allocation exceeds 10% of free memory",
    ):
        assert not startup.is_notice(line), line


def test_a_binary_starting_tensorflow_prints_no_notice_but_keeps_other_stderr():
    code = (
        "import sys; from xplore_tf import startup; startup.import_tensorflow(); "
        "import tensorflow as tf; print('after', file=sys.stderr); "
        "print(len(tf.config.list_logical_devices('CPU')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert not [line for line in done.stderr.splitlines() if startup.is_notice(line)]
    assert "after" in done.stderr


def test_tensorflow_info_lines_are_dropped_and_its_warnings_and_ours_kept():
    import logging

    import tensorflow as tf

    tf_file = os.path.join(os.path.dirname(tf.__file__), "python", "checkpoint", "saver.py")
    ours = os.path.join(PROJECT_ROOT, "xplore_tf", "train_lib.py")
    only = startup.LibraryInfoFilter(startup._library_dirs())

    def kept(level, path):
        record = logging.LogRecord("absl", level, path, 1, "message", None, None)
        return only.filter(record)

    assert not kept(logging.INFO, tf_file)
    assert kept(logging.WARNING, tf_file) and kept(logging.INFO, ours)
    startup.drop_library_info()
    startup.drop_library_info()  # once only
    for name in ("absl", "tensorflow"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, startup.LibraryInfoFilter) for f in filters) == 1
