"""The feature cache (features/cache.py): reused on a match, stale on any change, atomic."""

from __future__ import annotations

import json
import os

import numpy as np

from xplore_tf.features import cache


def _setup(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (images / name).write_bytes(name.encode() * 10)
    weights = tmp_path / "w.npz"
    weights.write_bytes(b"weights v1")
    return images, weights


def _key(images_dir, weights, **over):
    args = dict(
        extractor="mobilenet_v2",
        weights_path=str(weights),
        blocks=("features.13", "last"),
        mirror=False,
        framing="crop",
        crop_size=0,
        input_size=224,
        images_dir=str(images_dir),
        images=["a.png", "b.png", "c.png"],
    )
    args.update(over)
    return cache.make_key(**args)


def _cached():
    feats = np.arange(8, dtype=np.float32).reshape(2, 4)
    return cache.CachedFeatures(np.array([0, 2]), feats, [("b.png", "not an image")], 1.5, 2.0)


def test_round_trip_and_what_invalidates(tmp_path):
    images, weights = _setup(tmp_path)
    folder = str(tmp_path / "clusters")
    key = _key(images, weights)
    assert cache.load(folder, key) is None  # nothing yet
    cache.save(folder, key, _cached())
    hit = cache.load(folder, _key(images, weights))
    assert (
        hit is not None
        and hit.kept.tolist() == [0, 2]
        and hit.skipped == [("b.png", "not an image")]
    )
    np.testing.assert_array_equal(hit.features, _cached().features)
    manifest = json.load(open(os.path.join(folder, cache.MANIFEST)))
    assert manifest["key"]["weights_sha256"] == cache.file_sha256(str(weights))
    assert manifest["key"]["images"] == ["a.png", "b.png", "c.png"] and manifest["shape"] == [2, 4]

    # Anything the features depend on: extractor, blocks, crop, size, image list, weights.
    for over in (
        {"extractor": "resnet50"},
        {"blocks": ()},
        {"framing": "whole"},
        {"mirror": True},
        {"crop_size": 80},
        {"input_size": 160},
        {"images": ["a.png", "b.png"]},
    ):
        assert cache.load(folder, _key(images, weights, **over)) is None, over
    weights.write_bytes(b"weights v2")  # same name, other bytes
    assert cache.load(folder, _key(images, weights)) is None
    weights.write_bytes(b"weights v1")
    assert cache.load(folder, _key(images, weights)) is not None
    (images / "c.png").write_bytes(b"another picture, another size")
    assert cache.load(folder, _key(images, weights)) is None


def test_damaged_or_half_written_cache_is_not_used(tmp_path):
    images, weights = _setup(tmp_path)
    folder = tmp_path / "clusters"
    key = _key(images, weights)
    cache.save(str(folder), key, _cached())
    data = (folder / cache.FEATURES).read_bytes()
    (folder / cache.FEATURES).write_bytes(data[:-4] + b"\0\0\0\1")
    assert cache.load(str(folder), key) is None
    # A crash between the two writes of a new save leaves no manifest: no stale pairing.
    cache.save(str(folder), key, _cached())
    os.remove(folder / cache.MANIFEST)
    assert cache.load(str(folder), key) is None
    assert not [p for p in os.listdir(folder) if p.startswith(".tmp-")]
