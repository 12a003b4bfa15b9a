"""`python -m xplore_tf.train --flagfile=configs/demo.cfg`: the whole main job.

Runs the clustering stage first when WORKDIR/clusters is missing, then trains (resuming
from WORKDIR/checkpoints by default), then exports G_ema when --export_dir is set (not after
Ctrl-C: that stops it at a checkpoint with the shell's exit code for a signal, 130, so a
script's `train && evaluate` stops too). Watch it with `tensorboard --logdir WORKDIR/train`.
"""

from __future__ import annotations

import os
import signal
import sys

from xplore_tf import startup  # noqa: E402

startup.import_tensorflow()  # before anything imports it: its start-up notices left out

from absl import app  # noqa: E402

from xplore_tf import cli, workdir_lock  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402


@cli.friendly_errors("train")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from xplore_tf import export_lib, train_lib
    from xplore_tf.clustering import contact_sheets

    config = xflags.config_from_flags()
    if train_lib.writes_workdir(config):
        workdir_lock.hold(config.workdir, "train")
    os.makedirs(config.workdir, exist_ok=True)
    xflags.write_resolved_flags(config.workdir, "train")
    try:
        result = train_lib.train(config)
    except train_lib.TrainingDivergedError as e:
        raise ValueError(str(e)) from None
    if result.steps_run == 0 and not result.stopped_by_signal:
        print(
            f"already trained to step {result.step} (--num_steps={config.train.num_steps}): "
            f"nothing to do; checkpoint {result.checkpoint}"
        )
    elif result.stopped_by_signal:
        print(
            f"stopped at step {result.step} of {config.train.num_steps}; checkpoint "
            f"{result.checkpoint}; the same command resumes from it"
        )
    else:
        print(
            f"trained to step {result.step}: {result.images_per_second:.1f} images/s; "
            f"checkpoint {result.checkpoint}; samples in {config.train_dir}/samples; "
            f"quality: python -m xplore_tf.evaluate with the same flags"
        )
    sheets = os.path.join(config.clusters_dir, contact_sheets.INDEX)
    if result.chief and os.path.isfile(sheets):
        print(f"the clusters' contact sheets: {sheets}")
    if config.export.export_dir and result.chief and not result.stopped_by_signal:
        done = export_lib.version_of_checkpoint(config, result.checkpoint)
        if done:  # the same command run again after it finished
            print(f"already exported as {done}")
        else:
            print(f"exported {export_lib.export(config, checkpoint=result.checkpoint).path}")
    if result.stopped_by_signal:
        # The shell's code for a command a signal ended (130 after Ctrl-C): a script's
        # `train && evaluate` must not go on to a half-trained model.
        sys.exit(128 + (result.signal or signal.SIGTERM))


if __name__ == "__main__":
    xflags.declare_key_flags("train", __name__)
    app.run(main)
