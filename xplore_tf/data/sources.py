"""Where a run's images come from: the embedded synthetic set or a user's folder."""

from __future__ import annotations

import os

from xplore_tf.config import Config


def prepare_inputs(config: Config) -> str:
    """Makes the run's input folder and returns it: renders the synthetic set
    (`--dataset=synthetic`), or detects and aligns the faces of --images_dir into
    WORKDIR/prepared (`--prepare`), each only when not done already; else checks that
    --images_dir is a folder. The stages' entry points call it once; everything after reads
    `images_dir`. Raises ValueError / FileNotFoundError naming the flag."""
    if config.data.dataset == "synthetic":
        if config.prepare.enabled:
            raise ValueError("--prepare needs photos: pass --images_dir (--dataset=folder)")
        from xplore_tf.data import synthetic

        d = config.data
        return synthetic.ensure_synthetic(
            config.images_dir,
            num=d.synthetic_num,
            size=d.synthetic_size,
            seed=d.synthetic_seed,
            images_per_identity=d.synthetic_images_per_identity,
        )
    if not config.data.images_dir:
        raise ValueError("--images_dir is required with --dataset=folder")
    if not os.path.isdir(config.data.images_dir):
        raise FileNotFoundError(f"--images_dir: {config.data.images_dir!r} is not a folder")
    if config.prepare.enabled:  # faces detected and aligned first (xplore_tf.prepare_lib)
        from xplore_tf import prepare_lib

        return prepare_lib.ensure_prepared(config)
    return config.data.images_dir


def images_dir(config: Config) -> str:
    """The folder of input images that `prepare_inputs` made (no side effect).

    Raises FileNotFoundError when it is not there (the stage did not prepare its inputs).
    """
    root = config.prepared_dir if config.prepare.enabled else config.images_dir
    if not root or not os.path.isdir(root):
        raise FileNotFoundError(
            f"{root or '--images_dir'}: the run's input images are not there; "
            "run xplore_tf.cluster (or train) first"
        )
    return root


def default_labels_csv(config: Config) -> str:
    """--labels_csv, or the synthetic set's own labels when that is the source."""
    if config.report.labels_csv:
        return config.report.labels_csv
    if config.data.dataset == "synthetic":
        return os.path.join(config.images_dir, "labels.csv")
    return ""


def split_holdout(images: list[str], holdout: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices): the last `holdout` images by sorted path.

    A fixed rule rather than a random draw, so training and evaluation agree on it without
    sharing state.
    """
    if holdout >= len(images):
        raise ValueError(f"--holdout={holdout} leaves no training images (of {len(images)})")
    order = sorted(range(len(images)), key=lambda i: images[i])
    cut = len(images) - holdout
    return sorted(order[:cut]), sorted(order[cut:])
