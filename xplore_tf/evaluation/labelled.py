"""The labelled images evaluation measures on: the join with the labels, the held-out split
and the image loader."""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from absl import logging

from xplore_tf.clustering import report
from xplore_tf.data import images as images_lib
from xplore_tf.data.synthetic import IDENTITY_FIELDS
from xplore_tf.evaluation.discovery import Discovery


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
    """The clustered images that have a labels row, with their attributes (in the
    discovery report's order), identities and geometry when the labels have them."""
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


@dataclasses.dataclass
class HeldOutSplit:
    """The labelled images evaluation translates (eval) and trains its judges on (train)."""

    eval_idx: np.ndarray  # [N] indices into LabelledImages
    train_idx: np.ndarray  # [M]
    x_eval: np.ndarray  # uint8 [N, S, S, 3]
    x_train: np.ndarray  # uint8 [M, S, S, 3]
    source_note: str  # where the eval images come from
    unseen_by_generator: bool  # from the --holdout images


def _eval_pool(config, discovery: Discovery, data: LabelledImages) -> tuple[np.ndarray | None, str]:
    """(eval candidates or None = any, the note saying where they come from)."""
    from xplore_tf.data import sources

    if not config.train.holdout:
        note = (
            "labelled images the generator may have trained on (set --holdout at training "
            "time to evaluate on unseen faces)"
        )
        return None, note
    # Faces the generator never saw (train_lib leaves them out of training).
    _, held = sources.split_holdout(discovery.images, config.train.holdout)
    pool = np.flatnonzero(np.isin(data.assignment_index, held))
    return pool, f"--holdout: {len(pool)} labelled images never seen by the generator"


def held_out_split(config, discovery: Discovery, data: LabelledImages) -> HeldOutSplit | str:
    """Up to --eval_images held-out images and up to --probe_train_images others (disjoint
    in identity, `split_eval_train`), loaded; or why there are too few (a str)."""
    from xplore_tf.data import sources

    e = config.eval
    pool, note = _eval_pool(config, discovery, data)
    available = len(pool) if pool is not None else len(data.paths) // 2
    eval_count = min(e.eval_images, available)
    if eval_count < 2:
        return f"only {available} labelled images available for evaluation; need at least 2"
    if eval_count < e.eval_images:
        logging.warning("--eval_images=%d reduced to %d (%s)", e.eval_images, eval_count, note)
    eval_idx, train_idx = split_eval_train(
        len(data.paths),
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
    logging.info(
        "evaluation: %d held-out images to translate, %d to train the probe/regressor",
        len(eval_idx),
        len(train_idx),
    )
    return HeldOutSplit(eval_idx, train_idx, x_eval, x_train, note, bool(config.train.holdout))


__all__ = [
    "HeldOutSplit",
    "LabelledImages",
    "held_out_split",
    "labelled_images",
    "load_images",
    "matrix_rows",
    "split_eval_train",
]
