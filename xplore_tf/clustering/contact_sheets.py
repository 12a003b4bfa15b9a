"""Contact sheets: what each discovered attribute looks like, for a person to name it.

One JPEG per cluster showing the members nearest its centroid (the most typical faces),
and an index.html listing every cluster with its size. After looking, a user may write
`cluster_names.json` ({"12": "blond"}) which export and the client use.
"""

from __future__ import annotations

import html
import io
import json
import math
import os

import numpy as np
from absl import logging
from PIL import Image

from xplore_tf import io_utils
from xplore_tf.data import images as images_lib

CLUSTER_NAMES = "cluster_names.json"
INDEX = os.path.join("montages", "index.html")  # under WORKDIR/clusters: every sheet, linked


def sheet_name(cluster: int) -> str:
    return f"cluster_{cluster:03d}.jpg"


def nearest_members(labels: np.ndarray, distances: np.ndarray, cluster: int, n: int) -> np.ndarray:
    """Indices of up to n members of `cluster`, nearest the centroid first."""
    members = np.flatnonzero(labels == cluster)
    return members[np.argsort(distances[members], kind="stable")[:n]]


def make_sheet(paths: list[str], *, thumb: int, crop_size: int = 0) -> Image.Image:
    """A near-square grid of thumbnails; unreadable files become grey tiles."""
    cols = max(1, math.ceil(math.sqrt(len(paths))))
    rows = max(1, math.ceil(len(paths) / cols))
    sheet = Image.new("RGB", (cols * thumb, rows * thumb), (40, 40, 40))
    for i, path in enumerate(paths):
        try:
            tile = Image.fromarray(images_lib.load_image(path, size=thumb, crop_size=crop_size))
        except images_lib.ImageError as e:  # any decoder failure on this one file
            logging.warning("contact sheet: cannot read %s", e)
            tile = Image.new("RGB", (thumb, thumb), (128, 128, 128))
        sheet.paste(tile, ((i % cols) * thumb, (i // cols) * thumb))
    return sheet


def read_cluster_names(path: str) -> dict[int, str]:
    """{cluster id: name} from a user-written cluster_names.json (absent file = {}).

    Names are what `--cluster=NAME` resolves, so each must be usable there: a non-empty
    string that is not a number (`--cluster=5` means id 5) and holds no ':' or ',' (the
    `ID_OR_NAME:WEIGHT,...` syntax).

    Raises:
        ValueError: one line naming the file and the entry: not a JSON object, a key that is
            not a cluster id, or a value that is not such a name.
    """
    if not os.path.exists(path):
        return {}
    form = 'a JSON object like {"12": "blond", "31": "glasses"}'
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except ValueError as e:
        raise ValueError(f"{path}: expected {form}: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected {form}, got a JSON {type(raw).__name__}")
    names = {}
    for key, value in raw.items():
        if not key.strip().isdigit():
            raise ValueError(f"{path}: key {key!r} is not a cluster id; expected {form}")
        problem = name_problem(value)
        if problem:
            raise ValueError(f"{path}: the name of cluster {key}, {value!r}, {problem}")
        names[int(key)] = value
    return names


def name_problem(value) -> str:
    """Why `value` cannot be a cluster name ("" when it can)."""
    if not isinstance(value, str) or not value.strip():
        return "is not a name (a non-empty string)"
    if value.strip().lstrip("-").isdigit():
        return "is a number: --cluster=NUMBER means a cluster id, so it could never be used"
    if ":" in value or "," in value:
        return "holds ':' or ',', which --cluster reads as weights (ID_OR_NAME:WEIGHT,...)"
    return ""


def write_contact_sheets(
    out_dir: str,
    root: str,
    images: list[str],
    labels: np.ndarray,
    distances: np.ndarray,
    sizes: np.ndarray,
    *,
    members: int = 16,
    thumb: int = 64,
    crop_size: int = 0,
    title: str = "xplore_tf clusters",
    names: dict[int, str] | None = None,
) -> str:
    """Writes one sheet per cluster plus index.html into out_dir; returns the HTML path."""
    names = names or {}
    os.makedirs(out_dir, exist_ok=True)
    for c in range(len(sizes)):
        idx = nearest_members(labels, distances, c, members)
        sheet = make_sheet(
            [os.path.join(root, images[i]) for i in idx], thumb=thumb, crop_size=crop_size
        )
        buf = io.BytesIO()
        sheet.save(buf, format="JPEG", quality=90)
        io_utils.write_bytes(os.path.join(out_dir, sheet_name(c)), buf.getvalue())
    rows = []
    for c in np.argsort(-sizes, kind="stable"):
        label = f" &mdash; {html.escape(names[int(c)])}" if int(c) in names else ""
        rows.append(
            f'<figure><img src="{sheet_name(int(c))}" alt="cluster {c}">'
            f"<figcaption>cluster {c}{label}<br>{int(sizes[c])} images</figcaption></figure>"
        )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;background:#222;color:#eee}}
figure{{display:inline-block;margin:8px;text-align:center}}
img{{image-rendering:pixelated;max-width:{thumb * 4}px}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{len(sizes)} clusters, {int(sizes.sum())} images, largest first. Each sheet shows the
members nearest the centroid. To name clusters, write <code>{CLUSTER_NAMES}</code> next to
<code>stats.npz</code>, e.g. <code>{{"12": "blond"}}</code>.</p>
{chr(10).join(rows)}
</body></html>
"""
    index = os.path.join(out_dir, os.path.basename(INDEX))
    io_utils.write_text(index, page)
    return index
