"""Training-speed benchmark: images/s of full XploreGAN iterations on this machine.

    python -m tools.bench_train --preset=paper128   # 128 px, batch 8, paper widths
    python -m tools.bench_train --preset=demo       # configs/demo.cfg model and batch
    python -m tools.bench_train --preset=demo_paper_g  # the same with the paper's generator

Runs the real Trainer (D step every iteration, G step + EMA every n_critic) on random
in-memory images, so it measures the model, not the disk. Prints images/s (counting each
iteration's batch once, as the training progress line does), seconds per iteration and the
process's peak resident memory, then the figure to quote across machines:

- the iteration's FLOP count, counted by TensorFlow's profiler on the traced D and G step
  graphs (D step + (G step) / n_critic; multiply-add = 2 FLOPs), and the FLOP/s reached;
- this CPU's peak: a 3x3 convolution 256->256 channels, 32x32, batch 16, forward + both
  backward passes, timed in the same process (issue 12's reference kernel);
- their ratio ("of conv peak"): how much of the step's time goes to arithmetic the model
  needs. The CPU's SIMD flags are printed beside it.

`--profile=DIR` also records a TensorFlow profiler trace of a few iterations, viewable in
TensorBoard's Profile tab (`pip install tensorboard-plugin-profile`).

`--max_cpu_isa=AVX2` caps oneDNN's kernels (the convolutions, and TensorFlow's matrix
products, which call oneDNN's) at an older instruction set through oneDNN's own dispatcher
control (`ONEDNN_MAX_CPU_ISA`), so an AVX2-only CPU's ratio can be measured on an AVX-512 or
AMX machine. The conv peak is then measured under the same cap. It is an approximation of
such a CPU: clock, caches and memory bandwidth stay this machine's.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import xplore_tf  # noqa: E402, F401  (before TensorFlow: the package's oneDNN setting)
from xplore_tf import hardware  # noqa: E402

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
    # configs/demo.cfg (with its identity-preserving options, docs/experiments/2026-12-02-identity.md)
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
        output_mode="masked",
        n_critic=3,
    ),
}
# configs/demo.cfg's sizes with the paper's generator (no identity options), for the ratio.
PRESETS["demo_paper_g"] = {
    **PRESETS["demo"],
    "skip_connections": "none",
    "hf_bypass": False,
    "lambda_self": 0.0,
    "output_mode": "direct",
}


def graph_flops(concrete_function) -> int:
    """FLOPs of one call of a traced tf.function, by TensorFlow's profiler (its registered
    per-op statistics: conv and matmul forward and backward, element-wise ops)."""
    import tensorflow as tf

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(
        tf.compat.v1.profiler.profile(concrete_function.graph, options=options).total_float_ops
    )


def conv_reference_step():
    """The reference kernel's work as one traced call: `step(x, w)` runs a 3x3 "SAME" conv
    y = conv2d(x, w) forward and returns the gradients [dL/dx, dL/dw] of L = sum(y**2) / 2.

    dL/dy = y, so both backward passes consume the forward's output. With L = sum(y) (this
    bench before stop 28) dL/dy was all ones, the forward conv was dead code that TensorFlow
    pruned, and the "peak" timed 2 passes while counting 3: 1.3-1.65x too high."""
    import tensorflow as tf

    @tf.function
    def step(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = tf.nn.conv2d(x, w, 1, "SAME")
            loss = 0.5 * tf.reduce_sum(tf.square(tf.cast(y, tf.float32)))
        return tape.gradient(loss, [x, w])

    return step


def conv_peak_flops(*, repeats: int = 10, dtype: str = "float32", batch: int = 16) -> float:
    """FLOP/s of a 3x3 conv 256->256 at 32x32, batch 16, forward + input and filter gradients
    (2 * 3 passes * N*H*W*Cin*Cout*9 FLOPs, `conv_reference_step`): the machine's attainable
    conv rate in TensorFlow, in `dtype` (the compute dtype of the step it is compared with:
    bfloat16 under mixed_bfloat16, which runs on AMX / AVX512_BF16 units where the CPU has
    them). `batch` times the same conv at another batch size (the model's: see main)."""
    import tensorflow as tf

    n, hw, c = batch, 32, 256
    x = tf.cast(tf.random.normal([n, hw, hw, c]), dtype)
    w = tf.cast(tf.random.normal([3, 3, c, c]) * 0.05, dtype)
    step = conv_reference_step()
    for _ in range(3):
        step(x, w)
    rounds = []  # the best of 3 rounds: a peak, and this VM's speed varies between seconds
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            gx, gw = step(x, w)
        float(gw[0, 0, 0, 0])  # wait for the work
        rounds.append((time.perf_counter() - start) / repeats)
    return 3 * 2 * n * hw * hw * c * c * 9 / min(rounds)


def cpu_flags() -> str:
    """The SIMD features that decide TensorFlow's CPU kernels (from /proc/cpuinfo), and
    oneDNN's instruction-set cap when one is set."""
    flags = hardware.cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    found = " ".join(f for f in wanted if f in flags) or ("unknown" if not flags else "no AVX2")
    cap = hardware.onednn_isa_cap()
    return f"{found}; oneDNN capped at {cap}" if cap else found


def parse_args() -> argparse.Namespace:
    """The command line's flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations (tracing)")
    parser.add_argument(
        "--mixed_precision",
        default="auto",
        choices=["auto", "none", "mixed_bfloat16", "mixed_float16"],
        help="as the trainer's flag (default auto: bfloat16 on AMX CPUs, what training uses)",
    )
    parser.add_argument(
        "--profile", default="", help="folder for a TensorFlow profiler trace of 5 iterations"
    )
    for key in ("image_size", "batch_size", "g_channels", "g_res_blocks", "d_channels", "k"):
        parser.add_argument(f"--{key}", type=int, default=None, help=f"override the preset's {key}")
    parser.add_argument(
        "--n_critic", type=int, default=None, help="D steps per G step (override the preset's)"
    )
    parser.add_argument(
        "--output_mode", default=None, choices=["direct", "masked"], help="override the preset's"
    )
    parser.add_argument(
        "--gp_every",
        type=int,
        default=1,
        help="gradient penalty every N-th D step, as the trainer's flag (1 = paper)",
    )
    parser.add_argument(
        "--share_g_forward",
        action="store_true",
        help="one G(x, s_t) for an iteration's D and G steps, as the trainer's flag",
    )
    parser.add_argument(
        "--max_cpu_isa",
        default="",
        type=str.upper,
        choices=["", *hardware.ONEDNN_ISAS],
        help="cap oneDNN at this instruction set (its ONEDNN_MAX_CPU_ISA names, e.g. AVX2) "
        "to time an older CPU's kernels; default: no cap",
    )
    return parser.parse_args()


def preset_values(args: argparse.Namespace) -> dict:
    """The preset's settings with the command line's overrides."""
    p = dict(PRESETS[args.preset])
    p.update({k: v for k, v in vars(args).items() if k in p and v is not None})
    return p


def make_config(args: argparse.Namespace, p: dict):
    """The training Config of the preset `p` and the trainer's flags in `args`."""
    from xplore_tf import config as config_lib

    output_mode = args.output_mode or p.get("output_mode", "direct")
    return config_lib.Config(
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
            output_mode=output_mode,
        ),
        train=config_lib.TrainConfig(
            batch_size=p["batch_size"],
            n_critic=args.n_critic or p.get("n_critic", 5),
            gp_every=args.gp_every,
            share_g_forward=args.share_g_forward,
            lambda_self=p.get("lambda_self", 0.0),
            lambda_mask=0.01 if output_mode == "masked" else 0.0,
            mixed_precision=args.mixed_precision,
        ),
    )


def random_stats(rng: np.random.Generator, k: int, d: int = 256):
    """Random cluster statistics of `k` clusters in `d` dimensions."""
    from xplore_tf.clustering import artifacts

    return artifacts.ClusterStats(
        centroids=rng.normal(size=(k, d)).astype(np.float32),
        stds=rng.uniform(0.1, 1, (k, d)).astype(np.float32),
        sizes=np.full(k, 100),
        pca_mean=np.zeros(8, np.float32),
        pca_matrix=np.zeros((8, d), np.float32),
        extractor="pixels",
        image_size=64,
        crop_size=0,
    )


def random_batch(rng: np.random.Generator, b: int, s: int, k: int) -> dict:
    """One training batch of `b` random `s` px images, clusters and targets among `k`."""
    import tensorflow as tf

    return {
        "image": tf.constant(rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32)),
        "cluster": tf.constant(rng.integers(0, k, b).astype(np.int32)),
        "target": tf.constant(rng.integers(0, k, b).astype(np.int32)),
        "position": tf.range(b, dtype=tf.int64),
    }


def time_iterations(trainer, batch: dict, warmup: int, iterations: int, cycle: int):
    """Seconds of each timed iteration after `warmup` untimed ones, whole cycles of them:
    (iterations timed, D-only iterations' seconds, seconds of those with a G step)."""
    for step in range(warmup):
        trainer.train_step(step, batch)
    n = max(iterations // cycle, 1) * cycle
    d_only, with_g = [], []
    for step in range(warmup, warmup + n):
        start = time.perf_counter()
        trainer.train_step(step, batch)  # returns host floats: the step has finished
        (with_g if trainer.has_g_step(step) else d_only).append(time.perf_counter() - start)
    return n, d_only, with_g


def record_profile(trainer, batch: dict, folder: str, first_step: int) -> None:
    """A TensorFlow profiler trace of 5 iterations in `folder`."""
    import tensorflow as tf

    tf.profiler.experimental.start(folder)
    for step in range(first_step, first_step + 5):
        trainer.train_step(step, batch)
    tf.profiler.experimental.stop()
    print(f"profiler trace in {folder}: tensorboard --logdir={folder} (Profile tab)")


def iteration_flops(trainer, batch: dict, cycle: int) -> float:
    """The mean over one cycle of each iteration's FLOPs, counted from the graphs it runs."""
    counted = {}
    for step in range(cycle):
        for step_fn in trainer.step_functions(step):
            if id(step_fn) not in counted:
                counted[id(step_fn)] = graph_flops(step_fn.get_concrete_function(batch))
    runs = [id(f) for step in range(cycle) for f in trainer.step_functions(step)]
    return sum(counted[i] for i in runs) / cycle


def print_flops(flops: float, achieved: float, precision: str, replica_batch: int) -> None:
    """The FLOP/s reached beside the conv peak, and the conv at the model's batch."""
    compute_dtype = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(
        precision, "float32"
    )
    peak = conv_peak_flops(dtype=compute_dtype)
    onednn = os.environ["TF_ENABLE_ONEDNN_OPTS"]
    print(
        f"{flops / 1e9:.2f} GFLOP/iteration (counted from the graphs), {achieved / 1e9:.1f} "
        f"GFLOP/s; {compute_dtype} conv peak {peak / 1e9:.1f} GFLOP/s in this process: "
        f"{achieved / peak:.0%} of conv peak [CPU: {cpu_flags()}; oneDNN: {onednn}]"
    )
    if replica_batch != 16:
        # The paper generator's residual convolutions (85 % of its FLOPs at 128 px) are this
        # conv at the model's batch: what its convolutions reach with nothing else running.
        at_batch = conv_peak_flops(dtype=compute_dtype, batch=replica_batch)
        print(
            f"the same conv at this model's batch {replica_batch}: {at_batch / 1e9:.1f} "
            f"GFLOP/s, {at_batch / peak:.0%} of conv peak"
        )


def main() -> None:
    args = parse_args()
    if args.max_cpu_isa:  # read by oneDNN at its first kernel, so before TensorFlow loads
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.max_cpu_isa

    from xplore_tf import distribute, train_step

    p = preset_values(args)
    config = make_config(args, p)
    rng = np.random.default_rng(0)
    k, b, s = p["k"], p["batch_size"], p["image_size"]
    stats = random_stats(rng, k)
    strategy = distribute.make_strategy("mirrored")
    trainer = train_step.Trainer(config, stats, strategy)
    batch = random_batch(rng, b, s, k)
    # Time whole cycles (n_critic and --gp_every) so every kind of iteration is counted.
    n_critic, gp_every = config.train.n_critic, config.train.gp_every
    cycle = math.lcm(n_critic, gp_every)
    n, d_only, with_g = time_iterations(trainer, batch, args.warmup, args.iterations, cycle)
    seconds = sum(d_only) + sum(with_g)
    d_seconds = float(np.median(d_only)) if d_only else None
    g_seconds = float(np.median(with_g)) - d_seconds if d_only else None
    if args.profile:
        record_profile(trainer, batch, args.profile, args.warmup + n)
    g = sum(int(np.prod(v.shape)) for v in trainer.generator.trainable_variables)
    dd = sum(int(np.prod(v.shape)) for v in trainer.discriminator.trainable_variables)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"preset={args.preset} image={s}px batch={b} G={g / 1e6:.2f}M D={dd / 1e6:.2f}M "
        f"params k={k} precision={trainer.precision}: {n} iterations in {seconds:.1f} s, "
        f"{seconds / n:.3f} s/iteration, {n * b / seconds:.1f} images/s, peak RSS {peak_mib:.0f} MiB"
    )
    if d_only:
        print(
            f"D step {d_seconds:.3f} s, G step + EMA {g_seconds:.3f} s"
            f"{' (less the shared G forward)' if args.share_g_forward else ''} (medians): "
            f"D + G/{n_critic} = {d_seconds + g_seconds / n_critic:.3f} s/iteration"
        )
    flops = iteration_flops(trainer, batch, cycle)
    replica_batch = b // strategy.num_replicas_in_sync
    print_flops(flops, flops * n / seconds, trainer.precision, replica_batch)


if __name__ == "__main__":
    main()
