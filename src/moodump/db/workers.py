"""Run worker threads and survive Ctrl-C/SIGTERM without pulling resources from under them.

A ``KeyboardInterrupt`` lands in the main thread, possibly inside ``Thread.join``; if the
caller then closed connections or compressors that a worker is still using, the C code
under them can crash. So the main thread only ever waits on per-worker *done* events: on
an interrupt it sets ``stop``, calls ``on_interrupt`` (which kills the workers' running
queries so they notice at once) and keeps waiting for the workers to finish. Only then
does the caller clean up.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from moodump.db.connection import Connection, ConnSettings, connect

T = TypeVar("T")


@dataclass
class PoolResult:
    errors: list[BaseException] = field(default_factory=list)
    interrupted: bool = False
    abandoned: bool = False  # workers still running after the grace period

    @property
    def finished(self) -> bool:
        return not self.abandoned


def run_pool(
    jobs: list[Callable[[], None]],
    stop: threading.Event,
    on_interrupt: Callable[[], None],
    *,
    name: str = "moodump-worker",
    grace_s: float = 120.0,
) -> PoolResult:
    """Run each job in its own thread until all return; see the module docstring."""
    result = PoolResult()
    done = [threading.Event() for _ in jobs]

    def wrap(job: Callable[[], None], ev: threading.Event) -> None:
        try:
            job()
        except BaseException as exc:
            result.errors.append(exc)
            stop.set()
        finally:
            ev.set()

    threads = [
        threading.Thread(target=wrap, args=(job, ev), name=f"{name}-{i}", daemon=True)
        for i, (job, ev) in enumerate(zip(jobs, done, strict=True))
    ]
    for th in threads:
        th.start()
    deadline: float | None = None
    killed = False
    while not all(ev.is_set() for ev in done):
        try:
            if deadline is not None and time.monotonic() > deadline:
                result.abandoned = True
                break
            if stop.is_set() and not killed:
                # Stopped from outside (a SIGTERM handler, the run's maximum run time) or
                # by a failed worker: kill the running queries too, so that a worker
                # waiting for a lock or a silent server returns now, not at its next batch.
                killed = True
                with contextlib.suppress(Exception):
                    on_interrupt()
            for ev in done:
                ev.wait(0.1)
        except KeyboardInterrupt:
            result.interrupted = True
            stop.set()
            if deadline is None:
                deadline = time.monotonic() + grace_s
            killed = True
            with contextlib.suppress(BaseException):
                on_interrupt()
    return result


def run_interruptible(
    fn: Callable[[], T], stop: threading.Event, on_interrupt: Callable[[], None]
) -> tuple[T | None, PoolResult]:
    """Run ``fn`` in a thread so that Ctrl-C/SIGTERM are handled at once.

    The main thread only waits; while ``fn`` blocks inside a C call (a lock wait, a long
    query) a signal still reaches Python, which sets ``stop`` and calls ``on_interrupt``
    (kill the running queries) and then waits for ``fn`` to return. Returns ``fn``'s value
    (None if it raised) and the pool result with its error, if any.
    """
    box: list[T] = []
    pool = run_pool([lambda: box.append(fn())], stop, on_interrupt, name="moodump-main")
    return (box[0] if box else None), pool


class LiveConnections:
    """The connections of one dump or restore, so that an interrupt can reach them.

    ``open`` registers each new connection; ``kill`` runs ``KILL QUERY`` for every one
    still open, from a separate connection, so that a worker blocked in a long statement
    or row fetch returns at once with an error it then reports as the interruption.
    """

    def __init__(self, settings: ConnSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._conns: list[Connection] = []

    def open(self, settings: ConnSettings, **kwargs: Any) -> Connection:
        conn = connect(settings, **kwargs)
        with self._lock:
            self._conns.append(conn)
        return conn

    def kill(self) -> None:
        with self._lock:
            live = [c for c in self._conns if not c.closed]
        ids = []
        for c in live:
            with contextlib.suppress(Exception):
                ids.append(c.thread_id())
        with contextlib.suppress(Exception), connect(self.settings) as killer:
            for tid in ids:
                with contextlib.suppress(Exception):
                    killer.execute(f"KILL QUERY {tid}")
