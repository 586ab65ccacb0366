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
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .compression import iter_uncompressed
from .db.connection import ConnSettings, connect, quote_ident, quote_str
from .db.introspect import list_tables, moodle_info, server_info
from .db.snapshot import setup_read_session
from .errors import (
    ConfigError,
    ConnectError,
    IntegrityError,
    Interrupted,
    MoodumpError,
    PrivilegeError,
    StorageError,
)
from .localserver import LocalServer
from .manifest import (
    VERIFY_NAME,
    Manifest,
    VerifyRecord,
    read_done_manifest,
    read_manifest,
)
from .restore import RestoreOptions, check_files, restore
from .rowstream import _multiset_add, stream_rows

log = logging.getLogger("moodump.verify")


@dataclass
class VerifyReport:
    path: Path
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


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def verify(
    path: Path | str,
    *,
    settings: ConnSettings | None = None,
    local: bool = False,
    threads: int = 2,
    local_dir: Path | None = None,
    local_timeout: float = 120.0,
    record: bool = True,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Verify the backup at ``path``.

    With neither ``settings`` nor ``local`` the check is offline. With ``settings`` the
    backup is restored into a scratch database on that server; with ``local=True`` into
    a throwaway local server. Problems are collected, not raised; the report says
    whether the backup passed. A missing or unreadable manifest raises IntegrityError
    (and is recorded as FAIL when the directory is writable).
    """
    src = Path(path)
    if settings is not None and local:
        raise ConfigError("give either a server or --local, not both", hint="pick one")
    method = "restore" if (settings is not None or local) else "offline"
    t0 = time.monotonic()
    report = VerifyReport(src, method, False)
    try:
        manifest = read_done_manifest(src)
    except IntegrityError as exc:
        report.problems.append(str(exc.message))
        report.duration_s = time.monotonic() - t0
        if record and (src / "manifest.json").exists():
            _write_record(src, report)
        raise
    try:
        if method == "offline":
            _verify_offline(src, manifest, report, progress)
        elif local:
            with LocalServer(base_dir=local_dir).start(timeout=local_timeout) as server:
                local_settings = ConnSettings(host="127.0.0.1", port=server.port, user="root")
                report.server = f"local mariadbd {local_settings.port}"
                _verify_by_restore(src, manifest, local_settings, threads, report, progress)
        else:
            assert settings is not None
            report.server = settings.describe()
            _verify_by_restore(src, manifest, settings, threads, report, progress)
    except (ConnectError, PrivilegeError, StorageError, Interrupted):
        # The verification *environment* failed (server down, no privilege, its disk
        # full, Ctrl-C): that says nothing about the backup, so no FAIL is recorded.
        raise
    except MoodumpError as exc:
        report.problems.append(str(exc))
    report.passed = not report.problems
    report.duration_s = time.monotonic() - t0
    if record:
        report.record_written = _write_record(src, report)
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
    tmp = src / f".{VERIFY_NAME}.tmp"
    try:
        tmp.write_text(rec.to_json(), encoding="utf-8")
        tmp.replace(src / VERIFY_NAME)
        return True
    except OSError as exc:
        log.warning("could not write %s: %s", src / VERIFY_NAME, exc.strerror)
        return False


def _verify_offline(
    src: Path, m: Manifest, report: VerifyReport, progress: Callable[[str], None] | None
) -> None:
    try:
        check_files(src, m)
    except IntegrityError as exc:
        report.problems.append(str(exc.message))
        return
    if m.objects.get("definitions"):
        try:
            json.loads((src / m.objects["definitions"]).read_text(encoding="utf-8"))
        except ValueError as exc:
            report.problems.append(f"{m.objects['definitions']} is not valid JSON: {exc}")
    for t in m.tables:
        if progress:
            progress(t.name)
        rows = 0
        for c in t.chunks:
            try:
                n, digest = _file_digest(src / c.file, ordered=(t.digest == "ordered"))
            except IntegrityError as exc:
                report.problems.append(str(exc.message))
                continue
            rows += n
            if n != c.rows:
                report.problems.append(f"{c.file}: {n} rows, the manifest says {c.rows}")
            elif digest != c.content_sha256:
                report.problems.append(f"{c.file}: content digest differs from the manifest")
        if rows != t.rows and not report.problems:
            report.problems.append(f"table {t.name}: {rows} rows, the manifest says {t.rows}")
        report.tables_checked += 1
        report.rows_checked += rows


def _file_digest(path: Path, *, ordered: bool) -> tuple[int, str]:
    """(rows, digest) of a data file, computed exactly as the dump computed it."""
    rows = 0
    if ordered:
        h = hashlib.sha256()
        for block in iter_uncompressed(path):
            h.update(block)
            rows += block.count(b"\n")
        return rows, h.hexdigest()
    acc = 0
    rest = b""
    for block in iter_uncompressed(path):
        data = rest + block
        lines = data.split(b"\n")
        rest = lines.pop()
        acc = _multiset_add(acc, lines)
        rows += len(lines)
    if rest:
        raise IntegrityError(f"{path} ends in the middle of a row", hint="the file is truncated")
    return rows, f"multiset:{acc:016x}"


def _verify_by_restore(
    src: Path,
    m: Manifest,
    settings: ConnSettings,
    threads: int,
    report: VerifyReport,
    progress: Callable[[str], None] | None,
) -> None:
    scratch = f"moodump_verify_{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    try:
        restore(src, settings, scratch, RestoreOptions(threads=threads))
        report.restore_s = time.monotonic() - t0
        with connect(settings) as conn:
            server = server_info(conn)
            setup_read_session(conn, server, binary_results=True)
            tables, views = list_tables(conn, scratch)
            by_name = {t.name: t for t in tables}
            for entry in m.tables:
                if progress:
                    progress(entry.name)
                info = by_name.get(entry.name)
                if info is None:
                    report.problems.append(f"table {entry.name} is missing after the restore")
                    continue
                cols = {c.name: c for c in info.data_columns}
                try:
                    columns = [cols[n] for n in entry.columns]
                except KeyError as exc:
                    report.problems.append(
                        f"table {entry.name}: column {exc} missing after restore"
                    )
                    continue
                for c in entry.chunks:
                    res = stream_rows(
                        conn,
                        scratch,
                        entry.name,
                        columns,
                        where=c.where,
                        order_by=entry.order_by,
                        sink=None,
                        history=entry.versioned,
                    )
                    report.rows_checked += res.rows
                    if res.rows != c.rows:
                        report.problems.append(
                            f"table {entry.name} ({c.file}): {res.rows} rows restored, "
                            f"{c.rows} dumped"
                        )
                    elif res.digest != c.content_sha256:
                        report.problems.append(
                            f"table {entry.name} ({c.file}): restored rows differ from the dump "
                            "(content digest mismatch)"
                        )
                report.tables_checked += 1
            extra = sorted(set(by_name) - {t.name for t in m.tables})
            if extra:
                report.problems.append("unexpected tables after restore: " + ", ".join(extra))
            _check_objects(conn, src, m, scratch, views, report)
            if m.moodle:
                report.moodle = moodle_info(conn, scratch, list(by_name))
                if report.moodle and report.moodle.get("version") is None:
                    report.problems.append("Moodle config has no version after the restore")
                if report.moodle and report.moodle.get("admin_user") is False:
                    report.problems.append("no Moodle admin user after the restore")
    finally:
        with contextlib.suppress(Exception), connect(settings) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")


def _check_objects(
    conn: Any, src: Path, m: Manifest, db: str, views: list[str], report: VerifyReport
) -> None:
    name = m.objects.get("definitions")
    if not name:
        return
    records = json.loads((src / name).read_text(encoding="utf-8"))
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


def read_status(path: Path) -> str:
    """DONE/FAILED/STARTED of a backup, or MISSING (helper for listings)."""
    try:
        return read_manifest(path).status
    except IntegrityError:
        return "MISSING"
