"""Regression checks for CI: exact counts, noise-aware timings, a baseline that travels.

A :class:`Suite` names the cells (block specs) and the rules. :func:`measure`
takes a :class:`Snapshot` of the code as it is now: each cell's counts and, per
timing round, its raw per-call times, with a fixed reference kernel timed in
the same rounds. A baseline is a snapshot saved as plain JSON
(:func:`save_baseline`, :func:`load_baseline`); :func:`check` measures a fresh
snapshot and :func:`compare` judges it against the baseline:

* counts (params, params_conv, MACs, train FLOPs) are deterministic: any change
  fails, whichever way it goes;
* a time is slower only when the ratio of medians exceeds ``1 + tolerance`` AND a
  one-sided Mann–Whitney U test says so at level ``alpha`` (asv's rule); a large
  change that is not significant is ``~`` and passes;
* times are divided by the reference kernel's time in the same round
  (machine-normalised time) before they are compared, which cancels a
  machine's speed and its momentary load; ``comparison = "auto"`` compares raw
  times when the environment is the baseline's and normalised ones when it is
  not. Every verdict says which comparison it used.

Each round gives one sample per cell (the median of its calls in that round):
samples within a round share the machine's state, so rounds, not calls, are
the independent replicates the test counts.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from blockprof import schema
from blockprof.errors import BlockprofError
from blockprof.grid import VARIANT_OPTIONS, Grid, read_toml
from blockprof.spec import BlockSpec, ResolvedSpec

if TYPE_CHECKING:
    import pandas as pd

#: bump when the baseline layout changes; a baseline of another version is refused
SCHEMA_VERSION = 1
#: counts compared exactly (see blockprof.records.COUNT_FIELDS for their units)
COUNT_METRICS = schema.COUNT_METRICS
TIME_METRIC = "time"
METRICS = (*COUNT_METRICS, TIME_METRIC)
COMPARISONS = ("auto", "raw", "normalised")
#: verdicts that fail a check
FAILING = frozenset({"changed", "slower", "error"})

#: the reference kernel: a fixed 3×3 convolution, timed in every round beside the cells
#: (timed with the same step as the cells: forward, or forward + backward for ``train``)
REFERENCE = {"op": "conv2d", "input": [1, 64, 28, 28], "weight": [64, 64, 3, 3], "padding": 1, "bias": False}


@dataclass(frozen=True)
class Rules:
    """When a time counts as changed: the ratio of medians beyond ``1 + tolerance``
    (or below ``1 / (1 + tolerance)``) and a one-sided Mann–Whitney p below
    ``alpha``. ``comparison``: ``normalised`` (each time over the reference
    kernel's in the same round: the default, because on a shared machine the
    load changes between the baseline and the check), ``auto`` (raw times on the
    baseline's own environment, normalised elsewhere: for a dedicated, quiet
    machine), or ``raw``. ``confirm``: a time judged slower is measured again
    and fails only if the second measurement is slower too."""

    tolerance: float = 0.10
    alpha: float = 0.01
    comparison: str = "normalised"
    confirm: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.tolerance, (int, float)) and 0 < self.tolerance < 10):
            raise BlockprofError(f"tolerance must be a fraction above 0 (0.10 = 10% slower), got {self.tolerance!r}")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
            raise BlockprofError(f"alpha (significance level) must be between 0 and 1, e.g. 0.01, got {self.alpha!r}")
        if self.comparison not in COMPARISONS:
            raise BlockprofError(f"comparison must be one of {', '.join(COMPARISONS)}, got {self.comparison!r}")
        if not isinstance(self.confirm, bool):
            raise BlockprofError(f"confirm must be true or false, got {self.confirm!r}")


#: what a timing reads: the timing thread's CPU time, or the wall clock
CLOCKS = ("thread", "wall")


@dataclass(frozen=True)
class TimingPlan:
    """How the cells are timed: the step (``fwd`` or ``train``), ``rounds``
    interleaved rounds of ``sample_time`` seconds per cell, on ``threads`` CPU threads.

    A baseline pools ``baseline_sessions`` independent timing runs, so that its
    samples span more than one machine state: a check is then not judged against
    one lucky or unlucky run (a confirming re-measurement cannot undo that).

    ``clock = "thread"`` (the default) reads the timing thread's CPU time
    (``time.thread_time``), so time the OS gives to other jobs on a shared
    machine is not counted; it needs ``threads = 1``, since a pool's other
    threads are not that thread. ``"wall"`` reads ``time.perf_counter``.
    """

    mode: str = "fwd"
    rounds: int = 15
    sample_time: float = 0.05
    threads: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    clock: str = "thread"
    baseline_sessions: int = 3

    def __post_init__(self) -> None:
        if self.mode not in ("fwd", "train"):
            raise BlockprofError(f"timing mode must be 'fwd' or 'train', got {self.mode!r}")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 5:
            raise BlockprofError(f"rounds must be a whole number of at least 5 (the samples of the significance test), got {self.rounds!r}")
        if not (isinstance(self.sample_time, (int, float)) and self.sample_time > 0):
            raise BlockprofError(f"sample_time must be a positive number of seconds, e.g. 0.05, got {self.sample_time!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise BlockprofError(f"threads must be a positive whole number, got {self.threads!r}")
        if isinstance(self.baseline_sessions, bool) or not isinstance(self.baseline_sessions, int) or self.baseline_sessions < 1:
            raise BlockprofError(f"baseline_sessions must be a whole number of at least 1, got {self.baseline_sessions!r}")
        if self.clock not in CLOCKS:
            raise BlockprofError(f"clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.clock == "thread" and (self.threads != 1 or self.device != "cpu"):
            raise BlockprofError(f"clock 'thread' times one CPU thread, but the plan has threads={self.threads} on {self.device}; "
                                 "use threads = 1, or clock = \"wall\"")


@dataclass(frozen=True)
class Suite:
    """The cells a check covers, the metrics it compares, and its rules."""

    cells: tuple[BlockSpec, ...]
    metrics: tuple[str, ...] = METRICS
    rules: Rules = field(default_factory=Rules)
    timing: TimingPlan = field(default_factory=TimingPlan)
    name: str = "inline"

    def __post_init__(self) -> None:
        if not self.cells:
            raise BlockprofError("a suite needs at least one cell; give blocks, channels, spatial and batch")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise BlockprofError(f"unknown metric(s) {unknown or '(none given)'}; choose from {', '.join(METRICS)}")
        ids = [cell_id(s) for s in self.cells]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise BlockprofError(f"the suite lists cell(s) {', '.join(duplicates)} more than once; list each cell once")

    @property
    def timed(self) -> bool:
        return TIME_METRIC in self.metrics

    def counts_only(self) -> Suite:
        """This suite without the time metric (``--no-time``)."""
        counts = tuple(m for m in self.metrics if m != TIME_METRIC)
        if not counts:
            raise BlockprofError(f"suite {self.name!r} compares only times, so --no-time leaves nothing to check; drop --no-time")
        return replace(self, metrics=counts)

    @property
    def ids(self) -> list[str]:
        return [cell_id(s) for s in self.cells]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metrics": list(self.metrics),
            "rules": vars(self.rules).copy(),
            "timing": vars(self.timing).copy(),
            "cells": [s.as_dict() for s in self.cells],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suite:
        """The suite as stored in a baseline (cells already expanded)."""
        return cls(
            cells=tuple(BlockSpec(**c) for c in data["cells"]),
            metrics=tuple(data["metrics"]),
            rules=Rules(**data["rules"]),
            timing=TimingPlan(**data["timing"]),
            name=data["name"],
        )


def cell_id(spec: BlockSpec | ResolvedSpec) -> str:
    """A cell's stable name in reports and baselines, e.g. ``bottleneck 64→64 @ 1×64×28×28``:
    built from the resolved spec, so spelling out a block default (``expansion = 4`` for a
    bottleneck) names the same cell."""
    from blockprof.blocks.registry import resolve

    resolved = resolve(spec)[1]
    n, c, h, w = resolved.input_shape
    return f"{resolved.label} @ {n}×{c}×{h}×{w}"


# --- suites: TOML files and inline options ---

_GRID_KEYS = ("blocks", "channels", "spatial", "batch")
_SUITE_KEYS = ("name", "metrics", "rules", "timing", "cells")


def load_suite(path: str | Path) -> Suite:
    """Read a suite TOML file (layout in benchmarks/suite.toml); BlockprofError on any mistake, naming it."""
    path = Path(path)
    data = read_toml(path, "suite file", "give a TOML suite such as benchmarks/suite.toml")
    try:
        return suite_from_toml(data, default_name=path.stem)
    except BlockprofError as e:
        raise BlockprofError(f"suite file {path}: {e}") from None


def suite_from_toml(data: Mapping[str, Any], default_name: str = "suite") -> Suite:
    """A suite from parsed TOML: ``[[cells]]`` tables (grid axes and variant options),
    optional ``metrics``, ``[rules]`` and ``[timing]``."""
    _known(data, _SUITE_KEYS, "top-level key")
    tables = data.get("cells")
    if not isinstance(tables, list) or not tables:
        raise BlockprofError("no [[cells]] tables; add at least one, e.g. [[cells]] blocks = [\"basic\"] channels = [64]")
    specs: list[BlockSpec] = []
    for i, table in enumerate(tables, 1):
        _known(table, (*_GRID_KEYS, *VARIANT_OPTIONS), f"key in [[cells]] #{i}")
        axes = {k: _as_tuple(table[k], k) for k in _GRID_KEYS if k in table}
        if "blocks" not in axes:
            raise BlockprofError(f"[[cells]] #{i} has no 'blocks'; name the blocks, e.g. blocks = [\"basic\", \"bottleneck\"]")
        options = {k: table[k] for k in VARIANT_OPTIONS if k in table}
        seen = {cell_id(s) for s in specs}  # a cell spelled twice (a default written out) is one cell
        specs += [s for s in Grid(options=options, **axes).specs() if cell_id(s) not in seen]
    rules = data.get("rules", {})
    timing = data.get("timing", {})
    _known(rules, tuple(Rules.__dataclass_fields__), "key in [rules]")
    _known(timing, tuple(TimingPlan.__dataclass_fields__), "key in [timing]")
    metrics = data.get("metrics", METRICS)
    return Suite(tuple(specs), tuple(_as_tuple(metrics, "metrics")), Rules(**rules), TimingPlan(**timing), str(data.get("name", default_name)))


def inline_suite(blocks: Iterable[str], channels: Iterable[int], spatial: Iterable[int], batch: Iterable[int],
                 options: Mapping[str, Any] | None = None, *, metrics: Iterable[str] = METRICS,
                 rules: Rules | None = None, timing: TimingPlan | None = None) -> Suite:
    """A suite from the sweep options (``--blocks --channels --spatial --batch`` and variants)."""
    grid = Grid(tuple(blocks), tuple(channels), tuple(spatial), tuple(batch), dict(options or {}))
    return Suite(tuple(grid.specs()), tuple(metrics), rules or Rules(), timing or TimingPlan())


def _known(table: Any, keys: Sequence[str], what: str) -> None:
    if not isinstance(table, Mapping):
        raise BlockprofError(f"expected a table for the {what.split(' in ')[-1]}, got {table!r}")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise BlockprofError(f"unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(keys)}")


def _as_tuple(value: Any, key: str) -> tuple:
    if isinstance(value, (list, tuple)):
        if not value:
            raise BlockprofError(f"{key!r} is an empty list; give at least one value")
        return tuple(value)
    return (value,)


# --- snapshots: what a baseline holds and what a check measures ---


@dataclass(frozen=True)
class CellResult:
    """One cell's counts and, when timed, its per-call times in seconds, one list per round."""

    spec: BlockSpec
    counts: dict[str, int | None]
    rounds: tuple[tuple[float, ...], ...] | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        return cell_id(self.spec)

    def samples(self) -> list[float]:
        """One sample per round: the median per-call time of that round (seconds)."""
        return [_median(r) for r in self.rounds or ()]


@dataclass(frozen=True)
class Snapshot:
    """The state of the code on one machine: counts, round-structured times, the reference's times."""

    suite: Suite
    cells: dict[str, CellResult]
    environment: dict[str, Any] | None
    reference: tuple[tuple[float, ...], ...] | None
    blockprof_version: str
    git: dict[str, Any] | None
    created: str

    def reference_samples(self) -> list[float]:
        return [_median(r) for r in self.reference or ()]

    def normalised(self, cell: str) -> list[float]:
        """A cell's samples divided by the reference kernel's sample of the same round."""
        return [c / r for c, r in zip(self.cells[cell].samples(), self.reference_samples())]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "blockprof_version": self.blockprof_version,
            "created": self.created,
            "git": self.git,
            "environment": self.environment,
            "suite": self.suite.as_dict(),
            "reference": None if self.reference is None else {"kernel": REFERENCE, "rounds_s": [list(r) for r in self.reference]},
            "cells": [
                {
                    "id": c.id,
                    "spec": c.spec.as_dict(),
                    "counts": c.counts,
                    "rounds_s": None if c.rounds is None else [list(r) for r in c.rounds],
                    "error": c.error,
                }
                for c in self.cells.values()
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        reference = data["reference"]
        if reference is not None and reference["kernel"] != REFERENCE:
            raise BlockprofError(f"its reference kernel {reference['kernel']} is not this blockprof's {REFERENCE}")
        cells = {}
        for c in data["cells"]:
            spec = BlockSpec(**c["spec"])
            rounds = None if c["rounds_s"] is None else tuple(tuple(float(t) for t in r) for r in c["rounds_s"])
            cells[cell_id(spec)] = CellResult(spec, dict(c["counts"]), rounds, c.get("error"))
        return cls(
            suite=Suite.from_dict(data["suite"]),
            cells=cells,
            environment=data["environment"],
            reference=None if reference is None else tuple(tuple(float(t) for t in r) for r in reference["rounds_s"]),
            blockprof_version=data["blockprof_version"],
            git=data["git"],
            created=data["created"],
        )


def save_baseline(suite: Suite, path: str | Path, *, progress: Callable[[int, int], None] | None = None) -> Snapshot:
    """Measure ``suite`` now (its timing plan's ``baseline_sessions`` runs, pooled) and
    write it to ``path`` as a baseline; returns the snapshot."""
    snapshot = measure(suite, sessions=suite.timing.baseline_sessions, progress=progress)
    write_baseline(snapshot, path)
    return snapshot


def write_baseline(snapshot: Snapshot, path: str | Path) -> None:
    path = Path(path)
    try:
        path.write_text(json.dumps(snapshot.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as e:
        raise BlockprofError(f"cannot write the baseline to {path}: {e.strerror}; give a writable path with -o") from None


def load_baseline(path: str | Path) -> Snapshot:
    """Read a baseline; BlockprofError (one line) when it is missing, corrupt or of another schema."""
    path = Path(path)
    fix = "re-create it with 'blockprof baseline save --suite SUITE.toml -o " + str(path) + "'"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BlockprofError(f"baseline {path} does not exist; create it with 'blockprof baseline save --suite SUITE.toml -o {path}'") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BlockprofError(f"cannot read baseline {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise BlockprofError(f"baseline {path} is not valid JSON ({e.msg} at line {e.lineno}); {fix}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BlockprofError(f"{path} is not a blockprof baseline (no schema_version); {fix}")
    version = data["schema_version"]
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        hint = "upgrade blockprof, or " + fix if newer else fix
        raise BlockprofError(f"baseline {path} has schema version {version!r}; this blockprof reads version {SCHEMA_VERSION}: {hint}")
    try:
        return Snapshot.from_json(data)
    except BlockprofError as e:
        raise BlockprofError(f"baseline {path}: {e}; {fix}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        raise BlockprofError(f"baseline {path} is damaged ({what}); {fix}") from None


# --- measuring ---


def measure(suite: Suite, *, sessions: int = 1, progress: Callable[[int, int], None] | None = None) -> Snapshot:
    """Count every cell and, when the suite has the time metric, time them with the
    reference kernel interleaved, ``sessions`` times over, their rounds pooled.
    Invalid cells raise BlockprofError first."""
    from blockprof import __version__
    from blockprof.blocks.registry import resolve

    for spec in suite.cells:  # fail fast, with the cell named, before anything slow
        try:
            resolve(spec)
        except BlockprofError as e:
            raise BlockprofError(f"cell {cell_id(spec)}: {e}") from None
    counts = {cell_id(s): _counts(s) for s in suite.cells}
    rounds: dict[str, tuple[tuple[float, ...], ...] | str] = {}
    reference = environment = None
    if suite.timed:
        reference = ()
        for _ in range(sessions):
            more, timed, environment = _time_cells(suite.cells, suite.timing, progress)
            reference += more
            for key, result in timed.items():
                before = rounds.get(key, ())
                if not isinstance(before, str):  # a cell that failed in one session keeps that error
                    rounds[key] = result if isinstance(result, str) else before + result
    cells = {}
    for spec in suite.cells:
        key = cell_id(spec)
        result = rounds.get(key)
        cells[key] = CellResult(spec, counts[key], result if isinstance(result, tuple) else None, result if isinstance(result, str) else None)
    return Snapshot(suite, cells, environment, reference, __version__, git_info(), _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def _time_cells(specs: Sequence[BlockSpec], plan: TimingPlan, progress: Callable[[int, int], None] | None
                ) -> tuple[tuple[tuple[float, ...], ...], dict[str, tuple[tuple[float, ...], ...] | str], dict[str, Any]]:
    """Time the reference kernel and every cell round-robin with the timing harness:
    (reference rounds, cell id → rounds or its error, environment)."""
    import time

    import torch
    from torch.utils.benchmark import Timer

    from blockprof.blocks.registry import resolve
    from blockprof.timing.env import environment, steady_allocator
    from blockprof.timing.harness import Cell, make_step, warm_up, conditions, describe_error, run_interleaved
    from blockprof.timing.measurement import Task

    allocator = steady_allocator()
    cond = conditions(plan.device, plan.dtype, threads=plan.threads)
    jobs = [("reference", reference_module, tuple(REFERENCE["input"]))]
    for spec in specs:
        definition, resolved = resolve(spec)
        jobs.append((cell_id(spec), lambda d=definition, s=resolved: d.module(s), resolved.input_shape))
    cells = []
    for label, make, shape in jobs:
        cell = Cell(Task(label, plan.mode, cond.device, cond.dtype, cond.threads, cond.memory_format, shape[0]))
        try:
            torch.manual_seed(0)  # the same weights and input in every run: the same arithmetic is timed
            step = make_step(make(), shape, plan.mode, cond)
            warm_up(step, cond, plan.mode)
            clock = time.thread_time if plan.clock == "thread" else time.perf_counter
            cell.timer = Timer("step()", globals={"step": step.fn}, num_threads=cond.threads, label=label, description=plan.mode, timer=clock)
            cell.context = step.context
        except Exception as e:  # a cell that cannot run is a verdict, not a crash
            cell.error = describe_error(e, cell.task)
        cells.append(cell)
    run_interleaved(cells, min_run_time=plan.sample_time * plan.rounds, min_runs=4, rounds=plan.rounds, progress=progress)
    reference, *measured = cells
    if reference.error:
        raise RuntimeError(f"the reference kernel failed to run: {reference.error}")
    rounds = {c.task.label: c.error or tuple(tuple(m.times) for m in c.parts) for c in measured}
    env = {**environment(cond.device, cond.dtype, cond.threads, cond.memory_format).as_dict(), "allocator": allocator}
    return tuple(tuple(m.times) for m in reference.parts), rounds, env


def reference_module() -> Any:
    """The reference kernel as a module: :data:`REFERENCE`'s convolution, timed with the same step as the cells."""
    import torch

    torch.manual_seed(0)
    _, c_in, _, _ = REFERENCE["input"]
    c_out, _, k, _ = REFERENCE["weight"]
    return torch.nn.Conv2d(c_in, c_out, k, padding=REFERENCE["padding"], bias=False)


def _counts(spec: BlockSpec) -> dict[str, int | None]:
    """The compared counts: closed form for registered blocks, torch's counter for user blocks."""
    from blockprof.api import count
    from blockprof.blocks.registry import get

    record = count(spec, tools=() if get(spec.block).analytic else ("torch",))
    return {m: record[m] for m in COUNT_METRICS}


def git_info(cwd: str | Path | None = None) -> dict[str, Any] | None:
    """The commit the working directory is at and whether it has uncommitted changes; None outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


# --- comparing ---


@dataclass(frozen=True)
class Verdict:
    """One cell × metric. ``old``/``new``: the exact counts, or the time medians (seconds
    for ``raw``, multiples of the reference kernel for ``normalised``); ``change`` is
    new/old − 1; ``ci`` the 95% interval of the time ratio from :func:`ratio_interval`."""

    cell: str
    metric: str
    status: str
    old: float | None = None
    new: float | None = None
    change: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    runs: tuple[int, int] | None = None
    comparison: str | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass(frozen=True)
class CheckResult:
    """Every verdict of a check, the comparison its times used and why, and the fresh snapshot (for --update)."""

    verdicts: tuple[Verdict, ...]
    comparison: str | None
    reason: str
    baseline: Snapshot
    current: Snapshot

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.failed]

    @property
    def improvements(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "faster"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 when it passed, 1 on any regression (input errors raise before a result exists)."""
        return 0 if self.passed else 1

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**vars(v), "failed": v.failed} for v in self.verdicts]
        return pd.DataFrame.from_records(rows, columns=[*Verdict.__dataclass_fields__, "failed"])


def check(suite: Suite, baseline: Snapshot | str | Path, *, progress: Callable[[int, int], None] | None = None) -> CheckResult:
    """Measure ``suite`` now and judge it against ``baseline`` (a snapshot or a path),
    confirming any slower time with a second measurement when the rules say so."""
    if not isinstance(baseline, Snapshot):
        baseline = load_baseline(baseline)
    ensure_comparable(suite, baseline)
    result = compare(baseline, measure(suite, progress=progress))
    return confirm(result, progress=progress) if suite.rules.confirm else result


def confirm(result: CheckResult, *, progress: Callable[[int, int], None] | None = None) -> CheckResult:
    """Time the cells judged slower once more (with the reference, fresh rounds) and keep
    ``slower`` only where the second measurement is slower too; elsewhere the
    verdict becomes ``~``. Contention that comes and goes must strike twice to fail
    a check; a real slowdown shows both times."""
    suspects = [v.cell for v in result.verdicts if v.metric == TIME_METRIC and v.status == "slower"]
    if not suspects:
        return result
    suite = result.current.suite
    cells = dict(zip(suite.ids, suite.cells))
    again = measure(replace(suite, cells=tuple(cells[c] for c in suspects), metrics=(TIME_METRIC,)), progress=progress)
    second = {v.cell: v for v in compare(result.baseline, again).verdicts if v.cell in suspects}
    verdicts = []
    for v in result.verdicts:
        if v.metric == TIME_METRIC and v.cell in second:
            w = second[v.cell]
            seen = f"second measurement {w.change:+.1%}, p={w.p_value:.2g}" if w.change is not None else f"second measurement: {w.note}"
            if w.status == "slower":
                v = replace(v, note=f"{v.note}; confirmed ({seen})")
            else:
                v = replace(v, status="~", note=f"slower in the first measurement only ({seen}): passes as noise")
        verdicts.append(v)
    return replace(result, verdicts=tuple(verdicts))


def ensure_comparable(suite: Suite, baseline: Snapshot) -> None:
    """Refuse a baseline that measured something else: no cell in common, or another timing step."""
    if not set(suite.ids) & set(baseline.cells):
        raise BlockprofError(
            f"the baseline was taken from a different suite ({baseline.suite.name!r}): none of its {len(baseline.cells)} cells "
            f"is among this suite's {len(suite.cells)}; run the check with --update to record a new baseline"
        )
    if suite.timed and baseline.reference is not None:
        old, new = baseline.suite.timing, suite.timing
        for attr in ("mode", "device", "dtype", "clock"):
            if getattr(old, attr) != getattr(new, attr):
                raise BlockprofError(
                    f"the baseline timed {attr} {getattr(old, attr)!r} and this suite times {getattr(new, attr)!r}; "
                    f"the times are not comparable: run with --update to record a new baseline"
                )


def compare(baseline: Snapshot, current: Snapshot) -> CheckResult:
    """Judge ``current`` against ``baseline`` under the current suite's rules (pure: measures nothing)."""
    suite = current.suite
    comparison, reason = choose_comparison(suite.rules.comparison, baseline, current)
    verdicts: list[Verdict] = []
    for key in suite.ids:
        new = current.cells[key]
        old = baseline.cells.get(key)
        for metric in suite.metrics:
            if old is None:
                verdicts.append(Verdict(key, metric, "new", note="not in the baseline; --update records it"))
            elif metric == TIME_METRIC:
                verdicts.append(_time_verdict(key, baseline, current, comparison, suite.rules))
            else:
                verdicts.append(_count_verdict(key, metric, old.counts.get(metric), new.counts.get(metric)))
    for key in baseline.cells:
        if key not in current.cells:
            verdicts += [Verdict(key, m, "missing", note="in the baseline but not in this suite; --update drops it") for m in suite.metrics]
    return CheckResult(tuple(verdicts), comparison, reason, baseline, current)


def choose_comparison(requested: str, baseline: Snapshot, current: Snapshot) -> tuple[str | None, str]:
    """The comparison the rules ask for (``auto``: ``raw`` on the baseline's own
    environment, else ``normalised``), with the reason in words."""
    if current.reference is None or baseline.reference is None:
        return None, "not compared: " + ("this check does not time" if current.reference is None else "the baseline holds no times")
    differences = environment_differences(baseline.environment or {}, current.environment or {})
    if requested == "raw":
        return "raw", "raw times" + (f", although the environment differs from the baseline's: {differences}" if differences else ": same environment as the baseline")
    if requested == "normalised":
        where = f"the environment differs from the baseline's: {differences}" if differences else "same environment as the baseline"
        return "normalised", f"times ÷ reference kernel in the same round ({where})"
    if differences:
        return "normalised", f"times ÷ reference kernel in the same round, because the environment differs from the baseline's: {differences}"
    return "raw", "raw times: same environment as the baseline"


#: environment fields that make raw times incomparable when they differ
_ENV_KEYS = ("torch_version", "device", "device_name", "cpu_model", "cpu_count", "threads", "dtype",
             "memory_format", "cuda_version", "cudnn_version", "python_version", "host", "allocator")


def environment_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The fields that differ, as ``field old → new``, comma-separated ('' when none)."""
    return ", ".join(f"{k} {old.get(k)} → {new.get(k)}" for k in _ENV_KEYS if old.get(k) != new.get(k))


def _count_verdict(cell: str, metric: str, old: int | None, new: int | None) -> Verdict:
    if old == new:
        return Verdict(cell, metric, "ok", old, new, 0.0 if old is not None else None)
    change = (new / old - 1) if old and new is not None else None
    return Verdict(cell, metric, "changed", old, new, change, note="counts must match exactly; --update if the change is intended")


def _time_verdict(cell: str, baseline: Snapshot, current: Snapshot, comparison: str | None, rules: Rules) -> Verdict:
    old_cell, new_cell = baseline.cells[cell], current.cells[cell]
    if comparison is None:
        return Verdict(cell, TIME_METRIC, "new" if baseline.reference is None else "missing", note="times not compared")
    if new_cell.error:
        return Verdict(cell, TIME_METRIC, "error", note=new_cell.error)
    if old_cell.rounds is None:
        return Verdict(cell, TIME_METRIC, "new", note=f"the baseline has no time for this cell ({old_cell.error or 'not timed'})")
    if comparison == "raw":
        old, new = old_cell.samples(), new_cell.samples()
    else:
        old, new = baseline.normalised(cell), current.normalised(cell)
    return judge_samples(cell, old, new, rules, comparison)


def judge_samples(cell: str, old: Sequence[float], new: Sequence[float], rules: Rules, comparison: str) -> Verdict:
    """asv's rule on two sets of samples: slower/faster only when the ratio of medians is
    beyond the tolerance AND a one-sided Mann–Whitney U test is significant; ``~`` when
    only the first holds."""
    from scipy.stats import mannwhitneyu

    old_median, new_median = _median(old), _median(new)
    ratio = new_median / old_median
    p_slower = float(mannwhitneyu(new, old, alternative="greater").pvalue)
    p_faster = float(mannwhitneyu(new, old, alternative="less").pvalue)
    factor = 1 + rules.tolerance
    if ratio > factor:
        status, p = ("slower" if p_slower < rules.alpha else "~"), p_slower
    elif ratio < 1 / factor:
        status, p = ("faster" if p_faster < rules.alpha else "~"), p_faster
    else:
        status, p = "ok", min(p_slower, p_faster)
    note = {
        "slower": f"slower by more than {rules.tolerance:.0%} and significant (p < {rules.alpha:g})",
        "faster": f"faster by more than {rules.tolerance:.0%} and significant: --update to lock it in",
        "~": f"beyond ±{rules.tolerance:.0%} but not significant (p ≥ {rules.alpha:g}): noise, passes",
        "ok": f"within ±{rules.tolerance:.0%}",
    }[status]
    return Verdict(cell, TIME_METRIC, status, old_median, new_median, ratio - 1, p, ratio_interval(old, new),
                   (len(old), len(new)), comparison, note)


def ratio_interval(old: Sequence[float], new: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The distribution-free interval of the time ratio new/old that inverts the
    Mann–Whitney test (Hodges–Lehmann, on log times): the order statistics of all
    pairwise log-ratios at the test's normal-approximation critical value."""
    import numpy as np
    from scipy.stats import norm

    diffs = np.sort((np.log(np.asarray(new))[:, None] - np.log(np.asarray(old))[None, :]).ravel())
    n, m = len(new), len(old)
    pairs = n * m
    k = int(pairs / 2 - norm.ppf(0.5 + confidence / 2) * math.sqrt(pairs * (n + m + 1) / 12))
    k = min(max(k, 0), pairs - 1)
    return float(np.exp(diffs[k])), float(np.exp(diffs[pairs - 1 - k]))


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
