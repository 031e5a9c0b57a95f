"""``blockprof merge``: combine run directories (e.g. the shards of one grid) into one."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("merge")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New run directory to write.",
)
@click.option(
    "--allow-mixed",
    is_flag=True,
    help="Merge runs taken in different environments or with different settings (recorded in meta.json).",
)
def cli_command(runs: tuple[Path, ...], output: Path, allow_mixed: bool) -> None:
    """Merge the run directories RUNS into a new run.

    A cell found in several runs is kept once when its records agree; a successful
    record replaces a failed one; different results for one cell are an error.
    Runs from different environments (versions; for timed runs also the machine)
    are refused unless --allow-mixed.

    Example: blockprof merge runs/part-1 runs/part-2 runs/part-3 -o runs/all
    """
    from blockprof.runs import merge

    result = merge(runs, output, allow_mixed=allow_mixed)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"merged {len(runs)} runs into {output}: {result.cells} cells", err=True)
