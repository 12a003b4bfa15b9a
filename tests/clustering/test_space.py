"""The clustering space after `cluster`: blends, group statistics, the same-space check."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil

import numpy as np
import pytest
from tests_support import make_folder

from xplore_tf import config as config_lib
from xplore_tf.clustering import artifacts, kmeans, pipeline
from xplore_tf.clustering import space as space_lib
from xplore_tf.common import signatures as sig
from xplore_tf.models.generator import condition_vector


# ---------------------------------------------------------------- blends (pure maths)
def _table(k: int = 5, d: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(k, d)).astype(np.float32)
    stds = rng.uniform(0.1, 1.0, size=(k, d)).astype(np.float32)
    return np.asarray(condition_vector(np.arange(k), centroids, stds, mode="mean_std"))


def test_strength_zero_and_one_give_exactly_the_source_and_target_condition():
    table = _table()
    k, d = table.shape[0], table.shape[1] // 2
    source_ids = np.array([0, 3, 4, 1], np.int32)
    targets = np.array([2, 2, 0, 1], np.int32)  # the last one is its own source
    source = table[source_ids]
    for alpha, expected in ((0.0, source), (1.0, table[targets])):
        weights = np.eye(k, dtype=np.float32)[targets] * alpha
        got = np.asarray(space_lib.blend_conditions(source, weights, table, std_from=d))
        np.testing.assert_array_equal(got, expected)  # exactly, not approximately


def test_blend_is_source_plus_weighted_differences_and_floors_the_std():
    table = _table(seed=1)
    k, d = table.shape[0], table.shape[1] // 2
    source = table[[4, 0]]
    weights = np.zeros((2, k), np.float32)
    weights[0, [1, 2]] = [1.0, 0.5]  # --cluster=1:1.0,2:0.5
    weights[1, 3] = 1.25  # extrapolation past the target
    got = np.asarray(space_lib.blend_conditions(source, weights, table, std_from=d))
    expected = source + sum(
        weights[:, [i]] * (table[i][None] - source) for i in range(k)
    )  # s_src + sum_i w_i (s_i - s_src)
    expected[:, d:] = np.maximum(expected[:, d:], kmeans.MIN_STD)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Far enough past a target the std would turn negative: it stays at the floor.
    far = np.zeros((1, k), np.float32)
    far[0, 0] = sig.MAX_STRENGTH
    shrinking = table.copy()
    shrinking[0, d:] = 0.01
    shrinking[1, d:] = 1.0
    out = np.asarray(space_lib.blend_conditions(shrinking[[1]], far, shrinking, std_from=d))
    assert out[0, d:].min() == pytest.approx(kmeans.MIN_STD)
    # Without the std half (--condition=mean) nothing is floored.
    means = table[:, :d]
    out = np.asarray(space_lib.blend_conditions(means[[1]], far, means))
    np.testing.assert_allclose(out, means[[1]] + 2.0 * (means[[0]] - means[[1]]), rtol=1e-5)


def test_keeping_no_cluster_is_the_plain_blend_bit_for_bit():
    table = _table(seed=2)
    k, d = table.shape[0], table.shape[1] // 2
    source = table[[4, 0, 2]]
    weights = np.zeros((3, k), np.float32)
    weights[0, 1], weights[1, [2, 3]], weights[2, 2] = 1.0, (0.7, 0.6), 1.0  # last: its own
    plain = np.asarray(space_lib.blend_conditions(source, weights, table, std_from=d))
    keep = np.zeros((3, k), np.float32)
    kept = np.asarray(space_lib.blend_conditions(source, weights, table, std_from=d, keep=keep))
    np.testing.assert_array_equal(kept, plain)


def test_keeping_a_cluster_takes_its_direction_out_of_the_edit_at_the_same_length():
    # Three clusters in a 2-d "condition" space, by hand: the mean of the rows is (1, 1), so
    # cluster 2's direction is (-1, 1) - (1, 1) = (-2, 0), the x axis, cluster 0's (1, 1).
    table = np.array([[2.0, 2.0], [2.0, 0.0], [-1.0, 1.0]], np.float32)
    source = table[[2]]  # s_src = (-1, 1)
    weights = np.array([[0.0, 1.0, 0.0]], np.float32)  # into cluster 1: d = (3, -1)
    keep = np.array([[0.0, 0.0, 1.0]], np.float32)  # keep cluster 2's direction, x
    got = np.asarray(space_lib.blend_conditions(source, weights, table, keep=keep))
    # d without its x part is (0, -1), given d's length sqrt(10): s_src + (0, -sqrt(10)).
    np.testing.assert_allclose(got, [[-1.0, 1.0 - np.sqrt(10.0)]], atol=1e-5)
    # Keeping cluster 0 instead: d minus its part along (1, 1)/sqrt(2), which is (1, 1),
    # leaves (2, -2), rescaled to length sqrt(10): (sqrt(5), -sqrt(5)).
    rows = np.array([[1.0, 0.0, 0.0]], np.float32)
    one = np.asarray(space_lib.blend_conditions(source, weights, table, keep=rows))
    np.testing.assert_allclose(one, [[-1.0 + np.sqrt(5.0), 1.0 - np.sqrt(5.0)]], atol=1e-5)
    # Keeping both, whose directions span the plane, leaves no edit (and no NaN).
    both = np.array([[1.0, 0.0, 1.0]], np.float32)
    none = np.asarray(space_lib.blend_conditions(source, weights, table, keep=both))
    np.testing.assert_allclose(none, source, atol=1e-5)


def test_shared_part_moves_each_input_from_the_centre_toward_the_groups_mean():
    # Three clusters by hand: means (0, 0), (3, 0), (0, 4) -> centre (1, 4/3); distances
    # between them 3, 4 and 5 -> mean 4, so the edit at strength 1 is SHARED_LENGTH * 4 long.
    means = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], np.float32)
    stds = np.full((3, 2), 0.5, np.float32)
    stds[1] = 0.25
    table = np.concatenate([means, stds], axis=1)
    length = space_lib.SHARED_LENGTH * 4.0
    # The group's mean lies at centre + (3, 0): only its direction from the centre counts,
    # not its std nor how far it lies.
    group = np.array([[4.0, 4.0 / 3.0, 9.0, 9.0]], np.float32)
    source = table[[0, 1, 1]]
    strength = np.array([1.0, 0.5, 0.0], np.float32)
    got = np.asarray(space_lib.shared_conditions(source, group, table, strength, mean_dim=2))
    expected = source.copy()
    expected[0, :2] += [length, 0.0]
    expected[1, :2] += [0.5 * length, 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_array_equal(got[2], source[2])  # strength 0: the input's own, exactly
    np.testing.assert_array_equal(got[:, 2:], source[:, 2:])  # the std half stays the input's
    # A group whose mean is the centre shares nothing that the data set does not.
    centre = np.array([[1.0, 4.0 / 3.0, 0.1, 0.1]], np.float32)
    still = np.asarray(space_lib.shared_conditions(source, centre, table, strength, mean_dim=2))
    np.testing.assert_allclose(still, source, atol=1e-6)
    # --condition=mean: the condition is the mean half alone.
    only = np.asarray(
        space_lib.shared_conditions(means[[0]], group[:, :2], means, strength[:1], mean_dim=2)
    )
    np.testing.assert_allclose(only, [[length, 0.0]], rtol=1e-5)


def test_in_graph_statistics_equal_the_cluster_statistics_code():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(3, 7, 4)).astype(np.float32)
    points[2] = points[2, :1]  # a group of identical images: std at the floor
    mean, std = (np.asarray(t) for t in space_lib.group_statistics_ops(points))
    for g in range(3):
        means, stds, _ = kmeans.cluster_stats(points[g], np.zeros(7, np.int32), 1)
        np.testing.assert_allclose(mean[g], means[0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(std[g], np.maximum(stds[0], kmeans.MIN_STD), rtol=1e-5)
    assert (std[2] == np.float32(kmeans.MIN_STD)).all()
    with pytest.raises(ValueError, match="one-hot"):
        space_lib.group_condition_ops(mean, std, mode="onehot")


def test_distances_to_clusters_are_relative_to_each_clusters_radius():
    centroids = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    stds = np.array([[3.0, 4.0], [0.3, 0.4]], np.float32)  # radii 5 and 0.5
    radii = space_lib.cluster_radii(stds)
    np.testing.assert_allclose(radii, [5.0, 0.5])
    means = np.array([[4.0, 0.0], [9.0, 0.0], [0.0, 30.0]], np.float32)
    nearest, distance, relative = (
        np.asarray(t) for t in space_lib.distances_to_clusters_ops(means, centroids, radii)
    )
    # [9, 0] is nearer cluster 1 in plain distance but deeper inside cluster 0's spread.
    np.testing.assert_array_equal(nearest, [0, 0, 0])
    np.testing.assert_allclose(distance, [4.0, 9.0, 30.0], rtol=1e-6)
    np.testing.assert_allclose(relative, [0.8, 1.8, 6.0], rtol=1e-6)
    points = np.array([[9.0, 0.0], [1.0, 1.0]], np.float32)
    np.testing.assert_array_equal(space_lib.nearest_cluster_ops(points, centroids), [1, 0])


# ---------------------------------------------------------------- on a clustered folder
def _config(workdir, images_dir, **cluster):
    return config_lib.Config(
        workdir=str(workdir),
        seed=0,
        data=config_lib.DataConfig(dataset="folder", images_dir=str(images_dir)),
        cluster=config_lib.ClusterConfig(
            num_clusters=3, kmeans_nredo=2, contact_sheet_members=4, thumbnail_size=16, **cluster
        ),
    )


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    make_folder(str(root))
    config = _config(tmp_path_factory.mktemp("run"), root)
    pipeline.run_clustering(config)
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    with open(os.path.join(config.clusters_dir, artifacts.ASSIGNMENTS), newline="") as f:
        members = {}
        for row in csv.DictReader(f):
            members.setdefault(int(row["cluster"]), []).append(row["image"])
    return config, stats, members


def test_group_statistics_of_a_clusters_members_are_its_stored_statistics(clustered, tmp_path):
    config, stats, members = clustered
    for cluster in range(stats.num_clusters):
        group = tmp_path / f"group{cluster}"
        for i, rel in enumerate(members[cluster]):
            os.makedirs(group / os.path.dirname(rel), exist_ok=True)
            shutil.copy(os.path.join(config.images_dir, rel), group / rel)
            if i == 0:  # an exact copy is counted once, as `cluster` counts it
                shutil.copy(os.path.join(config.images_dir, rel), group / "copy_of_first.png")
        result = space_lib.group_statistics(config, stats, str(group))
        assert len(result.images) == len(members[cluster]) and len(result.duplicates) == 1
        np.testing.assert_allclose(result.mean, stats.centroids[cluster], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result.std, stats.stds[cluster], rtol=1e-5, atol=1e-6)
        assert result.nearest == cluster and result.distance < 1e-5 and not result.far


def test_group_statistics_input_errors_are_one_line(clustered, tmp_path):
    config, stats, _ = clustered
    with pytest.raises(FileNotFoundError, match="--reference_dir: .* is not a folder"):
        space_lib.group_statistics(config, stats, str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"--reference_dir: .*empty: no images found"):
        space_lib.group_statistics(config, stats, str(empty))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (broken / "b.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"none of its 2 images is readable \(e\.g\. a\.jpg"):
        space_lib.group_statistics(config, stats, str(broken))


def test_other_feature_flags_or_missing_weights_are_refused(clustered, tmp_path):
    config, stats, _ = clustered
    space_lib.check_same_space(config, stats)  # the flags `cluster` ran with: fine
    for change, flag in (
        (dict(feature_framing="whole"), "--feature_framing"),
        (dict(feature_mirror=True), "--feature_mirror"),
        (dict(pca_l2=True), "--pca_l2"),
        (dict(feature_extractor="mobilenet_v2"), "--feature_extractor"),
    ):
        other = dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, **change))
        with pytest.raises((ValueError, FileNotFoundError), match=flag):
            space_lib.check_same_space(other, stats)
    cropped = dataclasses.replace(config, data=dataclasses.replace(config.data, crop_size=20))
    with pytest.raises(ValueError, match="--crop_size: 0 there, 20 here"):
        space_lib.check_same_space(cropped, stats)
    missing = dataclasses.replace(
        config,
        cluster=dataclasses.replace(config.cluster, feature_weights=str(tmp_path / "w.npz")),
    )
    with pytest.raises(FileNotFoundError, match="--feature_weights: .*w.npz' does not exist"):
        space_lib.check_same_space(missing, stats)


def test_contrast_edit_moves_toward_what_sets_the_target_apart_from_its_neighbours():
    # Four clusters by hand: means (0, 0), (1, 0), (3, 0), (0, 4).
    means = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 4.0]], np.float32)
    table = np.concatenate([means, np.full((4, 2), 0.5, np.float32)], axis=1)
    source = table[[3, 3, 2]].copy()
    source[:, 2:] = [[0.2, 0.3], [0.2, 0.3], [0.7, 0.9]]  # the std half stays the input's
    # Target 2: its nearest cluster is 1 (distance 1), so v = (3, 0) - (1, 0) points along x;
    # from cluster 3 the plain edit is |(3, 0) - (0, 4)| = 5 long: mean (0, 4) + 5 (1, 0).
    # Target 0 with 2 neighbours: clusters 1 and 2 (distances 1, 3; cluster 3 is 4 away),
    # v = (0, 0) - (2, 0); the plain edit from cluster 3 is 4 long: (0, 4) + 4 (-1, 0).
    # An input of the target's own cluster stays where it is.
    got = np.asarray(
        space_lib.contrast_conditions(source, np.array([2, 2, 2]), table, neighbors=1, mean_dim=2)
    )
    np.testing.assert_allclose(got[:, :2], [[5.0, 4.0], [5.0, 4.0], [3.0, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(got[:, 2:], source[:, 2:])
    got = np.asarray(
        space_lib.contrast_conditions(source, np.array([0, 0, 2]), table, neighbors=2, mean_dim=2)
    )
    np.testing.assert_allclose(got[:2, :2], [[-4.0, 4.0], [-4.0, 4.0]], rtol=1e-6)
    np.testing.assert_array_equal(got[2], source[2])
    with pytest.raises(ValueError, match=r"neighbors=4: expected 1 <= neighbors < k = 4"):
        space_lib.contrast_conditions(source, np.array([0, 0, 0]), table, neighbors=4, mean_dim=2)
