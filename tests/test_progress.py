"""The progress model (counters, rates, ETA), its log ticker and the terminal rendering.

Pure and cheap: a fake clock drives the model; the ticker runs at a tiny interval and is
waited for by condition, never by time.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest

from moodump.cli._progress import count_bytes, render
from moodump.logs import JsonFormatter
from moodump.progress import Progress, ProgressSnapshot, human_duration, log_progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_and_eta_follow_the_current_phase() -> None:
    clock = Clock()
    p = Progress(clock=clock)
    p.start("dump", "moodle")
    clock.now += 30  # planning: not part of the data rate
    p.phase("data", rows_total=1000, bytes_total=100_000, tables_total=4)
    clock.now += 10
    p.add(250, 20_000)
    s = p.snapshot()
    assert (s.operation, s.database, s.phase, s.active) == ("dump", "moodle", "data", True)
    assert s.rate_rows_s == 25.0 and s.rate_bytes_s == 2000.0
    assert s.fraction == 0.25
    assert s.eta_s == 30.0  # 750 rows left at 25 rows/s
    assert s.elapsed_s == 40.0
    f = s.fields()
    assert f["rows_done"] == 250 and f["rows_total_est"] == 1000 and f["eta_s"] == 30.0
    assert f["percent"] == 25.0 and f["phase"] == "data" and f["database"] == "moodle"
    json.dumps(f)  # JSON-ready as it is
    assert "25.0%" in s.summary() and "ETA 0:30" in s.summary()


def test_eta_is_unknown_without_estimate_rate_or_once_the_estimate_is_passed() -> None:
    clock = Clock()
    p = Progress(clock=clock)
    p.start("dump", "d")
    p.phase("data")
    clock.now += 1
    p.add(10, 100)
    assert p.snapshot().eta_s is None and p.snapshot().fraction is None
    p.phase("data", rows_total=15)
    clock.now += 1
    p.add(5, 50)
    assert p.snapshot().eta_s == 0.0  # exactly at the estimate: done
    p.phase("data", rows_total=10)  # estimates from information_schema can be low
    clock.now += 1
    p.add(5, 50)
    s = p.snapshot()
    assert s.fraction == 1.0 and s.eta_s is None
    assert s.fields()["eta_s"] is None and "ETA ?" in s.summary()
    # bytes are the measure when rows have no estimate
    p.phase("rows", rows_total=0, bytes_total=1000, rows_done=0, bytes_done=0)
    clock.now += 2
    p.add(0, 500)
    assert p.snapshot().eta_s == 2.0 and p.snapshot().fraction == 0.5


def test_nested_operation_keeps_the_outer_one_and_names_its_steps() -> None:
    p = Progress(clock=Clock())
    with p.operation("verify", "moodle"):
        p.phase("restore")
        with p.operation("restore", "moodump_verify_x"):
            p.phase("data", rows_total=10)
            p.add(4)
            s = p.snapshot()
            assert (s.operation, s.database, s.phase, s.step) == (
                "verify", "moodle", "restore", "data",
            )  # fmt: skip
        assert p.snapshot().active  # the inner finish ends only the inner level
        p.phase("compare", rows_total=10, rows_done=1)
        assert (p.snapshot().phase, p.snapshot().step, p.snapshot().rows_done) == (
            "compare", "", 1,
        )  # fmt: skip
    s = p.snapshot()
    assert not s.active and s.rows_done == 1
    p.start("dump", "other")  # the same object serves the next operation, from zero
    assert p.snapshot().rows_done == 0 and p.snapshot().operation == "dump"


def test_counters_are_exact_under_concurrent_workers() -> None:
    p = Progress()
    p.start("restore", "d")
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        barrier.wait()
        p.working(f"t{n}")
        for _ in range(5000):
            p.add(1, 3)
        p.table_done()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = p.snapshot()
    assert (s.rows_done, s.bytes_done, s.tables_done) == (20_000, 60_000, 4)
    assert sorted(what for _, what in s.workers) == ["t0", "t1", "t2", "t3"]
    assert sorted(n for n, _ in s.workers) == [1, 2, 3, 4]


def test_log_ticker_writes_json_lines_while_active_only() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("moodump.test_progress_ticker")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    p = Progress()
    try:
        with log_progress(p, 0.01, logger):
            time.sleep(0.05)  # not started: nothing may be logged
            assert stream.getvalue() == ""
            p.start("dump", "moodle")
            p.phase("data", rows_total=100, bytes_total=1000)
            p.add(10, 100)
            deadline = time.monotonic() + 20
            while stream.getvalue().count("\n") < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            p.finish()
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) >= 2
    for rec in lines:
        assert rec["logger"] == "moodump.test_progress_ticker" and rec["level"] == "INFO"
        assert rec["operation"] == "dump" and rec["phase"] == "data"
        assert rec["rows_done"] == 10 and rec["rows_total_est"] == 100
        assert rec["bytes_done"] == 100 and "eta_s" in rec and "rate_rows_s" in rec
        assert rec["message"].startswith("progress: dump moodle: data")


def test_no_ticker_thread_for_interval_zero() -> None:
    before = threading.active_count()
    with log_progress(Progress(), 0):
        assert threading.active_count() == before


def test_render_shows_the_bar_numbers_eta_and_each_worker() -> None:
    from rich.console import Console

    s = ProgressSnapshot(
        operation="restore", database="moodle", phase="data", active=True, rows_done=500,
        rows_total_est=1000, bytes_done=5 << 20, tables_done=1, tables_total=3,
        elapsed_s=12, phase_elapsed_s=10, phase_rows=500, phase_bytes=5 << 20,
        workers=((1, "mdl_user"), (2, "")),
    )  # fmt: skip
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=False, color_system=None).print(render(s))
    text = out.getvalue()
    assert "restore moodle: data" in text and "50.0%" in text
    assert "500/1,000 rows" in text and "5.0 MiB" in text and "1/3 tables" in text
    assert "50 rows/s" in text and "ETA 0:10" in text
    assert "worker 1: mdl_user" in text and "worker 2: idle" in text
    assert "\x1b" not in text
    out = io.StringIO()
    Console(file=out, width=80).print(render(ProgressSnapshot()))
    assert out.getvalue().strip() == ""  # nothing to draw between operations


def test_count_bytes_turns_totals_so_far_into_increments() -> None:
    p = Progress(clock=Clock())
    p.start("restore", "d")
    on = count_bytes(p)
    on(100, 1000)
    on(400, 1000)
    s = p.snapshot()
    assert (s.phase, s.bytes_done, s.bytes_total_est) == ("replay", 400, 1000)


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "?"), (0, "0:00"), (75, "1:15"), (3725, "1:02:05")]
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_restore_prorates_rows_by_bytes_sent_exact_at_the_end_and_undone_on_failure() -> None:
    from moodump.manifest import Chunk
    from moodump.restore.load import _Fed

    p = Progress(clock=Clock())
    p.start("restore", "d")
    fed = _Fed(p, Chunk("data/0001-t.00000.tsv.gz", rows=10, raw_bytes=1000, content_digest=""))
    fed.add(250)
    assert (p.snapshot().rows_done, p.snapshot().bytes_done) == (2, 250)
    fed.add(750)
    assert (p.snapshot().rows_done, p.snapshot().bytes_done) == (10, 1000)
    fed.undo()  # the file's transaction was rolled back: it will be sent again
    assert (p.snapshot().rows_done, p.snapshot().bytes_done) == (0, 0)
    empty = _Fed(p, Chunk("data/0002-e.00000.tsv.gz", rows=0, raw_bytes=0, content_digest=""))
    empty.add(0)
    assert p.snapshot().rows_done == 0
