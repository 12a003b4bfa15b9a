"""Client side of the beyond-clusters signatures (docs/guide/beyond_clusters.md): numpy + Pillow only.

Shared by `serving/client.py` (over gRPC) and `xplore_tf.translate` (in process), which
both hand in a `predict(signature_name, inputs) -> outputs` callable, so a local and a
served translation build the same requests and read the same answers:

- strength: `--cluster=12 --strength=0.5` -> `translate_strength`;
- combination: `--cluster=12:1.0,31:0.5` -> `translate_mix` with a weight vector [k];
- reference group: `--reference_dir=DIR` -> `reference_condition` on the folder's images
  (one group), then `translate_condition` with that condition; with
  `--reference_edit=shared` (and an optional `--strength`), `shared_condition` first: each
  input keeps its own statistics and takes only what the group shares.

Every bad input is a ValueError with one line naming the flag and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from xplore_tf.common import pixels as common
from xplore_tf.common import signatures as sig

# predict(signature name, {input key: numpy array}) -> {output key: numpy array}
Predict = Callable[[str, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]

# --reference_edit: the group's statistics replace the input's (GROUP), or each input moves by
# what the group shares (SHARED, `shared_condition`).
GROUP, SHARED = "group", "shared"
REFERENCE_EDITS = (GROUP, SHARED)

# What the reference folder lists: the clustering stage's image files.
REFERENCE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def check_strength(value: float, flag: str = "--strength") -> float:
    """`value` as a float in [0, MAX_STRENGTH], else a ValueError naming `flag`."""
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{flag}={value!r} is not a number") from None
    if not (math.isfinite(alpha) and 0.0 <= alpha <= sig.MAX_STRENGTH):
        raise ValueError(
            f"{flag}={value}: expected a number in [0, {sig.MAX_STRENGTH:g}] (0 = the input's own "
            f"cluster, 1 = the target cluster, above 1 extrapolates up to {sig.MAX_STRENGTH:g})"
        )
    return alpha


def parse_cluster_weights(text: str) -> list[tuple[str, float]] | None:
    """`12:1.0,blond:0.5` -> [("12", 1.0), ("blond", 0.5)]; None for a plain `12` or `blond`.

    Targets are ids or names (resolved later); weights are finite, >= 0, at most
    MAX_STRENGTH in sum; a target appears once.

    Raises:
        ValueError: one line naming --cluster and the expected form.
    """
    text = str(text).strip()
    if ":" not in text:
        return None
    form = "expected ID_OR_NAME:WEIGHT[,ID_OR_NAME:WEIGHT...], e.g. 12:1.0,31:0.5"
    pairs: list[tuple[str, float]] = []
    for item in text.split(","):
        target, colon, weight = item.strip().rpartition(":")
        target = target.strip()
        if not colon or not target:
            raise ValueError(f"--cluster={text}: {item.strip()!r} has no target; {form}")
        try:
            w = float(weight)
        except ValueError:
            raise ValueError(
                f"--cluster={text}: weight {weight.strip()!r} is not a number; {form}"
            ) from None
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"--cluster={text}: weight {weight.strip()} must be a number >= 0")
        if target in [t for t, _ in pairs]:
            raise ValueError(f"--cluster={text}: {target!r} is given twice")
        pairs.append((target, w))
    total = sum(w for _, w in pairs)
    if total > sig.MAX_STRENGTH * (1 + 1e-6):
        raise ValueError(
            f"--cluster={text}: the weights sum to {total:g}; at most {sig.MAX_STRENGTH:g} "
            "(the condition extrapolates past the targets beyond 1)"
        )
    return pairs


def weight_vector(
    pairs: Sequence[tuple[int, float]], num_clusters: int, flag: str = "--cluster"
) -> np.ndarray:
    """[(cluster id, weight)] -> float32 [k] for `translate_mix`.

    Raises:
        ValueError: an id outside [0, k) (an unknown cluster), or one id twice (one line
            naming `flag`).
    """
    weights = np.zeros(num_clusters, np.float32)
    for cluster, w in pairs:
        if not 0 <= cluster < num_clusters:
            raise ValueError(
                f"{flag}: cluster {cluster} does not exist (ids are 0..{num_clusters - 1})"
            )
        if weights[cluster]:
            raise ValueError(f"{flag}: cluster {cluster} is given twice")
        weights[cluster] = w
    return weights


def check_reference_options(
    reference_dir: str, edit: str, *, cluster: bool, all_clusters: bool, strength: bool
) -> None:
    """Checks --reference_dir against the other target options (`cluster`, `all_clusters`,
    `strength`: whether each was given).

    Raises:
        ValueError: an unknown --reference_edit, a reference group with another target, or
            --strength with the whole group (it has none); one line naming the flags.
    """
    if edit not in REFERENCE_EDITS:
        raise ValueError(f"--reference_edit={edit}: expected one of {', '.join(REFERENCE_EDITS)}")
    if not reference_dir:
        if edit != GROUP:
            raise ValueError(f"--reference_edit={edit} needs --reference_dir=DIR")
        return
    if cluster or all_clusters:
        raise ValueError(
            "--reference_dir is the target: pass it without --cluster and --all_clusters"
        )
    if strength and edit == GROUP:
        raise ValueError(
            f"--strength with --reference_dir needs --reference_edit={SHARED} (the whole "
            "group's statistics have no strength)"
        )


def reference_target(
    folder: str, ref: ReferenceCondition, *, edit: str = GROUP, strength: float | None = None
) -> Target:
    """The target of a reference group: its whole condition, or (SHARED) what it shares,
    at `strength` (None: 1). Labels `ref_<folder>`, `ref_<folder>_shared[_s<strength>]`."""
    label = reference_label(folder)
    if edit == GROUP:
        return Target(label, condition=ref.condition)
    label += f"_{SHARED}" + ("" if strength is None else f"_s{strength:g}")
    return Target(label, condition=ref.condition, strength=strength, shared=True)


def parse_keep(text: str, *, all_clusters: bool = False, reference_dir: str = "") -> list[str]:
    """`--keep=10,men` -> ["10", "men"]: the clusters (ids or names, resolved later) whose
    direction an edit keeps; [] for "".

    Raises:
        ValueError: an empty item or one given twice, or --keep with --all_clusters or
            --reference_dir (one line naming --keep).
    """
    items = [item.strip() for item in str(text).split(",")] if str(text).strip() else []
    if items and (all_clusters or reference_dir):
        raise ValueError(
            "--keep applies to a --cluster translation (not to --all_clusters or --reference_dir)"
        )
    if any(not item for item in items):
        raise ValueError(f"--keep={text}: expected ID_OR_NAME[,ID_OR_NAME...], e.g. 10,men")
    twice = sorted({item for item in items if items.count(item) > 1})
    if twice:
        raise ValueError(f"--keep={text}: {', '.join(twice)} given twice")
    return items


def keep_target(
    target: Target, keep: Sequence[str], clusters: Callable[[], common.ClusterInfo]
) -> Target:
    """`target` keeping the directions of the clusters in `keep` (ids or names, `parse_keep`;
    `clusters()` gives the model's list). [] leaves `target` as it is.

    Raises:
        ValueError: an unknown cluster, or one named twice (one line naming --keep).
    """
    if not keep:
        return target
    info = clusters()
    ids = [common.resolve_cluster(item, info, flag="--keep") for item in keep]
    vector = weight_vector([(cluster, 1.0) for cluster in ids], len(info.ids), flag="--keep")
    return dataclasses.replace(target, label=keep_label(target.label, ids), keep=vector)


def keep_label(label: int | str, kept: Sequence[int]) -> str:
    """Output-name label of an edit keeping clusters: `c012_keep_c010` (a plain cluster's
    label is its id)."""
    base = f"c{label:03d}" if isinstance(label, int) else label
    return base + "_keep_" + "_".join(f"c{c:03d}" for c in kept)


def strength_label(cluster: int, strength: float) -> str:
    """Output-name label of a strength translation: `c012_s0.5`."""
    return f"c{cluster:03d}_s{strength:g}"


def mix_label(pairs: Sequence[tuple[int, float]]) -> str:
    """Output-name label of a combination: `mix_c012x1_c031x0.5`."""
    return "mix_" + "_".join(f"c{c:03d}x{w:g}" for c, w in pairs)


def reference_label(folder: str) -> str:
    """Output-name label of a reference-group translation: `ref_<folder name>`."""
    return "ref_" + (os.path.basename(os.path.normpath(folder)) or "group")


# ---------------------------------------------------------------------- reference folders
@dataclasses.dataclass
class ReferenceImages:
    """The encoded images of a reference folder, as the clustering stage would take them."""

    names: list[str]  # relative paths of the images used
    encoded: list[bytes]  # what is sent (`pixels.read_image_bytes`)
    skipped: list[tuple[str, str]]  # (relative path, reason) of unreadable files
    duplicates: dict[str, str]  # exact copies left out: {copy: original}


def list_reference_files(folder: str) -> list[str]:
    """Image files below `folder` (recursive, hidden ones left out), sorted relative paths.

    Raises:
        ValueError: `folder` is not a folder, or holds no image file.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"--reference_dir: {folder!r} is not a folder")
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if (
                not name.startswith(".")
                and os.path.splitext(name)[1].lower() in REFERENCE_EXTENSIONS
            ):
                found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    if not found:
        raise ValueError(
            f"--reference_dir: {folder}: no images found (looked for {', '.join(REFERENCE_EXTENSIONS)})"
        )
    return sorted(found)


def read_reference_images(folder: str, rel_paths: Sequence[str] | None = None) -> ReferenceImages:
    """Reads a reference folder by the clustering stage's rules: every image once (exact
    copies counted once), unreadable files skipped with their reason.

    `rel_paths` (default: `list_reference_files`) lets the caller list the folder its way.

    Raises:
        ValueError: no image in the folder, or none readable.
    """
    paths = list(rel_paths) if rel_paths is not None else list_reference_files(folder)
    names, encoded, skipped, duplicates = [], [], [], {}
    first: dict[str, str] = {}
    for rel in paths:
        path = os.path.join(folder, rel)
        try:
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if digest in first:
                duplicates[rel] = first[digest]
                continue
            first[digest] = rel
            encoded.append(common.read_image_bytes(path))
            names.append(rel)
        except (OSError, common.ImageError) as e:
            skipped.append((rel, getattr(e, "reason", None) or str(e)))
    if not encoded:
        example = f" (e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise ValueError(
            f"--reference_dir: {folder}: none of its {len(paths)} images is readable{example}"
        )
    return ReferenceImages(names, encoded, skipped, duplicates)


# ---------------------------------------------------------------------- requests
def _strings(items: Sequence[bytes]) -> np.ndarray:
    data = np.empty(len(items), dtype=object)
    data[:] = list(items)
    return data


def _run_batched(
    predict: Predict, name: str, encoded: Sequence[bytes], inputs: dict, max_batch: int
) -> tuple[list[bytes], list[int]]:
    """Signature `name` on the encoded images in batches of `max_batch`; `inputs` holds
    per-image arrays [N, ...] sliced alongside. -> (PNG bytes, each input's own cluster when
    the signature returns it, else [])."""
    pngs, sources = [], []
    for chunk in common.batches(encoded, max_batch):
        batch = {sig.IMAGE_BYTES: _strings(encoded[chunk])}
        out = predict(name, {**batch, **{k: v[chunk] for k, v in inputs.items()}})
        pngs.extend(bytes(b) for b in out[sig.IMAGE_BYTES])
        sources.extend(int(c) for c in out.get(sig.SOURCE_CLUSTER, ()))
    return pngs, sources


def translate_strength(
    predict: Predict,
    encoded: Sequence[bytes],
    cluster_ids: Sequence[int],
    strengths: Sequence[float],
    *,
    max_batch: int = 16,
) -> tuple[list[bytes], list[int]]:
    """Encoded images toward clusters with strengths -> (PNG bytes, each input's own cluster)."""
    if not len(encoded) == len(cluster_ids) == len(strengths):
        raise ValueError(
            f"{len(encoded)} images, {len(cluster_ids)} clusters, {len(strengths)} strengths"
        )
    inputs = {
        sig.CLUSTER_ID: np.asarray(cluster_ids, np.int32),
        sig.STRENGTH: np.asarray(strengths, np.float32),
    }
    return _run_batched(predict, sig.TRANSLATE_STRENGTH, encoded, inputs, max_batch)


def _each_image(
    predict: Predict, name: str, encoded: Sequence[bytes], key: str, value, max_batch: int
) -> tuple[list[bytes], list[int]]:
    """Signature `name` with input `key` = the same `value` for every image."""
    tiled = np.tile(np.asarray(value, np.float32), (len(encoded), 1))
    return _run_batched(predict, name, encoded, {key: tiled}, max_batch)


def translate_mix(
    predict: Predict, encoded: Sequence[bytes], weights: np.ndarray, *, max_batch: int = 16
) -> tuple[list[bytes], list[int]]:
    """Encoded images toward a weighted set of clusters (weights [k], the same for every
    image) -> (PNG bytes, each input's own cluster)."""
    return _each_image(predict, sig.TRANSLATE_MIX, encoded, sig.CLUSTER_WEIGHTS, weights, max_batch)


@dataclasses.dataclass(frozen=True)
class ReferenceCondition:
    """A reference group's condition and where it lies among the training clusters."""

    condition: np.ndarray  # float32 [C]
    nearest_cluster: int
    distance: float  # from the group's mean to that cluster's centroid (clustering space)
    relative_distance: float  # distance / that cluster's RMS radius

    @property
    def far(self) -> bool:
        return self.relative_distance > sig.FAR_FROM_CLUSTERS

    def warning(self, folder: str) -> str:
        """One line for the user when the group is far from every training cluster."""
        return (
            f"--reference_dir: {folder} lies far from every training cluster: its mean is "
            f"{self.distance:.3g} from the nearest centroid (cluster {self.nearest_cluster}), "
            f"{self.relative_distance:.2f}x that cluster's RMS radius (> {sig.FAR_FROM_CLUSTERS:g}); "
            "the generator never saw such statistics, expect weaker or odd translations"
        )


def reference_condition(predict: Predict, encoded: Sequence[bytes]) -> ReferenceCondition:
    """The condition of one group of encoded images (`reference_condition`, [1, M])."""
    group = _strings(encoded).reshape(1, -1)
    out = predict(sig.REFERENCE_CONDITION, {sig.REFERENCE_BYTES: group})
    return ReferenceCondition(
        condition=np.asarray(out[sig.CONDITION], np.float32)[0],
        nearest_cluster=int(np.asarray(out[sig.NEAREST_CLUSTER])[0]),
        distance=float(np.asarray(out[sig.DISTANCE])[0]),
        relative_distance=float(np.asarray(out[sig.RELATIVE_DISTANCE])[0]),
    )


def translate_condition(
    predict: Predict, encoded: Sequence[bytes], condition: np.ndarray, *, max_batch: int = 16
) -> list[bytes]:
    """Encoded images under one condition [C] (e.g. a reference group's) -> PNG bytes."""
    name = sig.TRANSLATE_CONDITION
    return _each_image(predict, name, encoded, sig.CONDITION, condition, max_batch)[0]


def translate_full(
    predict: Predict, encoded: Sequence[bytes], weights: np.ndarray, *, max_batch: int = 16
) -> list[bytes]:
    """Encoded aligned faces toward weights [k] (the same for every image) at their own
    resolution (`translate_full`) -> PNG bytes, each the size of the square the model saw."""
    name = sig.TRANSLATE_FULL
    return _each_image(predict, name, encoded, sig.CLUSTER_WEIGHTS, weights, max_batch)[0]


def translate_full_condition(
    predict: Predict, encoded: Sequence[bytes], condition: np.ndarray, *, max_batch: int = 16
) -> list[bytes]:
    """Encoded aligned faces under one condition [C] at their own resolution -> PNG bytes."""
    name = sig.TRANSLATE_FULL_CONDITION
    return _each_image(predict, name, encoded, sig.CONDITION, condition, max_batch)[0]


def _conditions(
    predict: Predict, name: str, encoded: Sequence[bytes], inputs: dict, max_batch: int
) -> np.ndarray:
    """Signature `name`'s condition output for each encoded image, in batches; `inputs`
    holds rows [C] or scalars that are the same for every image -> float32 [N, C]."""
    rows = []
    for chunk in common.batches(encoded, max_batch):
        n = len(encoded[chunk])
        tiled = {
            k: np.tile(np.asarray(v, np.float32), (n,) + (1,) * np.ndim(v))
            for k, v in inputs.items()
        }
        out = predict(name, {sig.IMAGE_BYTES: _strings(encoded[chunk]), **tiled})
        rows.append(np.asarray(out[sig.CONDITION], np.float32))
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)


def mix_conditions(
    predict: Predict,
    encoded: Sequence[bytes],
    weights: np.ndarray,
    keep: np.ndarray,
    *,
    max_batch: int = 16,
) -> np.ndarray:
    """Each encoded image's condition toward weights [k] with the directions of the clusters
    marked in keep [k] (> 0) taken out (`mix_condition`) -> float32 [N, C]."""
    inputs = {sig.CLUSTER_WEIGHTS: weights, sig.KEEP_CLUSTERS: keep}
    return _conditions(predict, sig.MIX_CONDITION, encoded, inputs, max_batch)


def shared_conditions(
    predict: Predict,
    encoded: Sequence[bytes],
    group: np.ndarray,
    strength: float,
    *,
    max_batch: int = 16,
) -> np.ndarray:
    """Each encoded image's own condition moved by what the group with condition [C] shares,
    at `strength` (`shared_condition`) -> float32 [N, C]."""
    inputs = {sig.CONDITION: group, sig.STRENGTH: strength}
    return _conditions(predict, sig.SHARED_CONDITION, encoded, inputs, max_batch)


def _translate_each(
    predict: Predict,
    conditions_of: Callable[[list[bytes]], np.ndarray],
    full_resolution: bool,
    max_batch: int,
) -> Callable[[list[bytes]], list[bytes]]:
    """encoded images -> PNG bytes, each under its own condition `conditions_of(images)`."""
    name = sig.TRANSLATE_FULL_CONDITION if full_resolution else sig.TRANSLATE_CONDITION

    def run(pngs: list[bytes]) -> list[bytes]:
        conditions = conditions_of(pngs)
        return _run_batched(predict, name, pngs, {sig.CONDITION: conditions}, max_batch)[0]

    return run


def _translate_kept(
    predict: Predict, target: Target, full_resolution: bool, max_batch: int
) -> Callable[[list[bytes]], list[bytes]]:
    """encoded images -> PNG bytes toward `target` with its `keep` clusters' directions out."""
    weights = target.weights
    if weights is None:
        alpha = 1.0 if target.strength is None else target.strength
        weights = weight_vector([(target.cluster, alpha)], len(target.keep))
    return _translate_each(
        predict,
        lambda pngs: mix_conditions(predict, pngs, weights, target.keep, max_batch=max_batch),
        full_resolution,
        max_batch,
    )


@dataclasses.dataclass(frozen=True)
class Target:
    """What a translation moves toward, resolved: exactly one of a cluster id (with an
    optional strength), a weight vector [k], or a condition [C] (a reference group's); with
    a cluster or weights, `keep` [k] (> 0) marks clusters whose direction the edit keeps;
    with a condition, `shared` takes only what the group shares (`shared_condition`, at
    `strength`, default 1)."""

    label: int | str  # for output names (`pixels.output_paths`)
    cluster: int | None = None
    strength: float | None = None
    weights: np.ndarray | None = None
    condition: np.ndarray | None = None
    keep: np.ndarray | None = None
    shared: bool = False


def translation_function(
    predict: Predict,
    target: Target,
    *,
    num_clusters: int,
    full_resolution: bool,
    plain: Callable[[list[bytes], list[int]], list[bytes]],
    max_batch: int = 16,
) -> Callable[[list[bytes]], list[bytes]]:
    """encoded images -> PNG bytes toward `target`: at each input's own resolution
    (`translate_full*`) or at the model's (`plain(encoded, cluster_ids)` for a plain cluster,
    else the strength, mix and condition signatures). A target with `keep` asks
    `mix_condition` for each image's condition first, a `shared` one `shared_condition`."""
    if target.keep is not None:
        return _translate_kept(predict, target, full_resolution, max_batch)
    if target.shared:
        alpha = 1.0 if target.strength is None else target.strength
        return _translate_each(
            predict,
            lambda pngs: shared_conditions(
                predict, pngs, target.condition, alpha, max_batch=max_batch
            ),
            full_resolution,
            max_batch,
        )
    if full_resolution:
        if target.condition is not None:
            return lambda pngs: translate_full_condition(
                predict, pngs, target.condition, max_batch=max_batch
            )
        weights = target.weights
        if weights is None:
            alpha = 1.0 if target.strength is None else target.strength
            weights = weight_vector([(target.cluster, alpha)], num_clusters)
        return lambda pngs: translate_full(predict, pngs, weights, max_batch=max_batch)
    if target.condition is not None:
        return lambda pngs: translate_condition(
            predict, pngs, target.condition, max_batch=max_batch
        )
    if target.weights is not None:
        return lambda pngs: translate_mix(predict, pngs, target.weights, max_batch=max_batch)[0]
    if target.strength is not None:
        return lambda pngs: translate_strength(
            predict,
            pngs,
            [target.cluster] * len(pngs),
            [target.strength] * len(pngs),
            max_batch=max_batch,
        )[0]
    return lambda pngs: plain(pngs, [target.cluster] * len(pngs))


__all__ = [
    "GROUP",
    "REFERENCE_EDITS",
    "SHARED",
    "Target",
    "Predict",
    "ReferenceCondition",
    "ReferenceImages",
    "check_reference_options",
    "check_strength",
    "list_reference_files",
    "keep_label",
    "keep_target",
    "mix_conditions",
    "mix_label",
    "parse_cluster_weights",
    "parse_keep",
    "read_reference_images",
    "reference_condition",
    "reference_label",
    "reference_target",
    "shared_conditions",
    "strength_label",
    "translation_function",
    "translate_condition",
    "translate_full",
    "translate_full_condition",
    "translate_mix",
    "translate_strength",
    "weight_vector",
]
