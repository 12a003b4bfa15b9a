"""The identity section's per-target figures, by hand (no model, no dlib)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests_support import tiny_config

from xplore_tf.evaluation import identity, summary


class _Rows:  # any images -> one descriptor each; the distances are given by hand below
    name = "rows"

    def __init__(self, threshold):
        self.threshold = threshold

    def embed(self, images):
        return np.zeros((len(images), 1))


def _result(tmp_path, threshold):
    held = identity.HeldOutEmbeddings("rows", _Rows(threshold), np.zeros((3, 1)))
    no_pairs = identity.RealPairs(None, np.zeros((0, 2), int), np.zeros((0, 2), int), "")
    return identity.identity_result(
        tiny_config(tmp_path),
        held,
        no_pairs,
        random_translations=np.zeros((3, 2, 2, 3), np.uint8),
        per_cluster={14: np.array([0.1, 0.7, 0.5]), 6: np.array([0.9, 0.9, 0.0])},
    )


def test_each_target_cluster_is_verified_at_the_threshold(tmp_path):
    result = _result(tmp_path, threshold=0.6)
    assert result.per_cluster_mean_distance == pytest.approx({"6": 0.6, "14": 1.3 / 3})
    assert result.per_cluster_verification_rate == pytest.approx({"6": 1 / 3, "14": 2 / 3})


def test_summary_lists_targets_in_cluster_order_after_metrics_json(tmp_path):
    as_written = json.loads(json.dumps(_result(tmp_path, 0.6).to_json(), sort_keys=True))
    lines = summary._identity_lines(identity.IdentityResult.from_json(as_written))
    into = [line.split()[2] for line in lines if "into cluster" in line]
    assert into == ["6", "14"]  # not "14", "6" as the sorted text keys
    assert "verified same 0.667" in next(line for line in lines if "into cluster 14" in line)


def test_without_a_threshold_or_in_an_older_file_nothing_is_verified(tmp_path):
    assert _result(tmp_path, threshold=None).per_cluster_verification_rate is None
    older = _result(tmp_path, 0.6).to_json()
    del older["per_cluster_verification_rate"]
    back = identity.IdentityResult.from_json(older)
    assert back.per_cluster_verification_rate is None
    assert "verified same -" in summary._identity_lines(back)[-1]


def test_the_clusters_table_carries_each_targets_verification(tmp_path):
    from types import SimpleNamespace

    from xplore_tf.evaluation import clusters

    stats = SimpleNamespace(num_clusters=15, sizes=np.ones(15, int))
    rows = clusters.cluster_table(
        stats,
        np.arange(15),
        np.zeros((15, 0), bool),
        (),
        names={},
        transfer_result=None,
        identity_result=_result(tmp_path, 0.6),
    )
    assert rows[14].identity_verified == pytest.approx(2 / 3) and rows[0].identity_verified is None
    older = rows[14].to_json()
    del older["identity_verified"]  # a metrics.json written before the column
    assert clusters.ClusterRow.from_json(older).identity_verified is None
