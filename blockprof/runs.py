"""A run directory: the records of a sweep, saved as each cell finishes, and what they were taken with.

::

    runs/NAME/
      meta.json      format + schema version, blockprof version, the grid, the settings,
                     the shard, the environment, the device peaks, created time
      records.jsonl  one JSON record per finished cell, appended and fsync'd line by line

The records file is only ever appended to. A cell is identified by its
:attr:`~blockprof.grid.Cell.key` (the ``cell`` field of its record); when a key
appears more than once (a failed cell run again with ``retry_failed``) the last
record wins. A crash can leave at most an incomplete last line, which is
ignored (and reported) when the run is read and cut off before the run is
appended to again; its cell simply runs again.

Merging (:func:`merge`) combines run directories, e.g. the shards of one grid:

* a cell in several runs with equal records (bookkeeping fields aside) is kept once;
* an ``ok`` record beats an ``error`` record of the same cell (a cell that ran out
  of memory on one machine and ran on another);
* two different ``ok`` records of one cell are a conflict: BlockprofError, naming
  the cell and the first field that differs — merge disjoint runs, or drop one;
* runs taken in different environments (tool or torch versions; for timed runs
  also the CPU/GPU, thread count and CUDA versions) or with different settings
  are refused unless ``allow_mixed``; the merged meta.json then lists what differs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from blockprof.errors import BlockprofError

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "blockprof-run"
SCHEMA_VERSION = 1
META = "meta.json"
RECORDS = "records.jsonl"

#: fields a sweep adds to every record, beside the count and timing fields
SWEEP_FIELDS: dict[str, str] = {
    "cell": "the cell's key: 16 hex digits of the SHA-256 of its grid fields (see blockprof.grid.Cell.key)",
    "index": "the cell's position in the grid's cell order (shards hold index % n == i - 1)",
    "count_s": "seconds blockprof spent counting the cell (analytic + tools)",
    "timing_group": "cells timed together, interleaved (the blocks at one width, size, batch, dtype, device)",
    "timing_group_s": "wall seconds of the whole group's timing (warm-up, memory probes and timed calls)",
}
#: bookkeeping that differs between two runs of the same cell without the results differing
VOLATILE_FIELDS = frozenset({"index", "count_s", "timing_group", "timing_group_s"})
#: environment fields two runs must share to be merged (timed runs: also TIMING_ENV)
COUNT_ENV = ("blockprof_version", "torch_version", "fvcore_version", "thop_version")
TIMING_ENV = ("cpu_model", "cpu_count", "threads", "device_names", "cuda_version", "cudnn_version")


def run_environment(devices: Iterable[str] = (), threads: int | None = None) -> dict[str, Any]:
    """Where the run was taken: versions of everything that changes a count, and for
    a timed run the devices and thread count that change a time."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import blockprof
    from blockprof.timing.env import cpu_count, cpu_model, host_hash

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    import torch

    env: dict[str, Any] = {
        "blockprof_version": blockprof.__version__,
        "torch_version": torch.__version__,
        "fvcore_version": installed("fvcore"),
        "thop_version": installed("thop"),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "host": host_hash(),
        "cpu_model": cpu_model(),
        "cpu_count": cpu_count(),
    }
    devices = sorted(set(devices))
    if devices:
        from blockprof.timing.env import device_name

        env.update(
            threads=threads,
            device_names={d: device_name(d) for d in devices},
            cuda_version=torch.version.cuda if "cuda" in devices else None,
            cudnn_version=torch.backends.cudnn.version() if "cuda" in devices else None,
        )
    return env


def env_differences(a: dict[str, Any], b: dict[str, Any], timed: bool) -> list[str]:
    """``field: a vs b`` for each environment field that matters and differs."""
    keys = COUNT_ENV + (TIMING_ENV if timed else ())
    return [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither); containers are walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _json_safe(value.item())  # numpy scalar
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Make a file's creation or rename durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class Run:
    """A run directory read from disk: its meta, its records (last per cell) and
    what was noticed while reading (``notes``: one line each, for the user)."""

    path: Path
    meta: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: byte length of the complete lines; anything after it is an incomplete write
    complete_bytes: int = 0

    @classmethod
    def create(cls, path: str | Path, meta: dict[str, Any]) -> Run:
        """Start a new run directory (it must not hold a run already)."""
        path = Path(path)
        if (path / META).exists() or (path / RECORDS).exists():
            raise BlockprofError(f"{path} already holds a run; add --resume to continue it, or choose another -o directory")
        if path.exists() and not path.is_dir():
            raise BlockprofError(f"{path} is a file; -o needs a directory for the run")
        path.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "created": _now(), **meta}
        _write_atomic(path / META, json.dumps(_json_safe(meta), indent=2, ensure_ascii=False) + "\n")
        (path / RECORDS).touch()
        _fsync_dir(path)
        return cls(path, meta)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Read a run directory; BlockprofError (one line) if it is not a readable blockprof run."""
        path = Path(path)
        meta = read_meta(path)
        run = cls(path, meta)
        run._read_records()
        return run

    def _read_records(self) -> None:
        file = self.path / RECORDS
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise BlockprofError(f"{self.path} has a meta.json but no {RECORDS}; the run is incomplete — sweep again into a new directory") from None
        end = data.rfind(b"\n") + 1
        self.complete_bytes = end
        if end < len(data):
            self.notes.append(
                f"{file}: ignored an incomplete last line ({len(data) - end} bytes, an interrupted write); its cell runs again on --resume"
            )
        latest: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise BlockprofError(f"{file} line {number} is not a JSON record ({e}); the run is corrupt — restore the file or sweep again") from None
            if not isinstance(record, dict) or not isinstance(record.get("cell"), str):
                raise BlockprofError(f"{file} line {number} is not a blockprof cell record (no 'cell' key); the run is corrupt")
            latest.pop(record["cell"], None)  # re-insert: the last record of a cell takes the later place
            latest[record["cell"]] = record
        self.records = list(latest.values())

    def keys(self, *, ok_only: bool = False) -> set[str]:
        return {r["cell"] for r in self.records if not ok_only or r.get("status") == "ok"}

    def frame(self) -> pd.DataFrame:
        """One row per cell, in the order the cells finished (see :func:`load_run`).

        A whole-number field that some records lack (a failed cell has no counts)
        becomes pandas' nullable ``Int64``, not float: 18432 stays 18432 in every format.
        """
        import pandas as pd

        from blockprof.records import to_frame

        df = to_frame(self.records)
        for column in df.columns:
            values = [r[column] for r in self.records if r.get(column) is not None]
            if len(values) < len(self.records) and values and all(type(v) is int for v in values):
                df[column] = pd.array([r.get(column) for r in self.records], dtype="Int64")
        df.attrs["notes"] = list(self.notes)
        return df

    def appender(self) -> RecordAppender:
        """Append records; an incomplete last line is cut off first, so new lines start clean."""
        return RecordAppender(self.path / RECORDS, self.complete_bytes)

    def write_meta(self, **changes: Any) -> None:
        self.meta.update(changes)
        _write_atomic(self.path / META, json.dumps(_json_safe(self.meta), indent=2, ensure_ascii=False) + "\n")


class RecordAppender:
    """Appends one record per line, flushed and fsync'd before :meth:`append` returns:
    a record that was appended survives a crash or a power cut."""

    def __init__(self, path: Path, complete_bytes: int) -> None:
        self.path = path
        self._file = open(path, "ab")
        if self._file.tell() > complete_bytes:
            self._file.truncate(complete_bytes)
            self._file.seek(complete_bytes)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(_json_safe(record), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_meta(path: Path) -> dict[str, Any]:
    """A run's meta.json, checked to be a blockprof run of a schema this version reads."""
    file = path / META
    if not path.is_dir():
        raise BlockprofError(f"{path} is not a directory; give a run directory made by 'blockprof sweep -o DIR'")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BlockprofError(f"{path} is not a blockprof run: it has no {META} (a run directory is what 'blockprof sweep -o DIR' creates)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BlockprofError(f"{file} is not readable JSON ({e}); the run is corrupt — restore it or sweep again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BlockprofError(f"{file} is not a blockprof run's metadata (no \"format\": \"{FORMAT}\")")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise BlockprofError(
            f"{path} is a run of schema version {meta.get('schema_version')!r}; this blockprof "
            f"({_version()}) reads version {SCHEMA_VERSION} — use the blockprof that wrote it"
        )
    return meta


def _version() -> str:
    import blockprof

    return blockprof.__version__


def load_run(path: str | Path) -> pd.DataFrame:
    """A run's records as a DataFrame, one row per cell (failed cells have
    ``status == 'error'`` and their ``error``); ``df.attrs['notes']`` holds what was
    noticed while reading, e.g. an ignored incomplete last line."""
    return Run.open(path).frame()


# --- merge ---


@dataclass
class MergeResult:
    """What :func:`merge` did: the merged run, and one line per thing worth saying."""

    run: Run
    cells: int
    duplicates: int
    replaced_errors: int
    notes: list[str]


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE_FIELDS}


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return f"{k}: {a.get(k)!r} vs {b.get(k)!r}"
    return "no field differs"


def merge(run_dirs: Iterable[str | Path], out: str | Path, *, allow_mixed: bool = False) -> MergeResult:
    """Combine run directories into a new run at ``out`` (see the module docstring
    for duplicates, conflicts and mixed environments). Shards of one grid merge
    into a run of that grid, unsharded, which ``sweep(..., resume=True)`` completes
    if a shard is missing."""
    runs = [Run.open(p) for p in run_dirs]
    if len(runs) < 2:
        raise BlockprofError(f"merge needs at least two run directories, got {len(runs)}")
    out = Path(out)
    first = runs[0]
    mixed: list[str] = []
    for run in runs[1:]:
        timed = bool(first.meta["settings"].get("time") or run.meta["settings"].get("time"))
        for diff in env_differences(first.meta["environment"], run.meta["environment"], timed):
            mixed.append(f"{run.path} vs {first.path}: environment {diff}")
        if run.meta["settings"] != first.meta["settings"]:
            mixed.append(f"{run.path} vs {first.path}: settings {_first_difference(first.meta['settings'], run.meta['settings'])}")
    if mixed and not allow_mixed:
        raise BlockprofError(f"runs differ ({mixed[0]}{f'; and {len(mixed) - 1} more' if len(mixed) > 1 else ''}); pass --allow-mixed to merge them anyway")

    merged: dict[str, tuple[dict[str, Any], Path]] = {}
    duplicates = replaced = 0
    for run in runs:
        for record in run.records:
            key = record["cell"]
            if key not in merged:
                merged[key] = (record, run.path)
                continue
            duplicates += 1
            kept, where = merged[key]
            if _comparable(kept) == _comparable(record) or record.get("status") != "ok":
                continue  # equal, or the new one failed: keep what we have
            if kept.get("status") != "ok":
                merged[key] = (record, run.path)  # an ok record beats an error record
                replaced += 1
                continue
            raise BlockprofError(
                f"cell {key} ({record.get('block')} {record.get('in_channels')}) has different results in {where} and {run.path} "
                f"({_first_difference(_comparable(kept), _comparable(record))}); merge disjoint runs or drop one of them"
            )

    grids = {json.dumps(r.meta.get("grid"), sort_keys=True) for r in runs}
    same_grid = len(grids) == 1 and first.meta.get("grid") is not None
    meta = {
        "grid": first.meta["grid"] if same_grid else None,
        "settings": first.meta["settings"],
        "shard": None,
        "environment": first.meta["environment"],
        "peaks": first.meta.get("peaks"),
        "merged_from": [
            {"path": str(r.path), "created": r.meta.get("created"), "shard": r.meta.get("shard"), "cells": len(r.records),
             "grid": None if same_grid else r.meta.get("grid"), "environment": r.meta["environment"]}
            for r in runs
        ],
        "mixed": mixed,
    }
    result = Run.create(out, meta)
    with result.appender() as appender:
        for record, _ in merged.values():
            appender.append(record)
    result.records = [record for record, _ in merged.values()]
    notes = [f"{duplicates} cell(s) appeared in more than one run and were kept once"] if duplicates else []
    if replaced:
        notes.append(f"{replaced} failed cell(s) were replaced by a successful record of the same cell from another run")
    if not same_grid:
        notes.append("the runs have different grids: the merged run lists them in meta.json and cannot be resumed")
    if mixed:
        notes.append(f"merged across {len(mixed)} difference(s) of environment or settings (--allow-mixed), listed in meta.json 'mixed'")
    return MergeResult(result, len(merged), duplicates, replaced, notes)
