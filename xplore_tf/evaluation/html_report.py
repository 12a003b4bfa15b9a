"""WORKDIR/eval/report.html: one self-contained page a person reads after `evaluate`.

A translation matrix (rows: held-out input images; columns: the input, then each target
cluster) with its images embedded as data URIs, the discovery / transfer / identity /
realism tables from metrics.json, and one row per cluster.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json

import numpy as np
from PIL import Image


@dataclasses.dataclass
class TranslationMatrix:
    """inputs uint8 [R,S,S,3]; columns: one uint8 [R,S,S,3] per target cluster."""

    inputs: np.ndarray
    columns: list[np.ndarray]
    headers: list[str]  # one per column
    row_labels: list[str]  # one per input

    def image(self) -> np.ndarray:
        """The whole matrix as one uint8 image: input column first, 2 px gaps."""
        r = len(self.inputs)
        if r == 0:
            return np.zeros((1, 1, 3), np.uint8)
        s = self.inputs.shape[1]
        cols = [self.inputs, *self.columns]
        gap = 2
        out = np.full((r * (s + gap) - gap, len(cols) * (s + gap) - gap, 3), 255, np.uint8)
        for j, col in enumerate(cols):
            for i in range(r):
                out[i * (s + gap) : i * (s + gap) + s, j * (s + gap) : j * (s + gap) + s] = col[i]
        return out


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def _e(value) -> str:
    return html.escape(str(value))


def _num(value, spec: str = ".3f") -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float) and not np.isfinite(value):
        return "&ndash;"
    return format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _matrix_html(matrix: TranslationMatrix) -> str:
    size = max(64, int(matrix.inputs.shape[1])) if len(matrix.inputs) else 64
    header = "<th>input</th>" + "".join(f"<th>{_e(h)}</th>" for h in matrix.headers)
    rows = []
    for i in range(len(matrix.inputs)):
        cells = [matrix.inputs[i]] + [col[i] for col in matrix.columns]
        tds = "".join(
            f'<td><img src="{_data_uri(c)}" width="{size}" height="{size}" alt=""></td>'
            for c in cells
        )
        rows.append(f'<tr title="{_e(matrix.row_labels[i])}">{tds}</tr>')
    return f'<table class="matrix"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _section_status(section: dict) -> str:
    return f"<p class='skip'>skipped: {_e(section.get('reason', ''))}</p>"


def render(metrics: dict, *, matrix: TranslationMatrix | None = None) -> str:
    """The HTML page for a metrics dict as written by `pipeline.run_evaluation`."""
    parts = []
    title = f"xplore_tf evaluation of {metrics.get('workdir', '')}"
    ckpt = metrics.get("checkpoint")
    step = metrics.get("step")
    parts.append(
        f"<h1>{_e(title)}</h1><p>generator: {_e(ckpt or 'none')}"
        + (f" (step {_e(step)})" if step is not None else "")
        + f"; {_e(metrics.get('num_clusters'))} clusters.</p>"
    )

    # ---- translation matrix
    parts.append("<h2>Translation matrix</h2>")
    if matrix is not None and len(matrix.inputs):
        parts.append(
            "<p>Rows: held-out input images (one per identity first); first column the input, "
            "then its translation into each target cluster (the transfer clusters first, "
            "labelled with the attribute they stand for).</p>" + _matrix_html(matrix)
        )
    else:
        parts.append("<p class='skip'>no translations (no generator)</p>")

    # ---- transfer
    tr = metrics.get("transfer", {})
    parts.append("<h2>Attribute transfer</h2>")
    if tr.get("status") == "ok":
        parts.append(
            f"<p>Judge: {_e(tr['judge'])}. {tr['eval_images']} held-out images (split "
            f"{_e(tr['split'])}) translated into each attribute's best cluster when its "
            f"precision is at least {tr['min_precision']}. <i>all</i>: fraction of the "
            "translations the judge sees with the attribute; <i>lacking</i>: the same among "
            "inputs that truly lack it (the real transfer); <i>baseline</i>: the judge on the "
            f"untranslated inputs. Eval images: {_e(tr.get('eval_source', ''))}.</p>"
        )
        rows = [
            [
                _e(r["attribute"]),
                str(r["cluster"]),
                _num(r["cluster_precision"], ".2f"),
                _num(r["judge_balanced_accuracy"], ".2f"),
                _num(r["rate_all"]),
                _num(r["baseline_all"]),
                f"{_num(r['rate_lacking'])} ({r['inputs_lacking']})",
                _num(r["baseline_lacking"]),
                _num(r["gain_lacking"], "+.3f"),
            ]
            for r in tr["attributes"]
        ]
        parts.append(
            _table(
                [
                    "attribute",
                    "cluster",
                    "cluster precision",
                    "judge bal. acc.",
                    "rate all",
                    "baseline all",
                    "rate lacking (n)",
                    "baseline lacking",
                    "gain lacking",
                ],
                rows,
            )
            if rows
            else f"<p>{_e(tr.get('reason', ''))}</p>"
        )
    else:
        parts.append(_section_status(tr))

    # ---- identity
    idn = metrics.get("identity", {})
    parts.append("<h2>Identity preservation</h2>")
    if idn.get("status") == "ok":
        info = f"Embedder: {_e(idn['embedder'])}"
        if "regressor" in idn:
            reg = idn["regressor"]
            info += (
                f" (held-out R<sup>2</sup> {_num(reg['r2'])}, MAE {_num(reg['mae'])} on "
                f"{reg['test_images']} images)"
            )
        if "faces_detected" in idn:
            info += f" (faces detected in {idn['faces_detected']} of {idn['faces_seen']} images)"
        info += (
            f". Threshold {_num(idn['threshold'])} ({_e(idn['threshold_source'])}); real "
            f"pairs from {_e(idn['pairs_source'] or 'none')}."
        )
        if idn.get("relative_distance") is not None:
            info += (
                f" Relative distance {_num(idn['relative_distance'])}: 1 = as close as two "
                "images of one person, 0 = as far as two people (no threshold involved)."
            )
        rows = [
            [
                label,
                _num(idn[k]["mean_distance"]),
                _num(idn[k]["verification_rate"]),
                str(idn[k]["pairs"]),
            ]
            for k, label in (
                ("translation", "input vs its translation (random target)"),
                ("same_identity", "two images of one identity (real)"),
                ("different_identity", "two different identities (real)"),
            )
        ]
        parts.append(
            f"<p>{info}</p>" + _table(["pairs", "mean distance", "judged same", "n"], rows)
        )
    else:
        parts.append(_section_status(idn))

    # ---- realism
    rl = metrics.get("realism", {})
    parts.append("<h2>Realism</h2>")
    if rl.get("status") == "ok":
        key = f"fd_{rl['feature_space']}"
        rows = [[key, _num(rl[key], ".4g"), _num(rl[f"{key}_real_reference"], ".4g")]]
        if rl.get("fid_inception_v3") is not None:
            rows.append(
                [
                    "fid_inception_v3",
                    _num(rl["fid_inception_v3"], ".4g"),
                    _num(rl["fid_inception_v3_real_reference"], ".4g"),
                ]
            )
        parts.append(
            f"<p>Fréchet distance between {rl['real_images']} held-out real images and "
            f"{rl['translated_images']} translations ({_e(rl['translations'])}); the "
            "reference is real vs real images of the same count (the floor at this sample "
            "size).</p>" + _table(["metric", "real vs translated", "real vs real"], rows)
        )
    else:
        parts.append(_section_status(rl))

    # ---- strength curve (docs/beyond.md), with --strengths
    sc = metrics.get("strength_curve")
    if sc is not None:
        parts.append("<h2>Strength curve</h2>")
        if sc.get("status") == "ok":
            rows = [
                [
                    _num(p["strength"], "g"),
                    _num(p["mean_rate_lacking"]),
                    _num(p["mean_rate_all"]),
                    _num(p["mean_identity_verified"]),
                    _num(p["mean_l1_to_input"], ".4f"),
                ]
                for p in sc["curve"]
            ]
            parts.append(
                f"<p>{sc['eval_images']} held-out images translated into the clusters of "
                f"{_e(', '.join(sc['targets']))} with condition s_src + alpha (s_target - s_src), "
                f"s_src = the statistics of each input's nearest cluster; baseline (untranslated, "
                f"lacking) {_num(sc['baseline_lacking'])}. Transfer monotonic in alpha: "
                f"{'yes' if sc['transfer_monotonic'] else 'no'}.</p>"
                + _table(
                    [
                        "alpha",
                        "transfer (lacking)",
                        "transfer (all)",
                        "identity verified",
                        "L1 to input",
                    ],
                    rows,
                )
            )
        else:
            parts.append(_section_status(sc))

    # ---- reference groups, with --reference_group_size
    rg = metrics.get("reference_groups")
    if rg is not None:
        parts.append("<h2>Reference groups</h2>")
        if rg.get("status") == "ok":
            rows = [
                [
                    _e(g["attribute"]),
                    g["group_images"],
                    f"{g['nearest_cluster']} ({_num(g['relative_distance'], '.2f')})",
                    _num(g["toward_group"]["rate_lacking"]),
                    _num(g["toward_nearest_cluster"]["rate_lacking"]),
                    _num(g["toward_group"].get("identity_verified")),
                    _num(g["toward_nearest_cluster"].get("identity_verified")),
                ]
                for g in rg["groups"]
                if g["status"] == "ok"
            ]
            parts.append(
                f"<p>For each transfer attribute, {rg['group_size']} held-out images having it "
                "form a reference group; the other held-out images are translated toward the "
                "group's statistics and toward the group's nearest cluster.</p>"
                + _table(
                    [
                        "attribute",
                        "group images",
                        "nearest cluster (relative distance)",
                        "transfer toward group",
                        "transfer toward nearest cluster",
                        "identity (group)",
                        "identity (cluster)",
                    ],
                    rows,
                )
            )
        else:
            parts.append(_section_status(rg))

    # ---- combined attributes, with --combinations
    cb = metrics.get("combinations")
    if cb is not None:
        parts.append("<h2>Combined attributes</h2>")
        if cb.get("status") == "ok":
            rows = [
                [
                    _e(p["pair"]),
                    p["inputs_lacking_both"],
                    _num(p["both_present"]["combined"]),
                    " / ".join(
                        _num(p["both_present"].get(key))
                        for key in (*(f"only {x}" for x in p["pair"].split("+")), "half each")
                    ),
                    _num(p["baseline_both_present"]),
                    _num(p["combined_identity_verified"]),
                ]
                if p["status"] == "ok"
                else [_e(p["pair"]), _e(p["reason"]), "", "", "", ""]
                for p in cb["pairs"]
            ]
            parts.append(
                "<p>Inputs lacking both attributes, translated with condition "
                "s_src + (s_a - s_src) + (s_b - s_src); the rate at which the judge finds both, "
                "against translating into either alone and into the midpoint (s_a + s_b) / 2.</p>"
                + _table(
                    [
                        "pair",
                        "inputs lacking both",
                        "both present (combined)",
                        "both present (a alone / b alone / 0.5 a + 0.5 b)",
                        "baseline",
                        "identity (combined)",
                    ],
                    rows,
                )
            )
        else:
            parts.append(_section_status(cb))

    # ---- discovery
    disc = metrics.get("discovery", {})
    parts.append("<h2>Attribute discovery</h2>")
    parts.append(
        f"<p>{disc.get('images_matched')} of {disc.get('images_assigned')} clustered images "
        f"have labels; best cluster among clusters of at least {disc.get('min_cluster_size')} "
        f"images; mean NMI {_num(disc.get('mean_nmi'))}.</p>"
    )
    rows = [
        [
            _e(r["attribute"]),
            str(r["positives"]),
            _num(r["nmi"]),
            str(r["best_cluster"]),
            _num(r["best_precision"]),
            str(r["best_size"]),
            _num(r["best_recall"]),
            str(r["clusters_above"]),
        ]
        for r in disc.get("attributes", [])
    ]
    parts.append(
        _table(
            [
                "attribute",
                "positives",
                "NMI",
                "best cluster",
                "precision",
                "size",
                "recall",
                f"clusters &gt; {disc.get('precision_threshold')}",
            ],
            rows,
        )
    )

    # ---- clusters
    parts.append("<h2>Clusters</h2>")
    rows = []
    for c in metrics.get("clusters", []):
        top = ", ".join(f"{_e(t['attribute'])} {t['precision']:.2f}" for t in c["top_attributes"])
        moved = ", ".join(
            f"{_e(t['attribute'])}: {_num(t['rate_lacking'])} (baseline {_num(t['baseline_lacking'])})"
            for t in c["transfer"]
        )
        rows.append(
            [
                str(c["cluster"]),
                _e(c["name"]),
                str(c["size"]),
                top,
                moved or "&ndash;",
                _num(c["identity_distance"]),
                f'<a href="../clusters/montages/cluster_{c["cluster"]:03d}.jpg">sheet</a>',
            ]
        )
    parts.append(
        _table(
            [
                "cluster",
                "name",
                "size",
                "most frequent attributes (precision)",
                "transfer among inputs lacking it",
                "identity distance into it",
                "members",
            ],
            rows,
        )
    )
    parts.append(
        "<details><summary>metrics.json</summary><pre>"
        + _e(json.dumps(metrics, indent=2, sort_keys=True))
        + "</pre></details>"
    )
    style = (
        "body{font-family:sans-serif;margin:20px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:right}"
        "th{background:#eee}"
        "table.matrix td{padding:1px;border:none}"
        "table.matrix th{font-size:11px;max-width:128px;word-wrap:break-word}"
        "table.matrix img{image-rendering:pixelated;display:block}"
        ".skip{color:#a50}"
    )
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


__all__ = ["TranslationMatrix", "png_bytes", "render"]
