"""Identity preservation: is the translated face still the same person?

An identity embedder maps images to vectors whose L2 distance is small for one person and
large for two. The distance between an input and its translation is read against two real
references: two images of one identity and two images of different identities. A
verification threshold turns distances into "same person" decisions.

Embedders:

* `GeometryRegressor` (synthetic faces): a small CNN regressing the six normalised identity
  geometry values of labels.csv (face width/height, eye spacing/height, nose length, mouth
  width), trained on labelled real images; the embedding is the predicted geometry. It has
  no standard threshold: the one with the best accuracy on real pairs is used.
* `DlibFaceEmbedder` (real faces): dlib's 128-d ResNet face descriptor (`pip install
  "xplore_tf[eval]"`: dlib-bin + face-recognition-models, whose wheel ships the model
  files), with dlib's usual threshold 0.6.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import warnings
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from xplore_tf.data.synthetic import IDENTITY_FIELDS

GEOMETRY_INPUT_SIZE = 64
DLIB_THRESHOLD = 0.6  # dlib's documented same-person threshold for its face descriptor


class IdentityEmbedder(Protocol):
    name: str
    threshold: float | None  # the embedder's standard threshold, None = fit on real pairs

    def embed(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, S, S, 3] -> float [N, D]."""


# ---------------------------------------------------------------- geometry regressor
def build_geometry_cnn(input_size: int = GEOMETRY_INPUT_SIZE):
    """[N, S, S, 3] in [-1, 1] -> [N, 6] geometry minus 0.5. Flattened (not pooled) features
    keep where things are, which is what geometry is about."""
    import keras

    layers = keras.layers
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(len(IDENTITY_FIELDS), name="geometry")(x)
    return keras.Model(inputs, outputs, name="geometry_regressor")


def _to_regressor_input(images: np.ndarray, size: int):
    import tensorflow as tf

    x = tf.cast(np.asarray(images), tf.float32)
    if x.shape[1] != size or x.shape[2] != size:
        x = tf.clip_by_value(tf.image.resize(x, (size, size), antialias=True), 0.0, 255.0)
    return x / 127.5 - 1.0


@dataclasses.dataclass
class GeometryRegressor:
    """Predicted identity geometry [N, 6] (each in ~[0, 1]) as the identity embedding.

    With several models (an ensemble of independently seeded CNNs) the embedding is their
    mean prediction: one CNN's error depends on its seed enough to move the verification rate
    of one generator by 0.2 between seeds (docs/experiments/2026-12-02-identity.md); the mean of five is steadier.
    """

    models: list  # keras.Model each
    input_size: int = GEOMETRY_INPUT_SIZE
    name: str = "geometry"
    threshold: float | None = None

    def embed(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        if not len(images):
            return np.zeros((0, len(IDENTITY_FIELDS)))
        total = 0.0
        for model in self.models:
            total += np.concatenate(
                [
                    np.asarray(
                        model(_to_regressor_input(images[i : i + batch_size], self.input_size)),
                        np.float64,
                    )
                    for i in range(0, len(images), batch_size)
                ]
            )
        return total / len(self.models) + 0.5


def fit_geometry_regressor(
    images: np.ndarray,
    geometry: np.ndarray,
    *,
    epochs: int = 30,
    batch_size: int = 32,
    seed: int = 0,
    members: int = 1,
    input_size: int = GEOMETRY_INPUT_SIZE,
) -> GeometryRegressor:
    """Trains `members` CNNs (seeds seed*1000 + i; MSE, Adam) on uint8 images [N, S, S, 3] and
    geometry [N, 6] in [0, 1]; the returned regressor averages their predictions.

    Raises ValueError when the shapes disagree or members < 1.
    """
    import keras

    geometry = np.asarray(geometry, np.float32)
    if geometry.shape != (len(images), len(IDENTITY_FIELDS)):
        raise ValueError(
            f"geometry must be [{len(images)}, {len(IDENTITY_FIELDS)}], got {geometry.shape}"
        )
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    x = np.asarray(_to_regressor_input(images, input_size))
    models = []
    for i in range(members):
        # members=1 keeps the single regressor of earlier reports (seed `seed`).
        keras.utils.set_random_seed(seed if members == 1 else seed * 1000 + i)
        model = build_geometry_cnn(input_size)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        model.fit(x, geometry - 0.5, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
        models.append(model)
    return GeometryRegressor(models, input_size)


def regression_scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Held-out quality of a geometry regressor: R^2 per field and mean, mean absolute error."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    residual = ((predicted - truth) ** 2).sum(axis=0)
    total = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1.0 - residual / np.maximum(total, 1e-12)
    return {
        "r2": float(r2.mean()),
        "r2_per_field": {f: float(v) for f, v in zip(IDENTITY_FIELDS, r2, strict=True)},
        "mae": float(np.abs(predicted - truth).mean()),
    }


# ---------------------------------------------------------------- dlib face descriptor
def dlib_unavailable_reason() -> str | None:
    """None when dlib and its model files import, else why not (for the report)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
            import dlib  # noqa: F401
            import face_recognition_models  # noqa: F401
    except ImportError as e:
        return (
            f"dlib face descriptor unavailable ({e}); install the optional extra: "
            'pip install "xplore_tf[eval]" (dlib-bin, face-recognition-models)'
        )
    return None


class DlibFaceEmbedder:
    """dlib's 128-d face descriptor (ResNet, LFW 99.38%) of the most prominent face.

    The face is found with dlib's HOG frontal detector (one 2x upsampling, so 64 px faces
    are found); when none is found the whole image is used as the face box, which suits
    aligned crops. `detected` counts the images where a face was found.
    """

    name = "dlib"
    threshold = DLIB_THRESHOLD

    def __init__(self, *, upsample: int = 1):
        reason = dlib_unavailable_reason()
        if reason:
            raise ImportError(reason)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import dlib
            import face_recognition_models as models

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._descriptor = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self.upsample = upsample
        self.detected = 0
        self.seen = 0

    def embed(self, images: np.ndarray) -> np.ndarray:
        out = np.zeros((len(images), 128))
        for i, image in enumerate(np.asarray(images, np.uint8)):
            image = np.ascontiguousarray(image)
            h, w = image.shape[:2]
            faces = self._detector(image, self.upsample)
            if len(faces):
                box = max(faces, key=lambda r: r.area())
                self.detected += 1
            else:
                box = self._dlib.rectangle(0, 0, w - 1, h - 1)
            self.seen += 1
            shape = self._shape(image, box)
            out[i] = np.asarray(self._descriptor.compute_face_descriptor(image, shape))
        return out


# ---------------------------------------------------------------- distances and verification
def row_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distance between matching rows of a and b [N, D] -> [N]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"embeddings differ in shape: {a.shape} vs {b.shape}")
    return np.sqrt(((a - b) ** 2).sum(axis=-1))


def verification_rate(distances: np.ndarray, threshold: float) -> float:
    """Fraction of pairs judged the same person (distance below the threshold)."""
    distances = np.asarray(distances)
    return float(np.mean(distances < threshold)) if len(distances) else float("nan")


def relative_distance(translation: float, same: float, different: float) -> float:
    """Where the mean input-translation distance lies between the real references:
    (different - translation) / (different - same) for mean distances; 1 = as close as two
    images of one person, 0 = as far as two different people (may leave [0, 1]).

    Threshold-free, so steadier than a verification rate: the best-accuracy threshold is
    decided by the few real pairs in the tails, and one generator's rate moved 0.68 -> 0.77
    with the judge's seed while this moved 0.764 -> 0.781 (docs/experiments/2026-12-02-identity.md).
    Raises ValueError when the references do not separate (different <= same).
    """
    if not different > same:
        raise ValueError(f"different-identity distance {different} must exceed same {same}")
    return float((different - translation) / (different - same))


def best_threshold(same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising verification accuracy on real pairs, with same- and
    different-identity pairs weighted equally: mean(P[d_same < t], P[d_diff >= t])."""
    same, different = (
        np.sort(np.asarray(same, np.float64)),
        np.sort(np.asarray(different, np.float64)),
    )
    if not len(same) or not len(different):
        raise ValueError("need at least one same-identity and one different-identity pair")
    values = np.unique(np.concatenate([same, different]))
    candidates = np.concatenate(
        [[values[0] - 1e-9], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-9]]
    )
    accept_same = np.searchsorted(same, candidates, side="left") / len(same)
    reject_diff = 1.0 - np.searchsorted(different, candidates, side="left") / len(different)
    accuracy = (accept_same + reject_diff) / 2.0
    best = int(np.argmax(accuracy))
    return float(candidates[best]), float(accuracy[best])


def identity_pairs_from_labels(
    identities: np.ndarray, *, max_pairs: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(same [P, 2], different [Q, 2]) index pairs of images; at most max_pairs of each,
    and as many different pairs as same pairs (at least one when no identity repeats)."""
    identities = np.asarray(identities)
    rng = np.random.default_rng(seed)
    same = []
    for value in np.unique(identities):
        members = np.flatnonzero(identities == value)
        same.extend(
            (members[i], members[j])
            for i in range(len(members))
            for j in range(i + 1, len(members))
        )
    same_arr = np.asarray(same, np.int64).reshape(-1, 2)
    if len(same_arr) > max_pairs:
        same_arr = same_arr[np.sort(rng.choice(len(same_arr), max_pairs, replace=False))]
    want = max(1, min(max_pairs, len(same_arr)))
    different: list[tuple[int, int]] = []
    if len(np.unique(identities)) > 1:
        for _ in range(100 * want):
            if len(different) == want:
                break
            i, j = rng.integers(len(identities), size=2)
            if identities[i] != identities[j]:
                different.append((int(i), int(j)))
    return same_arr, np.asarray(different, np.int64).reshape(-1, 2)


def read_identity_pairs(path: str) -> list[tuple[str, str, bool]]:
    """Rows of an `image_a,image_b,same_identity` CSV (CelebA sample's identity_pairs.csv)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"image_a", "image_b", "same_identity"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a header with {sorted(need)}")
        return [(r["image_a"], r["image_b"], r["same_identity"].strip() == "1") for r in reader]


def default_identity_pairs_csv(labels_csv: str) -> str:
    """identity_pairs.csv beside the labels, when present, else ''."""
    path = os.path.join(os.path.dirname(os.path.abspath(labels_csv)), "identity_pairs.csv")
    return path if labels_csv and os.path.isfile(path) else ""


# ---------------------------------------------------------------- the identity section
def choose_embedder(flag: str, *, has_geometry: bool) -> tuple[str | None, str]:
    """(embedder kind or None, the reason when None) for --identity_embedder=`flag`.

    Raises ValueError when the embedder asked for cannot run (geometry without the labels'
    geometry columns, dlib not installed).
    """
    if flag == "none":
        return None, "--identity_embedder=none"
    if flag == "geometry" and not has_geometry:
        raise ValueError(
            f"--identity_embedder=geometry needs the identity geometry columns "
            f"({', '.join(IDENTITY_FIELDS)}) in the labels (the synthetic set's labels.csv)"
        )
    if flag == "dlib":
        reason = dlib_unavailable_reason()
        if reason:
            raise ValueError(f"--identity_embedder=dlib: {reason}")
        return "dlib", ""
    if flag == "geometry" or (flag == "auto" and has_geometry):
        return "geometry", ""
    reason = dlib_unavailable_reason()
    return (None, reason) if reason else ("dlib", "")


@dataclasses.dataclass(frozen=True)
class RegressorScores:
    """Held-out quality of the geometry regressor (`regression_scores`)."""

    r2: float
    r2_per_field: dict[str, float]
    mae: float
    train_images: int
    test_images: int


@dataclasses.dataclass
class HeldOutEmbeddings:
    """An identity embedder and its embeddings of the held-out inputs."""

    kind: str  # "geometry" or "dlib"
    embedder: IdentityEmbedder
    inputs: np.ndarray  # [N, D]
    regressor: RegressorScores | None = None  # geometry only

    def distances(self, translated: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """[M] distances of the inputs `rows` (default all) to their translations [M,S,S,3]."""
        inputs = self.inputs if rows is None else self.inputs[rows]
        return row_distances(inputs, self.embedder.embed(translated))


def held_out_embeddings(
    kind: str,
    x_eval: np.ndarray,
    *,
    x_train: np.ndarray,
    geometry_train: np.ndarray | None,
    geometry_eval: np.ndarray | None,
    config,
) -> HeldOutEmbeddings:
    """The embedder `kind` ("geometry": a regressor fit on the training split, scored on the
    eval images; "dlib") and its embeddings of x_eval uint8 [N, S, S, 3]."""
    if kind == "dlib":
        embedder = DlibFaceEmbedder()
        return HeldOutEmbeddings(kind, embedder, embedder.embed(x_eval))
    e = config.eval
    embedder = fit_geometry_regressor(
        x_train,
        geometry_train,
        epochs=e.identity_regressor_epochs,
        batch_size=e.batch_size,
        seed=config.seed,
        members=e.identity_regressor_members,
        # Upsampling small images adds cost, not information.
        input_size=min(GEOMETRY_INPUT_SIZE, config.model.image_size),
    )
    inputs = embedder.embed(x_eval)
    scores = regression_scores(inputs, geometry_eval)
    regressor = RegressorScores(**scores, train_images=len(x_train), test_images=len(x_eval))
    return HeldOutEmbeddings(kind, embedder, inputs, regressor)


@dataclasses.dataclass(frozen=True)
class RealPairs:
    """Real reference pairs: images (None: the held-out inputs), index pairs, their source."""

    images: np.ndarray | None
    same: np.ndarray  # int [P, 2]
    different: np.ndarray  # int [Q, 2]
    source: str


def _pairs_from_csv(config, pairs_csv: str, clustered: Sequence[str]) -> RealPairs:
    """Up to --identity_max_pairs same and different pairs of identity_pairs.csv (seeded)."""
    from xplore_tf.data import sources
    from xplore_tf.evaluation.labelled import load_images

    if not os.path.isfile(pairs_csv):
        raise FileNotFoundError(f"--identity_pairs_csv: {pairs_csv!r} does not exist")
    rows = read_identity_pairs(pairs_csv)
    rng = np.random.default_rng([config.seed, 11])

    def pick(candidates: list) -> list:
        chosen = np.sort(rng.permutation(len(candidates))[: config.eval.identity_max_pairs])
        return [candidates[i] for i in chosen]

    chosen = pick([r for r in rows if r[2]]) + pick([r for r in rows if not r[2]])
    by_name = {os.path.basename(p): p for p in clustered}
    names = sorted({n for a, b, _ in chosen for n in (a, b)})
    rel = [by_name.get(os.path.basename(n), n) for n in names]
    kept, images = load_images(
        sources.images_dir(config),
        rel,
        size=config.model.image_size,
        crop_size=config.data.crop_size,
    )
    position = {names[k]: j for j, k in enumerate(kept)}
    pairs = [(position[a], position[b], s) for a, b, s in chosen if a in position and b in position]
    same = np.asarray([(a, b) for a, b, s in pairs if s], np.int64).reshape(-1, 2)
    different = np.asarray([(a, b) for a, b, s in pairs if not s], np.int64).reshape(-1, 2)
    return RealPairs(images, same, different, pairs_csv)


def real_pairs(
    config, *, kind: str, labels_csv: str, clustered: Sequence[str], identities: np.ndarray | None
) -> RealPairs:
    """Real same/different-identity pairs: from identity_pairs.csv for dlib, else among the
    held-out inputs by their `identities` [N] (none without an identity column)."""
    e = config.eval
    pairs_csv = e.identity_pairs_csv or default_identity_pairs_csv(labels_csv)
    # The geometry regressor was trained on other identities, so its references must be
    # held-out images too: for it, the pairs come from the eval split.
    if pairs_csv and kind == "dlib":
        return _pairs_from_csv(config, pairs_csv, clustered)
    if identities is None:
        return RealPairs(None, np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64), "")
    same, diff = identity_pairs_from_labels(
        identities, max_pairs=e.identity_max_pairs, seed=config.seed
    )
    return RealPairs(None, same, diff, "identity column of the labels (eval images)")


@dataclasses.dataclass(frozen=True)
class DistanceSummary:
    """Distances of one kind of pair and how often they are judged the same person."""

    pairs: int
    mean_distance: float | None
    verification_rate: float | None

    @classmethod
    def of(cls, distances: np.ndarray, threshold: float | None) -> DistanceSummary:
        return cls(
            pairs=int(len(distances)),
            mean_distance=float(np.mean(distances)) if len(distances) else None,
            verification_rate=verification_rate(distances, threshold)
            if threshold is not None and len(distances)
            else None,
        )


@dataclasses.dataclass(frozen=True)
class IdentityResult:
    """metrics.json's `identity`: input vs translation against real pairs."""

    embedder: str
    threshold: float | None
    threshold_source: str
    pairs_source: str
    translation: DistanceSummary  # inputs vs their translations into random clusters
    same_identity: DistanceSummary
    different_identity: DistanceSummary
    real_pair_accuracy: float | None
    per_cluster_mean_distance: dict[str, float]  # str(cluster) -> mean distance into it
    relative_distance: float | None = None  # when different pairs are farther than same
    reference_note: str | None = None  # when there are no real pairs
    regressor: RegressorScores | None = None
    faces_detected: int | None = None  # dlib
    faces_seen: int | None = None
    # str(cluster) -> share of inputs judged the same person as their translation into that
    # transfer cluster; None without a threshold
    per_cluster_verification_rate: dict[str, float] | None = None

    status = "ok"

    def to_json(self) -> dict:
        out = {"status": self.status}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            if value is not None or f.name in _ALWAYS_WRITTEN:
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, d: dict) -> IdentityResult:
        fields = {f.name: d.get(f.name) for f in dataclasses.fields(cls)}
        for key in ("translation", "same_identity", "different_identity"):
            fields[key] = DistanceSummary(**d[key])
        if "regressor" in d:
            fields["regressor"] = RegressorScores(**d["regressor"])
        return cls(**fields)


_ALWAYS_WRITTEN = ("threshold", "real_pair_accuracy")


def _threshold(config, embeddings: HeldOutEmbeddings, d_same, d_diff) -> tuple[float | None, str]:
    """(verification threshold, where it comes from)."""
    if config.eval.identity_threshold > 0:
        return config.eval.identity_threshold, "--identity_threshold"
    if embeddings.embedder.threshold is not None:
        return embeddings.embedder.threshold, f"{embeddings.kind} standard threshold"
    if len(d_same) and len(d_diff):
        threshold, _ = best_threshold(d_same, d_diff)
        return threshold, "best balanced accuracy on the real same/different-identity pairs"
    return None, ""


def identity_result(
    config,
    embeddings: HeldOutEmbeddings,
    pairs: RealPairs,
    *,
    random_translations: np.ndarray,
    per_cluster: dict[int, np.ndarray],
) -> IdentityResult:
    """The identity section: held-out inputs vs their translations into random clusters
    (uint8 [N, S, S, 3]) against the real `pairs`; `per_cluster` {cluster: the inputs'
    distances [N] to their translations into it}."""
    translation = embeddings.distances(random_translations)
    emb = embeddings.inputs if pairs.images is None else embeddings.embedder.embed(pairs.images)
    d_same = row_distances(emb[pairs.same[:, 0]], emb[pairs.same[:, 1]])
    d_diff = row_distances(emb[pairs.different[:, 0]], emb[pairs.different[:, 1]])
    threshold, source = _threshold(config, embeddings, d_same, d_diff)
    both = bool(len(d_same) and len(d_diff))
    dlib = embeddings.kind == "dlib"
    return IdentityResult(
        embedder=embeddings.kind,
        threshold=threshold,
        threshold_source=source,
        pairs_source=pairs.source,
        translation=DistanceSummary.of(translation, threshold),
        same_identity=DistanceSummary.of(d_same, threshold),
        different_identity=DistanceSummary.of(d_diff, threshold),
        real_pair_accuracy=(
            float((np.mean(d_same < threshold) + np.mean(d_diff >= threshold)) / 2.0)
            if threshold is not None and both
            else None
        ),
        per_cluster_mean_distance={
            str(c): float(np.mean(d)) for c, d in sorted(per_cluster.items())
        },
        per_cluster_verification_rate={
            str(c): verification_rate(d, threshold) for c, d in sorted(per_cluster.items())
        }
        if threshold is not None
        else None,
        relative_distance=relative_distance(
            float(np.mean(translation)), float(np.mean(d_same)), float(np.mean(d_diff))
        )
        if both and np.mean(d_diff) > np.mean(d_same)
        else None,
        reference_note=None if both else _NO_PAIRS,
        regressor=embeddings.regressor,
        faces_detected=int(embeddings.embedder.detected) if dlib else None,
        faces_seen=int(embeddings.embedder.seen) if dlib else None,
    )


_NO_PAIRS = (
    "no real same/different-identity pairs (labels without an 'identity' column and "
    "no identity_pairs.csv)"
)


__all__ = [
    "DLIB_THRESHOLD",
    "DistanceSummary",
    "DlibFaceEmbedder",
    "GeometryRegressor",
    "HeldOutEmbeddings",
    "IdentityEmbedder",
    "IdentityResult",
    "RealPairs",
    "RegressorScores",
    "best_threshold",
    "choose_embedder",
    "default_identity_pairs_csv",
    "dlib_unavailable_reason",
    "fit_geometry_regressor",
    "held_out_embeddings",
    "identity_result",
    "identity_pairs_from_labels",
    "read_identity_pairs",
    "real_pairs",
    "regression_scores",
    "row_distances",
    "verification_rate",
]
