"""The evaluation stage end to end: the library behind `python -m xplore_tf.evaluate`.

1. Discovery: the cluster report against the labels (`discovery.py`).
2. Transfer: held-out labelled images are translated into each attribute's clearly-labelled
   cluster and judged by a classifier that is not part of the generator (`transfer.py`),
   with every other labelled attribute re-scored before and after (`side_effects.py`).
3. Identity: input vs translation in an identity embedding, against real same- and
   different-identity pairs (`identity.py`).
4. Realism: Fréchet distance between real and translated images and the share of
   translations with a droplet or a colour blotch (`realism.py`, `droplets.py`,
   `blotches.py`).
5. Beyond fixed clusters, when asked (docs/guide/beyond_clusters.md): the strength curve
   (--strengths), reference groups (--reference_group_size) and combined attributes
   (--combinations) (`beyond.py`).
6. The cluster table: each cluster's size, main attributes, transfer and identity
   (`clusters.py`).

Labelled images are split once (by identity when the labels have an `identity` column):
`eval_images` held-out images are translated and judged; up to `probe_train_images` others
train the attribute probe and the identity regressor. Everything is seeded by `--seed`.
Each metric module returns a typed result; `metrics.Metrics` assembles them into
WORKDIR/eval/metrics.json, written with report.html and translation_matrix.png (atomically).
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
from absl import logging

from xplore_tf import checkpoint_files, io_utils
from xplore_tf import features as features_lib
from xplore_tf.clustering import artifacts, contact_sheets
from xplore_tf.config import Config
from xplore_tf.data import sources
from xplore_tf.evaluation import (
    beyond,
    blotches,
    clusters,
    droplets,
    edges,
    face_judge,
    html_report,
    identity,
    realism,
    side_effects,
    transfer,
)
from xplore_tf.evaluation.beyond import COMBINATIONS, REFERENCE_GROUPS, STRENGTH_CURVE
from xplore_tf.evaluation.discovery import (
    DISCOVERY,
    Discovery,
    discovery_result,
    run_discovery,
)
from xplore_tf.evaluation.generator import (
    ConditionFn,
    GeneratorFns,
    Progress,
    StrengthFn,
    TranslateFn,
    checkpoint_generator_fns,
    checkpoint_translate_fn,
    translate_all,
)
from xplore_tf.evaluation.labelled import (
    HeldOutSplit,
    LabelledImages,
    held_out_split,
    labelled_images,
    load_images,
    matrix_rows,
    split_eval_train,
)
from xplore_tf.evaluation.metrics import SCHEMA_VERSION, SECTIONS, Metrics
from xplore_tf.evaluation.results import Skipped
from xplore_tf.evaluation.summary import format_summary

METRICS = "metrics.json"
REPORT = "report.html"
MATRIX = "translation_matrix.png"


def _sections(e) -> list[str]:
    """The metric sections this evaluation config asks for (`e`: EvalConfig)."""
    optional = (
        (STRENGTH_CURVE, e.strengths),
        (REFERENCE_GROUPS, e.reference_group_size),
        (COMBINATIONS, e.combinations),
    )
    return [*SECTIONS, *(name for name, on in optional if on)]


# ---------------------------------------------------------------- the evaluation
def run_evaluation(
    config: Config,
    *,
    translate_fn: TranslateFn | None = None,
    strength_fn: StrengthFn | None = None,
    condition_fn: ConditionFn | None = None,
) -> dict:
    """Every metric of the run as metrics.json's dict; writes WORKDIR/eval/{metrics.json,
    report.html, translation_matrix.png}. See `evaluate` (the same, typed)."""
    return evaluate(
        config, translate_fn=translate_fn, strength_fn=strength_fn, condition_fn=condition_fn
    ).to_json()


def evaluate(
    config: Config,
    *,
    translate_fn: TranslateFn | None = None,
    strength_fn: StrengthFn | None = None,
    condition_fn: ConditionFn | None = None,
) -> Metrics:
    """Every metric of the run; writes WORKDIR/eval/{metrics.json, report.html,
    translation_matrix.png}.

    translate_fn(images uint8 [N,S,S,3], cluster_ids [N]) -> uint8 [N,S,S,3]; default: G_ema
    of the run's latest checkpoint (--checkpoint to pick one). Without a checkpoint, only
    the discovery report is computed and the other sections say why they were skipped.
    With --strengths, also the strength curve (`strength_curve`, docs/guide/beyond_clusters.md) through
    strength_fn (see StrengthFn; default: the same G_ema; skipped without one). With
    --reference_group_size / --combinations, also `reference_groups` / `combinations` through
    condition_fn (see ConditionFn; the same default).
    """
    start = time.perf_counter()
    sources.prepare_inputs(config)
    discovery = run_discovery(config)
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    names = contact_sheets.read_cluster_names(
        os.path.join(config.clusters_dir, contact_sheets.CLUSTER_NAMES)
    )
    data = labelled_images(discovery)
    side_effects.check_among(
        config.eval.side_effect_attributes, data.names, source="--side_effect_attributes"
    )
    checkpoint, step = "translate_fn", None
    if translate_fn is None and _has_checkpoint(config):
        fns = checkpoint_generator_fns(config, None, batch_size=config.eval.batch_size)
        translate_fn, strength_fn, condition_fn = fns.translate, fns.strength, fns.condition
        checkpoint, step = fns.checkpoint, fns.step
    pictures = None, None
    if translate_fn is None:
        checkpoint, sections = None, _all_skipped(config, _no_checkpoint_reason(config))
    else:
        fns = (translate_fn, strength_fn, condition_fn)
        sections, pictures = _translation_metrics(config, discovery, stats, data, fns, names=names)
    out = config.eval_dir
    metrics = Metrics(
        workdir=config.workdir,
        checkpoint=checkpoint,
        step=step,
        num_clusters=stats.num_clusters,
        discovery=discovery_result(config, discovery),
        **sections,
        clusters=clusters.cluster_table(
            stats,
            data.clusters,
            data.attributes,
            data.names,
            names=names,
            transfer_result=sections["transfer"],
            identity_result=sections["identity"],
        ),
        seconds=round(time.perf_counter() - start, 2),
        report_html=os.path.join(out, REPORT),
        translation_matrix=os.path.join(out, MATRIX) if pictures[0] is not None else None,
    )
    _write(out, metrics, *pictures)
    return metrics


def _has_checkpoint(config: Config) -> bool:
    return bool(config.export.checkpoint or checkpoint_files.steps(config.checkpoint_dir))


def _no_checkpoint_reason(config: Config) -> str:
    return (
        f"no checkpoint in {config.checkpoint_dir}: train first "
        "(python -m xplore_tf.train) or pass --checkpoint"
    )


def _all_skipped(config: Config, reason: str) -> dict[str, Skipped]:
    return {name: Skipped(reason) for name in _sections(config.eval)}


def _write(
    out: str,
    metrics: Metrics,
    matrix: html_report.TranslationMatrix | None,
    flagged: html_report.FlaggedTranslations | None,
) -> None:
    """metrics.json, report.html and (with translations) translation_matrix.png."""
    if matrix is not None:
        io_utils.write_bytes(os.path.join(out, MATRIX), html_report.png_bytes(matrix.image()))
    page = html_report.render(metrics, matrix=matrix, droplets=flagged)
    io_utils.write_text(os.path.join(out, REPORT), page)
    io_utils.write_json(os.path.join(out, METRICS), metrics.to_json())


# ---------------------------------------------------------------- held-out translations
MAIN, EDGES, FACE = "main", "edges", "face"  # the judges of transfer, by key
SECOND_JUDGES = {EDGES: edges, FACE: face_judge}  # the modules naming them (TITLE, ROLE)


@dataclasses.dataclass
class _Translations:
    """What the sections read of the held-out images' translations."""

    decisions_into: dict[str, dict[int, np.ndarray]]  # judge -> transfer cluster -> [N, A]
    decisions_own: dict[str, np.ndarray]  # judge -> bool [N, A] into each input's own cluster
    identity_into: dict[int, np.ndarray]  # transfer cluster -> identity distances [N]
    droplets_into: dict[int, float]  # transfer cluster -> droplet rate
    blotches_into: dict[int, float]  # transfer cluster -> colour blotch rate
    matrix_columns: dict[int, np.ndarray]  # matrix column's cluster -> uint8 [R, S, S, 3]
    x_random: np.ndarray  # uint8 [N, S, S, 3]: each into one random other cluster


def _decide(
    judges: dict[str, transfer.Judge | str], images: np.ndarray, known: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """{judge: bool [N, A]} of every judge there is (a str says why one is missing) on uint8
    images [N, S, S, 3]; `known`: {judge: its features of these images, already computed}."""
    return {
        key: judge.decisions(images, known.get(key))
        for key, judge in judges.items()
        if isinstance(judge, transfer.Judge)
    }


def _matrix_columns(config: Config, stats, target_clusters: list[int]) -> list[int]:
    """The translation matrix's clusters: transfer clusters, then the largest others."""
    by_size = [int(c) for c in np.argsort(-stats.sizes, kind="stable")]
    columns = target_clusters + [c for c in by_size if c not in target_clusters]
    return columns[: max(config.eval.report_clusters, 0)]


def _translate_held_out(
    config: Config,
    translate_fn: TranslateFn,
    x_eval: np.ndarray,
    own_clusters: np.ndarray,
    *,
    target_clusters: list[int],
    matrix: tuple[list[int], np.ndarray],
    judges: dict[str, transfer.Judge | str],
    embeddings: identity.HeldOutEmbeddings | None,
    num_clusters: int,
) -> _Translations:
    """Every held-out image into each transfer cluster, its own cluster and one random other
    cluster, and the matrix rows into the matrix's other columns (`matrix`: (columns,
    rows)). Identity's descriptors of the translations into transfer clusters also serve
    the face judge (the same dlib descriptors)."""
    batch = config.eval.batch_size
    columns, rows = matrix
    k = num_clusters
    rng = np.random.default_rng([config.seed, 5])
    random_targets = (own_clusters + rng.integers(1, max(k, 2), size=len(own_clusters))) % k
    matrix_only = [c for c in columns if c not in target_clusters]
    progress = Progress(len(x_eval) * (len(target_clusters) + 2) + len(rows) * len(matrix_only))
    out = _Translations({key: {} for key in judges}, {}, {}, {}, {}, {}, x_eval[:0])
    for c in target_clusters:
        y = translate_all(translate_fn, x_eval, np.full(len(x_eval), c), batch_size=batch)
        progress.add(len(y), f"cluster {c}")
        known = {}
        if embeddings is not None:
            embedded = embeddings.embedder.embed(y)
            out.identity_into[c] = identity.row_distances(embeddings.inputs, embedded)
            if embeddings.kind == "dlib":
                known[FACE] = embedded
        for key, decisions in _decide(judges, y, known).items():
            out.decisions_into[key][c] = decisions
        out.droplets_into[c] = float(droplets.droplet_flags(x_eval, y).mean())
        out.blotches_into[c] = float((blotches.blotch_shares(x_eval, y) > 0).mean())
        out.matrix_columns[c] = y[rows]
    y = translate_all(translate_fn, x_eval, own_clusters, batch_size=batch)
    progress.add(len(y), "own clusters")
    out.decisions_own = _decide(judges, y, {})
    for c in matrix_only:
        out.matrix_columns[c] = translate_all(
            translate_fn, x_eval[rows], np.full(len(rows), c), batch_size=batch
        )
        progress.add(len(rows), f"cluster {c}")
    out.x_random = translate_all(translate_fn, x_eval, random_targets, batch_size=batch)
    progress.add(len(out.x_random), "random clusters")
    return out


def _translation_matrix(
    translations: _Translations,
    x_eval: np.ndarray,
    row_paths: list[str],
    columns: list[int],
    rows: np.ndarray,
    *,
    targets: list[transfer.TransferTarget],
    names: dict[int, str],
) -> html_report.TranslationMatrix:
    """The report's matrix: held-out inputs `rows` by `columns`, headed by cluster, name
    and the attributes it is the transfer cluster of (the PNG's labels leave out the name)."""
    target_of: dict[int, list[str]] = {}
    for t in targets:
        target_of.setdefault(t.cluster, []).append(t.attribute)
    headers, labels = [], []
    for c in columns:
        header, attributes = f"cluster {c}", target_of.get(c, [])
        if c in names:
            header += f" · {names[c]}"
        if attributes:
            header += f" ({', '.join(attributes)})"
        headers.append(header)
        labels.append("\n".join([f"c{c}", *attributes]))
    return html_report.TranslationMatrix(
        inputs=x_eval[rows],
        columns=[translations.matrix_columns[c] for c in columns],
        headers=headers,
        row_labels=row_paths,
        labels=labels,
    )


# ---------------------------------------------------------------- the sections
def _feature_fn(config: Config, stats: artifacts.ClusterStats):
    """(the clustering extractor's name, uint8 images -> its features [N, D]): the space the
    probe and the Fréchet distance measure in."""
    name = stats.extractor
    weights = config.cluster.feature_weights or None
    if name in features_lib.NEEDS_WEIGHTS and not weights:
        raise ValueError(
            f"the clusters were made with {name}: pass its --feature_weights "
            "(evaluation measures in the same feature space)"
        )
    extractor = features_lib.build_extractor(name, weights)

    def features(images: np.ndarray) -> np.ndarray:
        return realism.extractor_features(extractor, images, batch_size=config.eval.batch_size)

    return name, features


def _embeddings(
    config: Config, data: LabelledImages, split: HeldOutSplit
) -> tuple[identity.HeldOutEmbeddings | None, str]:
    """(the identity embedder and its embeddings of the eval images, or None; why None)."""
    kind, reason = identity.choose_embedder(
        config.eval.identity_embedder, has_geometry=data.geometry is not None
    )
    if kind is None:
        return None, reason
    geometry = data.geometry
    return identity.held_out_embeddings(
        kind,
        split.x_eval,
        x_train=split.x_train,
        geometry_train=geometry[split.train_idx] if geometry is not None else None,
        geometry_eval=geometry[split.eval_idx] if geometry is not None else None,
        config=config,
    ), ""


def _transfer_result(
    config: Config,
    data: LabelledImages,
    split: HeldOutSplit,
    judges: dict[str, transfer.Judge | str],
    targets: list[transfer.TransferTarget],
    input_decisions: dict[str, np.ndarray],
    translations: _Translations,
) -> transfer.TransferResult:
    """The transfer section: the main judge's rates and side effects, then each other
    judge's (or why it is missing); `input_decisions`: {judge: bool [N, A]} on the inputs."""
    labels, attrs = data.attributes[split.eval_idx], data.names

    def judged(key: str):
        quality = transfer.judge_quality(input_decisions[key], labels, attrs)
        rates = transfer.attribute_transfers(
            targets,
            attrs,
            input_decisions=input_decisions[key],
            decisions_into=translations.decisions_into[key],
            labels=labels,
            quality=quality,
        )
        changes = transfer.target_side_effects(
            targets,
            attrs,
            input_decisions[key],
            translations.decisions_into[key],
            translations.decisions_own[key],
            among=config.eval.side_effect_attributes,
        )
        return quality, rates, changes

    quality, rates, changes = judged(MAIN)
    second = {}
    for key, module in SECOND_JUDGES.items():
        if isinstance(judges[key], str):
            second[key] = transfer.SecondJudge(module.TITLE, module.ROLE, judges[key])
        else:
            _, judged_rates, judged_changes = judged(key)
            second[key] = transfer.SecondJudge(
                module.TITLE, module.ROLE, judges[key].name, judged_rates, judged_changes
            )
    return transfer.TransferResult(
        judge=judges[MAIN].name,
        min_precision=config.eval.transfer_min_precision,
        eval_images=int(len(split.eval_idx)),
        train_images=int(len(split.train_idx)),
        split="by identity" if data.identities is not None else "by image",
        eval_source=split.source_note,
        eval_unseen_by_generator=split.unseen_by_generator,
        attributes=rates,
        judge_quality=quality,
        side_effects=changes,
        second_judges=second,
    )


def _too_few(split: HeldOutSplit) -> str:
    """Why no probe can be fit on the training split ("" when one can)."""
    count = len(split.train_idx)
    return f"skipped: only {count} labelled images to train it" if count < 4 else ""


def _edge_judge(config: Config, data: LabelledImages, split: HeldOutSplit) -> transfer.Judge | str:
    """The edge judge (`edges.py`) fit on the training split, or why there is none."""
    if not edges.available():
        return 'skipped: scikit-image is not installed (pip install -e ".[eval]")'
    if _too_few(split):
        return _too_few(split)
    labels = data.attributes[split.train_idx]
    return edges.edge_judge(split.x_train, labels, data.names, seed=config.seed)


def _face_judge(
    config: Config,
    data: LabelledImages,
    split: HeldOutSplit,
    embeddings: tuple[identity.HeldOutEmbeddings | None, str],
) -> transfer.Judge | str:
    """The face judge (`face_judge.py`) fit on the training split, or why there is none;
    `embeddings`: identity's embedder and embeddings, or None and why. The judge embeds
    with a dlib embedder of its own, so identity's face counts stay identity's."""
    held, no_identity = embeddings
    if held is None:
        return f"skipped: no identity embedder ({no_identity})"
    if held.kind != "dlib":
        return f"skipped: needs dlib as the identity embedder (real faces); it is {held.kind}"
    if _too_few(split):
        return _too_few(split)
    labels = data.attributes[split.train_idx]
    logging.info("face judge: dlib descriptors of %d training images", len(labels))
    embedder = identity.DlibFaceEmbedder()
    return face_judge.face_judge(split.x_train, labels, data.names, embedder, seed=config.seed)


def _identity_result(
    config: Config,
    discovery: Discovery,
    data: LabelledImages,
    split: HeldOutSplit,
    embeddings: identity.HeldOutEmbeddings,
    translations: _Translations,
) -> identity.IdentityResult:
    pairs = identity.real_pairs(
        config,
        kind=embeddings.kind,
        labels_csv=discovery.labels_csv,
        clustered=discovery.images,
        identities=data.identities[split.eval_idx] if data.identities is not None else None,
    )
    return identity.identity_result(
        config,
        embeddings,
        pairs,
        random_translations=translations.x_random,
        per_cluster=translations.identity_into,
    )


def _judge(
    config: Config,
    data: LabelledImages,
    split: HeldOutSplit,
    features,
    feature_space: str,
    train_features: np.ndarray,
) -> transfer.Judge:
    e = config.eval
    return transfer.build_judge(
        data.names,
        classifier=e.attribute_classifier,
        batch_size=e.batch_size,
        features=features,
        feature_space=feature_space,
        train_features=train_features,
        train_labels=data.attributes[split.train_idx],
        seed=config.seed,
    )


def _beyond(
    config: Config,
    stats: artifacts.ClusterStats,
    held: beyond.HeldOut,
    targets: list[transfer.TransferTarget],
    own_clusters: np.ndarray,
    fns: tuple[TranslateFn, StrengthFn | None, ConditionFn | None],
) -> dict:
    """The sections beyond fixed clusters that the config asks for (docs/guide/beyond_clusters.md)."""
    wanted = [name for name in _sections(config.eval) if name not in SECTIONS]
    if not wanted:
        return {}
    translate_fn, strength_fn, condition_fn = fns
    return beyond.beyond_sections(
        config,
        stats,
        held,
        wanted,
        targets=targets,
        own_clusters=own_clusters,
        translate_fn=translate_fn,
        strength_fn=strength_fn,
        condition_fn=condition_fn,
    )


def _translation_metrics(
    config: Config,
    discovery: Discovery,
    stats: artifacts.ClusterStats,
    data: LabelledImages,
    fns: tuple[TranslateFn, StrengthFn | None, ConditionFn | None],
    *,
    names: dict[int, str],
) -> tuple[dict, tuple]:
    """{section name: result or Skipped} of every section that translates, and the report's
    pictures: (the translation matrix, the translations the droplet detector flagged), each
    None without held-out translations."""
    e = config.eval
    split = held_out_split(config, discovery, data)
    if isinstance(split, str):
        return _all_skipped(config, split), (None, None)
    feature_space, features = _feature_fn(config, stats)
    f_eval, f_train = features(split.x_eval), features(split.x_train)
    embeddings, no_identity = _embeddings(config, data, split)
    judges = {
        MAIN: _judge(config, data, split, features, feature_space, f_train),
        EDGES: _edge_judge(config, data, split),
        FACE: _face_judge(config, data, split, (embeddings, no_identity)),
    }
    known = {MAIN: f_eval}
    if embeddings is not None and embeddings.kind == "dlib":
        known[FACE] = embeddings.inputs
    input_decisions = _decide(judges, split.x_eval, known)
    targets = transfer.transfer_targets(discovery.rows, min_precision=e.transfer_min_precision)
    target_clusters = sorted({t.cluster for t in targets})
    columns = _matrix_columns(config, stats, target_clusters)
    identities = data.identities[split.eval_idx] if data.identities is not None else None
    rows = matrix_rows(identities, min(e.report_images, len(split.eval_idx)))
    translations = _translate_held_out(
        config,
        fns[0],
        split.x_eval,
        data.clusters[split.eval_idx],
        target_clusters=target_clusters,
        matrix=(columns, rows),
        judges=judges,
        embeddings=embeddings,
        num_clusters=stats.num_clusters,
    )
    out: dict = {
        "transfer": _transfer_result(
            config, data, split, judges, targets, input_decisions, translations
        ),
        "identity": Skipped(no_identity)
        if embeddings is None
        else _identity_result(config, discovery, data, split, embeddings, translations),
    }
    held = beyond.HeldOut(
        x=split.x_eval,
        paths=[data.paths[i] for i in split.eval_idx],
        labels=data.attributes[split.eval_idx],
        attrs=data.names,
        input_decisions=input_decisions[MAIN],
        judge=judges[MAIN],
        embeddings=embeddings,
        threshold=getattr(out["identity"], "threshold", None),  # None when Skipped
        batch_size=e.batch_size,
    )
    out.update(_beyond(config, stats, held, targets, data.clusters[split.eval_idx], fns))
    out["realism"] = realism.realism_result(
        feature_space,
        real=(split.x_eval, f_eval),
        translated=(translations.x_random, features(translations.x_random)),
        reference=(split.x_train, f_train),
        droplets=translations.droplets_into,
        blotches=translations.blotches_into,
        inception_weights=e.inception_weights,
        batch_size=e.batch_size,
    )
    row_paths = [data.paths[i] for i in split.eval_idx[rows]]
    matrix = _translation_matrix(
        translations, split.x_eval, row_paths, columns, rows, targets=targets, names=names
    )
    return out, (matrix, _flagged_droplets(split.x_eval, translations.x_random, e.report_images))


def _flagged_droplets(inputs, outputs, report_images: int) -> html_report.FlaggedTranslations:
    """The first 2 x report_images translations into random clusters carrying a droplet."""
    found = droplets.first_flagged(inputs, outputs, limit=2 * report_images)
    indices = [i for i, _ in found]
    return html_report.FlaggedTranslations(
        inputs=inputs[indices],
        outputs=outputs[indices],
        marks=[blobs for _, blobs in found],
        looked_at=len(inputs),
    )


__all__ = [
    "COMBINATIONS",
    "DISCOVERY",
    "METRICS",
    "REFERENCE_GROUPS",
    "SCHEMA_VERSION",
    "SECTIONS",
    "STRENGTH_CURVE",
    "ConditionFn",
    "Discovery",
    "GeneratorFns",
    "Metrics",
    "StrengthFn",
    "TranslateFn",
    "checkpoint_generator_fns",
    "checkpoint_translate_fn",
    "evaluate",
    "format_summary",
    "load_images",
    "run_discovery",
    "run_evaluation",
    "split_eval_train",
    "translate_all",
]
