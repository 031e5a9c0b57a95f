"""A traced model's per-module tree and the sentences under it: totals, conventions, uncounted ops, each
tool's verdict per module, and the time shares.

Presentation only: the counts come from :func:`blockprof.models.count_model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from blockprof.models import ModelCount


def model_view(df: pd.DataFrame, tools: tuple[str, ...]) -> pd.DataFrame:
    """The tree as fvcore's flop_count_table draws it: names indented by depth, exact params and
    MACs, FLOPs in SI units, each tool's MACs beside the traced ones, and the time share."""
    import pandas as pd

    from blockprof.units import grouped, si

    view = pd.DataFrame({"module": ["  " * d + (n or "model") for n, d in zip(df["name"], df["depth"], strict=True)]})
    view["type"] = df["type"]
    view["params"] = df["params"].map(grouped)
    view["MACs"] = df["macs"].map(grouped)
    view["FLOPs"] = df["flops"].map(si)
    view["train\nFLOPs"] = df["train_flops"].map(si)
    for tool in tools:
        if f"{tool}_macs" in df:
            view[f"{tool}\nMACs"] = [
                grouped(round(v)) + ("" if v == m else " ≠")
                for v, m in zip(df[f"{tool}_macs"], df["macs"], strict=True)
            ]
    if "time_share" in df:
        view["time %"] = ["-" if v is None or v != v else f"{100 * v:.1f}%" for v in df["time_share"]]
    return view


def model_footer(result: ModelCount) -> str:
    """Under the table: totals, units and conventions, what was not counted, each tool's verdict."""
    from blockprof.units import grouped, si

    t = result.trace
    lines = [
        f"total: {grouped(t.params)} params ({grouped(t.params_conv)} conv weights), "
        f"{grouped(t.macs)} MACs = {si(t.flops)} FLOPs per forward"
        + (
            f", {si(t.train_flops)} FLOPs per training step"
            if t.train_flops is not None
            else ", no training step (no output needs a gradient)"
        ),
        "MACs: conv + linear + matmul multiply-accumulates (torchvision's _ops); FLOPs = 2·MACs; train FLOPs = "
        "2·(forward + input-gradient + weight-gradient MACs) of the backward autograd runs "
        "(the input needs no gradient, so the first layer has no input gradient).",
    ]
    if t.note:
        lines.append(f"note: {t.note}")
    unknown = ", ".join(f"{op}×{n}" for op, n in t.unknown_ops.items())
    lines.append(
        f"ops with no formula (not counted): {unknown}"
        if unknown
        else "every op ran has a formula (none left uncounted)"
    )
    for name, tool in result.tools.items():
        if isinstance(tool, str):
            lines.append(f"  {name}: skipped: {tool}")
            continue
        agreement = result.agreements[name]
        mark = (
            "= traced ✓"
            if agreement.agrees
            else f"≠ traced {grouped(t.macs)} by {grouped(round(agreement.total - t.macs))}"
        )
        lines.append(f"  {name}: {grouped(round(agreement.total))} MACs {mark} ({agreement.convention})")
        for rule, modules, macs in agreement.summary():
            example = next(d for d in agreement.differences if d.rule == rule)
            where = f"{modules} module{'s' if modules > 1 else ''}"
            lines.append(
                f"    {grouped(round(macs)):>14} MACs in {where}: {rule} (e.g. {example.module}: {example.reason})"
            )
        if tool.train_flops is not None and t.train_flops is not None and tool.train_flops != t.train_flops:
            lines.append(
                f"    training step: {si(tool.train_flops)} FLOPs vs traced {si(t.train_flops)} "
                f"({tool.train_flops / t.train_flops:.2f}×): "
                "FlopCounterMode counts a grouped conv's weight gradient groups× too high (torch 2.13)"
            )
    if result.timing is not None:
        parts = [
            f"{mode} {m.median * 1e3:.3g} ms (IQR {m.iqr * 1e3:.2g}, {m.runs} runs)"
            for mode, m in (("forward", result.timing.fwd), ("training step", result.timing.train))
            if m is not None
        ]
        lines.append(
            f"time ({result.timing.env.device}, {result.timing.env.threads} threads): {', '.join(parts)}; "
            "time % = each module's share of the forward, timed in place"
        )
    return "\n".join(lines)
