"""Real photos in: detect, align and crop every face of a folder (`xplore_tf.prepare`).

Users have phone and camera photos (faces anywhere, any size, tilted, several per picture,
EXIF-rotated), not CelebA's aligned crops; centre-cropping them clusters backgrounds and
framing. `prepare_folder` turns a folder of photos into aligned face crops framed like
CelebA's (serving/faces.py: five landmarks by a detector whose weights ship in its wheel,
a similarity transform onto a fixed template):

    OUT/<relative path without extension>_f<i>.png   face i of the photo, largest first
    OUT/faces.csv      one row per crop: image (crop path), source (photo path), face, score,
                       box size, the five landmarks (photo px) and the 2x3 photo -> crop
                       matrix, so every crop maps back to its photo (written last)
    OUT/summary.json   counts, the photos with no face, the unreadable files, timings

Photos are decoded by `serving.client_common.decode_rgb` (EXIF orientation applied), as in
every other stage; a photo without a face, or one that cannot be decoded, is listed in the
summary and skipped, never fatal. `ensure_prepared` is the `--dataset=folder --prepare` path
of cluster/train: it prepares --images_dir into WORKDIR/prepared once and reuses it while
the folder listing and the prepare settings are unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import time

from absl import logging

from serving import client_common, faces
from xplore_tf import io_utils
from xplore_tf.config import Config, PrepareConfig
from xplore_tf.data import images as images_lib

FACES_CSV = "faces.csv"
SUMMARY_JSON = "summary.json"
SETTINGS_JSON = "prepare.json"  # what ensure_prepared compares before reusing a folder
FACES_COLUMNS = (
    "image",
    "source",
    "face",
    "score",
    "size",
    *(f"{name}_{axis}" for name in faces.LANDMARKS for axis in ("x", "y")),
    "m00",
    "m01",
    "m02",
    "m10",
    "m11",
    "m12",
)


@dataclasses.dataclass(frozen=True)
class PrepareSummary:
    """What `prepare_folder` did (also written as OUT/summary.json)."""

    images_dir: str
    out: str
    photos: int  # listed photos
    photos_with_faces: int
    faces: int  # crops written
    no_face: list[str]  # photos (relative paths) where no face passed the filters
    unreadable: dict[str, str]  # photo -> reason
    seconds: float
    photos_per_second: float
    detector: str
    aligned_size: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def crop_names(rel_paths: list[str]) -> dict[str, str]:
    """{photo: crop stem}: `dir/name.jpg` -> `dir/name`, or `dir/name.jpg` when another
    photo of the folder has the same stem (name.jpg and name.png)."""
    stems = [os.path.splitext(p)[0] for p in rel_paths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return {p: (s if counts[s] == 1 else p) for p, s in zip(rel_paths, stems, strict=True)}


def _check_folders(images_dir: str, out: str) -> None:
    if not out:
        raise ValueError("--out is required: the folder to write the aligned faces into")
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"--images_dir: {images_dir!r} is not a folder")
    real_in, real_out = os.path.realpath(images_dir), os.path.realpath(out)
    if real_out == real_in or real_out.startswith(real_in + os.sep):
        raise ValueError(
            f"--out={out} is inside --images_dir={images_dir}: the crops would be read as "
            "photos next time; pass a folder outside it"
        )


def _row(crop: str, source: str, index: int, aligned: faces.AlignedFace) -> list:
    f = aligned.face
    return [
        crop,
        source,
        index,
        f"{f.score:.4f}",
        f"{f.size:.1f}",
        *(f"{v:.2f}" for v in f.landmarks.reshape(-1)),
        *(f"{v:.6g}" for v in aligned.matrix.reshape(-1)),
    ]


def _previous_crops(out: str) -> set[str]:
    """Crops listed by an earlier run's faces.csv in `out` (removed unless written again)."""
    try:
        with open(os.path.join(out, FACES_CSV), newline="") as f:
            return {row["image"] for row in csv.DictReader(f) if row.get("image")}
    except (OSError, KeyError, csv.Error):
        return set()


def prepare_folder(
    images_dir: str,
    out: str,
    prep: PrepareConfig,
    *,
    detector: faces.Detector | None = None,
    log_every_s: float = 10.0,
) -> PrepareSummary:
    """Detects, aligns and writes every face of every photo below `images_dir` into `out`.

    Photos are listed as for clustering (`data.images.scan_images`: recursive, links
    followed); faces are filtered by `prep.min_face_size` / `min_face_score`, `prep.faces`
    picks all or the largest, crops are `prep.aligned_size` px. Files are written
    atomically; faces.csv last. Crops listed in an earlier faces.csv of `out` that this run
    does not write again are removed (nothing else in `out` is touched).

    Raises FileNotFoundError / ValueError (one line naming the flag) for a missing input
    folder, an output inside it, or a detector that is not installed.
    """
    _check_folders(images_dir, out)
    detector = detector or _detector(prep)
    listing = images_lib.scan_images(images_dir)
    names = crop_names(listing.images)
    previous = _previous_crops(out)
    rows, written, no_face, unreadable = [], set(), [], {}
    total = len(listing.images)
    logging.info("prepare: %d photos in %s, detector %s", total, images_dir, detector.name)
    start = last_log = time.perf_counter()
    for done, rel in enumerate(listing.images, start=1):
        try:
            rgb = client_common.read_rgb(os.path.join(images_dir, rel))
        except client_common.ImageError as e:
            logging.warning("prepare: skipping unreadable %s", e)
            unreadable[rel] = e.reason
            continue
        found = faces.find_faces(
            rgb,
            detector,
            size=prep.aligned_size,
            faces=prep.faces,
            min_face_size=prep.min_face_size,
            min_score=prep.min_face_score,
        )
        if not found:
            no_face.append(rel)
        for i, aligned in enumerate(found):
            crop = f"{names[rel]}_f{i}.png"
            io_utils.write_bytes(
                os.path.join(out, *crop.split("/")), client_common.png_bytes(aligned.crop)
            )
            written.add(crop)
            rows.append(_row(crop, rel, i, aligned))
        now = time.perf_counter()
        if now - last_log >= log_every_s:
            rate = done / (now - start)
            logging.info(
                "prepare: %d/%d photos, %d faces, %.2f images/s, ETA %.0f s",
                done,
                total,
                len(rows),
                rate,
                (total - done) / max(rate, 1e-9),
            )
            last_log = now
    seconds = time.perf_counter() - start
    for stale in sorted(previous - written):
        path = os.path.join(out, *stale.split("/"))
        if os.path.isfile(path):
            os.remove(path)
    summary = PrepareSummary(
        images_dir=images_dir,
        out=out,
        photos=total,
        photos_with_faces=total - len(no_face) - len(unreadable),
        faces=len(rows),
        no_face=no_face,
        unreadable=unreadable,
        seconds=round(seconds, 3),
        photos_per_second=round(total / max(seconds, 1e-9), 3),
        detector=detector.name,
        aligned_size=prep.aligned_size,
    )
    io_utils.write_json(os.path.join(out, SUMMARY_JSON), summary.to_dict())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FACES_COLUMNS)
    writer.writerows(rows)
    io_utils.write_text(os.path.join(out, FACES_CSV), buf.getvalue())
    return summary


def _detector(prep: PrepareConfig) -> faces.Detector:
    try:
        return faces.make_detector(prep.detector, min_face_size=prep.min_face_size)
    except faces.DetectorMissing as e:
        raise ValueError(f"--detector={prep.detector}: {e}") from None


def format_summary(summary: PrepareSummary, *, max_listed: int = 20) -> str:
    """The lines `xplore_tf.prepare` prints: counts, speed, the photos without a face."""
    lines = [
        f"prepared {summary.faces} faces from {summary.photos_with_faces} of "
        f"{summary.photos} photos in {summary.seconds:.1f} s ({summary.photos_per_second:.2f} "
        f"images/s, detector {summary.detector}, {summary.aligned_size} px crops) -> "
        f"{summary.out}/{FACES_CSV}"
    ]
    for title, items in (
        ("no face found", summary.no_face),
        ("unreadable", [f"{k}: {v}" for k, v in summary.unreadable.items()]),
    ):
        if items:
            shown = ", ".join(items[:max_listed])
            more = f" (+{len(items) - max_listed} more)" if len(items) > max_listed else ""
            lines.append(f"{title} in {len(items)} photos: {shown}{more}")
    return "\n".join(lines)


def _settings(images_dir: str, prep: PrepareConfig) -> dict:
    """What a prepared folder depends on: the settings and the photo listing (names, sizes,
    modification times), hashed."""
    listing = images_lib.scan_images(images_dir)
    digest = hashlib.blake2b(digest_size=16)
    for rel in listing.images:
        st = os.stat(os.path.join(images_dir, rel))
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    keys = ("detector", "faces", "aligned_size", "min_face_size", "min_face_score")
    return {
        "images_dir": images_dir,
        **{k: getattr(prep, k) for k in keys},
        "templates": faces.TEMPLATES[prep.detector],
        "listing": digest.hexdigest(),
    }


def ensure_prepared(config: Config) -> str:
    """WORKDIR/prepared for `--dataset=folder --prepare`: prepared once, then reused.

    Reused when its prepare.json equals the current settings and folder listing; otherwise
    prepared again into a temporary folder that replaces it (a crash leaves the old one).
    """
    images_dir, target = config.data.images_dir, config.prepared_dir
    settings = json.loads(json.dumps(_settings(images_dir, config.prepare)))
    try:
        with open(os.path.join(target, SETTINGS_JSON)) as f:
            if json.load(f) == settings and os.path.isfile(os.path.join(target, FACES_CSV)):
                logging.info("prepare: reusing the aligned faces in %s", target)
                return target
    except (OSError, ValueError):
        pass
    tmp = f"{target}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    summary = prepare_folder(images_dir, tmp, config.prepare)
    logging.info("%s", format_summary(summary))
    if not summary.faces:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(
            f"--prepare: no face found in the {summary.photos} photos of {images_dir} "
            f"(--detector={config.prepare.detector}, --min_face_size="
            f"{config.prepare.min_face_size}, --min_face_score={config.prepare.min_face_score})"
        )
    io_utils.write_json(os.path.join(tmp, SETTINGS_JSON), settings)
    old = f"{target}.old-{os.getpid()}"
    if os.path.exists(target):
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
