"""The device's peaks, measured once and cached per machine: the roofline's two numbers.

* compute: the faster of two dense kernels in the chosen dtype, timed interleaved: a large square
  matmul (``2·n³`` FLOPs per call) and a 3×3 convolution at 256 channels (the convolution library's own
  kernel, which on some CPUs outruns the matmul: a matmul-only peak left a quiet machine's BasicBlock
  at 118% of its "peak");
* bandwidth: a large tensor copy (``2 × bytes``: every byte read once and written once).

Both are timed with the same interleaved harness as the blocks (at least 10
samples). The peak is the fastest sample, as STREAM reports its best rate: other
work on the machine can only slow a run down, so the fastest sample is the
closest to what the hardware does; the median rate and the IQR are kept beside
it, and a block's roofline fraction above 1 says the peak was measured under
load (``--force`` on a quiet machine measures it again). Results are cached in
``peaks.json`` under :func:`cache_dir` (``$BLOCKPROF_CACHE_DIR``, else
``$XDG_CACHE_HOME/blockprof``, else ``~/.cache/blockprof``), keyed by device name,
CPU model, thread count, dtype and torch version; ``force=True`` measures again.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blockprof.timing.env import cpu_model, device_name
from blockprof.timing.harness import Conditions, TimedStep, conditions, run_interleaved
from blockprof.timing.measurement import MIN_RUNS, Measurement, Task

#: square matmul side and copied bytes per device: large enough to leave every cache
MATMUL_N = {"cpu": 2048, "cuda": 8192}
COPY_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}
#: the 3×3 convolution of the compute peak, per device: (batch, channels, side); 2·N·C²·9·side² FLOPs per call
CONV_SHAPE = {"cpu": (1, 256, 56), "cuda": (32, 256, 56)}
#: seconds of timed calls for each kernel of the peaks
CALIBRATE_MIN_RUN_TIME = 1.0
#: the longest one matmul call may take: the side is halved until it fits, which bounds the
#: calibration (10 samples at least) and keeps Ctrl-C answered (it lands between calls)
MAX_CALL_S = 0.5
#: what a calibration takes on a quiet machine, at most, in seconds (said before it starts)
EXPECTED_S = 10


def describe_calibration(device: str, dtype: str, threads: int | None) -> str:
    """One line saying what a first calibration measures and how long it takes."""
    cond = conditions(device, dtype, threads=threads)
    return (
        f"{cond.device} {dtype} peaks at {cond.threads} threads, once per machine: a matmul of up to "
        f"{MATMUL_N[cond.device]}² (one call under {MAX_CALL_S:g} s), a 3×3 conv and a {COPY_BYTES[cond.device] // 2**20} MiB copy, "
        f"about {EXPECTED_S} s (longer on a busy machine; Ctrl-C stops it)"
    )


@dataclass(frozen=True)
class Peaks:
    """Measured peaks of one device at one dtype and thread count: the fastest sample's
    rate (``*_per_s``), the median sample's, the IQR of the timings over their median
    (``*_rel_iqr``) and the sample count. The compute figures are those of the faster
    kernel, named by ``flops_kernel``; ``kernel_flops_per_s`` holds each kernel's rate."""

    key: str
    device: str
    device_name: str
    dtype: str
    threads: int
    torch_version: str
    flops_per_s: float
    flops_median_per_s: float
    flops_rel_iqr: float
    flops_runs: int
    bytes_per_s: float
    bytes_median_per_s: float
    bytes_rel_iqr: float
    bytes_runs: int
    matmul_n: int
    copy_bytes: int
    measured_at: str
    flops_kernel: str
    kernel_flops_per_s: dict[str, float]

    @property
    def ridge_intensity(self) -> float:
        """FLOPs per byte above which a kernel is compute-bound on this device."""
        return self.flops_per_s / self.bytes_per_s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: the environment variable that moves blockprof's cache (the test suite points it at a temporary directory)
CACHE_ENV = "BLOCKPROF_CACHE_DIR"


def cache_dir() -> Path:
    """Where blockprof caches what it measured once per machine."""
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "blockprof"


def cache_path() -> Path:
    return cache_dir() / "peaks.json"


def cache_key(cond: Conditions) -> str:
    import torch

    host = (device_name("cuda"), cpu_model()) if cond.device == "cuda" else (cpu_model(),)
    return " | ".join((cond.device, *host, f"{cond.threads} threads", cond.dtype, f"torch {torch.__version__}"))


def _load() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(peaks: Peaks) -> None:
    """Cache the peaks, atomically (a concurrent reader sees the old file or the new one). A cache
    that cannot be written (read-only home, full disk) costs a new measurement next time, not this run."""
    from blockprof.errors import BlockprofError
    from blockprof.io import atomic_write_text

    path = cache_path()
    data = _load()
    data[peaks.key] = peaks.as_dict()
    with contextlib.suppress(OSError, BlockprofError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def cached_peaks(device: str = "auto", dtype: str = "float32", threads: int | None = None) -> Peaks | None:
    """The cached peaks for these conditions, or None (never measures)."""
    cond = conditions(device, dtype, threads=threads)
    entry = _load().get(cache_key(cond))
    try:
        return Peaks(**entry) if entry else None
    except TypeError:  # a cache written by another version of blockprof
        return None


def calibrate(
    device: str = "auto",
    dtype: str = "float32",
    threads: int | None = None,
    force: bool = False,
    min_run_time: float = CALIBRATE_MIN_RUN_TIME,
) -> Peaks:
    """The device's peak FLOP/s and bytes/s: from the cache, or measured (and cached)."""
    cond = conditions(device, dtype, threads=threads)
    if not force and (hit := cached_peaks(cond.device, dtype, cond.threads)) is not None:
        return hit
    n, kernels, copy = _measure(cond, min_run_time)
    nbytes = COPY_BYTES[cond.device]
    import torch

    rates = {name: flops / min(m.samples) for name, (flops, m) in kernels.items()}
    kernel = max(rates, key=rates.__getitem__)
    flops, compute = kernels[kernel]
    moved = 2 * nbytes
    peaks = Peaks(
        key=cache_key(cond),
        device=cond.device,
        device_name=device_name(cond.device),
        dtype=dtype,
        threads=cond.threads,
        torch_version=torch.__version__,
        flops_per_s=rates[kernel],
        flops_median_per_s=flops / compute.median,
        flops_rel_iqr=compute.relative_iqr,
        flops_runs=compute.runs,
        bytes_per_s=moved / min(copy.samples),
        bytes_median_per_s=moved / copy.median,
        bytes_rel_iqr=copy.relative_iqr,
        bytes_runs=copy.runs,
        matmul_n=n,
        copy_bytes=nbytes,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        flops_kernel=kernel,
        kernel_flops_per_s=rates,
    )
    _save(peaks)
    return peaks


def matmul_side(cond: Conditions, limit: float = MAX_CALL_S) -> int:
    """The side of the square matmul: :data:`MATMUL_N` for the device, or less where one
    call would take over ``limit`` seconds (a dtype the device runs slowly, a loaded
    machine); found by doubling from 256, a doubling costing 8× the time."""
    import time

    import torch

    n, dt = 256, cond.torch_dtype()
    while n < MATMUL_N[cond.device]:
        a = torch.randn(n, n, device=cond.device).to(dt)
        torch.mm(a, a)  # first call: kernel selection
        if cond.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, a)
        if cond.device == "cuda":
            torch.cuda.synchronize()
        if 8 * (time.perf_counter() - start) > limit:
            break
        n *= 2
    return n


def _measure(cond: Conditions, min_run_time: float) -> tuple[int, dict[str, tuple[int, Measurement]], Measurement]:
    """The matmul side, each compute kernel's (FLOPs per call, measurement), and the copy's measurement;
    all timed interleaved. The conv is left out where one call would exceed :data:`MAX_CALL_S`."""
    import time

    import torch
    from torch.utils.benchmark import Timer

    from blockprof.errors import BlockprofError

    n, nbytes = matmul_side(cond), COPY_BYTES[cond.device]
    dt = cond.torch_dtype()
    a, b, c = (torch.randn(n, n, device=cond.device).to(dt) for _ in range(3))
    batch, channels, side = CONV_SHAPE[cond.device]
    x = torch.randn(batch, channels, side, side, device=cond.device).to(dt)
    weight = torch.randn(channels, channels, 3, 3, device=cond.device).to(dt)
    src = torch.empty(nbytes, dtype=torch.uint8, device=cond.device).random_()
    dst = torch.empty_like(src)
    conv_name = f"conv 3×3 {channels}→{channels} at {side}², batch {batch}"
    flops = {f"matmul {n}²": 2 * n**3, conv_name: 2 * batch * channels * channels * 9 * side * side}
    kernels = (
        (f"matmul {n}²", "torch.mm(a, b, out=c)", {"torch": torch, "a": a, "b": b, "c": c}),
        (conv_name, "torch.conv2d(x, w, padding=1)", {"torch": torch, "x": x, "w": weight}),
        ("copy", "dst.copy_(src)", {"src": src, "dst": dst}),
    )
    cells = []
    for name, stmt, env in kernels:
        task = Task(f"{name} peak", "fwd", cond.device, cond.dtype, cond.threads, "contiguous", 1)
        timer = Timer(stmt, globals=env, num_threads=cond.threads, label=task.label)
        timer.timeit(1)  # warm-up: first-call kernel selection and page faults
        if name == conv_name:
            start = time.perf_counter()
            timer.timeit(1)
            if time.perf_counter() - start > MAX_CALL_S:  # a dtype the device runs slowly: the matmul alone
                continue
        cells.append(TimedStep(task, timer))
    run_interleaved(cells, min_run_time=min_run_time, min_runs=MIN_RUNS)
    measured: dict[str, Measurement] = {}
    for cell in cells:
        result = cell.result()
        if cell.error or result is None:
            raise BlockprofError(f"calibration failed: {cell.error or 'no samples'}")
        measured[cell.task.label.removesuffix(" peak")] = result
    copy = measured.pop("copy")
    return n, {name: (flops[name], m) for name, m in measured.items()}, copy
