"""``blockprof baseline save``: record what ``blockprof check`` compares against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from blockprof.commands import options
from blockprof.commands.check import clock_option


@click.group("baseline")
def cli_command() -> None:
    """Record a regression baseline (plain JSON: counts, raw timing rounds, environment)."""


@cli_command.command("save")
@options.suite
@clock_option
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Baseline JSON to write, e.g. benchmarks/baseline.json.",
)
@click.option("--no-time", is_flag=True, help="Record counts only (a check then compares no times).")
@click.pass_context
def save(ctx: click.Context, output: Path, **params: Any) -> None:
    """Measure the suite's cells now and write them as the baseline.

    Example: blockprof baseline save --suite benchmarks/suite.toml -o benchmarks/baseline.json
    """
    from blockprof.commands.check import progress_bar, suite_from_options
    from blockprof.io import check_writable
    from blockprof.regress import save_baseline

    suite = suite_from_options(ctx, params)
    check_writable(output, "the baseline")  # before measuring, not after
    with progress_bar(f"timing {len(suite.cells)} cells + reference") as progress:
        snapshot = save_baseline(suite, output, progress=progress)
    timed = "counts and times" if snapshot.reference is not None else "counts only"
    click.echo(
        f"wrote the baseline of suite {suite.name!r} ({len(snapshot.cells)} cells, {timed}) to {output}", err=True
    )
