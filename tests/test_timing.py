"""The timing harness: real timings of small blocks (fast), the noise policy on
synthetic samples, interleaving, bad input, and CUDA paths (skipped without a GPU)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec
from blockprof.timing import harness
from blockprof.timing.env import cpu_count
from blockprof.timing.harness import TimedStep, conditions, run_interleaved, time_block, time_blocks, time_module
from blockprof.timing.measurement import MIN_RUNS, NOISY_IQR_RATIO, Measurement, Task

# one thread: on a shared, oversubscribed CI machine a 2-thread OpenMP region waits for
# its descheduled partner, and the small blocks here would time that instead of the block
FAST = dict(device="cpu", threads=1, min_run_time=0.05, rounds=5)
BLOCKS = ("basic", "bottleneck", "inverted_residual")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def small_timings() -> list[harness.BlockTiming]:
    """The three blocks at 32 channels, 28×28, fwd and train, timed once for several tests
    (big enough that a training step's 3× the work stands clear of a shared machine's noise)."""
    return time_blocks([BlockSpec(b, 32, spatial=28) for b in BLOCKS], **FAST)


def test_times_are_positive_with_enough_runs(small_timings: list[harness.BlockTiming]) -> None:
    for t in small_timings:
        assert t.error is None
        for m in (t.fwd, t.train):
            assert m is not None and m.median > 0 and m.iqr >= 0
            assert m.runs >= MIN_RUNS and len(m.samples) == m.runs
            assert m.calls >= m.runs and m.total_s >= m.median * m.runs * 0.5
            assert all(s > 0 for s in m.samples)


def test_train_step_is_slower_than_forward(small_timings: list[harness.BlockTiming]) -> None:
    for t in small_timings:
        assert t.train.median > t.fwd.median, t.label


@pytest.mark.timing
def test_doubling_the_batch_roughly_doubles_the_time() -> None:
    """The harness's loop read with the timing thread's CPU clock (as the regression check reads it): time the OS
    gave to other jobs is not counted, so a loaded machine does not decide the ratio (with wall time, two busy
    loops beside it put it anywhere from 1 to 9). Large enough that per-call overhead is small; a harness that
    times nothing, or the wrong module, gives ~1."""
    import functools
    import time

    from blockprof.blocks.registry import resolve

    jobs = []
    for batch in (2, 4):
        definition, spec = resolve(BlockSpec("basic", 64, spatial=28, batch=batch))
        jobs.append(harness.Job(spec.label, spec, functools.partial(definition.module, spec), spec.input_shape))
    cells, _ = harness.measure_cells(
        jobs, ("fwd",), conditions("cpu", threads=1), min_run_time=0.05, rounds=5, clock=time.thread_time
    )
    small, large = (cells[(j, "fwd")].result() for j in (0, 1))
    assert small is not None and large is not None
    ratio = large.median / small.median
    assert 1.3 < ratio < 3.5, ratio


@pytest.mark.timing
def test_at_least_min_runs_even_when_one_call_exceeds_the_budget() -> None:
    (t,) = time_blocks(
        [BlockSpec("basic", 64, spatial=28)], modes=("train",), device="cpu", threads=1, min_run_time=1e-4, min_runs=12
    )
    assert t.train.runs >= 12


@pytest.mark.timing
def test_threads_are_passed_to_the_timed_call_and_recorded() -> None:
    seen: list[int] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x * 2

    before = torch.get_num_threads()
    for threads in sorted({1, min(2, cpu_count())}):
        seen.clear()
        t = time_module(Probe(), (1, 4), device="cpu", threads=threads, min_run_time=0.01)
        assert set(seen) == {threads}
        assert t.env.threads == threads and t.fwd.task.threads == threads and t.train.task.threads == threads
    assert torch.get_num_threads() == before  # restored afterwards


def test_default_threads_are_torchs_default() -> None:
    assert conditions("cpu").threads == torch.get_num_threads()


@pytest.mark.timing
def test_the_module_handed_in_is_left_alone() -> None:
    module = harness.place(nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)), conditions("cpu"), "fwd")  # eval mode
    state = {k: v.clone() for k, v in module.state_dict().items()}
    time_module(module, (2, 4, 8, 8), device="cpu", threads=1, min_run_time=0.01)
    assert not module.training
    assert all(p.grad is None for p in module.parameters())
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())  # BN running stats untouched


def test_train_step_starts_from_fresh_gradients() -> None:
    # each step sets grads to None first, so the gradient after any number of steps is one step's
    module = nn.Linear(3, 1, bias=False)
    step = harness.make_step(module, (2, 3), "train", conditions("cpu"))
    step.fn()
    once = step.model.weight.grad.clone()
    step.fn()
    step.fn()
    assert torch.allclose(step.model.weight.grad, once)
    assert step.x.grad is not None


# --- the noise policy, on synthetic samples ---


def _measurement(samples: list[float]) -> Measurement:
    return Measurement(
        Task("synthetic", "fwd", "cpu", "float32", 1, "contiguous", 1), tuple(samples), len(samples), sum(samples)
    )


def test_tight_samples_are_not_noisy() -> None:
    m = _measurement([1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.0, 1.01, 0.99])
    assert math.isclose(m.median, 1.0)
    assert m.relative_iqr < NOISY_IQR_RATIO and not m.noisy


def test_wide_samples_are_noisy() -> None:
    m = _measurement([0.8, 0.9, 1.0, 1.1, 1.2, 0.85, 1.15, 1.0, 0.95, 1.05])
    assert m.relative_iqr > NOISY_IQR_RATIO and m.noisy


def test_noise_flag_sits_at_the_threshold() -> None:
    # quartiles of 0..10 are 2.5 and 7.5: IQR = 5 around a median of 5 + offset
    base = [float(i) for i in range(11)]
    just_over = _measurement([v + 5 / (NOISY_IQR_RATIO * 1.01) - 5 for v in base])
    just_under = _measurement([v + 5 / (NOISY_IQR_RATIO * 0.99) - 5 for v in base])
    assert just_over.noisy and not just_under.noisy


def test_statistics_are_torchs() -> None:
    samples = [3.0, 1.0, 2.0, 5.0, 4.0, 9.0, 7.0, 6.0, 8.0, 10.0]
    m = _measurement(samples)
    t = torch.tensor(sorted(samples), dtype=torch.float64)
    assert math.isclose(m.median, t.quantile(0.5).item())
    assert math.isclose(m.iqr, (t.quantile(0.75) - t.quantile(0.25)).item())
    assert m.runs == 10


def test_merging_rounds_keeps_every_sample_per_call() -> None:
    from torch.utils.benchmark import Measurement as TorchMeasurement
    from torch.utils.benchmark.utils.common import TaskSpec

    spec = TaskSpec("step()", "")
    rounds = [TorchMeasurement(10, [0.1, 0.2], spec), TorchMeasurement(1, [0.03], spec)]
    m = Measurement.from_torch(_measurement([1.0]).task, rounds)
    assert m.samples == pytest.approx((0.01, 0.02, 0.03))
    assert m.calls == 21 and m.total_s == pytest.approx(0.33)


# --- interleaving ---


@pytest.mark.timing
def test_cells_are_measured_round_robin() -> None:
    from torch.utils.benchmark import Timer

    log: list[str] = []
    cells = []
    for name in "ab":

        def call(name: str = name) -> None:
            log.append(name)
            sum(range(2000))  # some work, so the block size stays small

        task = Task(name, "fwd", "cpu", "float32", 1, "contiguous", 1)
        cells.append(TimedStep(task, Timer("call()", globals={"call": call})))
    run_interleaved(cells, min_run_time=0.03, rounds=3)
    # 'b' is measured before 'a' is done: the rounds alternate
    assert log.index("b") < len(log) - 1 - log[::-1].index("a")
    assert all(c.runs >= MIN_RUNS and len(c.parts) >= 3 for c in cells)


@pytest.mark.timing
def test_a_failing_cell_is_recorded_and_the_rest_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from blockprof.blocks import nn as blocks_nn

    def broken(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(blocks_nn.InvertedResidual, "forward", broken)
    specs = [BlockSpec("basic", 16, spatial=8), BlockSpec("inverted_residual", 16, spatial=8)]
    ok, failed = time_blocks(specs, **FAST)
    assert ok.error is None and ok.fwd is not None and ok.train is not None
    assert failed.fwd is None and failed.train is None
    assert "fwd" in failed.error and "train" in failed.error and "RuntimeError: boom" in failed.error
    assert "\n" not in failed.error
    with pytest.raises(BlockprofError, match="boom"):
        time_block(specs[1], **FAST)


def test_out_of_memory_is_one_line_that_names_the_fix() -> None:
    task = Task("basic 64→64 t1", "train", "cuda", "float32", 1, "contiguous", 512)
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    message = harness.describe_error(oom("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"), task)
    assert message == "basic 64→64 t1 train on cuda: out of memory at batch 512; use a smaller batch or spatial size"


# --- bad input ---


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error() -> None:
    with pytest.raises(BlockprofError, match="no CUDA GPU") as e:
        time_block(BlockSpec("basic", 8, spatial=8), device="cuda")
    assert "\n" not in str(e.value) and "--device cpu" in str(e.value)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(dtype="float64"), "unknown dtype 'float64'; choose float32, bfloat16, float16"),
        (dict(device="tpu"), "unknown device 'tpu'"),
        (dict(threads=0), "threads must be a positive whole number"),
        (dict(modes=("bwd",)), "modes must be a non-empty choice of fwd, train"),
        (dict(modes=()), "modes must be a non-empty choice"),
        (dict(min_run_time=0), "min_run_time must be a positive number"),
        (dict(min_runs=2), "min_runs must be at least 4"),
        (dict(min_run_time=float("inf")), "min_run_time must be a positive number of seconds, at most 600"),
        (dict(min_run_time=float("nan")), "min_run_time must be a positive number"),
        (dict(threads=100_000), "threads must be a positive whole number, at most 1,024"),
        (dict(rounds=10**9), "rounds must be at least 1 and at most 1,000"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict, match: str) -> None:
    with pytest.raises(BlockprofError, match=match) as e:
        time_blocks([BlockSpec("basic", 8, spatial=8)], **{"device": "cpu", **options})
    assert "\n" not in str(e.value)


def test_float16_on_a_cpu_build_without_it_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CPU autocast only supports bfloat16")

    monkeypatch.setattr(torch, "autocast", unsupported)
    with pytest.raises(BlockprofError, match=r"float16 is not supported on CPU.*use --dtype bfloat16 or float32"):
        conditions("cpu", "float16")


@pytest.mark.timing
def test_bfloat16_channels_last_on_cpu() -> None:
    (t,) = time_blocks(
        [BlockSpec("bottleneck", 32, spatial=14)],
        device="cpu",
        threads=1,
        dtype="bfloat16",
        channels_last=True,
        min_run_time=0.02,
    )
    assert t.error is None and t.fwd.median > 0 and t.train.median > 0
    assert (
        t.env.dtype == "bfloat16"
        and t.env.memory_format == "channels_last"
        and t.fwd.task.memory_format == "channels_last"
    )


def test_no_peak_memory_on_cpu_but_saved_bytes_measured(small_timings: list[harness.BlockTiming]) -> None:
    for t in small_timings:
        assert t.fwd_peak_bytes is None and t.train_peak_bytes is None
        assert t.saved_bytes_measured > 0


@pytest.mark.timing
@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
)  # raised inside torch.compile
def test_compiled_block_times() -> None:
    t = time_block(BlockSpec("basic", 16, spatial=8), modes=("fwd",), compile=True, **FAST)
    assert t.compile and t.fwd.median > 0 and t.fwd.task.compile


# --- CUDA (run where a GPU is lent) ---


@pytest.mark.timing
@pytest.mark.cuda
@cuda
def test_cuda_fwd_and_train_with_peak_memory() -> None:
    before = torch.backends.cudnn.benchmark
    t = time_block(BlockSpec("bottleneck", 64, spatial=28, batch=8), device="cuda", min_run_time=0.05)
    assert t.env.device == "cuda" and t.env.cuda_version and t.env.cudnn_version
    assert 0 < t.fwd.median < t.train.median and t.fwd.runs >= MIN_RUNS and t.train.runs >= MIN_RUNS
    assert 0 < t.fwd_peak_bytes < t.train_peak_bytes
    assert torch.backends.cudnn.benchmark == before  # switched on for the run only


@pytest.mark.timing
@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_autocast_dtypes(dtype: str) -> None:
    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        pytest.skip("GPU without bfloat16")
    t = time_block(
        BlockSpec("inverted_residual", 32, spatial=28, batch=4),
        device="cuda",
        dtype=dtype,
        channels_last=True,
        min_run_time=0.05,
    )
    assert t.fwd.median > 0 and t.train.median > 0 and t.env.dtype == dtype


@pytest.mark.timing
@pytest.mark.cuda
@cuda
def test_cuda_peak_memory_grows_with_the_batch() -> None:
    small, large = time_blocks(
        [BlockSpec("basic", 64, spatial=56, batch=b) for b in (4, 16)], device="cuda", min_run_time=0.05
    )
    assert large.train_peak_bytes > 2 * small.train_peak_bytes
