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
    # several k = a k sweep (cluster stage only; clusters/k_sweep/), () = just num_clusters
    k_sweep: tuple[int, ...] = ()
    feature_blocks: tuple[str, ...] = ()  # pooled blocks beside/instead of the last; () = paper
    feature_framing: str = "crop"  # "crop" (--crop_size centre square, paper) | "whole" (padded)
    feature_input_size: int = 0  # extractor input side in px; 0 = its own (224)
    feature_mirror: bool = False  # average the features of each image and its mirror
    feature_cache: bool = True  # reuse WORKDIR/clusters/features.npy when it matches
    pca_whiten: bool = False  # unit variance per PCA axis
    pca_l2: bool = False  # L2-normalise again after PCA
    method: str = "kmeans"  # "kmeans" (paper) | "scan" (learned heads, SCAN ECCV 2020)
    scan_neighbors: int = 20
    scan_entropy_weight: float = 5.0
    scan_heads: int = 5
    scan_hidden: int = 512
    scan_epochs: int = 50
    scan_batch_size: int = 512
    scan_learning_rate: float = 1e-3


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """The cluster report against labels (evaluation only)."""

    labels_csv: str = ""
    attributes: tuple[str, ...] = ()  # empty = every 0/1 column of the labels
    min_cluster_size: int = 20
    precision_threshold: float = 0.8


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Transfer, identity and realism of a trained run (evaluation only, `xplore_tf.evaluate`)."""

    transfer_min_precision: float = 0.8  # clusters at least this pure stand for an attribute
    eval_images: int = 500  # held-out labelled images translated and judged
    probe_train_images: int = 2000  # other labelled images training the probe / regressor
    attribute_classifier: str = ""  # .keras judge; empty = logistic probe on extractor features
    identity_embedder: str = "auto"  # "auto" | "geometry" | "dlib" | "none"
    identity_threshold: float = 0.0  # 0 = dlib's 0.6, or the best on real pairs (geometry)
    identity_pairs_csv: str = ""  # image_a,image_b,same_identity; empty = beside the labels
    identity_max_pairs: int = 500  # real same / different identity pairs, each
    identity_regressor_epochs: int = 30
    identity_regressor_members: int = 5  # geometry regressors averaged (a steadier judge)
    inception_weights: str = ""  # InceptionV3 no-top .h5 for FID; empty = no FID
    batch_size: int = 32  # images per generator / extractor call
    # strength curve alphas (docs/guide/beyond_clusters.md); () = none
    strengths: tuple[float, ...] = ()
    reference_group_size: int = 0  # held-out images per reference group; 0 = no groups
    combinations: tuple[str, ...] = ()  # "a+b" attribute pairs translated at once; () = none
    side_effect_attributes: tuple[str, ...] = ()  # largest side effect among these; () = all
    report_images: int = 8  # rows of the translation matrix
    report_clusters: int = 10  # target-cluster columns of the translation matrix


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
    output_mode: str = "direct"  # "direct" (paper) | "masked" (GANimation) | "residual"
    skip_connections: str = "none"  # "none" (paper) | "plain" (AttGAN) | "gated" (STGAN-like)
    skip_levels: int = 2  # 2 = skips at 1/2 and full resolution; 1 = 1/2 only (AttGAN's default)
    hf_bypass: bool = False  # add the input's high-frequency band to the output (HifaFace)
    decoder_norm: str = "instance"  # "instance" (paper: ASIN) | "demod" (StyleGAN2 modulation)
    encoder_norm: str = "instance"  # "instance" (paper) | "none" (no per-sample statistics)
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
    gan_loss: str = "wgan_gp"  # "wgan_gp" (paper) | "r1" (non-saturating + R1, StyleGAN2)
    lambda_gp: float = 10.0  # the penalty's weight (R1: gamma)
    gp_every: int = 1  # gradient penalty on every N-th D step only, weighted N x; 1 = paper
    share_g_forward: bool = False  # one G(x, s_t) for an iteration's D and G steps
    lambda_lat: float = 10.0
    lambda_self: float = 0.0  # |x - G(x, s_own)|_1 (FUNIT/TUNIT); 0 = off (paper)
    lambda_mask: float = 0.0  # weight of the mask regulariser (output_mode="masked")
    lambda_chroma: float = 0.0  # low-resolution colour term on the reconstructions; 0 = off
    mask_penalty: str = "edit"  # "edit": mean(A), "keep": mean(1 - A) (GANimation's)
    blend_prob: float = 0.0  # fraction of targets that are random blends of clusters; 0 = paper
    extrapolate_prob: float = 0.0  # fraction of targets past the cluster (strength > 1); 0 = paper
    combine_prob: float = 0.0  # fraction of targets that are two clusters at once; 0 = paper
    cls_neighbors: int = 0  # G's classification softmax over t and its nearest clusters; 0 = all k
    cls_credit_neighbors: int = 0  # G's classification credits t and its nearest as one; 0 = t
    ema_decay: float = 0.999
    random_flip: bool = True
    holdout: int = 0  # last N images (sorted paths) kept out of training, for evaluation
    strategy: str = "mirrored"  # "mirrored" | "multi_worker" | "one_device"
    # "auto" (bfloat16 on AMX CPUs, hardware.py) | "none" | "mixed_float16" | "mixed_bfloat16"
    mixed_precision: str = "none"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    resume: bool = True
    log_every: int = 50
    summary_every: int = 100
    sample_every: int = 1000
    sample_images: int = 8
    sample_clusters: int = 10


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The SavedModel export of G_ema (DESIGN.md §5)."""

    export_dir: str = ""  # base folder; "" = WORKDIR/export, and no export at the end of train
    model_name: str = "xplore"  # <export_dir>/<model_name>/<version>/, TF Serving's model name
    version: int = 0  # 0 = max existing version + 1
    checkpoint: str = ""  # checkpoint prefix; "" = the latest in WORKDIR/checkpoints
    allow_untrained: bool = False  # export a freshly initialised G when no checkpoint exists
    # the translate_full signatures (xplore_tf/edit.py): what the edit is measured from, and
    # what becomes of the face's colour
    edit_base: str = "residual"  # "residual" (G(x, s_t) - x) | "difference" (- G(x, s_src))
    face_colour: str = "no_cast"  # "no_cast" | "luminance" | "generator"


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Face detection and alignment of real photos (`xplore_tf.prepare`, xplore_tf/common/faces.py)."""

    enabled: bool = False  # --prepare: cluster/train read WORKDIR/prepared, made from images_dir
    detector: str = "mtcnn"  # "mtcnn" | "dlib"
    faces: str = "all"  # "all" faces of a photo | the "largest" one
    aligned_size: int = 128  # side of the aligned square crops in px
    min_face_size: int = 20  # detection boxes smaller than this (px, shorter side) are skipped
    min_face_score: float = 0.0  # detector confidence below this is skipped (mtcnn: 0..1)
    paste_back: bool = False  # translate: detect, translate each face, paste into the photo
    paste_feather: float = 0.12  # paste-back mask feather, fraction of the crop side


@dataclasses.dataclass(frozen=True)
class Config:
    workdir: str
    seed: int = 0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    cluster: ClusterConfig = dataclasses.field(default_factory=ClusterConfig)
    report: ReportConfig = dataclasses.field(default_factory=ReportConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    prepare: PrepareConfig = dataclasses.field(default_factory=PrepareConfig)

    @property
    def images_dir(self) -> str:
        """The folder of input images, wherever the data set comes from."""
        if self.data.dataset == "synthetic":
            return os.path.join(self.workdir, "synthetic")
        return self.data.images_dir

    @property
    def prepared_dir(self) -> str:
        """Where `--prepare` writes the aligned faces of --images_dir (see xplore_tf.prepare_lib)."""
        return os.path.join(self.workdir, "prepared")

    @property
    def clusters_dir(self) -> str:
        return os.path.join(self.workdir, "clusters")

    @property
    def train_dir(self) -> str:
        return os.path.join(self.workdir, "train")

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.workdir, "checkpoints")

    @property
    def export_base_dir(self) -> str:
        """Where SavedModels go: --export_dir, else WORKDIR/export."""
        return self.export.export_dir or os.path.join(self.workdir, "export")

    @property
    def eval_dir(self) -> str:
        return os.path.join(self.workdir, "eval")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
