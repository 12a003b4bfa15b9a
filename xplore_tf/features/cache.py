"""The feature cache: WORKDIR/clusters/features.npy + features.json (its manifest).

Extracting features is the slow part of the clustering stage (minutes for 10,000 faces on a
CPU); PCA, k-means or a learned head on them take seconds. So the pooled features are kept,
and a later `cluster` run with another k, PCA size, whitening, clustering method or seed
reuses them. The manifest records everything the features depend on; any difference means
the cache is stale and features are extracted again:

  - the extractor (`--feature_extractor`), the SHA-256 of its weights file, the pooled
    blocks (`--feature_blocks`), mirror averaging (`--feature_mirror`), the framing
    (`--feature_framing`), the crop (`--crop_size`) and the input side (`--feature_input_size`);
  - the images: the absolute images folder, and each listed file's relative path, size and
    modification time (a changed, added or removed file invalidates);
  - this module's CACHE_VERSION (bumped when extraction itself changes).

Both files are written atomically (`io_utils`), the manifest last and only after the old one
is removed, so a crash leaves either a complete cache or none. The manifest also holds the
SHA-256 of features.npy, checked on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Sequence

import numpy as np
from absl import logging

from xplore_tf import io_utils

FEATURES = "features.npy"
MANIFEST = "features.json"
CACHE_VERSION = 1


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks; "" for an empty path."""
    if not path:
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_digest(root: str, rel_paths: Sequence[str]) -> str:
    """Hex SHA-256 over (relative path, size, mtime in ns) of every file, in order.

    Cheap (one stat per file) and changes when a file is replaced, edited, added or removed.
    A file that cannot be stat'ed contributes its path only (it will be skipped anyway).
    """
    digest = hashlib.sha256()
    for rel in rel_paths:
        try:
            st = os.stat(os.path.join(root, rel))
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{rel}\0missing\n".encode())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class CacheKey:
    """What the cached features depend on; equal keys = the same features."""

    extractor: str
    weights_sha256: str  # "" when the extractor has no weights file
    blocks: tuple[str, ...]  # pooled blocks, () = the extractor's last conv layer (paper)
    mirror: bool  # features averaged with the mirror image's (features/blocks.py)
    framing: str  # "crop" | "whole" (features/extract.py)
    crop_size: int  # centre crop in px before resizing, 0 = the shorter side
    input_size: int  # the extractor's input side in px
    images_dir: str  # absolute
    images: tuple[str, ...]  # relative paths asked for, in order
    files_sha256: str  # `files_digest` of those paths
    version: int = CACHE_VERSION

    def as_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["blocks"], d["images"] = list(self.blocks), list(self.images)
        return d


def make_key(
    *,
    extractor: str,
    weights_path: str,
    blocks: Sequence[str],
    mirror: bool,
    framing: str,
    crop_size: int,
    input_size: int,
    images_dir: str,
    images: Sequence[str],
) -> CacheKey:
    """The key of features of `images` (relative to `images_dir`); hashes the weights file."""
    root = os.path.abspath(images_dir)
    return CacheKey(
        extractor=extractor,
        weights_sha256=file_sha256(weights_path),
        blocks=tuple(blocks),
        mirror=bool(mirror),
        framing=str(framing),
        crop_size=int(crop_size),
        input_size=int(input_size),
        images_dir=root,
        images=tuple(images),
        files_sha256=files_digest(root, images),
    )


@dataclasses.dataclass(frozen=True)
class CachedFeatures:
    kept: np.ndarray  # [M] int64, indices into key.images of the readable files
    features: np.ndarray  # [M, D] float32, the extractor's pooled output
    skipped: list[tuple[str, str]]  # (relative path, reason) of unreadable files
    extract_seconds: float  # of the run that extracted them
    images_per_second: float


def _differences(saved: dict, key: CacheKey) -> list[str]:
    want = key.as_json()
    return [name for name in want if saved.get(name) != want[name]]


def load(folder: str, key: CacheKey) -> CachedFeatures | None:
    """The cached features in `folder` when their manifest matches `key`, else None (logged).

    A missing cache returns None quietly; a stale or damaged one is logged with the reason.
    """
    manifest_path = os.path.join(folder, MANIFEST)
    features_path = os.path.join(folder, FEATURES)
    if not os.path.exists(manifest_path):
        return None
    try:
        with open(manifest_path, encoding="utf-8") as f:
            saved = json.load(f)
        stale = _differences(saved.get("key", {}), key)
        if stale:
            logging.info("feature cache %s is stale (%s changed): extracting", folder, stale)
            return None
        if file_sha256(features_path) != saved["features_sha256"]:
            logging.warning("feature cache %s: %s is damaged; extracting", folder, FEATURES)
            return None
        features = np.load(features_path, allow_pickle=False)
        kept = np.asarray(saved["kept"], np.int64)
        if features.ndim != 2 or len(features) != len(kept):
            raise ValueError(f"shape {features.shape} for {len(kept)} images")
    except (OSError, ValueError, KeyError, TypeError) as e:
        logging.warning("feature cache %s is unreadable (%s); extracting", folder, e)
        return None
    return CachedFeatures(
        kept=kept,
        features=features.astype(np.float32, copy=False),
        skipped=[(str(p), str(r)) for p, r in saved.get("skipped", [])],
        extract_seconds=float(saved.get("extract_seconds", 0.0)),
        images_per_second=float(saved.get("images_per_second", 0.0)),
    )


def save(folder: str, key: CacheKey, cached: CachedFeatures) -> str:
    """Writes features.npy then features.json atomically; returns the features path.

    Raises:
        ValueError: kept and features disagree in length.
    """
    if len(cached.kept) != len(cached.features):
        raise ValueError(
            f"feature cache: {len(cached.kept)} kept images but {len(cached.features)} rows"
        )
    manifest_path = os.path.join(folder, MANIFEST)
    features_path = os.path.join(folder, FEATURES)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)  # never a manifest beside features it does not describe
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(cached.features, np.float32), allow_pickle=False)
    data = buf.getvalue()
    io_utils.write_bytes(features_path, data)
    io_utils.write_json(
        manifest_path,
        {
            "key": key.as_json(),
            "kept": cached.kept.astype(np.int64).tolist(),
            "skipped": [list(s) for s in cached.skipped],
            "shape": list(cached.features.shape),
            "features_sha256": hashlib.sha256(data).hexdigest(),
            "extract_seconds": round(float(cached.extract_seconds), 3),
            "images_per_second": round(float(cached.images_per_second), 2),
        },
    )
    return features_path


__all__ = [
    "CACHE_VERSION",
    "FEATURES",
    "MANIFEST",
    "CacheKey",
    "CachedFeatures",
    "file_sha256",
    "files_digest",
    "load",
    "make_key",
    "save",
]
