"""`python -m xplore_tf.export --flagfile=configs/demo.cfg`: G_ema as a SavedModel for TF Serving.

Writes `<export_dir>/<model_name>/<version>/` (default WORKDIR/export/xplore/<next version>)
from the latest checkpoint (or --checkpoint), with the signatures `serving_default`,
`translate_bytes`, `clusters`, `clusters_batched` and, when the clustering extractor can be
built here, `translate_strength`, `translate_mix`, `reference_condition`,
`translate_condition`, `translate_full` and `translate_full_condition` (see
xplore_tf/export_module.py, docs/guide/serving.md, docs/guide/beyond_clusters.md).
"""

from __future__ import annotations

import os

from xplore_tf import startup  # noqa: E402

startup.import_tensorflow()  # before anything imports it: its start-up notices left out

from absl import app  # noqa: E402

from xplore_tf import cli, workdir_lock  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402


@cli.friendly_errors("export")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from xplore_tf import export_lib

    config = xflags.config_from_flags()
    workdir_lock.hold(config.workdir, "export")
    os.makedirs(config.workdir, exist_ok=True)
    xflags.write_resolved_flags(config.workdir, "export")
    result = export_lib.export(config)
    source = (
        f"checkpoint {result.checkpoint} (step {result.step})"
        if result.checkpoint
        else "an UNTRAINED generator (--allow_untrained)"
    )
    print(
        f"exported version {result.version} to {result.path} from {source}; signatures: "
        f"{', '.join(result.signatures)}"
    )


if __name__ == "__main__":
    xflags.declare_key_flags("export", __name__)
    app.run(main)
