"""Model targets for tests/test_model.py: one per way of going wrong (the good ones are in
tests/published_models.py)."""

from __future__ import annotations

import torch
from torch import nn


def needs_args(depth: int) -> nn.Module:
    return nn.Sequential(*(nn.Linear(4, 4) for _ in range(depth)))


def raises() -> nn.Module:
    raise ValueError("no weights here\nsecond line that must not be shown")


def not_a_module() -> str:
    return "resnet"


class CrashesInForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("broken forward\nsecond line")


class ReadsValues(nn.Module):
    """A forward that reads a value: traced on one real sample."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * (1.0 if x.abs().max().item() >= 0 else 0.0)
