"""Translating local image files without a server: the library behind `xplore_tf.translate`.

Runs the same signature functions a server would: those of an exported SavedModel
(`saved_model`), or of the export module built in memory from the run's G_ema checkpoint
(no export written). Inputs are read, named and written exactly as `serving/client.py`
does (`xplore_tf/common/pixels.py`, `xplore_tf/common/beyond_clusters.py`), so a local translation
equals a served one: into a cluster, with a strength, into a weighted combination of
clusters, or toward a reference group of images (docs/guide/beyond_clusters.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence

from absl import logging

from xplore_tf import cli, io_utils
from xplore_tf.common import beyond_clusters as bc
from xplore_tf.common import pixels as common
from xplore_tf.common import signatures as sig
from xplore_tf.config import Config

METADATA = os.path.join("assets.extra", "xplore_tf.json")  # = export_lib.METADATA


class Translator:
    """The signature functions of one model, called with numpy in and numpy out."""

    def __init__(
        self,
        functions: Mapping,
        *,
        source: str,
        keep_alive: object = None,
        missing_reason: str = "",
    ):
        missing = [s for s in (sig.TRANSLATE_BYTES, sig.CLUSTERS) if s not in functions]
        if missing:
            raise ValueError(
                f"{source}: no signature(s) {missing}; export it with xplore_tf.export"
            )
        self.functions = functions
        self.source = source
        self._keep_alive = keep_alive  # a loaded SavedModel owns the variables
        # Why the beyond-clusters signatures are absent, when they are.
        self.missing_reason = missing_reason or (
            "exported before they existed: export the checkpoint again"
        )

    @classmethod
    def from_saved_model(cls, path: str) -> Translator:
        import tensorflow as tf

        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(
                f"--saved_model: {path!r} holds no saved_model.pb (pass a version folder, "
                "e.g. WORKDIR/export/xplore/1)"
            )
        loaded = tf.saved_model.load(io_utils.glob_safe(path))
        reason = ""
        try:
            with open(os.path.join(path, METADATA), encoding="utf-8") as f:
                reason = json.load(f).get("beyond_clusters_missing", "")
        except (OSError, ValueError):
            pass
        return cls(dict(loaded.signatures), source=path, keep_alive=loaded, missing_reason=reason)

    @classmethod
    def from_checkpoint(cls, config: Config, checkpoint: str | None = None) -> Translator:
        from xplore_tf import export_lib

        loaded = export_lib.load_generator(config, checkpoint)
        module = export_lib.serving_module(config, loaded)
        source = loaded.checkpoint or "an untrained generator"
        return cls(
            module.signature_functions(),
            source=source,
            keep_alive=module,
            missing_reason=module.beyond_clusters_reason,
        )

    def predict(self, name: str, inputs: dict) -> dict:
        """One signature call, numpy in and out (as `ServingClient.predict` over gRPC).

        Raises:
            ValueError: the model has no such signature (and why), or refuses the inputs
                (InvalidArgumentError's message, shortened to its lines that matter).
        """
        import tensorflow as tf

        if name not in self.functions:
            raise ValueError(
                f"{self.source}: the model has no {name} signature ({self.missing_reason})"
            )
        fn = self.functions[name]
        dtypes = _input_dtypes(fn)
        try:
            out = fn(**{k: tf.constant(v, dtypes[k]) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as e:
            raise ValueError(_short(e.message)) from None
        return {k: v.numpy() for k, v in out.items()}

    def clusters(self) -> common.ClusterInfo:
        outputs = self.functions[sig.CLUSTERS]()
        return common.ClusterInfo.from_outputs({k: v.numpy() for k, v in outputs.items()})

    def translate_bytes(
        self, encoded: Sequence[bytes], cluster_ids: Sequence[int], *, max_batch: int = 16
    ) -> list[bytes]:
        """Encoded images into clusters -> PNG bytes (the `translate_bytes` signature)."""
        import tensorflow as tf

        if len(encoded) != len(cluster_ids):
            raise ValueError(f"{len(encoded)} images but {len(cluster_ids)} cluster ids")
        out: list[bytes] = []
        fn = self.functions[sig.TRANSLATE_BYTES]
        for chunk in common.batches(encoded, max_batch):
            try:
                result = fn(
                    **{
                        sig.IMAGE_BYTES: tf.constant(list(encoded[chunk]), tf.string),
                        sig.CLUSTER_ID: tf.constant(list(cluster_ids[chunk]), tf.int32),
                    }
                )
            except tf.errors.InvalidArgumentError as e:
                raise ValueError(_short(e.message)) from None
            out.extend(result[sig.IMAGE_BYTES].numpy().tolist())
        return out


def _input_dtypes(fn) -> dict:
    """{input name: dtype} of a signature (a loaded ConcreteFunction or a tf.function)."""
    concrete = fn if hasattr(fn, "structured_input_signature") else fn.get_concrete_function()
    args, kwargs = concrete.structured_input_signature
    return {k: v.dtype for k, v in kwargs.items()} or {spec.name: spec.dtype for spec in args}


def _short(message: str) -> str:
    return " ".join(cli.tf_message_lines(message)) or message


def translate_files(
    config: Config,
    images: Sequence[str],
    *,
    out: str,
    cluster: str | int | None = None,
    all_clusters: bool = False,
    strength: float | None = None,
    reference_dir: str = "",
    reference_edit: str = bc.GROUP,
    keep: str = "",
    saved_model: str = "",
    checkpoint: str | None = None,
    max_batch: int = 16,
    paste_back: bool = False,
    output_resolution: str = sig.INPUT_RESOLUTION,
) -> list[str]:
    """Translates image files into `cluster` (id or name), or into every cluster as one grid.

    Beyond fixed clusters (docs/guide/beyond_clusters.md): `strength` alpha in [0, MAX_STRENGTH]
    moves the condition from the input's own cluster (0) to the target (1) and past it;
    `cluster` as `12:1.0,31:0.5` is a weighted combination; `reference_dir` translates toward
    the statistics of that folder's images (a warning when they lie far from every cluster),
    with `reference_edit` "shared" only by what they share, at `strength` (default 1;
    `space.shared_conditions`). `keep` (`10,men`: ids or names) takes the edit's part along
    those clusters' directions out (`space.keep_directions`).

    `output_resolution`: "input" (default) gives each image back at its own resolution with
    the model's edit added (`translate_full*`, xplore_tf/edit.py: the centre square the model
    sees, at its size); "model" gives the model's output at its resolution S. A model without
    those signatures falls back to "model" with a warning; the grid is always at S.

    With `paste_back`, each file is a photo: its faces are detected and aligned
    (`config.prepare`, xplore_tf/common/faces.py), each aligned crop is translated and its
    edit added back (at "model" resolution the output blended in), and the whole photo is
    written (unchanged, with a warning, when no face is found).

    Output naming (see `pixels.output_paths`): `out` is a folder
    (`<stem>_c<cluster:03d>.png`, `<stem>_c012_s0.5.png`, `<stem>_mix_c012x1_c031x0.5.png`,
    `<stem>_ref_<folder>[_shared[_s<strength>]].png`; the grid is `all_clusters.png`), a .png file, or a
    pattern with {stem}, {index}, {cluster}; empty = WORKDIR/translate. Returns the files
    written.

    Raises:
        ValueError: contradicting or malformed options (one line naming the flag), an
            input the training pipeline cannot decode (ImageError naming it; inputs are read
            as `pixels.read_image_bytes`, the client's rules), a reference folder without
            readable images, a request the model refuses, or a model without the signature.
        FileNotFoundError: an input file that does not exist.
    """
    paths = list(images)
    _check_inputs(paths)
    reference_options = (reference_dir, reference_edit)
    weights, strength = _check_target(
        cluster, strength, reference_options, all_clusters=all_clusters, paste_back=paste_back
    )
    kept = bc.parse_keep(keep, all_clusters=all_clusters, reference_dir=reference_dir)
    common.check_output_resolution(output_resolution)
    out = out or os.path.join(config.workdir, "translate")
    # Every input is decoded here first, by the training pipeline's rules: a file that
    # cannot be read is one ImageError line naming it, before any model is loaded.
    encoded = [common.read_image_bytes(p) for p in paths]
    reference = (reference_dir, _read_reference(reference_dir), reference_edit)
    if paste_back:
        _check_detector(config)
    translator = _load_translator(config, saved_model, checkpoint)
    if all_clusters:
        return [_write_all_clusters_grid(translator, encoded, out, strength, max_batch)]
    full = _full_resolution(translator, output_resolution)
    translate_pngs, label = _translation(
        translator, cluster, weights, strength, reference, kept, max_batch, full
    )
    outputs = common.output_paths(out, paths, [label] * len(paths))
    if paste_back:
        pngs = _paste_back_photos(config, translate_pngs, paths, encoded, saved_model, full)
    else:
        pngs = translate_pngs(encoded)
    for path, png in zip(outputs, pngs, strict=True):
        common.write_file(path, png)
    return outputs


def _load_translator(config: Config, saved_model: str, checkpoint: str | None) -> Translator:
    """The exported model at `saved_model`, else G_ema of the run's `checkpoint` (None:
    --checkpoint, else the newest)."""
    if saved_model:
        return Translator.from_saved_model(saved_model)
    return Translator.from_checkpoint(config, checkpoint)


def _check_inputs(paths: list[str]) -> None:
    """Raises ValueError (no --images) or FileNotFoundError (a missing file)."""
    if not paths:
        raise ValueError("--images is required (comma-separated image files)")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"--images: no such file: {', '.join(missing)}")


def _check_target(
    cluster: str | int | None,
    strength: float | None,
    reference: tuple[str, str],
    *,
    all_clusters: bool,
    paste_back: bool,
) -> tuple[list[tuple[str, float]] | None, float | None]:
    """(cluster weights or None, checked strength) of the target options of `translate_files`;
    `reference`: (--reference_dir, --reference_edit).

    Raises:
        ValueError: no target, two targets, or options that do not go together (one line
            naming the flags).
    """
    reference_dir, reference_edit = reference
    has_cluster = cluster is not None and str(cluster).strip() != ""
    bc.check_reference_options(
        reference_dir,
        reference_edit,
        cluster=has_cluster,
        all_clusters=all_clusters,
        strength=strength is not None,
    )
    if not reference_dir and not all_clusters and not has_cluster:
        raise ValueError("pass --cluster=ID_OR_NAME, --all_clusters or --reference_dir=DIR")
    if all_clusters and has_cluster:
        raise ValueError(f"pass --cluster={cluster} or --all_clusters, not both")
    if paste_back and all_clusters:
        raise ValueError("--paste_back writes whole photos into one cluster: pass --cluster")
    weights = bc.parse_cluster_weights(str(cluster)) if has_cluster else None
    if strength is not None:
        strength = bc.check_strength(strength)
        if weights is not None:
            raise ValueError(
                f"--strength applies to one --cluster; --cluster={cluster} has weights already "
                "(scale them instead)"
            )
    return weights, strength


def _write_all_clusters_grid(
    translator: Translator,
    encoded: list[bytes],
    out: str,
    strength: float | None,
    max_batch: int,
) -> str:
    """Writes `pixels.all_clusters_grid` at the model's resolution; returns its path
    (`pixels.grid_path(out)`)."""

    def translate(batch: list[bytes], ids: list[int]) -> list[bytes]:
        if strength is None:
            return translator.translate_bytes(batch, ids, max_batch=max_batch)
        strengths = [strength] * len(ids)
        return bc.translate_strength(
            translator.predict, batch, ids, strengths, max_batch=max_batch
        )[0]

    path = common.grid_path(out)
    grid = common.all_clusters_grid(translator.clusters(), encoded, translate)
    common.write_file(path, common.png_bytes(grid))
    return path


def _full_resolution(translator: Translator, output_resolution: str) -> bool:
    """Whether to translate at the input's resolution: asked for and the model can (a
    model without the `translate_full*` signatures falls back to its own, with a warning)."""
    full = output_resolution == sig.INPUT_RESOLUTION
    if full and sig.TRANSLATE_FULL not in translator.functions:
        logging.warning(
            "%s has no %s signature (%s): output at the model's resolution",
            translator.source,
            sig.TRANSLATE_FULL,
            translator.missing_reason,
        )
        full = False
    return full


def _read_reference(folder: str) -> bc.ReferenceImages | None:
    """The reference folder's images, listed as the clustering stage lists a folder (None
    without a folder)."""
    from xplore_tf.clustering import space

    if not folder:
        return None
    listed = space.list_reference_images(folder)
    group = bc.read_reference_images(folder, listed)
    for rel, reason in group.skipped:
        logging.warning("--reference_dir: skipping unreadable image %s: %s", rel, reason)
    if group.duplicates:
        logging.info("--reference_dir: %d exact duplicate(s) counted once", len(group.duplicates))
    return group


def _translation(
    translator: Translator,
    cluster: str | int | None,
    weights: list[tuple[str, float]] | None,
    strength: float | None,
    reference_group: tuple[str, bc.ReferenceImages | None, str],
    keep: list[str],
    max_batch: int,
    full_resolution: bool,
) -> tuple[Callable[[list[bytes]], list[bytes]], int | str]:
    """(encoded images -> PNG bytes, output label) for the chosen target."""
    predict = translator.predict
    reference_dir, reference, reference_edit = reference_group
    info = None
    if reference is not None:
        ref = bc.reference_condition(predict, reference.encoded)
        logging.info(
            "--reference_dir: %d images; nearest training cluster %d at distance %.3g "
            "(%.2fx its RMS radius)",
            len(reference.encoded),
            ref.nearest_cluster,
            ref.distance,
            ref.relative_distance,
        )
        if ref.far:
            logging.warning("%s", ref.warning(reference_dir))
        target = bc.reference_target(reference_dir, ref, edit=reference_edit, strength=strength)
    elif weights is not None:
        info = translator.clusters()
        resolved = [(common.resolve_cluster(t, info), w) for t, w in weights]
        vector = bc.weight_vector(resolved, len(info.ids))
        target = bc.Target(bc.mix_label(resolved), weights=vector)
    else:
        info = None if common.is_cluster_id(cluster) else translator.clusters()
        cluster_id = common.resolve_cluster(cluster, info)
        label = cluster_id if strength is None else bc.strength_label(cluster_id, strength)
        target = bc.Target(label, cluster=cluster_id, strength=strength)
    target = bc.keep_target(target, keep, translator.clusters)
    if full_resolution and target.cluster is not None and info is None:
        info = translator.clusters()
    fn = bc.translation_function(
        predict,
        target,
        num_clusters=len(info.ids) if info else 0,
        full_resolution=full_resolution,
        plain=lambda pngs, ids: translator.translate_bytes(pngs, ids, max_batch=max_batch),
        max_batch=max_batch,
    )
    return fn, target.label


def _check_detector(config: Config) -> None:
    from xplore_tf.common import faces

    if not faces.detector_available(config.prepare.detector):
        raise ValueError(
            f"--paste_back: {faces.MISSING_DETECTOR.format(name=config.prepare.detector)}"
        )


def _model_crop_size(config: Config, saved_model: str) -> int:
    """The model's own centre crop of its input (--crop_size at export; 0 = all of it)."""
    if not saved_model:
        return config.data.crop_size
    import json

    try:
        with open(os.path.join(saved_model, "assets.extra", "xplore_tf.json")) as f:
            return int(json.load(f).get("crop_size", 0))
    except (OSError, ValueError):
        return 0


def _paste_back_photos(
    config: Config,
    translate_pngs: Callable[[list[bytes]], list[bytes]],
    paths: list[str],
    encoded: list[bytes],
    saved_model: str,
    full_resolution: bool,
) -> list[bytes]:
    """PNG bytes of each photo (`paths`, their bytes `encoded`) with its faces translated."""
    return [
        _paste_back(config, translate_pngs, path, data, saved_model, full_resolution)
        for path, data in zip(paths, encoded, strict=True)
    ]


def _paste_back(
    config: Config,
    translate_pngs: Callable[[list[bytes]], list[bytes]],
    path: str,
    data: bytes,
    saved_model: str,
    full_resolution: bool,
) -> bytes:
    """PNG bytes of the photo at `path` with every face translated by `translate_pngs`."""
    from xplore_tf.common import faces

    p = config.prepare
    options = faces.PasteOptions(
        detector=p.detector,
        faces=p.faces,
        aligned_size=p.aligned_size,
        min_face_size=p.min_face_size,
        min_face_score=p.min_face_score,
        feather=p.paste_feather,
        crop_size=_model_crop_size(config, saved_model),
        full_resolution=full_resolution,
    )
    photo, found = faces.translate_photo(common.decode(data, path), translate_pngs, options)
    if not found:
        logging.warning("%s: no face found; written unchanged", path)
    return common.png_bytes(photo)
