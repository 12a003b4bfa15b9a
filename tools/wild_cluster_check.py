"""Do prepared wild photos cluster into the attributes their aligned crops cluster into?

    python -m tools.wild_cluster_check --out=/tmp/wcc [--num=10000 --num_clusters=50] [--scene=0.25]

The cluster-level acceptance check of `xplore_tf.prepare` (docs/guide/real_photos.md):
1. the first `--num` celeba10k faces (sorted names) become wild photos, one face each
   (`tools.wild_faces`: random background, scale 0.3-1.5, rotation ±30°, EXIF orientation),
   in OUT/wild; `--scene` mirrors that fraction of each crop around it first, so a frame
   that strays past the crop shows a continuation of the picture, as a real photo would;
2. `xplore_tf.prepare` aligns them once into OUT/aligned; OUT/aligned_labels.csv gives each
   crop (`photo_NNNNN_f0.png`) its source face's labels. `--crops_as_photos` prepares the
   original crops themselves instead (no pasting, rotation, rescaling or JPEG): what is
   left is the template's framing against CelebA's own;
3. `xplore_tf.cluster` runs on the aligned crops and on the original crops (linked into
   OUT/original) with the feature settings of configs/celeba10k_mobilenet.cfg and
   `--num_clusters`, once per k-means seed (features extracted once per kind, then cached);
4. prints each attribute's best-cluster precision (clusters of at least
   `--min_cluster_size`) per seed for both, and writes OUT/check.json.

Needs ../shared (celeba10k and the MobileNetV2 weights) and the `[prepare]` extra.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(PROJECT_ROOT), "shared")
FACES = os.path.join(SHARED, "data", "celeba10k", "images")
LABELS = os.path.join(SHARED, "data", "celeba10k", "labels.csv")
CONFIG = os.path.join(PROJECT_ROOT, "configs", "celeba10k_mobilenet.cfg")
ATTRIBUTES = ("Male", "Eyeglasses", "Blond_Hair")


def _run(module: str, *args: str) -> None:
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SystemExit(f"{module} failed:\n{res.stderr[-3000:]}")
    print(f"  {module}: {time.perf_counter() - start:.0f} s", flush=True)


def crop_labels(source_of: dict[str, str], aligned: str, out_csv: str) -> int:
    """Writes the labels of each prepared crop `<photo>_f0.png` (its source face's row)."""
    with open(LABELS, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        by_image = {row["image"]: row for row in reader}
    written = 0
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for photo, source in sorted(source_of.items()):
            crop = os.path.splitext(photo)[0] + "_f0.png"
            if os.path.exists(os.path.join(aligned, crop)):
                writer.writerow({**by_image[source], "image": crop})
                written += 1
    return written


def best_precisions(workdir: str, labels_csv: str, min_cluster_size: int) -> dict[str, float]:
    """Best-cluster precision of each of ATTRIBUTES (`report.cluster_report`, as evaluate)."""
    from xplore_tf.clustering import artifacts, report

    paths, clusters, _ = artifacts.read_assignments(
        os.path.join(workdir, "clusters", artifacts.ASSIGNMENTS)
    )
    rows, _ = report.cluster_report(
        paths, clusters, labels_csv, attributes=ATTRIBUTES, min_cluster_size=min_cluster_size
    )
    return {r.attribute: r.best_precision for r in rows}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line's flags."""
    p = argparse.ArgumentParser(prog="python -m tools.wild_cluster_check", description=__doc__)
    p.add_argument("--out", required=True, help="folder for every artifact")
    p.add_argument(
        "--num",
        type=int,
        default=10000,
        help="faces (default %(default)s: all of celeba10k, the scale its config clusters at)",
    )
    p.add_argument("--seeds", default="0,1,2,3,4", help="k-means seeds (default %(default)s)")
    p.add_argument(
        "--num_clusters",
        type=int,
        default=50,
        help="k (default %(default)s, configs/celeba10k_mobilenet.cfg's)",
    )
    p.add_argument("--scene", type=float, default=0.0, help="see tools.wild_faces --scene")
    p.add_argument(
        "--min_scale",
        type=float,
        default=0.3,
        help="smallest face, x CelebA's 178 px frame (0.5 = the 89 px crops at 1:1; "
        "default %(default)s, the prepare tests' range)",
    )
    p.add_argument("--min_cluster_size", type=int, default=20, help="(default %(default)s)")
    p.add_argument(
        "--crops_as_photos",
        action="store_true",
        help="prepare the original crops themselves, no wild photos: isolates the template's "
        "framing from what pasting into a photo does",
    )
    return p.parse_args(argv)


def link_originals(names: list[str], original: str) -> None:
    """Links each of the celeba10k faces `names` into the folder `original`."""
    os.makedirs(original, exist_ok=True)
    for name in names:
        link = os.path.join(original, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(FACES, name), link)


def photos_to_prepare(
    args: argparse.Namespace, names: list[str], wild: str, original: str
) -> tuple[str, dict[str, str]]:
    """The folder of photos to prepare and each photo's source face, writing the wild
    photos first unless they are there or --crops_as_photos."""
    from tools import wild_faces

    if args.crops_as_photos:
        return original, {name: name for name in names}
    if not os.path.exists(os.path.join(wild, wild_faces.TRUTH_CSV)):
        print(f"wild photos -> {wild}", flush=True)
        wild_faces.write_set(
            FACES,
            wild,
            num=args.num,
            seed=0,
            scene=args.scene,
            scale_range=(args.min_scale, 1.5),
        )
    with open(os.path.join(wild, wild_faces.TRUTH_CSV), newline="") as f:
        source_of = {row["photo"]: row["source"] for row in csv.DictReader(f)}
    return wild, source_of


def cluster_both(
    args: argparse.Namespace, seed: int, out: str, kinds: tuple
) -> dict[str, dict[str, float]]:
    """Clusters each of `kinds` ((kind, images folder, labels csv), ...) with k-means seed
    `seed`; returns each kind's best-cluster precisions and prints them."""
    row = {}
    for kind, images, labels_csv in kinds:
        workdir = os.path.join(out, f"run_{kind}")  # seeds reuse its feature cache
        print(f"cluster {kind}, seed {seed} -> {workdir}", flush=True)
        _run(
            "xplore_tf.cluster",
            f"--flagfile={CONFIG}",
            f"--workdir={workdir}",
            f"--images_dir={images}",
            f"--labels_csv={labels_csv}",
            f"--num_clusters={args.num_clusters}",
            f"--seed={seed}",
        )
        row[kind] = best_precisions(workdir, labels_csv, args.min_cluster_size)
    print(
        f"seed {seed}: "
        + "  ".join(
            f"{a} {row['prepared'][a]:.3f} vs {row['original'][a]:.3f}" for a in ATTRIBUTES
        ),
        flush=True,
    )
    return row


def write_summary(results: dict, out: str) -> None:
    """Adds the mean over seeds to `results`, writes OUT/check.json and prints the means."""
    seeds = list(results["seeds"].values())
    results["mean"] = {
        kind: {a: sum(r[kind][a] for r in seeds) / len(seeds) for a in ATTRIBUTES}
        for kind in ("prepared", "original")
    }
    with open(os.path.join(out, "check.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"faces prepared: {results['faces_prepared']}/{results['num']}")
    for a in ATTRIBUTES:
        pm, om = results["mean"]["prepared"][a], results["mean"]["original"][a]
        print(f"{a:<12} prepared {pm:.3f}  original {om:.3f}  (difference {pm - om:+.3f})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.isdir(FACES):
        raise SystemExit(f"{FACES} not found: this check needs ../shared beside the project")
    from tools import wild_faces

    out = os.path.abspath(args.out)
    wild, aligned, original = (os.path.join(out, n) for n in ("wild", "aligned", "original"))
    names = wild_faces.list_faces(FACES)[: args.num]
    link_originals(names, original)
    photos, source_of = photos_to_prepare(args, names, wild, original)
    if not os.path.exists(os.path.join(aligned, "faces.csv")):
        print(f"prepare -> {aligned}", flush=True)
        _run("xplore_tf.prepare", f"--images_dir={photos}", f"--out={aligned}")
    labels = os.path.join(out, "aligned_labels.csv")
    found = crop_labels(source_of, aligned, labels)

    results = {
        "num": args.num,
        "faces_prepared": found,
        "scene": args.scene,
        "min_scale": args.min_scale,
        "crops_as_photos": args.crops_as_photos,
        "seeds": {},
    }
    kinds = (("prepared", aligned, labels), ("original", original, LABELS))
    for seed in [int(s) for s in args.seeds.split(",")]:
        results["seeds"][seed] = cluster_both(args, seed, out, kinds)
    write_summary(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
