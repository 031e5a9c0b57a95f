"""The CLI's output step: a rendered table (blockprof.render) to the terminal, or to ``-o FILE`` with a note on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import pandas as pd


def emit(df: pd.DataFrame, fmt: str, output: Path | None, *, title: str | None = None, footer: str = "") -> None:
    """Render ``df`` in ``fmt`` to ``output`` (or stdout); the footer goes with the terminal table only."""
    from blockprof.render.tables import render, write

    if output is not None:
        write(df, fmt, output, title=title)
        click.echo(f"wrote {len(df)} rows as {fmt} to {output}", err=True)
        return
    click.echo(render(df, fmt, title=title))
    if fmt == "table" and footer:
        click.echo(footer)


def emit_many(parts: list[tuple[pd.DataFrame, str]], fmt: str, output: Path | None, *, footer: str = "") -> None:
    """Several titled tables, one after another, as one text (terminal table or Markdown)."""
    from blockprof.render.tables import render_many

    text = render_many(parts, fmt, width=200 if output else None, footer=footer)
    if output is not None:
        from blockprof.io import write_output

        write_output(output, text + "\n")
        click.echo(f"wrote {len(parts)} tables as {fmt} to {output}", err=True)
    else:
        click.echo(text)


def emit_text(text: str, output: Path | None) -> None:
    """Plain text (JSON, a derivation) to the terminal or, atomically, to ``-o FILE``."""
    if output is None:
        click.echo(text)
        return
    from blockprof.io import write_output

    write_output(output, text + "\n")
    click.echo(f"wrote {output}", err=True)
