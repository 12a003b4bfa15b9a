"""Converts a PyTorch checkpoint (.pth / .pth.tar) into the `.npz` the extractors load.

    python -m tools.convert_torch_weights IN.pth OUT.npz

Accepts a plain state dict or one wrapped in a `state_dict` / `model` entry (bethgelab and
texture-vs-shape checkpoints), with or without DataParallel's `module.` prefix (stripped).
Loads with `torch.load(..., weights_only=True)`: tensors and plain containers only, never
arbitrary unpickling. Only this tool needs torch; the xplore_tf package never imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np

_WRAPPER_KEYS = ("state_dict", "model")
_MODULE_PREFIX = "module."
_INSTALL_HINT = "pip install torch==2.13.0 (the CPU build)"


def _import_torch():
    try:
        import torch
    except ImportError as e:
        raise RuntimeError(
            f"converting PyTorch checkpoints needs torch, which is not installed: {_INSTALL_HINT}"
        ) from e
    return torch


def _unwrap(obj: object, path: str) -> Mapping:
    """Finds the state dict inside a checkpoint: itself, or under `state_dict` / `model`."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            return obj
        obj = inner
    raise ValueError(f"{path}: expected a state dict (a mapping), found {type(obj).__name__}")


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads `path` safely and returns {state-dict name without `module.`: float/int array}."""
    torch = _import_torch()
    path = os.fspath(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, ... for bad files
        raise ValueError(f"{path}: cannot be read as a weights-only PyTorch checkpoint: {e}") from e
    state = _unwrap(checkpoint, path)
    arrays: dict[str, np.ndarray] = {}
    not_tensors = []
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            not_tensors.append(str(key))
            continue
        name = key[len(_MODULE_PREFIX) :] if key.startswith(_MODULE_PREFIX) else key
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()  # numpy has no bfloat16; the loader casts to float32 anyway
        arrays[name] = value.numpy()
    if not_tensors:
        shown = ", ".join(not_tensors[:5])
        raise ValueError(
            f"{path}: not a state dict, {len(not_tensors)} entries are not tensors: [{shown}]"
        )
    if not arrays:
        raise ValueError(f"{path}: the state dict is empty")
    return arrays


def save_npz_atomic(arrays: Mapping[str, np.ndarray], out_path: str | os.PathLike) -> None:
    """Writes `arrays` to `out_path` via a temp file + os.replace (never a partial file)."""
    out_path = os.fspath(out_path)
    directory = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def convert(in_path: str | os.PathLike, out_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Checkpoint -> npz; returns the arrays written."""
    arrays = load_torch_state_dict(in_path)
    save_npz_atomic(arrays, out_path)
    return arrays


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.convert_torch_weights", description=__doc__.splitlines()[0]
    )
    parser.add_argument("input", help="PyTorch checkpoint (.pth / .pth.tar)")
    parser.add_argument("output", help="destination .npz")
    args = parser.parse_args(argv)
    if not args.output.endswith(".npz"):
        parser.error(f"output {args.output!r} must end in .npz")
    try:
        arrays = convert(args.input, args.output)
    except (RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n_values = sum(a.size for a in arrays.values())
    size_mb = os.path.getsize(args.output) / 2**20
    print(f"wrote {len(arrays)} keys ({n_values:,} values, {size_mb:.1f} MiB) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
