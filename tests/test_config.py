"""Configuration: the key table, old defaults, backup.conf, credentials, secrets, docs."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moodump.config import (
    KEYS,
    Config,
    Secret,
    host_env_prefix,
    is_known_env_name,
    known_env_names,
    load_config,
    load_config_from_environment,
    mask_url,
    parse_backup_conf,
    render_markdown,
)
from moodump.config import main as config_main
from moodump.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

# bcgov/moodle's backup deployment, as it is today (see peers-and-parity.md, section B).
MOODLE_ENV = {
    "BACKUP_STRATEGY": "rolling",
    "BACKUP_DIR": "/backups/",
    "DAILY_BACKUPS": "5",
    "WEEKLY_BACKUPS": "1",
    "MONTHLY_BACKUPS": "1",
    "MYSQL_USER": "moodle",
    "DATABASE_USER": "moodle",
    "MYSQL_PASSWORD": "pw-Moodle-8d1f",
    "DATABASE_PASSWORD": "pw-Moodle-8d1f",
    "MYSQL_DATABASE": "moodle",
    "DATABASE_NAME": "moodle",
    "DATABASE_SERVER_TIMEOUT": "600",
    "ENVIRONMENT_NAME": "moodle",
    "ENVIRONMENT_FRIENDLY_NAME": "moodle",
    "DATABASE_SERVICE_NAME": "mysql-0.mysql",
    "TZ": "PST8PDT",
}
MOODLE_CONF = "mysql/moodle\n0 9 * * * default ./backup.sh -s\n"


def load(env: dict[str, str], conf: str | None = None, **kw: object) -> Config:
    return load_config(env, conf, "/backup.conf", **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- table


def test_every_key_is_a_config_field_and_back() -> None:
    names = {k.name for k in KEYS if k.name}
    derived = {
        "databases",
        "schedule",
        "conf_path",
        "conf_found",
        "databases_from",
        "retention",
        "notes",
        "run_warnings",
        "sources",
    }
    assert {f.name for f in dataclasses.fields(Config)} == names | derived
    envs = [k.env for k in KEYS]
    assert len(envs) == len(set(envs))
    for k in KEYS:
        assert k.doc.strip() and k.group


OLD_DEFAULTS = {
    "BACKUP_CONF": "backup.conf",
    "BACKUP_STRATEGY": "rolling",
    "BACKUP_DIR": "/backups/",
    "NUM_BACKUPS": "31",
    "DAILY_BACKUPS": "6",
    "WEEKLY_BACKUPS": "4",
    "MONTHLY_BACKUPS": "1",
    "BACKUP_PERIOD": "1d",
    "DATABASE_SERVER_TIMEOUT": "120",
}


def test_old_defaults_kept() -> None:
    table = {k.env: k.default for k in KEYS}
    for env, default in OLD_DEFAULTS.items():
        assert table[env] == default, env
    cfg = load({})
    assert (cfg.backup_strategy, cfg.backup_dir, cfg.num_backups) == ("rolling", "/backups/", 31)
    assert (cfg.daily_backups, cfg.weekly_backups, cfg.monthly_backups) == (6, 4, 1)
    assert cfg.backup_period == timedelta(days=1)
    assert cfg.database_server_timeout == 120
    assert cfg.mode == "legacy"
    assert str(cfg.tz) == "UTC"
    assert cfg.lock_path == Path("/backups/.moodump.lock")


def test_empty_value_means_default() -> None:
    cfg = load({"NUM_BACKUPS": "", "BACKUP_STRATEGY": "", "TZ": ""}, local_zone="PST8PDT")
    assert cfg.num_backups == 31 and cfg.backup_strategy == "rolling"
    assert str(cfg.tz) == "PST8PDT" and cfg.sources["tz"] == "system zone PST8PDT"


EXPECTED_NAMES = (
    "BACKUP_CONF",
    "BACKUP_STRATEGY",
    "BACKUP_DIR",
    "ROOT_BACKUP_DIR",
    "NUM_BACKUPS",
    "DAILY_BACKUPS",
    "WEEKLY_BACKUPS",
    "MONTHLY_BACKUPS",
    "BACKUP_PERIOD",
    "DATABASE_SERVICE_NAME",
    "DATABASE_NAME",
    "POSTGRESQL_DATABASE",
    "MYSQL_DATABASE",
    "DATABASE_USER",
    "DATABASE_PASSWORD",
    "DATABASE_PASSWORD_FILE",
    "DATABASE_USER_FILE",
    "FTP_URL",
    "FTP_USER",
    "FTP_PASSWORD",
    "FTP_PASSWORD_FILE",
    "WEBHOOK_URL",
    "WEBHOOK_URL_FILE",
    "ENVIRONMENT_FRIENDLY_NAME",
    "ENVIRONMENT_NAME",
    "PGDUTY_SVC_KEY",
    "PGDUTY_SVC_KEY_FILE",
    "PGDUTY_URL",
    "BACKUP_LOG_LEVEL",
    "DATABASE_SERVER_TIMEOUT",
    "TZ",
    "MYSQL_DEFAULTS_FILE",
    "MOODUMP_THREADS",
    "MOODUMP_CODEC",
    "MOODUMP_LEVEL",
    "MOODUMP_MIN_SIZE",
    "MOODUMP_MAX_SHRINK_PERCENT",
    "MOODUMP_SHRINK_MODE",
    "MOODUMP_MAX_AGE",
    "MOODUMP_LOG_FORMAT",
    "MOODUMP_VERIFY_AFTER_BACKUP",
    "MOODUMP_LOCK_FILE",
    "MOODUMP_NOTIFY_FORMAT",
    "MOODUMP_FTP_RETRIES",
    "MOODUMP_FTP_PRUNE",
    "MOODUMP_MIN_FREE_SPACE",
    "S3_ENDPOINT",
    "DEFAULT_PORT",
    "TABLE_SCHEMA",
    "MYSQL_PWD",
)


def test_known_env_names() -> None:
    names = known_env_names()
    for env in EXPECTED_NAMES:
        assert env in names, env
    assert "BACKUP_DIR_FILE" not in names  # not a secret
    assert is_known_env_name("MYSQL_0_MYSQL_PASSWORD_FILE")
    assert is_known_env_name("WALLET_DB_USER")
    assert not is_known_env_name("MOODUMP_THREAD")
    assert not is_known_env_name("wallet-db_USER")


@pytest.mark.parametrize(
    ("host", "prefix"),
    [("mysql", "MYSQL"), ("wallet-db", "WALLET_DB"), ("mysql-0.mysql", "MYSQL_0_MYSQL")],
)
def test_host_env_prefix(host: str, prefix: str) -> None:
    assert host_env_prefix(host) == prefix


# --------------------------------------------------------------------------- bcgov/moodle


def test_bcgov_moodle_deployment_unchanged() -> None:
    cfg = load(MOODLE_ENV, MOODLE_CONF)
    (db,) = cfg.databases
    assert (db.host, db.database, db.port_or_default, db.core) == (
        "mysql",
        "moodle",
        3306,
        "mysql-moodle",
    )
    # host "mysql" -> MYSQL_USER / MYSQL_PASSWORD, as by coincidence before
    assert (db.user, db.user_source, db.password_source) == (
        "moodle",
        "MYSQL_USER",
        "MYSQL_PASSWORD",
    )
    assert db.password is not None and db.password.reveal() == "pw-Moodle-8d1f"
    assert cfg.databases_from == "backup.conf"
    r = cfg.retention
    assert (r.strategy, r.daily, r.weekly, r.monthly) == ("rolling", 5, 1, 1)
    assert cfg.mode == "cron"
    (line,) = cfg.schedule
    assert (line.expression, line.action.kind, line.line) == ("0 9 * * *", "backup", 2)
    assert str(cfg.tz) == "PST8PDT"
    assert cfg.database_server_timeout == 600


def test_dotted_host_is_a_database_not_a_cron_line() -> None:
    env = {"MYSQL_0_MYSQL_USER": "u0", "MYSQL_0_MYSQL_PASSWORD": "p0", "DATABASE_USER": "x"}
    cfg = load(env, "mysql-0.mysql/moodle\nmariadb=db.example.org:3307/moodle_archive\n")
    first, second = cfg.databases
    assert (first.host, first.database, first.user, first.user_source) == (
        "mysql-0.mysql",
        "moodle",
        "u0",
        "MYSQL_0_MYSQL_USER",
    )
    assert (second.host, second.port, second.db_type, second.user) == (
        "db.example.org",
        3307,
        "mariadb",
        "x",
    )
    assert cfg.schedule == ()


def test_conf_comments_types_and_order() -> None:
    text = """
# Moodle databases
mysql/moodle            # the site
  # indented comment
postgres=patroni/app
mongo=mongodb:27017/docs
mysql=other:3306/moodle_archive?verifySchema=x
0 1 * * * default ./backup.sh -s   # nightly
0 4 * * * default ./backup.sh -s -v all
@hourly default echo hello
"""
    conf = parse_backup_conf(text, "/backup.conf")
    assert [s.spec for s in conf.specs] == [
        "mysql/moodle",
        "postgres=patroni/app",
        "mysql=other:3306/moodle_archive?verifySchema=x",
    ]
    assert [s.line for s in conf.specs] == [3, 5, 7]
    assert conf.specs[1].db_type == "postgres"
    assert [(c.line, c.action.kind) for c in conf.schedule] == [
        (8, "backup"),
        (9, "verify"),
        (10, "other"),
    ]
    notes = "\n".join(conf.notes)
    assert "postgres=patroni/app" not in notes  # PostgreSQL is backed up (docs/postgresql.md)
    assert "/backup.conf:6:" in notes and "mongo" in notes
    assert "verifySchema" in notes
    assert "/backup.conf:10:" in notes and "does not execute it" in notes


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("mysql/moodle\n0 1 * * default ./backup.sh -s\n", 2, "not a valid cron schedule"),
        ("mysql/moodle extra\n", 1, "found 2 fields"),
        ("just-a-word\n", 1, "neither a database line nor a schedule line"),
        ("\n\nmysql/\n", 3, "neither a database line"),
        ("mysql:99999/moodle\n", 1, "port 99999 is out of range"),
        ("foo=mysql/moodle\n", 1, "unknown database type 'foo'"),
        ("mysql/moodle\nmysql:3307/moodle\n", 2, "same database as line 1"),
        ("0 0 31 2 * default ./backup.sh -s\n", 1, "never runs"),
    ],
)
def test_conf_errors_name_file_line_and_fix(text: str, line: int, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load({}, text)
    message = str(exc.value)
    assert f"/backup.conf:{line}: " in message
    assert needle in message
    assert exc.value.hint  # the fix
    assert exc.value.exit_code == 2


# --------------------------------------------------------------------------- fallback


def test_fallback_to_environment_spec() -> None:
    cfg = load({"DATABASE_SERVICE_NAME": "mysql-0.mysql:3307", "DATABASE_NAME": "moodle"})
    (db,) = cfg.databases
    assert (db.host, db.port, db.database, db.line, db.spec) == (
        "mysql-0.mysql",
        3307,
        "moodle",
        0,
        "mysql-0.mysql:3307/moodle",
    )
    assert cfg.databases_from == "environment"


def test_fallback_reads_old_database_name_variables() -> None:
    # The old CronJob template sets POSTGRESQL_DATABASE; bcgov/moodle sets MYSQL_DATABASE.
    cfg = load({"DATABASE_SERVICE_NAME": "db", "POSTGRESQL_DATABASE": "moodle"})
    assert cfg.databases[0].database == "moodle"
    assert cfg.sources["database_name"] == "env POSTGRESQL_DATABASE"
    cfg = load({"DATABASE_SERVICE_NAME": "db", "MYSQL_DATABASE": "m", "POSTGRESQL_DATABASE": "p"})
    assert cfg.databases[0].database == "m"


def test_backup_conf_lines_win_over_environment() -> None:
    cfg = load({"DATABASE_SERVICE_NAME": "other", "DATABASE_NAME": "x"}, "mysql/moodle\n")
    assert [d.spec for d in cfg.databases] == ["mysql/moodle"]


def test_no_database_configured() -> None:
    cfg = load({}, "0 1 * * * default ./backup.sh -s\n")
    assert cfg.databases == () and cfg.databases_from == "none"
    with pytest.raises(ConfigError, match="no database is configured"):
        cfg.require_databases()


def test_default_port_is_ignored_with_a_note() -> None:
    cfg = load({"DATABASE_SERVICE_NAME": "db", "DATABASE_NAME": "m", "DEFAULT_PORT": "5432"})
    assert cfg.databases[0].port is None
    assert any("DEFAULT_PORT is set" in n for n in cfg.notes)


def test_bad_service_name() -> None:
    with pytest.raises(ConfigError, match="DATABASE_SERVICE_NAME"):
        load({"DATABASE_SERVICE_NAME": "db/x", "DATABASE_NAME": "m"})


# --------------------------------------------------------------------------- secrets / _FILE


def test_file_variants(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file-pw\nsecond line ignored\n")
    (tmp_path / "host_pw").write_text("host-file-pw")
    (tmp_path / "user").write_text("svc_user")
    env = {
        "DATABASE_PASSWORD_FILE": str(tmp_path / "pw"),
        "DATABASE_USER_FILE": str(tmp_path / "user"),
        "DB2_PASSWORD_FILE": str(tmp_path / "host_pw"),
    }
    cfg = load(env, "db1/a\ndb2/b\n")
    db1, db2 = cfg.databases
    assert db1.password is not None and db1.password.reveal() == "from-file-pw"
    assert db1.user == "svc_user"
    assert db1.password_source == f"file {tmp_path / 'pw'} (DATABASE_PASSWORD_FILE)"
    assert db2.password is not None and db2.password.reveal() == "host-file-pw"


def test_a_recipients_file_variant_keeps_every_recipient(tmp_path: Path) -> None:
    """MOODUMP_ENCRYPT_RECIPIENTS_FILE (a mounted ConfigMap or Secret) holds a recipients
    file: every line counts. Its first line alone was taken as for a password, so a second
    key (the team's disaster-recovery key) was dropped without a word, and a file that
    starts with a comment named no recipient."""
    from pyrage import x25519

    from moodump.crypto import parse_recipients

    keys = [str(x25519.Identity.generate().to_public()) for _ in range(2)]
    (tmp_path / "recipients").write_text("# backup keys\n" + "\n".join(keys) + "\n")
    cfg = load({"MOODUMP_ENCRYPT_RECIPIENTS_FILE": str(tmp_path / "recipients")}, "db1/a\n")
    assert [r.key for r in parse_recipients(cfg.encrypt_recipients)] == keys


def test_both_value_and_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x")
    with pytest.raises(ConfigError, match="both DATABASE_PASSWORD and DATABASE_PASSWORD_FILE"):
        load({"DATABASE_PASSWORD": "y", "DATABASE_PASSWORD_FILE": str(tmp_path / "pw")})


def test_missing_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read FTP_PASSWORD_FILE"):
        load({"FTP_PASSWORD_FILE": str(tmp_path / "nope")})


SECRETS = {
    "DATABASE_PASSWORD": "S3cr3t-dbpass-7781",
    "MYSQL_PASSWORD": "S3cr3t-hostpass-9913",
    "FTP_PASSWORD": "S3cr3t-ftppass-2291",
    "FTP_URL": "ftp://backup:S3cr3t-urlpass-1234@ftp.example.org/moodle/",
    "WEBHOOK_URL": "https://chat.example.org/hooks/S3cr3t-token-5555/xyz",
    "PGDUTY_SVC_KEY": "S3cr3t-pagerduty-4242",
    "S3_PASSWORD": "S3cr3t-s3-0000",
}


def test_secrets_never_shown() -> None:
    cfg = load({**SECRETS, "FTP_USER": "backup", "TZ": "PST8PDT"}, MOODLE_CONF)
    now = datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("PST8PDT"))
    outputs = [
        cfg.render(masked=True, now=now),
        cfg.to_json(masked=True, now=now),
        repr(cfg),
        str(cfg),
        repr(cfg.databases),
        f"{cfg.database_password}",
    ]
    for out in outputs:
        assert "S3cr3t" not in out, out
    text = outputs[0]
    assert "https://chat.example.org/****" in text
    assert "ftp://backup:****@ftp.example.org/moodle/" in text
    assert "PagerDuty: configured" in text
    doc = json.loads(outputs[1])
    assert doc["settings"]["DATABASE_PASSWORD"]["value"] == "****"
    assert doc["databases"][0]["password"] == "****"
    # the values are still there for the code that needs them
    assert cfg.webhook_url is not None and "S3cr3t-token" in cfg.webhook_url.reveal()
    assert set(cfg.secret_values()) == {
        SECRETS["DATABASE_PASSWORD"],
        SECRETS["MYSQL_PASSWORD"],
        SECRETS["FTP_PASSWORD"],
        SECRETS["WEBHOOK_URL"],
        SECRETS["PGDUTY_SVC_KEY"],
        "S3cr3t-urlpass-1234",  # the password inside FTP_URL
        SECRETS["S3_PASSWORD"],
    }
    assert doc["settings"]["S3_PASSWORD"]["value"] == "****"


def test_bad_secret_value_is_not_echoed(tmp_path: Path) -> None:
    # Secrets are plain strings, so they cannot fail to parse; a bad non-secret value is
    # echoed, with the variable name.
    with pytest.raises(ConfigError) as exc:
        load({"NUM_BACKUPS": "thirty"})
    assert "NUM_BACKUPS='thirty'" in str(exc.value) and "whole number" in str(exc.value)


def test_secret_object() -> None:
    s = Secret("abc")
    assert repr(s) == "Secret('****')" and str(s) == "****" and f"{s}" == "****"
    assert s.reveal() == "abc" and s == Secret("abc") and bool(s)
    assert not Secret("")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/****"),
        ("https://chat.example.org/", "https://chat.example.org/"),
        ("http://u:p@127.0.0.1:8080/x?token=1", "http://u:****@127.0.0.1:8080/****"),
        ("", ""),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"BACKUP_STRATEGY": "weekly"}, "BACKUP_STRATEGY='weekly'"),
        ({"TZ": "Mars/Olympus_Mons"}, "TZ='Mars/Olympus_Mons'"),
        ({"MOODUMP_CODEC": "lz4"}, "must be one of gzip, zstd"),
        ({"MOODUMP_THREADS": "0"}, "must be 1 to 64"),
        ({"MOODUMP_THREADS": "1000"}, "must be 1 to 64"),
        ({"MOODUMP_MIN_SIZE": "lots"}, "MOODUMP_MIN_SIZE"),
        ({"MOODUMP_MAX_SHRINK_PERCENT": "150"}, "between 0 and 100"),
        ({"MOODUMP_MAX_AGE": "a day"}, "MOODUMP_MAX_AGE"),
        ({"BACKUP_PERIOD": "0"}, "longer than zero"),
        ({"MONTHLY_BACKUPS": "-1"}, "MONTHLY_BACKUPS >= 0"),
        ({"MOODUMP_FTP_PRUNE": "maybe"}, "not a boolean"),
        ({"BACKUP_LOG_LEVEL": "verbose"}, "debug, info, warning, error"),
    ],
)
def test_bad_values(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load(env)


def test_parsed_values() -> None:
    cfg = load(
        {
            "BACKUP_STRATEGY": "DAILY",
            "NUM_BACKUPS": "7",
            "BACKUP_PERIOD": "12h",
            "TZ": ":America/Vancouver",
            "MOODUMP_MIN_SIZE": "10M",
            "MOODUMP_MAX_AGE": "26h",
            "MOODUMP_MAX_SHRINK_PERCENT": "30%",
            "MOODUMP_FTP_PRUNE": "yes",
            "MOODUMP_LEVEL": "3",
            "BACKUP_LOG_LEVEL": "DEBUG",
            "MOODUMP_LOCK_FILE": "/run/moodump.lock",
        }
    )
    assert cfg.retention.strategy == "daily" and cfg.retention.num_backups == 7
    assert cfg.backup_period == timedelta(hours=12)
    assert str(cfg.tz) == "America/Vancouver"
    assert cfg.min_size == 10 * 1024 * 1024
    assert cfg.max_age == timedelta(hours=26)
    assert cfg.max_shrink_percent == 30.0
    assert cfg.ftp_prune is True and cfg.level == 3
    assert cfg.backup_log_level == "debug"
    assert cfg.lock_path == Path("/run/moodump.lock")


def test_weekly_negative_selects_daily_with_note() -> None:
    cfg = load({"WEEKLY_BACKUPS": "-1", "NUM_BACKUPS": "9"})
    assert cfg.retention.strategy == "daily" and cfg.retention.num_backups == 9
    assert any("daily strategy is used" in n for n in cfg.notes)


def test_root_backup_dir_wins_like_before() -> None:
    cfg = load({"BACKUP_DIR": "/a/", "ROOT_BACKUP_DIR": "/b/"})
    assert cfg.backup_dir == "/b/"
    assert any("ROOT_BACKUP_DIR wins" in n for n in cfg.notes)


def test_unknown_moodump_variable_gets_a_suggestion() -> None:
    cfg = load({"MOODUMP_THREAD": "4"})
    assert any(
        "MOODUMP_THREAD is not a moodump setting (did you mean MOODUMP_THREADS?)" in n
        for n in cfg.notes
    )


def test_missing_account_noted() -> None:
    cfg = load({}, "db-x/m\n")
    assert any("set DB_X_USER or DATABASE_USER" in n for n in cfg.notes)


def test_database_lookup() -> None:
    cfg = load({}, "mysql/moodle\nmysql-0.mysql:3307/other\n")
    assert cfg.database("mysql/moodle").database == "moodle"
    assert cfg.database("mysql-0.mysql-other").port == 3307
    assert cfg.database("mysql-0.mysql/other").database == "other"
    assert cfg.database("other").host == "mysql-0.mysql"
    with pytest.raises(ConfigError, match="not a configured database"):
        cfg.database("nope")


# --------------------------------------------------------------------------- render


def test_render_like_backup_sh_c() -> None:
    env = {**MOODLE_ENV, "MOODUMP_NOTIFY_FORMAT": "rocketchat", "WEBHOOK_URL": "https://x.org/h/t"}
    cfg = load(env, MOODLE_CONF + "0 4 * * * default ./backup.sh -s -v all\n")
    now = datetime(2026, 5, 31, 20, tzinfo=ZoneInfo("UTC"))  # Sunday 13:00 PDT, month end
    text = cfg.render(now=now)
    for needle in (
        "- Run mode: cron (2 schedule line(s) in backup.conf)",
        "- Backup strategy: rolling",
        "- Current backup type: monthly (Sunday 2026-05-31)",
        "- Current backup folder: /backups/monthly/2026-05-31/",
        "  - Daily: 5",
        "- Time zone: PST8PDT (PDT -0700)",
        "0 9 * * * default ./backup.sh -s  -> backup; next 2026-06-01 09:00 PDT",
        "-> verify all; next 2026-06-01 04:00 PDT",
        "mysql/moodle  (host mysql, port 3306, database moodle; user moodle from MYSQL_USER",
        "- Webhook endpoint: https://x.org/**** (format rocketchat)",
        "- FTP server: not configured",
        "- Environment Name (Id): moodle",
    ):
        assert needle in text, needle
    assert re.search(r"\n  DAILY_BACKUPS +5  \[env DAILY_BACKUPS\]\n", text)
    doc = cfg.to_dict(now=now)
    assert doc["today_tier"] == "monthly"
    assert doc["schedule"][0]["next_run"] == "2026-06-01T09:00:00-07:00"


def test_render_legacy_and_daily() -> None:
    cfg = load({"BACKUP_STRATEGY": "daily", "BACKUP_PERIOD": "12h"}, "mysql/moodle\n")
    text = cfg.render(now=datetime(2026, 6, 2, tzinfo=ZoneInfo("UTC")))
    assert "- Run mode: legacy (every 12h, BACKUP_PERIOD)" in text
    assert "- Current backup type: flat daily" in text
    assert "  - Total: 31" in text
    assert "- Current backup folder: /backups/2026-06-02/" in text


# --------------------------------------------------------------------------- from the environment


def test_load_from_environment(tmp_path: Path) -> None:
    conf = tmp_path / "backup.conf"
    conf.write_text("mysql/moodle\n")
    cfg = load_config_from_environment(
        environ={"BACKUP_CONF": str(conf), "ROOT_BACKUP_DIR": "/x/"},
        overrides={"BACKUP_DIR": str(tmp_path / "b")},
    )
    assert cfg.conf_found and cfg.conf_path == str(conf)
    assert cfg.backup_dir == str(tmp_path / "b")  # --backup-dir beats ROOT_BACKUP_DIR
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_from_environment(environ={"BACKUP_CONF": str(tmp_path / "missing.conf")})


def test_load_from_environment_default_conf_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./backup.conf here: fine, like the old scripts
    cfg = load_config_from_environment(environ={"TZ": "UTC"})
    assert not cfg.conf_found and cfg.databases == ()


# --------------------------------------------------------------------------- docs


def test_docs_configuration_md_is_up_to_date() -> None:
    assert DOCS.exists(), "run: python -m moodump.config --markdown --output docs/configuration.md"
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/configuration.md is stale: python -m moodump.config --markdown --output "
        "docs/configuration.md"
    )


def test_notify_formats_match_the_notifier() -> None:
    from moodump import notify

    (key,) = [k for k in KEYS if k.env == "MOODUMP_NOTIFY_FORMAT"]
    for fmt in notify.FORMATS:
        assert key.parse(fmt) == fmt
    with pytest.raises(ValueError):
        key.parse("email")


def test_docs_mention_every_variable() -> None:
    text = render_markdown()
    for k in KEYS:
        assert f"`{k.env}`" in text, k.env


def test_markdown_generator_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert config_main(["--markdown", "--output", str(tmp_path / "c.md")]) == 0
    assert (tmp_path / "c.md").read_text() == render_markdown()
    assert config_main(["--markdown"]) == 0
    assert capsys.readouterr().out == render_markdown()
