"""Per-layer benchmark of the discriminator's convolutions: Conv2D vs PatchMatmulConv2D.

    python -m tools.bench_d_layers --preset=paper128 --mixed_precision=mixed_bfloat16
    python -m tools.bench_d_layers --preset=demo --mixed_precision=none

For every convolution of the preset's D (tools/bench_train.py's presets), at the batch a D
step feeds it (real + fake images), times what a WGAN-GP D step does with the layer: the
forward pass, the gradient of a score with respect to the input and the kernel, and the
kernel gradient of the input gradient's squared norm (the penalty's double backward). Once
as keras.layers.Conv2D and once as a matrix product over im2col patches
(xplore_tf.models.discriminator.PatchMatmulConv2D, forced on), with the same weights, and
prints both medians, their ratio and which form D uses (`as_matmul`).
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import xplore_tf  # noqa: E402, F401  (before TensorFlow: the package's oneDNN setting)
from tools.bench_train import PRESETS, cpu_flags  # noqa: E402


def time_layer(layer, x, *, repeats: int) -> float:
    """Median seconds of forward + first and second derivatives through `layer` at `x`."""
    import tensorflow as tf

    from xplore_tf.models.discriminator import leaky_relu

    @tf.function
    def step(x):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x)
                score = tf.reduce_sum(tf.cast(leaky_relu(y), tf.float32))  # as D does
            dx, dk = inner.gradient(score, [x, layer.kernel])
            penalty = tf.reduce_sum(tf.square(tf.cast(dx, tf.float32)))
        return dk, outer.gradient(penalty, layer.kernel)

    step(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        float(step(x)[1][0, 0, 0, 0])  # waits for the work
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper128",
        help="model sizes and batch, as tools.bench_train's presets",
    )
    parser.add_argument(
        "--mixed_precision",
        default="mixed_bfloat16",
        choices=["none", "mixed_bfloat16"],
        help="Keras dtype policy of the layers (none = float32)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per layer and form")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from xplore_tf.models.discriminator import Discriminator, PatchMatmulConv2D

    if args.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    p = PRESETS[args.preset]
    size, batch = p["image_size"], 2 * p["batch_size"]  # real and fake images in one batch
    # StarGAN's depth, as the trainer's default --d_num_down=0 (log2(size) - 1)
    d = Discriminator(
        size, p["k"], base_channels=p["d_channels"], num_down=int(math.log2(size)) - 1
    )
    d.build((None, size, size, 3))
    rng = np.random.default_rng(0)
    print(f"preset={args.preset} batch={batch} policy={args.mixed_precision} [CPU: {cpu_flags()}]")
    print(
        f"{'layer':8s} {'input':>16s} {'filters':>7s}  {'Conv2D':>9s}  {'matmul':>9s}  ratio  D uses"
    )
    dtype = keras.mixed_precision.dtype_policy().compute_dtype
    shapes = [(batch, size, size, 3)]
    for conv in d.convs:
        shapes.append(tuple(conv.compute_output_shape(shapes[-1])))
    shapes.append(shapes[-1])  # the two heads read the last map
    for layer, shape in zip([*d.convs, d.out_src, d.out_cls], shapes, strict=True):
        x = tf.constant(rng.uniform(-1, 1, shape), dtype=dtype)
        config = layer.get_config()
        forms = [keras.layers.Conv2D.from_config(config), PatchMatmulConv2D.from_config(config)]
        for form in forms:
            form.build(shape)
            form.set_weights(layer.get_weights())
        forms[1].as_matmul = True
        conv, matmul = (time_layer(form, x, repeats=args.repeats) for form in forms)
        print(
            f"{layer.name:8s} {'x'.join(map(str, shape[1:])):>16s} {layer.filters:7d}  "
            f"{conv * 1e3:7.1f}ms  {matmul * 1e3:7.1f}ms  {conv / matmul:5.2f}  "
            f"{'matmul' if layer.as_matmul else 'Conv2D'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
