"""``moodump run`` and ``container/backup.sh -1`` as processes, driven by an unchanged
old-style backup.conf and environment, against the test MariaDB.

The environment is built from scratch (no MOODUMP_* variables: an old deployment has
none), ``moodump`` on PATH is a two-line wrapper around the package under test (the
real command, not a stand-in), and SIGTERM is sent to real processes.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import moodump
from moodump.cli import cli
from moodump.config import host_env_prefix
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.manifest import read_manifest, read_verify_record
from moodump.naming import tier_for
from moodump.retention import RetentionPolicy

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "container" / "backup.sh"
USER = "moodle_bk"
PASSWORD = "Old-Style-pw.42"


def loopback_host() -> str:
    """A host *name* that resolves to 127.0.0.1 only (like the old `mysql` service name),
    so that ``<HOST>_USER``/``<HOST>_PASSWORD`` are exercised with a real name; falls back
    to 127.0.0.1 where the machine's name resolves elsewhere."""
    name = socket.gethostname()
    try:
        addresses = {a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        return "127.0.0.1"
    if addresses == {"127.0.0.1"} and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", name):
        return name
    return "127.0.0.1"


@pytest.fixture(scope="module")
def account(root_settings: ConnSettings) -> Iterator[str]:
    with connect(root_settings) as c:
        c.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
        c.execute(f"GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON *.* TO '{USER}'@'%'")
    yield USER
    with connect(root_settings) as c:
        c.execute(f"DROP USER IF EXISTS '{USER}'@'%'")


@dataclass
class Deployment:
    """An old backup-container deployment: /backup.conf, env, /backups/."""

    tmp: Path
    host: str
    port: int
    db: str
    env: dict[str, str]

    @property
    def root(self) -> Path:
        return self.tmp / "backups"

    @property
    def core(self) -> str:
        return f"{self.host}-{self.db}"

    def run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*args], env=self.env, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL, cwd=self.tmp, **kw,
        )  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, cwd=self.tmp,
        )  # fmt: skip

    def done(self) -> list[Path]:
        return sorted(
            p.parent
            for p in self.root.rglob("manifest.json")
            if read_manifest(p.parent).status == "DONE"
        )


@pytest.fixture
def deployment(
    tmp_path: Path, mariadb: Any, root_settings: ConnSettings, fresh_db: str, account: str
) -> Deployment:
    q = quote_ident(fresh_db)
    with connect(root_settings) as c:
        c.execute(
            f"CREATE TABLE {q}.mdl_config (id BIGINT PRIMARY KEY, name VARCHAR(100), value TEXT)"
        )
        c.execute(
            f"INSERT INTO {q}.mdl_config SELECT seq, CONCAT('setting', seq), 'x' FROM {q}.seq_1_to_200"
        )
    host = loopback_host()
    conf = tmp_path / "backup.conf"
    # The bcgov/moodle ConfigMap shape: one spec (here with the test server's port) and
    # one cron line, no verification line.
    conf.write_text(f"{host}:{mariadb.port}/{fresh_db}\n0 9 * * * default ./backup.sh -s\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "moodump"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m moodump "$@"\n')
    wrapper.chmod(0o755)
    prefix = host_env_prefix(host)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(moodump.__file__).resolve().parents[1]),
        # the old Deployment's environment
        "TZ": "PST8PDT",
        "BACKUP_CONF": str(conf),
        "BACKUP_DIR": f"{tmp_path / 'backups'}/",
        "BACKUP_STRATEGY": "rolling",
        "DAILY_BACKUPS": "5",
        # 2, not the usual 1: tests that back up twice in one day must keep both on any
        # date (on a Sunday both land in the weekly tier, on a month's last day in monthly)
        "WEEKLY_BACKUPS": "2",
        "MONTHLY_BACKUPS": "2",
        "DATABASE_SERVER_TIMEOUT": "600",
        "DATABASE_NAME": fresh_db,
        "DATABASE_SERVICE_NAME": "mysql-0.mysql",
        "ENVIRONMENT_NAME": "moodle",
        "ENVIRONMENT_FRIENDLY_NAME": "moodle",
        f"{prefix}_USER": USER,
        f"{prefix}_PASSWORD": PASSWORD,
        "DATABASE_USER": "not-this-one",
        "DATABASE_PASSWORD": "not-this-one",
    }
    return Deployment(tmp_path, host, mariadb.port, fresh_db, env)


NAME_RE = r"(daily|weekly|monthly)/(\d{4}-\d{2}-\d{2})/{core}_\2_\d{2}-\d{2}-\d{2}"


def assert_old_layout(dep: Deployment, path: Path) -> None:
    rel = path.relative_to(dep.root).as_posix()
    m = re.fullmatch(NAME_RE.replace("{core}", re.escape(dep.core)), rel)
    assert m, rel
    policy = RetentionPolicy.resolve("rolling", num_backups=31, daily=5, weekly=2, monthly=2)
    assert m.group(1) == tier_for(date.fromisoformat(m.group(2)), policy)
    assert read_manifest(path).status == "DONE"


def test_old_backup_conf_drives_run_once_and_backup_sh(deployment: Deployment) -> None:
    dep = deployment
    res = dep.run("moodump", "run", "--once", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["exit_code"] == 0 and report["action"] == "backup"
    (db,) = report["databases"]
    assert db["spec"] == f"{dep.host}:{dep.port}/{dep.db}" and db["status"] == "ok"
    assert db["rows"] == 200
    (first,) = dep.done()
    assert str(first) == db["path"]
    assert_old_layout(dep, first)
    rec = read_verify_record(first)  # MOODUMP_VERIFY_AFTER_BACKUP defaults to offline
    assert rec is not None and rec.passed

    # The old CronJob's command, through the real script and the real moodump.
    res = dep.run("bash", str(SCRIPT), "-1")
    assert res.returncode == 0, res.stderr
    assert "Exit code 0." in res.stdout
    backups = dep.done()
    assert len(backups) == 2
    for path in backups:
        assert_old_layout(dep, path)
    # the per-host credentials were used, and never printed
    for out in (res.stdout, res.stderr):
        assert PASSWORD not in out
    assert read_manifest(backups[-1]).host == dep.host


def test_global_log_flags_win_over_the_environment_for_run(deployment: Deployment) -> None:
    dep = deployment
    # The environment says text; the flag before the command says json: every line of
    # stderr is one JSON object.
    dep.env.update(MOODUMP_LOG_FORMAT="text", BACKUP_LOG_LEVEL="info")
    res = dep.run("moodump", "--log-format", "json", "run", "--once")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines, "a run logs what it does"
    records = [json.loads(line) for line in lines]  # fails on any non-JSON line
    assert any(r.get("database") == f"{dep.host}:{dep.port}/{dep.db}" for r in records)
    assert all(r["level"] in ("INFO", "WARNING", "ERROR", "DEBUG") for r in records)

    # --log-level over BACKUP_LOG_LEVEL: debug in the environment, warning on the flag.
    dep.env.update(BACKUP_LOG_LEVEL="debug")
    res = dep.run("moodump", "--log-level", "warning", "run", "--once")
    assert res.returncode == 0, res.stderr
    assert "backing up" not in res.stderr and "DEBUG" not in res.stderr

    # The environment over the defaults when no flag is given.
    dep.env.update(MOODUMP_LOG_FORMAT="json", BACKUP_LOG_LEVEL="info")
    res = dep.run("moodump", "run", "--once")
    assert res.returncode == 0, res.stderr
    assert [json.loads(line)["level"] for line in res.stderr.splitlines()]


def test_second_run_while_locked_exits_10(deployment: Deployment) -> None:
    dep = deployment
    dep.root.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from moodump.lock import RunLock\n"
         "lock = RunLock(sys.argv[1], purpose='run --once').acquire()\n"
         "print('held', flush=True); sys.stdin.read()",
         str(dep.root / ".moodump.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dep.env,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        res = dep.run("moodump", "run", "--once")
        assert res.returncode == 10
        assert "another moodump run --once holds the lock" in res.stderr
        assert dep.done() == [] and not any(dep.root.glob("*/*/*"))
        res = dep.run("bash", str(SCRIPT), "-1")
        assert res.returncode == 10
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


class Lines:
    """Collects a process's stderr lines in a thread, so a test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr
        threading.Thread(target=lambda: [self.q.put(line) for line in stream], daemon=True).start()

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{needle!r} not logged; got: {''.join(self.seen)}") from None
            self.seen.append(line)
            if needle in line:
                return line


def test_cron_mode_stops_on_sigterm_between_runs(deployment: Deployment) -> None:
    dep = deployment
    Path(dep.env["BACKUP_CONF"]).write_text(
        f"{dep.host}:{dep.port}/{dep.db}\n0 1 1 1 * default ./backup.sh -s\n"
    )
    proc = dep.popen("moodump", "run", "--log-format", "json")
    lines = Lines(proc)
    try:
        started = json.loads(lines.wait_for("moodump run started"))
        assert "cron mode" in started["message"] and started["level"] == "INFO"
        nxt = json.loads(lines.wait_for('"next_run"'))
        assert nxt["next_run"].endswith(("-08:00", "-07:00"))  # PST8PDT
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        lines.wait_for("moodump run stopped")
    finally:
        proc.kill()
    assert dep.done() == []


def test_sigterm_aborts_a_running_dump(deployment: Deployment, root_settings: ConnSettings) -> None:
    """A dump blocked on a table lock gets SIGTERM: exit 130, a FAILED record, no data."""
    dep = deployment
    dep.env["MOODUMP_LOG_FORMAT"] = "json"
    locker = connect(root_settings)
    locker.execute(f"LOCK TABLES {quote_ident(dep.db)}.mdl_config WRITE")
    proc = dep.popen("moodump", "run", "--once", "--json")
    lines = Lines(proc)
    try:
        with connect(root_settings) as c:
            deadline = time.monotonic() + 30
            while not c.query(
                "SELECT 1 FROM information_schema.PROCESSLIST "
                f"WHERE USER = '{USER}' AND STATE LIKE '%metadata lock%'"
            ):
                assert time.monotonic() < deadline, "the dump never reached the locked table"
        proc.send_signal(signal.SIGTERM)
        line = json.loads(lines.wait_for("SIGTERM: stopping"))
        assert line["level"] == "WARNING" and line["logger"] == "moodump.run"
        locker.execute("UNLOCK TABLES")
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        locker.close()
    assert proc.returncode == 130
    report = json.loads(out)
    (db,) = report["databases"]
    assert (db["status"], db["exit_code"]) == ("failed", 130) and report["interrupted"]
    assert dep.done() == []
    record = read_manifest(Path(db["path"]))
    assert record.status == "FAILED" and record.files == []


def test_option_errors(deployment: Deployment) -> None:
    res = deployment.run("moodump", "run", "--now", "2026-11-17T01:00")
    assert res.returncode == 2 and "only go with --once" in res.stderr
    res = deployment.run("moodump", "run", "--once", "--verify-all")
    assert res.returncode == 2 and "exclude each other" in res.stderr
    assert deployment.done() == []


def test_run_once_in_process_with_pinned_time(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in deployment.env.items():
        monkeypatch.setenv(name, value)
    res = CliRunner().invoke(cli, ["run", "--once", "--now", "2026-05-31T09:00"])
    assert res.exit_code == 0, res.output
    # the last day of May: the monthly tier, named in PST8PDT local time
    (path,) = deployment.done()
    assert path.relative_to(deployment.root).as_posix() == (
        f"monthly/2026-05-31/{deployment.core}_2026-05-31_09-00-00"
    )
    assert f"{deployment.host}:{deployment.port}/{deployment.db}" in res.output
    res = CliRunner().invoke(cli, ["run", "--verify-all", "--now", "2026-05-31T10:00", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["action"] == "verify" and doc["databases"][0]["path"] == str(path)


def test_run_once_backs_up_mariadb_and_postgres_lines(deployment: Deployment, pg: Any) -> None:
    """One backup.conf with a ``mariadb=`` and a ``postgres=`` line: ``run --once`` backs up
    both, with the same per-host credentials, layout, manifest and verification record."""
    dep = deployment
    pgdb = "moodle_pg"
    pg.dropdb(pgdb)
    pg.createdb(pgdb)
    pg.psql("postgres", f"DROP ROLE IF EXISTS {USER}; CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
    pg.psql(pgdb, (
        "CREATE TABLE mdl_config (id bigserial PRIMARY KEY, name varchar(100), value text); "
        "INSERT INTO mdl_config (name, value) SELECT 'setting' || g, 'x' FROM generate_series(1, 150) g; "
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {USER}; "
        f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {USER}"
    ))  # fmt: skip
    conf = Path(dep.env["BACKUP_CONF"])
    conf.write_text(
        f"mariadb={dep.host}:{dep.port}/{dep.db}\npostgres={dep.host}:{pg.port}/{pgdb}\n"
        "0 9 * * * default ./backup.sh -s\n"
    )
    res = dep.run("moodump", "run", "--once", "--json")
    assert res.returncode == 0, res.stderr + res.stdout
    report = json.loads(res.stdout)
    by_spec = {d["spec"]: d for d in report["databases"]}
    assert by_spec[f"mariadb={dep.host}:{dep.port}/{dep.db}"]["rows"] == 200
    pg_result = by_spec[f"postgres={dep.host}:{pg.port}/{pgdb}"]
    assert pg_result["status"] == "ok" and pg_result["rows"] == 150
    m = read_manifest(Path(pg_result["path"]))
    assert m.status == "DONE" and m.database_type == "postgresql"
    assert Path(pg_result["path"]).name.startswith(f"{dep.host}-{pgdb}_")
    rec = read_verify_record(Path(pg_result["path"]))
    assert rec is not None and rec.passed
    assert PASSWORD not in res.stdout + res.stderr


def test_what_a_killed_run_left_is_removed_by_a_later_run(deployment: Deployment, pg: Any) -> None:
    """SIGKILL (an OOM kill, a pod killed after its grace period) mid-dump leaves the dump's
    hidden work directory in that day's folder and the PostgreSQL tools' password file in
    TMPDIR (the image's verification volume, which outlives the pod); a later run on
    another day removes both (nothing else ever would), and neither is ever a backup."""
    dep = deployment
    pgdb = "moodle_killed"
    pg.dropdb(pgdb)
    pg.createdb(pgdb)
    pg.psql("postgres", (  # the role may own grants of another test's database
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{USER}') THEN "
        f"CREATE ROLE {USER}; END IF; END$$; ALTER ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"
    ))  # fmt: skip
    pg.psql(pgdb, f"CREATE TABLE mdl_log (id int PRIMARY KEY); GRANT SELECT ON mdl_log TO {USER}")
    try:
        _kill_a_run_then_run_again(dep, pg, pgdb)
    finally:
        pg.dropdb(pgdb)


def _kill_a_run_then_run_again(dep: Deployment, pg: Any, pgdb: str) -> None:
    Path(dep.env["BACKUP_CONF"]).write_text(f"postgres={dep.host}:{pg.port}/{pgdb}\n")
    scratch = dep.tmp / "verify-volume"
    scratch.mkdir()
    dep.env["TMPDIR"] = str(scratch)
    locker = subprocess.Popen(
        [str(pg.bindir / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port),
         "-U", "postgres", "-d", pgdb],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert locker.stdin is not None
    locker.stdin.write("BEGIN; LOCK TABLE mdl_log IN ACCESS EXCLUSIVE MODE;\n")
    locker.stdin.flush()
    proc = dep.popen("moodump", "run", "--once", "--now", "2026-05-28T09:00")
    try:
        deadline = time.monotonic() + 30
        while "Lock" not in pg.psql(
            "postgres", f"SELECT wait_event_type FROM pg_stat_activity WHERE usename = '{USER}'"
        ):
            assert time.monotonic() < deadline, "the dump never reached the locked table"
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        proc.kill()
        locker.stdin.close()
        locker.wait(30)
    left = [p for p in dep.root.rglob(".*.partial-*") if p.is_dir()]
    assert [p.parent.name for p in left] == ["2026-05-28"], left
    (pgpass,) = scratch.iterdir()
    assert pgpass.name.startswith("moodump-pgpass-") and PASSWORD in pgpass.read_text()
    assert dep.done() == []
    listing = dep.run("moodump", "list", "--json")
    assert listing.returncode == 0 and left[0].name not in listing.stdout
    # the next run is the next day: the killed run's files are hours old by then
    old = time.time() - 3 * 3600
    for p in [pgpass, left[0], *left[0].rglob("*")]:
        os.utime(p, (old, old), follow_symlinks=False)
    res = dep.run("moodump", "run", "--once", "--now", "2026-05-29T09:00")
    assert res.returncode == 0, res.stderr
    assert [p.name for p in dep.done()] == [f"{dep.host}-{pgdb}_2026-05-29_09-00-00"]
    assert not left[0].exists(), "the killed run's work directory is still there"
    assert list(scratch.iterdir()) == [], "the killed run's password file is still there"


def test_credentials_from_a_secret_with_a_trailing_newline_still_connect(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kubernetes Secret made from a file (``kubectl create secret --from-file``) ends
    in a newline, which ``env: valueFrom: secretKeyRef`` passes on; the old container's
    ``$(getPassword)`` dropped it, so such a deployment must keep working."""
    dep = deployment
    prefix = host_env_prefix(dep.host)
    for name, value in dep.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(f"{prefix}_USER", USER + "\n")
    monkeypatch.setenv(f"{prefix}_PASSWORD", PASSWORD + "\r\n")
    res = CliRunner().invoke(cli, ["run", "--once", "--now", "2026-05-28T09:00"])
    assert res.exit_code == 0, res.output
    assert len(dep.done()) == 1
