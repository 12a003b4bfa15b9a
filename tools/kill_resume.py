"""Kill -9 at random moments, resume, repeat: a run must lose at most one checkpoint interval.

    python -m tools.kill_resume --out=/tmp/kill --kills=20

Runs the whole main job (`xplore_tf.train`: synthetic faces, clustering, training, export)
of a tiny model once uninterrupted, then again in a second work directory where it is
killed with SIGKILL `--kills` times: a few times while the clusters are computed, then during
training steps, during checkpoint saves and during the final export, each at a random delay
after the log line that starts that phase. After every kill the same command is started
again (it must resume), and every artifact on disk is checked: each checkpoint loads, the
cluster files parse, every export version is complete. At the end the final checkpoint
must equal the uninterrupted run's (same tolerance as the resume test).

Both runs use TensorFlow's own (Eigen) CPU kernels, `TF_ENABLE_ONEDNN_OPTS=0`: oneDNN's
kernels may use atomics and are not run-to-run deterministic (oneDNN's guide, "Primitive
Attributes: deterministic"). With them, a killed run once ended 1e-3 away from the
uninterrupted one in the discriminator's Adam moments, while two uninterrupted runs
matched bitwise: kernel noise amplified by 40 GAN steps, not a resume fault. The check is
about what resuming restores, so it removes that noise.

Prints one line per kill and a tally; exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NUM_STEPS, CHECKPOINT_EVERY = 40, 2
# The tiny model of tests/tests_support.py, under the shipped configs' strategy.
RUN_FLAGS = [
    "--flagfile=configs/demo.cfg",
    "--synthetic_num=48",
    "--synthetic_size=32",
    "--num_clusters=4",
    "--kmeans_nredo=1",
    "--contact_sheet_members=4",
    "--image_size=16",
    "--g_channels=4",
    "--g_res_blocks=1",
    "--mlp_hidden=8",
    "--d_channels=4",
    "--d_num_down=3",
    "--batch_size=4",
    "--n_critic=2",
    f"--num_steps={NUM_STEPS}",
    f"--lr_decay_steps={NUM_STEPS // 2}",
    f"--checkpoint_every={CHECKPOINT_EVERY}",
    "--keep_checkpoints=2",
    "--log_every=1",
    "--summary_every=1",
    "--sample_every=4",
    "--sample_images=2",
    "--sample_clusters=2",
]


def _command(workdir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "xplore_tf.train",
        *RUN_FLAGS,
        f"--workdir={workdir}",
        f"--export_dir={os.path.join(workdir, 'export')}",
    ]


def _run(workdir: str, trigger: str | None, delay: float) -> tuple[int, list[str], bool]:
    """Runs the job; SIGKILLs it `delay` s after the first output line containing `trigger`.

    Returns (exit code, output lines, whether it was killed); `_run.times` holds the
    seconds since start at which each line arrived.
    """
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", TF_ENABLE_ONEDNN_OPTS="0"
    )
    proc = subprocess.Popen(
        _command(workdir),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    killed = threading.Event()

    def kill_later() -> None:
        time.sleep(delay)
        if proc.poll() is None:
            killed.set()
            os.kill(proc.pid, signal.SIGKILL)

    armed = False
    started, _run.times = time.perf_counter(), []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        _run.times.append(time.perf_counter() - started)
        if trigger and not armed and trigger in line:
            armed = True
            threading.Thread(target=kill_later, daemon=True).start()
    code = proc.wait()
    return code, lines, killed.is_set()


def _newest(checkpoint_dir: str) -> str | None:
    from xplore_tf import checkpoint_files

    steps = checkpoint_files.steps(checkpoint_dir)
    return checkpoint_files.prefix_of(checkpoint_dir, steps[0]) if steps else None


def _checkpoint_weights(checkpoint_dir: str) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(_newest(checkpoint_dir))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "save_counter" not in name and "OBJECT_GRAPH" not in name
    }


def _largest_differences(a: dict, b: dict, top: int = 5) -> list[str]:
    """The variables that differ most between two checkpoints, as 'name: max |a-b|'."""
    rows = [(float("inf"), f"{k}: only in one") for k in a.keys() ^ b.keys()]
    for k in a.keys() & b.keys():
        if not isinstance(a[k], bytes):
            diff = np.max(np.abs(np.asarray(a[k], np.float64) - b[k]), initial=0.0)
            rows.append((float(diff), f"{k}: {diff:.3g}"))
    return [text for _, text in sorted(rows, reverse=True)[:top]]


def check_artifacts(workdir: str, *, just_killed: bool = False) -> list[str]:
    """Problems with what is on disk: every artifact must be whole (or absent).

    just_killed: right after a kill, an interrupted save or prune may have left debris
    (below); the next start of training removes it, so only then is it a problem.
    """
    import tensorflow as tf

    from xplore_tf import checkpoint_files
    from xplore_tf.clustering import artifacts

    problems = []
    clusters = os.path.join(workdir, "clusters")
    if os.path.exists(os.path.join(clusters, artifacts.ASSIGNMENTS)):
        try:
            stats = artifacts.read_stats(os.path.join(clusters, artifacts.STATS))
            _, ids, _ = artifacts.read_assignments(os.path.join(clusters, artifacts.ASSIGNMENTS))
            if ids.max() >= stats.num_clusters:
                problems.append("assignments name a cluster stats.npz lacks")
            if not os.path.exists(os.path.join(clusters, "summary.json")):
                problems.append("assignments.csv without summary.json")
        except (OSError, ValueError) as e:
            problems.append(f"clusters: {e}")
    ckpt_dir = os.path.join(workdir, "checkpoints")
    # Every listed checkpoint (one with an index file) must be whole and load. A kill inside
    # a save or a prune can leave unlisted data shards or a `ckpt-N_temp` folder, which the
    # next start removes (`checkpoint_files.remove_debris`): only after that are they a
    # problem.
    for step in checkpoint_files.steps(ckpt_dir):
        path = checkpoint_files.prefix_of(ckpt_dir, step)
        try:
            tf.train.load_checkpoint(path).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")
        except Exception as e:  # noqa: BLE001 - any failure to read is the finding
            problems.append(f"{path}: {type(e).__name__}")
    if not just_killed and checkpoint_files.debris(ckpt_dir):
        problems.append(f"{ckpt_dir}: debris of an interrupted save left after a restart")
    model_dir = os.path.join(workdir, "export", "xplore")
    for version in os.listdir(model_dir) if os.path.isdir(model_dir) else []:
        if version.isdigit():
            folder = os.path.join(model_dir, version)
            for part in ("saved_model.pb", "variables/variables.index", "assets.extra"):
                if not os.path.exists(os.path.join(folder, part)):
                    problems.append(f"{folder}: no {part}")
    return problems


def phase_of(lines: list[str], workdir: str) -> str:
    """What the killed process was doing: its last phase line (library lines skipped)."""

    marks = ("trained to step", "saving checkpoint", "] step ", "resumed from", "training on")
    last = next((line for line in reversed(lines) if any(m in line for m in marks)), "")
    if "trained to step" in last:
        return "export"
    if "saving checkpoint" in last:
        number = last.rsplit(" ", 1)[-1]
        latest = _newest(os.path.join(workdir, "checkpoints")) or ""
        return "checkpoint" if latest.endswith(f"ckpt-{number}") else "checkpoint (cut short)"
    return "training" if last else "clustering"


def plan(kills: int, rng: random.Random) -> list[str]:
    """Phases to kill in, in order: clustering first, export last, training in between."""
    first = max(1, kills // 7)
    last = max(1, kills // 5)
    middle = kills - first - last
    return (
        ["clustering"] * first
        + [rng.choice(["training", "checkpoint"]) for _ in range(middle)]
        + ["export"] * last
    )


def phase_durations(lines: list[str], times: list[float]) -> dict[str, float]:
    """Seconds the uninterrupted run spent clustering and exporting."""

    def first(text: str) -> float:
        return next(t for line, t in zip(lines, times, strict=True) if text in line)

    return {
        "clustering": first("training on") - first("no clusters in"),
        "export": times[-1] - first("trained to step"),
    }


def trigger(
    phase: str, workdir: str, durations: dict[str, float], rng: random.Random
) -> tuple[str, float]:
    """(log line to wait for, random delay after it in s) to kill the job in `phase`.

    Clustering and export kills land at a uniform moment within the first 80 % of the time
    the phase took uninterrupted. Training and checkpoint kills aim at a step shortly after the
    latest checkpoint, so every round makes a little progress inside the training loop.
    """

    from xplore_tf import checkpoints

    latest = _newest(os.path.join(workdir, "checkpoints"))
    done = checkpoints.checkpoint_step(latest) if latest else 0
    clustered = os.path.exists(os.path.join(workdir, "clusters", "assignments.csv"))
    if phase == "clustering" and not clustered:
        return "no clusters in", rng.uniform(0.0, 0.8 * durations["clustering"])
    if phase == "export" or done + CHECKPOINT_EVERY > NUM_STEPS:
        return "trained to step", rng.uniform(0.0, 0.8 * durations["export"])
    if phase == "training":
        return f"step {done + rng.randint(1, CHECKPOINT_EVERY)}/", rng.uniform(0.0, 0.05)
    # A save of the tiny model takes ~0.05-0.1 s.
    next_save = (done // CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY
    return f"saving checkpoint {next_save}", rng.uniform(0.0, 0.08)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="Folder for the two work directories.")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs to deliver (20).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random delays.")
    args = parser.parse_args(argv)
    sys.path.insert(0, PROJECT_ROOT)
    rng = random.Random(args.seed)

    reference = os.path.join(args.out, "uninterrupted")
    code, lines, _ = _run(reference, None, 0.0)
    if code != 0:
        print("\n".join(lines[-20:]))
        print("the uninterrupted run failed")
        return 1
    durations = phase_durations(lines, _run.times)
    print(
        f"uninterrupted: clustering {durations['clustering']:.1f} s, export "
        f"{durations['export']:.1f} s, all {_run.times[-1]:.1f} s",
        flush=True,
    )

    workdir = os.path.join(args.out, "killed")
    tally = {"kills": 0, "runs": 0, "resumed": 0, "not_killed": 0, "problems": [], "by_phase": {}}
    for i, phase in enumerate(plan(args.kills, rng)):
        line, delay = trigger(phase, workdir, durations, rng)
        code, lines, killed = _run(workdir, line, delay)
        tally["runs"] += 1
        tally["resumed"] += any("resumed from" in line for line in lines)
        last = lines[-1][-90:] if lines else ""
        if killed:
            tally["kills"] += 1
            actual = phase_of(lines, workdir)
            tally["by_phase"][actual] = tally["by_phase"].get(actual, 0) + 1
        elif code != 0:
            tally["problems"].append(f"run {i}: exit {code}: {last}")
        else:
            tally["not_killed"] += 1
        problems = check_artifacts(workdir, just_killed=killed)
        tally["problems"] += [f"after kill {i}: {p}" for p in problems]
        outcome = f"killed in {actual}" if killed else f"exit {code}"
        print(f"{i + 1:2d} after '{line}' +{delay:.2f}s: {outcome} | {last}", flush=True)
    code, lines, _ = _run(workdir, None, 0.0)  # the same command, to the end
    tally["runs"] += 1
    tally["resumed"] += any("resumed from" in line for line in lines)
    if code != 0:
        tally["problems"].append(f"final run: exit {code}: {lines[-1] if lines else ''}")
    tally["problems"] += check_artifacts(workdir)

    a = _checkpoint_weights(os.path.join(reference, "checkpoints"))
    b = _checkpoint_weights(os.path.join(workdir, "checkpoints"))
    exact = a.keys() == b.keys() and all(
        a[k] == b[k] if isinstance(a[k], bytes) else np.allclose(a[k], b[k], rtol=1e-5, atol=1e-5)
        for k in a
    )
    tally["final_weights_equal_uninterrupted"] = bool(exact)
    if not exact:
        tally["largest_differences"] = _largest_differences(a, b)
        from xplore_tf.clustering import artifacts

        tally["same_clusters"] = artifacts.clusters_fingerprint(
            os.path.join(reference, "clusters")
        ) == artifacts.clusters_fingerprint(os.path.join(workdir, "clusters"))
    tally["exports"] = sorted(
        v for v in os.listdir(os.path.join(workdir, "export", "xplore")) if v.isdigit()
    )
    if tally["exports"] != ["1"]:  # however often the command ran after the export
        tally["problems"].append(f"expected one export version, found {tally['exports']}")
    if tally["kills"] and not tally["resumed"]:
        tally["problems"].append("no run resumed from a checkpoint: the kills tested nothing")
    print(json.dumps(tally, indent=2))
    return 0 if exact and not tally["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
