"""`python -m xplore_tf.explore --flagfile=configs/<run>.cfg`: browse the attributes, edit photos.

Starts a local web page (FastAPI on uvicorn; xplore_tf/explore_app.py) for the run of the
flagfile: every discovered cluster as a card (contact sheet, size, editable name, where it
edits), and a photo editor (upload a photo or pick one of the run's images, choose a face,
move sliders toward clusters or a reference group, download the result at the photo's own
resolution). The model is the run's own (--saved_model or its newest checkpoint), or a
served one with --server=HOST:PORT. It listens on 127.0.0.1:--port unless --host says
otherwise. Stop it with Ctrl-C.
"""

from __future__ import annotations

import os

from xplore_tf import startup  # noqa: E402

startup.import_tensorflow()  # before anything imports it: its start-up notices left out

from absl import app, logging  # noqa: E402

from xplore_tf import cli  # noqa: E402
from xplore_tf import flags as xflags  # noqa: E402


@cli.friendly_errors("explore")
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if not importlib.util.find_spec(m)]
    if missing:
        raise ValueError(
            f"the explore page needs {', '.join(missing)}: pip install -e '.[explore]'"
        )
    from xplore_tf import explore_app, explore_lib

    f = xflags.FLAGS
    config = xflags.config_from_flags()
    if f.host not in ("127.0.0.1", "localhost", "::1"):
        logging.warning(
            "--host=%s: the page is reachable from the network and has no login; anyone who "
            "reaches it can edit photos with your model and rename your clusters",
            f.host,
        )
    saved_model = os.path.abspath(os.path.expanduser(f.saved_model)) if f.saved_model else ""
    backend = explore_lib.make_backend(config, saved_model=saved_model, server=f.server)
    explorer = explore_lib.Explorer(config, backend, heatmap_images=f.heatmap_images)
    page = explore_app.make_app(explorer, max_upload_bytes=f.max_upload_mb << 20)
    explore_app.serve(page, host=f.host, port=f.port)


if __name__ == "__main__":
    xflags.declare_key_flags("explore", __name__)
    app.run(main)
