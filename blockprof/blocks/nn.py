"""The blocks as ``torch.nn`` modules, written to read like their papers.

These are what the tools count and the timer runs. They are written apart from
the shape lists in :mod:`blockprof.blocks.resnet` / ``mobilenet`` on purpose:
the tests check that both describe the same block. Layer names follow
torchvision (``conv1``, ``bn1``, ``downsample``) and timm (``conv_pw``,
``conv_dw``, ``conv_pwl``) so that per-layer tables line up with both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from blockprof.blocks.shapes import SEPlan

#: activation name (blockprof.schema.ACTIVATIONS, plus the SE gates) → module; ReLU/ReLU6 in
#: place as torchvision has them, the others out of place (see formulas._SAVED)
_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hardswish": nn.Hardswish,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "hardsigmoid": nn.Hardsigmoid,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    return _ACTIVATIONS[name]()


class StochasticDepth(nn.Module):
    """Stochastic depth (Huang et al., 2016) in torchvision's "row" mode, as
    ``torchvision.ops.StochasticDepth``: in training, each sample's residual branch is
    dropped with probability ``p`` and the kept ones are scaled by 1/(1−p); identity in eval."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity when shapes match, else ResNet's projection (1×1 conv + BN)."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al., 2018): channel weights from a global pool."""

    def __init__(self, plan: SEPlan) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(plan.channels, plan.rd_channels, 1, bias=True)
        self.act = activation(plan.act)
        self.fc2 = nn.Conv2d(plan.rd_channels, plan.channels, 1, bias=True)
        self.gate = activation(plan.gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class BasicBlock(nn.Module):
    """ResNet-18/34 block (He et al., 2016): 3×3 conv-BN-ReLU, 3×3 conv-BN, add, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, se: SEPlan | None = None, act: str = "relu"
    ) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, out_channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation(act)
        self.conv2 = _conv(out_channels, out_channels, 3)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.se = SqueezeExcite(se) if se else nn.Identity()
        self.downsample = _shortcut(in_channels, out_channels, stride)
        self.act2 = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.se(self.bn2(self.conv2(x)))
        return self.act2(x + shortcut)


class Bottleneck(nn.Module):
    """ResNet-50 block, torchvision's v1.5 (stride on the 3×3): 1×1 reduce,
    3×3 (grouped for ResNeXt), 1×1 expand, BN after each, add, ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        stride: int = 1,
        groups: int = 1,
        se: SEPlan | None = None,
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, width, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = activation(act)
        self.conv2 = _conv(width, width, 3, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = activation(act)
        self.conv3 = _conv(width, out_channels, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.se = SqueezeExcite(se) if se else nn.Identity()
        self.downsample = _shortcut(in_channels, out_channels, stride)
        self.act3 = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.se(self.bn3(self.conv3(x)))
        return self.act3(x + shortcut)


class InvertedResidual(nn.Module):
    """MobileNetV2 block (Sandler et al., 2018): 1×1 expand + ReLU6, k×k
    depthwise (k = 3 in MobileNetV2) + ReLU6, optional SE (MBConv), 1×1 linear
    projection; the residual add only when stride is 1 and the widths match."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        stride: int = 1,
        se: SEPlan | None = None,
        kernel: int = 3,
        act: str = "relu6",
    ) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_channels == out_channels
        if hidden != in_channels:
            self.conv_pw: nn.Module = _conv(in_channels, hidden, 1)
            self.bn1: nn.Module = nn.BatchNorm2d(hidden)
            self.act1 = activation(act)
        else:  # t = 1: MobileNetV2's first block has no expansion conv
            self.conv_pw, self.bn1, self.act1 = nn.Identity(), nn.Identity(), nn.Identity()
        self.conv_dw = _conv(hidden, hidden, kernel, stride, groups=hidden)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.act2 = activation(act)
        self.se = SqueezeExcite(se) if se else nn.Identity()
        self.conv_pwl = _conv(hidden, out_channels, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.drop_path: nn.Module = nn.Identity()  # a network's stochastic depth (EfficientNet's)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv_pw(x)))
        x = self.act2(self.bn2(self.conv_dw(x)))
        x = self.bn3(self.conv_pwl(self.se(x)))
        return self.drop_path(x) + shortcut if self.has_skip else x


class FusedMBConv(nn.Module):
    """EfficientNetV2's Fused-MBConv (Tan & Le, 2021): the 1×1 expansion and the
    depthwise k×k fused into one k×k conv (carrying the stride) + act, then the 1×1
    linear projection; with no expansion, the k×k conv alone (+ act). Residual add
    (behind a network's stochastic depth) when stride is 1 and the widths match."""

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int, stride: int = 1, kernel: int = 3, act: str = "silu"
    ) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_channels == out_channels
        if hidden != in_channels:
            self.conv_exp = _conv(in_channels, hidden, kernel, stride)
            self.bn1 = nn.BatchNorm2d(hidden)
            self.act1 = activation(act)
            self.conv_pwl: nn.Module = _conv(hidden, out_channels, 1)
            self.bn2: nn.Module = nn.BatchNorm2d(out_channels)
        else:  # t = 1: one k×k conv straight to the output width
            self.conv_exp = _conv(in_channels, out_channels, kernel, stride)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.act1 = activation(act)
            self.conv_pwl, self.bn2 = nn.Identity(), nn.Identity()
        self.drop_path: nn.Module = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.bn2(self.conv_pwl(self.act1(self.bn1(self.conv_exp(x)))))
        return self.drop_path(x) + shortcut if self.has_skip else x


class RegNetBottleneck(nn.Module):
    """RegNet's X / Y block (Radosavovic et al., 2020), torchvision's ResBottleneckBlock:
    1×1 to the bottleneck width, 3×3 grouped conv (fixed group width, carrying the
    stride), SE on the bottleneck width for Y, 1×1 to the output, projection shortcut
    when the shape changes, add, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, width: int, stride: int, groups: int, se: SEPlan | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, width, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = _conv(width, width, 3, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(se) if se else nn.Identity()
        self.conv3 = _conv(width, out_channels, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = _shortcut(in_channels, out_channels, stride)
        self.act3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.se(self.act2(self.bn2(self.conv2(x))))
        x = self.bn3(self.conv3(x))
        return self.act3(x + shortcut)
