"""Every command-line flag of every xplore_tf stage, in one module.

One flagfile (see `configs/`) drives all stages: `cluster`, `train`, `export`,
`evaluate`. Binaries import this module, call `config_from_flags()` once and hand the
frozen `Config` to library code; nothing else reads FLAGS.
"""

from __future__ import annotations

import os

from absl import flags

from xplore_tf import config as config_lib
from xplore_tf import io_utils

FLAGS = flags.FLAGS

# ---------------------------------------------------------------- general
flags.DEFINE_string(
    "workdir", None, "Work directory for every artifact (clusters/, train/, checkpoints/, export/)."
)
flags.DEFINE_integer("seed", 0, "Random seed for k-means, data order and initialisation.")

# ---------------------------------------------------------------- data
flags.DEFINE_enum(
    "dataset",
    "synthetic",
    ["synthetic", "folder"],
    "Image source: 'synthetic' renders the embedded procedural face set into "
    "WORKDIR/synthetic (needs no files); 'folder' reads --images_dir.",
)
flags.DEFINE_string(
    "images_dir",
    "",
    "Folder of face images, searched recursively (jpg/jpeg/png/bmp/webp). Used with --dataset=folder.",
)
flags.DEFINE_integer(
    "crop_size",
    0,
    "Centre square crop in pixels applied before resizing; 0 = the shorter image side "
    "(CelebA 178x218: the paper crops 178).",
    lower_bound=0,
)
flags.DEFINE_integer("synthetic_num", 2000, "Synthetic set: number of images.", lower_bound=1)
flags.DEFINE_integer(
    "synthetic_size",
    64,
    "Synthetic set: image side in pixels (32..256).",
    lower_bound=32,
    upper_bound=256,
)
flags.DEFINE_integer("synthetic_seed", 0, "Synthetic set: random seed of the renderer.")
flags.DEFINE_integer(
    "synthetic_images_per_identity",
    4,
    "Synthetic set: images rendered per identity (same face geometry, small jitter).",
    lower_bound=1,
)
flags.DEFINE_string(
    "synthetic_out",
    "",
    "Output folder of `python -m xplore_tf.data.synthetic` (alias --out); "
    "empty = WORKDIR/synthetic.",
)
flags.DEFINE_alias("out", "synthetic_out")
flags.DEFINE_alias("num", "synthetic_num")
flags.DEFINE_alias("size", "synthetic_size")

# ---------------------------------------------------------------- clustering
flags.DEFINE_enum(
    "feature_extractor",
    "pixels",
    ["pixels", "mobilenet_v2", "resnet50", "bagnet17", "resnet50_keras"],
    "Network whose pooled last-conv features are clustered. Paper: bagnet17 (CelebA, FFHQ), "
    "resnet50 with Stylized-ImageNet weights (EmotioNet). 'pixels' (colour layout, no weights) "
    "is for the synthetic set.",
)
flags.DEFINE_string(
    "feature_weights",
    "",
    "Weights of the extractor: .npz keyed by PyTorch state-dict names "
    "(tools/convert_torch_weights.py makes one). Required for mobilenet_v2, resnet50, bagnet17.",
)
flags.DEFINE_integer(
    "num_clusters",
    100,
    "k of k-means = number of discovered attributes. Paper: 100 at 128 px, 50 at 256 px.",
    lower_bound=2,
)
flags.DEFINE_integer(
    "pca_dim", 256, "PCA dimensions after L2 normalisation (paper: 256).", lower_bound=1
)
flags.DEFINE_integer("kmeans_niter", 50, "k-means iterations per run.", lower_bound=1)
flags.DEFINE_integer(
    "kmeans_nredo", 5, "k-means restarts; the best objective is kept.", lower_bound=1
)
flags.DEFINE_integer(
    "max_points_per_centroid",
    0,
    "faiss subsamples the training set to this many points per centroid; 0 = use every point.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "min_cluster_size",
    2,
    "Clusters smaller than this (or with zero spread) are merged into their nearest "
    "neighbours, since their std would be degenerate.",
    lower_bound=2,
)
flags.DEFINE_integer(
    "extract_batch_size", 32, "Images per batch during feature extraction.", lower_bound=1
)
flags.DEFINE_integer(
    "contact_sheet_members",
    16,
    "Members nearest the centroid shown on each cluster's contact sheet.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "thumbnail_size", 64, "Side in pixels of each contact-sheet thumbnail.", lower_bound=8
)
flags.DEFINE_bool(
    "projector",
    False,
    "Also write a TensorBoard projector embedding of the PCA features to WORKDIR/clusters/projector.",
)

# ---------------------------------------------------------------- models (DESIGN.md §3)
flags.DEFINE_integer(
    "image_size",
    128,
    "Training/translation resolution in px (paper: 128 CelebA, 256 FFHQ).",
    lower_bound=16,
)
flags.DEFINE_integer(
    "g_channels", 64, "Generator base width: encoder 64-128-256 at 64 (paper).", lower_bound=1
)
flags.DEFINE_integer(
    "g_res_blocks",
    6,
    "Residual blocks in the encoder and in the decoder (paper: 6 each).",
    lower_bound=1,
)
flags.DEFINE_integer(
    "mlp_depth", 3, "Layers of the ASIN MLP f (paper: 3 CelebA, 7 FFHQ/EmotioNet).", lower_bound=1
)
flags.DEFINE_integer("mlp_hidden", 256, "Width of the ASIN MLP's hidden layers.", lower_bound=1)
flags.DEFINE_enum(
    "condition",
    "mean_std",
    ["mean_std", "mean", "onehot"],
    "What the ASIN MLP sees of the target cluster: centroid and std (paper default), "
    "centroid only, or the one-hot cluster id (paper §2.2 variants).",
)
flags.DEFINE_enum(
    "upsample",
    "transpose",
    ["transpose", "resize_conv"],
    "Decoder upsampling: transposed conv 4x4 s2 (paper) or nearest resize + conv "
    "(avoids checkerboard artifacts).",
)
flags.DEFINE_integer("d_channels", 64, "Discriminator base width (StarGAN: 64).", lower_bound=1)
flags.DEFINE_integer(
    "d_num_down",
    0,
    "Discriminator stride-2 convs; 0 = log2(image_size) - 1 (6 at 128 px, StarGAN).",
    lower_bound=0,
)
flags.DEFINE_integer(
    "d_max_channels",
    2048,
    "Cap on discriminator widths (StarGAN reaches 2048 at 128 px).",
    lower_bound=1,
)

# ---------------------------------------------------------------- training (DESIGN.md §3-4)
flags.DEFINE_integer(
    "batch_size", 32, "Global batch size, split across replicas (paper: 32).", lower_bound=1
)
flags.DEFINE_integer(
    "num_steps",
    200_000,
    "Training iterations (discriminator steps; StarGAN: 200k).",
    lower_bound=1,
)
flags.DEFINE_integer(
    "n_critic", 5, "Discriminator steps per generator step (WGAN-GP/StarGAN: 5).", lower_bound=1
)
flags.DEFINE_float("g_lr", 1e-4, "Generator Adam learning rate (paper: 1e-4).", lower_bound=0.0)
flags.DEFINE_float("d_lr", 1e-4, "Discriminator Adam learning rate (paper: 1e-4).", lower_bound=0.0)
flags.DEFINE_float("beta1", 0.5, "Adam beta1 (paper: 0.5).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("beta2", 0.999, "Adam beta2 (paper: 0.999).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer(
    "lr_decay_steps",
    100_000,
    "Learning rates decay linearly to 0 over the last N steps (StarGAN: 100k).",
    lower_bound=0,
)
flags.DEFINE_float("lambda_cls", 1.0, "Weight of the cluster classification loss (paper: 1).")
flags.DEFINE_float("lambda_rec", 10.0, "Weight of the L1 cycle reconstruction loss (10).")
flags.DEFINE_float("lambda_gp", 10.0, "Weight of the WGAN gradient penalty (10).")
flags.DEFINE_float("lambda_lat", 10.0, "Weight of the L2 latent loss on h(x) vs h(G(x)) (10).")
flags.DEFINE_float(
    "ema_decay",
    0.999,
    "Decay of the generator's moving average used for samples and export.",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_bool("random_flip", True, "Random horizontal flips of training images.")
flags.DEFINE_enum(
    "strategy",
    "mirrored",
    ["mirrored", "multi_worker", "one_device"],
    "tf.distribute strategy: 'mirrored' = all local GPUs (else the CPU); 'multi_worker' = "
    "MultiWorkerMirroredStrategy configured by TF_CONFIG; 'one_device' = no distribution.",
)
flags.DEFINE_enum(
    "mixed_precision",
    "none",
    ["none", "mixed_float16", "mixed_bfloat16"],
    "Keras mixed-precision policy (mixed_float16 on GPUs; bfloat16 on CPUs with AVX512_BF16).",
)
flags.DEFINE_integer(
    "checkpoint_every", 1000, "Steps between checkpoints (also written at exit).", lower_bound=1
)
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept on disk.", lower_bound=1)
flags.DEFINE_bool(
    "resume", True, "Continue from the latest checkpoint in WORKDIR/checkpoints when present."
)
flags.DEFINE_integer("log_every", 50, "Steps between progress lines.", lower_bound=1)
flags.DEFINE_integer(
    "summary_every", 100, "Steps between TensorBoard scalar summaries.", lower_bound=1
)
flags.DEFINE_integer(
    "sample_every", 1000, "Steps between sample grids (TensorBoard + PNG).", lower_bound=1
)
flags.DEFINE_integer(
    "sample_images", 8, "Fixed input images (rows) in each sample grid.", lower_bound=1
)
flags.DEFINE_integer(
    "sample_clusters", 10, "Target clusters (columns) in each sample grid.", lower_bound=1
)

# ---------------------------------------------------------------- reports
flags.DEFINE_string(
    "labels_csv",
    "",
    "Labels for evaluation only, CelebA form: 'image,<attribute columns of 0/1>'. "
    "Empty with --dataset=synthetic = the synthetic set's own labels.csv.",
)
flags.DEFINE_list(
    "attributes",
    [],
    "Attribute columns to report (comma separated); empty = every 0/1 column of --labels_csv.",
)
flags.DEFINE_integer(
    "report_min_cluster_size",
    20,
    "Smallest cluster considered when picking an attribute's best cluster by precision.",
    lower_bound=1,
)
flags.DEFINE_float(
    "precision_threshold",
    0.8,
    "A cluster 'captures' an attribute when this fraction of its members have it.",
    lower_bound=0.0,
    upper_bound=1.0,
)


@flags.multi_flags_validator(
    ["dataset", "images_dir"],
    message="--images_dir is required with --dataset=folder.",
)
def _check_images_dir(values) -> bool:
    return values["dataset"] != "folder" or bool(values["images_dir"])


def config_from_flags() -> config_lib.Config:
    """Converts the parsed flags once into the frozen, typed Config."""
    if not FLAGS.workdir:
        raise flags.ValidationError("--workdir is required (where every artifact is written).")
    f = FLAGS
    return config_lib.Config(
        workdir=os.path.abspath(os.path.expanduser(f.workdir)),
        seed=f.seed,
        data=config_lib.DataConfig(
            dataset=f.dataset,
            images_dir=os.path.abspath(os.path.expanduser(f.images_dir)) if f.images_dir else "",
            crop_size=f.crop_size,
            synthetic_num=f.synthetic_num,
            synthetic_size=f.synthetic_size,
            synthetic_seed=f.synthetic_seed,
            synthetic_images_per_identity=f.synthetic_images_per_identity,
        ),
        cluster=config_lib.ClusterConfig(
            feature_extractor=f.feature_extractor,
            feature_weights=f.feature_weights,
            num_clusters=f.num_clusters,
            pca_dim=f.pca_dim,
            kmeans_niter=f.kmeans_niter,
            kmeans_nredo=f.kmeans_nredo,
            max_points_per_centroid=f.max_points_per_centroid,
            min_cluster_size=f.min_cluster_size,
            batch_size=f.extract_batch_size,
            contact_sheet_members=f.contact_sheet_members,
            thumbnail_size=f.thumbnail_size,
            projector=f.projector,
        ),
        model=config_lib.ModelConfig(
            image_size=f.image_size,
            g_channels=f.g_channels,
            g_res_blocks=f.g_res_blocks,
            mlp_depth=f.mlp_depth,
            mlp_hidden=f.mlp_hidden,
            condition=f.condition,
            upsample=f.upsample,
            d_channels=f.d_channels,
            d_num_down=f.d_num_down,
            d_max_channels=f.d_max_channels,
        ),
        train=config_lib.TrainConfig(
            batch_size=f.batch_size,
            num_steps=f.num_steps,
            n_critic=f.n_critic,
            g_lr=f.g_lr,
            d_lr=f.d_lr,
            beta1=f.beta1,
            beta2=f.beta2,
            lr_decay_steps=f.lr_decay_steps,
            lambda_cls=f.lambda_cls,
            lambda_rec=f.lambda_rec,
            lambda_gp=f.lambda_gp,
            lambda_lat=f.lambda_lat,
            ema_decay=f.ema_decay,
            random_flip=f.random_flip,
            strategy=f.strategy,
            mixed_precision=f.mixed_precision,
            checkpoint_every=f.checkpoint_every,
            keep_checkpoints=f.keep_checkpoints,
            resume=f.resume,
            log_every=f.log_every,
            summary_every=f.summary_every,
            sample_every=f.sample_every,
            sample_images=f.sample_images,
            sample_clusters=f.sample_clusters,
        ),
        report=config_lib.ReportConfig(
            labels_csv=f.labels_csv,
            attributes=tuple(f.attributes),
            min_cluster_size=f.report_min_cluster_size,
            precision_threshold=f.precision_threshold,
        ),
    )


def write_resolved_flags(workdir: str, stage: str) -> str:
    """Writes this module's flags, as parsed, to WORKDIR/flags_<stage>.txt (a valid flagfile)."""
    lines = [f"# resolved flags of `python -m xplore_tf.{stage}`"]
    for flag in FLAGS.get_flags_for_module(__name__):
        lines.append(flag.serialize())
    path = os.path.join(workdir, f"flags_{stage}.txt")
    io_utils.write_text(path, "\n".join(line for line in lines if line) + "\n")
    return path
