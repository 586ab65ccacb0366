"""What keeps one database's run bounded and its messages fitting a scheduled run.

:class:`Deadline` is the maximum run time per database (MOODUMP_MAX_RUNTIME): a stop
event of its own, set when the cycle is stopped (SIGTERM) *or* when the time is up. The
dump watches it like any stop event and kills its running queries (``KILL QUERY``: a dump
waiting for a table lock, or a server that stopped answering, returns at once), publishes
nothing but its FAILED record, and the database fails with
:class:`~moodump.errors.RuntimeExceeded` (exit 14), which is notified like any failure.
Steps that cannot be cut short (a verification restore, an upload) are not started past
the deadline.

:func:`fit_hint` rewrites the next step of an error whose hint names a command-line flag
(``--host``, ``--lock-wait-timeout``): under ``moodump run`` there are no such flags, the
settings live in backup.conf and the environment.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from moodump.config import DatabaseSpec, host_env_prefix
from moodump.errors import (
    ConnectError,
    MoodumpError,
    RuntimeExceeded,
    SnapshotError,
)
from moodump.fsmodes import write_text
from moodump.manifest import MANIFEST_NAME, STATUS_FAILED

log = logging.getLogger(__name__)

# How often the watcher looks at the clock and the cycle's stop flag.
_POLL_S = 0.25


class _LinkedStop(threading.Event):
    """Set when set itself, or when ``outer`` is: the cycle's stop reaches a step at once
    (no watcher delay), while setting this one (a worker's failure, the deadline) leaves
    the cycle's alone. ``wait`` wakes on this event's own ``set`` only."""

    def __init__(self, outer: threading.Event) -> None:
        super().__init__()
        self._outer = outer

    def is_set(self) -> bool:
        return super().is_set() or self._outer.is_set()


class Deadline:
    """A stop event for one database: the cycle's ``outer`` stop, or ``limit`` passed.

    Use as a context manager; ``stop`` is what the steps watch, ``expired`` says whether
    the time ran out (rather than the cycle being stopped).
    """

    def __init__(self, outer: threading.Event, limit: timedelta, what: str) -> None:
        self.outer = outer
        self.limit = limit
        self.what = what
        self.stop: threading.Event = _LinkedStop(outer)
        self.expired = False
        self._done = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="moodump-deadline", daemon=True)

    def start(self) -> Deadline:
        """Start the clock (and the watcher thread); returns self."""
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop watching (the database's steps are over)."""
        self._done.set()
        if self._thread.ident is not None:
            self._thread.join(5)

    def __enter__(self) -> Deadline:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _watch(self) -> None:
        end = self._t0 + self.limit.total_seconds()
        while not self._done.wait(_POLL_S):
            if self.outer.is_set():
                return  # the stop reaches the steps through _LinkedStop
            if time.monotonic() >= end:
                self.expired = True
                log.error(
                    "%s has run for %s, its maximum run time (MOODUMP_MAX_RUNTIME): stopping it",
                    self.what,
                    self.limit,
                )
                self.stop.set()
                return

    def error(self, step: str, cause: MoodumpError | None = None) -> RuntimeExceeded:
        detail = f" ({cause.message})" if cause is not None else ""
        return RuntimeExceeded(
            f"{self.what} ran longer than its maximum run time of {self.limit} "
            f"(MOODUMP_MAX_RUNTIME) during {step}: its queries were killed and nothing was "
            f"published{detail}",
            hint="find what blocked it (a table locked by another session, a hung server); "
            "raise MOODUMP_MAX_RUNTIME if the backup really needs longer",
        )

    def check(self, step: str) -> None:
        """Raise :class:`RuntimeExceeded` before ``step`` when the time is up."""
        if self.expired:
            raise self.error(f"the wait before {step}")

    def explain(self, exc: MoodumpError, step: str) -> MoodumpError:
        """``exc`` as the run saw it: past the deadline, whatever the killed queries
        raised becomes :class:`RuntimeExceeded`."""
        if self.expired and not isinstance(exc, RuntimeExceeded):
            return self.error(step, exc)
        return exc


def record_error(path: Path | None, message: str) -> None:
    """Put ``message`` in the FAILED record at ``path`` (best effort), so listings and
    ``moodump check`` show why the backup failed rather than what the killed query said."""
    if path is None:
        return
    manifest = path / MANIFEST_NAME
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        if doc.get("status") != STATUS_FAILED:
            return
        doc["error"] = message
        write_text(manifest, json.dumps(doc, indent=1))
    except (OSError, ValueError) as exc:
        log.debug("could not update %s: %s", manifest, exc)


def fit_hint(exc: MoodumpError, spec: DatabaseSpec) -> MoodumpError:
    """``exc`` with a next step that fits ``moodump run`` when its hint names a flag."""
    if not exc.hint or "--" not in exc.hint:
        return exc
    prefix = host_env_prefix(spec.host)
    if isinstance(exc, ConnectError):
        if "password" in exc.hint or "user" in exc.hint:
            exc.hint = (
                f"check {prefix}_USER and {prefix}_PASSWORD (or DATABASE_USER and "
                "DATABASE_PASSWORD, or MYSQL_DEFAULTS_FILE)"
            )
        else:
            exc.hint = (
                f"check the host and port of '{spec.spec}' in backup.conf (BACKUP_CONF) and "
                "that the server is running; MOODUMP_CONNECT_TIMEOUT / MOODUMP_READ_TIMEOUT "
                "bound the waits"
            )
    elif isinstance(exc, SnapshotError) or "lock-wait-timeout" in exc.hint:
        exc.hint = "a long transaction or a table lock held by another session; run again later"
    else:
        # "GRANT ... to the account, or pass --no-objects ...": keep what applies to a run.
        head = exc.hint[: exc.hint.index("--")]
        cut = max(head.rfind(", or "), head.rfind(" or "), head.rfind("; "))
        kept = exc.hint[:cut].rstrip(" ,;") if cut > 0 else ""
        exc.hint = (
            kept or "see docs/scheduling.md (settings come from backup.conf and the environment)"
        )
    return exc
