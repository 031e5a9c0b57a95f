"""Snapshots and baselines: what a check measured, saved as plain JSON and validated field by field on load.

A baseline is hand-editable JSON, so it is read as untrusted input: every field is checked against the
layout below (types, finite positive times, integer counts, known blocks, enough rounds) and the first
fault is one line naming the field, e.g. ``baseline.json: cells["basic 64→64 @ 1×64×28×28"].counts.params
must be an integer, got "12"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from blockprof.errors import BlockprofError
from blockprof.regress.suite import COUNT_METRICS, METRICS, Rules, Suite, TimingPlan, cell_id, check_cell_size
from blockprof.spec import BlockSpec, CellSpec, ModelSpec, cell_spec

#: bump when the baseline layout changes; a baseline of another version is refused. Version 2 adds model
#: cells (``suite.models`` and cells whose ``spec`` is ``{"model", "input_shape"}``); a baseline without
#: models is still written as version 1, so that a blockprof that predates models reads it.
SCHEMA_VERSION = 2
#: the versions this blockprof reads
READS = (1, 2)
#: the reference kernel: a fixed 3×3 convolution, timed in every round beside the cells
#: (timed with the same step as the cells: forward, or forward + backward for ``train``)
REFERENCE: dict[str, Any] = {
    "op": "conv2d",
    "input": [1, 64, 28, 28],
    "weight": [64, 64, 3, 3],
    "padding": 1,
    "bias": False,
}
#: the environment fields that make a machine class: stored timings compare only within one
MACHINE_KEYS = ("cpu_model", "cpu_count", "torch_version", "device_name", "threads")
#: fewest rounds a stored timing may hold (the significance test needs them)
MIN_ROUNDS = 5

Rounds = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class CellResult:
    """One cell's counts and, when timed, its per-call times in seconds (instructions for the
    ``instructions`` clock), one list per round."""

    spec: CellSpec
    counts: dict[str, int | None]
    rounds: Rounds | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        return cell_id(self.spec)

    def samples(self) -> list[float]:
        """One sample per round: the median per-call time of that round (seconds)."""
        return [median(r) for r in self.rounds or ()]


@dataclass(frozen=True)
class Snapshot:
    """The state of the code on one machine: counts, round-structured times, the reference's times."""

    suite: Suite
    cells: dict[str, CellResult]
    environment: dict[str, Any] | None
    reference: Rounds | None
    blockprof_version: str
    git: dict[str, Any] | None
    created: str

    def reference_samples(self) -> list[float]:
        return [median(r) for r in self.reference or ()]

    def normalised(self, cell: str) -> list[float]:
        """A cell's samples divided by the reference kernel's sample of the same round."""
        return [c / r for c, r in zip(self.cells[cell].samples(), self.reference_samples(), strict=False)]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION if self.suite.models else 1,
            "blockprof_version": self.blockprof_version,
            "created": self.created,
            "git": self.git,
            "environment": self.environment,
            "suite": self.suite.as_dict(),
            "reference": None
            if self.reference is None
            else {"kernel": REFERENCE, "rounds_s": [list(r) for r in self.reference]},
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
        """A snapshot from parsed JSON, every field validated first (BlockprofError naming the field)."""
        validate(data)
        reference = data["reference"]
        cells = {}
        for c in data["cells"]:
            spec = cell_spec(c["spec"])
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


def machine_class(environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """What stored timings depend on beyond the code: CPU model, cores, torch build, GPU, threads."""
    env = environment or {}
    return {k: env.get(k) for k in MACHINE_KEYS}


def median(values: Any) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return float(ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2)


# --- files ---


def write_baseline(snapshot: Snapshot, path: str | Path) -> None:
    """Write atomically: a kill or a full disk mid-write leaves the previous baseline as it was."""
    from blockprof.io import atomic_write_text

    atomic_write_text(path, json.dumps(snapshot.to_json(), indent=1, ensure_ascii=False) + "\n")


def load_baseline(path: str | Path) -> Snapshot:
    """Read a baseline; BlockprofError (one line) when it is missing, corrupt, malformed or of another schema."""
    path = Path(path)
    fix = "re-create it with 'blockprof baseline save --suite SUITE.toml -o " + str(path) + "'"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BlockprofError(
            f"baseline {path} does not exist; create it with 'blockprof baseline save --suite SUITE.toml -o {path}'"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BlockprofError(f"cannot read baseline {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise BlockprofError(f"baseline {path} is not valid JSON ({e.msg} at line {e.lineno}); {fix}") from None
    except RecursionError:
        raise BlockprofError(f"baseline {path} is nested too deeply to be a blockprof baseline; {fix}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BlockprofError(f"{path} is not a blockprof baseline (no schema_version); {fix}")
    version = data["schema_version"]
    if version not in READS or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
        hint = "upgrade blockprof, or " + fix if newer else fix
        raise BlockprofError(
            f"baseline {path} has schema version {version!r}; this blockprof reads versions "
            f"{', '.join(map(str, READS))}: {hint}"
        )
    try:
        return Snapshot.from_json(data)
    except BlockprofError as e:
        raise BlockprofError(f"{path}: {e}; {fix}") from None


# --- the schema ---


class _Fault(BlockprofError):
    """A malformed baseline or suite field: one line naming it (exit 2, like any BlockprofError)."""


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _need(ok: bool, where: str, what: str, value: Any) -> None:
    if not ok:
        raise _Fault(f"{where} must be {what}, got {_show(value)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _table(value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Mapping[str, Any]:
    _need(isinstance(value, dict), where or "the file", "a JSON object", value)
    missing = [k for k in required if k not in value]
    if missing:
        raise _Fault(f"{where + '.' if where else ''}{missing[0]} is missing")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise _Fault(
            f"{where + '.' if where else ''}{unknown[0]} is not a baseline field "
            f"(known: {', '.join((*required, *optional))})"
        )
    return value


def _rounds(value: Any, where: str, *, count: int | None = None) -> None:
    """Timing rounds: a list of at least MIN_ROUNDS non-empty lists of finite positive numbers."""
    _need(isinstance(value, list), where, f"a list of rounds (lists of per-call times), at least {MIN_ROUNDS}", value)
    _need(
        len(value) >= MIN_ROUNDS, where, f"at least {MIN_ROUNDS} rounds (the samples of the significance test)", value
    )
    if count is not None:
        _need(len(value) == count, where, f"as many rounds as the reference kernel's ({count})", value)
    for i, r in enumerate(value):
        _need(isinstance(r, list) and len(r) > 0, f"{where}[{i}]", "a non-empty list of per-call times", r)
        for j, t in enumerate(r):
            ok = isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t > 0
            _need(ok, f"{where}[{i}][{j}]", "a finite positive number", t)


def _check_fields(cls: type, value: Any, where: str) -> None:
    """A dataclass's fields as stored: known keys, and its own checks' BlockprofError re-raised naming ``where``."""
    _need(isinstance(value, dict), where, "a JSON object", value)
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _Fault(f"{where}.{unknown[0]} is not a field of {where} (known: {', '.join(known)})")
    try:
        cls(**value)
    except BlockprofError as e:
        raise _Fault(f"{where}: {e}") from None


def _model(value: Any, where: str) -> ModelSpec:
    """A stored model cell: its target's form and input shape (nothing is imported)."""
    _table(value, where, ("model", "input_shape"))
    _need(_is_str(value["model"]), f"{where}.model", "a 'package.module:callable' string", value["model"])
    shape = value["input_shape"]
    _need(
        isinstance(shape, list) and bool(shape) and all(_is_int(d) for d in shape),
        f"{where}.input_shape",
        "a list of whole numbers",
        shape,
    )
    try:
        return ModelSpec.from_dict(value)
    except BlockprofError as e:
        raise _Fault(f"{where}: {e}") from None


def _spec(value: Any, where: str) -> CellSpec:
    from blockprof.blocks.registry import get

    _need(isinstance(value, dict), where, "a JSON object", value)
    if "model" in value:
        return _model(value, where)
    if "block" in value:
        _need(_is_str(value["block"]) and bool(value["block"]), f"{where}.block", "a block name", value["block"])
        try:
            get(value["block"])
        except BlockprofError as e:
            raise _Fault(f"{where}.block: {e}") from None
    for key in ("in_channels", "out_channels", "stride", "groups", "width_per_group", "spatial", "batch"):
        if value.get(key) is not None:
            _need(_is_int(value[key]), f"{where}.{key}", "a whole number", value[key])
    for key in ("expansion", "se"):
        if value.get(key) is not None:
            v = value[key]
            _need(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                f"{where}.{key}",
                "a finite number",
                v,
            )
    _check_fields(BlockSpec, value, where)
    spec = BlockSpec(**value)
    try:
        check_cell_size(spec)
    except BlockprofError as e:
        raise _Fault(f"{where}: {e}") from None
    return spec


def validate(data: Any) -> None:
    """Check a parsed baseline against the layout :meth:`Snapshot.to_json` writes; BlockprofError naming the
    first faulty field. Pure shape checks: nothing is measured."""
    top = ("schema_version", "blockprof_version", "created", "git", "environment", "suite", "reference", "cells")
    _table(data, "", top)
    _need(_is_str(data["blockprof_version"]), "blockprof_version", "a string", data["blockprof_version"])
    _need(_is_str(data["created"]), "created", "a string (an ISO date)", data["created"])
    git = data["git"]
    if git is not None:
        _table(git, "git", ("commit", "dirty"))
        _need(_is_str(git["commit"]), "git.commit", "a string", git["commit"])
        _need(isinstance(git["dirty"], bool), "git.dirty", "true or false", git["dirty"])
    env = data["environment"]
    if env is not None:
        _need(isinstance(env, dict), "environment", "a JSON object", env)
        for k, v in env.items():
            _need(
                v is None or isinstance(v, (str, int, float, bool)), f"environment.{k}", "a string, number or null", v
            )
    suite = _table(data["suite"], "suite", ("name", "metrics", "rules", "timing", "cells"), ("models",))
    _need(_is_str(suite["name"]) and bool(suite["name"]), "suite.name", "a non-empty string", suite["name"])
    metrics = suite["metrics"]
    _need(
        isinstance(metrics, list) and bool(metrics) and all(m in METRICS for m in metrics),
        "suite.metrics",
        f"a non-empty list of {', '.join(METRICS)}",
        metrics,
    )
    _check_fields(Rules, suite["rules"], "suite.rules")
    _check_fields(TimingPlan, suite["timing"], "suite.timing")
    models = suite.get("models", [])
    _need(isinstance(models, list), "suite.models", "a list of model cells", models)
    _need(
        data["schema_version"] != 1 or not models,
        "suite.models",
        "absent in a version 1 baseline (models came with version 2)",
        models,
    )
    _need(
        isinstance(suite["cells"], list) and bool(suite["cells"] or models),
        "suite.cells",
        "a list of cells (non-empty unless suite.models holds some)",
        suite["cells"],
    )
    for i, c in enumerate(suite["cells"]):
        _need(isinstance(c, dict) and "model" not in c, f"suite.cells[{i}]", "a block cell", c)
        _spec(c, f"suite.cells[{i}]")
    for i, m in enumerate(models):
        _model(m, f"suite.models[{i}]")
    reference = data["reference"]
    count = None
    if reference is not None:
        _table(reference, "reference", ("kernel", "rounds_s"))
        _need(
            reference["kernel"] == REFERENCE,
            "reference.kernel",
            f"this blockprof's reference kernel {_show(REFERENCE)}",
            reference["kernel"],
        )
        _rounds(reference["rounds_s"], "reference.rounds_s")
        count = len(reference["rounds_s"])
    cells = data["cells"]
    _need(isinstance(cells, list) and bool(cells), "cells", "a non-empty list of measured cells", cells)
    seen: set[str] = set()
    counted = [m for m in metrics if m in COUNT_METRICS]
    for i, c in enumerate(cells):
        name = c.get("id") if isinstance(c, dict) and _is_str(c.get("id")) else str(i)
        where = f"cells[{_show(name)}]"
        _table(c, where, ("spec", "counts", "rounds_s"), ("id", "error"))
        key = cell_id(_spec(c["spec"], f"{where}.spec"))
        _need(key not in seen, where, "listed once", key)
        seen.add(key)
        counts = c["counts"]
        _need(
            isinstance(counts, dict) and bool(counts),
            f"{where}.counts",
            f"an object of the counts {', '.join(counted or COUNT_METRICS)} (an empty one cannot be compared)",
            counts,
        )
        for m in counted:
            if m not in counts:
                raise _Fault(f"{where}.counts.{m} is missing")
        for m, v in counts.items():
            _need(m in COUNT_METRICS, f"{where}.counts key {_show(m)}", f"one of {', '.join(COUNT_METRICS)}", m)
            _need(v is None or (_is_int(v) and v >= 0), f"{where}.counts.{m}", "an integer", v)
        error = c.get("error")
        _need(error is None or _is_str(error), f"{where}.error", "a string or null", error)
        if c["rounds_s"] is not None:
            _need(
                count is not None,
                f"{where}.rounds_s",
                "null: the baseline has no reference kernel times",
                c["rounds_s"],
            )
            _rounds(c["rounds_s"], f"{where}.rounds_s", count=count)
