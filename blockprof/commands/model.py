"""``blockprof model``: any model, traced op by op, as a per-module tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from blockprof import schema
from blockprof.commands import options
from blockprof.commands.output import emit, emit_text
from blockprof.render.model import model_footer, model_view
from blockprof.spec import DEFAULT_MODEL_INPUT

#: modules shown in the terminal table when --depth is not given (fvcore's flop_count_table shows 3 levels)
TABLE_DEPTH = 2


@click.command("model")
@click.argument("target", metavar="PKG.MODULE:CALLABLE")
@click.option(
    "--input",
    "input_shape",
    type=options.Shape(),
    default=",".join(map(str, DEFAULT_MODEL_INPUT)),
    show_default=True,
    help="Input shape, comma-separated (batch first).",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=None,
    help=f"Module tree depth shown (root = 0)  [default: {TABLE_DEPTH} in the table, all in json/csv].",
)
@click.option(
    "--tools",
    "tools",
    is_flag=True,
    help="Also count with fvcore, thop and torch, and reconcile each per module with the reasons they differ.",
)
@click.option(
    "--time",
    "time_it",
    is_flag=True,
    help="Also time the forward and training step, and each module's share of the forward.",
)
@click.option(
    "--device", type=click.Choice(schema.DEVICES), default="auto", show_default=True, help="Device for --time."
)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for --time [default: torch's own default].")
@options.output()
def cli_command(
    target: str,
    input_shape: tuple[int, ...],
    depth: int | None,
    tools: bool,
    time_it: bool,
    device: str,
    threads: int | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Count any model op by op: TARGET is a callable that returns a torch.nn.Module
    when called with no arguments. It is traced on the meta device (no memory), every
    aten op priced by blockprof's formulas, and shown as a per-module tree.

    Example: blockprof model torchvision.models:resnet50 --depth 1
    """
    options.refuse_unused_timing(click.get_current_context(), time_it, ("device", "threads"), "--time")
    if output is not None:
        from blockprof.io import check_writable

        check_writable(output)  # before tracing and timing: the work never ends in "cannot write"
    options.check_devices(device)
    from blockprof.api import count_model
    from blockprof.counting.tools import TOOL_NAMES

    tool_names = TOOL_NAMES if tools else ()
    timing: dict[str, Any] = {"device": device, "threads": threads}
    result = count_model(target, input_shape, tools=tool_names, time=time_it, timing=timing)
    if fmt == "json":
        emit_text(json.dumps(result.record(depth), indent=2, ensure_ascii=False), output)
        return
    df = result.frame(TABLE_DEPTH if depth is None and fmt in ("table", "markdown") else depth)
    from blockprof.spec import shape_text

    shape = shape_text(input_shape)
    emit(
        df if fmt == "csv" else model_view(df, tool_names),
        fmt,
        output,
        title=f"blockprof model {target} — input {shape}",
        footer=model_footer(result),
    )
