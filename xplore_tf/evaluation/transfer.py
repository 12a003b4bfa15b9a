"""Attribute transfer: does an image translated into a cluster show the cluster's attribute?

A cluster whose members mostly share a known attribute value (precision >=
`--transfer_min_precision`, e.g. 0.9 of its members are blond) is the generator's way of
asking for that value. The judge must not be part of the generator (D's cluster head would
grade its own homework), so it is either

* a probe: one logistic regression per attribute on the clustering extractor's features of
  real labelled images (`fit_logistic_probe`), held-out accuracy reported, or
* a user's Keras model with one sigmoid per attribute (`load_attribute_classifier`).

Transfer is a change, so every rate comes with the same judge's rate on the untranslated
inputs (the baseline), both over all inputs and over the inputs that truly lack the value.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize, special

from xplore_tf.clustering.report import AttributeReport
from xplore_tf.evaluation import side_effects as side_effects_lib
from xplore_tf.evaluation.results import mean_of

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


# ---------------------------------------------------------------- the logistic probe
@dataclasses.dataclass(frozen=True)
class LogisticProbe:
    """Independent logistic regressions [D] -> [A] on standardised, PCA-projected features."""

    attributes: tuple[str, ...]
    mean: np.ndarray  # [D] feature mean of the training set
    scale: np.ndarray  # [D] feature std of the training set (1 where constant)
    components: np.ndarray  # [D, P] principal directions of the standardised features
    weights: np.ndarray  # [P, A]
    bias: np.ndarray  # [A]
    l2: np.ndarray  # [A] chosen L2 strength per attribute

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float64) - self.mean) / self.scale
        return (x @ self.components) @ self.weights + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """P(attribute) [N, A] for features [N, D]."""
        return special.expit(self.logits(features))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """0/1 decisions [N, A] at probability 0.5."""
        return (self.logits(features) >= 0.0).astype(np.int8)


def _class_weights(labels: np.ndarray, balanced: bool) -> np.ndarray:
    """[N, A] sample weights; balanced = each present class carries half the total weight."""
    y = labels.astype(np.float64)
    if not balanced:
        return np.ones_like(y)
    pos = y.mean(axis=0)
    both = (pos > 0) & (pos < 1)
    w_pos = np.where(both, 0.5 / np.where(both, pos, 1.0), 1.0)
    w_neg = np.where(both, 0.5 / np.where(both, 1.0 - pos, 1.0), 1.0)
    return y * w_pos + (1.0 - y) * w_neg


def _weighted_log_loss(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-attribute weighted mean binary cross-entropy [A]."""
    loss = np.where(labels > 0, np.logaddexp(0.0, -logits), np.logaddexp(0.0, logits))
    return (weights * loss).sum(axis=0) / np.maximum(weights.sum(axis=0), 1e-12)


def _fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    l2: np.ndarray,
    *,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    max_iter: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimises sum_a [weighted mean log-loss_a + l2_a/2 ||w_a||^2] with L-BFGS.

    The objective is separable across attributes, so one joint solve fits all A probes.
    x [N, D] (standardised), y and weights [N, A], l2 [A] -> (W [D, A], b [A]); `init`
    warm-starts from a previous (W, b).
    """
    n, d = x.shape
    a = y.shape[1]
    norm = weights / np.maximum(weights.sum(axis=0, keepdims=True), 1e-12)

    def objective(theta):
        w = theta[: d * a].reshape(d, a)
        b = theta[d * a :]
        z = x @ w + b
        loss = np.where(y > 0, np.logaddexp(0.0, -z), np.logaddexp(0.0, z))
        value = float((norm * loss).sum() + 0.5 * (l2 * (w * w).sum(axis=0)).sum())
        residual = norm * (special.expit(z) - y)  # d loss / d z
        grad_w = x.T @ residual + l2 * w
        grad_b = residual.sum(axis=0)
        return value, np.concatenate([grad_w.ravel(), grad_b])

    theta0 = np.zeros(d * a + a) if init is None else np.concatenate([init[0].ravel(), init[1]])
    result = optimize.minimize(
        objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    theta = result.x
    return theta[: d * a].reshape(d, a), theta[d * a :]


def fit_logistic_probe(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    attributes: Sequence[str],
    l2_grid: Sequence[float] = L2_GRID,
    validation_fraction: float = 0.25,
    balanced: bool = True,
    max_components: int = 256,
    seed: int = 0,
) -> LogisticProbe:
    """One logistic regression per attribute; L2 chosen per attribute on a validation split.

    features [N, D]; labels [N, A] of 0/1. Features are standardised and projected on
    their first `max_components` principal directions (at most N - 1 carry information),
    which keeps the fit fast and drops only the noisiest directions. Each attribute's classes
    are weighted equally (`balanced`), so a rare attribute (2% bald) is not simply predicted
    absent: the decision at 0.5 means "looks more like the positives than the negatives".
    The L2 strength with the lowest weighted validation log-loss is kept, then the probe is
    refit on all of N.
    """
    x_all = np.asarray(features, np.float64)
    y_all = np.asarray(labels).astype(np.float64)
    if x_all.ndim != 2 or y_all.ndim != 2 or len(x_all) != len(y_all):
        raise ValueError(
            f"features [N, D] and labels [N, A] expected, got {x_all.shape}, {y_all.shape}"
        )
    if y_all.shape[1] != len(attributes):
        raise ValueError(f"labels have {y_all.shape[1]} columns for {len(attributes)} attributes")
    if len(x_all) < 4:
        raise ValueError(f"need at least 4 labelled images to train a probe, got {len(x_all)}")
    mean = x_all.mean(axis=0)
    scale = x_all.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    x_all = (x_all - mean) / scale
    _, singular, vt = np.linalg.svd(x_all, full_matrices=False)
    keep = int(min(max_components, max(1, (singular > 1e-8 * singular[0]).sum())))
    components = vt[:keep].T
    x_all = x_all @ components
    a = y_all.shape[1]

    order = np.random.default_rng(seed).permutation(len(x_all))
    n_val = max(1, int(round(validation_fraction * len(x_all))))
    val, train = order[:n_val], order[n_val:]
    w_train = _class_weights(y_all[train], balanced)
    w_val = _class_weights(y_all[val], balanced)
    best_loss = np.full(a, np.inf)
    best_l2 = np.full(a, float(max(l2_grid)))
    best_w, best_b = np.zeros((x_all.shape[1], a)), np.zeros(a)
    previous = None
    for l2 in sorted(l2_grid, reverse=True):  # strong to weak, each warm-started
        w, b = _fit_logistic(
            x_all[train], y_all[train], w_train, np.full(a, float(l2)), init=previous
        )
        previous = (w, b)
        loss = _weighted_log_loss(x_all[val] @ w + b, y_all[val], w_val)
        better = loss < best_loss - 1e-12
        best_loss = np.where(better, loss, best_loss)
        best_l2 = np.where(better, float(l2), best_l2)
        best_w[:, better], best_b[better] = w[:, better], b[better]
    w, b = _fit_logistic(
        x_all, y_all, _class_weights(y_all, balanced), best_l2, init=(best_w, best_b)
    )
    return LogisticProbe(tuple(attributes), mean, scale, components, w, b, best_l2)


# ---------------------------------------------------------------- a user's classifier
def load_attribute_classifier(
    path: str, attributes: Sequence[str], *, batch_size: int = 32
) -> Callable[[np.ndarray], np.ndarray]:
    """A Keras model file as a judge: uint8 images [N, S, S, 3] -> P(attribute) [N, A].

    The model takes float32 RGB in [0, 255] [N, H, W, 3] at its own input size (images are
    resized to it) and outputs one sigmoid per attribute, in `--attributes` order.
    """
    import keras
    import tensorflow as tf

    if not os.path.isfile(path):
        raise FileNotFoundError(f"--attribute_classifier: {path!r} does not exist")
    model = keras.saving.load_model(path, compile=False)
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"--attribute_classifier: {path} takes {shape}, expected [N, H, W, 3]")
    size = (shape[1], shape[2])
    outputs = model.outputs[0].shape
    if outputs[-1] != len(attributes):
        raise ValueError(
            f"--attribute_classifier: {path} has {outputs[-1]} outputs but --attributes names "
            f"{len(attributes)} ({', '.join(attributes)}); outputs must follow that order"
        )

    def predict(images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            x = tf.cast(images[i : i + batch_size], tf.float32)
            if None not in size and tuple(x.shape[1:3]) != size:
                x = tf.clip_by_value(tf.image.resize(x, size, antialias=True), 0.0, 255.0)
            out.append(np.asarray(model(x, training=False), np.float64))
        probs = np.concatenate(out) if out else np.zeros((0, len(attributes)))
        if probs.size and (probs.min() < 0.0 or probs.max() > 1.0):
            raise ValueError(
                f"--attribute_classifier: {path} outputs values outside [0, 1]; "
                "expected a sigmoid per attribute"
            )
        return probs

    return predict


# ---------------------------------------------------------------- metrics
def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of equal 0/1 decisions."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    return float(np.mean(predicted == truth)) if len(truth) else float("nan")


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the true-positive and true-negative rates (of the classes present)."""
    predicted, truth = np.asarray(predicted).astype(bool), np.asarray(truth).astype(bool)
    rates = [
        float(np.mean(predicted[truth == c] == c)) for c in (True, False) if (truth == c).any()
    ]
    return float(np.mean(rates)) if rates else float("nan")


def _rate(decisions: np.ndarray, mask: np.ndarray) -> float | None:
    return float(np.mean(decisions[mask])) if mask.any() else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclasses.dataclass(frozen=True)
class TransferRates:
    """How often the judge sees the attribute, before and after translation."""

    inputs: int  # eval inputs translated
    inputs_lacking: int  # of which truly lack the attribute (labels)
    rate_all: float | None  # judge says "has it" on translations, all inputs
    baseline_all: float | None  # ... on the untranslated inputs
    rate_lacking: float | None  # on translations of inputs lacking it: the real transfer
    baseline_lacking: float | None  # on those inputs untranslated (the judge's false positives)
    gain_all: float | None  # rate_all - baseline_all
    gain_lacking: float | None  # rate_lacking - baseline_lacking


def transfer_rates(
    *, input_decisions: np.ndarray, translated_decisions: np.ndarray, truth: np.ndarray
) -> TransferRates:
    """Rates from 0/1 judge decisions [N] on inputs and on their translations, labels [N]."""
    inputs = np.asarray(input_decisions).astype(bool)
    translated = np.asarray(translated_decisions).astype(bool)
    truth = np.asarray(truth).astype(bool)
    if not inputs.shape == translated.shape == truth.shape:
        raise ValueError(f"shapes differ: {inputs.shape}, {translated.shape}, {truth.shape}")
    every, lacking = np.ones_like(truth), ~truth
    rate_all, base_all = _rate(translated, every), _rate(inputs, every)
    rate_lack, base_lack = _rate(translated, lacking), _rate(inputs, lacking)
    return TransferRates(
        inputs=int(len(truth)),
        inputs_lacking=int(lacking.sum()),
        rate_all=rate_all,
        baseline_all=base_all,
        rate_lacking=rate_lack,
        baseline_lacking=base_lack,
        gain_all=_diff(rate_all, base_all),
        gain_lacking=_diff(rate_lack, base_lack),
    )


@dataclasses.dataclass(frozen=True)
class TransferTarget:
    """An attribute and the cluster that clearly stands for it."""

    attribute: str
    cluster: int
    precision: float  # fraction of the cluster's labelled members having the attribute
    size: int


def transfer_targets(
    rows: Sequence[AttributeReport], *, min_precision: float
) -> list[TransferTarget]:
    """Each attribute's best cluster (from the discovery report) when its precision passes."""
    return [
        TransferTarget(r.attribute, r.best_cluster, r.best_precision, r.best_size)
        for r in rows
        if r.best_cluster >= 0 and r.best_precision >= min_precision
    ]


def cluster_attribute_precision(
    clusters: np.ndarray, labels: np.ndarray, num_clusters: int
) -> tuple[np.ndarray, np.ndarray]:
    """(precision [k, A]: fraction of each cluster's members with each attribute, sizes [k])."""
    clusters = np.asarray(clusters, np.int64)
    labels = np.asarray(labels, np.float64).reshape(len(clusters), -1)
    sizes = np.bincount(clusters, minlength=num_clusters)[:num_clusters]
    hits = np.zeros((num_clusters, labels.shape[1]))
    np.add.at(hits, clusters, labels)
    return hits / np.maximum(sizes, 1)[:, None], sizes


# ---------------------------------------------------------------- the judge
@dataclasses.dataclass(frozen=True)
class Judge:
    """Decides which attributes images show: a user's Keras classifier on the images, or a
    logistic probe on features of them (`features`: the clustering extractor's, HOG, dlib's
    face descriptors; None for Keras)."""

    name: str
    predict_proba: Callable[[np.ndarray], np.ndarray]  # images or features -> [N, A]
    features: Callable[[np.ndarray], np.ndarray] | None = None  # uint8 images -> [N, D]

    def decisions(self, images: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """bool [N, A] for uint8 images [N, S, S, 3]; `features` [N, D] when already known."""
        if self.features is None:
            return self.predict_proba(images) >= 0.5
        if features is None:
            features = self.features(images)
        return self.predict_proba(features) >= 0.5


def build_judge(
    attributes: Sequence[str],
    *,
    classifier: str,
    batch_size: int,
    features: Callable[[np.ndarray], np.ndarray],
    feature_space: str,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    seed: int,
) -> Judge:
    """The judge of transfer: --attribute_classifier when given, else a logistic probe fit on
    the training split (`train_features` [M, D], `train_labels` [M, A]). Raises ValueError
    with fewer than 4 training images for the probe."""
    if classifier:
        model = load_attribute_classifier(classifier, attributes, batch_size=batch_size)
        return Judge(f"keras:{classifier}", model)
    count = len(train_labels)
    if count < 4:
        raise ValueError(f"only {count} labelled images left to train the probe")
    probe = fit_logistic_probe(train_features, train_labels, attributes=attributes, seed=seed)
    name = f"logistic probe on {feature_space} features ({count} images)"
    return Judge(name, probe.predict_proba, features)


# ---------------------------------------------------------------- the transfer section
@dataclasses.dataclass(frozen=True)
class JudgeQuality:
    """The judge on the untranslated held-out images, against their labels."""

    accuracy: float
    balanced_accuracy: float
    positives: int


def judge_quality(
    decisions: np.ndarray, labels: np.ndarray, attributes: Sequence[str]
) -> dict[str, JudgeQuality]:
    """{attribute: quality} from decisions bool [N, A] and labels [N, A]."""
    return {
        a: JudgeQuality(
            accuracy=accuracy(decisions[:, j], labels[:, j]),
            balanced_accuracy=balanced_accuracy(decisions[:, j], labels[:, j]),
            positives=int(labels[:, j].sum()),
        )
        for j, a in enumerate(attributes)
    }


@dataclasses.dataclass(frozen=True)
class AttributeTransfer:
    """One transfer target: its cluster, how well the judge sees it, and the rates."""

    attribute: str
    cluster: int
    cluster_precision: float
    cluster_size: int
    judge_accuracy: float
    judge_balanced_accuracy: float
    rates: TransferRates

    def to_json(self) -> dict:
        head = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[:-1]}
        return {**head, **dataclasses.asdict(self.rates)}

    @classmethod
    def from_json(cls, d: dict) -> AttributeTransfer:
        rates = TransferRates(**{f.name: d[f.name] for f in dataclasses.fields(TransferRates)})
        head = {f.name: d[f.name] for f in dataclasses.fields(cls)[:-1]}
        return cls(**head, rates=rates)


@dataclasses.dataclass(frozen=True)
class SecondJudge:
    """The same translations judged by another judge than the main one (`edges.py`,
    `face_judge.py`): its rates per target and side effects, or why it is missing."""

    title: str  # "edge judge"
    role: str  # what it sees that the main judge does not
    name: str  # the judge's name, or why there is none ("skipped: ...")
    attributes: tuple[AttributeTransfer, ...] = ()
    side_effects: side_effects_lib.SideEffects | None = None

    def to_json(self) -> dict:
        return {
            "title": self.title,
            "role": self.role,
            "name": self.name,
            "attributes": [r.to_json() for r in self.attributes],
            "side_effects": self.side_effects.to_json() if self.side_effects else None,
        }

    @classmethod
    def from_json(cls, d: dict) -> SecondJudge:
        table = d["side_effects"]
        return cls(
            d["title"],
            d["role"],
            d["name"],
            tuple(AttributeTransfer.from_json(r) for r in d["attributes"]),
            side_effects_lib.SideEffects.from_json(table) if table else None,
        )


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """metrics.json's `transfer`: held-out images translated into each target's cluster."""

    judge: str  # the judge's name
    min_precision: float  # --transfer_min_precision
    eval_images: int
    train_images: int
    split: str  # "by identity" or "by image"
    eval_source: str  # where the eval images come from
    eval_unseen_by_generator: bool  # --holdout at training time
    attributes: tuple[AttributeTransfer, ...]
    judge_quality: dict[str, JudgeQuality]
    side_effects: side_effects_lib.SideEffects
    # Other judges of the same translations by name ("edges", "face").
    second_judges: dict[str, SecondJudge] = dataclasses.field(default_factory=dict)

    status = "ok"

    def _mean(self, rate: str) -> float | None:
        return mean_of([getattr(r.rates, rate) for r in self.attributes])

    @property
    def mean_rate_lacking(self) -> float | None:
        return self._mean("rate_lacking")

    @property
    def mean_baseline_lacking(self) -> float | None:
        return self._mean("baseline_lacking")

    @property
    def reason(self) -> str:
        """Why there are no targets ("" when there are)."""
        if self.attributes:
            return ""
        return f"no attribute's best cluster reaches precision {self.min_precision}"

    def to_json(self) -> dict:
        out = {
            "status": self.status,
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)[:7]},
            "attributes": [r.to_json() for r in self.attributes],
            **{f"mean_{k}": self._mean(k) for k in _MEAN_RATES},
            "judge_quality": {a: dataclasses.asdict(q) for a, q in self.judge_quality.items()},
            "side_effects": self.side_effects.to_json(),
            "second_judges": {k: j.to_json() for k, j in self.second_judges.items()},
        }
        if not self.attributes:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_json(cls, d: dict) -> TransferResult:
        return cls(
            **{f.name: d[f.name] for f in dataclasses.fields(cls)[:7]},
            attributes=tuple(AttributeTransfer.from_json(r) for r in d["attributes"]),
            judge_quality={a: JudgeQuality(**q) for a, q in d["judge_quality"].items()},
            side_effects=side_effects_lib.SideEffects.from_json(d["side_effects"]),
            second_judges={k: SecondJudge.from_json(j) for k, j in d["second_judges"].items()},
        )


_MEAN_RATES = ("rate_all", "baseline_all", "rate_lacking", "baseline_lacking", "gain_lacking")


def attribute_transfers(
    targets: Sequence[TransferTarget],
    attributes: Sequence[str],
    *,
    input_decisions: np.ndarray,
    decisions_into: dict[int, np.ndarray],
    labels: np.ndarray,
    quality: dict[str, JudgeQuality],
) -> tuple[AttributeTransfer, ...]:
    """Rates of each target: input decisions bool [N, A], {cluster: bool [N, A]} after
    translation into it, labels [N, A] (attribute order)."""
    rows = []
    for t in targets:
        j = list(attributes).index(t.attribute)
        rates = transfer_rates(
            input_decisions=input_decisions[:, j],
            translated_decisions=decisions_into[t.cluster][:, j],
            truth=labels[:, j],
        )
        q = quality[t.attribute]
        rows.append(
            AttributeTransfer(
                t.attribute, t.cluster, t.precision, t.size, q.accuracy, q.balanced_accuracy, rates
            )
        )
    return tuple(rows)


def target_side_effects(
    targets: Sequence[TransferTarget],
    attributes: Sequence[str],
    input_decisions: np.ndarray,
    decisions_into: dict[int, np.ndarray],
    floor: np.ndarray | None = None,
    among: Sequence[str] = (),
) -> side_effects_lib.SideEffects:
    """Every attribute's judged change under each target's translation (`side_effects`);
    `floor`: decisions on the inputs re-rendered into their own clusters; `among`: the
    attributes the largest side effect is chosen from (() = all)."""
    after = {f"{t.attribute} (cluster {t.cluster})": decisions_into[t.cluster] for t in targets}
    return side_effects_lib.side_effects(
        input_decisions, after, list(attributes), floor=floor, among=among
    )


__all__ = [
    "AttributeTransfer",
    "Judge",
    "JudgeQuality",
    "LogisticProbe",
    "TransferRates",
    "SecondJudge",
    "TransferResult",
    "TransferTarget",
    "accuracy",
    "attribute_transfers",
    "balanced_accuracy",
    "build_judge",
    "cluster_attribute_precision",
    "fit_logistic_probe",
    "judge_quality",
    "load_attribute_classifier",
    "target_side_effects",
    "transfer_rates",
    "transfer_targets",
]
