"""The k sweep: one artifact set per k and k_sweep.html (clustering/sweep.py, pipeline)."""

from __future__ import annotations

import os

import pytest
from tests_support import make_folder

from xplore_tf import config as config_lib
from xplore_tf.clustering import artifacts, pipeline, sweep


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    truth = make_folder(str(root), per_colour=8)
    labels = root.parent / "labels.csv"
    labels.write_text(
        "image,red,blue\n"
        + "".join(f"{p},{int(c == 'red')},{int(c == 'blue')}\n" for p, c in sorted(truth.items()))
    )
    return root, str(labels)


def test_sweep_writes_one_set_per_k_and_a_page(labelled, tmp_path):
    root, labels = labelled
    cfg = config_lib.Config(
        workdir=str(tmp_path / "w"),
        data=config_lib.DataConfig(dataset="folder", images_dir=str(root)),
        cluster=config_lib.ClusterConfig(
            num_clusters=2,
            k_sweep=(2, 3),
            kmeans_nredo=2,
            contact_sheet_members=4,
            thumbnail_size=16,
        ),
        report=config_lib.ReportConfig(labels_csv=labels, min_cluster_size=4),
    )
    summary = pipeline.run_clustering(cfg)
    assert [s["num_clusters"] for s in summary["sweep"]] == [2, 3]
    for k in (2, 3):
        out = os.path.join(cfg.clusters_dir, "k_sweep", sweep.k_folder(k))
        _, clusters, _ = artifacts.read_assignments(os.path.join(out, "assignments.csv"))
        assert clusters.max() == k - 1
        assert os.path.exists(os.path.join(out, "montages", "index.html"))
        assert os.path.exists(os.path.join(out, "report.json"))
    # The main set (what `train` reads) is not written by a sweep; the feature cache is.
    assert not pipeline.clusters_exist(cfg)
    assert os.path.exists(os.path.join(cfg.clusters_dir, "features.npy"))
    k3 = {r["attribute"]: r for r in summary["sweep"][1]["attribute_report"]["attributes"]}
    assert k3["red"]["best_precision"] == 1.0 and k3["blue"]["best_precision"] == 1.0
    page = open(summary["k_sweep_html"]).read()
    assert page.count('href="k_sweep/k00') == 2 and "<td>3</td><td>3</td>" in page
    assert 'class="hit">1.00' in page and "2 of 2" in page
    text = pipeline.format_summary(summary)
    assert "k sweep: " in text and text.count("contact sheets:") == 2


def test_size_summary_by_hand():
    # mean 3, population std 1
    assert sweep.size_summary([2, 2, 4, 4]) == pytest.approx(
        {"min": 2.0, "median": 3.0, "max": 4.0, "cv": 1 / 3}
    )
