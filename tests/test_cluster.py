"""`python -m xplore_tf.cluster` and `python -m xplore_tf.evaluate` as a user runs them."""

from __future__ import annotations

import json
import logging

import pytest
from absl import flags
from tests_support import make_folder, run_binary

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model


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
    # Each attribute's best-cluster precision and NMI with the clusters, side by side.
    assert "best-cluster precision / NMI: green 1.00 / 0.734, red 1.00 / 0.734" in res.stdout
    assert (tmp_path / "work" / "flags_cluster.txt").read_text().count("--num_clusters=3") == 1

    res = run_binary("xplore_tf.evaluate", f"--flagfile={flagfile}")
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "work" / "eval" / "discovery.json") as f:
        rows = {r["attribute"]: r for r in json.load(f)["attributes"]}
    assert rows["red"]["best_precision"] == 1.0 and rows["red"]["best_size"] == 12
    assert rows["green"]["nmi"] > 0.5
    # A side-effect attribute the labels do not have stops before any translation.
    res = run_binary(
        "xplore_tf.evaluate", f"--flagfile={flagfile}", "--side_effect_attributes=blue"
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        "xplore_tf.evaluate: error: --side_effect_attributes: blue is not a judged attribute "
        "(expected some of green, red)"
    )


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


def test_images_dir_alone_reads_that_folder(tmp_path):
    # The command: no --dataset. It used to render and cluster 2,000 synthetic faces.
    root = tmp_path / "MY_FACES"
    make_folder(str(root), per_colour=4)  # 12 images and a broken file
    work = tmp_path / "W"
    res = run_binary(
        "xplore_tf.cluster",
        f"--images_dir={root}",
        "--num_clusters=4",
        "--kmeans_nredo=1",
        f"--workdir={work}",
    )
    assert res.returncode == 0, res.stderr
    assert f"images: 12 clustered, 1 skipped, 0 exact duplicates (of 13 listed in {root})" in (
        res.stdout
    )
    assert not (work / "synthetic").exists()
    resolved = (work / "flags_cluster.txt").read_text()
    assert "--dataset=folder" in resolved and "--synthetic_num" not in resolved


@pytest.fixture
def parsed_flags():
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()


def test_contradicting_data_flags_are_one_line_errors_or_warnings(
    tmp_path, parsed_flags, capsys, caplog
):
    from xplore_tf import cluster
    from xplore_tf import flags as xflags

    demo = tmp_path / "demo.cfg"
    demo.write_text("--dataset=synthetic\n--synthetic_num=10\n")
    parsed_flags(
        ["prog", f"--flagfile={demo}", f"--workdir={tmp_path}", f"--images_dir={tmp_path}"]
    )
    with pytest.raises(SystemExit) as exit_info:
        cluster.main(["prog"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"xplore_tf.cluster: error: --images_dir={tmp_path} is set but --dataset=synthetic "
        "renders synthetic faces instead: pass --dataset=folder to read the folder, or drop "
        "--images_dir"
    )
    parsed_flags.unparse_flags()
    parsed_flags(
        [
            "prog",
            f"--flagfile={demo}",
            "--dataset=folder",
            f"--images_dir={tmp_path}",
            "--workdir=w",
        ]
    )
    with caplog.at_level(logging.WARNING):
        config = xflags.config_from_flags()
    assert config.data.dataset == "folder" and config.images_dir == str(tmp_path)
    assert (
        f"--synthetic_num: only for --dataset=synthetic; ignored, the images come from --images_dir={tmp_path}"
        in caplog.text
    )


def test_num_clusters_several_values_are_a_sweep_for_cluster_only(tmp_path, parsed_flags, capsys):
    from xplore_tf import evaluate
    from xplore_tf import flags as xflags

    parsed_flags(["prog", f"--workdir={tmp_path}", "--num_clusters=7"])
    config = xflags.config_from_flags()
    assert config.cluster.num_clusters == 7 and config.cluster.k_sweep == ()
    parsed_flags.unparse_flags()

    parsed_flags(["prog", f"--workdir={tmp_path}", "--num_clusters=20, 50,100"])
    config = xflags.config_from_flags(allow_k_sweep=True)
    assert config.cluster.k_sweep == (20, 50, 100) and config.cluster.num_clusters == 20
    path = xflags.write_resolved_flags(str(tmp_path), "cluster")
    assert "--num_clusters=20,50,100\n" in open(path).read()
    message = (
        "--num_clusters=20,50,100: this stage takes one k; only `python -m xplore_tf.cluster` "
        "sweeps several (see WORKDIR/clusters/k_sweep.html), then pass the chosen one, e.g. "
        "--num_clusters=20"
    )
    with pytest.raises(flags.ValidationError) as info:
        xflags.config_from_flags()
    assert str(info.value) == message
    with pytest.raises(SystemExit) as exit_info:  # e.g. evaluate: one line, status 2
        evaluate.main(["prog"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"xplore_tf.evaluate: error: {message}"
    parsed_flags.unparse_flags()

    for bad in ("1", "20,20", "20,x"):
        with pytest.raises(flags.IllegalFlagValueError, match="--num_clusters"):
            parsed_flags(["prog", f"--workdir={tmp_path}", f"--num_clusters={bad}"])
        parsed_flags.unparse_flags()
