"""A timing result that keeps its raw samples and says what was measured.

Like ``torch.utils.benchmark`` (a frozen ``TaskSpec`` beside a ``Measurement``),
the description of the measurement (:class:`Task`) is kept apart from its
samples; the statistics (median, quartiles, IQR) are torch's own, computed by
``torch.utils.benchmark.Measurement`` over the merged samples. The noise policy
lives here: a measurement whose IQR exceeds :data:`NOISY_IQR_RATIO` of its
median is ``noisy``, and every consumer shows that flag beside the number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch.utils.benchmark import Measurement as TorchMeasurement

#: a measurement whose IQR is more than this fraction of its median is flagged noisy
#: (torch.utils.benchmark warns at the same 10%)
NOISY_IQR_RATIO = 0.10

#: the least number of samples a median and IQR are reported from
MIN_RUNS = 10

MODES = ("fwd", "train")


@dataclass(frozen=True)
class Task:
    """What one measurement timed: the block, the step and the conditions.

    ``mode`` is ``fwd`` (eval mode under ``torch.inference_mode``) or ``train``
    (train mode, forward + backward of a scalar loss). ``memory_format`` is
    ``contiguous`` or ``channels_last``.
    """

    label: str
    mode: str
    device: str
    dtype: str
    threads: int
    memory_format: str
    batch: int
    compile: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Measurement:
    """Per-call times of one :class:`Task` in seconds, one value per sample.

    A sample is the mean of ``calls / runs`` back-to-back calls on average (the
    block size torch's autorange picked so that timer overhead stays negligible);
    ``total_s`` is the time spent in the timed calls. ``cpu_ratios`` holds, per
    sample, the share of its wall time the timed code was on the CPU (empty when
    not measured; see :mod:`blockprof.timing.contention`).
    """

    task: Task
    samples: tuple[float, ...]
    calls: int
    total_s: float
    cpu_ratios: tuple[float, ...] = ()

    @classmethod
    def from_torch(
        cls, task: Task, measurements: Iterable[TorchMeasurement], cpu_ratios: Iterable[float] = ()
    ) -> Measurement:
        """Merge torch Measurements of the same statement (e.g. one per round)."""
        measurements = list(measurements)
        samples = tuple(t for m in measurements for t in m.times)
        calls = sum(m.number_per_run * len(m.raw_times) for m in measurements)
        total = sum(sum(m.raw_times) for m in measurements)
        return cls(task, samples, calls, total, tuple(cpu_ratios))

    @cached_property
    def torch(self) -> TorchMeasurement:
        """The samples as one torch Measurement (``number_per_run=1``), which computes the statistics."""
        from torch.utils.benchmark import Measurement as TorchMeasurement
        from torch.utils.benchmark.utils.common import TaskSpec

        spec = TaskSpec(
            stmt=self.task.mode,
            setup="",
            label=self.task.label,
            description=self.task.mode,
            num_threads=self.task.threads,
        )
        return TorchMeasurement(number_per_run=1, raw_times=list(self.samples), task_spec=spec)

    @property
    def runs(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return self.torch.median

    @property
    def iqr(self) -> float:
        return self.torch.iqr

    @property
    def relative_iqr(self) -> float:
        return self.iqr / self.median

    @property
    def noisy(self) -> bool:
        """IQR over :data:`NOISY_IQR_RATIO` of the median: the median is not a number to trust alone."""
        return self.relative_iqr > NOISY_IQR_RATIO

    @property
    def cpu_wall_ratio(self) -> float | None:
        """The share of the timed wall time the code was on the CPU, over all samples (None if not measured)."""
        if len(self.cpu_ratios) != len(self.samples) or not self.samples:
            return None
        return sum(r * t for r, t in zip(self.cpu_ratios, self.samples, strict=False)) / sum(self.samples)

    def summary(self) -> dict[str, Any]:
        """Flat, JSON-safe statistics in milliseconds; a record prefixes the keys with the mode."""
        return {
            "ms": self.median * 1e3,
            "iqr_ms": self.iqr * 1e3,
            "runs": self.runs,
            "calls": self.calls,
            "total_s": self.total_s,
            "noisy": self.noisy,
            "cpu_wall_ratio": self.cpu_wall_ratio,
            "samples_ms": [t * 1e3 for t in self.samples],
        }
