"""The run lock, held by real second processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from moodump.errors import LockBusy, StorageError
from moodump.lock import RunLock, read_owner

HOLDER = textwrap.dedent(
    """
    import sys
    from moodump.lock import RunLock
    with RunLock(sys.argv[1], purpose="run --once"):
        print("locked", flush=True)
        sys.stdin.readline()  # hold until the test says so (or kills us)
    print("released", flush=True)
    """
)

CONTENDER = textwrap.dedent(
    """
    import sys
    from moodump.errors import LockBusy
    from moodump.lock import RunLock
    try:
        with RunLock(sys.argv[1]):
            print("acquired")
    except LockBusy as exc:
        print(exc)
        sys.exit(exc.exit_code)
    """
)


def _start_holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_gets_lockbusy_naming_the_pid(tmp_path: Path) -> None:
    path = tmp_path / "moodump.lock"
    holder = _start_holder(path)
    try:
        with pytest.raises(LockBusy) as info:
            RunLock(path).acquire()
        message = str(info.value)
        assert f"pid {holder.pid}" in message
        assert "run --once" in message
        assert "next step:" in message and f"ps -p {holder.pid}" in message
        assert info.value.exit_code == 10
        assert read_owner(path)["pid"] == holder.pid

        # and a separate process gets the same answer, with the lock's exit code
        other = subprocess.run(
            [sys.executable, "-c", CONTENDER, str(path)], capture_output=True, text=True
        )
        assert other.returncode == 10
        assert f"pid {holder.pid}" in other.stdout
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "released"
        holder.wait()
    with RunLock(path) as lock:  # free again after a clean release
        assert lock.held
        assert read_owner(path)["pid"] == os.getpid()
    assert read_owner(path) == {}


def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    path = tmp_path / "moodump.lock"
    holder = _start_holder(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert read_owner(path)["pid"] == holder.pid  # stale content stays on disk...
    with RunLock(path) as lock:  # ...but the kernel released the lock with the process
        assert lock.held
    assert path.exists()  # the file is never deleted


def test_two_locks_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "moodump.lock"
    with RunLock(path), pytest.raises(LockBusy):
        RunLock(path).acquire()
    with RunLock(path):
        pass


def test_lock_is_not_inherited_by_children(tmp_path: Path) -> None:
    path = tmp_path / "moodump.lock"
    with RunLock(path):
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
    try:
        with RunLock(path) as lock:  # the child still runs but holds nothing
            assert lock.held
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()


def test_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="lock file"):
        RunLock(tmp_path / "missing" / "moodump.lock").acquire()


def test_release_is_idempotent(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "l").acquire()
    lock.release()
    lock.release()
    assert not lock.held
