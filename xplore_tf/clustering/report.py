"""How well discovered clusters match known attributes (evaluation only, never training).

For each binary attribute: the normalised mutual information between cluster ids and the
attribute, the cluster with the highest precision (fraction of members having the
attribute, among clusters of at least `min_cluster_size`), and how many clusters exceed
`precision_threshold` - the paper's "a cluster is a discovered attribute" (§3.6).
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

from xplore_tf import io_utils


@dataclasses.dataclass(frozen=True)
class AttributeReport:
    attribute: str
    positives: int  # labelled images having the attribute
    nmi: float
    best_cluster: int  # -1 when no cluster is large enough
    best_precision: float
    best_size: int
    best_recall: float  # fraction of all positives that fall in the best cluster
    clusters_above: int  # clusters (of at least min size) with precision > threshold


def read_binary_labels(path: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """(image names, {column: [N] int8}) for every column holding only 0/1 (or -1/1) values."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"--labels_csv: {path} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "image" not in reader.fieldnames:
            raise ValueError(f"{path}: expected a header starting 'image,<attributes...>'")
        rows = list(reader)
    images = [r["image"] for r in rows]
    columns = {}
    for name in reader.fieldnames:
        if name == "image":
            continue
        values = {r[name].strip() for r in rows}
        if values <= {"0", "1"} or values <= {"-1", "1"}:
            columns[name] = np.array([r[name].strip() == "1" for r in rows], np.int8)
    return images, columns


def normalized_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """NMI of two labelings, MI / mean(H(a), H(b)) (arithmetic normalisation, as sklearn)."""
    _, a_idx = np.unique(a, return_inverse=True)
    _, b_idx = np.unique(b, return_inverse=True)
    joint = np.zeros((a_idx.max() + 1, b_idx.max() + 1))
    np.add.at(joint, (a_idx, b_idx), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1), joint.sum(0)

    def entropy(p):
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    ha, hb = entropy(pa), entropy(pb)
    if ha == 0.0 and hb == 0.0:
        return 1.0
    if ha == 0.0 or hb == 0.0:
        return 0.0
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    return max(0.0, mi / ((ha + hb) / 2.0))


def attribute_report(
    clusters: np.ndarray,
    attribute: np.ndarray,
    *,
    name: str,
    min_cluster_size: int = 20,
    precision_threshold: float = 0.8,
) -> AttributeReport:
    """One attribute's row; clusters [N] int, attribute [N] 0/1 for the same images."""
    clusters = np.asarray(clusters)
    attribute = np.asarray(attribute).astype(np.int64)
    k = int(clusters.max()) + 1 if len(clusters) else 0
    sizes = np.bincount(clusters, minlength=k)
    hits = np.bincount(clusters, weights=attribute, minlength=k)
    precision = np.where(sizes > 0, hits / np.maximum(sizes, 1), 0.0)
    eligible = sizes >= min_cluster_size
    positives = int(attribute.sum())
    if eligible.any():
        best = int(np.argmax(np.where(eligible, precision, -1.0)))
        best_p, best_n = float(precision[best]), int(sizes[best])
        recall = float(hits[best] / positives) if positives else 0.0
    else:
        best, best_p, best_n, recall = -1, 0.0, 0, 0.0
    return AttributeReport(
        attribute=name,
        positives=positives,
        nmi=normalized_mutual_information(clusters, attribute),
        best_cluster=best,
        best_precision=best_p,
        best_size=best_n,
        best_recall=recall,
        clusters_above=int((eligible & (precision > precision_threshold)).sum()),
    )


def join_labels(images: list[str], label_images: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Matches assignment paths to label rows: exact relative path, else file name.

    Returns (assignment indices, label-row indices) of the matched pairs.
    """
    by_path = {p: i for i, p in enumerate(label_images)}
    by_name = {os.path.basename(p): i for i, p in enumerate(label_images)}
    a_idx, l_idx = [], []
    for i, p in enumerate(images):
        j = by_path.get(p, by_name.get(os.path.basename(p)))
        if j is not None:
            a_idx.append(i)
            l_idx.append(j)
    return np.asarray(a_idx, np.int64), np.asarray(l_idx, np.int64)


def cluster_report(
    images: list[str],
    clusters: np.ndarray,
    labels_csv: str,
    *,
    attributes: tuple[str, ...] = (),
    min_cluster_size: int = 20,
    precision_threshold: float = 0.8,
) -> tuple[list[AttributeReport], int]:
    """Rows for each attribute, and how many assigned images had labels."""
    label_images, columns = read_binary_labels(labels_csv)
    names = list(attributes) or sorted(columns)
    unknown = [a for a in names if a not in columns]
    if unknown:
        raise ValueError(
            f"--attributes: {unknown} are not 0/1 columns of {labels_csv}; "
            f"available: {', '.join(sorted(columns))}"
        )
    a_idx, l_idx = join_labels(images, label_images)
    if len(a_idx) == 0:
        raise ValueError(
            f"{labels_csv}: no 'image' value matches an assigned image path or file name"
        )
    c = np.asarray(clusters)[a_idx]
    rows = [
        attribute_report(
            c,
            columns[a][l_idx],
            name=a,
            min_cluster_size=min_cluster_size,
            precision_threshold=precision_threshold,
        )
        for a in names
    ]
    return rows, len(a_idx)


# Mutually exclusive 0/1 columns that together are one multi-valued label (CelebA's hair
# colours): its NMI with the clusters is reported as one number, images with none of them
# forming a value of their own.
LABEL_GROUPS = {"hair colour": ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")}


def group_values(columns: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """[N] int: the index in `names` of each image's first 1 column, len(names) for none."""
    stacked = np.stack([np.asarray(columns[n]) > 0 for n in names], axis=1)
    return np.where(stacked.any(axis=1), stacked.argmax(axis=1), len(names))


def group_report(images: list[str], clusters: np.ndarray, labels_csv: str) -> dict[str, float]:
    """{group name: NMI of the clusters and that multi-valued label} for each of
    `LABEL_GROUPS` whose columns the labels have (on the images that have labels)."""
    label_images, columns = read_binary_labels(labels_csv)
    a_idx, l_idx = join_labels(images, label_images)
    out = {}
    for name, names in LABEL_GROUPS.items():
        if len(a_idx) and all(n in columns for n in names):
            values = group_values({n: columns[n][l_idx] for n in names}, names)
            out[name] = normalized_mutual_information(np.asarray(clusters)[a_idx], values)
    return out


def format_report(rows: list[AttributeReport], *, threshold: float = 0.8) -> str:
    header = (
        f"{'attribute':<20} {'pos':>6} {'NMI':>6} {'best':>5} {'prec':>6} {'size':>6} "
        f"{'recall':>6} {'>' + format(threshold, '.2f'):>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.attribute:<20} {r.positives:>6d} {r.nmi:>6.3f} {r.best_cluster:>5d} "
            f"{r.best_precision:>6.3f} {r.best_size:>6d} {r.best_recall:>6.3f} {r.clusters_above:>6d}"
        )
    return "\n".join(lines)


def write_report(path: str, rows: list[AttributeReport], **extra) -> None:
    io_utils.write_json(path, {"attributes": [dataclasses.asdict(r) for r in rows], **extra})
