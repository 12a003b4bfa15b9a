"""Where images come from, and which are held out of training."""

from __future__ import annotations

import pytest

from xplore_tf.data import sources


def test_split_holdout_is_the_last_sorted_images():
    train, held = sources.split_holdout(["c.jpg", "a.jpg", "d.jpg", "b.jpg"], 2)
    assert (train, held) == ([1, 3], [0, 2])  # a, b train; c, d held out
    with pytest.raises(ValueError, match="--holdout=4 leaves no training images"):
        sources.split_holdout(["a", "b", "c", "d"], 4)
