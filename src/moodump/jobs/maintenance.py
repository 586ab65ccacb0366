"""Listing, retention and health checks, one library function each.

:func:`listing`, :func:`prune_once`, :func:`delete_backup_once` and :func:`check_once`
are what ``moodump list``, ``moodump prune``, ``backup.sh -p -f`` and ``moodump check``
run, and what the scheduler runs for the same cron lines: none of those callers composes
the operation itself, so they cannot drift apart.

Everything that deletes takes the run lock first: a prune while a backup or a
verification holds the lock raises :class:`~moodump.errors.LockBusy` (exit 10) and
deletes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from moodump.catalog import (
    DatabaseBackups,
    delete_backup,
    group_by_database,
    prune,
    read_backup,
    scan_backups,
)
from moodump.checks import FAIL, WARN, CheckResult, check_backups, disk_free, worst
from moodump.config import Config
from moodump.errors import CheckFailed, ConfigError, MoodumpError, NotFoundError, StorageError
from moodump.jobs.backup import check_dicts
from moodump.jobs.report import DatabaseResult, RunReport
from moodump.jobs.wiring import Clock, Context, run_lock
from moodump.naming import parse_backup_name
from moodump.notify import Event, Notifier
from moodump.pitr import prune_archive
from moodump.retention import TIERS, last_good_copy
from moodump.schedule import ACTION_CHECK, ACTION_PRUNE

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- list


@dataclass(frozen=True)
class Listing:
    """The backups per database (configured ones first) and the volume's free space."""

    root: Path
    groups: list[DatabaseBackups]
    free_bytes: int | None


def listing(cfg: Config) -> Listing:
    """Every backup under BACKUP_DIR, grouped per database (``moodump list``)."""
    groups = group_by_database(scan_backups(cfg.root, cfg.tz), cfg.cores)
    try:
        free: int | None = disk_free(cfg.root)
    except OSError:
        free = None
    return Listing(cfg.root, groups, free)


# --------------------------------------------------------------------------- prune


def prune_once(
    cfg: Config,
    *,
    dry_run: bool = False,
    all_databases: bool = False,
    now: datetime | None = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
) -> RunReport:
    """Apply retention under the run lock (``moodump prune``, ``backup.sh -p``).

    Only the configured databases are pruned unless ``all_databases``; a configuration
    without databases is an error then, because prune would not know what it may touch.
    No ``after_failure`` protection beyond the retention rules (the newest good and
    newest verified backups always stay). The plan is in ``report.prune``; backups
    that could not be removed are errors (exit 7).
    """
    ctx = Context(cfg, ACTION_PRUNE, now=now, clock=clock, notifier=notifier,
                  sleep=time.sleep, stop=None)  # fmt: skip
    if not cfg.databases and not all_databases:
        raise ConfigError(
            "no database is configured, so prune does not know which backups it may touch",
            hint="configure the databases (moodump config), or pass --all-databases",
        )
    only = None if all_databases else cfg.cores
    with run_lock(cfg, "prune"):
        pr = prune(cfg.root, cfg.retention, ctx.now(), cfg.tz, dry_run=dry_run, only=only)
    ctx.report.prune = pr
    ctx.report.pruned = [b.name for b in pr.removed]
    for e in pr.errors:
        ctx.report.errors.append((StorageError.exit_code, e))
    if cfg.binlog_dir:
        _prune_binlog_archive(ctx, dry_run)
    return ctx.finish()


def _prune_binlog_archive(ctx: Context, dry_run: bool) -> None:
    """MOODUMP_BINLOG_DIR: archived logs before the oldest kept backup's snapshot go."""
    cfg = ctx.cfg
    try:
        res = prune_archive(cfg.binlog_dir, cfg.root, dry_run=dry_run)
    except MoodumpError as exc:
        ctx.report.errors.append((exc.exit_code, f"binlog archive {cfg.binlog_dir}: {exc}"))
        return
    ctx.report.pruned += [f"{cfg.binlog_dir}/{name}" for name in res.deleted]


def delete_backup_once(cfg: Config, path: Path | str, *, force: bool = False) -> Path:
    """Delete one backup by path, under the run lock (``backup.sh -p -f FILTER``).

    The path must be a backup directory (or an old ``.sql.gz``) below BACKUP_DIR, in the
    layout's places; ``manifest.json`` goes first, so a half-deleted backup is never DONE.
    The only good backup of its database (:func:`moodump.retention.last_good_copy`) is
    refused unless ``force``: no copy would be left to restore. Returns the path deleted.
    """
    root = cfg.root.resolve()
    target = Path(path).resolve()
    if root not in target.parents:
        raise ConfigError(
            f"refusing to delete {path}: it is not under BACKUP_DIR ({cfg.root})",
            hint="name a backup that moodump list shows",
        )
    tier = target.parent.parent.name if target.parent.parent.name in TIERS else None
    if parse_backup_name(target.name) is None or not target.exists():
        raise NotFoundError(
            f"{path} is not a backup (no <host>-<db>_<date>_<time> directory or .sql.gz there)",
            hint="moodump list shows the backups and their paths",
        )
    with run_lock(cfg, "delete"):
        info = read_backup(target, tier, cfg.tz)
        if info is None:
            raise NotFoundError(f"{path} is not a backup", hint="see moodump list")
        group = [b.to_backup() for b in scan_backups(cfg.root, cfg.tz) if b.core == info.core]
        mine = next((b for b in group if Path(b.id).resolve() == target), info.to_backup())
        if not force and last_good_copy(mine, group):
            raise ConfigError(
                f"refusing to delete {path}: it is the only good backup of {info.core} "
                "(no other DONE backup whose verification did not fail)",
                hint="make a new backup first (moodump run --once), or add --force to "
                "delete it anyway",
            )
        delete_backup(info, cfg.root)
    log.info("deleted %s", target)
    return target


# --------------------------------------------------------------------------- check


@dataclass(frozen=True)
class CheckOptions:
    """``moodump check``'s options; None takes the configuration's value."""

    max_age: timedelta | None = None
    accept_unverified: bool | None = None
    min_size: int | None = None
    max_shrink_percent: float | None = None
    shrink_mode: str | None = None


def check_once(
    cfg: Config,
    options: CheckOptions | None = None,
    *,
    now: datetime | None = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
) -> RunReport:
    """Freshness and size checks of every database's backups (``moodump check``).

    The databases are the configured ones, or, without any, every database that has
    backups under BACKUP_DIR. A failed check is exit 11 and an ERROR notification; a
    warning (a shrink in warn mode) is exit 0 with the warning in the report. Each
    database's results are in ``report.databases[i].checks``.
    """
    o = options or CheckOptions()
    ctx = Context(cfg, ACTION_CHECK, now=now, clock=clock, notifier=notifier,
                  sleep=time.sleep, stop=None)  # fmt: skip
    backups = scan_backups(cfg.root, cfg.tz)
    cores = cfg.cores or sorted({b.core for b in backups})
    if not cores:
        raise CheckFailed(
            f"no database is configured and no backups were found in {cfg.root}",
            hint="check BACKUP_DIR and the configuration (moodump config)",
        )
    results = check_backups(
        backups,
        now=ctx.now(),
        max_age=cfg.max_age if o.max_age is None else o.max_age,
        accept_unverified=cfg.check_unverified if o.accept_unverified is None
        else o.accept_unverified,
        cores=cores,
        min_size=cfg.min_size if o.min_size is None else o.min_size,
        max_shrink_percent=cfg.max_shrink_percent if o.max_shrink_percent is None
        else o.max_shrink_percent,
        shrink_mode=o.shrink_mode or cfg.shrink_mode,
    )  # fmt: skip
    specs = {d.core: d.spec for d in cfg.databases}
    for core in cores:
        spec = specs.get(core, core)
        mine: list[CheckResult] = [r for r in results if r.core == core]
        res = DatabaseResult(spec, core, checks=check_dicts(mine))
        level = worst(mine)
        problems = "; ".join(r.message for r in mine if r.level != "ok")
        if level == FAIL:
            res.fail(CheckFailed(f"{spec}: {problems}", hint="look at moodump list"))
            ctx.notify(Event("warning", f"moodump check failed for {spec}: {problems}",
                             status="ERROR", database=spec))  # fmt: skip
        elif level == WARN:
            res.warn(problems)
            res.exit_code = 0  # a warning is reported, it does not fail the check
        ctx.report.databases.append(res)
    # Checks that belong to no database (e.g. the volume's free space).
    ctx.report.checks = check_dicts([r for r in results if r.core not in cores])
    return ctx.finish()


__all__ = [
    "CheckOptions",
    "Listing",
    "check_once",
    "delete_backup_once",
    "listing",
    "prune_once",
]
