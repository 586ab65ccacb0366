"""Adversarial MariaDB round trips (tests/sql/zoo_adversarial.sql): dump -> restore ->
compare rows (one hash per row) and every object's definition, and verify the backup.

Cases the server itself cannot round-trip are not in the zoo; they are listed here:

- 4-byte characters (emoji) in identifiers: MariaDB refuses them (identifiers are
  limited to the BMP). Comments of tables, columns and indexes are stored in utf8mb3:
  an emoji is a '?' from the start.
- 4-byte characters in ENUM/SET members and in literal DEFAULTs of utf8mb4 columns:
  the server stores them, but SHOW CREATE TABLE and information_schema.COLUMNS print
  '?' for them (through the utf8mb3 metadata charset), so no logical dump (mariadb-dump
  neither) can recreate the definition. The zoo uses 3-byte characters there.
- History of tables versioned by transaction id (ROW START/END are BIGINT UNSIGNED):
  MariaDB refuses to insert it (error 1906, even with system_versioning_insert_history),
  so moodump dumps their current rows only and says so
  (test_transaction_versioned_table_keeps_its_current_rows).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from dbcompare import compare_databases, compare_rows_exactly
from helpers import moodump_cli, run_sql, run_sql_file
from helpers_failures import conn_args
from moodump.db import connect
from moodump.db.connection import quote_ident, quote_str
from moodump.dump import DumpOptions, dump
from moodump.errors import MoodumpError
from moodump.manifest import read_done_manifest
from moodump.restore import RestoreOptions, restore
from moodump.restore.engine import Restore
from moodump.source import LocalSource
from moodump.verify import verify
from moodump.verify_readback import object_problems, sequence_problems

pytestmark = pytest.mark.db

ZOO = Path(__file__).parent / "sql" / "zoo_adversarial.sql"


@pytest.fixture(scope="module")
def adv_zoo(root_settings):
    """The adversarial zoo, loaded once per module into a database with a hostile name."""
    name = "adv zoo `ü`.x"
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        c.execute(
            f"CREATE DATABASE {quote_ident(name)} CHARACTER SET latin1 COLLATE latin1_german2_ci "
            "COMMENT 'db ''comment'' \\\\ ü'"
        )
    run_sql_file(root_settings, ZOO, name)
    yield name
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def _restore_and_compare(settings, backup: Path, src: str, target: str, **kw) -> None:
    kw.setdefault("drop", not kw.get("atomic"))
    restore(backup, settings, target, RestoreOptions(threads=2, **kw))
    _compare_and_drop(settings, src, target)


def _compare_and_drop(settings, src: str, target: str) -> None:
    with connect(settings) as c:
        try:
            assert compare_databases(c, src, target) == []
            assert compare_rows_exactly(c, src, target) == []
        finally:
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)}")


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_adversarial_zoo_roundtrip(root_settings, adv_zoo, tmp_path, codec):
    out = tmp_path / "b"
    res = dump(root_settings, adv_zoo, out, DumpOptions(threads=2, codec=codec, chunk_bytes=4096))
    m = res.manifest
    assert len(m.table("big").chunks) > 1  # split by key range
    assert len(m.table("mega").chunks) > 1
    assert m.table("seq_cycled").sequence["cycle_count"] == 1
    # A MERGE table's rows are its underlying tables': dumped once, with them.
    assert not m.table("merge_all").chunks and not m.table("merge_all").data_skipped
    _restore_and_compare(root_settings, out, adv_zoo, f"adv copy {codec}")
    # The same backup with every secondary index built after the load.
    _restore_and_compare(
        root_settings, out, adv_zoo, f"adv deferred {codec}", defer_indexes_min_bytes=0
    )
    # Swapped in over an existing copy (a staging database, then RENAME TABLE).
    restore(out, root_settings, f"adv atomic {codec}", RestoreOptions(threads=2))
    _restore_and_compare(root_settings, out, adv_zoo, f"adv atomic {codec}", atomic=True)
    rep = verify(out)
    assert rep.passed, rep.problems
    rep = verify(out, settings=root_settings, threads=2)
    assert rep.passed, rep.problems
    assert rep.tables_checked == len(m.tables)
    assert read_done_manifest(out).status == "DONE"


def test_adversarial_zoo_cli_verify(root_settings, adv_zoo, tmp_path):
    out = tmp_path / "b"
    dump(root_settings, adv_zoo, out, DumpOptions(threads=2, chunk_bytes=1))
    for how in (["--offline"], conn_args(root_settings)):
        r = moodump_cli("verify", str(out), *how, "-q", env={"MYSQL_PWD": ""})
        assert r.returncode == 0, r.stdout + r.stderr
        assert "PASS" in r.stdout


def test_adversarial_zoo_roundtrip_with_inserts(root_settings, adv_zoo, tmp_path):
    """local_infile=OFF: the INSERT fallback. It read any column whose position starts
    with a BIT/ENUM/SET column's (1 in 10, 2 in 21) as a number ('007' came back '7',
    'abc' failed), and refused the negative number the server prints for a SET with its
    64th member chosen (many_cols, enum_set)."""
    out = tmp_path / "b"
    dump(root_settings, adv_zoo, out, DumpOptions(threads=2, chunk_bytes=4096))
    with connect(root_settings) as c:
        c.execute("SET GLOBAL local_infile = OFF")
    try:
        _restore_and_compare(root_settings, out, adv_zoo, "adv inserts")
    finally:
        with connect(root_settings) as c:
            c.execute("SET GLOBAL local_infile = ON")


def test_adversarial_zoo_restores_with_stock_tools(root_settings, mariadb, adv_zoo, tmp_path):
    out = tmp_path / "b"
    dump(root_settings, adv_zoo, out, DumpOptions(threads=2, codec="zstd", chunk_bytes=4096))
    subprocess.run(
        ["sh", str(out / "restore-with-mariadb.sh"), "adv stock", "-h", "127.0.0.1",
         "-P", str(mariadb.port), "-u", "root"],
        check=True, env=dict(os.environ, MYSQL_PWD=""), capture_output=True,
    )  # fmt: skip
    _compare_and_drop(root_settings, adv_zoo, "adv stock")


def test_transaction_versioned_table_keeps_its_current_rows(root_settings, fresh_db, tmp_path):
    """MariaDB cannot insert transaction-id history (error 1906): LOAD DATA dropped the
    period values, and every history row came back as a current row (2 rows instead of
    1). Now the current rows are dumped, exactly, with a warning."""
    run_sql(
        root_settings,
        "CREATE TABLE trx (id INT PRIMARY KEY, x INT, "
        "s BIGINT UNSIGNED GENERATED ALWAYS AS ROW START INVISIBLE, "
        "e BIGINT UNSIGNED GENERATED ALWAYS AS ROW END INVISIBLE, "
        "PERIOD FOR SYSTEM_TIME(s, e)) WITH SYSTEM VERSIONING;"
        "INSERT INTO trx (id, x) VALUES (1, 1), (2, 2); UPDATE trx SET x = 3 WHERE id = 1;",
        fresh_db,
    )
    out = tmp_path / "b"
    m = dump(root_settings, fresh_db, out, DumpOptions(threads=1)).manifest
    assert any("transaction id" in w and "trx" in w for w in m.warnings)
    assert m.table("trx").rows == 2 and not m.table("trx").versioned
    target = fresh_db + "_r"
    restore(out, root_settings, target, RestoreOptions())
    with connect(root_settings) as c:
        try:
            rows = c.query(f"SELECT id, x FROM {quote_ident(target)}.trx ORDER BY id")
            assert rows == [(b"1", b"3"), (b"2", b"2")]
            n = c.scalar(f"SELECT COUNT(*) FROM {quote_ident(target)}.trx FOR SYSTEM_TIME ALL")
            assert n == b"2"
        finally:
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)}")
    assert verify(out, settings=root_settings).passed


def test_database_without_tables_restores(root_settings, fresh_db, tmp_path):
    """Only a view, a routine and an event: the restore took a backup without schema
    files for a --data-only one, and neither created nor replaced the target database
    (verify: \"Unknown database 'moodump_verify_...'\")."""
    run_sql(
        root_settings,
        "CREATE VIEW v AS SELECT 1 AS one; CREATE FUNCTION f() RETURNS INT RETURN 2;"
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY STARTS '2037-01-01 00:00:00' DISABLE DO SET @a = 1;",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    target = fresh_db + "_r"
    with connect(root_settings) as c:  # an older copy, replaced by --drop
        c.execute(f"CREATE DATABASE {quote_ident(target)}")
        c.execute(f"CREATE VIEW {quote_ident(target)}.stale AS SELECT 0 AS zero")
    _restore_and_compare(root_settings, out, fresh_db, target)
    rep = verify(out, settings=root_settings)
    assert rep.passed, rep.problems


def test_federated_table_rows_stay_in_the_remote_table(root_settings, fresh_db, tmp_path):
    """A FEDERATED table shows a remote table's rows: they were dumped, and every restore
    (and verify by restore) inserted them into the remote table again."""
    with connect(root_settings) as c:
        if not c.query("SELECT 1 FROM information_schema.ENGINES WHERE ENGINE = 'FEDERATED'"):
            try:
                c.execute("INSTALL SONAME 'ha_federatedx'")
            except Exception:
                pytest.skip("the FederatedX plugin is not available")
    remote = fresh_db + "_remote"
    url = f"mysql://{root_settings.user}@127.0.0.1:{root_settings.port}/{remote}/t"
    with connect(root_settings) as c:
        c.execute(f"CREATE DATABASE {quote_ident(remote)}")
        c.execute(f"CREATE TABLE {quote_ident(remote)}.t (id INT, v INT)")
        c.execute(f"INSERT INTO {quote_ident(remote)}.t VALUES (1, 10), (2, 20)")
        c.execute(
            f"CREATE TABLE {quote_ident(fresh_db)}.fed (id INT, v INT) ENGINE=FEDERATED "
            f"CONNECTION='{url}'"
        )
    try:
        out = tmp_path / "b"
        m = dump(root_settings, fresh_db, out, DumpOptions(threads=1)).manifest
        assert not m.table("fed").chunks
        _restore_and_compare(root_settings, out, fresh_db, fresh_db + "_r")
        assert verify(out, settings=root_settings).passed
        with connect(root_settings) as c:
            assert c.scalar(f"SELECT COUNT(*) FROM {quote_ident(remote)}.t") == b"2"
    finally:
        with connect(root_settings) as c:
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(remote)}")


def test_insert_fallback_keeps_every_statement_within_max_allowed_packet(
    root_settings, fresh_db, tmp_path
):
    """local_infile=OFF on a server with a small max_allowed_packet (64 KiB here, 16 MiB
    by default): the INSERT fallback sent batches of 1 MiB plus one row, and a row whose
    escaped literal is longer than the packet in one statement ("Got a packet bigger than
    'max_allowed_packet'", exit 6). A value longer than the packet itself cannot be sent
    by INSERT at all: refused, naming the setting."""
    run_sql(
        root_settings,
        "CREATE TABLE big_rows (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT CHARACTER SET utf8mb4, "
        "j JSON, n INT);"
        "INSERT INTO big_rows SELECT seq, REPEAT(0x5C00, 12000), NULL, NULL, seq FROM seq_1_to_4;"
        "INSERT INTO big_rows VALUES (10, REPEAT(0x5C27, 28000), REPEAT('ü\\n', 9000),"
        " CONCAT('[\"', REPEAT('\\\\\\\\', 9000), '\"]'), 1), (11, '', '', '[]', NULL);",
        fresh_db,
    )
    out, out2 = tmp_path / "b", tmp_path / "b2"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    row = "(12, REPEAT('x', 70000), NULL, NULL, 0)"
    run_sql(root_settings, f"INSERT INTO big_rows VALUES {row}", fresh_db)
    dump(root_settings, fresh_db, out2, DumpOptions(threads=1))
    run_sql(root_settings, "DELETE FROM big_rows WHERE id = 12", fresh_db)
    with connect(root_settings) as c:
        packet = int(c.scalar("SELECT @@GLOBAL.max_allowed_packet") or 0)
        c.execute("SET GLOBAL local_infile = OFF")
        c.execute("SET GLOBAL max_allowed_packet = 64 * 1024")
    try:
        _restore_and_compare(root_settings, out, fresh_db, fresh_db + "_r")
        with pytest.raises(MoodumpError) as err:
            restore(out2, root_settings, fresh_db + "_r2", RestoreOptions(drop=True))
        assert "max_allowed_packet" in err.value.message and "big_rows" in err.value.message
        assert "local_infile" in (err.value.hint or "")
    finally:
        with connect(root_settings) as c:
            c.execute("SET GLOBAL local_infile = ON")
            c.execute(f"SET GLOBAL max_allowed_packet = {packet}")
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(fresh_db + '_r')}")
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(fresh_db + '_r2')}")


def test_objects_naming_their_own_database_restore_under_another_name(
    root_settings, mariadb, fresh_db, tmp_path
):
    """SHOW CREATE TRIGGER prints the statement as it was written: a trigger created as
    ``db.name ... ON db.table`` failed to restore under another database name ("Trigger
    in wrong schema", error 1435). The header names the target database instead. A view
    calling ``db.f()`` (printed so by SHOW CREATE VIEW) called the source database's
    function in the copy, and a view whose DEFINER no longer exists (printed with
    `db`.`t`.`c` columns) was not created (error 1054)."""
    q = quote_ident(fresh_db)
    run_sql(
        root_settings,
        "SET sql_mode = 'ANSI_QUOTES';"
        "CREATE TABLE t (id INT PRIMARY KEY, v INT); CREATE TABLE log (m TEXT);"
        f"CREATE TRIGGER {q}.tr1 BEFORE INSERT ON {q}.t FOR EACH ROW SET NEW.v = 1;"
        f"CREATE TRIGGER tr2 AFTER INSERT ON {fresh_db}.t FOR EACH ROW INSERT INTO log VALUES ('x');"
        f'CREATE TRIGGER "{fresh_db}" . "tr 3" BEFORE UPDATE ON "{fresh_db}" . "t" '
        "FOR EACH ROW SET NEW.v = 3;"
        f"CREATE PROCEDURE {q}.p() INSERT INTO {q}.log VALUES ('p');"
        f"CREATE FUNCTION {q}.f(x INT) RETURNS INT DETERMINISTIC RETURN x + 1;"
        f"CREATE VIEW {q}.v AS SELECT {q}.f(id) AS a, {fresh_db}.f(v) AS b FROM {q}.t;"
        # A view whose DEFINER is gone prints its columns as `db`.`t`.`id`.
        f"CREATE USER 'gone_{fresh_db}'@'%';"
        f"CREATE DEFINER='gone_{fresh_db}'@'%' VIEW v_gone AS SELECT id FROM t;"
        f"DROP USER 'gone_{fresh_db}'@'%';",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    res = restore(out, root_settings, fresh_db + "_r", RestoreOptions())
    # A body that names its database is restored as written: said, not changed.
    assert [w for w in res.warnings if "names database" in w] == [
        f"procedure 'p' names database {fresh_db!r} in its text: restored as written, it "
        f"uses {fresh_db!r}, not {fresh_db + '_r'!r}"
    ]
    _compare_and_drop(root_settings, fresh_db, fresh_db + "_r")
    # The stock-tools script retargets the same headers and calls (it failed with 1435),
    # whatever characters the target name holds (sed and SQL quoting both).
    stock = fresh_db + ' s`"&|\\/x'
    subprocess.run(
        ["sh", str(out / "restore-with-mariadb.sh"), stock, "-h", "127.0.0.1",
         "-P", str(mariadb.port), "-u", "root"],
        check=True, env=dict(os.environ, MYSQL_PWD=""), capture_output=True,
    )  # fmt: skip
    _compare_and_drop(root_settings, fresh_db, stock)


def test_insert_fallback_resume_of_a_half_loaded_myisam_file_is_exact(
    root_settings, fresh_db, tmp_path, monkeypatch
):
    """INSERT fallback (local_infile=OFF): a MyISAM file that failed half-way keeps the
    rows already inserted (no rollback). --resume deleted the file's key range first
    only on the LOAD DATA path: once an earlier file of the run had switched to INSERTs,
    the file's rows were inserted again (a duplicate key). The failure here is a value
    longer than max_allowed_packet; the resumed run starts in INSERT mode, as it is after
    its first file."""
    run_sql(
        root_settings,
        "CREATE TABLE my (id INT PRIMARY KEY, v LONGTEXT) ENGINE=MyISAM;"
        "INSERT INTO my SELECT seq, REPEAT('x', 400) FROM seq_1_to_3000;"
        "INSERT INTO my VALUES (3001, REPEAT('y', 1100000));",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    target = fresh_db + "_r"
    with connect(root_settings) as c:
        packet = int(c.scalar("SELECT @@GLOBAL.max_allowed_packet") or 0)
        c.execute(f"CREATE DATABASE {quote_ident(target)}")  # an existing target is kept
        c.execute("SET GLOBAL local_infile = OFF")
        c.execute("SET GLOBAL max_allowed_packet = 1024 * 1024")
    try:
        with pytest.raises(MoodumpError, match="max_allowed_packet"):
            restore(out, root_settings, target, RestoreOptions(threads=1))
        with connect(root_settings) as c:
            c.execute(f"SET GLOBAL max_allowed_packet = {packet}")
            assert c.scalar(f"SELECT COUNT(*) FROM {quote_ident(target)}.my") != b"0"
        init = Restore.__init__

        def in_insert_mode(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.insert_mode = True

        monkeypatch.setattr(Restore, "__init__", in_insert_mode)
        restore(out, root_settings, target, RestoreOptions(threads=1, resume=True))
        _compare_and_drop(root_settings, fresh_db, target)
    finally:
        with connect(root_settings) as c:
            c.execute("SET GLOBAL local_infile = ON")
            c.execute(f"SET GLOBAL max_allowed_packet = {packet}")
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)}")


def test_aria_fulltext_tables_of_many_files_restore_uncorrupted(
    root_settings, fresh_db, tmp_path
):
    """Two LOAD DATA at once into one empty Aria table with a FULLTEXT index left it
    corrupt (CHECK TABLE: "Found 4 keys of 7"; COUNT(*) then fails with error 1034), a
    few tables in every 30: the files of a non-transactional table load one at a time."""
    names = [f"fts{i}" for i in range(40)]
    run_sql(
        root_settings,
        "".join(
            f"CREATE TABLE {n} (id INT PRIMARY KEY, v TEXT, FULLTEXT KEY (v)) ENGINE=Aria "
            f"TRANSACTIONAL=1; INSERT INTO {n} SELECT seq, CONCAT('w ', seq) FROM seq_1_to_4;"
            for n in names
        ),
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=2, chunk_bytes=1))
    assert len(read_done_manifest(out).table("fts0").chunks) >= 2
    target = fresh_db + "_r"
    restore(out, root_settings, target, RestoreOptions(threads=2))
    with connect(root_settings) as c:
        try:
            checks = c.query(
                "CHECK TABLE " + ", ".join(f"{quote_ident(target)}.{n}" for n in names)
            )
            assert [r for r in checks if r[3] != b"OK"] == []
        finally:
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)}")


def test_verify_names_the_objects_a_restore_could_not_create(
    root_settings, mariadb, fresh_db, tmp_path
):
    """A view over another database's table that is gone when the backup is restored
    stopped the restore after every table was loaded (error 1146 was not among the
    errors a view is retried and then skipped on) with a hint to --resume a scratch
    database verify had dropped. It is skipped with a warning like any view whose
    dependencies are missing, and verify, which counted objects only ("views: 1 after
    restore, 2 in the backup"), names the missing ones. restore-with-mariadb.sh stopped
    at that view (exit 1, without the later views, the triggers and the events); it
    skips it with the same warning and restores the rest."""
    other = fresh_db + "_other"
    run_sql(
        root_settings,
        f"CREATE DATABASE {quote_ident(other)}; CREATE TABLE {quote_ident(other)}.t (id INT);"
        f"CREATE TABLE t (id INT PRIMARY KEY); CREATE VIEW v_ok AS SELECT id FROM t;"
        f"CREATE VIEW `v ext` AS SELECT id FROM {quote_ident(other)}.t;"
        # z_late is created after 'v ext' and reads a view created after it (a retry)
        "CREATE VIEW z_base AS SELECT id FROM t; CREATE VIEW z_late AS SELECT id FROM z_base;"
        "CREATE OR REPLACE VIEW z_base AS SELECT id FROM v_ok;"
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.id = NEW.id + 1;"
        "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2037-01-01 00:00:00' DISABLE "
        "DO DELETE FROM t;",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE {quote_ident(other)}")
        c.execute(f"DROP VIEW {quote_ident(fresh_db)}.`v ext`")  # the rest must be there
    res = restore(out, root_settings, fresh_db + "_r", RestoreOptions())
    stock = subprocess.run(
        ["sh", str(out / "restore-with-mariadb.sh"), fresh_db + "_s", "-h", "127.0.0.1",
         "-P", str(mariadb.port), "-u", "root"],
        env=dict(os.environ, MYSQL_PWD=""), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    with connect(root_settings) as c:
        try:
            for target in (fresh_db + "_r", fresh_db + "_s"):
                assert compare_databases(c, fresh_db, target) == [], target
        finally:
            for target in (fresh_db + "_r", fresh_db + "_s"):
                c.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)}")
    assert [w.split(":")[0] for w in res.warnings] == ["view 'v ext' not created"]
    assert stock.returncode == 0, stock.stderr
    assert "view 'v ext' not created: ERROR 1146" in stock.stderr
    assert f"restored into {fresh_db}_s" in stock.stdout
    rep = verify(out, settings=root_settings)
    assert not rep.passed
    assert rep.problems == ["views: 3 after restore, 4 in the backup (missing: 'v ext')"]


def test_timestamp_without_default_restores_on_a_server_with_implicit_defaults(
    root_settings, mariadb, fresh_db, tmp_path
):
    """A target server with explicit_defaults_for_timestamp=OFF (the default before
    MariaDB 10.10 and in MySQL 5.7) gave a `ts TIMESTAMP NOT NULL` column without a
    default `DEFAULT current_timestamp() ON UPDATE current_timestamp()`: a silently
    different schema (Python restore and restore-with-mariadb.sh alike). Both restore
    sessions set it ON."""
    run_sql(
        root_settings,
        "SET explicit_defaults_for_timestamp = ON;"
        "CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP NOT NULL, ts2 TIMESTAMP);"
        "INSERT INTO t VALUES (1, '2020-01-01 00:00:00', NULL);",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    with connect(root_settings) as c:
        was = c.scalar("SELECT @@global.explicit_defaults_for_timestamp")
        c.execute("SET GLOBAL explicit_defaults_for_timestamp = OFF")
    try:
        restore(out, root_settings, fresh_db + "_r", RestoreOptions())
        subprocess.run(
            ["sh", str(out / "restore-with-mariadb.sh"), fresh_db + "_s", "-h", "127.0.0.1",
             "-P", str(mariadb.port), "-u", "root"],
            check=True, env=dict(os.environ, MYSQL_PWD=""), capture_output=True,
        )  # fmt: skip
    finally:
        with connect(root_settings) as c:
            c.execute(f"SET GLOBAL explicit_defaults_for_timestamp = {int(was or 1)}")
    with connect(root_settings) as c:
        try:
            for suffix in ("_r", "_s"):
                assert compare_databases(c, fresh_db, fresh_db + suffix) == [], suffix
        finally:
            for suffix in ("_r", "_s"):
                c.execute(f"DROP DATABASE IF EXISTS {quote_ident(fresh_db + suffix)}")


def test_invalid_dates_stored_under_allow_invalid_dates_restore_as_they_are(
    root_settings, mariadb, fresh_db, tmp_path
):
    """Dates a table took under sql_mode ALLOW_INVALID_DATES ('2020-02-30') became
    '0000-00-00' in the restore (a load warning only; restore-with-mariadb.sh too), and
    so did a DEFAULT of that kind. The restore sessions allow them."""
    run_sql(
        root_settings,
        "SET sql_mode = 'ALLOW_INVALID_DATES';"
        "CREATE TABLE dates (id INT PRIMARY KEY, d DATE DEFAULT '2001-02-31', dt DATETIME(2),"
        " KEY (d)) ENGINE=InnoDB;"
        "INSERT INTO dates VALUES (1, '2020-02-30', '2021-04-31 10:00:00.5'), "
        "(2, '2020-01-00', '0000-00-05 01:02:03'), (3, DEFAULT, NULL);"
        "CREATE TABLE dates_my (d DATE PRIMARY KEY) ENGINE=MyISAM;"
        "INSERT INTO dates_my VALUES ('2019-02-29'), ('2019-02-28'), ('2019-02-31');",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=2, chunk_bytes=1))
    restore(out, root_settings, fresh_db + "_r", RestoreOptions(threads=2))
    _compare_and_drop(root_settings, fresh_db, fresh_db + "_r")
    subprocess.run(
        ["sh", str(out / "restore-with-mariadb.sh"), fresh_db + "_s", "-h", "127.0.0.1",
         "-P", str(mariadb.port), "-u", "root"],
        check=True, env=dict(os.environ, MYSQL_PWD=""), capture_output=True,
    )  # fmt: skip
    _compare_and_drop(root_settings, fresh_db, fresh_db + "_s")


def test_atomic_restore_of_some_tables_linked_by_foreign_keys_to_others_is_refused(
    root_settings, fresh_db, tmp_path
):
    """`--table child --atomic` left the child's foreign key pointing at the dropped
    staging database (`x__mdstage_1234`.`parent`: inserts then fail, ON DELETE CASCADE
    is gone), and `--table parent --atomic` left the target's child pointing at the
    dropped old-tables database (InnoDB moves a key with the table it references). Such
    a selection is refused before anything is written; with both tables it is exact."""
    run_sql(
        root_settings,
        "CREATE TABLE parent (id INT PRIMARY KEY);"
        "CREATE TABLE child (id INT PRIMARY KEY, p INT, CONSTRAINT fk_p FOREIGN KEY (p) "
        "REFERENCES parent (id) ON DELETE CASCADE);"
        "CREATE TABLE other (id INT PRIMARY KEY);"
        "INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1);",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    target = fresh_db + "_r"
    restore(out, root_settings, target, RestoreOptions())
    try:
        for tables in (("child",), ("parent",), ("parent", "other")):
            with pytest.raises(MoodumpError) as err:
                restore(out, root_settings, target, RestoreOptions(tables=tables, atomic=True))
            assert "foreign key" in str(err.value) and "fk_p" in str(err.value)
            with connect(root_settings) as c:
                assert compare_databases(c, fresh_db, target) == []
        restore(out, root_settings, target, RestoreOptions(tables=("child", "parent"), atomic=True))
        restore(out, root_settings, target, RestoreOptions(tables=("other",), atomic=True))
    finally:
        _compare_and_drop(root_settings, fresh_db, target)


def test_objects_keep_the_database_collation_they_were_created_under(
    root_settings, mariadb, fresh_db, tmp_path
):
    """A routine, trigger or event takes the database's collation when it is created
    (its parameters and variables without a character set use it). A database converted
    since (ALTER DATABASE ... CHARACTER SET utf8mb4, as a Moodle site's conversion does)
    keeps its old objects in the old one: restored, they took the new one, silently
    (`f('abc')` compared case-sensitively, 0 instead of 1), restore-with-mariadb.sh too.
    Each is created under its own, as mariadb-dump does, and the database's is kept."""
    run_sql(
        root_settings,
        "ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci;"
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10));"
        "CREATE FUNCTION f(a VARCHAR(10)) RETURNS INT DETERMINISTIC RETURN a = 'ABC';"
        "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.v = f(NEW.v);"
        "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO SET @cs = f('x');"
        "ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
        "CREATE PROCEDURE p_new(OUT r VARCHAR(20)) SET r = 'y';",
        fresh_db,
    )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    restore(out, root_settings, fresh_db + "_r", RestoreOptions())
    restore(out, root_settings, fresh_db + "_r", RestoreOptions(atomic=True))
    subprocess.run(
        ["sh", str(out / "restore-with-mariadb.sh"), fresh_db + "_s", "-h", "127.0.0.1",
         "-P", str(mariadb.port), "-u", "root"],
        check=True, env=dict(os.environ, MYSQL_PWD=""), capture_output=True, timeout=120,
    )  # fmt: skip
    with connect(root_settings) as c:
        for target in (fresh_db + "_r", fresh_db + "_s"):
            assert c.scalar(f"SELECT {quote_ident(target)}.f('abc')") == b"1", target
        assert compare_databases(c, fresh_db, fresh_db + "_s") == []
        # verify names an object created under another collation (it counted names only)
        qs = quote_ident(fresh_db + "_s")
        c.execute(f"DROP FUNCTION {qs}.f")
        c.execute(f"CREATE FUNCTION {qs}.f(a VARCHAR(10)) RETURNS INT DETERMINISTIC RETURN a = 'ABC'")
        m = read_done_manifest(out)
        assert object_problems(c, LocalSource(out), m, fresh_db + "_s", []) == [
            "function 'f': created under database collation utf8mb4_bin, latin1_swedish_ci "
            "in the backup"
        ]
        assert object_problems(c, LocalSource(out), m, fresh_db + "_r", []) == []
        c.execute(f"DROP DATABASE {qs}")
    _compare_and_drop(root_settings, fresh_db, fresh_db + "_r")  # the database's own too
    assert verify(out, settings=root_settings).passed
    # A collation the server does not have: created under the database's, with a warning.
    records = json.loads((out / "objects.json").read_text())
    for r in records:
        if r["name"] == "f":
            r["db_collation"] = "latin1_nosuch_ci"
    data = json.dumps(records).encode()
    (out / "objects.json").write_bytes(data)
    mtext = json.loads((out / "manifest.json").read_text())
    for f in mtext["files"]:
        if f["name"] == "objects.json":
            f["bytes"], f["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps(mtext))
    res = restore(out, root_settings, fresh_db + "_x", RestoreOptions())
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE {quote_ident(fresh_db + '_x')}")
    assert [w.split(":")[0] for w in res.warnings] == [
        "function 'f' created under database collation utf8mb4_bin, not latin1_nosuch_ci as in "
        "the source"
    ]


def test_restore_script_takes_the_database_comment_as_text(
    root_settings, mariadb, fresh_db, tmp_path
):
    """restore-with-mariadb.sh wrote the database's COMMENT into a double-quoted shell
    word: its backslashes were lost (`\\\\` came back `\\`, so `C:\\temp` as `C:temp`), a
    `"` broke the script, and `$(...)` or backquotes in it ran as commands on the
    operator's machine. It is single-quoted now."""
    marker = tmp_path / "ran"
    comment = f'C:\\\\temp "q" $(touch {marker}) `touch {marker}` $HOME ü'
    with connect(root_settings) as c:
        c.execute(f"ALTER DATABASE {quote_ident(fresh_db)} COMMENT {quote_str(comment)}")
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    subprocess.run(
        ["sh", str(out / "restore-with-mariadb.sh"), fresh_db + "_s", "-h", "127.0.0.1",
         "-P", str(mariadb.port), "-u", "root"],
        check=True, env=dict(os.environ, MYSQL_PWD=""), capture_output=True, timeout=120,
    )  # fmt: skip
    assert not marker.exists()
    with connect(root_settings) as c:
        got = c.scalar(
            "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "
            + quote_str(fresh_db + "_s")
        )
    assert got == comment.encode()
    _compare_and_drop(root_settings, fresh_db, fresh_db + "_s")


def test_verify_compares_the_sequences_state(root_settings, fresh_db, tmp_path):
    """A sequence's rows are not a data file, so the read-back never looked at them: a
    restore that gave a sequence another next value (as one did before its RESTART WITH
    fix, `seq_restarted` back at its START) passed verify. The state is compared now."""
    run_sql(
        root_settings,
        "CREATE SEQUENCE s START WITH 100 MINVALUE 1 INCREMENT BY 1 CACHE 3;"
        "ALTER SEQUENCE s RESTART WITH 5; SELECT NEXTVAL(s);"
        "CREATE SEQUENCE c START WITH 1 MAXVALUE 2 NOCACHE CYCLE;"
        "SELECT NEXTVAL(c), NEXTVAL(c), NEXTVAL(c);",
        fresh_db,
    )
    out = tmp_path / "b"
    m = dump(root_settings, fresh_db, out, DumpOptions(threads=1)).manifest
    target = fresh_db + "_r"
    restore(out, root_settings, target, RestoreOptions())
    with connect(root_settings) as c:
        try:
            assert sequence_problems(c, m, target) == []
            c.execute(f"SELECT SETVAL({quote_ident(target)}.s, 200)")
            c.execute(f"ALTER SEQUENCE {quote_ident(target)}.c RESTART")
            assert sequence_problems(c, m, target) == [
                "sequence c: next value 1 (cycle 0) after restore, 2 (cycle 1) in the backup",
                "sequence s: next value 201 (cycle 0) after restore, 8 (cycle 0) in the backup",
            ]
        finally:
            c.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)}")
    assert verify(out, settings=root_settings).passed
