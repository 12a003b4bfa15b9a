"""Discovery: the cluster report of WORKDIR/clusters against the labels (metrics.json's
`discovery` section, and eval/discovery.json)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from xplore_tf.clustering import artifacts, report
from xplore_tf.config import Config
from xplore_tf.data import sources
from xplore_tf.evaluation.results import mean_of

DISCOVERY = "discovery.json"


@dataclasses.dataclass
class Discovery:
    """The cluster report and what later sections reuse of it."""

    rows: list[report.AttributeReport]
    labels_csv: str
    images: list[str]  # every clustered image (relative path)
    clusters: np.ndarray  # [N] their cluster ids
    matched: int  # clustered images with a labels row
    num_clusters: int
    text: str  # the printed table


def run_discovery(config: Config) -> Discovery:
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
    num_clusters = int(clusters.max()) + 1
    out = os.path.join(config.eval_dir, DISCOVERY)
    report.write_report(
        out,
        rows,
        labels_csv=labels_csv,
        images_matched=matched,
        images_assigned=len(images),
        num_clusters=num_clusters,
        min_cluster_size=r.min_cluster_size,
        precision_threshold=r.precision_threshold,
    )
    text = (
        f"discovery: {matched} of {len(images)} clustered images have labels "
        f"({num_clusters} clusters; best cluster among those >= {r.min_cluster_size})\n"
        + report.format_report(rows, threshold=r.precision_threshold)
        + f"\nwritten to {out}"
    )
    return Discovery(rows, labels_csv, images, clusters, matched, num_clusters, text)


@dataclasses.dataclass(frozen=True)
class DiscoveryResult:
    """metrics.json's `discovery`: how well the clusters match the labelled attributes."""

    labels_csv: str
    images_assigned: int
    images_matched: int
    min_cluster_size: int
    precision_threshold: float
    attributes: tuple[report.AttributeReport, ...]

    @property
    def mean_nmi(self) -> float | None:
        return mean_of([r.nmi for r in self.attributes])

    @property
    def attributes_captured(self) -> int:
        """Attributes whose best cluster's precision passes the threshold."""
        return sum(r.best_precision > self.precision_threshold for r in self.attributes)

    def to_json(self) -> dict:
        return {
            "labels_csv": self.labels_csv,
            "images_assigned": self.images_assigned,
            "images_matched": self.images_matched,
            "min_cluster_size": self.min_cluster_size,
            "precision_threshold": self.precision_threshold,
            "mean_nmi": self.mean_nmi,
            "attributes_captured": self.attributes_captured,
            "attributes": [dataclasses.asdict(r) for r in self.attributes],
        }

    @classmethod
    def from_json(cls, d: dict) -> DiscoveryResult:
        return cls(
            labels_csv=d["labels_csv"],
            images_assigned=d["images_assigned"],
            images_matched=d["images_matched"],
            min_cluster_size=d["min_cluster_size"],
            precision_threshold=d["precision_threshold"],
            attributes=tuple(report.AttributeReport(**r) for r in d["attributes"]),
        )


def discovery_result(config: Config, discovery: Discovery) -> DiscoveryResult:
    """The `discovery` section of a run's report (`run_discovery`'s output)."""
    return DiscoveryResult(
        labels_csv=discovery.labels_csv,
        images_assigned=len(discovery.images),
        images_matched=discovery.matched,
        min_cluster_size=config.report.min_cluster_size,
        precision_threshold=config.report.precision_threshold,
        attributes=tuple(discovery.rows),
    )


__all__ = ["DISCOVERY", "Discovery", "DiscoveryResult", "discovery_result", "run_discovery"]
