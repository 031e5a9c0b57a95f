"""``blockprof plot``: a run's figures in one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from blockprof.commands import options
from blockprof.errors import BlockprofError


@click.command("plot")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write."
)
@click.option(
    "--plots",
    "names",
    type=options.NameList(),
    default="counts,latency,throughput,roofline,pareto",
    show_default=True,
    help="Which figures (those that need timings are skipped for a counts-only run).",
)
def cli_command(run: Path, output: Path, names: tuple[str, ...]) -> None:
    """Plot the run directory RUN into one HTML file (plotly.js inlined: opens offline).

    Example: blockprof plot runs/widths -o widths.html
    """
    from blockprof.io import check_writable, write_output
    from blockprof.render.plots import build_all
    from blockprof.render.report.html import figures_page
    from blockprof.runs import load_run

    check_writable(output)
    df = load_run(run)
    if len(df) and "status" in df.columns and (df["status"] != "ok").all():
        raise BlockprofError(
            f"every one of the {len(df)} cells of {run} failed, so there is nothing to plot; "
            f"see why with: blockprof show {run}"
        )
    figures, skipped = build_all(df, names)
    if not figures:
        raise BlockprofError(f"no figure applies to {run}: " + "; ".join(f"{n}: {why}" for n, why in skipped.items()))
    notes = [f"{n} skipped: {why}" for n, why in skipped.items()]
    write_output(output, figures_page(figures, f"blockprof sweep {run}", [*df.attrs.get("notes", []), *notes]))
    click.echo(f"wrote {', '.join(figures)} to {output}", err=True)
    for note in notes:
        click.echo(f"  {note}", err=True)
