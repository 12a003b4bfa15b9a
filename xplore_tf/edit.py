"""The edit, not the picture, crosses resolutions: a translation carried to an image's own size.

The generator runs at its own resolution S (32-128 px); a user's aligned face is often
150-600 px. Upscaling G's output replaces the face by a blurred S-px copy. Instead the
*edit* is taken at S and added to the full-resolution image x_full (`carry_edit`):

    out = x_full + up(edit),   edit = G(x_S, s_target) - base

where x_S is the model's own input (the framed square resized to S) and `base` is either
x_S itself (`RESIDUAL`: everything G draws differently from its input) or G(x_S, s_source),
the translation into the input's own cluster (`DIFFERENCE`: what changes between two
translations, so edits G makes whatever the target cancel). Only the smooth change is
carried (bicubic); every detail of x_full stays: a zero edit returns x_full bit for bit.

`face_colour` says what becomes of the colour G gives the face:

- `NO_CAST` (the default) removes the cast G puts on the whole face: the per-channel median
  of the edit over both cheeks (below the eyes, beside the nose: where none of the usual
  targets draws, glasses, hats, hair, smiles and beards aside) is subtracted under a
  feathered inner-face mask, so the face keeps its own skin tone while local changes (a
  beard's shading, glasses, a hat's shadow) and everything outside the face (hair colour,
  background) keep their full edit;
- `LUMINANCE` also keeps the face's hue and saturation: inside the mask only the edit's
  luminance (Rec. 601 weights) passes;
- `GENERATOR` keeps the edit as G made it.

The residual formulation follows LPTN (Liang et al., CVPR 2021: a low-resolution
translation plus the input's own high-frequency band), without its refinement network;
the choices here were measured on real photos (docs/experiments/2026-12-04-full-resolution.md).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

RESIDUAL = "residual"
DIFFERENCE = "difference"
EDIT_BASES = (RESIDUAL, DIFFERENCE)
NO_CAST = "no_cast"
LUMINANCE = "luminance"
GENERATOR = "generator"
FACE_COLOURS = (NO_CAST, LUMINANCE, GENERATOR)
_LUMA = (0.299, 0.587, 0.114)  # Rec. 601

# The masks in the aligned frame: CelebA's central 178 x 178 square (the framing every model
# here is trained on and `prepare` aligns to), in that square's pixel units; the template
# puts the eyes at y = 91.5, the nose tip at (88.2, 115.4) and the mouth corners at y = 132.
_CHEEK_ROWS = (103.0, 127.0)
_CHEEK_COLUMNS = ((58.0, 79.0), (98.0, 119.0))
_FACE_CENTRE = (88.6, 100.0)  # x, y: the inner face's ellipse, forehead to chin
_FACE_AXES = (36.0, 52.0)
_FACE_FEATHER = 0.25  # of the radius: the mask falls from 1 to 0 over its outer quarter


def _square_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of each pixel centre of a size x size image in the 178-px square's units."""
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 178.0
    y, x = np.meshgrid(c, c, indexing="ij")
    return x, y


def cheek_mask(size: int) -> np.ndarray:
    """bool [size,size]: both cheeks of an aligned face (where the skin colour is sampled)."""
    x, y = _square_grid(size)
    rows = (y > _CHEEK_ROWS[0]) & (y < _CHEEK_ROWS[1])
    columns = np.zeros_like(rows)
    for lo, hi in _CHEEK_COLUMNS:
        columns |= (x > lo) & (x < hi)
    return rows & columns


def face_mask(size: int) -> np.ndarray:
    """float32 [size,size] in [0,1]: the inner face (1), feathered to 0 at its ellipse."""
    x, y = _square_grid(size)
    r = np.hypot((x - _FACE_CENTRE[0]) / _FACE_AXES[0], (y - _FACE_CENTRE[1]) / _FACE_AXES[1])
    t = np.clip((1.0 - r) / _FACE_FEATHER, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def skin_cast(edit) -> tf.Tensor:
    """float32 [N,3]: the per-channel median of edits [N,S,S,3] over the cheeks."""
    edit = tf.convert_to_tensor(edit, tf.float32)
    mask = cheek_mask(int(edit.shape[1]))
    samples = tf.boolean_mask(edit, mask, axis=1)  # [N, P, 3]
    ordered = tf.sort(samples, axis=1)
    count = int(mask.sum())
    # the middle value (the mean of the two middle ones for an even count)
    middle = (ordered[:, (count - 1) // 2] + ordered[:, count // 2]) / 2.0
    return middle


def model_edit(images, target, source, *, base: str = RESIDUAL, face_colour: str = NO_CAST):
    """The edit G made at its resolution, float32 [N,S,S,3] in pixel units (0-255 scale).

    images: uint8 [N,S,S,3], the model's inputs x_S; target, source: float32 [N,S,S,3],
    G(x_S, s_target) and G(x_S, s_source) in [0, 255] (`source` is only read for
    DIFFERENCE). Raises ValueError for an unknown `base` or `face_colour`.
    """
    if base not in EDIT_BASES:
        raise ValueError(f"edit base must be one of {EDIT_BASES}, got {base!r}")
    if face_colour not in FACE_COLOURS:
        raise ValueError(f"face colour must be one of {FACE_COLOURS}, got {face_colour!r}")
    reference = tf.cast(images, tf.float32) if base == RESIDUAL else source
    edit = tf.convert_to_tensor(target, tf.float32) - reference
    if face_colour == GENERATOR:
        return edit
    mask = tf.constant(face_mask(int(edit.shape[1]))[None, :, :, None])
    edit = edit - mask * skin_cast(edit)[:, None, None, :]
    if face_colour == LUMINANCE:
        luminance = tf.reduce_sum(edit * tf.constant(_LUMA), axis=-1, keepdims=True)
        edit = mask * luminance + (1.0 - mask) * edit
    return edit


def carry_edit(image, delta):
    """x + up(delta): uint8 [H,W,3] image, float32 [S,S,3] edit in pixel units -> uint8 [H,W,3].

    `delta` is the change the generator made at its resolution (0-255 scale, signed);
    it is resized to H x W (bicubic, antialiased when shrinking) and added, then rounded and
    clipped to 0..255. Where the resized delta is 0 the pixel is returned unchanged.
    """
    image = tf.convert_to_tensor(image)
    delta = tf.convert_to_tensor(delta, tf.float32)
    size = tf.shape(image)[:2]
    up = tf.image.resize(delta[tf.newaxis], size, method="bicubic", antialias=True)[0]
    out = tf.round(tf.cast(image, tf.float32) + up)
    return tf.cast(tf.clip_by_value(out, 0.0, 255.0), tf.uint8)
