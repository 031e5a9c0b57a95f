"""``blockprof show``: a run's records as a table, JSON, CSV, Markdown or Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from blockprof.commands import options
from blockprof.commands.output import emit
from blockprof.render.runs import run_view
from blockprof.render.tables import FILE_FORMATS


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
            f"e.g. {busy['contention'].iloc[0]}): slower than the cell's own time; do not rank these."
        )
    emit(run_view(df, reference), fmt, output, title=f"{run}: {len(df)} cells, {failed} failed", footer=footer)
