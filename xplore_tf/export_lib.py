"""Export of G_ema as a SavedModel for TF Serving (DESIGN.md §5): the library behind
`xplore_tf.export`, also used by `xplore_tf.translate` and `xplore_tf.evaluate`.

`load_generator` restores G_ema from a checkpoint (the newest restorable one by default),
`serving_module` wraps it with the cluster statistics in an `export_module.ServingModule`
(whose signatures that module's docstring lists), and `export` writes it as a version.

Versions are numeric folders `<export_dir>/<model_name>/<version>/`; a version is written
into a hidden temporary folder beside it and renamed into place, so TF Serving (which
polls the model folder) never sees a half-written model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf
from absl import logging

from xplore_tf import checkpoints, io_utils
from xplore_tf.clustering import artifacts, contact_sheets, pipeline
from xplore_tf.clustering import space as space_lib
from xplore_tf.common import signatures as sig
from xplore_tf.config import Config

# The exported object and its in-graph helpers live in export_module; named here too for the
# callers and tests that reach them through export_lib.
from xplore_tf.export_module import (  # noqa: F401 (re-exported)
    ClusteringSpace,
    ServingModule,
    centre_square,
    frame_images,
)
from xplore_tf.models.generator import Generator

METADATA = os.path.join("assets.extra", "xplore_tf.json")
PREPROCESSING = (
    "centre square crop (crop_size, 0 = shorter side), bicubic resize with antialiasing to "
    "image_size x image_size (skipped when already that size), rounded to uint8"
)
_VERSION = re.compile(r"^[0-9]+$")
_TEMP = re.compile(r"^\.tmp-[0-9]+-([0-9]+)-")  # .tmp-<version>-<pid>-<random>


@dataclasses.dataclass
class LoadedGenerator:
    """G_ema of a run, ready for inference, with what was used to build it."""

    generator: Generator
    stats: artifacts.ClusterStats
    checkpoint: str  # "" when freshly initialised (--allow_untrained)
    step: int | None  # training step of the checkpoint, when recorded
    clusters_fingerprint: str  # of the clusters folder it was loaded with

    @property
    def untrained(self) -> bool:
        return not self.checkpoint


@dataclasses.dataclass
class ExportResult:
    path: str  # the version folder
    version: int
    checkpoint: str
    step: int | None
    signatures: tuple[str, ...]


@contextlib.contextmanager
def _float32_policy():
    """Builds inference models in float32 even after training set a mixed global policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def load_generator(
    config: Config, checkpoint: str | None = None, *, allow_untrained: bool | None = None
) -> LoadedGenerator:
    """G_ema of `checkpoint` (default: --checkpoint, else the latest in WORKDIR/checkpoints).

    Builds the models of `config` for the run's cluster statistics and restores only the
    generator_ema entry of the training checkpoint. Without any checkpoint this is a
    ValueError unless `allow_untrained` (default: --allow_untrained), which returns a freshly
    initialised generator (seeded by --seed) and logs a loud warning.
    """
    stats = artifacts.read_stats(os.path.join(config.clusters_dir, artifacts.STATS))
    explicit = checkpoint or config.export.checkpoint
    if explicit and not os.path.exists(explicit + ".index"):
        raise FileNotFoundError(
            f"--checkpoint: {explicit!r} is not a checkpoint (no {explicit}.index)"
        )
    if allow_untrained is None:
        allow_untrained = config.export.allow_untrained
    keras.utils.set_random_seed(config.seed)
    with _float32_policy():
        generator = checkpoints.build_generator(config, stats)
    chosen = dataclasses.replace(
        config, export=dataclasses.replace(config.export, checkpoint=explicit or "")
    )
    path = checkpoints.usable_generator(chosen, generator)
    fingerprint = artifacts.clusters_fingerprint(config.clusters_dir)
    if path:
        return LoadedGenerator(
            generator, stats, path, checkpoints.checkpoint_step(path), fingerprint
        )
    if not allow_untrained:
        raise ValueError(
            f"no checkpoint in {config.checkpoint_dir}: train first (python -m xplore_tf.train), "
            "pass --checkpoint, or --allow_untrained to use a freshly initialised generator"
        )
    logging.warning(
        "\n%s\nNO CHECKPOINT: using a FRESHLY INITIALISED generator (--allow_untrained). Its "
        "outputs are noise-like; use it for plumbing tests and benchmarks only.\n%s",
        "!" * 78,
        "!" * 78,
    )
    return LoadedGenerator(generator, stats, "", None, fingerprint)


def cluster_names(config: Config, num_clusters: int) -> list[str]:
    """Name of every cluster from WORKDIR/clusters/cluster_names.json ("" when unnamed)."""
    names = contact_sheets.read_cluster_names(
        os.path.join(config.clusters_dir, contact_sheets.CLUSTER_NAMES)
    )
    unknown = sorted(c for c in names if not 0 <= c < num_clusters)
    if unknown:
        logging.warning(
            "cluster_names.json names clusters %s outside [0, %d)", unknown, num_clusters
        )
    return [names.get(c, "") for c in range(num_clusters)]


def clustering_space(config: Config, stats: artifacts.ClusterStats) -> ClusteringSpace:
    """The extractor and transform `cluster` used for `stats` (checked: `space.check_same_space`).

    Raises:
        ValueError, FileNotFoundError: flags that differ from the clusters', missing weights.
    """
    space_lib.check_same_space(config, stats)
    with _float32_policy():
        extractor = pipeline.clustering_extractor(config)
    return ClusteringSpace(
        extractor, config.cluster.feature_framing, stats.crop_size, config.cluster.pca_l2
    )


def optional_clustering_space(
    config: Config, stats: artifacts.ClusterStats
) -> tuple[ClusteringSpace | None, str]:
    """(`clustering_space`, "") or (None, why not): export never fails for want of it.

    Without the clustering extractor (its weights file absent here, or feature flags other
    than the clusters') the model still translates into clusters; it only lacks the
    beyond-clusters signatures (`sig.BEYOND_SIGNATURES`), and the log says why.
    """
    try:
        return clustering_space(config, stats), ""
    except (ValueError, FileNotFoundError) as e:
        return None, str(e)


def serving_module(config: Config, loaded: LoadedGenerator) -> ServingModule:
    """The `tf.Module` that is exported: also callable in process (translate, tests).

    The beyond-clusters signatures are left out, with a warning saying why, when the
    clustering space cannot be rebuilt here (`optional_clustering_space`).
    """
    space, reason = optional_clustering_space(config, loaded.stats)
    if space is None:
        logging.warning(
            "no %s signatures in this model (they run the clustering extractor in-graph): %s",
            "/".join(sig.BEYOND_SIGNATURES),
            reason,
        )
    module = ServingModule(
        loaded.generator,
        loaded.stats,
        condition=config.model.condition,
        crop_size=config.data.crop_size,
        names=cluster_names(config, loaded.stats.num_clusters),
        space=space,
        edit_base=config.export.edit_base,
        face_colour=config.export.face_colour,
    )
    module.beyond_clusters_reason = reason
    return module


def existing_versions(model_dir: str) -> list[int]:
    """Numeric version folders of a model folder, ascending (temporary folders ignored)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(model_dir)
        if _VERSION.match(name) and os.path.isdir(os.path.join(model_dir, name))
    )


def next_version(model_dir: str) -> int:
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def version_of_checkpoint(config: Config, checkpoint: str) -> str | None:
    """The newest export version folder made from `checkpoint`, or None."""
    model_dir = os.path.join(config.export_base_dir, config.export.model_name)
    for version in reversed(existing_versions(model_dir)):
        path = os.path.join(model_dir, str(version))
        try:
            with open(os.path.join(path, METADATA)) as f:
                if json.load(f).get("checkpoint") == checkpoint:
                    return path
        except (OSError, ValueError):
            continue
    return None


def _remove_orphaned_temp_dirs(model_dir: str) -> None:
    """Removes the temporary folders of exports whose process died (e.g. kill -9)."""
    for name in os.listdir(model_dir):
        match = _TEMP.match(name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def _beyond_clusters_metadata(
    config: Config, loaded: LoadedGenerator, module: ServingModule
) -> dict:
    """What assets.extra/xplore_tf.json says of the beyond-clusters signatures."""
    if module.beyond_clusters_reason:
        return {"beyond_clusters_missing": module.beyond_clusters_reason}
    return {
        "max_strength": sig.MAX_STRENGTH,
        "far_from_clusters": sig.FAR_FROM_CLUSTERS,
        "full_resolution": {
            "edit_base": config.export.edit_base,
            "face_colour": config.export.face_colour,
        },
        "clustering_space": {
            "extractor": loaded.stats.extractor,
            "input_size": loaded.stats.image_size,
            "framing": config.cluster.feature_framing,
            "crop_size": loaded.stats.crop_size,
            "blocks": list(config.cluster.feature_blocks),
            "mirror": config.cluster.feature_mirror,
            "pca_dim": loaded.stats.dim,
            "pca_l2": config.cluster.pca_l2,
        },
    }


def _metadata(
    config: Config, loaded: LoadedGenerator, module: ServingModule, version: int, signatures
) -> dict:
    """assets.extra/xplore_tf.json of an export, but its time ("exported_at")."""
    return {
        "model_name": config.export.model_name,
        "version": version,
        "image_size": loaded.generator.image_size,
        "num_clusters": loaded.stats.num_clusters,
        "condition": config.model.condition,
        "crop_size": config.data.crop_size,
        "preprocessing": PREPROCESSING,
        "checkpoint": loaded.checkpoint,
        "step": loaded.step,
        "clusters_fingerprint": loaded.clusters_fingerprint,
        "untrained": loaded.untrained,
        "signatures": sorted(signatures),
        **_beyond_clusters_metadata(config, loaded, module),
    }


def _write_version(module: ServingModule, metadata: dict, final: str) -> None:
    """Saves `module` with its `signatures()` and `metadata` as the version folder `final`:
    written into a hidden temporary folder beside it, then renamed into place.

    Raises:
        OSError: the SavedModel cannot be written (nothing is left behind), or `final`
            appeared meanwhile.
    """
    model_dir = os.path.dirname(final)
    os.makedirs(model_dir, exist_ok=True)
    _remove_orphaned_temp_dirs(model_dir)
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{metadata['version']}-{os.getpid()}-")
    try:
        try:
            tf.saved_model.save(module, tmp, signatures=module.signatures())
        except (tf.errors.OpError, OSError) as e:
            raise OSError(
                f"cannot write the export {final}: {io_utils.write_failure(e)} (disk full or a "
                "file-size limit?); nothing was written there"
            ) from None
        io_utils.write_json(
            os.path.join(tmp, METADATA),
            {
                **metadata,
                "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            },
        )
        os.chmod(tmp, 0o777 & ~io_utils.umask())  # mkdtemp makes it 0700
        os.rename(tmp, final)  # atomic; fails if the version appeared meanwhile
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def export(
    config: Config, *, checkpoint: str | None = None, version: int | None = None
) -> ExportResult:
    """Writes G_ema of the run as `<export_base_dir>/<model_name>/<version>/`.

    `version` (default --export_version; 0 = next) must not exist yet. Returns where it went.

    Raises:
        ValueError: --model_name is not a folder name, the version exists, no checkpoint.
        OSError: the export cannot be written.
    """
    name = config.export.model_name
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ValueError(f"--model_name: {name!r} is not a folder name")
    loaded = load_generator(config, checkpoint)
    module = serving_module(config, loaded)
    model_dir = os.path.join(config.export_base_dir, name)
    version = version or config.export.version or next_version(model_dir)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise ValueError(
            f"{final} exists: versions are never overwritten; pass --export_version=0 (next) "
            "or a new number"
        )
    signatures = tuple(sorted(module.input_signatures()))
    _write_version(module, _metadata(config, loaded, module, version, signatures), final)
    logging.info("exported %s (checkpoint %s)", final, loaded.checkpoint or "none: untrained")
    return ExportResult(
        path=final,
        version=version,
        checkpoint=loaded.checkpoint,
        step=loaded.step,
        signatures=signatures,
    )
