"""Retention and health checks as one library function each: :func:`prune_once`,
:func:`check_once`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from moodump.catalog import prune, scan_backups
from moodump.checks import (
    FAIL,
    WARN,
    check_backups,
    worst,
)
from moodump.config import Config
from moodump.errors import (
    CheckFailed,
    ConfigError,
    StorageError,
)
from moodump.jobs.backup import check_dicts
from moodump.jobs.report import DatabaseResult, RunReport
from moodump.jobs.wiring import Clock, Context, run_lock
from moodump.notify import Event, Notifier
from moodump.schedule import (
    ACTION_CHECK,
    ACTION_PRUNE,
    parse_duration,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- prune, check


def prune_once(
    cfg: Config,
    *,
    now: datetime | None = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
) -> RunReport:
    """Apply retention to the configured databases under the run lock (``backup.sh -p``
    as a cron line). Like ``moodump prune``: no ``after_failure`` protection beyond the
    retention rules (the newest good and newest verified backups always stay)."""
    ctx = Context(cfg, ACTION_PRUNE, now=now, clock=clock, notifier=notifier,
                   sleep=time.sleep, stop=None)  # fmt: skip
    cfg.require_databases()
    with run_lock(cfg, "prune"):
        pr = prune(cfg.root, cfg.retention, ctx.now(), cfg.tz, only=cfg.cores)
    ctx.report.pruned = [b.name for b in pr.removed]
    for e in pr.errors:
        ctx.report.errors.append((StorageError.exit_code, e))
    return ctx.finish()


def check_once(
    cfg: Config,
    args: Sequence[str] = (),
    *,
    now: datetime | None = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
) -> RunReport:
    """``moodump check`` as a cron line: freshness and size checks; a failure is exit 11
    and an ERROR notification. ``args`` are the line's options (``--max-age 26h``,
    ``--accept-unverified``); everything else comes from the configuration."""
    max_age, accept = cfg.max_age, cfg.check_unverified
    words = list(args)
    while words:
        word = words.pop(0)
        name, _, value = word.partition("=")
        if name == "--max-age":
            try:
                max_age = parse_duration(value or (words.pop(0) if words else ""))
            except ValueError as exc:
                raise ConfigError(f"check --max-age: {exc}", hint="e.g. --max-age 26h") from None
        elif name == "--accept-unverified":
            accept = True
        else:
            log.warning("moodump check option %s is not applied by the scheduler", word)
    ctx = Context(cfg, ACTION_CHECK, now=now, clock=clock, notifier=notifier,
                   sleep=time.sleep, stop=None)  # fmt: skip
    cfg.require_databases()
    results = check_backups(
        scan_backups(cfg.root, cfg.tz),
        now=ctx.now(),
        max_age=max_age,
        accept_unverified=accept,
        cores=cfg.cores,
        min_size=cfg.min_size,
        max_shrink_percent=cfg.max_shrink_percent,
        shrink_mode=cfg.shrink_mode,
    )
    for spec in cfg.databases:
        mine = [r for r in results if r.core == spec.core]
        res = DatabaseResult(spec.spec, spec.core, checks=check_dicts(mine))
        level = worst(mine)
        problems = "; ".join(r.message for r in mine if r.level != "ok")
        if level == FAIL:
            res.fail(CheckFailed(f"{spec.spec}: {problems}", hint="look at moodump list"))
            ctx.notify(Event("warning", f"moodump check failed for {spec.spec}: {problems}",
                             status="ERROR", database=spec.spec))  # fmt: skip
        elif level == WARN:
            res.warn(problems)
        ctx.report.databases.append(res)
    return ctx.finish()
