"""WORKDIR/eval/metrics.json as one typed value: every section's result.

`Metrics.to_json()` is the file's content (what `pipeline.run_evaluation` returns) and
`Metrics.from_json()` reads it back, so the printed summary and the HTML report can be
made from a run's dict or from the file alike.
"""

from __future__ import annotations

import dataclasses

from xplore_tf.evaluation import beyond
from xplore_tf.evaluation import clusters as clusters_lib
from xplore_tf.evaluation.discovery import DiscoveryResult
from xplore_tf.evaluation.identity import IdentityResult
from xplore_tf.evaluation.realism import RealismResult
from xplore_tf.evaluation.results import Skipped, section_from_json
from xplore_tf.evaluation.transfer import TransferResult

SCHEMA_VERSION = 2
SECTIONS = ("transfer", "identity", "realism")
BEYOND = (beyond.STRENGTH_CURVE, beyond.REFERENCE_GROUPS, beyond.COMBINATIONS)


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Every measure of one evaluation. A section is its result, `Skipped` (with the
    reason), or None when it was not asked for (the sections beyond fixed clusters)."""

    workdir: str
    checkpoint: str | None  # the checkpoint restored, "translate_fn", or None
    step: int | None
    num_clusters: int
    discovery: DiscoveryResult
    transfer: TransferResult | Skipped
    identity: IdentityResult | Skipped
    realism: RealismResult | Skipped
    strength_curve: beyond.StrengthCurve | Skipped | None = None
    reference_groups: beyond.ReferenceGroups | Skipped | None = None
    combinations: beyond.Combinations | Skipped | None = None
    clusters: tuple[clusters_lib.ClusterRow, ...] = ()
    seconds: float = 0.0
    report_html: str = ""
    translation_matrix: str | None = None  # its PNG, when there are translations
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        out = {
            "schema_version": self.schema_version,
            "workdir": self.workdir,
            "checkpoint": self.checkpoint,
            "step": self.step,
            "num_clusters": self.num_clusters,
            "discovery": self.discovery.to_json(),
        }
        for name in (*SECTIONS, *BEYOND):
            section = getattr(self, name)
            if section is not None:
                out[name] = section.to_json()
        out["clusters"] = [c.to_json() for c in self.clusters]
        out["seconds"] = self.seconds
        out["report_html"] = self.report_html
        if self.translation_matrix is not None:
            out["translation_matrix"] = self.translation_matrix
        return out

    @classmethod
    def from_json(cls, d: dict) -> Metrics:
        """Raises ValueError for a metrics.json of another schema version (evaluate again)."""
        if d.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"metrics.json has schema version {d.get('schema_version')}, this version of "
                f"xplore_tf reads {SCHEMA_VERSION}: run xplore_tf.evaluate again"
            )
        return cls(
            workdir=d["workdir"],
            checkpoint=d["checkpoint"],
            step=d["step"],
            num_clusters=d["num_clusters"],
            discovery=DiscoveryResult.from_json(d["discovery"]),
            transfer=section_from_json(d["transfer"], TransferResult.from_json),
            identity=section_from_json(d["identity"], IdentityResult.from_json),
            realism=section_from_json(d["realism"], RealismResult.from_json),
            strength_curve=section_from_json(
                d.get(beyond.STRENGTH_CURVE), beyond.StrengthCurve.from_json
            ),
            reference_groups=section_from_json(
                d.get(beyond.REFERENCE_GROUPS), beyond.ReferenceGroups.from_json
            ),
            combinations=section_from_json(
                d.get(beyond.COMBINATIONS), beyond.Combinations.from_json
            ),
            clusters=tuple(clusters_lib.ClusterRow.from_json(c) for c in d["clusters"]),
            seconds=d["seconds"],
            report_html=d["report_html"],
            translation_matrix=d.get("translation_matrix"),
            schema_version=d["schema_version"],
        )


def as_metrics(metrics: Metrics | dict) -> Metrics:
    """`metrics` as a Metrics (a dict is read as metrics.json's content)."""
    return metrics if isinstance(metrics, Metrics) else Metrics.from_json(metrics)


__all__ = ["BEYOND", "SCHEMA_VERSION", "SECTIONS", "Metrics", "as_metrics"]
