"""Backup names, tiers and target folders: pure, no I/O.

The layout is the old backup-container's, with one difference: each backup is a
*directory* (holding ``manifest.json`` and the data files) instead of one ``.sql.gz`` file.

- daily strategy:   ``BACKUP_DIR/YYYY-MM-DD/<name>/``
- rolling strategy: ``BACKUP_DIR/{daily|weekly|monthly}/YYYY-MM-DD/<name>/``

where ``<name>`` is ``<host>-<db>_YYYY-MM-DD_HH-MM-SS``.

Dates and times in names are *local wall-clock* times in the configured time zone (TZ), as
before. ``<host>-<db>`` is the *core name*; it identifies a database's backups everywhere
and is always compared exactly (the old scripts used a substring match, so ``db-moodle``
also matched ``db-moodle_archive``).

Old-style files the backup-container left on the volume
(``<core>_<date>_<time>.sql.gz``, and ``.sql.gz.in_progress`` leftovers) parse too, so
the catalogue (:mod:`moodump.catalog`) can mark them ``legacy`` and retention ages them out.

Used by the local catalogue, off-site storage and the configuration alike.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from moodump.retention import (
    STRATEGY_DAILY,
    STRATEGY_ROLLING,
    TIER_DAILY,
    TIER_MONTHLY,
    TIER_WEEKLY,
    TIERS,
    RetentionPolicy,
    utc,
)

LEGACY_SUFFIX = ".sql.gz"
LEGACY_PARTIAL_SUFFIX = ".sql.gz.in_progress"

NAME_FORMAT = "%Y-%m-%d_%H-%M-%S"
DATE_FORMAT = "%Y-%m-%d"
_NAME_RE = re.compile(r"^(?P<core>.+)_(?P<stamp>\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------- pure helpers


def core_name(host: str, db: str) -> str:
    """``<host>-<db>``: the key that identifies one database's backups."""
    return f"{host}-{db}"


def backup_name(host: str, db: str, when: datetime) -> str:
    """``<host>-<db>_YYYY-MM-DD_HH-MM-SS`` from the *wall-clock* fields of ``when``.

    Pass ``now`` already converted to the configured time zone; ``when`` is not converted.
    """
    return f"{core_name(host, db)}_{when.strftime(NAME_FORMAT)}"


def parse_backup_name(name: str) -> tuple[str, datetime] | None:
    """Split a backup name into (core name, naive local wall-clock time), or None.

    Accepts directory names and legacy file names (``.sql.gz`` / ``.sql.gz.in_progress``).
    """
    for suffix in (LEGACY_PARTIAL_SUFFIX, LEGACY_SUFFIX):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    m = _NAME_RE.match(name)
    if not m:
        return None
    try:
        when = datetime.strptime(m.group("stamp"), NAME_FORMAT)
    except ValueError:
        return None
    return m.group("core"), when


def is_last_day_of_month(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def tier_for(day: date, policy: RetentionPolicy) -> str | None:
    """The tier folder today's backup goes to (None for the daily strategy).

    The old rules: ``monthly`` on the last day of the month when MONTHLY_BACKUPS > 0,
    else ``weekly`` on a Sunday, else ``daily``. One fix: a Sunday backup goes to
    ``weekly`` only when WEEKLY_BACKUPS > 0. The old container put it in ``weekly`` even
    with WEEKLY_BACKUPS=0 and deleted it straight away (keep 0).
    """
    if not policy.rolling:
        return None
    if is_last_day_of_month(day) and policy.monthly > 0:
        return TIER_MONTHLY
    if day.isoweekday() == 7 and policy.weekly > 0:
        return TIER_WEEKLY
    return TIER_DAILY


def target_dir(
    root: Path, strategy: str, tier: str | None, when: datetime, host: str, db: str
) -> Path:
    """The directory a new backup is written to (not created here).

    ``when`` is the local wall-clock time of the run (see :func:`backup_name`); the date
    folder and the name use the same instant, so they never disagree around midnight.
    """
    day = when.strftime(DATE_FORMAT)
    name = backup_name(host, db, when)
    if strategy == STRATEGY_DAILY:
        return Path(root) / day / name
    if strategy != STRATEGY_ROLLING:
        raise ValueError(f"unknown strategy {strategy!r}")
    if tier not in TIERS:
        raise ValueError(f"rolling strategy needs a tier, got {tier!r}")
    return Path(root) / str(tier) / day / name


def target_dir_for(root: Path, policy: RetentionPolicy, when: datetime, host: str, db: str) -> Path:
    """:func:`target_dir` with the tier chosen by :func:`tier_for` for ``when``'s date."""
    return target_dir(root, policy.strategy, tier_for(when.date(), policy), when, host, db)


def localize(naive: datetime, tz: tzinfo, hint_utc: datetime | None = None) -> datetime:
    """Attach ``tz`` to a wall-clock time from a name.

    In the repeated hour of a DST fall-back a wall-clock time happens twice; ``hint_utc``
    (the manifest's ``started_at``) picks the right one. Without a hint the first one wins.
    """
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if hint_utc is None or first.utcoffset() == second.utcoffset():
        return first
    return min((first, second), key=lambda c: abs((utc(c) - utc(hint_utc)).total_seconds()))


def age_text(delta: timedelta) -> str:
    """``3d 4h``, ``5h 12m``, ``40m``: a short age for listings."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    return f"{sign}{minutes}m"
