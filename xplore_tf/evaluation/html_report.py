"""WORKDIR/eval/report.html: one self-contained page a person reads after `evaluate`.

A translation matrix (rows: held-out input images; columns: the input, then each target
cluster) with its images embedded as data URIs, the discovery / transfer / identity /
realism tables from metrics.json, and one row per cluster.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json

import numpy as np

from xplore_tf.common.pixels import column_header, grid, png_bytes
from xplore_tf.evaluation import beyond
from xplore_tf.evaluation.discovery import DiscoveryResult
from xplore_tf.evaluation.identity import IdentityResult
from xplore_tf.evaluation.metrics import Metrics, as_metrics
from xplore_tf.evaluation.realism import RealismResult
from xplore_tf.evaluation.results import OK
from xplore_tf.evaluation.side_effects import SideEffects
from xplore_tf.evaluation.transfer import SecondJudge, TransferResult


@dataclasses.dataclass
class TranslationMatrix:
    """inputs uint8 [R,S,S,3]; columns: one uint8 [R,S,S,3] per target cluster."""

    inputs: np.ndarray
    columns: list[np.ndarray]
    headers: list[str]  # one per column, for the HTML table
    row_labels: list[str]  # one per input
    labels: list[str]  # one per column, for the PNG: short lines that fit a column

    def image(self) -> np.ndarray:
        """The whole matrix as one uint8 image: input column first, 2 px gaps, under a strip
        naming the columns ("input", then `labels`)."""
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
        return np.concatenate([column_header(["input", *self.labels], s, gap), out], axis=0)


@dataclasses.dataclass
class FlaggedTranslations:
    """Translations a detector flagged, shown so that a person can judge it: inputs and
    outputs uint8 [E,S,S,3]; marks: per example, (row, column, area in px) of each find."""

    inputs: np.ndarray
    outputs: np.ndarray
    marks: list[list[tuple]]
    looked_at: int  # how many translations the detector went through

    def image(self, zoom: int | None = None, per_row: int = 4) -> np.ndarray:
        """Each example as input | output, `zoom` x larger (default: to at least 128 px), a
        red square around each find on the output; `per_row` examples to a row, 6 px apart.
        uint8 [H, W, 3]."""
        if not len(self.inputs):
            return np.zeros((1, 1, 3), np.uint8)
        zoom = zoom or max(2, -(-128 // self.inputs.shape[1]))
        gap = 6
        tiles = [
            np.pad(self._pair(i, zoom), ((0, gap), (0, gap), (0, 0)), constant_values=255)
            for i in range(len(self.inputs))
        ]
        if len(tiles) > per_row:  # the last row filled up with white
            tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % per_row)
        rows = [tiles[k : k + per_row] for k in range(0, len(tiles), per_row)]
        return grid(rows)[:-gap, :-gap]

    def _pair(self, i: int, zoom: int) -> np.ndarray:
        s = self.inputs.shape[1]
        big = [
            np.repeat(np.repeat(im, zoom, 0), zoom, 1) for im in (self.inputs[i], self.outputs[i])
        ]
        out = big[1].copy()
        for row, col, area in self.marks[i]:
            half = max(2.0, float(np.sqrt(area))) * zoom
            top, left = (max(0, int(v * zoom - half)) for v in (row, col))
            bottom, right = (min(s * zoom - 1, int(v * zoom + half)) for v in (row, col))
            out[top : bottom + 1, [left, right]] = (255, 0, 0)
            out[[top, bottom], left : right + 1] = (255, 0, 0)
        return np.concatenate([big[0], np.full((s * zoom, 2, 3), 255, np.uint8), out], 1)


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


def _skipped(section) -> str:
    return f"<p class='skip'>skipped: {_e(section.reason)}</p>"


def _header(m: Metrics) -> str:
    step = f" (step {_e(m.step)})" if m.step is not None else ""
    return (
        f"<h1>{_e(_title(m))}</h1><p>generator: {_e(m.checkpoint or 'none')}{step}; "
        f"{_e(m.num_clusters)} clusters.</p>"
    )


def _title(m: Metrics) -> str:
    return f"xplore_tf evaluation of {m.workdir}"


def _matrix_section(matrix: TranslationMatrix | None) -> str:
    if matrix is None or not len(matrix.inputs):
        return "<p class='skip'>no translations (no generator)</p>"
    return (
        "<p>Rows: held-out input images (one per identity first); first column the input, "
        "then its translation into each target cluster (the transfer clusters first, "
        "labelled with the attribute they stand for).</p>" + _matrix_html(matrix)
    )


def _transfer_section(tr: TransferResult) -> str:
    intro = (
        f"<p>Judge: {_e(tr.judge)}. {tr.eval_images} held-out images (split "
        f"{_e(tr.split)}) translated into each attribute's best cluster when its "
        f"precision is at least {tr.min_precision}. <i>all</i>: fraction of the "
        "translations the judge sees with the attribute; <i>lacking</i>: the same among "
        "inputs that truly lack it (the real transfer); <i>baseline</i>: the judge on the "
        f"untranslated inputs. Eval images: {_e(tr.eval_source)}.</p>"
    )
    rows = [
        [
            _e(r.attribute),
            str(r.cluster),
            _num(r.cluster_precision, ".2f"),
            _num(r.judge_balanced_accuracy, ".2f"),
            _num(r.rates.rate_all),
            _num(r.rates.baseline_all),
            f"{_num(r.rates.rate_lacking)} ({r.rates.inputs_lacking})",
            _num(r.rates.baseline_lacking),
            _num(r.rates.gain_lacking, "+.3f"),
        ]
        for r in tr.attributes
    ]
    if not rows:
        return intro + f"\n<p>{_e(tr.reason)}</p>"
    header = [
        "attribute",
        "cluster",
        "cluster precision",
        "judge bal. acc.",
        "rate all",
        "baseline all",
        "rate lacking (n)",
        "baseline lacking",
        "gain lacking",
    ]
    return (
        intro
        + "\n"
        + _table(header, rows)
        + _side_effects_html(tr.side_effects, tr.judge)
        + "".join(_second_judge_html(j) for j in tr.second_judges.values())
    )


def _second_judge_html(judge: SecondJudge) -> str:
    if not judge.attributes:
        return f"<p>{_e(judge.title.capitalize())}: {_e(judge.name)}</p>"
    rows = [
        [
            _e(r.attribute),
            _num(r.judge_balanced_accuracy, ".2f"),
            _num(r.rates.rate_lacking),
            _num(r.rates.baseline_lacking),
            _num(r.rates.gain_lacking, "+.3f"),
        ]
        for r in judge.attributes
    ]
    table = _table(
        ["attribute", "judge bal. acc.", "rate lacking", "baseline lacking", "gain lacking"], rows
    )
    changes = _side_effects_html(judge.side_effects, judge.name) if judge.side_effects else ""
    return (
        f"<p>The same translations by the {_e(judge.title)}, {_e(judge.name)}: "
        f"{_e(judge.role)}.</p>" + table + changes
    )


def _side_effects_html(table: SideEffects, judge: str) -> str:
    """Every attribute's change per target: rate change, and the share flipped."""
    if not table.targets:
        return ""
    rows = [
        [_e(target)]
        + [f"{c.rate_change[j]:+.3f} ({c.changed[j]:.3f})" for j in range(len(table.attributes))]
        for target, c in [*table.targets.items(), ("own cluster (floor)", table.floor)]
        if c is not None
    ]
    return (
        f"<p>Side effects by {_e(judge)}: each attribute's judged rate after minus before "
        "the translation, and in brackets the share of inputs whose decision flipped. The "
        "last row re-renders each input into its own cluster: what translating alone flips."
        "</p>" + _table(["into"] + [_e(a) for a in table.attributes], rows)
    )


def _identity_info(idn: IdentityResult) -> str:
    info = f"Embedder: {_e(idn.embedder)}"
    if idn.regressor is not None:
        reg = idn.regressor
        info += (
            f" (held-out R<sup>2</sup> {_num(reg.r2)}, MAE {_num(reg.mae)} on "
            f"{reg.test_images} images)"
        )
    if idn.faces_detected is not None:
        info += f" (faces detected in {idn.faces_detected} of {idn.faces_seen} images)"
    info += (
        f". Threshold {_num(idn.threshold)} ({_e(idn.threshold_source)}); real "
        f"pairs from {_e(idn.pairs_source or 'none')}."
    )
    if idn.relative_distance is not None:
        info += (
            f" Relative distance {_num(idn.relative_distance)}: 1 = as close as two "
            "images of one person, 0 = as far as two people (no threshold involved)."
        )
    return info


def _identity_section(idn: IdentityResult) -> str:
    rows = [
        [label, _num(s.mean_distance), _num(s.verification_rate), str(s.pairs)]
        for s, label in (
            (idn.translation, "input vs its translation (random target)"),
            (idn.same_identity, "two images of one identity (real)"),
            (idn.different_identity, "two different identities (real)"),
        )
    ]
    return f"<p>{_identity_info(idn)}</p>" + _table(
        ["pairs", "mean distance", "judged same", "n"], rows
    )


def _realism_section(rl: RealismResult) -> str:
    rows = [[rl.fd_key, _num(rl.fd, ".4g"), _num(rl.fd_real_reference, ".4g")]]
    if rl.fid_inception_v3 is not None:
        rows.append(
            [
                "fid_inception_v3",
                _num(rl.fid_inception_v3, ".4g"),
                _num(rl.fid_inception_v3_real_reference, ".4g"),
            ]
        )
    artefacts = [(rl.droplets.title, rl.droplets)]
    if rl.blotches is not None:
        artefacts.append(("colour blotches (face patches off skin's hues)", rl.blotches))
    clusters = sorted(rl.droplets.per_cluster, key=int)
    return (
        f"<p>Fréchet distance between {rl.real_images} held-out real images and "
        f"{rl.translated_images} translations ({_e(rl.translations)}); the "
        "reference is real vs real images of the same count (the floor at this sample "
        "size).</p>"
        + _table(["metric", "real vs translated", "real vs real"], rows)
        + "<p>Share of translations carrying an artefact, into random clusters and into "
        "each transfer cluster.</p>"
        + _table(
            ["artefact", "random clusters", *(f"into {c}" for c in clusters)],
            [
                [what, _num(r.rate_random), *(_num(r.per_cluster.get(c)) for c in clusters)]
                for what, r in artefacts
            ],
        )
    )


def _strength_curve_section(sc: beyond.StrengthCurve) -> str:
    rows = [
        [
            _num(p.strength, "g"),
            _num(p.mean("rate_lacking")),
            _num(p.mean("rate_all")),
            _num(p.mean("identity_verified")),
            _num(p.mean("l1_to_input"), ".4f"),
        ]
        for p in sc.curve
    ]
    header = ["alpha", "transfer (lacking)", "transfer (all)", "identity verified", "L1 to input"]
    return (
        f"<p>{sc.eval_images} held-out images translated into the clusters of "
        f"{_e(', '.join(sc.targets))} with condition s_src + alpha (s_target - s_src), "
        f"s_src = the statistics of each input's nearest cluster; baseline (untranslated, "
        f"lacking) {_num(sc.baseline_lacking)}. Transfer monotonic in alpha: "
        f"{'yes' if sc.transfer_monotonic else 'no'}.</p>" + _table(header, rows)
    )


def _reference_groups_section(rg: beyond.ReferenceGroups) -> str:
    rows = [
        [
            _e(g.attribute),
            g.group_images,
            f"{g.nearest_cluster} ({_num(g.relative_distance, '.2f')})",
            " / ".join(_num(m.rate_lacking if m else None) for m in measures),
            " / ".join(_num(m.identity_verified if m else None) for m in measures),
        ]
        for g in rg.done
        for measures in [(g.toward_group, g.toward_shared, g.toward_nearest_cluster)]
    ]
    header = [
        "attribute",
        "group images",
        "nearest cluster (relative distance)",
        "transfer: group / shared part / nearest cluster",
        "identity: group / shared part / nearest cluster",
    ]
    return (
        f"<p>For each transfer attribute, {rg.group_size} held-out images having it "
        "form a reference group; the other held-out images are translated toward the "
        "group's statistics, toward what the group shares (each input's own statistics "
        "moved toward the group's mean, <code>--reference_edit=shared</code>) and toward "
        "the group's nearest cluster.</p>" + _table(header, rows)
    )


def _combination_row(p: beyond.Combination | beyond.SkippedPair) -> list[str]:
    if p.status != OK:
        return [_e(p.pair), _e(p.reason), "", "", "", "", ""]
    alone = (*(f"only {x}" for x in p.pair.split("+")), "half each")
    return [
        _e(p.pair),
        p.inputs_lacking_both,
        _num(p.both_present["combined"]),
        _num(p.independent),
        " / ".join(_num(p.both_present.get(key)) for key in alone),
        _num(p.baseline_both_present),
        " / ".join(
            _num(v) for v in (p.combined_identity_verified, *p.alone_identity_verified.values())
        ),
    ]


def _combinations_section(cb: beyond.Combinations) -> str:
    header = [
        "pair",
        "inputs lacking both",
        "both present (combined)",
        "if independent (rate of a alone x rate of b alone)",
        "both present (a alone / b alone / 0.5 a + 0.5 b)",
        "baseline",
        "identity (combined / a alone / b alone)",
    ]
    return (
        "<p>Inputs lacking both attributes, translated with condition "
        "s_src + (s_a - s_src) + (s_b - s_src); the rate at which the judge finds both, "
        "against translating into either alone and into the midpoint (s_a + s_b) / 2.</p>"
        + _table(header, [_combination_row(p) for p in cb.pairs])
    )


def _discovery_section(d: DiscoveryResult) -> str:
    rows = [
        [
            _e(r.attribute),
            str(r.positives),
            _num(r.nmi),
            str(r.best_cluster),
            _num(r.best_precision),
            str(r.best_size),
            _num(r.best_recall),
            str(r.clusters_above),
        ]
        for r in d.attributes
    ]
    header = [
        "attribute",
        "positives",
        "NMI",
        "best cluster",
        "precision",
        "size",
        "recall",
        f"clusters &gt; {d.precision_threshold}",
    ]
    return (
        f"<p>{d.images_matched} of {d.images_assigned} clustered images "
        f"have labels; best cluster among clusters of at least {d.min_cluster_size} "
        f"images; mean NMI {_num(d.mean_nmi)}.</p>\n" + _table(header, rows)
    )


def _clusters_section(m: Metrics) -> str:
    rows = []
    for c in m.clusters:
        top = ", ".join(f"{_e(t.attribute)} {t.precision:.2f}" for t in c.top_attributes)
        moved = ", ".join(
            f"{_e(t.attribute)}: {_num(t.rate_lacking)} (baseline {_num(t.baseline_lacking)})"
            for t in c.transfer
        )
        rows.append(
            [
                str(c.cluster),
                _e(c.name),
                str(c.size),
                top,
                moved or "&ndash;",
                _num(c.identity_distance),
                _num(c.identity_verified),
                f'<a href="../clusters/montages/cluster_{c.cluster:03d}.jpg">sheet</a>',
            ]
        )
    header = [
        "cluster",
        "name",
        "size",
        "most frequent attributes (precision)",
        "transfer among inputs lacking it",
        "identity distance into it",
        "judged the same person",
        "members",
    ]
    return _table(header, rows)


# (section name, heading, HTML of a measured section), in page order; the sections beyond
# fixed clusters are left out of the page when they were not asked for.
_SECTIONS = (
    ("transfer", "Attribute transfer", _transfer_section),
    ("identity", "Identity preservation", _identity_section),
    ("realism", "Realism", _realism_section),
    (beyond.STRENGTH_CURVE, "Strength curve", _strength_curve_section),
    (beyond.REFERENCE_GROUPS, "Reference groups", _reference_groups_section),
    (beyond.COMBINATIONS, "Combined attributes", _combinations_section),
)

_STYLE = (
    "body{font-family:sans-serif;margin:20px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:right}"
    "th{background:#eee}"
    "table.matrix td{padding:1px;border:none}"
    "table.matrix th{font-size:11px;max-width:128px;word-wrap:break-word}"
    "table.matrix img{image-rendering:pixelated;display:block}"
    ".skip{color:#a50}"
)


def _droplets_section(flagged: FlaggedTranslations) -> str:
    shown = len(flagged.inputs)
    if not shown:
        return f"<p>The droplet detector flagged none of {flagged.looked_at} translations.</p>"
    return (
        f"<h3>What the droplet detector flagged</h3><p>The first {shown} of the "
        f"{flagged.looked_at} translations into random clusters it flagged: input, then the "
        "translation with each droplet boxed. Judge by eye whether they are droplets (a "
        "solid dark blob the input did not have) or something darker the input had, such as "
        "clothing.</p>"
        f'<img src="{_data_uri(flagged.image())}" alt="translations with a droplet">'
    )


def render(
    metrics: Metrics | dict,
    *,
    matrix: TranslationMatrix | None = None,
    droplets: FlaggedTranslations | None = None,
) -> str:
    """The HTML page of an evaluation (a Metrics, or metrics.json's dict as written by
    `pipeline.run_evaluation`), with the translation matrix and the translations the
    droplet detector flagged when given."""
    m = as_metrics(metrics)
    parts = [_header(m), "<h2>Translation matrix</h2>", _matrix_section(matrix)]
    for name, heading, section_html in _SECTIONS:
        section = getattr(m, name)
        if section is not None:
            parts.append(f"<h2>{heading}</h2>")
            parts.append(section_html(section) if section.status == OK else _skipped(section))
            if name == "realism" and droplets is not None and section.status == OK:
                parts.append(_droplets_section(droplets))
    parts += ["<h2>Attribute discovery</h2>", _discovery_section(m.discovery)]
    parts += ["<h2>Clusters</h2>", _clusters_section(m)]
    parts.append(
        "<details><summary>metrics.json</summary><pre>"
        + _e(json.dumps(m.to_json(), indent=2, sort_keys=True))
        + "</pre></details>"
    )
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{_e(_title(m))}</title>'
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


__all__ = ["FlaggedTranslations", "TranslationMatrix", "png_bytes", "render"]
