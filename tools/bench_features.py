"""Throughput of the feature extractors on this machine (random weights, batch 32).

    python -m tools.bench_features [--batch 32] [--warmup 2] [--batches 5] [--names a,b]

Why: the clustering stage embeds the whole dataset once per extractor; images/s tells how
long that takes (e.g. 200k CelebA faces at 15 img/s is ~3.7 h).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xplore_tf.features import build_extractor  # noqa: E402

DEFAULT_NAMES = ("pixels", "mobilenet_v2", "resnet50", "bagnet17")


def bench(name: str, batch: int, warmup: int, batches: int) -> tuple[int, int, float] | None:
    """(input size, feature dim, images/s) of extractor `name`, None if not importable."""
    try:
        ext = build_extractor(name, None)  # random weights: speed does not depend on them
    except ImportError as e:
        print(f"{name}: skipped ({e})", file=sys.stderr)
        return None
    images = tf.constant(
        np.random.default_rng(0).uniform(0, 255, (batch, ext.input_size, ext.input_size, 3)),
        tf.float32,
    )
    run = tf.function(lambda x: ext.model(x, training=False))
    for _ in range(warmup):
        run(images).numpy()
    start = time.perf_counter()
    for _ in range(batches):
        run(images).numpy()
    return ext.input_size, ext.feature_dim, batch * batches / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_features", description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--names", default=",".join(DEFAULT_NAMES))
    args = parser.parse_args(argv)
    print(
        f"batch {args.batch}, {args.warmup} warm-up + {args.batches} timed batches, "
        f"{os.cpu_count()} CPUs, TF {tf.__version__}"
    )
    print(f"{'extractor':<14} {'input':>6} {'dim':>6} {'images/s':>10}")
    for name in args.names.split(","):
        result = bench(name, args.batch, args.warmup, args.batches)
        if result is not None:
            size, dim, rate = result
            print(f"{name:<14} {size:>6} {dim:>6} {rate:>10.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
