"""The restore's release of a failed load (moodump.restore.load._release_fifos), without a
server: FIFOs get a reader and an end of file, and after the grace period the connections
still busy are closed (``escalate``) once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from moodump.restore.load import _release_fifos


def test_a_reader_blocked_on_its_fifo_gets_an_end_of_file_and_escalation_runs_once(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "w0"
    os.mkfifo(fifo, 0o600)
    got: list[bytes] = []

    def client() -> None:  # opens its FIFO after the feeder gave up: no writer will come
        with open(fifo, "rb") as f:
            got.append(f.read())

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    done = threading.Event()
    calls: list[float] = []
    t0 = time.monotonic()
    releaser = threading.Thread(
        target=_release_fifos,
        args=(tmp_path, done),
        kwargs={"escalate": lambda: calls.append(time.monotonic() - t0), "grace_s": 0.3},
        daemon=True,
    )
    releaser.start()
    reader.join(5)
    assert not reader.is_alive() and got == [b""]
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a second escalation would come within this
    done.set()
    releaser.join(5)
    assert not releaser.is_alive()
    assert len(calls) == 1 and calls[0] >= 0.3


def test_no_escalation_when_the_workers_finish_within_the_grace(tmp_path: Path) -> None:
    done = threading.Event()
    calls: list[int] = []
    releaser = threading.Thread(
        target=_release_fifos,
        args=(tmp_path, done),
        kwargs={"escalate": lambda: calls.append(1), "grace_s": 5.0},
        daemon=True,
    )
    releaser.start()
    time.sleep(0.2)
    done.set()
    releaser.join(5)
    assert not releaser.is_alive() and calls == []
