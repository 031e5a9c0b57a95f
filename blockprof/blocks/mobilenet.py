"""The inverted-residual family: MobileNetV2's block, MBConv (its SE-carrying form in
MobileNetV3, EfficientNet and MNASNet) and EfficientNetV2's Fused-MBConv."""

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

#: the SE styles an inverted residual takes (regnet's belongs to the bottleneck family: regnet_y)
IR_SE_STYLES = ("standard", "mobilenetv3", "efficientnet")


def _hidden(spec: ResolvedSpec, default: float) -> int:
    """torchvision's ``int(round(in_channels · t))`` (EfficientNet's ``_make_divisible(in · t, 8)``
    is the same number for every width it builds)."""
    return round(spec.in_channels * (spec.expansion or default))


@register
class InvertedResidualDef(BlockDef):
    name = "inverted_residual"
    summary = "MobileNetV2 inverted residual / MBConv: 1×1 expand ×t, k×k depthwise, SE (optional), 1×1 projection, add"
    accepts = BlockDef.accepts | {"expansion", "kernel", "activation", "se_style"}
    defaults: ClassVar[Mapping[str, Any]] = {**BlockDef.defaults, "expansion": 6.0, "activation": "relu6"}

    def check(self, spec: ResolvedSpec) -> None:
        if spec.se_style not in (None, *IR_SE_STYLES):
            raise BlockprofError(
                f"inverted_residual takes se_style {', '.join(IR_SE_STYLES)}, not {spec.se_style!r} "
                "(regnet's SE sits after a grouped 3×3: use regnet_y)"
            )

    @staticmethod
    def hidden(spec: ResolvedSpec) -> int:
        return _hidden(spec, 6.0)

    def inner_widths(self, spec: ResolvedSpec) -> dict[str, int]:
        h = self.hidden(spec)
        plan = shapes.se_plan(spec, h)
        return {"inner": h, **({"squeeze": plan.rd_channels} if plan else {})}

    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        c_in, c_out, h, s = spec.in_channels, spec.out_channels, self.hidden(spec), spec.stride
        act, kernel = spec.activation or "relu6", spec.kernel or 3
        expand = []
        if h != c_in:
            expand = [
                *shapes.conv_bn("conv_pw", "bn1", c_in, h, spec.spatial, 1),
                shapes.pointwise("act1", act, h, spec.spatial),
            ]
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
                                spec.kernel or 3, spec.activation or "relu6")  # fmt: skip


@register
class FusedMBConvDef(BlockDef):
    name = "fused_mbconv"
    summary = (
        "EfficientNetV2 Fused-MBConv: k×k expand ×t (stride here), 1×1 linear projection, add; t = 1: one k×k conv"
    )
    accepts = frozenset({"stride", "out_channels", "expansion", "kernel", "activation"})
    defaults: ClassVar[Mapping[str, Any]] = {**BlockDef.defaults, "expansion": 4.0, "activation": "silu"}

    def check(self, spec: ResolvedSpec) -> None:
        if spec.se:
            raise BlockprofError(
                "fused_mbconv has no squeeze-excitation (EfficientNetV2 puts SE only in its MBConv stages); "
                "use inverted_residual"
            )

    @staticmethod
    def hidden(spec: ResolvedSpec) -> int:
        return _hidden(spec, 4.0)

    def inner_widths(self, spec: ResolvedSpec) -> dict[str, int]:
        return {"inner": self.hidden(spec)}

    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        c_in, c_out, h, s = spec.in_channels, spec.out_channels, self.hidden(spec), spec.stride
        act, k = spec.activation or "silu", spec.kernel or 3
        if h != c_in:
            fused = shapes.conv_bn("conv_exp", "bn1", c_in, h, spec.spatial, k, s)
            size = fused[0].out_size
            body = [
                *fused,
                shapes.pointwise("act1", act, h, size),
                *shapes.conv_bn("conv_pwl", "bn2", h, c_out, size, 1),
            ]
        else:
            fused = shapes.conv_bn("conv_exp", "bn1", c_in, c_out, spec.spatial, k, s)
            size = fused[0].out_size
            body = [*fused, shapes.pointwise("act1", act, c_out, size)]
        skip = [shapes.pointwise("add", "add", c_out, size)] if s == 1 and c_in == c_out else []
        return [*body, *skip]

    def module(self, spec: ResolvedSpec) -> nn.Module:
        from blockprof.blocks.nn import FusedMBConv

        return FusedMBConv(
            spec.in_channels,
            spec.out_channels,
            self.hidden(spec),
            spec.stride,
            spec.kernel or 3,
            spec.activation or "silu",
        )
