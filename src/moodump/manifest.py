"""The backup manifest and verification record: pure value types and their JSON form.

A backup is a directory. ``manifest.json`` is written last; its ``status`` is ``DONE``
only when every table's rows written equal rows read and every stream closed cleanly.
Anything else (no manifest, ``STARTED``, ``FAILED``) is not a backup and must never be
restored, counted as a kept copy, or verified as good.

``verify.json`` sits beside the manifest and records the latest verification (the
manifest itself never changes after publication, so its sha256 stays meaningful).

See docs/format.md for the whole layout.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moodump.errors import IntegrityError, NotFoundError

FORMAT = "moodump/1"
# The formats this code reads. A format's number changes only when an older moodump
# would misread it; keys added within a format are kept aside (see Manifest.from_dict).
KNOWN_FORMATS = (FORMAT,)
MANIFEST_NAME = "manifest.json"
VERIFY_NAME = "verify.json"

#: Bounds on what a manifest may hold: backups come back from buckets that others may
#: write to, so a manifest is untrusted input (docs/format.md, "Limits").
MAX_MANIFEST_BYTES = 64 << 20
MAX_TABLES = 100_000
MAX_FILES = 1_000_000
MAX_NAME_BYTES = 255  # a table name, a path component
MAX_PATH_BYTES = 1024
MAX_COUNT = (1 << 63) - 1  # rows and bytes: a signed 64-bit counter
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA256 = re.compile(r"[0-9a-f]{64}")

#: What a manifest's ``codec`` may say (moodump.compression.CODECS).
KNOWN_CODECS = ("gzip", "zstd", "none")

#: What a manifest's ``database_type`` may say.
DATABASE_TYPES = ("mysql", "postgresql")

STATUS_STARTED = "STARTED"
STATUS_DONE = "DONE"
STATUS_FAILED = "FAILED"


@dataclass
class FileEntry:
    """One file of the backup. ``sha256`` and ``bytes`` are of the file as stored."""

    name: str
    bytes: int
    sha256: str
    kind: str  # "schema" | "data" | "objects" | "script"


@dataclass
class Chunk:
    """One data file of a table: a primary-key range (or the whole table).

    ``content_digest`` is ``ALGORITHM:HEX`` of the *uncompressed* row text, in the order
    the rows were read (``xxh3-128:...``), or ``multiset:...`` for tables without a stable
    row order; verification by restore re-reads the restored table with the same query
    and compares. (The files' integrity is their sha256 in ``files``; this digest is about
    the rows.) ``where`` is the range predicate (SQL) or empty.
    """

    file: str
    rows: int
    raw_bytes: int
    content_digest: str
    where: str = ""


@dataclass
class TableEntry:
    """One table (or sequence) of the dump."""

    name: str
    kind: str = "table"  # "table" | "sequence"
    engine: str = "InnoDB"
    transactional: bool = True
    schema_file: str = ""
    rows: int = 0
    columns: list[str] = field(default_factory=list)  # columns in file order
    column_types: list[str] = field(default_factory=list)  # DATA_TYPE of each, same order
    # MySQL: "(`a`, @v1) SET `b` = CAST(@v1 AS UNSIGNED)" for LOAD DATA; PostgreSQL: the
    # quoted partition root a partition's rows load through (hash partitioning on an enum)
    load_clause: str = ""
    order_by: list[str] = field(default_factory=list)
    digest: str = "ordered"  # "ordered" (sha256 of the stream) | "multiset" (order-free)
    chunks: list[Chunk] = field(default_factory=list)
    data_skipped: bool = False
    sequence: dict[str, int] = field(default_factory=dict)  # next_not_cached_value, cycle_count
    versioned: bool = False  # system-versioned: rows are every version (FOR SYSTEM_TIME ALL)
    schema: str = ""  # PostgreSQL: the table's schema (MySQL: empty, the database is the schema)

    @property
    def data_files(self) -> list[str]:
        return [c.file for c in self.chunks]


@dataclass
class Manifest:
    """Everything a restore, verify, listing or retention decision needs to know."""

    database: str
    status: str = STATUS_STARTED
    format: str = FORMAT
    tool_version: str = ""
    host: str = ""
    port: int = 0
    server_flavor: str = ""  # "mariadb" | "mysql"
    server_version: str = ""
    started_at: str = ""  # ISO 8601, UTC
    finished_at: str = ""
    codec: str = "gzip"
    level: int = 1
    snapshot: dict[str, Any] = field(default_factory=dict)
    database_ddl: str = ""
    tables: list[TableEntry] = field(default_factory=list)
    objects: dict[str, str] = field(default_factory=dict)  # kind -> file name
    files: list[FileEntry] = field(default_factory=list)
    moodle: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # things that need attention
    notes: list[str] = field(default_factory=list)  # facts worth knowing, not warnings
    error: str | None = None
    # "mysql" (MySQL/MariaDB; manifests without the key) | "postgresql" (docs/postgresql.md)
    database_type: str = "mysql"

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def file(self, name: str) -> FileEntry:
        for f in self.files:
            if f.name == name:
                return f
        raise IntegrityError(f"manifest lists no file {name!r}", hint="the backup is damaged")

    def table(self, name: str) -> TableEntry:
        for t in self.tables:
            if t.name == name:
                return t
        raise NotFoundError(
            f"table {name!r} is not in this backup",
            hint="list the tables with: moodump verify --offline PATH, or read manifest.json",
        )

    def to_json(self) -> str:
        text = json.dumps(asdict(self), indent=1, ensure_ascii=False, sort_keys=False) + "\n"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # a name in bytes of no known encoding (a PostgreSQL SQL_ASCII database's),
            # read with surrogateescape: kept as \udcXX escapes, which read back the same
            text = json.dumps(asdict(self), indent=1, ensure_ascii=True, sort_keys=False) + "\n"
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        tables = [
            TableEntry(**{**t, "chunks": [_chunk(c) for c in t.get("chunks", [])]})
            for t in data.pop("tables", [])
        ]
        files = [FileEntry(**f) for f in data.pop("files", [])]
        known = set(cls.__dataclass_fields__)
        extra = {k: v for k, v in data.items() if k not in known}
        data = {k: v for k, v in data.items() if k in known}
        m = cls(**data, tables=tables, files=files)
        if extra:
            m.options.setdefault("_unknown_keys", sorted(extra))
        return m


@dataclass
class VerifyRecord:
    """The result of the latest verification of a backup (``verify.json``)."""

    status: str  # "PASS" | "FAIL"
    method: str  # "offline" | "restore"
    at: str  # ISO 8601 UTC
    duration_s: float
    restore_s: float | None = None
    server: str = ""
    details: list[str] = field(default_factory=list)
    moodle: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n"


class NotARegularFile(OSError):
    """:func:`read_small_file`: the path is a named pipe, a device, a directory, ..."""


def read_small_file(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (a symbolic link is followed), at most
    ``limit`` + 1 of them (the caller refuses more).

    A backup's JSON files are untrusted: a named pipe in their place blocked a listing for
    ever (and with it every scheduled backup), a link to ``/dev/zero`` was read until
    memory ran out. The file is opened without blocking and must be a regular file.

    :raises NotARegularFile: it is not a regular file (nor a directory).
    :raises OSError: it cannot be opened or read (FileNotFoundError when missing).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"{path} is not a regular file (a pipe or a device)")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_manifest(backup_dir: Path) -> Manifest:
    """Load ``manifest.json`` of a backup directory (any status)."""
    path = Path(backup_dir) / MANIFEST_NAME
    try:
        raw = read_small_file(path, MAX_MANIFEST_BYTES)
    except FileNotFoundError as exc:
        raise IntegrityError(
            f"{backup_dir} has no {MANIFEST_NAME}: it is not a finished moodump backup",
            hint="a dump that did not finish leaves no manifest; use another backup",
        ) from exc
    except NotARegularFile as exc:
        raise IntegrityError(
            f"{exc}: not a moodump manifest", hint="the backup is damaged; use another backup"
        ) from None
    except OSError as exc:
        raise IntegrityError(
            f"cannot read {path}: {exc.strerror}", hint="check permissions"
        ) from exc
    return parse_manifest(raw, str(path))


def parse_manifest(raw: str | bytes, where: str) -> Manifest:
    """A manifest from its JSON text, UTF-8 when bytes (``where`` names it in errors).

    Anything that is not a well-formed manifest within the limits (sizes, counts, names;
    file names confined to the backup directory) raises IntegrityError."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise IntegrityError(
            f"{where} is larger than {MAX_MANIFEST_BYTES >> 20} MiB: not a moodump manifest",
            hint="the manifest is damaged or altered; use another backup",
        )
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise IntegrityError(
            f"{where} is not valid UTF-8 (byte {exc.start})",
            hint="the manifest is damaged; use another backup",
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntegrityError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno})",
            hint="the manifest is damaged; use another backup",
        ) from exc
    except RecursionError:
        raise IntegrityError(
            f"{where} is nested too deeply to be a moodump manifest",
            hint="the manifest is damaged or altered; use another backup",
        ) from None
    if not isinstance(data, dict):
        raise IntegrityError(f"{where} is not a moodump manifest", hint="use another backup")
    check_format(data.get("format"), where)
    for key in ("tables", "files"):
        if key not in data and data.get("status") == STATUS_DONE:
            # every manifest moodump writes lists both; a DONE one without them would
            # verify and restore "nothing" and pass
            raise _bad(where, f"{key} is missing")
        if not isinstance(data.get(key, []), list):
            raise IntegrityError(
                f"{where} has an unexpected shape: {key} is not a list",
                hint="use another backup",
            )
    _check_counts(data, where)
    try:
        m = Manifest.from_dict(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise IntegrityError(
            f"{where} has an unexpected shape: {exc}", hint="use another backup"
        ) from exc
    validate_manifest(m, where)
    return m


def _check_counts(data: dict[str, Any], where: str) -> None:
    for key, limit in (("tables", MAX_TABLES), ("files", MAX_FILES)):
        value = data.get(key)
        if isinstance(value, list) and len(value) > limit:
            raise IntegrityError(
                f"{where} lists {len(value)} {key}, more than the limit of {limit}",
                hint="the manifest is damaged or altered; use another backup",
            )


def _bad(where: str, what: str) -> IntegrityError:
    return IntegrityError(
        f"{where}: {what}", hint="the manifest is damaged or altered; use another backup"
    )


def check_name(name: object, where: str, what: str, *, identifier: bool = False) -> str:
    """``name`` when it is a string of 1..255 UTF-8 bytes without control characters.

    An SQL ``identifier`` (a database or table name) may hold any character but NUL, as
    MariaDB and MySQL allow in quoted names: it only ever appears quoted in SQL, never as
    a path (file names are derived from it and checked as file names).
    """
    if not isinstance(name, str) or not name:
        raise _bad(where, f"{what} {name!r:.80} is not a name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise _bad(where, f"{what} {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    if ("\0" in name) if identifier else bool(_CONTROL.search(name)):
        raise _bad(where, f"{what} {name!r:.80} contains a control character")
    return name


def check_relative_name(name: object, where: str) -> str:
    """``name`` when it is a relative ``/``-separated path that stays inside the backup
    directory (no absolute path, no ``..``, no ``\\``, no control characters)."""
    if not isinstance(name, str) or not name:
        raise _bad(where, f"file name {name!r:.80} is not a name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise _bad(where, f"file name {name[:40]!r}... is longer than {MAX_PATH_BYTES} bytes")
    parts = name.split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or _CONTROL.search(name)
        or re.match(r"[A-Za-z]:", name)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise _bad(where, f"file {name!r:.200} is outside the backup directory")
    for p in parts:
        check_name(p, where, "file name part")
    return name


def _count(value: object, where: str, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise _bad(where, f"{what} {value!r:.40} is not a count")


def _strings(value: object, where: str, what: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(where, f"{what} is not a list of strings")


def validate_manifest(m: Manifest, where: str) -> None:
    """IntegrityError unless every field of ``m`` has its type and stays in its bounds.

    Every file the manifest names (files, chunks, schema files, objects) must be a
    relative path inside the backup; table names are names (1..255 bytes, no control
    characters); counts are integers 0..2**63-1."""
    check_name(m.database, where, "database", identifier=True)
    if m.database_type not in DATABASE_TYPES:
        raise IntegrityError(
            f"{where}: database type {m.database_type!r:.40} is not one this moodump knows "
            f"({', '.join(DATABASE_TYPES)})",
            hint="restore it with a newer moodump",
        )
    for attr in ("status", "tool_version", "host", "server_flavor", "server_version",
                 "started_at", "finished_at", "codec", "database_ddl", "database_type"):  # fmt: skip
        if not isinstance(getattr(m, attr), str):
            raise _bad(where, f"{attr} is not a string")
    if m.codec not in KNOWN_CODECS:
        raise IntegrityError(
            f"{where}: codec {m.codec!r:.40} is not one this moodump knows "
            f"({', '.join(KNOWN_CODECS)})",
            hint="the manifest is damaged or was written by a newer moodump; use another backup",
        )
    if m.error is not None and not isinstance(m.error, str):
        raise _bad(where, "error is not a string")
    for attr in ("port", "level"):
        if not isinstance(getattr(m, attr), int) or isinstance(getattr(m, attr), bool):
            raise _bad(where, f"{attr} is not an integer")
    for attr in ("snapshot", "objects", "options"):
        if not isinstance(getattr(m, attr), dict):
            raise _bad(where, f"{attr} is not an object")
    if m.moodle is not None and not isinstance(m.moodle, dict):
        raise _bad(where, "moodle is not an object")
    _strings(m.warnings, where, "warnings")
    _strings(m.notes, where, "notes")
    for name in m.objects.values():
        if name:
            check_relative_name(name, where)
    for f in m.files:
        check_relative_name(f.name, where)
        _count(f.bytes, where, f"size of {f.name}")
        if not isinstance(f.sha256, str) or not _SHA256.fullmatch(f.sha256):
            raise _bad(where, f"sha256 of {f.name} is not 64 hex digits")
        if not isinstance(f.kind, str):
            raise _bad(where, f"kind of {f.name} is not a string")
    seen_files: set[str] = set()
    for f in m.files:
        if f.name in seen_files:
            raise _bad(where, f"file {f.name!r:.200} is listed twice")
        seen_files.add(f.name)
    for t in m.tables:
        check_name(t.name, where, "table", identifier=True)
        if t.schema:
            check_name(t.schema, where, "schema", identifier=True)
        _count(t.rows, where, f"row count of table {t.name}")
        for attr in ("kind", "engine", "schema_file", "load_clause", "digest", "schema"):
            if not isinstance(getattr(t, attr), str):
                raise _bad(where, f"{attr} of table {t.name} is not a string")
        if t.schema_file:
            check_relative_name(t.schema_file, where)
        for attr in ("columns", "column_types", "order_by"):
            _strings(getattr(t, attr), where, f"{attr} of table {t.name}")
        if not isinstance(t.sequence, dict):
            raise _bad(where, f"sequence of table {t.name} is not an object")
        for c in t.chunks:
            check_relative_name(c.file, where)
            _count(c.rows, where, f"row count of {c.file}")
            _count(c.raw_bytes, where, f"size of {c.file}")
            if not isinstance(c.content_digest, str) or not isinstance(c.where, str):
                raise _bad(where, f"content digest or range of {c.file} is not a string")
    seen_tables: set[tuple[str, str]] = set()
    for t in m.tables:
        # restore would create it twice (failing half-way) and verify count it twice
        if (t.schema, t.name) in seen_tables:
            raise _bad(where, f"table {t.name!r:.80} is listed twice")
        seen_tables.add((t.schema, t.name))


def parse_object_records(text: str, where: str) -> list[dict[str, Any]]:
    """The records of a backup's ``objects.json`` (views, triggers, routines, events).

    IntegrityError naming ``where`` unless it is a JSON list of objects, each with a
    string ``kind``, ``name`` and ``create_b64`` (the file is untrusted input)."""
    try:
        records = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(
            f"{where} is not valid JSON", hint="the backup is damaged; use another one"
        ) from exc
    ok = isinstance(records, list) and all(
        isinstance(r, dict)
        and all(isinstance(r.get(k), str) for k in ("kind", "name", "create_b64"))
        and isinstance(r.get("table", ""), (str, type(None)))
        # written into ALTER DATABASE ... COLLATE by the restore: a collation's name only
        and isinstance(r.get("db_collation", ""), str)
        and re.fullmatch(r"[A-Za-z0-9_]*", r.get("db_collation", "")) is not None
        for r in records
    )
    if not ok:
        raise IntegrityError(
            f"{where} is not a list of object definitions",
            hint="the backup is damaged; use another one",
        )
    return records  # type: ignore[no-any-return]


def check_format(fmt: object, where: str) -> None:
    """Raise IntegrityError unless ``fmt`` is a manifest format this code knows.

    A ``moodump/N`` newer than every known format was written by a newer moodump, whose
    manifest this version would misread: it is refused, with the version to use.
    """
    if fmt in KNOWN_FORMATS:
        return
    m = re.fullmatch(r"moodump/([0-9]+)", fmt) if isinstance(fmt, str) else None
    newest = max(int(f.partition("/")[2]) for f in KNOWN_FORMATS)
    if m and int(m.group(1)) > newest:
        raise IntegrityError(
            f"{where} is in format {fmt}, which this moodump cannot read "
            f"(it reads {', '.join(KNOWN_FORMATS)})",
            hint=f"this backup was written by a newer moodump (format {fmt}); "
            "restore it with that version or newer",
        )
    raise IntegrityError(
        f"{where} is not a moodump manifest (format {fmt!r})", hint="use another backup"
    )


def require_done(m: Manifest, where: str) -> Manifest:
    """``m`` when its status is DONE; IntegrityError naming ``where`` otherwise."""
    if m.status != STATUS_DONE:
        raise IntegrityError(
            f"{where} is not a complete backup (manifest status {m.status}"
            + (f": {m.error}" if m.error else "")
            + ")",
            hint="use the newest backup whose status is DONE (moodump list)",
        )
    return m


def read_done_manifest(backup_dir: Path) -> Manifest:
    """Load the manifest and insist that the backup is DONE."""
    return require_done(read_manifest(backup_dir), str(backup_dir))


def read_verify_record(backup_dir: Path) -> VerifyRecord | None:
    """The latest verification record, or None when never verified (or unreadable)."""
    path = Path(backup_dir) / VERIFY_NAME
    try:
        data = json.loads(read_small_file(path, MAX_MANIFEST_BYTES).decode("utf-8"))
        record = VerifyRecord(**data)
    except (OSError, ValueError, TypeError, RecursionError):
        return None
    return record if _verify_record_shape_ok(record) else None


def _verify_record_shape_ok(r: VerifyRecord) -> bool:
    """Every field of its type: listings, checks and retention format and compare them."""

    def number(v: object) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    return (
        r.status in ("PASS", "FAIL")
        and all(isinstance(v, str) for v in (r.method, r.at, r.server))
        and number(r.duration_s)
        and (r.restore_s is None or number(r.restore_s))
        and isinstance(r.details, list)
        and all(isinstance(d, str) for d in r.details)
        and (r.moodle is None or isinstance(r.moodle, dict))
    )


def _chunk(data: dict[str, Any]) -> Chunk:
    # Manifests written before 0.1.0 recorded a bare sha256 as ``content_sha256``.
    if "content_sha256" in data and "content_digest" not in data:
        data = dict(data)
        old = data.pop("content_sha256")
        data["content_digest"] = old if ":" in old else f"sha256:{old}"
    return Chunk(**data)
