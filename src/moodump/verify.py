"""The verify use case: prove a backup is good, offline or by restoring it.

Offline (no server): the manifest is DONE; every file has its recorded size and
sha256; every data file decompresses to the end, has the recorded number of rows, and
its row text has the recorded content digest.

By restore: the backup is restored into a scratch database — on a given server, or on a
throwaway ``mariadbd`` that moodump starts in a temp directory (``local=True``) — then
every restored table is streamed again with the same query the dump used, range by
range, and its row count and content digest are compared with the values the dump
recorded *inside its snapshot*. Object counts are compared, Moodle facts are read, the
scratch database is dropped, and the restore time is reported (recovery-time evidence).

Either way the result is written to ``verify.json`` beside the manifest, which listing,
retention and ``moodump check`` trust.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from moodump.compression import iter_uncompressed
from moodump.crypto import ENCRYPTED_MANIFEST_NAME, EncryptedManifest, Identity, VerifyKey
from moodump.db.connection import Connection, ConnSettings, connect, quote_ident, quote_str
from moodump.db.introspect import list_tables, moodle_info, server_info
from moodump.db.localserver import LocalServer
from moodump.db.rowstream import CONTENT_ALGO, _multiset_add, content_hash, digest_algo, stream_rows
from moodump.db.snapshot import setup_read_session
from moodump.errors import (
    ConfigError,
    ConnectError,
    IntegrityError,
    Interrupted,
    MoodumpError,
    PrivilegeError,
    StorageError,
)
from moodump.formats import Column
from moodump.fsmodes import write_text
from moodump.manifest import (
    VERIFY_NAME,
    FileEntry,
    Manifest,
    VerifyRecord,
    read_manifest,
)
from moodump.progress import Progress
from moodump.restore import RestoreEvent, RestoreOptions, check_files, restore
from moodump.source import BackupSource, LocalSource, as_source, is_encrypted

log = logging.getLogger("moodump.verify")


@dataclass
class VerifyReport:
    path: Path | str  # a directory, or the URL of an off-site copy
    method: str  # "offline" | "restore"
    passed: bool
    problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    restore_s: float | None = None
    tables_checked: int = 0
    rows_checked: int = 0
    moodle: dict[str, Any] | None = None
    server: str = ""
    record_written: bool = False
    notes: list[str] = field(default_factory=list)


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def verify(
    path: Path | str | BackupSource,
    *,
    settings: ConnSettings | None = None,
    local: bool = False,
    threads: int = 2,
    local_dir: Path | None = None,
    local_timeout: float = 120.0,
    record: bool = True,
    progress: Callable[[str], None] | None = None,
    identities: Sequence[Identity] = (),
    verify_keys: Sequence[VerifyKey] = (),
    tracker: Progress | None = None,
) -> VerifyReport:
    """Verify the backup at ``path``.

    With neither ``settings`` nor ``local`` the check is offline. With ``settings`` the
    backup is restored into a scratch database on that server; with ``local=True`` into
    a throwaway local server. Problems are collected, not raised; the report says
    whether the backup passed. A missing or unreadable manifest raises IntegrityError
    (and is recorded as FAIL when the directory is writable).

    ``path`` may be any :class:`~moodump.source.BackupSource` (an off-site copy): its
    files are streamed and each is checked against the manifest as it is read. The
    record (``verify.json``) is written only where the backup is a local directory.

    An encrypted backup is verified through ``identities``. Without them an offline
    verify checks the ciphertext only (size and sha256 of every ``.age`` file against
    ``encrypted.json``: method ``ciphertext``); a verify by restore needs them.

    With ``verify_keys`` the manifest must be signed by one of them (``manifest.sig``,
    checked after decryption): otherwise IntegrityError, recorded as FAIL. A
    ciphertext-only check cannot check a signature (it signs the decrypted manifest):
    its report says so in a note.

    ``tracker`` (a :class:`~moodump.progress.Progress`) follows the work: offline, the
    phases ``checksums`` and ``rows`` (rows and bytes digested); by restore, ``restore``
    (the restore's own steps and counts), ``compare`` (rows read back) and ``objects``.
    """
    stored = path if isinstance(path, BackupSource) else LocalSource(path)
    if not identities and method_is_offline(settings, local) and is_encrypted(stored):
        report = _verify_ciphertext(stored)
        if verify_keys:
            report.notes.append(
                "the signature was not checked: it signs the decrypted manifest "
                "(pass --identity to check it)"
            )
        return report
    src = as_source(stored, identities, verify_keys)
    backup_dir = src.local_dir
    if settings is not None and local:
        raise ConfigError("give either a server or --local, not both", hint="pick one")
    method = "restore" if (settings is not None or local) else "offline"
    t0 = time.monotonic()
    report = VerifyReport(backup_dir if backup_dir is not None else src.where, method, False)
    try:
        manifest = src.done_manifest()
    except IntegrityError as exc:
        report.problems.append(str(exc.message))
        report.duration_s = time.monotonic() - t0
        if record and backup_dir is not None and (backup_dir / "manifest.json").exists():
            _write_record(backup_dir, report)
        raise
    tr = tracker or Progress()
    try:
        with tr.operation("verify", manifest.database):
            if method == "offline":
                _verify_offline(src, manifest, report, progress, tr)
            elif m_is_pg(manifest):
                if local:
                    from moodump.pg.localserver import LocalPgServer

                    tr.phase("server")
                    major = int(manifest.server_version.split(".")[0] or 0)
                    with LocalPgServer(base_dir=local_dir, major=major).start(local_timeout) as pg:
                        report.server = f"local postgres {pg.port}"
                        _verify_pg_by_restore(src, manifest, pg.settings, threads, report)
                else:
                    assert settings is not None
                    report.server = settings.describe()
                    _verify_pg_by_restore(src, manifest, settings, threads, report)
            elif local:
                tr.phase("server")
                with LocalServer(base_dir=local_dir).start(timeout=local_timeout) as server:
                    local_settings = ConnSettings(host="127.0.0.1", port=server.port, user="root")
                    report.server = f"local mariadbd {local_settings.port}"
                    _verify_by_restore(src, manifest, local_settings, threads, report, progress, tr)
            else:
                assert settings is not None
                report.server = settings.describe()
                _verify_by_restore(src, manifest, settings, threads, report, progress, tr)
    except (ConnectError, PrivilegeError, StorageError, Interrupted):
        # The verification *environment* failed (server down, no privilege, its disk
        # full, Ctrl-C): that says nothing about the backup, so no FAIL is recorded.
        raise
    except MoodumpError as exc:
        report.problems.append(str(exc))
    report.passed = not report.problems
    report.duration_s = time.monotonic() - t0
    if record and backup_dir is not None:
        report.record_written = _write_record(backup_dir, report)
    return report


def m_is_pg(m: Manifest) -> bool:
    return m.database_type == "postgresql"


def _verify_pg_by_restore(
    src: BackupSource, m: Manifest, settings: ConnSettings, threads: int, report: VerifyReport
) -> None:
    """Restore into a scratch database on the PostgreSQL server, then read it back."""
    from moodump.pg.readback import drop_database, read_back

    scratch = f"moodump_verify_{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    try:
        restore(src, settings, scratch, RestoreOptions(threads=threads))
        report.restore_s = time.monotonic() - t0
        back = read_back(settings, scratch, m, threads)
        report.problems.extend(back.problems)
        report.tables_checked += back.tables
        report.rows_checked += back.rows
        if m.moodle:
            report.moodle = back.moodle
            report.problems.extend(moodle_problems(back.moodle))
    finally:
        with contextlib.suppress(Exception):
            drop_database(settings, scratch)


def method_is_offline(settings: ConnSettings | None, local: bool) -> bool:
    return settings is None and not local


def _verify_ciphertext(src: BackupSource) -> VerifyReport:
    """Key-less check of an encrypted backup: every ``.age`` file as ``encrypted.json``
    lists it (the ciphertext's size and sha256), read as a stream."""
    t0 = time.monotonic()
    report = VerifyReport(src.local_dir or src.where, "ciphertext", False)
    em = EncryptedManifest.from_json(src.read_bytes(ENCRYPTED_MANIFEST_NAME), where=src.where)
    for f in em.files:
        try:
            with src.open_checked(
                FileEntry(name=f.name, kind=f.kind, bytes=f.bytes, sha256=f.sha256)
            ) as fh:
                while fh.read(1 << 20):
                    pass
        except IntegrityError as exc:
            report.problems.append(exc.message)
    report.tables_checked = 0
    report.passed = not report.problems
    report.duration_s = time.monotonic() - t0
    return report


def _write_record(src: Path, report: VerifyReport) -> bool:
    rec = VerifyRecord(
        status="PASS" if report.passed else "FAIL",
        method=report.method,
        at=_utcnow(),
        duration_s=round(report.duration_s, 3),
        restore_s=None if report.restore_s is None else round(report.restore_s, 3),
        server=report.server,
        details=report.problems[:50],
        moodle=report.moodle,
    )
    try:
        write_text(src / VERIFY_NAME, rec.to_json())
        return True
    except OSError as exc:
        log.warning("could not write %s: %s", src / VERIFY_NAME, exc.strerror)
        return False


def _verify_offline(
    src: BackupSource,
    m: Manifest,
    report: VerifyReport,
    progress: Callable[[str], None] | None,
    tr: Progress,
) -> None:
    tr.phase("checksums")
    data_files = {c.file for t in m.tables for c in t.chunks}
    entries = {f.name: f for f in m.files}
    try:
        if src.local_dir is not None:
            check_files(src.local_dir, m)
        else:  # one pass: the data files are checked while their digests are computed
            for f in m.files:
                if f.name not in data_files:
                    src.checked_bytes(f)
    except IntegrityError as exc:
        report.problems.append(str(exc.message))
        return
    if m.objects.get("definitions"):
        try:
            json.loads(src.read_bytes(m.objects["definitions"]).decode("utf-8"))
        except ValueError as exc:
            report.problems.append(f"{m.objects['definitions']} is not valid JSON: {exc}")

    def stream(name: str) -> BinaryIO:
        entry = entries.get(name)
        if src.local_dir is not None or entry is None:
            return src.open(name)
        return src.open_checked(entry)

    tr.phase(
        "rows",
        rows_total=sum(t.rows for t in m.tables),
        bytes_total=sum(c.raw_bytes for t in m.tables for c in t.chunks),
        tables_total=len(m.tables),
    )
    for t in m.tables:
        if progress:
            progress(t.name)
        tr.working(t.name)
        rows = 0
        for c in t.chunks:
            try:
                n, digest = _file_digest(
                    stream(c.file),
                    name=c.file,
                    codec=m.codec,
                    ordered=(t.digest == "ordered"),
                    algo=digest_algo(c.content_digest),
                    count=tr.add,
                )
            except IntegrityError as exc:
                report.problems.append(str(exc.message))
                continue
            rows += n
            if n != c.rows:
                report.problems.append(f"{c.file}: {n} rows, the manifest says {c.rows}")
            elif digest != c.content_digest:
                report.problems.append(f"{c.file}: content digest differs from the manifest")
        if rows != t.rows and not report.problems:
            report.problems.append(f"table {t.name}: {rows} rows, the manifest says {t.rows}")
        report.tables_checked += 1
        report.rows_checked += rows
        tr.table_done()
    tr.working("")


def _file_digest(
    path: Path | BinaryIO,
    *,
    ordered: bool,
    algo: str = CONTENT_ALGO,
    name: str | None = None,
    codec: str | None = None,
    count: Callable[[int, int], None] | None = None,
) -> tuple[int, str]:
    """(rows, digest) of a data file, computed exactly as the dump computed it.

    ``count`` gets (rows, bytes) of each block as it passes (progress)."""
    rows = 0
    shown = name or str(path)
    if ordered:
        h = content_hash(algo)
        for block in iter_uncompressed(path, name=shown, codec=codec):
            h.update(block)
            n = block.count(b"\n")
            rows += n
            if count is not None:
                count(n, len(block))
        return rows, f"{algo}:{h.hexdigest()}"
    acc = 0
    rest = b""
    for block in iter_uncompressed(path, name=shown, codec=codec):
        data = rest + block
        lines = data.split(b"\n")
        rest = lines.pop()
        acc = _multiset_add(acc, lines)
        rows += len(lines)
        if count is not None:
            count(len(lines), len(block))
    if rest:
        raise IntegrityError(f"{shown} ends in the middle of a row", hint="the file is truncated")
    return rows, f"multiset:{acc:016x}"


def _verify_by_restore(
    src: BackupSource,
    m: Manifest,
    settings: ConnSettings,
    threads: int,
    report: VerifyReport,
    progress: Callable[[str], None] | None,
    tr: Progress,
) -> None:
    scratch = f"moodump_verify_{uuid.uuid4().hex[:10]}"
    tr.phase("restore")
    t0 = time.monotonic()
    stop = threading.Event()
    reader = _ReadBack(settings, scratch, m, threads, stop, progress, tr)
    try:
        reader.start()

        def on_event(e: RestoreEvent) -> None:
            if e.phase == "data":
                reader.put(e.table, e.file)

        try:
            restore(
                src,
                settings,
                scratch,
                RestoreOptions(threads=threads),
                progress=on_event,
                stop=stop,
                tracker=tr,
            )
        except Interrupted:
            reader.raise_error()  # a read-back failure stopped the restore: report that
            raise
        report.restore_s = time.monotonic() - t0
        reader.follow()
        reader.finish()
        reader.raise_error()
        for entry in m.tables:
            report.problems.extend(reader.table_problems(entry.name))
        report.tables_checked += reader.tables
        report.rows_checked += reader.rows
        tr.phase("objects")  # the counts stay: every row is read back by now
        with connect(settings) as conn:
            tables, views = list_tables(conn, scratch)
            by_name = {t.name: t for t in tables}
            extra = sorted(set(by_name) - {t.name for t in m.tables})
            if extra:
                report.problems.append("unexpected tables after restore: " + ", ".join(extra))
            _check_objects(conn, src, m, scratch, views, report)
            if m.moodle:
                recorded = m.moodle.get("prefix")
                report.moodle = moodle_info(
                    conn, scratch, list(by_name), recorded if isinstance(recorded, str) else None
                )
                report.problems.extend(moodle_problems(report.moodle))
    finally:
        reader.close()
        with contextlib.suppress(Exception), connect(settings) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")


class _ReadBack:
    """Reads restored tables back and compares them with the dump's digests.

    The unit of work is one data file: its rows are a key range of the table, and the
    dump recorded their count and digest. Each file's range is read back as soon as the
    restore has committed that file, while other files still load and while the table's
    deferred indexes are built (an index build does not change rows; the two only wait
    for each other's metadata lock for a moment), so the read-back hides behind the
    restore instead of following it, and the threads share a big table. Tables without
    data files are checked after the restore. Each thread has its own connection;
    problems are kept per file and reported in manifest order.
    """

    def __init__(
        self,
        settings: ConnSettings,
        database: str,
        m: Manifest,
        threads: int,
        stop: threading.Event,
        progress: Callable[[str], None] | None,
        tracker: Progress,
    ) -> None:
        self.settings = settings
        self.database = database
        self.m = m
        self.entries = {t.name: t for t in m.tables}
        self.stop = stop
        self.progress = progress
        # (table, index of the chunk in the manifest; -1: a table without data files)
        self.queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self.queued: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        self.problems: dict[tuple[str, int], list[str]] = {}
        self.tables = 0
        self.rows = 0
        self.bytes = 0
        # Counts go to the tracker once the restore is over (see follow()); until then
        # the tracker counts the restore, and the readers only say what they read.
        self.tracker = tracker
        self._counting = False
        self.errors: list[BaseException] = []
        self._left: dict[str, int] = {}
        self._columns: dict[str, list[Column]] | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"moodump-readback-{i}", daemon=True)
            for i in range(max(1, threads))
        ]

    def start(self) -> None:
        for th in self._threads:
            th.start()

    def put(self, table: str, file: str = "") -> None:
        """Queue one file of ``table`` (loaded), or with no file, all not queued yet."""
        entry = self.entries.get(table)
        if entry is None:
            return
        with self.lock:
            if table not in self._left:
                self._left[table] = max(1, len(entry.chunks))
            todo = [
                i
                for i, c in enumerate(entry.chunks)
                if (not file or c.file == file) and (table, i) not in self.queued
            ]
            if not entry.chunks and (table, -1) not in self.queued:
                todo = [-1]
            self.queued.update((table, i) for i in todo)
        for i in todo:
            self.queue.put((table, i))

    def follow(self) -> None:
        """The restore is over: the tracker's phase is now ``compare``, counting reads."""
        with self.lock:
            self.tracker.phase(
                "compare",
                rows_total=sum(t.rows for t in self.m.tables),
                bytes_total=sum(c.raw_bytes for t in self.m.tables for c in t.chunks),
                tables_total=len(self.m.tables),
                rows_done=self.rows,
                bytes_done=self.bytes,
                tables_done=self.tables,
            )
            self._counting = True

    def table_problems(self, table: str) -> list[str]:
        found = sorted((k, v) for k, v in self.problems.items() if k[0] == table)
        return [p for _, ps in found for p in ps]

    def finish(self) -> None:
        """Queue the tables not read yet and wait until every table is read."""
        for entry in self.m.tables:
            self.put(entry.name)
        for _ in self._threads:
            self.queue.put(None)
        for th in self._threads:
            while th.is_alive():
                th.join(0.1)

    def close(self) -> None:
        """Stop the readers (after an error or Ctrl-C) and wait for them."""
        self.stop.set()
        for _ in self._threads:
            self.queue.put(None)
        for th in self._threads:
            if th.ident is not None:
                th.join(30)

    def raise_error(self) -> None:
        if self.errors:
            real = [e for e in self.errors if not isinstance(e, Interrupted)]
            raise (real or self.errors)[0]

    def _work(self) -> None:
        try:
            with connect(self.settings) as conn:
                setup_read_session(conn, server_info(conn), binary_results=True)
                while not self.stop.is_set():
                    item = self.queue.get()
                    if item is None:
                        return
                    self._check(conn, *item)
        except BaseException as exc:
            with self.lock:
                self.errors.append(exc)
            self.stop.set()

    def _table_columns(self, conn: Connection) -> dict[str, list[Column]]:
        # Every table exists (empty) before the first one is loaded, and loading does
        # not change columns: one look at information_schema serves the whole run.
        with self.lock:
            if self._columns is None:
                tables, _ = list_tables(conn, self.database)
                self._columns = {t.name: t.data_columns for t in tables}
            return self._columns

    def _check(self, conn: Connection, name: str, index: int) -> None:
        entry = self.entries[name]
        problems: list[str] = []
        rows = nbytes = 0
        if self.progress and index <= 0:
            with self.lock:
                self.progress(name)
        self.tracker.working(f"read back {name}")
        have = self._table_columns(conn).get(name)
        if have is None:
            if index <= 0:
                problems.append(f"table {name} is missing after the restore")
        else:
            cols = {c.name: c for c in have}
            missing = [n for n in entry.columns if n not in cols]
            if missing:
                if index <= 0:
                    problems.append(f"table {name}: column {missing[0]!r} missing after restore")
            elif index >= 0:
                c = entry.chunks[index]
                res = stream_rows(
                    conn,
                    self.database,
                    name,
                    [cols[n] for n in entry.columns],
                    where=c.where,
                    order_by=entry.order_by,
                    sink=None,
                    stop=self.stop,
                    history=entry.versioned,
                    algo=digest_algo(c.content_digest),
                )
                rows, nbytes = res.rows, res.raw_bytes
                if res.rows != c.rows:
                    problems.append(
                        f"table {name} ({c.file}): {res.rows} rows restored, {c.rows} dumped"
                    )
                elif res.digest != c.content_digest:
                    problems.append(
                        f"table {name} ({c.file}): restored rows differ from the dump "
                        "(content digest mismatch)"
                    )
        self.tracker.working("")
        with self.lock:
            self.problems[(name, index)] = problems
            self.rows += rows
            self.bytes += nbytes
            self._left[name] -= 1
            done = self._left[name] == 0
            if done:
                self.tables += 1
            if self._counting:
                self.tracker.add(rows, nbytes)
                if done:
                    self.tracker.table_done()


def _check_objects(
    conn: Any, src: BackupSource, m: Manifest, db: str, views: list[str], report: VerifyReport
) -> None:
    name = m.objects.get("definitions")
    if not name:
        return
    records = json.loads(src.read_bytes(name).decode("utf-8"))
    want: dict[str, int] = {}
    for r in records:
        want[r["kind"]] = want.get(r["kind"], 0) + 1
    q = quote_str(db)
    have = {
        "view": len(views),
        "trigger": int(
            conn.scalar(
                f"SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={q}"
            )
            or 0
        ),
        "procedure": int(
            conn.scalar(
                f"SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA={q} AND ROUTINE_TYPE='PROCEDURE'"
            )
            or 0
        ),
        "function": int(
            conn.scalar(
                f"SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA={q} AND ROUTINE_TYPE='FUNCTION'"
            )
            or 0
        ),
        "event": int(
            conn.scalar(f"SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA={q}")
            or 0
        ),
    }
    for kind, n in want.items():
        if have.get(kind, 0) != n:
            report.problems.append(f"{kind}s: {have.get(kind, 0)} after restore, {n} in the backup")


def moodle_problems(moodle: dict[str, Any] | None) -> list[str]:
    """What a restored Moodle database lacks: its version, or a site administrator (the
    ids of the ``siteadmins`` config row that have no live row in the user table)."""
    if not moodle:
        return []
    problems = []
    prefix = moodle.get("prefix", "")
    if moodle.get("version") is None:
        problems.append("Moodle config has no version after the restore")
    if "siteadmins_missing" not in moodle:
        pass  # no user table: nothing to compare with
    elif not moodle.get("siteadmins"):
        problems.append(
            f"Moodle config has no siteadmins row (or it is empty) after the restore: "
            f"the site has no administrator in {prefix}config"
        )
    elif moodle["siteadmins_missing"]:
        missing = ", ".join(str(x) for x in moodle["siteadmins_missing"])
        problems.append(
            f"site administrator user id(s) {missing} (siteadmins in {prefix}config) "
            f"missing or deleted in {prefix}user after the restore"
        )
    return problems


def read_status(path: Path) -> str:
    """DONE/FAILED/STARTED of a backup, or MISSING (helper for listings)."""
    try:
        return read_manifest(path).status
    except IntegrityError:
        return "MISSING"
