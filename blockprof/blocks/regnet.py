"""RegNet's X and Y blocks (Radosavovic et al., 2020; torchvision's ResBottleneckBlock).

The bottleneck family with RegNet's parametrisation: bottleneck width = output width
(multiplier 1), the 3×3 conv grouped at a fixed *group width* (``width_per_group``;
groups = width / group width), and for Y a squeeze-excitation after the grouped 3×3 whose
squeeze width comes from the block's input width (``int(round(0.25 · in_channels))``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from blockprof.blocks import shapes, variants
from blockprof.blocks.registry import BlockDef, register
from blockprof.counting.formulas import Layer
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec

if TYPE_CHECKING:
    from torch import nn

#: group width when the spec gives none (RegNetX-400MF's and -800MF's)
DEFAULT_GROUP_WIDTH = 16


class _RegNetDef(BlockDef):
    has_se: ClassVar[bool]

    def check(self, spec: BlockSpec) -> BlockSpec:
        if spec.expansion not in (None, 1):
            raise BlockprofError(f"{self.name}'s bottleneck width is its output width (expansion 1, as torchvision's RegNets); drop expansion")
        if spec.groups != 1:
            raise BlockprofError(f"{self.name} takes its grouping as a group width: give width_per_group (groups = out_channels / width_per_group)")
        # torchvision's _adjust_widths_groups_compatibilty: a group never wider than the block
        group_width = min(spec.width_per_group or DEFAULT_GROUP_WIDTH, spec.out_channels)
        if spec.out_channels % group_width:
            raise BlockprofError(
                f"{self.name}: out_channels {spec.out_channels} is not a multiple of the group width {group_width}; "
                f"use a width_per_group that divides it, or out_channels {-(-spec.out_channels // group_width) * group_width}"
            )
        if self.has_se:
            variants.check_se_style(self.name, spec, ("regnet",))
            se = spec.se or variants.DEFAULT_SE
        elif spec.se:
            raise BlockprofError("regnet_x has no squeeze-excitation; use regnet_y (SE after the grouped 3×3)")
        else:
            se = 0.0
        return spec.replace(width_per_group=group_width, se=se)

    @staticmethod
    def groups(spec: BlockSpec) -> int:
        return spec.out_channels // spec.width_per_group  # type: ignore[operator]

    @staticmethod
    def squeeze(spec: BlockSpec) -> int:
        return variants.SE_STYLES["regnet"].squeeze(spec.in_channels, spec.out_channels, spec.se) if spec.se else 0

    def inner_widths(self, spec: BlockSpec) -> dict[str, int]:
        widths = {"inner": spec.out_channels}
        if spec.se:
            widths["squeeze"] = self.squeeze(spec)
        return widths

    def layers(self, spec: BlockSpec) -> list[Layer]:
        c_in, w, s = spec.in_channels, spec.out_channels, spec.stride
        mid = shapes.conv_bn("conv2", "bn2", w, w, spec.spatial, 3, s, self.groups(spec))
        size = mid[0].out_size
        se = shapes.squeeze_excite("se", w, self.squeeze(spec), size) if spec.se else []
        return [
            *shapes.conv_bn("conv1", "bn1", c_in, w, spec.spatial, 1),
            shapes.pointwise("act1", "relu", w, spec.spatial),
            *mid,
            shapes.pointwise("act2", "relu", w, size),
            *se,
            *shapes.conv_bn("conv3", "bn3", w, w, size, 1),
            *shapes.projection_shortcut(c_in, w, spec.spatial, s),
            shapes.pointwise("add", "add", w, size),
            shapes.pointwise("act3", "relu", w, size),
        ]

    def module(self, spec: BlockSpec) -> nn.Module:
        from blockprof.blocks.nn import RegNetBottleneck

        return RegNetBottleneck(spec.in_channels, spec.out_channels, spec.out_channels, spec.stride, self.groups(spec), self.squeeze(spec))


@register
class RegNetX(_RegNetDef):
    name = "regnet_x"
    summary = "RegNetX block: 1×1, 3×3 grouped at a fixed group width (stride), 1×1, add, ReLU (bottleneck width = out)"
    accepts = frozenset({"stride", "out_channels", "width_per_group"})
    has_se = False


@register
class RegNetY(_RegNetDef):
    name = "regnet_y"
    summary = "RegNetY block: RegNetX's with SE after the grouped 3×3 (squeeze = round(0.25 · in_channels))"
    accepts = frozenset({"stride", "out_channels", "width_per_group", "se", "se_style"})
    has_se = True
