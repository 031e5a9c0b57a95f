"""Adapters for the counting tools: the only modules that import fvcore, thop or
``torch.utils.flop_counter``.

Each adapter module exports ``NAME``, ``CONVENTION`` (one sentence: what the
tool's number means), ``count(module, input_shape) -> ToolCount`` and
``CONVENTION_TERMS``, the tool's counting convention as one function per op
over the analytic layer table, and ``ZERO_REASONS``, why the tool counts 0 for
each op kind it leaves out (no handler, a zero rule, invisible to hooks).
:mod:`blockprof.counting.reconcile` uses the terms to rebuild the number the tool
*should* print, so a difference is either explained by convention or is a finding.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from blockprof.counting.formulas import Cost, Layer

if TYPE_CHECKING:
    from torch import nn

#: tool name → adapter module
ADAPTERS = {
    "fvcore": "blockprof.counting.tools.fvcore",
    "thop": "blockprof.counting.tools.thop",
    "torch": "blockprof.counting.tools.torch",
}
TOOL_NAMES = tuple(ADAPTERS)

#: one op's term in a tool's convention: (layer, its analytic cost, batch) → MACs the tool reports
Term = Callable[[Layer, Cost, int], int]


@dataclass(frozen=True)
class ToolCount:
    """One tool's forward count of one module, converted to MACs.

    ``raw`` is the number as the tool printed it, in ``raw_unit``; ``by_layer``
    is the tool's own per-module breakdown (MACs, keyed by module name, which
    matches the analytic layer names); ``skipped`` lists ops it did not count
    (fvcore's ``unsupported_ops``), never a silent 0. ``device`` says where the
    count ran ('meta' needs no memory); ``scaled_from_batch`` is set when the
    tool ran at batch 1 and the count was multiplied by the batch (exact, since
    every op here is per sample). ``train_flops`` is forward + backward, for the
    tools that count a backward.
    """

    tool: str
    macs: float
    raw: float
    raw_unit: str
    by_layer: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    device: str = "cpu"
    scaled_from_batch: int | None = None
    train_flops: float | None = None
    train_by_layer: dict[str, float] = field(default_factory=dict)


def adapter(name: str) -> ModuleType:
    return importlib.import_module(ADAPTERS[name])


def fresh_copy(module: nn.Module, device: str = "cpu") -> nn.Module:
    """A deep copy in eval mode on ``device``: tools add buffers, hooks and run
    forwards, and blockprof never changes a module it was handed."""
    clone = copy.deepcopy(module).eval()
    on_meta = any(t.is_meta for t in (*clone.parameters(), *clone.buffers()))
    # to_empty: meta holds no values to copy, and counts never depend on values
    return clone.to_empty(device=device) if device == "meta" or on_meta else clone.to(device)
