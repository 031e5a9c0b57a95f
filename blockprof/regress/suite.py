"""Suites: the cells a check covers, the metrics it compares, its rules and its timing plan (TOML or inline).

A cell is a block spec or a whole model (:class:`~blockprof.spec.ModelSpec`, ``[[models]]`` in a suite file);
both are counted, timed and judged alike.

Every value is checked where it enters (types, finite numbers, sane sizes), so a bad suite is one line,
exit 2, before anything is measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from blockprof import schema
from blockprof.errors import BlockprofError
from blockprof.grid import VARIANT_OPTIONS, Grid, models_from_toml, read_toml
from blockprof.spec import MAX_INPUT_ELEMENTS, BlockSpec, CellSpec, ModelSpec, ResolvedSpec

#: counts compared exactly (see blockprof.records.COUNT_FIELDS for their units)
COUNT_METRICS = schema.COUNT_METRICS
TIME_METRIC = "time"
METRICS = (*COUNT_METRICS, TIME_METRIC)
COMPARISONS = ("auto", "raw", "normalised")
#: what a timing reads: the timing thread's CPU time, the wall clock, or instructions executed (callgrind)
CLOCKS = ("thread", "wall", "instructions")
#: the largest suite values accepted: beyond them a check would not end (sizes: see blockprof.schema's bounds)
MAX_SAMPLE_TIME = 60.0
MAX_ROUNDS = 1000
MAX_SESSIONS = 20


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rules:
    """When a time counts as changed: the ratio of medians beyond ``1 + tolerance``
    (or below ``1 / (1 + tolerance)``) and a one-sided Mann–Whitney p below
    ``alpha``. ``comparison``: ``normalised`` (each time over the reference
    kernel's in the same round: the default, because on a shared machine the
    load changes between the baseline and the check), ``auto`` (raw times on the
    baseline's own environment, normalised elsewhere: for a dedicated, quiet
    machine), or ``raw``. ``confirm``: a time judged slower is measured again
    and fails only if the second measurement is slower too. ``across_machines``:
    judge times against a stored baseline of another machine class (CPU model,
    cores, torch build); by default they are reported, not judged, because no
    normalisation makes two CPU models' times comparable (benchmarks/RESULTS.md)."""

    tolerance: float = 0.10
    alpha: float = 0.01
    comparison: str = "normalised"
    confirm: bool = True
    across_machines: bool = False

    def __post_init__(self) -> None:
        if not (_number(self.tolerance) and 0 < self.tolerance < 10):
            raise BlockprofError(f"tolerance must be a fraction above 0 (0.10 = 10% slower), got {self.tolerance!r}")
        if not (_number(self.alpha) and 0 < self.alpha < 1):
            raise BlockprofError(f"alpha (significance level) must be between 0 and 1, e.g. 0.01, got {self.alpha!r}")
        if self.comparison not in COMPARISONS:
            raise BlockprofError(f"comparison must be one of {', '.join(COMPARISONS)}, got {self.comparison!r}")
        for flag in ("confirm", "across_machines"):
            if not isinstance(getattr(self, flag), bool):
                raise BlockprofError(f"{flag} must be true or false, got {getattr(self, flag)!r}")


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
    ``"instructions"`` counts the instructions one call executes under valgrind
    (``Timer.collect_callgrind``): deterministic, the same on any x86 machine,
    a count of work rather than a time (one measurement per cell; needs valgrind).
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
        if not (_whole(self.rounds) and 5 <= self.rounds <= MAX_ROUNDS):
            raise BlockprofError(
                f"rounds must be a whole number from 5 (the samples of the significance test) to {MAX_ROUNDS}, "
                f"got {self.rounds!r}"
            )
        if not (_number(self.sample_time) and 0 < self.sample_time <= MAX_SAMPLE_TIME):
            raise BlockprofError(
                f"sample_time must be a positive number of seconds up to {MAX_SAMPLE_TIME:g}, e.g. 0.05, "
                f"got {self.sample_time!r}"
            )
        if not (_whole(self.threads) and 1 <= self.threads <= 1024):
            raise BlockprofError(f"threads must be a positive whole number, got {self.threads!r}")
        if not (_whole(self.baseline_sessions) and 1 <= self.baseline_sessions <= MAX_SESSIONS):
            raise BlockprofError(
                f"baseline_sessions must be a whole number from 1 to {MAX_SESSIONS}, got {self.baseline_sessions!r}"
            )
        if self.device not in ("cpu", "cuda"):
            raise BlockprofError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.dtype not in schema.DTYPES:
            raise BlockprofError(f"dtype must be one of {', '.join(schema.DTYPES)}, got {self.dtype!r}")
        if self.clock not in CLOCKS:
            raise BlockprofError(f"clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.clock in ("thread", "instructions") and (self.threads != 1 or self.device != "cpu"):
            raise BlockprofError(
                f"clock {self.clock!r} measures one CPU thread, but the plan has threads={self.threads} on "
                f'{self.device}; use threads = 1, or clock = "wall"'
            )


def check_cell_size(spec: CellSpec) -> None:
    """Refuse a cell whose input is over :data:`MAX_INPUT_ELEMENTS` before torch is asked to allocate it
    (each size on its own is bounded by the spec; a ModelSpec checks its own)."""
    if isinstance(spec, ModelSpec):
        return
    elements = math.prod(spec.input_shape)
    if elements > MAX_INPUT_ELEMENTS:
        raise BlockprofError(
            f"the input {'×'.join(map(str, spec.input_shape))} has {elements:,} elements, beyond "
            f"{MAX_INPUT_ELEMENTS:,}; use a smaller batch, width or spatial size"
        )


@dataclass(frozen=True)
class Suite:
    """The cells a check covers, the metrics it compares, and its rules. Block cells come first, then
    models (the order the suite is stored in, so that an older tree that knows no models keeps the
    positions of the blocks)."""

    cells: tuple[CellSpec, ...]
    metrics: tuple[str, ...] = METRICS
    rules: Rules = field(default_factory=Rules)
    timing: TimingPlan = field(default_factory=TimingPlan)
    name: str = "inline"

    def __post_init__(self) -> None:
        if not self.cells:
            raise BlockprofError(
                "a suite needs at least one cell; give blocks, channels, spatial and batch, or a model"
            )
        blocks_first = sorted(self.cells, key=lambda c: isinstance(c, ModelSpec))  # a stable sort
        object.__setattr__(self, "cells", tuple(blocks_first))
        for spec in self.cells:
            try:
                check_cell_size(spec)
            except BlockprofError as e:
                raise BlockprofError(f"cell {cell_id(spec)}: {e}") from None
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
            raise BlockprofError(
                f"suite {self.name!r} compares only times, so --no-time leaves nothing to check; drop --no-time"
            )
        return replace(self, metrics=counts)

    def times_only(self) -> Suite:
        """This suite with only the time metric (``--only-time``: counts judged elsewhere)."""
        if not self.timed:
            raise BlockprofError(
                f"suite {self.name!r} has no time metric, so --only-time leaves nothing to check; drop --only-time"
            )
        return replace(self, metrics=(TIME_METRIC,))

    @property
    def ids(self) -> list[str]:
        return [cell_id(s) for s in self.cells]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metrics": list(self.metrics),
            "rules": vars(self.rules).copy(),
            "timing": vars(self.timing).copy(),
            "cells": [s.as_dict() for s in self.cells if isinstance(s, BlockSpec)],
            **({"models": [s.as_dict() for s in self.models]} if self.models else {}),
        }

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        return tuple(s for s in self.cells if isinstance(s, ModelSpec))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suite:
        """The suite as stored in a baseline (cells already expanded; checked by blockprof.regress.baseline first)."""
        return cls(
            cells=(
                *(BlockSpec(**c) for c in data["cells"]),
                *(ModelSpec.from_dict(m) for m in data.get("models", ())),
            ),
            metrics=tuple(data["metrics"]),
            rules=Rules(**data["rules"]),
            timing=TimingPlan(**data["timing"]),
            name=data["name"],
        )


def cell_id(spec: BlockSpec | ResolvedSpec | ModelSpec) -> str:
    """A cell's stable name in reports and baselines, e.g. ``bottleneck 64→64 @ 1×64×28×28``:
    built from the resolved spec, so spelling out a block default (``expansion = 4`` for a
    bottleneck) names the same cell. A model's is its label: ``model pkg.mod:fn @ 1×3×224×224``."""
    from blockprof.blocks.registry import resolve

    if isinstance(spec, ModelSpec):
        return spec.label

    resolved = resolve(spec)[1]
    n, c, h, w = resolved.input_shape
    return f"{resolved.label} @ {n}×{c}×{h}×{w}"


# --- suites: TOML files and inline options ---

_GRID_KEYS = ("blocks", "channels", "spatial", "batch")
_SUITE_KEYS = ("name", "metrics", "rules", "timing", "cells", "models")


def load_suite(path: str | Path) -> Suite:
    """Read a suite TOML file (layout in benchmarks/suite.toml); BlockprofError on any mistake, naming it."""
    path = Path(path)
    data = read_toml(path, "suite file", "give a TOML suite such as benchmarks/suite.toml")
    try:
        return suite_from_toml(data, default_name=path.stem)
    except BlockprofError as e:
        raise BlockprofError(f"suite file {path}: {e}") from None


def suite_from_toml(data: Mapping[str, Any], default_name: str = "suite") -> Suite:
    """A suite from parsed TOML: ``[[cells]]`` tables (grid axes and variant options) and/or
    ``[[models]]`` tables (``target``, optional ``input``), optional ``metrics``, ``[rules]`` and ``[timing]``."""
    _known(data, _SUITE_KEYS, "top-level key")
    models = models_from_toml(data["models"]) if "models" in data else ()
    tables = data.get("cells", [] if models else None)
    if not isinstance(tables, list) or not (tables or models):
        raise BlockprofError(
            'no [[cells]] tables and no [[models]]; add at least one, e.g. [[cells]] blocks = ["basic"] channels = [64]'
        )
    specs: list[CellSpec] = []
    for i, table in enumerate(tables, 1):
        _known(table, (*_GRID_KEYS, *VARIANT_OPTIONS), f"key in [[cells]] #{i}")
        axes = {k: _as_tuple(table[k], k) for k in _GRID_KEYS if k in table}
        if "blocks" not in axes:
            raise BlockprofError(
                f'[[cells]] #{i} has no \'blocks\'; name the blocks, e.g. blocks = ["basic", "bottleneck"]'
            )
        options = {k: table[k] for k in VARIANT_OPTIONS if k in table}
        seen = {cell_id(s) for s in specs}  # a cell spelled twice (a default written out) is one cell
        specs += [s for s in Grid(options=options, **axes).specs() if cell_id(s) not in seen]
    rules = data.get("rules", {})
    timing = data.get("timing", {})
    _known(rules, tuple(Rules.__dataclass_fields__), "key in [rules]")
    _known(timing, tuple(TimingPlan.__dataclass_fields__), "key in [timing]")
    metrics = _as_tuple(data.get("metrics", METRICS), "metrics")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise BlockprofError(f"name must be a non-empty string, got {name!r}")
    return Suite((*specs, *dict.fromkeys(models)), metrics, Rules(**rules), TimingPlan(**timing), name)


def inline_suite(
    blocks: Iterable[str],
    channels: Iterable[int],
    spatial: Iterable[int],
    batch: Iterable[int],
    options: Mapping[str, Any] | None = None,
    *,
    models: Iterable[ModelSpec] = (),
    metrics: Iterable[str] = METRICS,
    rules: Rules | None = None,
    timing: TimingPlan | None = None,
) -> Suite:
    """A suite from the sweep options (``--blocks --channels --spatial --batch`` and variants, ``--model``;
    ``blocks`` empty for models alone)."""
    grid = Grid(tuple(blocks), tuple(channels), tuple(spatial), tuple(batch), dict(options or {}), models=tuple(models))
    return Suite((*grid.specs(), *grid.models), tuple(metrics), rules or Rules(), timing or TimingPlan())


def _known(table: Any, keys: Sequence[str], what: str) -> None:
    if not isinstance(table, Mapping):
        raise BlockprofError(f"expected a table for the {what.split(' in ')[-1]}, got {table!r}")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise BlockprofError(f"unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(keys)}")


def _as_tuple(value: Any, key: str) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise BlockprofError(f"{key!r} is an empty list; give at least one value")
        return tuple(value)
    return (value,)
