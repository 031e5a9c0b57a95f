"""RegNet's X and Y blocks (Radosavovic et al., 2020; torchvision's ResBottleneckBlock).

The bottleneck family with RegNet's parametrisation: bottleneck width = output width
(multiplier 1), the 3×3 conv grouped at a fixed *group width* (``width_per_group``;
groups = width / group width), and for Y a squeeze-excitation after the grouped 3×3 whose
squeeze width comes from the block's input width (``int(round(0.25 · in_channels))``,
se_style ``regnet``).
"""

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

#: group width when the spec gives none (RegNetX-400MF's and -800MF's)
DEFAULT_GROUP_WIDTH = 16


class _RegNetDef(BlockDef):
    def check(self, spec: ResolvedSpec) -> None:
        group_width = self.group_width(spec)
        if spec.out_channels % group_width:
            raise BlockprofError(
                f"{self.name}: out_channels {spec.out_channels} is not a multiple of the group width {group_width}; "
                "use a width_per_group that divides it, or out_channels "
                f"{-(-spec.out_channels // group_width) * group_width}"
            )

    @staticmethod
    def group_width(spec: ResolvedSpec) -> int:
        """The group width, never wider than the block (torchvision's ``min(group_width, width)``)."""
        return min(spec.width_per_group or DEFAULT_GROUP_WIDTH, spec.out_channels)

    def groups(self, spec: ResolvedSpec) -> int:
        return spec.out_channels // self.group_width(spec)

    def inner_widths(self, spec: ResolvedSpec) -> dict[str, int]:
        plan = shapes.se_plan(spec, spec.out_channels)
        return {"inner": spec.out_channels, **({"squeeze": plan.rd_channels} if plan else {})}

    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        c_in, w, s = spec.in_channels, spec.out_channels, spec.stride
        mid = shapes.conv_bn("conv2", "bn2", w, w, spec.spatial, 3, s, self.groups(spec))
        size = mid[0].out_size
        plan = shapes.se_plan(spec, w)
        return [
            *shapes.conv_bn("conv1", "bn1", c_in, w, spec.spatial, 1),
            shapes.pointwise("act1", "relu", w, spec.spatial),
            *mid,
            shapes.pointwise("act2", "relu", w, size),
            *(shapes.squeeze_excite("se", plan, size) if plan else []),
            *shapes.conv_bn("conv3", "bn3", w, w, size, 1),
            *shapes.projection_shortcut(c_in, w, spec.spatial, s),
            shapes.pointwise("add", "add", w, size),
            shapes.pointwise("act3", "relu", w, size),
        ]

    def module(self, spec: ResolvedSpec) -> nn.Module:
        from blockprof.blocks.nn import RegNetBottleneck

        w = spec.out_channels
        return RegNetBottleneck(spec.in_channels, w, w, spec.stride, self.groups(spec), shapes.se_plan(spec, w))


@register
class RegNetX(_RegNetDef):
    name = "regnet_x"
    summary = "RegNetX block: 1×1, 3×3 grouped at a fixed group width (stride), 1×1, add, ReLU (bottleneck width = out)"
    accepts = frozenset({"stride", "out_channels", "width_per_group"})
    defaults: ClassVar[Mapping[str, Any]] = {
        **BlockDef.defaults,
        "expansion": 1.0,
        "width_per_group": DEFAULT_GROUP_WIDTH,
    }


@register
class RegNetY(_RegNetDef):
    name = "regnet_y"
    summary = "RegNetY block: RegNetX's with SE after the grouped 3×3 (squeeze = round(0.25 · in_channels))"
    #: the SE style is always RegNet's (se_style regnet, its default): a grid's --se-style passes it by
    accepts = frozenset({"stride", "out_channels", "width_per_group", "se"})
    defaults: ClassVar[Mapping[str, Any]] = {
        **BlockDef.defaults,
        "expansion": 1.0,
        "width_per_group": DEFAULT_GROUP_WIDTH,
        "se": 0.25,
        "se_style": "regnet",
    }
