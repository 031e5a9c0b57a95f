"""``blockprof network``: a whole network's counts, stage by stage, checked by the module and the tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blockprof.commands import options
from blockprof.commands.output import emit

if TYPE_CHECKING:
    import pandas as pd


def _mark(value: object) -> str:
    return "-" if value is None else ("✓" if value else "✗")


def display_frame(record: dict[str, Any]) -> pd.DataFrame:
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


def footer(record: dict[str, Any]) -> str:
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


@click.command("network")
@click.argument("name")
@click.option("--block", help="Swap the block of every stage: a registered block or package.module:callable.")
@click.option(
    "--spatial",
    type=click.IntRange(min=1),
    help="Input height = width, any size.  [default: the size torchvision evaluates the network at: 224 for most]",
)
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Batch size.")
@options.tools
@click.option("--explain", is_flag=True, help="Show the derivation stage by stage (text) instead of the table.")
@options.output()
def cli_command(
    name: str,
    block: str | None,
    spatial: int | None,
    batch: int,
    tools: tuple[str, ...],
    explain: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Count a whole network built from blockprof's blocks. NAME is one of
    torchvision's 43 classification networks, spelled as torchvision spells it:
    resnet18/34/50/101/152, resnext50_32x4d, resnext101_32x8d, resnext101_64x4d,
    wide_resnet50_2, wide_resnet101_2, regnet_x_400mf … regnet_x_32gf,
    regnet_y_400mf … regnet_y_128gf, mobilenet_v2, mobilenet_v3_small/large,
    efficientnet_b0 … b7, efficientnet_v2_s/m/l, mnasnet0_5/0_75/1_0/1_3.

    --block keeps every stage's depth, output width and stride and swaps the
    block type (its own defaults otherwise).

    Example: blockprof network efficientnet_b0 --explain
    """
    if output is not None:
        from blockprof.io import check_writable

        check_writable(output)
    if explain:
        if fmt != "table":
            raise click.BadParameter(
                "--explain prints the derivation as text; drop --format", param_hint="--explain/--format"
            )
        from blockprof.api import explain_network

        _write_text(explain_network(name, block, spatial, batch), output)
        return
    from blockprof.networks import network_count, stage_frame

    record = network_count(name, block, spatial, batch, tools)
    if fmt == "json":
        _write_text(json.dumps(record, indent=2, ensure_ascii=False), output)
        return
    size = record["spatial"]
    title = f"blockprof network {record['network']}{' with ' + record['block'] if record['swapped'] else ''} — input {batch}×3×{size}×{size}"
    emit(
        stage_frame(record) if fmt == "csv" else display_frame(record), fmt, output, title=title, footer=footer(record)
    )


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text)
        return
    from blockprof.io import write_output

    write_output(output, text + "\n")
    click.echo(f"wrote {output}", err=True)
