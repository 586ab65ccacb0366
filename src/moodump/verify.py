"""The verify use case: prove a backup is good, offline or by restoring it.

Offline (no server, :mod:`moodump.verify_offline`): the manifest is DONE; every file
has its recorded size and sha256; every data file decompresses to the end, has the
recorded number of rows, and its row text has the recorded content digest.

By restore: the backup is restored into a scratch database — on a given server, or on a
throwaway ``mariadbd`` that moodump starts in a temp directory (``local=True``) — then
every restored table is streamed again with the same query the dump used, range by
range, and its row count and content digest are compared with the values the dump
recorded *inside its snapshot* (:mod:`moodump.verify_readback`). Object counts are
compared, Moodle facts are read, the scratch database is dropped, and the restore time
is reported (recovery-time evidence).

Either way the result is written to ``verify.json`` beside the manifest, which listing,
retention and ``moodump check`` trust.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moodump.crypto import ENCRYPTED_MANIFEST_NAME, EncryptedManifest, Identity, VerifyKey
from moodump.db.connection import ConnSettings, connect, quote_ident
from moodump.db.introspect import list_tables, moodle_info
from moodump.db.localserver import LocalServer
from moodump.errors import (
    ConfigError,
    ConnectError,
    IntegrityError,
    Interrupted,
    MoodumpError,
    PrivilegeError,
    ServerLost,
    StorageError,
)
from moodump.fsmodes import write_text
from moodump.manifest import (
    VERIFY_NAME,
    FileEntry,
    Manifest,
    VerifyRecord,
    read_manifest,
)
from moodump.progress import Progress
from moodump.restore import RestoreEvent, RestoreOptions, restore
from moodump.restore.engine import CLEANUP_LOCK_WAIT_S
from moodump.restore.model import RESUME_HINT
from moodump.source import BackupSource, LocalSource, as_source, is_encrypted
from moodump.verify_offline import verify_offline as _verify_offline
from moodump.verify_readback import ReadBack, object_problems, sequence_problems

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
    except (ConnectError, PrivilegeError, StorageError, Interrupted, ServerLost) as exc:
        # The verification *environment* failed (server down or gone mid-restore, e.g. a
        # throwaway server OOM-killed; no privilege, its disk full, Ctrl-C): that says
        # nothing about the backup, so no FAIL is recorded.
        if isinstance(exc, ServerLost):
            exc.hint = (exc.hint or "check the server").replace(RESUME_HINT, "") + (
                "; nothing was recorded about the backup: verify it again once the server "
                "(for --local, the throwaway one: its memory and disk) is fixed"
            )
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
        # a scratch database (a throwaway cluster's too) need not have the source's
        # tablespaces: the rows are the same in the default one
        restore(src, settings, scratch, RestoreOptions(threads=threads, tablespaces=False))
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
    reader = ReadBack(settings, scratch, m, threads, stop, progress, tr)
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
                RestoreOptions(threads=threads, tablespaces=False),
                progress=on_event,
                stop=stop,
                tracker=tr,
            )
        except Interrupted:
            reader.raise_error()  # a read-back failure stopped the restore: report that
            raise
        except PrivilegeError as exc:
            # The scratch name is new each time: the grant the account needs is on the
            # pattern of every scratch name.
            pattern = "`moodump\\_verify\\_%`.*"
            exc.message = exc.message.replace(f"`{scratch}`.*", pattern)
            exc.args = (exc.message,)
            if exc.hint:
                exc.hint = exc.hint.replace(f"`{scratch}`.*", pattern)
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
            report.problems.extend(sequence_problems(conn, m, scratch))
            report.problems.extend(object_problems(conn, src, m, scratch, views))
            if m.moodle:
                recorded = m.moodle.get("prefix")
                report.moodle = moodle_info(
                    conn, scratch, list(by_name), recorded if isinstance(recorded, str) else None
                )
                report.problems.extend(moodle_problems(report.moodle))
    finally:
        reader.close()
        with contextlib.suppress(Exception), connect(settings) as conn:
            # bounded: a killed load may still hold a table's lock (a full server)
            conn.execute(f"SET SESSION lock_wait_timeout = {CLEANUP_LOCK_WAIT_S}")
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")


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
