"""moodump's configuration: one table of keys, the backup.conf reader, and the rendering.

Everything comes from environment variables (the old backup-container's names and
defaults, plus ``MOODUMP_*``) and the ``backup.conf`` file (database specs and cron lines).
:data:`KEYS` is the single table: each :class:`Key` names its :class:`Config` attribute,
environment variable, default, parser, whether it is a secret, and a one-line doc; the
docs page ``docs/configuration.md`` is generated from it (``python -m moodump.config
--markdown``).

Rules that apply to every key:

- An empty value counts as unset (the old scripts used ``${VAR:-default}``).
- A secret key (and a few others, e.g. user names that live in Kubernetes secrets) also
  accepts ``<ENV>_FILE``: the first line of that file is the value. Setting both is an error.
- Secrets are kept in :class:`Secret` objects whose ``repr``/``str`` never show the value;
  :meth:`Config.render` and :meth:`Config.to_dict` mask them.

:func:`load_config` is pure (environment mapping and file text in, frozen
:class:`Config` out; the only I/O is reading ``*_FILE`` secrets through an injectable
reader). :func:`load_config_from_environment` is the thin wrapper that reads
``os.environ`` and the BACKUP_CONF file.

backup.conf, as before but fixed:

- ``#`` to the end of a line is a comment; blank lines are ignored.
- ``[type=]host[:port]/database`` is a database (host names may contain dots, e.g.
  ``mysql-0.mysql/moodle``; the old parser silently took those for cron lines). Untyped
  lines and ``mariadb=``/``mysql=`` lines are ours; ``postgres=``, ``mongo=``, ``mssql=``
  lines are skipped with a note (one ConfigMap can feed several containers).
- ``m h dom mon dow user command`` (or ``@daily user command``) is a schedule line.
- Anything else is a :class:`~moodump.errors.ConfigError` naming the file, the line
  number and the fix.
- Without database lines the database is ``DATABASE_SERVICE_NAME[:port]/DATABASE_NAME``.
- Credentials per database: ``<HOST>_USER`` / ``<HOST>_PASSWORD`` (HOST upper-cased,
  ``-`` and ``.`` turned into ``_``), else DATABASE_USER / DATABASE_PASSWORD.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moodump import sizes
from moodump.errors import ConfigError
from moodump.naming import core_name, target_dir_for, tier_for
from moodump.retention import RetentionPolicy
from moodump.schedule import (
    ACTION_OTHER,
    CronLine,
    ScheduleError,
    format_duration,
    next_run,
    parse_backup_period,
    parse_cron_line,
    parse_duration,
)

DEFAULT_PORT = 3306
LOCK_NAME = ".moodump.lock"

# --------------------------------------------------------------------------- secrets


class Secret:
    """A secret string that never shows itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: only for handing to a driver, a server or an HTTP client."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    def __str__(self) -> str:
        return "****"

    def __format__(self, spec: str) -> str:
        return "****"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


# --------------------------------------------------------------------------- parsers


def parse_str(value: str) -> str:
    return value.strip()


def parse_int(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError("not a whole number") from None


def parse_nonneg_int(value: str) -> int:
    n = parse_int(value)
    if n < 0:
        raise ValueError("must be 0 or more")
    return n


def parse_pos_int(value: str) -> int:
    n = parse_int(value)
    if n < 1:
        raise ValueError("must be 1 or more")
    return n


def parse_optional_int(value: str) -> int | None:
    return parse_int(value) if value.strip() else None


_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError("not a boolean (use true or false)")


def parse_size(value: str) -> int:
    """``0``, ``512``, ``10K``, ``500M``, ``1.5G``, ``2GiB`` -> bytes (K = 1024)."""
    try:
        return sizes.parse_size(value)
    except ConfigError:
        raise ValueError(
            "not a size (use bytes or a number with K, M, G or T, e.g. 500M)"
        ) from None


def parse_percent(value: str) -> float:
    try:
        p = float(value.strip().rstrip("%"))
    except ValueError:
        raise ValueError("not a percentage") from None
    if not 0 <= p <= 100:
        raise ValueError("must be between 0 and 100")
    return p


def parse_factor(value: str) -> float:
    try:
        f = float(value.strip())
    except ValueError:
        raise ValueError("not a number") from None
    if f < 0:
        raise ValueError("must be 0 or more")
    return f


def parse_timedelta(value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def parse_period(value: str) -> timedelta:
    try:
        return parse_backup_period(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def parse_tz(value: str) -> ZoneInfo:
    """A zone name (``PST8PDT``, ``America/Vancouver``, ``:UTC``) -> ZoneInfo."""
    name = value.strip().lstrip(":")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "not a known time zone name (use a tz database name such as America/Vancouver, "
            "PST8PDT or UTC)"
        ) from None


def parse_secret(value: str) -> Secret:
    return Secret(value)


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting one of ``allowed`` (case-insensitive, returned lower-case)."""

    def parse(value: str) -> str:
        v = value.strip().lower()
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v

    parse.__doc__ = " | ".join(allowed)
    return parse


def parse_log_level(value: str) -> str:
    v = value.strip().lower()
    v = {"warn": "warning", "err": "error"}.get(v, v)
    if v not in ("debug", "info", "warning", "error"):
        raise ValueError("must be one of debug, info, warning, error")
    return v


# --------------------------------------------------------------------------- the table

GROUP_DATABASES = "Databases and credentials"
GROUP_LAYOUT = "Layout and retention"
GROUP_SCHEDULE = "Schedule"
GROUP_DUMP = "Dump and verification"
GROUP_CHECKS = "Checks"
GROUP_NOTIFY = "Notifications"
GROUP_FTP = "Off-site copy (FTPS)"
GROUP_OPS = "Logging and locking"
GROUP_IGNORED = "Recognised but not used"
GROUPS = (
    GROUP_DATABASES,
    GROUP_LAYOUT,
    GROUP_SCHEDULE,
    GROUP_DUMP,
    GROUP_CHECKS,
    GROUP_NOTIFY,
    GROUP_FTP,
    GROUP_OPS,
    GROUP_IGNORED,
)

ORIGIN_OLD = "backup-container"
ORIGIN_NEW = "moodump"


@dataclass(frozen=True)
class Key:
    """One configuration key.

    ``name`` is the :class:`Config` attribute (None for a recognised-but-unused variable,
    which only produces a note when set); ``default`` is the raw text fed to ``parse``
    when the variable is unset or empty; ``aliases`` are older names also read (they win
    over ``env`` when ``aliases_win``, as ROOT_BACKUP_DIR did); ``file_ok`` allows
    ``<ENV>_FILE`` (always on for secrets); ``default_doc`` replaces the default in docs.
    """

    name: str | None
    env: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    group: str
    origin: str = ORIGIN_OLD
    secret: bool = False
    file_ok: bool = False
    aliases: tuple[str, ...] = ()
    aliases_win: bool = False
    default_doc: str | None = None
    ignored_note: str = ""

    @property
    def accepts_file(self) -> bool:
        return self.secret or self.file_ok

    @property
    def env_names(self) -> tuple[str, ...]:
        """Every environment name this key reads, in precedence order (no _FILE)."""
        return (*self.aliases, self.env) if self.aliases_win else (self.env, *self.aliases)


KEYS: tuple[Key, ...] = (
    # ----------------------------------------------------------------- databases
    Key(
        "backup_conf", "BACKUP_CONF", "backup.conf", parse_str,
        "Path of backup.conf (database lines and cron lines); relative to the working "
        "directory (/ in the container).", GROUP_DATABASES,
    ),
    Key(
        "database_service_name", "DATABASE_SERVICE_NAME", "", parse_str,
        "Database host (optionally host:port), used only when backup.conf has no "
        "database lines. The old default 'postgresql' named a PostgreSQL service, so "
        "moodump has none.", GROUP_DATABASES, default_doc="(none; old: postgresql)",
    ),
    Key(
        "database_name", "DATABASE_NAME", "", parse_str,
        "Database name for the DATABASE_SERVICE_NAME fallback. The old scripts read "
        "POSTGRESQL_DATABASE (default my_postgres_db); it is still read, after "
        "MYSQL_DATABASE.", GROUP_DATABASES, aliases=("MYSQL_DATABASE", "POSTGRESQL_DATABASE"),
        default_doc="(none; old: my_postgres_db)",
    ),
    Key(
        "database_user", "DATABASE_USER", "", parse_str,
        "Account used when no <HOST>_USER is set for a database's host.", GROUP_DATABASES,
        file_ok=True,
    ),
    Key(
        "database_password", "DATABASE_PASSWORD", "", parse_secret,
        "Password used when no <HOST>_PASSWORD is set for a database's host.",
        GROUP_DATABASES, secret=True,
    ),
    Key(
        "database_server_timeout", "DATABASE_SERVER_TIMEOUT", "120", parse_pos_int,
        "Seconds to wait for the local verification server to start.", GROUP_DATABASES,
    ),
    Key(
        "mysql_defaults_file", "MYSQL_DEFAULTS_FILE", "", parse_str,
        "MySQL option file ([client] section) read for connection settings when set. "
        "The old image used /etc/my.cnf only to stop its verification server.",
        GROUP_DATABASES, default_doc="(none; old: /etc/my.cnf)",
    ),
    # ----------------------------------------------------------------- layout
    Key(
        "backup_dir", "BACKUP_DIR", "/backups/", parse_str,
        "Root folder of the backups. ROOT_BACKUP_DIR, when set, wins (as before).",
        GROUP_LAYOUT, aliases=("ROOT_BACKUP_DIR",), aliases_win=True,
    ),
    Key(
        "backup_strategy", "BACKUP_STRATEGY", "rolling", choice("rolling", "daily"),
        "rolling: daily/weekly/monthly folders; daily: one dated folder per day "
        "(WEEKLY_BACKUPS < 0 also selects daily).", GROUP_LAYOUT,
    ),
    Key(
        "num_backups", "NUM_BACKUPS", "31", parse_int,
        "Backups kept per database with the daily strategy.", GROUP_LAYOUT,
    ),
    Key(
        "daily_backups", "DAILY_BACKUPS", "6", parse_int,
        "Backups kept per database in daily/ (rolling). Forced to 1 when all three "
        "counts are 0.", GROUP_LAYOUT,
    ),
    Key(
        "weekly_backups", "WEEKLY_BACKUPS", "4", parse_int,
        "Backups kept per database in weekly/ (rolling; Sunday backups). A negative "
        "value selects the daily strategy.", GROUP_LAYOUT,
    ),
    Key(
        "monthly_backups", "MONTHLY_BACKUPS", "1", parse_int,
        "Backups kept per database in monthly/ (rolling; last day of the month).",
        GROUP_LAYOUT,
    ),
    # ----------------------------------------------------------------- schedule
    Key(
        "backup_period", "BACKUP_PERIOD", "1d", parse_period,
        "Legacy mode (no cron lines in backup.conf): time between runs, as for sleep "
        "(3600, 30m, 12h, 1d).", GROUP_SCHEDULE,
    ),
    Key(
        "tz", "TZ", "", parse_tz,
        "Time zone of folder names, backup names and cron lines. The container image "
        "sets PST8PDT, as the old one did.", GROUP_SCHEDULE,
        default_doc="(system zone; image: PST8PDT)",
    ),
    # ----------------------------------------------------------------- dump
    Key(
        "threads", "MOODUMP_THREADS", "4", parse_pos_int,
        "Parallel connections used to dump and restore.", GROUP_DUMP, ORIGIN_NEW,
    ),
    Key(
        "codec", "MOODUMP_CODEC", "gzip", choice("gzip", "zstd"),
        "Compression of the data files.", GROUP_DUMP, ORIGIN_NEW,
    ),
    Key(
        "level", "MOODUMP_LEVEL", "", parse_optional_int,
        "Compression level (codec default when empty).", GROUP_DUMP, ORIGIN_NEW,
        default_doc="(codec default)",
    ),
    Key(
        "verify_after_backup", "MOODUMP_VERIFY_AFTER_BACKUP", "offline",
        choice("none", "offline", "local"),
        "Verify each new backup: none, offline (checksums of every file) or local "
        "(restore into a throwaway local server and compare).", GROUP_DUMP, ORIGIN_NEW,
    ),
    # ----------------------------------------------------------------- checks
    Key(
        "min_size", "MOODUMP_MIN_SIZE", "0", parse_size,
        "A new backup smaller than this fails (0 = off). Bytes or K/M/G.", GROUP_CHECKS,
        ORIGIN_NEW,
    ),
    Key(
        "max_shrink_percent", "MOODUMP_MAX_SHRINK_PERCENT", "50", parse_percent,
        "Warn or fail when a backup is more than this many percent smaller than the "
        "previous good backup of the same database (0 = off).", GROUP_CHECKS, ORIGIN_NEW,
    ),
    Key(
        "shrink_mode", "MOODUMP_SHRINK_MODE", "warn", choice("warn", "fail"),
        "What a shrink beyond MOODUMP_MAX_SHRINK_PERCENT does.", GROUP_CHECKS, ORIGIN_NEW,
    ),
    Key(
        "max_age", "MOODUMP_MAX_AGE", "26h", parse_timedelta,
        "moodump check: fail when the newest verified backup is older than this.",
        GROUP_CHECKS, ORIGIN_NEW,
    ),
    Key(
        "check_unverified", "MOODUMP_CHECK_UNVERIFIED", "false", parse_bool,
        "moodump check: accept a DONE backup that was not verified.", GROUP_CHECKS, ORIGIN_NEW,
    ),
    Key(
        "min_free_space", "MOODUMP_MIN_FREE_SPACE", "0", parse_size,
        "Do not start a backup with less free space than this on the backup volume.",
        GROUP_CHECKS, ORIGIN_NEW,
    ),
    Key(
        "free_space_factor", "MOODUMP_FREE_SPACE_FACTOR", "1.2", parse_factor,
        "Also require this many times the previous backup's size free (0 = off).",
        GROUP_CHECKS, ORIGIN_NEW,
    ),
    # ----------------------------------------------------------------- notifications
    Key(
        "webhook_url", "WEBHOOK_URL", "", parse_secret,
        "Where notifications are posted (start, success, failure, verification). The "
        "URL usually carries a token, so it is masked.", GROUP_NOTIFY, secret=True,
    ),
    Key(
        "notify_format", "MOODUMP_NOTIFY_FORMAT", "generic",
        choice("generic", "json", "rocketchat", "teams", "teams-legacy", "slack"),
        "Payload of WEBHOOK_URL: generic (the old form fields), json, rocketchat, teams "
        "(Adaptive Card), teams-legacy (MessageCard), slack.",
        GROUP_NOTIFY, ORIGIN_NEW,
    ),
    Key(
        "environment_friendly_name", "ENVIRONMENT_FRIENDLY_NAME", "", parse_str,
        "Human name of the environment in notifications (projectFriendlyName).",
        GROUP_NOTIFY,
    ),
    Key(
        "environment_name", "ENVIRONMENT_NAME", "", parse_str,
        "Namespace / environment id in notifications (projectName).", GROUP_NOTIFY,
    ),
    Key(
        "pgduty_svc_key", "PGDUTY_SVC_KEY", "", parse_secret,
        "PagerDuty service key; errors trigger an incident.", GROUP_NOTIFY, secret=True,
    ),
    Key(
        "pgduty_url", "PGDUTY_URL", "", parse_str,
        "PagerDuty events endpoint; empty means PagerDuty's standard events URL (the "
        "old code had no default and sent nothing).", GROUP_NOTIFY,
    ),
    # ----------------------------------------------------------------- ftp
    Key(
        "ftp_url", "FTP_URL", "", parse_str,
        "FTPS server URL; uploads are on when set. End it with / when it has a path.",
        GROUP_FTP,
    ),
    Key("ftp_user", "FTP_USER", "", parse_str, "FTPS account.", GROUP_FTP, file_ok=True),
    Key(
        "ftp_password", "FTP_PASSWORD", "", parse_secret, "FTPS password.", GROUP_FTP,
        secret=True,
    ),
    Key(
        "ftp_ca_file", "MOODUMP_FTP_CA_FILE", "", parse_str,
        "CA bundle (PEM) that signs the FTPS server's certificate, for a private CA or a "
        "self-signed certificate; empty = the system's trusted CAs.", GROUP_FTP, ORIGIN_NEW,
        default_doc="(system CAs)",
    ),
    Key(
        "ftp_retries", "MOODUMP_FTP_RETRIES", "3", parse_nonneg_int,
        "Upload attempts after the first one fails (size and sha256 are re-checked).",
        GROUP_FTP, ORIGIN_NEW,
    ),
    Key(
        "ftp_prune", "MOODUMP_FTP_PRUNE", "false", parse_bool,
        "Remove from the FTPS server what local retention removes.", GROUP_FTP, ORIGIN_NEW,
    ),
    # ----------------------------------------------------------------- ops
    Key(
        "backup_log_level", "BACKUP_LOG_LEVEL", "info", parse_log_level,
        "debug, info, warning or error (the old scripts only knew debug).", GROUP_OPS,
    ),
    Key(
        "log_format", "MOODUMP_LOG_FORMAT", "text", choice("text", "json"),
        "text (readable lines) or json (one JSON object per line).", GROUP_OPS, ORIGIN_NEW,
    ),
    Key(
        "lock_file", "MOODUMP_LOCK_FILE", "", parse_str,
        "Lock that keeps runs from overlapping.", GROUP_OPS, ORIGIN_NEW,
        default_doc=f"BACKUP_DIR/{LOCK_NAME}",
    ),
    # ----------------------------------------------------------------- ignored
    Key(
        None, "DEFAULT_PORT", "", parse_str, "Port of the fallback database.", GROUP_IGNORED,
        ignored_note="ignored, as by the old scripts: write the port into "
        "DATABASE_SERVICE_NAME (host:port) or backup.conf",
    ),
    Key(
        None, "POSTGRESQL_PORT_NUM", "", parse_str, "PostgreSQL port.", GROUP_IGNORED,
        ignored_note="PostgreSQL only; ignored",
    ),
    Key(
        None, "TABLE_SCHEMA", "", parse_str, "PostgreSQL verification schema.", GROUP_IGNORED,
        ignored_note="PostgreSQL only; ignored",
    ),
    Key(
        None, "MONGODB_AUTHENTICATION_DATABASE", "", parse_str, "MongoDB auth database.",
        GROUP_IGNORED, ignored_note="MongoDB only; ignored",
    ),
    Key(
        None, "S3_ENDPOINT", "", parse_str, "MinIO/S3 upload endpoint.", GROUP_IGNORED,
        ignored_note="moodump does not upload to S3; nothing is uploaded there (use FTP_URL)",
    ),
    Key(None, "S3_USER", "", parse_str, "S3 access key.", GROUP_IGNORED, file_ok=True,
        ignored_note="S3 upload is not supported; ignored"),
    Key(None, "S3_PASSWORD", "", parse_secret, "S3 secret key.", GROUP_IGNORED, secret=True,
        ignored_note="S3 upload is not supported; ignored"),
    Key(None, "S3_BUCKET", "", parse_str, "S3 bucket.", GROUP_IGNORED,
        ignored_note="S3 upload is not supported; ignored"),
    Key(None, "S3_PRUNE_BACKUPS", "", parse_str, "Prune the S3 bucket too.", GROUP_IGNORED,
        ignored_note="S3 upload is not supported; ignored"),
)  # fmt: skip

#: Variables the one-off connection options (dump/restore/verify) read; not part of Config.
CLIENT_ENV: dict[str, str] = {
    "MYSQL_PWD": "Password for --user when no --password-file or option file gives one.",
    "MYSQL_HOST": "Default --host.",
    "MYSQL_TCP_PORT": "Default --port.",
}

_KEY_BY_NAME = {k.name: k for k in KEYS if k.name}
_HOST_CRED_RE = re.compile(r"^[A-Z0-9_]+_(USER|PASSWORD)(_FILE)?$")


def _all_env_names() -> frozenset[str]:
    names: set[str] = set(CLIENT_ENV)
    for k in KEYS:
        for env in k.env_names:
            names.add(env)
            if k.accepts_file:
                names.add(f"{env}_FILE")
    return frozenset(names)


_KNOWN_NAMES = _all_env_names()


def known_env_names() -> set[str]:
    """Every fixed environment name moodump reads, with the ``_FILE`` variants.

    Per-host credentials (``<HOST>_USER`` ...) are a pattern, see :func:`is_known_env_name`.
    """
    return set(_KNOWN_NAMES)


def is_known_env_name(name: str) -> bool:
    """True for a fixed name (:func:`known_env_names`) or a per-host credential variable."""
    return name in _KNOWN_NAMES or bool(_HOST_CRED_RE.match(name))


def host_env_prefix(host: str) -> str:
    """``mysql-0.mysql`` -> ``MYSQL_0_MYSQL`` (upper case; ``-`` and ``.`` become ``_``)."""
    return re.sub(r"[^A-Z0-9_]", "_", host.upper())


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

    @property
    def core(self) -> str:
        """``<host>-<database>``: the key of this database's backups."""
        return core_name(self.host, self.database)

    @property
    def port_or_default(self) -> int:
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
        return d


def _mask(secret: Secret | None) -> str | None:
    return "****" if secret else None


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None


def mask_url(url: str) -> str:
    """Keep scheme and host of a URL, hide any password and the path (tokens live there)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{parts.username}:****@{host}" if parts.password else f"{parts.username}@{host}"
    path = "/****" if parts.path.strip("/") or parts.query else parts.path
    return urlunsplit((parts.scheme, host, path, "", ""))


def mask_userinfo(url: str) -> str:
    """Hide only the password in a URL's userinfo (FTP paths are not secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    if not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
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
    backup_dir: str
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
    verify_after_backup: str
    min_size: int
    max_shrink_percent: float
    shrink_mode: str
    max_age: timedelta
    check_unverified: bool
    min_free_space: int
    free_space_factor: float
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
    backup_log_level: str
    log_format: str
    lock_file: str
    # -- derived from backup.conf / the fallback
    databases: tuple[DatabaseSpec, ...] = ()
    schedule: tuple[CronLine, ...] = ()
    conf_path: str = ""
    conf_found: bool = False
    databases_from: str = "none"  # "backup.conf" | "environment" | "none"
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    notes: tuple[str, ...] = ()
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

    def secret_values(self) -> list[str]:
        """Every secret's real value (for log redaction, e.g. ``logs.register_secret``)."""
        out = [
            s.reveal()
            for s in (
                self.database_password,
                self.webhook_url,
                self.pgduty_svc_key,
                self.ftp_password,
            )
            if s
        ]
        out += [d.password.reveal() for d in self.databases if d.password]
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
        if key.env == "FTP_URL" and masked:
            return mask_userinfo(str(value))
        if isinstance(value, timedelta):
            return format_duration(value)
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


# --------------------------------------------------------------------------- backup.conf

_SPEC_RE = re.compile(
    r"^(?:(?P<type>[A-Za-z0-9_-]+)=)?"
    r"(?P<host>[A-Za-z0-9_][A-Za-z0-9._-]*)"
    r"(?::(?P<port>[0-9]*))?"
    r"/(?P<db>[A-Za-z0-9_$-]+)"
    r"(?:\?(?P<query>\S*))?$"
)
OUR_TYPES = ("mariadb", "mysql")
OTHER_TYPES = ("postgres", "mongo", "mssql", "null")

_CONF_HINT = (
    "a database line is '[type=]host[:port]/database' without spaces (e.g. mysql-0.mysql/moodle); "
    "a schedule line is 'minute hour day-of-month month day-of-week user command' "
    "(e.g. '0 1 * * * default ./backup.sh -s'); '#' starts a comment"
)


@dataclass(frozen=True)
class _RawSpec:
    line: int
    spec: str
    db_type: str
    host: str
    port: int | None
    database: str


@dataclass(frozen=True)
class ConfFile:
    """What backup.conf contains, parsed (credentials not yet resolved)."""

    specs: tuple[_RawSpec, ...]
    schedule: tuple[CronLine, ...]
    notes: tuple[str, ...]


def _parse_port(text: str | None, where: str, fix: str) -> int | None:
    if not text:
        return None
    port = int(text)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port {port} is out of range", hint=fix)
    return port


def parse_backup_conf(text: str, path: str = "backup.conf") -> ConfFile:
    """Parse backup.conf text (see the module docstring for the grammar)."""
    specs: list[_RawSpec] = []
    cron: list[CronLine] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        where = f"{path}:{number}"
        if not any(ch.isspace() for ch in content):
            m = _SPEC_RE.match(content)
            if not m:
                raise ConfigError(
                    f"{where}: {content!r} is neither a database line nor a schedule line",
                    hint=_CONF_HINT,
                )
            db_type = (m.group("type") or "").lower()
            if db_type and db_type not in OUR_TYPES:
                if db_type in OTHER_TYPES:
                    notes.append(f"{where}: {content} is a {db_type} database: skipped")
                    continue
                raise ConfigError(
                    f"{where}: unknown database type {db_type!r} in {content!r}",
                    hint="use mariadb= (or no type) for MariaDB/MySQL; postgres=, mongo= and "
                    "mssql= lines are skipped",
                )
            if m.group("query"):
                notes.append(f"{where}: '?{m.group('query')}' is PostgreSQL-only: ignored")
            port = _parse_port(m.group("port"), where, "use a port between 1 and 65535")
            spec = _RawSpec(number, content, db_type, m.group("host"), port, m.group("db"))
            core = core_name(spec.host, spec.database)
            if core in seen:
                raise ConfigError(
                    f"{where}: {content!r} backs up the same database as line {seen[core]} "
                    f"(both would be named {core}_...)",
                    hint="list each database once",
                )
            seen[core] = number
            specs.append(spec)
            continue
        try:
            cron.append(parse_cron_line(content, number))
        except ScheduleError as exc:
            raise ConfigError(f"{where}: {exc}: {content!r}", hint=_CONF_HINT) from None
    for c in cron:
        if c.action.kind == ACTION_OTHER:
            notes.append(
                f"{path}:{c.line}: '{c.command}' is not a backup.sh or moodump command; "
                "moodump run does not execute it"
            )
    return ConfFile(tuple(specs), tuple(cron), tuple(notes))


# --------------------------------------------------------------------------- loading


def _read_first_line(path: str) -> str:
    text = Path(path).read_text(encoding="utf-8")
    return text.splitlines()[0] if text else ""


ReadFile = Callable[[str], str]


class _Env:
    """Environment lookups with the empty-is-unset and ``_FILE`` rules; records sources."""

    def __init__(self, env: Mapping[str, str], read_file: ReadFile) -> None:
        self.env = env
        self.read_file = read_file

    def get(self, name: str, *, file_ok: bool) -> tuple[str, str] | None:
        """(value, source) of ``name`` or ``name_FILE``; None when neither is set."""
        direct = self.env.get(name, "")
        file_name = f"{name}_FILE"
        path = self.env.get(file_name, "") if file_ok else ""
        if direct and path:
            raise ConfigError(
                f"both {name} and {file_name} are set",
                hint=f"set only one of them (unset {name} to use the file)",
            )
        if path:
            try:
                value = self.read_file(path)
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {file_name}={path}: {exc.strerror or exc}",
                    hint="check that the secret is mounted at that path and readable",
                ) from None
            return value, f"file {path} ({file_name})"
        if direct:
            return direct, f"env {name}"
        return None


def _load_key(k: Key, env: _Env) -> tuple[Any, str]:
    found = None
    for name in k.env_names:
        found = env.get(name, file_ok=k.accepts_file)
        if found is not None:
            break
    raw, source = found if found is not None else (k.default, "default")
    if raw == "" and k.secret:
        return None, source
    try:
        return k.parse(raw), source
    except ValueError as exc:
        shown = "(secret)" if k.secret else repr(raw)
        where = source if source != "default" else f"default of {k.env}"
        raise ConfigError(f"{k.env}={shown} ({where}): {exc}", hint=k.doc) from None


def _credentials(
    host: str, env: _Env, fallback_user: tuple[str, str], fallback_pw: tuple[Secret | None, str]
) -> tuple[str, str, Secret | None, str]:
    prefix = host_env_prefix(host)
    user = env.get(f"{prefix}_USER", file_ok=True)
    pw = env.get(f"{prefix}_PASSWORD", file_ok=True)
    u, us = (user[0], user[1].removeprefix("env ")) if user else fallback_user
    if pw:
        p: Secret | None = Secret(pw[0])
        ps = pw[1].removeprefix("env ")
    else:
        p, ps = fallback_pw
    return u, us, p, ps


def load_config(
    env: Mapping[str, str],
    conf_text: str | None,
    conf_path: str,
    *,
    local_zone: str = "UTC",
    read_file: ReadFile = _read_first_line,
) -> Config:
    """Build the effective :class:`Config` from an environment and backup.conf text.

    :param env: environment variables (``os.environ`` or a test dict).
    :param conf_text: backup.conf content, or None when the file does not exist.
    :param conf_path: the file's path, for messages and ``moodump config``.
    :param local_zone: time zone used when TZ is unset (the system zone).
    :param read_file: reads a ``*_FILE`` secret's first line (injectable for tests).
    :raises ConfigError: a bad value, a bad backup.conf line (file:line and the fix), or
        both ``X`` and ``X_FILE`` set.
    """
    e = _Env(env, read_file)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []
    for k in KEYS:
        if k.name is None:
            if any(env.get(n) or env.get(f"{n}_FILE") for n in k.env_names):
                notes.append(f"{k.env} is set: {k.ignored_note}")
            continue
        if k.name == "tz" and not env.get("TZ"):
            # Unset TZ means the system zone, as for every other program.
            try:
                values["tz"], sources["tz"] = parse_tz(local_zone), f"system zone {local_zone}"
            except ValueError:
                values["tz"], sources["tz"] = ZoneInfo("UTC"), "UTC (system zone unknown)"
            continue
        value, source = _load_key(k, e)
        values[k.name] = value
        sources[k.name] = source
    for alias_key in ("backup_dir",):
        k = _KEY_BY_NAME[alias_key]
        set_names = [n for n in k.env_names if env.get(n)]
        if len(set_names) > 1 and len({env[n] for n in set_names}) > 1:
            notes.append(f"{' and '.join(set_names)} differ: {set_names[0]} wins, as before")

    retention = RetentionPolicy.resolve(
        values["backup_strategy"],
        num_backups=values["num_backups"],
        daily=values["daily_backups"],
        weekly=values["weekly_backups"],
        monthly=values["monthly_backups"],
    )
    if retention.strategy != values["backup_strategy"]:
        notes.append(
            f"WEEKLY_BACKUPS={values['weekly_backups']} is negative: the daily strategy is "
            f"used (NUM_BACKUPS={retention.num_backups})"
        )

    conf = parse_backup_conf(conf_text, conf_path) if conf_text is not None else None
    if conf is not None:
        notes.extend(conf.notes)
    fallback_user = (values["database_user"], _short(sources["database_user"]))
    fallback_pw = (values["database_password"], _short(sources["database_password"]))
    databases: list[DatabaseSpec] = []
    raw_specs = list(conf.specs) if conf else []
    databases_from = "backup.conf" if raw_specs else "none"
    if not raw_specs:
        raw_specs = _fallback_spec(values, sources)
        if raw_specs:
            databases_from = "environment"
    for s in raw_specs:
        user, user_src, password, pw_src = _credentials(s.host, e, fallback_user, fallback_pw)
        databases.append(
            DatabaseSpec(
                host=s.host,
                database=s.database,
                port=s.port,
                db_type=s.db_type,
                spec=s.spec,
                line=s.line,
                user=user,
                password=password,
                user_source=user_src,
                password_source=pw_src if password else "",
            )
        )
    for d in databases:
        if not d.user:
            notes.append(
                f"{d.spec}: no account configured (set {host_env_prefix(d.host)}_USER or "
                "DATABASE_USER)"
            )
    for name in sorted(env):
        if name.startswith("MOODUMP_") and not is_known_env_name(name):
            near = difflib.get_close_matches(name, sorted(_KNOWN_NAMES), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            notes.append(f"{name} is not a moodump setting{hint}")
    return Config(
        **values,
        databases=tuple(databases),
        schedule=conf.schedule if conf else (),
        conf_path=conf_path,
        conf_found=conf_text is not None,
        databases_from=databases_from,
        retention=retention,
        notes=tuple(notes),
        sources=sources,
    )


def _short(source: str) -> str:
    """``env DATABASE_USER`` -> ``DATABASE_USER``; ``default`` -> ``""``."""
    if source == "default":
        return ""
    return source.removeprefix("env ")


def _fallback_spec(values: Mapping[str, Any], sources: Mapping[str, str]) -> list[_RawSpec]:
    service = str(values["database_service_name"])
    name = str(values["database_name"])
    if not service or not name:
        return []
    fix = "set DATABASE_SERVICE_NAME to host or host:port (e.g. mysql-0.mysql:3306)"
    m = re.match(r"^(?P<host>[A-Za-z0-9_][A-Za-z0-9._-]*)(?::(?P<port>[0-9]*))?$", service)
    if not m:
        raise ConfigError(f"DATABASE_SERVICE_NAME={service!r} is not a host name", hint=fix)
    if not re.match(r"^[A-Za-z0-9_$-]+$", name):
        raise ConfigError(
            f"{_short(sources['database_name'])}={name!r} is not a database name",
            hint="use the plain database name, e.g. moodle",
        )
    port = _parse_port(m.group("port"), "DATABASE_SERVICE_NAME", fix)
    spec = f"{service}/{name}"
    return [_RawSpec(0, spec, "", m.group("host"), port, name)]


def system_zone_name() -> str:
    """The system time zone's name (``/etc/timezone`` or the ``/etc/localtime`` link)."""
    try:
        name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def load_config_from_environment(
    *, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """:func:`load_config` over ``os.environ`` and the BACKUP_CONF file.

    ``overrides`` replace environment variables (the CLI's ``--backup-dir`` passes
    ``{"BACKUP_DIR": ...}``; ROOT_BACKUP_DIR is then ignored). A missing backup.conf is
    fine at the default path (the environment fallback applies, as before), but an
    explicitly set BACKUP_CONF that does not exist is an error.
    """
    env = dict(os.environ if environ is None else environ)
    for name, value in (overrides or {}).items():
        env[name] = value
        if name == "BACKUP_DIR":
            env.pop("ROOT_BACKUP_DIR", None)
    conf_path = env.get("BACKUP_CONF") or _KEY_BY_NAME["backup_conf"].default
    try:
        conf_text: str | None = Path(conf_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if env.get("BACKUP_CONF"):
            raise ConfigError(
                f"BACKUP_CONF={conf_path} does not exist",
                hint="mount the ConfigMap at that path, or point BACKUP_CONF at the file",
            ) from None
        conf_text = None
    except OSError as exc:
        raise ConfigError(
            f"cannot read BACKUP_CONF={conf_path}: {exc.strerror}",
            hint="check the file's permissions",
        ) from None
    return load_config(env, conf_text, conf_path, local_zone=system_zone_name())


# --------------------------------------------------------------------------- docs

_DOC_HEAD = """\
# Configuration

<!-- Generated from moodump/config.py (KEYS) by `python -m moodump.config --markdown`.
     Do not edit by hand: tests/test_config.py fails when this file is out of date. -->

moodump reads the same environment variables and the same `backup.conf` as the old
backup-container, with the same defaults unless a row says otherwise, plus its own
`MOODUMP_*` settings. `moodump config` prints the effective configuration (secrets
masked) and exits with status 2 when something is wrong, naming the variable or the
`backup.conf` line and the fix.

General rules:

- An empty variable counts as unset (the old scripts used `${VAR:-default}`).
- Variables marked *file* also accept `<NAME>_FILE`: the first line of that file is the
  value (for Kubernetes secrets mounted as files). Setting both is an error.
- Secrets are never printed, logged or put on a command line.
- Per-database credentials: `<HOST>_USER` and `<HOST>_PASSWORD` (also `_FILE`), where
  HOST is the spec's host upper-cased with `-` and `.` turned into `_`
  (`mysql-0.mysql` -> `MYSQL_0_MYSQL_USER`). Unset, they fall back to `DATABASE_USER` and
  `DATABASE_PASSWORD`. (The old scripts only turned `-` into `_`; a host with a dot could
  not be used at all.)

## backup.conf

```
# comments start with '#'; blank lines are ignored
mysql-0.mysql/moodle               # [type=]host[:port]/database
mariadb=db.example.org:3307/moodle_archive
postgres=patroni/app               # other types are skipped (one ConfigMap, several containers)
0 1 * * * default ./backup.sh -s          # m h dom mon dow user command: backup
0 4 * * * default ./backup.sh -s -v all   # verify every database
30 5 * * * default moodump check --max-age 26h
```

- Host names may contain dots (the old parser took such lines for cron lines).
- `mariadb=` and `mysql=` lines and untyped lines are backed up, in file order.
- A line that is neither a database nor a valid schedule line is an error with
  `file:line`.
- Without database lines, `DATABASE_SERVICE_NAME[:port]/DATABASE_NAME` is used.
- With schedule lines moodump runs them in-process in `TZ` (cron mode); without them it
  runs every `BACKUP_PERIOD` (legacy mode). `moodump run --once` runs one cycle.
"""


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown() -> str:
    """docs/configuration.md, generated from :data:`KEYS`."""
    out = [_DOC_HEAD]
    for group in GROUPS:
        keys = [k for k in KEYS if k.group == group]
        if not keys:
            continue
        out.append(f"\n## {group}\n")
        if group == GROUP_IGNORED:
            out.append(
                "Set in old deployments but not used by moodump; `moodump config` prints a "
                "note when one is set.\n"
            )
            out.append("| Variable | Meaning (old) | What moodump does |")
            out.append("|---|---|---|")
            for k in keys:
                out.append(f"| `{k.env}` | {_md_escape(k.doc)} | {_md_escape(k.ignored_note)} |")
            continue
        out.append("| Variable | Default | Meaning |")
        out.append("|---|---|---|")
        for k in keys:
            default = k.default_doc if k.default_doc is not None else (k.default or "(none)")
            default = f"`{default}`" if k.default_doc is None and k.default else default
            names = f"`{k.env}`"
            if k.aliases:
                names += " (also " + ", ".join(f"`{a}`" for a in k.aliases) + ")"
            flags = []
            if k.secret:
                flags.append("secret")
            if k.accepts_file:
                flags.append("file")
            if k.origin == ORIGIN_NEW:
                flags.append("new")
            tag = f" *({', '.join(flags)})*" if flags else ""
            out.append(f"| {names}{tag} | {_md_escape(default)} | {_md_escape(k.doc)} |")
    out.append("\n## Connection variables of the one-off commands\n")
    out.append("`moodump dump`, `restore` and `verify` take connection options; these fill gaps:\n")
    out.append("| Variable | Meaning |")
    out.append("|---|---|")
    for name, doc in CLIENT_ENV.items():
        out.append(f"| `{name}` | {doc} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m moodump.config --markdown [--output PATH]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m moodump.config")
    parser.add_argument("--markdown", action="store_true", help="print docs/configuration.md")
    parser.add_argument("--output", help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    text = render_markdown()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
