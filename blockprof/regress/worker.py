"""One side of an A/B check (:mod:`blockprof.regress.ab`), run as ``python -m blockprof.regress.worker``.

A line-per-message JSON protocol on stdin/stdout, kept small and stable because the base side is an
older tree: first ``{"suite": ...}`` → its cell ids (in the suite's order), counts, cell errors,
environment, version, git; then ``{"round": r, "only": ids | null}`` → ``{"times": {label: per-call
times | error}}`` until stdin closes. Errors are ``{"error": one line}``; nothing else goes to stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    from blockprof import __version__
    from blockprof.errors import BlockprofError
    from blockprof.regress.measure import Session, check_cells, counts_of, git_info
    from blockprof.regress.suite import Suite, cell_id

    try:
        suite = Suite.from_dict(json.loads(sys.stdin.readline())["suite"])
        check_cells(suite.cells)
        counts, errors = {}, {}
        for spec in suite.cells:
            try:
                counts[cell_id(spec)] = counts_of(spec)
            except BlockprofError as e:
                errors[cell_id(spec)] = str(e)
                counts[cell_id(spec)] = {}
        session = Session.start(suite) if suite.timed else None
        environment = None
        if session is not None:
            from blockprof.regress.measure import environment_of
            from blockprof.timing.env import steady_allocator

            environment = environment_of(suite.timing, steady_allocator())
            errors.update({c.task.label: c.error for c in session.cells if c.error and c.task.label != "reference"})
    except BlockprofError as e:
        _reply({"error": str(e)})
        return
    _reply(
        {
            "counts": counts,
            "errors": errors,
            "environment": environment,
            "ids": [cell_id(spec) for spec in suite.cells],
            "version": __version__,
            "git": git_info(Path.cwd()),
        }
    )
    for line in sys.stdin:
        request = json.loads(line)
        assert session is not None, "a round was asked of an untimed suite"
        _reply({"times": session.round(request["round"], request.get("only"))})


if __name__ == "__main__":
    main()
