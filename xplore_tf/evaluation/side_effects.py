"""Side effects of a translation: how every other judged attribute moves with the target.

A cluster summarises everything its members share, so translating into it can change more
than the attribute it was picked for (a cluster of blond women turns men into women). The
re-scoring matrix follows InterFaceGAN (Shen et al., CVPR 2020) and StyleSpace (Wu et al.,
CVPR 2021): the same judge scores every attribute before and after each translation.
"""

from __future__ import annotations

import numpy as np


def side_effect_table(
    before: np.ndarray, after: dict[str, np.ndarray], attributes: list[str]
) -> dict:
    """The judged change of every attribute under each target's translation.

    before: bool [N, A], the judge's decisions on the inputs; after: {target name: bool
    [N, A]} on the same inputs translated toward it. Per target and attribute:
    `rate_change` = rate judged positive after − before (over all N inputs) and `kept` =
    the share of inputs judged positive before that still are (None when none were).
    `largest` names, per target, the attribute other than the target itself (a target named
    "Male" or "Male (cluster 10)") whose rate moves most, with that change.
    """
    before = np.asarray(before, bool)
    table = {"attributes": list(attributes), "targets": {}, "largest": {}}
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
        table["targets"][target] = {
            "rate_change": [float(c) for c in change],
            "kept": kept,
        }
        others = [j for j, a in enumerate(attributes) if target.split(" (")[0] != a]
        if others:
            j = max(others, key=lambda k: abs(change[k]))
            table["largest"][target] = {"attribute": attributes[j], "rate_change": float(change[j])}
    return table
