"""`python -m xplore_tf.synthesize --out DIR --num N --size S --seed K`: the synthetic face set.

Renders the procedural faces the demo trains on (`xplore_tf/data/synthetic.py`), with their
labels and identities, into DIR (empty: WORKDIR/synthetic). The training and clustering
stages render the set themselves when the dataset is synthetic; this binary is for looking
at it or reusing it elsewhere.
"""

from __future__ import annotations

import os

from absl import app, logging

from xplore_tf import cli
from xplore_tf import flags as xflags


@cli.friendly_errors("synthesize")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from xplore_tf.data import synthetic

    f = xflags.FLAGS
    out = f.out or (os.path.join(f.workdir, "synthetic") if f.workdir else "")
    if not out:
        raise ValueError("--out (or --workdir) is required: the folder to render into")
    seed = f.seed if f["seed"].present else f.synthetic_seed
    logging.set_verbosity(logging.INFO)
    summary = synthetic.generate(
        out,
        num=f.synthetic_num,
        size=f.synthetic_size,
        seed=seed,
        images_per_identity=f.synthetic_images_per_identity,
    )
    print(
        f"{summary['num']} synthetic faces ({summary['num_identities']} identities) at "
        f"{summary['size']} px in {summary['out_dir']}: {summary['seconds']:.1f} s, "
        f"{summary['images_per_sec']:.0f} images/s; labels in {synthetic.LABELS_NAME}"
    )


if __name__ == "__main__":
    xflags.declare_key_flags("synthesize", __name__)
    app.run(main)
