"""Will the timing fit in memory? Checked from the analytic sizes before anything is built.

The harness builds every cell (a copy of the block and its input, per mode)
before it interleaves them, and a training step also holds the tensors autograd
saves, the output and the gradients. All of it follows from the closed-form
counts (:func:`memory_model`), so a run that cannot fit
is refused in one line, with the figure and a smaller size that fits, instead of
swapping for a minute and failing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from blockprof.counting.formulas import minimum_traffic_bytes, saved_for_backward
from blockprof.errors import BlockprofError
from blockprof.schema import DTYPE_BYTES
from blockprof.spec import BlockSpec, ResolvedSpec
from blockprof.timing.measurement import MODES
from blockprof.units import si

#: the share of the available memory a timing may plan to use (the rest: torch, Python, the allocator's slack)
USABLE_SHARE = 0.8


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a timing holds at its peak: every cell's resident copy (parameters and
    input, per mode) plus, for the one cell running, its saved activations, output and gradients."""

    inputs: int
    params: int
    saved: int
    transient: int

    @property
    def total(self) -> int:
        return self.inputs + self.params + self.saved + self.transient

    def describe(self) -> str:
        parts = [
            ("inputs", self.inputs),
            ("saved activations", self.saved),
            ("outputs and gradients", self.transient),
            ("parameters", self.params),
        ]
        return ", ".join(f"{what} {si(n, 'B')}" for what, n in parts if n)


def estimate(
    specs: Iterable[BlockSpec | ResolvedSpec], modes: Sequence[str] = MODES, dtype: str = "float32"
) -> MemoryEstimate | None:
    """The peak bytes of timing ``specs`` together; None when a block has no closed form (a user block)."""
    inputs = params = peak_saved = peak_transient = 0
    value = DTYPE_BYTES[dtype]
    for spec in specs:
        model = memory_model(spec, dtype)
        if model["param_bytes"] is None:
            return None
        in_bytes = spec.batch * spec.in_channels * spec.spatial**2 * value
        out_bytes = model["fwd_min_bytes"] - in_bytes - model["param_bytes"]
        inputs += in_bytes * len(modes)
        params += model["param_bytes"] * len(modes)
        if "train" in modes:
            peak_saved = max(peak_saved, model["saved_activation_bytes"])
            # the output, its gradient, the input's gradient and the parameters' gradients
            peak_transient = max(peak_transient, 2 * out_bytes + in_bytes + model["param_bytes"])
        else:
            peak_transient = max(peak_transient, out_bytes)
    return MemoryEstimate(inputs, params, peak_saved, peak_transient)


def available(device: str) -> int | None:
    """Bytes free for the timing: the GPU's free memory, or the host's MemAvailable (None if unknown)."""
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(
    specs: Sequence[BlockSpec | ResolvedSpec],
    modes: Sequence[str] = MODES,
    device: str = "cpu",
    dtype: str = "float32",
    free: int | None = None,
) -> None:
    """BlockprofError, in one line with the figures and a smaller size that fits, when
    timing ``specs`` together would need more than :data:`USABLE_SHARE` of the free memory."""
    need = estimate(specs, modes, dtype)
    free = available(device) if free is None else free
    if need is None or free is None or need.total <= USABLE_SHARE * free:
        return
    biggest = max(specs, key=lambda s: s.batch * s.in_channels * s.spatial**2)
    one_input = biggest.batch * biggest.in_channels * biggest.spatial**2 * DTYPE_BYTES[dtype]
    shape = f"{biggest.batch}×{biggest.in_channels}×{biggest.spatial}×{biggest.spatial}"
    raise BlockprofError(
        f"timing needs about {si(need.total, 'B')} ({need.describe()}) but {si(free, 'B')} of {device} memory is free "
        f"(one {shape} input alone is {si(one_input, 'B')}); "
        f"{_smaller(specs, modes, dtype, free, biggest)}"
    )


def _smaller(
    specs: Sequence[BlockSpec | ResolvedSpec],
    modes: Sequence[str],
    dtype: str,
    free: int,
    biggest: BlockSpec | ResolvedSpec,
) -> str:
    """A suggestion that fits: halve the batch, then the spatial size down to 56, then the
    width, then the spatial size again, until the estimate fits."""
    batch, spatial, channels = biggest.batch, biggest.spatial, biggest.in_channels
    for _ in range(64):
        if batch > 1:
            batch //= 2
        elif spatial > 56:
            spatial //= 2
        elif channels > 16:
            channels //= 2
        elif spatial > 7:
            spatial //= 2
        else:
            break
        smaller = [_shrink(s, batch, spatial, channels / biggest.in_channels) for s in specs]
        need = estimate(smaller, modes, dtype)
        if need is not None and need.total <= USABLE_SHARE * free:
            width = f"--channels {channels} " if channels != biggest.in_channels else ""
            return f"try {width}--spatial {spatial} --batch {batch} (about {si(need.total, 'B')})"
    return "try fewer channels, a smaller --spatial and --batch 1"


def _shrink(spec: BlockSpec | ResolvedSpec, batch: int, spatial: int, width: float) -> BlockSpec:
    if isinstance(spec, ResolvedSpec):
        spec = spec.unresolved()
    scaled = {
        k: max(1, round(getattr(spec, k) * width))
        for k in ("in_channels", "out_channels")
        if getattr(spec, k) is not None
    }
    return spec.replace(batch=min(spec.batch, batch), spatial=min(spec.spatial, spatial), **scaled)


def memory_model(spec: BlockSpec | ResolvedSpec, dtype: str) -> dict[str, Any]:
    """The analytic memory columns and FLOPs of a registered block (all None for a user block)."""
    from blockprof.counting.analytic import closed_form

    _, resolved, count = closed_form(spec)
    if count is None:
        return {
            k: None
            for k in (
                "fwd_flops",
                "train_flops",
                "param_bytes",
                "saved_activation_bytes",
                "fwd_min_bytes",
                "train_min_bytes",
            )
        }
    value = DTYPE_BYTES[dtype]
    n, c_out, s_out = resolved.batch, resolved.out_channels, resolved.output_spatial
    in_elements = n * resolved.in_channels * resolved.spatial * resolved.spatial
    out_elements = n * c_out * s_out * s_out
    return {
        "fwd_flops": count.flops,
        "train_flops": count.train_flops,
        "param_bytes": count.params * 4,
        "saved_activation_bytes": sum(saved_for_backward(r.layer, n).nbytes(value) for r in count.rows),
        "fwd_min_bytes": minimum_traffic_bytes(in_elements, out_elements, count.params, value),
        "train_min_bytes": minimum_traffic_bytes(in_elements, out_elements, count.params, value, train=True),
    }
