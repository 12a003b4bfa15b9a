"""tools/convert_torch_weights.py: safe loading, unwrapping, atomic npz output."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tools import convert_torch_weights as ctw


def _state(torch):
    g = torch.Generator().manual_seed(0)
    return {
        "conv1.weight": torch.randn(4, 3, 3, 3, generator=g),
        "bn1.running_var": torch.rand(4, generator=g),
        "bn1.num_batches_tracked": torch.tensor(5),
        "fc.weight": torch.randn(2, 4, generator=g).half(),
    }


def _check(npz_path, state):
    with np.load(npz_path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(state)
        for k, v in state.items():
            np.testing.assert_array_equal(
                z[k], v.float().numpy() if v.is_floating_point() else v.numpy()
            )
        assert z["fc.weight"].dtype == np.float32  # half widened
        assert z["bn1.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize(
    "wrap", ["plain", "module", "state_dict", "model", "state_dict_module", "legacy_state_dict"]
)
def test_converts_wrapped_and_prefixed_checkpoints(tmp_path, capsys, wrap):
    torch = pytest.importorskip("torch")
    state = _state(torch)
    obj = state
    if "module" in wrap:
        obj = {f"module.{k}": v for k, v in obj.items()}
    if "state_dict" in wrap:  # bethgelab / texture-vs-shape style
        obj = {"epoch": 60, "arch": "resnet50", "state_dict": obj, "best_prec1": 0.7}
    elif wrap == "model":
        obj = {"model": obj, "step": torch.tensor(3)}
    src = tmp_path / "ckpt.pth.tar"
    # 2019-era checkpoints (BagNet, Stylized-ImageNet) predate the zip format
    torch.save(obj, src, _use_new_zipfile_serialization=not wrap.startswith("legacy"))
    out = tmp_path / "sub" / "w.npz"
    assert ctw.main([str(src), str(out)]) == 0
    _check(out, state)
    assert "wrote 4 keys" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["w.npz"]  # no temp file left behind


def test_refuses_unsafe_pickles(tmp_path):
    torch = pytest.importorskip("torch")
    src = tmp_path / "numpy_inside.pth"
    torch.save({"w": np.zeros(3)}, src)  # numpy objects need full unpickling
    with pytest.raises(ValueError, match="weights-only"):
        ctw.load_torch_state_dict(src)


def test_rejects_non_state_dicts(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    src = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], src)
    with pytest.raises(ValueError, match="expected a state dict"):
        ctw.load_torch_state_dict(src)
    torch.save({"w": torch.zeros(1), "lr": 0.1}, src)
    out = tmp_path / "o.npz"
    assert ctw.main([str(src), str(out)]) == 1
    assert "1 entries are not tensors: [lr]" in capsys.readouterr().err
    assert not out.exists()


def test_clear_error_without_torch(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(RuntimeError, match=r"needs torch.*torch==2\.13\.0"):
        ctw.load_torch_state_dict(tmp_path / "x.pth")
    assert ctw.main([str(tmp_path / "x.pth"), str(tmp_path / "x.npz")]) == 1
    assert "needs torch" in capsys.readouterr().err


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "w.npz"
    ctw.save_npz_atomic({"a": np.ones(2)}, out)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ctw.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        ctw.save_npz_atomic({"b": np.zeros(2)}, out)
    with np.load(out) as z:
        assert z.files == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_package_does_not_import_torch():
    import os
    import subprocess

    code = (
        "import sys; import xplore_tf.features.weights, xplore_tf.features.resnet, "
        "xplore_tf.features.mobilenet_v2, xplore_tf.features.keras_apps; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
