"""Timings → flat, JSON-safe records and a DataFrame, with throughput and memory beside them.

Each BlockTiming becomes one record: the spec's fields, the environment, each
mode's median/IQR/runs/noise flag and raw samples, achieved GFLOP/s, the
analytic memory model, measured memory, and the roofline against the cached
device peaks. The field list is a public interface (JSON, CSV, saved runs):
add fields, never rename or drop one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.counting.formulas import roofline_attainable
from blockprof.timing.contention import verdict
from blockprof.timing.harness import BlockTiming
from blockprof.timing.measurement import MODES
from blockprof.timing.memory import memory_model

if TYPE_CHECKING:
    import pandas as pd

    from blockprof.spec import BlockSpec, ResolvedSpec
    from blockprof.timing.calibrate import Peaks

#: field → what it holds (units in the name or the text); the vocabulary is the schema's
TIMING_FIELDS: dict[str, str] = schema.TIMING_RECORD_FIELDS


def _spec_fields(spec: BlockSpec | ResolvedSpec | None) -> dict[str, Any]:
    return spec.as_dict() if spec is not None else {}


def timing_record(
    timing: BlockTiming, peaks: Peaks | None = None, flops: tuple[int | None, int | None] | None = None
) -> dict[str, Any]:
    """One flat record (see :data:`TIMING_FIELDS`); roofline fields are None without ``peaks``.
    ``flops``: the (forward, training-step) FLOPs of a module with no spec (a model cell, counted
    by the tracer), for its GFLOP/s; a spec's come from its memory model."""
    env = timing.env
    record: dict[str, Any] = {**_spec_fields(timing.spec), "label": timing.label}
    record.update(
        device=env.device,
        device_name=env.device_name,
        cpu_model=env.cpu_model,
        threads=env.threads,
        dtype=env.dtype,
        memory_format=env.memory_format,
        compile=timing.compile,
        torch_version=env.torch_version,
        load_average=env.load_average,
    )
    for mode in MODES:
        m = timing.measurement(mode)
        summary = (
            m.summary()
            if m is not None
            else dict.fromkeys(("ms", "iqr_ms", "runs", "calls", "total_s", "noisy", "cpu_wall_ratio", "samples_ms"))
        )
        record.update({f"{mode}_{k}": v for k, v in summary.items()})
    runs = [record[f"{m}_runs"] for m in MODES if record[f"{m}_runs"] is not None]
    record["runs"] = min(runs) if runs else None
    flags = [record[f"{m}_noisy"] for m in MODES if record[f"{m}_noisy"] is not None]
    record["noisy"] = any(flags) if flags else None
    ratios = [record[f"{m}_cpu_wall_ratio"] for m in MODES if record[f"{m}_cpu_wall_ratio"] is not None]
    record["cpu_wall_ratio"] = min(ratios) if ratios else None
    record["steal_share"], record["load_after"] = timing.steal_share, timing.load_after
    record["contention"] = verdict(record["cpu_wall_ratio"], timing.steal_share) if runs else None
    record["contended"] = record["contention"] is not None if runs else None

    model = memory_model(timing.spec, env.dtype) if timing.spec is not None else {}
    fwd_flops, train_flops = model.pop("fwd_flops", None), model.pop("train_flops", None)
    if timing.spec is None and flops is not None:
        fwd_flops, train_flops = flops
    record["fwd_gflops_per_s"] = _rate(fwd_flops, record["fwd_ms"])
    record["train_gflops_per_s"] = _rate(train_flops, record["train_ms"])
    record.update({k: model.get(k) for k in ("param_bytes", "saved_activation_bytes")})
    record["saved_bytes_measured"] = timing.saved_bytes_measured
    record.update({k: model.get(k) for k in ("fwd_min_bytes", "train_min_bytes")})
    record["fwd_intensity"] = _ratio(fwd_flops, model.get("fwd_min_bytes"))
    record["train_intensity"] = _ratio(train_flops, model.get("train_min_bytes"))
    record["peak_gflops_per_s"] = peaks.flops_per_s / 1e9 if peaks else None
    record["peak_gbytes_per_s"] = peaks.bytes_per_s / 1e9 if peaks else None
    record["fwd_bound"] = None
    if peaks and record["fwd_intensity"] is not None:
        record["fwd_bound"] = "compute" if record["fwd_intensity"] >= peaks.ridge_intensity else "memory"
    for mode in MODES:
        record[f"{mode}_roofline_fraction"] = _roofline(
            record[f"{mode}_gflops_per_s"], record[f"{mode}_intensity"], peaks
        )
    record["roofline_fraction"] = record["fwd_roofline_fraction"]
    record["fwd_peak_bytes"] = timing.fwd_peak_bytes
    record["train_peak_bytes"] = timing.train_peak_bytes
    record["error"] = timing.error
    return record


def _rate(flops: int | None, ms: float | None) -> float | None:
    return None if flops is None or ms is None else flops / (ms * 1e-3) / 1e9


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _roofline(gflops: float | None, intensity: float | None, peaks: Peaks | None) -> float | None:
    if gflops is None or intensity is None or peaks is None:
        return None
    return gflops * 1e9 / roofline_attainable(intensity, peaks.flops_per_s, peaks.bytes_per_s)


def timing_frame(timings: Iterable[BlockTiming], peaks: Peaks | None = None) -> pd.DataFrame:
    """Records → DataFrame: spec fields first, then :data:`TIMING_FIELDS` in order."""
    import pandas as pd

    df = pd.DataFrame.from_records([timing_record(t, peaks) for t in timings])
    timing = [c for c in TIMING_FIELDS if c in df.columns]
    return df[[c for c in df.columns if c not in TIMING_FIELDS] + timing]


def timing_table(specs: Iterable[BlockSpec], *, peaks: bool = True, **options: Any) -> pd.DataFrame:
    """Time ``specs`` (options as :func:`~blockprof.timing.harness.time_blocks`) and return
    the DataFrame. With ``peaks``, the roofline uses the cached device peaks, measuring
    them first (a few seconds, once per machine) when the cache has none."""
    from blockprof.timing.calibrate import calibrate
    from blockprof.timing.harness import time_blocks

    timings = time_blocks(specs, **options)
    env = timings[0].env if timings else None
    device_peaks = calibrate(env.device, env.dtype, env.threads) if peaks and env else None
    return timing_frame(timings, device_peaks)
