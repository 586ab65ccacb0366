"""Moodle beyond the database (issue 14, items 3-5), on the sample Moodle database
(with the table prefix ``mf_``):

- ``check-files`` passes on a complete generated moodledata, and names a deleted and a
  corrupted content file (from a backup and from the live table);
- ``restore --moodle-maintenance`` keeps ``climaintenance.html`` during the restore and
  after a failure, and removes it after a successful restore and cache purge;
- ``restore --staging`` leaves no original e-mail address or password hash anywhere in
  the copy (every text column of every table is searched), and lists its changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers_failures import Source, conn_args, run_cli
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident, quote_str
from moodump.demo.sample import create_moodle_database
from moodump.dump import DumpOptions, dump
from moodump.errors import ConfigError, TargetNotEmpty
from moodump.moodlesite import EMPTY_SHA1, MAINTENANCE_FILE, content_path
from moodump.restore import RestoreOptions, restore

PREFIX = "mf_"  # not mdl_: every feature must honour the site's table prefix


@pytest.fixture(scope="module")
def moodle(
    root_settings: ConnSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The sample Moodle database and a DONE backup of it."""
    name = "t_moodle_files"
    create_moodle_database(root_settings, name, scale=0.0005, prefix=PREFIX, drop_existing=True)
    backup = dump(
        root_settings, name, tmp_path_factory.mktemp("mf") / "backup", DumpOptions(threads=2)
    ).path
    yield name, backup
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def _query(settings: ConnSettings, db: str, sql: str) -> list[tuple[bytes | None, ...]]:
    with connect(settings.with_database(db)) as c:
        return c.query(sql)


def make_moodledata(settings: ConnSettings, db: str, root: Path) -> list[str]:
    """A dataroot whose filedir holds the real content of every referenced file.

    The sample generator's content hashes are SHA1('content<k>'), so the content of
    each can be written back exactly."""
    hashes = {
        (r[0] or b"").decode()
        for r in _query(
            settings, db, f"SELECT contenthash FROM {PREFIX}files WHERE filename <> '.'"
        )
    }
    total = int(_query(settings, db, f"SELECT COUNT(*) FROM {PREFIX}files")[0][0] or 0)
    contents = {}
    for k in range(max(1, total // 2)):
        data = f"content{k}".encode()
        contents[hashlib.sha1(data).hexdigest()] = data
    for h in hashes - {EMPTY_SHA1}:
        p = content_path(root / "filedir", h)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(contents[h])  # KeyError: the generator changed its content hashes
    (root / "filedir" / "warning.txt").write_text("Moodle's own note, not a content file\n")
    (root / "trashdir").mkdir()
    return sorted(hashes - {EMPTY_SHA1})


def _check(*args: str) -> tuple[int, str, str]:
    proc = run_cli("check-files", *args)
    return proc.returncode, proc.stdout, proc.stderr


def test_check_files_complete_then_broken(
    moodle: tuple[str, Path], root_settings: ConnSettings, tmp_path: Path
) -> None:
    db, backup = moodle
    data = tmp_path / "moodledata"
    hashes = make_moodledata(root_settings, db, data)
    assert len(hashes) > 20

    # Complete: passes from the backup and from the live table, every SHA-1 checked.
    code, out, err = _check("--moodledata", str(data), str(backup), "--hash", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["passed"] and doc["referenced"] == len(hashes) == doc["present"] == doc["hashed"]
    assert doc["missing"]["count"] == doc["corrupt"]["count"] == doc["orphans"]["count"] == 0
    assert doc["directory_rows"] > 0
    code, out, err = _check("--moodledata", str(data), "--live", "-d", db, "--prefix", PREFIX,
                            *conn_args(root_settings), "--sample", "5", "--seed", "7")  # fmt: skip
    assert code == 0, err
    assert "PASS" in out and "--seed 7" in out

    # Broken: one content file deleted, one corrupted (same size), one orphan added.
    deleted, corrupted = hashes[3], hashes[11]
    content_path(data / "filedir", deleted).unlink()
    c = content_path(data / "filedir", corrupted)
    c.write_bytes(bytes(b ^ 1 for b in c.read_bytes()))
    orphan = hashlib.sha1(b"nobody points at me").hexdigest()
    content_path(data / "filedir", orphan).parent.mkdir(parents=True, exist_ok=True)
    content_path(data / "filedir", orphan).write_bytes(b"nobody points at me")

    code, out, err = _check("--moodledata", str(data), str(backup), "--hash")
    assert code == 11, (out, err)
    assert f"missing: {content_path(data / 'filedir', deleted)}" in out
    assert f"corrupt: {content_path(data / 'filedir', corrupted)}" in out
    assert f"orphan: {content_path(data / 'filedir', orphan)}" in out
    assert "1 content file(s) missing, 1 corrupt" in err
    # The missing file is named with the row that lost it.
    row = _query(root_settings, db, f"SELECT filename FROM {PREFIX}files WHERE contenthash = "
                 f"{quote_str(deleted)} AND filename <> '.' ORDER BY id LIMIT 1")[0][0]  # fmt: skip
    assert repr((row or b"").decode()) in out

    # Live, without hashing: the deletion is found, the corruption is not looked for.
    code, out, err = _check("--moodledata", str(data), "--live", "-d", db, "--prefix", PREFIX,
                            *conn_args(root_settings), "--json")  # fmt: skip
    assert code == 11
    doc = json.loads(out)
    assert [e["contenthash"] for e in doc["missing"]["examples"]] == [deleted]
    assert doc["missing"]["examples"][0]["row"]["filename"] == (row or b"").decode()
    assert doc["corrupt"]["count"] == 0 and doc["orphans"]["count"] == 1


def test_check_files_honours_the_prefix(moodle: tuple[str, Path], tmp_path: Path) -> None:
    _db, backup = moodle
    (tmp_path / "filedir").mkdir()
    code, _out, err = _check("--moodledata", str(tmp_path), str(backup), "--prefix", "m2_")
    assert code == 5 and "no table m2_files" in err


def test_check_files_refuses_a_backup_without_the_files_rows(
    moodle: tuple[str, Path], root_settings: ConnSettings, tmp_path: Path
) -> None:
    db, _backup = moodle
    opts = DumpOptions(threads=1, tables=(f"{PREFIX}files",), exclude_data=(f"{PREFIX}files",))
    schema_only = dump(root_settings, db, tmp_path / "b", opts).path
    (tmp_path / "filedir").mkdir()
    code, _out, err = _check("--moodledata", str(tmp_path), str(schema_only))
    assert code == 5 and f"holds no rows of {PREFIX}files" in err


CONFIG_PHP = """<?php  // Moodle configuration file
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype    = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost    = '127.0.0.1';
$CFG->dbname    = '{db}';
$CFG->dbuser    = 'root';
$CFG->dbpass    = '';
$CFG->prefix    = '{prefix}';
$CFG->dboptions = array('dbpersist' => 0, 'dbport' => {port}, 'dbsocket' => '');
$CFG->wwwroot   = 'https://moodle.example.org';
$CFG->dataroot  = '{dataroot}';
require_once(__DIR__ . '/lib/setup.php');
"""


def test_config_php_gives_database_prefix_and_dataroot(
    moodle: tuple[str, Path], root_settings: ConnSettings, fresh_db: str, tmp_path: Path
) -> None:
    db, backup = moodle
    data = tmp_path / "moodledata"
    make_moodledata(root_settings, db, data)
    php = tmp_path / "config.php"
    php.write_text(CONFIG_PHP.format(db=db, prefix=PREFIX, port=root_settings.port, dataroot=data))
    code, out, err = _check("--moodle-config", str(php), "--live")
    assert code == 0, err
    assert f"live root@127.0.0.1:{root_settings.port}/{db}" in out and "PASS" in out
    code, out, err = _check("--moodle-config", str(php), str(backup), "--json")
    assert code == 0 and json.loads(out)["prefix"] == PREFIX, err

    # restore --moodle-maintenance takes the dataroot from config.php (the target is
    # another database: flags win over config.php's dbname)
    proc = run_cli("restore", str(backup), "--moodle-config", str(php), "-d", fresh_db,
                   "--drop", "--yes", "--moodle-maintenance")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "maintenance mode: lifted" in proc.stdout and not (data / MAINTENANCE_FILE).exists()


# -- maintenance mode ---------------------------------------------------------------------
def test_maintenance_file_during_restore_kept_on_failure_removed_on_success(
    moodle: tuple[str, Path], root_settings: ConnSettings, fresh_db: str, tmp_path: Path
) -> None:
    db, backup = moodle
    dataroot = tmp_path / "moodledata"
    dataroot.mkdir()
    flag = dataroot / MAINTENANCE_FILE
    seen: list[tuple[str, bool]] = []
    opts = RestoreOptions(threads=2, drop=True, moodle_maintenance=dataroot)
    res = restore(backup, root_settings, fresh_db, opts,
                  progress=lambda e: seen.append((e.phase, flag.exists())))  # fmt: skip
    assert seen and all(present for _phase, present in seen), seen  # from the first event
    assert {"check", "schema", "data", "done"} <= {p for p, _ in seen}
    assert not flag.exists()
    assert res.moodle is not None and "lifted" in res.moodle["maintenance"]
    assert any(f"emptied {PREFIX}cache_flags" in x for x in res.moodle["caches_purged"])
    assert (
        _query(root_settings, fresh_db, f"SELECT COUNT(*) FROM {PREFIX}cache_flags")[0][0] == b"0"
    )
    src_rev = _query(root_settings, db, f"SELECT value FROM {PREFIX}config WHERE name='themerev'")
    new_rev = _query(
        root_settings, fresh_db, f"SELECT value FROM {PREFIX}config WHERE name='themerev'"
    )
    if src_rev:
        assert int(new_rev[0][0] or 0) > int(src_rev[0][0] or 0)

    # A failed restore (the target is not empty and neither --drop nor --atomic) leaves
    # the site in maintenance and says so.
    with pytest.raises(TargetNotEmpty) as exc:
        restore(backup, root_settings, fresh_db, RestoreOptions(moodle_maintenance=dataroot))
    assert flag.exists()
    assert "maintenance mode" in str(exc.value) and str(flag) in str(exc.value)

    # Through the CLI: a successful restore lifts it again.
    proc = run_cli("restore", str(backup), "-d", fresh_db, *conn_args(root_settings), "--drop",
                   "--yes", "--moodle-maintenance", "--moodledata", str(dataroot))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not flag.exists() and "maintenance mode: lifted" in proc.stdout

    # The operator's own maintenance file is never removed.
    flag.write_text("<p>down for the upgrade</p>")
    res = restore(backup, root_settings, fresh_db, opts)
    assert flag.read_text() == "<p>down for the upgrade</p>"
    assert res.moodle is not None and res.moodle["maintenance"].startswith("left on")


# -- staging copies -----------------------------------------------------------------------
_TEXT = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")


def _all_text(settings: ConnSettings, db: str) -> Iterator[tuple[str, str, bytes]]:
    cols = _query(
        settings, db,
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
        f"{quote_str(db)} AND DATA_TYPE IN ({', '.join(quote_str(t) for t in _TEXT)})",
    )  # fmt: skip
    by_table: dict[str, list[str]] = {}
    for t, c in cols:
        by_table.setdefault((t or b"").decode(), []).append((c or b"").decode())
    with connect(settings.with_database(db)) as conn:
        for t, names in sorted(by_table.items()):
            sel = ", ".join(quote_ident(n) for n in names)
            for row in conn.query(f"SELECT {sel} FROM {quote_ident(t)}"):
                for n, v in zip(names, row, strict=True):
                    if v:
                        yield t, n, v


def test_staging_restore_leaves_no_email_or_password_hash(
    moodle: tuple[str, Path], root_settings: ConnSettings, fresh_db: str
) -> None:
    db, backup = moodle
    secrets = [
        v
        for r in _query(root_settings, db, f"SELECT email, password FROM {PREFIX}user")
        for v in r
        if v and v not in (b"", b" ")
    ]
    assert len(secrets) > 50
    # The source holds them (the search works), the staging copy nowhere.
    pattern = re.compile(
        b"|".join(re.escape(s) for s in sorted(set(secrets), key=len, reverse=True))
    )
    assert any(pattern.search(v) for _t, _c, v in _all_text(root_settings, db))

    res = restore(
        backup,
        root_settings,
        fresh_db,
        RestoreOptions(threads=2, drop=True, atomic=True, staging=True),
    )
    hits = [(t, c) for t, c, v in _all_text(root_settings, fresh_db) if pattern.search(v)]
    assert hits == []

    assert res.moodle is not None
    changes = {(c["table"], c["column"]): c for c in res.moodle["staging"]["changes"]}
    users = int(_query(root_settings, fresh_db, f"SELECT COUNT(*) FROM {PREFIX}user")[0][0] or 0)
    assert changes[(f"{PREFIX}user", "email")]["rows"] == users
    assert changes[(f"{PREFIX}user", "password")]["rows"] == users
    assert changes[(f"{PREFIX}sessions", "sid")]["rows"] > 0
    assert changes[(f"{PREFIX}config", "noemailever")]["action"] == "set to '1'"
    assert _query(root_settings, fresh_db, f"SELECT COUNT(*) FROM {PREFIX}sessions")[0][0] == b"0"
    assert _query(
        root_settings, fresh_db, f"SELECT email, password FROM {PREFIX}user WHERE id = 2"
    ) == [(b"user2@example.invalid", b"not cached")]
    conf = dict(_query(root_settings, fresh_db, f"SELECT name, value FROM {PREFIX}config WHERE "
                       "name IN ('noemailever', 'cron_enabled')"))  # fmt: skip
    assert conf == {b"noemailever": b"1", b"cron_enabled": b"0"}


def test_staging_restore_from_the_command_line_lists_the_changes(
    moodle: tuple[str, Path], root_settings: ConnSettings, fresh_db: str
) -> None:
    _db, backup = moodle
    proc = run_cli("restore", str(backup), "-d", fresh_db, *conn_args(root_settings), "--drop",
                   "--yes", "--staging")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "staging copy, scrubbed:" in proc.stdout
    assert f"user e-mail: {PREFIX}user.email email, " in proc.stdout
    assert f"sessions: {PREFIX}sessions.sid empty, " in proc.stdout
    assert f"outgoing mail off: {PREFIX}config.noemailever set to '1', 1 rows" in proc.stdout
    emails = _query(root_settings, fresh_db, f"SELECT DISTINCT SUBSTRING_INDEX(email, '@', -1) "
                    f"FROM {PREFIX}user WHERE email <> ''")  # fmt: skip
    assert emails == [(b"example.invalid",)]


def test_staging_refuses_a_schema_without_the_columns_before_touching_anything(
    small: Source, root_settings: ConnSettings, tmp_path: Path
) -> None:
    target = "t_staging_refused"
    dataroot = tmp_path / "moodledata"
    dataroot.mkdir()
    with pytest.raises(ConfigError) as exc:
        restore(small.backup, root_settings, target,
                RestoreOptions(staging=True, moodle_maintenance=dataroot))  # fmt: skip
    assert "table mdl_user is missing" in str(exc.value)
    with connect(root_settings) as c:
        assert not c.query(
            f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {quote_str(target)}"
        )
    assert not (dataroot / MAINTENANCE_FILE).exists()  # refused before anything happened


# -- scheduled runs -----------------------------------------------------------------------
def test_scheduled_run_checks_moodledata_and_records_it_beside_the_manifest(
    moodle: tuple[str, Path], root_settings: ConnSettings, tmp_path: Path
) -> None:
    from datetime import datetime, timezone

    from moodump import jobs
    from moodump.config import load_config
    from moodump.manifest import read_manifest
    from moodump.notify import Notifier

    db, _backup = moodle
    data = tmp_path / "moodledata"
    hashes = make_moodledata(root_settings, db, data)
    content_path(data / "filedir", hashes[0]).unlink()
    conf = tmp_path / "backup.conf"
    conf.write_text(f"127.0.0.1:{root_settings.port}/{db}\n", encoding="utf-8")
    env = {
        "BACKUP_DIR": f"{tmp_path / 'backups'}/", "TZ": "UTC", "DATABASE_USER": "root",
        "MOODUMP_THREADS": "2", "MOODUMP_VERIFY_AFTER_BACKUP": "none",
        "MOODUMP_CHECK_FILES": "exists", "MOODUMP_CHECK_FILES_SAMPLE": "3",
        "MOODLE_DATAROOT": str(data),
    }  # fmt: skip
    cfg = load_config(env, conf.read_text(), str(conf))
    report = jobs.run_once(cfg, now=datetime(2026, 11, 17, 1, 0, tzinfo=timezone.utc),
                           notifier=Notifier())  # fmt: skip
    (d,) = report.to_dict()["databases"]
    assert d["backup_ok"] and d["status"] == "warning"
    fc = d["files_check"]
    assert (fc["passed"], fc["missing"], fc["hash_mode"], fc["hashed"]) == (False, 1, "sample", 3)
    assert any(hashes[0] in w for w in d["warnings"])
    assert [c["level"] for c in d["checks"] if c["check"] == "moodledata"] == ["warn"]
    path = Path(d["path"])
    record = json.loads((path / "files-check.json").read_text())
    assert record["missing"]["examples"][0]["contenthash"] == hashes[0]
    assert read_manifest(path).status == "DONE"  # the manifest itself is untouched

    # ...and in the metrics
    from moodump.jobs.metrics import Facts, metrics_text
    from moodump.jobs.state import RunState, apply_report

    text = metrics_text(apply_report(RunState(), report), Facts())
    assert re.search(r"^moodump_moodledata_missing_files\{[^}]*\} 1\.0$", text, re.M), text
    assert re.search(r"^moodump_moodledata_last_ok\{[^}]*\} 0\.0$", text, re.M)
