"""The key table: every setting moodump reads, its variable, default, parser and doc.

The table itself is data (:data:`KEYS`); :class:`~moodump.config.model.Config` has one
attribute per key, and ``docs/configuration.md`` is generated from it.
"""

from __future__ import annotations

import re

from moodump.config.keyspec import (
    GROUP_CHECKS,
    GROUP_CRYPT,
    GROUP_DATABASES,
    GROUP_DUMP,
    GROUP_FTP,
    GROUP_IGNORED,
    GROUP_LAYOUT,
    GROUP_MOODLE,
    GROUP_NOTIFY,
    GROUP_OPS,
    GROUP_S3,
    GROUP_SCHEDULE,
    ORIGIN_NEW,
    Key,
)
from moodump.config.values import (
    LOCK_NAME,
    STATE_NAME,
    choice,
    parse_auto_bool,
    parse_bool,
    parse_factor,
    parse_file_mode,
    parse_int,
    parse_interval,
    parse_log_level,
    parse_nonneg_int,
    parse_nonneg_seconds,
    parse_optional_int,
    parse_optional_nonneg_int,
    parse_optional_port,
    parse_percent,
    parse_period,
    parse_pos_seconds,
    parse_secret,
    parse_size,
    parse_ssl_mode,
    parse_str,
    parse_table_prefix,
    parse_threads,
    parse_timedelta,
    parse_tz,
)

# --------------------------------------------------------------------------- the table

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
        "database_server_timeout", "DATABASE_SERVER_TIMEOUT", "120", parse_pos_seconds,
        "Seconds to wait for the local verification server to start.", GROUP_DATABASES,
    ),
    Key(
        "mysql_defaults_file", "MYSQL_DEFAULTS_FILE", "", parse_str,
        "MySQL option file ([client] section) read for connection settings when set. "
        "The old image used /etc/my.cnf only to stop its verification server.",
        GROUP_DATABASES, default_doc="(none; old: /etc/my.cnf)",
    ),
    Key(
        "ssl_mode", "MOODUMP_SSL_MODE", "PREFERRED", parse_ssl_mode,
        "TLS to the database servers: DISABLED, PREFERRED (TLS when the server offers "
        "it), REQUIRED (fail without TLS), VERIFY_CA (and check the certificate's CA), "
        "VERIFY_IDENTITY (and its host name). <HOST>_SSL_MODE sets it per host; "
        "docs/tls.md.", GROUP_DATABASES, ORIGIN_NEW,
    ),
    Key(
        "ssl_ca", "MOODUMP_SSL_CA", "", parse_str,
        "CA certificate(s) (PEM) that sign the database servers' certificates; empty = "
        "the system's CA bundle for VERIFY_*. <HOST>_SSL_CA per host.", GROUP_DATABASES,
        ORIGIN_NEW, default_doc="(system CAs)",
    ),
    Key(
        "ssl_cert", "MOODUMP_SSL_CERT", "", parse_str,
        "Client certificate (PEM) for servers that ask for one (with MOODUMP_SSL_KEY). "
        "<HOST>_SSL_CERT per host.", GROUP_DATABASES, ORIGIN_NEW,
    ),
    Key(
        "ssl_key", "MOODUMP_SSL_KEY", "", parse_str,
        "Path of the client certificate's private key (PEM; the path, not the key, so "
        "there is no _FILE form). <HOST>_SSL_KEY per host.", GROUP_DATABASES, ORIGIN_NEW,
    ),
    Key(
        "pg_bindir", "MOODUMP_PG_BINDIR", "", parse_str,
        "Directory of the PostgreSQL client tools (pg_dump, psql) for postgres= databases; "
        "empty = /usr/lib/postgresql/<newest>/bin, then PATH. They must be at least the "
        "server's major version (docs/postgresql.md).", GROUP_DATABASES, ORIGIN_NEW,
        default_doc="(newest installed)",
    ),
    # ----------------------------------------------------------------- layout
    Key(
        "backup_dir", "BACKUP_DIR", "/backups/", parse_str,
        "Root folder of the backups. ROOT_BACKUP_DIR, when set, wins (as before).",
        GROUP_LAYOUT, aliases=("ROOT_BACKUP_DIR",), aliases_win=True,
    ),
    Key(
        "binlog_dir", "MOODUMP_BINLOG_DIR", "", parse_str,
        "Binary log archive for point-in-time recovery (moodump binlog pull --output). "
        "When set, the scheduled verification also verifies the archive and its coverage "
        "from the oldest kept backup, and prune removes archived logs older than that "
        "backup's snapshot (docs/pitr.md).", GROUP_LAYOUT, ORIGIN_NEW,
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
        "(3600, 30m, 12h, 1d); at least 1s.", GROUP_SCHEDULE,
    ),
    Key(
        "tz", "TZ", "", parse_tz,
        "Time zone of folder names, backup names and cron lines. The container image "
        "sets PST8PDT, as the old one did. A tz database name, a path into a zoneinfo "
        "directory, or a POSIX whole-hour offset without daylight saving (UTC0, EST5) as "
        "glibc took them.", GROUP_SCHEDULE,
        default_doc="(system zone; image: PST8PDT)",
    ),
    # ----------------------------------------------------------------- dump
    Key(
        "threads", "MOODUMP_THREADS", "2", parse_threads,
        "Parallel connections used to dump, restore and verify (the default of every "
        "command's --threads too).", GROUP_DUMP, ORIGIN_NEW,
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
    Key(
        "direct_fetch", "MOODUMP_DIRECT_FETCH", "true", parse_bool,
        "Read rows with the C accelerator's direct fetch path (no Python object per row). "
        "Off: the accelerator formats rows fetched by the connector (same bytes, slower); "
        "for diagnosis.", GROUP_DUMP, ORIGIN_NEW,
    ),
    Key(
        "server_format", "MOODUMP_SERVER_FORMAT", "false", parse_bool,
        "Let the server format each row instead of the C accelerator (same bytes, more "
        "server CPU); the path taken when the accelerator is missing. For diagnosis.",
        GROUP_DUMP, ORIGIN_NEW,
    ),
    Key(
        "connect_timeout", "MOODUMP_CONNECT_TIMEOUT", "10", parse_pos_seconds,
        "Seconds to wait for a connection to a database server (runs, and the "
        "--connect-timeout default of dump, restore and verify).", GROUP_DUMP, ORIGIN_NEW,
    ),
    Key(
        "read_timeout", "MOODUMP_READ_TIMEOUT", "3600", parse_nonneg_seconds,
        "Fail when a database server sends nothing for this many seconds (a hung server, "
        "a network partition); 0 = wait forever. Runs use it, and dump, restore and "
        "verify take it as their --read-timeout default; keep it above the longest single "
        "statement (a restore's index build on the biggest table).", GROUP_DUMP, ORIGIN_NEW,
    ),
    Key(
        "max_runtime", "MOODUMP_MAX_RUNTIME", "6h", parse_timedelta,
        "moodump run: the longest one database's backup (or verification) may take. "
        "Past it the dump's queries are killed, nothing but a FAILED record is "
        "published, an alert is sent, and the database fails with exit 14.",
        GROUP_DUMP, ORIGIN_NEW,
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
    # ----------------------------------------------------------------- moodle
    Key(
        "moodle_config", "MOODLE_CONFIG", "", parse_str,
        "Path of the site's config.php: its database settings ($CFG->dbhost, dbname, "
        "dbuser, dbpass, dboptions, prefix, dataroot) are read without running PHP and "
        "used where nothing more explicit is set (flags, backup.conf, the environment "
        "win); the --moodle-config default of every command that connects. "
        "docs/moodle.md.", GROUP_MOODLE, ORIGIN_NEW,
    ),
    Key(
        "moodle_prefix", "MOODLE_PREFIX", "mdl_", parse_table_prefix,
        "Table prefix of the Moodle site ($CFG->prefix): the config table read for "
        "upgrades and maintenance, and the Moodle facts recorded in the manifest.",
        GROUP_MOODLE, ORIGIN_NEW, default_doc="config.php's prefix, else mdl_",
    ),
    Key(
        "upgrade_wait", "MOODUMP_UPGRADE_WAIT", "3600", parse_nonneg_seconds,
        "Seconds a backup waits, retrying with backoff, while a Moodle upgrade runs "
        "(upgraderunning in the config table) or the schema keeps changing under the "
        "dump; then it fails with exit 15. 0 = fail at once.", GROUP_MOODLE, ORIGIN_NEW,
    ),
    Key(
        "check_files", "MOODUMP_CHECK_FILES", "off", choice("off", "exists", "hash"),
        "After each backup of a Moodle database, cross-check its dataroot's file store "
        "against the backup's files table (moodump check-files): off, exists (every "
        "content file is there) or hash (and its SHA-1 matches). The result goes to "
        "files-check.json in the backup and to the run report; a missing or corrupt file "
        "is a warning.", GROUP_MOODLE, ORIGIN_NEW,
    ),
    Key(
        "check_files_sample", "MOODUMP_CHECK_FILES_SAMPLE", "0", parse_nonneg_int,
        "With MOODUMP_CHECK_FILES=exists, also check the SHA-1 of this many content files "
        "picked at random (0 = none).", GROUP_MOODLE, ORIGIN_NEW,
    ),
    Key(
        "moodle_dataroot", "MOODLE_DATAROOT", "", parse_str,
        "Moodle's dataroot (the directory holding filedir/) for MOODUMP_CHECK_FILES; "
        "set, it wins over config.php's $CFG->dataroot (MOODLE_CONFIG).",
        GROUP_MOODLE, ORIGIN_NEW, default_doc="config.php's dataroot",
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
    Key(
        "s3_endpoint", "S3_ENDPOINT", "", parse_str,
        "S3-compatible endpoint (https://host[:port]; AWS, MinIO, Ceph RGW, SeaweedFS, "
        "OpenShift Data Foundation). Uploads to S3_BUCKET are on when it is set.", GROUP_S3,
    ),
    Key("s3_user", "S3_USER", "", parse_str, "S3 access key.", GROUP_S3, file_ok=True),
    Key("s3_password", "S3_PASSWORD", "", parse_secret, "S3 secret key.", GROUP_S3, secret=True),
    Key(
        "s3_session_token", "S3_SESSION_TOKEN", "", parse_secret,
        "Session token of temporary credentials (STS); empty for access keys.", GROUP_S3,
        ORIGIN_NEW, secret=True,
    ),
    Key(
        "s3_bucket", "S3_BUCKET", "", parse_str,
        "Bucket for the off-site copies (created when missing, as the old container did).",
        GROUP_S3,
    ),
    Key(
        "s3_prune_backups", "S3_PRUNE_BACKUPS", "false", parse_bool,
        "Apply retention to the bucket too (MOODUMP_OFFSITE_*_BACKUPS, else the local "
        "counts); the newest verified off-site copy always stays.", GROUP_S3,
        changed_note="the bucket gets its own retention plan (the newest verified copy "
        "always stays) instead of deleting the file names pruned locally",
    ),
    Key(
        "s3_prefix", "S3_PREFIX", "", parse_str,
        "Key prefix inside the bucket (e.g. a namespace name); empty = the bucket's root, "
        "as the old container.", GROUP_S3, ORIGIN_NEW,
    ),
    Key(
        "s3_region", "S3_REGION", "", parse_str,
        "Region; empty = taken from an AWS endpoint's host name, else us-east-1 (as mc did).",
        GROUP_S3, ORIGIN_NEW, default_doc="(auto)",
    ),
    Key(
        "s3_path_style", "S3_PATH_STYLE", "auto", parse_auto_bool,
        "Path-style addressing (https://host/bucket/key), what MinIO, Ceph and SeaweedFS "
        "expect; false = virtual-hosted (https://bucket.host/key); auto = virtual-hosted "
        "for *.amazonaws.com, path style elsewhere (as mc did).", GROUP_S3, ORIGIN_NEW,
    ),
    Key(
        "s3_create_bucket", "S3_CREATE_BUCKET", "false", parse_bool,
        "Create S3_BUCKET when it is missing. The old container always did; off by default "
        "so that a typo in S3_BUCKET fails instead of filling a new bucket.", GROUP_S3,
        ORIGIN_NEW,
    ),
    Key(
        "s3_ca_bundle", "S3_CA_BUNDLE", "", parse_str,
        "CA bundle (PEM) that signs the endpoint's certificate (a private CA); empty = the "
        "system's trusted CAs.", GROUP_S3, ORIGIN_NEW, default_doc="(system CAs)",
    ),
    Key(
        "offsite_daily", "MOODUMP_OFFSITE_DAILY_BACKUPS", "", parse_optional_nonneg_int,
        "Daily off-site copies to keep (empty = DAILY_BACKUPS).", GROUP_S3, ORIGIN_NEW,
    ),
    Key(
        "offsite_weekly", "MOODUMP_OFFSITE_WEEKLY_BACKUPS", "", parse_optional_nonneg_int,
        "Weekly off-site copies to keep (empty = WEEKLY_BACKUPS).", GROUP_S3, ORIGIN_NEW,
    ),
    Key(
        "offsite_monthly", "MOODUMP_OFFSITE_MONTHLY_BACKUPS", "", parse_optional_nonneg_int,
        "Monthly off-site copies to keep (empty = MONTHLY_BACKUPS).", GROUP_S3, ORIGIN_NEW,
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
        "progress_interval", "MOODUMP_PROGRESS_INTERVAL", "60", parse_interval,
        "During a dump, restore or verify, log one progress line this often (rows and "
        "bytes done, rate, ETA; structured fields in JSON logs); 0 = none. Seconds, "
        "fractions allowed (0.5), or a duration (5m). The display on a terminal is "
        "separate: it redraws four times a second.",
        GROUP_OPS, ORIGIN_NEW,
    ),
    Key(
        "strict", "MOODUMP_STRICT", "false", parse_bool,
        "moodump run: exit 1 when a run had only warnings (a shrink in warn mode, dump "
        "warnings). Off: warnings are logged, notified and reported, and the exit code "
        "is 0 (docs/exit-codes.md).", GROUP_OPS, ORIGIN_NEW,
    ),
    Key(
        "file_mode", "MOODUMP_FILE_MODE", "0640", parse_file_mode,
        "Mode of backup files (data, schema, manifest, verification, script; off-site "
        "staging, encrypted copies); directories get x where r is set (0640 -> 0750). "
        "Applied whatever the umask. The group bit lets verify and restore pods (group 0 "
        "on OpenShift) read. World-writable modes are refused; a world-readable one is "
        "logged as a warning. Lock and progress files are always 0600.",
        GROUP_OPS, ORIGIN_NEW,
    ),
    Key(
        "lock_file", "MOODUMP_LOCK_FILE", "", parse_str,
        "Lock that keeps runs from overlapping.", GROUP_OPS, ORIGIN_NEW,
        default_doc=f"BACKUP_DIR/{LOCK_NAME}",
    ),
    Key(
        "state_file", "MOODUMP_STATE_FILE", "", parse_str,
        "JSON file with the last result of each database and the run counters, updated "
        "after every backup and verification cycle (metrics and moodump status read it).",
        GROUP_OPS, ORIGIN_NEW, default_doc=f"BACKUP_DIR/{STATE_NAME}",
    ),
    Key(
        "metrics_file", "MOODUMP_METRICS_FILE", "", parse_str,
        "Prometheus text file written (atomically) after every backup and verification "
        "cycle, for node-exporter's textfile collector or a sidecar; name it *.prom. "
        "Empty = none (docs/observability.md).", GROUP_OPS, ORIGIN_NEW,
    ),
    Key(
        "metrics_port", "MOODUMP_METRICS_PORT", "", parse_optional_port,
        "moodump run (the long-running mode): serve Prometheus metrics on this port at "
        "/metrics. Empty = off.", GROUP_OPS, ORIGIN_NEW,
    ),
    Key(
        "metrics_address", "MOODUMP_METRICS_ADDRESS", "0.0.0.0", parse_str,
        "Address the /metrics server binds to (0.0.0.0: every interface, for a pod; "
        "127.0.0.1: this machine only).", GROUP_OPS, ORIGIN_NEW,
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
        "encrypt_recipients", "MOODUMP_ENCRYPT_RECIPIENTS", "", parse_str,
        "Encrypt off-site copies to these public keys (age1..., ssh-ed25519 ..., "
        "ssh-rsa ...), separated by commas, spaces or lines, or the path of a file of "
        "them. Data files, manifest and restore script are encrypted before they leave "
        "the pod; docs/encryption.md.", GROUP_CRYPT, ORIGIN_NEW, file_ok=True,
        whole_file=True,  # a recipients file: every line, comments and all
    ),
    Key(
        "encrypt_at_rest", "MOODUMP_ENCRYPT_AT_REST", "false", parse_bool,
        "Keep only the encrypted form on BACKUP_DIR too (needs MOODUMP_ENCRYPT_RECIPIENTS; "
        "restores and full verifies then need the identity). An encryption that a stopped "
        "run left half done is finished by the next run.", GROUP_CRYPT, ORIGIN_NEW,
    ),
    Key(
        "identity_file", "MOODUMP_IDENTITY_FILE", "", parse_str,
        "Private key file (age identity or unencrypted ssh key) that restore and verify "
        "use for encrypted backups (--identity).", GROUP_CRYPT, ORIGIN_NEW,
    ),
    Key(
        "signing_key", "MOODUMP_SIGNING_KEY", "", parse_secret,
        "Ed25519 private key in PEM (or the path of its file) that signs every backup's "
        "manifest into manifest.sig (proof of origin; docs/restore-and-verify.md).",
        GROUP_CRYPT, ORIGIN_NEW, secret=True, whole_file=True,
    ),
    Key(
        "verify_key", "MOODUMP_VERIFY_KEY", "", parse_str,
        "Ed25519 public keys (PEM, or ssh-ed25519 lines), or the path of a file of them: "
        "restore and verify then refuse a backup not signed by one of them (--verify-key).",
        GROUP_CRYPT, ORIGIN_NEW, file_ok=True, whole_file=True,
    ),
)  # fmt: skip

#: Variables the one-off connection options (dump/restore/verify) read; not part of Config.
CLIENT_ENV: dict[str, str] = {
    "MYSQL_PWD": "Password for --user when no --password-file or option file gives one.",
    "MYSQL_HOST": "Default --host.",
    "MYSQL_TCP_PORT": "Default --port.",
}

_KEY_BY_NAME = {k.name: k for k in KEYS if k.name}
_HOST_CRED_RE = re.compile(r"^[A-Z0-9_]+_((USER|PASSWORD)(_FILE)?|SSL_(MODE|CA|CERT|KEY))$")


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
