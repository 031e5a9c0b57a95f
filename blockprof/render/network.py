"""A network's table and the sentences under it: per-stage counts, the published figures, each tool's verdict.

Presentation only: the record comes from :func:`blockprof.api.count_network`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def _mark(value: object) -> str:
    return "-" if value is None else ("✓" if value else "✗")


def network_view(record: dict[str, Any]) -> pd.DataFrame:
    """Per-stage rows and a total: exact params and MACs, FLOPs in SI units, and the per-stage
    checks against the analytic sum (module parameters, torch's MACs) or the trace (torch's MACs)."""
    import pandas as pd

    from blockprof.networks import stage_frame
    from blockprof.units import grouped, si

    df = stage_frame(record)
    view = pd.DataFrame(
        {
            "stage": df["stage"],
            "modules": df["modules"].fillna(""),
            "blocks": df["layout"].fillna(""),
            "output": df["output"].fillna(""),
        }
    )
    view["params"] = df["params"].map(grouped)
    view["MACs"] = df["macs"].map(grouped)
    view["FLOPs"] = df["flops"].map(si)
    view["train\nFLOPs"] = df["train_flops"].map(si)
    torch_checks = [None if t is None or t != t else t == m for t, m in zip(df["torch_macs"], df["macs"], strict=False)]
    if record["count_source"] == "analytic":
        checks = zip(df["module_params"] == df["params"], torch_checks, strict=False)
        view["checks\nmod to"] = [f"{_mark(p)}   {_mark(t)}" for p, t in checks]
    else:  # traced params are module.parameters() themselves: torch's MACs are the one independent check
        view["check\nto"] = [_mark(t) for t in torch_checks]
    return view


def network_footer(record: dict[str, Any]) -> str:
    """Under the table: the units, the published figure, and each tool's verdict."""
    from blockprof.counting.tools import TOOL_NAMES
    from blockprof.units import grouped, si

    lines = [
        "MAC = one multiply-accumulate of a conv or linear layer; FLOP = one floating-point op (1 MAC = 2 FLOPs);",
        "train FLOPs = forward + input-gradient + weight-gradient (none for the first conv: its input is data).",
    ]
    if record["count_source"] == "analytic":
        lines.append(
            "checks: mod = module.parameters() of the stage equals its analytic params; to = torch's MACs of the stage equal its analytic MACs."
        )
    else:
        lines += [
            f"{record['block']} is a user block: no closed form, so the network was traced op by op (every aten op priced",
            "by blockprof's formulas; train FLOPs from the backward ops autograd ran); params are module.parameters().",
            "check: to = torch's MACs of the stage equal its traced MACs.",
        ]
    published = record["published_params"]
    if published is not None:
        verdict = "equal ✓" if record["params"] == published == record["module_params"] else "DIFFER ✗"
        lines.append(
            f"params {grouped(record['params'])} (analytic), {grouped(record['module_params'])} (module), "
            f"{grouped(published)} (torchvision's published count): {verdict}"
        )
    gflops = record.get("published_gflops")
    if gflops is not None:
        verdict = "equal ✓" if round(record["macs"] / 1e9, 3) == gflops else "DIFFER ✗"
        lines.append(
            f'MACs {grouped(record["macs"])} = {record["macs"] / 1e9:.3f} G; torchvision publishes {gflops:g} "GFLOPS" '
            f"(its conv + linear MACs, 3 decimals): {verdict}"
        )
    lines.append(
        f"total: {grouped(record['macs'])} MACs ({si(record['macs'])}) = {grouped(record['flops'])} FLOPs per forward at batch {record['batch']}"
    )
    for tool in TOOL_NAMES:
        if f"{tool}_macs" in record:
            macs = record[f"{tool}_macs"]
            lines.append(
                f"  {tool}: {'-' if macs is None else grouped(round(macs))} MACs {_mark(record[f'{tool}_agrees'])} {record[f'{tool}_note']}"
            )
            if tool == "torch" and record.get("torch_train_agrees") is False:
                lines.append(f"  torch (training step): ✗ {record['torch_train_note']}")
    return "\n".join(lines)
