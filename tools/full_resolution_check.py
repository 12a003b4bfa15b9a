"""Translations of real photos at their own resolution, measured.

    python -m tools.full_resolution_check --flagfile=configs/celeba10k_mobilenet.cfg \\
        --photos=../shared/data/celeba_wild --out=/tmp/frc [--split=report]

For a run trained on aligned faces (the flagfile's; `--workdir` overrides it) and a folder
of real photos with `labels.csv` (`image, identity, <0/1 attributes>`, as
../shared/data/celeba_wild): for each attribute of `--attributes`, up to `--per_attribute`
photos whose main face lacks it and is at least `--min_face` px (detection box), are
translated into the attribute's best cluster (highest precision on the run's own labelled
images) and pasted back, once per `--variants` entry:

- `model`: the model's output at its resolution, warped back in place of the face (as
  `--output_resolution=model`);
- `BASE+COLOUR`: the edit carried to the photo's resolution (`xplore_tf/edit.py`;
  `--output_resolution=input`), BASE `residual` or `difference` (--edit_base), COLOUR
  `no_cast`, `luminance` or `generator` (--face_colour).

Identities are split by the run's training labels (--labels_csv of the flagfile, which has
an identity column): `report` photos show people the generator never saw, `tune` photos
people it trained on; the attribute probe always trains on `tune` photos, so a report never
judges a person the probe saw. Measures per photo and variant
(`xplore_tf/evaluation/photos.py`):

- detail: Laplacian correlation and variance ratio inside the paste mask (alpha >= 0.5);
- identity: dlib's face descriptor distance between the aligned 256 px crops of the face in
  the two photos (verified: < 0.6);
- skin: CIELAB delta E of the mean colour of the central face (eyes to mouth);
- gain: the probe's P(attribute) after minus before, on the aligned 256 px crops (logistic
  regression on the run's clustering-extractor features, `evaluation/transfer.py`), and
  the same on both crops shrunk to the model's resolution first ("at S");
- outside: every pixel outside the paste mask unchanged; seconds per photo (translation and
  paste, detection excluded: detections are cached in OUT/detections.json).

Writes OUT/results.json and prints the table (docs/experiments/2026-12-04-full-resolution.md
holds one run's); `--figure=PATH` also draws a before/after figure (one photo per
--figure_attributes entry). Keep it out of the repository: it shows CelebA photos (the
README's docs/paste_back_astronaut.jpg is its astronaut rows alone).
Needs the `[prepare]` (mtcnn) and `[eval]` (dlib) extras.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from xplore_tf.common import beyond_clusters as bc  # noqa: E402
from xplore_tf.common import faces  # noqa: E402
from xplore_tf.common import pixels as common  # noqa: E402

ATTRIBUTES = ("Male", "Blond_Hair", "Eyeglasses", "Smiling", "Wearing_Hat")
VARIANTS = ("model", "residual+generator", "difference+no_cast", "residual+no_cast")
CROP = 256  # px of the aligned crops the judges read


@dataclasses.dataclass
class Photo:
    image: str
    identity: str
    labels: dict[str, int]
    face: faces.Face | None = None


def add_run_args(p: argparse.ArgumentParser, out: str) -> None:
    """--flagfile, --workdir, --photos and --out (`out`: what the folder holds)."""
    p.add_argument("--flagfile", required=True, help="the run's flagfile")
    p.add_argument("--workdir", default="", help="the run's folder (default: the flagfile's)")
    p.add_argument("--photos", required=True, help="folder with photos/ and labels.csv")
    p.add_argument("--out", required=True, help=out)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_args(p, "folder for results.json and detections")
    p.add_argument(
        "--split",
        choices=("report", "tune"),
        default="report",
        help="report: people absent from the run's training labels; tune: people in them",
    )
    p.add_argument("--attributes", default=",".join(ATTRIBUTES), help="comma-separated targets")
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="model, or BASE+COLOUR: BASE residual|difference, COLOUR no_cast|luminance|generator",
    )
    p.add_argument("--per_attribute", type=int, default=60, help="photos per attribute")
    p.add_argument("--min_face", type=int, default=128, help="detection box, shorter side px")
    p.add_argument("--probe_photos", type=int, default=2000, help="tune photos for the probe")
    p.add_argument("--seed", type=int, default=0, help="seed of the photo order")
    p.add_argument(
        "--figure",
        default="",
        help="write the before/after figure here (.png or .jpg): scikit-image's astronaut "
        "into the first --figure_attributes cluster (with the 'model' variant beside, zoomed), "
        "then one photo per attribute, after = the last --variants entry",
    )
    p.add_argument(
        "--figure_attributes",
        default="Male,Blond_Hair,Eyeglasses,Smiling",
        help="the figure's attributes, one photo each (the first also for the astronaut)",
    )
    return p.parse_args(argv)


def load_config(args):
    from xplore_tf import flags as xflags

    argv = ["full_resolution_check", f"--flagfile={args.flagfile}"]
    if args.workdir:
        argv.append(f"--workdir={args.workdir}")
    xflags.FLAGS(argv)
    return xflags.config_from_flags()


def read_photos(folder: str, training_labels: str, split: str) -> list[Photo]:
    """The labelled photos of `split`: people in (tune) or absent from (report) training."""
    with open(training_labels, newline="") as f:
        trained = {row["identity"] for row in csv.DictReader(f) if "identity" in row}
    if not trained:
        raise ValueError(f"{training_labels}: no identity column to hold people out by")
    with open(os.path.join(folder, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    keep = (lambda i: i in trained) if split == "tune" else (lambda i: i not in trained)
    return [
        Photo(r["image"], r["identity"], {k: int(v) for k, v in r.items() if v in ("0", "1")})
        for r in rows
        if keep(r["identity"])
    ]


def target_clusters(config, attributes) -> dict[str, tuple[int, float]]:
    """{attribute: (its best cluster, that cluster's precision)} on the run's own labels."""
    from xplore_tf.clustering import artifacts, report

    images, clusters, _ = artifacts.read_assignments(
        os.path.join(config.clusters_dir, artifacts.ASSIGNMENTS)
    )
    rows, _ = report.cluster_report(
        images,
        clusters,
        config.report.labels_csv,
        attributes=tuple(attributes),
        min_cluster_size=config.report.min_cluster_size,
    )
    return {r.attribute: (r.best_cluster, r.best_precision) for r in rows}


class Detections:
    """The largest face of each photo, detected once and cached in OUT/detections.json."""

    def __init__(self, folder: str, out: str):
        self.folder, self.path = folder, os.path.join(out, "detections.json")
        self.cache = json.load(open(self.path)) if os.path.exists(self.path) else {}
        self.detector = faces.make_detector("mtcnn", min_face_size=20)
        self.pending = 0

    def photo(self, image: str) -> np.ndarray:
        with open(os.path.join(self.folder, "photos", image), "rb") as f:
            return common.decode(f.read(), image)

    def face(self, image: str) -> faces.Face | None:
        if image not in self.cache:
            found = faces.detect_faces(self.photo(image), self.detector)
            big = max(found, key=lambda f: f.size, default=None)
            self.cache[image] = (
                None if big is None else [list(big.box), big.score, big.landmarks.tolist()]
            )
            self.pending += 1
            if self.pending >= 50:
                self.save()
        row = self.cache[image]
        return None if row is None else faces.Face(tuple(row[0]), row[1], np.array(row[2]))

    def save(self) -> None:
        common.write_file(self.path, json.dumps(self.cache).encode())
        self.pending = 0


def select(photos, detections, attributes, per_attribute, min_face, seed):
    """{attribute: photos lacking it whose largest face is >= min_face px}, per_attribute each."""
    chosen = {}
    for a in attributes:
        order = np.random.default_rng(seed).permutation(len(photos))
        picked = []
        for i in order:
            p = photos[i]
            if p.labels.get(a) != 0:
                continue
            p.face = detections.face(p.image)
            if p.face is not None and p.face.size >= min_face:
                picked.append(p)
            if len(picked) == per_attribute:
                break
        chosen[a] = picked
        print(f"{a}: {len(picked)} photos", flush=True)
    detections.save()
    return chosen


def aligned(photo: np.ndarray, face: faces.Face, size: int) -> faces.AlignedFace:
    matrix = faces.alignment_matrix(face.landmarks, "mtcnn", size)
    return faces.AlignedFace(face, matrix, faces.align(photo, matrix, size))


class Probe:
    """Logistic regressions on the clustering extractor's features of aligned crops."""

    def __init__(self, config, attributes):
        from xplore_tf.clustering import pipeline

        self.extractor = pipeline.clustering_extractor(config)
        self.attributes = list(attributes)

    def features(self, crops) -> np.ndarray:
        import tensorflow as tf

        size = self.extractor.input_size
        out = []
        for i in range(0, len(crops), 32):
            x = tf.cast(np.stack(crops[i : i + 32]), tf.float32)
            x = tf.image.resize(x, [size, size], "bicubic", antialias=True)
            out.append(self.extractor(tf.clip_by_value(x, 0.0, 255.0)).numpy())
        return np.concatenate(out)

    def fit(self, photos, detections, limit: int) -> int:
        from xplore_tf.evaluation import transfer

        crops, labels = [], []
        for p in photos[:limit]:
            face = detections.face(p.image)
            if face is not None:
                crops.append(aligned(detections.photo(p.image), face, CROP).crop)
                labels.append([p.labels[a] for a in self.attributes])
        detections.save()
        self.probe = transfer.fit_logistic_probe(
            self.features(crops), np.array(labels), attributes=self.attributes
        )
        return len(crops)

    def probability(self, crops, attribute: str) -> np.ndarray:
        j = self.attributes.index(attribute)
        return self.probe.predict_proba(self.features(crops))[:, j]


def translators(config, variants):
    """{variant: (translator, full resolution?)}, each G_ema built from the run's checkpoint."""
    from xplore_tf import translate_lib

    out = {}
    for v in variants:
        export = config.export
        if v != "model":
            base, _, colour = v.partition("+")
            export = dataclasses.replace(export, edit_base=base, face_colour=colour or "no_cast")
        cfg = dataclasses.replace(config, export=export)
        out[v] = (translate_lib.Translator.from_checkpoint(cfg), v != "model")
    return out


def translate_fn(translator, full: bool, cluster: int, k: int):
    """aligned crops -> translated crops, as translate --paste_back sends them."""
    fn = bc.translation_function(
        translator.predict,
        bc.Target(cluster, cluster=cluster),
        num_clusters=k,
        full_resolution=full,
        plain=lambda pngs, ids: translator.translate_bytes(pngs, ids),
    )
    return lambda crops: [common.decode(b) for b in fn([common.png_bytes(c) for c in crops])]


def measure(photo, out, face, mask, embedder) -> dict:
    from xplore_tf.evaluation import photos as measures

    before = aligned(photo, face.face, CROP).crop
    after = faces.align(out, faces.alignment_matrix(face.face.landmarks, "mtcnn", CROP), CROP)
    detail = measures.detail_kept(photo, out, mask >= 0.5)
    e = embedder.embed(np.stack([before, after]))
    return {
        "detail": detail.correlation,
        "variance_ratio": detail.variance_ratio,
        "identity_distance": float(np.linalg.norm(e[0] - e[1])),
        "skin_delta_e": measures.skin_colour_shift(before, after),
        "outside_unchanged": bool(np.array_equal(out[mask == 0], photo[mask == 0])),
        "_after": after,
    }


def run_photo(p, attribute, cluster, models, detections, embedder, k, config) -> dict:
    photo = detections.photo(p.image)
    face = aligned(photo, p.face, config.prepare.aligned_size)
    mask = faces.paste_mask(photo.shape, face.matrix, face.crop.shape[0])
    record = {"image": p.image, "identity": p.identity, "attribute": attribute, "v": {}}
    outputs = {}
    for name, (translator, full) in models.items():
        start = time.perf_counter()
        out = faces.paste_translations(
            photo,
            [face],
            translate_fn(translator, full, cluster, k),
            crop_size=config.data.crop_size,
            full_resolution=full,
        )
        seconds = time.perf_counter() - start
        record["v"][name] = {**measure(photo, out, face, mask, embedder), "seconds": seconds}
        outputs[name] = out
    return record, photo, outputs


def _at_size(crop: np.ndarray, size: int) -> np.ndarray:
    """The crop as the model sees it: shrunk to its resolution (antialiased), then back."""
    import tensorflow as tf

    x = tf.image.resize(tf.cast(crop[None], tf.float32), [size, size], "bicubic", antialias=True)
    x = tf.image.resize(x, crop.shape[:2], "bicubic")
    return np.asarray(tf.clip_by_value(tf.round(x), 0, 255)[0], np.uint8)


def summarise(records, variants, attributes) -> str:
    lines = [
        f"{'variant':<16} {'attribute':<12} {'n':>3} {'detail':>13} {'var':>5} {'dE':>5} "
        f"{'id<0.6':>6} {'id dist':>7} {'gain':>7} {'at S':>7} {'s/photo':>7} outside"
    ]
    for v in variants:
        for a in [*attributes, "all"]:
            rows = [r for r in records if a in ("all", r["attribute"])]
            if not rows:
                continue
            m = {key: np.array([r["v"][v][key] for r in rows]) for key in rows[0]["v"][v]}
            lines.append(
                f"{v:<16} {a:<12} {len(rows):>3} {np.median(m['detail']):.3f} "
                f"(>={m['detail'].min():.2f}) {np.median(m['variance_ratio']):5.2f} "
                f"{np.median(m['skin_delta_e']):5.1f} {np.mean(m['identity_distance'] < 0.6):6.3f} "
                f"{np.mean(m['identity_distance']):7.3f} {np.mean(m['gain']):+7.3f} "
                f"{np.mean(m['gain_at_model_size']):+7.3f} "
                f"{np.mean(m['seconds']):7.2f} {'yes' if m['outside_unchanged'].all() else 'NO'}"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from xplore_tf.evaluation import identity

    config = load_config(args)
    os.makedirs(args.out, exist_ok=True)
    attributes = [a for a in args.attributes.split(",") if a]
    variants = [v for v in args.variants.split(",") if v]
    clusters = target_clusters(config, attributes)
    print("target clusters (cluster, precision):", clusters, flush=True)
    detections = Detections(args.photos, args.out)
    chosen = select(
        read_photos(args.photos, config.report.labels_csv, args.split),
        detections,
        attributes,
        args.per_attribute,
        args.min_face,
        args.seed,
    )
    probe = Probe(config, attributes)
    tune = read_photos(args.photos, config.report.labels_csv, "tune")
    np.random.default_rng(args.seed).shuffle(tune)
    print(f"probe: {probe.fit(tune, detections, args.probe_photos)} tune photos", flush=True)
    models = translators(config, variants)
    k = len(next(iter(models.values()))[0].clusters().ids)
    embedder = identity.DlibFaceEmbedder()
    records, examples = [], {}
    for a in attributes:
        for i, p in enumerate(chosen[a]):
            record, photo, outputs = run_photo(
                p, a, clusters[a][0], models, detections, embedder, k, config
            )
            crops = [aligned(photo, p.face, CROP).crop]
            crops += [record["v"][v].pop("_after") for v in variants]
            for key, judged in (
                ("gain", crops),
                ("gain_at_model_size", [_at_size(c, config.model.image_size) for c in crops]),
            ):
                p_attr = probe.probability(judged, a)
                for v, g in zip(variants, p_attr[1:], strict=True):
                    record["v"][v][key] = float(g - p_attr[0])
            records.append(record)
            if a not in examples and p.image not in {e[0] for e in examples.values()}:
                examples[a] = (p.image, photo, outputs)  # the first photo not shown yet
            print(f"{a} {i + 1}/{len(chosen[a])} {p.image}", flush=True)
    table = summarise(records, variants, attributes)
    print(table)
    common.write_file(
        os.path.join(args.out, "results.json"),
        json.dumps(
            {"args": vars(args), "clusters": clusters, "records": records}, indent=1
        ).encode(),
    )
    if args.figure:
        names = args.figure_attributes.split(",")
        first = (
            astronaut_rows(models, clusters[names[0]][0], k, config) if "model" in models else []
        )
        write_figure(args.figure, examples, names, variants[-1], first)
    return 0


def _height(image: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    width = round(image.shape[1] * height / image.shape[0])
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def _row(images: list[np.ndarray], gap: int = 6) -> np.ndarray:
    """Images side by side, top-aligned, on white."""
    height = max(i.shape[0] for i in images)
    cells = []
    for image in images:
        pad = ((0, height - image.shape[0]), (0, 0), (0, 0))
        cells += [np.pad(image, pad, constant_values=255), np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(cells[:-1], axis=1)


def astronaut_rows(models, cluster: int, k: int, config) -> list[np.ndarray]:
    """scikit-image's astronaut (public domain) before | after at 512 px; below, her eyes 3x:
    before | at the model's resolution | at the photo's."""
    from skimage import data

    photo = data.astronaut()
    detector = faces.make_detector("mtcnn")
    face = faces.find_faces(photo, detector, size=config.prepare.aligned_size, faces="largest")
    outs = {}
    for name, (translator, full) in models.items():
        fn = translate_fn(translator, full, cluster, k)
        outs[name] = faces.paste_translations(
            photo, face, fn, crop_size=config.data.crop_size, full_resolution=full
        )
    x, y = face[0].face.landmarks[:2].mean(axis=0).astype(int)
    box = (slice(y - 28, y + 44), slice(x - 56, x + 56))

    def zoom(image):
        return np.repeat(np.repeat(image[box], 3, axis=0), 3, axis=1)

    full = [v for v in models if v != "model"][-1]
    return [
        _row([photo, outs[full]]),
        _row([zoom(photo), zoom(outs["model"]), zoom(outs[full])]),
    ]


def write_figure(path, examples, attributes, variant, first_rows=(), height=300) -> None:
    """`first_rows`, then before | after (`variant`) of one photo per attribute, two a row."""
    from PIL import Image

    pairs = []
    for a in attributes:
        if a in examples:
            _, photo, outputs = examples[a]
            pairs.append(_row([_height(photo, height), _height(outputs[variant], height)]))
    rows = list(first_rows)
    rows += [_row(pairs[i : i + 2], gap=24) for i in range(0, len(pairs), 2)]
    width = max(r.shape[1] for r in rows)
    canvas = []
    for r in rows:
        canvas.append(np.pad(r, ((0, 10), (0, width - r.shape[1]), (0, 0)), constant_values=255))
    Image.fromarray(np.concatenate(canvas)[:-10]).save(path, quality=90)


if __name__ == "__main__":
    sys.exit(main())
