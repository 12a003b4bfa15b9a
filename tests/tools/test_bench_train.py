"""tools.bench_train's CPU line names oneDNN's instruction-set cap when one is set."""

from __future__ import annotations

from tools import bench_train


def test_cpu_line_names_the_onednn_cap(monkeypatch):
    monkeypatch.setattr(bench_train.hardware, "cpu_flags", lambda: {"avx2", "fma", "amx_bf16"})
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert bench_train.cpu_flags() == "avx2 fma amx_bf16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert bench_train.cpu_flags() == "avx2 fma amx_bf16; oneDNN capped at AVX2"
    monkeypatch.setattr(bench_train.hardware, "cpu_flags", lambda: {"sse4_2"})
    assert bench_train.cpu_flags() == "no AVX2; oneDNN capped at AVX2"
