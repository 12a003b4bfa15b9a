"""Tests of xplore_tf.models.discriminator: head shapes, widths, validation, serialisation."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from xplore_tf.models.discriminator import Discriminator  # noqa: E402


def images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("size, num_down, patch", [(32, 4, 2), (32, 5, 1), (16, 3, 2), (32, 2, 8)])
def test_output_shapes(size, num_down, patch):
    d = Discriminator(size, 7, base_channels=4, num_down=num_down)
    src, cls = d(images(3, size))
    assert tuple(src.shape) == (3, patch, patch, 1)
    assert tuple(cls.shape) == (3, 7)
    assert src.dtype == "float32" and cls.dtype == "float32"
    assert d.final_size == patch
    assert d.compute_output_shape((3, size, size, 3)) == ((3, patch, patch, 1), (3, 7))


def test_widths_double_and_are_capped_and_no_normalisation():
    d = Discriminator(32, 3, base_channels=4, num_down=5, max_channels=16)
    d.build((None, 32, 32, 3))
    assert [c.filters for c in d.convs] == [4, 8, 16, 16, 16]
    assert [c.kernel_size for c in d.convs] == [(4, 4)] * 5
    assert d.out_cls.kernel_size == (1, 1) and d.out_src.kernel_size == (3, 3)
    # Only convs: every weight is a conv kernel or bias (no norm layers in a WGAN-GP critic).
    assert all(w.path.endswith(("kernel", "bias")) for w in d.weights)
    assert len(d.weights) == 2 * 5 + 2


def test_samples_are_scored_independently():
    d = Discriminator(16, 2, base_channels=4, num_down=3)
    x = images(2, 16)
    src, cls = d(x)
    src0, cls0 = d(x[:1])
    np.testing.assert_allclose(np.asarray(src)[:1], np.asarray(src0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(cls)[:1], np.asarray(cls0), rtol=1e-5, atol=1e-6)


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_down"):
        Discriminator(48, 3, num_down=5)
    with pytest.raises(ValueError, match="num_down"):
        Discriminator(32, 3, num_down=0)
    d = Discriminator(32, 3, base_channels=4, num_down=4)
    with pytest.raises(ValueError, match="images"):
        d(images(1, 16))


def test_config_round_trip_and_save_load(tmp_path):
    keras.utils.set_random_seed(0)
    d = Discriminator(16, 4, base_channels=4, num_down=3, max_channels=8)
    x = images(2, 16)
    src, cls = (np.asarray(t) for t in d(x))
    config = d.get_config()
    expected_args = {
        "image_size": 16,
        "num_clusters": 4,
        "base_channels": 4,
        "num_down": 3,
        "max_channels": 8,
    }
    assert {k: config[k] for k in expected_args} == expected_args
    assert set(config) - {"name", "trainable", "dtype"} == set(expected_args)
    clone = Discriminator.from_config(config)
    clone(x)
    clone.set_weights(d.get_weights())
    np.testing.assert_allclose(np.asarray(clone(x)[0]), src, rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "d.keras")
    keras.saving.save_model(d, path)
    loaded = keras.saving.load_model(path)
    lsrc, lcls = loaded(x)
    np.testing.assert_allclose(np.asarray(lsrc), src, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(lcls), cls, rtol=1e-5, atol=1e-6)
