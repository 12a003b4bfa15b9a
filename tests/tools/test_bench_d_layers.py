"""tools.bench_d_layers: one timed row per D convolution, naming the form D uses."""

from __future__ import annotations

from tools import bench_d_layers


def test_prints_both_forms_for_every_demo_d_layer(capsys):
    assert bench_d_layers.main(["--preset=demo", "--mixed_precision=none", "--repeats=1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("preset=demo batch=32 policy=none")
    rows = [line.split() for line in lines[2:]]
    # 32 px: StarGAN's 4 downsamplings (16 -> 128 filters, last map 2x2), then the two heads
    assert [r[0] for r in rows] == ["down0", "down1", "down2", "down3", "out_src", "out_cls"]
    assert [r[-1] for r in rows] == ["Conv2D"] * 2 + ["matmul", "matmul", "Conv2D", "matmul"]
    assert all(
        float(r[3].removesuffix("ms")) > 0 and float(r[4].removesuffix("ms")) > 0 for r in rows
    )
