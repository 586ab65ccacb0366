"""``moodump status``: each configured database at a glance, healthy or not.

:func:`build_status` is pure (backups on disk, run state, next runs and the time in;
:class:`Status` out); :func:`status` gathers those from the configuration, the backup
folder and the state file.

A database is healthy when its newest verified backup (any DONE one with
``accept_unverified``) is younger than ``max_age``, its last backup attempt did not
fail, and its last off-site copy (if any) did not fail. Probes use the exit code:
0 healthy, 11 (:class:`~moodump.errors.CheckFailed`) otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from moodump.catalog import BackupInfo, DatabaseBackups, group_by_database, scan_backups
from moodump.config import Config
from moodump.errors import MoodumpError
from moodump.jobs.report import iso_time
from moodump.jobs.scheduler import MoodumpLineParser, scheduled_jobs
from moodump.jobs.state import DatabaseState, RunState, load_state
from moodump.manifest import STATUS_FAILED
from moodump.naming import age_text
from moodump.pitr import archive_status
from moodump.retention import utc
from moodump.schedule import ACTION_BACKUP, format_duration, next_due


@dataclass(frozen=True)
class DatabaseStatus:
    """One database: its newest backups, last run, next run, off-site state, problems."""

    core: str
    spec: str
    newest: BackupInfo | None
    newest_verified: BackupInfo | None
    state: DatabaseState | None
    next_run: datetime | None
    problems: tuple[str, ...]
    now: datetime

    @property
    def healthy(self) -> bool:
        return not self.problems

    def age_s(self, b: BackupInfo | None) -> float | None:
        return None if b is None else round((utc(self.now) - utc(b.when)).total_seconds(), 1)

    def to_dict(self) -> dict[str, Any]:
        def backup(b: BackupInfo | None) -> dict[str, Any] | None:
            if b is None:
                return None
            return {"name": b.name, "path": str(b.path), "when": b.when.isoformat(),
                    "age_s": self.age_s(b), "status": b.status, "verify": b.verify_status,
                    "size_bytes": b.size_bytes}  # fmt: skip

        s = self.state
        last_run = None
        offsite = None
        if s is not None and s.last_run_at:
            last_run = {
                "at": s.last_run_at, "action": s.last_action, "status": s.last_status,
                "exit_code": s.last_exit_code, "error": s.last_error,
                "last_success_at": s.last_success_at, "last_failure_at": s.last_failure_at,
            }  # fmt: skip
        if s is not None and s.offsite_at:
            offsite = {"at": s.offsite_at, "ok": s.offsite_ok, "url": s.offsite_url,
                       "error": s.offsite_error}  # fmt: skip
        return {
            "database": self.core,
            "spec": self.spec,
            "healthy": self.healthy,
            "problems": list(self.problems),
            "newest": backup(self.newest),
            "newest_verified": backup(self.newest_verified),
            "last_run": last_run,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "offsite": offsite,
        }


@dataclass(frozen=True)
class Status:
    """Every configured database's :class:`DatabaseStatus`; ``schedule`` says how the
    next runs were found (cron lines, BACKUP_PERIOD, or none)."""

    now: datetime
    max_age: timedelta
    accept_unverified: bool
    schedule: str
    databases: tuple[DatabaseStatus, ...] = field(default=())
    #: the binary log archive (MOODUMP_BINLOG_DIR): where, until when it covers (epoch
    #: seconds), and its problems (gaps: "PITR unavailable from X to Y")
    binlog_dir: str = ""
    binlog_covered_until: int = 0
    binlog_problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return all(d.healthy for d in self.databases) and not self.binlog_problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "now": self.now.isoformat(),
            "max_age_s": self.max_age.total_seconds(),
            "accept_unverified": self.accept_unverified,
            "schedule": self.schedule,
            "databases": [d.to_dict() for d in self.databases],
            "binlog": {
                "dir": self.binlog_dir,
                "covered_until": self.binlog_covered_until,
                "problems": list(self.binlog_problems),
            }
            if self.binlog_dir
            else None,
        }


# --------------------------------------------------------------------------- pure


def database_problems(
    group: DatabaseBackups,
    state: DatabaseState | None,
    now: datetime,
    max_age: timedelta,
    *,
    accept_unverified: bool = False,
) -> list[str]:
    """Why a database is not healthy (empty: it is)."""
    problems = []
    what = "good" if accept_unverified else "verified"
    good = group.newest_done if accept_unverified else group.newest_verified
    if good is None:
        problems.append(f"no {what} backup")
    elif utc(now) - utc(good.when) > max_age:
        problems.append(
            f"the newest {what} backup is {age_text(utc(now) - utc(good.when))} old "
            f"(more than {format_duration(max_age)})"
        )
    if state is not None and state.last_backup_ok is False:
        problems.append(
            f"the last backup failed (exit {state.last_backup_exit_code}): "
            f"{state.last_failure_error or 'see the logs'}"
        )
    elif state is None or state.last_backup_ok is None:
        newest = group.newest  # no state (e.g. a new state file): the disk tells
        if newest is not None and newest.status == STATUS_FAILED:
            problems.append(f"the newest backup {newest.name} failed: {newest.error or '?'}")
    if state is not None and state.offsite_ok is False:
        problems.append(f"the last off-site copy failed: {state.offsite_error or 'see the logs'}")
    return problems


def build_status(
    configured: Sequence[tuple[str, str]],
    backups: Sequence[BackupInfo],
    state: RunState,
    now: datetime,
    *,
    max_age: timedelta,
    accept_unverified: bool = False,
    next_runs: Mapping[str, datetime | None] | None = None,
    schedule: str = "",
) -> Status:
    """The status of the ``configured`` (core, spec) databases."""
    groups = {g.core: g for g in group_by_database(backups, [c for c, _ in configured])}
    out = []
    for core, spec in configured:
        g = groups[core]
        st = state.databases.get(core)
        problems = database_problems(g, st, now, max_age, accept_unverified=accept_unverified)
        out.append(
            DatabaseStatus(
                core=core, spec=spec, newest=g.newest, newest_verified=g.newest_verified,
                state=st, next_run=(next_runs or {}).get(core), problems=tuple(problems),
                now=now,
            )
        )  # fmt: skip
    return Status(now, max_age, accept_unverified, schedule, tuple(out))


def render_status(status: Status) -> str:
    """The text of ``moodump status``."""
    lines = []
    now = status.now
    for d in status.databases:
        lines.append(f"{d.spec}  {'HEALTHY' if d.healthy else 'UNHEALTHY'}")

        def backup_line(label: str, b: BackupInfo | None) -> str:
            if b is None:
                return f"  {label:<16} none"
            return f"  {label:<16} {b.name}  {age_text(utc(now) - utc(b.when))} ago  {b.status}"

        lines.append(backup_line("newest:", d.newest))
        lines.append(backup_line("newest verified:", d.newest_verified))
        s = d.state
        if s is not None and s.last_run_at:
            run = f"{s.last_action} {s.last_status} (exit {s.last_exit_code}) at {s.last_run_at}"
            lines.append(f"  {'last run:':<16} {run}")
        else:
            lines.append(f"  {'last run:':<16} unknown (no state yet)")
        nxt = iso_time(d.next_run) if d.next_run else "not scheduled here"
        lines.append(f"  {'next backup:':<16} {nxt}")
        if s is not None and s.offsite_at:
            ok = "ok" if s.offsite_ok else f"FAILED: {s.offsite_error}"
            lines.append(f"  {'off-site copy:':<16} {ok} at {s.offsite_at}")
        lines += [f"  problem: {p}" for p in d.problems]
    if status.binlog_dir:
        covered = (
            iso_time(datetime.fromtimestamp(status.binlog_covered_until, now.tzinfo))
            if status.binlog_covered_until
            else "nothing archived yet"
        )
        lines.append(f"binlog archive {status.binlog_dir}  covers events before {covered}")
        lines += [f"  problem: {p}" for p in status.binlog_problems]
    verdict = "healthy" if status.healthy else "UNHEALTHY"
    lines.append(f"Status: {verdict} ({len(status.databases)} database(s)).")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- gathering


def next_backup_runs(
    cfg: Config, now: datetime, state: RunState, parse_moodump: MoodumpLineParser | None
) -> tuple[dict[str, datetime | None], str]:
    """The next scheduled backup of each configured database, and how it was found.

    Cron mode: the next instant a backup line covering the database is due (in TZ).
    Legacy mode: BACKUP_PERIOD after the database's last run, as the loop would.
    """
    if not cfg.schedule:
        out: dict[str, datetime | None] = {}
        for d in cfg.databases:
            st = state.databases.get(d.core)
            last = datetime.fromisoformat(st.last_run_at) if st and st.last_run_at else None
            out[d.core] = (last + cfg.backup_period).astimezone(cfg.tz) if last else None
        return out, f"legacy mode, every {format_duration(cfg.backup_period)} (BACKUP_PERIOD)"
    jobs = scheduled_jobs(cfg, parse_moodump)
    out = {}
    for d in cfg.databases:
        lines = [
            line for line, job in jobs
            if job.kind == ACTION_BACKUP
            and (not job.databases or d.core in {cfg.database(n).core for n in job.databases})
        ]  # fmt: skip
        out[d.core] = next_due(lines, now, cfg.tz)[0] if lines else None
    return out, f"cron mode ({cfg.conf_path}, TZ {cfg.tz})"


def status(
    cfg: Config,
    *,
    now: datetime,
    max_age: timedelta | None = None,
    accept_unverified: bool | None = None,
    parse_moodump: MoodumpLineParser | None = None,
) -> Status:
    """The status of every configured database (``moodump status``).

    :param max_age: default MOODUMP_MAX_AGE; ``accept_unverified`` default
        MOODUMP_CHECK_UNVERIFIED.
    :param parse_moodump: the CLI's parser for ``moodump ...`` cron lines.
    :raises ConfigError: no database is configured, or a cron line is invalid.
    """
    cfg.require_databases()
    state = load_state(cfg.state_path)
    next_runs, how = next_backup_runs(cfg, now, state, parse_moodump)
    st = build_status(
        [(d.core, d.spec) for d in cfg.databases],
        scan_backups(cfg.root, cfg.tz),
        state,
        now,
        max_age=cfg.max_age if max_age is None else max_age,
        accept_unverified=cfg.check_unverified if accept_unverified is None else accept_unverified,
        next_runs=next_runs,
        schedule=how,
    )
    if not cfg.binlog_dir:
        return st
    try:
        archive = archive_status(cfg.binlog_dir)
    except MoodumpError as exc:
        return replace(st, binlog_dir=cfg.binlog_dir, binlog_problems=(str(exc.message),))
    return replace(
        st,
        binlog_dir=cfg.binlog_dir,
        binlog_covered_until=archive.covered_until,
        binlog_problems=tuple(archive.gaps),
    )
