"""Progress of a long operation (dump, restore, verify): counters, rates, ETA, a log ticker.

The engines report through one small interface, :class:`Progress`: ``start`` an
operation, name its ``phase`` (with the totals estimated for it), ``add`` rows and bytes
as they pass, say which table a worker thread is ``working`` on, ``finish``. Every
method is thread-safe (the dump's and the restore's workers call ``add`` concurrently)
and cheap (one lock, a few integer additions), so it can be called per block of rows.

Nothing is pushed to consumers: they poll :meth:`Progress.snapshot` at their own pace,
so a slow terminal never slows a worker. Two consumers exist: :func:`log_progress`
(one log line per ``MOODUMP_PROGRESS_INTERVAL``, structured fields for JSON logs) and
the terminal display of the CLI (``moodump.cli._progress``). The ETA math lives in
:class:`ProgressSnapshot`, a frozen value that is cheap to test.

Operations nest: ``verify`` restores into a scratch database with the same
:class:`Progress`; the inner ``start``/``finish`` then only count depth, and the inner
engine's phases become the ``step`` of the outer phase (``verify``, phase ``restore``,
step ``data``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("moodump.progress")


@dataclass(frozen=True)
class ProgressSnapshot:
    """One consistent reading of a :class:`Progress` (what a display or a log line shows).

    ``rows_total_est``/``bytes_total_est`` are estimates (information_schema for a dump,
    the manifest for a restore or a verify): done may pass them. Rates count only the
    current phase, so the minutes spent planning do not dilute them.
    """

    operation: str = ""
    database: str = ""
    phase: str = ""
    step: str = ""
    active: bool = False
    rows_done: int = 0
    rows_total_est: int = 0
    bytes_done: int = 0
    bytes_total_est: int = 0
    tables_done: int = 0
    tables_total: int = 0
    elapsed_s: float = 0.0
    phase_elapsed_s: float = 0.0
    phase_rows: int = 0  # rows done since the phase began
    phase_bytes: int = 0
    workers: tuple[tuple[int, str], ...] = ()  # (worker number from 1, what it works on)

    @property
    def rate_rows_s(self) -> float:
        return self.phase_rows / self.phase_elapsed_s if self.phase_elapsed_s > 0 else 0.0

    @property
    def rate_bytes_s(self) -> float:
        return self.phase_bytes / self.phase_elapsed_s if self.phase_elapsed_s > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """Share done (0..1) by rows, else by bytes; None when there is no estimate."""
        if self.rows_total_est > 0:
            return min(1.0, self.rows_done / self.rows_total_est)
        if self.bytes_total_est > 0:
            return min(1.0, self.bytes_done / self.bytes_total_est)
        return None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the phase's rate; None while unknown.

        Unknown: no estimate, nothing done yet in this phase, or the estimate already
        passed (information_schema's row counts of InnoDB tables are approximate; a
        dump past its estimate is nearly done, but how nearly is not known). Exactly
        at the estimate (a restore's counts come from the manifest): 0.
        """
        if self.rows_total_est > 0:
            left, rate = self.rows_total_est - self.rows_done, self.rate_rows_s
        elif self.bytes_total_est > 0:
            left, rate = self.bytes_total_est - self.bytes_done, self.rate_bytes_s
        else:
            return None
        if left == 0:
            return 0.0
        if left < 0 or rate <= 0:
            return None
        return left / rate

    def fields(self) -> dict[str, Any]:
        """The structured fields of a progress log line (JSON-ready)."""
        frac = self.fraction
        eta = self.eta_s
        return {
            "operation": self.operation,
            "database": self.database,
            "phase": self.phase,
            "step": self.step,
            "rows_done": self.rows_done,
            "rows_total_est": self.rows_total_est,
            "bytes_done": self.bytes_done,
            "bytes_total_est": self.bytes_total_est,
            "tables_done": self.tables_done,
            "tables_total": self.tables_total,
            "percent": round(frac * 100, 1) if frac is not None else None,
            "rate_rows_s": round(self.rate_rows_s, 1),
            "rate_bytes_s": round(self.rate_bytes_s, 1),
            "eta_s": round(eta, 1) if eta is not None else None,
            "elapsed_s": round(self.elapsed_s, 1),
            "working_on": [what for _, what in self.workers if what],
        }

    def summary(self) -> str:
        """``dump moodle: data 42.0%, 1,234/2,938 rows, 12.0 MiB, 800 rows/s, ETA 0:02``."""
        where = self.phase + (f"/{self.step}" if self.step else "")
        frac = self.fraction
        parts = [f"{self.operation} {self.database}: {where}".strip()]
        if frac is not None:
            parts.append(f"{frac * 100:.1f}%")
        total = f"/{self.rows_total_est:,}" if self.rows_total_est else ""
        parts.append(f"{self.rows_done:,}{total} rows")
        parts.append(human_bytes(self.bytes_done))
        parts.append(f"{self.rate_rows_s:,.0f} rows/s")
        parts.append(f"ETA {human_duration(self.eta_s)}")
        return ", ".join(parts)


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def human_duration(s: float | None) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``; None -> ``?`` (not known)."""
    if s is None:
        return "?"
    s = int(max(0, s) + 0.5)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """The counters of one operation at a time, fed by engines, read by consumers.

    One object can serve several operations in turn (``moodump run`` backs up and
    verifies database after database): :meth:`start` resets it. ``clock`` is
    injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._depth = 0
        self._snap = ProgressSnapshot()
        self._t0 = clock()
        self._phase_t0 = self._t0
        self._rows0 = 0
        self._bytes0 = 0
        self._rows = 0
        self._bytes = 0
        self._tables = 0
        self._slots: dict[int, int] = {}  # thread ident -> worker number
        self._work: dict[int, str] = {}  # worker number -> what it works on
        #: Called (outside the lock) after each phase change: a display redraws at once,
        #: so even a phase shorter than its refresh interval is seen.
        self.on_phase: Callable[[], None] | None = None

    # -- engine side --------------------------------------------------------------------
    def start(self, operation: str, database: str) -> None:
        """Begin an operation (or, inside a running one, count one nesting level)."""
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            now = self._clock()
            self._t0 = self._phase_t0 = now
            self._rows = self._bytes = self._tables = self._rows0 = self._bytes0 = 0
            self._slots.clear()
            self._work.clear()
            self._snap = ProgressSnapshot(operation=operation, database=database, active=True)

    def phase(
        self,
        name: str,
        *,
        rows_total: int | None = None,
        bytes_total: int | None = None,
        tables_total: int | None = None,
        rows_done: int | None = None,
        bytes_done: int | None = None,
        tables_done: int | None = None,
    ) -> None:
        """Enter phase ``name``; the totals given replace the estimates, the ``*_done``
        given replace the counts (a phase that counts from zero, or from what was done
        already).

        Inside a nested operation the name is the outer phase's ``step`` instead.
        """
        with self._lock:
            s = self._snap
            changes: dict[str, Any] = (
                {"step": name} if self._depth > 1 else {"phase": name, "step": ""}
            )
            if rows_done is not None:
                self._rows = rows_done
            if bytes_done is not None:
                self._bytes = bytes_done
            if tables_done is not None:
                self._tables = tables_done
            # The rate counts from here: a phase's rate is not diluted by the last one.
            self._rows0, self._bytes0 = self._rows, self._bytes
            self._phase_t0 = self._clock()
            if rows_total is not None:
                changes["rows_total_est"] = max(0, rows_total)
            if bytes_total is not None:
                changes["bytes_total_est"] = max(0, bytes_total)
            if tables_total is not None:
                changes["tables_total"] = max(0, tables_total)
            self._snap = _replace(s, changes)
        if self.on_phase is not None:
            self.on_phase()

    def add(self, rows: int = 0, nbytes: int = 0) -> None:
        """Count ``rows`` and ``nbytes`` more (negative undoes a rolled-back part)."""
        with self._lock:
            self._rows += rows
            self._bytes += nbytes

    def table_done(self, n: int = 1) -> None:
        with self._lock:
            self._tables += n

    def working(self, what: str) -> None:
        """The calling thread now works on ``what`` (a table name); ``""``: idle."""
        ident = threading.get_ident()
        with self._lock:
            slot = self._slots.get(ident)
            if slot is None:
                slot = self._slots[ident] = len(self._slots) + 1
            self._work[slot] = what

    def finish(self) -> None:
        """End the operation (or one nesting level of it)."""
        with self._lock:
            self._depth = max(0, self._depth - 1)
            if self._depth == 0:
                self._snap = self._read(active=False)
                self._work.clear()

    # -- consumer side ------------------------------------------------------------------
    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            if not self._snap.active:
                return self._snap
            return self._read(active=True)

    def _read(self, *, active: bool) -> ProgressSnapshot:
        now = self._clock()
        return _replace(
            self._snap,
            {
                "active": active,
                "rows_done": self._rows,
                "bytes_done": self._bytes,
                "tables_done": self._tables,
                "elapsed_s": now - self._t0,
                "phase_elapsed_s": now - self._phase_t0,
                "phase_rows": self._rows - self._rows0,
                "phase_bytes": self._bytes - self._bytes0,
                "workers": tuple(sorted(self._work.items())),
            },
        )

    @contextmanager
    def operation(self, operation: str, database: str) -> Iterator[Progress]:
        """``with progress.operation("dump", db):`` start ... finish, also on errors."""
        self.start(operation, database)
        try:
            yield self
        finally:
            self.finish()


def _replace(s: ProgressSnapshot, changes: dict[str, Any]) -> ProgressSnapshot:
    values = {**s.__dict__, **changes}
    return ProgressSnapshot(**values)


@contextmanager
def log_progress(
    progress: Progress, interval: float, logger: logging.Logger | None = None
) -> Iterator[Progress]:
    """Log one progress line every ``interval`` seconds while an operation runs.

    The line is INFO on ``moodump.progress``: a readable message, and the fields of
    :meth:`ProgressSnapshot.fields` as ``extra`` (top-level keys of a JSON log line).
    ``interval`` <= 0 logs nothing. Nothing is logged while no operation is active (a
    ``moodump run`` between databases).
    """
    if interval <= 0:
        yield progress
        return
    out = logger or log
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            snap = progress.snapshot()
            if snap.active:
                out.info("progress: %s", snap.summary(), extra=snap.fields())

    th = threading.Thread(target=tick, name="moodump-progress-log", daemon=True)
    th.start()
    try:
        yield progress
    finally:
        stop.set()
        th.join()


__all__ = [
    "Progress",
    "ProgressSnapshot",
    "human_bytes",
    "human_duration",
    "log_progress",
]
