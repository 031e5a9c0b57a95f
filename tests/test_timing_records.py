"""Memory formulas checked against autograd and the module, the record/DataFrame
columns, the roofline arithmetic, the cached calibration, the per-layer
breakdown and the calibrate command."""

from __future__ import annotations

import importlib
import json
import math

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from blockprof.blocks import build, resolve
from blockprof.counting.analytic import analytic
from blockprof.counting.formulas import Layer, minimum_traffic_bytes, roofline_attainable, saved_for_backward
from blockprof.spec import BlockSpec
from blockprof.timing.harness import BlockTiming, time_blocks
from blockprof.timing.layers import OUTSIDE, WHOLE, layer_times
from blockprof.timing.measurement import Measurement, Task
from blockprof.timing.records import TIMING_FIELDS, memory_model, timing_frame, timing_record

#: the module (the package attribute blockprof.timing.calibrate is the function)
calibration = importlib.import_module("blockprof.timing.calibrate")

MEMORY_SPECS = [
    BlockSpec("basic", 16, spatial=8, batch=2),
    BlockSpec("basic", 16, out_channels=32, stride=2, spatial=8, se=0.25),
    BlockSpec("bottleneck", 32, spatial=8, batch=3),
    BlockSpec("bottleneck", 32, out_channels=64, stride=2, groups=2, spatial=8),
    BlockSpec("inverted_residual", 16, spatial=8, batch=2),
    BlockSpec("inverted_residual", 16, expansion=1, spatial=8),
    BlockSpec("inverted_residual", 16, out_channels=24, stride=2, se=0.25, spatial=8),
    # the activations beyond ReLU/ReLU6 (out of place: each saves its input), at an odd size
    BlockSpec("inverted_residual", 16, kernel=5, activation="hardswish", stride=2, spatial=9),
    BlockSpec("inverted_residual", 16, activation="silu", spatial=8),
    BlockSpec("bottleneck", 32, activation="silu", spatial=7, stride=2),
]


def _autograd_saved(spec: BlockSpec) -> tuple[int, int, int]:
    """(activation elements, 1-D statistics elements, distinct bytes) autograd saves in a training forward."""
    module = build(spec).train()
    x = torch.randn(spec.input_shape, requires_grad=True)
    own = {t.data_ptr() for t in (*module.parameters(), *module.buffers())}
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in own:
            saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    values = sum(t.numel() for t in saved if t.dim() > 1)
    stats = sum(t.numel() for t in saved if t.dim() == 1)
    distinct = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved}
    return values, stats, sum(distinct.values())


@pytest.mark.parametrize("spec", MEMORY_SPECS, ids=lambda s: s.label.replace(" ", "_"))
def test_saved_for_backward_is_what_autograd_saves(spec: BlockSpec) -> None:
    rows = analytic(spec).rows
    saved = [saved_for_backward(r.layer, spec.batch) for r in rows]
    values, stats, distinct = _autograd_saved(spec)
    assert sum(s.values for s in saved) == values
    assert sum(s.stats for s in saved) == stats
    # the per-op sum counts shared tensors once per op: an upper bound on the distinct storage
    assert distinct <= sum(s.nbytes(4) for s in saved)


@pytest.mark.timing
def test_measured_saved_bytes_match_the_distinct_storage() -> None:
    spec = MEMORY_SPECS[0]
    (t,) = time_blocks([spec], modes=("train",), device="cpu", threads=1, min_run_time=0.01)
    # the harness's measured input is float32 like the test's; both see the same storages
    assert t.saved_bytes_measured == _autograd_saved(spec)[2]


@pytest.mark.parametrize("spec", MEMORY_SPECS, ids=lambda s: s.label.replace(" ", "_"))
def test_minimum_traffic_matches_the_module(spec: BlockSpec) -> None:
    module = build(spec)
    with torch.no_grad():
        out = module.eval()(torch.randn(spec.input_shape))
    params = sum(p.numel() for p in module.parameters())
    expected = (math.prod(spec.input_shape) + out.numel()) * 4 + params * 4
    model = memory_model(spec, "float32")
    assert model["fwd_min_bytes"] == expected
    assert model["train_min_bytes"] == 2 * expected
    assert model["param_bytes"] == params * 4
    half = memory_model(spec, "bfloat16")  # activations at 2 bytes, parameters stay float32
    assert half["fwd_min_bytes"] == (math.prod(spec.input_shape) + out.numel()) * 2 + params * 4


def test_maxpool_saves_its_input_and_int64_indices() -> None:
    layer = Layer("pool", "maxpool", 8, 8, 16, 8, kernel=3, stride=2)
    saved = saved_for_backward(layer, 2)
    assert (saved.values, saved.indices) == (2 * 8 * 16 * 16, 2 * 8 * 8 * 8)
    assert saved.nbytes(2) == saved.values * 2 + saved.indices * 8


def test_minimum_traffic_formula() -> None:
    assert minimum_traffic_bytes(10, 20, 5, value_bytes=2) == (10 + 20) * 2 + 5 * 4
    assert minimum_traffic_bytes(10, 20, 5, value_bytes=2, train=True) == 2 * ((10 + 20) * 2 + 5 * 4)


def test_roofline_is_the_lower_of_the_two_roofs() -> None:
    assert roofline_attainable(1.0, peak_flops=100.0, peak_bandwidth=10.0) == 10.0  # memory-bound
    assert roofline_attainable(50.0, peak_flops=100.0, peak_bandwidth=10.0) == 100.0  # compute-bound


# --- records ---


def _peaks(flops: float = 1e11, bandwidth: float = 1e10) -> calibration.Peaks:
    return calibration.Peaks(
        "test",
        "cpu",
        "test cpu",
        "float32",
        1,
        torch.__version__,
        flops,
        flops / 2,
        0.01,
        10,
        bandwidth,
        bandwidth / 2,
        0.01,
        10,
        64,
        1024,
        "now",
        "matmul 64²",
        {"matmul 64²": flops},
    )


def _synthetic(spec: BlockSpec, fwd_s: float, train_s: float, fwd_runs: int = 10, train_runs: int = 15) -> BlockTiming:
    from blockprof.timing.env import environment

    _, spec = resolve(spec)

    def m(mode: str, t: float, runs: int, spread: float = 0.0) -> Measurement:
        samples = tuple(t * (1 + spread * ((i % 5) - 2)) for i in range(runs))  # whole cycles: median t
        return Measurement(
            Task(spec.label, mode, "cpu", "float32", 1, "contiguous", spec.batch), samples, runs, sum(samples)
        )

    return BlockTiming(
        spec.label,
        spec,
        environment("cpu", "float32", 1),
        False,
        m("fwd", fwd_s, fwd_runs),
        m("train", train_s, train_runs, spread=0.2),
    )


def test_record_throughput_and_roofline_arithmetic() -> None:
    spec = BlockSpec("bottleneck", 64, spatial=14)
    count = analytic(spec)
    record = timing_record(_synthetic(spec, 0.002, 0.006), _peaks())
    assert record["fwd_ms"] == pytest.approx(2.0) and record["train_ms"] == pytest.approx(6.0)
    assert record["fwd_gflops_per_s"] == pytest.approx(count.flops / 0.002 / 1e9)
    assert record["train_gflops_per_s"] == pytest.approx(count.train_flops / 0.006 / 1e9)
    intensity = count.flops / record["fwd_min_bytes"]
    assert record["fwd_intensity"] == pytest.approx(intensity)
    attainable = min(1e11, intensity * 1e10)
    assert record["fwd_roofline_fraction"] == pytest.approx(count.flops / 0.002 / attainable)
    assert record["roofline_fraction"] == record["fwd_roofline_fraction"]
    assert record["fwd_bound"] == ("compute" if intensity >= 10 else "memory")
    assert record["runs"] == 10 and record["fwd_runs"] == 10 and record["train_runs"] == 15
    assert record["fwd_noisy"] is False and record["train_noisy"] is True and record["noisy"] is True
    assert record["peak_gflops_per_s"] == pytest.approx(100.0) and record["peak_gbytes_per_s"] == pytest.approx(10.0)
    json.dumps(record)  # JSON-safe


def test_record_without_peaks_has_no_roofline() -> None:
    record = timing_record(_synthetic(BlockSpec("basic", 16, spatial=8), 0.001, 0.003))
    assert record["roofline_fraction"] is None and record["fwd_bound"] is None and record["peak_gflops_per_s"] is None
    assert record["fwd_gflops_per_s"] > 0


@pytest.mark.timing
def test_frame_has_the_issue_columns_and_a_failed_cell_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from blockprof.blocks import nn as blocks_nn

    def broken(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    monkeypatch.setattr(blocks_nn.Bottleneck, "forward", broken)
    timings = time_blocks(
        [BlockSpec("basic", 16, spatial=8), BlockSpec("bottleneck", 16, spatial=8)],
        device="cpu",
        threads=1,
        min_run_time=0.01,
    )
    df = timing_frame(timings, _peaks())
    required = {
        "block",
        "in_channels",
        "spatial",
        "batch",
        "device",
        "dtype",
        "threads",
        "fwd_ms",
        "fwd_iqr_ms",
        "train_ms",
        "train_iqr_ms",
        "runs",
        "fwd_runs",
        "train_runs",
        "fwd_gflops_per_s",
        "train_gflops_per_s",
        "roofline_fraction",
        "fwd_noisy",
        "train_noisy",
        "fwd_peak_bytes",
        "train_peak_bytes",
        "param_bytes",
        "saved_activation_bytes",
        "fwd_min_bytes",
        "error",
    }
    assert required <= set(df.columns)
    assert set(TIMING_FIELDS) <= set(df.columns)
    ok, failed = df.iloc[0], df.iloc[1]
    assert pd.isna(ok["error"]) and ok["fwd_ms"] > 0 and ok["runs"] == min(ok["fwd_runs"], ok["train_runs"])
    assert "boom" in failed["error"] and pd.isna(failed["fwd_ms"])
    assert failed["param_bytes"] > 0  # the analytic columns do not need a timing


# --- calibration ---


@pytest.fixture
def small_calibration(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BLOCKPROF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(calibration.MATMUL_N, "cpu", 256)
    monkeypatch.setitem(calibration.COPY_BYTES, "cpu", 8 * 2**20)
    monkeypatch.setitem(calibration.CONV_SHAPE, "cpu", (1, 32, 16))


@pytest.mark.timing
def test_calibrate_measures_once_then_reads_the_cache(small_calibration: None, monkeypatch: pytest.MonkeyPatch) -> None:
    first = calibration.calibrate("cpu", "float32", threads=1, min_run_time=0.05)
    assert first.flops_per_s > 1e8 and first.bytes_per_s > 1e8
    assert first.flops_per_s >= first.flops_median_per_s and first.bytes_per_s >= first.bytes_median_per_s
    assert first.flops_runs >= 10 and first.bytes_runs >= 10
    # the compute peak is the faster of the two kernels, each measured: a conv can outrun the matmul
    assert sorted(first.kernel_flops_per_s) == ["conv 3×3 32→32 at 16², batch 1", "matmul 256²"]
    assert first.flops_per_s == max(first.kernel_flops_per_s.values()) == first.kernel_flops_per_s[first.flops_kernel]
    assert "1 threads" in first.key and "float32" in first.key and torch.__version__ in first.key
    assert calibration.cache_path().is_file()

    def no_measuring(*args: object) -> None:
        raise AssertionError("measured again instead of reading the cache")

    monkeypatch.setattr(calibration, "_measure", no_measuring)
    assert calibration.calibrate("cpu", "float32", threads=1) == first
    assert calibration.cached_peaks("cpu", "bfloat16", threads=1) is None  # other dtype: another key
    with pytest.raises(AssertionError, match="measured again"):
        calibration.calibrate("cpu", "float32", threads=1, force=True)


@pytest.mark.timing
def test_a_corrupt_cache_is_measured_again(small_calibration: None) -> None:
    calibration.cache_path().parent.mkdir(parents=True)
    calibration.cache_path().write_text("{not json")
    assert calibration.cached_peaks("cpu", "float32", threads=1) is None
    assert calibration.calibrate("cpu", "float32", threads=1, min_run_time=0.02).flops_per_s > 0


@pytest.mark.timing
def test_calibrate_command(small_calibration: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from blockprof import cli

    monkeypatch.setitem(cli.COMMANDS, "calibrate", "blockprof.commands.calibrate")
    runner = CliRunner()
    result = runner.invoke(cli.cli, ["calibrate", "--device", "cpu", "--threads", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("calibrating: cpu float32 peaks")  # a first calibration says what it does
    data = json.loads(result.stdout)
    assert (
        data["flops_per_s"] > 0
        and data["threads"] == 1
        and data["ridge_intensity"] == pytest.approx(data["flops_per_s"] / data["bytes_per_s"])
    )
    text = runner.invoke(cli.cli, ["calibrate", "--device", "cpu", "--threads", "1"])
    assert text.exit_code == 0 and "GFLOP/s" in text.output and "from the cache" in text.output
    assert (
        "the faster of: " in text.output
        and "matmul 256² " in text.output
        and "conv 3×3 32→32 at 16², batch 1 " in text.output
    )
    if not torch.cuda.is_available():
        bad = runner.invoke(cli.cli, ["calibrate", "--device", "cuda"])
        assert bad.exit_code == 2 and "no CUDA GPU" in bad.output and len(bad.output.strip().splitlines()) == 1


# --- per-layer breakdown ---


@pytest.mark.timing
def test_layer_times_name_every_layer_beside_its_macs() -> None:
    spec = BlockSpec("inverted_residual", 32, spatial=16, se=0.25)
    df = layer_times(spec, device="cpu", threads=1, min_run_time=0.05)
    layers = [r.layer.name for r in analytic(spec).rows if r.layer.op not in ("add", "mul")]
    assert list(df["layer"]) == [*layers, OUTSIDE, WHOLE]
    assert (df["runs"] >= 10).all() and (df.loc[df["layer"] != OUTSIDE, "ms"] > 0).all()
    whole = df.set_index("layer").loc[WHOLE]
    assert whole["time_share"] == 1.0 and whole["macs"] == analytic(spec).macs
    parts = df[df["layer"] != WHOLE]
    assert parts["macs_share"].sum() == pytest.approx(1.0)
    assert df.set_index("layer").loc[OUTSIDE, "op"] == "add+mul"
    assert df.attrs["whole_ms_timer"] > 0 and df.attrs["environment"]["threads"] == 1
