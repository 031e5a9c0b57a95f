"""``blockprof calibrate``: measure (or show the cached) compute and bandwidth peaks of a device."""

from __future__ import annotations

import json

import click

from blockprof import schema
from blockprof.timing.harness import MAX_THREADS


@click.command("calibrate")
@click.option(
    "--device",
    type=click.Choice(schema.DEVICES),
    default="auto",
    show_default=True,
    help="Device to measure; auto = cuda when available.",
)
@click.option(
    "--dtype",
    type=click.Choice(schema.DTYPES),
    default="float32",
    show_default=True,
    help="Precision of the compute peak (its matmul and conv).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=None,
    help="CPU threads (default: torch's default).",
)
@click.option("--force", is_flag=True, help="Measure again even when the cache has these peaks.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
def cli_command(device: str, dtype: str, threads: int | None, force: bool, fmt: str) -> None:
    """Measure the device's peak FLOP/s (the faster of a large matmul and a 3×3 conv) and bytes/s (a large copy).

    The peaks are cached per machine, thread count, dtype and torch version, and give
    every timed block its roofline fraction. Takes about 10 s the first time (it says so).
    Example: blockprof calibrate --dtype bfloat16
    """
    from blockprof.commands.options import check_devices
    from blockprof.timing.calibrate import cache_path, cached_peaks, calibrate, describe_calibration

    check_devices(device)
    was_cached = not force and cached_peaks(device, dtype, threads) is not None
    if not was_cached:
        click.echo(f"calibrating: {describe_calibration(device, dtype, threads)}", err=True)
    peaks = calibrate(device, dtype, threads, force=force)
    if fmt == "json":
        click.echo(
            json.dumps(
                {**peaks.as_dict(), "ridge_intensity": peaks.ridge_intensity, "cache": str(cache_path())}, indent=2
            )
        )
        return
    source = "from the cache" if was_cached else "measured now"
    click.echo(
        f"device     {peaks.device}: {peaks.device_name}, {peaks.threads} threads, {peaks.dtype}, torch {peaks.torch_version}"
    )
    click.echo(
        f"compute    {peaks.flops_per_s / 1e9:,.1f} GFLOP/s  ({peaks.flops_kernel}, fastest of {peaks.flops_runs} samples; "
        f"median {peaks.flops_median_per_s / 1e9:,.1f}, IQR {100 * peaks.flops_rel_iqr:.1f}% of the median time)"
    )
    click.echo(
        "           the faster of: "
        + ", ".join(f"{name} {rate / 1e9:,.1f}" for name, rate in peaks.kernel_flops_per_s.items())
        + " GFLOP/s"
    )
    click.echo(
        f"bandwidth  {peaks.bytes_per_s / 1e9:,.1f} GB/s  ({peaks.copy_bytes / 2**20:,.0f} MiB copy, read + write, fastest of {peaks.bytes_runs} samples; "
        f"median {peaks.bytes_median_per_s / 1e9:,.1f}, IQR {100 * peaks.bytes_rel_iqr:.1f}%)"
    )
    click.echo(
        f"ridge      {peaks.ridge_intensity:,.1f} FLOP/byte: a block below it is memory-bound, above it compute-bound"
    )
    click.echo(f"cache      {cache_path()} ({source}, {peaks.measured_at}; --force measures again)")
