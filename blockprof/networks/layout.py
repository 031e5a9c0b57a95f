"""Network layouts as shapes (pure; no torch): stem, stages of blocks, head.

torchvision's 43 classification layouts of the three block families, layer for layer:

* **ResNet** (He et al., 2016; torchvision's "v1.5", stride on the 3×3): stem
  7×7/2 conv 3→64 + BN + ReLU + 3×3/2 max-pool (padding 1); four stages of
  blocks at widths 64, 128, 256, 512 × expansion (1 for BasicBlock, 4 for
  Bottleneck), stride 2 in the first block of stages 2-4; global average pool;
  fc → 1000 with bias. ResNeXt groups the 3×3 (32×4d: 32 groups of
  ``int(planes · 4/64)``); Wide-ResNet doubles the inner width (width_per_group 128).
* **RegNet** (Radosavovic et al., 2020): stem 3×3/2 conv 3→32 + BN + ReLU; four
  stages of X or Y blocks whose widths and depths come from RegNet's generator
  (:func:`regnet_stages`: ``w_0, w_a, w_m`` quantised to multiples of 8, then the
  group widths fitted); global average pool; fc.
* **MobileNetV2** (Sandler et al., 2018; width 1.0): stem 3×3/2 conv 3→32 + BN
  + ReLU6; seven stages of inverted residuals (t, c, n, s); 1×1 conv 320→1280 +
  BN + ReLU6; global average pool; dropout; fc 1280→1000 with bias.
* **MobileNetV3** (Howard et al., 2019): stem 3×3/2 conv 3→16 + BN + hardswish;
  the paper's bneck table (kernel 3/5, ReLU or hardswish, SE with hardsigmoid);
  1×1 conv to 6× the last width + BN + hardswish; pool; fc → 1024/1280 +
  hardswish + dropout; fc → 1000.
* **EfficientNet B0–B7** (Tan & Le, 2019): B0's MBConv table scaled by width
  (``_make_divisible(c · w, 8)``) and depth (``ceil(n · d)``); stem 3×3/2 conv + BN +
  SiLU; SE (EfficientNet style) in every block; stochastic depth on every residual
  branch (0.2 · block index / blocks); 1×1 conv to 4× the last width; pool; dropout; fc.
* **EfficientNetV2 S/M/L** (Tan & Le, 2021): Fused-MBConv stages then MBConv
  stages, head conv to 1280.
* **MNASNet B1** (Tan et al., 2019) at width α: ``_round_to_multiple_of(c · α, 8)``
  widths; stem 3×3/2 conv + BN + ReLU, 3×3 depthwise + BN + ReLU, 1×1 + BN; six
  stacks of inverted residuals (ReLU, kernel 3/5); 1×1 conv to 1280; pool; dropout; fc.

Every layout is torchvision's at any input side: a conv of kernel k, padding k//2 and
stride s maps H to ``(H − 1)//s + 1`` for odd k (57 → 29), so any ``spatial`` works.

**The ``--block`` swap rule.** Swapping the block keeps every stage's number of
blocks, output width and stride, and the stem and head; the new block takes its
own defaults (bottleneck: expansion 4, inner = out/4; inverted residual: t = 6 on
the block's input width, 3×3, ReLU6, no SE; basic: two 3×3 at the output width;
fused_mbconv: t = 4, 3×3, SiLU; regnet_x/y: group width 16). Naming a network's
own block (``resnet50`` with ``bottleneck``) gives the published network. A user
block (``package.module:callable``) is allowed; the network then has no closed
form and is counted by the tools. A block that cannot take a stage's widths
(bottleneck on an output width not divisible by 4, say) is refused with its reason.

Layer names are the torch modules' names (``layer1.0.conv1``, ``features.3.conv_dw``),
so the per-layer tables line up with the tools' per-module breakdowns.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from blockprof.blocks import shapes
from blockprof.blocks.registry import resolve
from blockprof.counting.formulas import Layer, conv_output_size
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec, NetworkSpec, ResolvedSpec

NUM_CLASSES = 1000
#: (t, c, n, s) of MobileNetV2's inverted-residual stages (Sandler et al., Table 2)
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
#: (native block, blocks per stage, bottleneck options) of the ResNets, ResNeXts and Wide-ResNets
RESNET_DEPTHS: dict[str, tuple[str, tuple[int, ...], dict[str, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2), {}),
    "resnet34": ("basic", (3, 4, 6, 3), {}),
    "resnet50": ("bottleneck", (3, 4, 6, 3), {}),
    "resnet101": ("bottleneck", (3, 4, 23, 3), {}),
    "resnet152": ("bottleneck", (3, 8, 36, 3), {}),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), {"groups": 32, "width_per_group": 4}),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), {"groups": 32, "width_per_group": 8}),
    "resnext101_64x4d": ("bottleneck", (3, 4, 23, 3), {"groups": 64, "width_per_group": 4}),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), {"width_per_group": 128}),
    "wide_resnet101_2": ("bottleneck", (3, 4, 23, 3), {"width_per_group": 128}),
}
#: RegNet's generator parameters (depth, w_0, w_a, w_m, group width), torchvision's regnet_*()
REGNET_PARAMS: dict[str, tuple[int, int, float, float, int]] = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264),
}
#: MobileNetV3's bneck rows (input, kernel, expanded, output, SE, activation, stride), Howard et al. Tables 1–2
MOBILENET_V3_SETTINGS: dict[str, tuple[tuple[tuple[int, int, int, int, bool, str, int], ...], int]] = {
    "mobilenet_v3_small": (
        (
            (16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2), (24, 3, 88, 24, False, "relu", 1),
            (24, 5, 96, 40, True, "hardswish", 2), (40, 5, 240, 40, True, "hardswish", 1),
            (40, 5, 240, 40, True, "hardswish", 1), (40, 5, 120, 48, True, "hardswish", 1),
            (48, 5, 144, 48, True, "hardswish", 1), (48, 5, 288, 96, True, "hardswish", 2),
            (96, 5, 576, 96, True, "hardswish", 1), (96, 5, 576, 96, True, "hardswish", 1),
        ),
        1024,
    ),
    "mobilenet_v3_large": (
        (
            (16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2), (24, 3, 72, 24, False, "relu", 1),
            (24, 5, 72, 40, True, "relu", 2), (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
            (40, 3, 240, 80, False, "hardswish", 2), (80, 3, 200, 80, False, "hardswish", 1),
            (80, 3, 184, 80, False, "hardswish", 1), (80, 3, 184, 80, False, "hardswish", 1),
            (80, 3, 480, 112, True, "hardswish", 1), (112, 3, 672, 112, True, "hardswish", 1),
            (112, 5, 672, 160, True, "hardswish", 2), (160, 5, 960, 160, True, "hardswish", 1),
            (160, 5, 960, 160, True, "hardswish", 1),
        ),
        1280,
    ),
}  # fmt: skip
#: EfficientNet-B0's MBConv stages (t, kernel, stride, in, out, layers), Tan & Le (2019) Table 1
EFFICIENTNET_B0 = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
#: compound scaling (width, depth) of B0–B7; the resolution is the default spatial size
EFFICIENTNET_SCALING = {
    f"efficientnet_b{i}": wd
    for i, wd in enumerate(
        ((1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8), (1.6, 2.2), (1.8, 2.6), (2.0, 3.1))
    )
}
#: EfficientNetV2's stages (block, t, kernel, stride, in, out, layers), Tan & Le (2021) Table 4 and torchvision
EFFICIENTNET_V2: dict[str, tuple[tuple[str, int, int, int, int, int, int], ...]] = {
    "efficientnet_v2_s": (
        ("fused_mbconv", 1, 3, 1, 24, 24, 2), ("fused_mbconv", 4, 3, 2, 24, 48, 4),
        ("fused_mbconv", 4, 3, 2, 48, 64, 4),
        ("inverted_residual", 4, 3, 2, 64, 128, 6), ("inverted_residual", 6, 3, 1, 128, 160, 9),
        ("inverted_residual", 6, 3, 2, 160, 256, 15),
    ),
    "efficientnet_v2_m": (
        ("fused_mbconv", 1, 3, 1, 24, 24, 3), ("fused_mbconv", 4, 3, 2, 24, 48, 5),
        ("fused_mbconv", 4, 3, 2, 48, 80, 5),
        ("inverted_residual", 4, 3, 2, 80, 160, 7), ("inverted_residual", 6, 3, 1, 160, 176, 14),
        ("inverted_residual", 6, 3, 2, 176, 304, 18), ("inverted_residual", 6, 3, 1, 304, 512, 5),
    ),
    "efficientnet_v2_l": (
        ("fused_mbconv", 1, 3, 1, 32, 32, 4), ("fused_mbconv", 4, 3, 2, 32, 64, 7),
        ("fused_mbconv", 4, 3, 2, 64, 96, 7),
        ("inverted_residual", 4, 3, 2, 96, 192, 10), ("inverted_residual", 6, 3, 1, 192, 224, 19),
        ("inverted_residual", 6, 3, 2, 224, 384, 25), ("inverted_residual", 6, 3, 1, 384, 640, 7),
    ),
}  # fmt: skip
#: the stochastic-depth probability of EfficientNet's last block (torchvision's default)
STOCHASTIC_DEPTH = 0.2
#: MNASNet-B1's widths before scaling, and its stacks (kernel, stride, t, repeats)
MNASNET_DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)
MNASNET_STACKS = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))
MNASNET_ALPHA = {"mnasnet0_5": 0.5, "mnasnet0_75": 0.75, "mnasnet1_0": 1.0, "mnasnet1_3": 1.3}
#: what torchvision publishes for its default weights (``*_Weights.DEFAULT.meta``): parameters, "GFLOPS"
#: (conv + linear MACs in G, rounded to 3 decimals) and the crop size they are evaluated at
PUBLISHED: dict[str, tuple[int, float, int]] = {
    "resnet18": (11_689_512, 1.814, 224),
    "resnet34": (21_797_672, 3.664, 224),
    "resnet50": (25_557_032, 4.089, 224),
    "resnet101": (44_549_160, 7.801, 224),
    "resnet152": (60_192_808, 11.514, 224),
    "resnext50_32x4d": (25_028_904, 4.23, 224),
    "resnext101_32x8d": (88_791_336, 16.414, 224),
    "resnext101_64x4d": (83_455_272, 15.46, 224),
    "wide_resnet50_2": (68_883_240, 11.398, 224),
    "wide_resnet101_2": (126_886_696, 22.753, 224),
    "regnet_x_400mf": (5_495_976, 0.414, 224),
    "regnet_x_800mf": (7_259_656, 0.8, 224),
    "regnet_x_1_6gf": (9_190_136, 1.603, 224),
    "regnet_x_3_2gf": (15_296_552, 3.177, 224),
    "regnet_x_8gf": (39_572_648, 7.995, 224),
    "regnet_x_16gf": (54_278_536, 15.941, 224),
    "regnet_x_32gf": (107_811_560, 31.736, 224),
    "regnet_y_400mf": (4_344_144, 0.402, 224),
    "regnet_y_800mf": (6_432_512, 0.834, 224),
    "regnet_y_1_6gf": (11_202_430, 1.612, 224),
    "regnet_y_3_2gf": (19_436_338, 3.176, 224),
    "regnet_y_8gf": (39_381_472, 8.473, 224),
    "regnet_y_16gf": (83_590_140, 15.912, 224),
    "regnet_y_32gf": (145_046_770, 32.28, 224),
    "regnet_y_128gf": (644_812_894, 374.57, 384),
    "mobilenet_v2": (3_504_872, 0.301, 224),
    "mobilenet_v3_small": (2_542_856, 0.057, 224),
    "mobilenet_v3_large": (5_483_032, 0.217, 224),
    "efficientnet_b0": (5_288_548, 0.386, 224),
    "efficientnet_b1": (7_794_184, 0.687, 240),
    "efficientnet_b2": (9_109_994, 1.088, 288),
    "efficientnet_b3": (12_233_232, 1.827, 300),
    "efficientnet_b4": (19_341_616, 4.394, 380),
    "efficientnet_b5": (30_389_784, 10.266, 456),
    "efficientnet_b6": (43_040_704, 19.068, 528),
    "efficientnet_b7": (66_347_960, 37.746, 600),
    "efficientnet_v2_s": (21_458_488, 8.366, 384),
    "efficientnet_v2_m": (54_139_356, 24.582, 480),
    "efficientnet_v2_l": (118_515_272, 56.08, 480),
    "mnasnet0_5": (2_218_512, 0.104, 224),
    "mnasnet0_75": (3_170_208, 0.215, 224),
    "mnasnet1_0": (4_383_312, 0.314, 224),
    "mnasnet1_3": (6_282_256, 0.526, 224),
}
#: torchvision's published parameter counts: the reference the analytic and module counts are tested against
PUBLISHED_PARAMS = {name: p for name, (p, _, _) in PUBLISHED.items()}


def default_spatial(name: str) -> int:
    """The input side torchvision evaluates the network's default weights at (224 for most)."""
    return PUBLISHED[check_name(name)][2]


def check_name(name: str) -> str:
    """``name`` if it is a known network, else a one-line error that suggests the closest name."""
    if name in _BUILDERS:
        return name
    close = difflib.get_close_matches(name, list(_BUILDERS), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise BlockprofError(f"unknown network {name!r}{hint}; choose from {', '.join(_BUILDERS)}")


@dataclass(frozen=True)
class BlockEntry:
    """One block of a stage: its module name, its resolved spec, its layers under full
    module names (empty for a user block, which has no closed form), and the stochastic
    depth of its residual branch (EfficientNet's; 0 elsewhere)."""

    name: str
    spec: ResolvedSpec
    layers: tuple[Layer, ...]
    drop_path: float = 0.0


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
        return ", ".join(d for d in (_describe_layer(layer) for layer in self.layers) if d)

    def owns(self, module_name: str) -> bool:
        return any(module_name == m or module_name.startswith(m + ".") for m in self.modules)


@dataclass(frozen=True)
class NetworkLayout:
    """A network as stages of shapes. ``family`` and ``config`` tell
    :mod:`blockprof.networks.nn` which torch module to build around the blocks
    (stem and head widths, classifier dropout)."""

    spec: NetworkSpec
    native_block: str
    stages: tuple[Stage, ...]
    family: str = "resnet"
    config: tuple[tuple[str, Any], ...] = ()

    @property
    def block(self) -> str:
        """The block type the stages use (``fused_mbconv+inverted_residual`` for EfficientNetV2)."""
        return self.spec.block or self.native_block

    @property
    def swapped(self) -> bool:
        return self.spec.block is not None and self.spec.block != self.native_block

    @property
    def analytic(self) -> bool:
        """Whether every layer has a closed form (not with a user block)."""
        return all(b.layers for s in self.stages for b in s.blocks)

    @property
    def layers(self) -> list[Layer]:
        return [layer for s in self.stages for layer in s.layers]

    def stage_of(self, module_name: str) -> str | None:
        return next((s.name for s in self.stages if s.owns(module_name)), None)


def names() -> list[str]:
    return list(_BUILDERS)


def layout(spec: NetworkSpec) -> NetworkLayout:
    """The layout of ``spec.network`` with ``spec.block`` swapped in (see the module docstring)."""
    builder = _BUILDERS[check_name(spec.network)]
    if spec.block is None:
        return builder(spec)
    try:
        return builder(spec)
    except BlockprofError as e:  # a block that cannot take the stage's widths: say where
        raise BlockprofError(f"{spec.network} with --block {spec.block}: {e}") from None


# --- pieces shared by the builders ---


def _stage(
    name: str, modules: tuple[str, ...], layers: list[Layer] | None = None, blocks: list[BlockEntry] | None = None
) -> Stage:
    blocks = blocks or []
    layers = layers if layers is not None else [layer for b in blocks for layer in b.layers]
    if blocks:
        last = blocks[-1].spec
        channels, size = last.out_channels, last.output_spatial
    else:
        channels, size = layers[-1].out_channels, layers[-1].out_size
    return Stage(name, modules, tuple(layers), tuple(blocks), channels, size)


def _under(parent: str) -> Callable[[int], str]:
    """Block ``j`` of a stage module: ``layer1.0``, ``features.3.1``."""
    return lambda j: f"{parent}.{j}"


def _flat(start: int) -> Callable[[int], str]:
    """Block ``j`` of a stage whose blocks are siblings in ``features`` (MobileNetV2/V3)."""
    return lambda j: f"features.{start + j}"


def _blocks(
    prefix: Callable[[int], str], specs: list[BlockSpec], drop_paths: list[float] | None = None
) -> list[BlockEntry]:
    """Resolve each spec (defaults filled, bad options rejected) and name its layers; a
    residual branch with stochastic depth gets its (uncounted) layer before the add."""
    out = []
    for j, given in enumerate(specs):
        definition, spec = resolve(given)
        name = prefix(j)
        p = drop_paths[j] if drop_paths else 0.0
        layers: list[Layer] = []
        if definition.analytic:
            for layer in definition.layers(spec):
                if layer.name == "add" and p:
                    layers.append(dataclasses.replace(layer, name=f"{name}.drop_path", op="stochastic_depth"))
                layers.append(dataclasses.replace(layer, name=f"{name}.{layer.name}"))
        out.append(BlockEntry(name, spec, tuple(layers), p))
    return out


def _stage_specs(
    block: str, n: int, cin: int, cout: int, stride: int, size: int, batch: int, **options: Any
) -> list[BlockSpec]:
    """``n`` blocks: the first takes the stage's input width and stride, the rest map cout → cout."""
    specs = []
    for j in range(n):
        s = stride if j == 0 else 1
        specs.append(
            BlockSpec(
                block=block,
                in_channels=cin if j == 0 else cout,
                out_channels=cout,
                stride=s,
                spatial=size,
                batch=batch,
                **options,
            )
        )
        size = conv_output_size(size, 3, s)
    return specs


def _conv_bn_act(
    prefix: str, cin: int, cout: int, size: int, kernel: int, stride: int, act: str | None, groups: int = 1
) -> list[Layer]:
    """torchvision's Conv2dNormActivation: ``prefix.0`` conv, ``.1`` BN, ``.2`` activation."""
    conv, bn = shapes.conv_bn(f"{prefix}.0", f"{prefix}.1", cin, cout, size, kernel, stride, groups)
    return [conv, bn] + ([shapes.pointwise(f"{prefix}.2", act, cout, conv.out_size)] if act else [])


def _head(channels: int, size: int, classifier: str, dropout: bool) -> list[Layer]:
    pool = Layer("avgpool", "avgpool", channels, channels, size, 1)
    fc = Layer(f"{classifier}.1" if dropout else classifier, "linear", channels, NUM_CLASSES, 1, 1, bias=True)
    drop = [Layer(f"{classifier}.0", "dropout", channels, channels, 1, 1)] if dropout else []
    return [pool, *drop, fc]


def _native(spec: NetworkSpec, native: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The block a stage uses and its options: the network's own (with its options) unless swapped."""
    block = spec.block or native
    return (block, options) if block == native else (block, {})


# --- the families ---


def _resnet(spec: NetworkSpec) -> NetworkLayout:
    native, depths, bottleneck_options = RESNET_DEPTHS[spec.network]
    block, options = _native(spec, native, bottleneck_options)
    expansion = 4 if native == "bottleneck" else 1
    conv1, bn1 = shapes.conv_bn("conv1", "bn1", 3, 64, spec.spatial, 7, 2)
    size = conv1.out_size
    pooled = conv_output_size(size, 3, 2)  # 3×3/2 with padding 1
    stem = [
        conv1,
        bn1,
        shapes.pointwise("relu", "relu", 64, size),
        Layer("maxpool", "maxpool", 64, 64, size, pooled, 3, 2),
    ]
    stages = [_stage("stem", ("conv1", "bn1", "relu", "maxpool"), stem)]
    cin, size = 64, pooled
    for i, (n, width) in enumerate(zip(depths, (64, 128, 256, 512), strict=False), start=1):
        name, cout = f"layer{i}", width * expansion
        specs = _stage_specs(block, n, cin, cout, 1 if i == 1 else 2, size, spec.batch, **options)
        stages.append(_stage(name, (name,), blocks=_blocks(_under(name), specs)))
        cin, size = cout, stages[-1].out_size
    stages.append(_stage("head", ("avgpool", "fc"), _head(cin, size, "fc", dropout=False)))
    return NetworkLayout(spec, native, tuple(stages), "resnet")


def regnet_stages(depth: int, w_0: int, w_a: float, w_m: float, group_width: int) -> list[tuple[int, int, int]]:
    """RegNet's design space (Radosavovic et al., 2020, §3.3), as torchvision's
    ``BlockParams.from_init_params`` (bottleneck multiplier 1): per-block widths
    ``u_j = w_0 + w_a·j`` snapped to ``w_0·w_m^round(log(u_j/w_0)/log w_m)`` and quantised
    to multiples of 8; runs of equal width form the stages; each stage's group width is
    ``min(group_width, width)`` and its width the nearest multiple of it
    (``_make_divisible``). Returns (width, depth, group width) per stage."""
    quant = 8
    widths = []
    for j in range(depth):
        capacity = round(math.log((j * w_a + w_0) / w_0) / math.log(w_m))
        widths.append(int(round(w_0 * w_m**capacity / quant) * quant))
    stages = [(w, len(list(run))) for w, run in groupby(widths)]
    out = []
    for w, n in stages:
        g = min(group_width, w)
        out.append((shapes.make_divisible(w, g), n, g))
    return out


def _regnet(spec: NetworkSpec) -> NetworkLayout:
    depth, w_0, w_a, w_m, group_width = REGNET_PARAMS[spec.network]
    native = "regnet_y" if spec.network.startswith("regnet_y") else "regnet_x"
    stem = _conv_bn_act("stem", 3, 32, spec.spatial, 3, 2, "relu")
    stages = [_stage("stem", ("stem",), stem)]
    cin, size = 32, stem[0].out_size
    for i, (width, n, g) in enumerate(regnet_stages(depth, w_0, w_a, w_m, group_width), start=1):
        block, options = _native(spec, native, {"width_per_group": g})
        name = f"trunk_output.block{i}"
        specs = _stage_specs(block, n, cin, width, 2, size, spec.batch, **options)
        stages.append(_stage(f"block{i}", (name,), blocks=_blocks(_under(name), specs)))
        cin, size = width, stages[-1].out_size
    stages.append(_stage("head", ("avgpool", "fc"), _head(cin, size, "fc", dropout=False)))
    return NetworkLayout(spec, native, tuple(stages), "regnet")


def _mobilenet_v2(spec: NetworkSpec) -> NetworkLayout:
    native = "inverted_residual"
    block = spec.block or native
    stem = _conv_bn_act("features.0", 3, 32, spec.spatial, 3, 2, "relu6")
    stages = [_stage("stem", ("features.0",), stem)]
    cin, size, index = 32, stem[0].out_size, 1
    for k, (t, c, n, s) in enumerate(MOBILENET_V2_SETTINGS, start=1):
        options = {"expansion": t} if block == native else {}
        specs = _stage_specs(block, n, cin, c, s, size, spec.batch, **options)
        modules = tuple(f"features.{index + j}" for j in range(n))
        stages.append(_stage(f"stage{k}", modules, blocks=_blocks(_flat(index), specs)))
        cin, size, index = c, stages[-1].out_size, index + n
    last = f"features.{index}"
    head = [*_conv_bn_act(last, cin, 1280, size, 1, 1, "relu6"), *_head(1280, size, "classifier", dropout=True)]
    stages.append(_stage("head", (last, "avgpool", "classifier"), head))
    return NetworkLayout(spec, native, tuple(stages), "mobilenet_v2")


def _mobilenet_v3(spec: NetworkSpec) -> NetworkLayout:
    native = "inverted_residual"
    rows, last_channel = MOBILENET_V3_SETTINGS[spec.network]
    stem = _conv_bn_act("features.0", 3, rows[0][0], spec.spatial, 3, 2, "hardswish")
    stages = [_stage("stem", ("features.0",), stem)]
    size, index = stem[0].out_size, 1
    # a stage: a run of rows to one output width (the paper's table has no stages of its own)
    for k, (_, same_width) in enumerate(groupby(rows, key=lambda r: r[3]), start=1):
        run = list(same_width)
        specs = []
        for cin, kernel, expanded, cout, se, act, stride in run:
            options: dict[str, Any] = {
                "expansion": expanded / cin,
                "kernel": kernel,
                "activation": act,
                "se": 0.25 if se else 0.0,
                "se_style": "mobilenetv3" if se else None,
            }
            block, options = _native(spec, native, options)
            specs.append(
                BlockSpec(
                    block=block,
                    in_channels=cin,
                    out_channels=cout,
                    stride=stride,
                    spatial=size,
                    batch=spec.batch,
                    **options,
                )
            )
            size = conv_output_size(size, 3, stride)
        modules = tuple(f"features.{index + j}" for j in range(len(run)))
        stages.append(_stage(f"stage{k}", modules, blocks=_blocks(_flat(index), specs)))
        index += len(run)
    cin, last = rows[-1][3], f"features.{index}"
    wide = 6 * cin
    head = [
        *_conv_bn_act(last, cin, wide, size, 1, 1, "hardswish"),
        Layer("avgpool", "avgpool", wide, wide, size, 1),
        Layer("classifier.0", "linear", wide, last_channel, 1, 1, bias=True),
        shapes.pointwise("classifier.1", "hardswish", last_channel, 1),
        Layer("classifier.2", "dropout", last_channel, last_channel, 1, 1),
        Layer("classifier.3", "linear", last_channel, NUM_CLASSES, 1, 1, bias=True),
    ]
    stages.append(_stage("head", (last, "avgpool", "classifier"), head))
    config = (("stem", rows[0][0]), ("last_conv", wide), ("last_channel", last_channel))
    return NetworkLayout(spec, native, tuple(stages), "mobilenet_v3", config)


def _efficientnet_rows(name: str) -> list[tuple[str, int, int, int, int, int, int]]:
    """(block, t, kernel, stride, in, out, layers) per stage; B1–B7 are B0 scaled by
    width (``_make_divisible(c · w, 8)``) and depth (``ceil(n · d)``)."""
    if name in EFFICIENTNET_V2:
        return list(EFFICIENTNET_V2[name])
    w, d = EFFICIENTNET_SCALING[name]
    return [
        (
            "inverted_residual",
            t,
            k,
            s,
            shapes.make_divisible(cin * w, 8),
            shapes.make_divisible(cout * w, 8),
            math.ceil(n * d),
        )
        for t, k, s, cin, cout, n in EFFICIENTNET_B0
    ]


def _efficientnet(spec: NetworkSpec) -> NetworkLayout:
    rows = _efficientnet_rows(spec.network)
    v2 = spec.network in EFFICIENTNET_V2
    native_block = "fused_mbconv+inverted_residual" if v2 else "inverted_residual"
    stem_width = rows[0][4]
    stem = _conv_bn_act("features.0", 3, stem_width, spec.spatial, 3, 2, "silu")
    stages = [_stage("stem", ("features.0",), stem)]
    size, total, block_id = stem[0].out_size, sum(r[-1] for r in rows), 0
    for i, (own, t, k, s, cin, cout, n) in enumerate(rows, start=1):
        options: dict[str, Any] = {"expansion": t, "kernel": k, "activation": "silu"}
        if own == "inverted_residual":
            options.update(se=0.25, se_style="efficientnet")
        block = spec.block or own
        native = spec.block is None or spec.block == native_block  # V2 has two blocks: naming one swaps every stage
        options = options if native else {}
        specs = _stage_specs(block, n, cin, cout, s, size, spec.batch, **options)
        drops = [STOCHASTIC_DEPTH * (block_id + j) / total for j in range(n)] if native else None
        name = f"features.{i}"
        stages.append(_stage(f"stage{i}", (name,), blocks=_blocks(_under(name), specs, drops)))
        size, block_id = stages[-1].out_size, block_id + n
    cin, last = rows[-1][5], f"features.{len(rows) + 1}"
    wide = 1280 if v2 else 4 * cin
    head = [*_conv_bn_act(last, cin, wide, size, 1, 1, "silu"), *_head(wide, size, "classifier", dropout=True)]
    stages.append(_stage("head", (last, "avgpool", "classifier"), head))
    return NetworkLayout(spec, native_block, tuple(stages), "efficientnet", (("stem", stem_width), ("last_conv", wide)))


def round_to_multiple_of(value: float, divisor: int, round_up_bias: float = 0.9) -> int:
    """MNASNet's width rounding (torchvision's ``_round_to_multiple_of``): to the nearest
    multiple of ``divisor``, up one step when that loses more than 10% (83 → 80, 84 → 88 for 8)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded if rounded >= round_up_bias * value else rounded + divisor


def _mnasnet(spec: NetworkSpec) -> NetworkLayout:
    native = "inverted_residual"
    d = [round_to_multiple_of(c * MNASNET_ALPHA[spec.network], 8) for c in MNASNET_DEPTHS]
    conv0, bn0 = shapes.conv_bn("layers.0", "layers.1", 3, d[0], spec.spatial, 3, 2)
    size = conv0.out_size
    stem = [
        conv0, bn0, shapes.pointwise("layers.2", "relu", d[0], size),
        *shapes.conv_bn("layers.3", "layers.4", d[0], d[0], size, 3, 1, groups=d[0]),
        shapes.pointwise("layers.5", "relu", d[0], size),
        *shapes.conv_bn("layers.6", "layers.7", d[0], d[1], size, 1),
    ]  # fmt: skip
    stages = [_stage("stem", tuple(f"layers.{i}" for i in range(8)), stem)]
    for i, (kernel, stride, t, repeats) in enumerate(MNASNET_STACKS):
        block, options = _native(spec, native, {"expansion": t, "kernel": kernel, "activation": "relu"})
        specs = _stage_specs(block, repeats, d[i + 1], d[i + 2], stride, size, spec.batch, **options)
        name = f"layers.{8 + i}"
        stages.append(_stage(f"stack{i + 1}", (name,), blocks=_blocks(_under(name), specs)))
        size = stages[-1].out_size
    head = [
        *shapes.conv_bn("layers.14", "layers.15", d[7], 1280, size, 1),
        shapes.pointwise("layers.16", "relu", 1280, size),
    ]
    head += _head(1280, size, "classifier", dropout=True)
    stages.append(_stage("head", ("layers.14", "layers.15", "layers.16", "avgpool", "classifier"), head))
    return NetworkLayout(spec, native, tuple(stages), "mnasnet", (("stem", d[0]), ("stem_out", d[1])))


_BUILDERS: dict[str, Callable[[NetworkSpec], NetworkLayout]] = {
    **{name: _resnet for name in RESNET_DEPTHS},
    **{name: _regnet for name in REGNET_PARAMS},
    "mobilenet_v2": _mobilenet_v2,
    **{name: _mobilenet_v3 for name in MOBILENET_V3_SETTINGS},
    **{name: _efficientnet for name in EFFICIENTNET_SCALING},
    **{name: _efficientnet for name in EFFICIENTNET_V2},
    **{name: _mnasnet for name in MNASNET_ALPHA},
}


def _describe_layer(layer: Layer) -> str:
    k, s = layer.kernel, layer.stride
    if layer.op == "conv2d":
        kind = "depthwise conv" if layer.groups == layer.in_channels > 1 else "conv"
        return f"{k}×{k}{f'/{s}' if s != 1 else ''} {kind} {layer.in_channels}→{layer.out_channels}"
    if layer.op == "maxpool":
        return f"{k}×{k}/{s} maxpool"
    if layer.op == "avgpool":
        return "global avgpool"
    if layer.op == "dropout":
        return "dropout"
    if layer.op == "linear":
        return f"fc {layer.in_channels}→{layer.out_channels}"
    return ""
