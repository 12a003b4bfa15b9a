"""The face judge: a probe on an identity embedder's descriptors, and on dlib's for real."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from tests_support import shared_dir

from xplore_tf.evaluation import face_judge, identity


class _MeanColour:
    """A stand-in embedder: an image's mean R, G and B, counting its calls."""

    def __init__(self):
        self.calls = 0

    def embed(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(images, np.float64).mean(axis=(1, 2))


def _tinted(red: np.ndarray, rng) -> np.ndarray:
    x = rng.integers(90, 140, size=(len(red), 8, 8, 3)).astype(np.uint8)
    x[red, :, :, 0] += 60
    return x


def test_the_probe_reads_the_embedder_and_takes_descriptors_already_computed():
    rng = np.random.default_rng(0)
    red = np.arange(40) % 2 == 0
    embedder = _MeanColour()
    judge = face_judge.face_judge(_tinted(red, rng), red[:, None], ["Red"], embedder, seed=0)
    assert judge.name == f"{face_judge.NAME} (40 images)" and embedder.calls == 1

    test_red = np.arange(20) % 3 == 0
    x = _tinted(test_red, rng)
    decisions = judge.decisions(x)
    assert decisions.shape == (20, 1) and (decisions[:, 0] == test_red).all()
    assert embedder.calls == 2
    # Descriptors the caller already has (identity's, of the same images) are not recomputed.
    np.testing.assert_array_equal(judge.decisions(x, embedder.embed(x)), decisions)
    assert embedder.calls == 3
    with pytest.raises(ValueError, match="only 3 labelled images"):
        face_judge.face_judge(x[:3], test_red[:3, None], ["Red"], embedder, seed=0)


@pytest.mark.slow
@pytest.mark.skipif(identity.dlib_unavailable_reason() is not None, reason="dlib not installed")
def test_on_real_faces_dlib_descriptors_tell_gender():
    from PIL import Image

    shared = shared_dir()
    folder = os.path.join(shared or "", "data", "celeba10k")
    if shared is None or not os.path.isdir(os.path.join(folder, "images")):
        pytest.skip("../shared/data/celeba10k not present")
    with open(os.path.join(folder, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))[:300]

    def load(name):
        with Image.open(os.path.join(folder, "images", name)) as im:
            w, h = im.size
            top = (h - w) // 2
            return np.asarray(im.convert("RGB").crop((0, top, w, top + w)).resize((64, 64)))

    x = np.stack([load(r["image"]) for r in rows])
    male = np.array([int(r["Male"]) > 0 for r in rows])
    judge = face_judge.face_judge(
        x[:200], male[:200, None], ["Male"], identity.DlibFaceEmbedder(), seed=0
    )
    from xplore_tf.evaluation import transfer

    accuracy = transfer.balanced_accuracy(judge.decisions(x[200:])[:, 0], male[200:])
    assert accuracy > 0.85, accuracy
