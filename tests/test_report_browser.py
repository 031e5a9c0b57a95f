"""The report in a real browser: headless Chromium (Debian's package) driven by Playwright,
opened from a file:// URL with the network blocked. Skipped, saying why, where either is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from blockprof.render.report import write_report
from tests.conftest import HOSTILE

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)"
    ),
]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FIGURES = 5


class Opened:
    """The loaded page and what it did: console errors, uncaught exceptions, blocked requests."""

    def __init__(self, page, records: int, path: Path) -> None:  # type: ignore[no-untyped-def]
        self.page, self.records, self.path = page, records, path
        self.errors: list[str] = []
        self.requests: list[str] = []


@pytest.fixture(scope="module")
def opened(hostile_report_input, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One browser for the module: the example run plus hostile rows, opened offline."""
    records, meta = hostile_report_input
    path = write_report(
        tmp_path_factory.mktemp("report") / "report.html",
        records,
        HOSTILE["title"],
        meta=meta,
        timestamp=None,
        notes=[HOSTILE["note"]],
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        state = Opened(page, len(records), path)
        page.on(
            "console",
            lambda message: (
                state.errors.append(f"console {message.type}: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: state.errors.append(f"uncaught: {error}"))

        def only_files(route) -> None:  # type: ignore[no-untyped-def]
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                state.requests.append(route.request.url)
                route.abort()

        page.route("**/*", only_files)
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {FIGURES}", timeout=30_000
        )
        yield state
        browser.close()


def test_no_console_errors_and_no_requests(opened: Opened) -> None:
    assert opened.errors == []
    assert opened.requests == []


def test_every_plot_rendered(opened: Opened) -> None:
    containers = opened.page.locator("figure.plot")
    assert containers.count() == FIGURES
    for i in range(FIGURES):
        figure = containers.nth(i)
        assert figure.locator(".js-plotly-plot .main-svg").count() >= 1, figure.get_attribute("id")
        assert figure.locator(".js-plotly-plot .scatterlayer .trace").count() >= 1  # data was drawn, not just axes


def test_table_rows_equal_the_records(opened: Opened) -> None:
    page = opened.page
    assert page.locator("#counts-table tbody tr").count() == opened.records
    timed = opened.records - 1  # the failed user block has no timing
    assert page.locator("#timing-table tbody tr").count() == timed
    assert page.locator("#timing-table td.noisy").count() >= 1 or "0 of" in page.locator("#summary").inner_text()


def column_values(page, table: str, header: str) -> list[str | None]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        """([table, header]) => {
            const t = document.getElementById(table);
            const i = Array.from(t.tHead.rows[0].cells).findIndex(th => th.textContent.trim() === header);
            return Array.from(t.tBodies[0].rows, r => r.cells[i].getAttribute('data-sort-value') ?? r.cells[i].textContent.trim());
        }""",
        [table, header],
    )


def test_clicking_a_header_sorts_numerically(opened: Opened) -> None:
    page = opened.page
    before = column_values(page, "counts-table", "params")
    page.locator("#counts-table thead th", has_text="params").first.locator("button").click()
    ascending = column_values(page, "counts-table", "params")
    numbers = [float(v) for v in ascending if v != "–"]
    assert numbers == sorted(numbers) and ascending != before
    assert ascending[len(numbers) :] == ["–"] * (len(ascending) - len(numbers))  # missing values last
    assert 4_544 < 70_400 < 1_180_672 and numbers.index(70_400) < numbers.index(1_180_672)  # numeric, not "1,1" < "7"
    page.locator("#counts-table thead th", has_text="params").first.locator("button").click()
    descending = [float(v) for v in column_values(page, "counts-table", "params") if v != "–"]
    assert descending == sorted(numbers, reverse=True)
    assert page.locator("#counts-table thead th[aria-sort='descending']").count() == 1


def test_sorting_timing_by_median(opened: Opened) -> None:
    page = opened.page
    page.locator("#timing-table thead th", has_text="fwd ms").first.locator("button").click()
    values = [float(v) for v in column_values(page, "timing-table", "fwd ms") if v != "–"]
    assert len(values) == opened.records - 1 and values == sorted(values)


def test_injected_script_shows_as_text_and_never_runs(opened: Opened) -> None:
    page = opened.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    label = page.locator("#counts-table td.name", has_text=HOSTILE["block"])
    assert label.count() == 1 and label.first.is_visible()
    assert label.first.inner_text() == HOSTILE["block"]
    assert page.locator("h1").inner_text() == HOSTILE["title"]
    assert page.locator("#counts-table td.error").first.inner_text() == f"error: {HOSTILE['error']}"
    assert HOSTILE["note"] in page.locator(".warnings").inner_text()
    assert HOSTILE["cpu"] in page.locator("#environment").inner_text()
    assert page.locator("img").count() == 0


def test_printing_expands_the_collapsed_sections(opened: Opened) -> None:
    page = opened.page
    layer_table = page.locator("#layers details table").first
    assert not layer_table.is_visible()  # collapsed on screen
    page.emulate_media(media="print")
    try:
        assert layer_table.is_visible()
        assert not page.locator("nav.toc").is_visible()
    finally:
        page.emulate_media(media="screen")


def test_screenshot(opened: Opened, tmp_path: Path) -> None:
    """A screenshot of the page as a reader first sees it, kept with the test's files."""
    shot = tmp_path / "report.png"
    opened.page.evaluate("window.scrollTo(0, 0)")
    opened.page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
