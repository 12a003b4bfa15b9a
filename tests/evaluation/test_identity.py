"""Identity: distances, thresholds, pairs, the geometry regressor, and dlib when installed."""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests_support import shared_dir

from xplore_tf.data import synthetic
from xplore_tf.evaluation import identity

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model


def test_row_distances_and_verification_by_hand():
    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    b = np.array([[3.0, 4.0], [1.0, 1.0]])
    np.testing.assert_allclose(identity.row_distances(a, b), [5.0, 0.0])
    assert identity.verification_rate(np.array([0.1, 0.5, 0.7, 0.9]), 0.6) == 0.5
    with pytest.raises(ValueError):
        identity.row_distances(a, b[:1])


def test_best_threshold_separates_and_is_balanced():
    t, acc = identity.best_threshold(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.8]))
    assert 0.3 < t < 0.5 and acc == 1.0
    # Overlap: same [0.1, 0.6], different [0.4, 0.9]: best is 3 of 4 right (either side).
    t, acc = identity.best_threshold(np.array([0.1, 0.6]), np.array([0.4, 0.9]))
    assert acc == pytest.approx(0.75)


def test_identity_pairs_from_labels():
    ids = np.array(["a", "a", "a", "b", "b", "c"])
    same, diff = identity.identity_pairs_from_labels(ids, max_pairs=10, seed=0)
    assert {tuple(p) for p in same} == {(0, 1), (0, 2), (1, 2), (3, 4)}
    assert len(diff) == 4 and all(ids[i] != ids[j] for i, j in diff)
    same, diff = identity.identity_pairs_from_labels(ids, max_pairs=2, seed=0)
    assert len(same) == 2 and len(diff) == 2


def test_read_identity_pairs(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("image_a,image_b,same_identity\nx.jpg,y.jpg,1\nx.jpg,z.jpg,0\n")
    assert identity.read_identity_pairs(str(path)) == [
        ("x.jpg", "y.jpg", True),
        ("x.jpg", "z.jpg", False),
    ]
    labels = tmp_path / "labels.csv"
    labels.write_text("image\n")
    assert identity.default_identity_pairs_csv(str(labels)) == ""
    (tmp_path / "identity_pairs.csv").write_text(path.read_text())
    assert identity.default_identity_pairs_csv(str(labels)).endswith("identity_pairs.csv")


def _faces(n, size, seed=0):
    """n faces of n identities, without jitter (a tiny set must show the geometry plainly)."""
    images, geometry = [], []
    for i in range(n):
        _, attrs, geo, _ = synthetic.sample_item(seed, i, images_per_identity=1)
        images.append(synthetic.render_face(attrs, geo, synthetic.Jitter.zero(), size))
        geometry.append([getattr(geo, f) for f in synthetic.IDENTITY_FIELDS])
    return np.stack(images), np.asarray(geometry)


def test_geometry_regressor_learns_held_out_geometry():
    images, geometry = _faces(460, 32)
    regressor = identity.fit_geometry_regressor(
        images[:400], geometry[:400], epochs=10, input_size=32, seed=0
    )
    predicted = regressor.embed(images[400:])
    assert predicted.shape == (60, 6)
    scores = identity.regression_scores(predicted, geometry[400:])
    baseline = identity.regression_scores(np.tile(geometry[:400].mean(0), (60, 1)), geometry[400:])
    # (The full-size regressor, 64 px and 1,500 images, reaches R^2 ~0.9; see the README.)
    assert scores["r2"] > 0.15 and scores["mae"] < baseline["mae"] - 0.03
    assert set(scores["r2_per_field"]) == set(synthetic.IDENTITY_FIELDS)


def test_geometry_ensemble_embeds_the_mean_of_its_members():
    images, geometry = _faces(40, 32)
    ensemble = identity.fit_geometry_regressor(
        images, geometry, epochs=1, input_size=32, seed=3, members=2
    )
    assert len(ensemble.models) == 2
    members = [
        identity.GeometryRegressor([m], input_size=32).embed(images[:5]) for m in ensemble.models
    ]
    assert not np.allclose(members[0], members[1])  # differently seeded
    np.testing.assert_allclose(ensemble.embed(images[:5]), (members[0] + members[1]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="members"):
        identity.fit_geometry_regressor(images, geometry, members=0)


def test_relative_distance_by_hand():
    assert identity.relative_distance(0.2, 0.2, 0.8) == pytest.approx(1.0)
    assert identity.relative_distance(0.8, 0.2, 0.8) == pytest.approx(0.0)
    assert identity.relative_distance(0.35, 0.2, 0.8) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="must exceed"):
        identity.relative_distance(0.3, 0.5, 0.5)


def test_regression_scores_by_hand():
    truth = np.array([[0.0] * 6, [1.0] * 6])
    assert identity.regression_scores(truth, truth)["r2"] == pytest.approx(1.0)
    s = identity.regression_scores(np.full((2, 6), 0.5), truth)
    assert s["r2"] == pytest.approx(0.0) and s["mae"] == pytest.approx(0.5)


@pytest.mark.skipif(identity.dlib_unavailable_reason() is not None, reason="dlib not installed")
def test_dlib_embedder_on_real_pairs():
    from PIL import Image

    shared = shared_dir()
    if shared is None or not os.path.isdir(os.path.join(shared, "data", "celeba10k", "images")):
        pytest.skip("../shared/data/celeba10k not present")
    folder = os.path.join(shared, "data", "celeba10k")
    rows = identity.read_identity_pairs(os.path.join(folder, "identity_pairs.csv"))
    same = [r for r in rows if r[2]][:5]
    diff = [r for r in rows if not r[2]][:5]

    def load(name):
        with Image.open(os.path.join(folder, "images", name)) as im:
            w, h = im.size
            top = (h - w) // 2
            return np.asarray(im.convert("RGB").crop((0, top, w, top + w)).resize((64, 64)))

    embedder = identity.DlibFaceEmbedder()
    names = [n for a, b, _ in same + diff for n in (a, b)]
    emb = embedder.embed(np.stack([load(n) for n in names]))
    assert emb.shape == (20, 128) and embedder.seen == 20 and embedder.detected >= 15
    d = identity.row_distances(emb[0::2], emb[1::2])
    assert d[:5].mean() < 0.6 < d[5:].mean()
