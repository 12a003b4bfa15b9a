"""The face judge: a probe on an identity embedder's descriptors, and on dlib's for real."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from tests_support import shared_dir, tiny_config

from xplore_tf.evaluation import face_judge, identity


class _MeanColour:
    """A stand-in embedder: an image's mean R, G and B, counting its calls."""

    def __init__(self):
        self.calls = 0

    def embed(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(images, np.float64).mean(axis=(1, 2))


def _tinted(red: np.ndarray, rng, size: int = 8) -> np.ndarray:
    x = rng.integers(90, 140, size=(len(red), size, size, 3)).astype(np.uint8)
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


def test_evaluation_hands_identitys_descriptors_to_the_face_judge(tmp_path):
    """Into a transfer cluster the face judge reads identity's descriptors (computed once);
    its own embedder serves its training images and the own-cluster re-renders, so
    identity's embedder counts only identity's images."""
    from xplore_tf.evaluation import pipeline

    rng = np.random.default_rng(1)
    red = np.arange(40) % 2 == 0
    own = _MeanColour()
    judge = face_judge.face_judge(_tinted(red, rng, 16), red[:, None], ["Red"], own, seed=0)
    x = _tinted(np.zeros(6, bool), rng, 16)  # none red
    for_identity = _MeanColour()
    held = identity.HeldOutEmbeddings("dlib", for_identity, for_identity.embed(x))

    def translate(images, clusters):  # cluster 1 paints red; others keep the image
        out = images.copy()
        out[clusters == 1, :, :, 0] = np.minimum(out[clusters == 1, :, :, 0] + 60, 255)
        return out

    out = pipeline._translate_held_out(
        tiny_config(tmp_path),
        translate,
        x,
        np.zeros(6, np.int64),
        target_clusters=[1],
        matrix=([1], np.arange(2)),
        judges={pipeline.FACE: judge},
        embeddings=held,
        num_clusters=2,
    )
    assert out.decisions_into[pipeline.FACE][1][:, 0].all()  # all judged red
    assert not out.decisions_own[pipeline.FACE].any()  # re-rendered: none red
    assert own.calls == 2  # its training images, the own-cluster re-renders
    assert for_identity.calls == 2  # the inputs, the translations into cluster 1
    assert out.identity_into[1].shape == (len(x),) and out.identity_into[1].mean() > 0


@pytest.mark.slow
@pytest.mark.skipif(identity.dlib_unavailable_reason() is not None, reason="dlib not installed")
def test_on_real_faces_dlib_descriptors_tell_gender():
    from PIL import Image

    shared = shared_dir()
    folder = os.path.join(shared or "", "data", "celeba10k")
    if shared is None or not os.path.isdir(os.path.join(folder, "images")):
        pytest.skip("../shared/data/celeba10k not present")
    with open(os.path.join(folder, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))[:160]  # dlib: ~0.1 s an image here

    def load(name):
        with Image.open(os.path.join(folder, "images", name)) as im:
            w, h = im.size
            top = (h - w) // 2
            return np.asarray(im.convert("RGB").crop((0, top, w, top + w)).resize((64, 64)))

    x = np.stack([load(r["image"]) for r in rows])
    male = np.array([int(r["Male"]) > 0 for r in rows])
    judge = face_judge.face_judge(
        x[:100], male[:100, None], ["Male"], identity.DlibFaceEmbedder(), seed=0
    )
    from xplore_tf.evaluation import transfer

    accuracy = transfer.balanced_accuracy(judge.decisions(x[100:])[:, 0], male[100:])
    assert accuracy > 0.85, accuracy
