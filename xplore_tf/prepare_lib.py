"""Real photos in: detect, align and crop every face of a folder (`xplore_tf.prepare`).

Users have phone and camera photos (faces anywhere, any size, tilted, several per picture,
EXIF-rotated), not CelebA's aligned crops; centre-cropping them clusters backgrounds and
framing. `prepare_folder` turns a folder of photos into aligned face crops framed like
CelebA's (xplore_tf/common/faces.py: five landmarks by a detector whose weights ship in its wheel,
a similarity transform onto a fixed template):

    OUT/<relative path without extension>_f<i>.png   face i of the photo, largest first
    OUT/faces.csv      one row per crop: image (crop path), source (photo path), face, score,
                       box size, the five landmarks (photo px) and the 2x3 photo -> crop
                       matrix, so every crop maps back to its photo (written last)
    OUT/.prepare_progress.jsonl   the photos done, while a run is under way: a killed run
                       started again goes on from where it stopped
    OUT/summary.json   counts, the photos with no face, the unreadable files, timings

Photos are decoded by `xplore_tf.common.pixels.decode_rgb` (EXIF orientation applied), as in
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

from xplore_tf import io_utils
from xplore_tf.common import faces, pixels
from xplore_tf.config import Config, PrepareConfig
from xplore_tf.data import images as images_lib

FACES_CSV = "faces.csv"
SUMMARY_JSON = "summary.json"
SETTINGS_JSON = "prepare.json"  # what ensure_prepared compares before reusing a folder
PROGRESS = ".prepare_progress.jsonl"  # the photos done so far, while a run is under way
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


def _stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _journal_settings(images_dir: str, prep: PrepareConfig) -> dict:
    keys = ("detector", "faces", "aligned_size", "min_face_size", "min_face_score")
    return json.loads(
        json.dumps(
            {
                "images_dir": os.path.abspath(images_dir),
                **{k: getattr(prep, k) for k in keys},
                "templates": faces.TEMPLATES[prep.detector],
            }
        )
    )


def _resumable(out: str, settings: dict) -> dict[str, dict]:
    """{photo: record} of an interrupted run into `out` with the same settings (PROGRESS)."""
    try:
        with open(os.path.join(out, PROGRESS), encoding="utf-8") as f:
            lines = f.read().splitlines()
        if not lines or json.loads(lines[0]) != {"settings": settings}:
            return {}
    except (OSError, ValueError):
        return {}
    records = {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except ValueError:  # the line a kill cut short
            break
        records[record["photo"]] = record
    return records


def _reusable(record: dict | None, images_dir: str, rel: str, out: str) -> bool:
    """Whether an interrupted run's record of `rel` still holds: same file, crops there."""
    if record is None or record["stamp"] != _stamp(os.path.join(images_dir, rel)):
        return False
    return all(os.path.isfile(os.path.join(out, *row[0].split("/"))) for row in record["rows"])


def _prepare_photo(images_dir, rel, crop_stem, prep, detector, out) -> dict:
    """Detects, aligns and writes one photo's faces -> its journal record."""
    record = {"photo": rel, "stamp": _stamp(os.path.join(images_dir, rel)), "rows": []}
    try:
        rgb = pixels.read_rgb(os.path.join(images_dir, rel))
    except pixels.ImageError as e:
        logging.warning("prepare: skipping unreadable %s", e)
        return {**record, "unreadable": e.reason}
    found = faces.find_faces(
        rgb,
        detector,
        size=prep.aligned_size,
        faces=prep.faces,
        min_face_size=prep.min_face_size,
        min_score=prep.min_face_score,
    )
    for i, aligned in enumerate(found):
        crop = f"{crop_stem}_f{i}.png"
        io_utils.write_bytes(os.path.join(out, *crop.split("/")), pixels.png_bytes(aligned.crop))
        record["rows"].append(_row(crop, rel, i, aligned))
    return record


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
    atomically; faces.csv last. Each photo done is appended to OUT/.prepare_progress.jsonl,
    so a run that is killed and started again with the same settings goes on from the
    photo in flight (the journal is removed at the end). Crops listed in an earlier
    faces.csv of `out` that this run does not write again are removed (nothing else in
    `out` is touched).

    Raises FileNotFoundError / ValueError (one line naming the flag) for a missing input
    folder, an output inside it, or a detector that is not installed.
    """
    _check_folders(images_dir, out)
    detector = detector or _detector(prep)
    listing = images_lib.scan_images(images_dir)
    names = crop_names(listing.images)
    previous = _previous_crops(out)
    settings = _journal_settings(images_dir, prep)
    earlier = _resumable(out, settings)
    os.makedirs(out, exist_ok=True)
    journal_path = os.path.join(out, PROGRESS)
    records = []
    total = len(listing.images)
    logging.info("prepare: %d photos in %s, detector %s", total, images_dir, detector.name)
    start = last_log = time.perf_counter()
    with open(journal_path, "w", encoding="utf-8") as journal:
        journal.write(json.dumps({"settings": settings}) + "\n")
        for done, rel in enumerate(listing.images, start=1):
            record = earlier.get(rel)
            if not _reusable(record, images_dir, rel, out):
                record = _prepare_photo(images_dir, rel, names[rel], prep, detector, out)
            records.append(record)
            journal.write(json.dumps(record) + "\n")
            journal.flush()
            now = time.perf_counter()
            if now - last_log >= log_every_s:
                _log_progress(done, total, sum(len(r["rows"]) for r in records), now - start)
                last_log = now
    summary = _finish(
        images_dir, out, records, previous, time.perf_counter() - start, detector, prep
    )
    os.remove(journal_path)
    return summary


def _log_progress(done: int, total: int, faces_found: int, seconds: float) -> None:
    rate = done / max(seconds, 1e-9)
    logging.info(
        "prepare: %d/%d photos, %d faces, %.2f images/s, ETA %.0f s",
        done,
        total,
        faces_found,
        rate,
        (total - done) / max(rate, 1e-9),
    )


def _finish(images_dir, out, records, previous, seconds, detector, prep) -> PrepareSummary:
    """Removes stale crops, writes summary.json and then faces.csv; returns the summary."""
    rows = [row for r in records for row in r["rows"]]
    unreadable = {r["photo"]: r["unreadable"] for r in records if "unreadable" in r}
    no_face = [r["photo"] for r in records if not r["rows"] and "unreadable" not in r]
    for stale in sorted(previous - {row[0] for row in rows}):
        path = os.path.join(out, *stale.split("/"))
        if os.path.isfile(path):
            os.remove(path)
    total = len(records)
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
    tmp = f"{target}.partial"  # a killed run goes on from its journal next time
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
