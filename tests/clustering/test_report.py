from __future__ import annotations

import numpy as np
import pytest

from xplore_tf.clustering import report


def test_nmi_extremes_and_hand_value():
    a = np.array([0, 0, 1, 1])
    assert report.normalized_mutual_information(a, a) == pytest.approx(1.0)
    assert report.normalized_mutual_information(a, 1 - a) == pytest.approx(1.0)  # relabelled
    assert report.normalized_mutual_information(a, np.array([0, 1, 0, 1])) == pytest.approx(0.0)
    # a = [0,0,1,1], b = [0,0,0,1]: H(a) = ln2, H(b) = -(3/4 ln 3/4 + 1/4 ln 1/4),
    # MI = H(b) - H(b|a) = H(b) - 1/2 * ln2.
    b = np.array([0, 0, 0, 1])
    hb = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    expected = (hb - 0.5 * np.log(2)) / ((np.log(2) + hb) / 2)
    assert report.normalized_mutual_information(a, b) == pytest.approx(expected)


def test_attribute_report_by_hand():
    clusters = np.array([0] * 10 + [1] * 10 + [2] * 3)
    attr = np.array([1] * 9 + [0] + [1] * 2 + [0] * 8 + [1] * 3)
    r = report.attribute_report(clusters, attr, name="blond", min_cluster_size=5)
    # cluster 2 has precision 1.0 but only 3 members: below the minimum size.
    assert (r.best_cluster, r.best_size) == (0, 10)
    assert r.best_precision == pytest.approx(0.9)
    assert r.positives == 14
    assert r.best_recall == pytest.approx(9 / 14)
    assert r.clusters_above == 1
    r2 = report.attribute_report(clusters, attr, name="blond", min_cluster_size=3)
    assert (r2.best_cluster, r2.best_precision, r2.clusters_above) == (2, 1.0, 2)


def test_cluster_report_joins_by_path_or_name_and_picks_binary_columns(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "image,identity,hair_color,blond,smile\n"
        "a.jpg,7,blond,1,0\nb.jpg,7,black,0,1\nc.jpg,8,blond,1,1\nd.jpg,9,red,0,0\n"
    )
    rows, matched = report.cluster_report(
        ["x/a.jpg", "b.jpg", "c.jpg", "zzz.jpg"],
        np.array([0, 1, 0, 1]),
        str(labels),
        min_cluster_size=1,
    )
    assert matched == 3
    assert [r.attribute for r in rows] == ["blond", "smile"]  # identity, hair_color excluded
    assert rows[0].best_precision == 1.0 and rows[0].nmi == pytest.approx(1.0)
    with pytest.raises(ValueError, match="are not 0/1 columns"):
        report.cluster_report(["a.jpg"], np.array([0]), str(labels), attributes=("hair_color",))
    with pytest.raises(ValueError, match="no 'image' value matches"):
        report.cluster_report(["q.jpg"], np.array([0]), str(labels))


def test_format_report_lists_each_attribute():
    r = report.attribute_report(
        np.array([0, 0, 1]), np.array([1, 1, 0]), name="glasses", min_cluster_size=1
    )
    text = report.format_report([r])
    assert "glasses" in text and "1.000" in text


def test_hair_colour_is_one_multi_valued_label(tmp_path):
    """The four hair colours form one label (none of them = a fifth value); its NMI with
    clusters that separate exactly those values is 1."""
    columns = {
        "Black_Hair": np.array([1, 0, 0, 0, 0, 1]),
        "Blond_Hair": np.array([0, 1, 0, 0, 0, 0]),
        "Brown_Hair": np.array([0, 0, 1, 0, 0, 0]),
        "Gray_Hair": np.array([0, 0, 0, 1, 0, 0]),
    }
    names = report.LABEL_GROUPS["hair colour"]
    np.testing.assert_array_equal(report.group_values(columns, names), [0, 1, 2, 3, 4, 0])
    labels = tmp_path / "labels.csv"
    lines = ["image,Black_Hair,Blond_Hair,Brown_Hair,Gray_Hair,Male"]
    for i in range(6):
        lines.append(f"{i}.jpg," + ",".join(str(columns[n][i]) for n in names) + ",1")
    labels.write_text("\n".join(lines) + "\n")
    images = [f"{i}.jpg" for i in range(6)]
    groups = report.group_report(images, np.array([7, 1, 2, 3, 4, 7]), str(labels))
    assert groups == {"hair colour": pytest.approx(1.0)}
    mixed = report.group_report(images, np.array([0, 0, 0, 1, 1, 1]), str(labels))
    assert 0 < mixed["hair colour"] < 1
    no_hair = tmp_path / "other.csv"
    no_hair.write_text("image,Male\n0.jpg,1\n")
    assert report.group_report(images, np.zeros(6, int), str(no_hair)) == {}


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"3": "5"}', "the name of cluster 3, '5', is a number"),
        ('{"7": "glasses:dark, round"}', "holds ':' or ','"),
        ('{"1": ["blond"]}', "is not a name"),
        ('{"1": null}', "is not a name"),
        ('{"blond": "1"}', "key 'blond' is not a cluster id"),
        ('["blond"]', "got a JSON list"),
        ("{oops", "expected a JSON object"),
    ],
)
def test_cluster_names_that_could_never_be_used_are_refused_in_one_line(tmp_path, content, message):
    """A name --cluster could not reach (a number, the weight syntax) or a value that is not a
    name is an error naming the file and the entry, not a silently stringified name."""
    from xplore_tf.clustering import contact_sheets

    path = tmp_path / "cluster_names.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        contact_sheets.read_cluster_names(str(path))
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value)
    path.write_text('{"5": "blond", "12": "dark glasses"}')
    assert contact_sheets.read_cluster_names(str(path)) == {5: "blond", 12: "dark glasses"}
