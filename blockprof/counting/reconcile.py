"""Each tool's number against the analytic count, with the reason for every difference.

For every tool, the analytic layer table is re-summed under that tool's own
convention (``CONVENTION_TERMS`` in its adapter). If the tool prints exactly
that, it *agrees*, and the note says which terms make up its number (why it is
not the plain conv MACs). If not, it *disagrees*, and the note names the layers
where it differs. For PyTorch's backward count, one known bug is modelled
exactly (see :func:`_grouped_wgrad_bug`), so it is reported as that bug rather
than as a mystery.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from blockprof.counting.analytic import AnalyticCount
from blockprof.counting.tools import ToolCount, adapter
from blockprof.units import grouped, macs_to_flops


@dataclass(frozen=True)
class Agreement:
    """One tool's verdict: ``agrees`` is None where there is nothing to check against."""

    tool: str
    reported: float | None
    expected: int | None
    agrees: bool | None
    note: str


def convention_terms(count: AnalyticCount, tool: str) -> dict[str, int]:
    """The analytic count re-summed under ``tool``'s convention, by op kind (MACs)."""
    terms = adapter(tool).CONVENTION_TERMS
    out: Counter[str] = Counter()
    for row in count.rows:
        term = terms.get(row.layer.op)
        out[row.layer.op] += term(row.layer, row.cost, count.spec.batch) if term else 0
    return dict(out)


def _describe(terms: dict[str, int], tool: ToolCount, count: AnalyticCount) -> str:
    counted = " + ".join(f"{op} {grouped(v)}" for op, v in terms.items() if v)
    parts = [f"= {counted}"]
    reasons = adapter(tool.tool).ZERO_REASONS
    by_reason: dict[str, list[str]] = {}
    for op in sorted(op for op, v in terms.items() if not v):
        layers = [r.layer.name for r in count.rows if r.layer.op == op]
        shown = ", ".join(layers[:2]) + (f", … {len(layers)} layers" if len(layers) > 2 else "")
        by_reason.setdefault(reasons.get(op, "not in its convention"), []).append(f"{op} [{shown}]")
    parts += [f"0 for {', '.join(ops)}: {reason}" for reason, ops in by_reason.items()]
    if tool.skipped:
        parts.append("reports unsupported " + ", ".join(f"{op}×{n}" for op, n in sorted(tool.skipped.items())))
    if tool.scaled_from_batch:
        parts.append(f"ran at batch 1, ×{tool.scaled_from_batch}")
    return "; ".join(parts)


def _layer_differences(count: AnalyticCount, by_layer: dict[str, float], tool: str, scale: int = 1) -> str:
    terms = adapter(tool).CONVENTION_TERMS
    diffs = []
    for row in count.rows:
        if row.layer.name not in by_layer or row.layer.op not in terms:
            continue
        want = terms[row.layer.op](row.layer, row.cost, count.spec.batch) * scale
        got = by_layer[row.layer.name]
        if got != want:
            diffs.append(f"{row.layer.name}: {grouped(got)} vs {grouped(want)}")
    return "; ".join(diffs) if diffs else "no single layer differs (unattributed ops)"


def reconcile(count: AnalyticCount | None, tool: ToolCount) -> Agreement:
    """``tool``'s forward count against the analytic count under the tool's convention."""
    if count is None:
        return Agreement(tool.tool, tool.macs, None, None, "no closed form for this block: nothing to check against")
    terms = convention_terms(count, tool.tool)
    expected = sum(terms.values())
    if tool.macs == expected:
        return Agreement(tool.tool, tool.macs, expected, True, _describe(terms, tool, count))
    note = (
        f"reports {grouped(tool.macs)}, its convention gives {grouped(expected)} "
        f"({(tool.macs - expected) / expected:+.2%}); per layer: {_layer_differences(count, tool.by_layer, tool.tool)}"
    )
    return Agreement(tool.tool, tool.macs, expected, False, note)


def _grouped_wgrad_bug(count: AnalyticCount) -> int:
    """train FLOPs as torch 2.13's FlopCounterMode computes them: its conv weight-gradient
    formula multiplies by the full C_in where a grouped conv has C_in/groups per
    output channel, so that term comes out ``groups`` times too high (see
    pytorch/pytorch#183405)."""
    wgrad = sum(r.cost.bwd_weight_macs * (r.layer.groups if r.layer.op == "conv2d" else 1) for r in count.rows)
    return macs_to_flops(count.macs + count.bwd_input_macs + wgrad)


def reconcile_train(count: AnalyticCount | None, tool: ToolCount) -> Agreement:
    """A tool's forward+backward FLOPs against the analytic ``train_flops``."""
    if tool.train_flops is None:
        return Agreement(tool.tool, None, None, None, f"{tool.tool} does not count a backward")
    if count is None:
        return Agreement(tool.tool, tool.train_flops, None, None, "no closed form for this block: nothing to check against")
    expected = count.train_flops
    if tool.train_flops == expected:
        return Agreement(tool.tool, tool.train_flops, expected, True, "= 2·(forward + input-gradient + weight-gradient MACs)")
    ratio = tool.train_flops / expected
    if tool.train_flops == _grouped_wgrad_bug(count):
        grouped_layers = ", ".join(f"{r.layer.name} (groups={r.layer.groups})" for r in count.rows if r.layer.op == "conv2d" and r.layer.groups > 1)
        note = (
            f"known FlopCounterMode bug: the weight gradient of a grouped conv is counted groups× too high "
            f"[{grouped_layers}]; it reports {grouped(tool.train_flops)} FLOPs, {ratio:.2f}× the true {grouped(expected)}"
        )
    else:
        by_layer = {k: v / 2 for k, v in tool.train_by_layer.items()}
        note = (
            f"reports {grouped(tool.train_flops)}, analytic {grouped(expected)} ({ratio:.3f}×); "
            f"per layer (÷3 forward): {_layer_differences(count, by_layer, tool.tool, scale=3)}"
        )
    return Agreement(tool.tool, tool.train_flops, expected, False, note)
