"""gRPC client of an exported xplore_tf model served by TF Serving (`tensorflow_model_server`).

    python -m serving.client --server=HOST:8500 --model=xplore --image=in.jpg --cluster=12 --out=out.png
    python -m serving.client --image=a.jpg,b.png --cluster=blond --out=outdir/
    python -m serving.client --image=a.jpg --image=b.png --all_clusters --out=grid.png
    python -m serving.client --image=photo.jpg --cluster=12 --paste_back --out=photo_c12.png
    python -m serving.client --image=a.jpg --cluster=12 --strength=0.5 --out=outdir/
    python -m serving.client --image=a.jpg --cluster=12:1.0,31:0.5 --out=outdir/
    python -m serving.client --image=a.jpg --reference_dir=blond_photos/ --out=outdir/
    python -m serving.client --image=a.jpg --reference_dir=blond_photos/ --reference_edit=shared --out=outdir/
    python -m serving.client --image=a.jpg --cluster=blond --keep=men --out=outdir/

It needs `tensorflow-serving-api` (gRPC stubs and protos), numpy and Pillow, and of
xplore_tf only its bottom layer, `xplore_tf/common/` (the image decoder, the signature
names, faces, the Predict API from numpy: `predict_client`), never the model code. No
TensorFlow op is run. (Importing `tensorflow_serving.apis` still imports the `tensorflow`
package, which its protos live in: a few seconds of start-up, nothing more.)

Each image comes back at its own resolution by default (`--output_resolution=input`): the
`translate_full` signatures add the edit the generator makes at its size to the image's
centre square at full size (xplore_tf/edit.py); `--output_resolution=model` returns the
generator's output at its resolution (a model exported without those signatures falls back
to it with a warning). Images travel encoded (the file's own bytes when the model decodes
them in-graph exactly as training does (PNG, JPEG, GIF, 24/32-bit BMP), else a lossless PNG
of those pixels (WebP, other BMPs); PNG out); `--signature=serving_default
--output_resolution=model` sends decoded uint8 pixels instead. Every input is decoded locally first, by the rules of
`xplore_tf.common.pixels.decode_rgb`: an unreadable file is one error line naming it. `--cluster` takes an id
or a name from the model's cluster list (`clusters_batched`, which TF Serving can batch;
`clusters` for older exports; names come from cluster_names.json at export time). gRPC
errors end the program with one line, `CODE: details`, and exit status 2.

The client parses its own command line (argparse) rather than the xplore_tf flags module:
the one-flags-module rule covers the `python -m xplore_tf.<stage>` binaries.

Beyond fixed clusters (docs/guide/beyond_clusters.md, `xplore_tf/common/beyond_clusters.py`): `--strength` and
weights in `--cluster` become cluster weights (`translate_full`; at the model's resolution
`translate_strength`, `translate_mix`), `--reference_dir` asks `reference_condition`
for the folder's statistics (warning when the group lies far from every training cluster),
then `translate_full_condition` (`translate_condition`) (with `--reference_edit=shared`,
`shared_condition` gives each image's condition first), and `--keep` asks `mix_condition`
for each image's condition without the kept clusters' directions, then the same.

`--paste_back` (needs the face detector: `pip install "xplore_tf[prepare]"`) treats each
image as a photo: `xplore_tf/common/faces.py` detects and aligns its faces, each aligned crop is
translated by the server and only its change is added back to the photo (at the model's
resolution: the output warped back and blended in), and the whole photo is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from xplore_tf.common import beyond_clusters as bc
from xplore_tf.common import faces
from xplore_tf.common import pixels as common
from xplore_tf.common import signatures as sig
from xplore_tf.common.predict_client import ServingClient, ServingError


def _translate_pngs(
    client: ServingClient, signature: str, encoded: list[bytes], ids: list[int]
) -> list[bytes]:
    if signature == sig.TRANSLATE_BYTES:
        return client.translate_bytes(encoded, ids)
    # serving_default: decoded pixels, one request per image (sizes may differ).
    pngs = []
    for data, c in zip(encoded, ids, strict=True):
        pngs.append(common.png_bytes(client.translate(common.decode(data)[None], [c])[0]))
    return pngs


def _grid_translate(
    client: ServingClient, args: argparse.Namespace
) -> Callable[[list[bytes], list[int]], list[bytes]]:
    """`translate(encoded, ids) -> pngs` for the --all_clusters grid."""

    def translate(batch: list[bytes], ids: list[int]) -> list[bytes]:
        if args.strength is None:
            return _translate_pngs(client, args.signature, batch, ids)
        strengths = [args.strength] * len(ids)
        return bc.translate_strength(
            client.predict, batch, ids, strengths, max_batch=client.max_batch
        )[0]

    return translate


def _check_paste_back(args: argparse.Namespace) -> None:
    if args.all_clusters:
        raise ValueError("--paste_back writes whole photos into one cluster: pass --cluster")
    if not faces.detector_available(args.detector):
        raise ValueError(f"--paste_back: {faces.MISSING_DETECTOR.format(name=args.detector)}")
    if args.aligned_size < 16:
        raise ValueError(f"--aligned_size must be >= 16 px, got {args.aligned_size}")
    if not 0.0 < args.paste_feather <= 0.5:
        raise ValueError(f"--paste_feather must be in (0, 0.5], got {args.paste_feather}")


def _paste_back(
    args: argparse.Namespace,
    path: str,
    data: bytes,
    translate_pngs: Callable[[list[bytes]], list[bytes]],
    full_resolution: bool,
) -> bytes:
    """PNG bytes of the photo with every face translated by the server (`translate_pngs`)."""
    options = faces.PasteOptions(
        detector=args.detector,
        faces=args.faces,
        aligned_size=args.aligned_size,
        min_face_size=args.min_face_size,
        min_face_score=args.min_face_score,
        feather=args.paste_feather,
        crop_size=args.crop_size,
        full_resolution=full_resolution,
    )
    photo, found = faces.translate_photo(
        common.decode(data, path),
        translate_pngs,
        options,
    )
    if not found:
        print(f"serving.client: warning: {path}: no face found; written unchanged", file=sys.stderr)
    return common.png_bytes(photo)


def _check_beyond(args: argparse.Namespace) -> list[tuple[str, float]] | None:
    """Checks the beyond-clusters options; returns --cluster's weights (None: plain)."""
    bc.check_reference_options(
        args.reference_dir,
        args.reference_edit,
        cluster=args.cluster is not None,
        all_clusters=args.all_clusters,
        strength=args.strength is not None,
    )
    weights = bc.parse_cluster_weights(args.cluster) if args.cluster is not None else None
    args.keep = bc.parse_keep(
        args.keep, all_clusters=args.all_clusters, reference_dir=args.reference_dir
    )
    if args.strength is not None:
        args.strength = bc.check_strength(args.strength)
        if weights is not None:
            raise ValueError(
                f"--strength applies to one --cluster; --cluster={args.cluster} has weights "
                "already (scale them instead)"
            )
    uses_beyond = (
        args.reference_dir or weights is not None or args.strength is not None or args.keep
    )
    full = args.output_resolution == sig.INPUT_RESOLUTION and not args.all_clusters
    if full and args.signature != sig.TRANSLATE_BYTES:
        raise ValueError(
            f"--signature={args.signature} answers at the model's resolution: add "
            f"--output_resolution={sig.MODEL_RESOLUTION}"
        )
    if uses_beyond and args.signature != sig.TRANSLATE_BYTES:
        raise ValueError(
            "--strength, --reference_dir, --keep and cluster weights send encoded bytes: drop "
            f"--signature={args.signature}"
        )
    return weights


def _target(
    client: ServingClient, args: argparse.Namespace, weights: list[tuple[str, float]] | None
) -> tuple[bc.Target, common.ClusterInfo | None]:
    """The resolved target of the command line (and the cluster list, when it was asked)."""
    if args.reference_dir:
        group = bc.read_reference_images(args.reference_dir)
        for rel, reason in group.skipped:
            print(
                f"serving.client: warning: --reference_dir: skipping {rel}: {reason}",
                file=sys.stderr,
            )
        ref = bc.reference_condition(client.predict, group.encoded)
        if ref.far:
            print(f"serving.client: warning: {ref.warning(args.reference_dir)}", file=sys.stderr)
        target = bc.reference_target(
            args.reference_dir, ref, edit=args.reference_edit, strength=args.strength
        )
        return target, None
    if weights is not None:
        info = client.clusters()
        resolved = [(common.resolve_cluster(t, info), w) for t, w in weights]
        vector = bc.weight_vector(resolved, len(info.ids))
        return bc.Target(bc.mix_label(resolved), weights=vector), info
    info = None if common.is_cluster_id(args.cluster) else client.clusters()
    cluster = common.resolve_cluster(args.cluster, info)
    label = cluster if args.strength is None else bc.strength_label(cluster, args.strength)
    return bc.Target(label, cluster=cluster, strength=args.strength), info


def _translation(
    client: ServingClient,
    args: argparse.Namespace,
    weights: list[tuple[str, float]] | None,
    full_resolution: bool,
) -> tuple[Callable[[list[bytes]], list[bytes]], int | str]:
    """(encoded images -> PNG bytes, output label) for the chosen target."""
    target, info = _target(client, args, weights)
    target = bc.keep_target(target, args.keep, client.clusters)
    if full_resolution and target.cluster is not None and info is None:
        info = client.clusters()
    fn = bc.translation_function(
        client.predict,
        target,
        num_clusters=len(info.ids) if info else 0,
        full_resolution=full_resolution,
        plain=lambda pngs, ids: _translate_pngs(client, args.signature, pngs, ids),
        max_batch=client.max_batch,
    )
    return fn, target.label


def _full_resolution(client: ServingClient, args: argparse.Namespace) -> bool:
    """Whether to ask the `translate_full*` signatures: --output_resolution=input and the
    served model has them (else a warning, and the model's resolution)."""
    if args.output_resolution != sig.INPUT_RESOLUTION or args.all_clusters:
        return False
    if sig.TRANSLATE_FULL in client.signature_names():
        return True
    print(
        f"serving.client: warning: the served model has no {sig.TRANSLATE_FULL} signature "
        "(exported before it existed or without its clustering extractor; export it again): "
        "output at the model's resolution",
        file=sys.stderr,
    )
    return False


def run(args: argparse.Namespace) -> list[str]:
    """Does what the command line asks; returns the files written."""
    paths = common.split_paths(args.image)
    if not paths:
        raise ValueError("--image is required (a file, a comma list, or repeated)")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"--image: no such file: {', '.join(missing)}")
    if not args.all_clusters and args.cluster is None and not args.reference_dir:
        raise ValueError("pass --cluster=ID_OR_NAME, --all_clusters or --reference_dir=DIR")
    if args.all_clusters and args.cluster is not None:
        raise ValueError(f"pass --cluster={args.cluster} or --all_clusters, not both")
    weights = _check_beyond(args)
    if args.paste_back:
        _check_paste_back(args)
    # Decoded here first by the training pipeline's rules (pixels.decode_rgb): a file
    # that cannot be read is one line naming it, before any request.
    encoded = [common.read_image_bytes(p) for p in paths]
    written = []
    with ServingClient(
        args.server,
        args.model,
        version=args.version,
        timeout=args.timeout,
        max_batch=args.max_batch,
    ) as client:
        if args.all_clusters:
            path = common.grid_path(args.out)
            grid = common.all_clusters_grid(
                client.clusters(), encoded, _grid_translate(client, args)
            )
            common.write_file(path, common.png_bytes(grid))
            return [path]
        full = _full_resolution(client, args)
        translate_pngs, label = _translation(client, args, weights, full)
        outputs = common.output_paths(args.out, paths, [label] * len(paths))
        if args.paste_back:
            pngs = [
                _paste_back(args, p, data, translate_pngs, full)
                for p, data in zip(paths, encoded, strict=True)
            ]
        else:
            pngs = translate_pngs(encoded)
        for path, png in zip(outputs, pngs, strict=True):
            common.write_file(path, png)
            written.append(path)
    return written


# long: a flat list of add_argument calls, read as a table of the client's flags
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m serving.client",
        description="Translate faces into attribute clusters with a served xplore_tf model.",
    )
    p.add_argument(
        "--server", default="localhost:8500", help="gRPC HOST:PORT (default %(default)s)"
    )
    p.add_argument(
        "--model", default=sig.DEFAULT_MODEL_NAME, help="model_spec.name (default %(default)s)"
    )
    p.add_argument(
        "--version", type=int, default=None, help="model version (default: the latest served)"
    )
    p.add_argument(
        "--image",
        action="append",
        help="input image file(s): repeat the flag or give a comma list (JPEG/PNG/GIF/BMP/WebP)",
    )
    p.add_argument(
        "--cluster",
        default=None,
        help="target cluster: an id in [0, k) or a name; or several with weights, "
        "ID_OR_NAME:WEIGHT,... (e.g. 12:1.0,31:0.5; docs/guide/beyond_clusters.md)",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=None,
        help="attribute strength toward --cluster: 0 = the input's own cluster, 1 = the "
        f"target's, up to {sig.MAX_STRENGTH:g} extrapolates (default: the plain translation); "
        "with --reference_edit=shared, how far to move by what the group shares",
    )
    p.add_argument(
        "--reference_dir",
        default="",
        help="translate toward the statistics of this folder's images (a reference group) "
        "instead of a cluster",
    )
    p.add_argument(
        "--reference_edit",
        default=bc.GROUP,
        choices=bc.REFERENCE_EDITS,
        help="with --reference_dir: group = take the group's whole statistics; shared = keep "
        "each input's own and add only what the group's members have in common "
        "(--strength scales it, default 1)",
    )
    p.add_argument(
        "--keep",
        default="",
        help="clusters (ids or names, comma-separated) whose direction the edit keeps: into "
        "a cluster of blond women, --keep=<the men's cluster> keeps men male "
        "(docs/guide/beyond_clusters.md)",
    )
    p.add_argument(
        "--all_clusters",
        action="store_true",
        help="write one grid: rows = input images, columns = the input then every cluster",
    )
    p.add_argument(
        "--out",
        required=True,
        help="a .png file (one output or the grid), a folder (<stem>_c<cluster>.png), or a "
        "pattern with {stem}, {index}, {cluster}",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per RPC (default %(default)s)"
    )
    p.add_argument(
        "--max_batch", type=int, default=16, help="images per request (default %(default)s)"
    )
    p.add_argument(
        "--signature",
        choices=[sig.TRANSLATE_BYTES, sig.SERVING_DEFAULT],
        default=sig.TRANSLATE_BYTES,
        help="send encoded bytes (default) or decoded uint8 pixels",
    )
    p.add_argument(
        "--output_resolution",
        choices=sig.OUTPUT_RESOLUTIONS,
        default=sig.INPUT_RESOLUTION,
        help="input: each image back at its own resolution, the model's edit added to it "
        "(what the model does not change keeps its pixels); model: the model's output at its "
        "resolution (default %(default)s; --all_clusters grids are at the model's)",
    )
    g = p.add_argument_group(
        "paste-back (needs the face detector: pip install 'xplore_tf[prepare]')"
    )
    g.add_argument(
        "--paste_back",
        action="store_true",
        help="detect and align every face of each image, translate each aligned crop, blend "
        "it back with a feathered mask and write the whole photo",
    )
    g.add_argument(
        "--detector",
        choices=faces.DETECTORS,
        default=faces.DEFAULT_DETECTOR,
        help="face detector (default %(default)s)",
    )
    g.add_argument(
        "--faces",
        choices=["all", "largest"],
        default="all",
        help="which faces to translate (default %(default)s)",
    )
    g.add_argument(
        "--aligned_size",
        type=int,
        default=128,
        help="px of the aligned crops sent to the model (default %(default)s)",
    )
    g.add_argument(
        "--min_face_size",
        type=int,
        default=20,
        help="skip faces whose box is smaller, px (default %(default)s)",
    )
    g.add_argument(
        "--min_face_score",
        type=float,
        default=0.0,
        help="skip faces the detector scores lower (default %(default)s)",
    )
    g.add_argument(
        "--paste_feather",
        type=float,
        default=0.12,
        help="soft edge of the paste mask, fraction of the crop side (default %(default)s)",
    )
    g.add_argument(
        "--crop_size",
        type=int,
        default=0,
        help="the model's --crop_size at export (its own centre crop; default 0 = none)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        written = run(args)
    except (ServingError, ValueError, OSError) as e:
        print(f"serving.client: error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
