"""The verification cycle (:func:`verify_all`): verify the newest backup of every
database and fail when it is stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from moodump.catalog import BackupInfo, scan_backups
from moodump.config import Config, DatabaseSpec
from moodump.crypto import ENCRYPTED_MANIFEST_NAME, load_identities
from moodump.db.localserver import server_binaries
from moodump.errors import (
    CheckFailed,
    ConfigError,
    IntegrityError,
    Interrupted,
    MoodumpError,
    NotFoundError,
    PitrUnavailable,
    ServerError,
    StorageError,
)
from moodump.fsmodes import sweep_scratch
from moodump.jobs.backup import interrupted_error, result_facts, verify_dict, verify_keys_of
from moodump.jobs.exporter import record_run
from moodump.jobs.report import (
    STATUS_FAILED,
    VERIFY_LOCAL,
    VERIFY_OFFLINE,
    DatabaseResult,
    RunReport,
    iso_time,
)
from moodump.jobs.wiring import (
    Clock,
    Context,
    Sleep,
    register_config_secrets,
    run_lock,
    select_databases,
)
from moodump.notify import Event, Notifier
from moodump.pitr import verify_archive
from moodump.progress import Progress as Tracker
from moodump.progress import log_progress
from moodump.retention import utc
from moodump.schedule import (
    ACTION_VERIFY,
    format_duration,
)
from moodump.verify import verify

log = logging.getLogger(__name__)

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
    tracker: Tracker | None = None,
) -> RunReport:
    """Verify the newest DONE backup of each configured database (``backup.sh -v all``).

    A database fails when it has no finished backup (exit 5), when that backup fails
    verification (8), or when it is stale (11): a newer backup attempt did not finish, or
    it is older than MOODUMP_MAX_AGE. Stale backups are still verified, and the result
    says both ("verification passed, but the newest good backup is from ..."), so a
    failed nightly backup is never hidden behind a PASS of an older file.

    :param method: ``local`` (restore into a throwaway server; default when MariaDB
        server binaries are installed) or ``offline`` (files and checksums only).
    :param tracker: what the verifications count into (see :func:`run_once`).
    :raises LockBusy: another run holds the lock.
    """
    if method is None:
        method = VERIFY_LOCAL if server_binaries() is not None else VERIFY_OFFLINE
    if method not in (VERIFY_OFFLINE, VERIFY_LOCAL):
        raise ConfigError(f"unknown verification method {method!r}", hint="use offline or local")
    register_config_secrets(cfg)
    specs = select_databases(cfg, only)
    ctx = Context(
        cfg, ACTION_VERIFY, now=now, clock=clock, notifier=notifier, sleep=sleep, stop=stop,
        tracker=tracker,
    )  # fmt: skip
    try:
        lock = run_lock(cfg, "verify all")
    except StorageError as exc:
        ctx.notify(Event("failure", f"moodump verification could not start: {exc}"))
        raise
    with lock, log_progress(ctx.tracker, cfg.progress_interval.total_seconds()):
        sweep_scratch()  # what killed runs left in TMPDIR (the run lock is held)
        for spec in specs:
            if ctx.stop.is_set():
                ctx.report.interrupted = True
                break
            res = _verify_database(ctx, spec, method)
            ctx.report.databases.append(res)
            ctx.notify(_verify_event(res))
            if res.exit_code == Interrupted.exit_code:
                ctx.report.interrupted = True
        if cfg.binlog_dir and not ctx.report.interrupted:
            _verify_binlog_archive(ctx)
        report = ctx.finish()
        record_run(cfg, report)  # state file and metrics, still under the lock
    return report


def _verify_binlog_archive(ctx: Context) -> None:
    """MOODUMP_BINLOG_DIR: verify the archive and its coverage from the oldest kept
    backup; a problem is a run-level error (exit 8 or 16) and a failure notification."""
    cfg = ctx.cfg
    try:
        res = verify_archive(cfg.binlog_dir, backup_dir=cfg.root)
    except MoodumpError as exc:
        ctx.report.errors.append((exc.exit_code, f"binlog archive {cfg.binlog_dir}: {exc}"))
        ctx.notify(Event("failure", f"binlog archive {cfg.binlog_dir}: {exc}"))
        return
    if res.ok:
        log.info("binlog archive %s verified: %d file(s)", cfg.binlog_dir, res.files_checked)
        return
    code = PitrUnavailable.exit_code if res.status.gaps else IntegrityError.exit_code
    text = f"binlog archive {cfg.binlog_dir}: " + "; ".join(res.problems[:5])
    ctx.report.errors.append((code, text))
    ctx.notify(Event("failure", text))


def _verify_database(ctx: Context, spec: DatabaseSpec, method: str) -> DatabaseResult:
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
        res.started_at = iso_time(good.when)
        stale = _staleness(good, mine, now, cfg.max_age)
        identities = load_identities([cfg.identity_file]) if cfg.identity_file else []
        encrypted = (good.path / ENCRYPTED_MANIFEST_NAME).exists()
        report = verify(
            good.path,
            # Encrypted at rest and no key here: the ciphertext is what can be checked.
            local=method == VERIFY_LOCAL and (bool(identities) or not encrypted),
            threads=cfg.threads,
            local_timeout=cfg.database_server_timeout,
            identities=identities,
            verify_keys=verify_keys_of(cfg),
            tracker=ctx.tracker,
        )
        res.verify = verify_dict(report)
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
        res.fail(interrupted_error(f"while verifying {spec.spec}"))
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
    facts = {k: v for k, v in result_facts(res).items() if k != "elapsed"}
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
