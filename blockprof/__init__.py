"""blockprof: parameters, FLOPs and latency of convolutional building blocks.

The public API is re-exported here lazily, so ``import blockprof`` (and the
CLI's ``--help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "BlockSpec": "blockprof.spec",
    "ResolvedSpec": "blockprof.spec",
    "BlockprofError": "blockprof.errors",
    "Grid": "blockprof.grid",
    "count": "blockprof.api",
    "count_module": "blockprof.api",
    "count_model": "blockprof.api",
    "compare": "blockprof.api",
    "explain": "blockprof.api",
    "analytic_count": "blockprof.api",
    "pivot": "blockprof.api",
    "relative": "blockprof.api",
    "select": "blockprof.api",
    "load_run": "blockprof.runs",
    "merge": "blockprof.runs",
    "Shard": "blockprof.grid",
    "build_report": "blockprof.render.report",
    "write_report": "blockprof.render.report",
}
# not ``sweep``: the name is the module blockprof.sweep, which shadows a lazy attribute
# once imported; use ``from blockprof.sweep import sweep``

__all__ = [*_API, "__version__"]


#: submodules reachable as attributes of ``import blockprof`` (imported on first use)
_SUBMODULES = ("api", "budget", "grid", "networks", "records", "render", "runs", "spec", "timing", "units")


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"blockprof.{name}")
    raise AttributeError(f"module 'blockprof' has no attribute {name!r}")
