"""The secrets audit: a full cycle, and no configured secret anywhere it should not be.

The cycle runs the real command as processes: ``moodump dump``, ``moodump run --once``
(off-site copy to FTPS, notifications to a webhook, PagerDuty configured), ``moodump
verify --local`` (a throwaway mariadbd) and ``moodump restore``. Meanwhile a sampler
thread reads every process's command line (``/proc/*/cmdline``) again and again, so a
secret passed as an argument to moodump or to anything it starts is seen.

Afterwards every place a secret could leak is scanned for each configured secret (as it
is and percent-encoded): the sampled command lines, every command's stdout and stderr
(text and JSON logs, at debug level), the bodies the webhook receiver got, ``moodump
config`` and ``moodump config --json``, and every file of the backups (local, the
dump's, the FTPS copy), data files decompressed. No table stores a secret, so none may
appear in a backup either.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus

import pytest

import moodump
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.manifest import read_manifest
from rig_ftps import PASSWORD as FTP_PASSWORD
from rig_ftps import USER as FTP_USER
from rig_ftps import FtpServers, make_certfile

pytestmark = pytest.mark.storage

DB_USER = "audit_bk"
DB_PASSWORD = "Db-Audit-pw.71c3"
WEBHOOK_TOKEN = "T0k3n-audit-9f2e51"
S3_PASSWORD = "S3-secret-audit-55aa"
PD_KEY = "pd-svc-key-audit-77bb"
SECRETS = {
    "DATABASE_PASSWORD": DB_PASSWORD,
    "FTP_PASSWORD": FTP_PASSWORD,
    "WEBHOOK_URL token": WEBHOOK_TOKEN,
    "S3_PASSWORD": S3_PASSWORD,
    "PGDUTY_SVC_KEY": PD_KEY,
}


# --------------------------------------------------------------------------- the rig


class CmdlineSampler(threading.Thread):
    """Reads every process's command line until stopped; keeps each distinct one."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[bytes] = set()
        self.rounds = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                        self.seen.add(fh.read())
                except OSError:
                    pass  # the process ended meanwhile
            self.rounds += 1
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


@dataclass
class Receiver:
    url: str
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records every request body (webhook, PagerDuty)."""
    rec = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def audit_db(root_settings: ConnSettings, fresh_db: str) -> Iterator[str]:
    """A small Moodle-like database and an account with a password (stored in no table
    of it) that may dump and restore."""
    q = quote_ident(fresh_db)
    with connect(root_settings) as c:
        c.execute(f"CREATE USER IF NOT EXISTS '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}'")
        c.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'%'")
        c.execute(
            f"CREATE TABLE {q}.mdl_user (id BIGINT PRIMARY KEY, username VARCHAR(100), "
            "password VARCHAR(255))"
        )
        c.execute(
            f"INSERT INTO {q}.mdl_user SELECT seq, CONCAT('user', seq), "
            f"CONCAT('$2y$10$', SHA2(seq, 256)) FROM {q}.seq_1_to_300"
        )
        c.execute(f"CREATE VIEW {q}.v_users AS SELECT id, username FROM {q}.mdl_user")
    yield fresh_db
    with connect(root_settings) as c:
        c.execute(f"DROP USER IF EXISTS '{DB_USER}'@'%'")


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moodump", *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _file_texts(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file below ``root``, data files decompressed."""
    import zstandard

    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        elif path.name.endswith(".zst"):
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        yield path, data


def _forms(secret: str) -> set[bytes]:
    """The secret as it is and percent-encoded (URLs, form bodies)."""
    return {secret.encode(), quote(secret, safe="").encode(), quote(secret).encode()}


# --------------------------------------------------------------------------- the audit


def test_no_secret_leaks_during_a_full_cycle(
    tmp_path: Path,
    mariadb: Any,
    root_settings: ConnSettings,
    audit_db: str,
    receiver: Receiver,
) -> None:
    certfile = make_certfile(tmp_path / "server.pem")
    ftp = FtpServers(certfile, tmp_path / "ftproot")
    ftp_server = ftp.start()
    port = mariadb.port
    conf = tmp_path / "backup.conf"
    conf.write_text(f"127.0.0.1:{port}/{audit_db}\n0 1 * * * default ./backup.sh -s\n")
    backups = tmp_path / "backups"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(moodump.__file__).resolve().parents[1]),
        "TZ": "UTC",
        "BACKUP_CONF": str(conf),
        "BACKUP_DIR": f"{backups}/",
        "BACKUP_STRATEGY": "rolling",
        "DATABASE_USER": DB_USER,
        "DATABASE_PASSWORD": DB_PASSWORD,
        "DATABASE_SERVER_TIMEOUT": "600",
        "MOODUMP_THREADS": "2",
        "FTP_URL": ftp_server.url("/offsite/"),
        "FTP_USER": FTP_USER,
        "FTP_PASSWORD": FTP_PASSWORD,
        "MOODUMP_FTP_CA_FILE": str(certfile),
        "WEBHOOK_URL": f"{receiver.url}/hooks/{WEBHOOK_TOKEN}",
        "MOODUMP_NOTIFY_FORMAT": "json",
        "PGDUTY_SVC_KEY": PD_KEY,
        "PGDUTY_URL": f"{receiver.url}/pagerduty",
        "S3_PASSWORD": S3_PASSWORD,  # set, unused (no S3_ENDPOINT)
        "S3_USER": "audit-access-key",
        "ENVIRONMENT_NAME": "audit",
        "BACKUP_LOG_LEVEL": "debug",
    }
    client_env = {**env, "MYSQL_PWD": DB_PASSWORD}
    outputs: dict[str, str] = {}
    sampler = CmdlineSampler()
    sampler.start()
    try:
        dumped = tmp_path / "one-off"
        res = _run(
            ["--log-level", "debug", "dump", "-H", "127.0.0.1", "-P", str(port), "-u", DB_USER,
             "-o", str(dumped), "--json", audit_db],
            client_env, tmp_path,
        )  # fmt: skip
        outputs["dump"] = res.stdout + res.stderr
        assert res.returncode == 0, res.stderr

        res = _run(["--log-format", "json", "run", "--once", "--json"], env, tmp_path)
        outputs["run --once"] = res.stdout + res.stderr
        assert res.returncode == 0, res.stderr
        (db_report,) = json.loads(res.stdout)["databases"]
        backup = Path(db_report["path"])
        assert read_manifest(backup).status == "DONE"
        assert any((ftp_server.root / "offsite").rglob("manifest.json")), "no off-site copy"
        assert receiver.bodies, "no notification was posted"

        res = _run(["--log-level", "debug", "verify", "--local", str(backup)], env, tmp_path)
        outputs["verify --local"] = res.stdout + res.stderr
        assert res.returncode == 0, res.stdout + res.stderr

        target = audit_db + "_r"
        res = _run(
            ["--log-level", "debug", "restore", "-H", "127.0.0.1", "-P", str(port),
             "-u", DB_USER, "-d", target, str(backup)],
            client_env, tmp_path,
        )  # fmt: skip
        outputs["restore"] = res.stdout + res.stderr
        assert res.returncode == 0, res.stderr
    finally:
        sampler.stop()
        ftp.stop()
        with connect(root_settings) as c:
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(audit_db + '_r')}")

    for args in (["config"], ["config", "--json"]):
        res = _run(args, env, tmp_path)
        assert res.returncode == 0, res.stderr
        outputs[" ".join(args)] = res.stdout + res.stderr

    # The sampler saw the cycle's processes (moodump itself and the throwaway mariadbd).
    assert sampler.rounds > 10
    cmdlines = [c.replace(b"\0", b" ") for c in sampler.seen]
    assert any(b"moodump" in c and b"run" in c for c in cmdlines)
    assert any(b"mariadbd" in c or b"mysqld" in c for c in cmdlines)

    places: list[tuple[str, bytes]] = [(f"command line {c[:120]!r}", c) for c in cmdlines]
    places += [(f"output of moodump {k}", v.encode()) for k, v in outputs.items()]
    for body in receiver.bodies:
        places.append(("a notification body", body))
        places.append(("a notification body (decoded)", unquote_plus(body.decode()).encode()))
    for root in (backups, dumped, ftp_server.root):
        places += [(f"file {p}", data) for p, data in _file_texts(root)]
    assert any(name.endswith(".gz") for name, _ in places)

    leaks = [
        f"{what} in {where}"
        for where, text in places
        for what, secret in SECRETS.items()
        if any(form in text for form in _forms(secret))
    ]
    assert not leaks, "\n".join(leaks)
