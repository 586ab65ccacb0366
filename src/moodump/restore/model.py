"""What a restore takes and gives: options, progress events, the result, and the
up-front check of a backup's files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodump.compression import sha256_file
from moodump.errors import ConfigError, IntegrityError
from moodump.manifest import FileEntry, Manifest
from moodump.source import inside_backup

log = logging.getLogger("moodump.restore")

#: Added to the hint of an error that stopped the data phase: the target stays for
#: ``--resume`` (the engine takes it back when it removes a target it created).
RESUME_HINT = "; after fixing it, continue with: moodump restore --resume ..."


PROGRESS_TABLE = "_moodump_restore"

#: ``--toast-compression`` choices (PostgreSQL): ``auto`` (lz4 unless the server's
#: configuration or the source database chose a method), a method, or ``server``.
TOAST_CHOICES = ("auto", "lz4", "pglz", "server")


def progress_table_name(tables: Iterable[str]) -> str:
    """The progress table of a restore: ``_moodump_restore``, unless the backup has a
    table of that name (then ``_moodump_restore_1``, ...). Found from the backup alone,
    so a resumed restore finds the same table."""
    taken = set(tables)
    name, n = PROGRESS_TABLE, 0
    while name in taken:
        n += 1
        name = f"{PROGRESS_TABLE}_{n}"
    return name


@dataclass(frozen=True)
class RestoreOptions:
    threads: int = 2
    drop: bool = False  # drop what is in the way (whole database, or the named tables)
    atomic: bool = False  # load into a staging database and swap tables in at the end
    resume: bool = False  # continue a restore that stopped (crash, kill -9)
    tables: tuple[str, ...] = ()  # restore only these tables (schema + data + triggers)
    objects: bool = True  # views, routines, triggers, events
    check_files: bool = True  # verify sha256/size of every file before touching the target
    # Tables with at least this much row text get their secondary indexes built after the
    # load (one sorted pass per index) instead of maintained row by row.
    defer_indexes_min_bytes: int = 8 << 20
    # Moodle (docs/moodle.md): the table prefix; the dataroot in which to put the site in
    # maintenance mode around the restore (caches purged before it is lifted); a staging
    # copy (scrubbed by moodlesite.rules before it is usable).
    moodle_prefix: str | None = None  # None: the prefix the backup recorded, else mdl_
    moodle_maintenance: Path | None = None
    staging: bool = False
    # PostgreSQL: keep OWNER TO and GRANT/REVOKE (the source's roles must exist on the target)
    owners: bool = False
    analyze: bool = False  # PostgreSQL: ANALYZE the restored database at the end
    # PostgreSQL: how the restore's sessions compress long values (TOAST_CHOICES)
    toast_compression: str = "auto"
    # PostgreSQL: objects go into the tablespaces the backup names (which must exist);
    # False: into the database's default one (a verification: rows do not depend on it)
    tablespaces: bool = True


@dataclass
class RestoreEvent:
    # "check" | "schema" | "data" (a file's rows are committed: ``file`` names it) |
    # "indexes" (deferred secondary indexes being built) | "objects" | "done"
    phase: str
    table: str = ""
    files_done: int = 0
    files_total: int = 0
    rows_done: int = 0
    rows_total: int = 0
    elapsed_s: float = 0.0
    file: str = ""


@dataclass
class RestoreResult:
    database: str
    tables: int
    rows: int
    files_loaded: int
    files_skipped: int  # already loaded before a resume
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    # --moodle-maintenance / --staging: what was done to the site (docs/moodle.md)
    moodle: dict[str, Any] | None = None


def choose_toast_compression(
    wanted: str, source: str | None, methods: list[str], db_settings: list[str]
) -> str | None:
    """The ``default_toast_compression`` a restore's sessions set, or None to leave the
    session's own. Pure: ``source`` is where the server's value comes from (pg_settings'
    ``source``; None on PostgreSQL < 14, which has one method), ``methods`` the values it
    accepts, ``db_settings`` the source database's ``ALTER DATABASE … SET`` (``name=value``).

    Why: a value over ~2 kB is compressed as it is stored, and pglz (the built-in default)
    is slow; lz4 compresses the sample's backup_controllers in 2 s of server CPU against
    9 s, for a TOAST 30 % bigger. The method is physical only: the values, the schema and
    a column's own ``COMPRESSION`` are unchanged. ``auto`` takes lz4 only when nobody
    chose: the source database's own setting wins, then the server's configuration
    (postgresql.conf, ``ALTER ROLE``/``DATABASE``, ``PGOPTIONS``)."""
    if wanted == "server" or source is None:
        return None
    if wanted in ("lz4", "pglz"):
        if wanted not in methods:
            raise ConfigError(
                f"--toast-compression {wanted}: this server does not offer it "
                f"(default_toast_compression accepts {', '.join(methods) or 'nothing'})",
                hint="use --toast-compression server (the server's default)",
            )
        return wanted
    if wanted != "auto":
        raise ConfigError(
            f"--toast-compression {wanted!r} is not one of {', '.join(TOAST_CHOICES)}",
            hint="pick one of them",
        )
    for item in db_settings:
        key, _, value = str(item).partition("=")
        if key.strip().lower() == "default_toast_compression":
            return value.strip() if value.strip() in methods else None
    return "lz4" if source == "default" and "lz4" in methods else None


def check_files(
    path: Path, manifest: Manifest, names: set[str] | None = None, threads: int = 1
) -> None:
    """Every listed file exists inside ``path`` (no name or symbolic link leads out) with
    the recorded size and sha256; IntegrityError otherwise (the first in the manifest's
    order). ``threads`` files are hashed at once (hashlib leaves the GIL while it hashes):
    a restore checks every file before it touches the target, so this runs while the
    server has nothing to do."""
    files = [f for f in manifest.files if names is None or f.name in names]
    for f in files:
        if not inside_backup(path, f.name).is_file():
            raise IntegrityError(
                f"{f.name} is missing from {path}", hint="the backup is incomplete; use another one"
            )

    def measured(f: FileEntry) -> tuple[int, str]:
        return sha256_file(inside_backup(path, f.name))

    if threads > 1 and len(files) > 1:
        with ThreadPoolExecutor(min(threads, len(files)), thread_name_prefix="moodump-check") as pool:
            sums = list(pool.map(measured, files))
    else:
        sums = [measured(f) for f in files]
    for f, (size, sha) in zip(files, sums, strict=True):
        if size != f.bytes:
            raise IntegrityError(
                f"{f.name} has {size} bytes, the manifest says {f.bytes} (truncated or replaced)",
                hint="the backup is damaged; use another one",
            )
        if sha != f.sha256:
            raise IntegrityError(
                f"{f.name} does not match its sha256 in the manifest (corrupted)",
                hint="the backup is damaged; use another one",
            )
