"""moodump.jobs against real parts: the test MariaDB, a real HTTP webhook receiver, a real
FTPS server (pyftpdlib), the run lock held by another process, and an injected clock.

Every configuration is built with :func:`moodump.config.load_config` from an old-style
backup.conf text and environment, as ``moodump run`` builds it. Nothing sleeps on the
wall clock: ``now``/``clock`` are injected, and so is ``sleep`` (retries, the scheduler).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from moodump import jobs
from moodump.catalog import prune, scan_backups
from moodump.cli._cron import moodump_line_parser
from moodump.config import Config, load_config
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.errors import ConfigError, LockBusy, StorageError
from moodump.jobs.maintenance import CheckOptions
from moodump.manifest import Manifest, read_manifest, read_verify_record
from moodump.notify import Notifier
from moodump.schedule import ACTION_BACKUP, ACTION_CHECK, ACTION_VERIFY

TZ_NAME = "America/Vancouver"
TZ = ZoneInfo(TZ_NAME)
USER = "mdl_backup"
PASSWORD = "Bk-pw-7f3e.Qx"  # must never reach a log line or a notification


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def account(root_settings: ConnSettings) -> Iterator[str]:
    """A backup account with the privileges a Moodle backup user has (and a password)."""
    with connect(root_settings) as c:
        c.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
        c.execute(f"GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON *.* TO '{USER}'@'%'")
    yield USER
    with connect(root_settings) as c:
        c.execute(f"DROP USER IF EXISTS '{USER}'@'%'")


def fill(settings: ConnSettings, db: str, rows: int = 50, *, random_rows: int = 0) -> None:
    """A small Moodle-like table; ``random_rows`` adds incompressible rows (size tests)."""
    q = quote_ident(db)
    with connect(settings) as c:
        c.execute(f"CREATE TABLE {q}.mdl_user (id BIGINT PRIMARY KEY, username VARCHAR(100))")
        c.execute(
            f"INSERT INTO {q}.mdl_user SELECT seq, CONCAT('user', seq) FROM {q}.seq_1_to_{rows}"
        )
        if random_rows:
            c.execute(f"CREATE TABLE {q}.mdl_files (id BIGINT PRIMARY KEY, hash CHAR(64))")
            c.execute(
                f"INSERT INTO {q}.mdl_files SELECT seq, SHA2(RAND(), 256) "
                f"FROM {q}.seq_1_to_{random_rows}"
            )


@pytest.fixture
def db(root_settings: ConnSettings, fresh_db: str, account: str) -> str:
    fill(root_settings, fresh_db)
    return fresh_db


@pytest.fixture
def db2(root_settings: ConnSettings, account: str) -> Iterator[str]:
    """A second database (fresh_db gives only one per test)."""
    name = "t2_" + uuid.uuid4().hex[:10]
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        c.execute(f"CREATE DATABASE {quote_ident(name)}")
    fill(root_settings, name, 20)
    yield name
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


@dataclass
class Site:
    """A backup.conf and environment in the old container's style."""

    tmp: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.tmp / "backups"

    def spec(self, db: str) -> str:
        return f"127.0.0.1:{self.port}/{db}"

    def core(self, db: str) -> str:
        return f"127.0.0.1-{db}"

    def config(
        self, dbs: list[str], cron: str = "0 1 * * * default ./backup.sh -s", **env: str
    ) -> Config:
        text = (
            "# databases\n"
            + "".join(f"{self.spec(d)}\n" for d in dbs)
            + (cron + "\n" if cron else "")
        )
        conf = self.tmp / "backup.conf"
        conf.write_text(text, encoding="utf-8")
        full = {
            "BACKUP_DIR": f"{self.root}/",
            "BACKUP_STRATEGY": "rolling",
            "TZ": TZ_NAME,
            "DATABASE_USER": USER,
            "DATABASE_PASSWORD": PASSWORD,
            "ENVIRONMENT_NAME": "abc123-prod",
            "ENVIRONMENT_FRIENDLY_NAME": "Moodle Prod",
            "MOODUMP_THREADS": "1",
            "MOODUMP_VERIFY_AFTER_BACKUP": "none",
            **self.env,
            **env,
        }
        return load_config(full, text, str(conf))


@pytest.fixture
def site(tmp_path: Path, mariadb: Any, monkeypatch: pytest.MonkeyPatch) -> Site:
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    return Site(tmp_path, mariadb.port)


@dataclass
class Post:
    path: str
    fields: dict[str, str]


@dataclass
class Receiver:
    url: str
    posts: list[Post]

    def statuses(self) -> list[tuple[str, str]]:
        """(statusCode, first line of the message) of every generic webhook post."""
        return [(p.fields["statusCode"], p.fields["message"].splitlines()[0]) for p in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records the old webhook's form posts."""
    posts: list[Post] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fields = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
            posts.append(Post(self.path, fields))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/T0K3N-abcdef", posts)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def fake_backup(root: Path, rel: str, status: str = "DONE", size: int = 1000) -> Path:
    """An older backup directory as an earlier run left it (manifest written by moodump's
    own types; only retention and listings look at it)."""
    path = root / rel
    path.mkdir(parents=True)
    (path / "data.bin").write_bytes(b"x" * size)
    core, _, _ = path.name.rpartition("_")[0].rpartition("_")
    host, _, db = core.partition("-")
    (path / "manifest.json").write_text(Manifest(database=db, host=host, status=status).to_json())
    return path


def done_dirs(root: Path) -> list[str]:
    return sorted(
        str(p.parent.relative_to(root))
        for p in root.rglob("manifest.json")
        if read_manifest(p.parent).status == "DONE"
    )


# --------------------------------------------------------------------------- one cycle


def test_one_database_fails_the_other_succeeds(
    site: Site, db: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    missing = "no_such_db"
    cfg = site.config([db, missing], WEBHOOK_URL=receiver.url, DAILY_BACKUPS="1")
    # Earlier runs left backups of both databases.
    old_good = [
        fake_backup(site.root, f"daily/2026-11-1{d}/{site.core(db)}_2026-11-1{d}_01-00-00")
        for d in (4, 5)
    ]
    old_missing = [
        fake_backup(site.root, f"daily/2026-11-1{d}/{site.core(missing)}_2026-11-1{d}_01-00-00")
        for d in (4, 5)
    ]
    report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), sleep=Sleeps())

    good, bad = report.databases
    assert (good.status, good.exit_code, good.backup_ok) == ("ok", 0, True)
    assert (bad.status, bad.exit_code, bad.backup_ok) == ("failed", 5, False)
    assert report.exit_code == 5  # the worst result
    assert "no_such_db" in str(bad.error) and "does not exist" in str(bad.error)
    # the old layout and names
    assert good.path == str(
        site.root / "daily" / "2026-11-17" / f"{site.core(db)}_2026-11-17_01-00-00"
    )
    assert read_manifest(Path(good.path)).status == "DONE"
    # the failure left a data-less FAILED record that listings see
    assert bad.path is not None
    record = read_manifest(Path(bad.path))
    assert record.status == "FAILED" and record.files == []
    assert Path(bad.path).name == f"{site.core(missing)}_2026-11-17_01-00-00"
    # the good database was pruned (DAILY_BACKUPS=1), the failed one lost nothing
    assert not any(p.exists() for p in old_good)
    assert sorted(report.pruned) == sorted(p.name for p in old_good)
    assert all(p.exists() for p in old_missing)
    # one notification per database, in the old form fields
    assert receiver.statuses() == [
        ("INFO", f"Successfully backed up {site.spec(db)}."),
        ("ERROR", f"Failed to back up {site.spec(missing)}: database 'no_such_db' does not "
                  "exist on the server (or the account cannot see it)"),
    ]  # fmt: skip
    assert {p.fields["projectName"] for p in receiver.posts} == {"abc123-prod"}
    assert {p.fields["projectFriendlyName"] for p in receiver.posts} == {"Moodle Prod"}
    assert f"backup: {good.path}" in receiver.posts[0].fields["message"]
    assert report.notifications_sent == 2 and report.notifications_failed == 0
    # the password never shows up
    everything = caplog.text + json.dumps([p.fields for p in receiver.posts]) + report.to_json()
    assert PASSWORD not in everything
    assert "T0K3N-abcdef" not in caplog.text


def test_report_json_and_verification_after_backup(site: Site, db: str) -> None:
    cfg = site.config([db], MOODUMP_VERIFY_AFTER_BACKUP="offline")
    report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), notifier=Notifier())
    doc = json.loads(report.to_json())
    assert doc["exit_code"] == 0 and doc["action"] == "backup"
    (d,) = doc["databases"]
    assert d["verify"]["method"] == "offline" and d["verify"]["passed"] is True
    assert d["rows"] == 50 and d["size_bytes"] > 0 and d["tier"] == "daily"
    assert [c["check"] for c in d["checks"]] == ["free_space", "min_size", "shrink"]
    rec = read_verify_record(Path(d["path"]))
    assert rec is not None and rec.passed


def test_same_second_twice_gets_the_next_free_name(site: Site, db: str) -> None:
    cfg = site.config([db])
    at = local(2026, 11, 17, 1, 0)
    first = jobs.run_once(cfg, now=at, notifier=Notifier())
    second = jobs.run_once(cfg, now=at, notifier=Notifier())
    assert first.exit_code == second.exit_code == 0
    names = [Path(str(r.databases[0].path)).name for r in (first, second)]
    assert names == [f"{site.core(db)}_2026-11-17_01-00-00", f"{site.core(db)}_2026-11-17_01-00-01"]
    assert len(done_dirs(site.root)) == 2


def test_a_second_concurrent_run_gets_lock_busy(site: Site, db: str) -> None:
    cfg = site.config([db])
    cfg.lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from moodump.lock import RunLock\n"
            "lock = RunLock(sys.argv[1], purpose='run --once').acquire()\n"
            "print('held', flush=True); sys.stdin.read()",
            str(cfg.lock_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockBusy) as info:
            jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), notifier=Notifier())
        assert info.value.exit_code == 10
        assert f"pid {holder.pid}" in str(info.value)
        assert scan_backups(site.root, TZ) == []  # no second dump
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    # released: the next run goes ahead
    assert jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), notifier=Notifier()).exit_code == 0


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_webhook_down_does_not_change_the_result(site: Site, db: str) -> None:
    cfg = site.config([db], WEBHOOK_URL=f"http://127.0.0.1:{_closed_port()}/hook")
    sleeps = Sleeps()
    report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), sleep=sleeps)
    assert report.exit_code == 0
    assert report.databases[0].status == "ok"
    assert (report.notifications_sent, report.notifications_failed) == (0, 1)
    assert sleeps.calls == [2.0, 4.0]  # the notifier's retries, on the injected sleep


def test_free_space_precheck_fails_and_still_alerts(
    site: Site, db: str, receiver: Receiver
) -> None:
    cfg = site.config([db], WEBHOOK_URL=receiver.url, MOODUMP_MIN_FREE_SPACE="1000000T")
    report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0))
    (res,) = report.databases
    assert (res.status, res.exit_code) == ("failed", 7)
    assert "not enough free space" in str(res.error)
    record = read_manifest(Path(str(res.path)))
    assert record.status == "FAILED" and "needed" in str(record.error)
    assert [s for s, _ in receiver.statuses()] == ["ERROR"]
    assert "free space" in receiver.posts[0].fields["message"]


def test_unusable_backup_dir_fails_the_run_and_alerts(
    site: Site, db: str, receiver: Receiver
) -> None:
    blocker = site.tmp / "not-a-dir"
    blocker.write_text("a file where the backup volume should be")
    cfg = site.config([db], WEBHOOK_URL=receiver.url, BACKUP_DIR=f"{blocker}/backups/")
    with pytest.raises(StorageError, match="cannot create the backup folder"):
        jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0))
    with pytest.raises(StorageError, match="cannot create the backup folder"):
        jobs.verify_all(cfg, now=local(2026, 11, 17, 4, 0), method="offline")
    assert [s for s, _ in receiver.statuses()] == ["ERROR", "ERROR"]
    assert "could not start" in receiver.statuses()[0][1]


def test_stop_during_a_dump_publishes_nothing_and_prunes_nothing(
    site: Site, db: str, db2: str
) -> None:
    cfg = site.config([db, db2], DAILY_BACKUPS="1")
    old = fake_backup(site.root, f"daily/2026-11-16/{site.core(db)}_2026-11-16_01-00-00")
    stop = threading.Event()

    def progress(spec: str, event: Any) -> None:
        if spec == site.spec(db2):
            stop.set()  # as the SIGTERM handler of `moodump run` does

    report = jobs.run_once(
        cfg, now=local(2026, 11, 17, 1, 0), notifier=Notifier(), stop=stop, progress=progress
    )
    first, second = report.databases
    assert first.status == "ok"
    assert (second.status, second.exit_code) == ("failed", 130)
    assert report.interrupted and report.exit_code == 130
    assert read_manifest(Path(str(second.path))).status == "FAILED"
    assert not any(site.core(db2) in d for d in done_dirs(site.root))
    assert old.exists() and report.pruned == []  # an interrupted run prunes nothing


def test_a_dump_past_max_runtime_is_killed_fails_closed_and_alerts(
    site: Site, db: str, db2: str, root_settings: ConnSettings, receiver: Receiver
) -> None:
    """A table locked by another session makes the dump wait; past MOODUMP_MAX_RUNTIME
    its queries are killed, only a FAILED record is published, the failure is notified
    with its own exit code, and the next database still runs."""
    cfg = site.config(
        [db, db2], MOODUMP_MAX_RUNTIME="1s", WEBHOOK_URL=receiver.url, MOODUMP_THREADS="2"
    )
    with connect(root_settings) as holder:
        holder.execute(f"LOCK TABLES {quote_ident(db)}.mdl_user WRITE")
        report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0))
        with connect(root_settings) as c:
            waiting = c.query(
                "SELECT ID FROM information_schema.PROCESSLIST "
                f"WHERE (DB = '{db}' OR INFO LIKE '%{db}%') AND ID <> CONNECTION_ID() "
                f"AND ID <> {holder.thread_id()}"
            )
        holder.execute("UNLOCK TABLES")
    first, second = report.databases
    assert (first.status, first.exit_code) == ("failed", 14)
    assert "maximum run time" in str(first.error) and "MOODUMP_MAX_RUNTIME" in str(first.error)
    assert waiting == []  # its queries were killed, not left waiting for the lock
    record = read_manifest(Path(str(first.path)))
    assert record.status == "FAILED" and "maximum run time" in str(record.error)
    assert not any(site.core(db) in d for d in done_dirs(site.root))
    assert (second.status, second.exit_code) == ("ok", 0)  # the run went on
    assert report.exit_code == 14 and not report.interrupted
    assert [s for s, _ in receiver.statuses()] == ["ERROR", "INFO"]
    assert "maximum run time" in receiver.posts[0].fields["message"]


# --------------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    ("env", "code", "status"),
    [
        # warnings alone exit 0 (reported, notified WARN); MOODUMP_STRICT makes them 1
        ({"MOODUMP_SHRINK_MODE": "warn"}, 0, "warning"),
        ({"MOODUMP_SHRINK_MODE": "warn", "MOODUMP_STRICT": "1"}, 1, "warning"),
        ({"MOODUMP_SHRINK_MODE": "fail"}, 11, "failed"),
    ],
)
def test_shrink_check(
    site: Site,
    root_settings: ConnSettings,
    fresh_db: str,
    account: str,
    receiver: Receiver,
    env: dict[str, str],
    code: int,
    status: str,
) -> None:
    fill(root_settings, fresh_db, 10, random_rows=6000)
    cfg = site.config([fresh_db], DAILY_BACKUPS="1", WEBHOOK_URL=receiver.url, **env)
    first = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0))
    assert first.exit_code == 0
    with connect(root_settings) as c:
        c.execute(f"DELETE FROM {quote_ident(fresh_db)}.mdl_files WHERE id > 10")
    second = jobs.run_once(cfg, now=local(2026, 11, 18, 1, 0))
    (res,) = second.databases
    assert (second.exit_code, res.status) == (code, status)
    assert second.to_dict()["databases"][0]["warnings"] == res.warnings
    shrink = [c for c in res.checks if c["check"] == "shrink"]
    assert shrink[0]["level"] == env["MOODUMP_SHRINK_MODE"]
    assert "smaller than the previous good one" in shrink[0]["message"]
    first_path = Path(str(first.databases[0].path))
    if status == "failed":
        # a backup that failed its checks never makes retention remove the good one
        assert first_path.exists() and second.pruned == []
        assert "failed a size check" in str(res.error)
    else:
        assert not first_path.exists() and second.pruned == [first_path.name]
        assert any("smaller" in w for w in res.warnings)
    assert [s for s, _ in receiver.statuses()] == [
        "INFO",
        "WARN" if status == "warning" else "ERROR",
    ]


def test_min_size(site: Site, db: str) -> None:
    report = jobs.run_once(
        site.config([db], MOODUMP_MIN_SIZE="100M"),
        now=local(2026, 11, 17, 1, 0),
        notifier=Notifier(),
    )
    assert report.exit_code == 11
    assert "below the minimum" in str(report.databases[0].error)


# --------------------------------------------------------------------------- retention


def test_retention_over_eight_daily_runs(site: Site, db: str) -> None:
    """Mon 16 .. Mon 23 Nov 2026 at 01:00; Sunday the 22nd goes to weekly/. The first
    backup is the only verified one, so it outlives the daily count."""
    cfg = site.config([db], DAILY_BACKUPS="3", WEEKLY_BACKUPS="1", MONTHLY_BACKUPS="1")
    pruned = []
    for day in range(16, 24):
        verify = "offline" if day == 16 else None
        report = jobs.run_once(
            cfg, now=local(2026, 11, day, 1, 0), verify=verify, notifier=Notifier()
        )
        assert report.exit_code == 0, report.to_json()
        pruned.append([n[-19:-9] for n in report.pruned])
    assert pruned == [[], [], [], [], ["2026-11-17"], ["2026-11-18"], [], ["2026-11-19"]]
    core = site.core(db)
    assert done_dirs(site.root) == [
        f"daily/2026-11-{d}/{core}_2026-11-{d}_01-00-00" for d in (16, 20, 21, 23)
    ] + [f"weekly/2026-11-22/{core}_2026-11-22_01-00-00"]
    plan = prune(site.root, cfg.retention, local(2026, 11, 23, 2, 0), TZ, dry_run=True).plan
    rules = {d.backup.id[-19:-9]: d.rule for d in plan.decisions}
    assert rules == {
        "2026-11-23": "daily",
        "2026-11-21": "daily",
        "2026-11-20": "daily",
        "2026-11-22": "weekly",
        "2026-11-16": "newest_verified",
    }


# --------------------------------------------------------------------------- verify all


def test_verify_all_after_a_failed_day_reports_the_stale_backup(
    site: Site, db: str, receiver: Receiver
) -> None:
    cfg = site.config([db], WEBHOOK_URL=receiver.url)
    assert jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0)).exit_code == 0
    ok = jobs.verify_all(cfg, now=local(2026, 11, 17, 4, 0), method="offline")
    assert ok.exit_code == 0
    assert ok.databases[0].verify is not None and ok.databases[0].verify["passed"]

    # The next night the backup fails (the password was rotated on the server only).
    broken = site.config([db], WEBHOOK_URL=receiver.url, DATABASE_PASSWORD="wrong-password")
    failed = jobs.run_once(broken, now=local(2026, 11, 18, 1, 0))
    assert failed.exit_code == 3
    stale = jobs.verify_all(cfg, now=local(2026, 11, 18, 4, 0), method="offline")
    (res,) = stale.databases
    assert stale.exit_code == 11 and res.status == "failed"
    assert res.verify is not None and res.verify["passed"]  # the old file is fine ...
    assert "not from today" in str(res.error)  # ... but it is not a current backup
    assert "2026-11-18 01:00" in str(res.error) and "FAILED" in str(res.error)
    assert res.path is not None and "2026-11-17_01-00-00" in res.path
    assert receiver.statuses()[-1][0] == "ERROR"
    assert "Verification of" in receiver.statuses()[-1][1]
    assert [s for s, _ in receiver.statuses()] == ["INFO", "INFO", "ERROR", "ERROR"]


def test_verify_all_without_any_backup(site: Site, db: str) -> None:
    report = jobs.verify_all(site.config([db]), now=local(2026, 11, 17, 4, 0), method="offline",
                             notifier=Notifier())  # fmt: skip
    assert report.exit_code == 5
    assert "no finished backup" in str(report.databases[0].error)


# --------------------------------------------------------------------------- off-site


@pytest.fixture(scope="module")
def certfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = dt.datetime(2020, 1, 1, tzinfo=timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("tls") / "server.pem"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key_pem)
    return path


@pytest.fixture
def ftps(certfile: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real FTPS server (explicit TLS, TLS required for data too) on 127.0.0.1."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    home = tmp_path / "ftphome"
    home.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("offsite", "ftp-Pa55/w0rd", str(home), perm="elradfmwMT")
    handler = type(
        "Handler",
        (TLS_FTPHandler,),
        {
            "authorizer": authorizer,
            "certfile": str(certfile),
            "tls_control_required": True,
            "tls_data_required": True,
            "passive_ports": None,
        },
    )
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            server.serve_forever(timeout=0.01, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server.address[1], home
    finally:
        stopping.set()
        thread.join(5)


def test_ftps_copy_is_rechecked_and_follows_retention(
    site: Site, db: str, ftps: tuple[int, Path], certfile: Path
) -> None:
    port, home = ftps
    cfg = site.config(
        [db],
        DAILY_BACKUPS="1",
        FTP_URL=f"ftps://127.0.0.1:{port}/offsite/moodle/",
        FTP_USER="offsite",
        FTP_PASSWORD="ftp-Pa55/w0rd",
        MOODUMP_FTP_CA_FILE=str(certfile),
        MOODUMP_FTP_PRUNE="true",
    )
    first = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), notifier=Notifier(), sleep=Sleeps())
    (res,) = first.databases
    assert first.exit_code == 0, first.to_json()
    assert res.offsite is not None and res.offsite["ok"] is True
    assert res.offsite["check_method"] in ("server-hash", "download", "mixed")
    local_dir = Path(str(res.path))
    remote_dir = home / "offsite" / "moodle" / local_dir.name
    assert (remote_dir / "manifest.json").read_bytes() == (local_dir / "manifest.json").read_bytes()
    for f in read_manifest(local_dir).files:
        assert (remote_dir / f.name).read_bytes() == (local_dir / f.name).read_bytes()

    second = jobs.run_once(cfg, now=local(2026, 11, 18, 1, 0), notifier=Notifier(), sleep=Sleeps())
    assert second.exit_code == 0, second.to_json()
    assert second.pruned == [local_dir.name]
    assert second.pruned_remote == [local_dir.name]  # remote retention follows local
    remote = sorted(p.name for p in (home / "offsite" / "moodle").iterdir())
    assert remote == [Path(str(second.databases[0].path)).name]


def test_a_failed_offsite_copy_fails_the_database_and_prunes_nothing(site: Site, db: str) -> None:
    """Issue 12: a failed upload never prunes anything; the local backup stays (it used
    to let local retention run, which could leave no copy off-site of older backups)."""
    cfg = site.config(
        [db],
        DAILY_BACKUPS="1",
        FTP_URL=f"ftps://127.0.0.1:{_closed_port()}/offsite/",
        FTP_PASSWORD="ftp-secret-xyz",
        MOODUMP_FTP_RETRIES="1",
    )
    old = fake_backup(site.root, f"daily/2026-11-16/{site.core(db)}_2026-11-16_01-00-00")
    sleeps = Sleeps()
    report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), notifier=Notifier(), sleep=sleeps)
    (res,) = report.databases
    assert (res.status, res.exit_code, res.backup_ok) == ("failed", 7, False)
    assert res.offsite is not None and res.offsite["ok"] is False
    assert res.offsite["copies"][0]["exit_code"] == 7
    assert len(sleeps.calls) == 1  # one retry, on the injected sleep
    assert old.exists()  # nothing is pruned after a failed upload
    assert res.path is not None and Path(res.path, "manifest.json").exists()  # the new one stays
    assert report.pruned == []


# --------------------------------------------------------------------------- the loop


class FakeClock:
    """Time that only moves when the scheduler sleeps (kept in UTC: no wall-clock maths)."""

    def __init__(self, start: datetime) -> None:
        self.t = start.astimezone(timezone.utc)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= 60
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)


def test_cron_mode_runs_each_line_at_its_minute_in_tz(
    site: Site, db: str, receiver: Receiver
) -> None:
    cron = "0 1 * * * default ./backup.sh -s\n0 4 * * * default ./backup.sh -s -v all"
    cfg = site.config([db], cron=cron, WEBHOOK_URL=receiver.url)
    clock = FakeClock(local(2026, 11, 17, 0, 58, 30))
    stop = threading.Event()
    seen: list[tuple[str, datetime, jobs.RunReport]] = []

    def on_report(report: jobs.RunReport) -> None:
        seen.append((report.action, clock.now().astimezone(TZ), report))
        if report.action == ACTION_VERIFY:
            stop.set()

    code = jobs.run_scheduled(
        cfg, clock=clock.now, sleep=clock.sleep, stop=stop, on_report=on_report
    )
    assert code == 0
    assert [(a, t) for a, t, _ in seen] == [
        (ACTION_BACKUP, local(2026, 11, 17, 1, 0)),
        (ACTION_VERIFY, local(2026, 11, 17, 4, 0)),
    ]
    backup, verified = seen[0][2], seen[1][2]
    assert Path(str(backup.databases[0].path)).name == f"{site.core(db)}_2026-11-17_01-00-00"
    assert verified.exit_code == 0 and verified.databases[0].path == backup.databases[0].path
    assert sum(clock.sleeps) == 90 + 3 * 3600  # 00:58:30 -> 01:00 -> 04:00, nothing more
    assert [s for s, _ in receiver.statuses()] == ["INFO"] * 3
    assert receiver.statuses()[0][1].startswith("moodump run started (cron mode")


def test_cron_mode_across_spring_forward(site: Site, db: str) -> None:
    """02:30 does not exist on 8 March 2026 in Vancouver: the run happens at 03:00 PDT."""
    cfg = site.config([db], cron="30 2 * * * default ./backup.sh -s")
    clock = FakeClock(local(2026, 3, 8, 1, 59))
    stop = threading.Event()
    paths: list[str] = []

    def on_report(report: jobs.RunReport) -> None:
        paths.append(str(report.databases[0].path))
        stop.set()

    jobs.run_scheduled(cfg, clock=clock.now, sleep=clock.sleep, stop=stop, on_report=on_report,
                       notifier=Notifier())  # fmt: skip
    assert clock.now() == datetime(2026, 3, 8, 10, 0, tzinfo=timezone.utc)
    # a Sunday: weekly tier, named in local wall-clock time as before
    assert paths == [str(site.root / "weekly/2026-03-08" / f"{site.core(db)}_2026-03-08_03-00-00")]


def test_legacy_mode_runs_now_then_every_backup_period(site: Site, db: str) -> None:
    cfg = site.config([db], cron="", BACKUP_PERIOD="6h")
    assert cfg.mode == "legacy"
    clock = FakeClock(local(2026, 11, 17, 10, 0))
    stop = threading.Event()
    names: list[str] = []

    def on_report(report: jobs.RunReport) -> None:
        names.append(Path(str(report.databases[0].path)).name[-19:])
        if len(names) == 2:
            stop.set()

    jobs.run_scheduled(cfg, clock=clock.now, sleep=clock.sleep, stop=stop, on_report=on_report,
                       notifier=Notifier())  # fmt: skip
    assert names == ["2026-11-17_10-00-00", "2026-11-17_16-00-00"]


def test_stop_between_runs_ends_the_loop(site: Site, db: str) -> None:
    cfg = site.config([db])
    clock = FakeClock(local(2026, 11, 17, 12, 0))
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            stop.set()  # e.g. SIGTERM while waiting for 01:00 tomorrow

    code = jobs.run_scheduled(cfg, clock=clock.now, sleep=sleep, stop=stop, notifier=Notifier())
    assert code == 0 and len(clock.sleeps) == 3
    assert scan_backups(site.root, TZ) == []


def test_scheduled_jobs_mapping(site: Site) -> None:
    cron = "\n".join(
        [
            "0 1 * * * default ./backup.sh -s",
            "0 4 * * * default ./backup.sh -s -v all",
            f"0 5 * * * default ./backup.sh -s -v {site.spec('moodle')}",
            "30 5 * * * default moodump check --max-age 26h",
            "0 6 * * * default ./backup.sh -l",
            "15 6 * * * default moodump run --verify-all",
            f"30 6 * * * default moodump run --once --database {site.spec('moodle')}",
            "0 7 * * * default /usr/bin/some-other-tool",
        ]
    )
    cfg = site.config(["moodle"], cron=cron)
    parse = moodump_line_parser(cfg)
    got = [(c.line, j.kind, j.databases, j.check) for c, j in jobs.scheduled_jobs(cfg, parse)]
    assert got == [
        (3, ACTION_BACKUP, (), None),
        (4, ACTION_VERIFY, (), None),
        (5, ACTION_VERIFY, (site.spec("moodle"),), None),
        (6, ACTION_CHECK, (), CheckOptions(max_age=timedelta(hours=26))),
        (8, ACTION_VERIFY, (), None),
        (9, ACTION_BACKUP, (site.spec("moodle"),), None),
    ]
    unknown = site.config(["moodle"], cron="0 5 * * * default ./backup.sh -s -v other/db")
    with pytest.raises(ConfigError, match="not a configured database"):
        jobs.scheduled_jobs(unknown)
    unknown = site.config(["moodle"], cron="0 5 * * * default moodump run --once --database x/y")
    with pytest.raises(ConfigError, match="not a configured database"):
        jobs.scheduled_jobs(unknown, moodump_line_parser(unknown))
    with pytest.raises(ConfigError, match="needs the CLI's parser"):
        jobs.scheduled_jobs(cfg)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("moodump verify --all", "No such option '--all'"),
        ("moodump check --min-size ten", "--min-size"),
        ("moodump check --max-age", "requires an argument"),
        ("moodump run", "without --once is the scheduler itself"),
        ("moodump run --once --backup-dir /x", "--backup-dir is not applied"),
        ("moodump frobnicate", "'frobnicate' is not a moodump command"),
    ],
)
def test_a_cron_line_the_cli_rejects_is_rejected(site: Site, command: str, message: str) -> None:
    cfg = site.config(["moodle"], cron=f"0 5 * * * default {command}")
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        jobs.scheduled_jobs(cfg, moodump_line_parser(cfg))
    assert f"line 3: '{command}'" in str(err.value)


def test_scheduled_check_applies_every_option(site: Site) -> None:
    """`check --min-size 10M` was shown as valid and then ignored when it ran."""
    cfg = site.config(
        ["moodle"], cron="0 5 * * * default moodump check --min-size 10M --shrink-mode fail"
    )
    [(_, job)] = jobs.scheduled_jobs(cfg, moodump_line_parser(cfg))
    assert job.check == CheckOptions(min_size=10 * 1024 * 1024, shrink_mode="fail")


def test_scheduled_check_fails_when_the_newest_verified_backup_is_old(site: Site, db: str) -> None:
    cfg = site.config([db])
    jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), verify="offline", notifier=Notifier())
    fresh = jobs.check_once(
        cfg, CheckOptions(max_age=timedelta(hours=26)), now=local(2026, 11, 17, 5, 0), notifier=Notifier()
    )
    assert fresh.exit_code == 0
    old = jobs.check_once(
        cfg, CheckOptions(max_age=timedelta(hours=2)), now=local(2026, 11, 17, 5, 0), notifier=Notifier()
    )
    assert old.exit_code == 11
    assert "newest verified backup is 4h 0m old" in str(old.databases[0].error)


def test_ignored_or_changed_settings_are_said_at_the_start_of_a_run(
    site: Site, db: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A setting the old container honoured is never lost silently (issue 11, point 5)."""
    cfg = site.config(
        [db],
        WEBHOOK_URL=receiver.url,
        TABLE_SCHEMA="public",  # PostgreSQL-only: ignored
        S3_PRUNE_BACKUPS="true",  # means something else now
        MOODUMP_THREAD="4",  # a typo
    )
    assert len(cfg.run_warnings) == 3
    with caplog.at_level(logging.WARNING):
        report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0), verify="none")
    assert report.exit_code == 0
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("TABLE_SCHEMA", "S3_PRUNE_BACKUPS", "MOODUMP_THREAD"):
        assert any(name in m for m in logged), (name, logged)
        assert any(name in p.fields.get("message", "") for p in receiver.posts), name
    assert report.to_dict()["setting_warnings"] == list(cfg.run_warnings)


def test_scheduled_run_signs_and_its_verification_checks_the_key(
    site: Site, db: str, tmp_path: Path
) -> None:
    """MOODUMP_SIGNING_KEY signs every backup of ``run``; with MOODUMP_VERIFY_KEY the
    verification after the backup checks it (a key that does not match fails the run)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from moodump.crypto import SIGNATURE_NAME, check_signature, load_verify_keys

    def pem(key: Ed25519PrivateKey) -> tuple[str, str]:
        priv = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        pub = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return priv, pub

    priv, pub = pem(Ed25519PrivateKey.generate())
    _, other_pub = pem(Ed25519PrivateKey.generate())
    cfg = site.config([db], MOODUMP_SIGNING_KEY=priv, MOODUMP_VERIFY_KEY=pub,
                      MOODUMP_VERIFY_AFTER_BACKUP="offline")  # fmt: skip
    assert priv not in repr(cfg)
    report = jobs.run_once(cfg, now=local(2026, 11, 17, 1, 0))
    (res,) = report.databases
    assert (res.status, res.exit_code) == ("ok", 0), res.error
    path = Path(str(res.path))
    check_signature(
        (path / "manifest.json").read_bytes(),
        (path / SIGNATURE_NAME).read_bytes(),
        load_verify_keys(pub),
        where=str(path),
    )
    cfg = site.config([db], MOODUMP_SIGNING_KEY=priv, MOODUMP_VERIFY_KEY=other_pub,
                      MOODUMP_VERIFY_AFTER_BACKUP="offline")  # fmt: skip
    report = jobs.run_once(cfg, now=local(2026, 11, 18, 1, 0))
    (res,) = report.databases
    assert res.exit_code == 8 and "not a verify key" in str(res.error), res.error


def test_an_interrupted_encryption_at_rest_is_finished_by_the_next_run(tmp_path: Path) -> None:
    """MOODUMP_ENCRYPT_AT_REST keeps only ciphertext on the volume. A run stopped inside
    the encryption (a kill, a pod eviction: it takes a while for a big backup) left the
    plaintext backup, or a hidden plaintext copy, there for good; the next run finishes
    each of the four points it can stop at."""
    from pyrage import x25519

    from moodump.crypto import ENCRYPTED_MANIFEST_NAME, encrypt_backup_dir, parse_recipients
    from moodump.jobs.offsite import OffsitePlan, finish_at_rest

    recipients = parse_recipients(str(x25519.Identity.generate().to_public()))
    plan = OffsitePlan([], recipients, at_rest=True)
    root = tmp_path / "backups"
    names = [f"mysql-moodle[1]_2026-01-0{d}_01-00-00" for d in range(1, 5)]
    paths = [fake_backup(root, f"daily/2026-01-0{d}/{n}") for d, n in enumerate(names, 1)]
    # 1: stopped while encrypting (the publishing directory of the ciphertext is left)
    partial = paths[0].parent / f"..{names[0]}.encrypted.partial-4242"
    partial.mkdir()
    (partial / "manifest.json.age").write_bytes(b"half")
    # 2: stopped after the encryption, before the plaintext was moved aside
    encrypt_backup_dir(paths[1], paths[1].parent / f".{names[1]}.encrypted", recipients)
    # 3: stopped between the two renames: only the hidden copies are left
    encrypt_backup_dir(paths[2], paths[2].parent / f".{names[2]}.encrypted", recipients)
    paths[2].rename(paths[2].parent / f".{names[2]}.plaintext")
    # 4: stopped while removing the plaintext
    aside = paths[3].parent / f".{names[3]}.plaintext"
    paths[3].rename(aside)
    encrypt_backup_dir(aside, paths[3], recipients)
    (aside / "manifest.json").unlink()

    assert finish_at_rest(plan, root) == paths
    for path in paths:
        assert (path / ENCRYPTED_MANIFEST_NAME).is_file(), path
    assert not list(root.rglob("manifest.json")) and not list(root.rglob("data.bin"))
    assert not [p for p in root.rglob(".*")]
    assert finish_at_rest(plan, root) == []


def test_the_staging_of_a_stopped_encrypted_copy_is_removed_by_the_next_run(
    tmp_path: Path,
) -> None:
    """Off-site copies are encrypted into BACKUP_DIR/.moodump-offsite/NAME first; a run
    stopped there left a backup's worth of ciphertext that only a copy of the very same
    backup would have removed."""
    from moodump.jobs.offsite import STAGING_DIR, sweep_staging

    stale = tmp_path / STAGING_DIR / "mysql-moodle_2026-01-01_01-00-00"
    stale.mkdir(parents=True)
    (stale / "manifest.json.age").write_bytes(b"x" * 1000)
    assert sweep_staging(tmp_path) == [stale]
    assert not (tmp_path / STAGING_DIR).exists()
    assert sweep_staging(tmp_path) == []
