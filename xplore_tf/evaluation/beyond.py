"""Beyond fixed clusters (docs/guide/beyond_clusters.md): the strength curve (--strengths), reference groups
(--reference_group_size) and combined attributes (--combinations).

Each section conditions G on something other than one cluster's row of the condition table,
so it needs a generator function (strength_fn for the curve, condition_fn for groups and
combinations) and the clustering space rebuilt here (s_src = each input's nearest centroid;
reference groups enter that space). A section says why when it cannot run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
from absl import logging

from xplore_tf.clustering import artifacts
from xplore_tf.config import Config
from xplore_tf.data import sources
from xplore_tf.evaluation import identity, transfer
from xplore_tf.evaluation.generator import (
    ConditionFn,
    Progress,
    StrengthFn,
    TranslateFn,
    translate_all,
)
from xplore_tf.evaluation.results import OK, SKIPPED, Skipped, mean_of

STRENGTH_CURVE = "strength_curve"  # with --strengths (docs/guide/beyond_clusters.md)
REFERENCE_GROUPS = "reference_groups"  # with --reference_group_size
COMBINATIONS = "combinations"  # with --combinations


# ---------------------------------------------------------------- measuring held-out images
@dataclasses.dataclass(frozen=True)
class HeldOutMeasure:
    """Transfer of one attribute, identity and L1 for some held-out images translated."""

    rate_all: float | None
    rate_lacking: float | None
    baseline_lacking: float | None
    inputs_lacking: int
    l1_to_input: float  # mean |translation - input| per pixel, in [0, 1]
    identity_mean_distance: float | None = None  # None: identity not measured
    identity_verified: float | None = None  # None also without a threshold

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        if self.identity_mean_distance is None:
            del out["identity_mean_distance"], out["identity_verified"]
        return out

    @classmethod
    def from_json(cls, d: dict) -> HeldOutMeasure:
        return cls(**d)


@dataclasses.dataclass
class HeldOut:
    """The held-out images and the judges that the sections beyond fixed clusters share."""

    x: np.ndarray  # uint8 [N, S, S, 3]
    paths: list[str]  # relative to the images folder
    labels: np.ndarray  # int8 [N, A]
    attrs: Sequence[str]
    input_decisions: np.ndarray  # bool [N, A]: the judge on the inputs
    judge: transfer.Judge
    embeddings: identity.HeldOutEmbeddings | None  # None: identity not measured
    threshold: float | None
    batch_size: int

    def measure(self, attribute: str, translated: np.ndarray, rows: np.ndarray) -> HeldOutMeasure:
        """Transfer of `attribute` and identity for the held-out images `rows` (int [M])
        translated to `translated` (uint8 [M, S, S, 3])."""
        j = list(self.attrs).index(attribute)
        rates = transfer.transfer_rates(
            input_decisions=self.input_decisions[rows, j],
            translated_decisions=self.judge.decisions(translated)[:, j],
            truth=self.labels[rows, j],
        )
        distance = verified = None
        if self.embeddings is not None:
            distances = self.embeddings.distances(translated, rows)
            distance = float(np.mean(distances))
            if self.threshold is not None:
                verified = identity.verification_rate(distances, self.threshold)
        return HeldOutMeasure(
            rate_all=rates.rate_all,
            rate_lacking=rates.rate_lacking,
            baseline_lacking=rates.baseline_lacking,
            inputs_lacking=rates.inputs_lacking,
            l1_to_input=float(
                np.mean(np.abs(translated.astype(np.float32) - self.x[rows])) / 255.0
            ),
            identity_mean_distance=distance,
            identity_verified=verified,
        )


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


# ---------------------------------------------------------------- the strength curve
@dataclasses.dataclass(frozen=True)
class CurveRow:
    """One transfer target at one strength."""

    attribute: str
    cluster: int
    measure: HeldOutMeasure

    def to_json(self) -> dict:
        return {"attribute": self.attribute, "cluster": self.cluster, **self.measure.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> CurveRow:
        rest = {k: v for k, v in d.items() if k not in ("attribute", "cluster")}
        return cls(d["attribute"], d["cluster"], HeldOutMeasure.from_json(rest))


@dataclasses.dataclass(frozen=True)
class StrengthPoint:
    """Every transfer target at one strength alpha, and their means."""

    strength: float
    attributes: tuple[CurveRow, ...]

    def mean(self, name: str) -> float | None:
        """Mean over the targets of the HeldOutMeasure field `name` (None values left out)."""
        return mean_of([getattr(r.measure, name) for r in self.attributes])

    def to_json(self) -> dict:
        return {
            "strength": self.strength,
            "mean_rate_lacking": self.mean("rate_lacking"),
            "mean_rate_all": self.mean("rate_all"),
            "mean_identity_verified": self.mean("identity_verified"),
            "mean_identity_distance": self.mean("identity_mean_distance"),
            "mean_l1_to_input": self.mean("l1_to_input"),
            "attributes": [r.to_json() for r in self.attributes],
        }

    @classmethod
    def from_json(cls, d: dict) -> StrengthPoint:
        return cls(d["strength"], tuple(CurveRow.from_json(r) for r in d["attributes"]))


@dataclasses.dataclass(frozen=True)
class StrengthCurve:
    """metrics.json's `strength_curve`: transfer, identity and L1 per strength alpha."""

    strengths: tuple[float, ...]  # sorted
    eval_images: int
    targets: tuple[str, ...]
    source: str  # how s_src is found
    identity_threshold: float | None
    curve: tuple[StrengthPoint, ...]  # one per strength
    source_differs_from_assignment: float  # share of inputs whose s_src is another cluster

    status = OK

    @property
    def transfer_monotonic(self) -> bool:
        """Whether the mean transfer among inputs lacking the attribute never drops."""
        curve = [p.mean("rate_lacking") for p in self.curve]
        known = [v for v in curve if v is not None]
        return bool(len(known) == len(curve) and np.all(np.diff(known) >= 0))

    @property
    def baseline_lacking(self) -> float | None:
        """The judge on the untranslated inputs lacking each attribute, mean over targets."""
        return mean_of([r.measure.baseline_lacking for r in self.curve[0].attributes])

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "strengths": list(self.strengths),
            "eval_images": self.eval_images,
            "targets": list(self.targets),
            "source": self.source,
            "identity_threshold": self.identity_threshold,
            "curve": [p.to_json() for p in self.curve],
            "transfer_monotonic": self.transfer_monotonic,
            "baseline_lacking": self.baseline_lacking,
            "source_differs_from_assignment": self.source_differs_from_assignment,
        }

    @classmethod
    def from_json(cls, d: dict) -> StrengthCurve:
        return cls(
            strengths=tuple(d["strengths"]),
            eval_images=d["eval_images"],
            targets=tuple(d["targets"]),
            source=d["source"],
            identity_threshold=d["identity_threshold"],
            curve=tuple(StrengthPoint.from_json(p) for p in d["curve"]),
            source_differs_from_assignment=d["source_differs_from_assignment"],
        )


def strength_curve(
    strengths: Sequence[float],
    strength_fn: StrengthFn,
    held: HeldOut,
    targets: Sequence[transfer.TransferTarget],
    source: np.ndarray,
    *,
    moved: float,
) -> StrengthCurve:
    """Transfer, identity and L1 to the input per strength alpha (docs/guide/beyond_clusters.md).

    Every held-out image is translated into each transfer attribute's cluster with
    condition s_src + alpha (s_target - s_src), s_src from its nearest centroid
    (`source`, int [N]). alpha = 0 is G(x, s_src), the self-reconstruction: its L1 is the
    generator's reconstruction error; alpha = 1 is the transfer section's translation.
    `moved`: the share of inputs whose nearest centroid is not their assigned cluster.
    """
    alphas = sorted(set(float(a) for a in strengths))
    n = len(held.x)
    every = np.arange(n)
    progress = Progress(len(alphas) * len(targets) * n)
    points = []
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
            rows.append(CurveRow(t.attribute, t.cluster, held.measure(t.attribute, y, every)))
        points.append(StrengthPoint(alpha, tuple(rows)))
    return StrengthCurve(
        strengths=tuple(alphas),
        eval_images=int(n),
        targets=tuple(t.attribute for t in targets),
        source="nearest centroid of each input (clustering extractor + PCA)",
        identity_threshold=held.threshold,
        curve=tuple(points),
        source_differs_from_assignment=moved,
    )


# ---------------------------------------------------------------- reference groups
@dataclasses.dataclass(frozen=True)
class SkippedGroup:
    """An attribute with too few held-out images to form its reference group."""

    attribute: str
    reason: str

    status = SKIPPED

    def to_json(self) -> dict:
        return {"attribute": self.attribute, "status": SKIPPED, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class ReferenceGroup:
    """Translation toward one attribute's reference group, toward what it shares
    (`space.shared_conditions` at strength 1) and toward its nearest cluster."""

    attribute: str
    group_images: int
    inputs: int  # held-out images outside the group, translated
    attribute_cluster: int  # the attribute's transfer cluster
    nearest_cluster: int  # the group's nearest cluster
    distance: float  # group mean to that centroid
    relative_distance: float  # that distance over the cluster's radius
    toward_group: HeldOutMeasure
    toward_nearest_cluster: HeldOutMeasure
    toward_shared: HeldOutMeasure | None = None  # None: written before it was measured

    status = OK

    def to_json(self) -> dict:
        out = {"attribute": self.attribute, "status": OK}
        for f in dataclasses.fields(self)[1:]:
            value = getattr(self, f.name)
            out[f.name] = value.to_json() if isinstance(value, HeldOutMeasure) else value
        return out

    @classmethod
    def from_json(cls, d: dict) -> ReferenceGroup | SkippedGroup:
        if d["status"] != OK:
            return SkippedGroup(d["attribute"], d["reason"])
        fields = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        for key in ("toward_group", "toward_nearest_cluster", "toward_shared"):
            if fields.get(key) is not None:
                fields[key] = HeldOutMeasure.from_json(d[key])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class ReferenceGroups:
    """metrics.json's `reference_groups` (skipped when no attribute has a group)."""

    group_size: int  # --reference_group_size
    groups: tuple[ReferenceGroup | SkippedGroup, ...]  # one per transfer target

    @property
    def done(self) -> list[ReferenceGroup]:
        return [g for g in self.groups if g.status == OK]

    @property
    def status(self) -> str:
        return OK if self.done else SKIPPED

    @property
    def reason(self) -> str:
        return "" if self.done else f"no attribute has {self.group_size} held-out images"

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "group_size": self.group_size,
            "groups": [g.to_json() for g in self.groups],
            "mean_rate_lacking_group": mean_of([g.toward_group.rate_lacking for g in self.done]),
            "mean_rate_lacking_nearest": mean_of(
                [g.toward_nearest_cluster.rate_lacking for g in self.done]
            ),
            "mean_rate_lacking_shared": mean_of(
                [g.toward_shared.rate_lacking for g in self.done if g.toward_shared]
            ),
        }

    @classmethod
    def from_json(cls, d: dict) -> ReferenceGroups:
        return cls(d["group_size"], tuple(ReferenceGroup.from_json(g) for g in d["groups"]))


def _reference_group(
    config: Config,
    stats: artifacts.ClusterStats,
    held: HeldOut,
    target: transfer.TransferTarget,
    members: np.ndarray,
    fns: tuple[TranslateFn, ConditionFn],
    source: np.ndarray,
) -> ReferenceGroup:
    """One attribute's group of held-out images `members` (int [G]), measured; `source`
    int [N]: each held-out image's own cluster (s_src)."""
    from xplore_tf.clustering import space

    translate_fn, condition_fn = fns
    radii = space.cluster_radii(stats.stds)
    root = sources.images_dir(config)
    kept, points = space.embed_files(config, stats, root, [held.paths[i] for i in members])
    mean, std = space.group_statistics_ops(points[None])
    condition = np.asarray(space.group_condition_ops(mean, std, mode=config.model.condition))
    nearest, distance, relative = (
        np.asarray(v)[0] for v in space.distances_to_clusters_ops(mean, stats.centroids, radii)
    )
    rows = np.setdiff1d(np.arange(len(held.x)), members)
    toward_group = _translate_conditions(
        condition_fn, held.x[rows], np.repeat(condition, len(rows), 0), held.batch_size
    )
    toward_nearest = translate_all(
        translate_fn, held.x[rows], np.full(len(rows), int(nearest)), batch_size=held.batch_size
    )
    table = _condition_table(config, stats)
    shared = space.shared_conditions(
        table[source[rows]], condition, table, np.ones(len(rows), np.float32), mean_dim=stats.dim
    )
    toward_shared = _translate_conditions(
        condition_fn, held.x[rows], np.asarray(shared), held.batch_size
    )
    logging.info(
        "reference group %s: %d images, nearest cluster %d", target.attribute, len(kept), nearest
    )
    return ReferenceGroup(
        attribute=target.attribute,
        group_images=int(len(kept)),
        inputs=int(len(rows)),
        attribute_cluster=target.cluster,
        nearest_cluster=int(nearest),
        distance=float(distance),
        relative_distance=float(relative),
        toward_group=held.measure(target.attribute, toward_group, rows),
        toward_nearest_cluster=held.measure(target.attribute, toward_nearest, rows),
        toward_shared=held.measure(target.attribute, toward_shared, rows),
    )


def reference_groups(
    config: Config,
    stats: artifacts.ClusterStats,
    held: HeldOut,
    targets: Sequence[transfer.TransferTarget],
    translate_fn: TranslateFn,
    condition_fn: ConditionFn,
    source: np.ndarray,
) -> ReferenceGroups:
    """Translation toward a reference group, toward what it shares, and toward the group's
    nearest cluster.

    For each transfer attribute, --reference_group_size held-out images that have it (by
    the labels, drawn with --seed) form a group. Its condition is computed as the exported
    model's `reference_condition` computes it (the clustering space's points of the files,
    then `space.group_statistics_ops` / `group_condition_ops`: a cluster's statistics code).
    Every other held-out image is translated toward the group, toward what the group
    shares (`space.shared_conditions` at strength 1 from its own cluster, `source` int [N],
    as `translate --reference_edit=shared`) and toward the group's nearest cluster
    (`distances_to_clusters_ops`); all three are judged on that attribute.
    """
    size = config.eval.reference_group_size
    rng = np.random.default_rng(config.seed)
    groups: list[ReferenceGroup | SkippedGroup] = []
    for t in targets:
        j = list(held.attrs).index(t.attribute)
        having = np.flatnonzero(held.labels[:, j])
        if len(having) < size:
            reason = f"{len(having)} held-out images have it; the group needs {size}"
            groups.append(SkippedGroup(t.attribute, reason))
            continue
        members = np.sort(rng.choice(having, size, replace=False))
        fns = (translate_fn, condition_fn)
        groups.append(_reference_group(config, stats, held, t, members, fns, source))
    return ReferenceGroups(size, tuple(groups))


# ---------------------------------------------------------------- combined attributes
@dataclasses.dataclass(frozen=True)
class SkippedPair:
    """A --combinations pair that could not be measured."""

    pair: str
    reason: str

    status = SKIPPED

    def to_json(self) -> dict:
        return {"pair": self.pair, "status": SKIPPED, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Combination:
    """Two attributes at once, among the held-out inputs lacking both."""

    pair: str  # "a+b"
    clusters: tuple[int, int]
    inputs_lacking_both: int
    both_present: dict[str, float]  # "combined", "only a", "only b", "half each" -> rate
    baseline_both_present: float
    combined_identity_verified: float | None
    combined_l1_to_input: float
    # each attribute's rate among the same inputs translated into its cluster alone, and
    # the identity of those translations (attribute -> value)
    alone_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    alone_identity_verified: dict[str, float | None] = dataclasses.field(default_factory=dict)

    status = OK

    @property
    def independent(self) -> float | None:
        """The rate of both if each landed as it does alone, independently: the product of
        `alone_rates` (None for results written before they were measured)."""
        return float(np.prod(list(self.alone_rates.values()))) if self.alone_rates else None

    def to_json(self) -> dict:
        out = {"pair": self.pair, "status": OK}
        for f in dataclasses.fields(self)[1:]:
            out[f.name] = getattr(self, f.name)
        out["clusters"] = list(self.clusters)
        out["independent"] = self.independent
        return out

    @classmethod
    def from_json(cls, d: dict) -> Combination | SkippedPair:
        if d["status"] != OK:
            return SkippedPair(d["pair"], d["reason"])
        fields = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        return cls(**{**fields, "clusters": tuple(d["clusters"])})


@dataclasses.dataclass(frozen=True)
class Combinations:
    """metrics.json's `combinations`: one entry per --combinations pair."""

    pairs: tuple[Combination | SkippedPair, ...]

    status = OK

    def to_json(self) -> dict:
        return {"status": OK, "pairs": [p.to_json() for p in self.pairs]}

    @classmethod
    def from_json(cls, d: dict) -> Combinations:
        return cls(tuple(Combination.from_json(p) for p in d["pairs"]))


def _combination(
    config: Config,
    stats: artifacts.ClusterStats,
    held: HeldOut,
    pair: str,
    cluster_of: dict[str, int],
    condition_fn: ConditionFn,
    source: np.ndarray,
) -> Combination | SkippedPair:
    """One pair "a+b": the judge's rate of both among inputs lacking both, per blend."""
    from xplore_tf.clustering import space

    a, b = pair.split("+")
    missing = [x for x in (a, b) if x not in cluster_of]
    if missing:
        return SkippedPair(
            pair,
            f"no transfer cluster for {', '.join(missing)} (transfer targets: "
            f"{', '.join(sorted(cluster_of)) or 'none'})",
        )
    ja, jb = (list(held.attrs).index(x) for x in (a, b))
    lacking = np.flatnonzero((held.labels[:, ja] == 0) & (held.labels[:, jb] == 0))
    if not len(lacking):
        return SkippedPair(pair, "no input lacks both")
    table = _condition_table(config, stats)
    k, std_from = len(table), (stats.dim if config.model.condition == "mean_std" else None)
    both, alone = {}, {}
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
            space.blend_conditions(table[source][lacking], w, table, std_from=std_from)
        )
        y = _translate_conditions(condition_fn, held.x[lacking], conditions, held.batch_size)
        decided = held.judge.decisions(y)
        both[name] = float(np.mean(decided[:, ja] & decided[:, jb]))
        if name == "combined":
            combined = held.measure(a, y, lacking)
        elif len(weights) == 1:  # one attribute alone
            (attribute,) = weights
            alone[attribute] = held.measure(attribute, y, lacking)
    inputs = held.input_decisions[lacking]
    return Combination(
        pair=pair,
        clusters=(cluster_of[a], cluster_of[b]),
        inputs_lacking_both=int(len(lacking)),
        both_present=both,
        baseline_both_present=float(np.mean(inputs[:, ja] & inputs[:, jb])),
        combined_identity_verified=combined.identity_verified,
        combined_l1_to_input=combined.l1_to_input,
        alone_rates={x: m.rate_all for x, m in alone.items()},
        alone_identity_verified={x: m.identity_verified for x, m in alone.items()},
    )


def combinations(
    config: Config,
    stats: artifacts.ClusterStats,
    held: HeldOut,
    targets: Sequence[transfer.TransferTarget],
    condition_fn: ConditionFn,
    source: np.ndarray,
) -> Combinations:
    """Two attributes at once: condition s_src + (s_a - s_src) + (s_b - s_src) (weights 1, 1:
    `space.blend_conditions`, as the exported `translate_mix`), against each alone.

    Reports, among held-out images lacking both attributes, how often the judge finds both
    in the combined translation, in the translations into a alone and b alone, and in the
    interpolation with weights 0.5, 0.5 ("half each": the midpoint (s_a + s_b) / 2); and
    each attribute's own rate and identity when translated alone, whose product is what the
    combination would reach if both landed independently (`Combination.independent`).
    """
    cluster_of = {t.attribute: t.cluster for t in targets}
    pairs = config.eval.combinations
    results = []
    for i, pair in enumerate(pairs, start=1):
        started = time.monotonic()
        logging.info("combination %d/%d %s: starting", i, len(pairs), pair)
        result = _combination(config, stats, held, pair, cluster_of, condition_fn, source)
        done = (
            f"skipped ({result.reason})"
            if isinstance(result, SkippedPair)
            else f"both present {result.both_present['combined']:.3f} of {result.inputs_lacking_both}"
        )
        logging.info("combination %s: %s, %.0f s", pair, done, time.monotonic() - started)
        results.append(result)
    return Combinations(tuple(results))


# ---------------------------------------------------------------- all three
BeyondResult = StrengthCurve | ReferenceGroups | Combinations | Skipped


def beyond_sections(
    config: Config,
    stats: artifacts.ClusterStats,
    held: HeldOut,
    names: Sequence[str],
    *,
    targets: Sequence[transfer.TransferTarget],
    own_clusters: np.ndarray,
    translate_fn: TranslateFn,
    strength_fn: StrengthFn | None,
    condition_fn: ConditionFn | None,
) -> dict[str, BeyondResult]:
    """The sections `names` (STRENGTH_CURVE, REFERENCE_GROUPS, COMBINATIONS), each measured
    or `Skipped` with its reason; `own_clusters` int [N]: the held-out images' assignments."""
    needs = {
        STRENGTH_CURVE: strength_fn,
        REFERENCE_GROUPS: condition_fn,
        COMBINATIONS: condition_fn,
    }
    out: dict[str, BeyondResult] = {}
    for name in names:
        if needs[name] is None:
            out[name] = Skipped("evaluating a custom translate_fn: no generator to condition")
        elif not targets:
            out[name] = Skipped(
                f"no attribute's best cluster reaches precision {config.eval.transfer_min_precision}"
            )
    todo = [name for name in names if name not in out]
    if not todo:
        return out
    try:
        source = _source_clusters(config, stats, held.paths, own_clusters)
    except (ValueError, FileNotFoundError) as error:
        reason = f"the clustering space cannot be rebuilt here: {error}"
        return {**out, **{name: Skipped(reason) for name in todo}}
    if STRENGTH_CURVE in todo:
        moved = float(np.mean(source != np.asarray(own_clusters)))
        out[STRENGTH_CURVE] = strength_curve(
            config.eval.strengths, strength_fn, held, targets, source, moved=moved
        )
    if REFERENCE_GROUPS in todo:
        out[REFERENCE_GROUPS] = reference_groups(
            config, stats, held, targets, translate_fn, condition_fn, source
        )
    if COMBINATIONS in todo:
        out[COMBINATIONS] = combinations(config, stats, held, targets, condition_fn, source)
    return out


__all__ = [
    "COMBINATIONS",
    "REFERENCE_GROUPS",
    "STRENGTH_CURVE",
    "Combination",
    "Combinations",
    "CurveRow",
    "HeldOut",
    "HeldOutMeasure",
    "ReferenceGroup",
    "ReferenceGroups",
    "SkippedGroup",
    "SkippedPair",
    "StrengthCurve",
    "StrengthPoint",
    "beyond_sections",
    "combinations",
    "reference_groups",
    "strength_curve",
]
