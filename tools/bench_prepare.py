"""Speed and accuracy of face preparation (detect + align) on this CPU.

    python -m tools.bench_prepare                       # photos/s at 1024 px, every detector
    python -m tools.bench_prepare --compare --num=200   # detection rate + eye error on the
                                                        # synthetic in-the-wild set (needs
                                                        # ../shared/data/celeba10k)
    python -m tools.bench_prepare --measure_template --detector=mtcnn --num=2000

Speed: `--photos` random 1024 x 768 photos, each with one celeba10k face pasted at a random
scale and rotation (tools/wild_faces.py; a face-free random background when ../shared is
absent), through `xplore_tf.common.faces.find_faces` (decode excluded), after one warm-up photo.
Prints photos/s per detector (wall clock, and CPU time over all threads, which a
machine shared with other jobs inflates less), the CPU model and its SIMD flags.

`--compare`: per detector, the share of pasted faces detected (at --min_face_size, its
default score threshold) and the mean eye-position error of the aligned 128 px crop against
the framing of the original aligned crop (tools/wild_faces.eye_errors), by scale band.

`--measure_template`: the per-coordinate median of a detector's five landmarks over the
first --num celeba10k faces (upscaled 2x to CelebA's 178x218 frame): the constants of
xplore_tf/common/faces.TEMPLATES.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tools import wild_faces  # noqa: E402
from xplore_tf.common import faces, pixels  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELEBA = os.path.join(ROOT, "..", "shared", "data", "celeba10k", "images")
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_description() -> str:
    """'MODEL, N cores, flags: avx2 avx512f ...' from /proc/cpuinfo (platform elsewhere)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    present = [s for s in SIMD if s in flags]
    return f"{model}, {os.cpu_count()} cores, SIMD flags: {' '.join(present) or 'unknown'}"


def _detectors(names: list[str], min_face_size: int) -> list[faces.Detector]:
    out = []
    for name in names:
        if not faces.detector_available(name):
            print(f"{name}: not installed, skipped")
            continue
        out.append(faces.make_detector(name, min_face_size=min_face_size))
    return out


def measure_template(detector: faces.Detector, num: int) -> np.ndarray:
    """Median five landmarks [5,2] of `detector` in CelebA's 178x218 frame (celeba10k faces)."""
    points = []
    for name in wild_faces.list_faces(CELEBA)[:num]:
        rgb = pixels.read_rgb(os.path.join(CELEBA, name))
        frame = np.asarray(
            Image.fromarray(rgb).resize(faces.CELEBA_FRAME, Image.Resampling.BICUBIC), np.uint8
        )
        found = detector.detect(frame)
        if found:
            # resize maps source pixel centres by the frame/source ratio, as resize_matrix
            points.append(found[0].landmarks)
    print(f"{detector.name}: landmarks found in {len(points)}/{num} faces")
    return np.median(np.stack(points), axis=0)


def speed(detectors: list[faces.Detector], photos: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = wild_faces.list_faces(CELEBA) if os.path.isdir(CELEBA) else []
    batch = []
    for i in range(photos + 1):
        if names:
            crop = pixels.read_rgb(os.path.join(CELEBA, names[i % len(names)]))
            photo = wild_faces.make_photo([crop], [names[i]], rng, max_side=1024)
            canvas = wild_faces.background(768, 1024, rng)
            h, w = photo.upright.shape[:2]
            canvas[: min(h, 768), : min(w, 1024)] = photo.upright[:768, :1024]
        else:
            canvas = wild_faces.background(768, 1024, rng)
        batch.append(canvas)
    print(cpu_description())
    for det in detectors:
        faces.find_faces(batch[0], det)  # warm-up (graph tracing, weight loading)
        start, cpu = time.perf_counter(), time.process_time()
        found = sum(len(faces.find_faces(p, det)) for p in batch[1:])
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"{det.name}: {photos / seconds:.2f} photos/s at 1024x768 "
            f"({seconds / photos * 1000:.0f} ms/photo wall, {cpu / photos * 1000:.0f} ms CPU "
            f"over all threads; {found} faces in {photos} photos; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )


def compare(detectors: list[faces.Detector], num: int, seed: int, size: int = 128) -> None:
    rng = np.random.default_rng(seed)
    names = wild_faces.list_faces(CELEBA)[5000 : 5000 + num]  # not the template's faces
    photos = [
        wild_faces.make_photo([pixels.read_rgb(os.path.join(CELEBA, n))], [n], rng, max_side=1024)
        for n in names
    ]
    scales = np.array([wild_faces.faces.matrix_scale(p.matrices[0]) for p in photos])
    scales = scales * photos[0].source_sizes[0][0] / faces.CELEBA_FRAME[0]
    print(cpu_description())
    print(f"{num} photos, one face each, scale 0.3-1.5 of CelebA's 178 px, rotation +-30 deg")
    for det in detectors:
        detected, upright_only, errors, band = 0, 0, [], []
        start = time.perf_counter()
        for p, s in zip(photos, scales, strict=True):
            upright = pixels.decode_rgb(p.data)
            found = det.detect(upright)
            upright_only += wild_faces.match(found, p, 0, size, det.name) is not None
            if not found:  # what find_faces does: search rotated copies
                found = faces.detect_faces(upright, det)
            i = wild_faces.match(found, p, 0, size, det.name)
            if i is None:
                continue
            detected += 1
            m = faces.alignment_matrix(found[i].landmarks, det.name, size)
            errors.append(
                wild_faces.eye_errors(m, p.matrices[0], p.source_sizes[0], size, det.name).mean()
            )
            band.append(s)
        seconds = time.perf_counter() - start
        errors, band = np.array(errors), np.array(band)
        print(
            f"{det.name}: detected {detected}/{num} ({detected / num:.1%}; upright search "
            f"alone {upright_only}/{num}); mean eye error "
            f"{errors.mean():.2f} px at {size} px (median {np.median(errors):.2f}, "
            f"90th pct {np.percentile(errors, 90):.2f}); {num / seconds:.2f} photos/s"
        )
        for lo, hi in ((0.3, 0.6), (0.6, 1.0), (1.0, 1.5)):
            sel = (band >= lo) & (band < hi)
            n_all = int(((scales >= lo) & (scales < hi)).sum())
            if n_all:
                print(
                    f"    scale {lo}-{hi}: detected {sel.sum()}/{n_all}, mean eye error "
                    f"{errors[sel].mean() if sel.any() else float('nan'):.2f} px"
                )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench_prepare", description=__doc__)
    p.add_argument("--detector", action="append", choices=faces.DETECTORS, help="repeatable")
    p.add_argument("--photos", type=int, default=20, help="photos timed (default %(default)s)")
    p.add_argument("--num", type=int, default=200, help="faces for --compare/--measure_template")
    p.add_argument("--min_face_size", type=int, default=20, help="px (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", action="store_true", help="accuracy on the in-the-wild set")
    p.add_argument("--measure_template", action="store_true", help="print TEMPLATES entries")
    args = p.parse_args(argv)
    detectors = _detectors(args.detector or list(faces.DETECTORS), args.min_face_size)
    if (args.compare or args.measure_template) and not os.path.isdir(CELEBA):
        print(f"needs {CELEBA}")
        return 2
    if args.measure_template:
        for det in detectors:
            t = measure_template(det, args.num)
            print(f'    "{det.name}": (')
            for x, y in t:
                print(f"        ({x:.2f}, {y:.2f}),")
            print("    ),")
        return 0
    if args.compare:
        compare(detectors, args.num, args.seed)
        return 0
    speed(detectors, args.photos, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
