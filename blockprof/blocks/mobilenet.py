"""MobileNetV2's inverted residual, with MBConv's optional squeeze-excitation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from blockprof.blocks import shapes
from blockprof.blocks.registry import BlockDef, register
from blockprof.counting.formulas import Layer
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec

if TYPE_CHECKING:
    from torch import nn


@register
class InvertedResidualDef(BlockDef):
    name = "inverted_residual"
    summary = "MobileNetV2 inverted residual: 1×1 expand ×t, 3×3 depthwise, 1×1 linear projection, add"
    accepts = BlockDef.accepts | {"expansion"}

    def check(self, spec: BlockSpec) -> BlockSpec:
        if spec.groups != 1 or spec.width_per_group is not None:
            raise BlockprofError(
                "inverted_residual's 3×3 is always depthwise (groups = hidden width); drop groups/width_per_group"
            )
        return spec.replace(expansion=6.0 if spec.expansion is None else float(spec.expansion))

    @staticmethod
    def hidden(spec: BlockSpec) -> int:
        """torchvision's ``int(round(in_channels · t))``."""
        return int(round(spec.in_channels * spec.expansion))

    def inner_widths(self, spec: BlockSpec) -> dict[str, int]:
        return {"inner": self.hidden(spec)}

    def layers(self, spec: BlockSpec) -> list[Layer]:
        c_in, c_out, h, s = spec.in_channels, spec.out_channels, self.hidden(spec), spec.stride
        expand = []
        if h != c_in:
            expand = [*shapes.conv_bn("conv_pw", "bn1", c_in, h, spec.spatial, 1), shapes.pointwise("act1", "relu6", h, spec.spatial)]
        dw = shapes.conv_bn("conv_dw", "bn2", h, h, spec.spatial, 3, s, groups=h)
        size = dw[0].out_size
        se = shapes.squeeze_excite("se", h, shapes.squeeze_channels(c_in, spec.se), size) if spec.se else []
        skip = [shapes.pointwise("add", "add", c_out, size)] if s == 1 and c_in == c_out else []
        return [
            *expand,
            *dw,
            shapes.pointwise("act2", "relu6", h, size),
            *se,
            *shapes.conv_bn("conv_pwl", "bn3", h, c_out, size, 1),
            *skip,
        ]

    def module(self, spec: BlockSpec) -> nn.Module:
        from blockprof.blocks.nn import InvertedResidual

        se = shapes.squeeze_channels(spec.in_channels, spec.se) if spec.se else 0
        return InvertedResidual(spec.in_channels, spec.out_channels, self.hidden(spec), spec.stride, se)
