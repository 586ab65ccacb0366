"""Shared pieces of the failure tests (tests/test_failures_*.py).

The failure tests drive the real ``moodump`` CLI in a subprocess (the password only ever
in ``MYSQL_PWD``), against real MariaDB servers, and really kill processes. To keep them
fast, the two source databases and their backups are built once per session on the
session server and cached here; tests that damage a backup work on a copy.

Waiting on another process (a file appearing, a progress row being committed) is done by
polling with a deadline: those are events in other processes, not our own clock.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident, quote_str

# A small database with every kind of object a partial restore must get right.
SMALL_SQL = """
CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, n INT NOT NULL DEFAULT 0);
CREATE TABLE b (id INT PRIMARY KEY, a_id INT NOT NULL, note TEXT);
CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(50)) ENGINE=InnoDB;
INSERT INTO a SELECT seq, CONCAT('a', seq), seq % 7 FROM seq_1_to_500;
INSERT INTO b SELECT seq, seq % 500 + 1, REPEAT('x', seq % 50) FROM seq_1_to_300;
INSERT INTO log (msg) VALUES ('one'), ('two');
CREATE TRIGGER a_bi BEFORE INSERT ON a FOR EACH ROW SET NEW.n = NEW.n + 1;
CREATE TRIGGER b_ai AFTER INSERT ON b FOR EACH ROW INSERT INTO log (msg) VALUES ('b');
CREATE VIEW ab AS SELECT a.id, a.v, b.note FROM a JOIN b ON b.a_id = a.id;
CREATE PROCEDURE p_count() SELECT COUNT(*) FROM a;
"""

BIG_ROWS = 200_000


def big_sql(rows: int = BIG_ROWS) -> list[str]:
    """Statements for a table of ``rows`` incompressible-ish rows (about 270 B each)."""
    return [
        # The secondary index is big enough to be built after the load (resume must too).
        "CREATE TABLE w (id INT PRIMARY KEY, a CHAR(128) NOT NULL, b CHAR(128) NOT NULL, "
        "KEY ix_b (b(12))) ENGINE=InnoDB",
        f"INSERT INTO w SELECT seq, SHA2(seq, 512), SHA2(-seq, 512) FROM seq_1_to_{rows}",
        "CREATE TABLE s (id INT PRIMARY KEY, v INT NOT NULL)",
        "INSERT INTO s SELECT seq, seq * 3 FROM seq_1_to_100",
        # Exact statistics, so --chunk-size splits w into many files.
        "ANALYZE TABLE w, s",
    ]


# -- running the CLI ------------------------------------------------------------------------
def cli_env(password: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    env["MYSQL_PWD"] = password
    return env


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "moodump", *args]


def run_cli(
    *args: str, password: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``moodump ARGS`` to completion (stdin is not a terminal: no prompts)."""
    return subprocess.run(
        cli_argv(*args),
        env=cli_env(password),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn_cli(*args: str, password: str = "") -> subprocess.Popen[str]:
    """Start ``moodump ARGS`` in the background (stdout/stderr captured)."""
    return subprocess.Popen(
        cli_argv(*args),
        env=cli_env(password),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    """Wait for a spawned CLI; kill it (and fail) if it hangs."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"moodump still running after {timeout}s (hung); stderr: {err}"
        ) from None
    return proc.returncode, out, err


def conn_args(settings: ConnSettings) -> list[str]:
    return ["-H", settings.host, "-P", str(settings.port), "-u", settings.user]


def wait_for(
    predicate: Callable[[], object],
    what: str,
    *,
    timeout: float = 30,
    proc: subprocess.Popen[str] | None = None,
    interval: float = 0.002,
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"moodump ended (exit {proc.returncode}) before {what}; stdout: {out} stderr: {err}"
            )
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


# -- backup directories ------------------------------------------------------------------------
def partial_dirs(parent: Path) -> list[str]:
    """Hidden work directories of dumps (``.<name>.partial-<pid>``) left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)


def data_files_in_progress(parent: Path, name: str) -> list[Path]:
    return sorted(parent.glob(f".{name}.partial-*/data/*"))


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path (to prove it is untouched)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def read_json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def data_file_names(backup: Path) -> list[str]:
    m = read_json(backup / "manifest.json")
    files = m["files"]
    assert isinstance(files, list)
    return [f["name"] for f in files if f["kind"] == "data"]


# -- servers ----------------------------------------------------------------------------------
def execute(settings: ConnSettings, *statements: str, database: str | None = None) -> None:
    with connect(settings.with_database(database)) as c:
        for s in statements:
            c.execute(s)


def scalar(settings: ConnSettings, sql: str) -> bytes | None:
    with connect(settings) as c:
        return c.scalar(sql)


def databases(settings: ConnSettings) -> set[str]:
    with connect(settings) as c:
        return {(r[0] or b"").decode() for r in c.query("SHOW DATABASES")}


def tables(settings: ConnSettings, db: str) -> set[str]:
    with connect(settings) as c:
        return {
            (r[0] or b"").decode()
            for r in c.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                + quote_str(db)
            )
        }


def checksums(settings: ConnSettings, db: str) -> dict[str, bytes | None]:
    """CHECKSUM TABLE ... EXTENDED of every base table of ``db``."""
    out = {}
    with connect(settings) as c:
        for name in sorted(tables(settings, db)):
            kind = c.scalar(
                "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                f"{quote_str(db)} AND TABLE_NAME = {quote_str(name)}"
            )
            if kind != b"BASE TABLE":
                continue
            out[name] = c.query(f"CHECKSUM TABLE {quote_ident(db)}.{quote_ident(name)} EXTENDED")[
                0
            ][1]
    return out


def drop_database(settings: ConnSettings, db: str) -> None:
    execute(settings, f"DROP DATABASE IF EXISTS {quote_ident(db)}")


@contextlib.contextmanager
def account(
    settings: ConnSettings, grants: list[str], password: str = "pw-Fail-1"
) -> Iterator[ConnSettings]:
    """A throwaway account with exactly ``grants`` (``{user}`` is replaced by its name)."""
    name = "mdf_" + uuid.uuid4().hex[:8]
    user = f"'{name}'@'%'"
    execute(settings, f"CREATE USER {user} IDENTIFIED BY {quote_str(password)}")
    try:
        for g in grants:
            execute(settings, g.format(user=user))
        yield ConnSettings(host=settings.host, port=settings.port, user=name, password=password)
    finally:
        execute(settings, f"DROP USER IF EXISTS {user}")


def unique_db(prefix: str = "mdf") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# -- session-wide source databases and backups ---------------------------------------------------
@dataclass(frozen=True)
class Source:
    """A source database on the session server and a DONE backup of it."""

    settings: ConnSettings
    database: str
    backup: Path


_CACHE: dict[tuple[int, str], Source] = {}


def _build(settings: ConnSettings, kind: str, workdir: Path) -> Source:
    db = unique_db(f"mdf_{kind}")
    execute(settings, f"CREATE DATABASE {quote_ident(db)} CHARACTER SET utf8mb4")
    if kind == "small":
        for stmt in (s.strip() for s in SMALL_SQL.split(";\n")):
            if stmt:
                execute(settings, stmt, database=db)
        extra: list[str] = []
    else:
        execute(settings, *big_sql(), database=db)
        extra = ["--chunk-size", "2M"]
    out = workdir / f"{kind}-backup"
    res = run_cli(
        "dump", *conn_args(settings), "-q", *extra, "-o", str(out), db, password=settings.password
    )
    assert res.returncode == 0, res.stderr
    return Source(settings, db, out)


def source(settings: ConnSettings, kind: str, workdir_factory: Callable[[], Path]) -> Source:
    """The cached ``small`` or ``big`` source (built on first use in the session)."""
    key = (settings.port, kind)
    if key not in _CACHE:
        _CACHE[key] = _build(settings, kind, workdir_factory())
    return _CACHE[key]


def rewrite_data_file(backup: Path, name: str, transform: Callable[[bytes], bytes]) -> None:
    """Change a data file's rows and record its new size and sha256 in the manifest.

    The result passes the file checks (size, sha256) but not the row count / content digest:
    damage that only shows once the rows are read or loaded.
    """
    path = backup / name
    rows = transform(gzip.decompress(path.read_bytes()))
    data = gzip.compress(rows)
    path.write_bytes(data)
    manifest_path = backup / "manifest.json"
    m = json.loads(manifest_path.read_text(encoding="utf-8"))
    for f in m["files"]:
        if f["name"] == name:
            f["bytes"] = len(data)
            f["sha256"] = hashlib.sha256(data).hexdigest()
    manifest_path.write_text(json.dumps(m, indent=1), encoding="utf-8")


def copy_backup(src: Source, dest: Path) -> Path:
    """A private copy of a cached backup, for tests that damage it."""
    shutil.copytree(src.backup, dest)
    return dest
