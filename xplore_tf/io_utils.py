"""Atomic file writing: every artifact appears whole or not at all.

A crash or Ctrl-C mid-write must never leave a truncated `stats.npz` that a later stage
would trust, so everything is written to a temporary file beside the target and then
renamed over it (`os.replace` is atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np


def umask() -> int:
    """The process's umask (read by setting it, and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path in `path`'s folder; renames it to `path` on success.

    The file gets the mode a plain `open(path, "w")` would give (0666 less the umask), not
    mkstemp's 0600: a model server or web server running as another user reads it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# What TensorFlow's file readers treat as glob syntax in a path they are given.
GLOB_CHARACTERS = frozenset("*?[]{}\\")
_ALIASES: dict[str, str] = {}


def glob_safe(path: str) -> str:
    """`path`, or the same file or folder through a symlink whose path has no glob characters.

    TensorFlow's checkpoint and SavedModel readers match the path they are given as a glob
    pattern, so `runs/exp[1]/...` is never found there. The alias (a symlink in a temporary
    folder) lives until the process ends: readers may open files lazily after the call.
    """
    path = os.path.abspath(path)
    if not GLOB_CHARACTERS & set(path):
        return path
    if path not in _ALIASES:
        scratch = tempfile.mkdtemp(prefix="xplore_tf-path-")
        atexit.register(shutil.rmtree, scratch, True)
        _ALIASES[path] = os.path.join(scratch, "alias")
        os.symlink(path, _ALIASES[path], target_is_directory=os.path.isdir(path))
    return _ALIASES[path]


def write_failure(error: BaseException) -> str:
    """The cause of a failed TensorFlow or OS write, short: "File too large", "No space left
    on device" (TensorFlow puts it after the temporary file's name and before "[Op:...]")."""
    text = getattr(error, "message", None) or getattr(error, "strerror", None) or str(error)
    text = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    text = text.rsplit("; ", 1)[-1]
    return text.split(" [Op:")[0].strip()[:200]


def write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npz(path: str, **arrays: np.ndarray) -> None:
    """Writes an uncompressed .npz with no pickled objects (strings as unicode arrays)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes(path, buf.getvalue())
