"""Realism: the Fréchet distance between real and translated images in a feature space.

FD (Heusel et al. 2017, "FID" when the features are InceptionV3's pool3) fits a Gaussian to
each set of features and measures

    FD = ||mu_1 - mu_2||^2 + Tr(S_1) + Tr(S_2) - 2 Tr((S_1 S_2)^(1/2)).

Tr((S_1 S_2)^(1/2)) equals the sum of the square roots of the eigenvalues of the symmetric
PSD matrix S_1^(1/2) S_2 S_1^(1/2), so we compute it with two symmetric eigen-decompositions
instead of a general `sqrtm`: no complex values appear, and the small negative eigenvalues
that rounding produces on rank-deficient covariances (fewer images than feature dims) are
clipped to 0 - the case pytorch-fid handles by adding eps to the diagonal and dropping an
imaginary part.

The numbers depend on the feature space and on the sample size (FD is biased upwards for
small sets), so a report always carries a real-vs-real reference of the same size.
"""

from __future__ import annotations

import dataclasses
import os
import weakref

import numpy as np

from xplore_tf.evaluation import blotches as blotches_lib
from xplore_tf.evaluation import droplets as droplets_lib
from xplore_tf.features.base import FeatureExtractor

INCEPTION_INPUT_SIZE = 299
INCEPTION_FEATURE_DIM = 2048
_NO_INCEPTION = "no --inception_weights: Inception FID not computed"


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], unbiased covariance [D, D]) of features [N, D] in float64; N >= 2."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must have shape [N, D], got {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {f.shape[0]}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative rounding noise clipped)."""
    sym = (matrix + matrix.T) / 2.0
    values, vectors = np.linalg.eigh(sym)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S_1 S_2)^(1/2)) for symmetric PSD S_1, S_2 [D, D]."""
    root1 = _psd_sqrt(np.asarray(sigma1, np.float64))
    inner = root1 @ np.asarray(sigma2, np.float64) @ root1
    values = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); mu [D], sigma [D, D].

    0 for identical Gaussians; ||mu1 - mu2||^2 when only the means differ;
    sum_i (sqrt(a_i) - sqrt(b_i))^2 for diagonal covariances diag(a), diag(b) with equal means.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"means have different shapes {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"covariances must be [{d}, {d}], got {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    value = (
        float(diff @ diff)
        + float(np.trace(sigma1))
        + float(np.trace(sigma2))
        - 2.0 * trace_sqrt_product(sigma1, sigma2)
    )
    return max(0.0, value)  # tiny negatives are rounding, FD is a squared distance


def frechet_distance_of_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FD between the Gaussians fitted to two feature sets [N1, D] and [N2, D]."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


_FEATURE_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _features_function(extractor: FeatureExtractor):
    """One `tf.function` per extractor (traced once per input shape, not once per call):
    uint8 [N,S,S,3] -> features [N,D], resized to the extractor's input size first."""
    fn = _FEATURE_FUNCTIONS.get(extractor)
    if fn is not None:
        return fn
    import tensorflow as tf

    size, layer = extractor.input_size, weakref.ref(extractor)  # no cycle through the cache

    @tf.function(reduce_retracing=True, autograph=False)
    def features(batch):
        x = tf.cast(batch, tf.float32)
        if x.shape[1] != size or x.shape[2] != size:
            x = tf.clip_by_value(tf.image.resize(x, (size, size), antialias=True), 0.0, 255.0)
        return layer()(x)

    _FEATURE_FUNCTIONS[extractor] = features
    return features


def extractor_features(
    extractor: FeatureExtractor, images: np.ndarray, *, batch_size: int = 32
) -> np.ndarray:
    """Features [N, D] float32 of in-memory uint8 images [N, S, S, 3].

    Images are resized (bilinear, antialiased) to the extractor's input size, so real and
    translated images of one resolution go through exactly the same path.
    """
    import tensorflow as tf

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [N, S, S, 3], got {images.shape}")
    if len(images) == 0:
        return np.zeros((0, extractor.feature_dim), np.float32)
    _features = _features_function(extractor)
    out = [
        np.asarray(_features(tf.constant(images[i : i + batch_size])), np.float32)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out).reshape(len(images), -1)


def build_inception_extractor(weights_path: str) -> FeatureExtractor:
    """keras.applications.InceptionV3 pool3 features [N, 2048] for FID, from a local file.

    `weights_path`: Keras' `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` (or a
    `.weights.h5` of the same no-top network); nothing is downloaded. Input: RGB in [0, 255]
    at 299 px, scaled to [-1, 1] as `keras.applications.inception_v3.preprocess_input` does.
    """
    import keras

    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"--inception_weights: {weights_path!r} does not exist")
    backbone = keras.applications.InceptionV3(
        include_top=False,
        weights=None,
        input_shape=(INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE, 3),
        pooling="avg",
    )
    try:
        backbone.load_weights(weights_path)
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(
            f"--inception_weights: {weights_path} is not a no-top InceptionV3 weights file: {e}"
        ) from None
    inputs = keras.Input((INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE, 3), name="images")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    model = keras.Model(inputs, backbone(x, training=False), name="inception_v3")
    model.trainable = False
    return FeatureExtractor("inception_v3", model, INCEPTION_INPUT_SIZE, INCEPTION_FEATURE_DIM)


# ---------------------------------------------------------------- the realism section
@dataclasses.dataclass(frozen=True)
class RealismResult:
    """metrics.json's `realism`: FD of held-out real images vs translations into random
    clusters, against a real-vs-real reference of the same size (`fd_<feature_space>`)."""

    feature_space: str  # the clustering extractor
    real_images: int
    translated_images: int
    translations: str  # what was translated into what
    fd: float
    fd_real_reference: float | None  # None with fewer than 2 reference images
    reference_images: int
    droplets: droplets_lib.DropletRates
    blotches: blotches_lib.BlotchRates | None = None  # None in metrics.json written before them
    fid_inception_v3: float | None = None  # with --inception_weights
    fid_inception_v3_real_reference: float | None = None
    fid_note: str | None = _NO_INCEPTION  # why there is no Inception FID (None: there is)

    status = "ok"

    @property
    def fd_key(self) -> str:
        return f"fd_{self.feature_space}"

    def to_json(self) -> dict:
        out = {
            "status": self.status,
            "feature_space": self.feature_space,
            "real_images": self.real_images,
            "translated_images": self.translated_images,
            "translations": self.translations,
            self.fd_key: self.fd,
            f"{self.fd_key}_real_reference": self.fd_real_reference,
            "reference_images": self.reference_images,
            "droplets": self.droplets.to_json(),
            "blotches": self.blotches.to_json() if self.blotches else None,
            "fid_inception_v3": self.fid_inception_v3,
        }
        if self.fid_note is None:
            out["fid_inception_v3_real_reference"] = self.fid_inception_v3_real_reference
        else:
            out["fid_note"] = self.fid_note
        return out

    @classmethod
    def from_json(cls, d: dict) -> RealismResult:
        key = f"fd_{d['feature_space']}"
        return cls(
            feature_space=d["feature_space"],
            real_images=d["real_images"],
            translated_images=d["translated_images"],
            translations=d["translations"],
            fd=d[key],
            fd_real_reference=d[f"{key}_real_reference"],
            reference_images=d["reference_images"],
            droplets=droplets_lib.DropletRates.from_json(d["droplets"]),
            blotches=blotches_lib.BlotchRates.from_json(d["blotches"])
            if d.get("blotches")
            else None,
            fid_inception_v3=d["fid_inception_v3"],
            fid_inception_v3_real_reference=d.get("fid_inception_v3_real_reference"),
            fid_note=d.get("fid_note"),
        )


def inception_fid(
    weights_path: str,
    real: np.ndarray,
    translated: np.ndarray,
    reference: np.ndarray,
    *,
    batch_size: int,
) -> tuple[float, float | None]:
    """(FID real vs translated, FID reference vs real) in InceptionV3 pool3 features of uint8
    images [N, S, S, 3]; the reference FID is None with fewer than 2 reference images."""
    inception = build_inception_extractor(weights_path)

    def features(images: np.ndarray) -> np.ndarray:
        return extractor_features(inception, images, batch_size=batch_size)

    f_real = features(real)
    fid = frechet_distance_of_features(f_real, features(translated))
    if len(reference) < 2:
        return fid, None
    return fid, frechet_distance_of_features(features(reference), f_real)


def realism_result(
    feature_space: str,
    *,
    real: tuple[np.ndarray, np.ndarray],
    translated: tuple[np.ndarray, np.ndarray],
    reference: tuple[np.ndarray, np.ndarray],
    droplets: dict[int, float],
    blotches: dict[int, float],
    inception_weights: str,
    batch_size: int,
) -> RealismResult:
    """The realism section from (uint8 images [N, S, S, 3], their features [N, D]) of the
    held-out real images, their translations into random clusters and the training split
    (its first N make the real-vs-real reference); `droplets` and `blotches`: {transfer cluster:
    the share of its translations with one}."""
    (x_real, f_real), (x_translated, f_translated) = real, translated
    x_reference, f_reference = (v[: len(f_real)] for v in reference)
    fid = fid_reference = None
    if inception_weights:
        fid, fid_reference = inception_fid(
            inception_weights, x_real, x_translated, x_reference, batch_size=batch_size
        )
    return RealismResult(
        feature_space=feature_space,
        real_images=int(len(f_real)),
        translated_images=int(len(f_translated)),
        translations="each held-out image into one random other cluster",
        fd=frechet_distance_of_features(f_real, f_translated),
        fd_real_reference=frechet_distance_of_features(f_reference, f_real)
        if len(f_reference) >= 2
        else None,
        reference_images=int(len(f_reference)),
        droplets=droplets_lib.DropletRates(
            rate_random=float(droplets_lib.droplet_flags(x_real, x_translated).mean()),
            per_cluster={str(c): rate for c, rate in droplets.items()},
        ),
        blotches=blotches_lib.BlotchRates.measure(x_real, x_translated, blotches),
        fid_inception_v3=fid,
        fid_inception_v3_real_reference=fid_reference,
        fid_note=None if inception_weights else _NO_INCEPTION,
    )


__all__ = [
    "RealismResult",
    "build_inception_extractor",
    "extractor_features",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of_features",
    "inception_fid",
    "realism_result",
    "trace_sqrt_product",
]
