"""Taking a snapshot: each cell's counts and its timing rounds, with the reference kernel in every round.

The timing reuses the harness's loop (:func:`blockprof.timing.harness.measure_cells`, with the suite's clock);
:class:`Session` keeps the built cells so that another process can ask for one round at a time (the A/B
check in :mod:`blockprof.regress.ab`). The ``instructions`` clock counts instructions under valgrind
(callgrind, through torch's valgrind bindings) instead.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockprof.errors import BlockprofError
from blockprof.regress.baseline import REFERENCE, CellResult, Rounds, Snapshot
from blockprof.regress.suite import COUNT_METRICS, Suite, TimingPlan, cell_id
from blockprof.spec import BlockSpec, CellSpec, ModelSpec

if TYPE_CHECKING:
    from torch import nn

    from blockprof.timing.harness import Conditions, Job, TimedStep

Progress = Callable[[int, int], None]
#: calls per instruction count, and counts per cell (the "rounds" of the instructions clock)
CALLGRIND_CALLS = 2
CALLGRIND_REPEATS = 5


def measure(suite: Suite, *, sessions: int = 1, progress: Progress | None = None) -> Snapshot:
    """Count every cell and, when the suite has the time metric, time them with the
    reference kernel interleaved, ``sessions`` times over, their rounds pooled.
    Invalid cells raise BlockprofError first."""
    check_cells(suite.cells)
    counts = {cell_id(s): counts_of(s) for s in suite.cells}
    rounds: dict[str, Rounds | str] = {}
    reference: Rounds | None = None
    environment = None
    if suite.timed:
        reference = ()
        time_cells = _count_instructions if suite.timing.clock == "instructions" else _time_cells
        for _ in range(sessions if suite.timing.clock != "instructions" else 1):  # instructions do not vary
            more, timed, environment = time_cells(suite.cells, suite.timing, progress)
            reference += more
            for key, result in timed.items():
                before = rounds.get(key, ())
                if not isinstance(before, str):  # a cell that failed in one session keeps that error
                    rounds[key] = result if isinstance(result, str) else before + result
    return snapshot_of(suite, counts, rounds, reference, environment, git_info())


def snapshot_of(
    suite: Suite,
    counts: dict[str, dict[str, int | None]],
    rounds: dict[str, Rounds | str],
    reference: Rounds | None,
    environment: dict[str, Any] | None,
    git: dict[str, Any] | None,
) -> Snapshot:
    """A snapshot from what was measured (``rounds``: a cell's rounds, or its error)."""
    from blockprof import __version__

    cells = {}
    for spec in suite.cells:
        key = cell_id(spec)
        result = rounds.get(key)
        cells[key] = CellResult(
            spec,
            counts[key],
            result if isinstance(result, tuple) else None,
            result if isinstance(result, str) else None,
        )
    return Snapshot(
        suite,
        cells,
        environment,
        reference,
        __version__,
        git,
        _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )


def check_cells(specs: Sequence[CellSpec]) -> None:
    """Fail fast, with the block cell named, before anything slow (a model is checked when it is counted,
    so that a base tree in an A/B check that cannot build it reports it as new rather than failing)."""
    from blockprof.blocks.registry import resolve

    for spec in specs:
        if isinstance(spec, ModelSpec):
            continue
        try:
            resolve(spec)
        except BlockprofError as e:
            raise BlockprofError(f"cell {cell_id(spec)}: {e}") from None


def _jobs(specs: Sequence[CellSpec]) -> list[Job]:
    from blockprof.blocks.registry import resolve
    from blockprof.timing.harness import Job

    jobs = [Job("reference", None, reference_module, tuple(REFERENCE["input"]))]
    for spec in specs:
        if isinstance(spec, ModelSpec):
            jobs.append(Job(cell_id(spec), None, _model_maker(spec), spec.input_shape))
            continue
        definition, resolved = resolve(spec)
        jobs.append(Job(cell_id(spec), spec, functools.partial(definition.module, resolved), resolved.input_shape))
    return jobs


def _model_maker(spec: ModelSpec) -> Callable[[], nn.Module]:
    """Import the model only when the harness builds it, so that a model that cannot be built is that
    cell's error (recorded by the harness) rather than the whole check's."""
    from blockprof.models import model_builder

    return lambda: model_builder(spec)()


def _clock(plan: TimingPlan) -> Callable[[], float]:
    import time

    return time.thread_time if plan.clock == "thread" else time.perf_counter


def _conditions(plan: TimingPlan) -> Conditions:
    from blockprof.timing.harness import conditions

    return conditions(plan.device, plan.dtype, threads=plan.threads)


def environment_of(plan: TimingPlan, allocator: str) -> dict[str, Any]:
    """The environment a snapshot records: torch, CPU, threads, dtype ..., and the allocator setting."""
    from blockprof.timing.env import environment

    cond = _conditions(plan)
    return {**environment(cond.device, cond.dtype, cond.threads, cond.memory_format).as_dict(), "allocator": allocator}


def _time_cells(
    specs: Sequence[CellSpec], plan: TimingPlan, progress: Progress | None
) -> tuple[Rounds, dict[str, Rounds | str], dict[str, Any]]:
    """Time the reference kernel and every cell round-robin with the timing harness:
    (reference rounds, cell id → rounds or its error, environment)."""
    from blockprof.timing.env import steady_allocator
    from blockprof.timing.harness import measure_cells

    allocator = steady_allocator()
    cells, _ = measure_cells(
        _jobs(specs),
        (plan.mode,),
        _conditions(plan),
        min_run_time=plan.sample_time * plan.rounds,
        min_runs=4,
        rounds=plan.rounds,
        progress=progress,
        clock=_clock(plan),
        seed=0,
    )
    reference, *measured = cells.values()
    if reference.error:
        raise RuntimeError(f"the reference kernel failed to run: {reference.error}")
    rounds: dict[str, Rounds | str] = {
        c.task.label: c.error or tuple(tuple(m.times) for m in c.parts) for c in measured
    }
    return tuple(tuple(m.times) for m in reference.parts), rounds, environment_of(plan, allocator)


@dataclass
class Session:
    """A suite's cells built once and timed one round at a time on request (the A/B worker's state)."""

    suite: Suite
    cells: list[TimedStep]

    @classmethod
    def start(cls, suite: Suite) -> Session:
        from blockprof.timing.env import steady_allocator
        from blockprof.timing.harness import build_cells

        steady_allocator()
        built, _ = build_cells(
            _jobs(suite.cells), (suite.timing.mode,), _conditions(suite.timing), clock=_clock(suite.timing), seed=0
        )
        return cls(suite, list(built.values()))

    def round(self, number: int, only: Sequence[str] | None = None) -> dict[str, list[float] | str]:
        """Time the reference and the cells (``only`` these ids, when given) once each, the order rotated by
        ``number``: label → per-call times, or the cell's error."""
        from blockprof.timing.harness import run_interleaved

        chosen = [c for c in self.cells if only is None or c.task.label == "reference" or c.task.label in only]
        shift = number % len(chosen)
        order = chosen[shift:] + chosen[:shift]
        for cell in order:
            cell.parts.clear()
        run_interleaved(order, min_run_time=self.suite.timing.sample_time, min_runs=1, rounds=1)
        return {c.task.label: c.error or [t for m in c.parts for t in m.times] for c in chosen}


def reference_module() -> nn.Module:
    """The reference kernel as a module: :data:`REFERENCE`'s convolution, timed with the same step as the cells."""
    import torch

    torch.manual_seed(0)
    _, c_in, _, _ = REFERENCE["input"]
    c_out, _, k, _ = REFERENCE["weight"]
    return torch.nn.Conv2d(c_in, c_out, k, padding=REFERENCE["padding"], bias=False)


def counts_of(spec: CellSpec) -> dict[str, int | None]:
    """The compared counts: closed form for registered blocks, the tracer for user blocks and models."""
    from blockprof.blocks.registry import get
    from blockprof.counting.record import count_record
    from blockprof.models import model_record

    if isinstance(spec, ModelSpec):
        record = model_record(spec)
    else:
        record = count_record(spec, tools=() if get(spec.block).analytic else ("torch",))
    return {m: record[m] for m in COUNT_METRICS}


def git_info(cwd: str | Path | None = None) -> dict[str, Any] | None:
    """The commit the working directory is at and whether it has uncommitted changes; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


# --- the instructions clock (valgrind) ---


def valgrind_missing() -> str | None:
    """Why the instructions clock cannot run here, or None when it can."""
    if shutil.which("valgrind") is None:
        return (
            "clock 'instructions' needs valgrind, which is not installed (apt-get install valgrind); use clock 'thread'"
        )
    return None


#: run under valgrind: build every step, then count CALLGRIND_REPEATS × CALLGRIND_CALLS calls of each,
#: one dump per repeat
_CALLGRIND_SCRIPT = """
import json, sys
import torch
from blockprof.regress.measure import callgrind_step
jobs = json.loads(sys.argv[1])
steps = [callgrind_step(spec, mode) for spec, mode in jobs]
for step in steps:
    for _ in range({repeats}):
        torch._C._valgrind_toggle()
        for _ in range({calls}):
            step()
        torch._C._valgrind_toggle_and_dump_stats()
"""


def callgrind_step(spec: dict[str, Any] | None, mode: str) -> Callable[[], None]:
    """The step one instruction count runs (in valgrind's process): the cell (or the reference, ``spec`` None),
    built with seed 0 and warmed up exactly as the timed cells are."""
    import torch

    from blockprof.blocks.registry import resolve
    from blockprof.timing.harness import conditions, make_step, warm_up

    cond = conditions("cpu", "float32", threads=1)
    torch.manual_seed(0)
    shape: tuple[int, ...]
    if spec is None:
        module, shape = reference_module(), tuple(REFERENCE["input"])
    elif "model" in spec:
        from blockprof.models import model_builder

        model = ModelSpec.from_dict(spec)
        module, shape = model_builder(model)(), model.input_shape
    else:
        definition, resolved = resolve(BlockSpec(**spec))
        module, shape = definition.module(resolved), resolved.input_shape
    step = make_step(module, shape, mode, cond)
    warm_up(step, cond, mode)

    def call() -> None:
        with step.context():
            step.fn()

    return call


def _count_instructions(
    specs: Sequence[CellSpec], plan: TimingPlan, progress: Progress | None
) -> tuple[Rounds, dict[str, Rounds | str], dict[str, Any]]:
    """Instructions per call of the reference and each cell, counted by callgrind with torch's valgrind
    bindings (the mechanism of ``Timer.collect_callgrind``) in ONE valgrind process: starting Python and
    torch under valgrind takes minutes on a shared 2-core machine (one ``collect_callgrind`` took 149 s),
    so one process per cell, as ``collect_callgrind`` does, would take a quarter of an hour for five cells.
    :data:`CALLGRIND_REPEATS` counts per cell stand as its rounds."""
    import os
    import re
    import sys
    import tempfile

    why = valgrind_missing()
    if why:
        raise BlockprofError(why)
    labels = ["reference", *(cell_id(s) for s in specs)]
    jobs = [[None, plan.mode], *([s.as_dict(), plan.mode] for s in specs)]
    script = _CALLGRIND_SCRIPT.format(repeats=CALLGRIND_REPEATS, calls=CALLGRIND_CALLS)
    with tempfile.TemporaryDirectory(prefix="blockprof-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            "--instr-atstart=yes",
            "--collect-atstart=no",
            sys.executable,
            "-c",
            script,
            json.dumps(jobs),
        ]
        if progress:
            progress(0, 1)
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if done.returncode:
            tail = [s for s in done.stderr.strip().splitlines() if s.strip() and not s.startswith("==")]
            raise BlockprofError(
                f"counting instructions under valgrind failed: {tail[-1] if tail else f'exit code {done.returncode}'}"
            )
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        totals = []
        for dump in dumps:
            match = re.search(r"^(?:summary|totals):\s*(\d+)", dump.read_text(errors="replace"), re.MULTILINE)
            totals.append(int(match.group(1)) / CALLGRIND_CALLS if match else float("nan"))
    if progress:
        progress(1, 1)
    if len(totals) != len(labels) * CALLGRIND_REPEATS:
        raise BlockprofError(
            f"valgrind wrote {len(totals)} instruction counts for {len(labels)} cells × {CALLGRIND_REPEATS}; "
            "is valgrind's callgrind tool installed?"
        )
    rounds = {
        label: tuple((t,) for t in totals[i * CALLGRIND_REPEATS : (i + 1) * CALLGRIND_REPEATS])
        for i, label in enumerate(labels)
    }
    reference = rounds.pop("reference")
    return reference, dict(rounds), environment_of(plan, "valgrind")


def save_baseline(suite: Suite, path: str | Path, *, progress: Progress | None = None) -> Snapshot:
    """Measure ``suite`` now (its timing plan's ``baseline_sessions`` runs, pooled) and
    write it to ``path`` as a baseline (atomically); returns the snapshot."""
    from blockprof.regress.baseline import write_baseline

    snapshot = measure(suite, sessions=suite.timing.baseline_sessions, progress=progress)
    write_baseline(snapshot, path)
    return snapshot
