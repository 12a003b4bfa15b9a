"""The evaluation stage end to end: the library behind `python -m xplore_tf.evaluate`.

1. Discovery: the cluster report against the labels (`clustering/report.py`).
2. Transfer: held-out labelled images are translated into each attribute's clearly-labelled
   cluster and judged by a classifier that is not part of the generator (`transfer.py`).
3. Identity: input vs translation in an identity embedding, against real same- and
   different-identity pairs (`identity.py`).
4. Realism: Fréchet distance between real and translated images (`realism.py`).
5. Beyond fixed clusters, when asked (docs/beyond.md): the strength curve (--strengths),
   reference groups (--reference_group_size) and combined attributes (--combinations).

Labelled images are split once (by identity when the labels have an `identity` column):
`eval_images` held-out images are translated and judged; up to `probe_train_images` others
train the attribute probe and the identity regressor. Everything is seeded by `--seed`.
Writes WORKDIR/eval/metrics.json, report.html and translation_matrix.png (atomically).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from absl import logging

from xplore_tf import checkpoint_files, io_utils
from xplore_tf import features as features_lib
from xplore_tf.clustering import artifacts, contact_sheets, report
from xplore_tf.config import Config
from xplore_tf.data import images as images_lib
from xplore_tf.data import sources
from xplore_tf.data.synthetic import IDENTITY_FIELDS
from xplore_tf.evaluation import droplets, html_report, identity, realism, side_effects, transfer

# translate_fn(images uint8 [N,S,S,3], cluster_ids int [N]) -> uint8 [N,S,S,3]
TranslateFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
# strength_fn(images uint8 [N,S,S,3], cluster_ids int [N], strengths float [N],
#             source_ids int [N]) -> uint8 [N,S,S,3]: condition s_src + alpha (s_t - s_src)
# with s_src = the condition of each input's own cluster source_ids (docs/beyond.md).
StrengthFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# condition_fn(images uint8 [N,S,S,3], conditions float32 [N,C]) -> uint8 [N,S,S,3]: G under
# any condition laid out as the cluster table's rows (a reference group's, a blend).
ConditionFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

SCHEMA_VERSION = 1
METRICS = "metrics.json"
REPORT = "report.html"
MATRIX = "translation_matrix.png"
DISCOVERY = "discovery.json"
SECTIONS = ("transfer", "identity", "realism")
STRENGTH_CURVE = "strength_curve"  # with --strengths (docs/beyond.md)
REFERENCE_GROUPS = "reference_groups"  # with --reference_group_size
COMBINATIONS = "combinations"  # with --combinations


# ---------------------------------------------------------------- discovery
@dataclasses.dataclass
class Discovery:
    """The cluster report and what later sections reuse of it."""

    rows: list[report.AttributeReport]
    labels_csv: str
    images: list[str]  # every clustered image (relative path)
    clusters: np.ndarray  # [N] their cluster ids
    matched: int  # clustered images with a labels row
    num_clusters: int
    text: str  # the printed table


def run_discovery(config: Config) -> Discovery:
    """Cluster report of WORKDIR/clusters against the labels; writes eval/discovery.json."""
    labels_csv = sources.default_labels_csv(config)
    if not labels_csv:
        raise ValueError("--labels_csv is required (image,<0/1 attribute columns>)")
    images, clusters, _ = artifacts.read_assignments(
        os.path.join(config.clusters_dir, artifacts.ASSIGNMENTS)
    )
    r = config.report
    rows, matched = report.cluster_report(
        images,
        clusters,
        labels_csv,
        attributes=r.attributes,
        min_cluster_size=r.min_cluster_size,
        precision_threshold=r.precision_threshold,
    )
    num_clusters = int(clusters.max()) + 1
    out = os.path.join(config.eval_dir, DISCOVERY)
    report.write_report(
        out,
        rows,
        labels_csv=labels_csv,
        images_matched=matched,
        images_assigned=len(images),
        num_clusters=num_clusters,
        min_cluster_size=r.min_cluster_size,
        precision_threshold=r.precision_threshold,
    )
    text = (
        f"discovery: {matched} of {len(images)} clustered images have labels "
        f"({num_clusters} clusters; best cluster among those >= {r.min_cluster_size})\n"
        + report.format_report(rows, threshold=r.precision_threshold)
        + f"\nwritten to {out}"
    )
    return Discovery(rows, labels_csv, images, clusters, matched, num_clusters, text)


# ---------------------------------------------------------------- the generator
def checkpoint_translate_fn(
    config: Config, checkpoint: str, *, batch_size: int = 32
) -> tuple[TranslateFn, int | None]:
    """G_ema of `checkpoint` as a translate_fn (no noise at inference), and its step."""
    fns = checkpoint_generator_fns(config, checkpoint, batch_size=batch_size)
    return fns.translate, fns.step


class GeneratorFns(NamedTuple):
    """G_ema of a checkpoint, as the evaluation calls it."""

    translate: TranslateFn
    strength: StrengthFn
    condition: ConditionFn
    step: int | None
    checkpoint: str  # the one restored


def checkpoint_generator_fns(
    config: Config, checkpoint: str | None, *, batch_size: int = 32
) -> GeneratorFns:
    """G_ema of `checkpoint` (None: --checkpoint, else the run's newest readable one, as
    `export_lib.load_generator`) as a translate_fn, a strength_fn and a condition_fn, with
    its step and path.

    All condition G as the exported model does: translate_fn on the cluster's row of the
    condition table, strength_fn on `space.blend_conditions` (alpha = 0 gives exactly the
    source row, alpha = 1 exactly the target row), condition_fn on the conditions given.
    Cluster ids outside [0, k) and strengths outside [0, MAX_STRENGTH] are ValueErrors.
    """
    import tensorflow as tf

    from xplore_tf import export_lib
    from xplore_tf.clustering import space
    from xplore_tf.common import signatures as sig
    from xplore_tf.models.generator import condition_vector

    loaded = export_lib.load_generator(config, checkpoint, allow_untrained=False)
    generator, stats = loaded.generator, loaded.stats
    mode = config.model.condition
    k = stats.num_clusters
    table = tf.constant(
        np.asarray(condition_vector(np.arange(k), stats.centroids, stats.stds, mode=mode)),
        tf.float32,
    )
    std_from = stats.dim if mode == "mean_std" else None

    @tf.function(reduce_retracing=True)
    def _generate(images, conditions):
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        y = generator((x, conditions), training=False)
        return tf.cast(tf.clip_by_value((y + 1.0) * 127.5 + 0.5, 0.0, 255.0), tf.uint8)

    def check_ids(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int32)
        if ids.size and (ids.min() < 0 or ids.max() >= k):
            raise ValueError(f"cluster ids must be in [0, {k})")
        return ids

    def run(images: np.ndarray, conditions) -> np.ndarray:
        return np.concatenate(
            [
                _generate(
                    tf.constant(images[i : i + batch_size]), conditions[i : i + batch_size]
                ).numpy()
                for i in range(0, len(images), batch_size)
            ]
        )

    def translate(images: np.ndarray, cluster_ids: np.ndarray) -> np.ndarray:
        return run(images, tf.gather(table, check_ids(cluster_ids)))

    def strength(images, cluster_ids, strengths, source_ids) -> np.ndarray:
        alphas = np.asarray(strengths, np.float32)
        if alphas.size and not (
            np.isfinite(alphas).all() and 0 <= alphas.min() and alphas.max() <= sig.MAX_STRENGTH
        ):
            raise ValueError(f"strengths must be in [0, {sig.MAX_STRENGTH:g}]")
        source = tf.gather(table, check_ids(source_ids))
        weights = tf.one_hot(check_ids(cluster_ids), k) * alphas[:, None]
        return run(images, space.blend_conditions(source, weights, table, std_from=std_from))

    def condition(images, conditions) -> np.ndarray:
        return run(images, tf.constant(conditions, tf.float32))

    return GeneratorFns(translate, strength, condition, loaded.step, loaded.checkpoint)


def translate_all(
    translate_fn: TranslateFn | StrengthFn,
    images: np.ndarray,
    clusters: np.ndarray,
    *,
    batch_size: int,
    extra: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Runs translate_fn batch by batch and checks its output: uint8, same shape as input.

    `extra` per-image arrays [N] (a StrengthFn's strengths and source ids) are sliced
    alongside and passed after the cluster ids.
    """
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        more = [np.asarray(a)[i : i + batch_size] for a in extra]
        y = np.asarray(translate_fn(x, np.asarray(clusters[i : i + batch_size], np.int32), *more))
        if y.shape != x.shape or y.dtype != np.uint8:
            raise ValueError(
                f"translate_fn returned {y.dtype} {y.shape} for uint8 {x.shape}; expected the same"
            )
        out.append(y)
    return np.concatenate(out) if out else images[:0].copy()


# ---------------------------------------------------------------- labelled data
@dataclasses.dataclass
class LabelledImages:
    """Clustered images that have a labels row, with everything evaluation needs."""

    paths: list[str]  # relative to the images folder
    assignment_index: np.ndarray  # [N] row of each image in assignments.csv
    clusters: np.ndarray  # [N] int pseudo-labels
    attributes: np.ndarray  # [N, A] int8, in `names` order
    names: tuple[str, ...]
    identities: np.ndarray | None  # [N] str, from an `identity` column
    geometry: np.ndarray | None  # [N, 6] float, synthetic identity geometry


def _read_text_columns(path: str, wanted: Sequence[str]) -> dict[str, list[str]]:
    """{column: values} of the wanted columns present in the CSV (row order as the file)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        present = [c for c in wanted if c in (reader.fieldnames or [])]
        columns: dict[str, list[str]] = {c: [] for c in present}
        for row in reader:
            for c in present:
                columns[c].append(row[c].strip())
    return columns


def labelled_images(discovery: Discovery) -> LabelledImages:
    names = tuple(r.attribute for r in discovery.rows)
    label_images, columns = report.read_binary_labels(discovery.labels_csv)
    a_idx, l_idx = report.join_labels(discovery.images, label_images)
    extra = _read_text_columns(discovery.labels_csv, ("identity", *IDENTITY_FIELDS))
    identities = np.asarray(extra["identity"])[l_idx] if "identity" in extra else None
    geometry = None
    if all(f in extra for f in IDENTITY_FIELDS):
        try:
            geometry = np.asarray([extra[f] for f in IDENTITY_FIELDS], np.float64).T[l_idx]
        except ValueError:
            logging.warning("%s: identity geometry columns are not numeric", discovery.labels_csv)
    return LabelledImages(
        paths=[discovery.images[i] for i in a_idx],
        assignment_index=a_idx,
        clusters=np.asarray(discovery.clusters)[a_idx],
        attributes=np.stack([columns[a][l_idx] for a in names], axis=1)
        if names
        else np.zeros((len(a_idx), 0), np.int8),
        names=names,
        identities=identities,
        geometry=geometry,
    )


def split_eval_train(
    n: int,
    identities: np.ndarray | None,
    *,
    eval_count: int,
    train_count: int,
    seed: int,
    eval_pool: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(eval indices, train indices) into n images, disjoint, and disjoint in identity when
    identities are given.

    Eval images come from `eval_pool` (default: all), whole identities at a time in a seeded
    random order until there are `eval_count` (the last identity trimmed). Training images
    are then drawn, again by identity, from every image whose identity is not in the eval
    set, up to `train_count`.
    """
    rng = np.random.default_rng([seed, 7])
    pool = np.arange(n) if eval_pool is None else np.asarray(eval_pool, np.int64)
    if identities is None:
        eval_idx = rng.permutation(pool)[:eval_count]
        rest = np.setdiff1d(np.arange(n), eval_idx)
        return np.sort(eval_idx), np.sort(rng.permutation(rest)[:train_count])
    identities = np.asarray(identities)

    def take(candidates: np.ndarray, count: int) -> list[int]:
        groups, group_of = np.unique(identities[candidates], return_inverse=True)
        by_group = np.argsort(group_of, kind="stable")
        bounds = np.searchsorted(group_of[by_group], np.arange(len(groups) + 1))
        taken: list[int] = []
        for g in rng.permutation(len(groups)):
            if len(taken) >= count:
                break
            members = candidates[by_group[bounds[g] : bounds[g + 1]]]
            taken.extend(members[: count - len(taken)])
        return taken

    eval_idx = np.asarray(take(pool, eval_count), np.int64)
    rest = np.flatnonzero(~np.isin(identities, identities[eval_idx]))
    train_idx = np.asarray(take(rest, train_count), np.int64)
    return np.sort(eval_idx), np.sort(train_idx)


def load_images(
    root: str, paths: Sequence[str], *, size: int, crop_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept [M] indices into paths, uint8 [M, size, size, 3]); unreadable files skipped."""
    kept, out = [], []
    for i, p in enumerate(paths):
        try:
            out.append(images_lib.load_image(os.path.join(root, p), size=size, crop_size=crop_size))
            kept.append(i)
        except images_lib.ImageError as e:  # any decoder failure on this one file
            logging.warning("evaluation: skipping unreadable image %s: %s", p, e.reason)
    if len(kept) < len(paths):
        logging.warning("evaluation: %d of %d images skipped", len(paths) - len(kept), len(paths))
    images = np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)
    return np.asarray(kept, np.int64), images


def matrix_rows(identities: np.ndarray | None, count: int) -> np.ndarray:
    """Indices of the translation matrix's rows: one image per identity first."""
    n = len(identities) if identities is not None else 0
    if identities is None:
        return np.arange(count)
    _, first = np.unique(identities, return_index=True)
    first = np.sort(first)
    rest = np.setdiff1d(np.arange(n), first)
    return np.concatenate([first, rest])[:count]


# ---------------------------------------------------------------- helpers
def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _sections(e) -> list[str]:
    """The metric sections this evaluation config asks for (`e`: EvalConfig)."""
    optional = (
        (STRENGTH_CURVE, e.strengths),
        (REFERENCE_GROUPS, e.reference_group_size),
        (COMBINATIONS, e.combinations),
    )
    return [*SECTIONS, *(name for name, on in optional if on)]


def _skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


class _Progress:
    """Periodic log line with images/s and ETA for the translation loop."""

    def __init__(self, total: int, every_s: float = 15.0):
        self.total, self.done, self.every_s = total, 0, every_s
        self.start = self.last = time.perf_counter()

    def add(self, n: int, what: str) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every_s or self.done >= self.total:
            rate = self.done / max(now - self.start, 1e-9)
            logging.info(
                "evaluation: %d/%d translations (%s), %.1f images/s, ETA %.0f s",
                self.done,
                self.total,
                what,
                rate,
                (self.total - self.done) / max(rate, 1e-9),
            )
            self.last = now


def _choose_embedder(config: Config, data: LabelledImages) -> tuple[str | None, str]:
    """(embedder kind or None, reason when None)."""
    kind = config.eval.identity_embedder
    if kind == "none":
        return None, "--identity_embedder=none"
    if kind == "geometry" and data.geometry is None:
        raise ValueError(
            f"--identity_embedder=geometry needs the identity geometry columns "
            f"({', '.join(IDENTITY_FIELDS)}) in the labels (the synthetic set's labels.csv)"
        )
    if kind == "dlib":
        reason = identity.dlib_unavailable_reason()
        if reason:
            raise ValueError(f"--identity_embedder=dlib: {reason}")
        return "dlib", ""
    if kind == "geometry" or (kind == "auto" and data.geometry is not None):
        return "geometry", ""
    reason = identity.dlib_unavailable_reason()
    return (None, reason) if reason else ("dlib", "")


def _reference_pairs(
    config: Config,
    discovery: Discovery,
    data: LabelledImages,
    eval_idx: np.ndarray,
    *,
    kind: str,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, str]:
    """Real pairs: (images or None = the eval images, same [P,2], different [Q,2], source)."""
    e = config.eval
    pairs_csv = e.identity_pairs_csv or identity.default_identity_pairs_csv(discovery.labels_csv)
    # The geometry regressor was trained on other identities, so its references must be
    # held-out images too: for it, the pairs come from the eval split.
    if pairs_csv and kind == "dlib":
        if not os.path.isfile(pairs_csv):
            raise FileNotFoundError(f"--identity_pairs_csv: {pairs_csv!r} does not exist")
        rows = identity.read_identity_pairs(pairs_csv)
        rng = np.random.default_rng([config.seed, 11])

        def pick(candidates: list) -> list:
            chosen = np.sort(rng.permutation(len(candidates))[: e.identity_max_pairs])
            return [candidates[i] for i in chosen]

        chosen = pick([r for r in rows if r[2]]) + pick([r for r in rows if not r[2]])
        by_name = {os.path.basename(p): p for p in discovery.images}
        names = sorted({n for a, b, _ in chosen for n in (a, b)})
        rel = [by_name.get(os.path.basename(n), n) for n in names]
        root = sources.images_dir(config)
        kept, images = load_images(
            root, rel, size=config.model.image_size, crop_size=config.data.crop_size
        )
        position = {names[k]: j for j, k in enumerate(kept)}
        pairs = [
            (position[a], position[b], s) for a, b, s in chosen if a in position and b in position
        ]
        same_arr = np.asarray([(a, b) for a, b, s in pairs if s], np.int64).reshape(-1, 2)
        diff_arr = np.asarray([(a, b) for a, b, s in pairs if not s], np.int64).reshape(-1, 2)
        return images, same_arr, diff_arr, pairs_csv
    if data.identities is None:
        return None, np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64), ""
    same, diff = identity.identity_pairs_from_labels(
        data.identities[eval_idx], max_pairs=e.identity_max_pairs, seed=config.seed
    )
    return None, same, diff, "identity column of the labels (eval images)"


def _distance_summary(distances: np.ndarray, threshold: float | None) -> dict:
    return {
        "pairs": int(len(distances)),
        "mean_distance": float(np.mean(distances)) if len(distances) else None,
        "verification_rate": identity.verification_rate(distances, threshold)
        if threshold is not None and len(distances)
        else None,
    }


# ---------------------------------------------------------------- the evaluation
def run_evaluation(
    config: Config,
    *,
    translate_fn: TranslateFn | None = None,
    strength_fn: StrengthFn | None = None,
    condition_fn: ConditionFn | None = None,
) -> dict:
    """Every metric of the run; writes WORKDIR/eval/{metrics.json, report.html}.

    translate_fn(images uint8 [N,S,S,3], cluster_ids [N]) -> uint8 [N,S,S,3]; default: G_ema
    of the run's latest checkpoint (--checkpoint to pick one). Without a checkpoint, only
    the discovery report is computed and the other sections say why they were skipped.
    With --strengths, also the strength curve (`strength_curve`, docs/beyond.md) through
    strength_fn (see StrengthFn; default: the same G_ema; skipped without one). With
    --reference_group_size / --combinations, also `reference_groups` / `combinations` through
    condition_fn (see ConditionFn; the same default).
    """
    start = time.perf_counter()
    e = config.eval
    sources.prepare_inputs(config)
    discovery = run_discovery(config)
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    cluster_names = contact_sheets.read_cluster_names(
        os.path.join(config.clusters_dir, contact_sheets.CLUSTER_NAMES)
    )
    metrics: dict = {
        "schema_version": SCHEMA_VERSION,
        "workdir": config.workdir,
        "checkpoint": None,
        "step": None,
        "num_clusters": stats.num_clusters,
        "discovery": {
            "labels_csv": discovery.labels_csv,
            "images_assigned": len(discovery.images),
            "images_matched": discovery.matched,
            "min_cluster_size": config.report.min_cluster_size,
            "precision_threshold": config.report.precision_threshold,
            "mean_nmi": _mean([r.nmi for r in discovery.rows]),
            "attributes_captured": sum(
                r.best_precision > config.report.precision_threshold for r in discovery.rows
            ),
            "attributes": [dataclasses.asdict(r) for r in discovery.rows],
        },
    }
    matrix = None
    data = labelled_images(discovery)
    if translate_fn is None:
        if config.export.checkpoint or checkpoint_files.steps(config.checkpoint_dir):
            fns = checkpoint_generator_fns(config, None, batch_size=e.batch_size)
            translate_fn, strength_fn, condition_fn = fns.translate, fns.strength, fns.condition
            metrics["checkpoint"], metrics["step"] = fns.checkpoint, fns.step
        else:
            reason = (
                f"no checkpoint in {config.checkpoint_dir}: train first "
                "(python -m xplore_tf.train) or pass --checkpoint"
            )
            metrics.update({s: _skipped(reason) for s in _sections(e)})
    else:
        metrics["checkpoint"] = "translate_fn"
    if translate_fn is not None:
        section_metrics, matrix = _translation_metrics(
            config,
            discovery,
            stats,
            data,
            translate_fn,
            names=cluster_names,
            strength_fn=strength_fn,
            condition_fn=condition_fn,
        )
        metrics.update(section_metrics)
    metrics["clusters"] = _cluster_table(stats, data, metrics, cluster_names)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    out = config.eval_dir
    metrics["report_html"] = os.path.join(out, REPORT)
    if matrix is not None:
        metrics["translation_matrix"] = os.path.join(out, MATRIX)
        io_utils.write_bytes(os.path.join(out, MATRIX), html_report.png_bytes(matrix.image()))
    io_utils.write_text(os.path.join(out, REPORT), html_report.render(metrics, matrix=matrix))
    io_utils.write_json(os.path.join(out, METRICS), metrics)
    return metrics


def _translation_metrics(
    config: Config,
    discovery: Discovery,
    stats: artifacts.ClusterStats,
    data: LabelledImages,
    translate_fn: TranslateFn,
    *,
    names: dict[int, str],
    strength_fn: StrengthFn | None = None,
    condition_fn: ConditionFn | None = None,
) -> tuple[dict, html_report.TranslationMatrix | None]:
    e = config.eval
    n = len(data.paths)
    pool = None
    if config.train.holdout:
        # Faces the generator never saw (train_lib leaves them out of training).
        _, held = sources.split_holdout(discovery.images, config.train.holdout)
        pool = np.flatnonzero(np.isin(data.assignment_index, held))
        available = len(pool)
        source_note = f"--holdout: {available} labelled images never seen by the generator"
    else:
        available = n // 2
        source_note = (
            "labelled images the generator may have trained on (set --holdout at training "
            "time to evaluate on unseen faces)"
        )
    eval_count = min(e.eval_images, available)
    if eval_count < 2:
        reason = f"only {available} labelled images available for evaluation; need at least 2"
        return {s: _skipped(reason) for s in _sections(e)}, None
    if eval_count < e.eval_images:
        logging.warning(
            "--eval_images=%d reduced to %d (%s)", e.eval_images, eval_count, source_note
        )
    eval_idx, train_idx = split_eval_train(
        n,
        data.identities,
        eval_count=eval_count,
        train_count=e.probe_train_images,
        seed=config.seed,
        eval_pool=pool,
    )
    root = sources.images_dir(config)
    size, crop = config.model.image_size, config.data.crop_size
    kept, x_eval = load_images(root, [data.paths[i] for i in eval_idx], size=size, crop_size=crop)
    eval_idx = eval_idx[kept]
    kept, x_train = load_images(root, [data.paths[i] for i in train_idx], size=size, crop_size=crop)
    train_idx = train_idx[kept]
    y_eval, y_train = data.attributes[eval_idx], data.attributes[train_idx]
    logging.info(
        "evaluation: %d held-out images to translate, %d to train the probe/regressor",
        len(eval_idx),
        len(train_idx),
    )

    # ---- the feature space of the clustering stage (probe and FD)
    extractor_name = stats.extractor
    weights = config.cluster.feature_weights or None
    if extractor_name in features_lib.NEEDS_WEIGHTS and not weights:
        raise ValueError(
            f"the clusters were made with {extractor_name}: pass its --feature_weights "
            "(evaluation measures in the same feature space)"
        )
    extractor = features_lib.build_extractor(extractor_name, weights)

    def features(images: np.ndarray) -> np.ndarray:
        return realism.extractor_features(extractor, images, batch_size=e.batch_size)

    f_eval, f_train = features(x_eval), features(x_train)

    # ---- the judge of transfer
    attrs = data.names
    if e.attribute_classifier:
        judge = transfer.load_attribute_classifier(
            e.attribute_classifier, attrs, batch_size=e.batch_size
        )
        judge_name = f"keras:{e.attribute_classifier}"

        def probabilities(images, feats):
            return judge(images)
    else:
        if len(train_idx) < 4:
            raise ValueError(f"only {len(train_idx)} labelled images left to train the probe")
        probe = transfer.fit_logistic_probe(f_train, y_train, attributes=attrs, seed=config.seed)
        judge_name = f"logistic probe on {extractor_name} features ({len(train_idx)} images)"

        def probabilities(images, feats):
            return probe.predict_proba(feats)

    input_decisions = probabilities(x_eval, f_eval) >= 0.5
    judge_quality = {
        a: {
            "accuracy": transfer.accuracy(input_decisions[:, j], y_eval[:, j]),
            "balanced_accuracy": transfer.balanced_accuracy(input_decisions[:, j], y_eval[:, j]),
            "positives": int(y_eval[:, j].sum()),
        }
        for j, a in enumerate(attrs)
    }

    # ---- the identity embedder
    kind, no_identity = _choose_embedder(config, data)
    embedder = None
    regressor_scores = None
    if kind == "geometry":
        embedder = identity.fit_geometry_regressor(
            x_train,
            data.geometry[train_idx],
            epochs=e.identity_regressor_epochs,
            batch_size=e.batch_size,
            seed=config.seed,
            members=e.identity_regressor_members,
            # Upsampling small images adds cost, not information.
            input_size=min(identity.GEOMETRY_INPUT_SIZE, config.model.image_size),
        )
        regressor_scores = identity.regression_scores(
            embedder.embed(x_eval), data.geometry[eval_idx]
        )
        regressor_scores.update(train_images=len(train_idx), test_images=len(eval_idx))
    elif kind == "dlib":
        embedder = identity.DlibFaceEmbedder()
    emb_eval = embedder.embed(x_eval) if embedder is not None else None

    # ---- translations: every eval image into each transfer cluster and one random cluster
    targets = transfer.transfer_targets(discovery.rows, min_precision=e.transfer_min_precision)
    target_clusters = sorted({t.cluster for t in targets})
    by_size = [int(c) for c in np.argsort(-stats.sizes, kind="stable")]
    columns = (target_clusters + [c for c in by_size if c not in target_clusters])[
        : max(e.report_clusters, 0)
    ]
    rows = matrix_rows(
        data.identities[eval_idx] if data.identities is not None else None,
        min(e.report_images, len(eval_idx)),
    )
    k = stats.num_clusters
    rng = np.random.default_rng([config.seed, 5])
    source = data.clusters[eval_idx]
    random_targets = (source + rng.integers(1, max(k, 2), size=len(source))) % k
    matrix_only = [c for c in columns if c not in target_clusters]
    progress = _Progress(len(eval_idx) * (len(target_clusters) + 1) + len(rows) * len(matrix_only))

    decisions_into: dict[int, np.ndarray] = {}
    identity_into: dict[int, float] = {}
    droplets_into: dict[int, float] = {}
    matrix_columns: dict[int, np.ndarray] = {}
    for c in target_clusters:
        y = translate_all(translate_fn, x_eval, np.full(len(x_eval), c), batch_size=e.batch_size)
        progress.add(len(y), f"cluster {c}")
        decisions_into[c] = (
            probabilities(y, features(y) if not e.attribute_classifier else None) >= 0.5
        )
        droplets_into[c] = float(droplets.droplet_flags(x_eval, y).mean())
        if embedder is not None:
            identity_into[c] = float(identity.row_distances(emb_eval, embedder.embed(y)).mean())
        matrix_columns[c] = y[rows]
    for c in matrix_only:
        matrix_columns[c] = translate_all(
            translate_fn, x_eval[rows], np.full(len(rows), c), batch_size=e.batch_size
        )
        progress.add(len(rows), f"cluster {c}")
    x_random = translate_all(translate_fn, x_eval, random_targets, batch_size=e.batch_size)
    progress.add(len(x_random), "random clusters")

    out: dict = {}
    # ---- transfer
    per_attribute = []
    for t in targets:
        j = attrs.index(t.attribute)
        rates = transfer.transfer_rates(
            input_decisions=input_decisions[:, j],
            translated_decisions=decisions_into[t.cluster][:, j],
            truth=y_eval[:, j],
        )
        per_attribute.append(
            {
                "attribute": t.attribute,
                "cluster": t.cluster,
                "cluster_precision": t.precision,
                "cluster_size": t.size,
                "judge_accuracy": judge_quality[t.attribute]["accuracy"],
                "judge_balanced_accuracy": judge_quality[t.attribute]["balanced_accuracy"],
                **dataclasses.asdict(rates),
            }
        )
    out["transfer"] = {
        "status": "ok",
        "judge": judge_name,
        "min_precision": e.transfer_min_precision,
        "eval_images": int(len(eval_idx)),
        "train_images": int(len(train_idx)),
        "split": "by identity" if data.identities is not None else "by image",
        "eval_source": source_note,
        "eval_unseen_by_generator": bool(config.train.holdout),
        "attributes": per_attribute,
        "mean_rate_all": _mean([r["rate_all"] for r in per_attribute]),
        "mean_baseline_all": _mean([r["baseline_all"] for r in per_attribute]),
        "mean_rate_lacking": _mean([r["rate_lacking"] for r in per_attribute]),
        "mean_baseline_lacking": _mean([r["baseline_lacking"] for r in per_attribute]),
        "mean_gain_lacking": _mean([r["gain_lacking"] for r in per_attribute]),
        "judge_quality": judge_quality,
        "side_effects": side_effects.side_effect_table(
            input_decisions,
            {f"{t.attribute} (cluster {t.cluster})": decisions_into[t.cluster] for t in targets},
            list(attrs),
        ),
    }
    if not per_attribute:
        out["transfer"]["reason"] = (
            f"no attribute's best cluster reaches precision {e.transfer_min_precision}"
        )

    # ---- identity
    if embedder is None:
        out["identity"] = _skipped(no_identity)
    else:
        out["identity"] = _identity_section(
            config,
            discovery,
            data,
            eval_idx,
            embedder=embedder,
            kind=kind,
            emb_eval=emb_eval,
            x_random=x_random,
            regressor_scores=regressor_scores,
            identity_into=identity_into,
        )

    # ---- beyond fixed clusters (docs/beyond.md)
    beyond = [name for name in _sections(e) if name not in SECTIONS]
    if beyond:
        held = _Held(
            x=x_eval,
            paths=[data.paths[i] for i in eval_idx],
            labels=y_eval,
            attrs=attrs,
            input_decisions=input_decisions,
            judge=lambda y: (
                probabilities(y, features(y) if not e.attribute_classifier else None) >= 0.5
            ),
            embedder=embedder,
            emb=emb_eval,
            threshold=out["identity"].get("threshold") if embedder is not None else None,
            batch_size=e.batch_size,
        )
        out.update(
            _beyond_sections(
                config,
                stats,
                held,
                beyond,
                targets=targets,
                own_clusters=data.clusters[eval_idx],
                translate_fn=translate_fn,
                strength_fn=strength_fn,
                condition_fn=condition_fn,
            )
        )

    # ---- realism
    f_random = features(x_random)
    fd_key = f"fd_{extractor_name}"
    reference = f_train[: len(f_eval)]
    out["realism"] = {
        "status": "ok",
        "feature_space": extractor_name,
        "real_images": int(len(f_eval)),
        "translated_images": int(len(f_random)),
        "translations": "each held-out image into one random other cluster",
        fd_key: realism.frechet_distance_of_features(f_eval, f_random),
        f"{fd_key}_real_reference": realism.frechet_distance_of_features(reference, f_eval)
        if len(reference) >= 2
        else None,
        "reference_images": int(len(reference)),
        "droplets": {
            "rate_random": float(droplets.droplet_flags(x_eval, x_random).mean()),
            "per_cluster": {str(c): rate for c, rate in droplets_into.items()},
            "rule": dataclasses.asdict(droplets.DropletRule()),
        },
    }
    if e.inception_weights:
        inception = realism.build_inception_extractor(e.inception_weights)

        def inception_features(images):
            return realism.extractor_features(inception, images, batch_size=e.batch_size)

        i_eval = inception_features(x_eval)
        out["realism"]["fid_inception_v3"] = realism.frechet_distance_of_features(
            i_eval, inception_features(x_random)
        )
        out["realism"]["fid_inception_v3_real_reference"] = (
            realism.frechet_distance_of_features(inception_features(x_train[: len(x_eval)]), i_eval)
            if len(reference) >= 2
            else None
        )
    else:
        out["realism"]["fid_inception_v3"] = None
        out["realism"]["fid_note"] = "no --inception_weights: Inception FID not computed"

    target_of = {}
    for t in targets:
        target_of.setdefault(t.cluster, []).append(t.attribute)
    headers = []
    for c in columns:
        label = f"cluster {c}"
        if c in names:
            label += f" · {names[c]}"
        if c in target_of:
            label += f" ({', '.join(target_of[c])})"
        headers.append(label)
    matrix = html_report.TranslationMatrix(
        inputs=x_eval[rows],
        columns=[matrix_columns[c] for c in columns],
        headers=headers,
        row_labels=[data.paths[i] for i in eval_idx[rows]],
    )
    return out, matrix


def _source_clusters(
    config: Config,
    stats: artifacts.ClusterStats,
    paths: Sequence[str],
    own_clusters: np.ndarray,
) -> np.ndarray:
    """Each image's nearest centroid after the clustering extractor + PCA (s_src's cluster),
    as the exported model finds it; images the extractor cannot read keep their
    assignment. Raises ValueError/FileNotFoundError when the space cannot be rebuilt."""
    from xplore_tf.clustering import space

    space.check_same_space(config, stats)
    root = sources.images_dir(config)
    kept, points = space.embed_files(config, stats, root, list(paths))
    source = np.asarray(own_clusters, np.int32).copy()
    if len(kept):
        source[kept] = np.asarray(space.nearest_cluster_ops(points, stats.centroids))
    return source


@dataclasses.dataclass
class _Held:
    """The held-out images and the judges that the sections beyond fixed clusters share."""

    x: np.ndarray  # uint8 [N, S, S, 3]
    paths: list[str]  # relative to the images folder
    labels: np.ndarray  # int8 [N, A]
    attrs: Sequence[str]
    input_decisions: np.ndarray  # bool [N, A]: the judge on the inputs
    judge: Callable[[np.ndarray], np.ndarray]  # images -> bool [N, A]
    embedder: object | None  # identity embedder (None: identity not measured)
    emb: np.ndarray | None  # [N, D] the inputs' identity embeddings
    threshold: float | None
    batch_size: int

    def measure(self, attribute: str, translated: np.ndarray, rows: np.ndarray) -> dict:
        """Transfer of `attribute` and identity for the held-out images `rows` (int [M])
        translated to `translated` (uint8 [M, S, S, 3])."""
        j = list(self.attrs).index(attribute)
        rates = transfer.transfer_rates(
            input_decisions=self.input_decisions[rows, j],
            translated_decisions=self.judge(translated)[:, j],
            truth=self.labels[rows, j],
        )
        out = {
            "rate_all": rates.rate_all,
            "rate_lacking": rates.rate_lacking,
            "baseline_lacking": rates.baseline_lacking,
            "inputs_lacking": rates.inputs_lacking,
            "l1_to_input": float(
                np.mean(np.abs(translated.astype(np.float32) - self.x[rows])) / 255.0
            ),
        }
        if self.embedder is not None:
            distances = identity.row_distances(self.emb[rows], self.embedder.embed(translated))
            out["identity_mean_distance"] = float(np.mean(distances))
            out["identity_verified"] = (
                identity.verification_rate(distances, self.threshold)
                if self.threshold is not None
                else None
            )
        return out


def _beyond_sections(
    config: Config,
    stats: artifacts.ClusterStats,
    held: _Held,
    names: Sequence[str],
    *,
    targets: Sequence[transfer.TransferTarget],
    own_clusters: np.ndarray,
    translate_fn: TranslateFn,
    strength_fn: StrengthFn | None,
    condition_fn: ConditionFn | None,
) -> dict:
    """The sections `names` (STRENGTH_CURVE, REFERENCE_GROUPS, COMBINATIONS) of docs/beyond.md.

    Each needs the clustering space rebuilt here (s_src = each input's nearest centroid, and
    reference groups enter that space) and a generator function: strength_fn for the
    curve, condition_fn for groups and combinations; a section says why when it cannot run.
    """
    e = config.eval
    needs = {
        STRENGTH_CURVE: strength_fn,
        REFERENCE_GROUPS: condition_fn,
        COMBINATIONS: condition_fn,
    }
    out = {}
    for name in names:
        if needs[name] is None:
            out[name] = _skipped("evaluating a custom translate_fn: no generator to condition")
        elif not targets:
            out[name] = _skipped(
                f"no attribute's best cluster reaches precision {e.transfer_min_precision}"
            )
    todo = [name for name in names if name not in out]
    if not todo:
        return out
    try:
        source = _source_clusters(config, stats, held.paths, own_clusters)
    except (ValueError, FileNotFoundError) as error:
        reason = f"the clustering space cannot be rebuilt here: {error}"
        return {**out, **{name: _skipped(reason) for name in todo}}
    moved = float(np.mean(source != np.asarray(own_clusters)))
    if STRENGTH_CURVE in todo:
        out[STRENGTH_CURVE] = _strength_curve(config, strength_fn, held, targets, source)
        out[STRENGTH_CURVE]["source_differs_from_assignment"] = moved
    if REFERENCE_GROUPS in todo:
        out[REFERENCE_GROUPS] = _reference_groups(
            config, stats, held, targets, translate_fn, condition_fn
        )
    if COMBINATIONS in todo:
        out[COMBINATIONS] = _combinations(config, stats, held, targets, condition_fn, source)
    return out


def _strength_curve(
    config: Config,
    strength_fn: StrengthFn,
    held: _Held,
    targets: Sequence[transfer.TransferTarget],
    source: np.ndarray,
) -> dict:
    """Transfer, identity and L1 to the input per strength alpha (docs/beyond.md).

    Every held-out image is translated into each transfer attribute's cluster with
    condition s_src + alpha (s_target - s_src), s_src from its nearest centroid
    (`source`, int [N]). alpha = 0 is G(x, s_src), the self-reconstruction: its L1 is the
    generator's reconstruction error; alpha = 1 is the transfer section's translation.
    """
    alphas = sorted(set(float(a) for a in config.eval.strengths))
    n = len(held.x)
    every = np.arange(n)
    progress = _Progress(len(alphas) * len(targets) * n)
    per_alpha = []
    for alpha in alphas:
        rows = []
        for t in targets:
            y = translate_all(
                strength_fn,
                held.x,
                np.full(n, t.cluster),
                batch_size=held.batch_size,
                extra=(np.full(n, alpha, np.float32), source),
            )
            progress.add(n, f"strength {alpha:g} into cluster {t.cluster}")
            rows.append(
                {
                    "attribute": t.attribute,
                    "cluster": t.cluster,
                    **held.measure(t.attribute, y, every),
                }
            )
        per_alpha.append(
            {
                "strength": alpha,
                "mean_rate_lacking": _mean([r["rate_lacking"] for r in rows]),
                "mean_rate_all": _mean([r["rate_all"] for r in rows]),
                "mean_identity_verified": _mean([r.get("identity_verified") for r in rows]),
                "mean_identity_distance": _mean([r.get("identity_mean_distance") for r in rows]),
                "mean_l1_to_input": _mean([r["l1_to_input"] for r in rows]),
                "attributes": rows,
            }
        )
    curve = [p["mean_rate_lacking"] for p in per_alpha]
    known = [v for v in curve if v is not None]
    return {
        "status": "ok",
        "strengths": alphas,
        "eval_images": int(n),
        "targets": [t.attribute for t in targets],
        "source": "nearest centroid of each input (clustering extractor + PCA)",
        "identity_threshold": held.threshold,
        "curve": per_alpha,
        "transfer_monotonic": bool(len(known) == len(curve) and np.all(np.diff(known) >= 0)),
        "baseline_lacking": _mean([r["baseline_lacking"] for r in per_alpha[0]["attributes"]]),
    }


def _condition_table(config: Config, stats: artifacts.ClusterStats) -> np.ndarray:
    """Every cluster's generator condition: float32 [k, C] (`condition_vector`)."""
    from xplore_tf.models.generator import condition_vector

    k = stats.num_clusters
    return np.asarray(
        condition_vector(np.arange(k), stats.centroids, stats.stds, mode=config.model.condition),
        np.float32,
    )


def _translate_conditions(
    condition_fn: ConditionFn, images: np.ndarray, conditions: np.ndarray, batch_size: int
) -> np.ndarray:
    """condition_fn over batches, checked as translate_all checks (conditions [N, C])."""
    return translate_all(
        lambda x, _, c: condition_fn(x, c),
        images,
        np.zeros(len(images), np.int32),
        batch_size=batch_size,
        extra=(np.asarray(conditions, np.float32),),
    )


def _reference_groups(
    config: Config,
    stats: artifacts.ClusterStats,
    held: _Held,
    targets: Sequence[transfer.TransferTarget],
    translate_fn: TranslateFn,
    condition_fn: ConditionFn,
) -> dict:
    """Translation toward a reference group vs toward the group's nearest cluster.

    For each transfer attribute, --reference_group_size held-out images that have it (by
    the labels, drawn with --seed) form a group. Its condition is computed as the exported
    model's `reference_condition` computes it (the clustering space's points of the files,
    then `space.group_statistics_ops` / `group_condition_ops`: a cluster's statistics code).
    Every other held-out image is translated toward the group and toward the group's
    nearest cluster (`distances_to_clusters_ops`); both are judged on that attribute.
    """
    from xplore_tf.clustering import space

    size = config.eval.reference_group_size
    rng = np.random.default_rng(config.seed)
    root = sources.images_dir(config)
    radii = space.cluster_radii(stats.stds)
    n = len(held.x)
    groups = []
    for t in targets:
        j = list(held.attrs).index(t.attribute)
        having = np.flatnonzero(held.labels[:, j])
        if len(having) < size:
            groups.append(
                {
                    "attribute": t.attribute,
                    "status": "skipped",
                    "reason": f"{len(having)} held-out images have it; the group needs {size}",
                }
            )
            continue
        members = np.sort(rng.choice(having, size, replace=False))
        kept, points = space.embed_files(config, stats, root, [held.paths[i] for i in members])
        mean, std = space.group_statistics_ops(points[None])
        condition = np.asarray(space.group_condition_ops(mean, std, mode=config.model.condition))
        nearest, distance, relative = (
            np.asarray(v)[0] for v in space.distances_to_clusters_ops(mean, stats.centroids, radii)
        )
        rows = np.setdiff1d(np.arange(n), members)
        toward_group = _translate_conditions(
            condition_fn, held.x[rows], np.repeat(condition, len(rows), 0), held.batch_size
        )
        toward_nearest = translate_all(
            translate_fn, held.x[rows], np.full(len(rows), int(nearest)), batch_size=held.batch_size
        )
        logging.info(
            "reference group %s: %d images, nearest cluster %d", t.attribute, len(kept), nearest
        )
        groups.append(
            {
                "attribute": t.attribute,
                "status": "ok",
                "group_images": int(len(kept)),
                "inputs": int(len(rows)),
                "attribute_cluster": t.cluster,
                "nearest_cluster": int(nearest),
                "distance": float(distance),
                "relative_distance": float(relative),
                "toward_group": held.measure(t.attribute, toward_group, rows),
                "toward_nearest_cluster": held.measure(t.attribute, toward_nearest, rows),
            }
        )
    done = [g for g in groups if g["status"] == "ok"]
    return {
        "status": "ok" if done else "skipped",
        "reason": "" if done else f"no attribute has {size} held-out images",
        "group_size": size,
        "groups": groups,
        "mean_rate_lacking_group": _mean([g["toward_group"]["rate_lacking"] for g in done]),
        "mean_rate_lacking_nearest": _mean(
            [g["toward_nearest_cluster"]["rate_lacking"] for g in done]
        ),
    }


def _combinations(
    config: Config,
    stats: artifacts.ClusterStats,
    held: _Held,
    targets: Sequence[transfer.TransferTarget],
    condition_fn: ConditionFn,
    source: np.ndarray,
) -> dict:
    """Two attributes at once: condition s_src + (s_a - s_src) + (s_b - s_src) (weights 1, 1:
    `space.blend_conditions`, as the exported `translate_mix`), against each alone.

    Reports, among held-out images lacking both attributes, how often the judge finds both
    in the combined translation, in the translations into a alone and b alone, and in the
    interpolation with weights 0.5, 0.5 ("half each": the midpoint (s_a + s_b) / 2).
    """
    from xplore_tf.clustering import space

    table = _condition_table(config, stats)
    k, std_from = len(table), (stats.dim if config.model.condition == "mean_std" else None)
    cluster_of = {t.attribute: t.cluster for t in targets}
    src = table[source]
    pairs = []
    for pair in config.eval.combinations:
        a, b = pair.split("+")
        missing = [x for x in (a, b) if x not in cluster_of]
        if missing:
            pairs.append(
                {
                    "pair": pair,
                    "status": "skipped",
                    "reason": f"no transfer cluster for {', '.join(missing)} (transfer targets: "
                    f"{', '.join(sorted(cluster_of)) or 'none'})",
                }
            )
            continue
        ja, jb = (list(held.attrs).index(x) for x in (a, b))
        lacking = np.flatnonzero((held.labels[:, ja] == 0) & (held.labels[:, jb] == 0))
        if not len(lacking):
            pairs.append({"pair": pair, "status": "skipped", "reason": "no input lacks both"})
            continue
        both = {}
        for name, weights in (
            ("combined", {a: 1.0, b: 1.0}),
            (f"only {a}", {a: 1.0}),
            (f"only {b}", {b: 1.0}),
            ("half each", {a: 0.5, b: 0.5}),
        ):
            w = np.zeros((len(lacking), k), np.float32)
            for attribute, weight in weights.items():
                w[:, cluster_of[attribute]] = weight
            conditions = np.asarray(
                space.blend_conditions(src[lacking], w, table, std_from=std_from)
            )
            y = _translate_conditions(condition_fn, held.x[lacking], conditions, held.batch_size)
            decided = held.judge(y)
            both[name] = float(np.mean(decided[:, ja] & decided[:, jb]))
            if name == "combined":
                combined = held.measure(a, y, lacking)
        inputs = held.input_decisions[lacking]
        pairs.append(
            {
                "pair": pair,
                "status": "ok",
                "clusters": [cluster_of[a], cluster_of[b]],
                "inputs_lacking_both": int(len(lacking)),
                "both_present": both,
                "baseline_both_present": float(np.mean(inputs[:, ja] & inputs[:, jb])),
                "combined_identity_verified": combined.get("identity_verified"),
                "combined_l1_to_input": combined["l1_to_input"],
            }
        )
    return {"status": "ok", "pairs": pairs}


def _identity_section(
    config: Config,
    discovery: Discovery,
    data: LabelledImages,
    eval_idx: np.ndarray,
    *,
    embedder,
    kind: str,
    emb_eval: np.ndarray,
    x_random: np.ndarray,
    regressor_scores: dict | None,
    identity_into: dict[int, float],
) -> dict:
    e = config.eval
    translation = identity.row_distances(emb_eval, embedder.embed(x_random))
    pair_images, same, diff, pairs_source = _reference_pairs(
        config, discovery, data, eval_idx, kind=kind
    )
    emb_pairs = emb_eval if pair_images is None else embedder.embed(pair_images)
    d_same = identity.row_distances(emb_pairs[same[:, 0]], emb_pairs[same[:, 1]])
    d_diff = identity.row_distances(emb_pairs[diff[:, 0]], emb_pairs[diff[:, 1]])
    threshold, source = None, ""
    if e.identity_threshold > 0:
        threshold, source = e.identity_threshold, "--identity_threshold"
    elif embedder.threshold is not None:
        threshold, source = embedder.threshold, f"{kind} standard threshold"
    elif len(d_same) and len(d_diff):
        threshold, _ = identity.best_threshold(d_same, d_diff)
        source = "best balanced accuracy on the real same/different-identity pairs"
    section = {
        "status": "ok",
        "embedder": kind,
        "threshold": threshold,
        "threshold_source": source,
        "pairs_source": pairs_source,
        "translation": _distance_summary(translation, threshold),
        "same_identity": _distance_summary(d_same, threshold),
        "different_identity": _distance_summary(d_diff, threshold),
        "real_pair_accuracy": (
            float((np.mean(d_same < threshold) + np.mean(d_diff >= threshold)) / 2.0)
            if threshold is not None and len(d_same) and len(d_diff)
            else None
        ),
        "per_cluster_mean_distance": {str(c): v for c, v in sorted(identity_into.items())},
    }
    if len(d_same) and len(d_diff) and np.mean(d_diff) > np.mean(d_same):
        section["relative_distance"] = identity.relative_distance(
            float(np.mean(translation)), float(np.mean(d_same)), float(np.mean(d_diff))
        )
    if not len(d_same) or not len(d_diff):
        section["reference_note"] = (
            "no real same/different-identity pairs (labels without an 'identity' column and "
            "no identity_pairs.csv)"
        )
    if regressor_scores is not None:
        section["regressor"] = regressor_scores
    if kind == "dlib":
        section["faces_detected"] = int(embedder.detected)
        section["faces_seen"] = int(embedder.seen)
    return section


def _cluster_table(
    stats: artifacts.ClusterStats, data: LabelledImages, metrics: dict, names: dict[int, str]
) -> list[dict]:
    """One row per cluster: size, its most frequent attributes, transfer and identity."""
    k = stats.num_clusters
    precision, labelled = transfer.cluster_attribute_precision(data.clusters, data.attributes, k)
    tr = metrics.get("transfer", {})
    by_cluster: dict[int, list[dict]] = {}
    for row in tr.get("attributes", []) if tr.get("status") == "ok" else []:
        by_cluster.setdefault(row["cluster"], []).append(
            {
                "attribute": row["attribute"],
                "rate_lacking": row["rate_lacking"],
                "baseline_lacking": row["baseline_lacking"],
            }
        )
    ident = metrics.get("identity", {})
    per_cluster = ident.get("per_cluster_mean_distance", {}) if ident.get("status") == "ok" else {}
    table = []
    for c in range(k):
        top = np.argsort(-precision[c], kind="stable")[:3] if data.names else []
        table.append(
            {
                "cluster": c,
                "name": names.get(c, ""),
                "size": int(stats.sizes[c]),
                "labelled": int(labelled[c]),
                "top_attributes": [
                    {"attribute": data.names[j], "precision": float(precision[c, j])}
                    for j in top
                    if labelled[c] and precision[c, j] > 0
                ],
                "transfer": by_cluster.get(c, []),
                "identity_distance": per_cluster.get(str(c)),
            }
        )
    return table


# ---------------------------------------------------------------- the printed summary
def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_summary(metrics: dict) -> str:
    """Readable tables of every section (discovery, transfer, identity, realism)."""
    disc = metrics["discovery"]
    rows = [report.AttributeReport(**r) for r in disc["attributes"]]
    lines = [
        f"discovery: {disc['images_matched']} of {disc['images_assigned']} clustered images have "
        f"labels ({metrics['num_clusters']} clusters; best cluster among those >= "
        f"{disc['min_cluster_size']})",
        report.format_report(rows, threshold=disc["precision_threshold"]),
    ]
    if metrics.get("checkpoint"):
        step = f" (step {metrics['step']})" if metrics.get("step") is not None else ""
        lines.append(f"generator: {metrics['checkpoint']}{step}")
    tr = metrics.get("transfer", {})
    if tr.get("status") != "ok":
        lines.append(f"transfer: skipped ({tr.get('reason', '')})")
    else:
        lines.append(
            f"transfer (judge: {tr['judge']}; {tr['eval_images']} held-out images, split "
            f"{tr['split']}; clusters with precision >= {tr['min_precision']}):"
        )
        lines.append(f"  eval images: {tr['eval_source']}")
        header = (
            f"  {'attribute':<20} {'cluster':>7} {'prec':>5} {'judge':>6} {'all':>6} "
            f"{'base':>6} {'lacking':>7} {'base':>6} {'gain':>6}"
        )
        lines += [header, "  " + "-" * (len(header) - 2)]
        for r in tr["attributes"]:
            lines.append(
                f"  {r['attribute']:<20} {r['cluster']:>7d} {r['cluster_precision']:>5.2f} "
                f"{_fmt(r['judge_balanced_accuracy'], '.2f'):>6} {_fmt(r['rate_all']):>6} "
                f"{_fmt(r['baseline_all']):>6} {_fmt(r['rate_lacking']):>7} "
                f"{_fmt(r['baseline_lacking']):>6} {_fmt(r['gain_lacking'], '+.3f'):>6}"
            )
        if not tr["attributes"]:
            lines.append(f"  ({tr.get('reason', 'no targets')})")
        else:
            lines.append(
                f"  mean: transfer among inputs lacking the attribute "
                f"{_fmt(tr['mean_rate_lacking'])} vs baseline {_fmt(tr['mean_baseline_lacking'])}"
            )
        lines.append(
            "  (judge = balanced accuracy on the untranslated held-out images; all/lacking = "
            "rate judged to have the attribute after translation, base = before)"
        )
        lines.extend(_side_effect_lines(tr.get("side_effects")))
    idn = metrics.get("identity", {})
    if idn.get("status") != "ok":
        lines.append(f"identity: skipped ({idn.get('reason', '')})")
    else:
        extra = ""
        if "regressor" in idn:
            extra = f", regressor held-out R^2 {idn['regressor']['r2']:.3f} MAE {idn['regressor']['mae']:.3f}"
        if "faces_detected" in idn:
            extra = f", faces detected {idn['faces_detected']}/{idn['faces_seen']}"
        lines.append(
            f"identity ({idn['embedder']}{extra}; threshold {_fmt(idn['threshold'])}: "
            f"{idn['threshold_source']}):"
        )
        if idn.get("relative_distance") is not None:
            lines.append(
                f"  relative distance {idn['relative_distance']:.3f} (1 = as close as one "
                "person's two images, 0 = as far as two people; threshold-free)"
            )
        for key, label in (
            ("translation", "input vs translation"),
            ("same_identity", "same identity (real)"),
            ("different_identity", "different identity (real)"),
        ):
            s = idn[key]
            lines.append(
                f"  {label:<27} mean distance {_fmt(s['mean_distance'])}  "
                f"verified same {_fmt(s['verification_rate'])}  ({s['pairs']} pairs)"
            )
    sc = metrics.get(STRENGTH_CURVE)
    if sc is not None and sc.get("status") != "ok":
        lines.append(f"strength curve: skipped ({sc.get('reason', '')})")
    elif sc is not None:
        lines.append(
            f"strength curve ({sc['eval_images']} held-out images into {len(sc['targets'])} "
            f"attribute clusters; condition = s_src + alpha (s_target - s_src); baseline "
            f"lacking {_fmt(sc['baseline_lacking'])}; transfer monotonic in alpha: "
            f"{'yes' if sc['transfer_monotonic'] else 'NO'}):"
        )
        header = f"  {'alpha':>6} {'lacking':>8} {'all':>6} {'identity':>9} {'L1 to input':>12}"
        lines += [header, "  " + "-" * (len(header) - 2)]
        for p in sc["curve"]:
            lines.append(
                f"  {p['strength']:>6g} {_fmt(p['mean_rate_lacking']):>8} "
                f"{_fmt(p['mean_rate_all']):>6} {_fmt(p['mean_identity_verified']):>9} "
                f"{_fmt(p['mean_l1_to_input'], '.4f'):>12}"
            )
        lines.append(
            "  (lacking/all = transfer rate among inputs lacking the attribute / all inputs; "
            "identity = verified as the input's person; L1 in [0, 1] per pixel)"
        )
    rg = metrics.get(REFERENCE_GROUPS)
    if rg is not None and rg.get("status") != "ok":
        lines.append(f"reference groups: skipped ({rg.get('reason', '')})")
    elif rg is not None:
        lines.append(
            f"reference groups ({rg['group_size']} held-out images having the attribute; "
            "transfer among the other inputs lacking it, toward the group vs its nearest cluster):"
        )
        for g in rg["groups"]:
            if g["status"] != "ok":
                lines.append(f"  {g['attribute']:<20} skipped ({g['reason']})")
                continue
            lines.append(
                f"  {g['attribute']:<20} group {_fmt(g['toward_group']['rate_lacking'])}  "
                f"nearest cluster {g['nearest_cluster']} "
                f"{_fmt(g['toward_nearest_cluster']['rate_lacking'])}  (relative distance "
                f"{g['relative_distance']:.2f}; identity {_fmt(g['toward_group'].get('identity_verified'))}"
                f" vs {_fmt(g['toward_nearest_cluster'].get('identity_verified'))})"
            )
    cb = metrics.get(COMBINATIONS)
    if cb is not None and cb.get("status") != "ok":
        lines.append(f"combinations: skipped ({cb.get('reason', '')})")
    elif cb is not None:
        lines.append("combinations (both attributes present, among inputs lacking both):")
        for p in cb["pairs"]:
            if p["status"] != "ok":
                lines.append(f"  {p['pair']:<28} skipped ({p['reason']})")
                continue
            alone = "  ".join(
                f"{key} {_fmt(v)}" for key, v in p["both_present"].items() if key != "combined"
            )
            lines.append(
                f"  {p['pair']:<28} combined {_fmt(p['both_present']['combined'])}  {alone}  "
                f"baseline {_fmt(p['baseline_both_present'])}  ({p['inputs_lacking_both']} inputs)"
            )
    re_ = metrics.get("realism", {})
    if re_.get("status") != "ok":
        lines.append(f"realism: skipped ({re_.get('reason', '')})")
    else:
        key = f"fd_{re_['feature_space']}"
        line = (
            f"realism: {key} = {_fmt(re_[key])} (real vs real reference "
            f"{_fmt(re_[key + '_real_reference'])})"
        )
        if re_.get("fid_inception_v3") is not None:
            line += (
                f"; fid_inception_v3 = {_fmt(re_['fid_inception_v3'])} (reference "
                f"{_fmt(re_['fid_inception_v3_real_reference'])})"
            )
        lines.append(line)
        if re_.get("droplets"):
            d = re_["droplets"]
            per = ", ".join(f"{c}: {_fmt(r)}" for c, r in d["per_cluster"].items())
            lines.append(
                f"  droplets (new dark round blobs): {_fmt(d['rate_random'])} of translations "
                f"into random clusters" + (f"; into the transfer clusters {per}" if per else "")
            )
    return "\n".join(lines)


def _side_effect_lines(table: dict | None) -> list[str]:
    """The summary's side-effect lines: the largest other change per target."""
    if not table or not table["largest"]:
        return []
    lines = ["  side effects (the other attribute whose judged rate moves most):"]
    for target, worst in table["largest"].items():
        lines.append(f"    into {target:<28} {worst['attribute']:<20} {worst['rate_change']:+.3f}")
    return lines


__all__ = [
    "ConditionFn",
    "Discovery",
    "GeneratorFns",
    "StrengthFn",
    "TranslateFn",
    "checkpoint_generator_fns",
    "checkpoint_translate_fn",
    "format_summary",
    "run_discovery",
    "run_evaluation",
    "split_eval_train",
    "translate_all",
]
