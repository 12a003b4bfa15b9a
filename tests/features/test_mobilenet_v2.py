"""MobileNetV2 port: equals a torch reference; the real checkpoint classifies real photos."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tools import convert_torch_weights  # noqa: E402
from xplore_tf.features import mobilenet_v2, weights  # noqa: E402
from xplore_tf.features.base import FeatureExtractor  # noqa: E402

MEAN = np.array(weights.IMAGENET_MEAN, np.float32)
STD = np.array(weights.IMAGENET_STD, np.float32)
CHECKPOINT = "weights/mobilenet_v2_torchvision_imagenet.npz"


def _shared_dir() -> Path:
    env = os.environ.get("XPLORE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared"


def _torch_reference(torch):
    """torchvision's MobileNetV2 layout, written from the paper + torchvision's module names."""
    nn = torch.nn

    def conv_bn_act(inp, out, kernel, stride, groups=1):
        # Conv2dNormActivation: .0 conv (padding k//2), .1 BN, .2 ReLU6
        return nn.Sequential(
            nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU6(),
        )

    class InvertedResidual(nn.Module):
        def __init__(self, inp, out, stride, t):
            super().__init__()
            hidden = int(round(inp * t))
            self.use_res = stride == 1 and inp == out
            mods = [conv_bn_act(inp, hidden, 1, 1)] if t != 1 else []
            mods += [
                conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                nn.Conv2d(hidden, out, 1, bias=False),
                nn.BatchNorm2d(out),
            ]
            self.conv = nn.Sequential(*mods)

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            feats = [conv_bn_act(3, 32, 3, 2)]
            inp = 32
            for t, c, n, s in [
                (1, 16, 1, 1),
                (6, 24, 2, 2),
                (6, 32, 3, 2),
                (6, 64, 4, 2),
                (6, 96, 3, 1),
                (6, 160, 3, 2),
                (6, 320, 1, 1),
            ]:
                for i in range(n):
                    feats.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                    inp = c
            feats.append(conv_bn_act(inp, 1280, 1, 1))
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            f = self.features(x).mean(dim=(2, 3))
            return f, self.classifier(f)

    return MobileNetV2()


def _randomize_bn(torch, model, seed=0):
    """Random affine + running stats so the test exercises every BN slot."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = 0.2 * torch.randn(c, generator=g)
            m.running_mean.data = 0.2 * torch.randn(c, generator=g)
            m.running_var.data = torch.rand(c, generator=g) + 0.5


def test_matches_torch_reference(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = _torch_reference(torch)
    _randomize_bn(torch, ref)
    ref.eval()
    pth = tmp_path / "mnv2.pth"
    torch.save(ref.state_dict(), pth)
    npz = tmp_path / "mnv2.npz"
    convert_torch_weights.convert(pth, npz)

    size = 64
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(((images / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2).copy())
        want_feat, want_logits = (t.numpy() for t in ref(x))

    extractor = mobilenet_v2.build(str(npz), input_size=size)
    got_feat = np.asarray(extractor(images))
    got_logits = np.asarray(mobilenet_v2.build_classifier(str(npz), input_size=size)(images))
    assert got_feat.shape == (2, 1280)
    for got, want in ((got_feat, want_feat), (got_logits, want_logits)):
        err = np.abs(got - want).max()
        print(f"max abs diff {err:.2e} (max |ref| {np.abs(want).max():.2f})")
        assert err <= 1e-4 * max(1.0, np.abs(want).max())


def test_reference_layout_is_torchvision_checkpoint_layout():
    """The torch reference (hence the port) has exactly the published checkpoint's keys."""
    torch = pytest.importorskip("torch")
    path = _shared_dir() / CHECKPOINT
    if not path.is_file():
        pytest.skip(f"{path} not available")
    ref_shapes = {k: tuple(v.shape) for k, v in _torch_reference(torch).state_dict().items()}
    with np.load(path) as z:
        assert {k: z[k].shape for k in z.files} == ref_shapes


def test_extractor_interface_and_frozen():
    ext = mobilenet_v2.build(None)
    assert isinstance(ext, FeatureExtractor)
    assert (ext.name, ext.input_size, ext.feature_dim) == ("mobilenet_v2", 224, 1280)
    assert ext.model.trainable_weights == []
    assert ext(np.zeros((1, 224, 224, 3), np.float32)).shape == (1, 1280)


def _photo(name: str) -> np.ndarray:
    """[224,224,3] float32: torchvision's eval transform (short side 256, centre crop 224)."""
    from PIL import Image

    spec = importlib.util.find_spec("skimage")  # locates the package without importing it
    path = Path(spec.origin).parent / "data" / name if spec and spec.origin else None
    if path is None or not path.is_file():
        pytest.skip(f"sample photo {name} (scikit-image's data) not installed")
    image = Image.open(path).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
    )
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    return np.asarray(image.crop((left, top, left + 224, top + 224)), np.float32)


def test_real_checkpoint_classifies_real_photos():
    path = _shared_dir() / CHECKPOINT
    if not path.is_file():
        pytest.skip(f"{path} not available")
    images = np.stack([_photo("chelsea.png"), _photo("coffee.png")])
    logits = np.asarray(mobilenet_v2.build_classifier(str(path))(images))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    for row, p in zip(top5, probs, strict=True):
        print("top-5:", [(int(i), round(float(p[i]), 4)) for i in row])
    assert top5[0, 0] in {281, 282, 285}  # tabby / tiger cat / Egyptian cat
    assert top5[1, 0] in {967, 968}  # espresso / cup
    # the ported features feed the clustering stage: same checkpoint, same pooled vector
    feats = np.asarray(mobilenet_v2.build(str(path))(images))
    assert feats.shape == (2, 1280) and np.all(feats >= 0)
