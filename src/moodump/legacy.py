"""Backups of the old backup-container: ``<host>-<db>_<date>_<time>.sql.gz`` files.

The old container piped ``mysqldump DB | gzip`` into one file per run. Its monthly files
stay on the volume for months after the switch-over, so they can be restored and verified
through moodump, with the same safety as its own backups:

- **the whole gzip stream is read before the target is touched**: a truncated or
  corrupt file fails (exit 8) and says so; so does a dump without mysqldump's closing
  ``-- Dump completed`` line (the old MariaDB plugin returned gzip's status, so a
  mysqldump that died half-way left a valid gzip of half a dump, reported as a success);
- a non-empty target is refused without ``drop`` (exit 12); a file that names its own
  database (``USE``/``CREATE DATABASE``) is refused, since it would write elsewhere;
- the SQL is streamed to the stock ``mariadb`` (or ``mysql``) client through a pipe: it
  is mysqldump output, written for that client (``DELIMITER`` blocks, ``/*!...*/``
  comments), and nothing is ever written to disk uncompressed.

A verification restores the file into a scratch database (on a given server or a
throwaway local one, as :func:`moodump.verify.verify` does) and compares every table's
``COUNT(*)`` with the rows its ``INSERT`` statements carry, counted while the stream is
read. These files have no digests, so the report's method is ``legacy`` and it says so.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from moodump.db.connection import ConnSettings, connect, quote_ident, quote_str
from moodump.db.introspect import moodle_info
from moodump.db.localserver import LocalServer
from moodump.errors import (
    ConfigError,
    ConnectError,
    IntegrityError,
    Interrupted,
    MoodumpError,
    NotFoundError,
    PrivilegeError,
    ServerError,
    StorageError,
    TargetNotEmpty,
)
from moodump.naming import LEGACY_SUFFIX
from moodump.verify import VerifyReport, moodle_problems

log = logging.getLogger("moodump.legacy")

METHOD = "legacy"
METHOD_OFFLINE = "legacy-offline"
NOTE = (
    "an old backup-container file (mysqldump | gzip): it carries no digests, so tables "
    "and row counts are compared with the INSERT statements in the file"
)

_BLOCK = 1 << 20
_CREATE_RE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(")
_INSERT_RE = re.compile(
    rb"^(?:INSERT|REPLACE)(?: IGNORE)? INTO `((?:[^`]|``)+)`(?: \([^)]*\))? VALUES(?: |$)"
)
_STRING_RE = re.compile(rb"'(?:[^'\\]|\\.)*'", re.S)
_OWN_DATABASE_RE = re.compile(rb"^(?:USE `|CREATE DATABASE )")
_TRAILER = b"-- Dump completed"


def is_legacy_file(path: Path | str) -> bool:
    """True when ``path`` names an old ``.sql.gz`` backup (a file, not a directory)."""
    p = Path(path)
    return p.name.endswith(LEGACY_SUFFIX) and not p.is_dir()


@dataclass
class LegacyScan:
    """What one pass over the file found: each created table with the rows its INSERT
    statements carry (in file order), the uncompressed size, and whether mysqldump
    finished (its closing comment)."""

    tables: dict[str, int] = field(default_factory=dict)
    uncompressed_bytes: int = 0
    completed: bool = False
    own_database: str | None = None

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass
class LegacyRestoreResult:
    path: Path
    database: str
    tables: int
    rows: int
    duration_s: float
    client: str
    scan: LegacyScan = field(default_factory=LegacyScan, repr=False)


def _name(raw: bytes) -> str:
    return raw.replace(b"``", b"`").decode("utf-8", "surrogateescape")


def _blocks(path: Path) -> Iterator[bytes]:
    """The uncompressed stream of ``path`` in blocks, checked to its end marker and CRC."""
    if not path.is_file():
        raise NotFoundError(f"backup file {path} does not exist", hint="moodump list shows them")
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(_BLOCK):
                yield block
    except EOFError:
        raise IntegrityError(
            f"{path} is truncated: its gzip stream ends before the end marker",
            hint="the old backup did not finish, or the copy is incomplete; use another backup",
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise IntegrityError(
            f"{path} is not a valid gzip file: {exc}", hint="use another backup"
        ) from None
    except OSError as exc:
        raise StorageError(
            f"cannot read {path}: {exc.strerror or exc}", hint="check the file and its volume"
        ) from exc


def _lines(blocks: Iterator[bytes], sink: Callable[[bytes], None] | None) -> Iterator[bytes]:
    """Lines of the stream (mysqldump writes one statement per line); each block is
    handed to ``sink`` first."""
    rest = b""
    for block in blocks:
        if sink is not None:
            sink(block)
        data = rest + block
        lines = data.split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


class _Scanner:
    """Counts the rows of each table's INSERT statements, line by line.

    mysqldump writes a statement per line (``INSERT INTO `t` VALUES (..),(..);``);
    mariadb-dump 10.x+ puts each row on a line of its own after ``VALUES``. Strings never
    hold a raw line end (mysqldump escapes it), so a statement ends at the first line
    that ends in ``;``. Strings are blanked before the ``(`` of each row is counted.
    """

    def __init__(self) -> None:
        self.scan = LegacyScan()
        self._last = b""
        self._table: str | None = None  # inside this table's INSERT statement

    def _values(self, table: str, values: bytes) -> None:
        blank = _STRING_RE.sub(b"''", values)
        self.scan.tables[table] = self.scan.tables.get(table, 0) + blank.count(b"(")
        self._table = None if values.rstrip().endswith(b";") else table

    def line(self, line: bytes) -> None:
        s = self.scan
        if self._table is not None:
            self._values(self._table, line)
        elif line.startswith(b"INSERT") or line.startswith(b"REPLACE"):
            m = _INSERT_RE.match(line)
            if m:
                self._values(_name(m.group(1)), line[m.end() :])
        elif line.startswith(b"CREATE TABLE"):
            m = _CREATE_RE.match(line)
            if m:
                s.tables.setdefault(_name(m.group(1)), 0)
        elif _OWN_DATABASE_RE.match(line) and s.own_database is None:
            s.own_database = line.decode("utf-8", "replace").strip()
        if line.strip():
            self._last = line

    def finish(self) -> LegacyScan:
        self.scan.completed = self._last.startswith(_TRAILER)
        return self.scan


def scan_legacy(path: Path | str, *, require_complete: bool = True) -> LegacyScan:
    """Read ``path`` end to end: gzip integrity, tables, rows per table.

    :raises IntegrityError: truncated or corrupt gzip; with ``require_complete`` also a
        dump without mysqldump's closing line.
    """
    p = Path(path)
    scanner = _Scanner()
    for line in _lines(_blocks(p), None):
        scanner.scan.uncompressed_bytes += len(line) + 1
        scanner.line(line)
    scan = scanner.finish()
    if require_complete and not scan.completed:
        raise IntegrityError(
            f"{p} is not a complete mysqldump: its last line is not '-- Dump completed ...'",
            hint="mysqldump failed while the old container wrote this file (it reported "
            "gzip's success); use another backup",
        )
    return scan


def client_binary() -> str:
    """The stock client that replays mysqldump output (``mariadb``, else ``mysql``)."""
    for name in ("mariadb", "mysql"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        "restoring an old .sql.gz backup needs the mariadb (or mysql) client, which is not on PATH",
        hint="install it (apt-get install mariadb-client); the container image has it",
    )


def _client_args(client: str, settings: ConnSettings, database: str) -> list[str]:
    args = [client, "--no-defaults", "--binary-mode", "--max-allowed-packet=1G"]
    if settings.socket:
        args.append(f"--socket={settings.socket}")
    else:
        args += [f"--host={settings.host}", f"--port={settings.port}", "--protocol=TCP"]
    args += [f"--user={settings.user}", f"--connect-timeout={settings.connect_timeout}"]
    args += _client_tls_args(client, settings)
    args.append(database)
    return args


def _client_tls_args(client: str, settings: ConnSettings) -> list[str]:
    """``settings.ssl_mode`` in the stock client's flags. Oracle's ``mysql`` has
    ``--ssl-mode``; MariaDB's client has ``--ssl``/``--skip-ssl`` and
    ``--ssl-verify-server-cert`` (chain and host name; it has no chain-only check, so
    VERIFY_CA relies on moodump's own connection to the same server, which checks the
    chain and the encryption before the client starts)."""
    mode = settings.ssl_mode
    files = [
        f"--ssl-{name}={value}"
        for name, value in (
            ("ca", settings.ssl_ca),
            ("cert", settings.ssl_cert),
            ("key", settings.ssl_key),
        )
        if value
    ]
    if Path(client).name == "mysql":
        return [f"--ssl-mode={mode}", *(files if mode != "DISABLED" else [])]
    if mode == "DISABLED":
        return ["--skip-ssl"]
    # MariaDB's --ssl falls back to a clear connection, as PREFERRED does; for REQUIRED
    # and VERIFY_CA, moodump's own connection has already checked the same server.
    return ["--ssl", *files, *(["--ssl-verify-server-cert"] if mode == "VERIFY_IDENTITY" else [])]


def _prepare_target(settings: ConnSettings, database: str, drop: bool) -> None:
    """Refuse a non-empty target without ``drop``; with it, empty the database (tables
    and views; the triggers go with their tables). A missing database is created."""
    with connect(settings.with_database(None)) as conn:
        q = quote_str(database)
        exists = conn.scalar(
            f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME={q}"
        )
        if not int(exists or 0):
            conn.execute(f"CREATE DATABASE {quote_ident(database)} CHARACTER SET utf8mb4")
            return
        rows = conn.query(
            f"SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA={q}"
        )
        if not rows:
            return
        if not drop:
            raise TargetNotEmpty(
                f"database {database!r} on {settings.describe()} has {len(rows)} table(s)",
                hint="pass --drop to replace them, or restore into another --database",
            )
        conn.execute("SET SESSION foreign_key_checks = 0")
        for raw_name, raw_type in rows:
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            kind = raw_type.decode() if isinstance(raw_type, bytes) else str(raw_type)
            what = "VIEW" if kind == "VIEW" else "TABLE"
            conn.execute(f"DROP {what} IF EXISTS {quote_ident(database)}.{quote_ident(name)}")


def restore_legacy(
    path: Path | str,
    settings: ConnSettings,
    database: str,
    *,
    drop: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> LegacyRestoreResult:
    """Restore an old ``.sql.gz`` backup into ``database`` (see the module docstring).

    The file is read end to end first (nothing is touched when it is truncated); then
    the target is checked (non-empty needs ``drop``) and the SQL streams to the client.
    ``progress`` gets (uncompressed bytes sent, uncompressed bytes in total).

    :raises IntegrityError: truncated, corrupt or unfinished dump (target untouched).
    :raises TargetNotEmpty: the target has tables and ``drop`` is False.
    :raises ServerError: the client reported an error (its last lines are in the message).
    """
    p = Path(path)
    t0 = time.monotonic()
    scan = scan_legacy(p)
    if scan.own_database is not None:
        raise ConfigError(
            f"{p} names its own database ({scan.own_database[:80]}): restoring it would write "
            "there, not into the target",
            hint="restore it with the stock client by hand, after reading the file",
        )
    client = client_binary()
    _prepare_target(settings, database, drop)
    args = _client_args(client, settings, database)
    env = {**os.environ, "MYSQL_PWD": settings.password}
    log.info("restoring old backup %s into %s with %s", p, database, Path(client).name)
    sent = 0
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=devnull, stderr=subprocess.PIPE, env=env
        )
    assert proc.stdin is not None and proc.stderr is not None
    stderr_box: list[bytes] = []
    errors = proc.stderr
    reader = threading.Thread(target=lambda: stderr_box.append(_read_all(errors)), daemon=True)
    reader.start()
    try:
        for block in _blocks(p):
            if stop is not None and stop.is_set():
                raise Interrupted(
                    f"restore of {p} stopped; {database} is incomplete", hint="run it again"
                )
            try:
                proc.stdin.write(block)
            except BrokenPipeError:
                break  # the client stopped reading: its status and stderr say why
            sent += len(block)
            if progress is not None:
                progress(sent, scan.uncompressed_bytes)
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        rc = proc.wait()
    except BaseException as exc:
        proc.kill()
        proc.wait()
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(
                f"restore of {p} interrupted; {database} is incomplete", hint="run it again"
            ) from None
        raise
    reader.join(10)
    if rc != 0:
        tail = b"".join(stderr_box).decode("utf-8", "replace").strip().splitlines()[-3:]
        raise ServerError(
            f"restoring {p} into {database} failed: {Path(client).name} exited {rc}: "
            + " | ".join(tail),
            hint="fix what the client reports (the target may be partly restored) and run "
            "again with --drop",
        )
    return LegacyRestoreResult(
        p, database, len(scan.tables), scan.rows, time.monotonic() - t0, Path(client).name, scan
    )


def _read_all(stream: IO[bytes]) -> bytes:
    return stream.read()


def verify_legacy(
    path: Path | str,
    *,
    settings: ConnSettings | None = None,
    local: bool = False,
    local_dir: Path | None = None,
    local_timeout: float = 120.0,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Verify an old ``.sql.gz`` backup: by restoring it (``settings``: into a scratch
    database on that server; ``local``: on a throwaway local server) and comparing every
    table's row count with the file's INSERT statements (method ``legacy``), or, with
    neither, offline: the gzip stream end to end and mysqldump's closing line (method
    ``legacy-offline``). Problems are collected; nothing is recorded beside the file.
    """
    if settings is not None and local:
        raise ConfigError("give either a server or --local, not both", hint="pick one")
    p = Path(path)
    t0 = time.monotonic()
    offline = settings is None and not local
    report = VerifyReport(p, METHOD_OFFLINE if offline else METHOD, False, notes=[NOTE])
    try:
        if offline:
            scan = scan_legacy(p, require_complete=False)
            if not scan.completed:
                report.problems.append(
                    f"{p} is not a complete mysqldump: its last line is not '-- Dump completed'"
                )
            report.tables_checked = len(scan.tables)
            report.rows_checked = scan.rows
        elif local:
            with LocalServer(base_dir=local_dir).start(timeout=local_timeout) as server:
                local_settings = ConnSettings(host="127.0.0.1", port=server.port, user="root")
                report.server = f"local mariadbd {server.port}"
                _verify_by_restore(p, local_settings, report, progress)
        else:
            assert settings is not None
            report.server = settings.describe()
            _verify_by_restore(p, settings, report, progress)
    except (ConnectError, PrivilegeError, StorageError, Interrupted):
        raise  # the verification environment failed: that says nothing about the file
    except MoodumpError as exc:
        report.problems.append(str(exc))
    report.passed = not report.problems
    report.duration_s = time.monotonic() - t0
    return report


def _verify_by_restore(
    path: Path,
    settings: ConnSettings,
    report: VerifyReport,
    progress: Callable[[str], None] | None,
) -> None:
    scratch = f"moodump_verify_{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    try:
        scan = restore_legacy(path, settings, scratch).scan
        report.restore_s = time.monotonic() - t0
        with connect(settings) as conn:
            q = quote_str(scratch)
            present = {
                (r[0].decode() if isinstance(r[0], bytes) else str(r[0]))
                for r in conn.query(
                    "SELECT TABLE_NAME FROM information_schema.TABLES "
                    f"WHERE TABLE_SCHEMA={q} AND TABLE_TYPE <> 'VIEW'"
                )
            }
            for table, rows in scan.tables.items():
                if progress is not None:
                    progress(table)
                if table not in present:
                    # mysqldump's stand-in tables for views are replaced by the views
                    if not _is_view(conn, scratch, table):
                        report.problems.append(f"table {table} is missing after the restore")
                    continue
                have = int(
                    conn.scalar(f"SELECT COUNT(*) FROM {quote_ident(scratch)}.{quote_ident(table)}")
                    or 0
                )
                report.tables_checked += 1
                report.rows_checked += have
                if have != rows:
                    report.problems.append(
                        f"table {table}: {have} rows after the restore, the file inserts {rows}"
                    )
            moodle = moodle_info(conn, scratch, sorted(present), _configured_prefix())
            if moodle is not None:
                report.moodle = moodle
                report.problems.extend(moodle_problems(moodle))
    finally:
        with contextlib.suppress(Exception), connect(settings) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")


def _configured_prefix() -> str | None:
    """MOODLE_PREFIX (or its default); a file of another prefix is still recognised
    (:func:`~moodump.db.introspect.moodle_info` falls back to finding it)."""
    from moodump.config import setting
    from moodump.errors import ConfigError

    try:
        return str(setting("MOODLE_PREFIX"))
    except ConfigError:
        return None


def _is_view(conn: Any, database: str, name: str) -> bool:
    n = conn.scalar(
        "SELECT COUNT(*) FROM information_schema.VIEWS "
        f"WHERE TABLE_SCHEMA={quote_str(database)} AND TABLE_NAME={quote_str(name)}"
    )
    return bool(int(n or 0))
