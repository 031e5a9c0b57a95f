"""Render a DataFrame as a terminal table, CSV, JSON, Markdown or Parquet.

The last step before the user sees anything: it formats, never computes. JSON
is an array of records with the DataFrame's own column names (the public
schema documented in the README); missing values become ``null``.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockprof.errors import BlockprofError
from blockprof.records import plain, to_records
from blockprof.units import grouped

if TYPE_CHECKING:
    import pandas as pd

TEXT_FORMATS = ("table", "json", "csv", "markdown")
FILE_FORMATS = (*TEXT_FORMATS, "parquet")


def _cell(value: object) -> str:
    value = plain(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return grouped(value)
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else grouped(round(value))
    return str(value)


def render(df: pd.DataFrame, fmt: str, *, title: str | None = None, width: int | None = None) -> str:
    """``df`` as text in ``fmt`` (one of :data:`TEXT_FORMATS`)."""
    if fmt == "json":
        return json.dumps(to_records(df), indent=2, ensure_ascii=False)
    if fmt == "csv":
        return _nested_as_json(df).to_csv(index=False)
    if fmt == "markdown":
        return df.to_markdown(index=False)
    if fmt == "table":
        return _rich_table(df, title, width)
    raise BlockprofError(f"unknown format {fmt!r}; choose from {', '.join(TEXT_FORMATS)}")


def render_many(parts: list[tuple[pd.DataFrame, str]], fmt: str, *, width: int | None = None, footer: str = "") -> str:
    """Several titled tables as one text: terminal tables (then ``footer``) or Markdown sections."""
    blocks = [
        render(df, fmt, title=title, width=width) if fmt == "table" else f"### {title}\n\n{render(df, fmt)}"
        for df, title in parts
    ]
    return "\n\n".join(blocks) + (f"\n{footer}" if fmt == "table" and footer else "")


def _nested_as_json(df: pd.DataFrame) -> pd.DataFrame:
    """A CSV cell cannot nest: lists and objects (a model's input shape and module tree) become JSON text,
    which any CSV reader can hand to a JSON parser (pandas would write Python's repr)."""
    nested = [c for c in df.columns if df[c].map(lambda v: isinstance(v, (list, dict))).any()]
    if not nested:
        return df
    return df.assign(
        **{c: df[c].map(lambda v: json.dumps(plain(v)) if isinstance(v, (list, dict)) else v) for c in nested}
    )


def write(df: pd.DataFrame, fmt: str, path: Path, *, title: str | None = None) -> None:
    """Write ``df`` to ``path`` atomically (:func:`blockprof.io.write_output`); parquet is binary, the rest text."""
    from blockprof.io import write_output

    if fmt == "parquet":
        import io

        buffer = io.BytesIO()
        try:
            df.to_parquet(buffer, index=False)
        except ImportError as e:
            raise BlockprofError(f"parquet needs pyarrow: pip install pyarrow ({e})") from None
        write_output(path, buffer.getvalue())
        return
    write_output(path, render(df, fmt, title=title, width=200) + "\n")


#: ``df.attrs`` key: the columns in order of importance; the first ones to drop when a table is too wide are at the end
PRIORITY = "column_priority"


def _rich_table(df: pd.DataFrame, title: str | None, width: int | None) -> str:
    """A rich table that fits ``width``: numbers and short names never wrap; when the
    row is still too wide, the columns least important (``df.attrs[PRIORITY]``, else the
    rightmost) are dropped and a line under the table names them."""
    from rich.console import Console

    # a terminal gets its own width; a pipe or file gets room for the whole row
    width = width or (shutil.get_terminal_size().columns if sys.stdout.isatty() else 200)
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    columns = list(df.columns)
    order = [c for c in df.attrs.get(PRIORITY, ()) if c in columns] or columns
    droppable = [c for c in reversed(columns) if c not in order] + [c for c in reversed(order) if c != columns[0]]
    dropped: list[str] = []
    while _least_width(df.drop(columns=dropped)) > width and droppable:
        dropped.append(droppable.pop(0))
    console.print(_table(df.drop(columns=dropped), title))
    text = console.file.getvalue().rstrip()  # type: ignore[attr-defined]
    if dropped:
        names = ", ".join(" ".join(str(c).split()) for c in dropped)
        text += f"\n(left out to fit {width} columns: {names}; --format csv or json has every column)"
    return text


def _least_width(df: pd.DataFrame) -> int:
    """The narrowest the table can be without breaking a number or a name: its width
    with every long text column folded to its minimum."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=10_000, force_terminal=False, color_system=None)
    console.print(_table(df, None, folded=True))
    return max((len(line) for line in console.file.getvalue().splitlines()), default=0)  # type: ignore[attr-defined]


def _table(df: pd.DataFrame, title: str | None, folded: bool = False) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in df.columns:
        numeric = df[column].dtype.kind in "iuf" or df[column].astype(str).str.match(r"^[-\d.,%]+[kMGT]?$").all()
        short = df[column].astype(str).str.len().max() <= 24 if len(df) else True
        whole = numeric or short  # numbers and names are never broken; long text folds, at least 20 wide
        table.add_column(
            str(column),
            justify="right" if numeric else "left",
            no_wrap=whole,
            overflow="ellipsis" if whole else "fold",
            min_width=None if whole else 20,
            max_width=20 if folded and not whole else None,
        )
    for row in df.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    return table
