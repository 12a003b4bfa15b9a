"""tools.bench_train: the CPU line names oneDNN's instruction-set cap; the conv peak runs all 3 passes."""

from __future__ import annotations

import numpy as np

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


def test_conv_reference_step_runs_the_forward_conv():
    """The peak's gradients are those of sum(y**2)/2, which need y = conv(x, w): a numpy
    check. With sum(y) (the old bench) dL/dw was the sum of x's patches, the forward conv
    never ran, and the peak counted a pass it did not time."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    # patches[n, h, w, i, j, c] = padded[n, h + i, w + j, c]
    patches = np.stack(
        [np.stack([padded[:, i : i + 5, j : j + 4] for j in range(3)], 3) for i in range(3)], 3
    )
    y = np.einsum("nhwijc,ijcd->nhwd", patches, w)
    want_dw = np.einsum("nhwijc,nhwd->ijcd", patches, y)
    want_dx = np.zeros_like(padded)  # dL/dx: each output's y scattered back through w
    for i in range(3):
        for j in range(3):
            want_dx[:, i : i + 5, j : j + 4] += np.einsum("nhwd,cd->nhwc", y, w[i, j])
    dx, dw = bench_train.conv_reference_step()(x, w)
    np.testing.assert_allclose(dw.numpy(), want_dw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx.numpy(), want_dx[:, 1:-1, 1:-1], rtol=1e-4, atol=1e-4)
