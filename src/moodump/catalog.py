"""The local backup catalogue: finding backups under BACKUP_DIR, deleting them, pruning.

Reads each backup directory's ``manifest.json`` and ``verify.json`` (never trusting a
name alone), groups backups per database for listings and checks, and applies a
retention :class:`~moodump.retention.Plan` by deleting what it does not keep. Names and
tiers come from the pure :mod:`moodump.naming`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from moodump.crypto import ENCRYPTED_MANIFEST_NAME, EncryptedFile, read_encrypted_manifest
from moodump.errors import MoodumpError, StorageError
from moodump.manifest import (
    MANIFEST_NAME,
    STATUS_DONE,
    VERIFY_NAME,
    FileEntry,
    VerifyRecord,
    read_manifest,
    read_verify_record,
)
from moodump.naming import (
    DATE_RE,
    LEGACY_PARTIAL_SUFFIX,
    LEGACY_SUFFIX,
    localize,
    parse_backup_name,
)
from moodump.retention import TIERS, Backup, Plan, RetentionPolicy, plan, utc

log = logging.getLogger(__name__)

STATUS_MISSING = "MISSING"
"""No ``manifest.json`` in the backup directory (crashed before writing one)."""
STATUS_INVALID = "INVALID"
"""``manifest.json`` exists but cannot be read as a moodump manifest."""

# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class BackupInfo:
    """One backup found on disk.

    ``when`` is aware, in the configured TZ: the manifest's UTC ``started_at`` when there
    is one, else the time in the name read in TZ (old ``.sql.gz`` files); ``status`` is
    the manifest status or MISSING / INVALID; ``verify_status`` is PASS / FAIL / None (never verified); ``size_bytes`` is
    the size on disk; ``rows`` comes from the manifest (None when unknown); ``legacy``
    marks an old backup-container ``.sql.gz`` file.
    """

    path: Path
    name: str
    core: str
    tier: str | None
    when: datetime
    status: str
    size_bytes: int
    verify_status: str | None = None
    verified_at: str | None = None
    rows: int | None = None
    database: str | None = None
    host: str | None = None
    legacy: bool = False
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status == STATUS_DONE

    @property
    def verified(self) -> bool:
        """DONE and the latest verification passed."""
        return self.done and self.verify_status == "PASS"

    def to_backup(self) -> Backup:
        """The value object :func:`moodump.retention.plan` works on (id = path)."""
        return Backup(
            id=str(self.path),
            core=self.core,
            tier=self.tier,
            when=self.when,
            status=self.status,
            verify_failed=self.done and self.verify_status == "FAIL",
            verified=self.verified,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "core": self.core,
            "tier": self.tier,
            "when": self.when.isoformat(),
            "status": self.status,
            "verify": self.verify_status,
            "verified_at": self.verified_at,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "database": self.database,
            "host": self.host,
            "legacy": self.legacy,
            "error": self.error,
        }


def _size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def _parse_utc(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _damaged_file(path: Path, files: Iterable[FileEntry | EncryptedFile]) -> str | None:
    """A cheap check (no reading): the first file of a manifest (``manifest.json``, or
    ``encrypted.json`` of a backup encrypted at rest) that is missing, not a regular
    file, or not of its recorded size, described; None when all look intact."""
    for f in files:
        try:
            st = (path / f.name).lstat()
        except OSError as exc:
            return f"{f.name} is missing ({exc.strerror}): run moodump verify on it"
        if not stat.S_ISREG(st.st_mode):
            return f"{f.name} is not a regular file: run moodump verify on it"
        if st.st_size != f.bytes:
            return (
                f"{f.name} has {st.st_size} bytes, the manifest says {f.bytes} "
                "(truncated or altered): run moodump verify on it"
            )
    return None


_UNREAD = object()  # read_backup: verify.json not looked at yet


def read_backup(path: Path, tier: str | None, tz: tzinfo) -> BackupInfo | None:
    """Describe one backup directory or legacy file; None when the name is not a backup's."""
    parsed = parse_backup_name(path.name)
    if parsed is None:
        return None
    core, naive = parsed
    if path.is_file():
        if path.name.endswith(LEGACY_PARTIAL_SUFFIX):
            status = "STARTED"
        elif path.name.endswith(LEGACY_SUFFIX):
            status = STATUS_DONE
        else:
            return None
        return BackupInfo(
            path=path,
            name=path.name,
            core=core,
            tier=tier,
            when=localize(naive, tz),
            status=status,
            size_bytes=_size_on_disk(path),
            legacy=True,
        )
    if not path.is_dir():
        return None
    status = STATUS_MISSING
    rows: int | None = None
    database = host = error = None
    started: datetime | None = None
    record: VerifyRecord | object | None = _UNREAD
    if (path / MANIFEST_NAME).exists():
        try:
            m = read_manifest(path)
        except (MoodumpError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # Whatever is wrong with it, an unreadable manifest is just "not a backup".
            status, error = STATUS_INVALID, (str(exc).splitlines() or [type(exc).__name__])[0]
        else:
            status = m.status
            rows = m.total_rows
            database, host, error = m.database or None, m.host or None, m.error
            started = _parse_utc(m.started_at)
            damage = _damaged_file(path, m.files) if status == STATUS_DONE else None
            if damage is not None:
                # DONE but a file is missing or has the wrong size: not a good backup
                # (retention must not keep it in place of an older, intact one).
                status, error = STATUS_INVALID, damage
    elif (path / ENCRYPTED_MANIFEST_NAME).exists():
        # Encrypted at rest (MOODUMP_ENCRYPT_AT_REST): encrypted.json says what is known
        # without the key. It carries a verification only if one passed before
        # encryption (verify.json.age); its details need the key.
        try:
            em = read_encrypted_manifest(path)
        except MoodumpError as exc:
            status, error = STATUS_INVALID, exc.message
        else:
            status, database = em.status, em.database or None
            started = _parse_utc(em.started_at)
            damage = _damaged_file(path, em.files) if status == STATUS_DONE else None
            if damage is not None:  # as for a plain backup: not a good one
                status, error = STATUS_INVALID, damage
            passed = any(f.name == VERIFY_NAME + ".age" for f in em.files)
            record = VerifyRecord("PASS", "encrypted", "", 0.0) if passed else None
    if record is _UNREAD:
        record = read_verify_record(path)
    return BackupInfo(
        path=path,
        name=path.name,
        core=core,
        tier=tier,
        # The manifest's UTC start is the instant; the name is wall-clock time in the TZ
        # of the day it was written, which may not be today's TZ (a changed TZ would make
        # backups look hours old, or from the future).
        when=started.astimezone(tz) if started is not None else localize(naive, tz),
        status=status,
        size_bytes=_size_on_disk(path),
        verify_status=record.status if isinstance(record, VerifyRecord) else None,
        verified_at=(record.at or None) if isinstance(record, VerifyRecord) else None,
        rows=rows,
        database=database,
        host=host,
        error=error,
    )


def _children(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        log.debug("cannot list %s: %s", path, exc)
        return []


def scan_backups(root: Path, tz: tzinfo) -> list[BackupInfo]:
    """Every backup under ``root`` in either layout, sorted by core name then time.

    Only ``root/<date>/<name>`` and ``root/<tier>/<date>/<name>`` are looked at (names
    must match the backup pattern; dot-files such as the lock file are ignored), so
    nothing else on the volume is ever mistaken for a backup. A missing root is empty.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[BackupInfo] = []
    for top in _children(root):
        if not top.is_dir():
            continue
        if top.name in TIERS:
            day_dirs, tier = [d for d in _children(top) if DATE_RE.match(d.name)], top.name
        elif DATE_RE.match(top.name):
            day_dirs, tier = [top], None
        else:
            continue
        for day_dir in day_dirs:
            if not day_dir.is_dir():
                continue
            for entry in _children(day_dir):
                info = read_backup(entry, tier, tz)
                if info is not None:
                    found.append(info)
    found.sort(key=lambda b: (b.core, utc(b.when), b.name))
    return found


# --------------------------------------------------------------------------- deleting


def delete_backup(info: BackupInfo, root: Path) -> None:
    """Delete one backup (directory or legacy file) below ``root``.

    The manifest goes first: a half-deleted directory then reads as MISSING (not a good
    backup) instead of a DONE backup with files missing.
    """
    root_resolved = Path(root).resolve()
    target = info.path.resolve()
    if root_resolved == target or root_resolved not in target.parents:
        raise StorageError(
            f"refusing to delete {info.path}: it is not inside the backup root {root}",
            hint="check BACKUP_DIR",
        )
    try:
        if info.path.is_dir() and not info.path.is_symlink():
            for marker in (MANIFEST_NAME, ENCRYPTED_MANIFEST_NAME):
                if (info.path / marker).exists():
                    (info.path / marker).unlink()
            shutil.rmtree(info.path)
        else:
            info.path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(
            f"cannot delete {info.path}: {exc.strerror}",
            hint="check the permissions of the backup volume",
        ) from exc


def remove_empty_dirs(root: Path) -> None:
    """Remove empty date and tier folders (never ``root`` itself), like the old scripts."""
    root = Path(root)
    for top in _children(root):
        if not top.is_dir() or top.is_symlink():
            continue
        if top.name in TIERS:
            for day in _children(top):
                if day.is_dir() and DATE_RE.match(day.name):
                    _rmdir_if_empty(day)
            _rmdir_if_empty(top)
        elif DATE_RE.match(top.name):
            _rmdir_if_empty(top)


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune` decided and did."""

    plan: Plan
    backups: tuple[BackupInfo, ...]
    removed: tuple[BackupInfo, ...]
    dry_run: bool
    errors: tuple[str, ...] = field(default=())

    @property
    def freed_bytes(self) -> int:
        return sum(b.size_bytes for b in self.removed)

    def info(self, backup_id: str) -> BackupInfo:
        for b in self.backups:
            if str(b.path) == backup_id:
                return b
        raise KeyError(backup_id)

    def to_dict(self) -> dict[str, Any]:
        sizes = {str(b.path): b.size_bytes for b in self.backups}
        return {
            "dry_run": self.dry_run,
            "removed": len(self.removed),
            "freed_bytes": self.freed_bytes,
            "errors": list(self.errors),
            "decisions": [{**d, "size_bytes": sizes.get(d["id"], 0)} for d in self.plan.to_list()],
        }


def apply_plan(
    retention_plan: Plan, backups: Sequence[BackupInfo], root: Path, *, dry_run: bool = False
) -> tuple[tuple[BackupInfo, ...], tuple[str, ...]]:
    """Delete what the plan removes. Returns (removed, error messages).

    One failed deletion does not stop the others; the errors are returned for reporting.
    """
    by_id = {str(b.path): b for b in backups}
    removed: list[BackupInfo] = []
    errors: list[str] = []
    for victim in retention_plan.remove:
        info = by_id[victim.id]
        if not dry_run:
            try:
                delete_backup(info, root)
            except StorageError as exc:
                errors.append(str(exc))
                continue
        removed.append(info)
    if not dry_run and removed:
        remove_empty_dirs(root)
    return tuple(removed), tuple(errors)


def prune(
    root: Path,
    policy: RetentionPolicy,
    now: datetime,
    tz: tzinfo,
    *,
    dry_run: bool = False,
    after_failure: bool = False,
    only: Collection[str] | None = None,
) -> PruneReport:
    """Scan ``root``, plan retention (:func:`moodump.retention.plan`) and apply it.

    ``only`` restricts pruning to these core names (the configured databases); others
    are left alone. ``moodump run`` should call this after its backups with
    ``after_failure=True``: a database whose newest backup is not DONE then loses
    nothing, every other one is pruned normally. ``moodump prune`` passes False.
    """
    backups = tuple(scan_backups(root, tz))
    retention_plan = plan(
        [b.to_backup() for b in backups], policy, now, after_failure=after_failure, only=only
    )
    removed, errors = apply_plan(retention_plan, backups, root, dry_run=dry_run)
    return PruneReport(retention_plan, backups, removed, dry_run, errors)


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class DatabaseBackups:
    """The backups of one database (core name), newest first, for listings and checks."""

    core: str
    configured: bool
    backups: tuple[BackupInfo, ...]

    @property
    def newest(self) -> BackupInfo | None:
        return self.backups[0] if self.backups else None

    @property
    def newest_done(self) -> BackupInfo | None:
        return next((b for b in self.backups if b.done), None)

    @property
    def newest_verified(self) -> BackupInfo | None:
        return next((b for b in self.backups if b.verified), None)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        def age(b: BackupInfo | None) -> float | None:
            return None if b is None else round((utc(now) - utc(b.when)).total_seconds(), 1)

        return {
            "core": self.core,
            "configured": self.configured,
            "count": len(self.backups),
            "size_bytes": sum(b.size_bytes for b in self.backups),
            "newest_done": self.newest_done.name if self.newest_done else None,
            "newest_done_age_s": age(self.newest_done),
            "newest_verified": self.newest_verified.name if self.newest_verified else None,
            "newest_verified_age_s": age(self.newest_verified),
            "backups": [b.to_dict() for b in self.backups],
        }


def group_by_database(
    backups: Iterable[BackupInfo], configured: Iterable[str] = ()
) -> list[DatabaseBackups]:
    """Backups per core name (newest first); configured databases appear even when empty.

    Configured databases come first, in configuration order, then any others by name.
    """
    order = list(dict.fromkeys(configured))
    groups: dict[str, list[BackupInfo]] = {c: [] for c in order}
    for b in backups:
        groups.setdefault(b.core, []).append(b)
    names = order + sorted(c for c in groups if c not in order)
    return [
        DatabaseBackups(
            core=c,
            configured=c in order,
            backups=tuple(sorted(groups[c], key=lambda b: (utc(b.when), b.name), reverse=True)),
        )
        for c in names
    ]


def listing_json(
    groups: Sequence[DatabaseBackups], now: datetime, root: Path, free_bytes: int | None
) -> str:
    """The ``moodump list --json`` document."""
    doc = {
        "root": str(root),
        "now": now.isoformat(),
        "free_bytes": free_bytes,
        "databases": [g.to_dict(now) for g in groups],
    }
    return json.dumps(doc, indent=1)
