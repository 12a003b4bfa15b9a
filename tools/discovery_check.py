"""Discovery options measured on two labelled face sets that differ in source and framing.

    python -m tools.discovery_check --out=/tmp/dc [--ks=50,100] [--seeds=0,1,2,3,4]

The sets (read from ../shared; labels only score, never cluster):
- `celeba10k`: 10,000 aligned CelebA crops (89x109), framed as configs/celeba10k_mobilenet.cfg
  frames them (`--crop_size=0`);
- `celeba_wild`: 3,156 real, unaligned photos of 150 people, prepared once by `python -m
  xplore_tf.prepare --faces=largest` into OUT/wild_aligned (aligned 128 px crops); each crop
  `<photo>_f0.png` takes its photo's labels (OUT/wild_labels.csv).

For each set, each feature setting of `FEATURES` (MobileNetV2 with the shared torchvision
weights; extracted once per set into OUT/features, with its images/s) and each space of
`SPACES`, k-means (faiss, 50 iterations x 5 restarts, as the configs) at every `--ks` and
`--seeds`, scored with the clustering report (`xplore_tf/clustering/report.py`):
- rare attributes (`RARE`): mean best-cluster precision among clusters of >= 20 images, and
  how many reach 0.8;
- broad attributes: NMI of the clusters with Male, Young, Pale_Skin and the hair colour as
  one multi-valued label (`report.LABEL_GROUPS`), and their mean.
Prints one table per set and k (mean over seeds, with the seeds' standard deviation) and
writes OUT/results.json. Needs ../shared (both sets, the MobileNetV2 weights) and the
`[prepare]` extra.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(PROJECT_ROOT), "shared")
WEIGHTS = os.path.join(SHARED, "weights", "mobilenet_v2_torchvision_imagenet.npz")
RARE = (
    "Male",
    "Blond_Hair",
    "Black_Hair",
    "Gray_Hair",
    "Eyeglasses",
    "Smiling",
    "Bald",
    "Wearing_Hat",
)
BROAD = ("Male", "Young", "Pale_Skin")
# name -> (--feature_framing, --feature_input_size, --feature_mirror)
FEATURES = {
    "224 crop (paper)": ("crop", 224, False),
    "224 crop + mirror": ("crop", 224, True),
    "160 whole": ("whole", 160, False),
    "160 whole + mirror": ("whole", 160, True),
}
# name -> (--pca_whiten, --pca_l2)
SPACES = {"PCA (paper)": (False, False), "PCA -> L2": (False, True), "whitened -> L2": (True, True)}
MIN_CLUSTER_SIZE = 20


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for features, crops and results.json")
    p.add_argument("--ks", default="50,100", help="numbers of clusters")
    p.add_argument("--seeds", default="0,1,2,3,4", help="k-means seeds")
    p.add_argument("--sets", default="celeba10k,celeba_wild", help="which sets")
    p.add_argument("--features", default=",".join(FEATURES), help="feature settings (names)")
    p.add_argument(
        "--time",
        type=int,
        default=0,
        help="only time each setting's extraction on this many images of each set (after a "
        "warm-up), on an otherwise idle machine; no clustering",
    )
    return p.parse_args(argv)


def time_extraction(sets: dict, settings: list[str], count: int) -> None:
    """Prints images/s of each set and feature setting over `count` images (one warm-up run
    of 64 first: graph tracing is not extraction)."""
    from xplore_tf import features as features_lib
    from xplore_tf.features import blocks, extract

    print(f"{'set':<12} {'features':<20} images/s ({count} images, batch 32)")
    for set_name, (root, images, _) in sets.items():
        for setting in settings:
            framing, size, mirror = FEATURES[setting]
            extractor = features_lib.build_extractor("mobilenet_v2", WEIGHTS, input_size=size)
            if mirror:
                extractor = blocks.with_mirror_average(extractor)

            def run(names, extractor=extractor, framing=framing, root=root):
                extract.extract_features(
                    extractor, root, names, crop_size=0, framing=framing, batch_size=32
                )

            run(images[:64])
            start = time.perf_counter()
            run(images[64 : 64 + count])
            rate = count / (time.perf_counter() - start)
            print(f"{set_name:<12} {setting:<20} {rate:.1f}", flush=True)


def prepare_wild(out: str) -> tuple[str, str]:
    """(aligned crops folder, labels csv) of celeba_wild, preparing the photos once."""
    photos = os.path.join(SHARED, "data", "celeba_wild", "photos")
    aligned = os.path.join(out, "wild_aligned")
    if not os.path.exists(os.path.join(aligned, "faces.csv")):
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "xplore_tf.prepare",
                f"--images_dir={photos}",
                f"--out={aligned}",
                "--faces=largest",
            ],
            cwd=PROJECT_ROOT,
            check=True,
        )
        print(f"prepared celeba_wild in {time.perf_counter() - start:.0f} s", flush=True)
    labels = os.path.join(out, "wild_labels.csv")
    with open(os.path.join(SHARED, "data", "celeba_wild", "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    with open(labels, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "image": os.path.splitext(row["image"])[0] + "_f0.png"})
    return aligned, labels


def image_sets(out: str, names: list[str]) -> dict[str, tuple[str, list[str], str]]:
    """{set: (root, relative image paths, labels csv)}."""
    sets = {}
    if "celeba10k" in names:
        root = os.path.join(SHARED, "data", "celeba10k", "images")
        labels = os.path.join(SHARED, "data", "celeba10k", "labels.csv")
        sets["celeba10k"] = (root, sorted(os.listdir(root)), labels)
    if "celeba_wild" in names:
        root, labels = prepare_wild(out)
        sets["celeba_wild"] = (
            root,
            sorted(n for n in os.listdir(root) if n.endswith(".png")),
            labels,
        )
    return sets


def features(out: str, set_name: str, root: str, images: list[str], setting: str):
    """(kept indices, features [M, D], images/s) of one set and setting, cached in OUT."""
    path = os.path.join(out, "features", f"{set_name}-{setting.replace(' ', '_')}.npz")
    if os.path.exists(path):
        data = np.load(path)
        return data["kept"], data["features"], float(data["images_per_second"])
    from xplore_tf import features as features_lib
    from xplore_tf.features import blocks, extract

    framing, size, mirror = FEATURES[setting]
    extractor = features_lib.build_extractor("mobilenet_v2", WEIGHTS, input_size=size)
    if mirror:
        extractor = blocks.with_mirror_average(extractor)
    kept, feats, timing = extract.extract_features(
        extractor, root, images, crop_size=0, framing=framing, batch_size=32
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, kept=kept, features=feats, images_per_second=timing["images_per_second"])
    return kept, feats, timing["images_per_second"]


def scores(clusters: np.ndarray, columns: dict[str, np.ndarray]) -> dict[str, float]:
    """Rare-attribute precision and broad-attribute NMI of one clustering."""
    from xplore_tf.clustering import report

    precisions = [
        report.attribute_report(
            clusters, columns[a], name=a, min_cluster_size=MIN_CLUSTER_SIZE
        ).best_precision
        for a in RARE
    ]
    out = {f"prec {a}": p for a, p in zip(RARE, precisions, strict=True)}
    out["rare mean prec"] = float(np.mean(precisions))
    out["rare >= 0.8"] = float(np.sum(np.array(precisions) >= 0.8))
    for a in BROAD:
        out[f"NMI {a}"] = report.normalized_mutual_information(clusters, columns[a])
    for name, names in report.LABEL_GROUPS.items():
        values = report.group_values(columns, names)
        out[f"NMI {name}"] = report.normalized_mutual_information(clusters, values)
    out["broad mean NMI"] = float(np.mean([v for k, v in out.items() if k.startswith("NMI ")]))
    return out


def labelled(images: list[str], kept: np.ndarray, labels_csv: str):
    """(rows of the feature matrix that have labels, {column: values for those rows})."""
    from xplore_tf.clustering import report

    label_images, columns = report.read_binary_labels(labels_csv)
    a_idx, l_idx = report.join_labels([images[i] for i in kept], label_images)
    return a_idx, {name: values[l_idx] for name, values in columns.items()}


def run_set(out, set_name, root, images, labels_csv, settings, ks, seeds) -> list[dict]:
    from xplore_tf.clustering import kmeans, pca

    rows = []
    for setting in settings:
        kept, feats, speed = features(out, set_name, root, images, setting)
        rows_with_labels, columns = labelled(images, kept, labels_csv)
        for space, (whiten, l2_after) in SPACES.items():
            normalized = pca.l2_normalize(feats)
            mean, matrix = pca.fit_pca(normalized, 256, whiten=whiten)
            points = pca.to_space(feats, mean, matrix, l2_after=l2_after).astype(np.float32)
            for k in ks:
                for seed in seeds:
                    found = kmeans.discover_clusters(points, k, niter=50, nredo=5, seed=seed)
                    result = scores(found.labels[rows_with_labels], columns)
                    rows.append(
                        {
                            "set": set_name,
                            "features": setting,
                            "space": space,
                            "k": k,
                            "seed": seed,
                            "images_per_second": speed,
                            **result,
                        }
                    )
                print(f"{set_name} | {setting} | {space} | k={k}: done", flush=True)
    return rows


def table(rows: list[dict], set_name: str, k: int) -> str:
    """Markdown: one line per (features, space), mean over seeds (± their std)."""
    keys = [
        "rare mean prec",
        "rare >= 0.8",
        "NMI Male",
        "NMI Young",
        "NMI Pale_Skin",
        "NMI hair colour",
        "broad mean NMI",
    ]
    lines = [
        f"#### {set_name}, k = {k}",
        "",
        "| features | space | seeds | " + " | ".join(keys) + " | extraction img/s |",
        "|---" * (len(keys) + 4) + "|",
    ]
    chosen = [r for r in rows if r["set"] == set_name and r["k"] == k]
    for setting in dict.fromkeys(r["features"] for r in chosen):
        for space in SPACES:
            group = [r for r in chosen if r["features"] == setting and r["space"] == space]
            if not group:
                continue
            cells = []
            for key in keys:
                v = np.array([r[key] for r in group])
                digits = 1 if key == "rare >= 0.8" else 3
                cells.append(f"{v.mean():.{digits}f} ± {v.std():.{digits}f}")
            lines.append(
                f"| {setting} | {space} | {len(group)} | "
                + " | ".join(cells)
                + f" | {group[0]['images_per_second']:.1f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    ks = [int(k) for k in args.ks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = [s for s in args.features.split(",") if s]
    unknown = [s for s in settings if s not in FEATURES]
    if unknown:
        raise SystemExit(f"--features: unknown {unknown}; one of {list(FEATURES)}")
    sets = image_sets(args.out, args.sets.split(","))
    if args.time:
        time_extraction(sets, settings, args.time)
        return 0
    rows = []
    for set_name, (root, images, labels) in sets.items():
        rows += run_set(args.out, set_name, root, images, labels, settings, ks, seeds)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(rows, f, indent=1)
    for set_name in dict.fromkeys(r["set"] for r in rows):
        for k in ks:
            print(table(rows, set_name, k) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
