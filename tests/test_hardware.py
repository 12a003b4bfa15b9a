"""`--mixed_precision=auto`: bfloat16 only where the CPU has AMX bfloat16 units and no GPU."""

import pytest

from xplore_tf import hardware

SAPPHIRE_RAPIDS = {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
ZEN4 = {"avx2", "fma", "avx512f", "avx512_bf16"}  # bfloat16 dot products, no AMX
AVX2_ONLY = {"avx2", "fma"}


@pytest.mark.parametrize(
    "name, flags, gpus, onednn, expected",
    [
        ("auto", SAPPHIRE_RAPIDS, 0, True, "mixed_bfloat16"),
        ("auto", SAPPHIRE_RAPIDS, 1, True, "float32"),  # GPUs: the user picks mixed_float16
        ("auto", SAPPHIRE_RAPIDS, 0, False, "float32"),  # TF's own kernels would emulate
        ("auto", ZEN4, 0, True, "float32"),  # not measured: stays float32
        ("auto", AVX2_ONLY, 0, True, "float32"),  # never emulated
        ("auto", set(), 0, True, "float32"),  # /proc/cpuinfo unreadable
        ("none", SAPPHIRE_RAPIDS, 0, True, "float32"),
        ("mixed_bfloat16", AVX2_ONLY, 0, False, "mixed_bfloat16"),  # asked for explicitly
        ("mixed_float16", AVX2_ONLY, 1, True, "mixed_float16"),
    ],
)
def test_resolve_mixed_precision(name, flags, gpus, onednn, expected):
    got = hardware.resolve_mixed_precision(
        name, flags=flags, gpus=gpus, onednn=onednn, isa_cap=None
    )
    assert got == expected


@pytest.mark.parametrize(
    "cap, expected",
    [
        (None, "mixed_bfloat16"),
        ("AVX2", "float32"),  # an AVX2-only CPU's kernels, timed on a newer one
        ("AVX512_CORE_BF16", "float32"),  # bfloat16 dot products, no AMX
        ("AVX512_CORE_AMX", "mixed_bfloat16"),
        ("AVX10_1_512_AMX", "mixed_bfloat16"),
    ],
)
def test_auto_precision_follows_onednn_isa_cap(cap, expected):
    got = hardware.resolve_mixed_precision(
        "auto", flags=SAPPHIRE_RAPIDS, gpus=0, onednn=True, isa_cap=cap
    )
    assert got == expected


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"ONEDNN_MAX_CPU_ISA": "avx2"}, "AVX2"),
        ({"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, "AVX512_CORE"),  # oneDNN 1.x's name
        ({"ONEDNN_MAX_CPU_ISA": "ALL"}, None),
        ({"ONEDNN_MAX_CPU_ISA": "default"}, None),
        ({"ONEDNN_MAX_CPU_ISA": "AVX3"}, None),  # oneDNN ignores names it does not know
    ],
)
def test_onednn_isa_cap_reads_the_environment(monkeypatch, env, expected):
    for key in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert hardware.onednn_isa_cap() == expected


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--mixed_precision: expected one of auto, none.*'fp8'"):
        hardware.resolve_mixed_precision("fp8", flags=set(), gpus=0, onednn=True)


def test_cpu_flags_reads_the_first_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nflags\t\t: other\n")
    assert hardware.cpu_flags(str(info)) == {"fpu", "avx2", "amx_bf16"}
    assert hardware.cpu_flags(str(tmp_path / "missing")) == set()
