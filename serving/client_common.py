"""Client-side helpers with no gRPC and no TensorFlow (numpy + Pillow only).

Shared by `serving/client.py` (which must not need model code) and `xplore_tf.translate`
(which translates without a server), so both read inputs, resolve cluster names and name
outputs the same way.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageOps

from serving import signatures as sig

_EXIF_ORIENTATION = 0x0112
GRID_NAME = "all_clusters.png"


def read_upright_bytes(path: str) -> bytes:
    """The encoded bytes of an image file, ready for `translate_bytes`.

    Sent unchanged, except when the file carries an EXIF orientation other than "upright"
    (phone pictures): the model's decoder ignores EXIF, so such a file is rotated here and
    re-encoded as PNG, as the training pipeline would see it. An unreadable file is sent as
    is: the server's INVALID_ARGUMENT says what is wrong with it.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        with Image.open(io.BytesIO(data)) as im:
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
            if orientation in (None, 1):
                return data
            return png_bytes(np.asarray(ImageOps.exif_transpose(im).convert("RGB")))
    except (OSError, ValueError, SyntaxError):
        return data


def png_bytes(array: np.ndarray) -> bytes:
    """uint8 [H,W,3] -> PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Encoded image -> uint8 [H,W,3] (RGB)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


def thumbnail(data: bytes, size: int) -> np.ndarray:
    """Encoded image -> uint8 [size,size,3]: centre square crop + bicubic resize (for grids)."""
    with Image.open(io.BytesIO(data)) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side))
        return np.asarray(im.resize((size, size), Image.Resampling.BICUBIC), np.uint8)


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Tiles equally sized uint8 [S,S,3] images: rows[i][j] at row i, column j."""
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)


def _stems(paths: list[str]) -> list[str]:
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) < len(stems):  # a/x.jpg and b/x.jpg: keep both
        stems = [f"{i:03d}_{s}" for i, s in enumerate(stems)]
    return stems


def output_paths(out: str, inputs: list[str], clusters: list[int]) -> list[str]:
    """Where the translation of inputs[i] into clusters[i] is written.

    `out` is a pattern when it contains "{" (fields {stem}, {index}, {cluster}), a file when
    it ends in .png (one output only), else a folder: `<out>/<stem>_c<cluster:03d>.png`.
    """
    if not out:
        raise ValueError("an output (--out) is required")
    stems = _stems(inputs)
    if "{" in out:
        try:
            paths = [
                out.format(stem=s, index=i, cluster=c)
                for i, (s, c) in enumerate(zip(stems, clusters, strict=True))
            ]
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"--out pattern {out!r}: only {{stem}}, {{index}}, {{cluster}} exist ({e})"
            ) from None
        if len(set(paths)) < len(paths):
            raise ValueError(f"--out pattern {out!r} gives several outputs the same name")
        return paths
    if out.lower().endswith(".png"):
        if len(inputs) != 1:
            raise ValueError(
                f"--out={out} names one file but there are {len(inputs)} outputs: pass a "
                "folder or a pattern such as out/{stem}_{cluster}.png"
            )
        return [out]
    return [os.path.join(out, f"{s}_c{c:03d}.png") for s, c in zip(stems, clusters, strict=True)]


def grid_path(out: str) -> str:
    """Where the --all_clusters grid goes: `out` if it ends in .png, else `<out>/all_clusters.png`."""
    if not out:
        raise ValueError("an output (--out) is required")
    if "{" in out:
        return out.format(stem="all_clusters", index=0, cluster="all")
    return out if out.lower().endswith(".png") else os.path.join(out, GRID_NAME)


def write_file(path: str, data: bytes) -> None:
    """Writes bytes, creating the folder; a temporary name + rename so no half file remains."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """What the `clusters` signature returns."""

    ids: np.ndarray  # int32 [k]
    sizes: np.ndarray  # int64 [k]
    names: list[str]  # "" when unnamed

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, np.ndarray]) -> ClusterInfo:
        names = [
            n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
            for n in np.asarray(outputs[sig.NAME]).reshape(-1)
        ]
        return cls(np.asarray(outputs[sig.CLUSTER_ID]), np.asarray(outputs[sig.SIZE]), names)


def is_cluster_id(value: str | int) -> bool:
    return str(value).strip().lstrip("-").isdigit()


def resolve_cluster(value: str | int, info: ClusterInfo | None) -> int:
    """A cluster id from an id ("12") or a name ("blond"; case-insensitive if unambiguous).

    Ids pass through unchecked (the model rejects ids outside [0, k) with INVALID_ARGUMENT);
    names need `info`.
    """
    text = str(value).strip()
    if not text:
        raise ValueError("--cluster is empty: pass an id or a cluster name")
    if is_cluster_id(text):
        return int(text)
    if info is None:
        raise ValueError(f"--cluster={text!r} is a name: resolving it needs the model's clusters")
    for candidates in (
        [int(i) for i, n in zip(info.ids, info.names, strict=True) if n == text],
        [int(i) for i, n in zip(info.ids, info.names, strict=True) if n.lower() == text.lower()],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ValueError(f"--cluster={text!r} names several clusters: {candidates}")
    named = sorted({n for n in info.names if n})
    raise ValueError(
        f"--cluster={text!r}: no cluster of that name; named clusters: "
        + (", ".join(named) if named else "none (write cluster_names.json, then export again)")
    )


def split_paths(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated file arguments -> a flat list."""
    return [p.strip() for value in values or [] for p in value.split(",") if p.strip()]
