"""Side effects on a kept attribute: edits that keep a cluster's direction, and reference groups.

    python -m tools.keep_direction_check --flagfile=configs/celeba10k_mobilenet.cfg \\
        --workdir=RUN --keep=Male:10 --targets=Blond_Hair:47,Eyeglasses:34,Smiling:27 \\
        [--keep_strengths=1,1.25] [--reference_group=20 --shared_strengths=1,1.5]
        [--contrast_neighbors=5] [--analog_neighbors=1,2] [--judge=face]

A cluster carries everything its members share: translating men toward a cluster of blond
women makes them blond and female. `translate --keep` takes the edit's part along a kept
cluster's direction out, at the edit's length (`xplore_tf.clustering.space.keep_directions`,
the code the exported `mix_condition` runs); this compares it with the plain edit, at each
--keep_strengths (above 1 it goes further toward the target, to win back the gain the kept
direction took).
With --reference_group=N it also draws, for each target, N training-split images that have
the target attribute, half of them with the kept attribute and half without (a group of
blond men and women), and translates toward the group's whole statistics
(`translate --reference_dir`) and toward what it shares (`--reference_edit=shared`,
`space.shared_conditions`) at each --shared_strengths. With --contrast_neighbors=M it adds
the contrast edit toward what sets the target apart from its M nearest clusters
(`space.contrast_conditions`). With --analog_neighbors=M it adds each input translated into
the cluster, among the target and its M nearest clusters, nearest the input's own cluster.

Held-out labelled images (the run's --holdout) are translated and judged by a logistic probe
trained on other images of the training split, on the clustering extractor's features
(`--judge=clustering`) or on dlib's face descriptors (`--judge=face`, from `[eval]`): a
judge independent of the features whose clusters the generator was trained toward. The
judge's balanced accuracy on the real inputs is printed first; then per target and edit:
the target's gain among inputs lacking it, the share of all inputs whose judged kept
attribute flips, and the share of inputs having (and lacking) the kept attribute whose
judged value stays. The first row, each input into its own cluster,
is the judge's floor: what re-rendering alone flips.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
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


def _whole_numbers(text: str, flag: str) -> list[int]:
    """'24,35,24' -> [24, 35] (--keep_also, --analog_neighbors); raises SystemExit naming
    --`flag` for anything but comma-separated whole numbers."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not all(v.isdigit() for v in values):
        raise SystemExit(f"--{flag}: expected whole numbers like 24,35, got {text!r}")
    return list(dict.fromkeys(int(v) for v in values))


def _strengths(text: str, flag: str) -> list[float]:
    """'1,1.5' -> [1.0, 1.5]: each in [0, MAX_STRENGTH], at least one (errors name `flag`)."""
    from xplore_tf.common import signatures as sig

    try:
        values = list(dict.fromkeys(float(v) for v in filter(None, text.split(","))))
    except ValueError:
        raise SystemExit(f"--{flag}: expected numbers, got {text!r}") from None
    if not values or not all(0.0 <= v <= sig.MAX_STRENGTH for v in values):
        raise SystemExit(f"--{flag}={text}: expected numbers in [0, {sig.MAX_STRENGTH:g}]")
    return values


def _whole_number(text: str) -> int:
    """A count's value (--reference_group, --contrast_neighbors): an integer >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


@dataclasses.dataclass
class Setup:
    """The run, its held-out inputs and the probe that judges them."""

    config: object
    stats: object
    images: list[str]
    clusters: np.ndarray  # every image's assigned cluster
    labels: dict  # image name -> labels.csv row
    attrs: list[str]  # [kept, *targets]
    root: str  # the images folder the run reads
    pool: np.ndarray  # training-split images not used by the probe
    held: np.ndarray  # the inputs' indices
    x: np.ndarray  # uint8 [N, S, S, 3]
    judge: object  # uint8 images -> bool [N, len(attrs)]
    truth: np.ndarray  # the inputs' labels, bool [N, len(attrs)]
    table: np.ndarray  # every cluster's condition [k, C]

    def label(self, i: int, attribute: str) -> bool:
        return int(self.labels[os.path.basename(self.images[i])][attribute]) > 0


def _setup(args: argparse.Namespace, attrs: list[str]) -> Setup:
    from absl import flags

    from xplore_tf import features as features_lib
    from xplore_tf import flags as xflags
    from xplore_tf.clustering import artifacts
    from xplore_tf.data import sources
    from xplore_tf.evaluation import pipeline, realism, transfer
    from xplore_tf.models.generator import condition_vector

    flags.FLAGS(["keep", f"--flagfile={args.flagfile}", f"--workdir={args.workdir}"])
    config = xflags.config_from_flags()
    images, clusters, _ = artifacts.read_assignments(
        os.path.join(config.clusters_dir, artifacts.ASSIGNMENTS)
    )
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    with open(config.report.labels_csv, newline="") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    train_idx, held = sources.split_holdout(images, config.train.holdout)
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
        idx = np.asarray(idx)[kept]
        names = [os.path.basename(images[i]) for i in idx]
        return x, np.array([[int(rows[n][a]) > 0 for a in attrs] for n in names]), idx

    x_probe, y_probe, _ = load(probe_idx)
    x_eval, y_eval, held = load(held[: args.images])
    if args.judge == "face":
        from xplore_tf.evaluation import identity

        if identity.dlib_unavailable_reason():
            raise SystemExit(f"--judge=face: {identity.dlib_unavailable_reason()}")
        features = identity.DlibFaceEmbedder().embed
    else:
        extractor = features_lib.build_extractor(
            stats.extractor, config.cluster.feature_weights or None
        )

        def features(x):
            return realism.extractor_features(extractor, x, batch_size=32)

    probe = transfer.fit_logistic_probe(
        features(x_probe), y_probe, attributes=attrs, seed=config.seed
    )
    table = condition_vector(
        np.arange(stats.num_clusters), stats.centroids, stats.stds, mode=config.model.condition
    )
    return Setup(
        config=config,
        stats=stats,
        images=images,
        clusters=clusters,
        labels=rows,
        attrs=attrs,
        root=root,
        pool=np.setdiff1d(train_idx, probe_idx),
        held=held,
        x=x_eval,
        judge=lambda x: probe.predict_proba(features(x)) >= 0.5,
        truth=y_eval,
        table=np.asarray(table, np.float32),
    )


def _group_condition(s: Setup, target: str, size: int) -> np.ndarray:
    """The condition [C] of `size` pool images having `target`, half with the kept attribute."""
    from xplore_tf.clustering import space

    kept = s.attrs[0]
    rng = np.random.default_rng(s.config.seed)
    members = []
    for has, n in ((True, size // 2), (False, size - size // 2)):
        found = [i for i in s.pool if s.label(i, target) and s.label(i, kept) == has]
        if len(found) < n:
            raise SystemExit(
                f"{len(found)} training images are {target} and {kept}={has}; need {n}"
            )
        members += list(rng.choice(found, n, replace=False))
    _, points = space.embed_files(s.config, s.stats, s.root, [s.images[i] for i in members])
    mean, std = space.group_statistics_ops(points[None])
    return np.asarray(space.group_condition_ops(mean, std, mode=s.config.model.condition))[0]


def _analog_targets(s: Setup, target: int, neighbors: int) -> np.ndarray:
    """int [N]: per input, the cluster among `target` and its `neighbors` nearest clusters
    whose centroid lies nearest the input's own cluster's."""
    from xplore_tf.clustering import space

    c = np.asarray(s.stats.centroids, np.float32)
    candidates = np.concatenate(
        [[target], np.asarray(space.nearest_clusters(c, neighbors))[target]]
    )
    own = c[s.clusters[s.held]]
    d = ((own[:, None] - c[candidates][None]) ** 2).sum(-1)
    return candidates[np.argmin(d, axis=1)]


def _edits(
    s: Setup,
    keep: list[int],
    target: int,
    group: np.ndarray | None,
    strengths: tuple[list[float], list[float]],
    neighbors: int,
    analogs: list[int],
) -> dict:
    """{row name: conditions [N, C]} of the edits compared for one target cluster;
    `strengths`: (the kept edit's, the group's shared part's)."""
    from xplore_tf.clustering import space

    keep_strengths, shared_strengths = strengths
    n, k, d = len(s.held), s.stats.num_clusters, s.stats.dim
    source = s.table[s.clusters[s.held]]
    std_from = d if s.config.model.condition == "mean_std" else None
    weights = np.zeros((n, k), np.float32)
    weights[:, target] = 1.0
    kept = np.zeros((n, k), np.float32)
    kept[:, keep] = 1.0  # every kept cluster's direction
    edits = {
        "own cluster": source,
        "plain": space.blend_conditions(source, weights, s.table, std_from=std_from),
    }
    for alpha in keep_strengths:
        edits["keep" if alpha == 1 else f"keep {alpha:g}"] = space.blend_conditions(
            source, alpha * weights, s.table, std_from=std_from, keep=kept
        )
    if neighbors:
        edits["contrast"] = space.contrast_conditions(
            source, np.full(n, target), s.table, neighbors=neighbors, mean_dim=d
        )
    for m in analogs:
        edits[f"analog {m}"] = s.table[_analog_targets(s, target, m)]
    if group is not None:
        edits["group"] = np.repeat(group[None], n, axis=0)
        for alpha in shared_strengths:
            edits[f"shared {alpha:g}"] = space.shared_conditions(
                source, group[None], s.table, np.full(n, alpha, np.float32), mean_dim=d
            )
    return {name: np.asarray(c, np.float32) for name, c in edits.items()}


def _parse_args(argv) -> argparse.Namespace:
    """The command line's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flagfile", required=True, help="the run's flagfile")
    p.add_argument("--workdir", required=True, help="the run's folder")
    p.add_argument("--keep", required=True, help="ATTRIBUTE:CLUSTER to keep, e.g. Male:10")
    p.add_argument("--targets", required=True, help="ATTRIBUTE:CLUSTER,... to translate into")
    p.add_argument(
        "--keep_also",
        default="",
        help="more cluster ids whose directions the kept edit keeps, e.g. a women's cluster "
        "beside --keep's men's cluster (comma-separated; judged attribute stays --keep's)",
    )
    p.add_argument("--images", type=int, default=400, help="held-out images to translate")
    p.add_argument("--probe_images", type=int, default=2000, help="training-split images")
    p.add_argument(
        "--reference_group",
        type=_whole_number,
        default=0,
        metavar="N",
        help="also a reference group of N images per target (0: none)",
    )
    p.add_argument("--shared_strengths", default="1", help="strengths of the group's shared part")
    p.add_argument(
        "--keep_strengths",
        default="1",
        help="strengths of the edit without its part along --keep's direction (1 = the "
        "plain edit's length)",
    )
    p.add_argument(
        "--contrast_neighbors",
        type=_whole_number,
        default=0,
        metavar="M",
        help="also the contrast edit against the target's M nearest clusters (0: none)",
    )
    p.add_argument(
        "--analog_neighbors",
        default="",
        metavar="M,...",
        help="also each input into the cluster among the target and its M nearest clusters "
        "that lies nearest the input's own cluster (comma-separated M; none by default)",
    )
    p.add_argument(
        "--judge",
        choices=("clustering", "face"),
        default="clustering",
        help="the probe's features: the clustering extractor's, or dlib's face descriptors",
    )
    return p.parse_args(argv)


def _check_neighbors(args: argparse.Namespace, analogs: list[int], num_clusters: int) -> None:
    """Raises SystemExit when --contrast_neighbors or --analog_neighbors asks for more
    clusters than the run has."""
    if args.contrast_neighbors >= num_clusters:
        raise SystemExit(
            f"--contrast_neighbors={args.contrast_neighbors}: expected fewer than the run's "
            f"{num_clusters} clusters"
        )
    if any(not 1 <= m < num_clusters for m in analogs):
        raise SystemExit(
            f"--analog_neighbors={args.analog_neighbors}: expected each from 1 to "
            f"{num_clusters - 1} (fewer than the run's {num_clusters} clusters)"
        )


def _print_judge(s: Setup, before: np.ndarray, keep_name: str, kept: list[int], judge: str) -> None:
    """The inputs, the kept clusters and the judge's balanced accuracy on the real inputs."""
    from xplore_tf.evaluation import transfer

    has = before[:, 0]
    print(
        f"{len(s.x)} held-out images; keep {keep_name} (clusters {kept}); "
        f"{int(has.sum())} judged {keep_name}; {judge} judge's balanced accuracy "
        + ", ".join(
            f"{a} {transfer.balanced_accuracy(before[:, i], s.truth[:, i]):.2f}"
            for i, a in enumerate(s.attrs)
        )
    )


def _print_target_rows(
    s: Setup, generate, before: np.ndarray, name: str, edits: dict[str, np.ndarray]
) -> None:
    """One table row per edit toward the target attribute `name`: its gain, the kept
    attribute's flips and stays, and the mean L1 change."""
    has = before[:, 0]
    j = s.attrs.index(name)
    lacking = ~before[:, j]
    for edit, condition in edits.items():
        y = generate(s.x, condition)
        after = s.judge(y)
        gain = after[lacking, j].mean() - before[lacking, j].mean()
        l1 = np.abs(y.astype(np.float32) - s.x).mean() / 255.0
        print(
            f"{name:<14} {edit:<12} {gain:+7.3f} {np.mean(after[:, 0] != has):14.3f} "
            f"{after[has, 0].mean():12.3f} {(~after[~has, 0]).mean():16.3f} {l1:6.3f}",
            flush=True,
        )


def main(argv=None) -> int:
    args = _parse_args(argv)
    (keep_name, keep_cluster), targets = next(iter(_pairs(args.keep).items())), _pairs(args.targets)
    kept = [keep_cluster, *_whole_numbers(args.keep_also, "keep_also")]
    strengths = (
        _strengths(args.keep_strengths, "keep_strengths"),
        _strengths(args.shared_strengths, "shared_strengths"),
    )
    analogs = _whole_numbers(args.analog_neighbors, "analog_neighbors")
    s = _setup(args, [keep_name, *targets])
    _check_neighbors(args, analogs, s.stats.num_clusters)

    from xplore_tf.evaluation import pipeline

    generate = pipeline.checkpoint_generator_fns(s.config, None).condition
    before = s.judge(s.x)
    _print_judge(s, before, keep_name, kept, args.judge)
    print(
        f"{'target':<14} {'edit':<12} {'gain':>7} {keep_name + ' changed':>14} "
        f"{keep_name + ' kept':>12} {'not ' + keep_name + ' kept':>16} {'L1':>6}"
    )
    for name, target in targets.items():
        group = _group_condition(s, name, args.reference_group) if args.reference_group else None
        edits = _edits(s, kept, target, group, strengths, args.contrast_neighbors, analogs)
        _print_target_rows(s, generate, before, name, edits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
