"""Transfer: the logistic probe, rates before/after translation, target selection."""

from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.clustering.report import AttributeReport
from xplore_tf.evaluation import transfer


def _toy(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    separable = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int8)
    rare = (x[:, 2] > 1.3).astype(np.int8)  # ~10% positives, separable too
    noise = rng.integers(0, 2, size=n).astype(np.int8)  # unrelated to x
    return x, np.stack([separable, rare, noise], axis=1)


def test_probe_learns_separable_attributes_and_is_at_chance_on_random_labels():
    x, y = _toy(600, 10, seed=0)
    probe = transfer.fit_logistic_probe(
        x[:400], y[:400], attributes=("separable", "rare", "noise"), seed=0
    )
    pred = probe.predict(x[400:])
    assert pred.shape == (200, 3) and pred.dtype == np.int8
    assert transfer.accuracy(pred[:, 0], y[400:, 0]) > 0.95
    assert transfer.balanced_accuracy(pred[:, 1], y[400:, 1]) > 0.9
    assert 0.35 < transfer.accuracy(pred[:, 2], y[400:, 2]) < 0.65
    probs = probe.predict_proba(x[400:])
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_array_equal(probs >= 0.5, pred.astype(bool))


def test_probe_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="2 attributes"):
        transfer.fit_logistic_probe(np.zeros((10, 3)), np.zeros((10, 1)), attributes=("a", "b"))


def test_accuracy_and_balanced_accuracy_by_hand():
    truth = np.array([1, 0, 0, 0])
    pred = np.array([0, 0, 0, 0])
    assert transfer.accuracy(pred, truth) == 0.75
    assert transfer.balanced_accuracy(pred, truth) == 0.5  # TPR 0, TNR 1


def test_transfer_rates_by_hand():
    truth = np.array([1, 1, 0, 0, 0, 0])
    inputs = np.array([1, 0, 0, 0, 0, 1])  # the judge: 1 false positive among 4 lacking
    translated = np.array([1, 1, 1, 1, 1, 0])  # 3 of 4 lacking inputs now show it
    r = transfer.transfer_rates(
        input_decisions=inputs, translated_decisions=translated, truth=truth
    )
    assert (r.inputs, r.inputs_lacking) == (6, 4)
    assert r.rate_all == pytest.approx(5 / 6) and r.baseline_all == pytest.approx(2 / 6)
    assert r.rate_lacking == pytest.approx(3 / 4) and r.baseline_lacking == pytest.approx(1 / 4)
    assert r.gain_lacking == pytest.approx(0.5) and r.gain_all == pytest.approx(0.5)
    everyone = transfer.transfer_rates(
        input_decisions=inputs, translated_decisions=translated, truth=np.ones(6)
    )
    assert everyone.inputs_lacking == 0 and everyone.rate_lacking is None
    assert everyone.gain_lacking is None


def test_targets_are_best_clusters_above_the_precision():
    def row(name, cluster, precision):
        return AttributeReport(name, 10, 0.1, cluster, precision, 30, 0.5, 1)

    rows = [
        row("blond", 3, 0.95),
        row("glasses", 1, 0.6),
        row("smile", -1, 0.0),
        row("bald", 3, 0.8),
    ]
    targets = transfer.transfer_targets(rows, min_precision=0.8)
    assert [(t.attribute, t.cluster) for t in targets] == [("blond", 3), ("bald", 3)]


def test_cluster_attribute_precision():
    clusters = np.array([0, 0, 1, 1, 1, 3])
    labels = np.array([[1, 0], [1, 1], [0, 0], [1, 0], [0, 0], [1, 1]])
    precision, sizes = transfer.cluster_attribute_precision(clusters, labels, 4)
    np.testing.assert_array_equal(sizes, [2, 3, 0, 1])
    np.testing.assert_allclose(precision, [[1, 0.5], [1 / 3, 0], [0, 0], [1, 1]])


def test_user_keras_classifier(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(2, activation="sigmoid")(keras.layers.Rescaling(1 / 255)(x))
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "judge.keras")
    model.save(path)
    judge = transfer.load_attribute_classifier(path, ("a", "b"), batch_size=2)
    probs = judge(np.zeros((3, 16, 16, 3), np.uint8))  # resized to 8x8
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs, np.asarray(model(np.zeros((3, 8, 8, 3)))), atol=1e-6)
    with pytest.raises(ValueError, match="2 outputs"):
        transfer.load_attribute_classifier(path, ("a", "b", "c"))
    with pytest.raises(FileNotFoundError):
        transfer.load_attribute_classifier(str(tmp_path / "none.keras"), ("a",))
