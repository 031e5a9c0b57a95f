"""``blockprof compare``: one row per block at equal width, counts cross-checked by three tools."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blockprof import schema
from blockprof.commands import options
from blockprof.commands.render import emit, emit_many
from blockprof.render.tables import PRIORITY

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
        view["C_in→C_out"] = [f"{a}→{b}" for a, b in zip(df["in_channels"], df["out_channels"], strict=False)]
    if df["spatial"].nunique() > 1 or df["batch"].nunique() > 1 or (df["stride"] != 1).any():
        view["input"] = [
            f"{n}×{c}×{s}×{s} /{st}"
            for n, c, s, st in zip(df["batch"], df["in_channels"], df["spatial"], df["stride"], strict=False)
        ]
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
            for w, p, m in zip(df["next_width"], df["next_params"], df["next_macs"], strict=False)
        ]
    checks = [c for c in ("fvcore_agrees", "thop_agrees", "torch_agrees", "torch_train_agrees") if c in df.columns]
    view.attrs[PRIORITY] = [
        "block",
        "C_in→C_out",
        "input",
        "params",
        "MACs",
        "params\n%ref",
        "MACs\n%ref",
        "train\nFLOPs",
        "params\n%budget",
        "MACs\n%budget",
        "next width\nover budget",
        "FLOPs",
        "inner",
        "conv\nweights",
        "conv\n%ref",
    ]
    if not checks:  # --tools none: the analytic count alone
        return view
    header = " ".join(
        {"fvcore_agrees": "fv", "thop_agrees": "th", "torch_agrees": "to", "torch_train_agrees": "bwd"}[c]
        for c in checks
    )
    view["checks\n" + header] = [
        " ".join(f"{_mark(row[c]):<{len(h)}}" for c, h in zip(checks, header.split(), strict=False)).rstrip()
        for _, row in df.iterrows()
    ]
    view.attrs[PRIORITY].insert(5, "checks\n" + header)  # a failed check matters more than a share
    return view


def tool_footer(df: pd.DataFrame, reference: str, basis: str = "width") -> str:
    """Sentences under the table: the reference, each tool's convention, and every disagreement."""
    from blockprof.counting.tools import TOOL_NAMES, adapter

    lines = [
        f"%ref: share of {reference}'s cost at the same {basis}. MAC = one multiply-accumulate; FLOP = one floating-point op (1 MAC = 2 FLOPs).",
        "MACs/FLOPs are conv + linear only; train FLOPs = forward + input-gradient + weight-gradient. Exact values: --format json or csv.",
    ]
    if not any(f"{tool}_agrees" in df.columns for tool in TOOL_NAMES):
        return "\n".join([*lines, "No tool cross-checked these counts (--tools none): the analytic count alone."])
    lines += [
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
    from blockprof.report import write_report
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

    df = add_relative(df, reference, metrics=REL_METRICS, keys=keys)
    if time:
        _check_memory(df, timing)
    basis = "budget" if budget_params or budget_macs else "width"
    title = (
        f"blockprof compare — input {batch[0]}×C×{spatial[0]}×{spatial[0]}"
        if len(batch) == len(spatial) == 1
        else "blockprof compare"
    )
    counts_part, counts_footer = (display_frame(df), title), tool_footer(df, reference, basis)
    streaming = fmt == "table" and output is None
    if streaming:  # the counts are ready in seconds: show them before the timing starts
        emit_many([counts_part], fmt, None, footer=counts_footer)
    if time:
        df = _timed(df, timing)
        df = add_relative(df, reference, metrics=REL_METRICS + TIME_METRICS, keys=keys)
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
        [(timing_frame(df), f"timing — {_conditions(df)}")]
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


REL_METRICS = schema.COUNT_METRICS
TIME_METRICS = schema.TIME_METRICS


def _ms(median: object, iqr: object, noisy: object, busy: object = None) -> str:
    if median is None or median != median:
        return "-"
    return f"{_number(median)} ({_number(iqr)}){' !' if noisy is True else ''}{' busy' if busy is True else ''}"


def timing_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The timing view: medians with their IQR, run counts, speed against the reference,
    achieved throughput and the share of the roofline."""
    import pandas as pd

    view = pd.DataFrame({"block": df["block"]})
    if df["in_channels"].nunique() > 1:
        view["C"] = df["in_channels"]
    busy = df["contended"] if "contended" in df.columns else [None] * len(df)
    view["fwd ms\n(IQR)"] = [
        _ms(m, q, n, b) for m, q, n, b in zip(df["fwd_ms"], df["fwd_iqr_ms"], df["fwd_noisy"], busy, strict=False)
    ]
    view["train ms\n(IQR)"] = [
        _ms(m, q, n, b) for m, q, n, b in zip(df["train_ms"], df["train_iqr_ms"], df["train_noisy"], busy, strict=False)
    ]
    view["train\n%ref"] = df["train_ms_rel"].map(_percent)
    view["runs"] = df["runs"].map(lambda r: "-" if r != r or r is None else str(int(r)))
    if "cpu_wall_ratio" in df.columns:
        view["CPU\n%wall"] = df["cpu_wall_ratio"].map(lambda r: "-" if r is None or r != r else f"{100 * r:.0f}%")
    view["fwd\nGFLOP/s"] = df["fwd_gflops_per_s"].map(_number)
    view["train\nGFLOP/s"] = df["train_gflops_per_s"].map(_number)
    view["FLOP/byte\nfwd"] = df["fwd_intensity"].map(_number)
    view["roofline\nfwd"] = df["roofline_fraction"].map(_percent)
    view["bound"] = df["fwd_bound"].map(lambda b: b if isinstance(b, str) else "-")
    view.attrs[PRIORITY] = [
        "block",
        "C",
        "fwd ms\n(IQR)",
        "train ms\n(IQR)",
        "CPU\n%wall",
        "train\n%ref",
        "runs",
        "roofline\nfwd",
        "fwd\nGFLOP/s",
        "bound",
        "train\nGFLOP/s",
        "FLOP/byte\nfwd",
    ]
    return view


def _number(value: Any) -> str:
    """Three significant figures without exponents: 0.0123, 1.23, 12.3, 123, 1234."""
    if value is None or value != value:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _conditions(df: pd.DataFrame) -> str:
    row = df.dropna(subset=["fwd_ms"]).iloc[0]
    return (
        f"{row['device_name']} ({row['device']}), {row['dtype']}, {int(row['threads'])} threads, {row['memory_format']}"
    )


def timing_footer(df: pd.DataFrame) -> str:
    """How the times were taken, and what is flagged."""
    lines = [
        "Times: median per call and its IQR in ms over 'runs' samples (the fewest behind the row), torch.utils.benchmark,",
        "blocks interleaved round-robin; fwd = eval + inference_mode, train = forward + backward with fresh gradients.",
        "! = IQR over 10% of the median: noisy, do not trust the median alone. Roofline: achieved GFLOP/s over",
        "min(peak GFLOP/s, intensity × peak GB/s) from 'blockprof calibrate' (cached per machine).",
    ]
    over = df[df["roofline_fraction"].astype("float64") > 1]
    if len(over):
        lines.append(
            f"  roofline above 100% for {', '.join(over['block'])}: the block outran the cached matmul peak (peaks taken "
            "under load, or a conv kernel that beats the matmul or does fewer multiplies than counted, e.g. Winograd); "
            "if calibrated under load, run 'blockprof calibrate --force' on a quiet machine."
        )
    errors = df[df["status"] != "ok"]
    lines += [f"  {row['block']} @ {row['in_channels']}: {row['error']}" for _, row in errors.iterrows()]
    lines += contention_lines(df)
    return "\n".join(lines)


def contention_lines(df: pd.DataFrame) -> list[str]:
    """What 'busy' means and how many rows carry it, with the load before and after."""
    if (
        "contended" not in df.columns or not df["contended"].notna().any()
    ):  # records from before contention was measured
        load, threads = df["load_average"].dropna(), df["threads"].dropna()
        if len(load) and load.iloc[0] > (threads.iloc[0] if len(threads) else 1):
            return [f"  load average {load.iloc[0]:.1f} when timing began: other work shared the cores; expect noise."]
        return []
    busy = df[df["contended"] == True]  # noqa: E712
    load = ""
    if "load_after" in df.columns and df["load_average"].notna().any() and df["load_after"].notna().any():
        load = f" (load average {df['load_average'].dropna().iloc[0]:.1f} before, {df['load_after'].dropna().iloc[-1]:.1f} after)"
    if busy.empty:
        return [
            f"CPU %wall: share of the timed wall time the timed code was on the CPU; at or above 90% in every row{load}."
        ]
    return [
        f"busy: {len(busy)} of {int(df['contended'].notna().sum())} rows were timed while other work held the cores{load}: "
        f"{busy['contention'].iloc[0]}.",
        "  Their times are slower than the block is, and the ranking between them means nothing; time again on a quiet machine.",
    ]


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
