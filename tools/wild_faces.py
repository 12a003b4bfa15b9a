"""A synthetic "in the wild" photo set with known face geometry, built from aligned faces.

    python -m tools.wild_faces --faces_dir=../shared/data/celeba10k/images --out=/tmp/wild --num=500

Each photo pastes one or more aligned face crops (e.g. celeba10k's 89x109 CelebA faces)
into a larger random background at a known scale, rotation and position, and is stored as a
JPEG with a random EXIF orientation (1-8; its pixels rotated or mirrored so that the upright
photo, after the orientation is applied, is the composed one). `truth.csv` records, per
face, the 2x3 matrix from the source crop's pixels to the upright photo's pixels, so a
detector + aligner can be scored against the framing the crop had (`eye_errors`).

Scale 1 draws a crop at CelebA's original aligned size (178 px wide; 1.5 -> 267 px, 0.3 -> 53
px, an eye distance of about 12 px). Used by tests/test_prepare_lib.py and
tools/bench_prepare.py; the CelebA images are read, never copied into the project.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys

import numpy as np
from PIL import Image

from xplore_tf.common import faces, pixels

TRUTH_CSV = "truth.csv"


@dataclasses.dataclass(frozen=True)
class WildPhoto:
    """One composed photo: `upright` uint8 [H,W,3] is what decode_rgb returns for `data`."""

    upright: np.ndarray
    data: bytes  # JPEG with the EXIF orientation tag
    orientation: int
    sources: list[str]  # the face files pasted, in order
    matrices: list[np.ndarray]  # float64 [2,3] each: source crop px -> upright photo px
    source_sizes: list[tuple[int, int]]  # (width, height) of each source crop


def background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [H,W,3]: smooth random colour field + blobs + noise (no face in it)."""
    coarse = rng.uniform(20, 235, (4, 4, 3)).astype(np.uint8)
    field = np.asarray(
        Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.float32
    )
    y, x = np.mgrid[0:height, 0:width]
    for _ in range(rng.integers(2, 6)):  # a few soft blobs, like out-of-focus objects
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.05, 0.3) * max(height, width)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[:, :, None]
        field = field * (1 - blob) + blob * rng.uniform(0, 255, 3)
    field += rng.normal(0, 6, field.shape)
    return np.clip(field, 0, 255).astype(np.uint8)


def paste(
    photo: np.ndarray, crop: np.ndarray, matrix: np.ndarray, *, feather: float = 2.0
) -> np.ndarray:
    """Warps crop [h,w,3] into photo by matrix (crop px -> photo px), edges feathered."""
    h, w = photo.shape[:2]
    to_crop = faces.invert(matrix)
    data = faces._pil_affine(to_crop)
    warped = Image.fromarray(crop).transform((w, h), Image.Transform.AFFINE, data, Image.BICUBIC)
    ch, cw = crop.shape[:2]
    # 1 inside the crop, falling to 0 over `feather` crop px at its edges.
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    edge = np.minimum.reduce([xx + 0.5, cw - 0.5 - xx, yy + 0.5, ch - 0.5 - yy])
    ramp = np.clip(edge / feather, 0, 1).astype(np.float32)
    mask = Image.fromarray(ramp, mode="F").transform(
        (w, h), Image.Transform.AFFINE, data, Image.BILINEAR
    )
    alpha = np.clip(np.asarray(mask, np.float32), 0, 1)[:, :, None]
    out = alpha * np.asarray(warped, np.float32) + (1 - alpha) * photo.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels whose EXIF `orientation` makes them `upright` (pixels.orient)."""
    transpose, flip_rows, flip_columns = pixels.ORIENTATIONS[orientation]
    stored = upright
    if flip_columns:  # the inverse of orient(): its steps undone in reverse order
        stored = stored[:, ::-1]
    if flip_rows:
        stored = stored[::-1]
    if transpose:
        stored = stored.transpose(1, 0, 2)
    return np.ascontiguousarray(stored)


def encode_jpeg(upright: np.ndarray, orientation: int, quality: int = 92) -> bytes:
    """JPEG bytes of `upright` stored rotated/mirrored with that EXIF orientation tag."""
    exif = Image.Exif()
    exif[pixels.EXIF_ORIENTATION_TAG] = orientation
    buf = io.BytesIO()
    Image.fromarray(stored_for(upright, orientation)).save(
        buf, format="JPEG", quality=quality, exif=exif.tobytes()
    )
    return buf.getvalue()


def face_matrix(
    source_size: tuple[int, int], scale: float, angle_deg: float, centre: tuple[float, float]
) -> np.ndarray:
    """Source crop px -> photo px: the crop drawn `scale` x CelebA size, rotated, centred."""
    sw, sh = source_size
    k = scale * faces.CELEBA_FRAME[0] / sw  # photo px per source px
    a = math.radians(angle_deg)
    rot = k * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    middle = np.array([(sw - 1) / 2, (sh - 1) / 2])
    return np.concatenate([rot, (np.asarray(centre) - rot @ middle)[:, None]], axis=1)


def make_photo(
    crops: list[np.ndarray],
    sources: list[str],
    rng: np.random.Generator,
    *,
    scale_range: tuple[float, float] = (0.3, 1.5),
    max_angle: float = 30.0,
    orientation: int | None = None,
    max_side: int = 1024,
    scene: float = 0.0,
) -> WildPhoto:
    """Pastes crops side by side (each fully inside) into one random background photo.

    `scene` > 0 pastes each crop with that fraction of its width / height mirrored onto
    every side (`numpy.pad`, mode "symmetric"), so an aligner's frame that strays past the
    crop shows a continuation of its scene, as in a real photo, not the random background.
    The recorded matrices stay those of the crop itself.
    """
    scales = rng.uniform(*scale_range, len(crops))
    angles = rng.uniform(-max_angle, max_angle, len(crops))
    # Each face gets a cell as wide as its rotated frame's diagonal, plus a random margin.
    diags = [s * math.hypot(*faces.CELEBA_FRAME) for s in scales]
    cells = [d * rng.uniform(1.05, 1.6) for d in diags]
    width = int(min(max_side, max(64, sum(cells) * rng.uniform(1.0, 1.3))))
    height = int(min(max_side, max(64, max(cells) * rng.uniform(1.0, 1.8))))
    width = max(width, int(math.ceil(sum(diags))) + 2)
    height = max(height, int(math.ceil(max(diags))) + 2)
    photo = background(height, width, rng)
    matrices = []
    x = rng.uniform(0, max(width - sum(cells), 0))
    for crop, scale, angle, cell, diag in zip(crops, scales, angles, cells, diags, strict=True):
        half = diag / 2
        cx = min(max(x + cell / 2, half), width - half)
        cy = rng.uniform(half, max(height - half, half))
        m = face_matrix((crop.shape[1], crop.shape[0]), scale, angle, (cx, cy))
        if scene > 0:
            ph, pw = (int(round(scene * n)) for n in crop.shape[:2])
            padded = np.pad(crop, ((ph, ph), (pw, pw), (0, 0)), mode="symmetric")
            photo = paste(photo, padded, faces.compose(m, np.array([[1.0, 0, -pw], [0, 1, -ph]])))
        else:
            photo = paste(photo, crop, m)
        matrices.append(m)
        x += cell
    orientation = int(rng.integers(1, 9)) if orientation is None else orientation
    return WildPhoto(
        upright=photo,
        data=encode_jpeg(photo, orientation),
        orientation=orientation,
        sources=list(sources),
        matrices=matrices,
        source_sizes=[(c.shape[1], c.shape[0]) for c in crops],
    )


def canonical_matrix(source_size: tuple[int, int], size: int) -> np.ndarray:
    """Source crop px -> the aligned `size` crop the source itself gives (central square).

    What `--crop_size=0` does with an aligned CelebA crop: its central square, resized to
    `size`; prepare should reproduce this framing from the wild photo.
    """
    sw, sh = source_size
    top = (sh - sw) // 2 if sh >= sw else 0
    left = (sw - sh) // 2 if sw > sh else 0
    side = min(sw, sh)
    shift = np.array([[1.0, 0.0, -left], [0.0, 1.0, -top]])
    return faces.compose(faces.resize_matrix(side, size), shift)


def true_eyes(source_size: tuple[int, int], size: int, detector: str) -> np.ndarray:
    """Where the eyes of a source crop are [2,2] (source px): the template's, via its framing."""
    eyes = faces.template_points(detector, size)[:2]
    return faces.transform_points(faces.invert(canonical_matrix(source_size, size)), eyes)


def eye_errors(
    photo_to_crop: np.ndarray,
    source_to_photo: np.ndarray,
    source_size: tuple[int, int],
    size: int,
    detector: str,
) -> np.ndarray:
    """Distance [2] in crop px between where prepare puts the source's eyes and where the
    source's own central-square framing puts them (its template eye positions)."""
    eyes = true_eyes(source_size, size, detector)
    recovered = faces.transform_points(faces.compose(photo_to_crop, source_to_photo), eyes)
    wanted = faces.transform_points(canonical_matrix(source_size, size), eyes)
    return np.linalg.norm(recovered - wanted, axis=1)


def match(
    found: list[faces.Face], photo: WildPhoto, index: int, size: int, detector: str
) -> int | None:
    """Index of the detection of face `index` (eye midpoint within 0.5 eye distance), or None."""
    eyes = faces.transform_points(
        photo.matrices[index], true_eyes(photo.source_sizes[index], size, detector)
    )
    mid, dist = eyes.mean(0), np.linalg.norm(eyes[0] - eyes[1])
    best, best_d = None, 0.5 * dist
    for i, f in enumerate(found):
        d = np.linalg.norm(f.landmarks[:2].mean(0) - mid)
        if d <= best_d:
            best, best_d = i, d
    return best


def list_faces(faces_dir: str) -> list[str]:
    return sorted(n for n in os.listdir(faces_dir) if n.lower().endswith((".jpg", ".jpeg", ".png")))


def write_set(
    faces_dir: str,
    out: str,
    *,
    num: int,
    seed: int = 0,
    faces_per_photo: int = 1,
    first: int = 0,
    max_side: int = 1024,
    scale_range: tuple[float, float] = (0.3, 1.5),
    scene: float = 0.0,
) -> str:
    """Writes `num` photos photo_NNNNN.jpg + truth.csv into `out`; returns the csv path.

    truth.csv: photo, face, source, orientation, source_width, source_height, matrix (6
    numbers, source px -> upright photo px, row-major, JSON).
    """
    names = list_faces(faces_dir)[first:]
    if len(names) < num * faces_per_photo:
        raise ValueError(f"{faces_dir}: {len(names)} faces, need {num * faces_per_photo}")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(num):
        chosen = names[i * faces_per_photo : (i + 1) * faces_per_photo]
        crops = [pixels.read_rgb(os.path.join(faces_dir, n)) for n in chosen]
        photo = make_photo(
            crops, chosen, rng, max_side=max_side, scale_range=scale_range, scene=scene
        )
        name = f"photo_{i:05d}.jpg"
        with open(os.path.join(out, name), "wb") as f:
            f.write(photo.data)
        for j, (src, m, sz) in enumerate(
            zip(photo.sources, photo.matrices, photo.source_sizes, strict=True)
        ):
            rows.append(
                [name, j, src, photo.orientation, sz[0], sz[1], json.dumps(m.ravel().tolist())]
            )
    path = os.path.join(out, TRUTH_CSV)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["photo", "face", "source", "orientation", "source_width", "source_height", "matrix"]
        )
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m tools.wild_faces", description=__doc__.split("\n")[0]
    )
    p.add_argument("--faces_dir", required=True, help="folder of aligned face crops")
    p.add_argument("--out", required=True, help="folder to write photos + truth.csv into")
    p.add_argument("--num", type=int, default=200, help="photos (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--faces_per_photo", type=int, default=1, help="(default %(default)s)")
    p.add_argument("--first", type=int, default=0, help="skip this many faces (sorted names)")
    p.add_argument(
        "--scene",
        type=float,
        default=0.0,
        help="mirror this fraction of each crop onto its sides (a scene around the face)",
    )
    args = p.parse_args(argv)
    path = write_set(
        args.faces_dir,
        args.out,
        num=args.num,
        seed=args.seed,
        faces_per_photo=args.faces_per_photo,
        first=args.first,
        scene=args.scene,
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
