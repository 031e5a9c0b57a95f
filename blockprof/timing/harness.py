"""Time blocks forward and forward+backward with ``torch.utils.benchmark``.

Two steps are timed per block:

* ``fwd``: eval mode, under ``torch.inference_mode`` (and autocast for bf16/fp16);
* ``train``: train mode, forward under autocast, backward of the mean of the
  output, with the parameter and input gradients set to ``None`` first, so that
  every call does the same work (no gradient accumulation).

The traps the harness is built against:

* ``Timer`` runs on one thread unless told otherwise: the thread count is passed
  to every Timer explicitly (default ``torch.get_num_threads()``) and recorded;
* ``blocked_autorange`` takes as few as 2 samples of a slow call and
  ``adaptive_autorange`` may stop after 4: each measurement is topped up until it
  holds at least ``min_runs`` samples;
* blocks timed one after another see different machine states on a shared
  machine: all (block, mode) cells are measured round-robin over several rounds
  and each cell's rounds are merged into one Measurement.

Every module is built from its spec (or deep-copied from the module handed in),
so nothing the caller holds is changed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from blockprof import schema
from blockprof.errors import BlockprofError, one_line
from blockprof.spec import BlockSpec, ResolvedSpec
from blockprof.timing.contention import CpuClock, cpu_ticks, load_average, steal_share
from blockprof.timing.env import Environment, environment, steady_allocator
from blockprof.timing.measurement import MIN_RUNS, MODES, Measurement, Task

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.benchmark import Measurement as TorchMeasurement
    from torch.utils.benchmark import Timer

#: seconds of timed calls per measurement; with the 10-sample floor this keeps
#: timing the three default blocks at 256 channels, 56×56, batch 1, fwd and
#: train, near 10 s on a 2-core CPU (the budget of ``blockprof compare``)
DEFAULT_MIN_RUN_TIME = 0.2
#: round-robin passes over the cells; each cell's samples come from every round
DEFAULT_ROUNDS = 3
#: the largest value each timing option takes: beyond it a run would not end in reasonable time
#: (min_run_time is per cell and mode; threads beyond any machine's cores only oversubscribe)
MAX_MIN_RUN_TIME = 600.0
MAX_ROUNDS = 1_000
MAX_MIN_RUNS = 100_000
MAX_THREADS = 1_024
DEVICES, DTYPES = schema.DEVICES, schema.DTYPES


@dataclass(frozen=True)
class Conditions:
    """How to time: one device, dtype, memory format and thread count for the whole run."""

    device: str
    dtype: str
    channels_last: bool
    threads: int
    compile: bool

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"

    @property
    def autocast(self) -> bool:
        return self.dtype != "float32"

    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)


@dataclass(frozen=True)
class BlockTiming:
    """The timing of one block: a Measurement per mode (``None`` when not asked for
    or failed), peak memory (CUDA only), the saved-tensor bytes autograd kept in
    one training step, and the one-line error of any mode that failed."""

    label: str
    spec: BlockSpec | ResolvedSpec | None
    env: Environment
    compile: bool = False
    fwd: Measurement | None = None
    train: Measurement | None = None
    fwd_peak_bytes: int | None = None
    train_peak_bytes: int | None = None
    saved_bytes_measured: int | None = None
    error: str | None = None
    load_after: float | None = None
    steal_share: float | None = None

    def measurement(self, mode: str) -> Measurement | None:
        return getattr(self, mode)


def conditions(
    device: str = "auto",
    dtype: str = "float32",
    channels_last: bool = False,
    threads: int | None = None,
    compile: bool = False,
) -> Conditions:
    """Check the options and resolve ``auto`` and ``threads=None``; BlockprofError on bad input."""
    import torch

    if device not in DEVICES:
        raise BlockprofError(f"unknown device {device!r}; choose {', '.join(DEVICES)}")
    if dtype not in DTYPES:
        raise BlockprofError(f"unknown dtype {dtype!r}; choose {', '.join(DTYPES)}")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS
    ):
        raise BlockprofError(f"threads must be a positive whole number, at most {MAX_THREADS:,}; got {threads!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise BlockprofError(
            f"--device cuda: no CUDA GPU is available (torch {torch.__version__}, {build}); use --device cpu or auto"
        )
    _check_dtype(device, dtype)
    return Conditions(device, dtype, channels_last, threads or torch.get_num_threads(), compile)


def _check_dtype(device: str, dtype: str) -> None:
    import torch

    if dtype == "bfloat16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise BlockprofError(
            f"bfloat16 is not supported on {torch.cuda.get_device_name()}; use --dtype float16 or float32"
        )
    if dtype == "float16" and device == "cpu":
        try:  # older CPU builds have no float16 autocast or no half conv kernels
            conv = torch.nn.Conv2d(2, 2, 3)
            with torch.autocast("cpu", dtype=torch.float16):
                conv(torch.randn(1, 2, 4, 4)).sum().backward()
        except (RuntimeError, TypeError) as e:
            raise BlockprofError(
                f"float16 is not supported on CPU by torch {torch.__version__} ({one_line(e)}); use --dtype bfloat16 or float32"
            ) from None


# --- building the timed steps ---


@dataclass
class TimedStep:
    """One thing to measure: its Timer (``None`` when it failed before timing) and the
    clock it reads (``None``: torch's, no CPU time kept), the context the Timer runs
    in, the rounds measured so far with each sample's CPU/wall ratio, or its error."""

    task: Task
    timer: Timer | None = None
    context: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    parts: list[TorchMeasurement] = field(default_factory=list)
    error: str | None = None
    clock: CpuClock | None = None
    cpu_ratios: list[float] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return sum(len(m.raw_times) for m in self.parts)

    def sample_seconds(self) -> float | None:
        """How long one sample took in the last round (its median), or None before any."""
        if not self.parts:
            return None
        times = sorted(self.parts[-1].raw_times)
        return times[len(times) // 2]

    def result(self) -> Measurement | None:
        return (
            Measurement.from_torch(self.task, self.parts, self.cpu_ratios)
            if self.error is None and self.parts
            else None
        )


def _autocast(cond: Conditions) -> ContextManager[Any]:
    import torch

    return torch.autocast(cond.device, dtype=cond.torch_dtype()) if cond.autocast else contextlib.nullcontext()


def fwd_context(cond: Conditions) -> Callable[[], ContextManager[Any]]:
    import torch

    def context() -> ContextManager[Any]:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(_autocast(cond))
        return stack

    return context


def make_input(shape: Sequence[int], cond: Conditions, requires_grad: bool) -> torch.Tensor:
    """A random input in the compute dtype (what an autocast network hands a block)."""
    import torch

    x = torch.randn(*shape, device=cond.device, dtype=cond.torch_dtype())
    if cond.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(requires_grad)


def place(module: nn.Module, cond: Conditions, mode: str) -> nn.Module:
    """A copy of ``module`` on the device, in the memory format and the mode's train/eval state."""
    import torch

    model = copy.deepcopy(module).to(cond.device)
    if cond.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format
    model.train(mode == "train")
    return cast("nn.Module", torch.compile(model)) if cond.compile else model


@dataclass
class _Step:
    """A timed step with what it holds, so that its memory can be measured."""

    fn: Callable[[], None]
    context: Callable[[], ContextManager[Any]]
    model: nn.Module
    x: torch.Tensor

    def clear_grads(self) -> None:
        for p in self.model.parameters():
            p.grad = None
        self.x.grad = None

    def resident_bytes(self) -> int:
        """Bytes the step's own tensors hold between calls: parameters, buffers, input."""
        tensors = [*self.model.parameters(), *self.model.buffers(), self.x]
        return sum(t.numel() * t.element_size() for t in tensors)


def make_step(module: nn.Module, shape: Sequence[int], mode: str, cond: Conditions) -> _Step:
    """The callable one sample times: a forward (``fwd``) or a training step with fresh gradients (``train``)."""
    model = place(module, cond, mode)
    if mode == "fwd":
        x = make_input(shape, cond, requires_grad=False)

        def fwd() -> None:
            model(x)

        return _Step(fwd, fwd_context(cond), model, x)

    x = make_input(shape, cond, requires_grad=True)
    params = [p for p in model.parameters() if p.requires_grad]

    def train() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        with _autocast(cond):
            loss = model(x).mean()
        loss.backward()

    return _Step(train, contextlib.nullcontext, model, x)


def _timer(step: _Step, task: Task, clock: Callable[[], float] | None = None) -> Timer:
    """The Timer of one cell; ``clock`` replaces torch's default timer (e.g. a CpuClock, or ``time.thread_time``)."""
    from torch.utils.benchmark import Timer

    kwargs: dict[str, Any] = {"timer": clock} if clock is not None else {}
    return Timer(
        "step()", globals={"step": step.fn}, num_threads=task.threads, label=task.label, description=task.mode, **kwargs
    )


# --- warm-up, memory, errors ---


def warm_up(step: _Step, cond: Conditions, mode: str) -> tuple[int | None, int | None]:
    """Run the step until it is warm (lazy init, cuDNN autotuning, compilation) and
    measure its memory: (CUDA peak bytes or None, saved-tensor bytes for ``train``)."""
    from torch.utils.benchmark.utils.common import set_torch_threads

    with set_torch_threads(cond.threads), step.context():
        step.fn()
        if cond.device == "cuda":
            step.fn()  # the first call autotuned cuDNN; measure memory on a settled one
            peak = _cuda_peak_bytes(step)
        else:
            peak = None
        saved = _saved_bytes(step) if mode == "train" else None
    return peak, saved


def _cuda_peak_bytes(step: _Step) -> int:
    """Peak allocated during one call, over what was allocated before it, plus the
    step's own parameters, buffers and input: comparable however many other cells
    share the GPU."""
    import torch

    step.clear_grads()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step.fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before + step.resident_bytes()


def _saved_bytes(step: _Step) -> int:
    """Bytes of the distinct storages autograd saves in one training step (parameters
    and buffers excluded), seen through ``saved_tensors_hooks``."""
    import torch

    own = {t.untyped_storage().data_ptr() for t in (*step.model.parameters(), *step.model.buffers())}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in own:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step.fn()
    return sum(storages.values())


def _out_of_memory(error: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return isinstance(error, oom) or "can't allocate memory" in str(error)


def describe_error(error: BaseException, task: Task) -> str:
    """One line for a failed cell: what failed and, where we know, what to change."""
    where = f"{task.label} {task.mode} on {task.device}"
    if _out_of_memory(error):
        return f"{where}: out of memory at batch {task.batch}; use a smaller batch or spatial size"
    return f"{where}: {one_line(error)}"


def _release(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


# --- the interleaved sampler ---


def run_interleaved(
    cells: Sequence[TimedStep],
    *,
    min_run_time: float,
    min_runs: int = MIN_RUNS,
    rounds: int = DEFAULT_ROUNDS,
    progress: Callable[[int, int], None] | None = None,
    announce: Callable[[Task], None] | None = None,
) -> None:
    """Measure every cell round-robin, ``rounds`` times, then top up the cells with
    fewer than ``min_runs`` samples (again round-robin) until each has enough.
    ``progress(done, total)`` follows each round of a cell; ``announce(task)``
    precedes it (what is being measured, for a progress display).

    Each round is one ``blocked_autorange`` (its block-size estimate re-warms the
    cell after the others ran); its budget is this cell's share of
    ``min_run_time``, or more when the samples still missing need it. A cell that
    raises keeps the error and drops out; the others go on.
    """
    for r in range(rounds):
        for i in range(len(cells)):
            cell = cells[(i + r) % len(cells)]  # rotate so that no cell always runs first
            if announce and cell.error is None:
                announce(cell.task)
            _round(cell, min_run_time / rounds, min_runs, rounds - r)
            if progress:
                progress(r * len(cells) + i + 1, rounds * len(cells))
    while short := [c for c in cells if c.error is None and c.runs < min_runs]:
        for cell in short:
            _round(cell, 0.0, min_runs, 1)


def _round(cell: TimedStep, share: float, min_runs: int, rounds_left: int) -> None:
    if cell.error is not None:
        return
    per_sample = cell.sample_seconds()
    missing = max(0, min_runs - cell.runs)
    budget = max(share, math.ceil(missing / rounds_left) * per_sample if per_sample else 0.0)
    assert cell.timer is not None  # a cell without an error has its Timer
    try:
        with cell.context():
            part = cell.timer.blocked_autorange(min_run_time=budget)
        cell.parts.append(part)
        if cell.clock is not None:
            cell.cpu_ratios += cell.clock.take(len(part.raw_times))
    except Exception as e:  # a failing cell is recorded, the run goes on
        cell.error = describe_error(e, cell.task)
        cell.parts.clear()
        _release(cell.task.device)


# --- public entry points ---


@dataclass
class Job:
    """One module to time: its label, its spec (None for a bare module), how to build it, its input shape."""

    label: str
    spec: BlockSpec | ResolvedSpec | None
    make: Callable[[], nn.Module]
    shape: tuple[int, ...]


def time_blocks(
    specs: Iterable[BlockSpec | Job],
    *,
    modes: Sequence[str] = MODES,
    device: str = "auto",
    dtype: str = "float32",
    channels_last: bool = False,
    threads: int | None = None,
    min_run_time: float = DEFAULT_MIN_RUN_TIME,
    min_runs: int = MIN_RUNS,
    rounds: int = DEFAULT_ROUNDS,
    compile: bool = False,
    progress: Callable[[int, int], None] | None = None,
    announce: Callable[[Task], None] | None = None,
) -> list[BlockTiming]:
    """Time each spec's block (or each :class:`Job`: any module and its input) in each mode, all
    interleaved; one BlockTiming per item, in order.

    ``min_run_time`` is the seconds of timed calls per (block, mode); each
    measurement has at least ``min_runs`` samples whatever that costs. A cell
    that fails (out of memory, a block that raises) is recorded in its
    BlockTiming's ``error`` and the others go on; bad options raise BlockprofError.
    """
    from blockprof.blocks.registry import resolve
    from blockprof.timing.memory import check_fits

    jobs = []
    for item in specs:
        if isinstance(item, Job):
            jobs.append(item)
            continue
        definition, resolved = resolve(item)
        jobs.append(Job(resolved.label, resolved, functools.partial(definition.module, resolved), resolved.input_shape))
    cond = conditions(device, dtype, channels_last, threads, compile)
    check_budget(modes, min_run_time, min_runs, rounds)
    check_fits(
        [job.spec for job in jobs if job.spec is not None], modes, cond.device, cond.dtype
    )  # before anything is allocated
    return _time(jobs, modes, cond, min_run_time, min_runs, rounds, progress, announce)


def time_block(spec: BlockSpec, **options: Any) -> BlockTiming:
    """Time one block (options as :func:`time_blocks`); a failure raises BlockprofError."""
    (timing,) = time_blocks([spec], **options)
    if timing.error:
        raise BlockprofError(timing.error)
    return timing


def time_module(
    module: nn.Module, input_shape: Sequence[int], *, label: str | None = None, **options: Any
) -> BlockTiming:
    """Time any module at ``input_shape`` (options as :func:`time_blocks`; a deep copy: ``module`` is left as
    handed in); a failure raises BlockprofError."""
    (timing,) = time_blocks([Job(label or type(module).__name__, None, lambda: module, tuple(input_shape))], **options)
    if timing.error:
        raise BlockprofError(timing.error)
    return timing


def check_budget(modes: Sequence[str], min_run_time: float, min_runs: int, rounds: int) -> None:
    if not modes or any(m not in MODES for m in modes):
        raise BlockprofError(
            f"modes must be a non-empty choice of {', '.join(MODES)}, got {', '.join(modes) or 'none'}"
        )
    if not (isinstance(min_run_time, (int, float)) and 0 < min_run_time <= MAX_MIN_RUN_TIME):  # also refuses nan
        raise BlockprofError(
            f"min_run_time must be a positive number of seconds, at most {MAX_MIN_RUN_TIME:g}; got {min_run_time!r}"
        )
    if not (isinstance(min_runs, int) and 4 <= min_runs <= MAX_MIN_RUNS):
        raise BlockprofError(
            f"min_runs must be at least 4 (a median and IQR need quartiles) and at most {MAX_MIN_RUNS:,}; got {min_runs!r}"
        )
    if not (isinstance(rounds, int) and 1 <= rounds <= MAX_ROUNDS):
        raise BlockprofError(f"rounds must be at least 1 and at most {MAX_ROUNDS:,}; got {rounds!r}")


@contextlib.contextmanager
def _cudnn_benchmark(on: bool) -> Any:
    import torch

    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on or before
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _time(
    jobs: list[Job],
    modes: Sequence[str],
    cond: Conditions,
    min_run_time: float,
    min_runs: int,
    rounds: int,
    progress: Callable[[int, int], None] | None,
    announce: Callable[[Task], None] | None,
) -> list[BlockTiming]:
    check_budget(modes, min_run_time, min_runs, rounds)
    env = environment(cond.device, cond.dtype, cond.threads, cond.memory_format)
    ticks = cpu_ticks()
    cells, memory = measure_cells(
        jobs,
        modes,
        cond,
        min_run_time=min_run_time,
        min_runs=min_runs,
        rounds=rounds,
        progress=progress,
        announce=announce,
    )
    steal, load_after = steal_share(ticks, cpu_ticks()), load_average()
    out = []
    for j, job in enumerate(jobs):
        errors = [cells[(j, m)].error for m in modes if cells[(j, m)].error]
        fwd_peak, _ = memory.get((j, "fwd"), (None, None))
        train_peak, saved = memory.get((j, "train"), (None, None))
        out.append(
            BlockTiming(
                label=job.label,
                spec=job.spec,
                env=env,
                compile=cond.compile,
                fwd=cells[(j, "fwd")].result() if "fwd" in modes else None,
                train=cells[(j, "train")].result() if "train" in modes else None,
                fwd_peak_bytes=fwd_peak,
                train_peak_bytes=train_peak,
                saved_bytes_measured=saved,
                error="; ".join(errors) if errors else None,  # type: ignore[arg-type]
                load_after=load_after,
                steal_share=steal,
            )
        )
    return out


def measure_cells(
    jobs: Sequence[Job],
    modes: Sequence[str],
    cond: Conditions,
    *,
    min_run_time: float,
    min_runs: int = MIN_RUNS,
    rounds: int = DEFAULT_ROUNDS,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] | None = None,
    seed: int | None = None,
    announce: Callable[[Task], None] | None = None,
) -> tuple[dict[tuple[int, str], TimedStep], dict[tuple[int, str], tuple[int | None, int | None]]]:
    """Build every (job, mode) cell and measure them all interleaved: the cells (their rounds in ``parts``) and
    each step's memory. ``clock`` and ``seed`` as :func:`build_cells`; ``announce`` is told each task as it starts."""
    steady_allocator()  # no page faults per call from glibc handing activations back to the OS
    with _cudnn_benchmark(cond.device == "cuda"):
        cells, memory = build_cells(jobs, modes, cond, clock=clock, seed=seed)
        run_interleaved(
            list(cells.values()),
            min_run_time=min_run_time,
            min_runs=min_runs,
            rounds=rounds,
            progress=progress,
            announce=announce,
        )
    return cells, memory


def build_cells(
    jobs: Sequence[Job],
    modes: Sequence[str],
    cond: Conditions,
    *,
    clock: Callable[[], float] | None = None,
    seed: int | None = None,
) -> tuple[dict[tuple[int, str], TimedStep], dict[tuple[int, str], tuple[int | None, int | None]]]:
    """One warmed-up TimedStep per (job, mode), ready for :func:`run_interleaved`, and the memory each step used.

    ``clock`` replaces the Timer's wall clock; ``seed`` seeds torch before each module is built, so that
    every run times the same weights and input. A cell that fails to build keeps its error."""
    import torch

    cells: dict[tuple[int, str], TimedStep] = {}
    memory: dict[tuple[int, str], tuple[int | None, int | None]] = {}
    for j, job in enumerate(jobs):
        for mode in modes:
            batch = job.shape[0] if job.shape else 1
            task = Task(job.label, mode, cond.device, cond.dtype, cond.threads, cond.memory_format, batch, cond.compile)
            cell = TimedStep(task)
            try:
                if seed is not None:
                    torch.manual_seed(seed)
                step = make_step(job.make(), job.shape, mode, cond)
                memory[(j, mode)] = warm_up(step, cond, mode)
                # on CPU the timed code is the host's, so its CPU share of the wall time shows contention;
                # on CUDA the host waits on the GPU, so its CPU share says nothing
                cell.clock = CpuClock(cond.threads, wall=clock) if cond.device == "cpu" else None
                cell.timer, cell.context = _timer(step, task, cell.clock or clock), step.context
            except Exception as e:  # recorded per cell; the other cells go on
                cell.error = describe_error(e, task)
                _release(cond.device)
            cells[(j, mode)] = cell
    return cells, memory
