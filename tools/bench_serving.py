"""Serving latency and throughput of an exported generator: `python -m tools.bench_serving`.

Exports a FRESHLY INITIALISED generator (random cluster statistics, --allow_untrained
style: speed does not depend on training) at the given width, then times sequential
requests of batch 1 and 8:

- `in-process`: the SavedModel's `serving_default` called in this process;
- `gRPC`: the same signature through `xplore_tf/testing/dev_server.py` over 127.0.0.1, including
  TensorProto building/parsing and the channel (the dev server, not TF Serving: the
  overhead of tensorflow_model_server will differ);
- `gRPC bytes`: `translate_bytes` (PNG in, PNG out) through the dev server.

Prints p50/p99 latency per request and throughput in images/s (one client, one request in
flight). Not a test: numbers depend on the machine and its load.

    python -m tools.bench_serving                                  # demo width, 200 requests
    python -m tools.bench_serving --g_channels=64 --g_res_blocks=6 --mlp_hidden=256 --requests=20
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _time(fn, requests: list, warmup: int) -> list[float]:
    for r in requests[:warmup]:
        fn(r)
    times = []
    for r in requests:
        start = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - start)
    return times


def export_untrained(workdir: str, args) -> str:
    """A SavedModel of a freshly initialised generator; returns the export base folder."""
    from xplore_tf import config as config_lib
    from xplore_tf import export_lib
    from xplore_tf.clustering import artifacts

    rng = np.random.default_rng(0)
    k, d = args.num_clusters, args.stats_dim
    os.makedirs(os.path.join(workdir, "clusters"), exist_ok=True)
    artifacts.write_stats(
        os.path.join(workdir, "clusters", artifacts.STATS),
        artifacts.ClusterStats(
            centroids=rng.normal(0, 0.1, (k, d)).astype(np.float32),
            stds=rng.uniform(0.01, 0.1, (k, d)).astype(np.float32),
            sizes=np.full(k, 100, np.int64),
            pca_mean=np.zeros(d, np.float32),
            pca_matrix=np.eye(d, dtype=np.float32),
            extractor="pixels",
            image_size=64,
            crop_size=0,
        ),
    )
    config = config_lib.Config(
        workdir=workdir,
        model=config_lib.ModelConfig(
            image_size=args.image_size,
            g_channels=args.g_channels,
            g_res_blocks=args.g_res_blocks,
            mlp_hidden=args.mlp_hidden,
            d_channels=8,  # D is built with G but never used here: keep it small
            d_max_channels=64,
        ),
        export=config_lib.ExportConfig(
            export_dir=os.path.join(workdir, "export"), allow_untrained=True
        ),
    )
    export_lib.export(config)
    return config.export_base_dir


def parse_args() -> argparse.Namespace:
    """The command line's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--g_channels", type=int, default=16, help="demo.cfg: 16; paper: 64")
    p.add_argument("--g_res_blocks", type=int, default=2, help="demo.cfg: 2; paper: 6")
    p.add_argument("--mlp_hidden", type=int, default=64, help="demo.cfg: 64; paper: 256")
    p.add_argument("--num_clusters", type=int, default=20)
    p.add_argument("--stats_dim", type=int, default=256)
    p.add_argument("--requests", type=int, default=200, help="timed requests per batch size")
    p.add_argument("--batch_sizes", default="1,8")
    p.add_argument("--warmup", type=int, default=3)
    return p.parse_args()


def request_paths(serving_default, stub) -> tuple:
    """(name, call) of each path timed: one call sends one (images, ids, pngs) request."""
    from xplore_tf.common import predict_client as predict
    from xplore_tf.common import signatures as sig

    def in_process(r):
        return serving_default(image=r[0], cluster_id=r[1])[sig.IMAGE].numpy()

    def over_grpc(r):
        request = predict.make_request(sig.SERVING_DEFAULT, {sig.IMAGE: r[0], sig.CLUSTER_ID: r[1]})
        return predict.parse_response(stub.Predict(request, timeout=600))

    def bytes_over_grpc(r):
        request = predict.make_request(
            sig.TRANSLATE_BYTES, {sig.IMAGE_BYTES: r[2], sig.CLUSTER_ID: r[1]}
        )
        return predict.parse_response(stub.Predict(request, timeout=600))

    return (
        ("in-process serving_default", in_process),
        ("gRPC serving_default", over_grpc),
        ("gRPC translate_bytes (PNG)", bytes_over_grpc),
    )


def random_requests(rng: np.random.Generator, args, batch: int) -> list[tuple]:
    """--requests random requests of `batch` images: (uint8 images, cluster ids, PNGs)."""
    from xplore_tf.common import pixels

    s = args.image_size
    images = [rng.integers(0, 256, (batch, s, s, 3), dtype=np.uint8) for _ in range(args.requests)]
    ids = [rng.integers(0, args.num_clusters, batch).astype(np.int32) for _ in range(args.requests)]
    pngs = [np.array([pixels.png_bytes(im) for im in x], object) for x in images]
    return list(zip(images, ids, pngs, strict=True))


def time_paths(paths: tuple, args) -> list[tuple]:
    """(path, batch, requests, p50 ms, p99 ms, images/s) of each path at each batch size."""
    rng = np.random.default_rng(1)
    rows = []
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        requests = random_requests(rng, args, batch)
        for name, fn in paths:
            times = _time(fn, requests, args.warmup)
            p50, p99 = _percentiles(times)
            rows.append((name, batch, len(times), p50, p99, batch * len(times) / sum(times)))
            print(f"  {rows[-1]}", flush=True)
    return rows


def print_table(args, rows: list[tuple]) -> None:
    """The generator's settings, the machine's load and a Markdown table of `rows`."""
    print(
        f"\ngenerator: {args.image_size} px, g_channels={args.g_channels}, "
        f"g_res_blocks={args.g_res_blocks}, mlp_hidden={args.mlp_hidden}, k={args.num_clusters}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
    )
    print("| path | batch | requests | p50 ms | p99 ms | images/s |")
    print("|---|---|---|---|---|---|")
    for name, batch, n, p50, p99, rate in rows:
        print(f"| {name} | {batch} | {n} | {p50:.1f} | {p99:.1f} | {rate:.1f} |")


def main() -> None:
    args = parse_args()

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from xplore_tf.common import predict_client as predict
    from xplore_tf.common import signatures as sig
    from xplore_tf.testing import dev_server

    with tempfile.TemporaryDirectory() as workdir:
        base = export_untrained(workdir, args)
        loaded = tf.saved_model.load(os.path.join(base, "xplore", "1"))
        serving_default = loaded.signatures[sig.SERVING_DEFAULT]
        server, port = dev_server.serve(base, port=0)
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[("grpc.max_receive_message_length", predict.MAX_MESSAGE_BYTES)],
        )
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            rows = time_paths(request_paths(serving_default, stub), args)
        finally:
            channel.close()
            server.stop(None)

    print_table(args, rows)


if __name__ == "__main__":
    main()
