"""A run directory: the records of a sweep, saved as each cell finishes, and what they were taken with.

::

    runs/NAME/
      meta.json      format + schema version, blockprof version, the grid, the settings,
                     the shard, the environment, the device peaks, created time
      records.jsonl  one JSON record per finished cell, appended and fsync'd line by line

      .lock          held (flock) by the one process writing the run; names it (pid, host, start)
      .meta.json.PID-HOST.XXXXXXXX.tmp
                     only after a kill mid-write: the atomic write's temporary (blockprof.io),
                     removed by the next writer to take the lock; readers never look at it

The records file is only ever appended to: nothing ever truncates it, since
another process may have written what a truncation would cut. A cell is
identified by its :attr:`~blockprof.grid.Cell.key` (the ``cell`` field of its
record); when a key appears more than once (a failed cell run again with
``retry_failed``) the last record wins, and ``ok`` records written twice (by two
writers of an older blockprof) are kept once with a note. A crash can leave an
incomplete last line: readers ignore and report it, and the next writer starts
a new line after it, so it stays behind as a skipped, reported fragment; its
cell simply runs again.

One process writes a run at a time: :func:`lock_run` takes an exclusive
``flock`` on ``.lock`` (sweep, resume and merge hold it); a second writer is
refused in one line naming the holder. The kernel releases the lock when its
holder dies, so a lock left by a killed process is simply taken over. Taking the
lock also removes the temporaries that interrupted atomic writes left in the run
(:func:`blockprof.io.remove_stale_temporaries`): any of ``meta.json``, which only a
lock holder writes, and any other whose writer's pid no longer runs on this host.

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

import contextlib
import json
import math
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.errors import BlockprofError
from blockprof.io import atomic_write_text, fsync_dir, is_dir, reason, remove_stale_temporaries, write_error

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per run is then the user's to keep
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "blockprof-run"
SCHEMA_VERSION = 1
META = "meta.json"
RECORDS = "records.jsonl"
LOCK = ".lock"
#: how every record line starts (json.dumps of a record whose first key is "cell"): an unparsable line
#: that starts so is a record cut off by a crash, not corruption
_RECORD_START = b'{"cell": '

#: fields a sweep adds to every record, beside the count and timing fields (described in the schema)
SWEEP_FIELDS: dict[str, str] = schema.SWEEP_RECORD_FIELDS
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
    return datetime.now(UTC).isoformat(timespec="seconds")


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


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    atomic_write_text(
        path / META, json.dumps(_json_safe(meta), indent=2, ensure_ascii=False) + "\n", "the run's metadata"
    )


def holds_a_run(path: Path) -> BlockprofError:
    return BlockprofError(f"{path} already holds a run; add --resume to continue it, or choose another -o directory")


# --- one writer per run ---


@contextmanager
def lock_run(path: str | Path, command: str = "blockprof") -> Iterator[list[str]]:
    """Hold the run directory ``path``'s write lock while inside (the directory is
    made if need be). Yields a list of notes: a lock left by a killed writer taken
    over, stale temporaries of interrupted writes removed. BlockprofError (one line,
    naming the holder) if another live process holds it."""
    path = Path(path)
    created = not is_dir(path, "the run directory")
    if created and path.exists():
        raise BlockprofError(f"{path} is a file; -o needs a directory for the run")
    lock = path / LOCK
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e, "the run") from None
    fd = _acquire(path, lock)
    try:
        notes = []
        left = _holder_info(fd)
        if left:  # a clean release empties the file: this one was left by a writer that died
            notes.append(
                f"took over the lock of {path} left by {_describe_holder(left)}, which ended without releasing it"
            )
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "command": command}
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(info).encode("utf-8"))
            os.fsync(fd)
        except OSError as e:
            raise write_error(lock, e, "the run's lock") from None
        removed = remove_stale_temporaries(path, locked=(META,))
        if removed:
            shown = ", ".join(removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
            notes.append(f"removed {len(removed)} temporary file(s) left in {path} by interrupted writes ({shown})")
        try:
            yield notes
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # released cleanly
                if created and os.listdir(path) == [LOCK]:  # a refused start leaves nothing behind
                    os.unlink(lock)
                    os.rmdir(path)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _acquire(path: Path, lock: Path) -> int:
    """An open descriptor of ``lock`` holding its flock, checked to be the file now at that path
    (a writer that removed it between our open and our flock would leave us locking a ghost)."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise write_error(path, e, "the run") from None
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise BlockprofError(
                f"{path} is being written by {holder}; wait for it to finish (or stop it), then run again"
            ) from None
        except OSError as e:  # a file system without locks (some network mounts)
            os.close(fd)
            raise BlockprofError(f"cannot lock {lock}: {reason(e)}; write the run on a local disk") from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _holder_info(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"null")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe_holder(info: dict[str, Any]) -> str:
    return (
        f"pid {info.get('pid', '?')} on {info.get('host', '?')} ({info.get('command', 'blockprof')}, "
        f"started {info.get('started', '?')})"
    )


def _holder(fd: int) -> str:
    info = _holder_info(fd)
    return _describe_holder(info) if info else "another process"


@dataclass
class Run:
    """A run directory read from disk: its meta, its records (last per cell) and
    what was noticed while reading (``notes``: one line each, for the user)."""

    path: Path
    meta: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, path: str | Path, meta: dict[str, Any], *, orphans: bool = False) -> Run:
        """Start a new run directory (it must not hold a run already; with ``orphans``,
        records whose meta.json was lost may be there, and are adopted)."""
        path = Path(path)
        if (path / META).exists() or ((path / RECORDS).exists() and not orphans):
            raise holds_a_run(path)
        if path.exists() and not path.is_dir():
            raise BlockprofError(f"{path} is a file; -o needs a directory for the run")
        meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "created": _now(), **meta}
        try:
            path.mkdir(parents=True, exist_ok=True)
            _write_meta(path, meta)
            (path / RECORDS).touch()
        except OSError as e:
            raise write_error(path, e, "the run") from None
        fsync_dir(path)
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
            raise BlockprofError(
                f"{self.path} has a meta.json but no {RECORDS}; the run is incomplete — sweep again into a new directory"
            ) from None
        end = data.rfind(b"\n") + 1
        if end < len(data):
            self.notes.append(
                f"{file}: ignored an incomplete last line ({len(data) - end} bytes, an interrupted write); its cell runs again on --resume"
            )
        latest: dict[str, dict[str, Any]] = {}
        cut: list[int] = []
        twice: set[str] = set()
        for number, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                if line.startswith(_RECORD_START):  # a record cut off by a crash, with later records after it
                    cut.append(number)
                    continue
                raise BlockprofError(
                    f"{file} line {number} is not a JSON record ({e}); the run is corrupt — restore the file or sweep again"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("cell"), str):
                raise BlockprofError(
                    f"{file} line {number} is not a blockprof cell record (no 'cell' key); the run is corrupt"
                )
            earlier = latest.pop(record["cell"], None)  # re-insert: the last record of a cell takes the later place
            if earlier is not None and earlier.get("status") == "ok":
                twice.add(record["cell"])  # retry_failed reruns errors only: an ok cell written twice is a duplicate
            latest[record["cell"]] = record
        if cut:
            lines = ", ".join(map(str, cut[:5])) + (", ..." if len(cut) > 5 else "")
            self.notes.append(
                f"{file}: skipped {len(cut)} record(s) cut off by an interrupted write (line {lines}); their cells run again on --resume"
            )
        if twice:
            self.notes.append(
                f"{file}: {len(twice)} cell(s) were recorded more than once (two writers at once, before runs were locked); "
                "the last record of each is kept"
            )
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
        """Append records (hold :func:`lock_run` while appending)."""
        return RecordAppender(self.path / RECORDS)

    def write_meta(self, **changes: Any) -> None:
        self.meta.update(changes)
        _write_meta(self.path, self.meta)


class RecordAppender:
    """Appends one record per line, flushed and fsync'd before :meth:`append` returns:
    a record that was appended survives a crash or a power cut.

    It never truncates: when the file ends in an incomplete line (a writer killed
    mid-line), it starts a new line after it, and readers skip the fragment."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(path, "ab")  # noqa: SIM115 (held open for the appender's life, closed by close())
            self._start = b"\n" if self._file.tell() and _last_byte(path) != b"\n" else b""
        except OSError as e:
            raise write_error(path, e, "records") from None

    def append(self, record: dict[str, Any]) -> None:
        line = self._start + json.dumps(_json_safe(record), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
        try:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:
            raise BlockprofError(
                f"cannot append a record to {self.path}: {reason(e)}; every cell finished before this one is saved — "
                f"fix that, then continue with: blockprof sweep -o {self.path.parent} --resume"
            ) from None
        self._start = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):  # what could not be written was reported by append
            self._file.close()

    def __enter__(self) -> RecordAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def read_meta(path: Path) -> dict[str, Any]:
    """A run's meta.json, checked to be a blockprof run of a schema this version reads,
    its top-level fields of the right kinds (a hand-edited file is one line, not a traceback)."""
    file = path / META
    if not is_dir(path, "the run"):
        raise BlockprofError(f"{path} is not a directory; give a run directory made by 'blockprof sweep -o DIR'")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if (path / RECORDS).is_file() and (path / RECORDS).stat().st_size:
            raise BlockprofError(
                f"{path} has records but no {META} (deleted?); the records are intact: rebuild it by resuming with the run's "
                f"grid options, e.g. 'blockprof sweep --channels ... -o {path} --resume' (add --time/--tools as it was swept)"
            ) from None
        raise BlockprofError(
            f"{path} is not a blockprof run: it has no {META} (a run directory is what 'blockprof sweep -o DIR' creates)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BlockprofError(
            f"{file} is not readable JSON ({e}); the run is corrupt — restore it or sweep again"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BlockprofError(f'{file} is not a blockprof run\'s metadata (no "format": "{FORMAT}")')
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise BlockprofError(
            f"{path} is a run of schema version {meta.get('schema_version')!r}; this blockprof "
            f"({_version()}) reads version {SCHEMA_VERSION} — use the blockprof that wrote it"
        )
    for key, kinds in _META_KINDS.items():
        if not isinstance(meta.get(key), kinds):
            want = " or ".join(
                "null" if k is type(None) else {dict: "an object", int: "a whole number", str: "text"}[k] for k in kinds
            )
            raise BlockprofError(
                f"{file}: {key!r} must be {want}, got {json.dumps(meta.get(key))[:60]}; the file was edited or damaged — restore it"
            )
    return meta


#: meta.json's top-level fields and the JSON kinds each may take
_META_KINDS: dict[str, tuple[type, ...]] = {
    "settings": (dict,),
    "environment": (dict,),
    "grid": (dict, type(None)),
    "shard": (dict, type(None)),
    "peaks": (dict, type(None)),
}


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
    paths = [Path(p) for p in run_dirs]
    if len(paths) < 2:
        raise BlockprofError(f"merge needs at least two run directories, got {len(paths)}")
    target = Path(out)
    seen: dict[Path, Path] = {}
    for p in [*paths, target]:
        real = p.resolve()
        if real in seen:
            what = "the output" if p is target else "given twice"
            raise BlockprofError(
                f"{p} and {seen[real]} are the same run ({what}); merge different runs into a new directory"
            )
        seen[real] = p
    with lock_run(target, "blockprof merge"):
        return _merge([Run.open(p) for p in paths], target, allow_mixed)


def _merge(runs: list[Run], out: Path, allow_mixed: bool) -> MergeResult:
    first = runs[0]
    mixed: list[str] = []
    for run in runs[1:]:
        timed = bool(first.meta["settings"].get("time") or run.meta["settings"].get("time"))
        for diff in env_differences(first.meta["environment"], run.meta["environment"], timed):
            mixed.append(f"{run.path} vs {first.path}: environment {diff}")
        if run.meta["settings"] != first.meta["settings"]:
            mixed.append(
                f"{run.path} vs {first.path}: settings {_first_difference(first.meta['settings'], run.meta['settings'])}"
            )
    if mixed and not allow_mixed:
        raise BlockprofError(
            f"runs differ ({mixed[0]}{f'; and {len(mixed) - 1} more' if len(mixed) > 1 else ''}); pass --allow-mixed to merge them anyway"
        )

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
            {
                "path": str(r.path),
                "created": r.meta.get("created"),
                "shard": r.meta.get("shard"),
                "cells": len(r.records),
                "grid": None if same_grid else r.meta.get("grid"),
                "environment": r.meta["environment"],
            }
            for r in runs
        ],
        "mixed": mixed,
    }
    result = Run.create(out, meta)
    with result.appender() as appender:
        for record, _ in merged.values():
            appender.append(record)
    result.records = [record for record, _ in merged.values()]
    notes = [note for run in runs for note in run.notes]  # what reading dropped: cut-off lines, duplicates within a run
    if duplicates:
        notes.append(f"{duplicates} cell(s) appeared in more than one run and were kept once")
    if replaced:
        notes.append(
            f"{replaced} failed cell(s) were replaced by a successful record of the same cell from another run"
        )
    if not same_grid:
        notes.append("the runs have different grids: the merged run lists them in meta.json and cannot be resumed")
    if mixed:
        notes.append(
            f"merged across {len(mixed)} difference(s) of environment or settings (--allow-mixed), listed in meta.json 'mixed'"
        )
    return MergeResult(result, len(merged), duplicates, replaced, notes)
