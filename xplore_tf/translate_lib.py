"""Translating local image files without a server: the library behind `xplore_tf.translate`.

Runs the same signature functions a server would: those of an exported SavedModel
(`saved_model`), or of the export module built in memory from the run's G_ema checkpoint
(no export written). Inputs are read, named and written exactly as `serving/client.py`
does (`serving/client_common.py`), so a local translation equals a served one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from serving import client_common as common
from serving import signatures as sig
from xplore_tf.config import Config


class Translator:
    """The signature functions of one model, called with numpy in and numpy out."""

    def __init__(self, functions: dict, *, source: str, keep_alive: object = None):
        missing = [s for s in (sig.TRANSLATE_BYTES, sig.CLUSTERS) if s not in functions]
        if missing:
            raise ValueError(
                f"{source}: no signature(s) {missing}; export it with xplore_tf.export"
            )
        self.functions = functions
        self.source = source
        self._keep_alive = keep_alive  # a loaded SavedModel owns the variables

    @classmethod
    def from_saved_model(cls, path: str) -> Translator:
        import tensorflow as tf

        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(
                f"--saved_model: {path!r} holds no saved_model.pb (pass a version folder, "
                "e.g. WORKDIR/export/xplore/1)"
            )
        loaded = tf.saved_model.load(path)
        return cls(dict(loaded.signatures), source=path, keep_alive=loaded)

    @classmethod
    def from_checkpoint(cls, config: Config, checkpoint: str | None = None) -> Translator:
        from xplore_tf import export_lib

        loaded = export_lib.load_generator(config, checkpoint)
        module = export_lib.serving_module(config, loaded)
        source = loaded.checkpoint or "an untrained generator"
        return cls(module.signature_functions(), source=source, keep_alive=module)

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
        for start in range(0, len(encoded), max_batch):
            chunk = slice(start, start + max_batch)
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


def _short(message: str) -> str:
    keep = [
        line.strip()
        for line in message.splitlines()
        if line.strip()
        and not line.strip().startswith(
            ("Graph execution error", "Detected at node", "<stack traces", "[[{{node")
        )
    ]
    return " ".join(keep) or message


def translate_files(
    config: Config,
    images: Sequence[str],
    *,
    out: str,
    cluster: str | int | None = None,
    all_clusters: bool = False,
    saved_model: str = "",
    checkpoint: str | None = None,
    max_batch: int = 16,
    paste_back: bool = False,
) -> list[str]:
    """Translates image files into `cluster` (id or name), or into every cluster as one grid.

    With `paste_back`, each file is a photo: its faces are detected and aligned
    (`config.prepare`: detector, faces, aligned_size, min_face_size/score, paste_feather;
    serving/faces.py), each aligned crop is translated, warped back and blended in, and the
    whole photo is written (unchanged, with a warning, when no face is found).

    Inputs are read as `serving.client_common.read_image_bytes` (the client's rules): a file
    the training pipeline could not decode is a ValueError (ImageError) naming it.

    Output naming (see `client_common.output_paths`): `out` is a folder
    (`<stem>_c<cluster:03d>.png`; the grid is `all_clusters.png`), a .png file, or a pattern
    with {stem}, {index}, {cluster}; empty = WORKDIR/translate. Returns the files written.
    """
    paths = list(images)
    if not paths:
        raise ValueError("--images is required (comma-separated image files)")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"--images: no such file: {', '.join(missing)}")
    has_cluster = cluster is not None and str(cluster).strip() != ""
    if not all_clusters and not has_cluster:
        raise ValueError("pass --cluster=ID_OR_NAME or --all_clusters")
    if all_clusters and has_cluster:
        raise ValueError(f"pass --cluster={cluster} or --all_clusters, not both")
    if paste_back and all_clusters:
        raise ValueError("--paste_back writes whole photos into one cluster: pass --cluster")
    out = out or os.path.join(config.workdir, "translate")
    # Every input is decoded here first, by the training pipeline's rules: a file that
    # cannot be read is one ImageError line naming it, before any model is loaded.
    encoded = [common.read_image_bytes(p) for p in paths]
    if paste_back:
        _check_detector(config)
    translator = (
        Translator.from_saved_model(saved_model)
        if saved_model
        else Translator.from_checkpoint(config, checkpoint)
    )
    if all_clusters:
        ids = [int(i) for i in translator.clusters().ids]
        rows = []
        for data in encoded:
            outs = [
                common.decode(b)
                for b in translator.translate_bytes([data] * len(ids), ids, max_batch=max_batch)
            ]
            rows.append([common.thumbnail(data, outs[0].shape[0]), *outs])
        path = common.grid_path(out)
        common.write_file(path, common.png_bytes(common.grid(rows)))
        return [path]
    info = None if common.is_cluster_id(cluster) else translator.clusters()
    target = common.resolve_cluster(cluster, info)
    ids = [target] * len(paths)
    outputs = common.output_paths(out, paths, ids)
    if paste_back:
        pngs = [
            _paste_back(config, translator, path, data, target, saved_model, max_batch)
            for path, data in zip(paths, encoded, strict=True)
        ]
    else:
        pngs = translator.translate_bytes(encoded, ids, max_batch=max_batch)
    for path, png in zip(outputs, pngs, strict=True):
        common.write_file(path, png)
    return outputs


def _check_detector(config: Config) -> None:
    from serving import faces

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


def _paste_back(
    config: Config,
    translator: Translator,
    path: str,
    data: bytes,
    cluster: int,
    saved_model: str,
    max_batch: int,
) -> bytes:
    """PNG bytes of the photo at `path` with every face translated into `cluster`."""
    from absl import logging

    from serving import faces

    p = config.prepare
    options = faces.PasteOptions(
        detector=p.detector,
        faces=p.faces,
        aligned_size=p.aligned_size,
        min_face_size=p.min_face_size,
        min_face_score=p.min_face_score,
        feather=p.paste_feather,
        crop_size=_model_crop_size(config, saved_model),
    )
    photo, found = faces.translate_photo(
        common.decode(data, path),
        lambda pngs: translator.translate_bytes(pngs, [cluster] * len(pngs), max_batch=max_batch),
        options,
    )
    if not found:
        logging.warning("%s: no face found; written unchanged", path)
    return common.png_bytes(photo)
