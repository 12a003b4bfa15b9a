"""Input-pipeline benchmark: images/s of the training tf.data pipeline alone, no model.

    python -m tools.bench_input --images_dir=../shared/data/celeba10k/images --image_size=128

Reads a folder of images through the exact pipeline training uses
(`xplore_tf.data.training.training_dataset`: PIL decoding and resizing in a
`tf.numpy_function`, random flips and targets, batching, prefetch) and prints the images/s it
delivers, with the CPU count. Compare it with `tools.bench_train`'s images/s for the same size
and batch: the pipeline should deliver at least 10x what a training step consumes (issue 12),
so that it never makes the trainer wait. Pseudo-labels are random here (the pipeline's cost
does not depend on them); the first `--warmup` batches (thread pools, file cache) are not timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import xplore_tf  # noqa: E402, F401  (before TensorFlow: the package's oneDNN setting)
from xplore_tf.data import images as images_lib  # noqa: E402
from xplore_tf.data import training  # noqa: E402


def images_per_second(
    images_dir: str,
    *,
    image_size: int,
    batch_size: int,
    batches: int,
    warmup: int,
    crop_size: int = 0,
    num_clusters: int = 100,
) -> float:
    """Images/s of `batches` batches of training_dataset over the images under `images_dir`.

    Raises ValueError when the folder holds no images.
    """
    paths = images_lib.list_images(images_dir)
    if not paths:
        raise ValueError(f"--images_dir={images_dir}: no images found")
    clusters = np.random.default_rng(0).integers(0, num_clusters, len(paths)).astype(np.int32)
    data = training.TrainingData(images_dir, tuple(paths), clusters, num_clusters)
    dataset = training.training_dataset(
        data, image_size=image_size, batch_size=batch_size, seed=0, crop_size=crop_size
    )
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)["image"].numpy()
    return batches * batch_size / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_input", description=__doc__)
    parser.add_argument(
        "--images_dir", required=True, help="a folder of images (searched recursively)"
    )
    parser.add_argument("--image_size", type=int, default=128, help="training side, px")
    parser.add_argument("--batch_size", type=int, default=8, help="global batch")
    parser.add_argument(
        "--crop_size",
        type=int,
        default=0,
        help="centre square side before resizing (0: the largest)",
    )
    parser.add_argument("--batches", type=int, default=200, help="timed batches")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches first")
    args = parser.parse_args(argv)
    try:
        rate = images_per_second(
            args.images_dir,
            image_size=args.image_size,
            batch_size=args.batch_size,
            batches=args.batches,
            warmup=args.warmup,
            crop_size=args.crop_size,
        )
    except (ValueError, OSError) as e:
        print(f"bench_input: error: {e}", file=sys.stderr)
        return 2
    print(
        f"input pipeline: {rate:.1f} images/s ({args.image_size} px, batch {args.batch_size}, "
        f"{args.batches} batches after {args.warmup} warm-up; {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
