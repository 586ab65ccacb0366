"""The workers of a PostgreSQL restore: one queue of data files and index builds
(:class:`JobQueue`, in the order :mod:`moodump.restore.pg_plan` sets) and the threads
that work it, each on a session of its own (:func:`run_workers`).

What a job does (a ``COPY``, an entry's SQL) is the engine's
(:mod:`moodump.restore.pg`); this module knows only tables, jobs and threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from moodump.errors import Interrupted
from moodump.restore import pg_plan
from moodump.restore.pg_plan import Entry, Job


class JobQueue:
    """Data files and index and constraint builds on one queue, shared by the workers.

    A data job is ``("data", (table, item))``. A table's indexes and constraints
    (``waiting``) join the front of the queue when its last file is in, widest key first;
    ``after``'s (tables with no file left to load) are queued behind the files from the
    start. ``size``: each table's data bytes (a small table's entries are one job);
    ``table_of``: the table of an entry's SQL. Thread-safe."""

    def __init__(
        self, files: list[tuple[str, Any]], waiting: dict[str, list[Entry]], after: list[Entry],
        *, size: dict[str, int], table_of: Callable[[str], str | None],
        stop: threading.Event, on_table_done: Callable[[], None],
    ) -> None:  # fmt: skip
        self.size, self.table_of, self.stop, self.on_table_done = size, table_of, stop, on_table_done
        self.waiting = waiting
        self.locks: dict[int, tuple[str | None, str]] = {}  # id(job) -> its lock_of
        self.queue: list[Job] = self._jobs([], [("data", f) for f in files])
        self.queue += self._jobs(after)
        self.left: dict[str, int] = {}  # table -> its files not loaded yet
        for table, _item in files:
            self.left[table] = self.left.get(table, 0) + 1
        self.held: dict[str, list[str]] = {}  # table -> what the running jobs hold on it
        self.busy = 0
        self.cond = threading.Condition()

    def _jobs(self, entries: list[Entry], jobs: list[Job] | None = None) -> list[Job]:
        """Entries (or ``jobs``) as jobs, their locks noted."""
        out = pg_plan.jobs_of(entries, self.size, self.table_of) if jobs is None else jobs
        for job in out:
            self.locks[id(job)] = pg_plan.lock_of(job, self.table_of)
        return out

    def _lock(self, job: Job) -> tuple[str | None, str]:
        return self.locks[id(job)]

    @property
    def unfinished(self) -> bool:
        return bool(self.queue or self.busy)

    def next(self) -> Job | None:
        """The next job (waiting while every job left must wait for a running one, or
        the queue is empty and a running job may still add to it); None when all is
        done, or on stop."""
        with self.cond:
            while True:
                if self.stop.is_set():
                    return None
                at = pg_plan.pick(self.queue, self.held, self._lock) if self.queue else None
                if at is not None:
                    break
                if not self.busy:
                    if not self.queue:
                        return None
                    at = 0  # (nothing runs: nothing to wait for)
                    break
                self.cond.wait(0.5)
            self.busy += 1
            job = self.queue.pop(at)
            table, mode = self._lock(job)
            if table is not None:
                self.held.setdefault(table, []).append(mode)
            return job

    def done(self, job: Job) -> None:
        """``job`` ran: a table whose last file it was gets its index builds queued first."""
        if job[0] != "data":
            return
        table = job[1][0]
        with self.cond:
            self.left[table] -= 1
            if self.left[table] == 0:
                self.on_table_done()
                self.queue[:0] = self._jobs(pg_plan.heaviest_first(self.waiting.pop(table, [])))
                self.cond.notify_all()

    def release(self, job: Job) -> None:
        """``job`` ended, whether it ran or failed."""
        with self.cond:
            self.busy -= 1
            table, mode = self.locks.pop(id(job))
            if table is not None:
                self.held[table].remove(mode)
            self.cond.notify_all()

    def work(self, conn: Any, run: Callable[[Any, Job], None]) -> None:
        """A worker's loop: ``run(conn, job)`` for each job it takes, until none is left."""
        while (job := self.next()) is not None:
            try:
                run(conn, job)
                self.done(job)
            finally:
                self.release(job)


def run_workers(
    items: list[Any], fn: Callable[[Any, Any], None], *, threads: int, stop: threading.Event,
    session: Callable[[int], AbstractContextManager[Any]],
) -> None:  # fmt: skip
    """``fn(conn, item)`` for every item, on up to ``threads`` workers, each on a session
    of its own (``session(n)``: n is how many workers there are). The first error stops
    every worker (``stop``) and is raised; an interruption with items left raises
    :class:`Interrupted`."""
    queue = list(items)
    qlock = threading.Lock()
    errors: list[BaseException] = []
    n = max(1, min(threads, len(items)))

    def work() -> None:
        try:
            with session(n) as conn:
                while not stop.is_set():
                    with qlock:
                        if not queue:
                            return
                        item = queue.pop(0)
                    fn(conn, item)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(n if items else 0)]
    for th in workers:
        th.start()
    for th in workers:
        while th.is_alive():
            th.join(0.2)
    if errors:
        real = [e for e in errors if not isinstance(e, Interrupted)]
        raise (real or errors)[0]
    if stop.is_set() and queue:
        raise Interrupted("restore interrupted", hint="continue it with --resume")
