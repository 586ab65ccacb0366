"""The backup cycle (:func:`run_once`): dump, checks, verification, off-site copy,
notification per database, then retention for the databases that succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from moodump import __version__
from moodump.catalog import PruneReport, prune, read_backup, scan_backups
from moodump.checks import (
    FAIL,
    WARN,
    CheckResult,
    check_size,
    free_space_precheck,
    human_size,
    previous_good,
)
from moodump.config import Config, DatabaseSpec
from moodump.crypto import SigningKey, VerifyKey, load_verify_keys, signing_key_from_setting
from moodump.dump import DumpOptions, ProgressEvent, dump, sweep_stale_partials
from moodump.errors import (
    CheckFailed,
    ConfigError,
    IntegrityError,
    Interrupted,
    LockBusy,
    MoodumpError,
    ServerError,
    StorageError,
)
from moodump.fsmodes import make_dir, sweep_scratch, write_text
from moodump.jobs.exporter import record_run
from moodump.jobs.files_check import check_moodledata
from moodump.jobs.guard import Deadline, fit_hint, record_error
from moodump.jobs.offsite import (
    OffsitePlan,
    copy_offsite,
    encrypt_in_place,
    finish_at_rest,
    offsite_from_config,
    prune_offsite,
    sweep_staging,
)
from moodump.jobs.report import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    STATUS_WARNING,
    VERIFY_LOCAL,
    VERIFY_NONE,
    VERIFY_OFFLINE,
    DatabaseResult,
    RunReport,
    iso_time,
)
from moodump.jobs.wiring import (
    Clock,
    Context,
    Progress,
    Sleep,
    _ensure_dir,
    conn_settings_for,
    register_config_secrets,
    run_lock,
    select_databases,
)
from moodump.manifest import MANIFEST_NAME, Manifest
from moodump.manifest import STATUS_FAILED as MANIFEST_FAILED
from moodump.naming import target_dir_for, tier_for
from moodump.notify import Event, Notifier
from moodump.progress import Progress as Tracker
from moodump.progress import log_progress
from moodump.schedule import (
    ACTION_BACKUP,
)
from moodump.verify import VerifyReport, verify

log = logging.getLogger(__name__)

# How far a taken backup name is moved on (one second at a time) before giving up.
_NAME_ATTEMPTS = 60

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
    tracker: Tracker | None = None,
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
    :param tracker: the :class:`~moodump.progress.Progress` dumps and verifications count
        into (a terminal display may read it); one progress log line per
        MOODUMP_PROGRESS_INTERVAL is written from it either way.
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
    register_config_secrets(cfg)
    specs = select_databases(cfg, only)
    ctx = Context(
        cfg, ACTION_BACKUP, now=now, clock=clock, notifier=notifier, sleep=sleep, stop=stop,
        tracker=tracker,
    )  # fmt: skip
    if cfg.run_warnings:
        # Settings the old container honoured that are ignored or mean something else:
        # said loudly at every start, so a switch-over never loses one silently.
        for w in cfg.run_warnings:
            log.warning("setting: %s", w)
        ctx.report.setting_warnings = list(cfg.run_warnings)
        ctx.notify(
            Event("start", "moodump run: check these settings: " + "; ".join(cfg.run_warnings))
        )
    try:
        lock = run_lock(cfg, "run --once")
        with lock, log_progress(ctx.tracker, cfg.progress_interval.total_seconds()):
            _backup_cycle(ctx, specs, method, progress)
            report = ctx.finish()
            record_run(cfg, report)  # state file and metrics, still under the lock
    except LockBusy:
        raise
    except StorageError as exc:
        # No backup was attempted (BACKUP_DIR or the lock cannot be created): alert anyway.
        ctx.notify(Event("failure", f"moodump run could not start: {exc}"))
        raise
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
    ctx: Context, specs: Sequence[DatabaseSpec], method: str, progress: Progress | None
) -> None:
    cfg, report = ctx.cfg, ctx.report
    offsite = offsite_from_config(cfg, report, sleep=ctx.sleep)
    try:
        try:  # what a stopped run left (the run lock is held)
            sweep_staging(cfg.root)
            if offsite.at_rest:
                finish_at_rest(offsite, cfg.root)
            sweep_stale_partials(cfg.root)  # the work directories of killed dumps
            sweep_scratch()  # and what killed runs left in TMPDIR
        except (MoodumpError, OSError) as exc:
            msg = f"cleaning up after a stopped run failed: {exc}"
            report.warnings.append(msg)
            log.error("%s", msg)
        _backup_databases(ctx, specs, method, offsite, progress)
    finally:
        offsite.close()


def _backup_databases(
    ctx: Context,
    specs: Sequence[DatabaseSpec],
    method: str,
    offsite: OffsitePlan,
    progress: Progress | None,
) -> None:
    report = ctx.report
    copied: set[str] = set()
    for spec in specs:
        if ctx.stop.is_set():
            report.interrupted = True
            report.databases.append(
                DatabaseResult(spec.spec, spec.core, STATUS_SKIPPED, Interrupted.exit_code,
                               error="not started: the run was stopped")
            )  # fmt: skip
            continue
        result = _backup_database(ctx, spec, method, offsite, progress)
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
        _prune(ctx, ok_cores, offsite, copied)
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
        database_type="postgresql" if spec.is_postgres else "mysql",
    )
    try:
        make_dir(path, parents=True)
        write_text(path / MANIFEST_NAME, manifest.to_json())
        return True
    except OSError:
        try:
            (path / MANIFEST_NAME).unlink(missing_ok=True)
            path.rmdir()
        except OSError:
            pass
        return False


def check_dicts(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in results]


def _backup_database(
    ctx: Context,
    spec: DatabaseSpec,
    method: str,
    offsite: OffsitePlan,
    progress: Progress | None,
) -> DatabaseResult:
    cfg = ctx.cfg
    res = DatabaseResult(spec.spec, spec.core)
    t0 = time.monotonic()
    when = ctx.now()
    res.started_at = iso_time(when)
    res.tier = tier_for(when.date(), cfg.retention)
    path: Path | None = None
    log.info("backing up %s", spec.spec, extra={"database": spec.spec})
    deadline = Deadline(ctx.stop, cfg.max_runtime, f"the backup of {spec.spec}").start()
    step = "the dump"
    try:
        backups = scan_backups(cfg.root, cfg.tz)
        prev = previous_good(backups, spec.core, when)
        res.previous = prev.name if prev else None
        prev_size = prev.size_bytes if prev else None

        path, when = _free_target(cfg, when, spec)
        res.path, res.started_at = str(path), iso_time(when)
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
            threads=cfg.threads, codec=cfg.codec, level=cfg.level, record_failure=True,
            started_at=when, signing_key=_signing_key(cfg), moodle_prefix=cfg.moodle_prefix,
            upgrade_wait=cfg.upgrade_wait, moodle_dataroot=spec.dataroot or None,
        )  # fmt: skip
        run_dump = dump
        if spec.is_postgres:  # imported on use: psycopg takes ~0.2 s to import
            from moodump.dump.pg import dump_postgres as run_dump
        result = run_dump(
            conn_settings_for(cfg, spec),
            spec.database,
            path,
            options,
            progress=on_progress,
            stop=deadline.stop,
            tracker=ctx.tracker,
        )
        step = "the checks"  # past the dump, errors are the steps' own
        for w in result.warnings:
            res.warn(w)
        info = read_backup(path, res.tier, cfg.tz)
        res.size_bytes = info.size_bytes if info else result.manifest.total_bytes
        res.rows = result.manifest.total_rows
        res.tables = len(result.manifest.tables)
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
        res.checks += check_dicts(size_checks)
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
            step = "verification"
            _interrupt_point(ctx, "verification")
            deadline.check("verification")
            report = _verify(
                path, method, cfg.threads, cfg.database_server_timeout, verify_keys_of(cfg),
                ctx.tracker,
            )  # fmt: skip
            res.verify = verify_dict(report)
            if not report.passed:
                raise IntegrityError(
                    f"the new backup of {spec.spec} failed verification: "
                    + "; ".join(report.problems[:3]),
                    hint="do not rely on this backup; run it again and see docs/restore-and-verify.md",
                )
        res.backup_ok = True
        step = "the moodledata check"
        check_moodledata(cfg, spec, result.manifest, path, res)

        if offsite.at_rest:
            step = "the encryption at rest"
            encrypt_in_place(offsite, path)

        if offsite.destinations:
            step = "the off-site copy"
            _interrupt_point(ctx, "the off-site copy")
            deadline.check("the off-site copy")
            res.offsite = {"ok": False, "url": offsite.destinations[0].url}
            copy_offsite(cfg, offsite, path, res.offsite)
    except MoodumpError as exc:
        err = deadline.explain(exc, step) if step == "the dump" else exc
        if err is not exc:
            record_error(path, err.message)
        _fail(res, fit_hint(err, spec), spec)
    except KeyboardInterrupt:
        ctx.stop.set()
        _fail(res, interrupted_error(f"while backing up {spec.spec}"), spec)
    except OSError as exc:
        _fail(res, StorageError(f"{exc.strerror or exc}", hint="check the backup volume"), spec)
    except Exception as exc:  # a bug must not stop the other databases
        log.exception("unexpected error while backing up %s", spec.spec)
        _fail(res, ServerError(f"unexpected error: {exc!r}", hint="report this bug"), spec)
    finally:
        deadline.close()
    if res.offsite is not None and not res.offsite.get("ok"):
        res.offsite["error"] = res.error
    res.duration_s = time.monotonic() - t0
    return res


def _fail(res: DatabaseResult, exc: MoodumpError, spec: DatabaseSpec) -> None:
    # A good local backup whose off-site copy failed stays, and nothing of this database
    # is pruned (local or remote): the next run tries the copy again.
    res.fail(exc)
    log.error(
        "backup of %s failed: %s",
        spec.spec,
        exc,
        extra={"database": spec.spec, "exit_code": exc.exit_code},
    )


def interrupted_error(where: str) -> Interrupted:
    return Interrupted(
        f"interrupted {where} (SIGTERM or Ctrl-C); no new backup was published",
        hint="run it again (moodump run --once)",
    )


def _interrupt_point(ctx: Context, step: str) -> None:
    if ctx.stop.is_set():
        raise Interrupted(
            f"stopped before {step}; the backup itself is complete",
            hint="run the remaining steps again (moodump run --once or moodump verify)",
        )


def _verify(
    path: Path,
    method: str,
    threads: int,
    server_timeout: int,
    keys: Sequence[VerifyKey] = (),
    tracker: Tracker | None = None,
) -> VerifyReport:
    if method == VERIFY_LOCAL:
        return verify(
            path, local=True, threads=threads, local_timeout=server_timeout, verify_keys=keys,
            tracker=tracker,
        )  # fmt: skip
    return verify(path, verify_keys=keys, tracker=tracker)


def verify_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "method": report.method,
        "passed": report.passed,
        "problems": report.problems[:20],
        "tables": report.tables_checked,
        "rows": report.rows_checked,
        "duration_s": round(report.duration_s, 3),
        "restore_s": None if report.restore_s is None else round(report.restore_s, 3),
    }


def result_facts(res: DatabaseResult) -> dict[str, Any]:
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
            facts=result_facts(res),
        )
    if res.status == STATUS_WARNING:
        return Event(
            "warning",
            f"Backed up {res.spec}, with warnings: " + "; ".join(res.warnings),
            database=res.spec,
            facts=result_facts(res),
        )
    return Event("success", f"Successfully backed up {res.spec}.", database=res.spec,
                 facts=result_facts(res))  # fmt: skip


def _prune(
    ctx: Context, cores: Sequence[str], offsite: OffsitePlan, copied: set[str]
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
    prune_offsite(cfg, offsite, [c for c in cores if c in copied], ctx.now(), report)
    return pr


def verify_keys_of(cfg: Config) -> list[VerifyKey]:
    """The keys backups must be signed with (MOODUMP_VERIFY_KEY); empty when unset."""
    return load_verify_keys(cfg.verify_key) if cfg.verify_key else []


def _signing_key(cfg: Config) -> SigningKey | None:
    """The key that signs every backup's manifest (MOODUMP_SIGNING_KEY), or None."""
    return signing_key_from_setting(cfg.signing_key.reveal()) if cfg.signing_key else None
