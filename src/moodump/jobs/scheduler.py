"""The long-running loop (:func:`run_scheduled`): cron mode or legacy mode, and the
dispatch of one scheduled :class:`Job` (:func:`run_job`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from moodump.config import Config
from moodump.errors import (
    ConfigError,
    Interrupted,
    LockBusy,
    MoodumpError,
    StorageError,
)
from moodump.jobs.backup import run_once
from moodump.jobs.binlog import binlog_pull_once
from moodump.jobs.exporter import start_metrics_server
from moodump.jobs.maintenance import CheckOptions, check_once, prune_once
from moodump.jobs.report import RunReport, iso_time
from moodump.jobs.verify_cycle import verify_all
from moodump.jobs.wiring import (
    Clock,
    Progress,
    Sleep,
    notifier_from_config,
    register_config_secrets,
)
from moodump.notify import Event, Notifier
from moodump.progress import Progress as Tracker
from moodump.retention import utc
from moodump.schedule import (
    ACTION_BACKUP,
    ACTION_BINLOG,
    ACTION_CHECK,
    ACTION_PRUNE,
    ACTION_VERIFY,
    CronLine,
    format_duration,
    next_due,
)

log = logging.getLogger(__name__)

#: Cron actions :func:`run_scheduled` executes; other lines are logged and skipped.
RUNNABLE_ACTIONS = (ACTION_BACKUP, ACTION_VERIFY, ACTION_PRUNE, ACTION_CHECK, ACTION_BINLOG)


# The longest single sleep of the scheduler: it re-reads the clock at least this often,
# so a suspended machine or a clock step does not make it oversleep a due run.
_MAX_SLEEP_S = 60.0


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Job:
    """One thing the scheduler runs, typed: no argument words are left to interpret.

    ``kind`` is backup, verify, prune or check. ``databases`` limits a backup or a
    verification to these databases (empty: every configured one). ``check`` holds a
    check's options; ``dry_run``/``all_databases`` a prune's. ``line`` is the cron line
    it came from.
    """

    kind: str
    databases: tuple[str, ...] = ()
    check: CheckOptions | None = None
    dry_run: bool = False
    all_databases: bool = False
    #: a binlog pull's archive directory, and the server it names (--host/--port)
    binlog_output: str = ""
    binlog_host: str | None = None
    binlog_port: int | None = None
    line: CronLine | None = field(default=None, compare=False)

    def describe(self) -> str:
        if self.kind == ACTION_VERIFY:
            return "verification of " + (", ".join(self.databases) or "every database")
        if self.kind == ACTION_BACKUP:
            return "backup of " + (", ".join(self.databases) or "every database")
        if self.kind == ACTION_BINLOG:
            return f"binlog pull into {self.binlog_output}"
        return self.kind


#: Turns a ``moodump ...`` cron line into a :class:`Job` with the CLI's own grammar
#: (None: a valid command the scheduler does not run, e.g. ``moodump list``); raises
#: ConfigError naming the line when the CLI would reject it. The CLI supplies it.
MoodumpLineParser = Callable[[CronLine], "Job | None"]


def scheduled_jobs(
    cfg: Config, parse_moodump: MoodumpLineParser | None = None
) -> list[tuple[CronLine, Job]]:
    """The cron lines moodump runs itself, each with its typed :class:`Job`.

    ``./backup.sh`` lines map by the old container's getopt rules (pure, in
    :mod:`moodump.schedule`). ``moodump ...`` lines are parsed by ``parse_moodump``, the
    CLI's own grammar, so a line the CLI would reject is a ConfigError with file, line
    and fix, never accepted here and dropped at run time. Lines that are valid but not
    runnable (``-l``, ``-c``, restores, other programs) are skipped with a log line. A
    database a line names must be configured (ConfigError otherwise).
    """
    out = []
    for c in cfg.schedule:
        job: Job | None
        if c.program == "moodump":
            if parse_moodump is None:
                raise ConfigError(
                    f"{cfg.conf_path} line {c.line}: '{c.command}' needs the CLI's parser",
                    hint="run the schedule with moodump run, or pass parse_moodump",
                )
            job = parse_moodump(c)
        else:
            job = _backup_sh_job(cfg, c)
        if job is None:
            log.warning(
                "%s line %d: '%s' is not run by moodump run (only backups, verification, "
                "prune and check are)", cfg.conf_path, c.line, c.command,
            )  # fmt: skip
            continue
        for name in job.databases:
            cfg.database(name)  # raises for an unknown database
        out.append((c, replace(job, line=c)))
    return out


def _backup_sh_job(cfg: Config, c: CronLine) -> Job | None:
    a = c.action
    if a.kind not in RUNNABLE_ACTIONS:
        return None
    if a.kind == ACTION_PRUNE and a.filter:
        log.warning("%s line %d: prune -f is interactive; not scheduled", cfg.conf_path, c.line)
        return None
    if a.filter:
        log.warning("%s line %d: -f %s is ignored; the newest backup is verified",
                    cfg.conf_path, c.line, a.filter)  # fmt: skip
    if a.kind == ACTION_VERIFY:
        return Job(a.kind, () if a.target in (None, "all") else (str(a.target),))
    return Job(a.kind)


def run_job(
    cfg: Config,
    job: Job,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    sleep: Sleep = time.sleep,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    tracker: Tracker | None = None,
) -> RunReport:
    """Run one scheduled job now (the dispatch of :func:`run_scheduled`)."""
    only = list(job.databases) or None
    if job.kind == ACTION_BACKUP:
        return run_once(cfg, clock=clock, only=only, notifier=notifier, sleep=sleep, stop=stop,
                        progress=progress, tracker=tracker)  # fmt: skip
    if job.kind == ACTION_VERIFY:
        return verify_all(cfg, clock=clock, only=only, notifier=notifier, sleep=sleep, stop=stop,
                          tracker=tracker)  # fmt: skip
    if job.kind == ACTION_PRUNE:
        return prune_once(cfg, dry_run=job.dry_run, all_databases=job.all_databases,
                          clock=clock, notifier=notifier)  # fmt: skip
    if job.kind == ACTION_CHECK:
        return check_once(cfg, job.check, clock=clock, notifier=notifier)
    if job.kind == ACTION_BINLOG:
        return binlog_pull_once(cfg, job.binlog_output, host=job.binlog_host,
                                port=job.binlog_port, clock=clock, notifier=notifier)  # fmt: skip
    raise ConfigError(f"moodump run cannot run {job.kind!r}", hint="see docs/scheduling.md")


def run_scheduled(
    cfg: Config,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    stop: threading.Event | None = None,
    notifier: Notifier | None = None,
    on_report: Callable[[RunReport], None] | None = None,
    progress: Progress | None = None,
    parse_moodump: MoodumpLineParser | None = None,
    tracker: Tracker | None = None,
) -> int:
    """Run until ``stop`` is set: cron mode when backup.conf has cron lines, else legacy
    mode (a backup cycle now, then every BACKUP_PERIOD after the previous one ended).

    Cron mode computes the next due instant in TZ (DST rules in :mod:`moodump.schedule`),
    sleeps until then (``sleep`` in slices of at most a minute, re-reading ``clock``),
    and runs every job due at that instant, one after the other. A run that ends after
    later due times skips them (like cron, it does not catch up). A busy lock skips the
    run; any failure is logged, reported (``on_report``) and notified, and the loop goes
    on. Returns 0 when stopped between runs, 130 when a run was interrupted.

    :param clock: aware "now" (default: the real time in TZ).
    :param sleep: waits for the given seconds (default: ``stop.wait``, so setting
        ``stop`` wakes it at once).
    :param parse_moodump: the CLI's parser for ``moodump ...`` cron lines
        (see :func:`scheduled_jobs`).
    :param tracker: the :class:`~moodump.progress.Progress` each run counts into (a
        terminal display may read it; see :func:`run_once`).

    With MOODUMP_METRICS_PORT set, Prometheus metrics are served on ``/metrics`` for as
    long as the loop runs (:func:`moodump.jobs.exporter.start_metrics_server`).
    """
    server = start_metrics_server(cfg) if cfg.metrics_port is not None else None
    try:
        return _run_scheduled(cfg, clock=clock, sleep=sleep, stop=stop, notifier=notifier,
                              on_report=on_report, progress=progress,
                              parse_moodump=parse_moodump, tracker=tracker)  # fmt: skip
    finally:
        if server is not None:
            server.close()


def _run_scheduled(
    cfg: Config,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    stop: threading.Event | None = None,
    notifier: Notifier | None = None,
    on_report: Callable[[RunReport], None] | None = None,
    progress: Progress | None = None,
    parse_moodump: MoodumpLineParser | None = None,
    tracker: Tracker | None = None,
) -> int:
    stop = stop or threading.Event()
    real_clock: Clock = clock or (lambda: datetime.now(cfg.tz))

    def wait_for_stop(seconds: float) -> None:
        stop.wait(seconds)

    wait: Sleep = sleep or wait_for_stop
    register_config_secrets(cfg)
    cfg.require_databases()
    jobs = scheduled_jobs(cfg, parse_moodump) if cfg.schedule else []
    if cfg.schedule and not jobs:
        raise ConfigError(
            f"{cfg.conf_path} has cron lines, but none that moodump run can execute",
            hint="add a line like '0 1 * * * default ./backup.sh -s'",
        )
    lines = [c for c, _ in jobs]
    by_line = dict(jobs)
    notify = notifier or notifier_from_config(cfg, sleep=wait)

    def now() -> datetime:
        return real_clock().astimezone(cfg.tz)

    start = now()
    if jobs:
        first, _ = next_due(lines, start, cfg.tz)
        what = f"cron mode, {len(jobs)} schedule line(s) in {cfg.conf_path}, TZ {cfg.tz}"
    else:
        first = start
        what = f"legacy mode, every {format_duration(cfg.backup_period)} (BACKUP_PERIOD)"
    log.info("moodump run started: %s; next run %s", what, iso_time(first))
    for w in cfg.run_warnings:
        log.warning("setting: %s", w)
    check = f" Check these settings: {'; '.join(cfg.run_warnings)}." if cfg.run_warnings else ""
    notify.send(
        Event("start", f"moodump run started ({what}); next run at {iso_time(first)}.{check}")
    )

    after = start
    next_legacy = start
    while not stop.is_set():
        if jobs:
            due, due_lines = next_due(lines, after, cfg.tz)
            todo = list(dict.fromkeys(by_line[c] for c in due_lines))
        else:
            due, todo = next_legacy, [Job(ACTION_BACKUP)]
        log.info(
            "next: %s at %s", ", ".join(j.describe() for j in todo), iso_time(due),
            extra={"next_run": iso_time(due)},
        )  # fmt: skip
        if not _wait_until(due, now, wait, stop):
            break
        for job in todo:
            if stop.is_set():
                break
            try:
                report = _run_guarded(cfg, job, now, notify, wait, stop, progress, tracker)
                if report is not None and on_report is not None:
                    on_report(report)
            except KeyboardInterrupt:
                stop.set()
                report = None
            if stop.is_set():
                interrupted = report is None or report.interrupted
                log.warning("stopped %s", "during a run" if interrupted else "after a run")
                return Interrupted.exit_code if interrupted else 0
        ended = now()
        after = max(due, ended, key=utc)
        next_legacy = ended + cfg.backup_period
    log.info("moodump run stopped")
    return 0


def _wait_until(due: datetime, now: Clock, sleep: Sleep, stop: threading.Event) -> bool:
    """Sleep until ``due``; False when ``stop`` was set (or Ctrl-C / SIGTERM came) first."""
    try:
        while not stop.is_set():
            remaining = (utc(due) - utc(now())).total_seconds()
            if remaining <= 0:
                return True
            sleep(min(remaining, _MAX_SLEEP_S))
    except KeyboardInterrupt:
        stop.set()
    return False


def _run_guarded(
    cfg: Config,
    job: Job,
    now: Clock,
    notifier: Notifier,
    sleep: Sleep,
    stop: threading.Event,
    progress: Progress | None,
    tracker: Tracker | None = None,
) -> RunReport | None:
    """One job; errors that escape it are logged and notified, never end the loop."""
    try:
        report = run_job(cfg, job, clock=now, notifier=notifier, sleep=sleep, stop=stop,
                         progress=progress, tracker=tracker)  # fmt: skip
    except LockBusy as exc:
        log.warning("skipped the %s: %s", job.describe(), exc)
        return None
    except MoodumpError as exc:
        log.error("the %s failed: %s", job.describe(), exc, extra={"exit_code": exc.exit_code})
        if not (isinstance(exc, StorageError) and job.kind == ACTION_BACKUP):
            # (run_once alerts about a backup folder it cannot create itself)
            notifier.send(Event("failure", f"moodump: the {job.describe()} failed: {exc}"))
        return None
    except Exception as exc:
        log.exception("the %s failed unexpectedly", job.describe())
        notifier.send(Event("failure", f"moodump: the {job.describe()} failed: {exc!r}"))
        return None
    log.info(
        "%s finished with exit code %d", job.describe(), report.exit_code,
        extra={"exit_code": report.exit_code},
    )  # fmt: skip
    return report
