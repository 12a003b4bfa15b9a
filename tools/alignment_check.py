"""Translate the photos that are also training images through both alignments; compare.

    python -m tools.alignment_check --flagfile=configs/celeba10k_mobilenet.cfg \\
        --photos=../shared/data/celeba_wild --out=/tmp/frc [--attributes=Eyeglasses]

Is it the photo or the model? Some photos of a real-photo folder (`--photos`, as
../shared/data/celeba_wild: photos/ and labels.csv) are also in the run's training images,
there as the dataset's own aligned crops. For each such photo whose face lacks an
attribute, this translates both inputs into the attribute's best cluster
(`tools.full_resolution_check`'s choice): the dataset's crop as training read it, and the
crop `xplore_tf.translate --paste_back` makes from the photo (MTCNN landmarks,
`xplore_tf.common.faces.align`). When the two edits (output minus input, at the model's
resolution) agree, what a translation of a real photo looks like is the model's doing, not
the detection, the alignment or the photo's resolution. Prints per attribute: photos, mean
|difference| of the two inputs and of the two outputs (0-255), the edits' pixel correlation
(median, 10th percentile) and the ratio of their mean sizes (photo / dataset). Detections
are cached in OUT/detections.json (shared with `tools.full_resolution_check`);
`--figure=PATH` draws the first attribute's first 8 photos (dataset crop, its translation,
photo crop, its translation): keep it out of the repository, it shows CelebA faces.
Needs the `[prepare]` extra (mtcnn).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tools import full_resolution_check as frc  # noqa: E402
from xplore_tf.common import pixels as common  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    frc.add_run_args(p, "folder of the detections cache")
    p.add_argument(
        "--attributes", default="Eyeglasses", help="labels.csv columns to translate toward"
    )
    p.add_argument("--limit", type=int, default=200, help="photos per attribute, at most")
    p.add_argument(
        "--figure",
        default="",
        help="write the first attribute's first 8 photos here (.png; shows CelebA faces)",
    )
    return p.parse_args(argv)


def both_crops(image: str, detections, images_dir: str, size: int, crop_size: int):
    """(the dataset's crop, the photo's crop), uint8 [size, size, 3], or None: no face."""
    from xplore_tf.data import images as images_lib

    face = detections.face(image)
    if face is None:
        return None
    path = os.path.join(images_dir, image)
    dataset = images_lib.load_image(path, size=size, crop_size=crop_size)
    return dataset, frc.aligned(detections.photo(image), face, size).crop


def read_labels(folder: str, attributes, in_both: set[str]) -> list[dict]:
    """The rows of folder/labels.csv whose image is also a training image."""
    with open(os.path.join(folder, "labels.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["image"] in in_both]
    missing = [a for a in attributes if rows and a not in rows[0]]
    if missing:
        raise ValueError(f"{folder}/labels.csv: no column {missing}")
    return rows


def compare(inputs_a, outputs_a, inputs_b, outputs_b) -> dict:
    """How alike two sets of translations' edits are: arrays uint8 [N, S, S, 3]. An edit
    that changes nothing has no correlation and is left out of its median and percentile."""
    a, b, out_a, out_b = (
        np.asarray(x, np.float64) for x in (inputs_a, inputs_b, outputs_a, outputs_b)
    )
    edit_a, edit_b = (out_a - a).reshape(len(a), -1), (out_b - b).reshape(len(b), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = [np.corrcoef(x, y)[0, 1] for x, y in zip(edit_a, edit_b, strict=True)]
    return {
        "photos": len(a),
        "inputs_differ": float(np.abs(a - b).mean()),
        "outputs_differ": float(np.abs(out_a - out_b).mean()),
        "edit_correlation_median": float(np.nanmedian(correlation)),
        "edit_correlation_p10": float(np.nanquantile(correlation, 0.1)),
        "edit_size_ratio": float(np.abs(edit_b).mean() / max(np.abs(edit_a).mean(), 1e-9)),
    }


def write_sheet(path: str, columns) -> None:
    from PIL import Image

    rows = [np.concatenate(row, axis=1) for row in list(zip(*columns, strict=True))[:8]]
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2)).save(path)


def main(argv=None) -> int:
    from absl import flags

    args = parse_args(argv)
    try:
        return run(args)
    except (OSError, ValueError, flags.Error) as e:
        print(f"alignment_check: error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    from xplore_tf import translate_lib
    from xplore_tf.data import sources

    config = frc.load_config(args)
    images_dir, size = sources.images_dir(config), config.model.image_size
    os.makedirs(args.out, exist_ok=True)
    attributes = [a for a in args.attributes.split(",") if a]
    clusters = frc.target_clusters(config, attributes)
    rows = read_labels(args.photos, attributes, set(os.listdir(images_dir)))
    detections = frc.Detections(args.photos, args.out)
    translator = translate_lib.Translator.from_checkpoint(config)
    for a in attributes:
        cluster = clusters.get(a, (-1, 0.0))[0]
        if cluster < 0:
            print(f"{a}: no best cluster in the run's report; left out", file=sys.stderr)
            continue
        lacking = [r["image"] for r in rows if r[a] == "0"][: args.limit]
        crops = (
            both_crops(i, detections, images_dir, size, config.data.crop_size) for i in lacking
        )
        pairs = [c for c in crops if c]
        detections.save()
        if not pairs:
            print(
                f"{a}: no photo of {args.photos} lacking it is also in {images_dir}",
                file=sys.stderr,
            )
            continue
        dataset, photo = (list(x) for x in zip(*pairs, strict=True))
        outs = [
            [
                common.decode(b)
                for b in translator.translate_bytes(
                    [common.png_bytes(x) for x in inputs], [cluster] * len(inputs)
                )
            ]
            for inputs in (dataset, photo)
        ]
        result = compare(dataset, outs[0], photo, outs[1])
        print(f"{a} (cluster {cluster}): " + ", ".join(f"{k} {v:.3g}" for k, v in result.items()))
        if args.figure and a == attributes[0]:
            write_sheet(args.figure, [dataset, outs[0], photo, outs[1]])
            print(f"sheet of the first {min(8, len(dataset))} photos: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
