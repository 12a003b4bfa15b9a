"""Is it the photo or the model? The same faces through both alignments, translated alike.

    python -m tools.alignment_check --flagfile=configs/celeba10k_mobilenet.cfg \\
        --photos=../shared/data/celeba_wild --out=/tmp/frc [--attributes=Eyeglasses]

Some photos of a real-photo folder (`--photos`, as ../shared/data/celeba_wild: photos/ and
labels.csv) are also in the run's training folder (`--images_dir` of the flagfile), there
as the dataset's own aligned crops. For each such photo whose face lacks an attribute, this
translates both inputs into the attribute's best cluster (`tools.full_resolution_check`'s
choice): the dataset's crop as training read it, and the crop `xplore_tf.translate
--paste_back` makes from the photo (MTCNN landmarks, `xplore_tf.common.faces.align`). When
the two edits (output minus input, at the model's resolution) agree, what a translation of
a real photo looks like is the model's doing, not the detection, the alignment or the
photo's resolution. Prints per attribute: photos, mean |difference| of the two inputs and of
the two outputs (0-255), the edits' pixel correlation (median, 10th percentile) and the
ratio of their mean sizes (photo / dataset). Detections are cached in OUT/detections.json
(shared with `tools.full_resolution_check`); `--figure=PATH` draws the first 8 photos
(dataset crop, its translation, photo crop, its translation): keep it out of the
repository, it shows CelebA faces; drawn for the first attribute. Needs the `[prepare]` extra (mtcnn).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tools import full_resolution_check as frc  # noqa: E402
from xplore_tf.common import pixels as common  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    frc.add_run_args(p, "folder of the detections cache")
    p.add_argument("--attributes", default="Eyeglasses", help="comma-separated targets")
    p.add_argument("--limit", type=int, default=200, help="photos per attribute, at most")
    p.add_argument("--figure", default="", help="write the first 8 photos' sheet here (.png)")
    return p.parse_args(argv)


def both_crops(photo: frc.Photo, detections, images_dir: str, size: int):
    """(the dataset's crop, the photo's crop), uint8 [size, size, 3], or None: no face."""
    from xplore_tf.data import images as images_lib

    face = detections.face(photo.image)
    if face is None:
        return None
    dataset = images_lib.load_image(os.path.join(images_dir, photo.image), size=size)
    return dataset, frc.aligned(detections.photo(photo.image), face, size).crop


def compare(inputs_a, outputs_a, inputs_b, outputs_b) -> dict:
    """How alike two sets of translations' edits are: arrays uint8 [N, S, S, 3]."""
    a, b = (np.asarray(x, np.float64) for x in (inputs_a, inputs_b))
    edit_a = (np.asarray(outputs_a, np.float64) - a).reshape(len(a), -1)
    edit_b = (np.asarray(outputs_b, np.float64) - b).reshape(len(b), -1)
    correlation = [np.corrcoef(x, y)[0, 1] for x, y in zip(edit_a, edit_b, strict=True)]
    return {
        "photos": len(a),
        "inputs_differ": float(np.abs(a - b).mean()),
        "outputs_differ": float(np.abs(np.asarray(outputs_a, float) - outputs_b).mean()),
        "edit_correlation_median": float(np.median(correlation)),
        "edit_correlation_p10": float(np.quantile(correlation, 0.1)),
        "edit_size_ratio": float(np.abs(edit_b).mean() / max(np.abs(edit_a).mean(), 1e-9)),
    }


def write_sheet(path: str, columns) -> None:
    from PIL import Image

    rows = [np.concatenate(row, axis=1) for row in list(zip(*columns, strict=True))[:8]]
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2)).save(path)


def main(argv=None) -> int:
    from xplore_tf import translate_lib

    args = parse_args(argv)
    config = frc.load_config(args)
    images_dir, size = config.data.images_dir, config.model.image_size
    os.makedirs(args.out, exist_ok=True)
    attributes = [a for a in args.attributes.split(",") if a]
    clusters = frc.target_clusters(config, attributes)
    in_both = set(os.listdir(images_dir))
    photos = [
        p
        for split in ("tune", "report")
        for p in frc.read_photos(args.photos, config.report.labels_csv, split)
        if p.image in in_both
    ]
    detections = frc.Detections(args.photos, args.out)
    translator = translate_lib.Translator.from_checkpoint(config)
    for a in attributes:
        lacking = [p for p in photos if p.labels.get(a) == 0][: args.limit]
        pairs = [c for c in (both_crops(p, detections, images_dir, size) for p in lacking) if c]
        detections.save()
        if not pairs:
            print(f"{a}: no photo of {args.photos} is also in {images_dir}", file=sys.stderr)
            continue
        dataset, photo = (list(x) for x in zip(*pairs, strict=True))
        cluster = clusters[a][0]
        outs = [
            [
                common.decode(b)
                for b in translator.translate_bytes(
                    [common.png_bytes(x) for x in crops], [cluster] * len(crops)
                )
            ]
            for crops in (dataset, photo)
        ]
        result = compare(dataset, outs[0], photo, outs[1])
        print(f"{a} (cluster {cluster}): " + ", ".join(f"{k} {v:.3g}" for k, v in result.items()))
        if args.figure and a == attributes[0]:
            write_sheet(args.figure, [dataset, outs[0], photo, outs[1]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
