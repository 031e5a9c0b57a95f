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
from blockprof.counting.trace import Trace
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
        return Agreement(
            tool.tool, tool.train_flops, None, None, "no closed form for this block: nothing to check against"
        )
    expected = count.train_flops
    if tool.train_flops == expected:
        return Agreement(
            tool.tool, tool.train_flops, expected, True, "= 2·(forward + input-gradient + weight-gradient MACs)"
        )
    ratio = tool.train_flops / expected
    if tool.train_flops == _grouped_wgrad_bug(count):
        grouped_layers = ", ".join(
            f"{r.layer.name} (groups={r.layer.groups})"
            for r in count.rows
            if r.layer.op == "conv2d" and r.layer.groups > 1
        )
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


# --- any traced model: each tool against the trace, module by module ---


@dataclass(frozen=True)
class ModuleDifference:
    """One leaf module where a tool's count is not the traced MACs, and why."""

    module: str
    tool_macs: float
    traced_macs: int
    reason: str
    #: the reason without this module's numbers, to group differences by: "adds 2× norm values"
    rule: str = "unexplained"


@dataclass(frozen=True)
class ModuleAgreement:
    """A tool's count of a whole model against the trace: its total, its per-leaf counts,
    and each leaf where it differs with the reason (the op kinds the leaf runs)."""

    tool: str
    convention: str
    total: float
    traced: int
    by_module: dict[str, float]
    differences: tuple[ModuleDifference, ...]

    @property
    def agrees(self) -> bool:
        return self.total == self.traced

    def subtree(self, module: str) -> float:
        """The tool's count of ``module``: the sum of its leaves inside it (the root: the tool's total,
        which includes the ops no leaf ran)."""
        if module == "":
            return self.total
        return sum(v for k, v in self.by_module.items() if k == module or k.startswith(module + "."))

    def summary(self) -> list[tuple[str, int, float]]:
        """The differences grouped by rule: (rule, modules, MACs it adds), largest first."""
        groups: dict[str, list[float]] = {}
        for d in self.differences:
            groups.setdefault(d.rule, []).append(d.tool_macs - d.traced_macs)
        return sorted(((rule, len(v), sum(v)) for rule, v in groups.items()), key=lambda g: -abs(g[2]))

    def as_dict(self) -> dict[str, object]:
        return {
            "macs": self.total,
            "traced_macs": self.traced,
            "agrees": self.agrees,
            "convention": self.convention,
            "summary": [dict(rule=r, modules=n, macs=m) for r, n, m in self.summary()],
            "differences": [
                {"module": d.module, "tool_macs": d.tool_macs, "traced_macs": d.traced_macs, "reason": d.reason}
                for d in self.differences
            ],
        }


def _explain_difference(
    tool: str, tool_macs: float, macs: int, elements: dict[str, int], matmuls: int, kind: str
) -> tuple[str, str]:
    """(the reason, the rule it follows) for one module's difference, from the op kinds it runs."""
    diff = tool_macs - macs
    if diff > 0:
        for op_kind, values in elements.items():
            if values and float(diff / values).is_integer():
                times = int(diff / values)
                reason = f"{tool} adds {times}× the {grouped(values)} values its {op_kind} op writes (not MACs)"
                return reason, f"adds {times}× the values of {kind} ({op_kind})"
        return f"{tool} counts {grouped(diff)} MACs more; no op kind of this {kind} explains it", "unexplained"
    if matmuls and -diff == matmuls:
        reason = f"{tool} misses its {grouped(matmuls)} matmul MACs (functional code inside the module)"
        return reason, f"misses the matmuls inside {kind}"
    if tool_macs == 0:
        return f"{tool} counts nothing for a {kind} (its {grouped(macs)} MACs unseen)", f"counts nothing for {kind}"
    return f"{tool} counts {grouped(-diff)} MACs fewer; no op kind of this {kind} explains it", "unexplained"


def reconcile_modules(trace: Trace, tool: ToolCount) -> ModuleAgreement:
    """``tool``'s per-module count of a model against its trace, leaf by leaf; the ops run in no
    leaf (the root's own functional code) are one row, ``(outside modules)``."""
    names = [m.name for m in trace.modules if m.name]
    kinds = {m.name: m.type for m in trace.modules}
    leaves = {n for n in names if not any(o.startswith(n + ".") for o in names)}
    macs: Counter[str] = Counter()
    matmuls: Counter[str] = Counter()
    elements: dict[str, Counter[str]] = {}
    for op in trace.ops:
        if op.phase != "forward":
            continue
        owner = next((a for a in reversed(_path(op.module)) if a in leaves), OUTSIDE)
        macs[owner] += trace.scale * op.cost.macs
        if op.cost.kind in ("matmul", "attention"):
            matmuls[owner] += trace.scale * op.cost.macs
        if op.cost.elements:
            elements.setdefault(owner, Counter())[op.cost.kind] += trace.scale * op.cost.elements
    by_module = dict(tool.by_layer)
    differences = []
    for name in [n for n in names if n in leaves] + [OUTSIDE]:
        if name == OUTSIDE:
            got = tool.macs - sum(v for k, v in by_module.items() if k in leaves)
        else:
            got = by_module.get(name, 0.0)
        if got != macs[name]:
            kind = kinds.get(name, "the root's own code")
            found = dict(elements.get(name, {}))
            reason, rule = _explain_difference(tool.tool, got, macs[name], found, matmuls[name], kind)
            differences.append(ModuleDifference(name, got, macs[name], reason, rule))
    convention = adapter(tool.tool).CONVENTION
    return ModuleAgreement(tool.tool, convention, tool.macs, trace.macs, by_module, tuple(differences))


OUTSIDE = "(outside modules)"


def _path(module: str) -> list[str]:
    parts = module.split(".") if module else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def reconcile_traced(trace: Trace, tool: ToolCount) -> Agreement:
    """``tool``'s forward count of a block with no closed form against its trace: it agrees when it
    equals the traced MACs, or when every module where it differs is explained by the values an
    op kind there writes (its convention for norms and pools); the note names each rule."""
    modules = reconcile_modules(trace, tool)
    if modules.agrees:
        return Agreement(tool.tool, tool.macs, trace.macs, True, "= the traced MACs (conv + linear + matmul)")
    rules = "; ".join(
        f"{rule} in {n} module{'s' if n > 1 else ''} ({grouped(round(m))})" for rule, n, m in modules.summary()
    )
    explained = all(d.rule != "unexplained" for d in modules.differences)
    note = f"traced {grouped(trace.macs)} MACs, {tool.tool} {round(tool.macs - trace.macs):+,}: {rules}"
    return Agreement(tool.tool, tool.macs, trace.macs, explained, note)


def reconcile_traced_train(trace: Trace, tool: ToolCount) -> Agreement:
    """A tool's forward+backward FLOPs against the traced training step."""
    if tool.train_flops is None:
        return Agreement(tool.tool, None, None, None, f"{tool.tool} does not count a backward")
    if trace.train_flops is None:
        note = "the trace has no training step: no output needs a gradient"
        return Agreement(tool.tool, tool.train_flops, None, None, note)
    if tool.train_flops == trace.train_flops:
        note = "= the backward ops autograd ran, traced"
        return Agreement(tool.tool, tool.train_flops, trace.train_flops, True, note)
    causes = ["FlopCounterMode counts a grouped conv's weight gradient groups× too high"]
    if not trace.input_requires_grad:  # a whole model: torch's adapter still feeds it an input that needs a gradient
        causes.append("torch also counts the first layer's input gradient, which a model's data input does not need")
    note = (
        f"reports {grouped(tool.train_flops)}, traced {grouped(trace.train_flops)} "
        f"({tool.train_flops / trace.train_flops:.3f}×); {'; and '.join(causes)}"
    )
    return Agreement(tool.tool, tool.train_flops, trace.train_flops, False, note)
