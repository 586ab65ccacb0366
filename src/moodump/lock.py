"""A non-blocking run lock, so that two moodump runs never overlap.

:class:`RunLock` takes an exclusive ``flock(2)`` on a lock file. The kernel releases it
when the holder's file descriptor closes, which includes the holder dying by SIGKILL or
OOM: there is no stale-lock cleanup to get wrong, and a lock file left on disk by a dead
run is harmless (its content is only informational). The file is never deleted, because
deleting a lock file that another process has open lets two processes "hold" two
different files of the same name.

``flock`` locks belong to the open file description, not the process, so two
:class:`RunLock` objects on the same path also exclude each other inside one process.
On Linux NFS mounts (OpenShift ``netapp-file-backup`` volumes) ``flock`` is carried over
NFS byte-range locks and works between pods. Descriptors Python opens are not
inherited by child processes, so a server moodump starts cannot keep the lock alive.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from moodump.errors import LockBusy, StorageError


class RunLock:
    """Exclusive, non-blocking lock on ``path`` (a context manager).

    ``purpose`` is written into the lock file and shown to a run that finds the lock
    busy ("another moodump run --once holds ..."). Entering raises
    :class:`~moodump.errors.LockBusy` (exit code 10) naming the holder's PID when another
    process (or another RunLock object) holds it.
    """

    def __init__(self, path: Path | str, *, purpose: str = "run") -> None:
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise LockBusy; returns self."""
        if self._fd is not None:
            raise LockBusy(
                f"this process already holds {self.path}",
                hint="release the lock before taking it again (programming error)",
            )
        try:
            # Owner-only whatever the umask, also when an older run left it 0644.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StorageError(
                f"cannot open the lock file {self.path}: {exc.strerror}",
                hint="check that the directory exists and is writable by this user",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._busy() from None
            raise StorageError(
                f"cannot lock {self.path}: {exc.strerror}",
                hint="the file system may not support locks; put the lock file on local disk",
            ) from exc
        with contextlib.suppress(OSError):  # someone else's file: theirs to fix
            os.fchmod(fd, 0o600)
        self._fd = fd
        self._write_owner()
        return self

    def release(self) -> None:
        """Release the lock (idempotent). The file stays; its content is cleared."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # informational content only; the lock itself goes with the fd
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _write_owner(self) -> None:
        assert self._fd is not None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose}
        data = (json.dumps(owner) + "\n").encode()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        except OSError:
            pass  # a full disk must not stop the run; the lock is held regardless

    def _busy(self) -> LockBusy:
        owner = read_owner(self.path)
        pid = owner.get("pid")
        who = f"pid {pid}" if pid else "a process whose pid is not recorded yet"
        if owner.get("host") and owner.get("host") != socket.gethostname():
            who += f" on host {owner['host']}"
        doing = owner.get("purpose") or "run"
        check = f"ps -p {pid}" if pid else f"fuser {self.path}"
        return LockBusy(
            f"another moodump {doing} holds the lock {self.path} ({who})",
            hint=(
                f"wait for it to finish, or stop it if it hangs (check with: {check}); "
                "a lock held by a process that died is released automatically"
            ),
        )


def read_owner(path: Path | str) -> dict[str, str | int]:
    """What the lock file says about its holder (empty when unknown or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, (str, int))}


__all__ = ["RunLock", "read_owner"]
