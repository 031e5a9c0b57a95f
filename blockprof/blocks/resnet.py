"""ResNet's BasicBlock and Bottleneck (torchvision layout, v1.5 stride placement)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from blockprof.blocks import shapes
from blockprof.blocks.base import BlockDef
from blockprof.blocks.registry import register
from blockprof.counting.formulas import Layer
from blockprof.errors import BlockprofError
from blockprof.spec import ResolvedSpec

if TYPE_CHECKING:
    from torch import nn


def _residual_tail(spec: ResolvedSpec, size: int, last_act: str) -> list[Layer]:
    """SE (if any), the shortcut, the add and the final activation shared by both ResNet blocks."""
    out = spec.out_channels
    tail = []
    se = shapes.se_plan(spec, out)
    if se:
        tail += shapes.squeeze_excite("se", se, size)
    tail += shapes.projection_shortcut(spec.in_channels, out, spec.spatial, spec.stride)
    tail += [shapes.pointwise("add", "add", out, size), shapes.pointwise(last_act, _act(spec), out, size)]
    return tail


def _act(spec: ResolvedSpec) -> str:
    return spec.activation or "relu"


#: what both ResNet blocks take beyond the base fields
_ACCEPTS = BlockDef.accepts | {"activation"}


@register
class Basic(BlockDef):
    name = "basic"
    summary = "ResNet BasicBlock: 3×3 conv-BN-ReLU, 3×3 conv-BN, add, ReLU (ResNet-18/34)"
    accepts = _ACCEPTS
    defaults: ClassVar[Mapping[str, Any]] = {**BlockDef.defaults, "expansion": 1.0}

    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        c_in, c_out, s = spec.in_channels, spec.out_channels, spec.stride
        first = shapes.conv_bn("conv1", "bn1", c_in, c_out, spec.spatial, 3, s)
        size = first[0].out_size
        return [
            *first,
            shapes.pointwise("act1", _act(spec), c_out, size),
            *shapes.conv_bn("conv2", "bn2", c_out, c_out, size, 3),
            *_residual_tail(spec, size, "act2"),
        ]

    def module(self, spec: ResolvedSpec) -> nn.Module:
        from blockprof.blocks.nn import BasicBlock

        return BasicBlock(
            spec.in_channels, spec.out_channels, spec.stride, shapes.se_plan(spec, spec.out_channels), _act(spec)
        )


@register
class BottleneckDef(BlockDef):
    name = "bottleneck"
    summary = "ResNet Bottleneck v1.5: 1×1 reduce, 3×3 (stride, groups), 1×1 expand, add, ReLU (ResNet-50, ResNeXt)"
    accepts = _ACCEPTS | {"expansion", "groups", "width_per_group"}
    defaults: ClassVar[Mapping[str, Any]] = {**BlockDef.defaults, "expansion": 4.0}

    def check(self, spec: ResolvedSpec) -> None:
        assert spec.expansion is not None  # filled in by resolve()
        planes = spec.out_channels / spec.expansion
        if not planes.is_integer():
            raise BlockprofError(
                f"bottleneck: out_channels {spec.out_channels} is not divisible by expansion {spec.expansion:g} "
                f"(inner width = out_channels / expansion); pick widths that divide, e.g. {_round_up(spec.out_channels, spec.expansion)}"
            )
        width = self.inner_width(spec)
        if width < 1 or width % spec.groups:
            raise BlockprofError(
                f"bottleneck: inner width {width} is not divisible by groups {spec.groups}; "
                f"use groups that divide {width} or a width that {spec.groups} divides"
            )

    @staticmethod
    def inner_width(spec: ResolvedSpec) -> int:
        """torchvision's ``int(planes · width_per_group / 64) · groups`` with ``width_per_group``
        given (ResNeXt-50 32×4d: groups=32, width_per_group=4); otherwise the plain
        ``out_channels / expansion`` split into ``groups`` groups."""
        planes = int(spec.out_channels / (spec.expansion or 4.0))
        if spec.width_per_group is None:
            return planes
        return int(planes * spec.width_per_group / 64) * spec.groups

    def inner_widths(self, spec: ResolvedSpec) -> dict[str, int]:
        return {"inner": self.inner_width(spec)}

    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        c_in, c_out, w, s = spec.in_channels, spec.out_channels, self.inner_width(spec), spec.stride
        mid = shapes.conv_bn("conv2", "bn2", w, w, spec.spatial, 3, s, spec.groups)
        size = mid[0].out_size
        return [
            *shapes.conv_bn("conv1", "bn1", c_in, w, spec.spatial, 1),
            shapes.pointwise("act1", _act(spec), w, spec.spatial),
            *mid,
            shapes.pointwise("act2", _act(spec), w, size),
            *shapes.conv_bn("conv3", "bn3", w, c_out, size, 1),
            *_residual_tail(spec, size, "act3"),
        ]

    def module(self, spec: ResolvedSpec) -> nn.Module:
        from blockprof.blocks.nn import Bottleneck

        se = shapes.se_plan(spec, spec.out_channels)
        return Bottleneck(
            spec.in_channels, spec.out_channels, self.inner_width(spec), spec.stride, spec.groups, se, _act(spec)
        )


def _round_up(value: int, step: float) -> int:
    step = int(step) if float(step).is_integer() else 1
    return -(-value // step) * step
