"""Atomic writes: whole or absent, with the mode a plain write gives."""

from __future__ import annotations

import os
import stat

import pytest

from xplore_tf import io_utils


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_umasks_mode_not_mkstemps(tmp_path, mask, mode):
    previous = os.umask(mask)
    try:
        io_utils.write_json(str(tmp_path / "metrics.json"), {"a": 1})
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "metrics.json").st_mode) == mode
    assert stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode) == mode
    assert io_utils.umask() == previous


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    path = tmp_path / "stats.npz"
    with pytest.raises(RuntimeError), io_utils.atomic_path(str(path)) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []
