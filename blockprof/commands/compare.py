"""``blockprof compare``: one row per block at equal width, counts cross-checked by three tools."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blockprof.commands import options
from blockprof.commands.render import emit

if TYPE_CHECKING:
    import pandas as pd

def _percent(ratio: float) -> str:
    return "-" if ratio != ratio else f"{100 * ratio:.1f}%"


def _mark(value: object) -> str:
    return "-" if value is None or value != value else ("✓" if value else "✗")


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The compact view a reviewer reads: exact parameter counts, MACs and FLOPs in SI
    units, costs as % of the reference block, one ✓/✗ per tool check."""
    import pandas as pd

    from blockprof.units import grouped, si

    view = pd.DataFrame({"block": df["block"]})
    if (df["in_channels"] != df["out_channels"]).any() or df["in_channels"].nunique() > 1:
        view["C_in→C_out"] = [f"{a}→{b}" for a, b in zip(df["in_channels"], df["out_channels"])]
    if df["spatial"].nunique() > 1 or df["batch"].nunique() > 1 or (df["stride"] != 1).any():
        view["input"] = [f"{n}×{c}×{s}×{s} /{st}" for n, c, s, st in zip(df["batch"], df["in_channels"], df["spatial"], df["stride"])]
    view["inner"] = [grouped(v) if pd.notna(v) else "-" for v in df["inner_width"]]
    view["params"] = df["params"].map(grouped)
    view["params\n%ref"] = df["params_rel"].map(_percent)
    view["conv\nweights"] = df["params_conv"].map(grouped)
    view["conv\n%ref"] = df["params_conv_rel"].map(_percent)
    view["MACs"] = df["macs"].map(si)
    view["FLOPs"] = df["flops"].map(si)
    view["MACs\n%ref"] = df["macs_rel"].map(_percent)
    view["train\nFLOPs"] = df["train_flops"].map(si)
    for column, header in (("params_of_budget", "params\n%budget"), ("macs_of_budget", "MACs\n%budget")):
        if column in df.columns and df[column].notna().any():
            view[header] = df[column].map(_percent)
    if "next_width" in df.columns:
        view["next width\nover budget"] = [
            "-" if w != w or w is None else f"{int(w)}: {grouped(p)} params, {si(m)} MACs"
            for w, p, m in zip(df["next_width"], df["next_params"], df["next_macs"])
        ]
    checks = [c for c in ("fvcore_agrees", "thop_agrees", "torch_agrees", "torch_train_agrees") if c in df.columns]
    header = " ".join({"fvcore_agrees": "fv", "thop_agrees": "th", "torch_agrees": "to", "torch_train_agrees": "bwd"}[c] for c in checks)
    view["checks\n" + header] = [" ".join(f"{_mark(row[c]):<{len(h)}}" for c, h in zip(checks, header.split())).rstrip() for _, row in df.iterrows()]
    return view


def tool_footer(df: pd.DataFrame, reference: str, basis: str = "width") -> str:
    """Sentences under the table: the reference, each tool's convention, and every disagreement."""
    from blockprof.counting.tools import TOOL_NAMES, adapter

    lines = [
        f"%ref: share of {reference}'s cost at the same {basis}. MAC = one multiply-accumulate; FLOP = one floating-point op (1 MAC = 2 FLOPs).",
        "MACs/FLOPs are conv + linear only; train FLOPs = forward + input-gradient + weight-gradient. Exact values: --format json or csv.",
        "Checks (fv = fvcore, th = thop, to = torch forward, bwd = torch forward+backward), ✓ when the tool's own total",
        "equals the analytic count re-summed under that tool's convention:",
    ]
    for tool in TOOL_NAMES:
        if f"{tool}_agrees" not in df.columns:
            continue
        lines.append(f"  {tool}: {adapter(tool).CONVENTION}.")
        for column, what in ((f"{tool}_agrees", "forward"), (f"{tool}_train_agrees", "training step")):
            if column not in df.columns:
                continue
            note_column = column.replace("_agrees", "_note")
            for _, row in df[df[column] != True].iterrows():  # noqa: E712 (None and False both need a line)
                lines.append(f"    {row['block']} @ {row['in_channels']} ({what}): {row[note_column]}")
    return "\n".join(lines)


def _write_html(df: pd.DataFrame, path: Path, names: tuple[str, ...], reference: str, tools: tuple[str, ...], budget: str | None) -> None:
    """The comparison as a report: compare has no run directory, so the environment is taken
    here. At equal budget each block has a width of its own, so blocks meet at one input."""
    from blockprof.report import write_report
    from blockprof.runs import environment

    widths = ", ".join(map(str, sorted(set(df["in_channels"]))))
    title = f"blockprof compare: {', '.join(names)} " + (f"within {budget}" if budget else f"at {widths} channels")
    write_report(path, df, title, reference=reference, environment=environment(), compare_on=("spatial", "batch") if budget else ("in_channels", "spatial", "batch"),
                 meta={"settings": {"tools": list(tools)}, "source": "blockprof compare"})
    click.echo(f"wrote {path}", err=True)


@click.command("compare")
@options.blocks
@options.grid_axes
@options.variants
@click.option("--budget-params", type=click.IntRange(min=1), help="Equal budget: each block at the widest C → C within this many params.")
@click.option("--budget-macs", type=click.IntRange(min=1), help="Equal budget: each block at the widest C → C within this many forward MACs.")
@click.option("--reference", help="Block the %ref columns divide by (default: the first block).")
@click.option("--tools", "tools", type=options.NameList(), default="fvcore,thop,torch", show_default=True, help="Counting tools to cross-check with.")
@options.output()
@click.option("--html", "html", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML report of the comparison (one self-contained file).")
def cli_command(blocks: tuple[str, ...], extra_blocks: tuple[str, ...], channels: tuple[int, ...], spatial: tuple[int, ...],
                batch: tuple[int, ...], budget_params: int | None, budget_macs: int | None, reference: str | None,
                tools: tuple[str, ...], fmt: str, output: Path | None, html: Path | None, **variant: Any) -> None:
    """Compare blocks at equal width (or equal budget): params, MACs, FLOPs, each tool's agreement.

    Every block maps C → C at stride 1 unless --stride/--out-channels say otherwise.
    With --budget-params/--budget-macs each block is compared at the widest width
    within the budget instead, since equal width flatters the bottleneck. --html also
    writes the comparison as a report.
    Examples: blockprof compare --channels 256 --html compare.html;  blockprof compare --budget-params 1180672
    """
    names = (*blocks, *extra_blocks)
    reference = reference or names[0]
    if budget_params or budget_macs:
        df = _at_equal_budget(names, spatial, batch, budget_params, budget_macs, tools, reference, options.variant_options(**variant))
    else:
        from blockprof.api import compare

        df = compare(names, channels, spatial, batch, tools=tools, reference=reference, **options.variant_options(**variant))
    if html is not None:
        budget = " and ".join(f"{n:,} {unit}" for n, unit in ((budget_params, "parameters"), (budget_macs, "MACs")) if n) or None
        _write_html(df, html, names, reference, tools, budget)
    if fmt in ("json", "csv"):
        emit(df, fmt, output)
        return
    title = f"blockprof compare — input {batch[0]}×C×{spatial[0]}×{spatial[0]}" if len(batch) == len(spatial) == 1 else "blockprof compare"
    emit(display_frame(df), fmt, output, title=title, footer=tool_footer(df, reference, "budget" if budget_params or budget_macs else "width"))


def _at_equal_budget(names: tuple[str, ...], spatial: tuple[int, ...], batch: tuple[int, ...], budget_params: int | None,
                     budget_macs: int | None, tools: tuple[str, ...], reference: str, variant: dict[str, Any]) -> pd.DataFrame:
    from click.core import ParameterSource

    from blockprof.api import add_relative
    from blockprof.budget import compare_within_budget

    if click.get_current_context().get_parameter_source("channels") is not ParameterSource.DEFAULT:
        raise click.UsageError("--channels and --budget-params/--budget-macs exclude each other: the budget picks each block's width")
    if len(spatial) > 1 or len(batch) > 1:
        raise click.UsageError("an equal-budget comparison takes one --spatial and one --batch")
    df = compare_within_budget(names, budget_params, budget_macs, spatial[0], batch[0], tools=tools, **variant)
    return add_relative(df, reference, keys=("spatial", "batch"))
