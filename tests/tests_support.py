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


# ---------------------------------------------------------------- a tiny trained run, shared
# Training even a tiny GAN costs seconds, so the export, serving and translate tests share
# one run per session (cached here: pytest fixtures cannot be shared across test files
# without a conftest). Treat it as read-only: export into your own tmp folder.
TINY_CLUSTER_NAMES = {"0": "alpha", "2": "Beta"}
_SHARED: dict = {}


def tiny_trained_run(tmp_path_factory):
    """Config of a tiny run trained for 2 steps (image_size 16, k = 4 clusters) under the
    shipped configs' MirroredStrategy, with cluster_names.json {0: alpha, 2: Beta}."""
    if "run" not in _SHARED:
        import json

        from xplore_tf import train_lib

        workdir = tmp_path_factory.mktemp("tiny_trained_run")
        config = tiny_config(workdir, num_steps=2)
        train_lib.train(config)
        with open(os.path.join(config.clusters_dir, "cluster_names.json"), "w") as f:
            json.dump(TINY_CLUSTER_NAMES, f)
        _SHARED["run"] = config
    return _SHARED["run"]


def tiny_export(tmp_path_factory) -> str:
    """Base folder holding `xplore/1/`, the SavedModel of `tiny_trained_run` (shared)."""
    if "export" not in _SHARED:
        import dataclasses

        from xplore_tf import config as config_lib
        from xplore_tf import export_lib

        config = tiny_trained_run(tmp_path_factory)
        base = tmp_path_factory.mktemp("tiny_export")
        config = dataclasses.replace(config, export=config_lib.ExportConfig(export_dir=str(base)))
        export_lib.export(config)
        _SHARED["export"] = str(base)
    return _SHARED["export"]


# The model of `tiny_config` as command-line flags, for tests that run the binaries.
TINY_MODEL_FLAGS = [
    "--num_clusters=4",
    "--image_size=16",
    "--g_channels=4",
    "--g_res_blocks=1",
    "--mlp_hidden=8",
    "--d_channels=4",
    "--d_num_down=3",
]


def tiny_config(workdir, **train):
    """A run small enough to train in seconds: 48 synthetic faces, 16 px, k=4, under
    `--strategy=mirrored` as every config in configs/ (override with strategy=...)."""
    from xplore_tf import config as config_lib

    return config_lib.Config(
        workdir=str(workdir),
        seed=3,
        data=config_lib.DataConfig(dataset="synthetic", synthetic_num=48, synthetic_size=32),
        cluster=config_lib.ClusterConfig(num_clusters=4, kmeans_nredo=1, contact_sheet_members=4),
        model=config_lib.ModelConfig(
            image_size=16, g_channels=4, g_res_blocks=1, mlp_hidden=8, d_channels=4, d_num_down=3
        ),
        train=config_lib.TrainConfig(
            **{
                "batch_size": 4,
                "num_steps": 6,
                "n_critic": 2,
                "lr_decay_steps": 3,
                "strategy": "mirrored",
                "log_every": 2,
                "summary_every": 2,
                "sample_every": 3,
                "sample_images": 2,
                "sample_clusters": 3,
                "checkpoint_every": 100,
                **train,
            }
        ),
    )
