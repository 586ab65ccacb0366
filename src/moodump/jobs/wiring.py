"""From configuration to working parts: notifier, off-site target, connection settings,
the run lock, and the :class:`Context` one cycle shares (clock, notifier, stop, report).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

from moodump.config import Config, DatabaseSpec
from moodump.db.connection import ConnSettings
from moodump.db.credentials import ConnRequest, resolve_connection
from moodump.dump import ProgressEvent
from moodump.errors import (
    ConfigError,
    StorageError,
)
from moodump.fsmodes import make_dir
from moodump.jobs.report import RunReport, iso_time
from moodump.lock import RunLock
from moodump.logs import register_secret
from moodump.notify import DeliveryResult, Event, Notifier
from moodump.offsite import FtpsSettings, FtpsTarget
from moodump.pg.credentials import resolve_pg_connection
from moodump.progress import Progress as Tracker

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
Progress = Callable[[str, ProgressEvent], None]


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
    """How to reach ``spec``'s server, by the one resolution the CLI uses too
    (:func:`moodump.db.credentials.resolve_connection`): the configured host, port and
    credentials (``<HOST>_USER``/``_PASSWORD``, else DATABASE_USER/_PASSWORD) are what
    the scheduler was told, and so is the host's TLS (``<HOST>_SSL_MODE``, ``_SSL_CA``,
    ``_SSL_CERT``, ``_SSL_KEY``); MYSQL_DEFAULTS_FILE's ``[client]`` section, then the
    MYSQL_* and MOODUMP_SSL_* environment, fill in what those leave empty. MOODUMP_CONNECT_TIMEOUT and
    MOODUMP_READ_TIMEOUT bound the waits, so a hung server fails the database instead
    of hanging the run.
    """
    request = ConnRequest(
        host=spec.host,
        port=spec.port_or_default,
        user=spec.user or None,
        password=spec.password.reveal() if spec.password else None,
        defaults_file=Path(cfg.mysql_defaults_file) if cfg.mysql_defaults_file else None,
        ssl_mode=spec.ssl_mode,
        ssl_ca=spec.ssl_ca,
        ssl_cert=spec.ssl_cert,
        ssl_key=spec.ssl_key,
    )
    base = ConnSettings(connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout)
    if spec.is_postgres:  # PG* environment and libpq's PGPASSWORD/.pgpass, no option file
        settings = resolve_pg_connection(request, env=os.environ, base=base)
    else:
        settings = resolve_connection(request, env=os.environ, base=base)
    register_secret(settings.password)
    return settings


def register_config_secrets(cfg: Config) -> None:
    for value in cfg.secret_values():
        register_secret(value)


def select_databases(cfg: Config, only: Collection[str] | None) -> list[DatabaseSpec]:
    cfg.require_databases()
    if only is None:
        return list(cfg.databases)
    wanted = {cfg.database(name).core for name in only}
    return [d for d in cfg.databases if d.core in wanted]


def _ensure_dir(path: Path, what: str) -> None:
    try:
        make_dir(path, parents=True, exist_ok=True)
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


class Context:
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
        tracker: Tracker | None = None,
    ) -> None:
        self.cfg = cfg
        # What the dumps and verifications count into: the progress log lines
        # (MOODUMP_PROGRESS_INTERVAL) and, from the CLI, the terminal display read it.
        self.tracker = tracker or Tracker()
        self._clock: Clock = clock or _fixed_or_real_clock(cfg, now)
        self.sleep = sleep
        self.stop = stop or threading.Event()
        self.t0 = time.monotonic()
        self.report = RunReport(action, iso_time(self.now()), strict=cfg.strict)
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
        self.report.finished_at = iso_time(self.now())
        self.report.duration_s = time.monotonic() - self.t0
        return self.report


def run_lock(cfg: Config, purpose: str) -> RunLock:
    _ensure_dir(cfg.root, "backup folder (BACKUP_DIR)")
    _ensure_dir(cfg.lock_path.parent, "lock file folder")
    return RunLock(cfg.lock_path, purpose=purpose)
