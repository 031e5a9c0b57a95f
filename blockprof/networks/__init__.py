"""Whole networks from blockprof's own blocks: ResNet-18/34/50/101 and MobileNetV2.

:mod:`~blockprof.networks.layout` describes each network by shapes (pure),
:mod:`~blockprof.networks.nn` builds it as a torch module, and
:mod:`~blockprof.networks.count` counts it analytically, with the module and
with the tools, stage by stage::

    >>> from blockprof.networks import network_count
    >>> network_count("resnet50")["params"]
    25557032
"""

from blockprof.networks.count import NetworkCount, analytic_network, build_network, network_count, stage_frame
from blockprof.networks.layout import PUBLISHED_PARAMS, NetworkLayout, layout, names

__all__ = ["PUBLISHED_PARAMS", "NetworkCount", "NetworkLayout", "analytic_network", "build_network", "layout", "names", "network_count", "stage_frame"]
