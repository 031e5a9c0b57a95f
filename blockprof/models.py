"""Whole models named by the user (``package.module:callable``), counted by the tracer.

A target is any callable that returns an ``nn.Module`` when called with no
arguments: ``torchvision.models:resnet50``, or a factory of the user's own. It
is built on the meta device (no memory, no weight init), traced
(:mod:`blockprof.counting.trace`), and optionally checked against fvcore, thop
and torch per module and timed with the existing harness. Every way a target
can go wrong is one :class:`~blockprof.errors.BlockprofError` line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blockprof.counting.trace import CONVENTION, Trace, trace
from blockprof.errors import BlockprofError, one_line
from blockprof.spec import DEFAULT_MODEL_INPUT, MODEL_EXAMPLE, ModelSpec

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from blockprof.counting.reconcile import ModuleAgreement
    from blockprof.counting.tools import ToolCount
    from blockprof.timing.harness import BlockTiming

EXAMPLE = MODEL_EXAMPLE
DEFAULT_INPUT = DEFAULT_MODEL_INPUT
#: how deep a model cell's record keeps its module tree (the report's per-module table)
RECORD_DEPTH = 2


def model_factory(target: str) -> Callable[[], nn.Module]:
    """A no-argument builder for ``target``; the import and the signature are checked now."""
    from blockprof.blocks.user import load_target

    fn = load_target(target, "model", EXAMPLE, "no arguments")
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: find out by calling it
        params = []  # type: ignore[assignment]
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise BlockprofError(
            f"model {target!r} needs arguments ({', '.join(required)}); "
            "name a callable that builds the model with none (a function of your own that calls it)"
        )

    def build() -> nn.Module:
        from torch import nn

        try:
            model = fn()
        except Exception as e:  # the user's code: its failure is bad input, reported in one line
            raise BlockprofError(f"model {target!r}: calling it raised {one_line(e)}") from None
        if not isinstance(model, nn.Module):
            raise BlockprofError(f"model {target!r}: it returned a {type(model).__name__}, not a torch.nn.Module")
        return model

    return build


def build_meta_model(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` on the meta device; a constructor that reads values (and so fails there) is built on the CPU."""
    import torch

    try:
        with torch.device("meta"):
            return build()
    except Exception:  # e.g. RegNet's constructor reads a value; a real failure fails again, on the CPU
        with torch.device("cpu"):
            return build()


@dataclass
class ModelCount:
    """A model's trace, and, when asked for, each tool's count reconciled per module and its timing."""

    trace: Trace
    tools: dict[str, ToolCount | str] = field(default_factory=dict)
    agreements: dict[str, ModuleAgreement] = field(default_factory=dict)
    timing: BlockTiming | None = None
    layer_times: pd.DataFrame | None = None

    def frame(self, depth: int | None = None) -> pd.DataFrame:
        """One row per module down to ``depth`` (all by default): name, type, depth, params,
        macs, flops, train_flops; ``<tool>_macs`` for each tool counted (the subtree's sum of
        the tool's leaf counts) and ``time_share`` when timed."""
        import pandas as pd

        df = pd.DataFrame(self.trace.module_rows(depth))
        for name, agreement in self.agreements.items():
            df[f"{name}_macs"] = [agreement.subtree(m) for m in df["name"]]
        if self.layer_times is not None:
            shares = dict(zip(self.layer_times["layer"], self.layer_times["time_share"], strict=True))
            df["time_share"] = [_subtree_share(shares, m) for m in df["name"]]
        return df

    def record(self, depth: int | None = None) -> dict[str, Any]:
        """The JSON view: totals, conventions, unknown ops, and ``modules`` (see :meth:`frame`)."""
        from blockprof.records import to_records

        t = self.trace
        record: dict[str, Any] = {
            "model": t.model,
            "input_shape": list(t.input_shape),
            **t.totals(),
            "unknown_ops": t.unknown_ops,
            "elements": t.elements,
            "device": t.device,
            "note": t.note,
            "convention": CONVENTION,
        }
        if self.agreements or self.tools:
            record["tools"] = {
                name: ({"error": result} if isinstance(result, str) else self.agreements[name].as_dict())
                for name, result in self.tools.items()
            }
        if self.timing is not None:
            record["timing"] = {
                mode: (m.summary() if m is not None else None)
                for mode, m in (("fwd", self.timing.fwd), ("train", self.timing.train))
            }
        record["modules"] = to_records(self.frame(depth))
        return record


def _subtree_share(shares: dict[str, float], module: str) -> float | None:
    """A module's share of the forward's time: the sum over the timed leaves inside it."""
    inside = [
        v
        for k, v in shares.items()
        if not k.startswith("(") and (module == "" or k == module or k.startswith(module + "."))
    ]
    return sum(inside) if inside else None


def count_model(
    model: str | nn.Module,
    input_shape: Iterable[int] = DEFAULT_INPUT,
    *,
    tools: Iterable[str] = (),
    time: bool = False,
    timing: dict[str, Any] | None = None,
    train: bool = True,
) -> ModelCount:
    """Trace ``model`` (a ``package.module:callable`` target, or a module, left as handed in)."""
    from blockprof.counting.reconcile import reconcile_modules
    from blockprof.counting.record import count_module
    from blockprof.counting.tools import ToolCount

    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise BlockprofError(f"input shape {shape}: give positive sizes, e.g. 1,3,224,224")
    if isinstance(model, str):
        build = model_factory(ModelSpec(model, shape).target)
        module, label = build_meta_model(build), model
    else:
        module, label = model, type(model).__name__

        def build() -> nn.Module:
            import copy

            return copy.deepcopy(model)

    result = ModelCount(trace(module, shape, name=label, train=train, real=build))
    # the model's input is data, as in the trace: torch's training step gives it no gradient either
    result.tools = count_module(module, shape, tools, macs_hint=float(result.trace.macs), input_requires_grad=False)
    for name, counted in result.tools.items():
        if isinstance(counted, ToolCount):
            result.agreements[name] = reconcile_modules(result.trace, counted)
    if time:
        result.timing, result.layer_times = _time(build, shape, label, result.trace, timing or {})
    return result


def _time(
    build: Callable[[], nn.Module], shape: tuple[int, ...], label: str, t: Trace, options: dict[str, Any]
) -> tuple[BlockTiming, pd.DataFrame]:
    """Forward and training step with the harness; each leaf module's share of the forward in place."""
    from blockprof.timing.harness import time_module
    from blockprof.timing.layers import module_layer_times

    macs = {m["name"]: (m["type"], m["macs"]) for m in t.module_rows() if m["name"]}
    timing = time_module(build(), shape, label=label, **options)
    layer_options = {
        k: v
        for k, v in options.items()
        if k in ("device", "dtype", "channels_last", "threads", "min_run_time", "min_runs")
    }
    return timing, module_layer_times(build, shape, label, macs, **layer_options)


def model_record(spec: ModelSpec, tools: Iterable[str] = ()) -> dict[str, Any]:
    """A model cell's record, with the count fields a block's has (see :data:`blockprof.records.COUNT_FIELDS`):
    the trace's totals (``count_source`` ``'trace'``), the module's own parameter count, each tool reconciled
    with the trace, and ``modules``, the per-module counts down to :data:`RECORD_DEPTH`."""
    from blockprof.counting.record import count_module, traced_tool_fields

    build = model_factory(spec.target)
    module = build_meta_model(build)
    traced = trace(module, spec.input_shape, name=spec.label, real=build)
    tool_counts = count_module(module, spec.input_shape, tools, macs_hint=float(traced.macs), input_requires_grad=False)
    return {
        **spec.as_dict(),
        "module_params": sum(p.numel() for p in module.parameters()),
        "count_source": "trace",
        **traced.totals(),
        **traced_tool_fields(traced, tool_counts),
        "modules": traced.module_rows(RECORD_DEPTH),
        "status": "ok",
        "error": None,
    }


def model_builder(spec: ModelSpec) -> Callable[[], nn.Module]:
    """A builder of the model with real weights on the CPU (what the timer runs)."""
    import torch

    build = model_factory(spec.target)

    def real() -> nn.Module:
        with torch.device("cpu"):
            return build()

    return real
