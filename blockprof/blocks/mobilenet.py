"""The inverted-residual family: MobileNetV2's block, MBConv (its SE-carrying form in
MobileNetV3, EfficientNet and MNASNet) and EfficientNetV2's Fused-MBConv."""

from __future__ import annotations

from typing import TYPE_CHECKING

from blockprof.blocks import shapes, variants
from blockprof.blocks.registry import BlockDef, register
from blockprof.counting.formulas import Layer
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec

if TYPE_CHECKING:
    from torch import nn

#: the SE styles an inverted residual takes (regnet's belongs to the bottleneck family: regnet_y)
IR_SE_STYLES = ("standard", "mobilenetv3", "efficientnet")


def _hidden(spec: BlockSpec) -> int:
    """torchvision's ``int(round(in_channels · t))`` (EfficientNet's ``_make_divisible(in · t, 8)``
    is the same number for every width it builds)."""
    return int(round(spec.in_channels * spec.expansion))  # type: ignore[operator]


def _no_groups(name: str, spec: BlockSpec, what: str) -> None:
    if spec.groups != 1 or spec.width_per_group is not None:
        raise BlockprofError(f"{name}'s {what}; drop groups/width_per_group")


@register
class InvertedResidualDef(BlockDef):
    name = "inverted_residual"
    summary = "MobileNetV2 inverted residual / MBConv: 1×1 expand ×t, k×k depthwise, SE (optional), 1×1 linear projection, add"
    accepts = BlockDef.accepts | {"expansion", "kernel", "activation", "se_style"}

    def check(self, spec: BlockSpec) -> BlockSpec:
        _no_groups(self.name, spec, "k×k conv is always depthwise (groups = hidden width)")
        variants.check_kernel(self.name, spec)
        variants.check_activation(self.name, spec)
        variants.check_se_style(self.name, spec, IR_SE_STYLES)
        spec = spec.replace(expansion=6.0 if spec.expansion is None else float(spec.expansion))
        if variants.field(spec, "se_style") is not None and not spec.se:
            spec = spec.replace(se=variants.DEFAULT_SE)
        return spec

    @staticmethod
    def hidden(spec: BlockSpec) -> int:
        return _hidden(spec)

    @staticmethod
    def squeeze(spec: BlockSpec) -> int:
        """The SE's squeeze width in the spec's SE style (0 without SE)."""
        if not spec.se:
            return 0
        style = variants.SE_STYLES[variants.se_style_of(spec)]
        return style.squeeze(spec.in_channels, _hidden(spec), spec.se)

    def inner_widths(self, spec: BlockSpec) -> dict[str, int]:
        widths = {"inner": _hidden(spec)}
        if spec.se:
            widths["squeeze"] = self.squeeze(spec)
        return widths

    def layers(self, spec: BlockSpec) -> list[Layer]:
        c_in, c_out, h, s = spec.in_channels, spec.out_channels, _hidden(spec), spec.stride
        act, k = variants.activation_of(spec, "relu6"), variants.kernel_of(spec)
        expand = []
        if h != c_in:
            expand = [*shapes.conv_bn("conv_pw", "bn1", c_in, h, spec.spatial, 1), shapes.pointwise("act1", act, h, spec.spatial)]
        dw = shapes.conv_bn("conv_dw", "bn2", h, h, spec.spatial, k, s, groups=h)
        size = dw[0].out_size
        se = []
        if spec.se:
            style = variants.SE_STYLES[variants.se_style_of(spec)]
            se = shapes.squeeze_excite("se", h, self.squeeze(spec), size, style.act, style.gate)
        skip = [shapes.pointwise("add", "add", c_out, size)] if s == 1 and c_in == c_out else []
        return [*expand, *dw, shapes.pointwise("act2", act, h, size), *se, *shapes.conv_bn("conv_pwl", "bn3", h, c_out, size, 1), *skip]

    def module(self, spec: BlockSpec) -> nn.Module:
        from blockprof.blocks.nn import InvertedResidual

        style = variants.SE_STYLES[variants.se_style_of(spec)]
        return InvertedResidual(
            spec.in_channels, spec.out_channels, _hidden(spec), spec.stride, self.squeeze(spec),
            variants.kernel_of(spec), variants.activation_of(spec, "relu6"), style.act, style.gate,
        )  # fmt: skip


@register
class FusedMBConvDef(BlockDef):
    name = "fused_mbconv"
    summary = "EfficientNetV2 Fused-MBConv: k×k expand ×t (stride here), 1×1 linear projection, add; t = 1: one k×k conv"
    accepts = BlockDef.accepts - {"se"} | {"expansion", "kernel", "activation"}

    def check(self, spec: BlockSpec) -> BlockSpec:
        _no_groups(self.name, spec, "k×k conv is a dense conv")
        if spec.se:
            raise BlockprofError("fused_mbconv has no squeeze-excitation (EfficientNetV2 puts SE only in its MBConv stages); use inverted_residual")
        variants.check_kernel(self.name, spec)
        variants.check_activation(self.name, spec)
        return spec.replace(expansion=4.0 if spec.expansion is None else float(spec.expansion))

    def inner_widths(self, spec: BlockSpec) -> dict[str, int]:
        return {"inner": _hidden(spec)}

    def layers(self, spec: BlockSpec) -> list[Layer]:
        c_in, c_out, h, s = spec.in_channels, spec.out_channels, _hidden(spec), spec.stride
        act, k = variants.activation_of(spec, "silu"), variants.kernel_of(spec)
        if h != c_in:
            fused = shapes.conv_bn("conv_exp", "bn1", c_in, h, spec.spatial, k, s)
            size = fused[0].out_size
            body = [*fused, shapes.pointwise("act1", act, h, size), *shapes.conv_bn("conv_pwl", "bn2", h, c_out, size, 1)]
        else:
            fused = shapes.conv_bn("conv_exp", "bn1", c_in, c_out, spec.spatial, k, s)
            size = fused[0].out_size
            body = [*fused, shapes.pointwise("act1", act, c_out, size)]
        skip = [shapes.pointwise("add", "add", c_out, size)] if s == 1 and c_in == c_out else []
        return [*body, *skip]

    def module(self, spec: BlockSpec) -> nn.Module:
        from blockprof.blocks.nn import FusedMBConv

        return FusedMBConv(spec.in_channels, spec.out_channels, _hidden(spec), spec.stride, variants.kernel_of(spec), variants.activation_of(spec, "silu"))
