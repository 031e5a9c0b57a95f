"""The networks as ``torch.nn`` modules: torchvision's stems and heads around any blocks.

Written from torchvision's ``resnet.py``, ``regnet.py``, ``mobilenetv2.py``,
``mobilenetv3.py``, ``efficientnet.py`` and ``mnasnet.py``, apart from the shape lists
in :mod:`blockprof.networks.layout`: the tests check that both give the same counts,
and that both give torchvision's published totals. Module names follow torchvision
(``conv1``, ``layer1.0``, ``features.0.0``, ``trunk_output.block1``, ``classifier.1``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from blockprof.blocks.nn import activation


def conv_bn_act(
    cin: int, cout: int, kernel: int, stride: int = 1, act: str | None = None, groups: int = 1
) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias, padding k//2), BN, activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    return nn.Sequential(*layers, *([activation(act)] if act else []))


class _Pooled(nn.Module):
    """``features`` → global average pool → ``classifier``: the head every family but ResNet's shares."""

    features: nn.Module
    avgpool: nn.Module
    classifier: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


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


class RegNet(nn.Module):
    """RegNet's simple stem (3×3/2 conv 3→32, BN, ReLU), the stages as
    ``trunk_output.block1…``, global average pool, fc with bias."""

    def __init__(self, stages: Sequence[Sequence[nn.Module]], features: int, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = conv_bn_act(3, 32, 3, 2, "relu")
        self.trunk_output = nn.Sequential()
        for i, blocks in enumerate(stages, start=1):
            self.trunk_output.add_module(f"block{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.trunk_output(self.stem(x))), 1))


class MobileNetV2(_Pooled):
    """MobileNetV2's stem (3×3/2 conv 3→32, BN, ReLU6), the given blocks, the last 1×1
    conv to 1280 (BN, ReLU6), global average pool, dropout 0.2, fc with bias."""

    def __init__(
        self, blocks: Sequence[nn.Module], features: int, num_classes: int = 1000, last_channels: int = 1280
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_act(3, 32, 3, 2, "relu6"), *blocks, conv_bn_act(features, last_channels, 1, 1, "relu6")
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(last_channels, num_classes))


class MobileNetV3(_Pooled):
    """MobileNetV3's stem (3×3/2 conv, BN, hardswish), the given blocks, a 1×1 conv to
    ``last_conv`` (BN, hardswish), pool, fc → ``last_channel`` + hardswish + dropout 0.2, fc."""

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        features: int,
        stem: int,
        last_conv: int,
        last_channel: int,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_act(3, stem, 3, 2, "hardswish"), *blocks, conv_bn_act(features, last_conv, 1, 1, "hardswish")
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=0.2, inplace=True),
            nn.Linear(last_channel, num_classes),
        )


class EfficientNet(_Pooled):
    """EfficientNet V1/V2: stem (3×3/2 conv, BN, SiLU), one ``features.i`` per stage, a 1×1
    conv to ``last_conv`` (BN, SiLU), pool, dropout, fc. (torchvision's dropout rises
    from 0.2 to 0.5 with the model; no count depends on it.)"""

    def __init__(
        self,
        stages: Sequence[Sequence[nn.Module]],
        features: int,
        stem: int,
        last_conv: int,
        num_classes: int = 1000,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        body = [nn.Sequential(*blocks) for blocks in stages]
        self.features = nn.Sequential(
            conv_bn_act(3, stem, 3, 2, "silu"), *body, conv_bn_act(features, last_conv, 1, 1, "silu")
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last_conv, num_classes))


class MNASNet(nn.Module):
    """MNASNet-B1: ``layers.0–7`` the stem (3×3/2 conv, BN, ReLU, 3×3 depthwise, BN, ReLU,
    1×1, BN), ``layers.8–13`` the stacks, ``layers.14–16`` a 1×1 conv to 1280, BN, ReLU;
    global average pool (torchvision takes the mean), dropout 0.2, fc."""

    def __init__(
        self, stages: Sequence[Sequence[nn.Module]], features: int, stem: int, stem_out: int, num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
            nn.Conv2d(stem, stem, 3, 1, 1, groups=stem, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
            nn.Conv2d(stem, stem_out, 1, bias=False), nn.BatchNorm2d(stem_out),
            *(nn.Sequential(*blocks) for blocks in stages),
            nn.Conv2d(features, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.layers(x)), 1))
