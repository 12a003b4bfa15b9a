"""Typed, frozen configuration built once from the flags (see `xplore_tf/flags.py`).

Library code takes these dataclasses and never reads absl FLAGS, so tests build configs
directly with keywords. A config is never mutated as training state.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the faces come from and how they are framed."""

    dataset: str = "synthetic"  # "synthetic" (embedded default) | "folder"
    images_dir: str = ""  # for "folder"; for "synthetic" it is WORKDIR/synthetic
    crop_size: int = 0  # centre square crop in px before resizing; 0 = the shorter side
    synthetic_num: int = 2000
    synthetic_size: int = 64
    synthetic_seed: int = 0
    synthetic_images_per_identity: int = 4


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """The clustering stage (DESIGN.md §2)."""

    feature_extractor: str = "pixels"
    feature_weights: str = ""
    num_clusters: int = 100
    pca_dim: int = 256
    kmeans_niter: int = 50
    kmeans_nredo: int = 5
    max_points_per_centroid: int = 0  # 0 = use every point (faiss default subsamples to 256)
    min_cluster_size: int = 2
    batch_size: int = 32
    contact_sheet_members: int = 16
    thumbnail_size: int = 64
    projector: bool = False


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """The cluster report against labels (evaluation only)."""

    labels_csv: str = ""
    attributes: tuple[str, ...] = ()  # empty = every 0/1 column of the labels
    min_cluster_size: int = 20
    precision_threshold: float = 0.8


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shapes (DESIGN.md §3; paper widths are the defaults)."""

    image_size: int = 128
    g_channels: int = 64
    g_res_blocks: int = 6
    mlp_depth: int = 3
    mlp_hidden: int = 256
    condition: str = "mean_std"  # "mean_std" | "mean" | "onehot"
    upsample: str = "transpose"  # "transpose" | "resize_conv"
    d_channels: int = 64
    d_num_down: int = 0  # 0 = log2(image_size) - 1, as StarGAN (6 at 128 px)
    d_max_channels: int = 2048


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation, loss weights and bookkeeping (paper §2.4; others StarGAN defaults)."""

    batch_size: int = 32  # global, across replicas
    num_steps: int = 200_000  # discriminator iterations
    n_critic: int = 5
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay_steps: int = 100_000  # linear decay to 0 over the last N steps
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    lambda_lat: float = 10.0
    ema_decay: float = 0.999
    random_flip: bool = True
    strategy: str = "mirrored"  # "mirrored" | "multi_worker" | "one_device"
    mixed_precision: str = "none"  # "none" | "mixed_float16" | "mixed_bfloat16"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    resume: bool = True
    log_every: int = 50
    summary_every: int = 100
    sample_every: int = 1000
    sample_images: int = 8
    sample_clusters: int = 10


@dataclasses.dataclass(frozen=True)
class Config:
    workdir: str
    seed: int = 0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    cluster: ClusterConfig = dataclasses.field(default_factory=ClusterConfig)
    report: ReportConfig = dataclasses.field(default_factory=ReportConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    @property
    def images_dir(self) -> str:
        """The folder of input images, wherever the data set comes from."""
        if self.data.dataset == "synthetic":
            return os.path.join(self.workdir, "synthetic")
        return self.data.images_dir

    @property
    def clusters_dir(self) -> str:
        return os.path.join(self.workdir, "clusters")

    @property
    def train_dir(self) -> str:
        return os.path.join(self.workdir, "train")

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.workdir, "checkpoints")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
