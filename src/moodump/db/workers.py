"""Run worker threads and survive Ctrl-C/SIGTERM without pulling resources from under them.

A ``KeyboardInterrupt`` lands in the main thread, possibly inside ``Thread.join``; if the
caller then closed connections or compressors that a worker is still using, the C code
under them can crash. So the main thread only ever waits on per-worker *done* events: on
an interrupt it sets ``stop``, calls ``on_interrupt`` (which kills the workers' running
queries so they notice at once) and keeps waiting for the workers to finish. Only then
does the caller clean up.

The interrupt must not land anywhere in the pool's own bookkeeping either: inside
``Thread.start`` it would leave a thread that may or may not run, and between two checks
it would escape with the workers still running. So while the pool runs in the main
thread, SIGINT and SIGTERM are *recorded* (their handlers still run; a
``KeyboardInterrupt`` they raise becomes a flag the pool checks at least every 0.1 s),
and a ``KeyboardInterrupt`` raised by other means is caught around every step as well.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
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
    """Run each job in its own thread until all return; see the module docstring.

    Every job runs exactly once, also when the interrupt comes while the threads are
    being started: the late ones see ``stop`` set and return at once.
    """
    result = PoolResult()
    done = [threading.Event() for _ in jobs]
    signalled = threading.Event()  # an interrupt came (recorded or caught)

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
    started = 0  # threads[:started] were started
    killed = False
    with _interrupts_recorded(signalled):
        try:
            for th in threads:
                th.start()
                started += 1
            while not all(ev.is_set() for ev in done) and not signalled.is_set():
                if stop.is_set() and not killed:
                    # Stopped from outside (a SIGTERM handler, the run's maximum run time)
                    # or by a failed worker: kill the running queries too, so that a
                    # worker waiting for a lock or a silent server returns now, not at
                    # its next batch.
                    killed = True
                    with contextlib.suppress(Exception):
                        on_interrupt()
                for ev in done:
                    if signalled.is_set():
                        break
                    ev.wait(0.1)
        except KeyboardInterrupt:
            signalled.set()
        if not signalled.is_set():
            return result
        # Interrupted: stop every job, start those not started yet, and wait for all of
        # them within the grace period; each further interrupt repeats on_interrupt.
        result.interrupted = True
        deadline = time.monotonic() + grace_s
        while True:
            try:
                if signalled.is_set():
                    signalled.clear()
                    stop.set()
                    with contextlib.suppress(BaseException):
                        on_interrupt()
                while started < len(threads):
                    threads[started].start()
                    started += 1
                if all(ev.is_set() for ev in done):
                    return result
                if time.monotonic() > deadline:
                    result.abandoned = True
                    return result
                for ev in done:
                    if signalled.is_set():
                        break
                    ev.wait(0.1)
            except KeyboardInterrupt:
                signalled.set()


@contextlib.contextmanager
def _interrupts_recorded(signalled: threading.Event) -> Iterator[None]:
    """While the pool runs in the main thread, SIGINT and SIGTERM set ``signalled``.

    Their handlers still run (Python's, the CLI's for SIGTERM); a KeyboardInterrupt one
    raises is recorded instead of landing wherever the main thread happens to be. In
    any other thread nothing changes: signals are only ever handled in the main thread.
    """
    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any]] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(sig)
                if callable(handler):
                    previous[sig] = handler
                    with contextlib.suppress(ValueError):  # not the main interpreter
                        signal.signal(sig, functools.partial(_record, handler, signalled))
        yield
    finally:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError):
                signal.signal(sig, old)


def _record(
    handler: Callable[[int, FrameType | None], Any],
    signalled: threading.Event,
    signum: int,
    frame: FrameType | None,
) -> None:
    try:
        handler(signum, frame)
    except KeyboardInterrupt:
        signalled.set()


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

    def kill(self, *, connection: bool = False) -> None:
        """``KILL QUERY`` (or, with ``connection``, ``KILL CONNECTION``) every connection
        still open. A killed statement normally returns at once; ``connection`` is for one
        that does not (see :func:`moodump.restore.load._release_fifos`)."""
        with self._lock:
            live = [c for c in self._conns if not c.closed]
        ids = []
        for c in live:
            with contextlib.suppress(Exception):
                ids.append(c.thread_id())
        what = "CONNECTION" if connection else "QUERY"
        with contextlib.suppress(Exception), connect(self.settings) as killer:
            for tid in ids:
                with contextlib.suppress(Exception):
                    killer.execute(f"KILL {what} {tid}")
