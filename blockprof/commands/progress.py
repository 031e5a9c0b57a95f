"""What the user sees while blockprof measures: a live display on a terminal, one line per step otherwise.

The library never prints; it calls ``progress(done, total)`` after each timed
round and ``announce(task)`` before it. :class:`TimingProgress` turns those into
a rich progress bar (what is measured, n of N, elapsed, ETA) on stderr when
stderr is a terminal, and into plain lines (``timing 3/18 …``) when it is not,
so a log or CI job shows the same steps. :func:`ensure_peaks` says that the
device is being calibrated, and for how long, before it measures.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from blockprof.timing.measurement import Task


def rich_bar(title: str, bar_width: int, transient: bool) -> Any:
    """A rich progress bar on stderr: title, bar, n of N, elapsed, ETA, then what is being done."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Column

    return Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(bar_width=bar_width),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis")),
        console=Console(stderr=True),
        transient=transient,
    )


def _interactive() -> bool:
    return sys.stderr.isatty()


class TimingProgress:
    """A context manager whose :meth:`step` and :meth:`announce` are the harness's callbacks."""

    def __init__(self, title: str = "timing") -> None:
        self.title = title
        self.what = ""
        self.started = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> TimingProgress:
        self.started = time.perf_counter()
        if _interactive():
            self.bar = rich_bar(self.title, bar_width=20, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif exc[0] is None:
            click.echo(f"{self.title}: done in {time.perf_counter() - self.started:.0f} s", err=True)

    def announce(self, task: Task) -> None:
        """The cell about to be measured."""
        self.what = f"{task.label} {task.mode}"
        if self.bar is not None:
            self.bar.update(self.task, description=self.what)

    def step(self, done: int, total: int) -> None:
        """``done`` of ``total`` rounds measured."""
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        click.echo(
            f"{self.title} {done}/{total}: {self.what} ({elapsed:.0f} s elapsed, about {eta:.0f} s left)", err=True
        )


def ensure_peaks(device: str, dtype: str, threads: int | None) -> None:
    """Calibrate the device peaks now if the cache lacks them, saying so first (with how
    long it takes), so the first timed run is not a silent wait. Ctrl-C stops it."""
    from blockprof.timing.calibrate import cached_peaks, calibrate, describe_calibration

    if cached_peaks(device, dtype, threads) is not None:
        return
    click.echo(f"calibrating: {describe_calibration(device, dtype, threads)}", err=True)
    started = time.perf_counter()
    calibrate(device, dtype, threads)
    click.echo(
        f"calibrated in {time.perf_counter() - started:.0f} s (cached; 'blockprof calibrate' shows the peaks)", err=True
    )
