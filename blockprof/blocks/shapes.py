"""Shape-list builders shared by the block definitions (pure; no torch).

Each returns the :class:`~blockprof.counting.formulas.Layer` entries of one
familiar piece (conv, BN, activation, shortcut, squeeze-excitation) under the
same names the torch modules in :mod:`blockprof.blocks.nn` use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from blockprof.counting.formulas import Layer, conv_output_size
from blockprof.errors import BlockprofError

if TYPE_CHECKING:
    from blockprof.spec import ResolvedSpec


def conv(
    name: str, cin: int, cout: int, size: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False
) -> Layer:
    out = conv_output_size(size, kernel, stride)
    return Layer(name, "conv2d", cin, cout, size, out, kernel, stride, groups, bias)


def pointwise(name: str, op: str, channels: int, size: int) -> Layer:
    """An op that keeps the shape: BN, activation, add, multiply."""
    return Layer(name, op, channels, channels, size, size)


def conv_bn(
    conv_name: str, bn_name: str, cin: int, cout: int, size: int, kernel: int, stride: int = 1, groups: int = 1
) -> list[Layer]:
    c = conv(conv_name, cin, cout, size, kernel, stride, groups)
    return [c, pointwise(bn_name, "batchnorm2d", cout, c.out_size)]


@dataclass(frozen=True)
class SEPlan:
    """One squeeze-excitation: the width it gates, its squeeze width and its two activations."""

    channels: int
    rd_channels: int
    act: str = "relu"
    gate: str = "sigmoid"


def se_plan(spec: ResolvedSpec, channels: int) -> SEPlan | None:
    """The SE of ``spec`` gating ``channels`` values, or None without one: the one place where
    ``se_style`` chooses the squeeze width and the activations (both the shape list and the
    module read this plan). Each style is torchvision's (``se`` = 0.25 in all three):

    * ``standard``     ``max(1, int(in_channels · se))``, ReLU + sigmoid (blockprof's SE);
    * ``mobilenetv3``  ``make_divisible(int(channels · se), 8)`` = ``_make_divisible(expanded // 4, 8)``,
      ReLU + hardsigmoid;
    * ``efficientnet`` ``max(1, int(in_channels · se))`` = ``max(1, in_channels // 4)``, SiLU + sigmoid;
    * ``regnet``       ``int(round(se · in_channels))`` of the block's input width, ReLU + sigmoid.
    """
    if not spec.se:
        return None
    style = spec.se_style or "standard"
    if style == "standard":
        return SEPlan(channels, squeeze_channels(spec.in_channels, spec.se))
    if style == "mobilenetv3":
        return SEPlan(channels, make_divisible(int(channels * spec.se), 8), "relu", "hardsigmoid")
    if style == "efficientnet":
        return SEPlan(channels, squeeze_channels(spec.in_channels, spec.se), "silu", "sigmoid")
    if style == "regnet":
        return SEPlan(channels, round(spec.se * spec.in_channels), "relu", "sigmoid")
    raise BlockprofError(f"{spec.block}: unknown se_style {style!r}")


def squeeze_excite(prefix: str, plan: SEPlan, size: int) -> list[Layer]:
    """SE (Hu et al.): global pool, 1×1 reduce + act, 1×1 expand + gate, rescale."""
    channels, rd_channels = plan.channels, plan.rd_channels
    return [
        Layer(f"{prefix}.pool", "avgpool", channels, channels, size, 1),
        conv(f"{prefix}.fc1", channels, rd_channels, 1, 1, bias=True),
        pointwise(f"{prefix}.act", plan.act, rd_channels, 1),
        conv(f"{prefix}.fc2", rd_channels, channels, 1, 1, bias=True),
        pointwise(f"{prefix}.gate", plan.gate, channels, 1),
        pointwise(f"{prefix}.mul", "mul", channels, size),
    ]


def projection_shortcut(cin: int, cout: int, size: int, stride: int) -> list[Layer]:
    """ResNet's 'downsample': 1×1 conv (carrying the stride) + BN; none when the shapes match."""
    if stride == 1 and cin == cout:
        return []
    return conv_bn("downsample.0", "downsample.1", cin, cout, size, 1, stride)


def squeeze_channels(in_channels: int, se: float) -> int:
    """SE squeeze width: ``max(1, int(in_channels · se))`` (se=0.25 is EfficientNet's MBConv, 1/16 SENet's)."""
    return max(1, int(in_channels * se))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The TF MobileNet rounding torchvision uses for widths (``_make_divisible``): the nearest
    multiple of ``divisor`` (at least ``min_value``), one step up if that lost more than 10%."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded
