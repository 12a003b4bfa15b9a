"""tools.full_resolution_check: people held out by identity, one table row per variant."""

from __future__ import annotations

import numpy as np

from tools import full_resolution_check as frc


def test_photos_split_by_whether_their_person_was_trained_on(tmp_path):
    (tmp_path / "labels.csv").write_text(
        "image,identity,Male,Smiling\na.jpg,7,1,0\nb.jpg,8,0,1\nc.jpg,9,0,0\n"
    )
    training = tmp_path / "train.csv"
    training.write_text("image,identity,Male\nx.jpg,7,1\ny.jpg,9,0\n")
    tune = frc.read_photos(str(tmp_path), str(training), "tune")
    report = frc.read_photos(str(tmp_path), str(training), "report")
    assert [p.image for p in tune] == ["a.jpg", "c.jpg"]
    assert [p.image for p in report] == ["b.jpg"]
    assert report[0].labels == {"Male": 0, "Smiling": 1}


def test_summary_has_a_row_per_variant_and_attribute():
    def record(attribute, distance):
        measures = {
            "detail": 0.99,
            "variance_ratio": 1.0,
            "identity_distance": distance,
            "skin_delta_e": 3.0,
            "outside_unchanged": True,
            "gain": 0.2,
            "gain_at_model_size": 0.3,
            "seconds": 0.1,
        }
        return {"attribute": attribute, "v": {"model": dict(measures), "residual": measures}}

    records = [record("Male", 0.4), record("Male", 0.7), record("Smiling", 0.5)]
    table = frc.summarise(records, ["model", "residual"], ["Male", "Smiling"]).splitlines()
    rows = [line.split() for line in table[1:] if line]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (v, a, n)
        for v in ("model", "residual")
        for a, n in (("Male", "2"), ("Smiling", "1"), ("all", "3"))
    ]
    male = rows[0]
    assert male[7] == "0.500" and male[-1] == "yes"  # 1 of 2 verified; nothing outside moved
    assert np.isclose(float(rows[2][8]), (0.4 + 0.7 + 0.5) / 3, atol=1e-3)
