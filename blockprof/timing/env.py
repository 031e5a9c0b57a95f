"""The environment a timing was taken in, recorded with every result.

A time means nothing without the machine, the thread count and the precision
it was measured at; these fields also key the cached device peaks.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Environment:
    """Where and how a measurement ran. ``device_name`` is the GPU's name on CUDA
    and the CPU model on CPU; ``cpu_count`` is the logical CPUs this process may use;
    ``load_average`` is the 1-minute load when timing began: above ``cpu_count``
    other work competed for the cores, and multi-threaded CPU times suffer most
    (a thread region waits for its descheduled partner)."""

    torch_version: str
    device: str
    device_name: str
    cpu_model: str
    cpu_count: int
    threads: int
    dtype: str
    memory_format: str
    cuda_version: str | None
    cudnn_version: int | None
    python_version: str
    host: str
    load_average: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_count() -> int:
    """Logical CPUs available to this process (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def host_hash() -> str:
    """A short, stable, non-identifying tag of the host name (tells machines apart in merged runs)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name(torch.cuda.current_device())
    return cpu_model()


def environment(device: str, dtype: str, threads: int, memory_format: str = "contiguous") -> Environment:
    """Record the environment for ``device`` (``cpu``/``cuda``, already resolved)."""
    import torch

    on_cuda = device == "cuda"
    return Environment(
        torch_version=torch.__version__,
        device=device,
        device_name=device_name(device),
        cpu_model=cpu_model(),
        cpu_count=cpu_count(),
        threads=threads,
        dtype=dtype,
        memory_format=memory_format,
        cuda_version=torch.version.cuda if on_cuda else None,
        cudnn_version=torch.backends.cudnn.version() if on_cuda else None,
        python_version=platform.python_version(),
        host=host_hash(),
        load_average=_load_average(),
    )


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return None


#: glibc mallopt parameters and the values :func:`steady_allocator` sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
_TRIM_THRESHOLD = 256 << 20


def steady_allocator() -> str:
    """Keep freed activations in the process (glibc), and say what was set.

    With glibc's defaults a block's buffers of a few hundred KiB are returned to
    the OS after each call and page-faulted back on the next one: hundreds of
    faults per call, how many depending on the allocator's adaptive thresholds,
    i.e. on the process's history. On the development machine that made a
    memory-bound inverted residual 0.8 ms in one run and 1.3–1.9 ms in the
    next. Raising the mmap and trim thresholds (as ``MALLOC_MMAP_THRESHOLD_`` /
    ``MALLOC_TRIM_THRESHOLD_`` would at start-up) removes the faults. The setting
    stays for the rest of the process.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: glibc's mallopt where Python links glibc
        ok = (
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
        )
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows): nothing to set
        ok = False
    return f"glibc mmap_threshold={_MMAP_THRESHOLD} trim_threshold={_TRIM_THRESHOLD}" if ok else "default"


#: /proc/cpuinfo flags of native 16-bit arithmetic: x86 (AVX-512 / AMX) and Arm (half-precision SIMD; BF16)
NATIVE_FLAGS = {
    "float16": ("avx512_fp16", "amx_fp16", "fphp", "asimdhp"),
    "bfloat16": ("avx512_bf16", "amx_bf16", "bf16"),
}


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux), else None (unknown)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def slow_dtype(device: str, dtype: str, flags: frozenset[str] | None = None) -> str | None:
    """Why ``dtype`` would run slowly on this CPU (emulated: no native 16-bit arithmetic),
    or None. Measured on an AVX-512 CPU without avx512_fp16: one 2048² float16 matmul
    took 98 s against 0.5 s in float32; timing or calibrating such a dtype would run for
    many minutes and answer Ctrl-C only between calls. Unknown flags (not Linux): None."""
    if device != "cpu" or dtype not in NATIVE_FLAGS:
        return None
    flags = cpu_flags() if flags is None else flags
    if flags is None or flags & set(NATIVE_FLAGS[dtype]):
        return None
    return (
        f"{dtype} on this CPU ({cpu_model()}) is emulated: it has none of the {'/'.join(NATIVE_FLAGS[dtype][:2])} instructions, "
        f"so it runs tens to hundreds of times slower than float32 (on an AVX-512 Xeon without avx512_fp16 "
        "one 2048² float16 matmul took 98 s against 0.5 s in float32)"
    )
