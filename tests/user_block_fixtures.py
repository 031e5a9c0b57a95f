"""User blocks for tests/test_user_blocks.py: one well-behaved, one per way of going wrong."""

from __future__ import annotations

import torch
from torch import nn

from blockprof.blocks.nn import Bottleneck

NOT_CALLABLE = 42


def bottleneck(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """blockprof's own Bottleneck behind the user-block door, so its tool counts can be
    checked against the registered block's closed form."""
    return Bottleneck(in_channels, out_channels, out_channels // 4, stride)


def resnext(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """blockprof's ResNeXt-50 32×4d bottleneck (inner width 128 at 256 channels), as a user block."""
    return Bottleneck(in_channels, out_channels, out_channels // 2, stride, groups=32)


def raises(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    raise ValueError(f"cannot build {in_channels} channels\nsecond line that must not be shown")


def not_a_module(in_channels: int, out_channels: int, stride: int) -> object:
    return "conv"


def ignores_stride(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def ignores_out_channels(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    return nn.Conv2d(in_channels, in_channels, 3, stride, padding=1)


def returns_tuple(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, 1, stride)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.conv(x), x

    return Pair()


class NeedsValues(nn.Module):
    """A forward that reads a value (``.item()``), which the meta device cannot give:
    the shape check must fall back to a real sample."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * (1.0 if x.abs().max().item() >= 0 else 0.0)


class CrashesInForward(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[:, :1])  # wrong channel slice: fails on any device
