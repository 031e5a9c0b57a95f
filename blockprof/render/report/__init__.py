"""Design-review reports: one self-contained HTML file from a run or from records.

:mod:`blockprof.render.report.html` is the only module in blockprof that writes HTML;
:mod:`blockprof.render.report.findings` computes the summary's sentences from the data.
"""

from __future__ import annotations

from typing import Any


def build_report(*args: Any, **kwargs: Any) -> str:
    """See :func:`blockprof.render.report.html.build_report`."""
    from blockprof.render.report.html import build_report as build

    return build(*args, **kwargs)


def write_report(*args: Any, **kwargs: Any) -> Any:
    """See :func:`blockprof.render.report.html.write_report`."""
    from blockprof.render.report.html import write_report as write

    return write(*args, **kwargs)
