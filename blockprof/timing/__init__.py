"""Timing: the harness (torch.utils.benchmark, interleaved, fwd and train), the
Measurement that keeps raw samples and flags noise, device peaks for the
roofline, the per-layer breakdown, and records → DataFrame.

    >>> from blockprof.timing import timing_table
    >>> df = timing_table([BlockSpec("bottleneck", 256)], device="cpu")
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "time_block": "blockprof.timing.harness",
    "time_blocks": "blockprof.timing.harness",
    "time_module": "blockprof.timing.harness",
    "BlockTiming": "blockprof.timing.harness",
    "DEFAULT_MIN_RUN_TIME": "blockprof.timing.harness",
    "Measurement": "blockprof.timing.measurement",
    "Task": "blockprof.timing.measurement",
    "NOISY_IQR_RATIO": "blockprof.timing.measurement",
    "calibrate": "blockprof.timing.calibrate",
    "cached_peaks": "blockprof.timing.calibrate",
    "Peaks": "blockprof.timing.calibrate",
    "layer_times": "blockprof.timing.layers",
    "environment": "blockprof.timing.env",
    "TIMING_FIELDS": "blockprof.timing.records",
    "timing_record": "blockprof.timing.records",
    "timing_frame": "blockprof.timing.records",
    "timing_table": "blockprof.timing.records",
}

__all__ = list(_API)


# ``calibrate`` is both a submodule and its main function; importing the function here
# binds the package attribute to the function after the import system bound it to the
# module, so ``from blockprof.timing import calibrate; calibrate("cpu")`` works however
# the submodule was reached (it imports no torch). The module: blockprof.timing.calibrate in sys.modules.
from blockprof.timing.calibrate import calibrate  # noqa: E402, F401


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'blockprof.timing' has no attribute {name!r}")
