"""Was the measured code running while it was timed? Contention seen from inside the measurement.

A spread flag (IQR over the median) misses load that lasts the whole
measurement: every sample is slowed alike and the IQR stays tight. What such
load cannot hide is the CPU time: a thread that was descheduled for part of a
sample got less CPU time than the sample's wall time. :class:`CpuClock` is the
Timer's clock; at each reading it also notes the CPU time of the timing thread
(one thread: ``time.thread_time``) or of the process over the thread count
(several threads: ``time.process_time() / threads``), so each sample carries
the share of its wall time the measured code was running (``cpu_wall_ratio``).
Beside it, the run records the CPU time the hypervisor stole (``/proc/stat``)
and the load average before and after (on CUDA only these two: the host thread
waits on the GPU, so its CPU share says nothing). A measurement is ``contended`` when its
code ran less than :data:`CONTENDED_RATIO` of the wall time or more than
:data:`STEAL_LIMIT` of the CPU time was stolen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

#: below this share of the wall time on the CPU, the timed code was descheduled: the time is spoiled
CONTENDED_RATIO = 0.90
#: above this share of all CPU time stolen by the hypervisor while timing, the times are spoiled
STEAL_LIMIT = 0.05


class CpuClock:
    """A ``timer`` for ``torch.utils.benchmark.Timer``: the usual wall clock (torch's,
    which synchronises CUDA), plus the CPU time at each reading.

    ``timeit`` reads the clock twice per sample (before and after the block of
    calls), so the readings pair up; :meth:`take` returns the CPU/wall ratio of the
    last ``n`` pairs (the samples of a ``blocked_autorange``; the earlier pairs are
    its block-size estimate) and forgets the rest.
    """

    def __init__(self, threads: int, wall: Callable[[], float] | None = None) -> None:
        from torch.utils.benchmark.utils.timer import timer

        self.wall = wall or timer
        self.threads = threads
        self.readings: list[tuple[float, float]] = []

    def cpu(self) -> float:
        return time.thread_time() if self.threads == 1 else time.process_time() / self.threads

    def __call__(self) -> float:
        now = self.wall()
        self.readings.append((now, self.cpu()))
        return now

    def take(self, n: int) -> list[float]:
        pairs = [(self.readings[i], self.readings[i + 1]) for i in range(0, len(self.readings) - 1, 2)]
        self.readings.clear()
        return [min(1.0, (c1 - c0) / (w1 - w0)) if w1 > w0 else 1.0 for (w0, c0), (w1, c1) in pairs[-n:]] if n else []


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) CPU ticks since boot from ``/proc/stat`` (Linux), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already inside user/nice]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of the CPU time the hypervisor stole between two :func:`cpu_ticks` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def verdict(cpu_wall_ratio: float | None, steal: float | None) -> str | None:
    """Why a measurement is contended (one phrase), or None when nothing says it was."""
    reasons = []
    if cpu_wall_ratio is not None and cpu_wall_ratio < CONTENDED_RATIO:
        reasons.append(f"the timed code ran {100 * cpu_wall_ratio:.0f}% of the wall time")
    if steal is not None and steal > STEAL_LIMIT:
        reasons.append(f"the hypervisor stole {100 * steal:.0f}% of the CPU time")
    return "; ".join(reasons) or None
