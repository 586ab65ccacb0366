"""Point-in-time recovery against more binary log histories than the adversarial module's.

Each database test makes its own database, takes a backup, runs a history, pulls the
archive, restores up to a target and compares the copy with the source (row counts and
CHECKSUM TABLE), or checks that the restore is refused before the target is touched. The
server, its connection settings and the comparison helpers are the adversarial module's
(``max_binlog_size`` 4096: the histories rotate many times).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

import test_pitr_adversarial as adv
from moodump.binlog.chain import Target, parse_until
from moodump.binlog.events import EventReader, iter_events
from moodump.binlog.statements import Elsewhere, unsafe_statement
from moodump.db import ConnSettings, connect
from moodump.db.localserver import LocalServer
from moodump.dump import DumpOptions, dump
from moodump.errors import ConfigError, IntegrityError, PitrUnavailable, ServerError
from moodump.pitr import Archive, pull, restore_until, verify_archive
from moodump.pitr import archive as archive_mod
from moodump.restore import RestoreOptions
from test_pitr_adversarial import _end, _exists, _objects, _setup, _state

server, conn = adv.server, adv.conn  # the adversarial module's server (fixtures)

# ------------------------------------------------------------------ pure: the statements


@pytest.mark.parametrize(
    "query",
    [
        # multi-table UPDATE / DELETE: any of their tables may be written
        "UPDATE t JOIN other.o ON o.id = t.id SET o.v = t.v",
        "UPDATE t, other.o SET o.v = 1",
        "UPDATE t LEFT JOIN `other`.o USING (id) SET t.v = 1",
        "DELETE o FROM other.o JOIN t ON o.id = t.id",
        "DELETE FROM o USING other.o JOIN t",
        "DELETE t, o FROM t, other.o",
        # modifiers before the table
        "UPDATE LOW_PRIORITY other.o SET v = 1",
        "DELETE LOW_PRIORITY QUICK FROM other.o",
        "INSERT LOW_PRIORITY INTO other.o VALUES (1)",
        "INSERT DELAYED INTO other.o VALUES (1)",
        "REPLACE LOW_PRIORITY INTO other.o VALUES (1)",
        "WITH x AS (SELECT 1) UPDATE other.o SET v = 1",
        # DDL is logged as a statement whatever binlog_format says
        "ALTER ONLINE TABLE other.o ADD c INT",
        "ALTER IGNORE TABLE other.o ADD c INT",
        "ALTER TABLE t RENAME TO other.t",
        "ALTER TABLE t ENGINE=InnoDB, RENAME other.t",
        "TRUNCATE other.o",
        "OPTIMIZE TABLE other.o",
        "ANALYZE TABLE t, other.o",
        "DROP VIEW v, other.v2",
        "UPDATE t STRAIGHT_JOIN other.o ON o.id = t.id SET o.v = 1",
        "ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE other.x",
    ],
)
def test_statements_in_the_source_that_write_another_database_are_refused(query):
    assert "another database (other)" in unsafe_statement(query, "moodle", "moodle", False)


@pytest.mark.parametrize(
    "query",
    [
        "UPDATE t JOIN u ON t.id = u.id SET t.v = 1",
        "UPDATE t AS a JOIN u b ON CONCAT(a.x, b.y) = 1 SET a.v = 1",
        "UPDATE other JOIN o ON other.id = o.id SET other.v = 1",  # a table named other
        "UPDATE t JOIN moodle.u ON t.id = u.id SET t.v = 1",
        "DELETE FROM t WHERE id IN (SELECT id FROM other.o)",  # reads it
        "DELETE FROM t ORDER BY id LIMIT 3",
        "UPDATE t SET v = (SELECT v FROM other.o LIMIT 1) WHERE t.id = 2",
        "ALTER TABLE t RENAME COLUMN a TO b",
        "ALTER TABLE t RENAME TO t2",
        "TRUNCATE t",
        "OPTIMIZE TABLE t, u",
        "DROP VIEW IF EXISTS v, w",
        "ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE t_old",
    ],
)
def test_statements_that_only_write_the_source_pass(query):
    assert unsafe_statement(query, "moodle", "moodle", False) == ""


def test_until_in_a_repeated_or_skipped_local_hour_is_refused():
    """Europe/Berlin: 2026-10-25 02:30 happens twice (CEST, then CET) and 2026-03-29
    02:30 never: read in the zone, such a time names no single second, so it is refused
    (an offset says which is meant) instead of silently picking the first."""
    berlin = ZoneInfo("Europe/Berlin")
    with pytest.raises(ConfigError, match="twice"):
        parse_until("2026-10-25 02:30:00", berlin)
    with pytest.raises(ConfigError, match="does not exist"):
        parse_until("2026-03-29 02:30:00", berlin)
    first = parse_until("2026-10-25T02:30:00+02:00", berlin)
    assert parse_until("2026-10-25T02:30:00+01:00", berlin) == first + 3600
    assert parse_until("2026-10-25 03:30:00", berlin) == first + 2 * 3600
    assert parse_until("2026-10-25 01:59:59", berlin) == first - 1801


def test_triggers_and_functions_that_write_another_database_are_told_apart():
    e = Elsewhere()
    e.learn("CREATE DEFINER=`root`@`localhost` TRIGGER a AFTER INSERT ON t FOR EACH ROW "
            "INSERT INTO audit VALUES (NEW.id, 'other.x')", "moodle")  # fmt: skip
    e.learn("CREATE TRIGGER b BEFORE UPDATE ON `u` FOR EACH ROW SET NEW.v = OLD.v", "moodle")
    e.learn("CREATE TRIGGER c AFTER DELETE ON moodle.w FOR EACH ROW "
            "UPDATE moodle.t SET n = n - 1", "moodle")  # fmt: skip
    assert e.triggers == {} and e.fired_by("INSERT INTO t VALUES (1)") == ""
    e.learn("CREATE TRIGGER d AFTER INSERT ON log FOR EACH ROW "
            "BEGIN DELETE LOW_PRIORITY FROM `arch`.old; END", "moodle")  # fmt: skip
    e.learn("CREATE FUNCTION f(x INT) RETURNS INT MODIFIES SQL DATA "
            "BEGIN INSERT INTO stats.hits VALUES (x); RETURN x; END", "moodle")  # fmt: skip
    assert "trigger d (on log), which writes another database (arch)" in e.fired_by(
        "INSERT INTO log (v) VALUES ('x')"
    )
    assert e.fired_by("INSERT INTO logbook VALUES ('log')") == ""  # a word, in a string
    assert "function f, which writes another database (stats)" in e.fired_by(
        "UPDATE t SET n = f(n)"
    )
    assert e.fired_by("SELECT f(1)") == ""  # not logged as a statement that writes
    assert e.fired_by("CREATE TABLE log2 LIKE log") == ""
    e.learn("DROP TRIGGER IF EXISTS `d`", "moodle")
    assert e.fired_by("INSERT INTO log (v) VALUES ('x')") == ""
    e.learn("CREATE TRIGGER d AFTER INSERT ON log FOR EACH ROW DELETE FROM arch.old", "moodle")
    e.learn("CREATE OR REPLACE TRIGGER d AFTER INSERT ON log FOR EACH ROW SET @n = 1", "moodle")
    assert e.fired_by("INSERT INTO log (v) VALUES ('x')") == ""


def test_a_function_that_writes_elsewhere_is_seen_as_the_server_logs_its_call():
    """A SELECT (or SET, DO) calling a function that writes is logged as
    ``SELECT `db`.`f`(...)``; a DML statement may name it backquoted or after
    ``SET STATEMENT ... FOR``. Each runs the function again when replayed."""
    e = Elsewhere()
    e.learn("CREATE DEFINER=`my user`@`%` FUNCTION f(x INT) RETURNS INT MODIFIES SQL DATA "
            "BEGIN INSERT INTO stats.hits VALUES (x); RETURN x; END", "moodle")  # fmt: skip
    e.learn("CREATE DEFINER=`a b`@`%` TRIGGER d AFTER INSERT ON log FOR EACH ROW "
            "DELETE FROM arch.old", "moodle")  # fmt: skip
    for query in ("SELECT `moodle`.`f`(3)", "UPDATE t SET n = `f`(n)",
                  "SET STATEMENT max_statement_time=1 FOR UPDATE t SET n = f(n)"):  # fmt: skip
        assert "function f, which writes another database (stats)" in e.fired_by(query), query
    assert "trigger d" in e.fired_by("SET STATEMENT max_statement_time=1 FOR INSERT INTO log VALUES (1)")
    assert e.fired_by("SELECT `moodle`.`g`(3)") == ""
    assert "stored function of another database (other)" in unsafe_statement(
        "SELECT `other`.`f`(3)", "moodle", "moodle", False
    )
    assert unsafe_statement("SELECT `moodle`.`g`(3)", "moodle", "moodle", False) == ""
    assert unsafe_statement("INSERT INTO t VALUES (CONCAT('x', 'y'))", "moodle", "moodle", False) == ""


def test_a_trigger_chain_that_ends_in_another_database_is_followed():
    """A trigger or function that writes a table of the source whose trigger writes
    another database: the statement fires that one too."""
    e = Elsewhere()
    e.learn("CREATE TRIGGER c AFTER INSERT ON v FOR EACH ROW INSERT INTO arch.x VALUES (1)",
            "moodle")  # fmt: skip
    e.learn("CREATE TRIGGER b AFTER UPDATE ON u FOR EACH ROW BEGIN INSERT INTO `v` VALUES (1); "
            "END", "moodle")  # fmt: skip
    e.learn("CREATE TRIGGER a BEFORE INSERT ON t FOR EACH ROW UPDATE moodle.u SET n = 1",
            "moodle")  # fmt: skip
    e.learn("CREATE FUNCTION g(x INT) RETURNS INT BEGIN DELETE FROM t; RETURN x; END", "moodle")
    for query in ("INSERT INTO t VALUES (1)", "UPDATE u SET n = 2", "UPDATE w SET n = g(1)",
                  "SELECT `moodle`.`g`(1)"):  # fmt: skip
        assert "trigger c (on v), which writes another database (arch)" in e.fired_by(query)
    assert e.fired_by("INSERT INTO w VALUES (1)") == ""
    e.learn("DROP TRIGGER b", "moodle")
    assert e.fired_by("INSERT INTO t VALUES (1)") == ""
    # the trigger or function named with its database
    e.learn("CREATE TRIGGER `moodle`.`q` AFTER INSERT ON log FOR EACH ROW "
            "INSERT INTO arch.y VALUES (1)", "moodle")  # fmt: skip
    e.learn("CREATE FUNCTION moodle.h(x INT) RETURNS INT BEGIN INSERT INTO arch.z VALUES (x); "
            "RETURN x; END", "moodle")  # fmt: skip
    assert "trigger q (on log)" in e.fired_by("INSERT INTO log VALUES (1)")
    assert "function h" in e.fired_by("UPDATE w SET n = h(1)")
    # a body calling another database's function (which may write there)
    e.learn("CREATE TRIGGER k BEFORE INSERT ON kk FOR EACH ROW SET NEW.n = `stats`.`f`(NEW.id)",
            "moodle")  # fmt: skip
    e.learn("CREATE FUNCTION m(x INT) RETURNS INT RETURN other.g(x) + moodle.h2(x)", "moodle")
    assert "trigger k (on kk), which writes another database (stats)" in e.fired_by(
        "INSERT INTO kk VALUES (1)"
    )
    assert "function m, which writes another database (other)" in e.fired_by("UPDATE w SET n = m(1)")
    e.learn("CREATE FUNCTION m(x INT) RETURNS INT(11) RETURN moodle.h2(x) + ABS(x)", "moodle")
    assert "function m" not in e.fired_by("UPDATE w SET n = m(1)")


def test_writes_through_views_are_told_apart_from_reads():
    """A view of another database's table is written through, or only read; a view of
    the source's table with a trigger that writes elsewhere; SHOW CREATE VIEW's form (in
    objects.json: every name qualified, the joins in parentheses, ``on(...)``)."""
    e = Elsewhere()
    e.learn(
        "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW `vo` AS "
        "select `stats`.`o`.`id` AS `id` from (`moodle`.`t` join `stats`.`o` `x` "
        "on(`moodle`.`t`.`id` = `x`.`id`))",
        "moodle",
    )
    e.learn(
        "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW `vs` AS "
        "select `moodle`.`u`.`id` AS `id` from (`moodle`.`u` join `moodle`.`w` "
        "on(`moodle`.`u`.`id` = `alias`.`id`)) where `other`.`f`(1)",
        "moodle",
    )
    assert "view vo" in e.fired_by("UPDATE vo SET id = 2", 0, "moodle")
    assert "view vo" in e.fired_by("INSERT INTO moodle.vo VALUES (2)", 0, "moodle")
    assert e.fired_by("INSERT INTO t SELECT * FROM vo", 0, "moodle") == ""
    assert e.fired_by("UPDATE vs SET id = 2", 0, "moodle") == ""  # the source's own tables
    e.learn("CREATE TRIGGER tw AFTER UPDATE ON w FOR EACH ROW INSERT INTO stats.a VALUES (1)",
            "moodle")  # fmt: skip
    assert "trigger tw" in e.fired_by("UPDATE vs SET id = 2", 0, "moodle")
    e.learn("DROP VIEW IF EXISTS vo, `vs`", "moodle")
    assert e.fired_by("UPDATE vo SET id = 2", 0, "moodle") == ""
    assert e.fired_by("UPDATE vs SET id = 2", 0, "moodle") == ""


def test_a_renamed_table_keeps_its_triggers_and_a_renamed_view_its_tables():
    """RENAME TABLE (or ALTER TABLE ... RENAME) moves a table's triggers with it, and
    renames a view: a statement writing the new name fires them. The check still looked
    for the old name, so the replay wrote the other database a second time."""
    e = Elsewhere()
    e.learn("CREATE TRIGGER tw AFTER INSERT ON t FOR EACH ROW INSERT INTO stats.a VALUES (1)",
            "moodle")  # fmt: skip
    e.learn("CREATE VIEW vo AS SELECT id FROM stats.o", "moodle")
    e.learn("RENAME TABLE t TO t_old, `vo` TO moodle.vo2", "moodle")
    assert "trigger tw" in e.fired_by("INSERT INTO t_old VALUES (1)", 0, "moodle")
    assert e.fired_by("INSERT INTO t VALUES (1)", 0, "moodle") == ""
    assert "view vo2" in e.fired_by("UPDATE vo2 SET id = 2", 0, "moodle")
    e.learn("ALTER TABLE t_old ADD COLUMN c INT, RENAME TO `t new`", "moodle")
    assert "trigger tw" in e.fired_by("INSERT INTO `t new` VALUES (1)", 0, "moodle")
    e.learn("ALTER TABLE `t new` RENAME COLUMN c TO d", "moodle")  # a column, not the table
    assert "trigger tw" in e.fired_by("INSERT INTO `t new` VALUES (1)", 0, "moodle")
    # a dropped table takes its triggers: a new table of that name has none
    e.learn("DROP TEMPORARY TABLE IF EXISTS `t new`", "moodle")  # another table: it stays
    assert "trigger tw" in e.fired_by("INSERT INTO `t new` VALUES (1)", 0, "moodle")
    e.learn("DROP TABLE IF EXISTS x, `t new`", "moodle")
    assert e.fired_by("INSERT INTO `t new` VALUES (1)", 0, "moodle") == ""
    e.learn("CREATE TRIGGER tv AFTER INSERT ON v FOR EACH ROW INSERT INTO stats.a VALUES (1)",
            "moodle")  # fmt: skip
    e.learn("CREATE OR REPLACE TEMPORARY TABLE v (id INT)", "moodle")
    assert "trigger tv" in e.fired_by("INSERT INTO v VALUES (1)", 0, "moodle")
    e.learn("CREATE OR REPLACE TABLE v (id INT)", "moodle")
    assert e.fired_by("INSERT INTO v VALUES (1)", 0, "moodle") == ""


def test_functions_a_statement_replay_cannot_repeat_are_named():
    from moodump.binlog.statements import unrepeatable

    assert unrepeatable("INSERT INTO t VALUES (1, UUID())") == "UUID()"
    assert unrepeatable("update t set v = sysdate(6), w = `user`") == "SYSDATE()"
    assert unrepeatable("DELETE FROM t WHERE v = user ()") == "USER()"
    assert unrepeatable("INSERT INTO t VALUES (@@GLOBAL.server_id)") == "@@server_id"
    assert unrepeatable("UPDATE t SET v = @@hostname, n = @@session.sql_mode") == "@@hostname"
    assert unrepeatable("INSERT INTO t VALUES (@@auto_increment_offset, @@time_zone)") == ""
    # a table or column of that name, a string, a comment, a statement that writes nothing
    assert unrepeatable("INSERT INTO user (id, version) VALUES (1, 2)") == ""
    assert unrepeatable("UPDATE version SET `uuid` = 'UUID()' /* uuid() */") == ""
    assert unrepeatable("INSERT INTO t VALUES (RAND(), NOW(), LAST_INSERT_ID())") == ""
    assert unrepeatable("SELECT UUID()") == ""
    assert unrepeatable("CREATE TABLE u AS SELECT id, UUID() AS g FROM t") == "UUID()"
    assert unrepeatable("CREATE TABLE u (id INT, v VARCHAR(36))") == ""
    # run by a trigger the statement fires, or a function it calls
    e = Elsewhere()
    e.learn("CREATE TRIGGER tu BEFORE INSERT ON t FOR EACH ROW SET NEW.v = UUID()", "moodle")
    e.learn("CREATE FUNCTION f() RETURNS INT RETURN @@server_id", "moodle")
    assert "trigger tu, which uses UUID()" in e.fired_by("INSERT INTO t (id) VALUES (1)", 0, "m")
    assert "function f, which uses @@server_id" in e.fired_by("UPDATE u SET n = f()", 0, "m")
    e.learn("DROP TRIGGER tu", "moodle")
    assert e.fired_by("INSERT INTO t (id) VALUES (1)", 0, "moodle") == ""


def test_a_snapshot_position_of_another_history_is_told_by_its_gtid_state():
    """A backup's snapshot position that is an event boundary between transactions of
    this archive, but where the archive's GTID state is not the one the backup recorded
    (a replica's position, the history before RESET MASTER): refused."""
    from moodump.pitr.replay import ReplayPlan, _check_start

    plan = ReplayPlan([], [], "binlog.000003", 900, "binlog.000003", 900)
    plan.snapshot_gtid = "0-1-42,1-2-7"
    _check_start(plan, 900, False, {(0, 1): 42, (1, 2): 7, (0, 3): 5})  # the same history
    with pytest.raises(PitrUnavailable, match="recorded GTID 0-1-42,1-2-7 there, the archive is "
                       "at GTID 0-1-40,1-2-7"):  # fmt: skip
        _check_start(plan, 900, False, {(0, 1): 40, (1, 2): 7})
    with pytest.raises(PitrUnavailable, match="inside a transaction"):
        _check_start(plan, 900, True, {(0, 1): 42, (1, 2): 7})
    with pytest.raises(PitrUnavailable, match="no event starts there"):
        _check_start(plan, 912, False, {(0, 1): 42, (1, 2): 7})
    plan.snapshot_gtid = ""  # an older backup without a GTID: the position alone
    _check_start(plan, 900, False, {})
    plan.snapshot_gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"  # MySQL's: not parsed
    _check_start(plan, 900, False, {})


# --------------------------------------------------------------------- database tests


def _run(conn: ConnSettings, db: str, steps: list[str]) -> None:
    with connect(conn.with_database(db)) as c:
        for sql in steps:
            c.execute(sql)


WRITES_ELSEWHERE = [
    # (name, binlog_format, statements with the source as the default database)
    ("multiupdate", "STATEMENT", ["UPDATE t JOIN {o}.o ON o.id = t.id SET o.v = 'changed'"]),
    ("multidelete", "STATEMENT", ["DELETE x FROM {o}.o AS x JOIN t ON x.id = t.id"]),
    ("lowprio", "STATEMENT", ["UPDATE LOW_PRIORITY {o}.o SET v = 'changed'"]),
    # DDL is a statement even in ROW format
    ("truncate", "ROW", ["TRUNCATE {o}.o"]),
    (
        "altermove",
        "ROW",
        ["CREATE TABLE moving (id INT)", "ALTER TABLE moving RENAME TO {o}.moved"],
    ),
    ("alteronline", "ROW", ["ALTER ONLINE TABLE {o}.o ADD COLUMN extra INT"]),
    # a definer with a blank in its name (logged backquoted) hid the procedure's database
    ("definer", "ROW", ["CREATE DEFINER=`my user`@`%` PROCEDURE {o}.p() SELECT 1"]),
    # MariaDB's per-statement settings before the statement
    ("setstmt", "STATEMENT", ["SET STATEMENT max_statement_time=100 FOR UPDATE {o}.o SET v = 'x'"]),
    # a trigger writing the source's u, whose trigger writes the other database
    ("trgchain", "STATEMENT", [
        "CREATE TABLE u (id INT)",
        "CREATE TRIGGER tu AFTER INSERT ON u FOR EACH ROW INSERT INTO {o}.o VALUES (NEW.id, 'u')",
        "CREATE TRIGGER tt AFTER INSERT ON t FOR EACH ROW INSERT INTO u VALUES (NEW.id + 100)",
        "INSERT INTO t VALUES (77, 'fires tt, which fires tu', 1)",
    ]),
    # the trigger moves with its table (RENAME TABLE): the new name fires it
    ("trgrename", "STATEMENT", [
        "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO {o}.o VALUES (NEW.id, 'tr')",
        "RENAME TABLE t TO t_renamed",
        "INSERT INTO t_renamed VALUES (88, 'fires tr', 1)",
    ]),
    # a view is logged as CREATE ALGORITHM=... DEFINER=... SQL SECURITY ... VIEW
    ("view", "ROW", ["CREATE VIEW {o}.v AS SELECT 1 AS one"]),
    # statement format runs another database's function again on the target
    ("otherfunc", "STATEMENT", [
        "USE {o}",
        "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC MODIFIES SQL DATA "
        "BEGIN INSERT INTO o VALUES (x + 100, 'by f'); RETURN x; END",
        "USE hist_we_otherfunc",
        "UPDATE t SET n = {o}.f(id) WHERE id = 3",
    ]),
]  # fmt: skip


@pytest.mark.db
@pytest.mark.parametrize("case", WRITES_ELSEWHERE, ids=[c[0] for c in WRITES_ELSEWHERE])
def test_a_statement_of_the_source_that_writes_another_database_is_refused(conn, tmp_path, case):
    """Before the fix these passed the check, and the replay changed (truncated, renamed
    a table into, altered) the other database on the target server."""
    name, fmt, steps = case
    db, other = f"hist_we_{name}", f"hist_we_{name}_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY, v TEXT)")
        c.execute(f"INSERT INTO {other}.o VALUES (1, 'one'), (2, 'two')")
    backup = _setup(conn, db, tmp_path)
    _run(conn, db, [f"SET SESSION binlog_format={fmt}", *(s.format(o=other) for s in steps)])
    archive = tmp_path / "archive"
    pull(conn, archive)
    with connect(conn) as c:  # the other database as it was before the history
        c.execute(f"DROP DATABASE IF EXISTS {other}")
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY, v TEXT)")
        c.execute(f"INSERT INTO {other}.o VALUES (1, 'one'), (2, 'two')")
    before = _state(conn, other)
    with pytest.raises(PitrUnavailable, match="another database") as err:
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert other in err.value.message
    assert not _exists(conn, f"{db}_copy")
    assert _state(conn, other) == before


def _position(conn: ConnSettings) -> Target:
    with connect(conn) as c:
        file, pos = (x.decode() for x in c.query("SHOW MASTER STATUS")[0][:2])
    return Target(file=file, position=int(pos))


#: (session, statement): two sessions of the source, so statement-format temporary
#: tables of the same name, XA transactions and plain transactions interleave.
HISTORY: list[tuple[int, str]] = [
    (1, "SET SESSION binlog_format=STATEMENT"),
    (2, "SET SESSION binlog_format=MIXED"),
    (
        1,
        "CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, u VARCHAR(64), r DOUBLE, "
        "ts DATETIME(6), who VARCHAR(80))",
    ),
    (1, "SET SESSION auto_increment_increment=5, auto_increment_offset=3"),
    (1, "INSERT INTO ai (u, r, ts) VALUES ('a', RAND(3), NOW(6)), ('b', RAND(), NOW(6))"),
    (1, "SET @v := (SELECT MAX(id) FROM t)"),
    (1, "INSERT INTO ai (u, r) VALUES (CONCAT('max ', @v), LAST_INSERT_ID())"),
    (1, "INSERT INTO t (id, v, n) VALUES (LAST_INSERT_ID() + 1000, 'last id', 1)"),
    (2, "INSERT INTO ai (u, r, ts) VALUES (UUID(), RAND(), SYSDATE(6))"),  # unsafe: rows
    (2, "INSERT INTO ai (u, who) VALUES ('user', CURRENT_USER())"),
    (1, "SET SESSION sql_mode='NO_BACKSLASH_ESCAPES,PAD_CHAR_TO_FULL_LENGTH'"),
    (1, "INSERT INTO t VALUES (2001, 'back\\slash', 1)"),
    (1, "SET SESSION sql_mode=DEFAULT"),
    (1, "SET SESSION time_zone='+05:30'"),
    (1, "CREATE TABLE tz (id INT PRIMARY KEY, ts TIMESTAMP NULL, d DATETIME)"),
    (
        1,
        "INSERT INTO tz VALUES (1, '2026-01-01 10:00:00', NOW()), "
        "(2, FROM_UNIXTIME(1700000000), '2026-01-01')",
    ),
    (1, "SET SESSION time_zone=DEFAULT"),
    (1, "INSERT INTO tz VALUES (3, '2026-01-01 10:00:00', NOW())"),
    # temporary tables of one name in two sessions (pseudo_thread_id tells them apart)
    (1, "CREATE TEMPORARY TABLE tmp (id INT, v VARCHAR(50))"),
    (2, "CREATE TEMPORARY TABLE tmp (id INT, v VARCHAR(50))"),
    (1, "INSERT INTO tmp VALUES (3001, 'session one')"),
    (2, "INSERT INTO tmp VALUES (3002, 'session two'), (3003, 'session two')"),
    (1, "INSERT INTO t (id, v) SELECT id, v FROM tmp"),
    (2, "INSERT INTO t (id, v) SELECT id, v FROM tmp"),
    (1, "DROP TEMPORARY TABLE tmp"),
    # savepoints and rollbacks with a non-transactional table in the transaction
    (1, "CREATE TABLE my (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM"),
    (1, "CREATE TABLE ar (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=Aria"),
    (1, "BEGIN"),
    (1, "INSERT INTO t VALUES (4001, 'savepoint', 1)"),
    (1, "SAVEPOINT a"),
    (1, "INSERT INTO my VALUES (1, 'kept')"),
    (1, "INSERT INTO t VALUES (4002, 'rolled back to a', 2)"),
    (1, "ROLLBACK TO SAVEPOINT a"),
    (1, "INSERT INTO t VALUES (4003, 'after rollback to a', 3)"),
    (1, "COMMIT"),
    (1, "BEGIN"),
    (1, "INSERT INTO t VALUES (4004, 'rolled back', 4)"),
    (1, "INSERT INTO my VALUES (2, 'kept too')"),
    (1, "INSERT INTO ar VALUES (2, 'aria kept')"),
    (1, "ROLLBACK"),
    (2, "SET SESSION binlog_format=ROW"),
    (2, "BEGIN"),
    (2, "INSERT INTO t VALUES (4005, 'innodb and aria', 5)"),
    (2, "INSERT INTO ar VALUES (3, 'aria in row format')"),
    (2, "COMMIT"),
    (0, "checkpoint"),
    # a trigger: fired again by a statement, never by rows
    (1, "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(50))"),
    (
        1,
        "CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW "
        "INSERT INTO audit (what) VALUES (CONCAT('insert ', NEW.id))",
    ),
    (1, "INSERT INTO t VALUES (5001, 'statement fires the trigger', 1)"),
    (2, "INSERT INTO t VALUES (5002, 'rows carry the trigger''s row', 2)"),
    (2, "SET SESSION binlog_format=MIXED"),
    (2, "INSERT INTO t VALUES (5003, 'mixed', 3)"),
    (2, "SET SESSION binlog_format=ROW"),
    # XA transactions interleaved with another session's transactions
    (2, "XA START 'h1'"),
    (2, "INSERT INTO t VALUES (6001, 'xa committed', 1)"),
    (2, "XA END 'h1'"),
    (2, "XA PREPARE 'h1'"),
    (1, "INSERT INTO t VALUES (6002, 'between prepare and commit', 2)"),
    (2, "XA COMMIT 'h1'"),
    (2, "XA START 'h2'"),
    (2, "INSERT INTO t VALUES (6003, 'xa rolled back', 3)"),
    (2, "XA END 'h2'"),
    (2, "XA PREPARE 'h2'"),
    (2, "XA ROLLBACK 'h2'"),
    # DDL between row events
    (2, "INSERT INTO ai (u, r) VALUES ('before alter', 1)"),
    (2, "ALTER TABLE ai ADD COLUMN extra JSON"),
    (2, "UPDATE ai SET extra = JSON_OBJECT('k', id, 'u', u)"),
    (2, "ALTER TABLE ai DROP COLUMN who, ADD COLUMN bits BIT(7) DEFAULT b'101' FIRST"),
    (2, "DELETE FROM ai WHERE id % 2 = 0"),
    (2, "CREATE TABLE cs AS SELECT id, v FROM t WHERE id < 10"),
    (2, "RENAME TABLE cs TO cs2"),
    (2, "INSERT INTO cs2 VALUES (100, 'renamed')"),
    (2, "TRUNCATE TABLE cs2"),
    (2, "INSERT INTO cs2 SELECT id, v FROM t WHERE id BETWEEN 10 AND 14"),
    (2, "DROP TABLE tz"),
    (0, "checkpoint"),
    # types in every row image, by key and without one
    (
        2,
        "CREATE TABLE ty (id INT PRIMARY KEY, b LONGBLOB, j JSON, bt BIT(13), "
        "e ENUM('a','b','c'), st SET('x','y','z'), d DECIMAL(30,10), tm TIME(6), "
        "dt DATETIME(6), ts TIMESTAMP(6) NULL, f FLOAT, tx TEXT)",
    ),
    (2, "CREATE TABLE np (a INT, b VARCHAR(20), c DOUBLE, bl BLOB)"),
    (2, "CREATE TABLE uq (k INT NOT NULL, v VARCHAR(20), UNIQUE KEY (k))"),
    (2, "SET SESSION binlog_row_image=MINIMAL"),
    (
        2,
        "INSERT INTO ty SELECT seq, REPEAT(CHAR(seq), 3000), JSON_ARRAY(seq, 'x'), seq, "
        "1 + seq % 3, 'x,z', seq / 7, SEC_TO_TIME(seq + 0.123456), "
        "'2026-12-06 10:00:00.654321', '2026-12-06 10:00:00.000001', seq / 3, "
        "REPEAT('t', seq) FROM seq_1_to_20",
    ),
    (2, "UPDATE ty SET d = d * 3, e = 'c', st = 'y' WHERE id < 6"),
    (2, "UPDATE ty SET b = REPEAT('n', 10), tm = '-838:59:59' WHERE id = 7"),
    (2, "DELETE FROM ty WHERE id IN (8, 9)"),
    (2, "INSERT INTO np VALUES (1, 'dup', 1.5, 'x'), (1, 'dup', 1.5, 'x'), (2, 'two', 2, NULL)"),
    (2, "UPDATE np SET c = c + 1 WHERE a = 1 LIMIT 1"),
    (2, "DELETE FROM np WHERE a = 1 LIMIT 1"),
    (2, "INSERT INTO uq VALUES (1, 'one'), (2, 'two')"),
    (2, "UPDATE uq SET v = 'uno' WHERE k = 1"),
    (2, "SET SESSION binlog_row_image=NOBLOB"),
    (2, "UPDATE ty SET j = JSON_SET(j, '$[1]', 'noblob'), bt = b'1111111111111' WHERE id > 15"),
    (2, "UPDATE np SET b = 'noblob' WHERE a = 2"),
    (2, "DELETE FROM ty WHERE id = 20"),
    (2, "SET SESSION binlog_row_image=FULL"),
    (2, "UPDATE ty SET f = f * 2, ts = NULL WHERE id = 1"),
    (1, "UPDATE np SET bl = 'stmt' WHERE a = 2"),
]


@pytest.mark.db
def test_a_history_of_statements_rows_xa_ddl_and_row_images_replays_to_each_checkpoint(
    conn, tmp_path
):
    """Statement, mixed and row format from two sessions; every checkpoint (a position
    SHOW MASTER STATUS printed while both sessions were idle) restores to the source's
    state there, and the end to the source's end."""
    db = "hist_mix"
    backup = _setup(conn, db, tmp_path)
    archive = tmp_path / "archive"
    checkpoints: list[tuple[Target, dict[str, tuple[int, int]]]] = []
    with connect(conn.with_database(db)) as c1, connect(conn.with_database(db)) as c2:
        for i, (who, sql) in enumerate(HISTORY):
            if who == 0:
                checkpoints.append((_position(conn), _state(conn, db)))
                continue
            (c1 if who == 1 else c2).execute(sql)
            if i % 17 == 16:
                pull(conn, archive)
    pull(conn, archive)  # session 2's temporary table was dropped at its end
    checkpoints.append((_end(archive), _state(conn, db)))
    files = Archive.open(archive).chain.files
    assert len(files) > 4, [(f.name, f.size) for f in files]
    for n, (target, state) in enumerate(checkpoints):
        copy = f"{db}_{n}"
        restore_until(backup, conn, copy, target, archive)
        assert _state(conn, copy) == state, n
    assert _objects(conn, copy) == _objects(conn, db) == {"trigger trg"}
    with connect(conn) as c:
        audit = [r[0].decode() for r in c.query(f"SELECT what FROM {copy}.audit ORDER BY id")]
    assert audit == ["insert 5001", "insert 5002", "insert 5003", "insert 6001", "insert 6002"]


@pytest.mark.db
def test_a_row_event_larger_than_16_mb_replays(conn, tmp_path):
    """One 20 MB row (one row event of 20 MB, logged whole: a transaction is never split
    across files) between small ones. max_allowed_packet is 24 MB: the source accepts
    the row, but mariadb-binlog prints the event as one BINLOG statement of 27 MB, which
    the server refused (ERROR 1153) after the backup had been restored; the replay now
    sends such a statement in two halves (BINLOG @binlog_fragment_0, @binlog_fragment_1)."""
    db = "hist_big"
    backup = _setup(conn, db, tmp_path)
    with connect(conn) as c:
        old = int(c.scalar("SELECT @@GLOBAL.max_allowed_packet") or 0)
        c.execute("SET GLOBAL max_allowed_packet = 24 * 1024 * 1024")
    try:
        _run(conn, db, [
            "CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB)",
            "INSERT INTO big VALUES (1, REPEAT('0123456789abcdef', 20 * 65536))",
            "UPDATE t SET v = 'after the big row' WHERE id < 3",
            "INSERT INTO big VALUES (2, 'small')",
        ])  # fmt: skip
        archive = tmp_path / "archive"
        pull(conn, archive)
        assert max(f.size for f in Archive.open(archive).chain.files) > 20 << 20
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    finally:
        with connect(conn) as c:
            c.execute(f"SET GLOBAL max_allowed_packet = {old}")
    assert _state(conn, f"{db}_copy") == _state(conn, db)


def _torn_write(own: LocalServer, torn: bool = True) -> None:
    """Kill the server and leave its open binary log ending with 40 bytes of an event
    (a write the crash cut short; or not), then start it again (a new file)."""
    own.kill()
    assert own.base_dir is not None
    last = sorted(own.base_dir.glob("binlog.[0-9]*"))[-1]
    data = last.read_bytes()
    if torn:
        last.write_bytes(data + data[-120:-80])
    own.start()


@pytest.mark.db
@pytest.mark.parametrize(
    ("archived_before", "torn"),
    [(True, True), (False, True), (True, False)],
    ids=["continued", "fresh", "crash-not-torn"],
)
def test_a_log_torn_by_a_crash_is_archived_up_to_its_last_whole_event(
    tmp_path, archived_before, torn
):
    """A crash mid-write leaves the server's file ending inside an event. The server's
    recovery ignores the torn bytes (that transaction never committed) and starts a new
    file; mariadb-binlog cannot read past them ("bogus data in log event"). The pull used
    to stop there for good, saying RESET MASTER (continued) or failing (fresh archive);
    now the file is archived up to its last whole event, complete, when the next file
    starts at the GTID state those events end with (nothing was lost), and the restore
    replays across the crash."""
    with LocalServer(binlog=True) as own:
        s = ConnSettings(host="127.0.0.1", port=own.port, user="root", password="")
        with connect(s) as c:
            c.execute("CREATE DATABASE torn")
            c.execute("CREATE TABLE torn.t (id INT PRIMARY KEY, v TEXT)")
            c.execute("INSERT INTO torn.t VALUES (1, 'in the backup')")
        backup = tmp_path / "backup"
        dump(s, "torn", backup, DumpOptions(threads=1))
        with connect(s) as c:
            c.execute("INSERT INTO torn.t VALUES (2, 'before the crash')")
        archive = tmp_path / "archive"
        if archived_before:
            pull(s, archive)
        _torn_write(own, torn)
        with connect(s) as c:
            c.execute("INSERT INTO torn.t VALUES (3, 'after the restart')")
        res = pull(s, archive)
        assert any("not a whole event" in w for w in res.warnings) == torn, res.warnings
        files = Archive.open(archive).chain.files
        assert [f.complete for f in files] == [True, False]
        assert verify_archive(archive).ok
        restore_until(backup, s, "torn_copy", _end(archive), archive)
        assert _state(s, "torn_copy") == _state(s, "torn")
        with connect(s) as c:
            assert int(c.scalar("SELECT COUNT(*) FROM torn_copy.t") or 0) == 3


@pytest.mark.db
@pytest.mark.parametrize("verb", ["COMMIT", "ROLLBACK"])
def test_an_xa_transaction_prepared_before_the_snapshot(conn, tmp_path, verb):
    """Prepared before the backup, finished after it: neither the backup (a consistent
    snapshot does not see it) nor the range holds its changes. Its XA COMMIT is refused
    before the target is touched; its XA ROLLBACK changes nothing, so the restore must
    not fail on it (the target server knows no such XID)."""
    db = f"hist_xa_{verb.lower()}"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
        c.execute(f"INSERT INTO {db}.t VALUES (1, 'before', 0)")
    xid = f"'pre_{verb.lower()}'"
    with connect(conn.with_database(db)) as c:
        for sql in (f"XA START {xid}", "INSERT INTO t VALUES (2, 'prepared', 0)",
                    f"XA END {xid}", f"XA PREPARE {xid}"):  # fmt: skip
            c.execute(sql)
    backup = tmp_path / "backup"
    dump(conn, db, backup, DumpOptions(threads=1))
    _run(conn, db, [f"XA {verb} {xid}", "INSERT INTO t VALUES (3, 'after', 0)"])
    archive = tmp_path / "archive"
    pull(conn, archive)
    if verb == "COMMIT":
        with pytest.raises(PitrUnavailable, match="prepared before the backup's snapshot"):
            restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
        assert not _exists(conn, f"{db}_copy")
        return
    restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert _state(conn, f"{db}_copy") == _state(conn, db)


@pytest.mark.db
def test_xa_finished_from_another_session_sequences_and_other_databases_xa(conn, tmp_path):
    """An XA transaction committed by a session with no default database (a transaction
    manager's), one of another database in the range, and a sequence's NEXTVAL: the
    copy equals the source and the other database is untouched. The other database's XA
    transaction used to fail the replay after the restore (ERROR 1402 XA_RBROLLBACK): the
    filter left it empty, and the replay's session (pseudo slave mode) rolls an empty
    prepared XA transaction back, so its XA COMMIT fails; it is now skipped whole."""
    db, other = "hist_xa2", "hist_xa2_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY)")
    backup = _setup(conn, db, tmp_path)
    with connect(conn.with_database(db)) as c:
        for sql in ("CREATE SEQUENCE sq START WITH 100", "XA START 'tm1'",
                    "INSERT INTO t VALUES (NEXTVAL(sq), 'xa via a manager', 1)", "XA END 'tm1'",
                    "XA PREPARE 'tm1'"):  # fmt: skip
            c.execute(sql)
    with connect(conn.with_database(other)) as c:
        for sql in ("XA START 'o1'", "INSERT INTO o VALUES (1)", "XA END 'o1'",
                    "XA PREPARE 'o1'"):  # fmt: skip
            c.execute(sql)
    with connect(conn) as c:  # no default database
        c.execute("XA COMMIT 'tm1'")
        c.execute("XA COMMIT 'o1'")
    # (sequences are logged in row format only: STATEMENT refuses NEXTVAL, MIXED logs rows)
    _run(conn, db, ["SET SESSION binlog_format=MIXED",
                    "INSERT INTO t VALUES (NEXTVAL(sq), 'mixed nextval', 2)"])  # fmt: skip
    archive = tmp_path / "archive"
    pull(conn, archive)
    before = _state(conn, other)
    restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert _state(conn, f"{db}_copy") == _state(conn, db)
    assert _state(conn, other) == before
    with connect(conn) as c:
        assert not c.query("XA RECOVER")  # nothing left prepared on the target server
        # the sequence's table (its cached values are the server's memory, lost by a
        # restart as well: the copy continues after the cache, as the source would)
        assert c.query(f"SELECT * FROM {db}_copy.sq") == c.query(f"SELECT * FROM {db}.sq")


@pytest.mark.db
def test_an_event_failing_its_crc_in_a_consistently_stored_file_stops_before_the_target(
    conn, tmp_path, monkeypatch
):
    """A flipped bit inside an event that reached the archive with matching sha256s (a
    copy made by hand, or a bit flip before archiving): verify names the CRC, and the
    restore refuses before the target is touched, instead of replaying part of it."""
    db = "hist_crc"
    backup = _setup(conn, db, tmp_path)
    _run(conn, db, [f"UPDATE t SET v = REPEAT('c', 150) WHERE id = {i}" for i in range(1, 12)])
    archive = tmp_path / "archive"
    pull(conn, archive)
    a = Archive.open(archive)
    victim = a.chain.files[-1]
    raw = bytearray(b"".join(a.raw_blocks(victim)))
    rows = [e for e in iter_events(bytes(raw)) if e.type in (24, 31)]  # update rows
    raw[rows[len(rows) // 2].start + 30] ^= 0x10
    bad = tmp_path / victim.name
    bad.write_bytes(bytes(raw))
    monkeypatch.setattr(
        archive_mod, "EventReader", lambda **kw: EventReader(**kw, verify_crc=False)
    )
    a.store(bad, victim.name, complete=victim.complete)
    monkeypatch.undo()
    assert not verify_archive(archive).ok
    with pytest.raises(IntegrityError, match="fails its CRC32"):
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert not _exists(conn, f"{db}_copy")


@pytest.mark.db
def test_a_temporary_table_created_before_the_snapshot_fails_the_replay_loudly(conn, tmp_path):
    """Statement format: a temporary table created before the backup and read after it.
    The range does not hold its CREATE, so the replay cannot have it: MariaDB's own
    limitation (mariadb-binlog from that position fails the same way, as a replica
    started there would). The replay must fail with the server's message, never
    silently skip the statement."""
    db = "hist_tmp"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
    with connect(conn.with_database(db)) as c:
        c.execute("SET SESSION binlog_format=STATEMENT")
        c.execute("CREATE TEMPORARY TABLE early (id INT)")
        c.execute("INSERT INTO early VALUES (7)")
        backup = tmp_path / "backup"
        dump(conn, db, backup, DumpOptions(threads=1))
        c.execute("INSERT INTO t (id, v) SELECT id, 'from early' FROM early")
    archive = tmp_path / "archive"
    pull(conn, archive)
    with pytest.raises(ServerError, match="early' doesn't exist"):
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)


TRIGGER_ELSEWHERE = "INSERT INTO {o}.audit VALUES (NEW.id, 'by the trigger')"


@pytest.mark.db
@pytest.mark.parametrize(
    ("name", "fmt", "created_in_range", "qualified_source"),
    [
        ("stmt", "STATEMENT", False, False),
        ("stmtnew", "STATEMENT", True, False),
        ("row", "ROW", False, False),
        # the trigger writes the source written as db.table: the copy's trigger (restored
        # verbatim) would write the source database itself
        ("self", "STATEMENT", False, True),
    ],
)
def test_a_trigger_that_writes_another_database(
    conn, tmp_path, name, fmt, created_in_range, qualified_source
):
    """A trigger of the source that writes another database. In ROW format the rows it
    wrote there are another database's row events, filtered out: the replay is right. In
    statement format the statement is replayed and fires the restored trigger again,
    writing the other database a second time (here a duplicate key, the replay failing
    after the restore): refused before the target is touched."""
    db, other = f"hist_trg_{name}", f"hist_trg_{name}_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.audit (id INT PRIMARY KEY, what TEXT)")
    if qualified_source:
        with connect(conn) as c:
            c.execute(f"DROP DATABASE {other}")
        other = db
    create = "CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW " + TRIGGER_ELSEWHERE.format(
        o=other
    )
    backup = _setup(conn, db, tmp_path) if created_in_range else None
    if not created_in_range:
        with connect(conn) as c:
            c.execute(f"CREATE DATABASE {db}")
            c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
            if qualified_source:
                c.execute(f"CREATE TABLE {db}.audit (id INT PRIMARY KEY, what TEXT)")
        _run(conn, db, [create])
        backup = tmp_path / "backup"
        dump(conn, db, backup, DumpOptions(threads=1))
    assert backup is not None
    _run(conn, db, [f"SET SESSION binlog_format={fmt}", *([create] if created_in_range else []),
                    "INSERT INTO t VALUES (500, 'fires it', 1)"])  # fmt: skip
    archive = tmp_path / "archive"
    pull(conn, archive)
    before = _state(conn, other)
    if fmt == "ROW":
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
        assert _state(conn, f"{db}_copy") == _state(conn, db)
        assert _state(conn, other) == before
        return
    with pytest.raises(PitrUnavailable, match=f"trigger trg.*another database \\({other}\\)"):
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert not _exists(conn, f"{db}_copy")
    assert _state(conn, other) == before


@pytest.mark.db
def test_a_row_format_statement_writing_the_source_and_another_database(conn, tmp_path):
    """ROW format, one statement whose row events are of both databases (a multi-table
    UPDATE; a trigger writing elsewhere is the same). mariadb-binlog --database prints
    the source's events without their ``BINLOG '`` line when the other database's come
    after them in the statement: the replay failed with a syntax error after the restore.
    The replay gives the line back; the copy equals the source, the other database is
    untouched."""
    db, other = "hist_rowboth", "hist_rowboth_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY, v TEXT)")
        c.execute(f"INSERT INTO {other}.o SELECT seq, 'o' FROM {other}.seq_1_to_5")
    backup = _setup(conn, db, tmp_path)
    _run(conn, db, [
        "SET SESSION binlog_format=ROW",
        f"UPDATE t JOIN {other}.o ON o.id = t.id SET t.v = 'both', o.v = 'both'",
        f"DELETE t, x FROM t JOIN {other}.o AS x ON x.id = t.id WHERE t.id = 5",
        "INSERT INTO t VALUES (99, 'after', 1)",
    ])  # fmt: skip
    archive = tmp_path / "archive"
    pull(conn, archive)
    before = _state(conn, other)
    restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert _state(conn, f"{db}_copy") == _state(conn, db)
    assert _state(conn, other) == before


@pytest.mark.db
@pytest.mark.parametrize("verb", ["COMMIT", "ROLLBACK"])
def test_another_databases_xa_prepared_before_the_snapshot_does_not_stop_the_restore(
    conn, tmp_path, verb
):
    """An XA transaction of another database, prepared before the backup (in the file
    of the snapshot) and finished after it: nothing of it is the source's, so its XA
    COMMIT is no reason to refuse (it was), and neither end of it reaches the target."""
    db, other = f"hist_xao_{verb.lower()}", f"hist_xao_{verb.lower()}_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY)")
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
        c.execute("FLUSH BINARY LOGS")  # the XA transaction and the snapshot in one file
    xid = f"'xo_{verb.lower()}'"
    with connect(conn.with_database(other)) as c:
        for sql in (f"XA START {xid}", "INSERT INTO o VALUES (1)", f"XA END {xid}",
                    f"XA PREPARE {xid}"):  # fmt: skip
            c.execute(sql)
    backup = tmp_path / "backup"
    dump(conn, db, backup, DumpOptions(threads=1))
    with connect(conn) as c:
        c.execute(f"XA {verb} {xid}")
    _run(conn, db, ["INSERT INTO t VALUES (3, 'after', 0)"])
    archive = tmp_path / "archive"
    pull(conn, archive)
    before = _state(conn, other)
    restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert _state(conn, f"{db}_copy") == _state(conn, db)
    assert _state(conn, other) == before


@pytest.mark.db
def test_a_target_while_another_databases_xa_transaction_is_prepared(conn, tmp_path):
    """Between the XA PREPARE and the XA COMMIT of another database's XA transaction
    (a long one, say): the replay skips that transaction whole, so nothing is left
    prepared on the target and the target is not refused (it was). The source's own XA
    transaction in that state is still refused."""
    db, other = "hist_xaw", "hist_xaw_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY)")
    backup = _setup(conn, db, tmp_path)
    with connect(conn.with_database(other)) as c:
        for sql in ("XA START 'long'", "INSERT INTO o VALUES (1)", "XA END 'long'",
                    "XA PREPARE 'long'"):  # fmt: skip
            c.execute(sql)
    _run(conn, db, ["INSERT INTO t VALUES (40, 'while it is prepared', 1)"])
    at = _position(conn)
    expected = _state(conn, db)
    with connect(conn.with_database(db)) as c:
        for sql in ("XA START 'mine'", "INSERT INTO t VALUES (41, 'xa', 1)", "XA END 'mine'",
                    "XA PREPARE 'mine'"):  # fmt: skip
            c.execute(sql)
    mine = _position(conn)
    with connect(conn) as c:
        c.execute("XA COMMIT 'mine'")
        c.execute("XA COMMIT 'long'")
    archive = tmp_path / "archive"
    pull(conn, archive)
    restore_until(backup, conn, f"{db}_copy", at, archive)
    assert _state(conn, f"{db}_copy") == expected
    with connect(conn) as c:
        assert not c.query("XA RECOVER")
    with pytest.raises(PitrUnavailable, match="between the XA PREPARE and the commit"):
        restore_until(backup, conn, f"{db}_never", mine, archive)


@pytest.mark.db
def test_until_a_time_is_by_statement_start_not_commit(conn, tmp_path):
    """MariaDB's limit, documented: every event of an autocommit statement carries the
    time the statement started (the log holds no commit time). An UPDATE that starts
    before T and commits after it is replayed by --until T, although the source at T
    did not show it; --until-position stops exactly."""
    db = "hist_slow"
    backup = _setup(conn, db, tmp_path)
    with connect(conn) as c:
        start = int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0)
        while int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0) == start:
            pass  # the UPDATE starts at the beginning of a second
    before = _position(conn)
    with connect(conn.with_database(db)) as c:
        started = int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0)
        c.execute("UPDATE t SET n = n + 1 + SLEEP(2) WHERE id = 1")  # commits 2 s later
    archive = tmp_path / "archive"
    with connect(conn) as c:
        while int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0) <= started + 3:
            pass
    pull(conn, archive)
    restore_until(backup, conn, f"{db}_t", Target(time=started + 1), archive)
    assert _state(conn, f"{db}_t") == _state(conn, db)  # the UPDATE is in
    restore_until(backup, conn, f"{db}_p", before, archive)
    assert _state(conn, f"{db}_p") != _state(conn, db)  # stopped before it


@pytest.mark.db
def test_one_statement_of_many_row_events_larger_than_max_allowed_packet(conn, tmp_path):
    """One UPDATE of 60,000 rows: some 30 MB of row events for one statement, which
    mariadb-binlog prints as one BINLOG statement (all its events, up to the one flagged
    statement end), past MariaDB's default max_allowed_packet (16 MB) that the source's
    short UPDATE never needed. The replay failed after the restore ("Server has gone
    away"); now the restore refuses first, naming the setting, and succeeds with it.
    (Splitting the statement's events over several BINLOG statements is no way out: it
    was tried and the copy silently missed rows.)"""
    db = "hist_wide"
    backup = _setup(conn, db, tmp_path)
    with connect(conn) as c:
        packet = int(c.scalar("SELECT @@GLOBAL.max_allowed_packet") or 0)
        c.execute("SET GLOBAL max_allowed_packet = 16 * 1024 * 1024")  # MariaDB's default
    try:
        _run(conn, db, [
            "CREATE TABLE w (id INT PRIMARY KEY, v VARCHAR(255))",
            "INSERT INTO w SELECT seq, REPEAT('a', 250) FROM seq_1_to_60000",
            "UPDATE w SET v = REPEAT('b', 250)",
        ])  # fmt: skip
        archive = tmp_path / "archive"
        pull(conn, archive)
        with pytest.raises(PitrUnavailable, match="max_allowed_packet of at least") as err:
            restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
        assert not _exists(conn, f"{db}_copy")
        with connect(conn) as c:
            c.execute(err.value.hint.split(" on the target")[0])  # the setting it names
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    finally:
        with connect(conn) as c:
            c.execute(f"SET GLOBAL max_allowed_packet = {packet}")
    assert _state(conn, f"{db}_copy") == _state(conn, db)


SQL_MODE_HIDES = [
    # (name, sql_mode, statement with the source as the default database, refused because)
    # ANSI_QUOTES: "db"."t" is a qualified name, not two strings
    ("ansiother", "ANSI_QUOTES", 'INSERT INTO "{o}".o VALUES (9, \'by ansi\')', "another database"),
    ("ansisource", "ANSI_QUOTES", 'UPDATE "{s}".t SET v = \'ansi\' WHERE id = 1', "names tables"),
    # NO_BACKSLASH_ESCAPES: 'C:\' ends its string, the source's name is outside of it
    ("nobackslash", "NO_BACKSLASH_ESCAPES",
     "INSERT INTO t VALUES (900, 'C:\\', (SELECT COUNT(*) FROM {s}.t)), (901, 'x', 1)",
     "names tables"),
]  # fmt: skip


@pytest.mark.db
def test_a_statement_whose_sql_mode_hides_a_qualified_name_is_refused(conn, tmp_path):
    """Statement format, restored into another name. Under ANSI_QUOTES ``"db".t`` names
    a table and under NO_BACKSLASH_ESCAPES ``'C:\\'`` is a whole string: read as the
    default sql_mode, the check saw strings and let them through, and the replay wrote
    the other database, or the source database itself, on the target server."""
    other = "hist_sqlmode_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY, v TEXT)")
    backups = {}
    for name, mode, sql, _why in SQL_MODE_HIDES:
        db = f"hist_sqlmode_{name}"
        backups[name] = _setup(conn, db, tmp_path)
        _run(conn, db, ["SET SESSION binlog_format=STATEMENT", f"SET SESSION sql_mode='{mode}'",
                        sql.format(o=other, s=db)])  # fmt: skip
    archive = tmp_path / "archive"
    pull(conn, archive)
    with connect(conn) as c:  # as before the history
        c.execute(f"DELETE FROM {other}.o")
        c.execute("UPDATE hist_sqlmode_ansisource.t SET v = 'r1' WHERE id = 1")
    before = [_state(conn, other), *(_state(conn, f"hist_sqlmode_{n}") for n in backups)]
    for name, _mode, _sql, why in SQL_MODE_HIDES:
        with pytest.raises(PitrUnavailable, match=why):
            restore_until(backups[name], conn, f"hist_sqlmode_{name}_c", _end(archive), archive)
        assert not _exists(conn, f"hist_sqlmode_{name}_c")
    assert [_state(conn, other), *(_state(conn, f"hist_sqlmode_{n}") for n in backups)] == before


@pytest.mark.db
def test_a_target_name_that_mariadb_binlog_cannot_rename_to_is_refused_first(conn, tmp_path):
    """``mariadb-binlog --rewrite-db=SRC->NEW`` cuts NEW at its first blank: restored
    into ``hist_ws copy``, the replay went into ``hist_ws``, the source database itself,
    and applied the range a second time there (the copy held the bare backup). A name
    with ``->`` was refused only after the backup had been restored into it. Both are
    refused before anything is written."""
    db = "hist_ws"
    backup = _setup(conn, db, tmp_path)
    _run(conn, db, ["SET SESSION binlog_format=STATEMENT", "UPDATE t SET n = n + 1",
                    "SET SESSION binlog_format=ROW", "UPDATE t SET v = CONCAT(v, '+')"])  # fmt: skip
    archive = tmp_path / "archive"
    pull(conn, archive)
    before = _state(conn, db)
    for name in (f"{db} copy", f"{db}\tcopy", f"{db}->x"):
        with pytest.raises(ConfigError, match="cannot be replayed into"):
            restore_until(backup, conn, name, _end(archive), archive)
        with connect(conn) as c:
            assert not c.query("SHOW DATABASES LIKE 'hist\\_ws_%'"), name
    assert _state(conn, db) == before


@pytest.mark.db
def test_a_database_with_a_non_ascii_name_restores_to_a_point(conn, tmp_path):
    """A connection named its database in the handshake in the client library's default
    character set: ``hist_mödle`` was another name ("Unknown database"), and a restore
    into it, to a point or not, failed. Statement and row events replay into it."""
    db = "hist_mödle"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE `{db}`")
        c.execute(f"CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
        c.execute(f"INSERT INTO `{db}`.t SELECT seq, 'ä', seq FROM `{db}`.seq_1_to_30")
    backup = tmp_path / "backup"
    dump(conn, db, backup, DumpOptions(threads=1))
    with connect(conn) as c:
        for sql in (f"USE `{db}`", "SET SESSION binlog_format=STATEMENT",
                    "INSERT INTO t VALUES (31, 'ö', 1)", "SET SESSION binlog_format=ROW",
                    "UPDATE t SET v = 'ü' WHERE id < 5"):  # fmt: skip
            c.execute(sql)
    archive = tmp_path / "archive"
    pull(conn, archive)
    restore_until(backup, conn, f"{db}_c", _end(archive), archive)
    assert _state(conn, f"{db}_c") == _state(conn, db)


@pytest.mark.db
def test_a_temporary_table_open_when_the_server_crashed_is_gone_after_the_restart(tmp_path):
    """Statement format: a session's temporary table was open when the server crashed (no
    DROP logged). After the restart a session with the same thread id (thread ids start
    over) creates and uses one of that name. The replay, one client session throughout,
    still had the old one: CREATE TEMPORARY TABLE failed ("already exists") after the
    restore, and with IF NOT EXISTS the old rows were read into the copy. The replay
    drops, at the server's restart, the temporary tables open then.

    A MEMORY table is empty after the restart, and the server logs its own ``TRUNCATE
    TABLE `tcrash`.`m` /* generated by server … */`` when it is first opened: a restore
    into another name refused it ("names tables as tcrash.<table>"); the replay now runs
    it on the copy's table."""
    with LocalServer(binlog=True) as own:
        s = ConnSettings(host="127.0.0.1", port=own.port, user="root", password="")
        with connect(s) as c:
            c.execute("CREATE DATABASE tcrash")
            c.execute("CREATE TABLE tcrash.t (id INT PRIMARY KEY, v TEXT)")
            c.execute("CREATE TABLE tcrash.m (id INT PRIMARY KEY) ENGINE=MEMORY")
            c.execute("INSERT INTO tcrash.m VALUES (1), (2)")
        backup = tmp_path / "backup"
        dump(s, "tcrash", backup, DumpOptions(threads=1))
        session = ["SET SESSION binlog_format=STATEMENT", "SET pseudo_thread_id = 4242"]
        _run(s, "tcrash", [*session, "CREATE TEMPORARY TABLE tmp (id INT)",
                           "CREATE TEMPORARY TABLE tmp2 (id INT)",
                           "INSERT INTO tmp VALUES (1)", "INSERT INTO t VALUES (1, 'before')"])  # fmt: skip
        own.kill()
        own.start()
        _run(s, "tcrash", [*session, "CREATE TEMPORARY TABLE IF NOT EXISTS tmp (id INT)",
                           "INSERT INTO tmp VALUES (2)", "CREATE TEMPORARY TABLE tmp2 (id INT)",
                           "INSERT INTO t SELECT id + 100, 'from tmp' FROM tmp",
                           "DROP TEMPORARY TABLE tmp", "INSERT INTO m VALUES (3)"])  # fmt: skip
        archive = tmp_path / "archive"
        pull(s, archive)
        restore_until(backup, s, "tcrash_copy", _end(archive), archive)
        assert _state(s, "tcrash_copy") == _state(s, "tcrash")
        with connect(s) as c:
            assert [int(r[0]) for r in c.query("SELECT id FROM tcrash_copy.t ORDER BY id")] == [
                1, 102]  # fmt: skip
            assert c.query("SELECT id FROM tcrash_copy.m") == [(b"3",)]


@pytest.mark.db
def test_an_archive_read_while_a_pull_archives_the_open_file_again(conn, tmp_path):
    """A restore (or verify) reads chain.json, then the files; a pull (``--follow``
    publishes every 30 s) meanwhile stores the open file again, longer, under its name.
    The reader compared the new file with the old entry and called the archive damaged
    (exit 8). The bytes the old entry lists are the new file's prefix: they are read,
    checked against the old entry's raw sha256."""
    db = "hist_race"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v TEXT)")
    archive = tmp_path / "archive"
    pull(conn, archive)
    reader = Archive.open(archive)  # what a restore or verify has read of chain.json
    old = reader.chain.files[-1]
    assert not old.complete
    _run(conn, db, ["INSERT INTO t VALUES (1, 'after the first pull')"])
    pull(conn, archive)
    new = Archive.open(archive)
    entry = new.chain.get(old.name)
    assert entry is not None and entry.size > old.size
    raw = b"".join(reader.raw_blocks(old))
    assert raw == b"".join(new.raw_blocks(entry))[: old.size] and len(raw) == old.size
    damaged = archive / old.stored  # a file that is neither entry's is still refused
    data = damaged.read_bytes()  # its last byte changed (setting it to 0 was no change
    damaged.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # when it was 0 already)
    with pytest.raises(IntegrityError, match="does not match its checksum"):
        b"".join(reader.raw_blocks(old))


def _with_incident(data: bytes, at: int) -> bytes:
    """A binlog file's bytes with an Incident event (type 26, LOST_EVENTS) inserted at
    the event boundary ``at``, laid out as the server writes one: the 19-byte header, the
    incident number (u16), the message (a length byte and its text), and the CRC32 when
    the file carries them; every event after it moved (its end position and CRC32)."""
    import struct
    import zlib

    reader = EventReader()
    events = list(reader.feed(data))
    assert at in [e.start for e in events], at
    crc = reader.crc
    msg = b"error writing to the binary log"
    body = struct.pack("<H", 1) + bytes([len(msg)]) + msg
    size = 19 + len(body) + (4 if crc else 0)
    first = next(e for e in events if e.start == at)
    incident = struct.pack("<IBIIIH", first.timestamp, 26, 1, size, at + size, 0) + body
    if crc:
        incident += struct.pack("<I", zlib.crc32(incident))
    out = bytearray(data[:at]) + incident
    for e in events:
        if e.start < at:
            continue
        raw = bytearray(data[e.start : e.end])
        struct.pack_into("<I", raw, 13, e.end + size)
        if crc:
            struct.pack_into("<I", raw, len(raw) - 4, zlib.crc32(raw[:-4]))
        out += raw
    return bytes(out)


@pytest.mark.db
def test_an_incident_event_in_the_range_is_refused_before_the_target_is_touched(conn, tmp_path):
    """An Incident event is the server declaring a gap in its own history (events it
    could not log: the source changed in a way the log does not hold). mariadb-binlog
    prints it as ``RELOAD DATABASE; # Shall generate syntax error``: the replay failed
    there, after the backup had been restored. The restore now refuses up front, naming
    the file and position; a target before the incident still replays."""
    db = "hist_incident"
    backup = _setup(conn, db, tmp_path)
    _run(conn, db, ["UPDATE t SET v = 'before the incident' WHERE id < 5"])
    at = _position(conn)
    before = _state(conn, db)
    _run(conn, db, ["UPDATE t SET v = 'after the incident' WHERE id > 25"])
    archive = tmp_path / "archive"
    pull(conn, archive)
    a = Archive.open(archive)
    victim = a.chain.get(at.file)
    assert victim is not None
    spliced = tmp_path / victim.name
    spliced.write_bytes(_with_incident(b"".join(a.raw_blocks(victim)), at.position))
    a.store(spliced, victim.name, complete=victim.complete)
    # verify tells (its checksums and chain are right, but no replay crosses it)
    problems = verify_archive(archive).problems
    assert len(problems) == 1 and f"{at.file}:{at.position} holds an incident" in problems[0]
    with pytest.raises(PitrUnavailable, match="incident") as err:
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert f"{at.file}:{at.position}" in err.value.message
    assert "backup taken after" in (err.value.hint or "")
    assert not _exists(conn, f"{db}_copy")
    restore_until(backup, conn, f"{db}_copy", at, archive)
    assert _state(conn, f"{db}_copy") == before


@pytest.mark.db
@pytest.mark.parametrize(
    ("name", "in_backup", "steps"),
    [
        # the view's table has a trigger that writes the other database
        ("trgview", True, [
            "CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW "
            "INSERT INTO {o}.o (id, v) VALUES (NEW.id, 'by the trigger')",
            "CREATE VIEW vt AS SELECT id, v, n FROM t WHERE id > 0",
            "CREATE VIEW `v t2` AS SELECT * FROM vt",
        ]),
        # the view is another database's table: writing it writes there
        ("otherview", False, ["CREATE SQL SECURITY INVOKER VIEW `v t2` AS SELECT * FROM {o}.o"]),
    ],
)  # fmt: skip
def test_a_statement_writing_a_view_that_writes_another_database_is_refused(
    conn, tmp_path, name, in_backup, steps
):
    """Statement format: a statement that writes a view. The view's base table has a
    trigger writing another database, or is another database's table: replayed, the
    statement writes there a second time (the check looked for the trigger's table or a
    qualified name in the statement, not through the view). Refused before the target
    is touched; the view defined in the backup (objects.json) or in the range."""
    db, other = f"hist_view_{name}", f"hist_view_{name}_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY, v TEXT, n DOUBLE)")
        c.execute(f"INSERT INTO {other}.o VALUES (1, 'one', 1)")
    steps = [s.format(o=other) for s in steps]
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
    if in_backup:
        _run(conn, db, steps)
    backup = tmp_path / "backup"
    dump(conn, db, backup, DumpOptions(threads=1))
    write = (
        "INSERT INTO `v t2` (id, v, n) VALUES (500, 'through the view', 1)"
        if in_backup
        else "UPDATE `v t2` SET v = 'through the view' WHERE id = 1"
    )
    _run(conn, db, ["SET SESSION binlog_format=STATEMENT", *([] if in_backup else steps), write])
    archive = tmp_path / "archive"
    pull(conn, archive)
    with connect(conn) as c:  # the other database as it was before the history
        c.execute(f"DELETE FROM {other}.o")
        c.execute(f"INSERT INTO {other}.o VALUES (1, 'one', 1)")
    before = _state(conn, other)
    why = "trigger trg" if in_backup else "view v t2"
    with pytest.raises(PitrUnavailable, match=f"{why}.*another database \\({other}\\)"):
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert not _exists(conn, f"{db}_copy")
    assert _state(conn, other) == before


def _create_table(conn: ConnSettings, db: str, table: str) -> bytes:
    with connect(conn) as c:
        return bytes(c.query(f"SHOW CREATE TABLE `{db}`.`{table}`")[0][1])


@pytest.mark.db
def test_alters_logged_in_two_phases_replay_into_another_name(conn, tmp_path):
    """binlog_alter_two_phase=ON logs an ALTER twice, as START ALTER and as COMMIT ALTER
    (or ROLLBACK ALTER when it failed), and mariadb-binlog prints both as BINLOG
    statements, which --rewrite-db cannot rename: the replay into another name ran the
    ALTER against the source database (here it failed, "Duplicate column name", after
    the restore; an ALTER that can run again rebuilt the source and left the copy
    unaltered). The replay now runs each committed ALTER once, as a statement, in the
    target; a rolled back one not at all."""
    db, other = "hist_alter2", "hist_alter2_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY)")
    backup = _setup(conn, db, tmp_path)
    with connect(conn) as c:
        c.execute("SET GLOBAL binlog_alter_two_phase = ON")
    try:
        _run(conn, other, ["ALTER TABLE o ADD COLUMN z INT"])  # another database's
        _run(conn, db, [
            "SET SESSION binlog_format=ROW",
            "ALTER TABLE t ADD COLUMN w INT DEFAULT 7",
            "UPDATE t SET w = id * 2 WHERE id < 10",
            "ALTER TABLE t ADD INDEX (w)",
            "UPDATE t SET v = 'same' WHERE id < 5",
        ])  # fmt: skip
        with pytest.raises(ServerError, match="Duplicate entry"):
            _run(conn, db, ["ALTER TABLE t ADD UNIQUE KEY uv (v)"])  # rolled back
        _run(conn, db, ["ALTER TABLE t MODIFY v VARCHAR(300), ALGORITHM=COPY",
                        "INSERT INTO t VALUES (99, REPEAT('x', 250), 1, 2)"])  # fmt: skip
    finally:
        with connect(conn) as c:
            c.execute("SET GLOBAL binlog_alter_two_phase = OFF")
    archive = tmp_path / "archive"
    pull(conn, archive)
    source = (_state(conn, db), _create_table(conn, db, "t"))
    with connect(conn) as c:
        c.execute(f"ALTER TABLE {other}.o DROP COLUMN z")
    before = _create_table(conn, other, "o")
    restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert _create_table(conn, other, "o") == before
    assert _state(conn, f"{db}_copy") == source[0]
    assert _create_table(conn, f"{db}_copy", "t") == source[1]
    assert (_state(conn, db), _create_table(conn, db, "t")) == source


@pytest.mark.db
def test_a_statement_whose_values_a_replay_cannot_repeat_is_refused(conn, tmp_path):
    """binlog_format=STATEMENT logs ``INSERT … VALUES (UUID())`` as the statement (with a
    warning), and replayed it gives another value: the copy differed from the source
    without a word. Refused before the target is touched, naming the function; MIXED logs
    the same statement as rows, which replay exactly (a target before the statement too)."""
    db = "hist_nondet"
    backup = _setup(conn, db, tmp_path)
    _run(conn, db, [
        "SET SESSION binlog_format=MIXED",
        "INSERT INTO t VALUES (700, UUID(), 1)",
        "UPDATE t SET v = CONCAT(v, ' ', UUID_SHORT()) WHERE id < 3",
        "SET SESSION binlog_format=STATEMENT",
        "INSERT INTO t VALUES (701, CONCAT('seeded ', RAND(), ' at ', NOW()), 2)",
    ])  # fmt: skip
    at = _position(conn)
    state = _state(conn, db)
    _run(conn, db, [
        "SET SESSION binlog_format=STATEMENT",
        "/* a comment */ UPDATE t SET v = 'stmt', n = 3 WHERE id = 5",
        "INSERT INTO t VALUES (702, 'never the same', 1) ON DUPLICATE KEY UPDATE v = uuid()",
    ])  # fmt: skip
    archive = tmp_path / "archive"
    pull(conn, archive)
    with pytest.raises(PitrUnavailable, match=r"UUID\(\)") as err:
        restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert "statement format" in err.value.message
    assert not _exists(conn, f"{db}_copy")
    restore_until(backup, conn, f"{db}_copy", at, archive)
    assert _state(conn, f"{db}_copy") == state


@pytest.mark.db
def test_a_statement_longer_than_the_targets_max_allowed_packet(conn, tmp_path):
    """Statement format: a 3 MB INSERT, which the source took. Restored to a server with
    a smaller max_allowed_packet (another server, a default setting), the replay failed
    after the restore (the server refused the packet); now the restore refuses first,
    naming the setting the statement needs."""
    db = "hist_longstmt"
    backup = _setup(conn, db, tmp_path)
    _run(conn, db, [
        "CREATE TABLE lt (id INT PRIMARY KEY, body LONGTEXT)",
        "SET SESSION binlog_format=STATEMENT",
        f"INSERT INTO lt VALUES (1, '{'0123456789abcdef' * 3 * 65536}')",
    ])  # fmt: skip
    archive = tmp_path / "archive"
    pull(conn, archive)
    with connect(conn) as c:
        packet = int(c.scalar("SELECT @@GLOBAL.max_allowed_packet") or 0)
        c.execute("SET GLOBAL max_allowed_packet = 2 * 1024 * 1024")
    try:
        with pytest.raises(PitrUnavailable, match="max_allowed_packet of at least 4 MB"):
            restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
        assert not _exists(conn, f"{db}_copy")
    finally:
        with connect(conn) as c:
            c.execute(f"SET GLOBAL max_allowed_packet = {packet}")
    restore_until(backup, conn, f"{db}_copy", _end(archive), archive)
    assert _state(conn, f"{db}_copy") == _state(conn, db)


def test_a_non_deterministic_column_default_is_followed_through_the_ddl():
    """A column ``DEFAULT (UUID())`` (SYSDATE(), UUID_SHORT(), ...; not RAND(), whose seed
    is logged): a statement-format write that lets the default fill it, or an ALTER that
    adds such a column to the existing rows, gives another value when replayed."""
    e = Elsewhere()
    e.learn_table(  # as the backup's schema file holds it (SHOW CREATE TABLE)
        "CREATE TABLE `d` (\n  `id` int(11) NOT NULL,\n  `u` varchar(40) DEFAULT uuid(),\n"
        "  `r` double DEFAULT rand(),\n  `c` varchar(40) DEFAULT 'uuid()' COMMENT 'uuid()',\n"
        "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
    )
    assert e.defaults == {"d": {"u": "UUID()"}}
    assert "column d.u (DEFAULT UUID())" in e.default_used("INSERT INTO d (id) VALUES (1)")
    assert e.default_used("INSERT INTO d (id, u) VALUES (1, 'x'), (2, 'y')") == ""
    assert e.default_used("INSERT INTO d VALUES (1, 'x', 1, 'c')") == ""  # every column
    assert e.default_used("INSERT INTO d VALUES (1, DEFAULT, 1, 'c')") != ""
    assert e.default_used("INSERT INTO d SET id = 3, r = 2") != ""
    assert e.default_used("INSERT INTO d SET id = 3, u = 'given'") == ""
    assert e.default_used("REPLACE d (id) SELECT id FROM other_t") != ""
    assert e.default_used("UPDATE d SET u = DEFAULT WHERE id = 1") != ""
    assert e.default_used("UPDATE d SET r = 1 WHERE id = 1") == ""
    assert e.default_used("LOAD DATA INFILE 'f' INTO TABLE d (id, r)") != ""
    assert e.default_used("INSERT INTO dd (id) VALUES (1)") == ""  # another table
    # created, altered, renamed, dropped in the range
    e.learn("CREATE TABLE f (id INT, g CHAR(36) DEFAULT (uuid()), s DATETIME(6) "
            "DEFAULT (SYSDATE(6)))", "moodle")  # fmt: skip
    assert "DEFAULT SYSDATE()" in e.default_used("INSERT INTO f (id, g) VALUES (1, 'x')")
    e.learn("ALTER TABLE f ALTER COLUMN s SET DEFAULT '2026-01-01'", "moodle")
    assert e.default_used("INSERT INTO f (id, g) VALUES (1, 'x')") == ""
    e.learn("ALTER TABLE f MODIFY s DATETIME(6) DEFAULT (sysdate())", "moodle")
    assert e.default_used("INSERT INTO f (id, g) VALUES (1, 'x')") != ""
    e.learn("ALTER TABLE f DROP COLUMN s", "moodle")
    assert e.default_used("INSERT INTO f (id, g) VALUES (1, 'x')") == ""
    e.learn("RENAME TABLE f TO f2", "moodle")
    assert e.default_used("INSERT INTO f2 (id) VALUES (1)") != ""
    e.learn("DROP TABLE f2", "moodle")
    assert e.default_used("INSERT INTO f2 (id) VALUES (1)") == ""
    e.learn("CREATE TABLE h LIKE d", "moodle")
    assert e.default_used("INSERT INTO h (id) VALUES (1)") != ""
    # an ALTER fills the existing rows (logged as a statement in every format)
    why = e.default_used("ALTER TABLE e ADD COLUMN k BIGINT DEFAULT (UUID_SHORT()) AFTER id")
    assert "UUID_SHORT()" in why and "existing rows" in why
    assert e.default_used("ALTER TABLE e ADD COLUMN k BIGINT DEFAULT 5") == ""
    e.learn("CREATE TABLE ai (id INT NOT NULL AUTO_INCREMENT, v INT, PRIMARY KEY (id))", "m")
    assert "ai.id (AUTO_INCREMENT)" in e.default_used("INSERT INTO ai (v) SELECT n FROM u")
    assert e.default_used("INSERT INTO ai (v) SELECT n FROM u ORDER BY id") == ""
    assert e.default_used("INSERT INTO ai (id, v) SELECT id, n FROM u") == ""
    assert e.default_used("INSERT INTO ai (v) VALUES (1), (2)") == ""
    assert e.default_used("UPDATE ai SET v = DEFAULT") == ""
    assert e.default_used("ALTER TABLE e ADD COLUMN k INT DEFAULT 0 REFERENCES user (id)") == ""
    assert e.default_used("ALTER TABLE e ADD k CHAR(36) DEFAULT uuid() NOT NULL") != ""
    # the backup's definitions are read when first needed, before DDL changes them
    read: list[str] = []
    lazy = Elsewhere(schemas=lambda t: read.append(t) or (
        "CREATE TABLE `d` (`id` int(11), `u` varchar(40) DEFAULT uuid())" if t == "d" else ""))
    lazy.learn("ALTER TABLE d ADD COLUMN z INT", "m")
    lazy.learn("RENAME TABLE d TO d2", "m")
    assert "column d2.u" in lazy.default_used("INSERT INTO d2 (id) VALUES (1)", 0, "m")
    assert lazy.default_used("INSERT INTO other_t (id) VALUES (1)", 0, "m") == ""
    assert read == ["d", "other_t"]


@pytest.mark.db
def test_latest_until_a_second_a_newer_backup_started_in(conn, tmp_path):
    """``--latest --until T`` took the newest backup started at or before T by its start
    second; one started in T's own second after a transaction logged at T already holds
    it, and the restore was refused although the backup before it reaches T. The pick is
    now by the archived log: the newest backup whose snapshot holds nothing logged at or
    after T; with none, a refusal before anything is written. A backup encrypted at rest
    is read with the --identity given (it was passed over: no snapshot without the key).
    With a position or a GTID, --latest took the newest backup, which was past it."""
    import math
    import time
    from datetime import datetime, timezone

    from pyrage import x25519

    from helpers import moodump_cli
    from moodump.crypto import encrypt_backup_dir, load_identities, parse_recipients
    from moodump.errors import NotFoundError
    from moodump.pitr import latest_before

    db = "hist_latest"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20))")
    day = tmp_path / "backups" / "2026-12-06"
    day.mkdir(parents=True)
    # the older one encrypted at rest: --latest read no snapshot from it without the key
    dump(conn, db, tmp_path / "plain", DumpOptions(threads=1))
    native = x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"{native}\n")
    encrypt_backup_dir(tmp_path / "plain", day / f"mysql-{db}_2026-12-06_01-00-00",
                       parse_recipients(str(native.to_public())))  # fmt: skip
    _run(conn, db, ["INSERT INTO t VALUES (1, 'before T')"])
    before_w = _position(conn)
    with connect(conn) as c:
        t = math.ceil(float(c.scalar("SELECT UNIX_TIMESTAMP(NOW(6))") or 0))
    state = _state(conn, db)
    while True:
        with connect(conn) as c:
            if float(c.scalar("SELECT UNIX_TIMESTAMP(NOW(6))") or 0) >= t:
                break
        time.sleep(0.05)
    with connect(conn.with_database(db)) as c:
        c.execute("INSERT INTO t VALUES (2, 'at T')")
        w_gtid = (c.scalar("SELECT @@last_gtid") or b"").decode()
    after_w = _position(conn)
    newer = day / f"mysql-{db}_2026-12-06_02-00-00"
    dump(conn, db, newer, DumpOptions(threads=1, started_at=datetime.fromtimestamp(t, timezone.utc)))
    archive = tmp_path / "archive"
    pull(conn, archive)
    until = datetime.fromtimestamp(t, timezone.utc).isoformat()
    r = moodump_cli(
        "restore", str(tmp_path / "backups"), "--latest", f"mysql/{db}", "-H", conn.host,
        "-P", str(conn.port), "-u", conn.user, "-d", f"{db}_copy", "--until", until,
        "--binlog-dir", str(archive), "--identity", str(key), "-q", env={"MYSQL_PWD": ""},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _state(conn, f"{db}_copy") == state
    import shutil

    # a position or a GTID: the newest backup before it, not the newest (after it)
    keys, root = load_identities(key), tmp_path / "backups"
    older = day / f"mysql-{db}_2026-12-06_01-00-00"
    assert latest_before(root, f"mysql/{db}", before_w, archive, keys) == older
    assert latest_before(root, f"mysql/{db}", Target(gtid=w_gtid), archive, keys) == older
    assert latest_before(root, f"mysql/{db}", after_w, archive, keys) == newer
    shutil.rmtree(older)
    with pytest.raises(NotFoundError, match="holds a transaction logged at"):
        latest_before(root, f"mysql/{db}", t, archive)
    with pytest.raises(NotFoundError, match="its snapshot is at GTID"):
        latest_before(root, f"mysql/{db}", Target(gtid=w_gtid), archive)


def test_current_user_database_other_reads_load_xml_and_events_are_told():
    """The pure side of the refusals the database test below proves."""
    from moodump.binlog.statements import misread_load, unordered_limit, unrepeatable

    assert unrepeatable("INSERT INTO t VALUES (CURRENT_USER)") == "CURRENT_USER()"
    assert unrepeatable("UPDATE t SET v = current_role()") == "CURRENT_ROLE()"
    assert unrepeatable("INSERT INTO t (`current_user`) VALUES (1)") == ""  # a column
    e = Elsewhere()  # in a trigger's body: its DEFINER's, the same on the copy
    e.learn("CREATE TRIGGER tw BEFORE INSERT ON t FOR EACH ROW SET NEW.v = CURRENT_USER()", "m")
    assert e.fired_by("INSERT INTO t (id) VALUES (1)", 0, "m") == ""
    assert "DATABASE()" in unsafe_statement("INSERT INTO t VALUES (DATABASE())", "m", "m", True)
    assert "SCHEMA()" in unsafe_statement("UPDATE t SET v = schema ()", "m", "m", True)
    assert unsafe_statement("INSERT INTO t VALUES (DATABASE())", "m", "m", False) == ""
    assert "reads hist_o.o" in e.reads_other(
        "INSERT INTO t SELECT id, v FROM hist_o.o WHERE o.id > 1", 0, "m")  # fmt: skip
    assert "reads x.y" in e.reads_other("UPDATE t SET v = (SELECT z FROM `x`.y LIMIT 1)", 0, "m")
    for ok in (
        "INSERT INTO t SELECT u.id, t2.v FROM u JOIN t2 ON t2.id = u.id",
        "UPDATE t AS a JOIN m.u b ON a.id = b.id SET a.v = b.v, a.n = 1.5",
        "INSERT INTO t SELECT s.id, s.v FROM (SELECT id, v FROM u) AS s",
        "INSERT INTO t SELECT id, v FROM u WHERE JSON_VALUE(j, '$.a.b') = 1",
        "WITH c AS (SELECT id FROM u) UPDATE t JOIN c ON c.id = t.id SET t.v = 'x'",
        "INSERT INTO t SELECT seq, 'x', 1 FROM seq_1_to_5",
        "UPDATE t SET n = @@session.auto_increment_offset, v = @a",
        "CREATE TABLE x AS SELECT m.t.id FROM m.t",
        "DELETE a FROM a LEFT JOIN b ON b.id = a.id WHERE b.id IS NULL",
    ):
        assert e.reads_other(ok, 0, "m") == "", ok
    e.learn("CREATE VIEW ov AS SELECT id, v FROM hist_o.o", "m")
    assert "view ov" in e.reads_other("INSERT INTO t SELECT * FROM ov", 0, "m")
    assert "LOAD XML" in misread_load(
        "LOAD DATA LOCAL INFILE '/tmp/SQL_LOAD_MB-2-0' INTO TABLE `t` FIELDS TERMINATED BY "
        "'\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES TERMINATED BY '<row>' (`id`, `v`)")  # fmt: skip
    assert misread_load("LOAD DATA INFILE 'f' INTO TABLE t LINES TERMINATED BY '\\n'") == ""
    assert "LIMIT without ORDER BY" in unordered_limit("DELETE FROM t WHERE v > 1 LIMIT 1")
    assert unordered_limit("UPDATE t SET v = 1 ORDER BY id LIMIT 2") == ""
    assert unordered_limit("INSERT INTO t SELECT id FROM u LIMIT 5") != ""
    assert unordered_limit("UPDATE t SET v = (SELECT v FROM u LIMIT 1) WHERE id = 1") == ""
    assert unordered_limit("INSERT INTO t VALUES (1, 'LIMIT')") == ""
    assert "duplicate key" in unordered_limit("INSERT IGNORE INTO u (k) SELECT v FROM w")
    assert "duplicate key" in unordered_limit("REPLACE u SELECT * FROM w")
    assert "duplicate key" in unordered_limit(
        "INSERT INTO u SELECT k, v FROM w ON DUPLICATE KEY UPDATE v = VALUES(v)")  # fmt: skip
    assert unordered_limit("INSERT IGNORE INTO u (k) SELECT v FROM w ORDER BY id") == ""
    assert unordered_limit("INSERT IGNORE INTO u VALUES (1)") == ""
    assert unordered_limit("REPLACE INTO u VALUES (1, 'SELECT x FROM y')") == ""
    assert unordered_limit("INSERT INTO u SELECT k, v FROM w") == ""
    e.learn("CREATE DEFINER=`root`@`localhost` EVENT `off` ON SCHEDULE EVERY 1 HOUR "
            "ON COMPLETION NOT PRESERVE DISABLE DO DELETE FROM t", "m")  # fmt: skip
    e.learn("CREATE EVENT IF NOT EXISTS ss ON SCHEDULE EVERY 1 DAY DISABLE ON SLAVE DO "
            "UPDATE t SET v = 'ENABLE'", "m")  # fmt: skip
    assert e.events_enabled == set()
    e.learn("ALTER EVENT off RENAME TO on_now ENABLE", "m")
    assert e.events_enabled == {"on_now"}


@pytest.mark.db
def test_statements_whose_replay_would_differ_are_refused_each_from_its_backup(
    conn, tmp_path
):
    """Each step below replayed without a word and the copy differed from the source:

    - ``default``: STATEMENT format logs ``INSERT INTO d (id, n) …`` as it is, and the
      replay filled ``u DEFAULT (UUID())`` (known from the backup's schema) anew;
    - ``database``: ``DATABASE()`` replayed into another name wrote the copy's name;
    - ``current_user``: the replay runs as the restoring account (``root@…``, not
      ``hist_app@%``);
    - ``reads``: ``INSERT … SELECT … FROM other.o`` read other.o as it was at the replay
      (here changed since);
    - ``loadxml``: the server logs ``LOAD XML`` as a ``LOAD DATA`` that reads the XML as
      tab-separated text (one row ``(0, NULL)``);
    - ``limit``: ``DELETE FROM my LIMIT 1`` deleted row 4 on the source (its first row
      on disk), row 2 on the copy (restored in key order);
    - ``autoinc``: ``INSERT INTO ai (v) SELECT v FROM my`` numbers my's rows in the order
      it reads them: with my's rows on disk as 4, 2, 3 (row 4 in row 1's place), (1, 4),
      (2, 2)… on the source, (1, 2), (2, 3)… on a copy restored in key order;
    - ``ignore``: ``INSERT IGNORE … SELECT … FROM my`` keeps, of the rows with one key,
      the one it reads first: another on the copy, whose rows lie in another order;
    - ``alter``: ``ALTER TABLE t ADD COLUMN g … DEFAULT (UUID())`` (a statement in ROW
      format too) gave every existing row of the copy another value;
    - ``event``: with the target's event_scheduler ON the copy's event ran during the
      replay, which applied the source's runs too (``EVERY 1 SECOND … INSERT`` failed
      the replay with a duplicate key after the restore).

    Each is now refused before the target is touched, from the backup taken just before
    it (one archive for all); the replay up to the first is exact."""
    db, other = "hist_refused", "hist_refused_o"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {other}")
        c.execute(f"CREATE TABLE {other}.o (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
        c.execute(f"INSERT INTO {other}.o VALUES (101, 'as the source read it', 1)")
        c.execute("CREATE USER IF NOT EXISTS hist_app@'%' IDENTIFIED BY 'app-pw'")
        c.execute(f"GRANT ALL ON {db}.* TO hist_app@'%'")
        c.execute("GRANT BINLOG ADMIN ON *.* TO hist_app@'%'")  # SET binlog_format
    app = ConnSettings(host=conn.host, port=conn.port, user="hist_app", password="app-pw")
    (tmp_path / "rows.xml").write_text(
        '<list><row id="501" v="five hundred one" n="1"/><row id="502" v="x" n="2"/></list>'
    )
    (tmp_path / "rows.tsv").write_text("601\tsix hundred one\t1\n")
    stmt = "SET SESSION binlog_format=STATEMENT"
    steps = [  # (name, account, statements, the refusal)
        ("exact", conn, [stmt, "INSERT INTO d (id, u, n) VALUES (3, 'given', 3)",
                         "UPDATE t SET v = 'own', n = (SELECT MAX(x.id) FROM t AS x) WHERE id = 1",
                         f"LOAD DATA INFILE '{tmp_path / 'rows.tsv'}' INTO TABLE t"], ""),
        ("default", conn, [stmt, "INSERT INTO d (id, n) VALUES (4, 4)"],
         r"column d\.u \(DEFAULT UUID\(\)\)"),
        ("database", conn, [stmt, "INSERT INTO t VALUES (900, DATABASE(), 1)"], r"DATABASE\(\)"),
        ("current_user", app, [stmt, "INSERT INTO t VALUES (901, CURRENT_USER(), 2)"],
         r"CURRENT_USER\(\)"),
        ("reads", conn, [stmt, f"INSERT INTO t SELECT * FROM {other}.o"], f"reads {other}.o"),
        ("loadxml", conn, [stmt, f"LOAD XML INFILE '{tmp_path / 'rows.xml'}' INTO TABLE t"],
         "LOAD XML"),
        ("limit", conn, [stmt, "DELETE FROM my LIMIT 1"], "LIMIT without ORDER BY"),
        ("autoinc", conn, [stmt, "INSERT INTO ai (v) SELECT v FROM my"],
         r"ai\.id \(AUTO_INCREMENT\) in the order"),
        ("ignore", conn, [stmt, "INSERT IGNORE INTO d (id, u, n) SELECT 10, 'k', v FROM my"],
         "duplicate key"),
        ("alter", conn, ["SET SESSION binlog_format=ROW",  # DDL: a statement in any format
                         "ALTER TABLE t ADD COLUMN g VARCHAR(40) DEFAULT (UUID())"],
         r"column t\.g with DEFAULT UUID\(\), which fills the existing rows"),
        ("event", conn, ["CREATE EVENT ev_later ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 DAY "
                         "DO INSERT INTO t VALUES (990, 'by the event', 1)"], "event_scheduler"),
    ]  # fmt: skip
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
        c.execute(f"CREATE TABLE {db}.d (id INT PRIMARY KEY, u VARCHAR(40) DEFAULT (UUID()), "
                  "n INT)")  # fmt: skip
        c.execute(f"INSERT INTO {db}.d (id, n) VALUES (1, 1), (2, 2)")
        # rows in another order than the copy's: row 4 fills row 1's place
        c.execute(f"CREATE TABLE {db}.my (id INT PRIMARY KEY, v INT) ENGINE=MyISAM")
        c.execute(f"INSERT INTO {db}.my VALUES (1, 1), (2, 2), (3, 3)")
        c.execute(f"DELETE FROM {db}.my WHERE id = 1")
        c.execute(f"INSERT INTO {db}.my VALUES (4, 4)")
        c.execute(f"CREATE TABLE {db}.ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    runs = []
    for name, account, statements, refusal in steps:
        backup = tmp_path / f"backup-{name}"
        dump(conn, db, backup, DumpOptions(threads=1))
        _run(account, db, statements)
        runs.append((name, backup, _position(conn), _state(conn, db), refusal))
    with connect(conn) as c:
        c.execute(f"UPDATE {other}.o SET v = 'changed since'")
    archive = tmp_path / "archive"
    pull(conn, archive)
    copy = f"{db}_copy"
    for name, backup, at, state, refusal in runs:
        if not refusal:
            restore_until(backup, conn, copy, at, archive)
            assert _state(conn, copy) == state
            with connect(conn) as c:
                c.execute(f"DROP DATABASE {copy}")
            continue
        if name == "event":
            with connect(conn) as c:
                c.execute("SET GLOBAL event_scheduler = ON")
        try:
            with pytest.raises(PitrUnavailable, match=refusal) as err:
                restore_until(backup, conn, copy, at, archive)
            if name == "event":  # created by the replay, --no-objects or not
                with pytest.raises(PitrUnavailable, match=refusal):
                    restore_until(backup, conn, copy, at, archive, RestoreOptions(objects=False))
        finally:
            if name == "event":
                with connect(conn) as c:
                    c.execute("SET GLOBAL event_scheduler = OFF")
        assert "binlog_format" in err.value.message or name in ("database", "event"), name
        assert not _exists(conn, copy), name
    restore_until(runs[-1][1], conn, copy, runs[-1][2], archive)  # the scheduler OFF
    with connect(conn) as c:
        assert c.query("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE "
                       f"EVENT_SCHEMA = '{copy}'") == [(b"ev_later",)]  # fmt: skip
