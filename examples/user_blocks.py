"""Example user blocks for ``--block examples.user_blocks:<name>`` (run from the repository root).

A user block is any callable ``(in_channels, out_channels, stride) -> nn.Module``:
a factory function (``convnext_block``) or an ``nn.Module`` class with that
signature (``FusedMBConv``). blockprof imports it, checks its output shape, and
counts it with the tools::

    blockprof compare --block examples.user_blocks:convnext_block --channels 96
    blockprof network resnet50 --block examples.user_blocks:FusedMBConv
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an N×C×H×W map (ConvNeXt's channels-first LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block (Liu et al., 2022): 7×7 depthwise conv, LayerNorm, 1×1 to 4C, GELU,
    1×1 back to C, layer scale, residual add. A change of width or resolution goes
    first through ConvNeXt's downsampling layer (LayerNorm + k=stride, s=stride conv)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, mlp_ratio: int = 4) -> None:
        super().__init__()
        if stride != 1 or in_channels != out_channels:
            self.downsample: nn.Module = nn.Sequential(
                LayerNorm2d(in_channels, eps=1e-6), nn.Conv2d(in_channels, out_channels, stride, stride)
            )
        else:
            self.downsample = nn.Identity()
        c, hidden = out_channels, mlp_ratio * out_channels
        self.conv_dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = LayerNorm2d(c, eps=1e-6)
        self.pw1 = nn.Conv2d(c, hidden, 1)
        self.act = nn.GELU()
        self.pw2 = nn.Conv2d(hidden, c, 1)
        self.gamma = nn.Parameter(torch.full((c, 1, 1), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        return x + self.gamma * self.pw2(self.act(self.pw1(self.norm(self.conv_dw(x)))))


def convnext_block(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """ConvNeXt block: 7×7 depthwise, LayerNorm, 1×1 ×4 expand, GELU, 1×1 project, layer scale."""
    return ConvNeXtBlock(in_channels, out_channels, stride)


class FusedMBConv(nn.Module):
    """EfficientNetV2's Fused-MBConv (Tan & Le, 2021): one 3×3 conv expands ×4 (and carries
    the stride), BN, SiLU; 1×1 projection, BN; residual add when stride 1 and widths match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 4) -> None:
        super().__init__()
        hidden = expansion * in_channels
        self.has_skip = stride == 1 and in_channels == out_channels
        self.conv_exp = nn.Conv2d(in_channels, hidden, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.act = nn.SiLU(inplace=True)
        self.conv_pwl = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pwl(self.act(self.bn1(self.conv_exp(x)))))
        return x + y if self.has_skip else y
