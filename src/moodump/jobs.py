"""The cron-run sequence: what ``moodump run`` does, as library functions.

One **backup cycle** (:func:`run_once`, ``moodump run --once``, ``backup.sh -1`` / ``-s``):

1. take the run lock (:class:`~moodump.lock.RunLock`); a busy lock raises
   :class:`~moodump.errors.LockBusy` (exit 10) before anything is written;
2. for each configured database, in backup.conf order and isolated from the others (a
   failure is recorded and the next database runs):

   a. free-space pre-check (MOODUMP_MIN_FREE_SPACE, MOODUMP_FREE_SPACE_FACTOR x the
      previous good backup);
   b. dump into ``target_dir_for(...)`` (the old layout and names); a failed dump leaves a
      data-less directory whose manifest says FAILED, so listings, ``moodump check`` and
      retention see the failure. When that name is taken (two runs in one second, the
      repeated hour of a DST fall-back) the time in the name moves on by a second until
      it is free, so names keep the old pattern;
   c. size checks against the previous good backup of the same database (minimum size;
      shrink beyond MOODUMP_MAX_SHRINK_PERCENT warns or fails per MOODUMP_SHRINK_MODE);
   d. verification (MOODUMP_VERIFY_AFTER_BACKUP: ``none``, ``offline`` or ``local``);
   e. FTPS copy and re-check when FTP_URL is set;
   f. one notification: ``success`` (INFO), ``warning`` (WARN: backed up, but a check
      warned) or ``failure`` (ERROR);

3. prune with ``after_failure=True``, and only the databases whose backup succeeded and
   passed its checks: a database whose backup just failed loses nothing (even when its
   FAILED record could not be written, e.g. on a full disk). Remote copies follow local
   retention when MOODUMP_FTP_PRUNE is on.

The :class:`RunReport` holds one :class:`DatabaseResult` per database; its exit code is the
worst one (0 ok, 1 warnings, else the failure's code from :mod:`moodump.errors`).

A **verification cycle** (:func:`verify_all`, the ``backup.sh -s -v all`` cron line)
verifies the newest DONE backup of each database and fails with exit 11 when that backup
is stale: a newer attempt failed or it is older than MOODUMP_MAX_AGE. The old container
re-verified an old file after a failed backup and reported success (its issue #134).

:func:`run_scheduled` is the long-running loop: cron mode (the backup.conf cron lines,
in-process, in TZ, DST-safe through :func:`moodump.schedule.next_due`) or legacy mode
(every BACKUP_PERIOD). Time is injected everywhere (``clock``, ``sleep``) and ``stop``
(a :class:`threading.Event`) ends the loop between runs and aborts a running dump.

Notifications never change a result: the notifier never raises, and failures to deliver
are counted in the report. Payloads are built in memory, so failure alerts go out when
the backup disk is full.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from moodump import __version__
from moodump.catalog import BackupInfo, PruneReport, prune, read_backup, scan_backups
from moodump.checks import (
    FAIL,
    WARN,
    CheckResult,
    check_backups,
    check_size,
    free_space_precheck,
    human_size,
    previous_good,
    worst,
)
from moodump.config import Config, DatabaseSpec
from moodump.db.connection import ConnSettings
from moodump.db.credentials import read_option_file
from moodump.db.localserver import server_binaries
from moodump.dump import DumpOptions, ProgressEvent, dump
from moodump.errors import (
    CheckFailed,
    ConfigError,
    IntegrityError,
    Interrupted,
    LockBusy,
    MoodumpError,
    NotFoundError,
    ServerError,
    StorageError,
)
from moodump.lock import RunLock
from moodump.logs import redact, register_secret
from moodump.manifest import MANIFEST_NAME, Manifest
from moodump.manifest import STATUS_FAILED as MANIFEST_FAILED
from moodump.naming import target_dir_for, tier_for
from moodump.notify import DeliveryResult, Event, Notifier
from moodump.offsite import FtpsSettings, FtpsTarget, remote_names_to_prune
from moodump.retention import utc
from moodump.schedule import (
    ACTION_BACKUP,
    ACTION_CHECK,
    ACTION_PRUNE,
    ACTION_VERIFY,
    CronLine,
    format_duration,
    next_due,
    parse_duration,
)
from moodump.verify import VerifyReport, verify

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_WARNING = "warning"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"

VERIFY_NONE = "none"
VERIFY_OFFLINE = "offline"
VERIFY_LOCAL = "local"

#: Cron actions :func:`run_scheduled` executes; other lines are logged and skipped.
RUNNABLE_ACTIONS = (ACTION_BACKUP, ACTION_VERIFY, ACTION_PRUNE, ACTION_CHECK)

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
Progress = Callable[[str, ProgressEvent], None]

# How far a taken backup name is moved on (one second at a time) before giving up.
_NAME_ATTEMPTS = 60
# The longest single sleep of the scheduler: it re-reads the clock at least this often,
# so a suspended machine or a clock step does not make it oversleep a due run.
_MAX_SLEEP_S = 60.0


# --------------------------------------------------------------------------- results


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


@dataclass
class DatabaseResult:
    """What happened to one database in one cycle.

    ``status`` is ok, warning, failed or skipped; ``exit_code`` follows
    :mod:`moodump.errors` (0 ok, 1 warning). ``backup_ok`` is True when a new backup is
    DONE and passed its checks and verification: only then is the database pruned.
    ``path`` is the backup directory (also for a FAILED record); ``size_bytes`` is its
    size on disk. ``checks``, ``verify`` and ``offsite`` are JSON-able dicts.
    """

    spec: str
    core: str
    status: str = STATUS_OK
    exit_code: int = 0
    path: str | None = None
    tier: str | None = None
    started_at: str | None = None
    size_bytes: int | None = None
    rows: int | None = None
    duration_s: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] | None = None
    offsite: dict[str, Any] | None = None
    previous: str | None = None
    backup_ok: bool = False

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.status == STATUS_OK:
            self.status, self.exit_code = STATUS_WARNING, 1

    def fail(self, exc: MoodumpError) -> None:
        self.status = STATUS_FAILED
        self.exit_code = exc.exit_code
        self.error = redact(str(exc))
        self.backup_ok = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "core": self.core,
            "status": self.status,
            "exit_code": self.exit_code,
            "path": self.path,
            "tier": self.tier,
            "started_at": self.started_at,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "duration_s": round(self.duration_s, 3),
            "error": self.error,
            "warnings": list(self.warnings),
            "checks": list(self.checks),
            "verify": self.verify,
            "offsite": self.offsite,
            "previous": self.previous,
            "backup_ok": self.backup_ok,
        }


@dataclass
class RunReport:
    """The outcome of one cycle (``action`` backup, verify, prune or check).

    ``warnings`` and ``errors`` are run-level (prune problems, a notifier that could not
    be set up); per-database facts are in ``databases``. ``pruned`` / ``pruned_remote``
    name the backups removed locally / from the FTPS server. ``notifications_failed``
    counts deliveries that did not arrive (they never change :attr:`exit_code`).
    """

    action: str
    started_at: str
    finished_at: str = ""
    duration_s: float = 0.0
    databases: list[DatabaseResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    pruned_remote: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    notifications_sent: int = 0
    notifications_failed: int = 0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """The worst code: a failure's own code beats 1 (warnings) beats 0."""
        codes = [d.exit_code for d in self.databases] + [code for code, _ in self.errors]
        if self.warnings:
            codes.append(1)
        if self.interrupted:
            codes.append(Interrupted.exit_code)
        return max(codes, default=0)

    @property
    def failed(self) -> list[DatabaseResult]:
        return [d for d in self.databases if d.status == STATUS_FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "exit_code": self.exit_code,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": round(self.duration_s, 3),
            "interrupted": self.interrupted,
            "databases": [d.to_dict() for d in self.databases],
            "pruned": list(self.pruned),
            "pruned_remote": list(self.pruned_remote),
            "warnings": list(self.warnings),
            "errors": [{"exit_code": c, "message": m} for c, m in self.errors],
            "notifications": {
                "sent": self.notifications_sent,
                "failed": self.notifications_failed,
            },
            "tool_version": __version__,
        }

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


# --------------------------------------------------------------------------- wiring


def notifier_from_config(cfg: Config, *, sleep: Sleep = time.sleep) -> Notifier:
    """The :class:`~moodump.notify.Notifier` of WEBHOOK_URL / PGDUTY_* / ENVIRONMENT_*."""
    return Notifier(
        cfg.webhook_url.reveal() if cfg.webhook_url else "",
        cfg.notify_format,
        pagerduty_key=cfg.pgduty_svc_key.reveal() if cfg.pgduty_svc_key else "",
        pagerduty_url=cfg.pgduty_url,
        project_name=cfg.environment_name,
        project_friendly_name=cfg.environment_friendly_name,
        sleep=sleep,
    )


def ftps_target_from_config(cfg: Config, *, sleep: Sleep = time.sleep) -> FtpsTarget | None:
    """The FTPS target of FTP_URL / FTP_USER / FTP_PASSWORD, or None when FTP_URL is unset."""
    if not cfg.ftp_url:
        return None
    return FtpsTarget(
        FtpsSettings(
            url=cfg.ftp_url,
            user=cfg.ftp_user,
            password=cfg.ftp_password.reveal() if cfg.ftp_password else "",
            ca_file=cfg.ftp_ca_file or None,
            retries=cfg.ftp_retries,
        ),
        sleep=sleep,
    )


def conn_settings_for(cfg: Config, spec: DatabaseSpec) -> ConnSettings:
    """How to reach ``spec``'s server: its host and port, and the credentials resolved by
    the configuration (``<HOST>_USER``/``_PASSWORD``, else DATABASE_USER/_PASSWORD);
    MYSQL_DEFAULTS_FILE's ``[client]`` user and password fill in what those leave empty.
    """
    user = spec.user
    password = spec.password.reveal() if spec.password else ""
    if cfg.mysql_defaults_file and (not user or not password):
        opts = read_option_file(Path(cfg.mysql_defaults_file))
        user = user or opts.get("user", "")
        password = password or opts.get("password", "")
    register_secret(password)
    return ConnSettings(host=spec.host, port=spec.port_or_default, user=user, password=password)


def _register_secrets(cfg: Config) -> None:
    for value in cfg.secret_values():
        register_secret(value)


def _select(cfg: Config, only: Collection[str] | None) -> list[DatabaseSpec]:
    cfg.require_databases()
    if only is None:
        return list(cfg.databases)
    wanted = {cfg.database(name).core for name in only}
    return [d for d in cfg.databases if d.core in wanted]


def _ensure_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the {what} {path}: {exc.strerror}",
            hint="check that the backup volume is mounted and writable by this user",
        ) from exc


def _fixed_or_real_clock(cfg: Config, now: datetime | None) -> Clock:
    if now is not None:
        fixed = now
        return lambda: fixed
    return lambda: datetime.now(cfg.tz)


class _Context:
    """What one cycle shares: configuration, clock, notifier, stop flag, report."""

    def __init__(
        self,
        cfg: Config,
        action: str,
        *,
        now: datetime | None,
        clock: Clock | None,
        notifier: Notifier | None,
        sleep: Sleep,
        stop: threading.Event | None,
    ) -> None:
        self.cfg = cfg
        self._clock: Clock = clock or _fixed_or_real_clock(cfg, now)
        self.sleep = sleep
        self.stop = stop or threading.Event()
        self.t0 = time.monotonic()
        self.report = RunReport(action, _iso(self.now()))
        if notifier is None:
            try:
                notifier = notifier_from_config(cfg, sleep=sleep)
            except ConfigError as exc:
                # A notifier that cannot be built must not stop the backups; say so loudly.
                log.error("notifications are off: %s", exc)
                self.report.warnings.append(f"notifications are off: {exc.message}")
                notifier = Notifier()
        self.notifier = notifier

    def now(self) -> datetime:
        """The injected clock's time in TZ."""
        return self._clock().astimezone(self.cfg.tz)

    def notify(self, event: Event) -> None:
        results: list[DeliveryResult] = self.notifier.send(event)
        for r in results:
            if r.ok:
                self.report.notifications_sent += 1
            else:
                self.report.notifications_failed += 1

    def finish(self) -> RunReport:
        self.report.finished_at = _iso(self.now())
        self.report.duration_s = time.monotonic() - self.t0
        return self.report


def _lock(cfg: Config, purpose: str) -> RunLock:
    _ensure_dir(cfg.root, "backup folder (BACKUP_DIR)")
    _ensure_dir(cfg.lock_path.parent, "lock file folder")
    return RunLock(cfg.lock_path, purpose=purpose)


# --------------------------------------------------------------------------- backup cycle


def run_once(
    cfg: Config,
    *,
    now: datetime | None = None,
    clock: Clock | None = None,
    only: Collection[str] | None = None,
    verify: str | None = None,
    notifier: Notifier | None = None,
    sleep: Sleep = time.sleep,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """One backup cycle over every configured database (see the module docstring).

    :param now: a fixed time for the whole cycle (names, tiers, retention); ``clock``
        (returning an aware datetime) wins when both are given; default: the real time.
    :param only: restrict the cycle to these databases (spec, core name or db name).
    :param verify: override MOODUMP_VERIFY_AFTER_BACKUP (none, offline, local).
    :param notifier: where events go; default: built from the configuration.
    :param sleep: used between FTPS and notification retries (injectable for tests).
    :param stop: set it (e.g. from a SIGTERM handler) to abort: a running dump stops
        and publishes nothing but its FAILED record, later steps and databases are skipped,
        nothing is pruned, and the report's exit code is 130.
    :param progress: called with (spec, :class:`~moodump.dump.ProgressEvent`) during dumps.
    :raises LockBusy: another run holds the lock (nothing was done).
    :raises ConfigError: no database is configured, ``only`` names an unknown one, or
        ``verify`` is not a known method.
    :raises StorageError: the backup folder or the lock cannot be created.
    """
    method = verify or cfg.verify_after_backup
    if method not in (VERIFY_NONE, VERIFY_OFFLINE, VERIFY_LOCAL):
        raise ConfigError(
            f"unknown verification method {method!r}", hint="use none, offline or local"
        )
    _register_secrets(cfg)
    specs = _select(cfg, only)
    ctx = _Context(
        cfg, ACTION_BACKUP, now=now, clock=clock, notifier=notifier, sleep=sleep, stop=stop
    )
    try:
        lock = _lock(cfg, "run --once")
        with lock:
            _backup_cycle(ctx, specs, method, progress)
    except LockBusy:
        raise
    except StorageError as exc:
        # No backup was attempted (BACKUP_DIR or the lock cannot be created): alert anyway.
        ctx.notify(Event("failure", f"moodump run could not start: {exc}"))
        raise
    report = ctx.finish()
    log.info(
        "backup run finished: %d ok, %d with warnings, %d failed; exit code %d",
        sum(d.status == STATUS_OK for d in report.databases),
        sum(d.status == STATUS_WARNING for d in report.databases),
        len(report.failed),
        report.exit_code,
        extra={"exit_code": report.exit_code},
    )
    return report


def _backup_cycle(
    ctx: _Context, specs: Sequence[DatabaseSpec], method: str, progress: Progress | None
) -> None:
    cfg, report = ctx.cfg, ctx.report
    target = None
    try:
        target = ftps_target_from_config(cfg, sleep=ctx.sleep)
    except ConfigError as exc:
        report.errors.append((exc.exit_code, f"off-site copies are off: {exc}"))
        log.error("off-site copies are off: %s", exc)
    copied: set[str] = set()
    for spec in specs:
        if ctx.stop.is_set():
            report.interrupted = True
            report.databases.append(
                DatabaseResult(spec.spec, spec.core, STATUS_SKIPPED, Interrupted.exit_code,
                               error="not started: the run was stopped")
            )  # fmt: skip
            continue
        result = _backup_database(ctx, spec, method, target, progress)
        report.databases.append(result)
        if result.offsite is not None and result.offsite.get("ok"):
            copied.add(spec.core)
        ctx.notify(_database_event(result))
        if result.exit_code == Interrupted.exit_code:
            report.interrupted = True
    if report.interrupted:
        log.warning("the run was stopped: nothing is pruned")
        return
    ok_cores = [d.core for d in report.databases if d.backup_ok]
    if not ok_cores:
        return
    try:
        _prune(ctx, ok_cores, target, copied)
    except KeyboardInterrupt:
        ctx.stop.set()
        report.interrupted = True
        report.warnings.append("pruning was interrupted")
        log.warning("pruning was interrupted")


def _free_target(cfg: Config, when: datetime, spec: DatabaseSpec) -> tuple[Path, datetime]:
    """The first free backup directory for ``when`` or up to a minute after it."""
    for offset in range(_NAME_ATTEMPTS):
        at = when + timedelta(seconds=offset)
        path = target_dir_for(cfg.root, cfg.retention, at, spec.host, spec.database)
        if not path.exists():
            if offset:
                log.warning(
                    "a backup named like %s exists already; using %s",
                    target_dir_for(cfg.root, cfg.retention, when, spec.host, spec.database).name,
                    path.name,
                )
            return path, at
    raise StorageError(
        f"every backup name of {spec.core} from {when:%Y-%m-%d %H:%M:%S} on for "
        f"{_NAME_ATTEMPTS} s is taken",
        hint="runs are started far too often; space them out",
    )


def _record_failure(path: Path, spec: DatabaseSpec, when: datetime, error: str) -> bool:
    """Best effort: a data-less FAILED record for a backup that never started (the dump
    writes its own). Returns False when it could not be written (e.g. the disk is full)."""
    stamp = when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    manifest = Manifest(
        database=spec.database,
        status=MANIFEST_FAILED,
        tool_version=__version__,
        host=spec.host,
        port=spec.port_or_default,
        started_at=stamp,
        finished_at=stamp,
        error=error,
    )
    try:
        path.mkdir(parents=True)
        (path / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        return True
    except OSError:
        try:
            (path / MANIFEST_NAME).unlink(missing_ok=True)
            path.rmdir()
        except OSError:
            pass
        return False


def _check_dicts(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in results]


def _backup_database(
    ctx: _Context,
    spec: DatabaseSpec,
    method: str,
    target: FtpsTarget | None,
    progress: Progress | None,
) -> DatabaseResult:
    cfg = ctx.cfg
    res = DatabaseResult(spec.spec, spec.core)
    t0 = time.monotonic()
    when = ctx.now()
    res.started_at = _iso(when)
    res.tier = tier_for(when.date(), cfg.retention)
    path: Path | None = None
    log.info("backing up %s", spec.spec, extra={"database": spec.spec})
    try:
        backups = scan_backups(cfg.root, cfg.tz)
        prev = previous_good(backups, spec.core, when)
        res.previous = prev.name if prev else None
        prev_size = prev.size_bytes if prev else None

        path, when = _free_target(cfg, when, spec)
        res.path, res.started_at = str(path), _iso(when)
        res.tier = tier_for(when.date(), cfg.retention)
        space = free_space_precheck(cfg.root, prev_size, cfg.min_free_space, cfg.free_space_factor)
        res.checks.append(space.to_dict())
        if space.failed:
            if not _record_failure(path, spec, when, space.message):
                res.path = None
            raise StorageError(
                f"not enough free space for a backup of {spec.spec}: {space.message}",
                hint="free space on the backup volume, lower the retention counts, or "
                "adjust MOODUMP_MIN_FREE_SPACE / MOODUMP_FREE_SPACE_FACTOR",
            )
        _ensure_dir(path.parent, "backup date folder")

        def on_progress(event: ProgressEvent) -> None:
            if progress is not None:
                progress(spec.spec, event)

        options = DumpOptions(
            threads=cfg.threads, codec=cfg.codec, level=cfg.level, record_failure=True
        )
        result = dump(
            conn_settings_for(cfg, spec),
            spec.database,
            path,
            options,
            progress=on_progress,
            stop=ctx.stop,
        )
        for w in result.warnings:
            res.warn(w)
        info = read_backup(path, res.tier, cfg.tz)
        res.size_bytes = info.size_bytes if info else result.manifest.total_bytes
        res.rows = result.manifest.total_rows
        log.info(
            "dumped %s to %s: %s, %d rows in %.1f s",
            spec.spec,
            path,
            human_size(res.size_bytes),
            res.rows,
            result.duration_s,
            extra={"database": spec.spec, "path": str(path), "bytes": res.size_bytes},
        )

        size_checks = check_size(
            res.size_bytes,
            previous_size=prev_size,
            min_size=cfg.min_size,
            max_shrink_percent=cfg.max_shrink_percent,
            shrink_mode=cfg.shrink_mode,
            core=spec.core,
        )
        res.checks += _check_dicts(size_checks)
        for c in size_checks:
            if c.level == WARN:
                res.warn(c.message)
        failed = [c for c in size_checks if c.level == FAIL]
        if failed:
            raise CheckFailed(
                f"the new backup of {spec.spec} failed a size check: "
                + "; ".join(c.message for c in failed),
                hint="look at the backup (moodump list); older backups are kept until a "
                "backup passes",
            )

        if method != VERIFY_NONE:
            _interrupt_point(ctx, "verification")
            report = _verify(path, method, cfg.threads, cfg.database_server_timeout)
            res.verify = _verify_dict(report)
            if not report.passed:
                raise IntegrityError(
                    f"the new backup of {spec.spec} failed verification: "
                    + "; ".join(report.problems[:3]),
                    hint="do not rely on this backup; run it again and see docs/restore-and-verify.md",
                )
        res.backup_ok = True

        if target is not None:
            _interrupt_point(ctx, "the off-site copy")
            res.offsite = {"ok": False, "url": target.url.display()}
            up = target.upload(path)
            check = target.recheck(path.name, local_dir=path)
            res.offsite.update(
                ok=True,
                remote_path=check.remote_path,
                files=check.files,
                bytes=check.bytes,
                attempts=up.attempts,
                check_method=check.check_method,
            )
    except MoodumpError as exc:
        _fail(res, exc, spec)
    except KeyboardInterrupt:
        ctx.stop.set()
        _fail(res, _interrupted(f"while backing up {spec.spec}"), spec)
    except OSError as exc:
        _fail(res, StorageError(f"{exc.strerror or exc}", hint="check the backup volume"), spec)
    except Exception as exc:  # a bug must not stop the other databases
        log.exception("unexpected error while backing up %s", spec.spec)
        _fail(res, ServerError(f"unexpected error: {exc!r}", hint="report this bug"), spec)
    if res.offsite is not None and not res.offsite.get("ok"):
        res.offsite["error"] = res.error
    res.duration_s = time.monotonic() - t0
    return res


def _fail(res: DatabaseResult, exc: MoodumpError, spec: DatabaseSpec) -> None:
    backup_ok = res.backup_ok
    res.fail(exc)
    # A good local backup whose off-site copy failed still counts for local retention.
    res.backup_ok = backup_ok and res.offsite is not None
    log.error(
        "backup of %s failed: %s",
        spec.spec,
        exc,
        extra={"database": spec.spec, "exit_code": exc.exit_code},
    )


def _interrupted(where: str) -> Interrupted:
    return Interrupted(
        f"interrupted {where} (SIGTERM or Ctrl-C); no new backup was published",
        hint="run it again (moodump run --once)",
    )


def _interrupt_point(ctx: _Context, step: str) -> None:
    if ctx.stop.is_set():
        raise Interrupted(
            f"stopped before {step}; the backup itself is complete",
            hint="run the remaining steps again (moodump run --once or moodump verify)",
        )


def _verify(path: Path, method: str, threads: int, server_timeout: int) -> VerifyReport:
    if method == VERIFY_LOCAL:
        return verify(path, local=True, threads=threads, local_timeout=server_timeout)
    return verify(path)


def _verify_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "method": report.method,
        "passed": report.passed,
        "problems": report.problems[:20],
        "tables": report.tables_checked,
        "rows": report.rows_checked,
        "duration_s": round(report.duration_s, 3),
        "restore_s": None if report.restore_s is None else round(report.restore_s, 3),
    }


def _facts(res: DatabaseResult) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if res.path:
        facts["backup"] = res.path
    if res.size_bytes is not None:
        facts["backup size"] = human_size(res.size_bytes)
    if res.rows is not None:
        facts["rows"] = f"{res.rows:,}"
    facts["elapsed"] = f"{res.duration_s:.1f} s"
    if res.verify is not None:
        facts["verification"] = (
            f"{'PASS' if res.verify['passed'] else 'FAIL'} ({res.verify['method']})"
        )
    if res.offsite is not None:
        facts["off-site copy"] = (
            f"{res.offsite.get('remote_path')} (re-checked)" if res.offsite.get("ok") else "FAILED"
        )
    facts["exit code"] = res.exit_code
    return facts


def _database_event(res: DatabaseResult) -> Event:
    if res.status == STATUS_FAILED or res.status == STATUS_SKIPPED:
        return Event(
            "failure",
            f"Failed to back up {res.spec}: {res.error}",
            database=res.spec,
            facts=_facts(res),
        )
    if res.status == STATUS_WARNING:
        return Event(
            "warning",
            f"Backed up {res.spec}, with warnings: " + "; ".join(res.warnings),
            database=res.spec,
            facts=_facts(res),
        )
    return Event("success", f"Successfully backed up {res.spec}.", database=res.spec,
                 facts=_facts(res))  # fmt: skip


def _prune(
    ctx: _Context, cores: Sequence[str], target: FtpsTarget | None, copied: set[str]
) -> PruneReport | None:
    cfg, report = ctx.cfg, ctx.report
    try:
        pr = prune(cfg.root, cfg.retention, ctx.now(), cfg.tz, after_failure=True, only=cores)
    except MoodumpError as exc:
        report.warnings.append(f"pruning failed: {exc}")
        log.error("pruning failed: %s", exc)
        return None
    report.pruned = [b.name for b in pr.removed]
    for b in pr.removed:
        log.info("pruned %s (%s)", b.path, pr.plan.decision(str(b.path)).reason)
    for e in pr.errors:
        report.warnings.append(f"pruning: {e}")
        log.error("pruning: %s", e)
    if target is None or not cfg.ftp_prune:
        return pr
    kept = {b.id for b in pr.plan.keep}
    try:
        remote = [r.name for r in target.list_backups() if r.complete]
        for core in cores:
            if core not in copied:
                continue  # remote retention follows only a checked copy of today's backup
            keep = [b.name for b in pr.backups if b.core == core and str(b.path) in kept]
            victims = remote_names_to_prune(remote, keep, core)
            if victims:
                report.pruned_remote += target.prune_remote(victims)
    except MoodumpError as exc:
        report.warnings.append(f"pruning the off-site copies failed: {exc}")
        log.error("pruning the off-site copies failed: %s", exc)
    return pr


# --------------------------------------------------------------------------- verify all


def verify_all(
    cfg: Config,
    *,
    now: datetime | None = None,
    clock: Clock | None = None,
    only: Collection[str] | None = None,
    method: str | None = None,
    notifier: Notifier | None = None,
    sleep: Sleep = time.sleep,
    stop: threading.Event | None = None,
) -> RunReport:
    """Verify the newest DONE backup of each configured database (``backup.sh -v all``).

    A database fails when it has no finished backup (exit 5), when that backup fails
    verification (8), or when it is stale (11): a newer backup attempt did not finish, or
    it is older than MOODUMP_MAX_AGE. Stale backups are still verified, and the result
    says both ("verification passed, but the newest good backup is from ..."), so a
    failed nightly backup is never hidden behind a PASS of an older file.

    :param method: ``local`` (restore into a throwaway server; default when MariaDB
        server binaries are installed) or ``offline`` (files and checksums only).
    :raises LockBusy: another run holds the lock.
    """
    if method is None:
        method = VERIFY_LOCAL if server_binaries() is not None else VERIFY_OFFLINE
    if method not in (VERIFY_OFFLINE, VERIFY_LOCAL):
        raise ConfigError(f"unknown verification method {method!r}", hint="use offline or local")
    _register_secrets(cfg)
    specs = _select(cfg, only)
    ctx = _Context(
        cfg, ACTION_VERIFY, now=now, clock=clock, notifier=notifier, sleep=sleep, stop=stop
    )
    try:
        lock = _lock(cfg, "verify all")
    except StorageError as exc:
        ctx.notify(Event("failure", f"moodump verification could not start: {exc}"))
        raise
    with lock:
        for spec in specs:
            if ctx.stop.is_set():
                ctx.report.interrupted = True
                break
            res = _verify_database(ctx, spec, method)
            ctx.report.databases.append(res)
            ctx.notify(_verify_event(res))
            if res.exit_code == Interrupted.exit_code:
                ctx.report.interrupted = True
    return ctx.finish()


def _verify_database(ctx: _Context, spec: DatabaseSpec, method: str) -> DatabaseResult:
    cfg = ctx.cfg
    res = DatabaseResult(spec.spec, spec.core)
    t0 = time.monotonic()
    now = ctx.now()
    try:
        mine = sorted(
            (b for b in scan_backups(cfg.root, cfg.tz) if b.core == spec.core),
            key=lambda b: (utc(b.when), b.name),
            reverse=True,
        )
        good = next((b for b in mine if b.done and not b.legacy), None)
        if good is None:
            newest = f"; the newest attempt ({_describe(mine[0])}) did not finish" if mine else ""
            raise NotFoundError(
                f"{spec.spec} has no finished backup to verify{newest}",
                hint="look at the backup logs; run moodump run --once",
            )
        res.path, res.tier, res.size_bytes, res.rows = (
            str(good.path),
            good.tier,
            good.size_bytes,
            good.rows,
        )
        res.started_at = _iso(good.when)
        stale = _staleness(good, mine, now, cfg.max_age)
        report = verify(
            good.path,
            local=method == VERIFY_LOCAL,
            threads=cfg.threads,
            local_timeout=cfg.database_server_timeout,
        )
        res.verify = _verify_dict(report)
        if not report.passed:
            raise IntegrityError(
                f"the newest backup of {spec.spec} ({good.name}) failed verification: "
                + "; ".join(report.problems[:3])
                + (f" (and it is stale: {stale})" if stale else ""),
                hint="do not rely on it; take a new backup and verify older ones",
            )
        if stale:
            raise CheckFailed(
                f"verification of {good.name} passed, but the newest good backup of "
                f"{spec.spec} is not from today: {stale}",
                hint="find out why the backup failed (moodump list, the backup logs)",
            )
        res.backup_ok = True
    except MoodumpError as exc:
        res.fail(exc)
        log.error("verification of %s: %s", spec.spec, exc, extra={"database": spec.spec})
    except KeyboardInterrupt:
        ctx.stop.set()
        res.fail(_interrupted(f"while verifying {spec.spec}"))
        log.error("verification of %s was interrupted", spec.spec)
    except OSError as exc:
        res.fail(StorageError(f"{exc.strerror or exc}", hint="check the backup volume"))
        log.error("verification of %s: %s", spec.spec, exc, extra={"database": spec.spec})
    except Exception as exc:  # a bug must not stop the other databases
        log.exception("unexpected error while verifying %s", spec.spec)
        res.fail(ServerError(f"unexpected error: {exc!r}", hint="report this bug"))
    res.duration_s = time.monotonic() - t0
    return res


def _describe(b: BackupInfo) -> str:
    return f"{b.when:%Y-%m-%d %H:%M %Z}, {b.status}"


def _staleness(
    good: BackupInfo, mine: Sequence[BackupInfo], now: datetime, max_age: timedelta
) -> str:
    """Why ``good`` is not a current backup ("" when it is)."""
    reasons = []
    age = utc(now) - utc(good.when)
    newer = [b for b in mine if utc(b.when) > utc(good.when) and not b.done]
    if newer:
        b = newer[0]
        error = f": {b.error.splitlines()[0]}" if b.error else ""
        reasons.append(f"the newer backup of {b.when:%Y-%m-%d %H:%M %Z} is {b.status}{error}")
    if age > max_age:
        reasons.append(
            f"it is from {good.when:%Y-%m-%d %H:%M %Z}, {format_duration(_round(age))} old "
            f"(MOODUMP_MAX_AGE {format_duration(max_age)})"
        )
    return "; ".join(reasons)


def _round(delta: timedelta) -> timedelta:
    return timedelta(minutes=int(delta.total_seconds() // 60))


def _verify_event(res: DatabaseResult) -> Event:
    facts = {k: v for k, v in _facts(res).items() if k != "elapsed"}
    facts["elapsed"] = f"{res.duration_s:.1f} s"
    if res.status == STATUS_FAILED:
        return Event("verify", f"Verification of {res.spec} failed: {res.error}",
                     status="ERROR", database=res.spec, facts=facts)  # fmt: skip
    assert res.verify is not None
    return Event(
        "verify",
        f"Verified the newest backup of {res.spec} ({res.verify['tables']} tables, "
        f"{res.verify['rows']:,} rows, {res.verify['method']}).",
        database=res.spec,
        facts=facts,
    )


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
    ctx = _Context(cfg, ACTION_PRUNE, now=now, clock=clock, notifier=notifier,
                   sleep=time.sleep, stop=None)  # fmt: skip
    cfg.require_databases()
    with _lock(cfg, "prune"):
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
    ctx = _Context(cfg, ACTION_CHECK, now=now, clock=clock, notifier=notifier,
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
        res = DatabaseResult(spec.spec, spec.core, checks=_check_dicts(mine))
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


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Job:
    """One thing the scheduler runs: an action kind, its target/args, and its cron line."""

    kind: str
    target: str | None = None
    args: tuple[str, ...] = ()
    line: CronLine | None = field(default=None, compare=False)

    def describe(self) -> str:
        text = {"backup": "backup of every database", "prune": "prune", "check": "check"}.get(
            self.kind, self.kind
        )
        if self.kind == ACTION_VERIFY:
            text = "verification of " + (
                "every database" if self.target in (None, "all") else str(self.target)
            )
        return text


def scheduled_jobs(cfg: Config) -> list[tuple[CronLine, Job]]:
    """The cron lines moodump runs itself, each with its :class:`Job`.

    Lines whose command is not a backup, verification, prune or check (``-l``, ``-c``,
    restores, other programs) are skipped with a log line. A verification of one
    database must name a configured one (ConfigError otherwise).
    """
    out = []
    for c in cfg.schedule:
        a = c.action
        if a.kind not in RUNNABLE_ACTIONS:
            log.warning(
                "%s line %d: '%s' is not run by moodump run (only backups, verification, "
                "prune and check are)",
                cfg.conf_path,
                c.line,
                c.command,
            )
            continue
        if a.kind == ACTION_PRUNE and a.filter:
            log.warning("%s line %d: prune -f is interactive; not scheduled", cfg.conf_path, c.line)
            continue
        if a.kind == ACTION_VERIFY and a.target not in (None, "all"):
            cfg.database(str(a.target))  # raises for an unknown database
        if a.filter:
            log.warning("%s line %d: -f %s is ignored; the newest backup is verified",
                        cfg.conf_path, c.line, a.filter)  # fmt: skip
        job = Job(a.kind, a.target, a.args, c)
        for name in _databases_arg(job.args):
            cfg.database(name)  # raises for an unknown database
        out.append((c, job))
    return out


def _databases_arg(args: Sequence[str]) -> list[str]:
    """The values of ``--database X`` / ``--database=X`` in a cron line's moodump args."""
    out, words = [], list(args)
    while words:
        name, sep, value = words.pop(0).partition("=")
        if name == "--database":
            out.append(value if sep else (words.pop(0) if words else ""))
    return out


def run_job(
    cfg: Config,
    job: Job,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    sleep: Sleep = time.sleep,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Run one scheduled job now (the dispatch of :func:`run_scheduled`)."""
    only = _databases_arg(job.args) or None
    if job.kind == ACTION_BACKUP:
        return run_once(cfg, clock=clock, only=only, notifier=notifier, sleep=sleep, stop=stop,
                        progress=progress)  # fmt: skip
    if job.kind == ACTION_VERIFY:
        if job.target not in (None, "all"):
            only = [str(job.target)]
        return verify_all(cfg, clock=clock, only=only, notifier=notifier, sleep=sleep, stop=stop)
    if job.kind == ACTION_PRUNE:
        return prune_once(cfg, clock=clock, notifier=notifier)
    if job.kind == ACTION_CHECK:
        return check_once(cfg, job.args, clock=clock, notifier=notifier)
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
    """
    stop = stop or threading.Event()
    real_clock: Clock = clock or (lambda: datetime.now(cfg.tz))

    def wait_for_stop(seconds: float) -> None:
        stop.wait(seconds)

    wait: Sleep = sleep or wait_for_stop
    _register_secrets(cfg)
    cfg.require_databases()
    jobs = scheduled_jobs(cfg) if cfg.schedule else []
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
    log.info("moodump run started: %s; next run %s", what, _iso(first))
    notify.send(Event("start", f"moodump run started ({what}); next run at {_iso(first)}."))

    after = start
    next_legacy = start
    while not stop.is_set():
        if jobs:
            due, due_lines = next_due(lines, after, cfg.tz)
            todo = list(dict.fromkeys(by_line[c] for c in due_lines))
        else:
            due, todo = next_legacy, [Job(ACTION_BACKUP)]
        log.info(
            "next: %s at %s", ", ".join(j.describe() for j in todo), _iso(due),
            extra={"next_run": _iso(due)},
        )  # fmt: skip
        if not _wait_until(due, now, wait, stop):
            break
        for job in todo:
            if stop.is_set():
                break
            try:
                report = _run_guarded(cfg, job, now, notify, wait, stop, progress)
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
) -> RunReport | None:
    """One job; errors that escape it are logged and notified, never end the loop."""
    try:
        report = run_job(cfg, job, clock=now, notifier=notifier, sleep=sleep, stop=stop,
                         progress=progress)  # fmt: skip
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


__all__ = [
    "RUNNABLE_ACTIONS",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_SKIPPED",
    "STATUS_WARNING",
    "DatabaseResult",
    "Job",
    "RunReport",
    "check_once",
    "conn_settings_for",
    "ftps_target_from_config",
    "notifier_from_config",
    "prune_once",
    "run_job",
    "run_once",
    "run_scheduled",
    "scheduled_jobs",
    "verify_all",
]
