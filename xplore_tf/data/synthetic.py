"""Procedural synthetic faces: the embedded default data set of xplore_tf.

XploreGAN needs an unlabeled face collection whose attributes a CNN + clustering can
rediscover. Real data (CelebA) cannot ship with the project, so this module draws
cartoon faces whose ground-truth attributes are known, which lets every stage
(clustering purity, attribute transfer, identity preservation) be measured offline.

Attributes, each drawn independently per image and visible at 32 px:

* hair colour: black, brown, blond, red, gray (``HAIR_COLORS``)
* hair style: short (cap + fringe), long (falls below the chin at both sides of the
  neck), bald (no hair drawn; the sampled hair colour stays in the labels but is
  invisible)
* skin tone: 4 levels from light to dark (``SKIN_TONES``)
* glasses: two navy rings + bridge + temple arms, or none
* mouth: neutral (straight line) or smile (upward curve)
* background: 4 flat colours (``BACKGROUNDS``) - blue, green, purple, off-white

Identity is only the continuous face geometry (face width/height, eye spacing, eye
height, nose length, mouth width), stored normalised to [0, 1] in ``IdentityGeometry``.
Several consecutive images share one identity (``images_per_identity``) and differ by
their attributes and a small ``Jitter`` (shift, scale, brightness, lighting gradient,
pixel noise), so identity preservation can be measured by regressing the geometry.

Layout is defined in canvas fractions; faces are drawn with PIL at an internal
resolution of max(2 * size, 256) and box-downsampled to ``size``, so they look the
same at 32 px and at 256 px. Generation is deterministic per seed: every image uses
its own numpy Generator seeded from (seed, image index) and every identity one seeded
from (seed, identity index), so results never depend on generation order.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence

import numpy as np
from absl import logging
from PIL import Image, ImageDraw

# ---------------------------------------------------------------------------------------
# Attribute vocabulary and palettes

HAIR_COLORS: tuple[str, ...] = ("black", "brown", "blond", "red", "gray")
HAIR_STYLES: tuple[str, ...] = ("short", "long", "bald")
SKIN_TONES: tuple[int, ...] = (0, 1, 2, 3)
BACKGROUNDS: tuple[int, ...] = (0, 1, 2, 3)

RGB = tuple[int, int, int]

HAIR_PALETTE: dict[str, RGB] = {
    "black": (28, 26, 30),
    "brown": (110, 66, 34),
    "blond": (232, 200, 110),
    "red": (192, 64, 28),
    "gray": (168, 168, 172),
}
SKIN_PALETTE: tuple[RGB, ...] = (
    (255, 222, 196),
    (226, 170, 122),
    (186, 128, 86),
    (116, 76, 52),
)
BACKGROUND_PALETTE: tuple[RGB, ...] = (
    (84, 132, 204),  # blue
    (92, 168, 100),  # green
    (148, 100, 176),  # purple
    (236, 236, 228),  # off-white
)
GLASSES_COLOR: RGB = (24, 36, 120)
MOUTH_COLOR: RGB = (150, 30, 46)
SHIRT_COLOR: RGB = (52, 84, 96)
EYE_WHITE: RGB = (250, 250, 250)
PUPIL_COLOR: RGB = (52, 34, 26)

ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    *(f"hair_{c}" for c in HAIR_COLORS),
    *(f"style_{s}" for s in HAIR_STYLES),
    *(f"skin_{t}" for t in SKIN_TONES),
    "glasses",
    "smile",
    *(f"background_{b}" for b in BACKGROUNDS),
)

# Identity geometry: normalised value u in [0, 1] maps linearly onto these ranges.
# face_* are canvas fractions; eye_spacing and mouth_width are fractions of the face
# width; eye_height (eye line below the face top) and nose_length fractions of its height.
IDENTITY_RANGES: dict[str, tuple[float, float]] = {
    "face_width": (0.40, 0.54),
    "face_height": (0.50, 0.64),
    "eye_spacing": (0.36, 0.52),
    "eye_height": (0.38, 0.50),
    "nose_length": (0.12, 0.22),
    "mouth_width": (0.28, 0.48),
}
IDENTITY_FIELDS: tuple[str, ...] = tuple(IDENTITY_RANGES)

RAW_COLUMNS: tuple[str, ...] = ("hair_color", "hair_style", "skin_tone", "background")
CSV_COLUMNS: tuple[str, ...] = (
    "image",
    "identity",
    *ATTRIBUTE_COLUMNS,
    *RAW_COLUMNS,
    *IDENTITY_FIELDS,
)

MIN_SIZE = 32
MAX_SIZE = 256
# Bump whenever the drawing or sampling changes so cached data sets get regenerated.
RENDER_VERSION = 1
MANIFEST_NAME = "synthetic.json"
LABELS_NAME = "labels.csv"


# ---------------------------------------------------------------------------------------
# Parameter groups


@dataclasses.dataclass(frozen=True)
class FaceAttributes:
    """The discrete, per-image attributes the clustering stage should rediscover."""

    hair_color: str
    hair_style: str
    skin_tone: int
    glasses: bool
    smile: bool
    background: int

    def __post_init__(self) -> None:
        if self.hair_color not in HAIR_COLORS:
            raise ValueError(f"hair_color must be one of {HAIR_COLORS}, got {self.hair_color!r}")
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"hair_style must be one of {HAIR_STYLES}, got {self.hair_style!r}")
        if self.skin_tone not in SKIN_TONES:
            raise ValueError(f"skin_tone must be one of {SKIN_TONES}, got {self.skin_tone!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")

    def one_hot(self) -> dict[str, int]:
        """The 0/1 columns of labels.csv (CelebA style), keyed by ATTRIBUTE_COLUMNS."""
        row = {col: 0 for col in ATTRIBUTE_COLUMNS}
        row[f"hair_{self.hair_color}"] = 1
        row[f"style_{self.hair_style}"] = 1
        row[f"skin_{self.skin_tone}"] = 1
        row["glasses"] = int(self.glasses)
        row["smile"] = int(self.smile)
        row[f"background_{self.background}"] = 1
        return row


@dataclasses.dataclass(frozen=True)
class IdentityGeometry:
    """Face geometry of one identity, every field normalised to [0, 1] (IDENTITY_RANGES)."""

    face_width: float
    face_height: float
    eye_spacing: float
    eye_height: float
    nose_length: float
    mouth_width: float

    def __post_init__(self) -> None:
        for name in IDENTITY_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"IdentityGeometry.{name} must be in [0, 1], got {value}")

    def denormalised(self, name: str) -> float:
        """The field mapped onto its physical range in IDENTITY_RANGES."""
        lo, hi = IDENTITY_RANGES[name]
        return lo + (hi - lo) * float(getattr(self, name))


@dataclasses.dataclass(frozen=True)
class Jitter:
    """Per-image nuisance variation, so images of one identity are never identical."""

    dx: float = 0.0  # horizontal shift, canvas fraction
    dy: float = 0.0  # vertical shift, canvas fraction
    scale: float = 1.0  # zoom around the canvas centre
    brightness: float = 1.0  # global gain
    light_x: float = 0.0  # gain slope from the left to the right edge
    light_y: float = 0.0  # gain slope from the top to the bottom edge
    noise_std: float = 0.0  # Gaussian pixel noise, in 0..255 units
    noise_seed: int = 0  # seeds the noise so render_face stays a pure function

    @classmethod
    def zero(cls) -> Jitter:
        """No jitter: exact palette colours, handy for tests and figures."""
        return cls()


# ---------------------------------------------------------------------------------------
# Sampling


def sample_identity(rng: np.random.Generator) -> IdentityGeometry:
    """Draws one identity's geometry uniformly over the normalised ranges."""
    values = rng.uniform(0.0, 1.0, size=len(IDENTITY_FIELDS))
    return IdentityGeometry(**{k: float(v) for k, v in zip(IDENTITY_FIELDS, values, strict=True)})


def sample_attributes(rng: np.random.Generator) -> FaceAttributes:
    """Draws every attribute independently and uniformly, so clusters are balanced."""
    return FaceAttributes(
        hair_color=HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))],
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        skin_tone=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        glasses=bool(rng.integers(2)),
        smile=bool(rng.integers(2)),
        background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
    )


def sample_jitter(rng: np.random.Generator) -> Jitter:
    """Draws a small nuisance jitter; small enough that every attribute stays readable."""
    return Jitter(
        dx=float(rng.uniform(-0.04, 0.04)),
        dy=float(rng.uniform(-0.04, 0.04)),
        scale=float(rng.uniform(0.94, 1.06)),
        brightness=float(rng.uniform(0.9, 1.1)),
        light_x=float(rng.uniform(-0.08, 0.08)),
        light_y=float(rng.uniform(-0.08, 0.08)),
        noise_std=float(rng.uniform(0.0, 4.0)),
        noise_seed=int(rng.integers(2**32)),
    )


def sample_item(
    seed: int, index: int, *, images_per_identity: int = 4
) -> tuple[int, FaceAttributes, IdentityGeometry, Jitter]:
    """The (identity, attributes, geometry, jitter) of image `index` of data set `seed`.

    Each image and each identity has its own seeded Generator, so any subset of a data
    set can be re-rendered (or generated by any number of workers) bit-identically.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed} index={index}")
    if images_per_identity < 1:
        raise ValueError(f"images_per_identity must be >= 1, got {images_per_identity}")
    identity = index // images_per_identity
    geometry = sample_identity(np.random.default_rng([seed, 0, identity]))
    rng = np.random.default_rng([seed, 1, index])
    attrs = sample_attributes(rng)
    jitter = sample_jitter(rng)
    return identity, attrs, geometry, jitter


# ---------------------------------------------------------------------------------------
# Rendering


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels (square images), got {size}"
        )


def _shade(color: RGB, factor: float) -> RGB:
    r, g, b = (int(round(min(255.0, c * factor))) for c in color)
    return (r, g, b)


class _Canvas:
    """Maps canvas-fraction coordinates (with the jitter's shift/scale) to pixels."""

    def __init__(self, draw: ImageDraw.ImageDraw, res: int, size: int, jitter: Jitter) -> None:
        self.draw = draw
        self.res = res
        self.px = 1.0 / size  # one output pixel in canvas fractions
        self.scale = jitter.scale
        self.ox = 0.5 + jitter.dx
        self.oy = 0.5 + jitter.dy

    def x(self, u: float) -> float:
        return (self.ox + (u - 0.5) * self.scale) * self.res

    def y(self, v: float) -> float:
        return (self.oy + (v - 0.5) * self.scale) * self.res

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        return [self.x(cx - rx), self.y(cy - ry), self.x(cx + rx), self.y(cy + ry)]

    def width(self, w: float) -> int:
        return max(1, int(round(w * self.scale * self.res)))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB) -> None:
        self.draw.ellipse(self.box(cx, cy, rx, ry), fill=fill)

    def ring(self, cx: float, cy: float, r: float, color: RGB, w: float) -> None:
        self.draw.ellipse(self.box(cx, cy, r, r), outline=color, width=self.width(w))

    def line(self, pts: Sequence[tuple[float, float]], color: RGB, w: float) -> None:
        self.draw.line([(self.x(u), self.y(v)) for u, v in pts], fill=color, width=self.width(w))

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        self.draw.rectangle([self.x(x0), self.y(y0), self.x(x1), self.y(y1)], fill=fill)

    def chord(
        self, cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, fill: RGB
    ) -> None:
        self.draw.chord(self.box(cx, cy, rx, ry), a0, a1, fill=fill)

    def arc(
        self, cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, color: RGB, w: float
    ) -> None:
        self.draw.arc(self.box(cx, cy, rx, ry), a0, a1, fill=color, width=self.width(w))


def _internal_resolution(size: int) -> tuple[int, int]:
    factor = max(2, -(-256 // size))  # supersampling factor, ceil(256 / size) but >= 2
    return size * factor, factor


def _draw_face(c: _Canvas, attrs: FaceAttributes, g: IdentityGeometry) -> None:
    skin = SKIN_PALETTE[attrs.skin_tone]
    skin_dark = _shade(skin, 0.72)
    hair = HAIR_PALETTE[attrs.hair_color]
    fw, fh = g.denormalised("face_width"), g.denormalised("face_height")
    rx, ry = fw / 2, fh / 2
    cx, cy = 0.5, 0.47
    top = cy - ry
    chin = cy + ry

    # Shoulders and the back hair (long hair falls below the chin at both sides).
    c.ellipse(cx, 1.04, 0.44, 0.16, SHIRT_COLOR)
    if attrs.hair_style != "bald":
        c.ellipse(cx, cy - 0.06 * fh, rx * 1.16, ry * 0.98, hair)
    if attrs.hair_style == "long":
        c.rect(cx - rx * 1.16, cy - 0.06 * fh, cx + rx * 1.16, chin + 0.10, hair)
        c.ellipse(cx, chin + 0.10, rx * 1.16, 0.05, hair)
    else:
        ear_y = top + g.denormalised("eye_height") * fh + 0.04
        c.ellipse(cx - rx, ear_y, 0.035, 0.06, skin)
        c.ellipse(cx + rx, ear_y, 0.035, 0.06, skin)

    # Neck, then the face itself.
    c.rect(cx - 0.07, cy + ry * 0.5, cx + 0.07, 0.95, skin_dark)
    c.ellipse(cx, cy, rx, ry, skin)

    # Fringe over the forehead: a chord of the face ellipse plus a few locks.
    if attrs.hair_style != "bald":
        c.chord(cx, cy, rx * 1.02, ry * 1.02, 205, 335, hair)
        for k in (-0.55, -0.2, 0.2, 0.55):
            c.ellipse(cx + k * rx, top + 0.20 * fh, 0.2 * rx, 0.06 * fh, hair)

    # Eyes and eyebrows.
    eye_y = top + g.denormalised("eye_height") * fh
    half_gap = g.denormalised("eye_spacing") * fw / 2
    eye_r = min(0.085, max(0.055, 0.8 * half_gap))
    for sx in (-1.0, 1.0):
        ex = cx + sx * half_gap
        c.ellipse(ex, eye_y, 0.042, 0.026, EYE_WHITE)
        c.ellipse(ex, eye_y, 0.02, 0.02, PUPIL_COLOR)
        c.line([(ex - 0.04, eye_y - 0.068), (ex + 0.04, eye_y - 0.068)], skin_dark, 0.018)

    # Nose.
    nose_end = eye_y + g.denormalised("nose_length") * fh
    c.line([(cx, eye_y + 0.03), (cx - 0.012, nose_end)], skin_dark, 0.016)
    c.line([(cx - 0.03, nose_end), (cx + 0.02, nose_end)], skin_dark, 0.016)

    # Mouth: a straight line or an upward curve of the same width.
    mouth_y = min(nose_end + 0.085 * fh, chin - 0.1 * fh)
    mw = g.denormalised("mouth_width") * fw / 2
    mouth_w = max(0.034, 1.5 * c.px)  # >= 1.5 output px so it stays solid at 32 px
    if attrs.smile:
        c.arc(cx, mouth_y - 0.05, mw, 0.085, 10, 170, MOUTH_COLOR, mouth_w)
    else:
        c.line([(cx - mw, mouth_y), (cx + mw, mouth_y)], MOUTH_COLOR, mouth_w)

    # Glasses.
    if attrs.glasses:
        _draw_glasses(c, cx, eye_y, half_gap=half_gap, eye_r=eye_r, rx=rx)


def _draw_glasses(
    c: _Canvas, cx: float, eye_y: float, *, half_gap: float, eye_r: float, rx: float
) -> None:
    """Two rings of radius `eye_r` round the eyes (at cx +- half_gap, eye_y), a bridge and
    temple arms to the face edge (half width `rx`); in canvas fractions."""
    w = max(0.03, 1.6 * c.px)  # >= 1.6 output px so the frame has solid pixels at 32 px
    for sx in (-1.0, 1.0):
        ex = cx + sx * half_gap
        c.ring(ex, eye_y, eye_r, GLASSES_COLOR, w)
        c.line(
            [(ex + sx * eye_r, eye_y - 0.01), (cx + sx * rx * 0.98, eye_y - 0.02)],
            GLASSES_COLOR,
            w,
        )
    c.line(
        [
            (cx - half_gap + eye_r * 0.9, eye_y - 0.01),
            (cx + half_gap - eye_r * 0.9, eye_y - 0.01),
        ],
        GLASSES_COLOR,
        w,
    )


def render_face(
    attrs: FaceAttributes, identity: IdentityGeometry, jitter: Jitter, size: int
) -> np.ndarray:
    """Renders one face as uint8 [size, size, 3]; pure, so a label fully determines it.

    Drawn at max(2 * size, 256) px and box-downsampled, so edges are antialiased; the
    glasses and mouth strokes are kept >= 1.5 output px wide so they survive at 32 px. Brightness, lighting and noise are applied
    after downsampling; with Jitter.zero() flat regions keep their exact palette colours.
    """
    _check_size(size)
    res, factor = _internal_resolution(size)
    image = Image.new("RGB", (res, res), BACKGROUND_PALETTE[attrs.background])
    _draw_face(_Canvas(ImageDraw.Draw(image), res, size, jitter), attrs, identity)
    image = image.reduce(factor)
    out = np.asarray(image)
    if (
        jitter.brightness == 1.0
        and jitter.light_x == 0.0
        and jitter.light_y == 0.0
        and jitter.noise_std == 0.0
    ):
        return np.array(out, dtype=np.uint8)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    gain = jitter.brightness + jitter.light_x * ramp[None, :] + jitter.light_y * ramp[:, None]
    pixels = out.astype(np.float32)
    pixels *= gain[:, :, None]
    if jitter.noise_std > 0.0:
        noise = np.random.default_rng(jitter.noise_seed).standard_normal(
            pixels.shape, dtype=np.float32
        )
        noise *= np.float32(jitter.noise_std)
        pixels += noise
    np.rint(pixels, out=pixels)
    np.clip(pixels, 0, 255, out=pixels)
    return pixels.astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Data set generation


def _manifest(*, num: int, size: int, seed: int, images_per_identity: int) -> dict:
    return {
        "generator": "xplore_tf.data.synthetic",
        "render_version": RENDER_VERSION,
        "num": int(num),
        "size": int(size),
        "seed": int(seed),
        "images_per_identity": int(images_per_identity),
    }


def _check_params(*, num: int, size: int, seed: int, images_per_identity: int) -> None:
    _check_size(size)
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if images_per_identity < 1:
        raise ValueError(f"images_per_identity must be >= 1, got {images_per_identity}")


def _image_name(index: int, num: int) -> str:
    return f"{index:0{max(6, len(str(num - 1)))}d}.png"


def _label_row(
    name: str, identity: int, attrs: FaceAttributes, geometry: IdentityGeometry
) -> list[str]:
    one_hot = attrs.one_hot()
    return [
        name,
        str(identity),
        *(str(one_hot[col]) for col in ATTRIBUTE_COLUMNS),
        attrs.hair_color,
        attrs.hair_style,
        str(attrs.skin_tone),
        str(attrs.background),
        *(f"{getattr(geometry, f):.6f}" for f in IDENTITY_FIELDS),
    ]


def is_complete(
    out_dir: str, *, num: int, size: int, seed: int, images_per_identity: int = 4
) -> bool:
    """True if out_dir holds a finished data set made with exactly these parameters."""
    path = os.path.join(out_dir, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    expected = _manifest(num=num, size=size, seed=seed, images_per_identity=images_per_identity)
    if not manifest.get("complete") or any(manifest.get(k) != v for k, v in expected.items()):
        return False
    if not os.path.isfile(os.path.join(out_dir, LABELS_NAME)):
        return False
    return sum(1 for n in os.listdir(out_dir) if n.endswith(".png")) == num


def generate(
    out_dir: str,
    *,
    num: int,
    size: int,
    seed: int,
    images_per_identity: int = 4,
    progress: bool = True,
) -> dict:
    """Renders `num` faces + labels.csv + synthetic.json into out_dir, atomically.

    Everything is written to a temporary sibling directory that replaces out_dir only
    once complete, so an interrupted run leaves either the previous data set or nothing.
    An existing out_dir is replaced only if empty or itself a synthetic data set, so a
    wrong path never deletes unrelated files. Returns a summary including images/s.
    """
    _check_params(num=num, size=size, seed=seed, images_per_identity=images_per_identity)
    out_dir = os.path.abspath(out_dir)
    _check_replaceable(out_dir)
    tmp_dir = _make_temp_sibling(out_dir)
    manifest = _manifest(num=num, size=size, seed=seed, images_per_identity=images_per_identity)
    start = time.perf_counter()
    try:
        _write_manifest(tmp_dir, {**manifest, "complete": False})
        rows = _render_images(
            tmp_dir,
            num=num,
            size=size,
            seed=seed,
            images_per_identity=images_per_identity,
            progress=progress,
            start=start,
        )
        _write_labels(tmp_dir, rows)
        num_identities = -(-num // images_per_identity)
        _write_manifest(tmp_dir, {**manifest, "num_identities": num_identities, "complete": True})
        elapsed = time.perf_counter() - start
        _swap_into_place(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    summary = {
        "out_dir": out_dir,
        "num": num,
        "size": size,
        "seed": seed,
        "images_per_identity": images_per_identity,
        "num_identities": num_identities,
        "seconds": elapsed,
        "images_per_sec": num / max(elapsed, 1e-9),
    }
    if progress:
        logging.info(
            "synthetic faces: wrote %d images (%d identities) to %s at %.0f images/s",
            num,
            num_identities,
            out_dir,
            summary["images_per_sec"],
        )
    return summary


def _check_replaceable(out_dir: str) -> None:
    """Raises FileExistsError unless `out_dir` is absent, an empty folder or a data set."""
    if not os.path.exists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if os.listdir(out_dir) and not os.path.isfile(os.path.join(out_dir, MANIFEST_NAME)):
        raise FileExistsError(
            f"{out_dir} is not empty and is not a synthetic data set (no {MANIFEST_NAME}); "
            "refusing to overwrite it"
        )


def _make_temp_sibling(out_dir: str) -> str:
    """A new empty folder next to `out_dir` (same file system, so it can be renamed onto it)."""
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(out_dir)
    tmp_dir = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
    os.chmod(tmp_dir, 0o755)  # mkdtemp makes it 0700; the final data set should be readable
    return tmp_dir


def _write_manifest(folder: str, manifest: dict) -> None:
    with open(os.path.join(folder, MANIFEST_NAME), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)


def _render_images(
    folder: str,
    *,
    num: int,
    size: int,
    seed: int,
    images_per_identity: int,
    progress: bool,
    start: float,
) -> list[list[str]]:
    """Renders faces 0..num-1 as PNGs into `folder`; returns their labels.csv rows.

    Logs progress every tenth of the set when `progress` (rates counted from `start`, a
    `time.perf_counter()` value).
    """
    rows = []
    step = max(1, num // 10)
    for index in range(num):
        identity, attrs, geometry, jitter = sample_item(
            seed, index, images_per_identity=images_per_identity
        )
        name = _image_name(index, num)
        pixels = render_face(attrs, geometry, jitter, size)
        # Level 1: the pixel noise makes higher levels ~3-5x slower for ~15% smaller files.
        Image.fromarray(pixels).save(os.path.join(folder, name), format="PNG", compress_level=1)
        rows.append(_label_row(name, identity, attrs, geometry))
        done = index + 1
        if progress and (done % step == 0 or done == num):
            elapsed = time.perf_counter() - start
            logging.info(
                "synthetic faces: %d/%d (%.0f%%), %.0f images/s",
                done,
                num,
                100.0 * done / num,
                done / max(elapsed, 1e-9),
            )
    return rows


def _write_labels(folder: str, rows: list[list[str]]) -> None:
    with open(os.path.join(folder, LABELS_NAME), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)


def _swap_into_place(tmp_dir: str, out_dir: str) -> None:
    """Renames the finished temp dir onto out_dir, moving any old data set away first."""
    if not os.path.exists(out_dir):
        os.rename(tmp_dir, out_dir)
        return
    trash = tempfile.mkdtemp(
        prefix=f".{os.path.basename(out_dir)}.old-", dir=os.path.dirname(out_dir)
    )
    old = os.path.join(trash, "old")
    os.rename(out_dir, old)
    os.rename(tmp_dir, out_dir)
    shutil.rmtree(trash, ignore_errors=True)


def ensure_synthetic(
    out_dir: str, *, num: int, size: int, seed: int, images_per_identity: int = 4
) -> str:
    """Returns out_dir, generating the data set only if no complete identical one is there.

    Lets every entry point depend on the default data set without paying for regeneration;
    a change of any parameter (or of RENDER_VERSION) triggers a fresh, atomic rebuild.
    """
    _check_params(num=num, size=size, seed=seed, images_per_identity=images_per_identity)
    if is_complete(out_dir, num=num, size=size, seed=seed, images_per_identity=images_per_identity):
        logging.info("synthetic faces: reusing complete data set in %s", out_dir)
        return out_dir
    generate(out_dir, num=num, size=size, seed=seed, images_per_identity=images_per_identity)
    return out_dir


def make_sample_sheet(
    out_png: str, *, size: int = 64, rows: int = 4, cols: int = 8, seed: int = 0
) -> str:
    """Writes a rows x cols grid of the first faces of data set `seed` (for the README).

    Uses images_per_identity=4, so each run of 4 neighbours shares one identity and shows
    how attributes and jitter vary around fixed geometry.
    """
    _check_size(size)
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be >= 1, got rows={rows} cols={cols}")
    gap = 2
    sheet = Image.new(
        "RGB", (cols * size + (cols + 1) * gap, rows * size + (rows + 1) * gap), (255, 255, 255)
    )
    for index in range(rows * cols):
        _, attrs, geometry, jitter = sample_item(seed, index, images_per_identity=4)
        tile = Image.fromarray(render_face(attrs, geometry, jitter, size))
        r, col = divmod(index, cols)
        sheet.paste(tile, (gap + col * (size + gap), gap + r * (size + gap)))
    out_dir = os.path.dirname(os.path.abspath(out_png))
    os.makedirs(out_dir, exist_ok=True)
    sheet.save(out_png, format="PNG")
    return out_png
