"""The configuration's model: :class:`DatabaseSpec` and the frozen :class:`Config`, with
its masked rendering (``moodump config``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from moodump.config.keys import _KEY_BY_NAME, KEYS
from moodump.config.keyspec import Key
from moodump.config.values import DEFAULT_PORT, LOCK_NAME, PG_DEFAULT_PORT, STATE_NAME, Secret
from moodump.errors import ConfigError
from moodump.naming import core_name, target_dir_for, tier_for
from moodump.retention import RetentionPolicy
from moodump.schedule import (
    ACTION_OTHER,
    CronLine,
    format_duration,
    next_run,
)

# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class DatabaseSpec:
    """One database to back up, with its resolved credentials.

    ``line`` is the backup.conf line number (0 when it came from the environment);
    ``spec`` is the text as written; ``port`` is None for the driver default (3306);
    ``user_source`` / ``password_source`` name the variables the credentials came from.
    Build a connection from ``host``, ``port_or_default``, ``user`` and
    ``password.reveal()``.
    """

    host: str
    database: str
    port: int | None = None
    db_type: str = ""
    spec: str = ""
    line: int = 0
    user: str = ""
    password: Secret | None = field(default=None, repr=False)
    user_source: str = ""
    password_source: str = ""
    #: TLS for this host (``<HOST>_SSL_MODE``, ``_SSL_CA``, ``_SSL_CERT``, ``_SSL_KEY``);
    #: None where unset, so MYSQL_DEFAULTS_FILE and MOODUMP_SSL_* apply.
    ssl_mode: str | None = None
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    #: The site's dataroot (moodledata) when its config.php says (MOODLE_CONFIG); the
    #: backup then also looks for Moodle's CLI maintenance file there.
    dataroot: str = ""

    @property
    def core(self) -> str:
        """``<host>-<database>``: the key of this database's backups."""
        return core_name(self.host, self.database)

    @property
    def is_postgres(self) -> bool:
        """A ``postgres=`` line: dumped with :func:`moodump.dump.dump_postgres`."""
        return self.db_type == "postgres"

    @property
    def port_or_default(self) -> int:
        if self.port is None and self.is_postgres:
            return PG_DEFAULT_PORT
        return self.port if self.port is not None else DEFAULT_PORT

    def to_dict(self, masked: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "spec": self.spec,
            "core": self.core,
            "host": self.host,
            "port": self.port_or_default,
            "database": self.database,
            "type": self.db_type or None,
            "line": self.line or None,
            "user": self.user,
            "user_from": self.user_source or None,
            "password_from": self.password_source or None,
            "password": _mask(self.password) if masked else _reveal(self.password),
        }
        tls = {
            name: value
            for name, value in (
                ("ssl_mode", self.ssl_mode),
                ("ssl_ca", self.ssl_ca),
                ("ssl_cert", self.ssl_cert),
                ("ssl_key", self.ssl_key),
            )
            if value
        }
        if tls:
            d["tls"] = tls
        if self.dataroot:
            d["dataroot"] = self.dataroot
        return d


def _mask(secret: Secret | None) -> str | None:
    return "****" if secret else None


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None


def _host_port(parts: SplitResult) -> str:
    """``host[:port]`` of a URL as it is written (a port that is no number included: the
    configuration shows it rather than failing on it; an IPv6 host keeps its brackets)."""
    return parts.netloc.rpartition("@")[2]


_RAW_USERINFO = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>.*)@(?P<rest>.*)$", re.S
)

#: What a URL's user and password must not hold unencoded, and how to write them.
USERINFO_RULE = (
    "percent-encode a '/', '?' or '#' in the user or password (%2F, %3F, %23), or give "
    "the password in its own variable"
)


def _hidden_userinfo(url: str) -> re.Match[str] | None:
    """The userinfo of a URL whose password holds an unencoded ``/``, ``?`` or ``#``:
    urllib ends the host part there, sees no password and takes its start for a port
    (``ftps://user:Ab/cd@host/`` has host ``user`` and port ``Ab``)."""
    found = _RAW_USERINFO.match(url)
    if found is None or ":" not in found["info"] or not any(c in found["info"] for c in "/?#"):
        return None
    try:
        if "@" in urlsplit(url).netloc:
            return None  # urllib found the userinfo itself
    except ValueError:
        pass
    return found


def userinfo_needs_encoding(url: str) -> bool:
    """Whether ``url`` has a user or password that urllib would misread (see
    :data:`USERINFO_RULE`)."""
    return _hidden_userinfo(url) is not None


def mask_url(url: str) -> str:
    """Keep scheme and host of a URL, hide any password and the path (tokens live there)."""
    if not url:
        return ""
    hidden = _hidden_userinfo(url)
    if hidden is not None:
        host = re.split(r"[/?#]", hidden["rest"], maxsplit=1)[0]
        return f"{hidden['scheme']}{hidden['info'].split(':', 1)[0]}:****@{host}/****"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    host = _host_port(parts)
    if parts.username:
        host = f"{parts.username}:****@{host}" if parts.password else f"{parts.username}@{host}"
    path = "/****" if parts.path.strip("/") or parts.query else parts.path
    return urlunsplit((parts.scheme, host, path, "", ""))


def mask_userinfo(url: str) -> str:
    """Hide only the password in a URL's userinfo (FTP paths are not secret)."""
    hidden = _hidden_userinfo(url)
    if hidden is not None:
        return f"{hidden['scheme']}{hidden['info'].split(':', 1)[0]}:****@{hidden['rest']}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    if not parts.password:
        return url
    host = _host_port(parts)
    return urlunsplit(
        (parts.scheme, f"{parts.username}:****@{host}", parts.path, parts.query, parts.fragment)
    )


@dataclass(frozen=True)
class Config:
    """The effective configuration (see :data:`KEYS` for each setting's meaning).

    Besides one attribute per key it holds what backup.conf contributed: ``databases``
    (in file order), ``schedule`` (cron lines), where they came from, and ``notes``
    (things worth telling the operator that are not errors).
    """

    backup_conf: str
    database_service_name: str
    database_name: str
    database_user: str
    database_password: Secret | None = field(repr=False)
    database_server_timeout: int
    mysql_defaults_file: str
    ssl_mode: str
    ssl_ca: str
    ssl_cert: str
    ssl_key: str
    pg_bindir: str
    backup_dir: str
    binlog_dir: str
    backup_strategy: str
    num_backups: int
    daily_backups: int
    weekly_backups: int
    monthly_backups: int
    backup_period: timedelta
    tz: ZoneInfo
    threads: int
    codec: str
    level: int | None
    connect_timeout: int
    read_timeout: int
    max_runtime: timedelta
    verify_after_backup: str
    direct_fetch: bool
    server_format: bool
    min_size: int
    max_shrink_percent: float
    shrink_mode: str
    max_age: timedelta
    check_unverified: bool
    min_free_space: int
    free_space_factor: float
    moodle_config: str
    moodle_prefix: str
    upgrade_wait: int
    check_files: str
    check_files_sample: int
    moodle_dataroot: str
    webhook_url: Secret | None = field(repr=False)
    notify_format: str
    environment_friendly_name: str
    environment_name: str
    pgduty_svc_key: Secret | None = field(repr=False)
    pgduty_url: str
    ftp_url: str = field(repr=False)  # may carry user:password@
    ftp_user: str
    ftp_password: Secret | None = field(repr=False)
    ftp_ca_file: str
    ftp_retries: int
    ftp_prune: bool
    s3_endpoint: str
    s3_user: str
    s3_password: Secret | None = field(repr=False)
    s3_session_token: Secret | None = field(repr=False)
    s3_bucket: str
    s3_prune_backups: bool
    s3_prefix: str
    s3_region: str
    s3_path_style: str
    s3_create_bucket: bool
    s3_ca_bundle: str
    offsite_daily: int | None
    offsite_weekly: int | None
    offsite_monthly: int | None
    encrypt_recipients: str
    encrypt_at_rest: bool
    identity_file: str
    signing_key: Secret | None = field(repr=False)
    verify_key: str
    backup_log_level: str
    log_format: str
    progress_interval: timedelta
    strict: bool
    file_mode: int
    lock_file: str
    state_file: str
    metrics_file: str
    metrics_port: int | None
    metrics_address: str
    # -- derived from backup.conf / the fallback
    databases: tuple[DatabaseSpec, ...] = ()
    schedule: tuple[CronLine, ...] = ()
    conf_path: str = ""
    conf_found: bool = False
    databases_from: str = "none"  # "backup.conf" | "environment" | "config.php" | "none"
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    notes: tuple[str, ...] = ()
    #: Settings the old container honoured that are ignored or mean something else now,
    #: and unknown MOODUMP_* names: a run logs each at WARNING when it starts.
    run_warnings: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    # ------------------------------------------------------------------ helpers
    @property
    def root(self) -> Path:
        """BACKUP_DIR as a Path."""
        return Path(self.backup_dir)

    @property
    def lock_path(self) -> Path:
        return Path(self.lock_file) if self.lock_file else self.root / LOCK_NAME

    @property
    def state_path(self) -> Path:
        """MOODUMP_STATE_FILE, or BACKUP_DIR/.moodump-state.json."""
        return Path(self.state_file) if self.state_file else self.root / STATE_NAME

    @property
    def mode(self) -> str:
        """``cron`` when backup.conf has schedule lines, else ``legacy`` (BACKUP_PERIOD)."""
        return "cron" if self.schedule else "legacy"

    @property
    def cores(self) -> tuple[str, ...]:
        return tuple(d.core for d in self.databases)

    def database(self, spec_or_core: str) -> DatabaseSpec:
        """A configured database by spec (``host[:port]/db``), core name or db name."""
        for d in self.databases:
            if spec_or_core in (d.spec, d.core, f"{d.host}/{d.database}"):
                return d
        matches = [d for d in self.databases if d.database == spec_or_core]
        if len(matches) == 1:
            return matches[0]
        raise ConfigError(
            f"{spec_or_core!r} is not a configured database",
            hint="use one of: " + ", ".join(d.spec for d in self.databases)
            if self.databases
            else "configure a database in backup.conf or DATABASE_SERVICE_NAME/DATABASE_NAME",
        )

    def value_of(self, env_name: str) -> Any:
        """A key's value by its variable name (a Secret revealed), for adapters whose
        settings map from the key table (e.g. ``storage.s3.s3_settings``)."""
        key = next((k for k in KEYS if k.env == env_name and k.name), None)
        if key is None or key.name is None:
            raise KeyError(f"{env_name} is not a key of the key table")
        value = getattr(self, key.name)
        return value.reveal() if isinstance(value, Secret) else value

    def secret_values(self) -> list[str]:
        """Every secret's real value (for log redaction, e.g. ``logs.register_secret``)."""
        out = [
            s.reveal()
            for s in (
                self.database_password,
                self.webhook_url,
                self.pgduty_svc_key,
                self.ftp_password,
                self.s3_password,
                self.s3_session_token,
            )
            if s
        ]
        out += [d.password.reveal() for d in self.databases if d.password]
        pem = self.signing_key.reveal() if self.signing_key else ""
        if "-----BEGIN" in pem:  # the key itself (not a path): every line of it too
            out.append(pem)
            out += [
                ln.strip() for ln in pem.splitlines() if len(ln.strip()) >= 16 and "-----" not in ln
            ]
        try:
            ftp_password = urlsplit(self.ftp_url).password if self.ftp_url else None
        except ValueError:
            ftp_password = None
        if ftp_password:
            out.append(ftp_password)
        return list(dict.fromkeys(out))

    def require_databases(self) -> None:
        """Raise ConfigError when there is nothing to back up."""
        if not self.databases:
            raise ConfigError(
                "no database is configured",
                hint=f"add a line like 'mysql/moodle' to {self.conf_path or 'backup.conf'} "
                "(BACKUP_CONF), or set DATABASE_SERVICE_NAME and DATABASE_NAME",
            )

    # ------------------------------------------------------------------ rendering
    def _value_text(self, key: Key, masked: bool) -> str:
        assert key.name is not None
        value = getattr(self, key.name)
        if isinstance(value, Secret):
            if not masked:
                return value.reveal()
            if key.env == "WEBHOOK_URL":
                return mask_url(value.reveal()) or "****"
            return "****"
        if value is None:
            return ""
        if key.env in ("FTP_URL", "S3_ENDPOINT") and masked:  # a password in the URL
            return mask_userinfo(str(value))
        if isinstance(value, timedelta):
            return format_duration(value)
        if key.env == "MOODUMP_FILE_MODE":
            return f"{value:04o}"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def to_dict(self, masked: bool = True, now: datetime | None = None) -> dict[str, Any]:
        """A JSON-able view; secrets are ``"****"`` (or absent) unless ``masked=False``."""
        settings: dict[str, Any] = {}
        for k in KEYS:
            if k.name is None:
                continue
            settings[k.env] = {
                "value": self._value_text(k, masked),
                "source": self.sources.get(k.name, "default"),
            }
        schedule = []
        for c in self.schedule:
            item: dict[str, Any] = {
                "line": c.line,
                "cron": c.expression,
                "user": c.user,
                "command": c.command,
                "action": c.action.kind,
                "target": c.action.target,
            }
            if now is not None:
                item["next_run"] = next_run(c.expression, now, self.tz).isoformat()
            schedule.append(item)
        out: dict[str, Any] = {
            "mode": self.mode,
            "strategy": self.retention.strategy,
            "retention": {
                "num_backups": self.retention.num_backups,
                "daily": self.retention.count_for("daily")
                if self.retention.rolling
                else self.retention.daily,
                "weekly": self.retention.weekly,
                "monthly": self.retention.monthly,
            },
            "time_zone": str(self.tz),
            "backup_dir": self.backup_dir,
            "backup_conf": {"path": self.conf_path, "found": self.conf_found},
            "databases_from": self.databases_from,
            "databases": [d.to_dict(masked) for d in self.databases],
            "schedule": schedule,
            "backup_period": format_duration(self.backup_period),
            "lock_file": str(self.lock_path),
            "settings": settings,
            "notes": list(self.notes),
        }
        if now is not None:
            local = now.astimezone(self.tz)
            out["now"] = local.isoformat()
            out["today_tier"] = tier_for(local.date(), self.retention) or "flat daily"
        return out

    def render(self, masked: bool = True, now: datetime | None = None) -> str:
        """The text of ``moodump config``: a summary like the old ``backup.sh -c``, then
        every setting with its source. Secret values are never printed when ``masked``.
        """
        nc = "not configured"
        r = self.retention
        lines = ["Settings:"]
        if self.mode == "cron":
            lines.append(f"- Run mode: cron ({len(self.schedule)} schedule line(s) in backup.conf)")
        else:
            lines.append(
                f"- Run mode: legacy (every {format_duration(self.backup_period)}, BACKUP_PERIOD)"
            )
        lines.append(f"- Backup strategy: {r.strategy}")
        if now is not None:
            local = now.astimezone(self.tz)
            tier = tier_for(local.date(), r)
            lines.append(f"- Current backup type: {tier or 'flat daily'} ({local:%A %Y-%m-%d})")
            folder = target_dir_for(self.root, r, local, "h", "d").parent
            lines.append(f"- Current backup folder: {folder}/")
        lines.append("- Backups to retain:")
        if r.rolling:
            lines += [
                f"  - Daily: {r.count_for('daily')}",
                f"  - Weekly: {r.weekly}",
                f"  - Monthly: {r.monthly}",
            ]
        else:
            lines.append(f"  - Total: {r.num_backups}")
        zone = str(self.tz)
        if now is not None:
            zone += f" ({now.astimezone(self.tz):%Z %z})"
        lines.append(f"- Time zone: {zone}")
        lines.append("- Schedule:")
        if self.schedule:
            for c in self.schedule:
                nxt = ""
                if now is not None:
                    nxt = f"; next {next_run(c.expression, now, self.tz):%Y-%m-%d %H:%M %Z}"
                note = "" if c.action.kind != ACTION_OTHER else " (not a moodump command)"
                lines.append(f"  - {c.text}  -> {c.action.describe()}{note}{nxt}")
        else:
            lines.append(f"  - every {format_duration(self.backup_period)} (BACKUP_PERIOD)")
        src = {
            "backup.conf": f"from {self.conf_path}",
            "environment": "from DATABASE_SERVICE_NAME/DATABASE_NAME",
            "config.php": f"from the Moodle config.php {self.moodle_config} (MOODLE_CONFIG)",
            "none": "none configured",
        }[self.databases_from]
        lines.append(f"- Databases ({src}):")
        for d in self.databases:
            pw = f"password from {d.password_source}" if d.password_source else "no password"
            user = f"user {d.user or '(none)'}" + (
                f" from {d.user_source}" if d.user_source else ""
            )
            lines.append(
                f"  - {d.spec}  (host {d.host}, port {d.port_or_default}, database "
                f"{d.database}; {user}; {pw}; backups named {d.core}_...)"
            )
        lines.append(f"- Backup folder: {self.backup_dir}")
        lines.append(f"- Lock file: {self.lock_path}")
        ftp = mask_userinfo(self.ftp_url) if masked else self.ftp_url
        lines.append(f"- FTP server: {ftp or nc}")
        hook = self._value_text(_KEY_BY_NAME["webhook_url"], masked)
        lines.append(
            f"- Webhook endpoint: {hook + f' (format {self.notify_format})' if hook else nc}"
        )
        pd = "configured" if self.pgduty_svc_key else nc
        lines.append(f"- PagerDuty: {pd}" + (f" ({self.pgduty_url})" if self.pgduty_url else ""))
        lines.append(f"- Environment Friendly Name: {self.environment_friendly_name or nc}")
        lines.append(f"- Environment Name (Id): {self.environment_name or nc}")
        lines.append("")
        lines.append("All settings (value  [source]):")
        width = max(len(k.env) for k in KEYS if k.name)
        for k in KEYS:
            if k.name is None:
                continue
            value = self._value_text(k, masked)
            source = self.sources.get(k.name, "default")
            lines.append(f"  {k.env:<{width}}  {value if value != '' else '-'}  [{source}]")
        if self.notes:
            lines.append("")
            lines.append("Notes:")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_json(self, masked: bool = True, now: datetime | None = None) -> str:
        return json.dumps(self.to_dict(masked, now), indent=1)
