"""Framing of the extractor's input (features/extract.py) and the input-size option."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from xplore_tf import features
from xplore_tf.data import images as images_lib
from xplore_tf.features import extract


def test_whole_framing_pads_to_a_centred_square_by_hand(tmp_path):
    tall = np.full((4, 2, 3), 200, np.uint8)  # 2 px wide, 4 px high
    Image.fromarray(tall).save(tmp_path / "tall.png")
    out = extract.load_whole(str(tmp_path / "tall.png"), size=4)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[:, 1:3], 200)  # the image, centred
    np.testing.assert_array_equal(out[:, [0, 3]], 0)  # black bars left and right
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(images_lib.ImageError, match="bad.jpg"):
        extract.load_whole(str(tmp_path / "bad.jpg"), size=4)


def test_framed_dataset_skips_unreadable_files_and_rejects_unknown_framing(tmp_path):
    Image.fromarray(np.zeros((6, 4, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"broken")
    log = images_lib.SkipLog()
    got = list(
        extract.framed_dataset(
            str(tmp_path), ["a.png", "b.jpg"], size=8, framing="whole", skip_log=log
        )
    )
    assert [int(i) for i, _ in got] == [0] and got[0][1].shape == (8, 8, 3)
    assert log.count == 1 and log.skipped[0][0] == "b.jpg"
    with pytest.raises(ValueError, match="--feature_framing: unknown 'pad'"):
        extract.framed_dataset(str(tmp_path), ["a.png"], size=8, framing="pad")


def test_input_size_option():
    assert features.input_size("mobilenet_v2") == 224
    assert features.input_size("mobilenet_v2", 160) == 160
    ext = features.build_extractor("mobilenet_v2", input_size=96)
    assert ext.input_size == 96 and ext.model.input_shape == (None, 96, 96, 3)
    assert np.asarray(ext(np.zeros((1, 96, 96, 3), np.float32))).shape == (1, 1280)
    with pytest.raises(
        ValueError, match="--feature_input_size=32: the 'pixels' extractor takes 64"
    ):
        features.input_size("pixels", 32)
