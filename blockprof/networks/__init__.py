"""Whole networks from blockprof's own blocks: torchvision's 43 ResNet, ResNeXt, Wide-ResNet,
RegNet, MobileNetV2/V3, EfficientNet (V1, V2) and MNASNet classification layouts.

:mod:`~blockprof.networks.layout` describes each network by shapes (pure),
:mod:`~blockprof.networks.nn` builds it as a torch module, and
:mod:`~blockprof.networks.count` counts it analytically (or, with a user block, op by op by the
tracer), with the module and with the tools, stage by stage::

    >>> from blockprof.networks import network_count
    >>> network_count("resnet50")["params"]
    25557032
"""

from blockprof.networks.count import (
    NetworkCount,
    TracedNetwork,
    analytic_network,
    build_network,
    network_count,
    stage_frame,
    traced_network,
)
from blockprof.networks.layout import PUBLISHED, PUBLISHED_PARAMS, NetworkLayout, default_spatial, layout, names

__all__ = [
    "PUBLISHED",
    "PUBLISHED_PARAMS",
    "NetworkCount",
    "NetworkLayout",
    "TracedNetwork",
    "analytic_network",
    "build_network",
    "default_spatial",
    "layout",
    "names",
    "network_count",
    "stage_frame",
    "traced_network",
]
