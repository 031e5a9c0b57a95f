"""A spec counted into a record: the analytic totals, the module's own parameters and each tool's count.

Below the public API (``blockprof.api`` re-exports these), so that networks, sweeps, budgets and
reports count the way ``blockprof.count`` does without importing the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from blockprof.counting.analytic import AnalyticCount, closed_form
from blockprof.counting.reconcile import Agreement, reconcile, reconcile_train
from blockprof.counting.tools import TOOL_NAMES, ToolCount, adapter
from blockprof.errors import BlockprofError, one_line

if TYPE_CHECKING:
    from torch import nn

    from blockprof.blocks.registry import BlockDef
    from blockprof.counting.trace import Trace
    from blockprof.spec import BlockSpec, ModelSpec, ResolvedSpec


def build_meta(definition: BlockDef, spec: ResolvedSpec) -> nn.Module:
    """Build on the meta device: shapes without memory, so any width counts in seconds."""
    import torch

    with torch.device("meta"):
        return definition.module(spec)


def count_module(
    module: nn.Module,
    input_shape: tuple[int, ...],
    tools: Iterable[str] = TOOL_NAMES,
    macs_hint: float | None = None,
    input_requires_grad: bool = True,
) -> dict[str, ToolCount | str]:
    """Each tool's count of ``module`` (left exactly as handed in: tools count a copy).

    A tool that cannot count it gives a one-line reason instead of a ToolCount.
    ``input_requires_grad`` False: torch's training step gives the input no gradient (a network's data).
    """
    results: dict[str, ToolCount | str] = {}
    for name in _ordered(tools):
        try:
            kwargs: dict[str, Any] = (
                {"macs_hint": macs_hint}
                if name == "fvcore"
                else {"input_requires_grad": input_requires_grad}
                if name == "torch"
                else {}
            )
            results[name] = adapter(name).count(module, input_shape, **kwargs)
        except BlockprofError as e:
            results[name] = str(e)
        except Exception as e:  # a tool's own failure is a finding about the tool, recorded
            results[name] = f"{name} failed: {one_line(e)}"
        result = results[name]
        if name == "torch" and isinstance(result, ToolCount) and macs_hint is None:
            macs_hint = result.macs
    return results


def _ordered(tools: Iterable[str]) -> list[str]:
    tools = list(tools)
    unknown = [t for t in tools if t not in TOOL_NAMES]
    if unknown:
        raise BlockprofError(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOL_NAMES)}")
    # torch first: its meta-device count sizes the forward that fvcore must really run
    return sorted(tools, key=lambda t: t != "torch")


def count_record(spec: BlockSpec | ResolvedSpec, tools: Iterable[str] = TOOL_NAMES) -> dict[str, Any]:
    """One record: the analytic totals, the module's own parameter count, and each tool's
    count with its agreement (see :data:`blockprof.records.COUNT_FIELDS`)."""
    definition, resolved, analytic = closed_form(spec)
    module = build_meta(definition, resolved)
    record: dict[str, Any] = dict(resolved.as_dict())
    record["inner_width"] = definition.inner_widths(resolved).get("inner")
    record["module_params"] = sum(p.numel() for p in module.parameters())
    tool_counts = count_module(module, resolved.input_shape, tools, macs_hint=analytic.macs if analytic else None)
    if analytic is not None:
        record.update(count_source="analytic", **analytic.totals())
        record.update(tool_fields(analytic, tool_counts))
    else:
        traced = traced_block(definition, resolved, module)
        record.update(count_source="trace", **traced.totals())
        record.update(traced_tool_fields(traced, tool_counts))
    record.update(status="ok", error=None)
    return record


def traced_block(definition: BlockDef, spec: ResolvedSpec, module: nn.Module | None = None) -> Trace:
    """A block with no closed form (a user block), counted op by op by the tracer. Its input
    comes from the layer before, so it needs a gradient: every product's input gradient counts."""
    import torch

    from blockprof.counting.trace import trace

    def real() -> nn.Module:
        with torch.device("cpu"):
            return definition.module(spec)

    return trace(
        module if module is not None else build_meta(definition, spec),
        spec.input_shape,
        name=spec.label,
        input_requires_grad=True,
        real=real,
    )


def traced_tool_fields(traced: Trace, tool_counts: dict[str, ToolCount | str]) -> dict[str, Any]:
    """:func:`tool_fields` for a block with no closed form: each tool reconciled with its trace."""
    from blockprof.counting.reconcile import reconcile_traced, reconcile_traced_train

    return _tool_fields(
        tool_counts, lambda tool: reconcile_traced(traced, tool), lambda tool: reconcile_traced_train(traced, tool)
    )


def tool_fields(analytic: AnalyticCount | None, tool_counts: dict[str, ToolCount | str]) -> dict[str, Any]:
    """``<tool>_macs``, ``<tool>_agrees`` and ``<tool>_note`` (and torch's training-step
    fields) for a record: each tool's count reconciled with the analytic one."""
    return _tool_fields(
        tool_counts, lambda tool: reconcile(analytic, tool), lambda tool: reconcile_train(analytic, tool)
    )


def _tool_fields(
    tool_counts: dict[str, ToolCount | str],
    judge: Callable[[ToolCount], Agreement],
    judge_train: Callable[[ToolCount], Agreement],
) -> dict[str, Any]:
    """The record fields of each tool's count, judged against the reference count (closed form or trace)."""
    fields: dict[str, Any] = {}
    for name, result in tool_counts.items():
        if isinstance(result, str):  # the tool did not run: its reason is the note
            fields.update({f"{name}_macs": None, f"{name}_agrees": None, f"{name}_note": result})
            continue
        verdict = judge(result)
        fields.update({f"{name}_macs": result.macs, f"{name}_agrees": verdict.agrees, f"{name}_note": verdict.note})
        if name == "torch":
            train = judge_train(result)
            fields.update(
                torch_train_flops=result.train_flops, torch_train_agrees=train.agrees, torch_train_note=train.note
            )
    return fields


def error_record(spec: BlockSpec | ResolvedSpec | ModelSpec, error: str) -> dict[str, Any]:
    """The record of a cell that failed: its spec, ``status='error'`` and the one-line error."""
    return {**spec.as_dict(), "status": "error", "error": error}
