"""Faces in real photos: detection with five landmarks, alignment to CelebA's framing, paste-back.

Shared by `xplore_tf.prepare` (detect and align a folder of photos), `xplore_tf.translate
--paste_back` and `serving/client.py --paste_back`, so all three find, frame and put back a
face identically. Like `pixels.py` it needs only numpy and Pillow (plus the optional
detector), never TensorFlow model code: a client machine can use it.

Method:

- **Detection** (`make_detector`): a maintained detector whose weights ship inside its
  wheel, nothing is downloaded at run time. `mtcnn` (Zhang et al. 2016, the `mtcnn` package
  on TensorFlow; five landmarks: eye centres, nose tip, mouth corners) is the default;
  `dlib` (HOG + linear SVM face detector and the 68-point shape predictor of
  `face-recognition-models`, reduced to the same five points) is the alternative. The
  measurements behind the choice: docs/experiments/2026-12-05-readme-measurements.md. A photo in
  which nothing is found upright is searched again in copies rotated by +-20 degrees
  (`detect_faces`): MTCNN misses some faces tilted by 25-30 degrees.
- **Alignment** (`alignment_matrix`): the least-squares similarity transform (rotation,
  uniform scale, translation; the 4-parameter linear fit is Umeyama's solution without the
  reflection case) from the five detected landmarks to a fixed template: where that
  detector finds the same five points, on average, in CelebA's aligned 178x218 crops
  (`TEMPLATES`, measured by `python -m tools.bench_prepare --measure_template`). The
  aligned crop is the frame's central 178x178 square (what the paper crops from CelebA, and
  `--crop_size=0` takes from celeba10k's 89x109 images) at `size` x `size` pixels, so models
  trained on CelebA crops see the framing they were trained on.
- **Warping** (`align`, `paste_back`): Pillow's affine transform with bicubic resampling;
  when a face is shrunk by more than 2x the photo region is first reduced by an integer
  box filter (`Image.reduce`), so small crops of large faces do not alias. Crop pixels
  outside the photo are filled by mirroring the photo at its border.
- **Paste-back** (`paste_translations`): a crop translated at its own resolution (the
  `translate_full` signatures) comes back as the crop plus the model's edit; only that
  edit, the difference, is warped back with the inverse transform and added to the photo
  under a feathered elliptical head mask (`head_mask`, `paste_edits`), so the photo's own
  pixels are never resampled. A crop translated at the model's resolution is warped back
  and blended in place of the face instead (`paste_back`). Pixels outside the mask are the
  photo's own, unchanged.

Coordinates are (x, y) in pixels with pixel i's centre at i (index convention); a 2x3
`matrix` maps photo points to crop points: `crop = matrix[:, :2] @ photo + matrix[:, 2]`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

# The five landmarks, in this order everywhere (faces.csv too). "left" is the image's left
# (the subject's right eye and mouth corner).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# CelebA's aligned crops (img_align_celeba) are 178 x 218 (width x height); the paper and
# --crop_size=0 use their central 178 x 178 square.
CELEBA_FRAME = (178, 218)
CELEBA_SQUARE_TOP = (CELEBA_FRAME[1] - CELEBA_FRAME[0]) // 2  # 20: first row of that square
DETECTORS = ("mtcnn", "dlib")
DEFAULT_DETECTOR = "mtcnn"
# Where each detector finds the five landmarks, on average, in CelebA's aligned 178x218 frame
# (x, y in px): the per-coordinate median over the first 1,000 faces of ../shared/data/
# celeba10k (89x109, upscaled 2x bicubic; mtcnn found 995, dlib 960), measured by
# `python -m tools.bench_prepare --measure_template --detector=NAME --num=1000`. The two
# detectors place "eye", "nose" and "mouth corner" slightly differently, hence one each.
TEMPLATES = {
    "mtcnn": (
        (69.09, 111.54),
        (108.02, 111.58),
        (88.20, 135.43),
        (71.30, 152.13),
        (105.59, 152.13),
    ),
    "dlib": (
        (69.17, 112.50),
        (107.83, 112.67),
        (88.00, 135.00),
        (71.00, 153.00),
        (106.00, 153.00),
    ),
}
MISSING_DETECTOR = (
    "face detector {name!r} is not installed: pip install 'xplore_tf[prepare]' "
    "(mtcnn) or 'xplore_tf[eval]' (dlib)"
)


class DetectorMissing(ImportError):
    """The chosen face detector's package is not installed (one line saying what to install)."""


# ---------------------------------------------------------------------- geometry
def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping points src [n,2] onto dst [n,2] -> [2,3].

    Solves x' = a x - b y + tx, y' = b x + a y + ty for (a, b, tx, ty) in the least-squares
    sense: every rotation + uniform scale + translation, no reflection (the same optimum as
    Umeyama's method, e.g. skimage.transform.SimilarityTransform). Needs n >= 2 distinct
    points; raises ValueError otherwise.
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError(f"similarity fit needs >= 2 point pairs, got {len(src)} and {len(dst)}")
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    design = np.concatenate(
        [np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)], axis=0
    )
    target = np.concatenate([dst[:, 0], dst[:, 1]])
    (a, b, tx, ty), _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    if rank < 4:
        raise ValueError("similarity fit: the source points coincide")
    return np.array([[a, -b, tx], [b, a, ty]])


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (raises ValueError when it is singular)."""
    m = np.asarray(matrix, np.float64)
    linear = m[:, :2]
    if abs(np.linalg.det(linear)) < 1e-12:
        raise ValueError("affine matrix is singular")
    inv = np.linalg.inv(linear)
    return np.concatenate([inv, -inv @ m[:, 2:]], axis=1)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 matrix of `outer(inner(p))`."""
    o = np.asarray(outer, np.float64)
    i = np.asarray(inner, np.float64)
    return np.concatenate([o[:, :2] @ i[:, :2], o[:, :2] @ i[:, 2:] + o[:, 2:]], axis=1)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Applies a 2x3 matrix to points [n,2] -> [n,2]."""
    m = np.asarray(matrix, np.float64)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def matrix_scale(matrix: np.ndarray) -> float:
    """How many crop pixels one photo pixel becomes (sqrt |det|)."""
    return float(math.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def resize_matrix(from_size: int, to_size: int) -> np.ndarray:
    """2x3 matrix taking pixel centres of a from_size square to those of a to_size square."""
    k = to_size / from_size
    return np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])


def template_points(detector: str, size: int) -> np.ndarray:
    """The detector's five template landmarks [5,2] in an aligned `size` x `size` crop.

    The crop is CelebA's central 178x178 square (rows 20..197 of the 178x218 frame) scaled
    to `size` px.
    """
    if detector not in TEMPLATES:
        raise ValueError(f"unknown face detector {detector!r}: one of {', '.join(DETECTORS)}")
    if size < 1:
        raise ValueError(f"aligned crop size must be >= 1 px, got {size}")
    frame = np.asarray(TEMPLATES[detector], np.float64) - [0.0, CELEBA_SQUARE_TOP]
    return transform_points(resize_matrix(CELEBA_FRAME[0], size), frame)


def alignment_matrix(landmarks: np.ndarray, detector: str, size: int) -> np.ndarray:
    """2x3 photo -> aligned-crop matrix of a face from its five landmarks [5,2] (LANDMARKS order)."""
    return similarity_matrix(landmarks, template_points(detector, size))


def output_matrix(
    matrix: np.ndarray, aligned_size: int, output_size: int, crop_size: int = 0
) -> np.ndarray:
    """Photo -> model-output matrix when an aligned crop is translated by an exported model.

    The model centre-crops `crop_size` px of its input (0 = all of it; xplore_tf's
    --crop_size) and resizes that square to its resolution `output_size`.
    """
    side = aligned_size if crop_size <= 0 else min(crop_size, aligned_size)
    top = (aligned_size - side) // 2
    shift = np.array([[1.0, 0.0, -top], [0.0, 1.0, -top]])
    return compose(resize_matrix(side, output_size), compose(shift, matrix))


# ---------------------------------------------------------------------- warping
def _pil_affine(matrix: np.ndarray) -> tuple[float, ...]:
    """Pillow's AFFINE data for an output -> input matrix in index convention.

    Pillow samples input point (a u + b v + c, d u + e v + f) for output pixel centre
    (u, v) = (x + 0.5, y + 0.5), with input pixel i's centre at i + 0.5 (corner convention).
    """
    m = np.asarray(matrix, np.float64)
    offset = m[:, 2] - m[:, :2] @ [0.5, 0.5] + 0.5
    return (m[0, 0], m[0, 1], offset[0], m[1, 0], m[1, 1], offset[1])


def _photo_region(rgb: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """rgb[y0:y1, x0:x1], with points outside the photo mirrored from inside it."""
    h, w = rgb.shape[:2]
    sub = rgb[max(y0, 0) : max(min(y1, h), 0), max(x0, 0) : max(min(x1, w), 0)]
    if sub.size == 0:
        return np.zeros((y1 - y0, x1 - x0, rgb.shape[2]), rgb.dtype)
    pads = ((max(-y0, 0), max(y1 - h, 0)), (max(-x0, 0), max(x1 - w, 0)), (0, 0))
    return np.pad(sub, pads, mode="symmetric") if any(sum(p) for p in pads) else sub


def align(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The aligned crop uint8 [size,size,3] of photo rgb uint8 [H,W,3] under `matrix` (photo -> crop).

    Bicubic; a region shrunk by more than 2x is box-reduced by an integer factor first
    (antialiasing). Crop pixels beyond the photo's border mirror the photo.
    """
    rgb = np.asarray(rgb, np.uint8)
    to_photo = invert(matrix)
    factor = max(1, int(math.floor(1.0 / matrix_scale(matrix))))
    corners = transform_points(
        to_photo, [[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]]
    )
    margin = 3 * factor  # the bicubic kernel's reach, in photo pixels
    x0 = int(math.floor(corners[:, 0].min())) - margin
    y0 = int(math.floor(corners[:, 1].min())) - margin
    x1 = int(math.ceil(corners[:, 0].max())) + margin
    y1 = int(math.ceil(corners[:, 1].max())) + margin
    x1 += -(x1 - x0) % factor  # whole factor x factor blocks
    y1 += -(y1 - y0) % factor
    im = Image.fromarray(np.ascontiguousarray(_photo_region(rgb, x0, y0, x1, y1)))
    # photo point p -> region (reduced) point: block j averages pixels j*f .. j*f + f-1.
    to_region = np.array(
        [
            [1.0 / factor, 0.0, -(x0 + (factor - 1) / 2) / factor],
            [0.0, 1.0 / factor, -(y0 + (factor - 1) / 2) / factor],
        ]
    )
    if factor > 1:
        im = im.reduce(factor)
    data = _pil_affine(compose(to_region, to_photo))
    out = im.transform((size, size), Image.Transform.AFFINE, data, Image.Resampling.BICUBIC)
    return np.asarray(out, np.uint8)


def _head_mask(u: np.ndarray, v: np.ndarray, feather: float) -> np.ndarray:
    """`head_mask` at crop points (u, v), in crop sides from its centre (-0.5..0.5)."""
    radius = np.sqrt((u / 0.46) ** 2 + (v / 0.49) ** 2)  # 1 on the outline
    t = np.clip((1.0 - radius) * 0.46 / feather, 0.0, 1.0)  # distance inside, in feathers
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def head_mask(size: int, feather: float = 0.12) -> np.ndarray:
    """float32 [size,size] in [0,1]: the blending mask of an aligned crop.

    An ellipse over the head of CelebA's framing (centre of the crop, semi-axes 0.46 and 0.49
    of the side: face, hair and some background), 0 on its outline and rising to 1 over
    `feather` x side pixels inside it (smoothstep), so a pasted crop has no visible seam.
    """
    if not 0.0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5] of the crop side, got {feather}")
    c = (np.arange(size, dtype=np.float64) + 0.5) / size - 0.5  # pixel centres, -0.5..0.5
    v, u = np.meshgrid(c, c, indexing="ij")
    return _head_mask(u, v, feather)


def _warped_region(photo_shape, image: np.ndarray, matrix: np.ndarray, feather: float):
    """Where crop-space `image` [s,s,C] lands in a photo of `photo_shape` under `matrix`.

    -> None when it misses the photo, else ((y0, y1, x0, x1), the image warped into that
    region float32 [h,w,C] (bicubic), the `head_mask` there float32 [h,w,1]). The mask is
    evaluated at every photo pixel (not resampled from s x s pixels), so it is exactly 0
    outside the ellipse whatever the crop's resolution.
    """
    h, w = photo_shape[:2]
    s = image.shape[0]
    corners = transform_points(
        invert(matrix), [[-0.5, -0.5], [s - 0.5, -0.5], [-0.5, s - 0.5], [s - 0.5, s - 0.5]]
    )
    x0 = max(int(math.floor(corners[:, 0].min())), 0)
    y0 = max(int(math.floor(corners[:, 1].min())), 0)
    x1 = min(int(math.ceil(corners[:, 0].max())) + 1, w)
    y1 = min(int(math.ceil(corners[:, 1].max())) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    # region pixel r -> photo point r + (x0, y0) -> crop point.
    to_crop = compose(matrix, np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]))
    data = _pil_affine(to_crop)
    size = (x1 - x0, y1 - y0)
    if image.dtype == np.uint8:
        warped = np.asarray(
            Image.fromarray(image).transform(size, Image.Transform.AFFINE, data, Image.BICUBIC),
            np.float32,
        )
    else:  # signed values: one 32-bit float plane per channel
        planes = [
            Image.fromarray(np.ascontiguousarray(image[:, :, c], np.float32), "F").transform(
                size, Image.Transform.AFFINE, data, Image.BICUBIC
            )
            for c in range(image.shape[2])
        ]
        warped = np.stack([np.asarray(p, np.float32) for p in planes], axis=-1)
    yy, xx = np.mgrid[0 : y1 - y0, 0 : x1 - x0].astype(np.float64)
    points = transform_points(to_crop, np.stack([xx.ravel(), yy.ravel()], axis=1))
    uv = (points + 0.5) / s - 0.5
    alpha = _head_mask(uv[:, 0], uv[:, 1], feather).reshape(y1 - y0, x1 - x0)[:, :, None]
    return (y0, y1, x0, x1), warped, alpha


def _check_pasted(feather: float, images: Sequence[np.ndarray], matrices, what: str) -> None:
    if not 0.0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5] of the crop side, got {feather}")
    if len(images) != len(matrices):
        raise ValueError(f"{len(images)} {what} but {len(matrices)} matrices")
    for image in images:
        shape = np.shape(image)
        if len(shape) != 3 or shape[1] != shape[0] or shape[2] != 3:
            raise ValueError(f"a translated {what[:-1]} must be [s,s,3], got {shape}")


def paste_back(
    photo: np.ndarray,
    crops: Sequence[np.ndarray],
    matrices: Sequence[np.ndarray],
    *,
    feather: float = 0.12,
) -> np.ndarray:
    """Blends translated crops back into the photo -> uint8 [H,W,3] (the photo's size).

    crops[i] is uint8 [s,s,3] and matrices[i] its photo -> crop matrix (for that s; see
    `output_matrix`). Each crop is warped into the photo by the inverse transform (bicubic)
    and mixed with the `head_mask` ellipse at each photo pixel; the photo is unchanged where
    every mask is 0. Faces are pasted in order (a later one covers an earlier one).
    """
    crops = [np.asarray(c, np.uint8) for c in crops]
    return _paste(
        photo, crops, matrices, feather, "crops", lambda old, new, a: a * new + (1 - a) * old
    )


def _paste(photo, images, matrices, feather: float, what: str, combine) -> np.ndarray:
    """Each image warped into the photo and `combine(region, warped, alpha)`d in place."""
    _check_pasted(feather, images, matrices, what)
    photo = np.asarray(photo, np.uint8)
    out = photo.astype(np.float32)
    for image, matrix in zip(images, matrices, strict=True):
        placed = _warped_region(photo.shape, image, matrix, feather)
        if placed is not None:
            (y0, y1, x0, x1), warped, alpha = placed
            out[y0:y1, x0:x1] = combine(out[y0:y1, x0:x1], warped, alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def paste_mask(
    photo_shape: Sequence[int], matrix: np.ndarray, size: int, *, feather: float = 0.12
) -> np.ndarray:
    """float32 [H,W] in [0,1]: the weight paste-back gives a size x size crop under `matrix`
    at each photo pixel (0 wherever the photo is returned unchanged)."""
    mask = np.zeros(tuple(photo_shape[:2]), np.float32)
    placed = _warped_region(photo_shape, np.zeros((size, size, 1), np.float32), matrix, feather)
    if placed is not None:
        (y0, y1, x0, x1), _, alpha = placed
        mask[y0:y1, x0:x1] = alpha[:, :, 0]
    return mask


def paste_edits(
    photo: np.ndarray,
    edits: Sequence[np.ndarray],
    matrices: Sequence[np.ndarray],
    *,
    feather: float = 0.12,
) -> np.ndarray:
    """Adds each face's edit to the photo -> uint8 [H,W,3]: only the change crosses back.

    edits[i] is float32 [s,s,3], translated crop minus the crop the model was given (signed
    pixel units), and matrices[i] the photo -> crop matrix. Each edit is warped into the
    photo (bicubic) and added under the `head_mask` ellipse, so the photo's own pixels are
    never resampled: where an edit is 0, or outside every mask, the photo is returned bit for
    bit. Faces are added in order.
    """
    edits = [np.asarray(e, np.float32) for e in edits]
    return _paste(photo, edits, matrices, feather, "edits", lambda old, new, a: old + a * new)


# ---------------------------------------------------------------------- detection
@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face in photo pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the detector's box
    score: float  # the detector's confidence (mtcnn: probability; dlib: SVM margin)
    landmarks: np.ndarray  # float64 [5,2] (x, y) in LANDMARKS order

    @property
    def size(self) -> float:
        """The shorter side of the detection box in px (what --min_face_size compares)."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class Detector:
    """Finds faces with five landmarks in uint8 RGB photos; subclasses wrap one library."""

    name = ""

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """uint8 [H,W,3] -> faces, best score first (none for images too small to hold one)."""
        raise NotImplementedError


class MtcnnDetector(Detector):
    """MTCNN (the `mtcnn` package 1.0, TensorFlow; weights in its wheel).

    Always run with the package's default smallest face (20 px): in mtcnn 1.0.0 a larger
    `min_face_size` shrinks its image pyramid below PNet's 12 px window and then no face is
    returned at all. Larger limits are applied afterwards (`find_faces`).
    """

    name = "mtcnn"
    MIN_FACE = 20  # px: the package's default and its smallest working pyramid start
    MIN_SIDE = 24  # photos with a shorter side cannot hold a MIN_FACE face plus context

    def __init__(self, *, min_face_size: int = 20):
        if importlib.util.find_spec("mtcnn") is None:
            raise DetectorMissing(MISSING_DETECTOR.format(name=self.name))
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from mtcnn import MTCNN

        self.min_face_size = int(min_face_size)
        self._mtcnn = MTCNN(device="CPU:0")

    def detect(self, rgb: np.ndarray) -> list[Face]:
        rgb = np.ascontiguousarray(rgb, np.uint8)
        if min(rgb.shape[:2]) < self.MIN_SIDE:
            return []
        rows = self._mtcnn.detect_faces(
            rgb, box_format="xyxy", output_type="numpy", min_face_size=self.MIN_FACE
        )
        # rows: [image, x0, y0, x1, y1, confidence, 5 landmark x, 5 landmark y], both in
        # LANDMARKS order (left eye, right eye, nose, mouth left, mouth right).
        faces = [
            Face(
                box=tuple(float(v) for v in row[1:5]),
                score=float(row[5]),
                landmarks=np.stack([row[6:11], row[11:16]], axis=1).astype(np.float64),
            )
            for row in np.asarray(rows, np.float64).reshape(-1, 16)
        ]
        return sorted(faces, key=lambda f: -f.score)


class DlibDetector(Detector):
    """dlib's HOG face detector + the 68-point shape predictor of face-recognition-models.

    Five points from the 68 (iBUG 300-W numbering): the mean of each eye's six points, the
    nose tip (30) and the mouth corners (48, 54). The image is upsampled so that faces of
    `min_face_size` px reach the HOG window (80 px).
    """

    name = "dlib"
    WINDOW = 80

    def __init__(self, *, min_face_size: int = 40):
        if (
            importlib.util.find_spec("dlib") is None
            or importlib.util.find_spec("face_recognition_models") is None
        ):
            raise DetectorMissing(MISSING_DETECTOR.format(name=self.name))
        import warnings

        import dlib

        with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
            warnings.simplefilter("ignore")
            import face_recognition_models

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(
            face_recognition_models.pose_predictor_model_location()
        )
        self.upsample = max(0, min(2, math.ceil(math.log2(self.WINDOW / max(min_face_size, 1)))))

    def detect(self, rgb: np.ndarray) -> list[Face]:
        rgb = np.ascontiguousarray(rgb, np.uint8)
        if min(rgb.shape[:2]) < 8:
            return []
        rects, scores, _ = self._detector.run(rgb, self.upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            shape = self._predictor(rgb, rect)
            p = np.array([[q.x, q.y] for q in shape.parts()], np.float64)
            five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(box=box, score=float(score), landmarks=five))
        return sorted(faces, key=lambda f: -f.score)


def detector_available(name: str = DEFAULT_DETECTOR) -> bool:
    """Whether `make_detector(name)` can work here (its packages are importable)."""
    modules = {"mtcnn": ("mtcnn",), "dlib": ("dlib", "face_recognition_models")}
    if name not in modules:
        raise ValueError(f"unknown face detector {name!r}: one of {', '.join(DETECTORS)}")
    return all(importlib.util.find_spec(m) is not None for m in modules[name])


_DETECTORS: dict[tuple[str, int], Detector] = {}


def make_detector(name: str = DEFAULT_DETECTOR, *, min_face_size: int = 40) -> Detector:
    """The detector `name` (one of DETECTORS), built once per process and size.

    Raises DetectorMissing (an ImportError: one line naming what to pip install) when its
    package is absent, ValueError for an unknown name.
    """
    classes = {"mtcnn": MtcnnDetector, "dlib": DlibDetector}
    if name not in classes:
        raise ValueError(f"unknown face detector {name!r}: one of {', '.join(DETECTORS)}")
    key = (name, int(min_face_size))
    if key not in _DETECTORS:
        _DETECTORS[key] = classes[name](min_face_size=min_face_size)
    return _DETECTORS[key]


# ---------------------------------------------------------------------- faces of a photo
# Angles (degrees, counter-clockwise) of the rotated copies searched when a photo shows no
# face upright: the detectors miss some faces tilted by 20-30 degrees (measured: docs/experiments/2026-12-05-readme-measurements.md).
RETRY_ANGLES = (20.0, -20.0)


def _rotated(rgb: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(the photo rotated by `angle` degrees counter-clockwise on a canvas that holds all of
    it, black around; the 2x3 photo -> canvas matrix)."""
    h, w = rgb.shape[:2]
    a = math.radians(angle)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # y points down
    corners = (np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) - 0.5) @ rot.T
    low = np.floor(corners.min(axis=0))
    size = np.ceil(corners.max(axis=0) - low).astype(int)
    matrix = np.concatenate([rot, (-low - 0.5)[:, None]], axis=1)
    canvas = Image.fromarray(np.ascontiguousarray(rgb)).transform(
        (int(size[0]), int(size[1])),
        Image.Transform.AFFINE,
        _pil_affine(invert(matrix)),
        Image.BICUBIC,
    )
    return np.asarray(canvas, np.uint8), matrix


def _same_face(a: Face, b: Face) -> bool:
    """Whether two detections are one face: eye midpoints within half an eye distance."""
    distance = max(np.linalg.norm(a.landmarks[0] - a.landmarks[1]), 1.0)
    return bool(np.linalg.norm(a.landmarks[:2].mean(0) - b.landmarks[:2].mean(0)) < 0.5 * distance)


# A photo longer than this many times its short side is searched rotated in windows.
LONG_PHOTO = 3


def retry_windows(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the parts of a photo searched in rotated copies: the whole photo,
    or for a long, thin one overlapping windows of twice its short side along its length.

    A copy rotated by 20 degrees needs a canvas of (L cos + s sin)(L sin + s cos) pixels,
    ~0.34 L^2 for a strip L long: windows keep each canvas under twice the photo's pixels
    (3.6 s^2 for a window of 2s x s), whatever its length.
    """
    short, long = min(height, width), max(height, width)
    if long <= LONG_PHOTO * short:
        return [(0, height, 0, width)]
    starts = list(range(0, long - 2 * short + 1, short))
    if starts[-1] + 2 * short < long:
        starts.append(long - 2 * short)
    if width >= height:
        return [(0, height, a, a + 2 * short) for a in starts]
    return [(a, a + 2 * short, 0, width) for a in starts]


def detect_faces(
    rgb: np.ndarray, detector: Detector, *, retry_angles: Sequence[float] = RETRY_ANGLES
) -> list[Face]:
    """`detector.detect(rgb)`, and when that finds nothing, the faces found in copies rotated
    by `retry_angles` (of the whole photo, or of windows along a long one: `retry_windows`),
    mapped back to the photo (boxes keep their detected size, centred on the face; a face
    found in several copies is kept once, at its best score)."""
    found = detector.detect(rgb)
    if found or min(rgb.shape[:2]) < 2:
        return found
    for angle in retry_angles:
        for y0, y1, x0, x1 in retry_windows(*rgb.shape[:2]):
            for face in _detect_rotated(rgb[y0:y1, x0:x1], detector, angle):
                shift = np.array([x0, y0], np.float64)
                face = Face(
                    (face.box[0] + x0, face.box[1] + y0, face.box[2] + x0, face.box[3] + y0),
                    face.score,
                    face.landmarks + shift,
                )
                same = [i for i, g in enumerate(found) if _same_face(g, face)]
                if not same:
                    found.append(face)
                elif found[same[0]].score < face.score:
                    found[same[0]] = face
    return sorted(found, key=lambda f: -f.score)


def _detect_rotated(rgb: np.ndarray, detector: Detector, angle: float) -> list[Face]:
    """Faces found in `rgb` rotated by `angle` degrees, in `rgb`'s coordinates."""
    canvas, matrix = _rotated(rgb, angle)
    back = invert(matrix)
    out = []
    for f in detector.detect(canvas):
        x0, y0, x1, y1 = f.box
        cx, cy = transform_points(back, [[(x0 + x1) / 2, (y0 + y1) / 2]])[0]
        hw, hh = (x1 - x0) / 2, (y1 - y0) / 2
        out.append(
            Face(
                box=(cx - hw, cy - hh, cx + hw, cy + hh),
                score=f.score,
                landmarks=transform_points(back, f.landmarks),
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class AlignedFace:
    """A detected face with its alignment: `crop = align(photo, matrix, size)`."""

    face: Face
    matrix: np.ndarray  # float64 [2,3], photo -> crop
    crop: np.ndarray  # uint8 [size,size,3]


def find_faces(
    rgb: np.ndarray,
    detector: Detector,
    *,
    size: int = 128,
    faces: str = "all",
    min_face_size: float = 0.0,
    min_score: float = 0.0,
    retry_angles: Sequence[float] = RETRY_ANGLES,
) -> list[AlignedFace]:
    """Detects (`detect_faces`), filters and aligns the faces of one photo uint8 [H,W,3].

    Keeps faces whose box is at least `min_face_size` px (shorter side) and whose score is
    at least `min_score`; `faces="largest"` keeps only the largest of those. Order: largest
    first. Returns [] for photos without a face (also 1x1 or blank images).
    """
    if faces not in ("all", "largest"):
        raise ValueError(f"faces must be 'all' or 'largest', got {faces!r}")
    rgb = np.asarray(rgb, np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a photo must be uint8 [H,W,3], got shape {rgb.shape}")
    found = [
        f
        for f in detect_faces(rgb, detector, retry_angles=retry_angles)
        if f.size >= min_face_size and f.score >= min_score
    ]
    found.sort(key=lambda f: -f.size)
    if faces == "largest":
        found = found[:1]
    out = []
    for face in found:
        matrix = alignment_matrix(face.landmarks, detector.name, size)
        out.append(AlignedFace(face, matrix, align(rgb, matrix, size)))
    return out


def centre_square(crop: np.ndarray, crop_size: int = 0) -> np.ndarray:
    """The part of an aligned crop [s,s,3] a model with `crop_size` sees (0 = all of it)."""
    side = crop.shape[0] if crop_size <= 0 else min(crop_size, crop.shape[0])
    top = (crop.shape[0] - side) // 2
    return crop[top : top + side, top : top + side]


def paste_translations(
    rgb: np.ndarray,
    aligned: Sequence[AlignedFace],
    translate: Callable[[list[np.ndarray]], list[np.ndarray]],
    *,
    crop_size: int = 0,
    feather: float = 0.12,
    full_resolution: bool = False,
) -> np.ndarray:
    """The whole photo with each aligned face translated.

    `translate` maps the aligned crops (uint8 [s,s,3]) to translated crops. With
    `full_resolution` they come back at the size of the part the model saw (the central
    `crop_size` px, 0 = all; a `translate_full` signature) and only their change is added to
    the photo (`paste_edits`); otherwise they are the model's output uint8 [S,S,3], warped
    back in place of the face (`paste_back`). With no face the photo is returned unchanged.
    """
    if not aligned:
        return np.asarray(rgb, np.uint8).copy()
    outputs = [np.asarray(o) for o in translate([a.crop for a in aligned])]
    if len(outputs) != len(aligned):
        raise ValueError(f"{len(aligned)} faces but {len(outputs)} translations")
    matrices = [
        output_matrix(a.matrix, a.crop.shape[0], o.shape[0], crop_size)
        for a, o in zip(aligned, outputs, strict=True)
    ]
    if not full_resolution:
        return paste_back(rgb, outputs, matrices, feather=feather)
    edits = []
    for a, out in zip(aligned, outputs, strict=True):
        seen = centre_square(a.crop, crop_size)
        if out.shape != seen.shape:
            raise ValueError(
                f"the model returned {out.shape} for a {seen.shape} face: not a "
                "full-resolution translation"
            )
        edits.append(out.astype(np.float32) - seen.astype(np.float32))
    return paste_edits(rgb, edits, matrices, feather=feather)


@dataclasses.dataclass(frozen=True)
class PasteOptions:
    """How `translate_photo` finds and pastes faces (xplore_tf's prepare flags)."""

    detector: str = DEFAULT_DETECTOR
    faces: str = "all"  # "all" | "largest"
    aligned_size: int = 128  # px of the crops sent to the model
    min_face_size: int = 20  # px, detection box's shorter side
    min_face_score: float = 0.0
    feather: float = 0.12  # fraction of the crop side
    crop_size: int = 0  # the model's own centre crop of its input (0 = all of it)
    # translate_pngs returns each crop at its own size with the model's edit added (a
    # `translate_full` signature): only the edit is pasted, the photo's pixels stay its own
    full_resolution: bool = False


def translate_photo(
    rgb: np.ndarray,
    translate_pngs: Callable[[list[bytes]], list[bytes]],
    options: PasteOptions,
) -> tuple[np.ndarray, int]:
    """(the whole photo with every face translated, the number of faces) for uint8 [H,W,3].

    `translate_pngs` sends aligned crops as PNG bytes to a model (the `translate_bytes`
    signature: a server's or a local one) and returns PNG bytes. Raises DetectorMissing when
    the detector is not installed.
    """
    detector = make_detector(options.detector, min_face_size=options.min_face_size)
    aligned = find_faces(
        rgb,
        detector,
        size=options.aligned_size,
        faces=options.faces,
        min_face_size=options.min_face_size,
        min_score=options.min_face_score,
    )

    def translate(crops: list[np.ndarray]) -> list[np.ndarray]:
        pngs = []
        for crop in crops:
            buf = io.BytesIO()
            Image.fromarray(crop).save(buf, format="PNG")
            pngs.append(buf.getvalue())
        return [
            np.asarray(Image.open(io.BytesIO(out)).convert("RGB"), np.uint8)
            for out in translate_pngs(pngs)
        ]

    photo = paste_translations(
        rgb,
        aligned,
        translate,
        crop_size=options.crop_size,
        feather=options.feather,
        full_resolution=options.full_resolution,
    )
    return photo, len(aligned)
