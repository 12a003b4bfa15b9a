"""tools.discovery_check: the scores of one clustering and the table over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from tools import discovery_check as dc


def _columns(n: int, rng) -> dict[str, np.ndarray]:
    names = set(dc.RARE) | set(dc.BROAD) | {"Brown_Hair"}
    return {name: rng.integers(0, 2, n) for name in names}


def test_scores_of_a_clustering_that_is_the_male_label():
    rng = np.random.default_rng(0)
    columns = _columns(400, rng)
    result = dc.scores(columns["Male"].copy(), columns)
    assert result["prec Male"] == 1.0 and result["NMI Male"] == pytest.approx(1.0)
    assert result["rare >= 0.8"] >= 1
    broad = [result[f"NMI {a}"] for a in ("Male", "Young", "Pale_Skin", "hair colour")]
    assert result["broad mean NMI"] == pytest.approx(np.mean(broad))
    assert result["rare mean prec"] == pytest.approx(
        np.mean([result[f"prec {a}"] for a in dc.RARE])
    )


def test_table_averages_over_seeds():
    rows = [
        {
            "set": "s",
            "features": "160 whole",
            "space": "PCA (paper)",
            "k": 50,
            "seed": seed,
            "images_per_second": 99.0,
            "rare mean prec": p,
            "rare >= 0.8": 2.0,
            "NMI Male": 0.1,
            "NMI Young": 0.2,
            "NMI Pale_Skin": 0.3,
            "NMI hair colour": 0.4,
            "broad mean NMI": 0.25,
        }
        for seed, p in ((0, 0.5), (1, 0.7))
    ]
    lines = dc.table(rows, "s", 50).splitlines()
    assert lines[0] == "#### s, k = 50"
    assert lines[-1].startswith("| 160 whole | PCA (paper) | 2 | 0.600 ± 0.100 | 2.0 ± 0.0 |")
    assert lines[-1].endswith("| 99.0 |")
