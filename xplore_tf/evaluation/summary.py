"""The printed summary of an evaluation: one small table per metrics.json section."""

from __future__ import annotations

from xplore_tf.clustering import report
from xplore_tf.evaluation import beyond
from xplore_tf.evaluation.identity import IdentityResult
from xplore_tf.evaluation.metrics import Metrics, as_metrics
from xplore_tf.evaluation.realism import RealismResult
from xplore_tf.evaluation.results import OK
from xplore_tf.evaluation.side_effects import SideEffects
from xplore_tf.evaluation.transfer import TransferResult


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _skipped(title: str, section) -> list[str]:
    return [f"{title}: skipped ({section.reason})"]


def _rule(header: str) -> list[str]:
    return [header, "  " + "-" * (len(header) - 2)]


def _discovery_lines(m: Metrics) -> list[str]:
    d = m.discovery
    lines = [
        f"discovery: {d.images_matched} of {d.images_assigned} clustered images have "
        f"labels ({m.num_clusters} clusters; best cluster among those >= "
        f"{d.min_cluster_size})",
        report.format_report(list(d.attributes), threshold=d.precision_threshold),
    ]
    if m.checkpoint:
        step = f" (step {m.step})" if m.step is not None else ""
        lines.append(f"generator: {m.checkpoint}{step}")
    return lines


def _transfer_lines(tr: TransferResult) -> list[str]:
    lines = [
        f"transfer (judge: {tr.judge}; {tr.eval_images} held-out images, split "
        f"{tr.split}; clusters with precision >= {tr.min_precision}):",
        f"  eval images: {tr.eval_source}",
        *_rule(
            f"  {'attribute':<20} {'cluster':>7} {'prec':>5} {'judge':>6} {'all':>6} "
            f"{'base':>6} {'lacking':>7} {'base':>6} {'gain':>6}"
        ),
    ]
    for r in tr.attributes:
        rates = r.rates
        lines.append(
            f"  {r.attribute:<20} {r.cluster:>7d} {r.cluster_precision:>5.2f} "
            f"{_fmt(r.judge_balanced_accuracy, '.2f'):>6} {_fmt(rates.rate_all):>6} "
            f"{_fmt(rates.baseline_all):>6} {_fmt(rates.rate_lacking):>7} "
            f"{_fmt(rates.baseline_lacking):>6} {_fmt(rates.gain_lacking, '+.3f'):>6}"
        )
    if not tr.attributes:
        lines.append(f"  ({tr.reason})")
    else:
        lines.append(
            f"  mean: transfer among inputs lacking the attribute "
            f"{_fmt(tr.mean_rate_lacking)} vs baseline {_fmt(tr.mean_baseline_lacking)}"
        )
    lines.append(
        "  (judge = balanced accuracy on the untranslated held-out images; all/lacking = "
        "rate judged to have the attribute after translation, base = before)"
    )
    return lines + _side_effect_lines(tr.side_effects, "  ") + _second_judge_lines(tr)


def _second_judge_lines(tr: TransferResult) -> list[str]:
    """Each other judge's gain per target beside the main judge's and its side effects, or
    why it is missing."""
    main = {r.attribute: r.rates.gain_lacking for r in tr.attributes}
    lines = []
    for judge in tr.second_judges.values():
        if not judge.attributes:
            lines.append(f"  {judge.title}: {judge.name}")
            continue
        lines += [
            f"  {judge.title} ({judge.name}): gain among inputs lacking it",
            f"    ({judge.role})",
        ]
        for r in judge.attributes:
            lines.append(
                f"    {r.attribute:<20} {_fmt(r.rates.gain_lacking, '+.3f'):>6} (judge "
                f"{_fmt(r.judge_balanced_accuracy, '.2f')}; main judge "
                f"{_fmt(main.get(r.attribute), '+.3f')})"
            )
        if judge.side_effects is not None:
            lines += _side_effect_lines(judge.side_effects, "    ")
    return lines


def _side_effect_lines(table: SideEffects, indent: str) -> list[str]:
    """The largest other change per target, with the share of inputs it flipped and the
    floor: the same share when each input is re-rendered into its own cluster."""
    if not table.largest:
        return []
    among = f" among {', '.join(table.among)}" if table.among else ""
    lines = [
        f"{indent}side effects (the other attribute{among} whose judged rate moves most; "
        "changed = inputs whose decision flipped; floor = the same re-rendered into their own "
        "cluster):"
    ]
    for target, worst in table.largest.items():
        j = table.attributes.index(worst.attribute)
        floor = table.floor.changed[j] if table.floor is not None else None
        lines.append(
            f"{indent}  into {target:<28} {worst.attribute:<20} {worst.rate_change:+.3f}  "
            f"changed {table.targets[target].changed[j]:.3f} (floor {_fmt(floor)})"
        )
    return lines


def _by_cluster(per_cluster: dict[str, float]) -> list[tuple[str, float]]:
    """{str(cluster): value} items in cluster order (metrics.json sorts keys as text)."""
    return sorted(per_cluster.items(), key=lambda item: int(item[0]))


def _identity_lines(idn: IdentityResult) -> list[str]:
    extra = ""
    if idn.regressor is not None:
        extra = f", regressor held-out R^2 {idn.regressor.r2:.3f} MAE {idn.regressor.mae:.3f}"
    if idn.faces_detected is not None:
        extra = f", faces detected {idn.faces_detected}/{idn.faces_seen}"
    lines = [
        f"identity ({idn.embedder}{extra}; threshold {_fmt(idn.threshold)}: "
        f"{idn.threshold_source}):"
    ]
    if idn.relative_distance is not None:
        lines.append(
            f"  relative distance {idn.relative_distance:.3f} (1 = as close as one "
            "person's two images, 0 = as far as two people; threshold-free)"
        )
    for s, label in (
        (idn.translation, "input vs translation"),
        (idn.same_identity, "same identity (real)"),
        (idn.different_identity, "different identity (real)"),
    ):
        lines.append(
            f"  {label:<27} mean distance {_fmt(s.mean_distance)}  "
            f"verified same {_fmt(s.verification_rate)}  ({s.pairs} pairs)"
        )
    verified = idn.per_cluster_verification_rate or {}
    for c, distance in _by_cluster(idn.per_cluster_mean_distance):
        lines.append(
            f"  {'into cluster ' + c:<27} mean distance {_fmt(distance)}  "
            f"verified same {_fmt(verified.get(c))}"
        )
    return lines


def _strength_curve_lines(sc: beyond.StrengthCurve) -> list[str]:
    lines = [
        f"strength curve ({sc.eval_images} held-out images into {len(sc.targets)} "
        f"attribute clusters; condition = s_src + alpha (s_target - s_src); baseline "
        f"lacking {_fmt(sc.baseline_lacking)}; transfer monotonic in alpha: "
        f"{'yes' if sc.transfer_monotonic else 'NO'}):",
        *_rule(f"  {'alpha':>6} {'lacking':>8} {'all':>6} {'identity':>9} {'L1 to input':>12}"),
    ]
    for p in sc.curve:
        lines.append(
            f"  {p.strength:>6g} {_fmt(p.mean('rate_lacking')):>8} "
            f"{_fmt(p.mean('rate_all')):>6} {_fmt(p.mean('identity_verified')):>9} "
            f"{_fmt(p.mean('l1_to_input'), '.4f'):>12}"
        )
    lines.append(
        "  (lacking/all = transfer rate among inputs lacking the attribute / all inputs; "
        "identity = verified as the input's person; L1 in [0, 1] per pixel)"
    )
    return lines


def _reference_group_lines(rg: beyond.ReferenceGroups) -> list[str]:
    lines = [
        f"reference groups ({rg.group_size} held-out images having the attribute; "
        "transfer among the other inputs lacking it, toward the group, what it shares "
        "(--reference_edit=shared) and its nearest cluster):"
    ]
    for g in rg.groups:
        if g.status != OK:
            lines.append(f"  {g.attribute:<20} skipped ({g.reason})")
            continue
        group, nearest, shared = g.toward_group, g.toward_nearest_cluster, g.toward_shared
        lines.append(
            f"  {g.attribute:<20} group {_fmt(group.rate_lacking)}  "
            f"shared part {_fmt(shared.rate_lacking if shared else None)}  "
            f"nearest cluster {g.nearest_cluster} {_fmt(nearest.rate_lacking)}  (relative "
            f"distance {g.relative_distance:.2f}; identity {_fmt(group.identity_verified)}"
            f" / {_fmt(shared.identity_verified if shared else None)}"
            f" / {_fmt(nearest.identity_verified)})"
        )
    return lines


def _combination_lines(cb: beyond.Combinations) -> list[str]:
    lines = ["combinations (both attributes present, among inputs lacking both):"]
    for p in cb.pairs:
        if p.status != OK:
            lines.append(f"  {p.pair:<28} skipped ({p.reason})")
            continue
        alone = "  ".join(
            f"{key} {_fmt(v)}" for key, v in p.both_present.items() if key != "combined"
        )
        lines.append(
            f"  {p.pair:<28} combined {_fmt(p.both_present['combined'])}  {alone}  "
            f"baseline {_fmt(p.baseline_both_present)}  ({p.inputs_lacking_both} inputs)"
        )
        if p.independent is not None:
            each = "  ".join(f"{x} alone {_fmt(v)}" for x, v in p.alone_rates.items())
            identity = " / ".join(_fmt(v) for v in p.alone_identity_verified.values())
            lines.append(
                f"  {'':<28} if independent {_fmt(p.independent)} ({each}); identity "
                f"combined {_fmt(p.combined_identity_verified)}, alone {identity}"
            )
    return lines


def _realism_lines(rl: RealismResult) -> list[str]:
    line = (
        f"realism: {rl.fd_key} = {_fmt(rl.fd)} (real vs real reference "
        f"{_fmt(rl.fd_real_reference)})"
    )
    if rl.fid_inception_v3 is not None:
        line += (
            f"; fid_inception_v3 = {_fmt(rl.fid_inception_v3)} (reference "
            f"{_fmt(rl.fid_inception_v3_real_reference)})"
        )
    lines = [line, _rates_line(rl.droplets.title, rl.droplets)]
    if rl.blotches is not None:
        lines.append(_rates_line("colour blotches (face patches off skin's hues)", rl.blotches))
        lines.append(
            f"    covering {_fmt(rl.blotches.face_share_random)} of the central face on average"
        )
    return lines


def _rates_line(what: str, rates) -> str:
    """One artefact's rates (`droplets.DropletRates` or `blotches.BlotchRates`)."""
    per = ", ".join(f"{c}: {_fmt(r)}" for c, r in _by_cluster(rates.per_cluster))
    return f"  {what}: {_fmt(rates.rate_random)} of translations into random clusters" + (
        f"; into the transfer clusters {per}" if per else ""
    )


# (section name, title when skipped, lines when measured), in the order printed
_SECTIONS = (
    ("transfer", "transfer", _transfer_lines),
    ("identity", "identity", _identity_lines),
    (beyond.STRENGTH_CURVE, "strength curve", _strength_curve_lines),
    (beyond.REFERENCE_GROUPS, "reference groups", _reference_group_lines),
    (beyond.COMBINATIONS, "combinations", _combination_lines),
    ("realism", "realism", _realism_lines),
)


def format_summary(metrics: Metrics | dict) -> str:
    """Readable tables of every section (discovery, transfer, identity, the sections beyond
    fixed clusters when asked for, realism) of a Metrics or of metrics.json's dict."""
    m = as_metrics(metrics)
    lines = _discovery_lines(m)
    for name, title, section_lines in _SECTIONS:
        section = getattr(m, name)
        if section is None:
            continue
        lines += section_lines(section) if section.status == OK else _skipped(title, section)
    return "\n".join(lines)


__all__ = ["format_summary"]
