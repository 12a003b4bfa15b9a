"""`python -m xplore_tf.translate --flagfile=... --images=a.jpg,b.png --cluster=12 --out=DIR`.

Translates local image files into a cluster (an id or a name from cluster_names.json), or
with --all_clusters into every cluster as one grid (rows = images, columns = the input then
each cluster), without a server: with an exported SavedModel (--saved_model=VERSION_DIR) or
G_ema of the run's latest checkpoint (or --checkpoint). Output as serving/client.py writes it:
at each input's own resolution, the generator's edit added to it (--output_resolution=model:
the generator's output). With --paste_back each image is a photo: its faces are detected,
aligned and translated, the edits are added back, and the whole photo is written
(xplore_tf/translate_lib.py, xplore_tf/common/faces.py).
Beyond fixed clusters (docs/guide/beyond_clusters.md): --strength=0.5 (half way from the input's own
cluster), --cluster=12:1.0,31:0.5 (a weighted combination), --reference_dir=DIR (toward the
statistics of a folder of photos; with --reference_edit=shared only what they have in common),
--keep=10 (the edit without cluster 10's direction).
"""

from __future__ import annotations

import os

from xplore_tf import startup  # noqa: E402

startup.import_tensorflow()  # before anything imports it: its start-up notices left out

from absl import app  # noqa: E402

from xplore_tf import cli  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402


@cli.friendly_errors("translate")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from xplore_tf import translate_lib

    f = xflags.FLAGS
    config = xflags.config_from_flags()
    if f.saved_model and f.checkpoint:
        raise ValueError("--saved_model and --checkpoint both choose the model: pass one")
    written = translate_lib.translate_files(
        config,
        f.images,
        out=f.out,
        cluster=f.cluster,
        all_clusters=f.all_clusters,
        strength=f.strength,
        reference_dir=os.path.abspath(os.path.expanduser(f.reference_dir))
        if f.reference_dir
        else "",
        reference_edit=f.reference_edit,
        keep=f.keep,
        saved_model=os.path.abspath(os.path.expanduser(f.saved_model)) if f.saved_model else "",
        paste_back=config.prepare.paste_back,
        output_resolution=f.output_resolution,
    )
    for path in written:
        print(path)


if __name__ == "__main__":
    xflags.declare_key_flags("translate", __name__)
    app.run(main)
