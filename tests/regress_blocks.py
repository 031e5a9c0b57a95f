"""Slowed blocks for tests/test_regress.py and benchmarks/bench_regress.py: the same counts, ``repeats`` times the work."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from blockprof.blocks.nn import BasicBlock

#: how many times the built block runs per call (read when the block is built)
REPEATS = 1


class Repeated(nn.Module):
    def __init__(self, block: nn.Module, repeats: int) -> None:
        super().__init__()
        self.block, self.repeats = block, repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.repeats - 1):
            self.block(x)
        return self.block(x)


def basic_repeated(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """BasicBlock run REPEATS times per call."""
    return Repeated(BasicBlock(in_channels, out_channels, stride), REPEATS)


def slowed_block_source(repeats: int) -> str:
    """A self-contained module defining ``block(in_channels, out_channels, stride)``: a BasicBlock run ``repeats``
    times per call, for the trees an A/B check copies (they cannot import this file)."""
    return (
        "import torch\nfrom torch import nn\n\nfrom blockprof.blocks.nn import BasicBlock\n\n\n"
        f"{inspect.getsource(Repeated)}\n\n"
        "def block(in_channels, out_channels, stride):\n"
        f"    return Repeated(BasicBlock(in_channels, out_channels, stride), {repeats})\n"
    )
