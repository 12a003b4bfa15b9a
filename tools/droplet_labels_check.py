"""The droplet detector against translations a person labelled by eye.

    python -m tools.droplet_labels_check \\
        --labels=docs/experiments/2026-12-06-droplet-labels.csv \\
        --run=config_seed0=RUN_A --run=bf16_width32_seed0=RUN_B [--rule=black=8,dark=35]

The labels file names translations, not images: one row per (selection, model, image,
target_cluster, label), `label` one of droplet, unsure, not_droplet, and `selection` how
the row was drawn: `flagged` (a translation the detector of the time flagged) or `random`
(any translation). Each --run says which trained run a `model` name stands for; the tool
loads that run's G_ema (its flags_train.txt), translates each labelled image into its target
cluster again and runs the detector (`xplore_tf.evaluation.droplets`) with its default
rule, or that rule with the --rule fields changed. It prints, per selection and label, how
many translations the rule flags; rows of models without a --run are left out and counted.
No image is stored in the labels: they are regenerated from the run.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import os
import sys

import numpy as np

LABELS = ("droplet", "unsure", "not_droplet")
SELECTIONS = ("flagged", "random")
COLUMNS = ("selection", "model", "image", "target_cluster", "label")


@dataclasses.dataclass(frozen=True)
class Labelled:
    """One translation labelled by eye."""

    selection: str
    model: str
    image: str  # file name under the run's image folder
    target_cluster: int
    label: str


def read_labels(path: str) -> list[Labelled]:
    """The labels file's rows. Raises ValueError naming the file and row of a bad value."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; expected {COLUMNS}")
        rows = []
        for line, row in enumerate(reader, start=2):
            for column, allowed in (("label", LABELS), ("selection", SELECTIONS)):
                if row[column] not in allowed:
                    raise ValueError(
                        f"{path}, line {line}: {column} {row[column]!r}; expected one of {allowed}"
                    )
            try:
                target = int(row["target_cluster"])
            except ValueError:
                raise ValueError(
                    f"{path}, line {line}: target_cluster {row['target_cluster']!r} is not an int"
                ) from None
            rows.append(
                Labelled(row["selection"], row["model"], row["image"], target, row["label"])
            )
    return rows


def confusion(rows: list[Labelled], flagged: list[bool]) -> dict[tuple[str, str], list[int]]:
    """{(selection, label): [flagged, not flagged]} over rows and their detector flags."""
    counts = collections.defaultdict(lambda: [0, 0])
    for row, flag in zip(rows, flagged, strict=True):
        counts[(row.selection, row.label)][0 if flag else 1] += 1
    return dict(counts)


def parse_rule(text: str):
    """A DropletRule with the fields of 'name=value,...' changed. Raises ValueError."""
    from xplore_tf.evaluation import droplets

    fields = {f.name: f.type for f in dataclasses.fields(droplets.DropletRule)}
    changes = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in fields or not value:
            raise ValueError(
                f"--rule {item!r}: expected NAME=VALUE with NAME one of {list(fields)}"
            )
        try:
            changes[name] = {"int": int, "bool": _boolean}.get(fields[name], float)(value)
        except ValueError:
            raise ValueError(f"--rule {item!r}: expected a {fields[name]}") from None
    return droplets.DropletRule(**changes)


def _boolean(text: str) -> bool:
    if text.lower() not in ("1", "0", "true", "false"):
        raise ValueError(text)
    return text.lower() in ("1", "true")


def _runs(values: list[str]) -> dict[str, str]:
    runs = {}
    for value in values:
        model, _, workdir = value.partition("=")
        if not model or not os.path.isfile(os.path.join(workdir, "flags_train.txt")):
            raise ValueError(f"--run {value!r}: expected MODEL=WORKDIR of a trained run")
        runs[model] = workdir
    return runs


def _known_flags(path: str, defined) -> list[str]:
    """The flag lines of a run's recorded flags file that this version still defines (a
    run trained by an older version may name flags since removed; each is reported)."""
    known = []
    with open(path) as f:
        for line in filter(None, (raw.strip() for raw in f)):
            if line.startswith("#"):
                continue
            name = line.lstrip("-").split("=")[0]
            if name in defined or (name.startswith("no") and name[2:] in defined):
                known.append(line)
            else:
                print(f"{path}: leaving out {line} (not a flag of this version)")
    return known


def flags_of_run(workdir: str, rows: list[Labelled], rule) -> list[bool]:
    """The rule's flag of each row, from translations regenerated by the run's G_ema."""
    from absl import flags

    from xplore_tf import flags as xflags
    from xplore_tf.data import sources
    from xplore_tf.evaluation import droplets, generator, labelled

    flags.FLAGS.unparse_flags()  # no value carries over from the previous run's file
    recorded = _known_flags(os.path.join(workdir, "flags_train.txt"), flags.FLAGS)
    flags.FLAGS(["check", *recorded, f"--workdir={os.path.abspath(workdir)}"])
    config = xflags.config_from_flags()
    root = sources.prepare_inputs(config)
    kept, x = labelled.load_images(
        root,
        [r.image for r in rows],
        size=config.model.image_size,
        crop_size=config.data.crop_size,
    )
    if len(kept) < len(rows):
        first = next(r.image for i, r in enumerate(rows) if i not in set(kept))
        raise ValueError(
            f"{len(rows) - len(kept)} labelled images did not load from {root}, first {first}"
        )
    fns = generator.checkpoint_generator_fns(config, None)
    y = fns.translate(x, np.array([r.target_cluster for r in rows]))
    return droplets.droplet_flags(x, y, rule).tolist()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--labels", required=True, help="the labels CSV (columns: %s)" % ", ".join(COLUMNS)
    )
    p.add_argument(
        "--run", action="append", required=True, help="MODEL=WORKDIR: the run a model name means"
    )
    p.add_argument("--rule", default="", help="DropletRule fields to change, NAME=VALUE,...")
    args = p.parse_args(argv)
    from absl import flags

    try:
        rows, runs, rule = read_labels(args.labels), _runs(args.run), parse_rule(args.rule)
        print(f"rule: {rule}")
        counted, flagged = [], []
        for model, workdir in runs.items():
            mine = [r for r in rows if r.model == model]
            found = flags_of_run(workdir, mine, rule) if mine else []
            counted, flagged = counted + mine, flagged + found
            print(f"{model}: {sum(found)} of {len(mine)} flagged")
    except (OSError, ValueError, flags.Error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"left out (no --run for their model): {len(rows) - len(counted)} rows")
    print("selection  label        flagged  not flagged")
    for (selection, label), (yes, no) in sorted(confusion(counted, flagged).items()):
        print(f"{selection:<10} {label:<12} {yes:>7}  {no:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
