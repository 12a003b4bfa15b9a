"""Helpers shared by tests: tiny image folders with a known answer, running binaries."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def shared_dir() -> str | None:
    """`../shared` beside the project (or $XPLORE_SHARED), or None when absent."""
    path = os.environ.get("XPLORE_SHARED") or os.path.join(PROJECT_ROOT, "..", "shared")
    return path if os.path.isdir(path) else None


def make_folder(root: str, per_colour: int = 12, seed: int = 0) -> dict[str, str]:
    """A coloured square on grey per image, with noise, in 3 colours; plus one broken file.

    Returns {relative path: colour}: the partition a clustering must recover.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    for name, rgb in COLOURS.items():
        for i in range(per_colour):
            img = np.full((40, 48, 3), 128, np.float32)
            y, x = rng.integers(2, 10, 2)
            img[y : y + 28, x : x + 30] = rgb
            img += rng.normal(0, 12, img.shape)
            rel = f"{name}/{i:02d}.png" if i % 2 else f"{name}_{i:02d}.jpg"
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(root, rel))
            truth[rel] = name
    with open(os.path.join(root, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    return truth


def run_binary(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `python -m module args...` from the project root, capturing text output."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
