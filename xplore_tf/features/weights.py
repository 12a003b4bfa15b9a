"""Loads PyTorch checkpoints (converted to `.npz`) into the Keras ports.

Why npz: the package must not depend on torch, and `np.load(allow_pickle=False)` cannot
execute code. `tools/convert_torch_weights.py` turns a `.pth` into such a file.

Mapping: every Keras layer that holds weights is named after the PyTorch module it ports
(`layer1.0.conv1`, `features.2.conv.1.0`, `classifier.1`), so the state-dict key of a
parameter is `<layer name>.<torch parameter name>`:

  Conv2D              `.weight` [out, in, kh, kw] -> kernel [kh, kw, in, out]; `.bias` [out]
  DepthwiseConv2D     `.weight` [C*m, 1, kh, kw]  -> kernel [kh, kw, C, m];    `.bias` [C*m]
  BatchNormalization  `.weight/.bias/.running_mean/.running_var` -> gamma/beta/moving_mean/moving_variance
  Dense               `.weight` [out, in] -> kernel [in, out]; `.bias` [out]

`num_batches_tracked` is ignored, a leading `module.` (DataParallel) is stripped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

import keras
import numpy as np

# torchvision's input normalisation for RGB in [0, 1]; every ported checkpoint expects it.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Prefixes of classifier heads: present in every published checkpoint, unused by feature models.
CLASSIFIER_PREFIXES = ("fc.", "classifier.")
_IGNORED_SUFFIXES = (".num_batches_tracked",)
_MODULE_PREFIX = "module."
_SHOW = 5  # how many names of each kind an error message lists

# (torch key, Keras variable, torch shape, torch array -> Keras array)
_Param = tuple[str, keras.Variable, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]


def torch_preprocessing(name: str = "preprocess") -> keras.layers.Layer:
    """[N,S,S,3] RGB in [0, 255] -> (x/255 - mean)/std, as one weightless built-in layer."""
    return keras.layers.Normalization(
        mean=[255.0 * m for m in IMAGENET_MEAN],
        variance=[(255.0 * s) ** 2 for s in IMAGENET_STD],
        name=name,
    )


def strip_module_prefix(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops DataParallel's `module.` prefix (bethgelab checkpoints carry it)."""
    return {
        (k[len(_MODULE_PREFIX) :] if k.startswith(_MODULE_PREFIX) else k): v
        for k, v in state.items()
    }


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a `.npz` state dict (no pickles) with `module.` stripped."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return strip_module_prefix({k: data[k] for k in data.files})


def _conv_params(layer: keras.layers.Conv2D) -> list[_Param]:
    if layer.groups != 1:
        raise TypeError(f"layer {layer.name!r}: grouped Conv2D has no torch mapping here")
    kh, kw, cin, cout = layer.kernel.shape
    params: list[_Param] = [
        (
            f"{layer.name}.weight",
            layer.kernel,
            (cout, cin, kh, kw),
            lambda w: w.transpose(2, 3, 1, 0),
        )
    ]
    if layer.use_bias:
        params.append((f"{layer.name}.bias", layer.bias, (cout,), lambda b: b))
    return params


def _depthwise_params(layer: keras.layers.DepthwiseConv2D) -> list[_Param]:
    kh, kw, c, m = layer.kernel.shape

    def to_keras(w: np.ndarray) -> np.ndarray:
        # torch output channel c*m + j belongs to input channel c, as in TF's depthwise.
        return w.reshape(c, m, kh, kw).transpose(2, 3, 0, 1)

    params: list[_Param] = [(f"{layer.name}.weight", layer.kernel, (c * m, 1, kh, kw), to_keras)]
    if layer.use_bias:
        params.append((f"{layer.name}.bias", layer.bias, (c * m,), lambda b: b))
    return params


def _bn_params(layer: keras.layers.BatchNormalization) -> list[_Param]:
    if not (layer.scale and layer.center):
        raise TypeError(f"layer {layer.name!r}: torch BatchNorm needs scale=center=True")
    (c,) = layer.moving_mean.shape
    slots = (
        ("weight", layer.gamma),
        ("bias", layer.beta),
        ("running_mean", layer.moving_mean),
        ("running_var", layer.moving_variance),
    )
    return [(f"{layer.name}.{s}", var, (c,), lambda v: v) for s, var in slots]


def _dense_params(layer: keras.layers.Dense) -> list[_Param]:
    cin, cout = layer.kernel.shape
    params: list[_Param] = [(f"{layer.name}.weight", layer.kernel, (cout, cin), lambda w: w.T)]
    if layer.use_bias:
        params.append((f"{layer.name}.bias", layer.bias, (cout,), lambda b: b))
    return params


def _iter_layers(model: keras.Model) -> Iterable[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _iter_layers(layer)
        else:
            yield layer


def torch_params(model: keras.Model) -> dict[str, _Param]:
    """torch key -> parameter spec for every weight of `model` (in layer order)."""
    params: dict[str, _Param] = {}
    for layer in _iter_layers(model):
        if not layer.weights:
            continue
        # DepthwiseConv2D is not a Conv2D subclass in Keras 3, but check it first anyway.
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            specs = _depthwise_params(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            specs = _conv_params(layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            specs = _bn_params(layer)
        elif isinstance(layer, keras.layers.Dense):
            specs = _dense_params(layer)
        else:
            raise TypeError(
                f"layer {layer.name!r} ({type(layer).__name__}) has weights but no torch mapping"
            )
        for spec in specs:
            params[spec[0]] = spec
    return params


def expected_torch_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """The state-dict keys (and torch shapes) a checkpoint for `model` must provide."""
    return {k: spec[2] for k, spec in torch_params(model).items()}


def _listing(kind: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    more = f", ... (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return f"{len(items)} {kind}: [{shown}{more}]"


def load_state_dict(
    model: keras.Model,
    state: Mapping[str, np.ndarray],
    *,
    source: str = "<state dict>",
    allow_unused_prefixes: tuple[str, ...] = CLASSIFIER_PREFIXES,
) -> None:
    """Assigns a torch-named state dict to `model`; all-or-nothing.

    Raises ValueError (one message naming `source`) when keys are missing, unexpected
    (other than `allow_unused_prefixes` and `num_batches_tracked`) or mis-shaped.
    """
    state = strip_module_prefix(state)
    params = torch_params(model)
    present = {k for k in state if not k.endswith(_IGNORED_SUFFIXES)}
    missing = [k for k in params if k not in present]
    unexpected = sorted(
        k for k in present if k not in params and not k.startswith(allow_unused_prefixes)
    )
    misshaped = [
        f"{k}: file {list(np.shape(state[k]))} vs model {list(spec[2])}"
        for k, spec in params.items()
        if k in present and tuple(np.shape(state[k])) != spec[2]
    ]
    if missing or unexpected or misshaped:
        parts = [
            _listing(kind, items)
            for kind, items in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("mis-shaped", misshaped),
            )
            if items
        ]
        raise ValueError(
            f"weights from {source} do not match model {model.name!r} "
            f"({len(params)} parameters expected): " + "; ".join(parts)
        )
    for key, var, _, to_keras in params.values():
        var.assign(to_keras(np.asarray(state[key], dtype=np.float32)))


def load_torch_weights(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    allow_unused_prefixes: tuple[str, ...] = CLASSIFIER_PREFIXES,
) -> None:
    """Loads a `.npz` keyed by PyTorch state-dict names into `model` (see module doc)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} does not exist")
    if not path.endswith(".npz"):
        raise ValueError(
            f"weights file {path}: expected a .npz; convert PyTorch checkpoints with "
            "`python -m tools.convert_torch_weights IN.pth OUT.npz`"
        )
    load_state_dict(
        model,
        load_npz(path),
        source=f"file {path}",
        allow_unused_prefixes=allow_unused_prefixes,
    )


__all__ = [
    "CLASSIFIER_PREFIXES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "expected_torch_shapes",
    "load_npz",
    "load_state_dict",
    "load_torch_weights",
    "strip_module_prefix",
    "torch_params",
    "torch_preprocessing",
]
