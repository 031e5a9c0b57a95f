"""The networks as ``torch.nn`` modules: torchvision's stems and heads around any blocks.

Written from torchvision's ``resnet.py`` and ``mobilenetv2.py``, apart from the
shape lists in :mod:`blockprof.networks.layout`: the tests check that both give
the same counts, and that both give torchvision's published totals. Module names
follow torchvision (``conv1``, ``layer1.0``, ``features.0.0``, ``classifier.1``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ResNet(nn.Module):
    """ResNet's stem (7×7/2 conv, BN, ReLU, 3×3/2 max-pool), four stages of the given
    blocks, global average pool, fc with bias."""

    def __init__(self, stages: Sequence[Sequence[nn.Module]], features: int, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1, self.layer2, self.layer3, self.layer4 = (nn.Sequential(*blocks) for blocks in stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class MobileNetV2(nn.Module):
    """MobileNetV2's stem (3×3/2 conv 3→32, BN, ReLU6), the given blocks, the last 1×1
    conv to 1280 (BN, ReLU6), global average pool, dropout 0.2, fc with bias."""

    def __init__(self, blocks: Sequence[nn.Module], features: int, num_classes: int = 1000, last_channels: int = 1280) -> None:
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(inplace=True))
        last = nn.Sequential(nn.Conv2d(features, last_channels, 1, bias=False), nn.BatchNorm2d(last_channels), nn.ReLU6(inplace=True))
        self.features = nn.Sequential(stem, *blocks, last)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(last_channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
