"""The one writer of files: whole files appear complete or not at all.

Every file blockprof writes (tables, reports, plots, baselines, a run's meta.json)
goes through :func:`atomic_write_bytes`: the content is written to a temporary
file in the same directory, fsync'd, renamed over the target (``os.replace`` is
atomic on POSIX and Windows) and the directory fsync'd, so a kill or a full disk
at any moment leaves either the previous file or the new one, never a cut-off
mix. Any ``OSError`` (no space, read-only file system, no permission, a name
too long, a directory in the way, a missing folder) becomes a one-line
:class:`~blockprof.errors.BlockprofError` naming the path and the reason, and
the previous file is left as it was.

:func:`check_writable` asks the same questions before a long measurement
starts, so that a run never ends in "cannot write".
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from blockprof.errors import BlockprofError

#: what to do, per errno, after the system's own words
_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free space or write elsewhere",
    errno.EROFS: "write elsewhere",
    errno.EACCES: "write to a folder you own",
    errno.EPERM: "write to a folder you own",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
    errno.EISDIR: "it is a directory: give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "its folder does not exist: create it first or choose another path",
}


def reason(error: OSError) -> str:
    """The system's words for ``error`` and, where there is one, what to do about it."""
    words = error.strerror or type(error).__name__
    hint = _HINTS.get(error.errno or 0)
    return f"{words}; {hint}" if hint else words


def write_error(path: str | Path, error: OSError, what: str = "") -> BlockprofError:
    """The one-line error for a failed write of ``path``."""
    return BlockprofError(f"cannot write {what + ' to ' if what else ''}{path}: {reason(error)}")


def is_dir(path: str | Path, what: str = "") -> bool:
    """Whether ``path`` is a directory; a path the system cannot even look up (a name
    too long, a file where a folder should be) is a one-line error rather than an OSError."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        raise BlockprofError(f"cannot use {what + ' ' if what else ''}{path}: {reason(e)}") from None


def check_writable(path: str | Path, what: str = "") -> Path:
    """Refuse now, in one line, an output file that could not be written later.

    Checks what can be checked without creating ``path``: it is not a directory,
    its name is not too long, its folder exists and a file can be created there
    (a probe file is created and removed). Returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    if is_dir(path, what):
        raise write_error(path, OSError(errno.EISDIR, "Is a directory"), what)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name[:32]}.", suffix=".probe", dir=path.parent)
    except OSError as e:
        raise write_error(path, e, what) from None
    os.close(fd)
    os.unlink(probe)
    try:
        os.stat(path)  # a too-long final name is refused here, not after the run
    except FileNotFoundError:
        pass
    except OSError as e:
        raise write_error(path, e, what) from None
    return path


def atomic_write_bytes(path: str | Path, data: bytes, what: str = "") -> Path:
    """Write ``data`` to ``path`` whole or not at all (see the module docstring)."""
    path = Path(path)
    if is_dir(path, what):
        raise write_error(path, OSError(errno.EISDIR, "Is a directory"), what)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:32]}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise write_error(path, e, what) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, what: str = "") -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), what)


def write_output(path: str | Path, content: str | bytes, what: str = "") -> Path:
    """Write a command's output file (``-o``, ``--html``, ``--markdown``, ...):
    atomically, with a one-line error. ``what`` names the content in that error."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return atomic_write_bytes(path, data, what)


def fsync_dir(path: str | Path) -> None:
    """Make a creation or rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _keep_mode(path: Path, tmp: str) -> None:
    """Give the new file the old one's permissions (mkstemp makes 0600), or the umask's default."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)
