"""`python -m xplore_tf.evaluate --flagfile=... [--labels_csv=...]`: measure the run.

Discovery: how well the clusters match known attributes (NMI, best-cluster precision).
Labels are used here only, never for training.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402

from xplore_tf import cli  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402
from xplore_tf.clustering import artifacts, report  # noqa: E402
from xplore_tf.data import sources  # noqa: E402


def discovery_report(config) -> tuple[list[report.AttributeReport], str]:
    """Cluster report of WORKDIR/clusters against the labels; writes eval/discovery.json."""
    labels_csv = sources.default_labels_csv(config)
    if not labels_csv:
        raise ValueError("--labels_csv is required (image,<0/1 attribute columns>)")
    images, clusters, _ = artifacts.read_assignments(
        os.path.join(config.clusters_dir, artifacts.ASSIGNMENTS)
    )
    r = config.report
    rows, matched = report.cluster_report(
        images,
        clusters,
        labels_csv,
        attributes=r.attributes,
        min_cluster_size=r.min_cluster_size,
        precision_threshold=r.precision_threshold,
    )
    out = os.path.join(config.workdir, "eval", "discovery.json")
    report.write_report(
        out,
        rows,
        labels_csv=labels_csv,
        images_matched=matched,
        images_assigned=len(images),
        num_clusters=int(clusters.max()) + 1,
        min_cluster_size=r.min_cluster_size,
        precision_threshold=r.precision_threshold,
    )
    text = (
        f"discovery: {matched} of {len(images)} clustered images have labels "
        f"({int(clusters.max()) + 1} clusters; best cluster among those >= {r.min_cluster_size})\n"
        + report.format_report(rows, threshold=r.precision_threshold)
        + f"\nwritten to {out}"
    )
    return rows, text


@cli.friendly_errors("evaluate")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = xflags.config_from_flags()
    xflags.write_resolved_flags(config.workdir, "evaluate")
    _, text = discovery_report(config)
    print(text)


if __name__ == "__main__":
    app.run(main)
