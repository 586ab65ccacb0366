"""Adversarial configuration cases: backup.conf and environment values the old
backup-container accepted (or rejected), checked against moodump. Pure: no clock, no
machine time zone, no database."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moodump.config import Config, load_config, load_config_from_environment, parse_backup_conf
from moodump.errors import ConfigError
from moodump.naming import target_dir_for, tier_for
from moodump.retention import RetentionPolicy

DB = "mysql-0.mysql/moodle"
CRON = "0 1 * * * default ./backup.sh -s"


def load(env: dict[str, str], conf: str | None = DB + "\n") -> Config:
    return load_config(env, conf, "/backup.conf")


def specs(text: str) -> list[tuple[str, int | None, str, str]]:
    return [(s.host, s.port, s.database, s.db_type) for s in parse_backup_conf(text).specs]


# --------------------------------------------------------------------------- backup.conf text


@pytest.mark.parametrize(
    "text",
    [
        f"\ufeff{DB}\n{CRON}\n",  # saved by a Windows editor
        f"\ufeff{DB}\r\n{CRON}\r\n",
        f"{DB}\r\n{CRON}\r\n",
        f"{DB}\r{CRON}\r",  # an old Mac editor (str.splitlines() took it; keep doing so)
        f"  {DB}  \t# the Moodle database\n\n\t{CRON}\t# nightly\n",
        f"# header\n\n{DB}#no space before the comment\n{CRON}",
    ],
)
def test_conf_line_endings_bom_and_comments(text: str) -> None:
    conf = parse_backup_conf(text)
    assert [(s.host, s.database) for s in conf.specs] == [("mysql-0.mysql", "moodle")]
    assert [c.command for c in conf.schedule] == ["./backup.sh -s"]


def test_bom_file_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "backup.conf"
    path.write_bytes(b"\xef\xbb\xbf" + f"{DB}\r\n{CRON}\r\n".encode())
    cfg = load_config_from_environment(environ={"BACKUP_CONF": str(path)})
    assert [d.core for d in cfg.databases] == ["mysql-0.mysql-moodle"]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0c", "\x1c"])
def test_unicode_line_separators_in_a_comment_are_comment_text(sep: str) -> None:
    # The shell split lines at "\n" only; a separator inside a comment is comment text.
    text = f"# Moodle{sep}prod database\n{DB}\n{CRON}\n"
    conf = parse_backup_conf(text)
    assert [s.database for s in conf.specs] == ["moodle"]
    assert [c.line for c in conf.schedule] == [3]


def test_error_line_numbers_count_newlines_only() -> None:
    with pytest.raises(ConfigError) as err:
        parse_backup_conf(f"# a\u2028b\n{DB}\nnot/a valid line\n")
    assert "backup.conf:3:" in str(err.value)


@pytest.mark.parametrize(
    "line",
    [
        "0 1 * * * default ./backup.sh -s",
        "0 4 * * * default ./backup.sh -s -v all",
        "@daily default ./backup.sh -s",
        "0 1 * * * default sh /backup.sh -s",
        "0\t1\t*\t*\t*\tdefault\t./backup.sh -s",
        "*/30  1-5  *  *  1,3  default  ./backup.sh -s",
    ],
)
def test_cron_forms_the_container_accepts(line: str) -> None:
    conf = parse_backup_conf(f"{DB}\n{line}\n")
    assert len(conf.schedule) == 1


@pytest.mark.parametrize(
    "text,expected",
    [
        ("mariadb=db:3307/moodle", [("db", 3307, "moodle", "mariadb")]),
        ("mysql=db/moodle", [("db", None, "moodle", "mysql")]),
        ("MariaDB=db/moodle", [("db", None, "moodle", "mariadb")]),
        ("postgresql=pg:5433/moodle-pg", [("pg", 5433, "moodle-pg", "postgres")]),
        ("db:/moodle_2", [("db", None, "moodle_2", "")]),
        ("mongo=m/x\nmssql=s/y\ndb/moodle", [("db", None, "moodle", "")]),
        ("db.ns.svc.cluster.local/moodle", [("db.ns.svc.cluster.local", None, "moodle", "")]),
    ],
)
def test_typed_lines(text: str, expected: list[tuple[str, int | None, str, str]]) -> None:
    assert specs(text) == expected


@pytest.mark.parametrize(
    "text,needle",
    [
        ("oracle=db/moodle", "unknown database type 'oracle'"),
        ("db:0/moodle", "port 0 is out of range"),
        ("db:65536/moodle", "port 65536 is out of range"),
        ("db:99999999999999999999/moodle", "out of range"),
        ("db/moodle\ndb:3306/moodle", "same database as line 1"),
        ("mariadb=db/moodle\npostgres=db/moodle", "same database as line 1"),
        ("[::1]:3306/moodle", "neither a database line"),
        ("db/moo.dle", "neither a database line"),
        ("db/mööd", "neither a database line"),
        ("=db/moodle", "neither a database line"),
        ("0 25 * * * default ./backup.sh -s", "not a valid cron schedule"),
        ("0 1 * * * ./backup.sh -s", "user field is missing"),
    ],
)
def test_conf_rejections_name_line_and_fix(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_backup_conf(text, "/backup.conf")
    assert needle in str(err.value)
    assert "/backup.conf:" in str(err.value)
    assert err.value.hint


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize(
    "key", ["NUM_BACKUPS", "DAILY_BACKUPS", "WEEKLY_BACKUPS", "MONTHLY_BACKUPS"]
)
@pytest.mark.parametrize("value", ["abc", "5.0", "1_0", "\u0663", "1e3", "0x10", "5 5"])
def test_counts_must_be_plain_whole_numbers(key: str, value: str) -> None:
    # The shell's test -gt refused these; Python's int() took "1_0" and Arabic digits.
    with pytest.raises(ConfigError) as err:
        load({key: value})
    assert key in str(err.value)
    assert "not a whole number" in str(err.value)


@pytest.mark.parametrize("value,expected", [(" 5 ", 5), ("+3", 3), ("0", 0), ("007", 7)])
def test_counts_accept_shell_numbers(value: str, expected: int) -> None:
    assert load({"DAILY_BACKUPS": value}).retention.daily == expected


def test_huge_counts_are_kept_as_numbers() -> None:
    cfg = load({"DAILY_BACKUPS": "9" * 30})
    assert cfg.retention.daily == int("9" * 30)


@pytest.mark.parametrize(
    "env,strategy",
    [
        ({"BACKUP_STRATEGY": "ROLLING"}, "rolling"),
        ({"BACKUP_STRATEGY": " daily "}, "daily"),
        ({"BACKUP_STRATEGY": ""}, "rolling"),
        ({"WEEKLY_BACKUPS": "-1"}, "daily"),
        ({"BACKUP_STRATEGY": "rolling", "WEEKLY_BACKUPS": "-5"}, "daily"),
    ],
)
def test_strategy_selection(env: dict[str, str], strategy: str) -> None:
    assert load(env).retention.strategy == strategy


def test_all_counts_zero_forces_one_daily() -> None:
    cfg = load({"DAILY_BACKUPS": "0", "WEEKLY_BACKUPS": "0", "MONTHLY_BACKUPS": "0"})
    assert cfg.retention.daily == 1


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"BACKUP_STRATEGY": "weekly"}, "BACKUP_STRATEGY"),
        ({"MONTHLY_BACKUPS": "-1"}, "MONTHLY_BACKUPS"),
        ({"DAILY_BACKUPS": "-1"}, "DAILY_BACKUPS"),
        ({"BACKUP_STRATEGY": "daily", "NUM_BACKUPS": "-1"}, "NUM_BACKUPS"),
    ],
)
def test_bad_strategy_values(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(env)
    assert needle in str(err.value)
    assert err.value.hint


@pytest.mark.parametrize(
    "value",
    ["0", "-1d", "abc", "1y", "nan", "inf", "99999999999999999999d", "1" + "0" * 400, "0.001s"],
)
def test_bad_backup_period_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load({"BACKUP_PERIOD": value})
    assert "BACKUP_PERIOD" in str(err.value)


@pytest.mark.parametrize(
    "value,expected",
    [("", timedelta(days=1)), ("1h 30m", timedelta(minutes=90)), ("1D", timedelta(days=1))],
)
def test_backup_period_forms(value: str, expected: timedelta) -> None:
    assert load({"BACKUP_PERIOD": value}).backup_period == expected


def test_secret_file_with_bom_and_crlf(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"\xef\xbb\xbfpa ss\r\nsecond line\r\n")
    user = tmp_path / "user"
    user.write_bytes(b"moodle\r\n")
    cfg = load_config(
        {
            "DATABASE_SERVICE_NAME": "db",
            "DATABASE_NAME": "moodle",
            "DATABASE_PASSWORD_FILE": str(pw),
            "DATABASE_USER_FILE": str(user),
        },
        None,
        "/backup.conf",
    )
    d = cfg.databases[0]
    assert d.user == "moodle"
    assert d.password is not None and d.password.reveal() == "pa ss"


@pytest.mark.parametrize("service", ["mysql:abc", "[::1]:3306", "mysql:0", "mysql:70000"])
def test_bad_service_name(service: str) -> None:
    with pytest.raises(ConfigError) as err:
        load({"DATABASE_SERVICE_NAME": service, "DATABASE_NAME": "moodle"}, None)
    assert "DATABASE_SERVICE_NAME" in str(err.value)


def test_comment_only_conf_falls_back_to_environment() -> None:
    cfg = load(
        {"DATABASE_SERVICE_NAME": "mysql-0.mysql:3307", "DATABASE_NAME": "moodle"},
        "\ufeff# nothing here\r\n\r\n",
    )
    assert [(d.host, d.port, d.database) for d in cfg.databases] == [
        ("mysql-0.mysql", 3307, "moodle")
    ]
    assert cfg.databases_from == "environment"


@pytest.mark.parametrize("value", ["/backups", "/backups/", "/backups//"])
def test_backup_dir_trailing_slash_gives_the_same_folders(value: str) -> None:
    cfg = load({"BACKUP_DIR": value})
    when = datetime(2026, 3, 4, 1, 2, 3)
    target = target_dir_for(Path(cfg.backup_dir), cfg.retention, when, "db", "moodle")
    assert str(target) == "/backups/daily/2026-03-04/db-moodle_2026-03-04_01-02-03"


def test_config_output_never_shows_secrets() -> None:
    env = {
        "DATABASE_USER": "moodle",
        "DATABASE_PASSWORD": "pw-Secret-1",
        "MYSQL_0_MYSQL_PASSWORD": "pw-Secret-2",
        "WEBHOOK_URL": "https://hooks.example/T0K3N?key=pw-Secret-3",
        "FTP_URL": "ftps://u:pw-Secret-4@ftp.example/backups",
        "FTP_PASSWORD": "pw-Secret-5",
        "S3_PASSWORD": "pw-Secret-6",
        "ENVIRONMENT_NAME": "moodle-prod",
        "ENVIRONMENT_FRIENDLY_NAME": "Moodle (prod)",
    }
    cfg = load(env)
    now = datetime(2026, 12, 31, 12, tzinfo=ZoneInfo("UTC"))
    out = cfg.render(now=now) + cfg.to_json(now=now)
    for n in range(1, 7):
        assert f"pw-Secret-{n}" not in out
    assert "T0K3N" not in out
    assert "moodle-prod" in out


# --------------------------------------------------------------------------- layout


ROLLING = RetentionPolicy.resolve("rolling", num_backups=31, daily=6, weekly=4, monthly=1)
DAILY = RetentionPolicy.resolve("daily", num_backups=31, daily=6, weekly=4, monthly=1)


@pytest.mark.parametrize(
    "day,tier",
    [
        (date(2026, 12, 31), "monthly"),  # year end (a Thursday)
        (date(2028, 2, 29), "monthly"),  # leap day
        (date(2027, 2, 28), "monthly"),
        (date(2026, 5, 31), "monthly"),  # last day and a Sunday: monthly wins
        (date(2026, 5, 24), "weekly"),
        (date(2026, 5, 30), "daily"),
        (date(2028, 2, 28), "daily"),
    ],
)
def test_tier_on_month_and_year_ends(day: date, tier: str) -> None:
    assert tier_for(day, ROLLING) == tier


@pytest.mark.parametrize(
    "zone,day_folder,stamp",
    [
        ("PST8PDT", "2026-12-31", "2026-12-31_16-30-00"),
        ("UTC", "2027-01-01", "2027-01-01_00-30-00"),
        ("Pacific/Kiritimati", "2027-01-01", "2027-01-01_14-30-00"),
        ("Pacific/Pago_Pago", "2026-12-31", "2026-12-31_13-30-00"),
    ],
)
def test_names_use_local_wall_clock_at_year_end(zone: str, day_folder: str, stamp: str) -> None:
    instant = datetime(2027, 1, 1, 0, 30, tzinfo=ZoneInfo("UTC"))
    local = instant.astimezone(ZoneInfo(zone))
    target = target_dir_for(Path("/backups"), DAILY, local, "mysql-0.mysql", "moodle")
    assert target == Path(f"/backups/{day_folder}/mysql-0.mysql-moodle_{stamp}")


@pytest.mark.parametrize(
    "key",
    [
        "MOODUMP_OFFSITE_DAILY_BACKUPS",
        "MOODUMP_OFFSITE_WEEKLY_BACKUPS",
        "MOODUMP_OFFSITE_MONTHLY_BACKUPS",
    ],
)
def test_negative_offsite_count_is_refused(key: str) -> None:
    # It silently meant "keep none" off-site (the newest good copy only).
    with pytest.raises(ConfigError) as err:
        load({key: "-1"})
    assert key in str(err.value)
    assert load({key: "0"}) is not None


@pytest.mark.parametrize(
    "env",
    [
        {"MOODUMP_LEVEL": "99"},
        {"MOODUMP_LEVEL": "-5"},
        {"MOODUMP_CODEC": "zstd", "MOODUMP_LEVEL": "0"},
        {"MOODUMP_CODEC": "zstd", "MOODUMP_LEVEL": "20"},
    ],
)
def test_compression_level_out_of_range_is_a_config_error(env: dict[str, str]) -> None:
    # Found only when the first dump started; `moodump config` accepted it.
    with pytest.raises(ConfigError) as err:
        load(env)
    assert "MOODUMP_LEVEL" in str(err.value)
    assert "MOODUMP_LEVEL between" in err.value.hint


@pytest.mark.parametrize(
    "env", [{"MOODUMP_LEVEL": "3"}, {"MOODUMP_CODEC": "zstd", "MOODUMP_LEVEL": "19"}]
)
def test_compression_level_in_range(env: dict[str, str]) -> None:
    assert load(env).level == int(env["MOODUMP_LEVEL"])


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"NUM_BACKUPS": "x"}, "set NUM_BACKUPS to a valid value, or unset it (default: 31)"),
        ({"BACKUP_STRATEGY": "weekly"}, "or unset it (default: rolling)"),
        ({"BACKUP_PERIOD": "soon"}, "set BACKUP_PERIOD to a valid value"),
    ],
)
def test_bad_value_hint_says_what_to_do(env: dict[str, str], needle: str) -> None:
    # The hint was only the key's description ("Backups kept per database ...").
    with pytest.raises(ConfigError) as err:
        load(env)
    assert needle in err.value.hint


@pytest.mark.parametrize(
    "line,why",
    [
        ("[::1]:3306/moodle", "IPv6 address"),
        ("mariadb=fe80::1/moodle", "IPv6 address"),
        ("db/moo.dle", "database name 'moo.dle'"),
        ("db/m\u00f6\u00f6d", "database name"),
        ("db/moodle/", "no database name"),
        ("db//moodle", "one '/' only"),
        ("db:abc/moodle", "port 'abc' is not a number"),
        ("mariadb=db@x/moodle", "host 'db@x'"),
        ("=db/moodle", "no database type"),
    ],
)
def test_bad_database_line_says_which_part_is_wrong(line: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_backup_conf(f"{CRON}\n{line}\n")
    assert "backup.conf:2:" in str(err.value)
    assert why in str(err.value)


@pytest.mark.parametrize(
    "text",
    ["db/moodle\nDB/moodle", "mysql-0.mysql/moodle\nMySQL-0.MySQL:3306/moodle"],
)
def test_same_host_in_another_case_is_a_duplicate(text: str) -> None:
    # DNS ignores case: both lines dump the same database (under two names).
    with pytest.raises(ConfigError) as err:
        parse_backup_conf(text)
    assert "same database as line 1" in str(err.value)


def test_database_names_differing_in_case_are_two_databases() -> None:
    # MySQL on Linux keeps database names case-sensitive.
    assert [s.database for s in parse_backup_conf("db/moodle\ndb/Moodle").specs] == [
        "moodle",
        "Moodle",
    ]


@pytest.mark.parametrize(
    "key",
    [
        "DATABASE_SERVER_TIMEOUT",
        "MOODUMP_CONNECT_TIMEOUT",
        "MOODUMP_READ_TIMEOUT",
        "MOODUMP_UPGRADE_WAIT",
        "MOODUMP_PROGRESS_INTERVAL",
    ],
)
@pytest.mark.parametrize("value", ["99999999999999999999", "2592001"])
def test_huge_waits_are_refused(key: str, value: str) -> None:
    # Accepted before, then socket.settimeout()/Event.wait() raised OverflowError mid-run.
    with pytest.raises(ConfigError) as err:
        load({key: value})
    assert key in str(err.value)
    assert "30 days" in str(err.value) or "too long a duration" in str(err.value)


@pytest.mark.parametrize(
    "key", ["DATABASE_SERVER_TIMEOUT", "MOODUMP_READ_TIMEOUT", "MOODUMP_UPGRADE_WAIT"]
)
def test_thirty_days_is_still_a_valid_wait(key: str) -> None:
    assert load({key: "2592000"}) is not None


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400"])
def test_free_space_factor_must_be_finite(value: str) -> None:
    # nan was accepted, and every comparison with it is false: the free-space check
    # silently never failed.
    with pytest.raises(ConfigError) as err:
        load({"MOODUMP_FREE_SPACE_FACTOR": value})
    assert "MOODUMP_FREE_SPACE_FACTOR" in str(err.value)


# --------------------------------------------------------------------------- backup.sh

from test_backup_sh import rig, standard_backups  # noqa: E402, F401 (the fixture)


def test_backup_sh_prune_filter_honours_root_backup_dir(rig) -> None:  # noqa: F811
    # ROOT_BACKUP_DIR wins over BACKUP_DIR (the key table, as before); the script's
    # "only below BACKUP_DIR" guard read BACKUP_DIR alone and refused every deletion.
    b = standard_backups(rig)
    res = rig.run(
        "-s", "-p", "-f", "db2-wiki", BACKUP_DIR="/elsewhere/", ROOT_BACKUP_DIR=f"{rig.root}/"
    )
    assert res.returncode == 0, res.stderr
    assert not b["other"].exists()


def test_backup_sh_restore_treats_empty_variables_as_unset(rig, tmp_path: Path) -> None:  # noqa: F811
    # moodump takes an empty variable for an unset one; the script used the empty
    # per-host value (no --user, MYSQL_PWD="") instead of DATABASE_USER/_PASSWORD.
    standard_backups(rig)
    res = rig.run(
        "-s",
        "-r",
        "mysql/moodle",
        MYSQL_USER="",
        MYSQL_PASSWORD="",
        MYSQL_PASSWORD_FILE="",
        DATABASE_USER="dbuser",
        DATABASE_PASSWORD="dbpw",
    )
    assert res.returncode == 0, res.stderr
    assert rig.calls()[1][-2:] == ["--user", "dbuser"]
    assert rig.envs()[1]["MYSQL_PWD"] == "dbpw"


@pytest.mark.parametrize("name", ["MYSQL_USER_FILE", "DATABASE_USER_FILE"])
def test_backup_sh_restore_reads_the_user_from_a_file(rig, tmp_path: Path, name: str) -> None:  # noqa: F811
    # moodump reads <HOST>_USER_FILE and DATABASE_USER_FILE; the script passed no --user,
    # so the restore connected as $USER or root.
    standard_backups(rig)
    user_file = tmp_path / "user"
    user_file.write_bytes(b"\xef\xbb\xbffileuser\r\nsecond\n")
    res = rig.run("-s", "-r", "mysql/moodle", **{name: str(user_file)}, DATABASE_PASSWORD="pw")
    assert res.returncode == 0, res.stderr
    assert rig.calls()[1][-2:] == ["--user", "fileuser"]


@pytest.mark.parametrize(
    "content",
    [b"\xef\xbb\xbfs3 cret\r\nsecond\r\n", b"s3 cret\r\n", b"s3 cret\rold mac\n", b"s3 cret"],
    ids=["bom-crlf", "crlf", "lone-cr", "bare"],
)
def test_secret_files_read_the_same_by_every_reader(tmp_path: Path, content: bytes) -> None:
    """One rule wherever a secret file is read: its first line (ended by LF, CR LF or a
    lone CR), without a BOM. `--password-file` (what backup.sh -r passes moodump for a
    *_PASSWORD_FILE) kept a BOM that *_FILE drops, so a Windows-saved secret that served
    the backups failed the restore."""
    from moodump.config.load import _read_first_line
    from moodump.db.credentials import read_secret_file

    (tmp_path / "pw").write_bytes(content)
    assert read_secret_file(tmp_path / "pw") == "s3 cret"
    assert _read_first_line(str(tmp_path / "pw")) == "s3 cret"


def test_backup_sh_restore_drops_a_crlf_from_credentials_as_moodump_does(rig) -> None:  # noqa: F811
    """A `<HOST>_USER`/`_PASSWORD` ending in CR LF (a Secret made from a Windows file):
    moodump's configuration drops the line end, backup.sh -r kept the CR (`--user
    'backup\r'`, MYSQL_PWD 'pw\r'), so the restore was refused access."""
    standard_backups(rig)
    env = {"MYSQL_USER": "backup\r\n", "MYSQL_PASSWORD": "s3 cret\r\n"}
    res = rig.run("-s", "-r", "mysql/moodle", **env)
    assert res.returncode == 0, res.stderr
    d = load_config(env, "mysql/moodle\n", "/b.conf").databases[0]
    assert d.password is not None and (d.user, d.password.reveal()) == ("backup", "s3 cret")
    assert rig.calls()[1][-2:] == ["--user", "backup"]
    assert rig.envs()[1]["MYSQL_PWD"] == "s3 cret"


@pytest.mark.parametrize(
    "tz,offset_hours",
    [
        ("UTC0", 0),
        ("GMT0", 0),
        ("EST5", -5),
        ("<+03>-3", 3),
        ("/usr/share/zoneinfo/America/Vancouver", -7),
        (":/usr/share/zoneinfo/UTC", 0),
        (":PST8PDT", -7),
        ("Etc/GMT+8", -8),
    ],
)
def test_tz_forms_glibc_took(tz: str, offset_hours: int) -> None:
    # The old image's date(1) read these; moodump refused all but the tz names.
    zone = load({"TZ": tz}).tz
    assert datetime(2026, 7, 1, tzinfo=zone).utcoffset() == timedelta(hours=offset_hours)


@pytest.mark.parametrize("tz", ["Mars/Base", "XYZ13", "PST8PDT,M3.2.0,M11.1.0", "../etc"])
def test_unknown_tz_is_refused(tz: str) -> None:
    with pytest.raises(ConfigError) as err:
        load({"TZ": tz})
    assert "TZ" in str(err.value)


def test_latin1_comment_in_backup_conf(tmp_path: Path) -> None:
    # A UnicodeDecodeError traceback before; the shell never cared about the encoding.
    path = tmp_path / "backup.conf"
    path.write_bytes(b"# caf\xe9 Montr\xe9al\r\nmysql-0.mysql/moodle\r\n")
    cfg = load_config_from_environment(environ={"BACKUP_CONF": str(path)})
    assert [d.core for d in cfg.databases] == ["mysql-0.mysql-moodle"]


def test_latin1_database_line_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "backup.conf"
    path.write_bytes(b"db/caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        load_config_from_environment(environ={"BACKUP_CONF": str(path)})
    assert f"{path}:1:" in str(err.value)


def test_secret_file_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    # A UnicodeDecodeError traceback before (it showed part of the password's bytes).
    pw = tmp_path / "pw"
    pw.write_bytes(b"p\xe9ss\xff\n")
    env = {"DATABASE_SERVICE_NAME": "db", "DATABASE_NAME": "m", "DATABASE_PASSWORD_FILE": str(pw)}
    with pytest.raises(ConfigError) as err:
        load_config(env, None, "/backup.conf")
    assert "DATABASE_PASSWORD_FILE" in str(err.value)
    assert "\\xe9" not in str(err.value) and "p\xe9ss" not in str(err.value)


@pytest.mark.parametrize(
    "env,key",
    [
        ({"WEBHOOK_URL": "hooks.example.com/T0K3N"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "not a url T0K3N"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "https://"}, "WEBHOOK_URL"),
        ({"PGDUTY_URL": "ftp://events.example"}, "PGDUTY_URL"),
    ],
)
def test_notification_urls_are_checked_by_config(env: dict[str, str], key: str) -> None:
    # Accepted by `moodump config`; the run failed at its first notification instead.
    with pytest.raises(ConfigError) as err:
        load(env)
    assert key in str(err.value)
    assert "T0K3N" not in str(err.value) + err.value.hint


def test_notification_url_accepted() -> None:
    cfg = load({"WEBHOOK_URL": "HTTPS://chat.example.org/hooks/T0K3N"})
    assert cfg.webhook_url is not None


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("FTP_URL", "ftps://backup:pw-Secret-9@ftp.example:21a/moodle/"),
        ("S3_ENDPOINT", "https://AKIA:pw-Secret-9@s3.example:4433x"),
        ("S3_ENDPOINT", "https://s3.example:99999"),
        ("FTP_URL", "sftp://backup:pw-Secret-9@ftp.example/moodle/"),  # no SFTP: a note too
        ("S3_ENDPOINT", "minio:9000"),  # mc's rule: a scheme is required
        ("S3_ENDPOINT", "http://minio:9000/moodle-backups"),  # the bucket in the endpoint
        ("FTP_URL", "ftps://ftp.example/backups/?passive=1"),
    ],
)
def test_config_output_of_a_url_with_a_bad_port(key: str, url: str) -> None:
    """``moodump config`` crashed with a ValueError traceback (urllib's port) on a URL whose
    port is no number; it shows the URL (password masked) and notes that the off-site
    copies there will fail, as `moodump run` reports them (the backups still run)."""
    cfg = load({key: url, "S3_BUCKET": "moodle"})
    now = datetime(2026, 12, 31, 12, tzinfo=ZoneInfo("UTC"))
    out = cfg.render(now=now) + cfg.to_json(now=now)
    assert "pw-Secret-9" not in out
    assert any(key in n and "will fail" in n for n in cfg.notes), cfg.notes


def test_a_webhook_url_with_a_bad_port_is_refused_without_its_token() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_URL") as info:
        load({"WEBHOOK_URL": "https://hooks.example:44x/T0K3N-Secret"})
    assert "T0K3N" not in str(info.value) and "port" in str(info.value)
    with pytest.raises(ConfigError, match="WEBHOOK_URL") as info:  # urllib: "Invalid IPv6 URL"
        load({"WEBHOOK_URL": "https://[::1/T0K3N-Secret"})
    assert "T0K3N" not in str(info.value)


@pytest.mark.parametrize("char", ["/", "?", "#"])
def test_a_password_with_a_url_delimiter_in_a_url_setting_is_never_shown(char: str) -> None:
    """A generated password holding an unencoded ``/``, ``?`` or ``#`` in FTP_URL or
    S3_ENDPOINT (``ftps://backup:Ab/cd@host/path/``): urllib ends the host part there,
    finds no password, and ``moodump config`` printed the URL in clear; the copy step's
    error ("Port could not be cast to integer value as 'Ab'") logged its first part.
    Config masks it and notes how to write it; the copy step refuses it without it."""
    secret = f"pw-Sec{char}ret-7"
    env = {
        "FTP_URL": f"ftps://backup:{secret}@ftp.example/moodle/",
        "S3_ENDPOINT": f"http://AKIA:{secret}@s3.example:9000",
        "S3_BUCKET": "moodle",
    }
    cfg = load(env)
    now = datetime(2026, 12, 31, 12, tzinfo=ZoneInfo("UTC"))
    out = cfg.render(now=now) + cfg.to_json(now=now)
    assert "pw-Sec" not in out and "ret-7" not in out
    for key in ("FTP_URL", "S3_ENDPOINT"):
        assert any(key in n and "percent-encode" in n for n in cfg.notes), cfg.notes
    from moodump.storage import parse_endpoint, parse_ftp_url

    for parse, url, told in (
        (parse_ftp_url, env["FTP_URL"], "percent-encode"),
        (parse_endpoint, env["S3_ENDPOINT"], "S3_PASSWORD"),
    ):
        with pytest.raises(ConfigError) as info:
            parse(url)
        text = str(info.value)
        assert "pw-Sec" not in text and "ret-7" not in text and told in text, text
    with pytest.raises(ConfigError, match="WEBHOOK_URL") as info:  # a notification URL
        load({"WEBHOOK_URL": f"https://hook:{secret}@hooks.example/T0"})
    assert "pw-Sec" not in str(info.value) and "percent-encode" in str(info.value)
