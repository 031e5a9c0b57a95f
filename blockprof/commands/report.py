"""``blockprof report``: a run directory as one self-contained HTML report for a design review."""

from __future__ import annotations

from pathlib import Path

import click

TIMESTAMP_HELP = (
    "Generated-at line: 'now' (default; $SOURCE_DATE_EPOCH when set), 'none' to leave it out "
    "(byte-identical rebuilds), or any text to show as given."
)


def timestamp_option(value: str) -> str | None:
    """The --timestamp value as build_report takes it ('none' → no line)."""
    return None if value.lower() == "none" else value


@click.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (folders are made).",
)
@click.option("--title", help="Title of the report [default: names the run].")
@click.option("--reference", metavar="BLOCK", help="Block the others are measured against [default: the first block].")
@click.option("--timestamp", default="now", show_default=True, help=TIMESTAMP_HELP)
def cli_command(run: Path, output: Path, title: str | None, reference: str | None, timestamp: str) -> None:
    """Write the run directory RUN as one HTML report: findings, environment, counts
    with each tool's agreement, per-layer formulas, timings with their spread, plots
    and methodology. The file opens offline (plotly.js is inlined once).

    Example: blockprof report reports/example-run -o reports/example.html --title "Three blocks"
    """
    from blockprof.render.report import write_report

    path = write_report(output, run, title, reference=reference, timestamp=timestamp_option(timestamp))
    click.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)", err=True)
