"""``blockprof compare``: one row per block at equal width, counts cross-checked by three tools."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blockprof import schema
from blockprof.commands import options
from blockprof.commands.output import emit, emit_many
from blockprof.render.compare import count_view, timing_conditions, timing_footer, timing_view, tool_footer

if TYPE_CHECKING:
    import pandas as pd


def _write_html(
    df: pd.DataFrame,
    path: Path,
    names: tuple[str, ...],
    reference: str,
    tools: tuple[str, ...],
    budget: str | None,
    timing: dict[str, Any] | None,
) -> None:
    """The comparison as a report. compare has no run directory, so the environment (and,
    when timed, the settings and the device peaks the roofline used) is gathered here.
    At equal budget each block has a width of its own, so blocks meet at one input."""
    from blockprof.render.report import write_report
    from blockprof.runs import run_environment

    meta: dict[str, Any] = {"settings": {"tools": list(tools)}, "source": "blockprof compare"}
    devices: list[str] = []
    threads: int | None = None
    if timing is not None and "device" in df.columns:
        from blockprof.timing.calibrate import cached_peaks
        from blockprof.timing.harness import DEFAULT_ROUNDS
        from blockprof.timing.measurement import MIN_RUNS, MODES

        timed = df.dropna(subset=["device"])
        devices = sorted(set(timed["device"]))
        threads = int(timed["threads"].iloc[0]) if len(timed) else timing["threads"]
        meta["settings"].update(
            time=True,
            modes=list(MODES),
            threads=threads,
            min_run_time=timing["min_run_time"],
            rounds=DEFAULT_ROUNDS,
            min_runs=MIN_RUNS,
        )
        peaks = {
            f"{d}/{t}": cached_peaks(d, t, threads)
            for d, t in timed[["device", "dtype"]].drop_duplicates().itertuples(index=False)
        }
        meta["peaks"] = {k: p.as_dict() for k, p in peaks.items() if p is not None}
    widths = ", ".join(map(str, sorted(set(df["in_channels"]))))
    title = f"blockprof compare: {', '.join(names)} " + (f"within {budget}" if budget else f"at {widths} channels")
    write_report(
        path,
        df,
        title,
        reference=reference,
        environment=run_environment(devices, threads),
        meta=meta,
        compare_on=("spatial", "batch") if budget else ("in_channels", "spatial", "batch"),
    )
    click.echo(f"wrote {path}", err=True)


@click.command("compare")
@options.blocks
@options.grid_axes
@options.variants
@click.option(
    "--budget-params",
    type=click.IntRange(min=1),
    help="Equal budget: each block at the widest C → C within this many params.",
)
@click.option(
    "--budget-macs",
    type=click.IntRange(min=1),
    help="Equal budget: each block at the widest C → C within this many forward MACs.",
)
@click.option("--reference", help="Block the %ref columns divide by (default: the first block).")
@options.tools
@options.timing
@options.output()
@click.option(
    "--html",
    "html",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write an HTML report of the comparison (one self-contained file).",
)
def cli_command(
    blocks: tuple[str, ...],
    extra_blocks: tuple[str, ...],
    channels: tuple[int, ...],
    spatial: tuple[int, ...],
    batch: tuple[int, ...],
    budget_params: int | None,
    budget_macs: int | None,
    reference: str | None,
    tools: tuple[str, ...],
    fmt: str,
    output: Path | None,
    html: Path | None,
    **variant: Any,
) -> None:
    """Compare blocks at equal width (or equal budget): params, MACs, FLOPs, each tool's agreement.

    Every block maps C → C at stride 1 unless --stride/--out-channels say otherwise.
    With --budget-params/--budget-macs each block is compared at the widest width
    within the budget instead, since equal width flatters the bottleneck. --html also
    writes the comparison as a report.
    Examples: blockprof compare --channels 256 --html compare.html;  blockprof compare --budget-params 1180672
    """
    from blockprof.io import check_writable

    for path in (output, html):
        if path is not None:
            check_writable(path)  # before any counting or timing: a long run never ends in "cannot write"
    names = (*blocks, *extra_blocks)
    reference = reference or names[0]
    ctx = click.get_current_context()
    time, allow_slow = variant.pop("time"), variant.pop("allow_slow_dtype")
    options.refuse_unused_timing(ctx, time)
    timing = options.timing_options(**variant)
    variants = options.variant_options(**variant)
    if time:
        options.check_timing(timing["device"], timing["dtype"], allow_slow)
    if budget_params or budget_macs:
        df = _at_equal_budget(names, spatial, batch, budget_params, budget_macs, tools, variants)
        keys: tuple[str, ...] = ("spatial", "batch")
    else:
        from blockprof.api import compare

        df = compare(names, channels, spatial, batch, tools=tools, reference=reference, **variants)
        keys = ("in_channels", "spatial", "batch")
    from blockprof.api import add_relative

    df = add_relative(df, reference, metrics=schema.COUNT_METRICS, keys=keys)
    if time:
        _check_memory(df, timing)
    basis = "budget" if budget_params or budget_macs else "width"
    title = (
        f"blockprof compare — input {batch[0]}×C×{spatial[0]}×{spatial[0]}"
        if len(batch) == len(spatial) == 1
        else "blockprof compare"
    )
    counts_part, counts_footer = (count_view(df), title), tool_footer(df, reference, basis)
    streaming = fmt == "table" and output is None
    if streaming:  # the counts are ready in seconds: show them before the timing starts
        emit_many([counts_part], fmt, None, footer=counts_footer)
    if time:
        df = _timed(df, timing)
        df = add_relative(df, reference, metrics=schema.COUNT_METRICS + schema.TIME_METRICS, keys=keys)
    if html is not None:
        budget = (
            " and ".join(f"{n:,} {unit}" for n, unit in ((budget_params, "parameters"), (budget_macs, "MACs")) if n)
            or None
        )
        _write_html(df, html, names, reference, tools, budget, timing if time else None)
    if fmt in ("json", "csv"):
        emit(df, fmt, output)
        return
    timing_part = (
        [(timing_view(df), f"timing — {timing_conditions(df)}")]
        if time and "fwd_ms" in df.columns and df["fwd_ms"].notna().any()
        else []
    )
    if streaming:
        if timing_part:
            click.echo()
            emit_many(timing_part, fmt, None, footer=timing_footer(df))
        return
    footer = counts_footer + ("\n" + timing_footer(df) if timing_part else "")
    emit_many([counts_part, *timing_part], fmt, output, footer=footer)


def _check_memory(df: pd.DataFrame, timing: dict[str, Any]) -> None:
    """Refuse a timing that cannot fit in memory before anything is built."""
    import dataclasses

    from blockprof.records import to_records
    from blockprof.spec import BlockSpec
    from blockprof.timing.harness import conditions
    from blockprof.timing.memory import check_fits

    fields = [f.name for f in dataclasses.fields(BlockSpec)]
    records: list[dict[str, Any]] = to_records(df)
    specs = [BlockSpec(**{k: r[k] for k in fields}) for r in records if r.get("status") == "ok"]
    cond = conditions(timing["device"], timing["dtype"], threads=timing["threads"])
    check_fits(specs, device=cond.device, dtype=cond.dtype)


def _timed(df: pd.DataFrame, timing: dict[str, Any]) -> pd.DataFrame:
    """The rows with their timings, calibrating first if needed and showing progress on stderr."""
    from blockprof.api import add_timings
    from blockprof.commands.progress import TimingProgress, ensure_peaks

    ensure_peaks(timing["device"], timing["dtype"], timing["threads"])
    with TimingProgress(f"timing {int((df['status'] == 'ok').sum())} blocks") as progress:
        return add_timings(df, **timing, progress=progress.step, announce=progress.announce)


def _at_equal_budget(
    names: tuple[str, ...],
    spatial: tuple[int, ...],
    batch: tuple[int, ...],
    budget_params: int | None,
    budget_macs: int | None,
    tools: tuple[str, ...],
    variant: dict[str, Any],
) -> pd.DataFrame:
    from click.core import ParameterSource

    from blockprof.budget import compare_within_budget

    if click.get_current_context().get_parameter_source("channels") is not ParameterSource.DEFAULT:
        raise click.UsageError(
            "--channels and --budget-params/--budget-macs exclude each other: the budget picks each block's width"
        )
    if len(spatial) > 1 or len(batch) > 1:
        raise click.UsageError("an equal-budget comparison takes one --spatial and one --batch")
    return compare_within_budget(names, budget_params, budget_macs, spatial[0], batch[0], tools=tools, **variant)
