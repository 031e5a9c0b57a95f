"""How a command ends on Ctrl-C: exit 130, one line, whatever else is pressed meanwhile."""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import NoReturn

import click


def interrupted(message: str = "interrupted") -> NoReturn:
    """End the command for Ctrl-C: further Ctrl-Cs are ignored from here on (so cleanup and
    exit cannot be cut short into a traceback or a -2), one line on stderr, exit 130."""
    with contextlib.suppress(ValueError):  # outside the main thread signals are not ours to set
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    raise click.exceptions.Exit(130)
