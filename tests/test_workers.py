"""The worker pool and interrupt handling (moodump.db.workers).

Interrupts are real: a helper thread sends SIGINT to the main thread once the main thread
is waiting inside the pool, exactly where a Ctrl-C or SIGTERM lands during a dump. The
KILL QUERY tests use the rig's MariaDB server.
"""

from __future__ import annotations

import inspect
import signal
import sys
import threading
import time
from collections.abc import Callable

import pytest

from moodump.db import ConnSettings, connect
from moodump.db.workers import LiveConnections, PoolResult, run_interruptible, run_pool
from moodump.errors import ServerError

# Safety nets only: a broken pool fails these tests instead of hanging the suite. No
# assertion depends on how long anything took.
HANG = 60.0

needs_sigint = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs the main thread with Python's default SIGINT handler",
)


def _main_is_waiting_in_pool() -> bool:
    """True when the main thread is blocked in run_pool's wait for its workers.

    Not while it is still starting threads (``Thread.start`` waits too): a signal there
    is the start-up window tested separately below.
    """
    frame = sys._current_frames().get(threading.main_thread().ident)
    child = None
    while frame is not None:
        if frame.f_code is run_pool.__code__:
            return child is not None and child.f_code.co_name == "wait"
        child, frame = frame, frame.f_back
    return False


def _ctrl_c(after: Callable[[], bool] = lambda: True) -> None:
    """Send SIGINT to the main thread once ``after()`` holds and it waits in the pool."""
    deadline = time.monotonic() + HANG
    while not (after() and _main_is_waiting_in_pool()):
        if time.monotonic() > deadline:
            raise RuntimeError("the main thread never waited in run_pool")
        time.sleep(0.001)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def _in_thread(fn: Callable[[], None]) -> threading.Thread:
    th = threading.Thread(target=fn, daemon=True)
    th.start()
    return th


# --------------------------------------------------------------------------- run_pool


def test_jobs_run_in_parallel_each_in_its_own_named_thread():
    n = 4
    barrier = threading.Barrier(n, timeout=HANG)  # breaks unless all n run at once
    seen: dict[int, str] = {}

    def job(i: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            seen[i] = threading.current_thread().name

        return run

    stop = threading.Event()
    result = run_pool([job(i) for i in range(n)], stop, lambda: None, name="t-pool")
    assert result == PoolResult() and result.finished
    assert seen == {i: f"t-pool-{i}" for i in range(n)}  # job i ran in thread i
    assert not stop.is_set()


def test_empty_pool_returns_at_once():
    assert run_pool([], threading.Event(), lambda: None) == PoolResult()


def test_first_failure_stops_the_other_jobs_and_comes_first():
    stop = threading.Event()
    boom = ValueError("table mdl_user: disk full")
    observed = []

    def failing() -> None:
        raise boom

    def waiting() -> None:
        # a well-behaved worker checks stop and gives up with its own error
        observed.append(stop.wait(HANG))
        raise RuntimeError("stopped because another worker failed")

    def quiet() -> None:
        observed.append(stop.wait(HANG))

    result = run_pool([waiting, failing, quiet], stop, lambda: None)
    assert stop.is_set() and observed == [True, True]
    assert result.errors[0] is boom  # errors are in the order they happened
    assert [type(e) for e in result.errors] == [ValueError, RuntimeError]
    assert not result.interrupted and result.finished


def test_base_exceptions_in_workers_are_recorded_not_raised():
    stop = threading.Event()

    def exits() -> None:
        raise SystemExit(3)

    def interrupted() -> None:
        raise KeyboardInterrupt

    result = run_pool([exits, interrupted], stop, lambda: None)
    assert sorted(type(e).__name__ for e in result.errors) == ["KeyboardInterrupt", "SystemExit"]
    assert stop.is_set() and not result.interrupted


# --------------------------------------------------------------------------- run_interruptible


def test_run_interruptible_returns_the_value():
    value, pool = run_interruptible(lambda: {"rows": 42}, threading.Event(), lambda: None)
    assert value == {"rows": 42} and pool == PoolResult()


def test_run_interruptible_reports_the_error_instead_of_raising():
    def fails() -> int:
        raise ServerError("lost connection")

    stop = threading.Event()
    value, pool = run_interruptible(fails, stop, lambda: None)
    assert value is None
    assert [str(e) for e in pool.errors] == ["lost connection"]
    assert stop.is_set()


# --------------------------------------------------------------------------- interrupts


@needs_sigint
def test_ctrl_c_sets_stop_calls_on_interrupt_and_waits_for_the_workers():
    stop = threading.Event()
    kills = []
    cleaned = []

    def worker(i: int) -> Callable[[], None]:
        def run() -> None:
            if i == 0:
                _in_thread(_ctrl_c)
            stop.wait(HANG)  # a worker blocked until told to stop
            cleaned.append(i)  # its own cleanup, which the main thread must wait for

        return run

    result = run_pool([worker(i) for i in range(3)], stop, lambda: kills.append(1))
    assert result.interrupted and result.finished and result.errors == []
    assert stop.is_set() and kills == [1]
    assert sorted(cleaned) == [0, 1, 2]  # nobody pulled resources from under a worker


@needs_sigint
def test_a_second_ctrl_c_still_waits_for_the_workers():
    stop = threading.Event()
    kills: list[int] = []
    release = threading.Event()
    finished = []

    def worker() -> None:
        _in_thread(_ctrl_c)
        stop.wait(HANG)
        _ctrl_c(after=lambda: len(kills) == 1)  # the impatient operator presses again
        release.wait(HANG)
        finished.append(True)

    def second_kill() -> None:
        kills.append(len(kills))
        if len(kills) == 2:
            release.set()

    result = run_pool([worker], stop, second_kill)
    assert result.interrupted and result.finished and kills == [0, 1]
    assert finished == [True]


@needs_sigint
def test_a_failing_on_interrupt_does_not_break_the_wait():
    stop = threading.Event()
    done = []

    def worker() -> None:
        _in_thread(_ctrl_c)
        stop.wait(HANG)
        done.append(True)

    def broken_kill() -> None:
        raise RuntimeError("cannot reach the server to kill queries")

    result = run_pool([worker], stop, broken_kill)
    assert result.interrupted and result.finished and done == [True]


@needs_sigint
def test_workers_that_ignore_stop_are_abandoned_after_the_grace_period():
    stop = threading.Event()
    release = threading.Event()
    ended = threading.Event()

    def stubborn() -> None:
        _in_thread(_ctrl_c)
        release.wait(HANG)  # ignores stop (a C call that never returns)
        ended.set()

    result = run_pool([stubborn], stop, lambda: None, grace_s=0.0)
    assert result.interrupted and result.abandoned and not result.finished
    assert not ended.is_set()  # returned without it
    release.set()
    assert ended.wait(HANG)


@needs_sigint
def test_run_interruptible_survives_ctrl_c_and_returns_what_fn_returned():
    stop = threading.Event()

    def fn() -> str:
        _in_thread(_ctrl_c)
        stop.wait(HANG)
        return "cancelled cleanly"

    value, pool = run_interruptible(fn, stop, lambda: None)
    assert value == "cancelled cleanly"
    assert pool.interrupted and pool.finished and pool.errors == []


def _line_of(fn: Callable[..., object], needle: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if needle in line)


@needs_sigint
@pytest.mark.parametrize(
    "needle", ["th.start()", "while not all("], ids=["starting threads", "loop condition"]
)
def test_ctrl_c_anywhere_in_the_pool_is_handled(needle):
    """Deliver SIGINT's KeyboardInterrupt on one given line (as the interpreter would)."""
    line = _line_of(run_pool, needle)
    hits = 0

    def local(frame, event, arg):
        nonlocal hits
        if event == "line" and frame.f_lineno == line:
            hits += 1
            if hits == 2:  # the second thread's start / the second check of the workers
                signal.default_int_handler(signal.SIGINT, frame)
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code is run_pool.__code__ else None

    stop = threading.Event()
    started: list[int] = []
    ended: list[int] = []

    def worker() -> None:
        started.append(1)
        stop.wait(HANG)
        ended.append(1)

    escaped = False
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = run_pool([worker, worker], stop, lambda: None)
    except KeyboardInterrupt:
        escaped = True
    finally:
        sys.settrace(previous)
        stop.set()
    deadline = time.monotonic() + HANG
    while len(ended) < len(started) and time.monotonic() < deadline:  # let workers end
        time.sleep(0.001)
    assert hits == 2, "the line was not reached twice"
    assert not escaped, "KeyboardInterrupt escaped run_pool while workers were running"
    assert result.interrupted and ended == [1, 1]


def _sigterm(after: Callable[[], bool] = lambda: True) -> None:
    """Send SIGTERM to the main thread once it waits in the pool (as ``kill`` would)."""
    deadline = time.monotonic() + HANG
    while not (after() and _main_is_waiting_in_pool()):
        if time.monotonic() > deadline:
            raise RuntimeError("the main thread never waited in run_pool")
        time.sleep(0.001)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)


@pytest.fixture()
def sigterm_handler():
    """Install a SIGTERM handler for one test; yield the list of signals it saw."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    seen: list[int] = []
    raising = {"on": True}

    def handler(signum, frame):
        seen.append(signum)
        if raising["on"]:
            raise KeyboardInterrupt  # what the CLI's SIGTERM handler does

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield seen, raising, handler
    finally:
        signal.signal(signal.SIGTERM, previous)


@needs_sigint
def test_a_sigterm_handler_that_raises_interrupts_the_pool(sigterm_handler):
    seen, _, handler = sigterm_handler
    stop = threading.Event()
    kills: list[int] = []

    def worker(i: int) -> Callable[[], None]:
        def run() -> None:
            if i == 0:
                _in_thread(_sigterm)
            stop.wait(HANG)

        return run

    result = run_pool([worker(0), worker(1)], stop, lambda: kills.append(1))
    assert seen == [signal.SIGTERM] and kills == [1]
    assert result.interrupted and result.finished and result.errors == []
    # the handlers are the caller's again
    assert signal.getsignal(signal.SIGTERM) is handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@needs_sigint
def test_a_sigterm_handler_that_does_not_raise_leaves_the_pool_running(sigterm_handler):
    """`moodump run`'s first SIGTERM only sets its own stop flag: the pool goes on."""
    seen, raising, _ = sigterm_handler
    raising["on"] = False
    release = threading.Event()

    def worker() -> None:
        _in_thread(lambda: (_sigterm(), time.sleep(0.3), release.set()))
        release.wait(HANG)

    stop = threading.Event()
    result = run_pool([worker], stop, lambda: None)
    assert seen == [signal.SIGTERM]
    assert result == PoolResult() and not stop.is_set()


def test_a_pool_outside_the_main_thread_leaves_signal_handlers_alone():
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    during: list[object] = []
    out: list[PoolResult] = []

    def job() -> None:
        during.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))

    th = _in_thread(lambda: out.append(run_pool([job], threading.Event(), lambda: None)))
    th.join(HANG)
    assert out == [PoolResult()] and during == [before]


# --------------------------------------------------------------------------- LiveConnections (server)


def _wait_for_query(settings: ConnSettings, thread_id: int, text: bytes) -> None:
    """Block until the server shows ``text`` running on connection ``thread_id``."""
    deadline = time.monotonic() + HANG
    with connect(settings) as mon:
        while True:
            info = mon.scalar(
                f"SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = {thread_id}"
            )
            if info is not None and text in info:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"query {text!r} never started on {thread_id}")
            time.sleep(0.005)


def _sleep_in_thread(conn, out: list[object]) -> threading.Thread:
    """Run SELECT SLEEP(30) on ``conn`` in a thread; its rows or error go to ``out``."""

    def run() -> None:
        try:
            out.append(conn.query("SELECT SLEEP(30)"))
        except Exception as exc:
            out.append(exc)

    return _in_thread(run)


@pytest.mark.db
def test_kill_query_stops_a_running_sleep(root_settings):
    live = LiveConnections(root_settings)
    conn = live.open(root_settings)
    try:
        out: list[object] = []
        th = _sleep_in_thread(conn, out)
        _wait_for_query(root_settings, conn.thread_id(), b"SLEEP(30)")
        live.kill()
        th.join(HANG)
        (outcome,) = out
        # SLEEP(30) finishing normally would return [(b'0',)]; killed, it is an error
        assert isinstance(outcome, ServerError), outcome
        assert outcome.__cause__.errno == 1317  # ER_QUERY_INTERRUPTED
        assert outcome.exit_code == 6
        # KILL QUERY, not KILL CONNECTION: the session is still usable
        assert conn.scalar("SELECT 1") == b"1"
    finally:
        conn.close()


@pytest.mark.db
@needs_sigint
def test_ctrl_c_kills_the_running_query_through_run_interruptible(root_settings):
    """The dump's real chain: Ctrl-C -> stop + live.kill() -> the blocked query returns."""
    live = LiveConnections(root_settings)
    conn = live.open(root_settings)
    try:

        def fn() -> object:
            def interrupt() -> None:
                _wait_for_query(root_settings, conn.thread_id(), b"SLEEP(30)")
                _ctrl_c()

            _in_thread(interrupt)
            return conn.query("SELECT SLEEP(30)")

        stop = threading.Event()
        value, pool = run_interruptible(fn, stop, live.kill)
        assert value is None and pool.interrupted and pool.finished and stop.is_set()
        (err,) = pool.errors
        assert isinstance(err, ServerError) and err.__cause__.errno == 1317
    finally:
        conn.close()


@pytest.mark.db
def test_kill_skips_closed_connections_and_never_raises(root_settings):
    live = LiveConnections(root_settings)
    closed = live.open(root_settings)
    idle = live.open(root_settings)
    closed.close()
    live.kill()  # nothing running, one closed: no error
    assert idle.scalar("SELECT 1") == b"1"
    # the killer cannot even connect: still no error (it runs inside a signal handler path)
    unreachable = LiveConnections(ConnSettings(host="127.0.0.1", port=1, connect_timeout=2))
    other = unreachable.open(root_settings)
    unreachable.kill()
    assert other.scalar("SELECT 1") == b"1"
    for c in (idle, other):
        c.close()
