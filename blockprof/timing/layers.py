"""Where a block's forward time goes: each layer's time in place, beside its share of the MACs.

A counting tool says a MobileNetV2 block's depthwise conv holds under 2% of its
MACs; only a clock says how much of the time it takes. Each leaf module (conv,
BN, activation, ...) is wrapped in a ``torch.profiler.record_function`` range by
forward hooks, and the block's forward runs under ``torch.profiler`` in eval mode
and ``torch.inference_mode``, as ``fwd`` is timed. Each call of the forward gives
one sample per layer: the range's wall time on CPU, the time of the kernels it
launched on CUDA. Work outside any module (the residual add, the SE rescale) is
each call's whole forward less its layers.

Layers are timed in place, not one by one: a layer run alone finds a different
cache and allocator state (on CPU a fresh 19 MB output costs page faults that a
block in steady state may not pay), and its time was off by up to 4× either way in our trials.

Limits: the profiler adds some microseconds per op (compare ``whole_ms_timer`` in
``df.attrs``, the same forward timed without it); a compiled block has no layers
to time.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec
from blockprof.timing.env import environment, steady_allocator
from blockprof.timing.harness import (
    Conditions,
    TimedStep,
    conditions,
    describe_error,
    fwd_context,
    make_input,
    place,
    run_interleaved,
)
from blockprof.timing.measurement import MIN_RUNS, Measurement, Task

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

#: the row for time spent outside every leaf module
OUTSIDE = "(outside modules)"
#: the row for the whole forward
WHOLE = "(whole forward)"
_PREFIX = "blockprof::"
#: seconds of profiled forwards (and as much again for the unprofiled reference)
LAYER_MIN_RUN_TIME = 1.0


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from torch import nn

    return [
        (name, m)
        for name, m in model.named_modules()
        if name and not any(m.children()) and not isinstance(m, nn.Identity)
    ]


def _profile(
    model: nn.Module, x: Any, leaves: list[tuple[str, nn.Module]], cond: Conditions, calls: int
) -> dict[str, list[float]]:
    """Per-call seconds of each leaf's range and of the whole forward, over ``calls`` forwards."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    from torch.utils.benchmark.utils.common import set_torch_threads

    # kineto prints "USDT ... profiler_start/stop" to stderr at its default log level;
    # a library must not (a user's own KINETO_LOG_LEVEL wins)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    ranges: dict[str, Any] = {}
    handles = []
    for name, module in leaves:

        def pre(_m: nn.Module, _args: Any, name: str = name) -> None:
            ranges[name] = record_function(_PREFIX + name).__enter__()

        def post(_m: nn.Module, _args: Any, _out: Any, name: str = name) -> None:
            ranges.pop(name).__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cond.device == "cuda" else [])
    try:
        with set_torch_threads(cond.threads), fwd_context(cond)(), profile(activities=activities) as prof:
            for _ in range(calls):
                with record_function(_PREFIX + WHOLE):
                    model(x)
            if cond.device == "cuda":
                torch.cuda.synchronize()
    finally:
        for h in handles:
            h.remove()

    def seconds(event: Any) -> float:
        return (event.device_time_total if cond.device == "cuda" else event.cpu_time_total) * 1e-6

    events = [e for e in prof.events() if e.name.startswith(_PREFIX)]
    wholes = sorted((e for e in events if e.name == _PREFIX + WHOLE), key=lambda e: e.time_range.start)
    starts = [e.time_range.start for e in wholes]
    per_call: list[dict[str, float]] = [{WHOLE: seconds(e)} for e in wholes]
    for e in events:
        if e.name != _PREFIX + WHOLE:  # a layer: add it to the forward call whose range holds it
            call = per_call[bisect.bisect_right(starts, e.time_range.start) - 1]
            name = e.name[len(_PREFIX) :]
            call[name] = call.get(name, 0.0) + seconds(e)
    names = [WHOLE, *(name for name, _ in leaves)]
    return {name: [call.get(name, 0.0) for call in per_call] for name in names}


def layer_times(spec: BlockSpec, **options: Any) -> pd.DataFrame:
    """One row per leaf layer of ``spec``'s forward, then the time outside modules and the
    whole forward: median/IQR/runs, the share of the whole forward's median, and the
    MACs with their share of the block's (None for a user block: no closed form).
    Shares are of medians, so they need not add to exactly 1. Options as :func:`module_layer_times`.
    ``df.attrs`` holds the label, the environment and ``whole_ms_timer``: the forward's
    median timed by torch.utils.benchmark without the profiler."""
    from blockprof.counting.analytic import closed_form

    definition, resolved, count = closed_form(spec)
    macs = {r.layer.name: (r.layer.op, r.cost.macs) for r in count.rows} if count is not None else {}
    return module_layer_times(
        lambda: definition.module(resolved), resolved.input_shape, resolved.label, macs, **options
    )


def module_layer_times(
    build: Callable[[], nn.Module],
    input_shape: Sequence[int],
    label: str,
    macs: dict[str, tuple[str, int]],
    *,
    device: str = "auto",
    dtype: str = "float32",
    channels_last: bool = False,
    threads: int | None = None,
    min_run_time: float = LAYER_MIN_RUN_TIME,
    min_runs: int = MIN_RUNS,
) -> pd.DataFrame:
    """:func:`layer_times` for any module ``build()`` returns: ``macs`` maps a leaf's name to
    its op and MACs (empty when there is no count to set the time beside)."""
    import pandas as pd
    from torch.utils.benchmark import Timer

    cond = conditions(device, dtype, channels_last, threads)
    steady_allocator()  # as every timing run: no per-call page faults inflating memory-bound layers
    task = Task(label, "fwd", cond.device, cond.dtype, cond.threads, cond.memory_format, input_shape[0])
    try:
        model = place(build(), cond, "fwd")
        x = make_input(input_shape, cond, requires_grad=False)
    except Exception as e:
        raise BlockprofError(describe_error(e, task)) from None
    # the unprofiled forward: a reference for the profiler's overhead, and how many calls fill the budget
    cell = TimedStep(
        task, Timer("model(x)", globals={"model": model, "x": x}, num_threads=cond.threads), fwd_context(cond)
    )
    run_interleaved([cell], min_run_time=min_run_time, min_runs=min_runs, rounds=1)
    reference = cell.result()
    if reference is None:
        raise BlockprofError(cell.error or f"{task.label}: the forward could not be timed")
    calls = max(min_runs, math.ceil(min_run_time / reference.median))
    leaves = _leaves(model)
    try:
        samples = _profile(model, x, leaves, cond, calls)
    except Exception as e:
        raise BlockprofError(describe_error(e, task)) from None
    whole = samples[WHOLE]
    samples[OUTSIDE] = [w - sum(samples[name][i] for name, _ in leaves) for i, w in enumerate(whole)]
    stats = {name: Measurement(task, tuple(s), len(s), sum(s)) for name, s in samples.items()}
    total_macs = sum(m for _, m in macs.values()) if macs else None
    outside_ops = sorted({op for name, (op, _) in macs.items() if name not in dict(leaves)}) or ["python glue"]
    names = [(name, *macs.get(name, (type(module).__name__, None))) for name, module in leaves]
    in_modules = sum(m or 0 for _, _, m in names)
    names += [
        (OUTSIDE, "+".join(outside_ops), None if total_macs is None else total_macs - in_modules),
        (WHOLE, "block", total_macs),
    ]
    whole_median = stats[WHOLE].median
    rows = [
        {
            "layer": name,
            "op": op,
            "ms": stats[name].median * 1e3,
            "iqr_ms": stats[name].iqr * 1e3,
            "runs": stats[name].runs,
            "noisy": stats[name].noisy,
            "time_share": stats[name].median / whole_median,
            "macs": layer_macs,
            "macs_share": layer_macs / total_macs if layer_macs is not None and total_macs else None,
        }
        for name, op, layer_macs in names
    ]
    df = pd.DataFrame(rows)
    df.attrs.update(
        label=label,
        whole_ms_timer=reference.median * 1e3,
        environment=environment(cond.device, cond.dtype, cond.threads, cond.memory_format).as_dict(),
    )
    return df
