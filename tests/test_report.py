"""The HTML report without a browser: sections, findings computed from the data, escaping,
no network references, and byte-identical regeneration (tests/test_report_browser.py
opens it in Chromium)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.render.report import build_report
from blockprof.render.report.findings import Spread, speed_phrase, summary
from blockprof.runs import Run
from tests.conftest import EXAMPLE_RUN, HOSTILE

SECTIONS = ("summary", "environment", "counts", "layers", "timing", "plots", "methodology")
FIGURES = ("counts", "latency", "throughput", "roofline", "pareto")
ENV = {"blockprof_version": "0.1.0", "torch_version": "test", "cpu_model": "test CPU"}


class Tables(HTMLParser):
    """Rows of each table by id: the cells' text and data-sort-value, body rows only."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.headers: dict[str, list[str]] = {}
        self._table: str | None = None
        self._part = ""
        self._cell: list[str] | None = None
        self._sort: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or ""
            self.rows[self._table], self.headers[self._table] = [], []
        elif tag in ("thead", "tbody", "tfoot"):
            self._part = tag
        elif tag == "tr" and self._part == "tbody" and self._table is not None:
            self.rows[self._table].append([])
        elif tag in ("td", "th"):
            self._cell, self._sort = [], a.get("data-sort-value")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            text = "".join(self._cell).strip()
            if self._part == "thead":
                self.headers[self._table].append(text)
            elif self._part == "tbody":
                self.rows[self._table][-1].append((text, self._sort))
            self._cell = None
        elif tag == "table":
            self._table = None


def tables(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def example_html() -> str:
    return build_report(EXAMPLE_RUN, title="example", timestamp=None)


@pytest.fixture(scope="module")
def hostile_html(hostile_report_input) -> str:  # type: ignore[no-untyped-def]
    records, meta = hostile_report_input
    return build_report(records, HOSTILE["title"], meta=meta, timestamp=None, notes=[HOSTILE["note"]])


def test_sections_and_figures_present(example_html: str) -> None:
    for section in SECTIONS:
        assert f'<section id="{section}">' in example_html
    for name in FIGURES:
        assert f'id="plot-{name}"' in example_html
    from plotly.offline import get_plotlyjs

    # one call per figure, beyond those inside the inlined plotly.js (which differ between its versions)
    assert example_html.count("Plotly.newPlot(") - get_plotlyjs().count("Plotly.newPlot(") == len(FIGURES)
    assert example_html.count("<details>") == 3  # one per block, each with its formulas
    assert "256·1·1·64 + 64·3·3·64 + 64·1·1·256 = 69,632" in example_html
    assert "Not drawn" not in example_html


def test_element_ids_are_unique(hostile_html: str) -> None:
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", hostile_html, flags=re.S)
    ids = re.findall(r'\sid="([^"]*)"', markup)
    assert len(ids) == len(set(ids)) and {"counts", "counts-table", "plot-counts"} <= set(ids)


def test_plotly_js_embedded_once(example_html: str) -> None:
    from plotly.offline import get_plotlyjs

    head = get_plotlyjs()[:300]
    assert example_html.count(head) == 1
    assert len(example_html.encode()) < len(get_plotlyjs().encode()) + 400_000


def test_tables_hold_one_row_per_record(example_html: str) -> None:
    run = Run.open(EXAMPLE_RUN)
    t = tables(example_html)
    assert len(t.rows["counts-table"]) == len(run.records) == 18
    timed = [r for r in run.records if r.get("fwd_ms") is not None or r.get("train_ms") is not None]
    assert len(t.rows["timing-table"]) == len(timed)
    # the raw numbers travel with the cells, exactly
    params = t.headers["counts-table"].index("params")
    assert [int(row[params][1]) for row in t.rows["counts-table"]] == [r["params"] for r in run.records]
    fwd = t.headers["timing-table"].index("fwd ms")
    assert [float(row[fwd][1]) for row in t.rows["timing-table"]] == [r["fwd_ms"] for r in timed]
    noisy = sum(bool(r["fwd_noisy"]) for r in timed)
    assert sum("⚠" in row[fwd][0] for row in t.rows["timing-table"]) == noisy


def test_summary_states_findings_from_the_data(example_html: str) -> None:
    example_html = unescape(example_html)
    df = Run.open(EXAMPLE_RUN).frame()
    at = df[(df["in_channels"] == 256) & (df["spatial"] == 56)].set_index("block")
    share = 100 * at.loc["bottleneck", "params"] / at.loc["basic", "params"]
    assert f"the bottleneck holds {share:.1f}% of basic's parameters" in example_html
    assert "Parameters equal sum(p.numel() for p in module.parameters()) in 18 of 18 cells." in example_html
    assert "torch (training step) agrees in 12 of 18" in example_html
    noisy = int(df["fwd_noisy"].sum() + df["train_noisy"].sum())
    assert f"{noisy} of 36 timings are noisy" in example_html


def test_timing_findings_only_with_timings() -> None:
    df = Run.open(EXAMPLE_RUN).frame()
    counts_only = df[
        [
            c
            for c in df.columns
            if not c.startswith(
                ("fwd_", "train_ms", "train_iqr", "train_runs", "train_noisy", "train_samples", "train_g", "train_roof")
            )
        ]
    ]
    text = " ".join(summary(counts_only, "basic", 0.1))
    assert "faster" not in text and "noisy" not in text and "holds" in text
    html = build_report(counts_only, environment=ENV, timestamp=None)
    assert "These records were not timed" in html and 'id="plot-counts"' in html and 'id="plot-latency"' not in html


def spread(median: float, q1: float, q3: float, noisy: bool = False) -> Spread:
    return Spread(median, q1, q3, 10, noisy)


def test_speed_phrase_uses_the_quartiles() -> None:
    assert (
        speed_phrase(spread(71, 70, 72), spread(10, 9.5, 10.5), "training step")
        == "runs its training step 7.1× faster (quartile range 6.7–7.6×)"
    )
    assert "no clearly different speed" in speed_phrase(spread(10, 8, 12), spread(9, 7, 11), "forward")
    assert speed_phrase(spread(10, 9.9, 10.1), spread(25, 24, 26), "forward").startswith("runs its forward 2.5× slower")


def test_speed_ratio_from_raw_samples() -> None:
    rows = pd.DataFrame(
        [
            {
                "block": "a",
                "in_channels": 8,
                "spatial": 4,
                "batch": 1,
                "params": 1000,
                "macs": 4000,
                "fwd_ms": 10.0,
                "fwd_iqr_ms": 1.0,
                "fwd_runs": 5,
                "fwd_noisy": False,
                "fwd_samples_ms": [9, 9.5, 10, 10.5, 11],
            },
            {
                "block": "b",
                "in_channels": 8,
                "spatial": 4,
                "batch": 1,
                "params": 59,
                "macs": 236,
                "fwd_ms": 2.0,
                "fwd_iqr_ms": 0.1,
                "fwd_runs": 5,
                "fwd_noisy": True,
                "fwd_samples_ms": [1.9, 1.95, 2, 2.05, 2.1],
            },
        ]
    )
    first = summary(rows, "a", 0.1)[0]
    assert first.startswith(
        "At 8 channels, input 1×8×4×4, the b holds 5.9% of a's parameters (59 vs 1,000) and does 5.9% of its forward MACs"
    )
    assert "runs its forward 5.0× faster (quartile range 4.6–5.4×); 1 of the 2 timings behind this is noisy" in first


def test_winners_count_points_and_clear_wins() -> None:
    from blockprof.render.report.findings import winners

    def row(block: str, c: int, ms: float, q: float, params: int) -> dict:
        return {
            "block": block,
            "in_channels": c,
            "spatial": 8,
            "batch": 1,
            "params": params,
            "macs": params,
            "fwd_ms": ms,
            "fwd_iqr_ms": 2 * q,
            "fwd_runs": 10,
            "fwd_noisy": False,
        }

    rows = pd.DataFrame(
        [
            row("a", 8, 1.0, 0.1, 10),
            row("b", 8, 2.0, 0.1, 5),  # a clearly faster
            row("a", 16, 1.0, 0.5, 40),
            row("b", 16, 1.2, 0.5, 20),  # a faster, quartiles overlap
            row("a", 32, 3.0, 0.1, 160),
            row("b", 32, 2.0, 0.1, 80),
        ]
    )
    assert winners(rows) == [
        "Fewest parameters: the b at every one of the 3 points compared.",
        "Fewest forward MACs: the b at every one of the 3 points compared.",
        "Fastest forward (lowest median): the a at 2 (clearly at 1), the b at 1 (clearly at 1) of the 3 points compared"
        " (clearly: its third quartile below the runner-up's first).",
    ]


def test_user_strings_are_escaped(hostile_html: str) -> None:
    for value in HOSTILE.values():
        assert value not in hostile_html  # nowhere raw: not in a table, a title, a note, nor a figure's JSON
    assert "&lt;script&gt;window.__pwned=&#39;block&#39;&lt;/script&gt;basic" in hostile_html
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=&#39;error&#39;" in hostile_html
    assert "<title>Review &lt;script&gt;" in hostile_html
    assert "\\u003cscript\\u003ewindow.__pwned" in hostile_html  # the figure JSON carries it, escaped
    # every <script> the page opens is one of blockprof's: plotly.js, one per figure, the sorter
    assert len(re.findall(r"<script\b", hostile_html)) == hostile_html.count("</script>") == 1 + len(FIGURES) + 1


def test_hostile_rows_are_counted_and_explained(hostile_html: str) -> None:
    t = tables(hostile_html)
    assert len(t.rows["counts-table"]) == 20
    assert t.rows["counts-table"][-1][-1][0] == f"error: {HOSTILE['error']}"
    assert "No closed form: unknown block" in hostile_html


def test_no_network_references(example_html: str, hostile_html: str) -> None:
    for html in (example_html, hostile_html):
        markup = re.sub(r"<script\b[^>]*>.*?</script>", "<script></script>", html, flags=re.S)  # drop script bodies
        assert not re.search(r"""\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", markup, re.I)
        assert not re.search(r"<link\b", markup, re.I)
        assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//|@font-face", markup, re.I)
        assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, re.I)
        assert not re.search(r"<(?:iframe|img|object|embed)\b", markup, re.I)


@pytest.mark.slow
def test_same_run_same_bytes_but_the_timestamp(example_html: str) -> None:
    assert build_report(EXAMPLE_RUN, title="example", timestamp=None) == example_html
    a = build_report(EXAMPLE_RUN, title="example", timestamp="2026-01-01T00:00:00+00:00")
    b = build_report(EXAMPLE_RUN, title="example", timestamp="2026-06-30T12:00:00+00:00")
    diff = [(x, y) for x, y in zip(a.splitlines(), b.splitlines(), strict=False) if x != y]
    assert (
        len(a.splitlines()) == len(b.splitlines())
        and len(diff) == 1
        and "Generated 2026-01-01T00:00:00+00:00." in diff[0][0]
    )


def test_source_date_epoch_fixes_the_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    from blockprof.render.report.html import resolve_timestamp

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    assert resolve_timestamp() == "2026-01-01T00:00:00+00:00"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BlockprofError, match="SOURCE_DATE_EPOCH"):
        resolve_timestamp()


@pytest.mark.slow
def test_cli_regenerates_byte_identically_across_processes(tmp_path: Path) -> None:
    """Two processes with different hash seeds write the same file (the README's command)."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"report-{seed}.html"
        env = {**os.environ, "PYTHONHASHSEED": seed, "SOURCE_DATE_EPOCH": "1767225600"}
        subprocess.run(
            [sys.executable, "-m", "blockprof", "report", EXAMPLE_RUN, "-o", str(out), "--title", "example"],
            check=True,
            env=env,
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert b"Generated 2026-01-01T00:00:00+00:00." in outputs[0]


def test_committed_example_is_small_and_offline() -> None:
    example = Path("reports/example.html")
    assert example.stat().st_size < 5_000_000
    html = example.read_text(encoding="utf-8")
    assert all(f'<section id="{s}">' in html for s in SECTIONS)
    assert len(tables(html).rows["counts-table"]) == len(Run.open(EXAMPLE_RUN).records)


def test_cli_report_and_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    result = CliRunner().invoke(cli, ["report", EXAMPLE_RUN, "-o", str(out), "--title", "T <b>", "--timestamp", "none"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<h1>T &lt;b&gt;</h1>" in html and "Generated" not in html
    for args, message in (
        (["report", str(tmp_path), "-o", str(out)], "is not a blockprof run"),
        (["report", EXAMPLE_RUN, "-o", str(out), "--reference", "nope"], "reference block 'nope'"),
        (["report", EXAMPLE_RUN, "-o", str(tmp_path)], "is a directory"),
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_compare_html(tmp_path: Path) -> None:
    out = tmp_path / "c.html"
    result = CliRunner().invoke(
        cli, ["compare", "--channels", "32,64", "--spatial", "8", "--tools", "torch", "--no-time", "--html", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "basic" in result.stdout  # the table is still printed
    html = unescape(out.read_text(encoding="utf-8"))
    t = tables(html)
    assert len(t.rows["counts-table"]) == 6 and "timing-table" not in t.rows
    assert "These records were not timed" in html and "torch (forward) agrees in 6 of 6" in html
    assert "FlopCounterMode: FLOPs of conv and matmul only" in html  # the tool's CONVENTION string


@pytest.mark.slow
@pytest.mark.timing
def test_compare_time_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compare --time --html: the timings, the timing settings and the device peaks reach the report."""
    monkeypatch.setenv("BLOCKPROF_CACHE_DIR", str(tmp_path / "cache"))  # calibrate into a private cache
    # a quiet machine, whatever this one is doing: contended times would (rightly) not be compared
    monkeypatch.setattr("blockprof.timing.contention.CpuClock.cpu", lambda self: self.wall())
    monkeypatch.setattr("blockprof.timing.harness.cpu_ticks", lambda: None)
    out = tmp_path / "t.html"
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--channels",
            "16",
            "--spatial",
            "8",
            "--tools",
            "torch",
            "--time",
            "--threads",
            "1",
            "--min-run-time",
            "0.01",
            "--html",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = unescape(out.read_text(encoding="utf-8"))
    assert len(tables(html).rows["timing-table"]) == 3
    assert "Calibrated peaks, cpu/float32" in html and "torch threads" in html
    assert re.search(r"On cpu \(.*1 thread, float32\) it runs its forward", html)


def test_compare_html_at_equal_budget(tmp_path: Path) -> None:
    """At equal budget each block has its own width: the report compares them at one input."""
    out = tmp_path / "b.html"
    result = CliRunner().invoke(
        cli,
        ["compare", "--budget-params", "100000", "--spatial", "8", "--tools", "torch", "--no-time", "--html", str(out)],
    )
    assert result.exit_code == 0, result.output
    html = unescape(out.read_text(encoding="utf-8"))
    assert "within 100,000 parameters" in html
    assert re.search(r"the bottleneck at \d+ channels holds \d+\.\d% of basic's parameters", html)
    assert "Fewest parameters: the " in html and "at the one point compared." in html


def test_dataframe_needs_an_environment() -> None:
    df = Run.open(EXAMPLE_RUN).frame()
    with pytest.raises(BlockprofError, match="needs environment"):
        build_report(df)
