"""metrics.json's `clusters`: one row per cluster with its size, most frequent attributes,
the transfer into it and the identity distance into it."""

from __future__ import annotations

import dataclasses

import numpy as np

from xplore_tf.clustering import artifacts
from xplore_tf.evaluation import identity, transfer
from xplore_tf.evaluation.results import Skipped


@dataclasses.dataclass(frozen=True)
class AttributePrecision:
    """The share of a cluster's labelled members having an attribute."""

    attribute: str
    precision: float


@dataclasses.dataclass(frozen=True)
class TransferInto:
    """Transfer of an attribute whose transfer cluster this is."""

    attribute: str
    rate_lacking: float | None
    baseline_lacking: float | None


@dataclasses.dataclass(frozen=True)
class ClusterRow:
    """One cluster of the report's table."""

    cluster: int
    name: str  # from clusters/cluster_names (may be "")
    size: int
    labelled: int  # members with a labels row
    top_attributes: tuple[AttributePrecision, ...]  # up to 3, most frequent first
    transfer: tuple[TransferInto, ...]
    identity_distance: float | None  # mean input-translation distance into it
    identity_verified: float | None = None  # share judged the same person after it

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["top_attributes"] = [dataclasses.asdict(a) for a in self.top_attributes]
        out["transfer"] = [dataclasses.asdict(t) for t in self.transfer]
        return out

    @classmethod
    def from_json(cls, d: dict) -> ClusterRow:
        return cls(
            **{
                **d,
                "top_attributes": tuple(AttributePrecision(**a) for a in d["top_attributes"]),
                "transfer": tuple(TransferInto(**t) for t in d["transfer"]),
            }
        )


def cluster_table(
    stats: artifacts.ClusterStats,
    clusters: np.ndarray,
    labels: np.ndarray,
    attributes: tuple[str, ...],
    *,
    names: dict[int, str],
    transfer_result: transfer.TransferResult | Skipped | None,
    identity_result: identity.IdentityResult | Skipped | None,
) -> tuple[ClusterRow, ...]:
    """One row per cluster from the labelled images' clusters int [N] and labels [N, A]."""
    k = stats.num_clusters
    precision, labelled = transfer.cluster_attribute_precision(clusters, labels, k)
    by_cluster: dict[int, list[TransferInto]] = {}
    if isinstance(transfer_result, transfer.TransferResult):
        for r in transfer_result.attributes:
            into = TransferInto(r.attribute, r.rates.rate_lacking, r.rates.baseline_lacking)
            by_cluster.setdefault(r.cluster, []).append(into)
    per_cluster, verified = {}, {}
    if isinstance(identity_result, identity.IdentityResult):
        per_cluster = identity_result.per_cluster_mean_distance
        verified = identity_result.per_cluster_verification_rate or {}
    table = []
    for c in range(k):
        top = np.argsort(-precision[c], kind="stable")[:3] if attributes else []
        table.append(
            ClusterRow(
                cluster=c,
                name=names.get(c, ""),
                size=int(stats.sizes[c]),
                labelled=int(labelled[c]),
                top_attributes=tuple(
                    AttributePrecision(attributes[j], float(precision[c, j]))
                    for j in top
                    if labelled[c] and precision[c, j] > 0
                ),
                transfer=tuple(by_cluster.get(c, [])),
                identity_distance=per_cluster.get(str(c)),
                identity_verified=verified.get(str(c)),
            )
        )
    return tuple(table)


__all__ = ["AttributePrecision", "ClusterRow", "TransferInto", "cluster_table"]
