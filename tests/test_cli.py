"""The binaries' error handler: what a user causes is one line (traceback with --verbosity=1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from absl import logging
from tests_support import PROJECT_ROOT, TINY_MODEL_FLAGS, tiny_trained_run, with_file_size_limit

from xplore_tf import cli


def _run(error: BaseException, capsys) -> tuple[int, str]:
    @cli.friendly_errors("export")
    def main(argv):
        raise error

    with pytest.raises(SystemExit) as info:
        main(["prog"])
    return info.value.code, capsys.readouterr().err


def test_user_caused_errors_are_one_line_and_exit_2(capsys):
    import tensorflow as tf

    code, err = _run(OSError(28, "No space left on device"), capsys)
    assert (code, err) == (2, "xplore_tf.export: error: [Errno 28] No space left on device\n")
    message = (
        "Graph execution error:\n\nDetected at node x\nRead less bytes than requested\n"
        "\t [[{{node RestoreV2}}]]"
    )
    code, err = _run(tf.errors.DataLossError(None, None, message), capsys)
    assert err == "xplore_tf.export: error: DataLossError: Read less bytes than requested\n"
    previous = logging.get_verbosity()
    logging.set_verbosity(logging.DEBUG)  # --verbosity=1: the traceback too
    try:
        code, err = _run(ValueError("bad --flag"), capsys)
    finally:
        logging.set_verbosity(previous)
    assert code == 2 and "Traceback" in err and err.endswith("error: bad --flag\n")


def test_programming_errors_keep_their_traceback():
    @cli.friendly_errors("export")
    def main(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        main(["prog"])


@pytest.mark.slow
def test_an_export_that_runs_out_of_space_is_one_line_and_leaves_no_half_version(
    tmp_path, tmp_path_factory
):
    run = tiny_trained_run(tmp_path_factory)
    workdir = tmp_path / "run"
    shutil.copytree(run.workdir, workdir)

    res = subprocess.run(
        with_file_size_limit(
            [
                sys.executable,
                "-m",
                "xplore_tf.export",
                f"--workdir={workdir}",
                *TINY_MODEL_FLAGS,
                f"--feature_weights={run.cluster.feature_weights}",
            ],
            kib=20,
        ),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert res.returncode == 2, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("xplore_tf.export: error: ") and "Traceback" not in res.stderr, last
    assert "File too large" in last or "No space" in last, last
    model_dir = workdir / "export" / "xplore"
    assert not model_dir.exists() or os.listdir(model_dir) == []


def test_synthesize_renders_the_set_or_says_what_it_needs(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "xplore_tf.synthesize", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = run("--num=4")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == (
        "xplore_tf.synthesize: error: --out (or --workdir) is required: the folder to render into"
    )
    done = run(f"--out={tmp_path / 'faces'}", "--num=4", "--size=32")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 synthetic faces" in done.stdout
    assert len([n for n in os.listdir(tmp_path / "faces") if n.endswith(".png")]) == 4
