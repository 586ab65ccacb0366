"""Moodle's config.php read without PHP (pure: text in, settings out)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodump.config import Secret, load_config
from moodump.config.moodlephp import Unreadable, parse_moodle_config
from moodump.db.credentials import ConnRequest, resolve_connection
from moodump.errors import ConfigError

# The shape of Moodle's config-dist.php (comments, unset/global/new stdClass, the
# dboptions array spread over lines with comments, require_once at the end).
CONFIG_DIST = r"""<?php  // Moodle configuration file
///////////////////////////////////////////////////////////////////////////
// Moodle configuration file                                             //
///////////////////////////////////////////////////////////////////////////
unset($CFG);  // Ignore this line
global $CFG;  // This is necessary here for PHPUnit execution
$CFG = new stdClass();

$CFG->dbtype    = 'mariadb';      // 'pgsql', 'mariadb', 'mysqli', 'sqlsrv' or 'oci'
$CFG->dblibrary = 'native';     // 'native' only at the moment
$CFG->dbhost    = 'db.example.org';  // eg 'localhost' or 'db.isp.com' or IP
$CFG->dbname    = 'moodle';     // database name, eg moodle
$CFG->dbuser    = 'moodleuser';   // your database username
$CFG->dbpass    = 'It\'s a "secret" \\ #1';   // your database password
$CFG->prefix    = 'moo_';       # prefix to use for all table names
/* $CFG->prefix = 'old_';
   a commented-out block */
$CFG->dboptions = array(
    'dbpersist' => false,       // should persistent database connections be
                                //  used? set to 'false' for the most stable
    'dbsocket'  => false,       // should connection via UNIX socket be used?
    'dbport'    => 3307,        // the TCP port number to use when connecting
    'dbcollation' => 'utf8mb4_unicode_ci', // MySQL has partial and full UTF-8
    // 'fetchbuffersize' => 100000,
);

$CFG->wwwroot   = 'https://moodle.example.org';
$CFG->dataroot  = '/var/moodledata';
$CFG->directorypermissions = 02777;
$CFG->admin = 'admin';
//      $CFG->dbpass = 'commented-out';
require_once(__DIR__ . '/lib/setup.php'); // Do not edit

// There is no php closing tag in this file,
// it is intentional because it prevents trailing whitespace problems!
"""


def test_config_dist_shape() -> None:
    site = parse_moodle_config(CONFIG_DIST, "/srv/moodle/config.php")
    assert site.check_engine() == "mariadb"
    assert site.text("dbhost") == "db.example.org"
    assert site.text("dbname") == "moodle"
    assert site.text("dbuser") == "moodleuser"
    assert site.text("dbpass") == 'It\'s a "secret" \\ #1'
    assert site.text("prefix") == "moo_"
    assert site.text("dataroot") == "/var/moodledata"
    assert site.text("wwwroot") == "https://moodle.example.org"
    assert site.port() == 3307
    assert site.socket() is None
    assert site.lines["dbpass"] == 14


def test_short_arrays_double_quotes_escapes_and_last_assignment_wins() -> None:
    text = r"""<?php
    $CFG->dbtype = "mysqli";
    $CFG->dbname = 'first';
    $CFG->dbname = "se\x63ond\t\u{263A}\101\$";
    $CFG->dboptions = ['dbport' => '3308', 'dbsocket' => '/run/mysqld/mysqld.sock',];
    $CFG->dboptions['dbport'] = 3309;
    $CFG->prefix = 'p_'; $CFG->dbhost = 'h';
    ?>
    <html>$CFG->dbhost = 'not php';</html>
    """
    site = parse_moodle_config(text)
    assert site.check_engine() == "mysqli"
    assert site.text("dbname") == "second\t\u263aA$"
    assert site.port() == 3309
    assert site.socket() == "/run/mysqld/mysqld.sock"
    assert site.text("prefix") == "p_"
    assert site.text("dbhost") == "h"


@pytest.mark.parametrize(
    ("rhs", "reason"),
    [
        ("getenv('DB_PASS')", "getenv('DB_PASS') and DB_PASS is not set"),
        ("'pre' . getenv('X')", "a concatenation"),
        ("$secret", "the variable $secret"),
        ("DB_PASSWORD", "the constant DB_PASSWORD"),
        ("file_get_contents('/run/secrets/db')", "a call to file_get_contents()"),
        ('"pw-$suffix"', "a double-quoted string with a variable"),
        ("'a' ?: 'fallback'", "a conditional expression"),
    ],
)
def test_unreadable_values_name_the_key_the_line_and_why(rhs: str, reason: str) -> None:
    text = f"<?php\n$CFG->dbtype = 'mariadb';\n$CFG->dbpass = {rhs};\n"
    site = parse_moodle_config(text, "/srv/config.php", env={})
    assert isinstance(site.values["dbpass"], Unreadable)
    with pytest.raises(ConfigError) as exc:
        site.text("dbpass", override="MYSQL_PWD")
    message = str(exc.value)
    assert "/srv/config.php:3: $CFG->dbpass cannot be read without running PHP" in message
    assert reason in message
    assert "MYSQL_PWD" in message  # what can be set instead


def test_getenv_is_read_from_the_given_environment() -> None:
    text = (
        "<?php $CFG->dbpass = getenv('DB_PASS'); $CFG->dboptions = array('dbport' => getenv('P'));"
    )
    site = parse_moodle_config(text, env={"DB_PASS": "from-env", "P": "3310"})
    assert site.text("dbpass") == "from-env"
    assert site.port() == 3310
    # No environment given: every getenv is unreadable.
    assert isinstance(parse_moodle_config(text).values["dbpass"], Unreadable)


def test_conditional_assignments_and_unreadable_array_elements() -> None:
    text = """<?php
    $CFG->dbhost = 'a';
    if ($x) { $CFG->dbhost = 'b'; }
    if ($y) $CFG->dbname = 'c';
    $CFG->dboptions = array('dbport' => PORT, 'dbsocket' => '');
    """
    site = parse_moodle_config(text)
    with pytest.raises(ConfigError, match=r":3: \$CFG->dbhost .* inside a condition"):
        site.text("dbhost")
    with pytest.raises(ConfigError, match=r":4: \$CFG->dbname"):
        site.text("dbname")
    with pytest.raises(ConfigError, match=r":5: \$CFG->dboptions\['dbport'\] .* constant PORT"):
        site.port()
    assert site.socket() is None  # the readable element stays readable


@pytest.mark.parametrize(
    ("dbtype", "message"),
    [("pgsql", "PostgreSQL sites are not handled yet"), ("sqlsrv", "backs up mysqli")],
)
def test_other_engines_are_refused(dbtype: str, message: str) -> None:
    site = parse_moodle_config(f"<?php $CFG->dbtype = '{dbtype}';")
    with pytest.raises(ConfigError, match=message):
        site.check_engine()


def test_flags_and_environment_win_over_config_php() -> None:
    site = parse_moodle_config(CONFIG_DIST)
    got = resolve_connection(ConnRequest(), env={"USER": "me"}, moodle=site)
    assert (got.host, got.port, got.user, got.password) == (
        "db.example.org", 3307, "moodleuser", 'It\'s a "secret" \\ #1',
    )  # fmt: skip
    env = {"MYSQL_HOST": "other", "MYSQL_PWD": "envpw", "MYSQL_TCP_PORT": "3306"}
    got = resolve_connection(ConnRequest(user="flag"), env=env, moodle=site)
    assert (got.host, got.port, got.user, got.password) == ("other", 3306, "flag", "envpw")
    # An unreadable dbpass is no error when MYSQL_PWD overrides it.
    unreadable = parse_moodle_config("<?php $CFG->dbtype='mariadb'; $CFG->dbpass=getenv('X');")
    got = resolve_connection(ConnRequest(), env={"MYSQL_PWD": "pw"}, moodle=unreadable)
    assert got.password == "pw"
    with pytest.raises(ConfigError, match=r"(?s)dbpass .* MYSQL_PWD"):
        resolve_connection(ConnRequest(), env={}, moodle=unreadable)


def test_run_configuration_from_config_php() -> None:
    env = {"MOODLE_CONFIG": "/srv/moodle/config.php"}
    cfg = load_config(env, None, "backup.conf", moodle_php=CONFIG_DIST)
    assert cfg.databases_from == "config.php"
    (db,) = cfg.databases
    assert (db.host, db.port, db.database, db.user) == (
        "db.example.org",
        3307,
        "moodle",
        "moodleuser",
    )
    assert isinstance(db.password, Secret) and db.password.reveal() == 'It\'s a "secret" \\ #1'
    assert db.dataroot == "/var/moodledata"
    assert cfg.moodle_prefix == "moo_"
    assert cfg.sources["moodle_prefix"] == "config.php /srv/moodle/config.php:15"
    rendered = cfg.render() + cfg.to_json()
    assert "secret" not in rendered and "config.php /srv/moodle/config.php:14" in rendered
    # The environment wins: MOODLE_PREFIX, DATABASE_USER/PASSWORD.
    env |= {"MOODLE_PREFIX": "x_", "DATABASE_USER": "u", "DATABASE_PASSWORD": "p"}
    cfg = load_config(env, None, "backup.conf", moodle_php=CONFIG_DIST)
    (db,) = cfg.databases
    assert (cfg.moodle_prefix, db.user, db.password and db.password.reveal()) == ("x_", "u", "p")


def test_run_configuration_refuses_a_postgresql_site() -> None:
    text = CONFIG_DIST.replace("'mariadb'", "'pgsql'")
    with pytest.raises(ConfigError, match=r"config.php:9: \$CFG->dbtype is 'pgsql'"):
        load_config({}, None, "backup.conf", moodle_php=text)


def test_cli_refuses_a_postgresql_config_php_and_a_dump_without_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from moodump.cli import main

    monkeypatch.delenv("MOODLE_CONFIG", raising=False)
    monkeypatch.setattr(signal, "signal", lambda *_args: None)  # main() sets SIGTERM's
    php = tmp_path / "config.php"
    php.write_text(CONFIG_DIST.replace("'mariadb'", "'pgsql'"))
    for args, code, message in [
        (["dump", "--moodle-config", str(php), "-o", str(tmp_path / "b")], 2, "PostgreSQL"),
        (["dump", "-o", str(tmp_path / "b"), "--password-file", str(php)], 2, "DATABASE"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == code
        assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_backup_conf_line_for_the_site_gets_its_account_and_dataroot() -> None:
    env = {"MOODLE_CONFIG": "/srv/moodle/config.php"}
    conf = "db.example.org:3307/moodle\nother-host/archive\n"
    cfg = load_config(env, conf, "backup.conf", moodle_php=CONFIG_DIST)
    site, other = cfg.databases
    assert cfg.databases_from == "backup.conf"
    assert (site.user, site.dataroot, site.user_source) == (
        "moodleuser", "/var/moodledata", "config.php /srv/moodle/config.php:13",
    )  # fmt: skip
    assert (other.user, other.password, other.dataroot) == ("", None, "")


_FRAGMENTS = [
    "<?php ", "?>", "$CFG->dbpass", "$CFG->dboptions", "$CFG", "->", " = ", ";", "'a\\'b'",
    '"x$y"', '"\\x41"', "array(", "[", "]", ")", "'dbport' => ", "3306", "getenv('P')", ".",
    "// c\n", "# c\n", "/* c", "*/", "{", "}", "if ($x) ", "\n", "<<<EOT\n", ",", "'",
    '"', "\\", "-", "0x", "true", "null",
]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30))
def test_any_text_parses_without_crashing(parts: list[str]) -> None:
    """Whatever the file holds, the parser returns (values or Unreadable), never raises."""
    site = parse_moodle_config("".join(parts), env={"P": "1"})
    for key in site.values:
        with contextlib.suppress(ConfigError):
            site.text(key)
