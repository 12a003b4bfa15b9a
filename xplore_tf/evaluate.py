"""`python -m xplore_tf.evaluate --flagfile=... [--labels_csv=...]`: measure the run.

Discovery: how well the clusters match known attributes (NMI, best-cluster precision).
When the run has a checkpoint, also transfer (do translations into an attribute's cluster
show the attribute?), identity (is the person kept?) and realism (Fréchet distance).
Writes WORKDIR/eval/metrics.json and report.html. Labels are used here only, never for
training.
"""

from __future__ import annotations

import os

from xplore_tf import startup  # noqa: E402

startup.import_tensorflow()  # before anything imports it: its start-up notices left out
# The evaluation's numpy/scipy algebra is small (probe fits, 2k x 2k eigen-decompositions);
# OpenBLAS's busy-waiting worker threads made it 20-40x slower on a loaded 2-core machine,
# and TensorFlow (the heavy part) has its own pools. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from absl import app  # noqa: E402

from xplore_tf import cli, workdir_lock  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402
from xplore_tf.clustering import report  # noqa: E402
from xplore_tf.evaluation import pipeline  # noqa: E402


def discovery_report(config) -> tuple[list[report.AttributeReport], str]:
    """Cluster report of WORKDIR/clusters against the labels; writes eval/discovery.json."""
    discovery = pipeline.run_discovery(config)
    return discovery.rows, discovery.text


@cli.friendly_errors("evaluate")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = xflags.config_from_flags()
    workdir_lock.hold(config.workdir, "evaluate")
    xflags.write_resolved_flags(config.workdir, "evaluate")
    metrics = pipeline.run_evaluation(config)
    print(pipeline.format_summary(metrics))
    print(
        f"written to {os.path.join(config.eval_dir, pipeline.METRICS)} and {metrics['report_html']}"
    )


if __name__ == "__main__":
    xflags.declare_key_flags("evaluate", __name__)
    app.run(main)
