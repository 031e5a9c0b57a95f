"""Sweep a grid into a run directory, one saved record per finished cell.

    >>> from blockprof import Grid
    >>> from blockprof.sweep import sweep
    >>> df = sweep(Grid(channels=(32, 64, 128), spatial=(56, 28)), "runs/widths")
    >>> df = sweep(None, "runs/widths", resume=True)      # after a Ctrl-C or a crash

Counts run cell by cell. Timed cells are timed in groups: the cells that differ
only in block and variant (same width, size, batch, dtype, device) are measured
together, interleaved round-robin by the timing harness, so the ratios between
blocks at one point are taken side by side; each group's records are written as
soon as it finishes. A model cell (:class:`~blockprof.spec.ModelSpec`) is counted
by the tracer (:func:`blockprof.models.model_record`) and timed alone, with the
same harness and statistics. A cell that fails — an invalid combination, out of memory,
any exception while counting or timing it — is recorded with ``status='error'``
and its one-line ``error``, and the sweep goes on.

Ctrl-C (SIGINT, in the main thread) asks the sweep to stop after the current
cell or group; every finished cell is on disk and :class:`SweepInterrupted` is
raised. A second Ctrl-C stops at once (the cell in progress is lost; an
incomplete last line is dropped on resume). Nothing here prints: progress goes
to the ``progress`` callback.
"""

from __future__ import annotations

import json
import signal
import threading
import time as clock
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from blockprof.errors import BlockprofError, one_line
from blockprof.grid import Cell, Grid, Shard
from blockprof.io import is_dir
from blockprof.runs import META, RECORDS, Run, env_differences, holds_a_run, lock_run, read_meta, run_environment
from blockprof.spec import BlockSpec, ModelSpec
from blockprof.timing.harness import DEFAULT_MIN_RUN_TIME, DEFAULT_ROUNDS
from blockprof.timing.measurement import MIN_RUNS, MODES

if TYPE_CHECKING:
    import pandas as pd

#: the tools a sweep cross-checks with by default: torch's counter on the meta device
#: costs ~15× the closed form; all three tools ~5× more again, since fvcore runs a real
#: forward (benchmarks/bench_sweep.py)
DEFAULT_TOOLS = ("torch",)


@dataclass(frozen=True)
class Settings:
    """How each cell is measured; saved in meta.json and checked on resume and merge."""

    tools: tuple[str, ...] = DEFAULT_TOOLS
    time: bool = False
    modes: tuple[str, ...] = MODES
    threads: int | None = None
    min_run_time: float = DEFAULT_MIN_RUN_TIME
    rounds: int = DEFAULT_ROUNDS
    min_runs: int = MIN_RUNS

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """The inverse of :meth:`as_dict`; a field of the wrong kind (a hand-edited meta.json) is a BlockprofError."""
        kinds: dict[str, type | tuple[type, ...]] = {
            "tools": list,
            "time": bool,
            "modes": list,
            "threads": (int, type(None)),
            "min_run_time": (int, float),
            "rounds": int,
            "min_runs": int,
        }
        for key, value in data.items():
            if key not in kinds:
                raise BlockprofError(f"unknown setting {key!r}")
            if not isinstance(value, kinds[key]) or (isinstance(value, bool) and kinds[key] is not bool):
                raise BlockprofError(f"setting {key!r} has the wrong kind of value: {json.dumps(value)[:40]}")
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                raise BlockprofError(f"setting {key!r} must be a list of names")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class SweepProgress:
    """A snapshot for the progress callback: ``total`` cells in this sweep (this
    shard), ``skipped`` found already done, ``done`` finished now (``failed`` of
    them with an error), the ``last`` cell's label, and ``stopping`` once Ctrl-C
    asked the sweep to stop. ``notes`` are things the user should read."""

    run_dir: str
    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    last: str | None = None
    stopping: bool = False
    notes: tuple[str, ...] = ()


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep between cells; every finished cell is saved and
    ``sweep(..., resume=True)`` finishes the rest. ``progress`` says how far it got."""

    def __init__(self, progress: SweepProgress) -> None:
        super().__init__(
            f"sweep interrupted: {progress.skipped + progress.done} of {progress.total} cells saved in {progress.run_dir}"
        )
        self.progress = progress


Progress = Callable[[SweepProgress], None]


def sweep(
    grid: Grid | None,
    run_dir: str | Path,
    *,
    tools: Iterable[str] | None = None,
    time: bool | None = None,
    modes: Iterable[str] | None = None,
    threads: int | None = None,
    min_run_time: float | None = None,
    rounds: int | None = None,
    min_runs: int | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    shard: Shard | str | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run every cell of ``grid`` (of ``shard`` of it) not yet in ``run_dir`` and
    return the run's records as a DataFrame, one row per cell.

    A new run needs ``grid``; the other settings default to :class:`Settings`.
    With ``resume``, the grid, settings and shard are the run's own: leave them
    ``None``, or give the same values (different ones are an error, as is
    resuming in another environment). ``retry_failed`` runs the failed cells
    again (their new records supersede the old). ``resume`` on a directory
    without a run starts one, so a job array can be resubmitted as it is.
    """
    run_dir = Path(run_dir)
    is_dir(run_dir, "the run directory")  # a name the system cannot look up is one line here
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    given: dict[str, Any] = {
        k: v
        for k, v in dict(
            tools=tools,
            time=time,
            modes=modes,
            threads=threads,
            min_run_time=min_run_time,
            rounds=rounds,
            min_runs=min_runs,
        ).items()
        if v is not None
    }
    given = {k: tuple(v) if k in ("tools", "modes") else v for k, v in given.items()}
    if not resume and ((run_dir / META).exists() or (run_dir / RECORDS).exists()):
        raise holds_a_run(run_dir)
    with lock_run(run_dir, "blockprof sweep" + (" --resume" if resume else "")) as lock_notes:
        return _sweep(grid, run_dir, given, resume, retry_failed, shard, progress, lock_notes)


def _sweep(
    grid: Grid | None,
    run_dir: Path,
    given: dict[str, Any],
    resume: bool,
    retry_failed: bool,
    shard: Shard | None,
    progress: Progress | None,
    lock_notes: list[str],
) -> pd.DataFrame:
    """:func:`sweep`, with the run directory's lock held."""
    orphans = (
        resume
        and not (run_dir / META).exists()
        and (run_dir / RECORDS).is_file()
        and (run_dir / RECORDS).stat().st_size > 0
    )
    if resume and (run_dir / META).exists():
        run, grid, settings, shard = _reopen(run_dir, grid, given, shard)
    else:
        if grid is None:
            if orphans:
                read_meta(run_dir)  # explains how to rebuild the missing meta.json
            raise BlockprofError(
                f"give a grid to start a new run in {run_dir}"
                + (" (there is no run to resume there)" if resume else "")
            )
        settings = _settings(Settings(**given))
        grid = _resolve_devices(grid, settings)
        _check_models(grid)
        run = None
    cells = grid.cells()
    if not settings.time and (len(grid.dtype) > 1 or len(grid.device) > 1):
        raise BlockprofError(
            "counts do not depend on dtype or device: give one of each, or add --time to time the cells"
        )
    peaks = run.meta.get("peaks") if run is not None else _peaks(grid, settings)  # a resumed run keeps its ceilings
    if orphans:
        _check_orphans(run_dir, cells, shard, settings)
    if run is None:
        run = Run.create(
            run_dir,
            {
                "grid": grid.as_dict(),
                "settings": settings.as_dict(),
                "shard": None if shard is None else {"index": shard.index, "count": shard.count},
                "cells": sum(1 for i in range(len(cells)) if shard is None or shard.holds(i)),
                "environment": run_environment(grid.device if settings.time else (), settings.threads),
                "peaks": peaks,
                **(
                    {
                        "rebuilt": f"meta.json was rebuilt on {_today()} from the grid and settings given to --resume; "
                        "the environment is the resuming machine's"
                    }
                    if orphans
                    else {}
                ),
            },
            orphans=orphans,
        )
        if orphans:
            run = Run.open(run_dir)
    mine = [(i, cell) for i, cell in enumerate(cells) if shard is None or shard.holds(i)]
    done = run.keys(ok_only=retry_failed)
    pending = [(i, cell) for i, cell in mine if cell.key not in done]
    state = SweepProgress(
        str(run_dir), total=len(mine), skipped=len(mine) - len(pending), notes=(*lock_notes, *run.notes)
    )
    report = progress or (lambda p: None)
    report(state)
    with run.appender() as appender, _stop_on_sigint(lambda: report(replace(state, stopping=True))) as stop:
        batches = _groups(pending) if settings.time else [[item] for item in pending]
        counted: dict[BlockSpec | ModelSpec, dict[str, Any]] = {}
        for batch in batches:
            if stop.is_set():
                raise SweepInterrupted(replace(state, stopping=True))
            for record in _run_batch(batch, settings, peaks, counted):
                appender.append(record)
                failed = record["status"] != "ok"
                state = replace(state, done=state.done + 1, failed=state.failed + failed, last=_label(record, batch))
                report(state)
    df = Run.open(run_dir).frame()
    df.attrs["sweep"] = asdict(state)
    return df


def _label(record: dict[str, Any], batch: list[tuple[int, Cell]]) -> str:
    return next(cell.label for _, cell in batch if cell.key == record["cell"])


def _settings(settings: Settings) -> Settings:
    """Check the settings and fix the thread count a timed run will use."""
    from blockprof.counting.tools import TOOL_NAMES

    unknown = [t for t in settings.tools if t not in TOOL_NAMES]
    if unknown:
        raise BlockprofError(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOL_NAMES)}, or none")
    if not settings.time:
        return settings
    from blockprof.timing.harness import check_budget

    check_budget(settings.modes, settings.min_run_time, settings.min_runs, settings.rounds)
    if settings.threads is None:
        import torch

        return replace(settings, threads=torch.get_num_threads())
    return settings


def _check_models(grid: Grid) -> None:
    """Import every model now (and check its signature): a target that does not import is bad input, refused
    before a run directory is made; one that fails to build is a failed cell, like any other."""
    from blockprof.models import model_factory

    for model in grid.models:
        model_factory(model.target)


def _resolve_devices(grid: Grid, settings: Settings) -> Grid:
    """A timed grid with ``auto`` replaced by the device it means here (and every
    device/dtype checked, so that an unavailable GPU fails before the first cell)."""
    if not settings.time:
        return grid
    from blockprof.timing.harness import conditions

    devices = tuple(
        dict.fromkeys(conditions(d, t, threads=settings.threads).device for d in grid.device for t in grid.dtype)
    )
    return grid.replace(device=devices)


def _today() -> str:
    from datetime import date

    return date.today().isoformat()


def _check_orphans(run_dir: Path, cells: list[Cell], shard: Shard | None, settings: Settings) -> None:
    """Records whose meta.json is gone may be adopted only by the grid and settings they were taken with."""
    records = Run(run_dir, {})
    records._read_records()
    keys = {cell.key for i, cell in enumerate(cells) if shard is None or shard.holds(i)}
    foreign = [r for r in records.records if r["cell"] not in keys]
    hint = "give the grid options and --time/--tools it was swept with, or sweep into a new directory"
    if foreign:
        raise BlockprofError(
            f"{len(foreign)} of the {len(records.records)} records in {run_dir} are not cells of this grid "
            f"(e.g. {foreign[0].get('block')} {foreign[0].get('in_channels')}); {hint}"
        )
    ok = [r for r in records.records if r.get("status") == "ok"]
    timed = any(r.get("fwd_ms") is not None or r.get("train_ms") is not None for r in ok)
    tools = {t for r in ok for t in ("fvcore", "thop", "torch") if f"{t}_macs" in r}
    if ok and (timed != settings.time or tools != set(settings.tools)):
        swept = f"{'--time, ' if timed else ''}--tools {','.join(sorted(tools)) or 'none'}"
        raise BlockprofError(f"the records in {run_dir} were taken with {swept}; {hint}")


def _reopen(
    run_dir: Path, grid: Grid | None, given: dict[str, Any], shard: Shard | None
) -> tuple[Run, Grid, Settings, Shard | None]:
    """The run to resume, with its grid, settings and shard; whatever the caller gave must match."""
    run = Run.open(run_dir)
    meta = run.meta
    if meta.get("grid") is None:
        raise BlockprofError(
            f"{run_dir} was merged from runs of different grids; it cannot be resumed — sweep each grid on its own"
        )
    saved_grid = _from_meta(run_dir, "grid", lambda: _checked_grid(meta["grid"]))
    saved = _from_meta(run_dir, "settings", lambda: Settings.from_dict(meta["settings"]))
    settings = _from_meta(run_dir, "settings", lambda: _settings(replace(saved, **given)))
    if settings != saved:
        field_ = next(k for k in given if getattr(settings, k) != getattr(saved, k))
        raise BlockprofError(
            f"{run_dir} was swept with {field_}={getattr(saved, field_)!r}, not {getattr(settings, field_)!r}; "
            f"resume with the run's own settings (leave {field_} out)"
        )
    if grid is not None and _resolve_devices(grid, settings).as_dict() != saved_grid.as_dict():
        raise BlockprofError(
            f"the grid differs from the one {run_dir} was swept with; resume without grid options (the run keeps its grid) or sweep into a new directory"
        )
    saved_shard = _from_meta(run_dir, "shard", lambda: Shard(**meta["shard"]) if meta.get("shard") else None)
    if shard is not None and shard != saved_shard:
        raise BlockprofError(
            f"{run_dir} holds shard {saved_shard or 'none (the whole grid)'}, not {shard}; resume it with its own shard"
        )
    differences = env_differences(
        meta["environment"],
        run_environment(saved_grid.device if settings.time else (), settings.threads),
        settings.time,
    )
    if differences:
        raise BlockprofError(
            f"{run_dir} was swept in another environment ({differences[0]}); resume it there, or sweep into a new directory and merge with --allow-mixed"
        )
    return run, saved_grid, settings, saved_shard


T = TypeVar("T")


def _checked_grid(data: dict[str, Any]) -> Grid:
    """A saved grid, its cells built once so that a bad value fails here rather than mid-sweep."""
    grid = Grid.from_dict(data)
    grid.cells()
    return grid


def _from_meta(run_dir: Path, key: str, build: Callable[[], T]) -> T:
    """``build()``, with anything a hand-edited meta.json can make it raise turned into one line naming the field."""
    try:
        return build()
    except (BlockprofError, TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as e:
        raise BlockprofError(
            f"{run_dir / META}: {key!r} is not what blockprof wrote ({one_line(e)}); "
            "the file was edited or damaged — restore it, or sweep into a new directory"
        ) from None


def _peaks(grid: Grid, settings: Settings) -> dict[str, Any] | None:
    """The calibrated device peaks of every (device, dtype) of a timed run, keyed ``device/dtype``."""
    if not settings.time:
        return None
    from blockprof.timing.calibrate import calibrate

    return {f"{d}/{t}": calibrate(d, t, settings.threads).as_dict() for d in grid.device for t in grid.dtype}


def _groups(pending: list[tuple[int, Cell]]) -> list[list[tuple[int, Cell]]]:
    """Pending cells grouped by (width, size, batch, dtype, device), in grid order of each group's first cell."""
    groups: dict[tuple, list[tuple[int, Cell]]] = {}
    for item in pending:
        f = dict(item[1].fields)
        if item[1].is_model:  # a model is timed alone: it has no width or size to share with another cell
            groups[("model", item[1].key)] = [item]
            continue
        groups.setdefault((f["in_channels"], f["spatial"], f["batch"], item[1].dtype, item[1].device), []).append(item)
    return list(groups.values())


def _count_cell(
    index: int, cell: Cell, tools: tuple[str, ...], counted: dict[BlockSpec | ModelSpec, dict[str, Any]]
) -> dict[str, Any]:
    """The cell's count record, or its error record; never raises (but KeyboardInterrupt).
    Counts do not depend on dtype or device, so cells that differ only there are
    counted once (``counted`` holds the records by spec)."""
    from blockprof.counting.record import count_record, error_record
    from blockprof.models import model_record

    start = clock.perf_counter()
    try:
        spec = cell.spec()
    except Exception as e:  # an invalid combination: the cell is an error, the sweep goes on
        record = {**cell.as_dict(), "status": "error", "error": one_line(e)}
    else:
        if spec not in counted:
            try:
                counted[spec] = model_record(spec, tools) if isinstance(spec, ModelSpec) else count_record(spec, tools)
            except MemoryError:
                counted[spec] = error_record(
                    spec, f"out of memory while counting {spec.label}; use a smaller batch or spatial size"
                )
            except Exception as e:  # recorded per cell
                counted[spec] = error_record(spec, one_line(e))
        record = dict(counted[spec])
    record.update(dtype=cell.dtype, device=cell.device)
    return {"cell": cell.key, "index": index, **record, "count_s": clock.perf_counter() - start}


def _run_batch(
    batch: list[tuple[int, Cell]],
    settings: Settings,
    peaks: dict[str, Any] | None,
    counted: dict[BlockSpec | ModelSpec, dict[str, Any]],
) -> list[dict[str, Any]]:
    records = [_count_cell(i, cell, settings.tools, counted) for i, cell in batch]
    if settings.time:
        _time_group(batch, records, settings, peaks or {})
    return records


def _time_group(
    batch: list[tuple[int, Cell]], records: list[dict[str, Any]], settings: Settings, peaks: dict[str, Any]
) -> None:
    """Time the group's counted cells together and fold each timing into its record."""
    from blockprof.timing.calibrate import Peaks
    from blockprof.timing.harness import time_blocks
    from blockprof.timing.records import timing_record

    timed = [(cell, record) for (_, cell), record in zip(batch, records, strict=False) if record["status"] == "ok"]
    if not timed:
        return
    device, dtype = timed[0][0].device, timed[0][0].dtype
    specs = [cell.spec() for cell, _ in timed]
    options: dict[str, Any] = dict(
        modes=settings.modes,
        device=device,
        dtype=dtype,
        threads=settings.threads,
        min_run_time=settings.min_run_time,
        rounds=settings.rounds,
        min_runs=settings.min_runs,
    )
    start = clock.perf_counter()
    try:
        if isinstance(specs[0], ModelSpec):  # a group of one (see _groups)
            from blockprof.models import model_builder
            from blockprof.timing.harness import time_module

            timings = [time_module(model_builder(specs[0])(), specs[0].input_shape, label=specs[0].label, **options)]
        else:
            timings = time_blocks(specs, **options)  # type: ignore[arg-type]
    except Exception as e:  # the harness records per-cell failures itself; this is one it could not
        for _, record in timed:
            record.update(status="error", error=f"timing failed: {one_line(e)}")
        return
    wall = clock.perf_counter() - start
    device_peaks = Peaks(**peaks[f"{device}/{dtype}"]) if f"{device}/{dtype}" in peaks else None
    spec_fields = set(specs[0].as_dict())
    for (_, record), timing in zip(timed, timings, strict=False):
        result = timing_record(timing, device_peaks, flops=(record.get("flops"), record.get("train_flops")))
        record.update({k: v for k, v in result.items() if k not in spec_fields and k != "error"})
        record.update(timing_group=len(timed), timing_group_s=wall)
        if result["error"]:
            record.update(status="error", error=result["error"])


@dataclass
class _Stop:
    event: threading.Event = field(default_factory=threading.Event)

    def is_set(self) -> bool:
        return self.event.is_set()


@contextmanager
def _stop_on_sigint(on_request: Callable[[], None]) -> Iterator[_Stop]:
    """While inside, the first SIGINT sets the stop flag (and calls ``on_request``);
    the second raises KeyboardInterrupt as usual. Outside the main thread, where
    Python delivers no signals, SIGINT handling is left alone."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        stop.event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        on_request()

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
