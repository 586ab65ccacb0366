"""Metrics and ``moodump status`` from real processes against the test MariaDB: the
metrics text file after ``moodump run --once`` (a good run, then a failed one), the
``/metrics`` endpoint of the cron mode, and ``moodump status``'s exit codes."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from moodump.config import host_env_prefix
from moodump.jobs.metrics import sample_names
from test_cli_run import Deployment, Lines
from test_cli_run import account as account
from test_cli_run import deployment as deployment


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def db_labels(dep: Deployment, **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset(
        {"database": dep.core, "spec": f"{dep.host}:{dep.port}/{dep.db}", **extra}.items()
    )


def kept(got: dict[tuple[str, frozenset[tuple[str, str]]], float], dep: Deployment) -> float:
    """Backups kept over every tier (which tier today's backup is in depends on the date)."""
    return sum(
        v
        for (name, labels), v in got.items()
        if name == "moodump_backups_kept" and db_labels(dep) <= labels
    )


def test_metrics_file_after_a_good_and_a_failed_run_and_status(deployment: Deployment) -> None:
    dep = deployment
    prom = dep.tmp / "textfile" / "moodump.prom"
    prom.parent.mkdir()
    dep.env["MOODUMP_METRICS_FILE"] = str(prom)

    # no backup yet: unhealthy, exit 11
    res = dep.run("moodump", "status", "--json")
    assert res.returncode == 11, res.stderr
    doc = json.loads(res.stdout)
    assert doc["healthy"] is False
    (db,) = doc["databases"]
    assert db["problems"] == ["no verified backup"] and db["last_run"] is None
    assert db["next_run"].endswith(("-08:00", "-07:00"))  # the 09:00 cron line, in PST8PDT
    assert "not healthy" in res.stderr

    res = dep.run("moodump", "run", "--once")
    assert res.returncode == 0, res.stderr
    first = values(prom.read_text())
    me = db_labels(dep)
    success = first[("moodump_backup_last_success_timestamp_seconds", me)]
    assert abs(success - time.time()) < 600
    assert first[("moodump_backup_last_duration_seconds", me)] > 0
    assert first[("moodump_backup_last_size_bytes", me)] > 0
    assert first[("moodump_backup_last_rows", me)] == 200
    assert first[("moodump_backup_last_tables", me)] == 1
    assert first[("moodump_verify_last_ok", me)] == 1
    assert kept(first, dep) == 1
    assert first[("moodump_database_runs_total", db_labels(dep, action="backup"))] == 1
    assert {name for name, _ in first} <= sample_names()
    assert oct(prom.stat().st_mode & 0o777) == oct(0o644)
    state = dep.root / ".moodump-state.json"
    assert oct(state.stat().st_mode & 0o777) == oct(0o640)

    res = dep.run("moodump", "status")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "HEALTHY" in res.stdout and "Status: healthy" in res.stdout

    # the verification cycle (another process) adds its facts, the backup facts stay
    res = dep.run("moodump", "run", "--verify-all")
    assert res.returncode == 0, res.stderr
    verified = values(prom.read_text())
    assert verified[("moodump_runs_total", frozenset({("action", "verify")}))] == 1
    assert verified[("moodump_verify_last_ok", me)] == 1
    assert verified[("moodump_verify_last_timestamp_seconds", me)] >= success
    assert verified[("moodump_backup_last_success_timestamp_seconds", me)] == success

    # A wrong password: the run fails; the failure counter moves, the success time stays.
    dep.env[f"{host_env_prefix(dep.host)}_PASSWORD"] = "wrong-password"
    res = dep.run("moodump", "run", "--once")
    assert res.returncode not in (0, 1), res.stderr
    second = values(prom.read_text())
    assert second[("moodump_backup_last_success_timestamp_seconds", me)] == success
    failure = db_labels(dep, action="backup", exit_code=str(res.returncode))
    assert ("moodump_database_failures_total", failure) not in first
    assert second[("moodump_database_failures_total", failure)] == 1
    assert second[("moodump_backup_last_ok", me)] == 0
    assert second[("moodump_backup_last_exit_code", me)] == res.returncode
    assert second[("moodump_backup_last_failure_timestamp_seconds", me)] >= success
    assert second[("moodump_database_runs_total", db_labels(dep, action="backup"))] == 2
    run_failure = frozenset({("action", "backup"), ("exit_code", str(res.returncode))})
    assert second[("moodump_run_failures_total", run_failure)] == 1
    # the good backup's facts are still those of the last good backup
    assert second[("moodump_backup_last_rows", me)] == 200

    # status: the verified backup is fresh, but the last backup failed
    res = dep.run("moodump", "status", "--json")
    assert res.returncode == 11
    (db,) = json.loads(res.stdout)["databases"]
    assert db["newest_verified"]["status"] == "DONE"
    assert db["last_run"]["status"] == "failed"
    assert any("the last backup failed" in p for p in db["problems"])
    assert "wrong-password" not in res.stdout + res.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert resp.status == 200
                return resp.read().decode("utf-8")
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_cron_mode_serves_metrics(deployment: Deployment) -> None:
    dep = deployment
    res = dep.run("moodump", "run", "--once")  # a cycle by another process first
    assert res.returncode == 0, res.stderr
    # a schedule that does not fire soon (01:00 on the 1st of January)
    Path(dep.env["BACKUP_CONF"]).write_text(
        f"{dep.host}:{dep.port}/{dep.db}\n0 1 1 1 * default ./backup.sh -s\n"
    )
    port = free_port()
    dep.env.update(MOODUMP_METRICS_PORT=str(port), MOODUMP_METRICS_ADDRESS="127.0.0.1")
    proc = dep.popen("moodump", "run", "--log-format", "json")
    lines = Lines(proc)
    try:
        text = scrape(f"http://127.0.0.1:{port}/metrics")
        got = values(text)
        me = db_labels(dep)
        assert got[("moodump_backup_last_success_timestamp_seconds", me)] > 0
        assert got[("moodump_backup_newest_verified_timestamp_seconds", me)] > 0
        assert got[("moodump_runs_total", frozenset({("action", "backup")}))] == 1
        assert kept(got, dep) == 1
        # a cycle run by another process shows at the next scrape, backups on disk too
        res = dep.run("moodump", "run", "--once")
        assert res.returncode == 0, res.stderr
        got = values(scrape(f"http://127.0.0.1:{port}/metrics"))
        assert got[("moodump_runs_total", frozenset({("action", "backup")}))] == 2
        assert kept(got, dep) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        lines.wait_for("moodump run stopped")
    finally:
        proc.kill()
    assert any("serving Prometheus metrics" in line for line in lines.seen)
    # nobody listens on the port any more (connections may linger in TIME_WAIT)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
