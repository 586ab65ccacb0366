"""What a dump takes and gives: options, progress events, the result."""

from __future__ import annotations

import fnmatch
import itertools
import logging
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from moodump.crypto import SigningKey
from moodump.db.introspect import (
    TableInfo,
)
from moodump.manifest import (
    Manifest,
)

log = logging.getLogger("moodump.dump")


_INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_SMALL_FILE_BYTES = 4 << 20


@dataclass(frozen=True)
class DumpOptions:
    """What to dump and how. Defaults suit a Moodle site on a small server."""

    threads: int = 2
    codec: str = "gzip"
    level: int | None = None
    tables: tuple[str, ...] = ()  # names or glob patterns; empty = all
    exclude: tuple[str, ...] = ()  # tables left out entirely
    exclude_data: tuple[str, ...] = ()  # tables whose schema is kept but data skipped
    where: str = ""  # a condition applied to every table (like mysqldump --where)
    schema_only: bool = False
    data_only: bool = False
    routines: bool = True  # views, triggers, procedures, functions, events
    chunk_bytes: int = 64 << 20  # split tables larger than this by primary-key range
    lock_wait_timeout: int = 60
    record_failure: bool = False  # publish a FAILED manifest (no data) on failure
    # The time the backup is named after (an aware datetime; the scheduler's clock), kept
    # as the manifest's started_at so listings age it by that instant; default: now.
    started_at: datetime | None = None
    # Sign the manifest into manifest.sig (MOODUMP_SIGNING_KEY); None: unsigned.
    signing_key: SigningKey | None = None
    # Moodle's table prefix (MOODLE_PREFIX, config.php); None: found from the tables.
    moodle_prefix: str | None = None
    # Seconds to wait (with backoff) while a Moodle upgrade runs or DDL breaks the
    # snapshot, before failing (MOODUMP_UPGRADE_WAIT); None: no upgrade check at all.
    upgrade_wait: int | None = None
    # The site's dataroot, where Moodle's CLI maintenance file would be; None: unknown.
    moodle_dataroot: str | None = None


@dataclass
class ProgressEvent:
    """Handed to the progress callback (from worker threads, serialised by a lock)."""

    phase: str  # "plan" | "data" | "objects" | "done"
    table: str = ""
    rows_done: int = 0
    rows_estimate: int = 0
    bytes_written: int = 0
    tables_done: int = 0
    tables_total: int = 0
    elapsed_s: float = 0.0


@dataclass
class DumpResult:
    path: Path
    manifest: Manifest
    duration_s: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Task:
    table: TableInfo
    index: int  # chunk number
    where: str
    file: str
    estimate: int  # bytes, for scheduling
    fingerprint: str


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def key_ranges(pk: str, lo: int, hi: int, data_length: int, chunk_bytes: int) -> list[str]:
    """Predicates splitting an integer key's span ``lo``..``hi`` (quoted column ``pk``)
    into about ``data_length / chunk_bytes`` ranges (at most 256). The first and last are
    open-ended, so rows added outside the span still fall in one; ``[""]`` when the span
    cannot be split. Both engines' planners use it (the SQL is the same for both)."""
    n = min(256, math.ceil(data_length / chunk_bytes))
    step = max(1, math.ceil((hi - lo + 1) / n))
    bounds = [lo + i * step for i in range(1, n) if lo + i * step <= hi]
    if not bounds:
        return [""]
    out = [f"{pk} < {bounds[0]}"]
    out += [f"{pk} >= {a} AND {pk} < {b}" for a, b in itertools.pairwise(bounds)]
    out.append(f"{pk} >= {bounds[-1]}")
    return out


def _safe(name: str) -> str:
    keep = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "_" for ch in name)
    return keep[:60] or "_"


def _match(name: str, patterns: tuple[str, ...], known: Collection[str] = ()) -> bool:
    """``name`` against ``patterns`` (names or globs). A pattern that is one of the
    ``known`` table names as it is names that table only: ``x[1]`` is the table
    ``x[1]``, not ``x1`` (which it matches as a glob, and a restore with --drop would
    replace)."""
    return any(name == p if p in known else fnmatch.fnmatchcase(name, p) for p in patterns)
