"""``blockprof show``: a run's records as a table, JSON, CSV, Markdown or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blockprof.commands import options
from blockprof.commands.output import emit
from blockprof.render.tables import FILE_FORMATS, PRIORITY

if TYPE_CHECKING:
    import pandas as pd


def _timing(ms: Any, iqr: Any, runs: Any, noisy: Any, busy: Any = None) -> str:
    """``median (IQR, runs)``, with ``!`` when the IQR is over 10% of the median, ``busy`` when contended."""
    if ms is None or ms != ms:
        return "-"
    return f"{ms:.3g} ({iqr:.2g}, {runs:g}){' !' if noisy is True else ''}{' busy' if busy is True else ''}"


def display_frame(df: pd.DataFrame, reference: str | None) -> pd.DataFrame:
    """The compact view: one line per cell, counts in SI units, medians with half their IQR and run count."""
    import pandas as pd

    from blockprof.records import describe
    from blockprof.units import grouped, si

    ok = df["status"] == "ok"
    view = pd.DataFrame({"cell": [describe(r) for r in df.to_dict(orient="records")]})
    view["params"] = (
        [grouped(v) if good else "-" for v, good in zip(df["params"], ok, strict=False)] if "params" in df else "-"
    )
    view["MACs"] = [si(v) if good else "-" for v, good in zip(df.get("macs", [None] * len(df)), ok, strict=False)]
    for mode in ("fwd", "train"):
        if f"{mode}_ms" in df.columns and df[f"{mode}_ms"].notna().any():
            busy = df["contended"] if "contended" in df.columns else [None] * len(df)
            columns = (df[f"{mode}_ms"], df[f"{mode}_iqr_ms"], df[f"{mode}_runs"], df[f"{mode}_noisy"], busy)
            view[f"{mode} ms\n(IQR, runs)"] = [_timing(*v) for v in zip(*columns, strict=False)]
            view[f"{mode}\nGFLOP/s"] = [
                f"{v:.3g}" if v == v and v is not None else "-" for v in df[f"{mode}_gflops_per_s"]
            ]
    if reference:
        for metric in ("params", "macs", "fwd_ms", "train_ms"):
            if f"{metric}_rel" in df.columns:
                view[f"{metric}\n/{reference}"] = [f"{v:.3g}×" if v == v else "-" for v in df[f"{metric}_rel"]]
    view["status"] = [s if s == "ok" else f"error: {e}" for s, e in zip(df["status"], df["error"], strict=False)]
    view.attrs[PRIORITY] = [
        "cell",
        *(c for c in view.columns if " ms\n" in c),
        "status",
        "params",
        "MACs",
        *(c for c in view.columns if c.startswith(("params\n/", "macs\n/", "fwd_ms\n/", "train_ms\n/"))),
    ]
    return view


def _where(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE, e.g. spatial=56", param_hint="--where")
        out[key] = value
    return out


@click.command("show")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--pivot", "metric", metavar="METRIC", help="Show METRIC (e.g. macs, fwd_ms) as a block × width table.")
@click.option(
    "--where", multiple=True, metavar="KEY=VALUE", help="Keep the rows with this value (e.g. spatial=56); repeatable."
)
@click.option(
    "--reference", metavar="BLOCK", help="Add each cell's counts and times over this block's at the same point."
)
@options.output(FILE_FORMATS)
def cli_command(
    run: Path, metric: str | None, where: tuple[str, ...], reference: str | None, fmt: str, output: Path | None
) -> None:
    """Show the records of a sweep's run directory RUN, one row per cell.

    JSON, CSV and Parquet hold every field (the same records as 'compare --format
    json', with status and error; failed cells included); the table and Markdown
    show a compact view.

    Example: blockprof show runs/widths --pivot macs --where spatial=56
    """
    from blockprof.api import pivot, relative, select
    from blockprof.runs import load_run

    if fmt == "parquet" and output is None:
        raise click.BadParameter("parquet is binary: give -o FILE.parquet", param_hint="--format")
    if output is not None:
        from blockprof.io import check_writable

        check_writable(output)
    df = load_run(run)
    for note in df.attrs.get("notes", []):
        click.echo(f"note: {note}", err=True)
    conditions = _where(where)
    if metric:
        table = pivot(df, metric, **conditions).reset_index()
        table.columns = [str(c) for c in table.columns]
        emit(table, fmt, output, title=f"{metric} by block × width ({run})")
        return
    if conditions:
        df = select(df, **conditions)
    if reference:
        df = relative(df, reference)
    if fmt in ("json", "csv", "parquet"):
        emit(df, fmt, output)
        return
    failed = int((df["status"] != "ok").sum())
    footer = (
        "MACs: multiply-accumulates (1 MAC = 2 FLOPs). Times: median per call in ms (interquartile range, samples);\n"
        "! = IQR over 10% of the median: noisy, do not trust the median alone."
    )
    if "contended" in df.columns and (df["contended"] == True).any():  # noqa: E712
        busy = df[df["contended"] == True]  # noqa: E712
        footer += (
            f"\nbusy = timed while other work held the cores ({len(busy)} of {int(df['contended'].notna().sum())} timed cells; "
            f"e.g. {busy['contention'].iloc[0]}): slower than the block is; do not rank these."
        )
    emit(display_frame(df, reference), fmt, output, title=f"{run}: {len(df)} cells, {failed} failed", footer=footer)
