"""Permissions of what moodump writes: private by default, whatever the umask.

Backups hold every user's password hash and personal data, often on a shared NFS
volume. Every backup file is created with :func:`file_mode` (``MOODUMP_FILE_MODE``,
default ``0640``) and every directory moodump creates with :func:`dir_mode` (the same
mode with x added where r is set: ``0750``). The group bits matter on OpenShift, where
pods run with an arbitrary UID and group 0: the group is what lets the verify and
restore pods read a backup another pod wrote. Lock and progress files are owner-only
(:data:`PRIVATE_FILE`).

The process umask is never relied on: files are created with an explicit mode and then
``fchmod``-ed, so a permissive umask (0) cannot widen the mode and a restrictive one
(077) cannot take the group's read bit away. Directories that already exist (the
backup volume's root) are left as they are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from moodump.config import setting

log = logging.getLogger("moodump.fsmodes")

DEFAULT_FILE_MODE = 0o640
#: Lock files and progress files: only the owner reads them.
PRIVATE_FILE = 0o600

_warned: set[int] = set()


def file_mode() -> int:
    """The mode of backup files (``MOODUMP_FILE_MODE``; refused when world-writable).

    :raises ConfigError: the variable is not an octal mode, or is world-writable.
    """
    mode = int(setting("MOODUMP_FILE_MODE"))
    if mode & 0o004 and mode not in _warned:
        _warned.add(mode)
        log.warning(
            "MOODUMP_FILE_MODE=%04o makes backups world-readable: every local user can read "
            "the password hashes and personal data in them",
            mode,
        )
    return mode


def dir_mode(mode: int | None = None) -> int:
    """The directory mode for a file mode: x added wherever r is set (0640 -> 0750)."""
    m = file_mode() if mode is None else mode
    return m | ((m & 0o444) >> 2)


def make_dir(path: Path, *, parents: bool = False, exist_ok: bool = False) -> None:
    """``Path.mkdir`` with :func:`dir_mode` on every directory it creates.

    Unlike ``Path.mkdir(parents=True)``, missing parents get the mode too (Python gives
    them the umask's). Existing directories keep their mode.
    """
    mode = dir_mode()
    path = Path(path)
    try:
        os.mkdir(path, mode)
    except FileNotFoundError:
        if not parents or path.parent == path:
            raise
        make_dir(path.parent, parents=True, exist_ok=True)
        make_dir(path, exist_ok=exist_ok)
        return
    except FileExistsError:
        if not exist_ok or not path.is_dir():
            raise
        return
    os.chmod(path, mode)


def open_new(path: Path, *, mode: int | None = None) -> BinaryIO:
    """A new file for writing (never an existing one: FileExistsError), with ``mode``
    (default :func:`file_mode`) whatever the umask."""
    m = file_mode() if mode is None else mode
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, m)
    try:
        os.fchmod(fd, m)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_bytes(path: Path, data: bytes, *, mode: int | None = None, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` with ``mode`` (default :func:`file_mode`), replacing
    any file there: written beside it first and renamed, so readers never see half a file."""
    m = file_mode() if mode is None else mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), m)
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str, *, mode: int | None = None, fsync: bool = False) -> None:
    """:func:`write_bytes` for UTF-8 text."""
    write_bytes(path, text.encode("utf-8"), mode=mode, fsync=fsync)


def mkstemp(directory: Path, *, prefix: str, suffix: str = "") -> tuple[int, str]:
    """``tempfile.mkstemp`` (0600) turned to :func:`file_mode`, for files published by rename."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, file_mode())
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, name


def apply_tree(root: Path) -> None:
    """Give ``root`` and everything below it the backup modes (files keep an x bit
    as x-where-r, so a script stays executable). For trees written by other code."""
    fmode = file_mode()
    dmode = dir_mode(fmode)
    os.chmod(root, dmode)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), dmode)
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            if not os.path.islink(p):
                os.chmod(p, dmode if st.st_mode & 0o100 else fmode)


__all__ = [
    "DEFAULT_FILE_MODE",
    "PRIVATE_FILE",
    "apply_tree",
    "dir_mode",
    "file_mode",
    "make_dir",
    "mkstemp",
    "open_new",
    "write_bytes",
    "write_text",
]


# --------------------------------------------------------------------------- scratch in TMPDIR

#: What moodump creates in TMPDIR while it runs: the throwaway servers' data directories
#: and the PostgreSQL client tools' password file. Their names carry the creating PID.
SCRATCH_KINDS = ("mariadb", "pg", "pgpass")
_SCRATCH_RE = re.compile(r"^moodump-(?:mariadb|pg|pgpass)-(\d+)-")
# The server PID files a throwaway server writes into its directory.
_SERVER_PID_FILES = ("mysqld.pid", "data/postmaster.pid")


def scratch_prefix(kind: str) -> str:
    """``moodump-KIND-PID-``: the name prefix of a scratch file or directory in TMPDIR
    (see :func:`sweep_scratch`)."""
    if kind not in SCRATCH_KINDS:
        raise ValueError(f"unknown scratch kind {kind!r}")
    return f"moodump-{kind}-{os.getpid()}-"


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's (or unreadable): leave it
    return True


def _server_pid_runs(entry: Path) -> bool:
    for name in _SERVER_PID_FILES:
        with contextlib.suppress(OSError, ValueError, IndexError):
            if _pid_runs(int((entry / name).read_text().split()[0])):
                return True
    return False


def sweep_scratch(directory: Path | None = None, *, min_age_s: float = 3600.0) -> list[Path]:
    """Remove the scratch that a killed moodump (SIGKILL, OOM, a pod killed after its
    grace period) left in ``directory`` (default: TMPDIR): a restored throwaway server's
    data directory (several times a backup's size) or the PostgreSQL password file.

    In the image TMPDIR is the verification volume, which outlives the pod: nothing else
    would ever remove them. An entry goes when the process that made it does not run
    (this process counts as not running: call it when it runs no dump, restore or
    verification, under the run lock), no server still runs in it, and nothing in it
    changed for ``min_age_s`` (another pod may share the volume). Returns what went.
    """
    where = Path(directory if directory is not None else tempfile.gettempdir())
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(where.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _SCRATCH_RE.match(entry.name)
        if not m or entry.is_symlink():
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and _pid_runs(pid):
            continue
        try:
            if entry.is_dir():
                if _server_pid_runs(entry):
                    continue
                newest = max([entry.stat().st_mtime] + [p.lstat().st_mtime for p in entry.rglob("*")])
            else:
                newest = entry.lstat().st_mtime
        except OSError:
            continue
        if now - newest < min_age_s:
            continue
        try:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:
            log.warning("cannot remove %s, left by a stopped moodump: %s", entry, exc.strerror)
            continue
        log.info("removed %s, left by a stopped moodump", entry)
        removed.append(entry)
    return removed
