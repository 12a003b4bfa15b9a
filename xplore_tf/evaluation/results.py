"""What every metric's typed result shares: the skipped section and the JSON helpers.

Each metric module (`discovery`, `transfer`, `identity`, `realism`, `beyond`, `clusters`) returns a frozen
dataclass whose `to_json()` is exactly its section of WORKDIR/eval/metrics.json and whose
`from_json()` reads that section back; `metrics.Metrics` assembles the sections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

OK = "ok"
SKIPPED = "skipped"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A section that could not be measured, and why (no checkpoint, too few images...)."""

    reason: str
    status = SKIPPED  # class attribute: every section answers `status`

    def to_json(self) -> dict:
        return {"status": SKIPPED, "reason": self.reason}


def is_skipped(section: dict) -> bool:
    """True for a section dict that is only {"status": "skipped", "reason": ...}."""
    return section.get("status") == SKIPPED and set(section) <= {"status", "reason"}


def section_from_json(section: dict | None, from_json: Callable[[dict], T]) -> T | Skipped | None:
    """A metrics.json section as its result type, `Skipped`, or None when absent."""
    if section is None:
        return None
    if is_skipped(section):
        return Skipped(section.get("reason", ""))
    return from_json(section)


def mean_of(values: Sequence[float | None]) -> float | None:
    """Mean of the finite values given (None and NaN left out); None when there are none."""
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else None


__all__ = [
    "OK",
    "SKIPPED",
    "Skipped",
    "is_skipped",
    "mean_of",
    "section_from_json",
]
