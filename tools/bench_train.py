"""Training-speed benchmark: images/s of full XploreGAN iterations on this machine.

    python -m tools.bench_train --preset=paper128   # 128 px, batch 8, paper widths
    python -m tools.bench_train --preset=demo       # configs/demo.cfg model and batch
    python -m tools.bench_train --preset=demo_paper_g  # the same with the paper's generator

Runs the real Trainer (D step every iteration, G step + EMA every n_critic) on random
in-memory images, so it measures the model, not the disk. Prints images/s (counting each
iteration's batch once, as the training progress line does), seconds per iteration and the
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PRESETS = {
    # Paper widths (DESIGN.md §3): base 64, 6+6 residual blocks, MLP depth 3, D with 6 downs.
    "paper128": dict(
        image_size=128,
        batch_size=8,
        g_channels=64,
        g_res_blocks=6,
        d_channels=64,
        k=100,
        mlp_hidden=256,
        upsample="transpose",
    ),
    # configs/demo.cfg (with its identity-preserving options, docs/identity.md)
    "demo": dict(
        image_size=32,
        batch_size=16,
        g_channels=16,
        g_res_blocks=2,
        d_channels=16,
        k=20,
        mlp_hidden=64,
        upsample="resize_conv",
        skip_connections="plain",
        hf_bypass=True,
        lambda_self=10.0,
    ),
}
# configs/demo.cfg's sizes with the paper's generator (no identity options), for the ratio.
PRESETS["demo_paper_g"] = {
    **PRESETS["demo"],
    "skip_connections": "none",
    "hf_bypass": False,
    "lambda_self": 0.0,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations (tracing)")
    parser.add_argument(
        "--mixed_precision", default="none", choices=["none", "mixed_bfloat16", "mixed_float16"]
    )
    for key in ("image_size", "batch_size", "g_channels", "g_res_blocks", "d_channels", "k"):
        parser.add_argument(f"--{key}", type=int, default=None, help=f"override the preset's {key}")
    args = parser.parse_args()

    import tensorflow as tf

    from xplore_tf import config as config_lib
    from xplore_tf import train_lib
    from xplore_tf.clustering import artifacts

    p = dict(PRESETS[args.preset])
    p.update({k: v for k, v in vars(args).items() if k in p and v is not None})
    config = config_lib.Config(
        workdir="/tmp/bench_train",
        model=config_lib.ModelConfig(
            image_size=p["image_size"],
            g_channels=p["g_channels"],
            g_res_blocks=p["g_res_blocks"],
            d_channels=p["d_channels"],
            mlp_hidden=p["mlp_hidden"],
            upsample=p["upsample"],
            skip_connections=p.get("skip_connections", "none"),
            hf_bypass=p.get("hf_bypass", False),
        ),
        train=config_lib.TrainConfig(
            batch_size=p["batch_size"],
            n_critic=5,
            lambda_self=p.get("lambda_self", 0.0),
            mixed_precision=args.mixed_precision,
        ),
    )
    rng = np.random.default_rng(0)
    k, d = p["k"], 256
    stats = artifacts.ClusterStats(
        centroids=rng.normal(size=(k, d)).astype(np.float32),
        stds=rng.uniform(0.1, 1, (k, d)).astype(np.float32),
        sizes=np.full(k, 100),
        pca_mean=np.zeros(8, np.float32),
        pca_matrix=np.zeros((8, d), np.float32),
        extractor="pixels",
        image_size=64,
        crop_size=0,
    )
    strategy = train_lib.make_strategy("mirrored")
    trainer = train_lib.Trainer(config, stats, strategy)
    b, s = p["batch_size"], p["image_size"]
    batch = {
        "image": tf.constant(rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32)),
        "cluster": tf.constant(rng.integers(0, k, b).astype(np.int32)),
        "target": tf.constant(rng.integers(0, k, b).astype(np.int32)),
        "position": tf.range(b, dtype=tf.int64),
    }
    for step in range(args.warmup):
        trainer.train_step(step, batch)
    # Time whole n_critic cycles so D-only and D+G iterations are both counted.
    n = max(args.iterations // 5, 1) * 5
    start = time.perf_counter()
    for step in range(args.warmup, args.warmup + n):
        trainer.train_step(step, batch)
    seconds = time.perf_counter() - start
    g = sum(int(np.prod(v.shape)) for v in trainer.generator.trainable_variables)
    dd = sum(int(np.prod(v.shape)) for v in trainer.discriminator.trainable_variables)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"preset={args.preset} image={s}px batch={b} G={g / 1e6:.2f}M D={dd / 1e6:.2f}M "
        f"params k={k} precision={args.mixed_precision}: {n} iterations in {seconds:.1f} s, "
        f"{seconds / n:.3f} s/iteration, {n * b / seconds:.1f} images/s, peak RSS {peak_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
