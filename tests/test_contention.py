"""Contention is seen from inside the measurement and reaches every output.

The machine running the suite may be busy or quiet, so the flag's two sides are
tested with a simulated clock: a timing thread that got only half of each
sample's wall time on the CPU (descheduled) and one that got all of it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from blockprof.spec import BlockSpec
from blockprof.timing import contention
from blockprof.timing.contention import CONTENDED_RATIO, CpuClock, steal_share, verdict
from blockprof.timing.harness import time_blocks
from blockprof.timing.records import timing_frame

SMALL = dict(device="cpu", threads=1, min_run_time=0.01, rounds=1, min_runs=4)


def test_the_clock_pairs_its_readings_into_samples() -> None:
    walls = iter([0.0, 1.0, 1.0, 3.0, 3.0, 4.0])
    cpus = iter([0.0, 1.0, 1.0, 2.0, 2.0, 2.25])
    clock = CpuClock(threads=1, wall=lambda: next(walls))
    clock.cpu = lambda: next(cpus)  # type: ignore[method-assign]
    for _ in range(6):
        clock()
    # the first pair is the block-size estimate; the last two are the samples
    assert clock.take(2) == [0.5, 0.25]
    assert clock.readings == [] and clock.take(0) == []


def _timed(monkeypatch: pytest.MonkeyPatch, share: float) -> pd.DataFrame:
    """A real timing whose clock reports ``share`` of the wall time as CPU time."""
    monkeypatch.setattr(CpuClock, "cpu", lambda self: share * self.wall())
    monkeypatch.setattr(contention, "cpu_ticks", lambda: None)  # no steal reading: the ratio alone decides
    return timing_frame(time_blocks([BlockSpec("basic", 8, spatial=8), BlockSpec("bottleneck", 8, spatial=8)], **SMALL))


def test_a_descheduled_timing_thread_flags_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    df = _timed(monkeypatch, 0.5)
    assert df["fwd_cpu_wall_ratio"].between(0.45, 0.55).all() and df["train_cpu_wall_ratio"].between(0.45, 0.55).all()
    assert df["contended"].all()
    assert df["contention"].str.contains("ran 50% of the wall time").all()


def test_a_thread_that_kept_its_core_is_not_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    df = _timed(monkeypatch, 1.0)
    assert (df["cpu_wall_ratio"] > CONTENDED_RATIO).all()
    assert not df["contended"].any() and df["contention"].isna().all()


def test_the_real_clock_gives_a_share() -> None:
    df = timing_frame(time_blocks([BlockSpec("basic", 8, spatial=8)], **SMALL))
    row = df.iloc[0]
    assert 0 < row["cpu_wall_ratio"] <= 1 and row["contended"] == (
        row["cpu_wall_ratio"] < CONTENDED_RATIO or (row["steal_share"] or 0) > 0.05
    )
    assert row["load_after"] is None or row["load_after"] >= 0


def test_steal_time_alone_flags() -> None:
    assert steal_share((100, 1000), (160, 2000)) == pytest.approx(0.06)
    assert steal_share(None, (1, 2)) is None and steal_share((5, 10), (5, 10)) is None
    assert verdict(0.99, 0.06) == "the hypervisor stole 6% of the CPU time"
    assert verdict(0.99, 0.01) is None and verdict(None, None) is None
    assert "ran 40%" in verdict(0.4, None)  # type: ignore[operator]


# --- every output says so ---


def _records(contended: tuple[bool, bool]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for block, ms, busy in zip(("basic", "bottleneck"), (2.0, 1.0), contended, strict=True):
        rows.append(
            dict(
                block=block,
                in_channels=64,
                out_channels=64,
                stride=1,
                spatial=56,
                batch=1,
                dtype="float32",
                device="cpu",
                status="ok",
                error=None,
                params=1000,
                macs=10**6,
                fwd_ms=ms,
                fwd_iqr_ms=0.01,
                fwd_runs=10,
                fwd_noisy=False,
                fwd_samples_ms=[ms] * 10,
                fwd_gflops_per_s=1e-3 / ms,
                cpu_wall_ratio=0.4 if busy else 0.98,
                contended=busy,
                contention="the timed code ran 40% of the wall time" if busy else None,
            )
        )
    return pd.DataFrame(rows)


def test_findings_refuse_to_rank_contended_times() -> None:
    from blockprof.render.report import findings

    busy = findings.summary(_records((True, False)), "basic", 0.1)
    text = " ".join(busy)
    assert (
        "Fastest forward" in text
        and "not ranked at 1 point" in text
        and "the bottleneck at 1" not in text.split("Fastest")[1]
    )
    assert "Its speed against basic is not stated" in text
    assert (
        "1 of 2 timed cells were measured while other work held the cores (the timed code ran only 40.0% to 40.0%"
        in text
    )
    quiet = " ".join(findings.summary(_records((False, False)), "basic", 0.1))
    assert "Fastest forward (lowest median): the bottleneck at the one point compared" in quiet
    assert "No timing was taken under contention" in quiet


def test_terminal_and_report_tables_mark_busy_rows() -> None:
    from blockprof.render.plots import _cell_text
    from blockprof.render.report.html import timing_section
    from blockprof.render.runs import run_view

    df = _records((True, False))
    shown = run_view(df, None)
    assert shown["fwd ms\n(IQR, runs)"].str.endswith(" busy").tolist() == [True, False]
    assert "busy: the timed code ran 40%" in _cell_text(df)[0] and "busy" not in _cell_text(df)[1]
    records = df.to_dict(orient="records")
    table = timing_section(records, [None, None], None, 0.1)
    assert table is not None
    header = [c.name for c in table.columns]
    cells = {name: [row[header.index(name)] for row in table.rows] for name in ("fwd ms", "CPU % wall")}
    assert cells["fwd ms"][0].text.endswith("busy") and "contended" in cells["fwd ms"][0].title
    assert not cells["fwd ms"][1].text.endswith("busy") and cells["CPU % wall"][0].text == "40.0%"


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_only_steal_and_load_speak() -> None:
    """The host thread waits on the GPU: its CPU share is not measured, so it cannot flag."""
    df = timing_frame(time_blocks([BlockSpec("basic", 8, spatial=8)], **{**SMALL, "device": "cuda"}))
    assert df["cpu_wall_ratio"].isna().all() and df["fwd_ms"].notna().all()
    assert (df["contended"] == (df["steal_share"].fillna(0) > 0.05)).all()
