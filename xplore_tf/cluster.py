"""`python -m xplore_tf.cluster --flagfile=configs/demo.cfg`: discover attribute clusters.

Writes WORKDIR/clusters/ (assignments.csv, stats.npz, montages/index.html, summary.json,
the feature cache features.npy + features.json). With several --num_clusters values
(`--num_clusters=20,50,100`), a k sweep: clusters/k_sweep/kKKK/ per k and k_sweep.html.
"""

from __future__ import annotations

import os

from xplore_tf import startup  # noqa: E402

startup.import_tensorflow()  # before anything imports it: its start-up notices left out

from absl import app  # noqa: E402

from xplore_tf import cli, workdir_lock  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402
from xplore_tf.clustering import pipeline  # noqa: E402


@cli.friendly_errors("cluster")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = xflags.config_from_flags(allow_k_sweep=True)
    workdir_lock.hold(config.workdir, "cluster")
    os.makedirs(config.workdir, exist_ok=True)
    xflags.write_resolved_flags(config.workdir, "cluster")
    summary = pipeline.run_clustering(config)
    print(pipeline.format_summary(summary))


if __name__ == "__main__":
    xflags.declare_key_flags("cluster", __name__)
    app.run(main)
