"""Every command-line flag of every xplore_tf stage, in one module.

One flagfile (see `configs/`) drives all stages: `cluster`, `train`, `export`,
`translate`, `evaluate`. Binaries import this module, call `config_from_flags()` once and
hand the frozen `Config` to library code; nothing else reads FLAGS. (The serving client,
`serving/client.py`, is a separate deployable that needs no xplore_tf code, so it parses its
own command line.)
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import typing

from absl import flags, logging

from xplore_tf import config as config_lib
from xplore_tf import hardware, io_utils
from xplore_tf.common import signatures as sig

FLAGS = flags.FLAGS

# Which flags each section below defines, for each binary's --help (`declare_key_flags`).
_SECTION_STARTS: list[tuple[str, frozenset[str]]] = []


def _section(name: str) -> None:
    """Marks where the flags of section `name` begin."""
    _SECTION_STARTS.append((name, frozenset(FLAGS)))


# ---------------------------------------------------------------- general
_section("general")
flags.DEFINE_string(
    "workdir", None, "Work directory for every artifact (clusters/, train/, checkpoints/, export/)."
)
flags.DEFINE_integer("seed", 0, "Random seed for k-means, data order and initialisation.")

# ---------------------------------------------------------------- data
_section("data")
flags.DEFINE_enum(
    "dataset",
    "synthetic",
    ["synthetic", "folder"],
    "Image source: 'synthetic' renders the embedded procedural face set into "
    "WORKDIR/synthetic (needs no files); 'folder' reads --images_dir. Default: 'folder' "
    "when --images_dir is given, else 'synthetic'.",
)
flags.DEFINE_string(
    "images_dir",
    "",
    "Folder of face images, searched recursively (jpg/jpeg/png/bmp/webp; links to folders "
    "followed). Implies --dataset=folder; contradicts an explicit --dataset=synthetic.",
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
    "out",
    "",
    "Output of the one-off binaries (alias --synthetic_out): the folder "
    "`python -m xplore_tf.synthesize` renders into (empty = WORKDIR/synthetic), or "
    "where `python -m xplore_tf.translate` writes (a folder, a .png file for one output, or a "
    "pattern with {stem}, {index}, {cluster}; empty = WORKDIR/translate), or where "
    "`python -m xplore_tf.prepare` writes the aligned faces (a folder, required).",
)
flags.DEFINE_alias("synthetic_out", "out")
flags.DEFINE_alias("num", "synthetic_num")
flags.DEFINE_alias("size", "synthetic_size")

# ---------------------------------------------------------------- clustering
_section("clustering")
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


class _ClusterCountsParser(flags.ListParser):
    """--num_clusters: one k, or a comma-separated k sweep (integers >= 2, no repeats)."""

    def parse(self, argument):
        values = super().parse(argument)
        try:
            ks = [int(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(
                f"expected integers >= 2 separated by commas, got {argument!r}"
            ) from None
        if not ks or min(ks) < 2 or len(set(ks)) != len(ks):
            raise ValueError(
                f"expected distinct integers >= 2 separated by commas, got {argument!r}"
            )
        return ks


flags.DEFINE(
    _ClusterCountsParser(),
    "num_clusters",
    [100],
    "k = number of discovered attributes (clusters). Paper: 100 at 128 px, 50 at 256 px. "
    "Several values (20,50,100) make `python -m xplore_tf.cluster` a k sweep: one artifact "
    "set per k in WORKDIR/clusters/k_sweep/kKKK/ plus k_sweep.html to compare them (the main "
    "set is left alone); every other stage takes one k.",
    serializer=flags.CsvListSerializer(","),
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

# ---------------------------------------------------------------- clustering: features, space, method
_section("features")
# Options measured on celeba10k in docs/experiments/2026-12-04-discovery.md; the defaults are the paper's setting
# (last conv layer pooled, L2 -> PCA 256, k-means).
flags.DEFINE_list(
    "feature_blocks",
    [],
    "Blocks of the extractor to pool, comma separated, in torchvision module names "
    "(MobileNetV2: features.13 = last block at 14x14; ResNet: layer3) or 'last' (the last "
    "conv layer). Each is globally average-pooled and L2-normalised, then concatenated. "
    "Empty = 'last' alone (paper).",
)
flags.DEFINE_enum(
    "feature_framing",
    "crop",
    ["crop", "whole"],
    "What the extractor sees of each image: 'crop' = the --crop_size centre square (paper); "
    "'whole' = the whole image padded with black to a square, so hair and head tops stay in "
    "view. Training images are always framed by --crop_size.",
)
flags.DEFINE_integer(
    "feature_input_size",
    0,
    "Side in px the extractor is fed at; 0 = its own (224). mobilenet_v2, resnet50 and "
    "bagnet17 take any size (160 px costs half of 224 px).",
    lower_bound=0,
)
flags.DEFINE_bool(
    "feature_mirror",
    False,
    "Average the features of each image and of its left-right mirror image (removes head "
    "turn and light direction, keeps symmetric attributes); doubles extraction time.",
)
flags.DEFINE_bool(
    "feature_cache",
    True,
    "Keep the pooled features in WORKDIR/clusters/features.npy (+ features.json) and reuse "
    "them while the extractor, weights file, blocks, crop and image files are unchanged "
    "(another k, PCA, clustering method or seed re-clusters in seconds).",
)
flags.DEFINE_bool(
    "pca_whiten",
    False,
    "Scale every PCA axis to unit variance, so the few dominant directions of ImageNet "
    "features (pose, lighting) do not decide every distance. Use with --pca_l2. It favours "
    "a few rare attributes over the broad ones a user's photos are organised by (gender, "
    "age, hair colour): off in every config (docs/experiments/2026-12-04-discovery.md).",
)
flags.DEFINE_bool(
    "pca_l2",
    False,
    "L2-normalise the PCA (or whitened) features again before clustering (cosine geometry).",
)
flags.DEFINE_enum(
    "clustering",
    "kmeans",
    ["kmeans", "scan"],
    "How clusters are found: 'kmeans' (paper, faiss) or 'scan' = small heads trained so "
    "that each image and its nearest neighbours share a cluster (SCAN, Van Gansbeke et al., "
    "ECCV 2020), on the frozen features.",
)
flags.DEFINE_integer(
    "scan_neighbors",
    20,
    "--clustering=scan: nearest neighbours mined per image in the clustering space (SCAN: 20).",
    lower_bound=1,
)
flags.DEFINE_float(
    "scan_entropy_weight",
    5.0,
    "--clustering=scan: weight of the entropy of the mean prediction, which spreads images "
    "over the clusters (SCAN: 5).",
    lower_bound=0.0,
)
flags.DEFINE_integer(
    "scan_heads",
    5,
    "--clustering=scan: heads trained at once; the lowest final loss is kept (label-free).",
    lower_bound=1,
)
flags.DEFINE_integer(
    "scan_hidden",
    512,
    "--clustering=scan: hidden units of each head's MLP; 0 = a linear head.",
    lower_bound=0,
)
flags.DEFINE_integer("scan_epochs", 50, "--clustering=scan: passes over all images.", lower_bound=1)
flags.DEFINE_integer(
    "scan_batch_size", 512, "--clustering=scan: (image, neighbour) pairs per step.", lower_bound=2
)
flags.DEFINE_float(
    "scan_learning_rate", 1e-3, "--clustering=scan: Adam learning rate.", lower_bound=0.0
)

# ---------------------------------------------------------------- models (DESIGN.md §3)
_section("models")
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
flags.DEFINE_enum(
    "output_mode",
    "direct",
    ["direct", "masked", "residual"],
    "Generator output: 'direct' = tanh(conv) (paper); 'masked' = A*C + (1-A)*x with a "
    "predicted colour image C and attention mask A in [0,1] (GANimation): pixels the mask "
    "leaves alone are the input's; 'residual' = tanh(artanh(x) + conv) (residual images, "
    "Shen and Liu 2017): the input's colours come through where G adds nothing "
    "(needs --nohf_bypass).",
)
flags.DEFINE_enum(
    "skip_connections",
    "none",
    ["none", "plain", "gated"],
    "Encoder-to-decoder skips at 1/2 and full resolution: none (paper), 'plain' "
    "(concatenate + 1x1 conv, AttGAN) or 'gated' by the target condition (after STGAN's "
    "selective transfer units).",
)
flags.DEFINE_integer(
    "skip_levels",
    2,
    "With --skip_connections: how many decoder upsamplings, counted from the bottleneck, get "
    "an encoder skip: 2 = at 1/2 and full resolution, 1 = at 1/2 only (AttGAN's default of "
    "one shortcut: fewer skips copy less of the input and leave more room to edit).",
    lower_bound=1,
    upper_bound=2,
)
flags.DEFINE_bool(
    "hf_bypass",
    False,
    "Add the input's high-frequency band (x - 5x5 binomial blur) to the generator output "
    "(HifaFace): fine detail passes through instead of being re-synthesised.",
)
flags.DEFINE_enum(
    "decoder_norm",
    "instance",
    ["instance", "demod"],
    "Normalisation in the generator's decoder: 'instance' = ASIN in the residual blocks and "
    "instance norm after each upsampling (paper); 'demod' = StyleGAN2's modulated "
    "convolutions with weight demodulation (the cluster statistics' MLP gives each conv's "
    "style and bias) and no per-sample statistics, against instance norm's droplet artefacts.",
)
flags.DEFINE_enum(
    "encoder_norm",
    "instance",
    ["instance", "none"],
    "Normalisation in the generator's encoder: 'instance' (paper: instance norm after each "
    "conv) or 'none' (biased convs, no per-sample statistics; with --decoder_norm=demod the "
    "generator has no instance norm left, the StyleGAN2 cure for droplet artefacts).",
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
_section("training")
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
flags.DEFINE_enum(
    "gan_loss",
    "wgan_gp",
    ["wgan_gp", "r1"],
    "Adversarial loss: 'wgan_gp' = WGAN with the gradient penalty on interpolates (paper); "
    "'r1' = the non-saturating logistic loss with the R1 penalty on real images "
    "(StyleGAN2, StarGAN v2; weigh it with --lambda_gp=1, StarGAN v2's gamma).",
)
flags.DEFINE_float(
    "lambda_gp",
    10.0,
    "Weight of D's gradient penalty: WGAN-GP's (10, paper) or, with --gan_loss=r1, R1's gamma.",
)
flags.DEFINE_integer(
    "gp_every",
    1,
    "Compute the gradient penalty on every N-th D step only, weighted N times, so its mean "
    "weight stays --lambda_gp (StyleGAN2's lazy regularisation; fewer double backward passes "
    "through D). 1 = every D step (paper).",
    lower_bound=1,
)
flags.DEFINE_bool(
    "share_g_forward",
    False,
    "On the iterations with a G step (every --n_critic-th), compute G(x, s_t) once for both "
    "the D and the G update instead of once each (one G forward pass fewer per G step; the "
    "D update's fake then has the G update's decoder noise). Off = paper (StarGAN computes "
    "it twice).",
)
flags.DEFINE_float("lambda_lat", 10.0, "Weight of the L2 latent loss on h(x) vs h(G(x)) (10).")
flags.DEFINE_float(
    "lambda_self",
    0.0,
    "Weight of the L1 self-reconstruction loss |x - G(x, s_own cluster)| (FUNIT/TUNIT); "
    "0 = off (paper).",
    lower_bound=0.0,
)
flags.DEFINE_integer(
    "cls_neighbors",
    0,
    "G's classification loss as a softmax over the target cluster t and its --cls_neighbors "
    "nearest clusters (centroid distance) only, not all k: the translation must look more "
    "like t than like the clusters that share most of what t is (for a cluster of blond "
    "women, other women), so what t shares with them (gender) is not asked of G. "
    "D's own classification stays over all k. Needs hard targets (--blend_prob=0). "
    "0 = all k (paper); measurements: docs/experiments/2026-12-06-combinations-reference-groups.md.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "cls_credit_neighbors",
    0,
    "G's classification target credits the target cluster t and its --cls_credit_neighbors "
    "nearest clusters (centroid distance) as one: the loss is -log of their summed "
    "probability, so a translation that lands in t's nearest cluster counts as t (for a "
    "cluster of men wearing glasses, the nearest may be women wearing glasses, and a woman "
    "need not become a man to get the glasses). Fewer than --cls_neighbors when that is set. "
    "Needs hard targets (--blend_prob=0); 0 = t alone (paper).",
    lower_bound=0,
)
flags.DEFINE_float(
    "lambda_chroma",
    0.0,
    "Weight of a colour term on the cycle and self reconstructions: the L1 of their chroma "
    "(Cb, Cr) against the input's on 4 x 4 pixel block means, against colour casts (green "
    "cheeks, purple lips) the per-pixel L1 weighs lightly; 0 = off (paper).",
    lower_bound=0.0,
)
flags.DEFINE_float(
    "blend_prob",
    0.0,
    "Fraction of training targets that are random blends of conditions (docs/experiments/2026-12-01-beyond-clusters.md): "
    "s_c + a (s_t - s_c) + b (s_t2 - s_c) with (1-a-b, a, b) uniform on the simplex, and the "
    "same blend of the three clusters as the target of G's classification loss: the "
    "conditions of strengths in [0, 1] and of interpolations between clusters. 0 = off "
    "(paper).",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_float(
    "combine_prob",
    0.0,
    "Fraction of training targets that are two clusters at once: s_t + s_t2 - s_c, the "
    "condition `translate --cluster=t:1,t2:1` and `evaluate --combinations` give a pair, "
    "with t2 drawn uniformly among the clusters other than c whose credited group "
    "(--cls_credit_neighbors) shares none with t's, and G's classification asked for both "
    "(two terms, each over its own --cls_neighbors softmax without the other's group). "
    "Combined targets are not extrapolated. Needs hard targets (--blend_prob=0); "
    "0 = off (paper).",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_float(
    "extrapolate_prob",
    0.0,
    "Fraction of training targets taken past their cluster (docs/experiments/2026-12-01-beyond-clusters.md): "
    "s_c + beta (s_t - s_c) with beta uniform on [1, "
    f"{sig.MAX_STRENGTH:g}], the strengths above 1 that translate and the SavedModel accept, "
    "with the plain cluster t as the target of G's classification loss; 0 = off (paper).",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_float(
    "lambda_mask",
    0.0,
    "Weight of the attention-mask regulariser (--mask_penalty's mean + smoothness; "
    "GANimation: 0.1) with --output_mode=masked; 0 = off.",
    lower_bound=0.0,
)
flags.DEFINE_enum(
    "mask_penalty",
    "edit",
    ["edit", "keep"],
    "What --lambda_mask penalises in the blend A*C + (1-A)*x: 'edit' = mean(A), the edited "
    "area (edits stay small; with the cycle and self losses the mask can close for good); "
    "'keep' = mean(1-A), the area copied from the input (GANimation's regulariser, against "
    "a mask that stops editing; at 0.1 it did not keep the mask open at 64 px, "
    "docs/experiments/2026-12-02-identity.md).",
)
flags.DEFINE_float(
    "ema_decay",
    0.999,
    "Decay of the generator's moving average used for samples and export.",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_bool("random_flip", True, "Random horizontal flips of training images.")
flags.DEFINE_integer(
    "holdout",
    0,
    "Images kept out of GAN training (the last N clustered images by sorted path), so that "
    "`evaluate` can translate faces the generator never saw; 0 = train on all.",
    lower_bound=0,
)
flags.DEFINE_enum(
    "strategy",
    "mirrored",
    ["mirrored", "multi_worker", "one_device"],
    "tf.distribute strategy: 'mirrored' = all local GPUs (else the CPU); 'multi_worker' = "
    "MultiWorkerMirroredStrategy configured by TF_CONFIG; 'one_device' = no distribution.",
)
flags.DEFINE_enum(
    "mixed_precision",
    config_lib.TrainConfig.mixed_precision,
    list(hardware.PRECISIONS),
    "Keras mixed-precision policy. 'auto' = mixed_bfloat16 on CPUs with AMX bfloat16 units "
    "and no GPU (speed and quality: docs/experiments/2026-12-05-readme-measurements.md), "
    "float32 elsewhere; 'none' = float32; mixed_float16 for GPUs.",
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

# ---------------------------------------------------------------- export (DESIGN.md §5)
_section("export")
flags.DEFINE_string(
    "export_dir",
    "",
    "Base folder of exported SavedModels, laid out <export_dir>/<model_name>/<version>/ for "
    "TF Serving. `xplore_tf.export` defaults to WORKDIR/export when empty; `xplore_tf.train` "
    "exports at the end of training only when this is set.",
)
flags.DEFINE_string(
    "model_name",
    "xplore",
    "Model name: the export's folder under --export_dir and TF Serving's model_spec.name.",
)
flags.DEFINE_integer(
    "export_version",
    0,
    "Version folder of the export; 0 = the largest existing version + 1 (1 for the first). "
    "An existing version is never overwritten.",
    lower_bound=0,
)
flags.DEFINE_string(
    "checkpoint",
    "",
    "Checkpoint prefix (e.g. WORKDIR/checkpoints/ckpt-1000) whose G_ema is exported or used "
    "by translate; empty = the latest in WORKDIR/checkpoints.",
)
flags.DEFINE_bool(
    "allow_untrained",
    False,
    "When no checkpoint exists, export/translate a freshly initialised generator (for "
    "benchmarks and plumbing tests) instead of failing.",
)
flags.DEFINE_enum(
    "edit_base",
    "residual",
    ["residual", "difference"],
    "Full-resolution translations (the translate_full signatures; translate and the client "
    "by default): the edit carried to the input's own size is G(x, s_target) minus x itself "
    "(residual) or minus G(x, s_source), the translation into the input's own cluster "
    "(difference). Measured on real photos in docs/experiments/2026-12-04-full-resolution.md.",
)
flags.DEFINE_enum(
    "face_colour",
    "no_cast",
    ["no_cast", "luminance", "generator"],
    "Full-resolution translations, the face's colour: no_cast removes the cast the generator "
    "puts on the whole face (the edit's median over the cheeks, subtracted under an "
    "inner-face mask), so the skin keeps its tone while local edits and hair/background "
    "colour pass in full; luminance also lets only brightness changes through inside the "
    "face (its hue kept; weaker edits); generator keeps the generator's colours.",
)

# ---------------------------------------------------------------- translate (no server)
_section("translate")
flags.DEFINE_list(
    "images",
    [],
    "`xplore_tf.translate`: image files to translate (comma separated; JPEG/PNG/GIF/BMP/WebP).",
)
flags.DEFINE_string(
    "cluster",
    "",
    "`xplore_tf.translate`: target cluster, an id in [0, k) or a name from "
    "WORKDIR/clusters/cluster_names.json; or several with weights, ID_OR_NAME:WEIGHT,... "
    "(e.g. 12:1.0,31:0.5: condition = s_src + sum_i w_i (s_i - s_src), s_src the input's "
    f"own cluster; weights >= 0 summing to at most {sig.MAX_STRENGTH:g}; docs/guide/beyond_clusters.md).",
)
flags.DEFINE_float(
    "strength",
    None,
    "`xplore_tf.translate`: attribute strength alpha toward --cluster: condition = s_src + "
    "alpha (s_target - s_src), s_src = the statistics of the input's nearest cluster; 0 = "
    f"the input's own cluster, 1 = the target's, up to {sig.MAX_STRENGTH:g} extrapolates. "
    "Unset = the plain cluster translation (alpha = 1 without finding s_src). With "
    "--reference_edit=shared: how far each input moves by what the group shares.",
    lower_bound=0.0,
    upper_bound=sig.MAX_STRENGTH,
)
flags.DEFINE_string(
    "reference_dir",
    "",
    "`xplore_tf.translate`: translate toward a reference group instead of a cluster: the "
    "mean and std of this folder's images in the clustering space (computed as cluster "
    "statistics are), e.g. 20-50 photos showing one attribute. Warns when the group lies "
    "far from every training cluster.",
)
flags.DEFINE_enum(
    "reference_edit",
    "group",
    ["group", "shared"],
    "`xplore_tf.translate`: with --reference_dir, what the group gives each input: group = "
    "its whole statistics (hair, gender, background and light together); shared = only what "
    "its members have in common: each input keeps its own statistics and moves from the "
    "clusters' centre (the mean of the centroids) toward the group's mean, --strength "
    "times a fixed length (default 1; a group of blond men and women gives blond hair and "
    "keeps gender).",
)
flags.DEFINE_string(
    "keep",
    "",
    "`xplore_tf.translate`: clusters (ids or names, comma-separated) whose direction the edit "
    "keeps: the part of (condition - s_src) along s_j - mean_i s_i is taken out, at the "
    "edit's length. A cluster carries all its members share: into a cluster of blond women, "
    "--keep=<the men's cluster> keeps men male. Empty = the plain edit.",
)
flags.DEFINE_bool(
    "all_clusters",
    False,
    "`xplore_tf.translate`: write one grid instead: rows = images, columns = the input then "
    "every cluster 0..k-1.",
)
flags.DEFINE_string(
    "saved_model",
    "",
    "`xplore_tf.translate`: a SavedModel version folder (<export_dir>/<model_name>/<version>) "
    "to translate with; empty = G_ema of --checkpoint (default: the run's latest).",
)
flags.DEFINE_enum(
    "output_resolution",
    sig.INPUT_RESOLUTION,
    list(sig.OUTPUT_RESOLUTIONS),
    "`xplore_tf.translate`: input = each image back at its own resolution (the square the "
    "model sees, e.g. a 400 px aligned face at 400 px): the edit the generator makes at its "
    "resolution is added to the image, so what it does not change keeps every original "
    "pixel (with --paste_back only that edit is added to the photo); model = the generator's "
    "output at its own resolution (--image_size).",
)

# ---------------------------------------------------------------- explore: the page
_section("explore")
flags.DEFINE_string(
    "host",
    "127.0.0.1",
    "`xplore_tf.explore`: the address the page listens on. Another than 127.0.0.1 (e.g. "
    "0.0.0.0) makes it reachable from the network, without any login: a warning says so.",
)
flags.DEFINE_integer(
    "port", 8765, "`xplore_tf.explore`: the page's port (0 = any free one).", lower_bound=0
)
flags.DEFINE_string(
    "server",
    "",
    "`xplore_tf.explore`: HOST:PORT of a TF Serving (or xplore_tf.testing.dev_server) gRPC endpoint "
    "serving this run's export (--model_name); empty = the run's model in process "
    "(--saved_model, else its newest checkpoint).",
)
flags.DEFINE_integer(
    "max_upload_mb",
    25,
    "`xplore_tf.explore`: the largest photo file the page accepts, MB.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "heatmap_images",
    24,
    "`xplore_tf.explore`: how many of the run's images each card's 'where it edits' heat map "
    "averages over.",
    lower_bound=1,
)

# ---------------------------------------------------------------- prepare: real photos in, real photos out
_section("prepare")
# `python -m xplore_tf.prepare --images_dir=RAW --out=ALIGNED` (detect, align, crop faces),
# `--dataset=folder --prepare` in front of cluster/train, and `translate --paste_back`.
flags.DEFINE_bool(
    "prepare",
    False,
    "With --dataset=folder: detect and align the faces of --images_dir first (into "
    "WORKDIR/prepared, reused while these prepare flags are unchanged) and cluster/train on "
    "those aligned crops instead of centre-cropping the photos.",
)
flags.DEFINE_enum(
    "detector",
    "mtcnn",
    ["mtcnn", "dlib"],
    "Face detector with five landmarks, weights inside its wheel (no download): 'mtcnn' "
    "(pip install 'xplore_tf[prepare]') or 'dlib' (HOG + 68-point predictor, "
    "pip install 'xplore_tf[eval]'). docs/experiments/2026-12-05-readme-measurements.md has the measurements.",
)
flags.DEFINE_enum(
    "faces",
    "all",
    ["all", "largest"],
    "Which faces of a photo to prepare / paste back: every face found, or only the largest.",
)
flags.DEFINE_integer(
    "aligned_size",
    128,
    "Side in px of the aligned square face crops (CelebA's central 178x178 framing).",
    lower_bound=16,
)
flags.DEFINE_integer(
    "min_face_size",
    20,
    "Faces whose detection box is smaller than this many photo px (shorter side) are skipped "
    "(20 = MTCNN's own smallest; a 20 px face is upscaled ~4x into a 128 px crop).",
    lower_bound=1,
)
flags.DEFINE_float(
    "min_face_score",
    0.0,
    "Faces whose detector score is lower are skipped: mtcnn's probability 0..1 (it already "
    "drops faces under 0.8), dlib's SVM margin (0 = its decision boundary). 0 = keep all.",
)
flags.DEFINE_bool(
    "paste_back",
    False,
    "`xplore_tf.translate`: detect and align every face of each --images photo (needs the "
    "detector), translate each aligned crop, warp it back and blend it in with a feathered "
    "mask, and write the whole photo.",
)
flags.DEFINE_float(
    "paste_feather",
    0.12,
    "Paste-back: width of the mask's soft edge, as a fraction of the aligned crop's side.",
    lower_bound=0.01,
    upper_bound=0.5,
)

# ---------------------------------------------------------------- reports
_section("reports")
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

# ---------------------------------------------------------------- evaluation (xplore_tf.evaluate)
_section("evaluation")
flags.DEFINE_float(
    "transfer_min_precision",
    0.8,
    "Transfer is measured for an attribute when its best cluster has at least this "
    "precision (fraction of members with the attribute, 0..1); translations into that "
    "cluster should then show the attribute.",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_integer(
    "eval_images",
    500,
    "Held-out labelled images (never used to train the probe or identity regressor) that "
    "are translated and judged; at most half of the labelled images.",
    lower_bound=2,
)
flags.DEFINE_integer(
    "probe_train_images",
    2000,
    "Other labelled images (disjoint identities when labels have an 'identity' column) "
    "that train the attribute probe and the synthetic identity regressor.",
    lower_bound=4,
)
flags.DEFINE_string(
    "attribute_classifier",
    "",
    "Optional judge of transfer: a Keras model file (.keras) taking float32 RGB [N,H,W,3] "
    "in [0,255] and returning one sigmoid per attribute, in --attributes order. Empty = a "
    "logistic-regression probe per attribute on the clustering extractor's features.",
)
flags.DEFINE_enum(
    "identity_embedder",
    "auto",
    ["auto", "geometry", "dlib", "none"],
    "Identity embedding for identity preservation: 'geometry' = a small CNN regressing the "
    "synthetic faces' identity geometry (labels.csv face_width..mouth_width); 'dlib' = "
    "dlib's 128-d face descriptor (pip install 'xplore_tf[eval]'); 'auto' = geometry when "
    "the labels have those columns, else dlib when installed, else skipped.",
)
flags.DEFINE_float(
    "identity_threshold",
    0.0,
    "Verification threshold on the identity distance (L2); 0 = dlib's usual 0.6, or for "
    "the geometry embedder the threshold with the best accuracy on real same/different pairs.",
    lower_bound=0.0,
)
flags.DEFINE_string(
    "identity_pairs_csv",
    "",
    "Real reference pairs 'image_a,image_b,same_identity' (CelebA sample: "
    "identity_pairs.csv). Empty = identity_pairs.csv beside --labels_csv when present, "
    "else pairs from the labels' 'identity' column among the eval images.",
)
flags.DEFINE_integer(
    "identity_max_pairs",
    500,
    "At most this many same-identity and this many different-identity real pairs.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "identity_regressor_epochs",
    30,
    "Training epochs of the synthetic identity-geometry regressor.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "identity_regressor_members",
    5,
    "Independently seeded geometry regressors whose predictions are averaged (the synthetic "
    "identity judge). One regressor's seed moved one model's verification rate by 0.2; the "
    "mean of several is steadier (docs/experiments/2026-12-02-identity.md). 1 = the single regressor of early reports.",
    lower_bound=1,
)
flags.DEFINE_string(
    "inception_weights",
    "",
    "Optional: local keras.applications InceptionV3 no-top weights "
    "(inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5) to also report FID. "
    "Empty = only the Fréchet distance in the clustering extractor's feature space.",
)
flags.DEFINE_list(
    "strengths",
    [],
    "Strength curve (docs/guide/beyond_clusters.md): translate the held-out images into each transfer "
    "attribute's cluster at these strengths alpha (comma separated, each in "
    f"[0, {sig.MAX_STRENGTH:g}], e.g. 0,0.25,0.5,0.75,1,1.25) and report transfer rate, "
    "identity and L1 to the input per alpha. Empty = no curve.",
)
flags.DEFINE_integer(
    "reference_group_size",
    0,
    "Reference groups (docs/guide/beyond_clusters.md): for each transfer attribute, this many held-out "
    "images having it (by the labels) form a group; the other held-out images are translated "
    "toward the group's statistics and toward the group's nearest cluster, and the "
    "attribute's transfer is reported for both. 0 = off; the reports in docs/experiments use 20.",
    lower_bound=0,
)
flags.DEFINE_list(
    "combinations",
    [],
    "Combined attributes (docs/guide/beyond_clusters.md): attribute pairs 'a+b' (labels.csv column names, "
    "each with a transfer cluster, e.g. hair_blond+glasses), translated into both clusters "
    "at once (condition s_src + (s_a - s_src) + (s_b - s_src)); reports how often both are "
    "present, beside translating into either alone and into the midpoint (s_a + s_b) / 2. "
    "Empty = off.",
)
flags.DEFINE_list(
    "side_effect_attributes",
    [],
    "Side effects: the summary names, per target, the attribute whose judged rate moves most "
    "among these (labels.csv column names, e.g. Male to watch gender). metrics.json keeps "
    "every attribute's change either way. Empty = among all judged attributes.",
)
flags.DEFINE_integer(
    "eval_batch_size",
    32,
    "Images per generator / extractor call during evaluation.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "report_images",
    8,
    "Rows (input images) of the translation matrix in WORKDIR/eval/report.html; the report "
    "also shows the first 2 x this many translations the droplet detector flagged.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "report_clusters",
    10,
    "Columns (target clusters) of the translation matrix: the transfer clusters first, "
    "then the largest others.",
    lower_bound=1,
)


_section("")  # the end of the definitions
SECTIONS = {
    name: sorted(after - before)
    for (name, before), (_, after) in zip(_SECTION_STARTS[:-1], _SECTION_STARTS[1:], strict=True)
}
STAGE_SECTIONS = {  # the sections each binary's --help lists (--helpfull lists every flag)
    "cluster": ("general", "data", "clustering", "features", "reports"),
    "train": ("general", "data", "clustering", "features", "models", "training", "export"),
    "export": ("general", "export"),
    "translate": ("general", "translate", "prepare"),
    "explore": ("general", "explore", "translate", "prepare"),
    "prepare": ("data", "prepare"),
    "evaluate": ("general", "data", "reports", "evaluation"),
    "synthesize": ("general", "data"),
}


def declare_key_flags(stage: str, module: str) -> None:
    """Makes `--help` of the binary `module` (its `__name__`) list the flags of `stage`.

    absl's --help lists the main module's key flags only, and every flag lives here.
    """
    name = sys.argv[0] if module == "__main__" else module
    for section in STAGE_SECTIONS[stage]:
        for flag in SECTIONS[section]:
            FLAGS.register_key_flag_for_module(name, FLAGS[flag])


@flags.validator(
    "strengths",
    message=f"--strengths: expected numbers in [0, {sig.MAX_STRENGTH:g}], comma separated",
)
def _check_strengths(values) -> bool:
    try:
        alphas = [float(v) for v in values]
    except ValueError:
        return False
    return all(0.0 <= a <= sig.MAX_STRENGTH for a in alphas)


@flags.validator(
    "combinations",
    message="--combinations: expected attribute pairs 'a+b' (two different labels.csv columns), "
    "comma separated",
)
def _check_combinations(values) -> bool:
    pairs = [v.split("+") for v in values]
    return all(len(p) == 2 and all(p) and p[0] != p[1] for p in pairs)


@flags.multi_flags_validator(
    ["dataset", "images_dir"],
    message="--images_dir is required with --dataset=folder.",
)
def _check_images_dir(values) -> bool:
    return values["dataset"] != "folder" or bool(values["images_dir"])


_SYNTHETIC_ONLY = (
    "synthetic_num",
    "synthetic_size",
    "synthetic_seed",
    "synthetic_images_per_identity",
)


def resolve_dataset(*, warn: bool = True) -> str:
    """--dataset as the user meant it: a flag the user set is never silently ignored.

    `--images_dir=DIR` without `--dataset` means that folder (--dataset defaults to
    synthetic); with an explicit `--dataset=synthetic` (command line or flagfile) it is a
    flags.ValidationError. With the folder, explicitly set --synthetic_* flags are logged
    as ignored (a warning: flagfiles such as configs/demo.cfg set them).
    """
    f = FLAGS
    dataset = f.dataset
    if f["images_dir"].present and f.images_dir:
        if not f["dataset"].present:
            dataset = "folder"
        elif dataset == "synthetic":
            raise flags.ValidationError(
                f"--images_dir={f.images_dir} is set but --dataset=synthetic renders synthetic "
                "faces instead: pass --dataset=folder to read the folder, or drop --images_dir"
            )
    if dataset == "folder" and warn:
        ignored = [f"--{name}" for name in _SYNTHETIC_ONLY if f[name].present]
        if ignored:
            logging.warning(
                "%s: only for --dataset=synthetic; ignored, the images come from --images_dir=%s",
                ", ".join(ignored),
                f.images_dir,
            )
        if not f["feature_extractor"].present:
            logging.warning(
                "--images_dir=%s with the default --feature_extractor=pixels, which sees only "
                "colour layout (made for the synthetic faces): for real faces pass "
                "--feature_extractor=mobilenet_v2 --feature_weights=FILE.npz (as "
                "configs/celeba10k_mobilenet.cfg does), or --feature_extractor=pixels to keep it",
                f.images_dir,
            )
    return dataset


# Flags whose value is a file or folder (and --model_name, a folder name).
PATH_FLAGS = (
    "workdir",
    "images_dir",
    "out",
    "feature_weights",
    "export_dir",
    "model_name",
    "checkpoint",
    "reference_dir",
    "saved_model",
    "labels_csv",
    "attribute_classifier",
    "identity_pairs_csv",
    "inception_weights",
)
_INLINE_COMMENT = re.compile(r"\s#")


def check_path_values() -> None:
    """A path flag's value that ends in white space or holds " #" is refused: absl keeps
    everything after '=' on a flagfile line, so `--workdir=runs/a   # my run` would name a
    folder `runs/a   # my run`.

    Raises:
        flags.ValidationError: one line naming the flag and its value.
    """
    for name in PATH_FLAGS:
        value = FLAGS[name].value or ""
        if value != value.rstrip() or _INLINE_COMMENT.search(value):
            raise flags.ValidationError(
                f"--{name}={value!r}: a path ending in spaces or holding ' #': absl does not "
                "strip comments or spaces after '=' in a flagfile, so put the comment on a line "
                "of its own"
            )


# Config fields set by a flag of another name ((section, field) -> flag); every other field of
# a Config section is set by the flag of its own name.
FLAG_OF_FIELD = {
    ("cluster", "batch_size"): "extract_batch_size",
    ("cluster", "method"): "clustering",
    ("report", "min_cluster_size"): "report_min_cluster_size",
    ("eval", "batch_size"): "eval_batch_size",
    ("export", "version"): "export_version",
    ("prepare", "enabled"): "prepare",
}
# Config fields that hold a path the stages use from elsewhere: made absolute, '~' expanded.
_ABSOLUTE_PATHS = frozenset(
    {
        ("data", "images_dir"),
        ("export", "export_dir"),
        ("export", "checkpoint"),
        ("eval", "attribute_classifier"),
        ("eval", "identity_pairs_csv"),
        ("eval", "inception_weights"),
    }
)


def flag_of_field(section: str, field: str) -> str:
    """The flag that sets `Config.<section>.<field>` (see FLAG_OF_FIELD)."""
    return FLAG_OF_FIELD.get((section, field), field)


def _section_from_flags(section: str, cls: type, computed: dict):
    """One Config section from the flags: each field from its flag (lists become tuples, paths
    absolute), except the fields in `computed`, which are derived from several flags."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in computed:
            values[field.name] = computed[field.name]
            continue
        value = FLAGS[flag_of_field(section, field.name)].value
        if (section, field.name) in _ABSOLUTE_PATHS:
            value = _abspath(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[field.name] = value
    return cls(**values)


def _num_clusters(allow_k_sweep: bool) -> tuple[int, ...]:
    ks = tuple(int(k) for k in FLAGS.num_clusters)
    if len(ks) > 1 and not allow_k_sweep:
        raise flags.ValidationError(
            f"--num_clusters={','.join(map(str, ks))}: this stage takes one k; only "
            "`python -m xplore_tf.cluster` sweeps several (see WORKDIR/clusters/k_sweep.html), "
            "then pass the chosen one, e.g. --num_clusters=" + str(ks[0])
        )
    return ks


def config_from_flags(*, allow_k_sweep: bool = False) -> config_lib.Config:
    """Converts the parsed flags once into the frozen, typed Config.

    Raises flags.ValidationError for flags that contradict each other (`resolve_dataset`),
    and for several --num_clusters values unless `allow_k_sweep` (only the cluster stage
    sweeps k; training, export and evaluation take one k).
    """
    if not FLAGS.workdir:
        raise flags.ValidationError("--workdir is required (where every artifact is written).")
    check_path_values()
    ks = _num_clusters(allow_k_sweep)
    computed = {
        "data": {"dataset": resolve_dataset()},
        "cluster": {"num_clusters": ks[0], "k_sweep": ks if len(ks) > 1 else ()},
        "eval": {"strengths": tuple(float(v) for v in FLAGS.strengths)},
    }
    sections = {
        name: _section_from_flags(name, cls, computed.get(name, {}))
        for name, cls in typing.get_type_hints(config_lib.Config).items()
        if dataclasses.is_dataclass(cls)
    }
    return config_lib.Config(workdir=_abspath(FLAGS.workdir), seed=FLAGS.seed, **sections)


def _abspath(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path)) if path else ""


def prepare_config_from_flags() -> config_lib.PrepareConfig:
    """The face preparation flags as a PrepareConfig (needs no --workdir: `xplore_tf.prepare`)."""
    return _section_from_flags("prepare", config_lib.PrepareConfig, {})


def write_resolved_flags(workdir: str, stage: str) -> str:
    """Writes this module's flags, as parsed, to WORKDIR/flags_<stage>.txt (a valid flagfile)."""
    lines = [f"# resolved flags of `python -m xplore_tf.{stage}`"]
    dataset = resolve_dataset(warn=False)
    for flag in FLAGS.get_flags_for_module(__name__):
        if flag.name == "dataset":  # as resolved against --images_dir
            lines.append(f"--dataset={dataset}")
        elif not (dataset == "folder" and flag.name in _SYNTHETIC_ONLY):
            lines.append(flag.serialize())
    path = os.path.join(workdir, f"flags_{stage}.txt")
    io_utils.write_text(path, "\n".join(line for line in lines if line) + "\n")
    return path
