"""ResNet-50 / BagNet-17 ports equal torch references written from the architecture papers."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tools import convert_torch_weights  # noqa: E402
from xplore_tf.features import resnet, weights  # noqa: E402
from xplore_tf.features.base import FeatureExtractor  # noqa: E402

pytestmark = pytest.mark.slow  # trains, exports, serves or converts a model

MEAN = np.array(weights.IMAGENET_MEAN, np.float32)
STD = np.array(weights.IMAGENET_STD, np.float32)


def _torch_models(torch):
    """{"resnet50": ..., "bagnet17": ...} reference classes, torchvision-style module names."""
    nn = torch.nn

    class Bottleneck(nn.Module):
        def __init__(self, inp, width, stride, kernel, bagnet):
            super().__init__()
            out = 4 * width
            # ResNet v1.5 pads the 3x3 by 1; BagNet never pads.
            pad = 0 if bagnet else kernel // 2
            self.conv1 = nn.Conv2d(inp, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, kernel, stride, pad, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.downsample = None
            if stride != 1 or inp != out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = torch.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            short = x if self.downsample is None else self.downsample(x)
            # A valid 3x3 makes y smaller; BagNet keeps the shortcut's top-left corner.
            short = short[:, :, : y.shape[2], : y.shape[3]]
            return torch.relu(y + short)

    def stages(module, strides, kernel3, bagnet):
        inp = 64
        for i, (n, width, stride, k3) in enumerate(
            zip((3, 4, 6, 3), (64, 128, 256, 512), strides, kernel3, strict=True), start=1
        ):
            blocks = []
            for b in range(n):
                kernel = 3 if b < k3 else 1
                blocks.append(Bottleneck(inp, width, stride if b == 0 else 1, kernel, bagnet))
                inp = 4 * width
            setattr(module, f"layer{i}", nn.Sequential(*blocks))

    def run_stages(module, x):
        for i in range(1, 5):
            x = getattr(module, f"layer{i}")(x)
        f = x.mean(dim=(2, 3))
        return f, module.fc(f)

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            stages(self, (1, 2, 2, 2), (3, 3, 3, 3), bagnet=False)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = nn.functional.max_pool2d(x, 3, 2, 1)
            return run_stages(self, x)

    class BagNet17(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 1, bias=False)
            self.conv2 = nn.Conv2d(64, 64, 3, 1, 0, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            stages(self, (2, 2, 2, 1), (1, 1, 1, 0), bagnet=True)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv2(self.conv1(x))))
            return run_stages(self, x)

    return {"resnet50": ResNet50, "bagnet17": BagNet17}


def _randomize_bn(torch, model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = 0.2 * torch.randn(c, generator=g)
            m.running_mean.data = 0.2 * torch.randn(c, generator=g)
            m.running_var.data = torch.rand(c, generator=g) + 0.5


def _compare(torch, tmp_path, arch, builder, classifier_builder, size, checkpoint_wrap):
    torch.manual_seed(0)
    ref = _torch_models(torch)[arch]()
    _randomize_bn(torch, ref)
    ref.eval()
    state = ref.state_dict()
    if checkpoint_wrap:  # bethgelab / Stylized-ImageNet style: DataParallel inside `state_dict`
        state = {"epoch": 60, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    pth = tmp_path / "ref.pth.tar"
    torch.save(state, pth)
    npz = str(tmp_path / "ref.npz")
    convert_torch_weights.convert(pth, npz)

    images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(((images / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2).copy())
        want_feat, want_logits = (t.numpy() for t in ref(x))
    ext = builder(npz, input_size=size)
    got_feat = np.asarray(ext(images))
    got_logits = np.asarray(classifier_builder(npz, input_size=size)(images))
    assert got_feat.shape == (2, 2048)
    for got, want in ((got_feat, want_feat), (got_logits, want_logits)):
        err = np.abs(got - want).max()
        print(f"{arch}: max abs diff {err:.2e} (max |ref| {np.abs(want).max():.2f})")
        assert err <= 1e-4 * max(1.0, np.abs(want).max())
    return ref


def test_resnet50_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    ref = _compare(
        torch,
        tmp_path,
        "resnet50",
        resnet.build_resnet50,
        resnet.build_resnet50_classifier,
        64,
        False,
    )
    # torchvision's resnet50 state dict has 320 entries (53 convs, 53 BNs x 5, fc x 2)
    assert len(ref.state_dict()) == 320


def test_resnet50_loads_stylized_imagenet_style_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    _compare(
        torch,
        tmp_path,
        "resnet50",
        resnet.build_resnet50,
        resnet.build_resnet50_classifier,
        64,
        True,
    )


def test_bagnet17_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    # 48 px: 46 (stem) -> 22 -> 10 -> 4 -> 4; every stride-2 block crops the shortcut by 1
    _compare(
        torch,
        tmp_path,
        "bagnet17",
        resnet.build_bagnet17,
        resnet.build_bagnet17_classifier,
        48,
        True,
    )


def test_expected_key_counts():
    r = weights.expected_torch_shapes(resnet.build_resnet50_model(64))
    b = weights.expected_torch_shapes(resnet.build_bagnet17_model(48))
    assert len(r) == 53 + 53 * 4 and r["conv1.weight"] == (64, 3, 7, 7)
    assert len(b) == 54 + 53 * 4 and b["conv2.weight"] == (64, 64, 3, 3)
    assert b["layer3.0.conv2.weight"] == (256, 256, 3, 3)
    assert b["layer3.1.conv2.weight"] == (256, 256, 1, 1)
    assert b["layer4.0.conv2.weight"] == (512, 512, 1, 1)
    assert "bn2.weight" not in b  # the published stem has one BN, after conv2


def test_bagnet17_receptive_field_is_17():
    """A feature at map position (0,0) depends on exactly the top-left 17x17 input pixels."""
    import tensorflow as tf

    model = resnet.build_bagnet17_model(48)
    trunk = keras.Model(model.input, model.get_layer("layer4.2.relu3").output)
    x = tf.Variable(np.full((1, 48, 48, 3), 128.0, np.float32))
    with tf.GradientTape() as tape:
        y = trunk(x, training=False)[0, 0, 0]
        loss = tf.reduce_sum(y * tf.random.stateless_normal(y.shape, (1, 2)))
    grad = np.abs(tape.gradient(loss, x).numpy()).sum(axis=(0, 3))
    rows, cols = np.nonzero(grad)
    assert (rows.max() + 1, cols.max() + 1) == (17, 17) and rows.min() == cols.min() == 0


@pytest.mark.parametrize(
    "build, name",
    [(resnet.build_resnet50, "resnet50"), (resnet.build_bagnet17, "bagnet17")],
)
def test_extractor_interface_and_frozen(build, name):
    ext = build(None)
    assert isinstance(ext, FeatureExtractor)
    assert (ext.name, ext.input_size, ext.feature_dim) == (name, 224, 2048)
    assert ext.model.trainable_weights == []
    assert ext.model.output_shape == (None, 2048)


def test_wrong_architecture_checkpoint_is_named(tmp_path):
    """A ResNet-50 file given to BagNet-17 fails with one message naming the mismatch."""
    torch = pytest.importorskip("torch")
    npz = str(tmp_path / "r50.npz")
    convert_torch_weights.save_npz_atomic(
        {k: v.numpy() for k, v in _torch_models(torch)["resnet50"]().state_dict().items()}, npz
    )
    with pytest.raises(ValueError) as err:
        resnet.build_bagnet17(npz, input_size=48)
    msg = str(err.value)
    assert npz in msg and "missing: [conv2.weight]" in msg and "mis-shaped" in msg
