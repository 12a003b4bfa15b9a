"""The edge judge: a second transfer judge that sees edges, not colours or darkness.

The transfer judge is a probe on the clustering extractor's features, the same features the
clusters came from: a generator that paints the target cluster's look (a dark band where
glasses sit, a dark forehead under a hat) satisfies it without drawing the object. This
judge is a logistic probe on histograms of oriented gradients (HOG; Dalal and Triggs, CVPR
2005) of the grey image: it sees where edges are and which way they run (the rims and
bridge of glasses, a brim), and is blind to colour. Its gain beside the main judge's tells
whether an object was drawn or only its shade.

Needs scikit-image's `skimage.feature.hog` (`pip install -e ".[eval]"`); without it,
`available()` is False and evaluation leaves the edge judge out, saying so.
"""

from __future__ import annotations

import numpy as np

from xplore_tf.evaluation import transfer

CELLS = 8  # cells across the image: 8 px cells at 64 px, so the layout fits any size
NAME = "logistic probe on HOG features"
TITLE = "edge judge"
ROLE = (
    "it sees edges, not colour or shade, so a dark band where glasses sit does not pass for glasses"
)


def available() -> bool:
    """Whether scikit-image is installed."""
    try:
        import skimage.feature  # noqa: F401
    except ImportError:
        return False
    return True


def hog_features(images: np.ndarray) -> np.ndarray:
    """float32 [N, D]: HOG of each uint8 image [N, S, S, 3] (S >= 16, a multiple of
    `CELLS` keeps every pixel): the mean of R, G and B, `CELLS` x `CELLS` cells, 9
    orientations, blocks of 2 x 2 cells with L2-Hys normalisation (Dalal and Triggs'
    defaults). D = (CELLS - 1)^2 * 36 = 1764."""
    from skimage.feature import hog

    images = np.asarray(images)
    cell = max(images.shape[1] // CELLS, 2)
    return np.stack(
        [
            hog(
                image.astype(np.float32).mean(axis=-1),
                orientations=9,
                pixels_per_cell=(cell, cell),
                cells_per_block=(2, 2),
                block_norm="L2-Hys",
            )
            for image in images
        ]
    ).astype(np.float32)


def edge_judge(
    train_images: np.ndarray, train_labels: np.ndarray, attributes, *, seed: int
) -> transfer.Judge:
    """The edge judge fit on the training split: uint8 images [M, S, S, 3], labels bool
    [M, A] in `attributes` order. Raises ValueError with fewer than 4 images."""
    if len(train_labels) < 4:
        raise ValueError(f"only {len(train_labels)} labelled images left to train the probe")
    probe = transfer.fit_logistic_probe(
        hog_features(train_images), train_labels, attributes=attributes, seed=seed
    )
    return transfer.Judge(f"{NAME} ({len(train_labels)} images)", probe.predict_proba, hog_features)


__all__ = ["NAME", "ROLE", "TITLE", "available", "edge_judge", "hog_features"]
