"""tools.bench_input: the training pipeline's images/s over a folder, and its bad input."""

from __future__ import annotations

import pytest
from tests_support import make_folder

from tools import bench_input


def test_prints_the_pipelines_images_per_second(tmp_path, capsys):
    make_folder(str(tmp_path))  # 36 images and one broken file, which the pipeline skips
    args = [f"--images_dir={tmp_path}", "--image_size=16", "--batch_size=4", "--batches=12"]
    assert bench_input.main([*args, "--warmup=2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("input pipeline: ") and "(16 px, batch 4, 12 batches" in line
    assert float(line.split()[2]) > 0


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=f"--images_dir={tmp_path}: no images found"):
        bench_input.images_per_second(
            str(tmp_path), image_size=16, batch_size=4, batches=1, warmup=0
        )
