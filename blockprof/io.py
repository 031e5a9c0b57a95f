"""Writing files whole or not at all, and refusing an unwritable output path before any work.

A file is written to a temporary file in the same directory, fsynced, and renamed over the old one
(``os.replace`` is atomic on POSIX): a kill or a full disk mid-write leaves the previous file as it was.
Every OSError becomes one line naming the path (exit 2 from the CLI).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from blockprof.errors import BlockprofError


def _error(path: Path, error: OSError, what: str) -> BlockprofError:
    reason = error.strerror or type(error).__name__
    return BlockprofError(f"cannot write {what + ' ' if what else ''}{path}: {reason}; give a writable path")


def check_writable(path: str | Path, what: str = "") -> Path:
    """Refuse now, in one line, an output file that could not be written later (a directory, a missing or
    read-only directory, a name too long), without creating or changing it."""
    path = Path(path)
    label = what + " " if what else ""
    if len(path.name.encode()) > 255 or len(str(path).encode()) > 4095:
        raise BlockprofError(f"cannot write {label}{str(path)[:80]}...: file name too long; give a shorter name")
    try:
        if path.is_dir():
            raise BlockprofError(f"{label}{path} is a directory; give a file name")
        parent = path.parent
        if not parent.is_dir():
            raise BlockprofError(f"cannot write {label}{path}: directory {parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".tmp", dir=parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise _error(path, e, what) from None
    return path


def atomic_write_text(path: str | Path, text: str, what: str = "") -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same directory, fsync and ``os.replace``."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise _error(path, e, what) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path
