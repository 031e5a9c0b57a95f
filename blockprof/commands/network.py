"""``blockprof network``: a whole network's counts, stage by stage, checked by the module and the tools."""

from __future__ import annotations

import json
from pathlib import Path

import click

from blockprof.commands import options
from blockprof.commands.output import emit, emit_text
from blockprof.render.network import network_footer, network_view


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

        emit_text(explain_network(name, block, spatial, batch), output)
        return
    from blockprof.networks import network_count, stage_frame

    record = network_count(name, block, spatial, batch, tools)
    if fmt == "json":
        emit_text(json.dumps(record, indent=2, ensure_ascii=False), output)
        return
    size = record["spatial"]
    title = f"blockprof network {record['network']}{' with ' + record['block'] if record['swapped'] else ''} — input {batch}×3×{size}×{size}"
    emit(
        stage_frame(record) if fmt == "csv" else network_view(record),
        fmt,
        output,
        title=title,
        footer=network_footer(record),
    )
