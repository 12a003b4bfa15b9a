"""`python -m xplore_tf.cluster` and `python -m xplore_tf.evaluate` as a user runs them."""

from __future__ import annotations

import json

from tests_support import make_folder, run_binary


def test_cluster_then_evaluate_cli(tmp_path):
    root = tmp_path / "faces"
    truth = make_folder(str(root))
    labels = tmp_path / "labels.csv"
    names = sorted(truth)
    labels.write_text(
        "image,red,green\n"
        + "".join(f"{p},{int(truth[p] == 'red')},{int(truth[p] == 'green')}\n" for p in names)
    )
    flagfile = tmp_path / "run.cfg"
    flagfile.write_text(
        f"# a flagfile as in configs/\n--workdir={tmp_path / 'work'}\n--dataset=folder\n"
        f"--images_dir={root}\n--num_clusters=3\n--kmeans_nredo=1\n--labels_csv={labels}\n"
        "--report_min_cluster_size=5\n"
    )
    res = run_binary("xplore_tf.cluster", f"--flagfile={flagfile}")
    assert res.returncode == 0, res.stderr
    assert "36 clustered, 1 skipped" in res.stdout
    assert "cluster sizes" in res.stdout
    assert (tmp_path / "work" / "flags_cluster.txt").read_text().count("--num_clusters=3") == 1

    res = run_binary("xplore_tf.evaluate", f"--flagfile={flagfile}")
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "work" / "eval" / "discovery.json") as f:
        rows = {r["attribute"]: r for r in json.load(f)["attributes"]}
    assert rows["red"]["best_precision"] == 1.0 and rows["red"]["best_size"] == 12
    assert rows["green"]["nmi"] > 0.5


def test_cli_bad_input_is_one_line(tmp_path):
    res = run_binary(
        "xplore_tf.cluster",
        f"--workdir={tmp_path}",
        "--dataset=folder",
        f"--images_dir={tmp_path / 'missing'}",
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"xplore_tf.cluster: error: --images_dir: '{tmp_path / 'missing'}' is not a folder"
    )
    assert "Traceback" not in res.stderr
    res = run_binary("xplore_tf.cluster", "--dataset=folder", "--images_dir=")
    assert res.returncode != 0 and "images_dir is required" in res.stderr
