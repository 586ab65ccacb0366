"""``moodump restore`` survives crashes and protects its target (issue 3, points 2-4).

A restore killed with ``kill -9`` — the moodump process, or the database server itself —
continues with ``--resume`` to an exact result; a non-empty target is refused without
``--drop``; ``--atomic`` leaves the target either old or new; ``--table`` touches only the
named tables. Processes are really killed; results are compared with CHECKSUM TABLE and
SHOW CREATE against the source database.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbcompare import compare_databases
from helpers_failures import (
    Source,
    checksums,
    conn_args,
    copy_backup,
    data_file_names,
    databases,
    drop_database,
    execute,
    finish,
    rewrite_data_file,
    run_cli,
    spawn_cli,
    tables,
    unique_db,
    wait_for,
)
from moodump.db import Connection, ConnSettings, connect
from moodump.db.connection import quote_ident, quote_str
from moodump.db.localserver import LocalServer
from moodump.dump import DumpOptions, dump
from moodump.errors import Interrupted, NotFoundError
from moodump.restore import PROGRESS_TABLE, RestoreEvent, RestoreOptions, restore


@pytest.fixture()
def target(root_settings: ConnSettings) -> Iterator[str]:
    """A database name nobody uses yet; dropped (with any staging leftovers) afterwards."""
    name = unique_db("mdt")
    yield name
    for db in databases(root_settings):
        if db == name or db.startswith(name + "__md"):
            drop_database(root_settings, db)


def restore_cli(settings: ConnSettings, backup: Path, db: str, *extra: str) -> list[str]:
    return ["restore", str(backup), *conn_args(settings), "--database", db, "-q", *extra]


def progress_rows(c: Connection, db: str) -> int:
    """Files recorded as loaded in the target's progress table (0 while it does not exist)."""
    try:
        rows = c.query(f"SELECT COUNT(*) FROM {quote_ident(db)}.{quote_ident(PROGRESS_TABLE)}")
    except NotFoundError:
        return 0
    return int(rows[0][0] or 0)


def assert_same_as_source(settings: ConnSettings, src: Source, db: str) -> None:
    with connect(settings) as c:
        assert compare_databases(c, src.database, db) == []
    assert PROGRESS_TABLE not in tables(settings, db)


# -- resume after kill -9 ---------------------------------------------------------------------
def test_kill_9_of_restore_mid_load_then_resume_is_exact(
    root_settings: ConnSettings, big: Source, target: str
) -> None:
    n_files = len(data_file_names(big.backup))
    assert n_files >= 10, "the big backup must be split into many data files"
    proc = spawn_cli(*restore_cli(root_settings, big.backup, target, "--threads", "2"))
    with connect(root_settings) as c:
        wait_for(lambda: progress_rows(c, target) >= 1, "a first loaded file", proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded_at_kill = progress_rows(c, target)
    assert 1 <= loaded_at_kill < n_files, "the restore was not killed mid-way"

    res = run_cli(*restore_cli(root_settings, big.backup, target, "--resume", "--json"))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["files_skipped"] >= loaded_at_kill
    assert summary["files_skipped"] + summary["files_loaded"] == n_files
    assert_same_as_source(root_settings, big, target)


def test_resume_reports_skipped_files_in_its_summary_line(
    root_settings: ConnSettings, big: Source, target: str
) -> None:
    proc = spawn_cli(*restore_cli(root_settings, big.backup, target, "--threads", "1"))
    with connect(root_settings) as c:
        wait_for(lambda: progress_rows(c, target) >= 1, "a first loaded file", proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    res = run_cli("restore", str(big.backup), *conn_args(root_settings), "-d", target, "--resume")
    assert res.returncode == 0, res.stderr
    assert "already loaded" in res.stdout
    assert_same_as_source(root_settings, big, target)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_restore_exits_130_and_resumes_exactly(
    root_settings: ConnSettings, big: Source, target: str, sig: signal.Signals
) -> None:
    proc = spawn_cli(*restore_cli(root_settings, big.backup, target, "--threads", "2"))
    with connect(root_settings) as c:
        wait_for(lambda: progress_rows(c, target) >= 1, "a first loaded file", proc=proc)
        proc.send_signal(sig)
        rc, _, err = finish(proc, timeout=30)
        assert rc == 130, err
        assert "interrupted" in err and "--resume" in err.split("next step:")[1]
        assert 1 <= progress_rows(c, target) < len(data_file_names(big.backup))
    res = run_cli(*restore_cli(root_settings, big.backup, target, "--resume"))
    assert res.returncode == 0, res.stderr
    assert_same_as_source(root_settings, big, target)


@pytest.fixture()
def own_server() -> Iterator[LocalServer]:
    """A server of this test alone (it gets killed)."""
    server = LocalServer().start()
    yield server
    server.stop()


def test_server_killed_mid_restore_then_resume_is_exact(
    root_settings: ConnSettings, big: Source, own_server: LocalServer
) -> None:
    settings = ConnSettings(host="127.0.0.1", port=own_server.port, user="root")
    n_files = len(data_file_names(big.backup))
    proc = spawn_cli(*restore_cli(settings, big.backup, "victim", "--threads", "2"))
    with connect(settings) as c:
        # Two files, not one: InnoDB shows a commit to other sessions a moment before its
        # redo record is written, so the very last commit may not survive the kill.
        wait_for(lambda: progress_rows(c, "victim") >= 2, "two loaded files", proc=proc)
        own_server.kill()
    rc, _, err = finish(proc)
    assert rc == 6, err
    assert "Lost connection" in err or "gone away" in err or "Can't connect" in err
    assert "--resume" in err.split("next step:")[1]

    assert own_server.base_dir is not None
    again = LocalServer(base_dir=own_server.base_dir, port=own_server.port).start()
    try:
        with connect(settings) as c:
            (count,) = c.query(f"SELECT COUNT(*) FROM `victim`.{quote_ident(PROGRESS_TABLE)}")[0]
            loaded = int(count or 0)
        assert 1 <= loaded < n_files, (
            f"{loaded} of {n_files} files recorded after the restart; server log: "
            + own_server.log_path.read_text(errors="replace")[-3000:]
        )
        res = run_cli(*restore_cli(settings, big.backup, "victim", "--resume", "--json"))
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert summary["files_skipped"] == loaded
        assert summary["files_skipped"] + summary["files_loaded"] == n_files
        # Another server: compare checksums and definitions table by table.
        assert checksums(settings, "victim") == checksums(root_settings, big.database)
        with connect(root_settings) as a, connect(settings) as b:
            for t in ("w", "s"):
                want = a.query(f"SHOW CREATE TABLE {quote_ident(big.database)}.{quote_ident(t)}")
                assert b.query(f"SHOW CREATE TABLE `victim`.{quote_ident(t)}") == want
        assert PROGRESS_TABLE not in tables(settings, "victim")
    finally:
        again.stop(remove=False)


@pytest.mark.db  # a server of its own (own_server), not the session's: mark it by hand
def test_resume_after_a_server_restart_reloads_memory_tables(
    own_server: LocalServer, tmp_path: Path
) -> None:
    """A MEMORY table's rows are gone when the server restarts, but its files stayed
    recorded as loaded: --resume after a crash of the server skipped them and left the
    table empty. Its recorded files are loaded again on resume."""
    settings = ConnSettings(host="127.0.0.1", port=own_server.port, user="root")
    execute(settings, "CREATE DATABASE src")
    execute(
        settings,
        "CREATE TABLE mem (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=MEMORY",
        "INSERT INTO mem SELECT seq, REPEAT('m', 150) FROM seq_1_to_2000",
        "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB",
        "INSERT INTO t VALUES (1), (2)",
        database="src",
    )
    backup = tmp_path / "b"
    dump(settings, "src", backup, DumpOptions(threads=1))
    want = checksums(settings, "src")  # the source's MEMORY table empties with the restart
    stop = threading.Event()

    def on_event(e: RestoreEvent) -> None:
        if e.phase == "data" and e.table == "mem":  # mem is the bigger: it loads first
            stop.set()

    with pytest.raises(Interrupted):
        restore(backup, settings, "victim", RestoreOptions(threads=1), progress=on_event, stop=stop)
    own_server.stop(remove=False)
    assert own_server.base_dir is not None
    again = LocalServer(base_dir=own_server.base_dir, port=own_server.port).start()
    try:
        with connect(settings) as c:
            assert progress_rows(c, "victim") == 1
            assert c.query("SELECT COUNT(*) FROM `victim`.mem") == [(b"0",)]
        restore(backup, settings, "victim", RestoreOptions(resume=True))
        assert checksums(settings, "victim") == want
    finally:
        again.stop(remove=False)


# -- what the target may contain --------------------------------------------------------------
def test_resume_with_nothing_to_resume_exits_5(
    root_settings: ConnSettings, small: Source, target: str
) -> None:
    res = run_cli(*restore_cli(root_settings, small.backup, target, "--resume"))
    assert res.returncode == 5, res.stderr
    assert "nothing to resume" in res.stderr and "next step:" in res.stderr
    assert target not in databases(root_settings)
    # A finished restore has nothing to resume either.
    assert run_cli(*restore_cli(root_settings, small.backup, target)).returncode == 0
    before = checksums(root_settings, target)
    res = run_cli(*restore_cli(root_settings, small.backup, target, "--resume"))
    assert res.returncode == 5, res.stderr
    assert checksums(root_settings, target) == before


def _different_target(settings: ConnSettings, src: Source, db: str) -> None:
    """A target that holds an older, different copy plus a table the backup lacks."""
    res = run_cli(*restore_cli(settings, src.backup, db))
    assert res.returncode == 0, res.stderr
    execute(
        settings,
        "UPDATE a SET v = 'changed' WHERE id = 7",
        "DELETE FROM b WHERE id > 250",
        "CREATE TABLE extra (id INT PRIMARY KEY)",
        "INSERT INTO extra VALUES (1), (2)",
        database=db,
    )


def test_non_empty_target_without_drop_exits_12_and_is_untouched(
    root_settings: ConnSettings, small: Source, target: str
) -> None:
    _different_target(root_settings, small, target)
    before = checksums(root_settings, target)
    res = run_cli(*restore_cli(root_settings, small.backup, target))
    assert res.returncode == 12, res.stderr
    assert "not empty" in res.stderr and "--drop" in res.stderr.split("next step:")[1]
    assert checksums(root_settings, target) == before


def test_drop_replaces_the_target(root_settings: ConnSettings, small: Source, target: str) -> None:
    _different_target(root_settings, small, target)
    res = run_cli(*restore_cli(root_settings, small.backup, target, "--drop", "--yes"))
    assert res.returncode == 0, res.stderr
    assert_same_as_source(root_settings, small, target)


def test_atomic_replaces_a_different_target_completely(
    root_settings: ConnSettings, small: Source, target: str
) -> None:
    _different_target(root_settings, small, target)
    res = run_cli(*restore_cli(root_settings, small.backup, target, "--atomic"))
    assert res.returncode == 0, res.stderr
    assert_same_as_source(root_settings, small, target)
    assert not [d for d in databases(root_settings) if d.startswith(target + "__md")]


def _drop_first_row(rows: bytes) -> bytes:
    return rows.split(b"\n", 1)[1]


def _failed_atomic_restore(
    settings: ConnSettings, small: Source, db: str, tmp_path: Path
) -> dict[str, bytes | None]:
    """Restore --atomic over a different target from a backup that fails mid-load."""
    _different_target(settings, small, db)
    before = checksums(settings, db)
    broken = copy_backup(small, tmp_path / "broken")
    # Passes the sha256 precheck, then loads one row too few: fails after staging began.
    last = data_file_names(broken)[-1]
    rewrite_data_file(broken, last, _drop_first_row)
    res = run_cli(*restore_cli(settings, broken, db, "--atomic"))
    assert res.returncode == 8, res.stderr
    assert last in res.stderr and "rows" in res.stderr and "next step:" in res.stderr
    return before


def test_failed_atomic_restore_leaves_the_old_target_intact(
    root_settings: ConnSettings, small: Source, target: str, tmp_path: Path
) -> None:
    before = _failed_atomic_restore(root_settings, small, target, tmp_path)
    assert checksums(root_settings, target) == before
    assert tables(root_settings, target) == {"a", "b", "log", "ab", "extra"}
    with connect(root_settings) as c:
        trig = c.query(f"SHOW TRIGGERS FROM {quote_ident(target)}")
    assert sorted((r[0] or b"").decode() for r in trig) == ["a_bi", "b_ai"]


def test_failed_atomic_restore_removes_its_staging_database(
    root_settings: ConnSettings, small: Source, target: str, tmp_path: Path
) -> None:
    _failed_atomic_restore(root_settings, small, target, tmp_path)
    assert [d for d in databases(root_settings) if d.startswith(target + "__md")] == []


def test_atomic_restore_of_a_damaged_backup_changes_nothing(
    root_settings: ConnSettings, small: Source, target: str, tmp_path: Path
) -> None:
    _different_target(root_settings, small, target)
    before = checksums(root_settings, target)
    broken = copy_backup(small, tmp_path / "broken")
    name = data_file_names(broken)[0]
    raw = bytearray((broken / name).read_bytes())
    raw[len(raw) // 2] ^= 0x40
    (broken / name).write_bytes(bytes(raw))
    res = run_cli(*restore_cli(root_settings, broken, target, "--atomic"))
    assert res.returncode == 8, res.stderr
    assert name in res.stderr and "sha256" in res.stderr
    assert checksums(root_settings, target) == before
    assert not [d for d in databases(root_settings) if d.startswith(target + "__md")]


def _objects(settings: ConnSettings, db: str) -> dict[str, list[str]]:
    q = quote_str(db)
    sql = {
        "views": f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA={q}",
        "triggers": f"SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={q}",
        "routines": f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA={q}",
    }
    with connect(settings) as c:
        return {k: sorted((r[0] or b"").decode() for r in c.query(v)) for k, v in sql.items()}


def test_atomic_restore_whose_objects_fail_leaves_the_old_target(
    root_settings: ConnSettings, fresh_db: str, target: str, tmp_path: Path
) -> None:
    """--atomic promises the old target or the complete new one. The objects were created
    after the swap: one the server refused (a trigger on a column dropped after it was
    created, which the source keeps) left the new tables with part of their objects and
    the old objects dropped. They are now created and checked in the staging database
    first. The same for a --table restore whose trigger's name another table of the
    target already uses for its trigger (names are unique per database)."""
    execute(
        root_settings,
        "CREATE TABLE t (id INT PRIMARY KEY, v INT, gone INT)",
        "INSERT INTO t VALUES (1, 10, 0), (2, 20, 0)",
        "CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1",
        "CREATE VIEW v_new AS SELECT id, f() AS one FROM t",
        "CREATE TRIGGER ok_bu BEFORE UPDATE ON t FOR EACH ROW SET NEW.v = 1",
        "CREATE TRIGGER zz_broken BEFORE INSERT ON t FOR EACH ROW SET NEW.v = NEW.gone",
        "ALTER TABLE t DROP COLUMN gone",
        database=fresh_db,
    )
    backup = tmp_path / "b"
    dump(root_settings, fresh_db, backup, DumpOptions(threads=1))
    execute(root_settings, f"CREATE DATABASE {quote_ident(target)}")
    execute(
        root_settings,
        "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
        "INSERT INTO t VALUES (7, 70)",
        "CREATE TABLE other (id INT PRIMARY KEY)",
        "CREATE VIEW v_old AS SELECT id FROM t",
        "CREATE PROCEDURE p_old() SELECT 1",
        "CREATE TRIGGER old_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.v = 2",
        "CREATE TRIGGER ok_bu BEFORE UPDATE ON other FOR EACH ROW SET NEW.id = 1",
        database=target,
    )
    before = (checksums(root_settings, target), _objects(root_settings, target))
    res = run_cli(*restore_cli(root_settings, backup, target, "--atomic"))
    assert res.returncode != 0 and "zz_broken" in res.stderr, res.stderr
    assert "next step:" in res.stderr
    assert (checksums(root_settings, target), _objects(root_settings, target)) == before
    assert not [d for d in databases(root_settings) if d.startswith(target + "__md")]
    # --table t: its trigger ok_bu would take a name the target's table other uses.
    execute(root_settings, "DROP TRIGGER zz_broken", database=fresh_db)
    backup2 = tmp_path / "b2"
    dump(root_settings, fresh_db, backup2, DumpOptions(threads=1))
    res = run_cli(*restore_cli(root_settings, backup2, target, "--atomic", "--table", "t"))
    assert res.returncode != 0 and "ok_bu" in res.stderr, res.stderr
    assert (checksums(root_settings, target), _objects(root_settings, target)) == before
    # Without --atomic it failed after table t was replaced: refused first too.
    res = run_cli(*restore_cli(root_settings, backup2, target, "--drop", "--table", "t"))
    assert res.returncode != 0 and "ok_bu" in res.stderr, res.stderr
    assert (checksums(root_settings, target), _objects(root_settings, target)) == before
    assert not [d for d in databases(root_settings) if d.startswith(target + "__md")]


# -- partial restore ---------------------------------------------------------------------------
def test_partial_restore_into_another_database_touches_only_that_table(
    root_settings: ConnSettings, small: Source, target: str
) -> None:
    execute(root_settings, f"CREATE DATABASE {quote_ident(target)}")
    execute(
        root_settings,
        "CREATE TABLE keep (id INT PRIMARY KEY, v VARCHAR(10))",
        "INSERT INTO keep VALUES (1, 'mine'), (2, 'ours')",
        "CREATE TRIGGER keep_bi BEFORE INSERT ON keep FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
        database=target,
    )
    keep = checksums(root_settings, target)

    res = run_cli(*restore_cli(root_settings, small.backup, target, "--table", "a"))
    assert res.returncode == 0, res.stderr
    assert tables(root_settings, target) == {"keep", "a"}
    after = checksums(root_settings, target)
    assert after["keep"] == keep["keep"]
    assert after["a"] == checksums(root_settings, small.database)["a"]
    with connect(root_settings) as c:
        trig = sorted(
            (r[0] or b"").decode() for r in c.query(f"SHOW TRIGGERS FROM {quote_ident(target)}")
        )
        assert trig == ["a_bi", "keep_bi"]  # a's trigger came along, b's did not
        src = c.query(f"SHOW CREATE TABLE {quote_ident(small.database)}.`a`")[0][1]
        assert c.query(f"SHOW CREATE TABLE {quote_ident(target)}.`a`")[0][1] == src

    # Again, over a changed copy of a: refused without --drop, replaced with it.
    execute(root_settings, "UPDATE a SET v = 'local edit' WHERE id = 1", database=target)
    edited = checksums(root_settings, target)
    res = run_cli(*restore_cli(root_settings, small.backup, target, "--table", "a"))
    assert res.returncode == 12, res.stderr
    assert checksums(root_settings, target) == edited
    res = run_cli(*restore_cli(root_settings, small.backup, target, "--table", "a", "--drop"))
    assert res.returncode == 0, res.stderr
    assert checksums(root_settings, target) == after


def test_table_names_that_read_as_globs_or_hold_a_comma_are_taken_as_names(
    root_settings: ConnSettings, target: str, tmp_path: Path
) -> None:
    """MariaDB tables ``x[1]`` and ``x1``: ``--table 'x[1]'`` matched ``x1`` as a glob
    (and not ``x[1]`` itself), so dump --table, --exclude and restore --table --drop hit
    the wrong table. A name as it is now names that table; ``\\,`` keeps a comma."""
    source = unique_db("mdg")
    execute(root_settings, f"CREATE DATABASE {quote_ident(source)}")
    try:
        execute(
            root_settings,
            "CREATE TABLE `x[1]` (id INT PRIMARY KEY)", "INSERT INTO `x[1]` VALUES (1)",
            "CREATE TABLE `x1` (id INT PRIMARY KEY)", "INSERT INTO `x1` VALUES (2)",
            "CREATE TABLE `x,y` (id INT PRIMARY KEY)", "INSERT INTO `x,y` VALUES (3)",
            database=source,
        )  # fmt: skip

        def dumped(name: str, *extra: str) -> set[str]:
            out = tmp_path / name
            res = run_cli("dump", *conn_args(root_settings), "-q", "-o", str(out), *extra, source)
            assert res.returncode == 0, res.stderr
            return {t["name"] for t in json.loads((out / "manifest.json").read_text())["tables"]}

        assert dumped("only", "--table", "x[1]") == {"x[1]"}
        assert dumped("but", "--exclude", "x[1]", "--exclude", r"x\,y") == {"x1"}
        assert dumped("glob", "--table", "x?") == {"x1"}
        dumped("all")
        res = run_cli(*restore_cli(root_settings, tmp_path / "all", target, "--table", "x[1]", "--table", r"x\,y"))
        assert res.returncode == 0, res.stderr
        assert tables(root_settings, target) == {"x[1]", "x,y"}
    finally:
        drop_database(root_settings, source)


def test_partial_restore_of_an_unknown_table_exits_5(
    root_settings: ConnSettings, small: Source, target: str
) -> None:
    res = run_cli(*restore_cli(root_settings, small.backup, target, "--table", "nope"))
    assert res.returncode == 5, res.stderr
    assert "nope" in res.stderr and "next step:" in res.stderr
    assert target not in databases(root_settings)
