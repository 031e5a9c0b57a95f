"""A check's verdicts as a terminal summary, Markdown (CI job summary) and JUnit XML.

Formatting only: every number here was computed by :mod:`blockprof.regress`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blockprof.regress import COUNT_METRICS, TIME_METRIC, CheckResult, Verdict
from blockprof.units import grouped

if TYPE_CHECKING:
    import pandas as pd

_MARK = {
    "ok": "✓",
    "changed": "✗ changed",
    "slower": "✗ slower",
    "faster": "faster",
    "~": "~",
    "new": "new",
    "missing": "missing",
    "error": "✗ error",
    "unjudged": "(not judged)",
}


def headline(result: CheckResult) -> str:
    """One line: passed or failed, and how many of what."""
    failures, faster = result.failures, result.improvements
    kinds = {s: sum(v.status == s for v in failures) for s in ("changed", "slower", "error")}
    parts = [
        f"{n} {what}"
        for what, n in (
            ("changed count(s)", kinds["changed"]),
            ("slower time(s)", kinds["slower"]),
            ("error(s)", kinds["error"]),
        )
        if n
    ]
    verdict = "FAILED: " + ", ".join(parts) if failures else "passed"
    unjudged = sum(v.status == "unjudged" for v in result.verdicts)
    if unjudged and not failures:
        verdict = f"passed on counts ({unjudged} time(s) reported, not judged: baseline from another machine class)"
    tail = f"; {len(faster)} faster (run with --update to lock the gain in)" if faster else ""
    size = f"{len(result.current.cells)} cells × {len(result.current.suite.metrics)} metrics"
    return f"blockprof check {verdict} — {size}{tail}"


def provenance(result: CheckResult) -> list[str]:
    """What was compared with what (a stored baseline, or a base tree measured now), which time comparison, and why."""
    base = result.baseline
    commit = (base.git or {}).get("commit")
    where = (
        f"commit {commit[:10]}{' (dirty)' if base.git and base.git.get('dirty') else ''}"
        if commit
        else "no git commit recorded"
    )
    if result.mode == "ab":
        lines = [f"A/B on this machine: base ({where}) and this tree measured side by side, interleaved round by round"]
    else:
        lines = [
            f"baseline: suite {base.suite.name!r}, taken {base.created}, {where}, blockprof {base.blockprof_version}"
        ]
    lines.append(f"times: {result.reason}")
    if result.comparison and result.comparison != "instructions":
        rules = result.current.suite.rules
        lines.append(
            f"rule: slower/faster = median ratio beyond ±{rules.tolerance:.0%} "
            f"AND one-sided Mann–Whitney U p < {rules.alpha:g} "
            f"over per-round samples{', confirmed by a second measurement' if rules.confirm else ''}; "
            f"'~' = beyond the tolerance but not significant{' or not confirmed' if rules.confirm else ''} (passes)"
        )
    return lines


def _span(v: Verdict, digits: str = ".3g") -> str:
    assert v.old is not None and v.new is not None, "only verdicts with both medians have a span"
    if v.comparison == "normalised":
        return f"{v.old:{digits}} → {v.new:{digits}} ×ref"
    if v.comparison == "instructions":
        return f"{v.old / 1e6:{digits}} → {v.new / 1e6:{digits}} M instr"
    return f"{v.old * 1e3:{digits}} → {v.new * 1e3:{digits}} ms"


def time_text(v: Verdict) -> str:
    """``0.981 → 1.001 ms +2.0% [+0.6%, +5.1%] p=0.002`` (normalised: in multiples of the reference kernel)."""
    if v.old is None or v.new is None or v.change is None:
        return f"{_MARK[v.status]}"
    ci = f" [{v.ci[0] - 1:+.1%}, {v.ci[1] - 1:+.1%}]" if v.ci else ""
    p = f" p={v.p_value:.2g}" if v.p_value is not None else ""
    return f"{_MARK[v.status]} {_span(v)} {v.change:+.1%}{ci}{p}"


def count_text(v: Verdict) -> str:
    if v.status != "changed":
        return _MARK[v.status]
    change = f" ({v.change:+.2%})" if v.change is not None else ""
    return f"✗ {grouped(v.old)} → {grouped(v.new)}{change}"


def grid(result: CheckResult) -> pd.DataFrame:
    """One row per cell, one column per metric, each entry the verdict in short."""
    import pandas as pd

    rows: dict[str, dict[str, str]] = {}
    for v in result.verdicts:
        rows.setdefault(v.cell, {"cell": v.cell})[v.metric] = time_text(v) if v.metric == TIME_METRIC else count_text(v)
    columns = ["cell", *[m for m in (*COUNT_METRICS, TIME_METRIC) if m in result.current.suite.metrics]]
    return pd.DataFrame(list(rows.values()), columns=columns).fillna("-")


def detail(v: Verdict) -> str:
    """One line per failing or notable verdict: the cell, old → new, the relative change, why."""
    if v.metric == TIME_METRIC and v.old is not None and v.new is not None and v.change is not None:
        ci = f", 95% CI {v.ci[0] - 1:+.1%}…{v.ci[1] - 1:+.1%}" if v.ci else ""
        p = f", p={v.p_value:.2g}" if v.p_value is not None else ""
        runs = f", {v.runs[0]}/{v.runs[1]} rounds" if v.runs else ""
        return f"{v.cell}: time {_span(v, '.4g')} ({v.change:+.1%}{ci}{p}{runs}, {v.comparison}): {v.note}"
    if v.old is not None or v.new is not None:
        change = f" ({v.change:+.2%})" if v.change is not None else ""
        return f"{v.cell}: {v.metric} {grouped(v.old)} → {grouped(v.new)}{change}: {v.note}"
    return f"{v.cell}: {v.metric}: {v.note}"


def _noted(verdicts: list[Verdict]) -> list[str]:
    """A line per notable verdict, except that a cell's verdicts with no values and one note (a cell new to
    the baseline, or missing from this suite) share one line naming their metrics."""
    lines: list[str | tuple[str, str]] = []
    metrics: dict[tuple[str, str], list[str]] = {}
    for v in verdicts:
        if v.old is not None or v.new is not None:
            lines.append(detail(v))
        elif (v.cell, v.note) in metrics:
            metrics[(v.cell, v.note)].append(v.metric)
        else:
            metrics[(v.cell, v.note)] = [v.metric]
            lines.append((v.cell, v.note))
    return [line if isinstance(line, str) else f"{line[0]}: {', '.join(metrics[line])}: {line[1]}" for line in lines]


def _sections(result: CheckResult) -> list[tuple[str, list[str]]]:
    noted = [v for v in result.verdicts if v.status in ("~", "new", "missing", "unjudged")]
    return [
        ("Failures", [detail(v) for v in result.failures]),
        ("Faster", [detail(v) for v in result.improvements]),
        ("Not compared or not significant", _noted(noted)),
    ]


def to_text(result: CheckResult, width: int | None = None) -> str:
    """The terminal summary: headline, provenance, the grid, then every failure in full."""
    from blockprof.render.tables import render

    lines = [headline(result), *provenance(result), "", render(grid(result), "table", width=width)]
    for title, items in _sections(result):
        if items:
            lines += ["", f"{title}:", *(f"  {item}" for item in items)]
    return "\n".join(lines)


def to_markdown(result: CheckResult) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    from blockprof.render.tables import render

    icon = "✅" if result.passed else "❌"
    lines = [
        f"### {icon} {headline(result)}",
        "",
        *(f"- {line}" for line in provenance(result)),
        "",
        render(grid(result).map(lambda s: s.replace("|", "\\|")), "markdown"),
    ]
    for title, items in _sections(result):
        if items:
            lines += ["", f"**{title}**", "", *(f"- {item}" for item in items)]
    return "\n".join(lines) + "\n"


def to_junit(result: CheckResult) -> str:
    """JUnit XML: one testcase per cell × metric; failures for changed counts and slower
    times, errors for cells that failed to run, skipped for cells not compared."""
    import xml.etree.ElementTree as ET

    verdicts = result.verdicts
    counts = {
        "tests": len(verdicts),
        "failures": sum(v.status in ("changed", "slower") for v in verdicts),
        "errors": sum(v.status == "error" for v in verdicts),
        "skipped": sum(v.status in ("new", "missing", "unjudged") for v in verdicts),
    }
    name = f"blockprof check {result.current.suite.name}"
    attributes = {k: str(n) for k, n in counts.items()}
    root = ET.Element("testsuites", {"name": name, **attributes})
    suite = ET.SubElement(root, "testsuite", {"name": name, "timestamp": result.current.created, **attributes})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="comparison", value=result.comparison or "none")
    ET.SubElement(properties, "property", name="reason", value=result.reason)
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=v.cell, name=v.metric)
        text = detail(v)
        if v.status in ("changed", "slower"):
            ET.SubElement(case, "failure", message=text, type=v.status).text = text
        elif v.status == "error":
            ET.SubElement(case, "error", message=text, type="error").text = text
        elif v.status in ("new", "missing", "unjudged"):
            ET.SubElement(case, "skipped", message=text)
        elif v.metric == TIME_METRIC or v.status != "ok":
            ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
