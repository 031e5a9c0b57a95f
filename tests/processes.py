"""A blockprof CLI run in a child process, for the tests that signal or kill it mid-run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from blockprof.runs import RECORDS

ROOT = Path(__file__).resolve().parent.parent


def start(*args: str) -> subprocess.Popen[str]:
    """``python -m blockprof ARGS`` from the repository root, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "blockprof", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def wait_for_records(run: Path, proc: subprocess.Popen[str], n: int = 1) -> None:
    """Until the run holds ``n`` whole records; fails if the process ends first or a minute passes."""
    deadline = time.monotonic() + 60
    while not ((run / RECORDS).exists() and (run / RECORDS).read_bytes().count(b"\n") >= n):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
