"""Example models for ``blockprof model examples.models:<name>`` (run from the repository root).

``blockprof model`` takes any callable that returns an ``nn.Module`` when called with no
arguments. These two are built from ``torch.nn`` alone, so the documented commands run
without torchvision::

    blockprof model examples.models:small_cnn --depth 1
    blockprof model examples.models:tiny_vit --input 1,3,32,32
"""

from __future__ import annotations

import torch
from torch import nn


def small_cnn(num_classes: int = 10) -> nn.Module:
    """A VGG-like CNN for 32×32 inputs: three conv-BN-ReLU stages with max-pooling, then a linear head."""

    def stage(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)
        )

    return nn.Sequential(
        stage(3, 32), stage(32, 64), stage(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes)
    )


class TinyViT(nn.Module):
    """A ViT-like model: a patch-embedding conv, a class token and position embeddings,
    pre-norm transformer encoder layers (``nn.TransformerEncoderLayer``), a linear head."""

    def __init__(
        self, image: int = 32, patch: int = 8, dim: int = 64, depth: int = 2, heads: int = 4, num_classes: int = 10
    ) -> None:
        super().__init__()
        tokens = (image // patch) ** 2 + 1
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.encoder(x))[:, 0])


def tiny_vit() -> nn.Module:
    """TinyViT at its defaults: 32×32 input, 8×8 patches (16 tokens + the class token), width 64, 2 layers."""
    return TinyViT()
