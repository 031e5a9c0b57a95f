"""MobileNetV2's inverted residual, with MBConv's optional squeeze-excitation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from blockprof.blocks import shapes
from blockprof.blocks.registry import BlockDef, register
from blockprof.counting.formulas import Layer
from blockprof.spec import ResolvedSpec

if TYPE_CHECKING:
    from torch import nn


@register
class InvertedResidualDef(BlockDef):
    name = "inverted_residual"
    summary = "MobileNetV2 inverted residual: 1×1 expand ×t, k×k depthwise (k=3), 1×1 linear projection, add"
    accepts = BlockDef.accepts | {"expansion", "kernel", "activation"}
    defaults = {**BlockDef.defaults, "expansion": 6.0, "activation": "relu6"}

    @staticmethod
    def hidden(spec: ResolvedSpec) -> int:
        """torchvision's ``int(round(in_channels · t))``."""
        return int(round(spec.in_channels * (spec.expansion or 6.0)))

    def inner_widths(self, spec: ResolvedSpec) -> dict[str, int]:
        return {"inner": self.hidden(spec)}

    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        c_in, c_out, h, s = spec.in_channels, spec.out_channels, self.hidden(spec), spec.stride
        act, kernel = spec.activation or "relu6", spec.kernel or 3
        expand = []
        if h != c_in:
            expand = [*shapes.conv_bn("conv_pw", "bn1", c_in, h, spec.spatial, 1), shapes.pointwise("act1", act, h, spec.spatial)]
        dw = shapes.conv_bn("conv_dw", "bn2", h, h, spec.spatial, kernel, s, groups=h)
        size = dw[0].out_size
        plan = shapes.se_plan(spec, h)
        se = shapes.squeeze_excite("se", plan, size) if plan else []
        skip = [shapes.pointwise("add", "add", c_out, size)] if s == 1 and c_in == c_out else []
        return [
            *expand,
            *dw,
            shapes.pointwise("act2", act, h, size),
            *se,
            *shapes.conv_bn("conv_pwl", "bn3", h, c_out, size, 1),
            *skip,
        ]

    def module(self, spec: ResolvedSpec) -> nn.Module:
        from blockprof.blocks.nn import InvertedResidual

        h = self.hidden(spec)
        return InvertedResidual(spec.in_channels, spec.out_channels, h, spec.stride, shapes.se_plan(spec, h),
                                spec.kernel or 3, spec.activation or "relu6")
