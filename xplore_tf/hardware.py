"""What this machine's CPU computes natively, for choices TensorFlow does not make itself.

`resolve_mixed_precision("auto")` picks Keras' `mixed_bfloat16` policy on CPUs with AMX
bfloat16 tile units (`amx_bf16` in /proc/cpuinfo: Intel Sapphire Rapids and later) when no
GPU is visible, and full float32 everywhere else: oneDNN runs bfloat16 convolutions on AMX
several times faster than float32 (measurements:
docs/experiments/2026-12-05-readme-measurements.md, "What the trainer picks for the CPU").
CPUs with only AVX512_BF16 (no AMX) stay in float32, and
nothing is ever emulated: a CPU without bfloat16 units, TensorFlow's own kernels
(`TF_ENABLE_ONEDNN_OPTS=0`), or oneDNN capped below AMX (`ONEDNN_MAX_CPU_ISA=AVX2`, oneDNN's
CPU dispatcher control, which `tools.bench_train --max_cpu_isa` uses to time an older CPU's
kernels on a newer one) keeps float32.
"""

from __future__ import annotations

import os

PRECISIONS = ("auto", "none", "mixed_float16", "mixed_bfloat16")
# oneDNN's names for ONEDNN_MAX_CPU_ISA (its "CPU Dispatcher Control" guide); it ignores others.
ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX10_1_512",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512_AMX_FP16",
)
_FROM_ENVIRONMENT = object()  # resolve_mixed_precision's default: read the variable


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (first `flags` line of /proc/cpuinfo); empty where unreadable
    (not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def onednn_isa_cap() -> str | None:
    """The highest instruction set oneDNN may use, as set by `ONEDNN_MAX_CPU_ISA` (or its older
    name `DNNL_MAX_CPU_ISA`) in upper case, e.g. "AVX2"; None when unset, "ALL" / "DEFAULT"
    or a name oneDNN does not know (it ignores those: no cap). oneDNN reads the variable
    once, at its first kernel."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    cap = cap.strip().upper()
    return cap if cap in ONEDNN_ISAS else None


def resolve_mixed_precision(
    name: str,
    *,
    flags: set[str] | None = None,
    gpus: int | None = None,
    onednn: bool | None = None,
    isa_cap: str | None | object = _FROM_ENVIRONMENT,
):
    """The Keras policy name for `--mixed_precision=name`: "auto" becomes "mixed_bfloat16" on
    an AMX-bfloat16 CPU without a visible GPU with oneDNN's kernels on (the ones that use
    AMX; TensorFlow's own would emulate bfloat16) and not capped below AMX (`isa_cap`, see
    `onednn_isa_cap`), else "float32"; "none" is "float32"; the others pass through.
    `flags` / `gpus` / `onednn` default to this machine's and process's, `isa_cap` to
    `onednn_isa_cap()` (tests pass their own; None = no cap).

    Raises:
        ValueError: a name outside PRECISIONS.
    """
    if name not in PRECISIONS:
        raise ValueError(
            f"--mixed_precision: expected one of {', '.join(PRECISIONS)}, got {name!r}"
        )
    if name == "none":
        return "float32"
    if name != "auto":
        return name
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    flags = cpu_flags() if flags is None else flags
    if onednn is None:  # `import xplore_tf` sets it to 1 unless the user chose
        onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    if isa_cap is _FROM_ENVIRONMENT:
        isa_cap = onednn_isa_cap()
    amx = "amx_bf16" in flags and (isa_cap is None or "AMX" in isa_cap)
    return "mixed_bfloat16" if amx and onednn and not gpus else "float32"


__all__ = ["ONEDNN_ISAS", "PRECISIONS", "cpu_flags", "onednn_isa_cap", "resolve_mixed_precision"]
