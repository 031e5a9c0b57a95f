"""Every figure builds from a real sweep and holds the traces, axes and error bars it promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.grid import Grid
from blockprof.render import plots
from blockprof.runs import load_run
from blockprof.sweep import sweep

BLOCKS = ["basic", "bottleneck", "inverted_residual"]


@pytest.fixture(scope="module")
def timed(timed_run: Path):  # type: ignore[no-untyped-def]
    return load_run(timed_run)


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run = tmp_path_factory.mktemp("plots") / "run"
    sweep(
        Grid(channels=(12, 16, 24), spatial=(8, 4), options={"groups": [1, 3]}), run, tools=()
    )  # g3 fails at 16 (inner 4)
    return run


def names(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [trace.name for trace in fig.data]


def test_counts_plot_has_one_trace_per_series_on_log_axes(counted: Path) -> None:
    df = load_run(counted)
    fig = plots.counts(df)
    # parameters do not depend on the input size: one series per block (and bottleneck groups);
    # MACs do: each series again per spatial size, in grid order. The failed g3 cells are left out.
    assert names(fig) == [
        "parameters · basic",
        "parameters · bottleneck · g1",
        "parameters · bottleneck · g3",
        "parameters · inverted_residual",
        "MACs · basic · 8²",
        "MACs · basic · 4²",
        "MACs · bottleneck · g1 · 8²",
        "MACs · bottleneck · g3 · 8²",
        "MACs · bottleneck · g1 · 4²",
        "MACs · bottleneck · g3 · 4²",
        "MACs · inverted_residual · 8²",
        "MACs · inverted_residual · 4²",
    ]
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == fig.layout.yaxis.type == fig.layout.yaxis2.type == "log"
    assert (
        "channels" in fig.layout.xaxis.title.text
        and "scalars" in fig.layout.yaxis.title.text
        and "MAC" in fig.layout.yaxis2.title.text
    )
    basic = fig.data[0]
    ok = df[(df["block"] == "basic") & (df["spatial"] == 8)].sort_values("in_channels")
    assert list(basic.x) == list(ok["in_channels"]) and list(basic.y) == list(ok["params"])
    assert list(fig.data[2].x) == [12, 24]  # the failed cell (g3 at C = 16) is left out
    assert basic.text[0] == "basic C=12, input 1×12×8×8, float32 on auto" and "%{text}" in basic.hovertemplate


def test_timing_plots_refuse_a_counts_only_run_in_one_line(counted: Path) -> None:
    df = load_run(counted)
    for builder in (plots.latency, plots.throughput, plots.roofline, plots.cost_latency):
        with pytest.raises(BlockprofError, match=r"needs timings, and this run has none .*--time") as e:
            builder(df)
        assert "\n" not in str(e.value)


def test_latency_plot_has_quartile_error_bars(timed) -> None:  # type: ignore[no-untyped-def]
    fig = plots.latency(timed)
    assert names(fig) == [f"{mode} · {block}" for mode in ("fwd", "train") for block in BLOCKS]
    assert all(getattr(fig.layout, axis).type == "log" for axis in ("xaxis", "xaxis2", "yaxis", "yaxis2"))
    assert "ms" in fig.layout.yaxis.title.text
    for trace in fig.data:
        mode, block = trace.name.split(" · ")
        rows = timed[timed["block"] == block].sort_values("in_channels")
        assert list(trace.y) == list(rows[f"{mode}_ms"])
        bars = trace.error_y
        assert bars.visible is not False and bars.symmetric is False
        # from the first to the third quartile: the two arms add up to the IQR torch computed
        np.testing.assert_allclose(
            np.array(bars.array) + np.array(bars.arrayminus), rows[f"{mode}_iqr_ms"], rtol=1e-9, atol=1e-12
        )
        assert (np.array(bars.arrayminus) >= 0).all() and (np.array(bars.array) >= 0).all()
        assert "runs" in trace.hovertemplate and "C=8" in trace.text[0]


def test_throughput_plot_sits_under_the_calibrated_peak(timed) -> None:  # type: ignore[no-untyped-def]
    fig = plots.throughput(timed)
    assert names(fig) == [
        *(f"fwd · {b}" for b in BLOCKS),
        "fwd · compute peak cpu/float32",
        *(f"train · {b}" for b in BLOCKS),
        "train · compute peak cpu/float32",
    ]
    peak = fig.data[3]
    assert set(peak.y) == {timed["peak_gflops_per_s"].iloc[0]}
    assert fig.layout.xaxis.type == "log" and "GFLOP/s" in fig.layout.yaxis.title.text


def test_roofline_plot_has_the_cells_under_both_ceilings(timed) -> None:  # type: ignore[no-untyped-def]
    fig = plots.roofline(timed)
    assert names(fig)[:6] == [f"{mode} · {block}" for mode in ("fwd", "train") for block in BLOCKS]
    ceiling = fig.data[6]
    assert len(fig.data) == 7 and ceiling.name.startswith("roofline cpu/float32: ")
    flops, bandwidth = timed["peak_gflops_per_s"].iloc[0], timed["peak_gbytes_per_s"].iloc[0]
    for x, y in zip(ceiling.x, ceiling.y, strict=False):
        assert y == pytest.approx(min(flops, x * bandwidth))
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "log"
    assert "FLOP per byte" in fig.layout.xaxis.title.text and "GFLOP/s" in fig.layout.yaxis.title.text
    fwd = fig.data[0]
    assert list(fwd.x) == list(timed[timed["block"] == "basic"].sort_values("in_channels")["fwd_intensity"])


def test_cost_latency_plot_draws_the_pareto_front(timed) -> None:  # type: ignore[no-untyped-def]
    fig = plots.cost_latency(timed, cost="params")
    assert names(fig) == [*BLOCKS, "Pareto front · 8² b2 float32 cpu"]
    front = fig.data[-1]
    points = list(zip(timed["fwd_ms"], timed["params"], strict=False))
    on_front = set(zip(front.x, front.y, strict=False))
    for latency, cost in points:  # every cell off the front is dominated by one on it
        if (latency, cost) not in on_front:
            assert any(fl <= latency and fc >= cost for fl, fc in on_front)
    with pytest.raises(BlockprofError, match="cost must be one of params, macs, train_flops"):
        plots.cost_latency(timed, cost="latency")


@given(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 50)), min_size=1, max_size=30))
def test_pareto_front_is_exactly_the_undominated_points(points: list[tuple[int, int]]) -> None:
    cost, latency = [float(c) for c, _ in points], [float(t) for _, t in points]
    front = plots.pareto_front(cost, latency)
    dominated = {
        i
        for i in range(len(points))
        for j in range(len(points))
        if latency[j] <= latency[i] and cost[j] >= cost[i] and (latency[j], cost[j]) != (latency[i], cost[i])
    }
    chosen = {(latency[i], cost[i]) for i in front}
    assert chosen == {(latency[i], cost[i]) for i in range(len(points)) if i not in dominated}
    assert [latency[i] for i in front] == sorted(latency[i] for i in front)


def test_plot_command_writes_one_offline_page_and_says_what_it_skipped(
    counted: Path, timed_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "counts.html"
    result = CliRunner().invoke(cli, ["plot", str(counted), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote counts to" in result.stderr and "latency skipped: the latency plot needs timings" in result.stderr
    page = out.read_text()
    assert page.count("plotly.js v") == 1 and "<script src=" not in page  # inlined once, loads nothing: works offline
    assert "roofline skipped" in page
    out = tmp_path / "timed.html"
    result = CliRunner().invoke(cli, ["plot", str(timed_run), "-o", str(out)])
    assert result.exit_code == 0 and "wrote counts, latency, throughput, roofline, pareto" in result.stderr
    page = out.read_text()
    assert page.count("plotly.js v") == 1 and all(f'id="plot-{n}"' in page for n in plots.BUILDERS)
    bad = CliRunner().invoke(cli, ["plot", str(timed_run), "-o", str(out), "--plots", "histogram"])
    assert bad.exit_code == 2 and "unknown plot(s) histogram" in bad.stderr


def test_plot_command_with_nothing_to_draw_is_a_one_line_error(counted: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["plot", str(counted), "-o", str(tmp_path / "p.html"), "--plots", "latency,roofline"]
    )
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "no figure applies" in result.stderr
    assert not (tmp_path / "p.html").exists()
