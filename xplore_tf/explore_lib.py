"""The explore page: browse the discovered attributes and edit a photo in the browser.

`python -m xplore_tf.explore --flagfile=configs/<run>.cfg` serves a page (FastAPI on
uvicorn; the page itself is static HTML and JavaScript in `explore_page/`) that shows every
cluster of the run as a card (its contact sheet, size, name and where it edits) and edits an
uploaded photo or one of the run's images with the model, as `translate --paste_back` does.

The model is the run's SavedModel or checkpoint in process (`translate_lib.Translator`), or
a TF Serving endpoint (`--server`, `xplore_tf.common.predict_client`): both answer the same
signatures, so every edit goes through `beyond_clusters.translation_function` as in
`translate`. Photos and reference groups live in memory under random ids (never under a
name the browser chose), a bounded number at a time; nothing is written but
WORKDIR/clusters/cluster_names.json, atomically, when a name is saved.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import secrets
import threading
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from xplore_tf import io_utils
from xplore_tf.clustering import contact_sheets
from xplore_tf.common import beyond_clusters as bc
from xplore_tf.common import faces
from xplore_tf.common import pixels as common
from xplore_tf.common import signatures as sig
from xplore_tf.config import Config
from xplore_tf.data import images as images_lib
from xplore_tf.data import sources

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explore_page")
MAX_PHOTOS = 16  # photos and groups kept in memory (the oldest go first)
MAX_PHOTO_PIXELS = 24_000_000  # larger photos are refused: shrink them first
WHOLE_IMAGE = -1  # the face index that means "the whole image is an aligned face"


class ExploreError(ValueError):
    """Bad input from the page: one line for the user (HTTP 400)."""


@dataclasses.dataclass
class Backend:
    """The model: signature calls, numpy in and out, in process or over gRPC."""

    predict: Callable[[str, dict], dict]
    clusters: Callable[[], common.ClusterInfo]
    translate_bytes: Callable[[list[bytes], list[int]], list[bytes]]
    full_resolution: bool  # the translate_full signatures exist
    source: str
    close: Callable[[], None] = lambda: None


def make_backend(config: Config, *, saved_model: str = "", server: str = "") -> Backend:
    """The run's model: `server` (TF Serving, gRPC), else `saved_model`, else the newest
    checkpoint of the run (as `translate`)."""
    if server:
        from xplore_tf.common import predict_client

        client = predict_client.ServingClient(server, config.export.model_name)
        full = sig.TRANSLATE_FULL in client.signature_names()
        return Backend(
            client.predict, client.clusters, client.translate_bytes, full, server, client.close
        )
    from xplore_tf import translate_lib

    translator = (
        translate_lib.Translator.from_saved_model(saved_model)
        if saved_model
        else translate_lib.Translator.from_checkpoint(config)
    )
    return Backend(
        translator.predict,
        translator.clusters,
        translator.translate_bytes,
        sig.TRANSLATE_FULL in translator.functions,
        translator.source,
    )


@dataclasses.dataclass
class Photo:
    name: str  # for the download's file name only
    rgb: np.ndarray  # uint8 [H,W,3], EXIF-upright
    found: list[faces.AlignedFace]


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class Explorer:
    """What the page asks for, independent of HTTP: cards, photos, groups, edits, names."""

    def __init__(self, config: Config, backend: Backend, *, heatmap_images: int = 24):
        self.config = config
        self.backend = backend
        self.info = backend.clusters()
        self.k = len(self.info.ids)
        self.heatmap_images = heatmap_images
        self.lock = threading.Lock()  # one model call at a time: two cores, one model
        self.photos: collections.OrderedDict[str, Photo] = collections.OrderedDict()
        self.groups: collections.OrderedDict[str, bc.ReferenceCondition] = collections.OrderedDict()
        self._heatmaps: dict[int, bytes] = {}
        self._run_images: list[str] | None = None

    # ------------------------------------------------------------------ attributes
    @property
    def names_path(self) -> str:
        return os.path.join(self.config.clusters_dir, contact_sheets.CLUSTER_NAMES)

    def clusters(self) -> list[dict]:
        """[{id, size, name}] of every cluster, names from cluster_names.json (as saved)."""
        names = contact_sheets.read_cluster_names(self.names_path)
        return [
            {"id": int(c), "size": int(n), "name": names.get(int(c), "")}
            for c, n in zip(self.info.ids, self.info.sizes, strict=True)
        ]

    def sheet_path(self, cluster: int) -> str:
        self._check_cluster(cluster)
        path = os.path.join(
            self.config.clusters_dir, "montages", contact_sheets.sheet_name(cluster)
        )
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no contact sheet for cluster {cluster}: run cluster again")
        return path

    def rename(self, cluster: int, name: str) -> dict[int, str]:
        """Saves `name` ("" removes it) into cluster_names.json, atomically; returns all."""
        self._check_cluster(cluster)
        names = contact_sheets.read_cluster_names(self.names_path)
        name = str(name).strip()
        problem = contact_sheets.name_problem(name) if name else ""
        if problem:
            raise ExploreError(f"the name {name!r} {problem}")
        taken = [c for c, n in names.items() if n.lower() == name.lower() and c != cluster]
        if name and taken:
            raise ExploreError(f"the name {name!r} is cluster {taken[0]}'s already")
        names.pop(cluster, None)
        if name:
            names[cluster] = name
        io_utils.write_json(self.names_path, {str(c): n for c, n in sorted(names.items())})
        return names

    def where_it_edits(self, cluster: int) -> bytes:
        """PNG: mean |translation - input| over the run's first images, as a heat map over
        their mean face (computed once per cluster)."""
        self._check_cluster(cluster)
        if cluster not in self._heatmaps:
            inputs = [self.run_image_bytes(i) for i in range(self.heatmap_images)]
            inputs = [b for b in inputs if b is not None]
            outputs = self._translate(inputs, bc.Target(cluster, cluster=cluster))
            self._heatmaps[cluster] = _heatmap(inputs, outputs, self.config.data.crop_size)
        return self._heatmaps[cluster]

    # ------------------------------------------------------------------ photos
    def run_images(self) -> list[str]:
        """The run's images (relative paths), as the clustering stage lists them."""
        if self._run_images is None:
            try:
                self._run_images = images_lib.scan_images(sources.images_dir(self.config)).images
            except FileNotFoundError:  # the run's inputs are gone: photos can still be uploaded
                self._run_images = []
        return self._run_images

    def run_image_bytes(self, index: int) -> bytes | None:
        images = self.run_images()
        if not 0 <= index < len(images):
            return None
        try:
            return common.read_image_bytes(
                os.path.join(sources.images_dir(self.config), images[index])
            )
        except (ValueError, OSError):
            return None

    def add_photo(self, data: bytes, name: str) -> dict:
        """Decodes an uploaded photo, finds its faces; returns its id and faces for the page."""
        rgb = _decode(data, name)
        return self._keep_photo(Photo(name, rgb, self._find_faces(rgb)))

    def add_run_image(self, index: int) -> dict:
        data = self.run_image_bytes(index)
        if data is None:
            raise ExploreError(f"the run has no readable image {index}")
        name = self.run_images()[index]
        return self._keep_photo(Photo(name, common.decode(data, name), []))

    def photo(self, photo_id: str) -> Photo:
        if photo_id not in self.photos:
            raise ExploreError("that photo is no longer here (the page keeps 16): upload it again")
        return self.photos[photo_id]

    def _keep_photo(self, photo: Photo) -> dict:
        photo_id = secrets.token_hex(8)
        self.photos[photo_id] = photo
        while len(self.photos) > MAX_PHOTOS:
            self.photos.popitem(last=False)
        h, w = photo.rgb.shape[:2]
        return {
            "id": photo_id,
            "width": w,
            "height": h,
            "faces": [[round(v, 1) for v in f.face.box] for f in photo.found],
        }

    def _find_faces(self, rgb: np.ndarray) -> list[faces.AlignedFace]:
        p = self.config.prepare
        if not faces.detector_available(p.detector):
            return []
        detector = faces.make_detector(p.detector, min_face_size=p.min_face_size)
        with self.lock:
            return faces.find_faces(
                rgb, detector, size=p.aligned_size, min_face_size=p.min_face_size
            )

    # ------------------------------------------------------------------ groups
    def add_group(self, files: Sequence[tuple[str, bytes]]) -> dict:
        """A reference group from several photos: each one's largest face (or the whole
        image when none is found), their statistics as a condition."""
        if not files:
            raise ExploreError("choose one or more photos for the group")
        crops = []
        for name, data in files:
            rgb = _decode(data, name)
            found = self._find_faces(rgb)
            crops.append(
                common.png_bytes(max(found, key=lambda f: f.face.size).crop if found else rgb)
            )
        with self.lock:
            ref = bc.reference_condition(self.backend.predict, crops)
        group_id = secrets.token_hex(8)
        self.groups[group_id] = ref
        while len(self.groups) > MAX_PHOTOS:
            self.groups.popitem(last=False)
        return {
            "id": group_id,
            "images": len(crops),
            "nearest_cluster": ref.nearest_cluster,
            "relative_distance": round(ref.relative_distance, 3),
            "warning": ref.warning("the group") if ref.far else "",
        }

    # ------------------------------------------------------------------ edits
    def target(self, clusters: dict, group: str = "", shared=None) -> bc.Target:
        """The edit's target from the page: {cluster id: strength}, or a group id (with
        `shared`, a strength: only what the group's photos have in common)."""
        if group:
            if group not in self.groups:
                raise ExploreError("that reference group is no longer here: make it again")
            condition = self.groups[group].condition
            if shared is None:
                return bc.Target("group", condition=condition)
            alpha = bc.check_strength(shared, "strength of what the group shares")
            return bc.Target(
                f"group_shared_s{alpha:g}", condition=condition, strength=alpha, shared=True
            )
        if not clusters:
            raise ExploreError("choose a cluster (or a reference group) to move toward")
        pairs = []
        for key, value in clusters.items():
            cluster = int(key) if str(key).lstrip("-").isdigit() else -1
            self._check_cluster(cluster)
            pairs.append((cluster, bc.check_strength(value, f"strength of cluster {cluster}")))
        if len(pairs) == 1:
            return bc.Target(pairs[0][0], cluster=pairs[0][0], strength=pairs[0][1])
        total = sum(w for _, w in pairs)
        if total > sig.MAX_STRENGTH * (1 + 1e-6):
            raise ExploreError(f"the strengths sum to {total:g}; at most {sig.MAX_STRENGTH:g}")
        return bc.Target("mix", weights=bc.weight_vector(pairs, self.k))

    def edit(self, photo_id: str, face: int, target: bc.Target) -> np.ndarray:
        """The photo with one face (or the whole image as a face) moved toward `target`."""
        photo = self.photo(photo_id)
        if face == WHOLE_IMAGE:
            (png,) = self._translate([common.png_bytes(photo.rgb)], target)
            return common.decode(png)
        if not 0 <= face < len(photo.found):
            raise ExploreError(f"the photo has no face {face} ({len(photo.found)} found)")

        def translate(crops: list[np.ndarray]) -> list[np.ndarray]:
            pngs = self._translate([common.png_bytes(c) for c in crops], target)
            return [common.decode(p) for p in pngs]

        return faces.paste_translations(
            photo.rgb,
            [photo.found[face]],
            translate,
            crop_size=self.config.data.crop_size,
            feather=self.config.prepare.paste_feather,
            full_resolution=self.backend.full_resolution,
        )

    def before(self, photo_id: str, face: int) -> np.ndarray:
        """What the edit is compared with: the photo, or for a whole-image edit the part of
        it the model sees (its centre square at full resolution, or the model's size)."""
        photo = self.photo(photo_id)
        if face != WHOLE_IMAGE:
            return photo.rgb
        square = faces.centre_square(_squared(photo.rgb), self.config.data.crop_size)
        if self.backend.full_resolution:
            return square
        size = self.config.model.image_size
        return np.asarray(Image.fromarray(square).resize((size, size), Image.BICUBIC))

    def _translate(self, encoded: list[bytes], target: bc.Target) -> list[bytes]:
        fn = bc.translation_function(
            self.backend.predict,
            target,
            num_clusters=self.k,
            full_resolution=self.backend.full_resolution,
            plain=self.backend.translate_bytes,
        )
        with self.lock:
            return fn(encoded)

    def _check_cluster(self, cluster: int) -> None:
        if not 0 <= cluster < self.k:
            raise ExploreError(f"cluster {cluster} does not exist (ids are 0..{self.k - 1})")


def _squared(rgb: np.ndarray) -> np.ndarray:
    """The central square of an image (the model's framing with --crop_size=0)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def _decode(data: bytes, name: str) -> np.ndarray:
    """An uploaded image, upright (the pipeline's decoder), or one ExploreError line."""
    if not data:
        raise ExploreError(f"{name}: the file is empty")
    try:
        size = Image.open(io.BytesIO(data)).size
    except Exception:  # noqa: BLE001 - decode_rgb below says what is wrong
        size = (0, 0)
    if size[0] * size[1] > MAX_PHOTO_PIXELS:
        raise ExploreError(
            f"{name}: {size[0]}x{size[1]} is {size[0] * size[1] / 1e6:.0f} MP; the page takes "
            f"photos up to {MAX_PHOTO_PIXELS / 1e6:.0f} MP: shrink it first"
        )
    try:
        return common.decode(data, name)
    except common.ImageError as e:
        raise ExploreError(str(e)) from None


_INFERNO = np.array(  # a perceptual dark-to-bright colour scale (matplotlib's inferno, 6 stops)
    [[0, 0, 4], [66, 10, 104], [147, 38, 103], [221, 81, 58], [252, 165, 10], [252, 255, 164]],
    np.float32,
)


def _heatmap(inputs: list[bytes], outputs: list[bytes], crop_size: int, size: int = 128) -> bytes:
    """PNG: the mean absolute edit over the images, coloured, over their mean (grey) face."""
    edits, grey = [], []
    for data, out in zip(inputs, outputs, strict=True):
        after = Image.fromarray(common.decode(out)).resize((size, size), Image.BICUBIC)
        square = faces.centre_square(_squared(common.decode(data)), crop_size)
        before = Image.fromarray(square).resize((size, size), Image.BICUBIC)
        a, b = np.asarray(after, np.float32), np.asarray(before, np.float32)
        edits.append(np.abs(a - b).mean(axis=2))
        grey.append(b.mean(axis=2))
    strength = np.clip(np.mean(edits, axis=0) / 64.0, 0.0, 1.0)  # 64 levels = full scale
    position = strength * (len(_INFERNO) - 1)
    low = np.floor(position).astype(int).clip(0, len(_INFERNO) - 2)
    t = (position - low)[..., None]
    colour = _INFERNO[low] * (1 - t) + _INFERNO[low + 1] * t
    face = np.repeat(np.mean(grey, axis=0)[..., None], 3, axis=2)
    alpha = np.clip(strength * 1.5, 0.25, 1.0)[..., None]
    return common.png_bytes(np.clip(alpha * colour + (1 - alpha) * face, 0, 255).astype(np.uint8))


def download_name(photo: Photo, target: bc.Target) -> str:
    """A safe file name for the edited photo (never a path the browser sent)."""
    stem = (
        "".join(
            ch if ch.isalnum() or ch in "-_" else "_"
            for ch in os.path.splitext(os.path.basename(photo.name))[0]
        )[:60]
        or "photo"
    )
    label = target.label if isinstance(target.label, str) else f"c{target.label:03d}"
    return f"{stem}_{label}.png"


def page_info(explorer: Explorer) -> dict:
    """What the page needs to know of the run and the model."""
    return {
        "clusters": explorer.k,
        "source": explorer.backend.source,
        "full_resolution": explorer.backend.full_resolution,
        "max_strength": sig.MAX_STRENGTH,
        "faces": faces.detector_available(explorer.config.prepare.detector),
        "run_images": len(explorer.run_images()),
        "whole_image": WHOLE_IMAGE,
    }
