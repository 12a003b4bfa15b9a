"""Side effects with the edit's component along a kept cluster's direction projected out.

    python -m tools.keep_direction_check --flagfile=configs/celeba10k_mobilenet.cfg \\
        --workdir=RUN --keep=Male:10 --targets=Blond_Hair:47,Eyeglasses:34,Smiling:27

A cluster carries everything its members share: translating men toward a cluster of blond
women makes them blond and female. `translate --keep` takes the edit's part along a kept
cluster's direction out, at the edit's length (`xplore_tf.clustering.space.keep_directions`,
the code the exported `mix_condition` runs); this compares it with the plain edit.
Held-out labelled images (the run's --holdout)
are translated both ways and judged by a logistic probe on the clustering extractor's
features, trained on images of the training split; printed per target: the target's gain
among inputs lacking it, and the share of inputs having the kept attribute (and of those
lacking it) whose judged value stays.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np


def _pairs(text: str) -> dict[str, int]:
    """'Name:cluster,...' -> {name: cluster}."""
    out = {}
    for item in filter(None, text.split(",")):
        name, _, cluster = item.partition(":")
        if not cluster.strip().isdigit():
            raise SystemExit(f"expected ATTRIBUTE:CLUSTER, got {item!r}")
        out[name.strip()] = int(cluster)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flagfile", required=True, help="the run's flagfile")
    p.add_argument("--workdir", required=True, help="the run's folder")
    p.add_argument("--keep", required=True, help="ATTRIBUTE:CLUSTER to keep, e.g. Male:10")
    p.add_argument("--targets", required=True, help="ATTRIBUTE:CLUSTER,... to translate into")
    p.add_argument("--images", type=int, default=400, help="held-out images to translate")
    p.add_argument("--probe_images", type=int, default=2000, help="training-split images")
    args = p.parse_args(argv)
    (keep_name, keep_cluster), targets = next(iter(_pairs(args.keep).items())), _pairs(args.targets)

    from absl import flags

    from xplore_tf import features as features_lib
    from xplore_tf import flags as xflags
    from xplore_tf.clustering import artifacts, space
    from xplore_tf.data import sources
    from xplore_tf.evaluation import pipeline, realism, transfer
    from xplore_tf.models.generator import condition_vector

    flags.FLAGS(["keep", f"--flagfile={args.flagfile}", f"--workdir={args.workdir}"])
    config = xflags.config_from_flags()
    clusters_dir = config.clusters_dir
    images, clusters, _ = artifacts.read_assignments(
        os.path.join(clusters_dir, artifacts.ASSIGNMENTS)
    )
    stats = artifacts.read_stats(os.path.join(clusters_dir, artifacts.STATS))
    with open(config.report.labels_csv, newline="") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    attrs = [keep_name, *targets]
    train_idx, held = sources.split_holdout(images, config.train.holdout)
    held = held[: args.images]
    probe_idx = np.random.default_rng(config.seed).choice(
        train_idx, min(args.probe_images, len(train_idx)), replace=False
    )
    root = sources.prepare_inputs(config)

    def load(idx):
        kept, x = pipeline.load_images(
            root,
            [images[i] for i in idx],
            size=config.model.image_size,
            crop_size=config.data.crop_size,
        )
        names = [os.path.basename(images[i]) for i in np.asarray(idx)[kept]]
        return (
            x,
            np.array([[int(rows[n][a]) > 0 for a in attrs] for n in names]),
            np.asarray(idx)[kept],
        )

    x_probe, y_probe, _ = load(probe_idx)
    x_eval, _, held = load(held)
    extractor = features_lib.build_extractor(
        stats.extractor, config.cluster.feature_weights or None
    )

    def features(x):
        return realism.extractor_features(extractor, x, batch_size=32)

    probe = transfer.fit_logistic_probe(
        features(x_probe), y_probe, attributes=attrs, seed=config.seed
    )

    def judge(x):
        return probe.predict_proba(features(x)) >= 0.5

    before = judge(x_eval)
    generate = pipeline.checkpoint_generator_fns(config, None).condition
    table = np.asarray(
        condition_vector(
            np.arange(stats.num_clusters), stats.centroids, stats.stds, mode=config.model.condition
        ),
        np.float32,
    )
    source = table[clusters[held]]
    std_from = stats.dim if config.model.condition == "mean_std" else None
    keep = np.zeros((len(held), stats.num_clusters), np.float32)
    keep[:, keep_cluster] = 1.0
    has = before[:, 0]
    print(
        f"{len(x_eval)} held-out images; keep {keep_name} (cluster {keep_cluster}); "
        f"{int(has.sum())} judged {keep_name}"
    )
    print(
        f"{'target':<14} {'edit':<10} {'gain':>7} {keep_name + ' kept':>12} {'not ' + keep_name + ' kept':>16}"
    )
    for name, target in targets.items():
        j = attrs.index(name)
        lacking = ~before[:, j]
        for edit in ("plain", "keep"):
            weights = np.zeros((len(held), stats.num_clusters), np.float32)
            weights[:, target] = 1.0
            condition = np.asarray(
                space.blend_conditions(
                    source, weights, table, std_from=std_from, keep=keep if edit == "keep" else None
                )
            )
            after = judge(generate(x_eval, condition))
            gain = after[lacking, j].mean() - before[lacking, j].mean()
            print(
                f"{name:<14} {edit:<10} {gain:+7.3f} {after[has, 0].mean():12.3f} "
                f"{(~after[~has, 0]).mean():16.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
