"""Side effects of a translation: how every other judged attribute moves with the target.

A cluster summarises everything its members share, so translating into it can change more
than the attribute it was picked for (a cluster of blond women turns men into women). The
re-scoring matrix follows InterFaceGAN (Shen et al., CVPR 2020) and StyleSpace (Wu et al.,
CVPR 2021): the same judge scores every attribute before and after each translation.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class TargetChanges:
    """How the judged attributes move under one target's translation (attribute order)."""

    rate_change: tuple[float, ...]  # rate judged positive after - before, over all inputs
    kept: tuple[float | None, ...]  # share judged positive before that still are (None: none)


@dataclasses.dataclass(frozen=True)
class LargestChange:
    """The other attribute whose judged rate moves most under a target's translation."""

    attribute: str
    rate_change: float


@dataclasses.dataclass(frozen=True)
class SideEffects:
    """metrics.json's `transfer.side_effects`: every attribute's change per target."""

    attributes: tuple[str, ...]
    targets: dict[str, TargetChanges]
    largest: dict[str, LargestChange]  # per target, when it has another attribute

    def to_json(self) -> dict:
        return {
            "attributes": list(self.attributes),
            "targets": {
                t: {"rate_change": list(c.rate_change), "kept": list(c.kept)}
                for t, c in self.targets.items()
            },
            "largest": {
                t: {"attribute": w.attribute, "rate_change": w.rate_change}
                for t, w in self.largest.items()
            },
        }

    @classmethod
    def from_json(cls, d: dict) -> SideEffects:
        return cls(
            attributes=tuple(d["attributes"]),
            targets={
                t: TargetChanges(tuple(c["rate_change"]), tuple(c["kept"]))
                for t, c in d["targets"].items()
            },
            largest={t: LargestChange(**w) for t, w in d["largest"].items()},
        )


def side_effects(
    before: np.ndarray, after: dict[str, np.ndarray], attributes: list[str]
) -> SideEffects:
    """The judged change of every attribute under each target's translation.

    before: bool [N, A], the judge's decisions on the inputs; after: {target name: bool
    [N, A]} on the same inputs translated toward it. Per target and attribute:
    `rate_change` = rate judged positive after − before (over all N inputs) and `kept` =
    the share of inputs judged positive before that still are (None when none were).
    `largest` names, per target, the attribute other than the target itself (a target named
    "Male" or "Male (cluster 10)") whose rate moves most, with that change.
    Raises ValueError when a target's decisions do not have the inputs' shape.
    """
    before = np.asarray(before, bool)
    targets, largest = {}, {}
    for target, decisions in after.items():
        decisions = np.asarray(decisions, bool)
        if decisions.shape != before.shape:
            raise ValueError(f"{target}: decisions {decisions.shape}, inputs {before.shape}")
        change = decisions.mean(axis=0) - before.mean(axis=0)
        had = before.sum(axis=0)
        kept = [
            float((decisions[:, j] & before[:, j]).sum() / had[j]) if had[j] else None
            for j in range(len(attributes))
        ]
        targets[target] = TargetChanges(tuple(float(c) for c in change), tuple(kept))
        others = [j for j, a in enumerate(attributes) if target.split(" (")[0] != a]
        if others:
            j = max(others, key=lambda k: abs(change[k]))
            largest[target] = LargestChange(attributes[j], float(change[j]))
    return SideEffects(tuple(attributes), targets, largest)


def side_effect_table(
    before: np.ndarray, after: dict[str, np.ndarray], attributes: list[str]
) -> dict:
    """`side_effects(...)` as its metrics.json dict."""
    return side_effects(before, after, attributes).to_json()


__all__ = ["LargestChange", "SideEffects", "TargetChanges", "side_effect_table", "side_effects"]
