"""Health checks the old container lacked: size floor, shrink, freshness, free space.

The decisions are pure functions returning :class:`CheckResult` values (level ``ok``,
``warn`` or ``fail``); the caller decides what a failure does (``moodump check`` exits 11,
``moodump run`` marks the backup failed or warns). The only I/O is :func:`disk_free`
and :func:`free_space_precheck`.

Sizes are compared like for like: the size on disk of the backup directory
(:attr:`moodump.catalog.BackupInfo.size_bytes`) against the previous DONE backup of the
*same* database (core name matched exactly).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from moodump.catalog import BackupInfo
from moodump.naming import age_text
from moodump.retention import utc

OK = "ok"
WARN = "warn"
FAIL = "fail"
_RANK = {OK: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. ``check`` is min_size, shrink, freshness or free_space."""

    check: str
    level: str
    message: str
    core: str | None = None

    @property
    def failed(self) -> bool:
        return self.level == FAIL

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "level": self.level,
            "core": self.core,
            "message": self.message,
        }


def worst(results: Iterable[CheckResult]) -> str:
    """The worst level among ``results`` (``ok`` when empty)."""
    return max((r.level for r in results), key=_RANK.__getitem__, default=OK)


def human_size(n: float) -> str:
    """``1.5 GiB``-style sizes for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


# --------------------------------------------------------------------------- size


def check_min_size(size: int, min_size: int, *, core: str | None = None) -> CheckResult:
    """Fail when ``size`` is below ``min_size`` (0 disables the check)."""
    if min_size <= 0:
        return CheckResult("min_size", OK, "no minimum size set", core)
    if size < min_size:
        return CheckResult(
            "min_size",
            FAIL,
            f"backup is {human_size(size)}, below the minimum of {human_size(min_size)} "
            "(MOODUMP_MIN_SIZE): it is probably empty or cut short",
            core,
        )
    return CheckResult(
        "min_size", OK, f"{human_size(size)} >= minimum {human_size(min_size)}", core
    )


def check_shrink(
    size: int,
    previous_size: int | None,
    max_shrink_percent: float,
    mode: str = WARN,
    *,
    core: str | None = None,
) -> CheckResult:
    """Warn or fail (``mode``) when ``size`` is more than ``max_shrink_percent`` smaller
    than ``previous_size`` (the previous good backup). 0 percent disables the check.
    """
    if mode not in (WARN, FAIL):
        raise ValueError(f"mode must be warn or fail, not {mode!r}")
    if max_shrink_percent <= 0:
        return CheckResult("shrink", OK, "shrink check off", core)
    if not previous_size:
        return CheckResult("shrink", OK, "no previous good backup to compare with", core)
    shrink = (previous_size - size) * 100.0 / previous_size
    if shrink > max_shrink_percent:
        return CheckResult(
            "shrink",
            mode,
            f"backup is {shrink:.1f}% smaller than the previous good one "
            f"({human_size(size)} vs {human_size(previous_size)}; limit "
            f"{max_shrink_percent:g}%, MOODUMP_MAX_SHRINK_PERCENT): check that no data is "
            "missing",
            core,
        )
    change = -shrink
    return CheckResult("shrink", OK, f"{change:+.1f}% against the previous good backup", core)


def check_size(
    size: int,
    *,
    previous_size: int | None,
    min_size: int,
    max_shrink_percent: float,
    shrink_mode: str,
    core: str | None = None,
) -> list[CheckResult]:
    """Both size checks for one new backup."""
    return [
        check_min_size(size, min_size, core=core),
        check_shrink(size, previous_size, max_shrink_percent, shrink_mode, core=core),
    ]


def previous_good(backups: Iterable[BackupInfo], core: str, before: datetime) -> BackupInfo | None:
    """The newest DONE backup of ``core`` (exact match) strictly older than ``before``."""
    limit = utc(before)
    candidates = [b for b in backups if b.core == core and b.done and utc(b.when) < limit]
    return max(candidates, key=lambda b: (utc(b.when), b.name), default=None)


# --------------------------------------------------------------------------- freshness


class Dated(Protocol):
    """What freshness needs from a backup (BackupInfo and retention.Backup both fit)."""

    @property
    def core(self) -> str: ...
    @property
    def when(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def verified(self) -> bool: ...


def check_freshness(
    backups: Iterable[Dated],
    max_age: timedelta,
    now: datetime,
    *,
    accept_unverified: bool = False,
    cores: Iterable[str] | None = None,
) -> list[CheckResult]:
    """One result per database: fail when its newest *verified* backup (or newest DONE
    one, with ``accept_unverified``) is older than ``max_age`` or does not exist.

    ``cores`` are the databases that must have backups (the configured ones); without
    it every database seen in ``backups`` is checked. A failed newest backup is mentioned,
    because that is usually why the good one is old.
    """
    items = list(backups)
    names = list(dict.fromkeys(cores)) if cores is not None else sorted({b.core for b in items})
    what = "good" if accept_unverified else "verified"
    results: list[CheckResult] = []
    for core in names:
        mine = sorted((b for b in items if b.core == core), key=lambda b: utc(b.when))
        good = [b for b in mine if b.status == "DONE" and (accept_unverified or b.verified)]
        tail = ""
        if mine and mine[-1].status != "DONE":
            tail = f"; the newest backup ({mine[-1].when:%Y-%m-%d %H:%M}) is {mine[-1].status}"
        if not good:
            hint = ""
            if not accept_unverified and any(b.status == "DONE" for b in mine):
                hint = " (there are unverified DONE backups: verify them, or accept unverified)"
            results.append(CheckResult("freshness", FAIL, f"no {what} backup{hint}{tail}", core))
            continue
        newest = good[-1]
        age = utc(now) - utc(newest.when)
        text = (
            f"newest {what} backup is {age_text(age)} old "
            f"({newest.when:%Y-%m-%d %H:%M %Z}; limit {age_text(max_age)})"
        )
        if age > max_age:
            results.append(CheckResult("freshness", FAIL, f"{text}{tail}", core))
        else:
            results.append(CheckResult("freshness", OK, text + tail, core))
    return results


# --------------------------------------------------------------------------- free space


def required_free_space(min_free: int, previous_size: int | None, factor: float) -> int:
    """Bytes that must be free before a dump: the larger of ``min_free`` and
    ``factor`` x the previous backup's size (a dump rarely grows more than that in a day).
    """
    estimate = math.ceil(previous_size * factor) if previous_size and factor > 0 else 0
    return max(min_free, estimate, 0)


def check_free_space(free_bytes: int, required: int, path: Path | str = "") -> CheckResult:
    """Fail when fewer than ``required`` bytes are free."""
    where = f" on {path}" if path else ""
    if required <= 0:
        return CheckResult("free_space", OK, f"{human_size(free_bytes)} free{where}")
    if free_bytes < required:
        return CheckResult(
            "free_space",
            FAIL,
            f"only {human_size(free_bytes)} free{where}, {human_size(required)} needed "
            "(MOODUMP_MIN_FREE_SPACE / MOODUMP_FREE_SPACE_FACTOR x previous backup): "
            "free space or lower the retention counts",
        )
    return CheckResult(
        "free_space",
        OK,
        f"{human_size(free_bytes)} free{where} (>= {human_size(required)} needed)",
    )


def disk_free(path: Path | str) -> int:
    """Free bytes for unprivileged users on the filesystem holding ``path`` (or its
    nearest existing parent, so it works before BACKUP_DIR is created)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def free_space_precheck(
    root: Path | str, previous_size: int | None, min_free: int, factor: float
) -> CheckResult:
    """The free-space check before a dump (thin I/O over :func:`check_free_space`)."""
    return check_free_space(
        disk_free(root), required_free_space(min_free, previous_size, factor), root
    )


# --------------------------------------------------------------------------- moodump check


def check_backups(
    backups: Sequence[BackupInfo],
    *,
    now: datetime,
    max_age: timedelta,
    accept_unverified: bool = False,
    cores: Iterable[str] | None = None,
    min_size: int = 0,
    max_shrink_percent: float = 0.0,
    shrink_mode: str = WARN,
) -> list[CheckResult]:
    """Everything ``moodump check`` looks at, per database: freshness, and the size
    checks of the newest DONE backup against the previous DONE one.
    """
    results = check_freshness(
        backups, max_age, now, accept_unverified=accept_unverified, cores=cores
    )
    names = [r.core for r in results if r.core is not None]
    for core in names:
        done = sorted(
            (b for b in backups if b.core == core and b.done), key=lambda b: (utc(b.when), b.name)
        )
        if not done:
            continue
        newest = done[-1]
        previous = done[-2].size_bytes if len(done) > 1 else None
        if min_size > 0:
            results.append(check_min_size(newest.size_bytes, min_size, core=core))
        if max_shrink_percent > 0:
            results.append(
                check_shrink(
                    newest.size_bytes, previous, max_shrink_percent, shrink_mode, core=core
                )
            )
    return results


__all__ = [
    "FAIL",
    "OK",
    "WARN",
    "CheckResult",
    "check_backups",
    "check_free_space",
    "check_freshness",
    "check_min_size",
    "check_shrink",
    "check_size",
    "disk_free",
    "free_space_precheck",
    "human_size",
    "previous_good",
    "required_free_space",
    "worst",
]
