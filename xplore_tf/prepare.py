"""`python -m xplore_tf.prepare --images_dir=RAW --out=ALIGNED`: faces of real photos, aligned.

Detects every face (or `--faces=largest`) of every photo below --images_dir with five
landmarks (`--detector`), aligns it to CelebA's framing by a similarity transform and writes
ALIGNED/<relative path>_f<i>.png (`--aligned_size` px) plus ALIGNED/faces.csv (source photo,
face index, score, landmarks, 2x3 transform) and summary.json; prints the photos where no
face was found. See xplore_tf/prepare_lib.py.
"""

from __future__ import annotations

import os

from xplore_tf import startup  # noqa: E402

startup.import_tensorflow()  # before anything imports it: its start-up notices left out

from absl import app, logging  # noqa: E402

from xplore_tf import cli  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402


@cli.friendly_errors("prepare")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from xplore_tf import prepare_lib

    f = xflags.FLAGS
    if not f.images_dir:
        raise ValueError("--images_dir is required: the folder of photos to prepare")
    if not f.out:
        raise ValueError("--out is required: the folder to write the aligned faces into")
    logging.set_verbosity(logging.INFO)
    summary = prepare_lib.prepare_folder(
        os.path.abspath(os.path.expanduser(f.images_dir)),
        os.path.abspath(os.path.expanduser(f.out)),
        xflags.prepare_config_from_flags(),
    )
    print(prepare_lib.format_summary(summary))


if __name__ == "__main__":
    xflags.declare_key_flags("prepare", __name__)
    app.run(main)
