"""A Moodle site's config.php drives ``moodump dump`` and ``moodump run --once``, with a
table prefix other than ``mdl_`` and credentials from config.php only; a running upgrade
(``upgraderunning`` in the future) postpones the backup and then fails it with exit 15;
DDL that breaks a dump is retried within MOODUMP_UPGRADE_WAIT.

Processes get an environment built from scratch (no MYSQL_*, no backup.conf): what
they know about the database comes from config.php.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import moodump
from helpers import run_sql
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.demo.sample import create_moodle_database
from moodump.dump import DumpOptions, ProgressEvent, dump
from moodump.errors import SchemaChanged, UpgradeRunning
from moodump.manifest import read_manifest

USER = "moo_site_bk"
PASSWORD = "Cfg-php'pw\"42"  # quotes: escaped in config.php
PREFIX = "moo_"

CONFIG_PHP = r"""<?php  // Moodle configuration file

unset($CFG);
global $CFG;
$CFG = new stdClass();

$CFG->dbtype    = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost    = '127.0.0.1';
$CFG->dbname    = '{db}';
$CFG->dbuser    = '{user}';
$CFG->dbpass    = '{password}';
$CFG->prefix    = '{prefix}';
$CFG->dboptions = array (
  'dbpersist' => 0,
  'dbport' => {port},
  'dbsocket' => '',
  'dbcollation' => 'utf8mb4_unicode_ci',
);

$CFG->wwwroot   = 'https://moodle.example.org';
$CFG->dataroot  = '{dataroot}';
$CFG->admin     = 'admin';

$CFG->directorypermissions = 0777;

require_once(__DIR__ . '/lib/setup.php');

// There is no php closing tag in this file,
// it is intentional because it prevents trailing whitespace problems!
"""


@pytest.fixture(scope="module")
def site(
    root_settings: ConnSettings, mariadb: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A sample Moodle database with the moo_ prefix, an account, config.php, dataroot."""
    name = "t_moodle_site"
    create_moodle_database(root_settings, name, scale=0.0005, prefix=PREFIX, drop_existing=True)
    with connect(root_settings) as c:
        c.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY 'x'")
        c.execute(
            f"ALTER USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD.replace(chr(39), chr(39) * 2)}'"
        )
        c.execute(f"GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON *.* TO '{USER}'@'%'")
    tmp = tmp_path_factory.mktemp("site")
    dataroot = tmp / "moodledata"
    dataroot.mkdir()
    php = tmp / "config.php"
    php.write_text(
        CONFIG_PHP.format(
            db=name, user=USER, password=PASSWORD.replace("\\", "\\\\").replace("'", "\\'"),
            prefix=PREFIX, port=mariadb.port, dataroot=dataroot,
        )
    )  # fmt: skip
    yield {"db": name, "php": php, "dataroot": dataroot, "tmp": tmp}
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        c.execute(f"DROP USER IF EXISTS '{USER}'@'%'")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "PYTHONPATH": str(Path(moodump.__file__).resolve().parents[1]),
        "TZ": "UTC",
        **extra,
    }


def _moodump(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moodump", *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _config_sql(root: ConnSettings, db: str, sql: str) -> None:
    with connect(root.with_database(db)) as c:
        c.execute(sql)


def test_dump_with_config_php_only(site: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b"
    got = _moodump(
        tmp_path, _env(tmp_path), "dump", "--moodle-config", str(site["php"]), "-o", str(out), "-q"
    )
    assert got.returncode == 0, got.stderr
    assert PASSWORD not in got.stdout + got.stderr
    m = read_manifest(out)
    assert m.status == "DONE" and m.database == site["db"]
    assert any(t.name == f"{PREFIX}config" for t in m.tables)
    assert m.moodle is not None
    assert m.moodle["prefix"] == PREFIX and m.moodle["version"]
    assert m.moodle["maintenance"] is False and m.moodle["climaintenance"] is False
    assert m.moodle["upgraderunning"] is None and m.moodle["attempts"] == 1


def test_dump_records_maintenance_mode(
    site: dict[str, Any], root_settings: ConnSettings, tmp_path: Path
) -> None:
    """MOODLE_CONFIG (no flag) and both kinds of maintenance: the config row and
    Moodle's CLI maintenance file in the dataroot."""
    db, flag = site["db"], site["dataroot"] / "climaintenance.html"
    _config_sql(
        root_settings,
        db,
        f"INSERT INTO {PREFIX}config (name, value) VALUES ('maintenance_enabled', '1')",
    )
    flag.write_text("<h1>Upgrade</h1>")
    try:
        out = tmp_path / "b"
        env = _env(tmp_path, MOODLE_CONFIG=str(site["php"]))
        got = _moodump(tmp_path, env, "dump", "-o", str(out), "-q", "--json")
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["database"] == db
        m = read_manifest(out)
        assert m.moodle is not None
        assert m.moodle["maintenance_enabled"] is True and m.moodle["climaintenance"] is True
        assert m.moodle["maintenance"] is True
    finally:
        flag.unlink()
        _config_sql(
            root_settings, db, f"DELETE FROM {PREFIX}config WHERE name = 'maintenance_enabled'"
        )


def test_run_once_with_config_php_only_and_an_upgrade_running(
    site: dict[str, Any], root_settings: ConnSettings, tmp_path: Path
) -> None:
    db = site["db"]
    env = _env(
        tmp_path, MOODLE_CONFIG=str(site["php"]), BACKUP_DIR=str(tmp_path / "backups"),
        MOODUMP_UPGRADE_WAIT="2",
    )  # fmt: skip
    # `moodump config` shows where everything came from, never the password.
    shown = _moodump(tmp_path, env, "config")
    assert shown.returncode == 0, shown.stderr
    assert PASSWORD not in shown.stdout + shown.stderr
    assert f"127.0.0.1:{root_settings.port}/{db}" in shown.stdout and "config.php" in shown.stdout
    as_json = _moodump(tmp_path, env, "config", "--json")
    assert as_json.returncode == 0 and PASSWORD not in as_json.stdout + as_json.stderr
    (database,) = json.loads(as_json.stdout)["databases"]
    assert database["password"] == "****" and database["user"] == USER
    env["BACKUP_LOG_LEVEL"] = "debug"  # the most a log says

    # An upgrade holds the site for an hour: the run waits 2 s, then fails with 15.
    _config_sql(
        root_settings, db,
        f"INSERT INTO {PREFIX}config (name, value) VALUES ('upgraderunning', UNIX_TIMESTAMP() + 3600)",
    )  # fmt: skip
    try:
        got = _moodump(tmp_path, env, "run", "--once")
        assert got.returncode == UpgradeRunning.exit_code == 15, got.stderr
        assert "a Moodle upgrade is running" in got.stderr and "waiting" in got.stderr
        assert "MOODUMP_UPGRADE_WAIT=2" in got.stderr
        assert PASSWORD not in got.stdout + got.stderr
        manifests = [read_manifest(p.parent) for p in (tmp_path / "backups").rglob("manifest.json")]
        assert [m.status for m in manifests] == ["FAILED"]
        assert manifests[0].moodle and manifests[0].moodle["upgraderunning_waited_for"]
        # `moodump dump` checks too; --upgrade-wait 0 fails at once, publishing nothing.
        out = tmp_path / "one-off"
        got = _moodump(tmp_path, env, "dump", "--upgrade-wait", "0", "-o", str(out))
        assert got.returncode == 15 and "a Moodle upgrade is running" in got.stderr
        assert not out.exists()
    finally:
        _config_sql(root_settings, db, f"DELETE FROM {PREFIX}config WHERE name = 'upgraderunning'")

    # The upgrade is over: the same run backs up.
    got = _moodump(tmp_path, env, "run", "--once")
    assert got.returncode == 0, got.stderr
    done = [
        read_manifest(p.parent)
        for p in (tmp_path / "backups").rglob("manifest.json")
        if read_manifest(p.parent).status == "DONE"
    ]
    assert len(done) == 1 and done[0].database == db
    assert done[0].moodle and done[0].moodle["prefix"] == PREFIX
    assert done[0].moodle["climaintenance"] is False  # the dataroot came from config.php
    assert done[0].host == "127.0.0.1" and done[0].port == root_settings.port
    for path in (tmp_path / "backups").rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            assert PASSWORD.encode() not in path.read_bytes(), path


def _ddl_once(root_settings: ConnSettings, db: str) -> tuple[threading.Event, Any]:
    fired = threading.Event()

    def on_progress(ev: ProgressEvent) -> None:
        # As in test_consistency: `small` is not read yet, so nothing blocks this ALTER.
        if ev.phase == "data" and not fired.is_set():
            fired.set()
            with connect(root_settings) as c:
                c.execute("SET SESSION lock_wait_timeout = 5")
                c.execute(f"ALTER TABLE {quote_ident(db)}.small ADD COLUMN extra INT")

    return fired, on_progress


def _ddl_tables(root_settings: ConnSettings, db: str) -> None:
    run_sql(
        root_settings,
        "CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(200));"
        "INSERT INTO big SELECT seq, 'x' FROM seq_1_to_20000;"
        "CREATE TABLE small (id INT PRIMARY KEY, pad CHAR(10));"
        "INSERT INTO small VALUES (1, 'a'), (2, 'b');",
        db,
    )


def test_a_dump_broken_by_ddl_is_retried_within_the_upgrade_wait(
    root_settings: ConnSettings, fresh_db: str, tmp_path: Path
) -> None:
    _ddl_tables(root_settings, fresh_db)
    fired, on_progress = _ddl_once(root_settings, fresh_db)
    out = tmp_path / "b"
    opts = DumpOptions(threads=1, record_failure=True, upgrade_wait=30)
    result = dump(root_settings, fresh_db, out, opts, progress=on_progress)
    assert fired.is_set()
    assert result.manifest.status == "DONE"
    assert (
        "extra"
        in (out / "schema")
        .joinpath(next(p.name for p in (out / "schema").iterdir() if "small" in p.name))
        .read_text()
    )
    assert not list(tmp_path.glob(".*partial*"))


def test_without_upgrade_wait_ddl_fails_the_dump_with_exit_9(
    root_settings: ConnSettings, fresh_db: str, tmp_path: Path
) -> None:
    _ddl_tables(root_settings, fresh_db)
    fired, on_progress = _ddl_once(root_settings, fresh_db)
    out = tmp_path / "b"
    opts = DumpOptions(threads=1, record_failure=True, upgrade_wait=0)
    with pytest.raises(SchemaChanged) as err:
        dump(root_settings, fresh_db, out, opts, progress=on_progress)
    assert err.value.exit_code == 9 and fired.is_set()
    assert read_manifest(out).status == "FAILED"
