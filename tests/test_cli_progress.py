"""Progress a person or a log collector can follow, seen from outside the process.

- ``--log-format json`` dump of the ``big`` source with MOODUMP_PROGRESS_INTERVAL=0.1:
  several progress lines, each one valid JSON with rows, bytes and ETA fields.
- ``dump``/``restore``/``verify`` (offline and by restore) in a real pseudo-terminal
  (pexpect): the rich display is drawn (its labels, its cursor control); with ``-q``
  nothing of it appears; with pipes instead of a terminal, no control character.

The password travels in MYSQL_PWD (cli_env), never on the command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from helpers_failures import (
    Source,
    cli_argv,
    cli_env,
    conn_args,
    copy_backup,
    drop_database,
    run_cli,
    unique_db,
)

pytestmark = pytest.mark.db

HIDE_CURSOR = "\x1b[?25l"  # rich's Live hides the cursor while it draws


def in_pty(*args: str, password: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``moodump ARGS`` with stdin, stdout and stderr on one pseudo-terminal."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "moodump", *args],
        env={**cli_env(password), "TERM": "xterm-256color", "COLUMNS": "160", **(env or {})},
        dimensions=(40, 160),
        encoding="utf-8",
        codec_errors="replace",
        timeout=300,
    )
    out = child.read()  # everything, until the process closes the terminal
    child.close()
    assert child.exitstatus is not None, out
    return child.exitstatus, out


def test_json_logs_carry_a_progress_line_per_interval(big: Source, tmp_path: Path) -> None:
    out = tmp_path / "b"
    res = run_cli_env(
        {"MOODUMP_PROGRESS_INTERVAL": "0.1"},
        "--log-format", "json", "dump", *conn_args(big.settings), "--threads", "1",
        "-o", str(out), big.database,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stderr.splitlines()]  # every line is JSON
    ticks = [r for r in records if r["logger"] == "moodump.progress"]
    assert len(ticks) >= 2, res.stderr
    for r in ticks:
        assert r["operation"] == "dump" and r["database"] == big.database
        for key in ("rows_done", "rows_total_est", "bytes_done", "rate_rows_s", "eta_s", "phase"):
            assert key in r
    data = [r for r in ticks if r["phase"] == "data" and r["rows_done"] > 0]
    assert data, ticks
    assert any(isinstance(r["eta_s"], float) for r in data)
    assert all(r["rows_total_est"] > 0 and r["bytes_done"] > 0 for r in data)
    rows = [r["rows_done"] for r in ticks]
    assert rows == sorted(rows)  # counts only grow


def run_cli_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_argv(*args),
        env={**cli_env(""), **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_dump_draws_progress_on_a_terminal_and_not_with_q(big: Source, tmp_path: Path) -> None:
    quiet = {"MOODUMP_PROGRESS_INTERVAL": "0"}  # no log ticks: only the display counts
    code, out = in_pty(
        "dump", *conn_args(big.settings), "-o", str(tmp_path / "a"), big.database, env=quiet
    )
    assert code == 0, out
    assert HIDE_CURSOR in out and f"dump {big.database}" in out
    assert "rows/s" in out and "ETA" in out and "worker 1:" in out
    code, out = in_pty(
        "dump", *conn_args(big.settings), "-q", "-o", str(tmp_path / "b"), big.database,
        env=quiet,
    )  # fmt: skip
    assert code == 0, out
    assert HIDE_CURSOR not in out and "ETA" not in out and "rows/s" not in out
    assert "DONE:" in out  # the summary is still printed


def test_restore_draws_progress_on_a_terminal_and_not_with_q(big: Source) -> None:
    quiet = {"MOODUMP_PROGRESS_INTERVAL": "0"}
    for flags in ((), ("-q",)):
        target = unique_db("prg")
        try:
            code, out = in_pty(
                "restore", str(big.backup), *conn_args(big.settings), "--database", target,
                *flags, env=quiet,
            )  # fmt: skip
            assert code == 0, out
            if flags:
                assert HIDE_CURSOR not in out and "ETA" not in out
            else:
                assert HIDE_CURSOR in out and f"restore {target}" in out
                assert "ETA" in out and "rows/s" in out
            assert "restored" in out
        finally:
            drop_database(big.settings, target)


@pytest.mark.parametrize("method", ["offline", "restore"])
def test_verify_draws_progress_on_a_terminal_and_not_with_q(
    big: Source, method: str, tmp_path: Path
) -> None:
    how = ["--offline"] if method == "offline" else conn_args(big.settings)
    quiet = {"MOODUMP_PROGRESS_INTERVAL": "0"}
    backup = copy_backup(big, tmp_path / "big")  # verify records verify.json in the backup
    code, out = in_pty("verify", str(backup), *how, env=quiet)
    assert code == 0, out
    assert HIDE_CURSOR in out and "ETA" in out and "rows/s" in out
    # offline: the rows are read and digested; by restore: the restore's steps, then compare
    phase = "rows" if method == "offline" else "restore / "
    assert f"verify {big.database}: {phase}" in out
    assert "PASS" in out
    code, out = in_pty("verify", str(backup), *how, "-q", env=quiet)
    assert code == 0, out
    assert HIDE_CURSOR not in out and "ETA" not in out and "PASS" in out


def test_no_control_characters_when_output_is_not_a_terminal(big: Source, tmp_path: Path) -> None:
    res = run_cli("dump", *conn_args(big.settings), "-o", str(tmp_path / "p"), big.database)
    assert res.returncode == 0, res.stderr
    assert "\x1b" not in res.stderr + res.stdout and "\r" not in res.stderr
    assert "ETA" not in res.stderr


def run_env(big: Source, tmp_path: Path, interval: str) -> dict[str, str]:
    """A one-database configuration of ``moodump run`` for the ``big`` source."""
    conf = tmp_path / "backup.conf"
    conf.write_text(f"127.0.0.1:{big.settings.port}/{big.database}\n", encoding="utf-8")
    return {
        "BACKUP_CONF": str(conf),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "TZ": "UTC",
        "DATABASE_USER": big.settings.user,
        "MOODUMP_VERIFY_AFTER_BACKUP": "offline",
        "MOODUMP_PROGRESS_INTERVAL": interval,
    }


def test_run_once_logs_progress_of_the_dump_and_the_verification(
    big: Source, tmp_path: Path
) -> None:
    """A CronJob pod: JSON logs, no terminal; progress lines for both steps."""
    env = run_env(big, tmp_path, "0.05")
    res = run_cli_env(env, "--log-format", "json", "run", "--once", "--now", "2026-11-17T01:00:00")
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stderr.splitlines()]
    ticks = [r for r in records if r["logger"] == "moodump.progress"]
    assert {r["operation"] for r in ticks} == {"dump", "verify"}, ticks
    assert all(r["database"] == big.database for r in ticks)
    assert "\x1b" not in res.stderr + res.stdout


def test_run_once_draws_progress_on_a_terminal_and_not_with_q(big: Source, tmp_path: Path) -> None:
    """``moodump run --once``: the dump, then the offline verification after it."""
    env = run_env(big, tmp_path, "0")
    code, out = in_pty("run", "--once", "--now", "2026-11-17T01:00:00", env=env)
    assert code == 0, out
    assert HIDE_CURSOR in out and f"dump {big.database}: data" in out and "ETA" in out
    code, out = in_pty("run", "--once", "-q", "--now", "2026-11-18T01:00:00", env=env)
    assert code == 0, out
    assert HIDE_CURSOR not in out and "ETA" not in out
