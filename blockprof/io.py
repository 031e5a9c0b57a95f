"""The one writer of files: whole files appear complete or not at all.

Every file blockprof writes (tables, reports, plots, baselines, a run's meta.json)
goes through :func:`atomic_write_bytes`: the content is written to a temporary
file in the same directory, fsync'd, renamed over the target (``os.replace`` is
atomic on POSIX and Windows) and the directory fsync'd, so a kill or a full disk
at any moment leaves either the previous file or the new one, never a cut-off
mix. A kill (SIGKILL, a power cut) can leave the hidden temporary behind: it is
named ``.NAME.PID-HOST.XXXXXXXX.tmp`` after its writer, so that
:func:`remove_stale_temporaries` can tell a dead writer's leftovers from a live
writer's file (run directories are cleaned so on the next sweep, resume or
merge). Any ``OSError`` (no space, read-only file system, no permission, a name
too long, a directory in the way, a missing folder) becomes a one-line
:class:`~blockprof.errors.BlockprofError` naming the path and the reason, and
the previous file is left as it was.

:func:`check_writable` asks the same questions before a long measurement
starts, so that a run never ends in "cannot write".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import tempfile
from collections.abc import Iterable
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


#: this machine, in the names of the temporaries it writes: a pid means something only on its own host
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]
#: ``.NAME.PID-HOST.XXXXXXXX.tmp`` (or ``.probe``): NAME is the target's first 32 characters, XXXXXXXX mkstemp's
_TEMPORARY = re.compile(
    r"\.(?P<name>.{1,32})\.(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{8})\.[a-z0-9_]{8}\.(?:tmp|probe)", re.S
)
#: what blockprof before the writer's pid was in the name left: ``.NAME.XXXXXXXX.tmp``
_UNTAGGED = re.compile(r"\.(?P<name>.{1,32})\.[a-z0-9_]{8}\.tmp", re.S)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name[:32]}.{os.getpid()}-{_HOST}."


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
        fd, probe = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".probe", dir=path.parent)
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
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
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


def stale_temporaries(folder: str | Path, locked: Iterable[str] = ()) -> list[Path]:
    """The temporaries in ``folder`` whose writer is provably gone, and nothing else.

    A temporary named after a writer of this host whose pid no longer runs is stale. So is any
    temporary of a target named in ``locked``: files only the holder of a lock writes, asked for
    by its new holder (whoever wrote the temporary held that lock, so is gone, on any host, and
    under any blockprof's naming). Every other file, a live writer's temporary and another host's
    included, is left alone (a pid reused by an unrelated process keeps its file: the safe error).
    """
    locked = {name[:32] for name in locked}
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stale = []
    for name in sorted(names):
        tagged = _TEMPORARY.fullmatch(name)
        if tagged and tagged["host"] == _HOST and not _alive(int(tagged["pid"])):
            stale.append(Path(folder) / name)
            continue
        match = tagged or _UNTAGGED.fullmatch(name)
        if match and match["name"] in locked and name.endswith(".tmp"):
            stale.append(Path(folder) / name)
    return stale


def remove_stale_temporaries(folder: str | Path, locked: Iterable[str] = ()) -> list[str]:
    """Remove :func:`stale_temporaries` (regular files only); the names removed."""
    removed = []
    for path in stale_temporaries(folder, locked):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (where that cannot be asked, it is assumed to)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill(pid, 0) would terminate it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: it runs, as another user; a number no pid can be: not ours to judge
        return True
    return True


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
