"""Side effects of a translation: how every other judged attribute moves with the target.

A cluster summarises everything its members share, so translating into it can change more
than the attribute it was picked for (a cluster of blond women turns men into women). The
re-scoring matrix follows InterFaceGAN (Shen et al., CVPR 2020) and StyleSpace (Wu et al.,
CVPR 2021): the same judge scores every attribute before and after each translation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class TargetChanges:
    """How the judged attributes move under one target's translation (attribute order)."""

    rate_change: tuple[float, ...]  # rate judged positive after - before, over all inputs
    kept: tuple[float | None, ...]  # share judged positive before that still are (None: none)
    changed: tuple[float, ...]  # share of all inputs whose decision flipped either way

    def to_json(self) -> dict:
        return {
            "rate_change": list(self.rate_change),
            "kept": list(self.kept),
            "changed": list(self.changed),
        }

    @classmethod
    def from_json(cls, d: dict) -> TargetChanges:
        return cls(tuple(d["rate_change"]), tuple(d["kept"]), tuple(d["changed"]))


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
    # Each input re-rendered into its own cluster: what translating alone flips.
    floor: TargetChanges | None = None
    among: tuple[str, ...] = ()  # the attributes `largest` was chosen from; () = all

    def to_json(self) -> dict:
        return {
            "attributes": list(self.attributes),
            "targets": {t: c.to_json() for t, c in self.targets.items()},
            "largest": {t: dataclasses.asdict(w) for t, w in self.largest.items()},
            "floor": self.floor.to_json() if self.floor is not None else None,
            "among": list(self.among),
        }

    @classmethod
    def from_json(cls, d: dict) -> SideEffects:
        floor = d["floor"]
        return cls(
            attributes=tuple(d["attributes"]),
            targets={t: TargetChanges.from_json(c) for t, c in d["targets"].items()},
            largest={t: LargestChange(**w) for t, w in d["largest"].items()},
            floor=TargetChanges.from_json(floor) if floor is not None else None,
            among=tuple(d.get("among", ())),  # absent in metrics.json written before it
        )


def target_changes(before: np.ndarray, after: np.ndarray, name: str = "") -> TargetChanges:
    """How decisions bool [N, A] move from `before` to `after`. Raises ValueError (naming
    `name`) when the shapes differ."""
    before, after = np.asarray(before, bool), np.asarray(after, bool)
    if after.shape != before.shape:
        raise ValueError(f"{name}: decisions {after.shape}, inputs {before.shape}")
    change = after.mean(axis=0) - before.mean(axis=0)
    had = before.sum(axis=0)
    kept = [
        float((after[:, j] & before[:, j]).sum() / had[j]) if had[j] else None
        for j in range(before.shape[1])
    ]
    changed = (after != before).mean(axis=0)
    return TargetChanges(
        tuple(float(c) for c in change), tuple(kept), tuple(float(c) for c in changed)
    )


def check_among(among: Sequence[str], attributes: Sequence[str], *, source: str = "among"):
    """Raises ValueError naming `source` when `among` has a name not in `attributes`."""
    unknown = [a for a in among if a not in attributes]
    if unknown:
        raise ValueError(
            f"{source}: {', '.join(unknown)} is not a judged attribute "
            f"(expected some of {', '.join(attributes) or 'none: no labelled attributes'})"
        )


def side_effects(
    before: np.ndarray,
    after: dict[str, np.ndarray],
    attributes: list[str],
    *,
    floor: np.ndarray | None = None,
    among: Sequence[str] = (),
) -> SideEffects:
    """The judged change of every attribute under each target's translation.

    before: bool [N, A], the judge's decisions on the inputs; after: {target name: bool
    [N, A]} on the same inputs translated toward it. Per target and attribute:
    `rate_change` = rate judged positive after − before (over all N inputs), `kept` =
    the share of inputs judged positive before that still are (None when none were) and
    `changed` = the share of inputs whose decision flipped either way. `floor`: bool [N, A]
    on the inputs re-rendered into their own clusters, the same changes for re-rendering
    alone (a judge flips some decisions on any generated image). `largest` names, per
    target, the attribute other than the target itself (a target named "Male" or "Male
    (cluster 10)") whose rate moves most, with that change; `among` restricts it to these
    attributes (the side effects a user watches, e.g. gender), () = any.
    Raises ValueError when a target's decisions do not have the inputs' shape, or when
    `among` names an attribute not in `attributes`.
    """
    check_among(among, attributes)
    candidates = [j for j, a in enumerate(attributes) if not among or a in among]
    targets, largest = {}, {}
    for target, decisions in after.items():
        targets[target] = changes = target_changes(before, decisions, target)
        others = [j for j in candidates if target.split(" (")[0] != attributes[j]]
        if others:
            j = max(others, key=lambda k: abs(changes.rate_change[k]))
            largest[target] = LargestChange(attributes[j], changes.rate_change[j])
    floor_changes = None if floor is None else target_changes(before, floor, "own cluster")
    return SideEffects(tuple(attributes), targets, largest, floor_changes, tuple(among))


def side_effect_table(
    before: np.ndarray, after: dict[str, np.ndarray], attributes: list[str]
) -> dict:
    """`side_effects(...)` as its metrics.json dict."""
    return side_effects(before, after, attributes).to_json()


__all__ = [
    "LargestChange",
    "SideEffects",
    "TargetChanges",
    "check_among",
    "side_effect_table",
    "side_effects",
    "target_changes",
]
