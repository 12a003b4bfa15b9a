"""The side-effect table on decisions counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.evaluation import side_effects


def test_rate_change_kept_and_the_largest_other_attribute():
    attributes = ["Male", "Blond_Hair", "Smiling"]
    # 4 inputs: two men (one smiling), no blond.
    before = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1]], bool)
    # Into the blond cluster: all become blond, one man stays male, smiles unchanged.
    blond = np.array([[0, 1, 1], [1, 1, 0], [0, 1, 0], [0, 1, 1]], bool)
    table = side_effects.side_effect_table(before, {"Blond_Hair": blond}, attributes)
    row = table["targets"]["Blond_Hair"]
    assert row["rate_change"] == pytest.approx([-0.25, 1.0, 0.0])
    assert row["kept"] == [0.5, None, 1.0]  # 1 of 2 men kept; nobody was blond; both smiles
    assert row["changed"] == pytest.approx([0.25, 1.0, 0.0])  # 1 of 4 flipped gender
    assert table["largest"]["Blond_Hair"] == {"attribute": "Male", "rate_change": -0.25}


def test_a_target_named_with_its_cluster_skips_its_own_attribute_and_shapes_are_checked():
    before = np.zeros((2, 2), bool)
    after = {"Male (cluster 10)": np.array([[1, 1], [1, 0]], bool)}
    table = side_effects.side_effect_table(before, after, ["Male", "Eyeglasses"])
    assert table["largest"]["Male (cluster 10)"]["attribute"] == "Eyeglasses"
    with pytest.raises(ValueError, match="Male"):
        side_effects.side_effect_table(before, {"Male": np.zeros((3, 2), bool)}, ["a", "b"])


def test_changed_counts_flips_both_ways_and_the_floor_is_its_own_row():
    before = np.array([[1], [0], [1], [0]], bool)
    swapped = np.array([[0], [1], [1], [0]], bool)  # one man out, one woman in: net 0
    table = side_effects.side_effects(before, {"t": swapped}, ["Male"], floor=before)
    assert table.targets["t"].rate_change == (0.0,) and table.targets["t"].changed == (0.5,)
    assert table.floor == side_effects.target_changes(before, before)
    assert table.floor.changed == (0.0,) and table.floor.kept == (1.0,)
    assert side_effects.SideEffects.from_json(table.to_json()) == table
    with pytest.raises(ValueError, match="own cluster"):
        side_effects.side_effects(before, {}, ["Male"], floor=before[:2])


def test_among_picks_the_largest_from_the_watched_attributes_only():
    attributes = ["Male", "Blond_Hair", "Black_Hair"]
    before = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], bool)
    # Into blond: every black-haired input loses it (-0.75), one man turns woman (-0.25).
    blond = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]], bool)
    plain = side_effects.side_effects(before, {"Blond_Hair": blond}, attributes)
    assert plain.largest["Blond_Hair"].attribute == "Black_Hair"
    watched = side_effects.side_effects(before, {"Blond_Hair": blond}, attributes, among=["Male"])
    assert watched.largest["Blond_Hair"] == side_effects.LargestChange("Male", -0.25)
    assert watched.targets == plain.targets  # the table itself is unchanged
    assert side_effects.SideEffects.from_json(watched.to_json()) == watched
    # Into Male with only Male watched: no other attribute to name.
    into_male = side_effects.side_effects(before, {"Male": before}, attributes, among=["Male"])
    assert into_male.largest == {}
    with pytest.raises(ValueError, match="^--side_effect_attributes: Smile is not a judged"):
        side_effects.check_among(["Smile"], attributes, source="--side_effect_attributes")
    with pytest.raises(ValueError, match="Smile"):
        side_effects.side_effects(before, {}, attributes, among=["Smile"])


def test_metrics_written_before_among_read_as_all_attributes():
    before = np.zeros((2, 1), bool)
    old = side_effects.side_effects(before, {"t": before}, ["Male"]).to_json()
    del old["among"]
    assert side_effects.SideEffects.from_json(old).among == ()
