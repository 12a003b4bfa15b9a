"""TensorFlow's start-up notices, kept out of a binary's terminal on machines without a GPU.

Importing TensorFlow and listing its devices prints, through C++ logging that
TF_CPP_MIN_LOG_LEVEL no longer reaches, a handful of lines on every CPU-only run: an
error-level "failed call to cuInit", "Could not find cuda drivers", the oneDNN and CPU
instruction notes. They read as failures to a new user and say nothing actionable. The
binaries call `import_tensorflow()` first: it captures the process's standard error (file
descriptor 2) while TensorFlow loads and initialises its devices, then prints back every
captured line except those notices. Anything else (a real error, a missing library) is
printed as it came, and on an exception everything is.

TensorFlow's Python side also logs through absl at INFO level, the level the binaries show
their progress at: a line per checkpoint shard ("Sharding callback duration"), a
1,000-character list of input names per exported signature, the fingerprint file. The
binaries drop INFO records that come from TensorFlow's or Keras' own files
(`drop_library_info`); their warnings and errors, and every line of xplore_tf, stay.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

# The start-up notices of a machine without a GPU (nothing a user can act on).
_NOTICES = re.compile(
    "|".join(
        (
            r"All log messages before absl::InitializeLog\(\) is called",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers on your machine",
            r"cpu_feature_guard\.cc",
            r"^To enable the following instructions: ",
            r"failed call to cuInit",
        )
    )
)


def is_notice(line: str) -> bool:
    """Whether a captured start-up line is one of the CPU-only notices left out."""
    return bool(_NOTICES.search(line))


def import_tensorflow() -> None:
    """Imports TensorFlow and initialises its devices, printing back to standard error every
    captured line but the CPU-only start-up notices (`is_notice`), then `drop_library_info`.
    Captures nothing when TensorFlow is already imported; sets TF_CPP_MIN_LOG_LEVEL=2
    unless the user chose one.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        drop_library_info()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    failed = True
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # where the CUDA platform reports
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines()
            kept = [line for line in lines if failed or not is_notice(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
    drop_library_info()


def _library_dirs() -> tuple[str, ...]:
    import keras
    import tensorflow as tf

    return tuple(os.path.dirname(m.__file__) + os.sep for m in (tf, keras))


class LibraryInfoFilter(logging.Filter):
    """Drops records below WARNING whose source file lies below one of `dirs`."""

    def __init__(self, dirs: tuple[str, ...]):
        super().__init__()
        self.dirs = dirs

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.pathname.startswith(self.dirs)


def drop_library_info() -> None:
    """Keeps TensorFlow's and Keras' own INFO lines out of the absl log (their warnings stay)."""
    for name in ("absl", "tensorflow"):  # TensorFlow logs through both
        logger = logging.getLogger(name)
        if not any(isinstance(f, LibraryInfoFilter) for f in logger.filters):
            logger.addFilter(LibraryInfoFilter(_library_dirs()))
