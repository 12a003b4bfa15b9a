"""The k sweep page: one row of evidence per k, so a person can choose the granularity.

The paper (§3.6) notes that k sets how fine the discovered attributes are: few clusters
merge attributes, many split them. `python -m xplore_tf.cluster --num_clusters=20,50,100`
clusters the same (cached) features once per k into clusters/k_sweep/kKKK/ and writes
clusters/k_sweep.html with, per k: the cluster sizes, the within-cluster spread (mean
distance of members to their centroid in the clustering space), a link to the contact
sheets, and — when labels are known — the attribute report of `clustering/report.py`.
"""

from __future__ import annotations

import html
import os

import numpy as np

from xplore_tf import io_utils

SWEEP_DIR = "k_sweep"
SWEEP_PAGE = "k_sweep.html"


def k_folder(k: int) -> str:
    """The artifact folder name of one k: `k020`, `k100`."""
    return f"k{int(k):03d}"


def size_summary(sizes) -> dict[str, float]:
    """min / median / max and the coefficient of variation of cluster sizes [k]."""
    sizes = np.asarray(sizes, np.float64)
    return {
        "min": float(sizes.min()),
        "median": float(np.median(sizes)),
        "max": float(sizes.max()),
        "cv": float(sizes.std() / max(sizes.mean(), 1e-12)),
    }


def _bars(values, *, width: int = 240, height: int = 36) -> str:
    """An inline SVG bar chart of values sorted largest first (cluster sizes)."""
    values = np.sort(np.asarray(values, np.float64))[::-1]
    if not len(values) or values.max() <= 0:
        return ""
    w = width / len(values)
    bars = "".join(
        f'<rect x="{i * w:.2f}" y="{height - height * v / values.max():.2f}" '
        f'width="{max(w - 0.3, 0.3):.2f}" height="{height * v / values.max():.2f}"/>'
        for i, v in enumerate(values)
    )
    return f'<svg width="{width}" height="{height}" fill="#8cf">{bars}</svg>'


def write_sweep_page(
    path: str, summaries: list[dict], *, title: str, precision_threshold: float = 0.8
) -> str:
    """Writes the k sweep page to `path` (atomically) from per-k summaries; returns `path`.

    Each summary is what `pipeline._cluster_and_write` returns: `num_clusters`,
    `num_clusters_asked`, `cluster_sizes`, `mean_spread`, `contact_sheets` (a path), and
    optionally `attribute_report` ({"attributes": [AttributeReport as dict], ...}).
    """
    folder = os.path.dirname(os.path.abspath(path))
    tables = [_sizes_table(summaries, folder)]
    reports = [s for s in summaries if s.get("attribute_report")]
    if reports:
        tables.append(_attributes_section(reports, precision_threshold))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;background:#222;color:#eee}}
table{{border-collapse:collapse}} td,th{{border:1px solid #555;padding:4px 8px}}
a{{color:#8cf}} td.hit{{background:#264}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>The same features clustered with each k (paper §3.6: k sets how fine the discovered
attributes are). Pick one and run <code>python -m xplore_tf.cluster --num_clusters=K</code>
(features come from the cache) before training.</p>
{"".join(tables)}
</body></html>
"""
    io_utils.write_text(path, page)
    return path


def _sizes_table(summaries: list[dict], folder: str) -> str:
    """The HTML table of one row per k: sizes, spread, contact sheets (linked from `folder`)."""
    head = (
        "<tr><th>k</th><th>clusters</th><th>sizes (largest first)</th><th>min / median / max"
        "</th><th>mean distance to centroid</th><th>contact sheets</th></tr>"
    )
    rows = []
    for s in summaries:
        sz = size_summary(s["cluster_sizes"])
        link = os.path.relpath(s["contact_sheets"], folder)
        rows.append(
            f"<tr><td>{int(s['num_clusters_asked'])}</td><td>{int(s['num_clusters'])}</td>"
            f"<td>{_bars(s['cluster_sizes'])}</td>"
            f"<td>{sz['min']:.0f} / {sz['median']:.0f} / {sz['max']:.0f}</td>"
            f"<td>{float(s['mean_spread']):.3f}</td>"
            f'<td><a href="{html.escape(link)}">{html.escape(link)}</a></td></tr>'
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _attributes_section(reports: list[dict], precision_threshold: float) -> str:
    """The HTML heading, note and table of best-cluster precision per attribute (rows) and
    k (columns), with a last row counting the attributes found at `precision_threshold`."""
    names = [r["attribute"] for r in reports[0]["attribute_report"]["attributes"]]
    first = reports[0]["attribute_report"]
    head = (
        "<tr><th>attribute</th>"
        + "".join(f"<th>k={int(s['num_clusters_asked'])}</th>" for s in reports)
        + "</tr>"
    )
    body = []
    for i, name in enumerate(names):
        cells = []
        for s in reports:
            r = s["attribute_report"]["attributes"][i]
            mark = ' class="hit"' if r["best_precision"] >= precision_threshold else ""
            cells.append(
                f"<td{mark}>{r['best_precision']:.2f} <small>(cluster {r['best_cluster']}, "
                f"{r['best_size']} images; NMI {r['nmi']:.3f})</small></td>"
            )
        body.append(f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
    found = "".join(
        "<td>"
        + str(
            sum(
                r["best_precision"] >= precision_threshold
                for r in s["attribute_report"]["attributes"]
            )
        )
        + f" of {len(names)}</td>"
        for s in reports
    )
    body.append(f"<tr><td><b>precision &ge; {precision_threshold:g}</b></td>{found}</tr>")
    return (
        f"<h2>Attributes (evaluation only: labels from "
        f"{html.escape(str(first['labels_csv']))})</h2>"
        f"<p>Best-cluster precision among clusters of at least {first['min_cluster_size']} "
        f"images; {first['images_matched']} labelled images.</p>"
        f"<table>{head}{''.join(body)}</table>"
    )


__all__ = ["SWEEP_DIR", "SWEEP_PAGE", "k_folder", "size_summary", "write_sweep_page"]
