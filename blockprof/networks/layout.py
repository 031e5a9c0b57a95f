"""Network layouts as shapes (pure; no torch): stem, stages of blocks, head.

torchvision's layouts, layer for layer:

* **ResNet** (He et al., 2016; torchvision's "v1.5", stride on the 3×3): stem
  7×7/2 conv 3→64 + BN + ReLU + 3×3/2 max-pool (padding 1); four stages of
  blocks at widths 64, 128, 256, 512 × expansion (1 for BasicBlock, 4 for
  Bottleneck), stride 2 in the first block of stages 2-4; global average pool;
  fc → 1000 with bias.
* **MobileNetV2** (Sandler et al., 2018; width 1.0): stem 3×3/2 conv 3→32 + BN
  + ReLU6; seven stages of inverted residuals (t, c, n, s); 1×1 conv 320→1280 +
  BN + ReLU6; global average pool; dropout; fc 1280→1000 with bias.

**The ``--block`` swap rule.** Swapping the block keeps every stage's number of
blocks, output width and stride, and the stem and head; the new block takes its
own defaults (bottleneck: expansion 4, inner = out/4; inverted residual: t = 6 on
the block's input width; basic: two 3×3 at the output width). Naming a
network's own block (``resnet50`` with ``bottleneck``) gives the published
network, MobileNetV2's t = 1 first stage included. A user block
(``package.module:callable``) is allowed; the network then has no closed form
and is counted by the tools.

Layer names are the torch modules' names (``layer1.0.conv1``, ``features.3.conv_dw``),
so the per-layer tables line up with the tools' per-module breakdowns.
"""

from __future__ import annotations

import dataclasses
from itertools import groupby
from dataclasses import dataclass
from typing import Callable

from blockprof.blocks import shapes
from blockprof.blocks.registry import resolve
from blockprof.counting.formulas import Layer, conv_output_size
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec, NetworkSpec

#: every network's output stride: the input side must be a multiple of it
TOTAL_STRIDE = 32
NUM_CLASSES = 1000
#: (t, c, n, s) of MobileNetV2's inverted-residual stages (Sandler et al., Table 2)
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
#: (native block, blocks per stage) of the ResNets
RESNET_DEPTHS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}
#: parameter counts torchvision publishes for its ImageNet weights (``*_Weights.meta["num_params"]``):
#: the reference the analytic and module counts are tested against
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "mobilenet_v2": 3_504_872,
}


@dataclass(frozen=True)
class BlockEntry:
    """One block of a stage: its module name, its resolved spec, and its layers under
    full module names (empty for a user block, which has no closed form)."""

    name: str
    spec: BlockSpec
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class Stage:
    """A run of the network: the stem, a stage of blocks, or the head.

    ``modules`` are the top-level module names that belong to it (used to assign a
    tool's per-module counts and the module's parameters to the stage)."""

    name: str
    modules: tuple[str, ...]
    layers: tuple[Layer, ...]
    blocks: tuple[BlockEntry, ...]
    out_channels: int
    out_size: int

    @property
    def description(self) -> str:
        """``'7×7/2 conv 3→64, 3×3/2 maxpool'`` or ``'1× bottleneck 64→256 t4, 2× bottleneck 256→256 t4'``."""
        if self.blocks:
            runs = groupby(b.spec.label for b in self.blocks)
            return ", ".join(f"{len(list(same))}× {label}" for label, same in runs)
        return ", ".join(d for d in (_describe_layer(l) for l in self.layers) if d)

    def owns(self, module_name: str) -> bool:
        return any(module_name == m or module_name.startswith(m + ".") for m in self.modules)


@dataclass(frozen=True)
class NetworkLayout:
    spec: NetworkSpec
    native_block: str
    stages: tuple[Stage, ...]

    @property
    def block(self) -> str:
        """The block type the stages use."""
        return self.spec.block or self.native_block

    @property
    def swapped(self) -> bool:
        return self.block != self.native_block

    @property
    def analytic(self) -> bool:
        """Whether every layer has a closed form (not with a user block)."""
        return all(b.layers for s in self.stages for b in s.blocks)

    @property
    def layers(self) -> list[Layer]:
        return [l for s in self.stages for l in s.layers]

    def stage_of(self, module_name: str) -> str | None:
        return next((s.name for s in self.stages if s.owns(module_name)), None)


def names() -> list[str]:
    return list(_BUILDERS)


def layout(spec: NetworkSpec) -> NetworkLayout:
    """The layout of ``spec.network`` with ``spec.block`` swapped in (see the module docstring)."""
    if spec.network not in _BUILDERS:
        raise BlockprofError(f"unknown network {spec.network!r}; choose from {', '.join(_BUILDERS)}")
    if spec.spatial % TOTAL_STRIDE:
        up = spec.spatial + TOTAL_STRIDE - spec.spatial % TOTAL_STRIDE
        raise BlockprofError(
            f"{spec.network}: spatial {spec.spatial} is not a multiple of {TOTAL_STRIDE} (the network's total stride); "
            f"use e.g. {max(up - TOTAL_STRIDE, TOTAL_STRIDE)} or {up} (224 is ImageNet's)"
        )
    return _BUILDERS[spec.network](spec)


def _stage(name: str, modules: tuple[str, ...], layers: list[Layer] | None = None, blocks: list[BlockEntry] | None = None) -> Stage:
    blocks = blocks or []
    layers = layers if layers is not None else [l for b in blocks for l in b.layers]
    if blocks:
        last = blocks[-1].spec
        channels, size = last.out_channels, last.output_spatial
    else:
        channels, size = layers[-1].out_channels, layers[-1].out_size
    return Stage(name, modules, tuple(layers), tuple(blocks), channels, size)


def _blocks(prefix: Callable[[int], str], specs: list[BlockSpec]) -> list[BlockEntry]:
    """Resolve each spec (defaults filled, bad options rejected) and name its layers."""
    out = []
    for j, spec in enumerate(specs):
        definition, spec = resolve(spec)
        name = prefix(j)
        layers = tuple(dataclasses.replace(l, name=f"{name}.{l.name}") for l in definition.layers(spec)) if definition.analytic else ()
        out.append(BlockEntry(name, spec, layers))
    return out


def _stage_specs(block: str, n: int, cin: int, cout: int, stride: int, size: int, batch: int, **options: object) -> list[BlockSpec]:
    """``n`` blocks: the first takes the stage's input width and stride, the rest map cout → cout."""
    specs = []
    for j in range(n):
        s = stride if j == 0 else 1
        specs.append(BlockSpec(block, cin if j == 0 else cout, cout, s, spatial=size, batch=batch, **options))  # type: ignore[arg-type]
        size //= s
    return specs


def _head(channels: int, size: int, classifier: str, dropout: bool) -> list[Layer]:
    pool = Layer("avgpool", "avgpool", channels, channels, size, 1)
    fc = Layer(f"{classifier}.1" if dropout else classifier, "linear", channels, NUM_CLASSES, 1, 1, bias=True)
    drop = [Layer(f"{classifier}.0", "dropout", channels, channels, 1, 1)] if dropout else []
    return [pool, *drop, fc]


def _resnet(spec: NetworkSpec) -> NetworkLayout:
    native, depths = RESNET_DEPTHS[spec.network]
    block = spec.block or native
    expansion = 4 if native == "bottleneck" else 1
    conv1, bn1 = shapes.conv_bn("conv1", "bn1", 3, 64, spec.spatial, 7, 2)
    size = conv1.out_size
    pooled = conv_output_size(size, 3, 2)  # 3×3/2 with padding 1
    stem = [conv1, bn1, shapes.pointwise("relu", "relu", 64, size), Layer("maxpool", "maxpool", 64, 64, size, pooled, 3, 2)]
    stages = [_stage("stem", ("conv1", "bn1", "relu", "maxpool"), stem)]
    cin, size = 64, pooled
    for i, (n, width) in enumerate(zip(depths, (64, 128, 256, 512)), start=1):
        name, cout = f"layer{i}", width * expansion
        specs = _stage_specs(block, n, cin, cout, 1 if i == 1 else 2, size, spec.batch)
        stages.append(_stage(name, (name,), blocks=_blocks(lambda j, name=name: f"{name}.{j}", specs)))
        cin, size = cout, stages[-1].out_size
    stages.append(_stage("head", ("avgpool", "fc"), _head(cin, size, "fc", dropout=False)))
    return NetworkLayout(spec, native, tuple(stages))


def _mobilenet_v2(spec: NetworkSpec) -> NetworkLayout:
    native = "inverted_residual"
    block = spec.block or native
    conv, bn = shapes.conv_bn("features.0.0", "features.0.1", 3, 32, spec.spatial, 3, 2)
    stages = [_stage("stem", ("features.0",), [conv, bn, shapes.pointwise("features.0.2", "relu6", 32, conv.out_size)])]
    cin, size, index = 32, conv.out_size, 1
    for k, (t, c, n, s) in enumerate(MOBILENET_V2_SETTINGS, start=1):
        options = {"expansion": t} if block == native else {}
        specs = _stage_specs(block, n, cin, c, s, size, spec.batch, **options)
        modules = tuple(f"features.{index + j}" for j in range(n))
        stages.append(_stage(f"stage{k}", modules, blocks=_blocks(lambda j, start=index: f"features.{start + j}", specs)))
        cin, size, index = c, stages[-1].out_size, index + n
    last = f"features.{index}"
    head_conv, head_bn = shapes.conv_bn(f"{last}.0", f"{last}.1", cin, 1280, size, 1)
    head = [head_conv, head_bn, shapes.pointwise(f"{last}.2", "relu6", 1280, size), *_head(1280, size, "classifier", dropout=True)]
    stages.append(_stage("head", (last, "avgpool", "classifier"), head))
    return NetworkLayout(spec, native, tuple(stages))


_BUILDERS: dict[str, Callable[[NetworkSpec], NetworkLayout]] = {**{name: _resnet for name in RESNET_DEPTHS}, "mobilenet_v2": _mobilenet_v2}


def _describe_layer(layer: Layer) -> str:
    k, s = layer.kernel, layer.stride
    if layer.op == "conv2d":
        return f"{k}×{k}{f'/{s}' if s != 1 else ''} conv {layer.in_channels}→{layer.out_channels}"
    if layer.op == "maxpool":
        return f"{k}×{k}/{s} maxpool"
    if layer.op == "avgpool":
        return "global avgpool"
    if layer.op == "dropout":
        return "dropout"
    if layer.op == "linear":
        return f"fc {layer.in_channels}→{layer.out_channels}"
    return ""
