"""Point-in-time recovery against awkward but real binary log histories.

One MariaDB with a tiny ``max_binlog_size`` (many rotations); the binary log settings
that matter (format, checksum, compression, annotate, row image, GTID domain) are
switched at run time between writes, so one archive holds all of them. Each test makes
its own database, backup and archive; the server-wide ones (restart, RESET MASTER) come
last, on a server of their own.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from moodump.binlog.chain import Target
from moodump.db import ConnSettings, connect
from moodump.db.localserver import LocalServer
from moodump.dump import DumpOptions, dump
from moodump.errors import ConfigError, IntegrityError, PitrUnavailable
from moodump.pitr import Archive, pull, restore_until, verify_archive

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(binlog=True, settings={"max-binlog-size": "4096"}) as s:
        yield s


@pytest.fixture(scope="module")
def conn(server: LocalServer) -> ConnSettings:
    return ConnSettings(host="127.0.0.1", port=server.port, user="root", password="")


def _state(conn: ConnSettings, db: str) -> dict[str, tuple[int, int]]:
    with connect(conn) as c:
        tables = sorted(
            r[0].decode()
            for r in c.query(
                f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{db}' "
                "AND TABLE_TYPE='BASE TABLE' AND TABLE_NAME NOT LIKE '\\_moodump%'"
            )
        )
        return {
            t: (
                int(c.scalar(f"SELECT COUNT(*) FROM `{db}`.`{t}`") or 0),
                int(c.query(f"CHECKSUM TABLE `{db}`.`{t}`")[0][1] or 0),
            )
            for t in tables
        }


def _objects(conn: ConnSettings, db: str) -> set[str]:
    with connect(conn) as c:
        rows = c.query(
            "SELECT CONCAT('view ', TABLE_NAME) FROM information_schema.VIEWS "
            f"WHERE TABLE_SCHEMA='{db}' UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME) "
            f"FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{db}' UNION ALL "
            "SELECT CONCAT('routine ', ROUTINE_NAME) FROM information_schema.ROUTINES "
            f"WHERE ROUTINE_SCHEMA='{db}'"
        )
    return {r[0].decode() for r in rows}


def _exists(conn: ConnSettings, db: str) -> bool:
    with connect(conn) as c:
        return bool(c.query(f"SHOW DATABASES LIKE '{db}'"))


def _end(archive: Path) -> Target:
    last = Archive.open(archive).chain.files[-1]
    return Target(file=last.name, position=last.size)


def _setup(conn: ConnSettings, db: str, tmp: Path) -> Path:
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
        c.execute(f"INSERT INTO {db}.t SELECT seq, CONCAT('r', seq), seq FROM {db}.seq_1_to_30")
    backup = tmp / f"backup-{db}"
    dump(conn, db, backup, DumpOptions(threads=1))
    return backup


def test_statement_mixed_compressed_history_replays_into_another_name(conn, tmp_path):
    """Rotations, STATEMENT and MIXED format, compressed events, checksum NONE then
    CRC32, annotate off, MINIMAL/NOBLOB row images, DDL of every kind, stored programs
    with a DEFINER, temporary tables, LOAD DATA, user variables, RAND() and NOW(), and
    transactions that also write another database: restored under another name, the
    copy equals the source and the other database is untouched."""
    db = "adv_src"
    with connect(conn) as c:
        c.execute("CREATE DATABASE adv_other")
        c.execute("CREATE TABLE adv_other.o (id INT PRIMARY KEY, v TEXT)")
    backup = _setup(conn, db, tmp_path)
    archive = tmp_path / "archive"
    pull(conn, archive)  # the first pull after the backup: the archive starts earlier
    data = tmp_path / "load.txt"
    data.write_text("".join(f"{1000 + i}\tloaded {i}\t{i}.5\n" for i in range(50)))
    data.chmod(0o644)
    steps = [
        "SET SESSION binlog_format=STATEMENT",
        "SET @x = 41",
        "INSERT INTO t VALUES (100, CONCAT('var', @x), RAND(7))",
        "INSERT INTO t VALUES (101, NOW(), UNIX_TIMESTAMP())",
        "CREATE TEMPORARY TABLE tmp (id INT, v VARCHAR(200))",
        "INSERT INTO tmp VALUES (200, 'via temp'), (201, 'via temp 2')",
        "INSERT INTO t (id, v) SELECT id, v FROM tmp",
        "DROP TEMPORARY TABLE tmp",
        f"LOAD DATA INFILE '{data}' INTO TABLE t",
        "FLUSH BINARY LOGS",
        "SET GLOBAL log_bin_compress=ON",
        "SET GLOBAL log_bin_compress_min_len=10",
        "INSERT INTO t VALUES (300, REPEAT('compressed statement ', 9), 1)",
        "SET SESSION binlog_format=ROW",
        "UPDATE t SET v = REPEAT('compressed rows ', 12) WHERE id < 5",
        "SET GLOBAL log_bin_compress=OFF",
        "SET GLOBAL binlog_checksum=NONE",
        "SET SESSION binlog_annotate_row_events=OFF",
        "SET SESSION binlog_row_image=MINIMAL",
        "UPDATE t SET n = n * 2 WHERE id BETWEEN 5 AND 9",
        "DELETE FROM t WHERE id = 10",
        "SET SESSION binlog_row_image=NOBLOB",
        "SET GLOBAL binlog_checksum=CRC32",
        "SET SESSION binlog_format=MIXED",
        "CREATE TABLE t2 (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT, b BLOB)",
        "INSERT INTO t2 (note, b) VALUES ('mixed', 'blob'), (UUID(), 'unsafe->row')",
        "ALTER TABLE t2 ADD COLUMN extra INT DEFAULT 7",
        "CREATE TABLE t3 AS SELECT id, v FROM t WHERE id < 20",
        "RENAME TABLE t3 TO t3_renamed",
        "DROP TABLE t2",
        "CREATE TABLE t2 (id INT PRIMARY KEY, again VARCHAR(40))",
        "INSERT INTO t2 VALUES (1, 'again')",
        "TRUNCATE TABLE t3_renamed",
        "INSERT INTO t3_renamed SELECT id, v FROM t WHERE id BETWEEN 20 AND 25",
        "CREATE DEFINER=`root`@`localhost` TRIGGER trg BEFORE INSERT ON t2 FOR EACH ROW "
        "SET NEW.again = UPPER(NEW.again)",
        "INSERT INTO t2 VALUES (2, 'trig')",
        "CREATE DEFINER=`root`@`localhost` VIEW vw AS SELECT id, again FROM t2",
        "CREATE DEFINER=`root`@`localhost` PROCEDURE pr(IN k INT) "
        "INSERT INTO t2 VALUES (k, 'proc')",
        "CALL pr(3)",
        "SET SESSION binlog_format=ROW",
        "START TRANSACTION",
        "INSERT INTO t2 VALUES (4, 'multi-db')",
        "INSERT INTO adv_other.o VALUES (1, 'same transaction, other db')",
        "UPDATE t SET v = 'multi-db' WHERE id = 11",
        "COMMIT",
        "SET SESSION gtid_domain_id=7",
        "INSERT INTO t2 VALUES (5, 'domain 7')",
        "SET SESSION gtid_domain_id=0",
        "SET SESSION binlog_format=STATEMENT",
        "START TRANSACTION",
        "INSERT INTO t2 VALUES (6, 'stmt multi-db')",
        "USE adv_other",
        "INSERT INTO o VALUES (2, 'other db, statement')",
        "USE adv_src",
        "COMMIT",
    ]
    with connect(conn.with_database(db)) as c:
        for i, sql in enumerate(steps):
            c.execute(sql)
            if i % 9 == 8:
                pull(conn, archive)  # pulls between rotations continue the open file
        c.execute("SET GLOBAL log_bin_compress_min_len=256")
    pull(conn, archive)
    assert verify_archive(archive).ok
    a = Archive.open(archive)
    assert len(a.chain.files) >= 5
    other_before = _state(conn, "adv_other")
    loads = set(Path(tempfile.gettempdir()).glob("SQL_LOAD_MB-*"))
    res = restore_until(backup, conn, "adv_copy", _end(archive), archive)
    # LOAD DATA's rows went through the private work folder, not the shared /tmp
    assert set(Path(tempfile.gettempdir()).glob("SQL_LOAD_MB-*")) == loads
    assert res.replay.events > 20
    assert _state(conn, "adv_copy") == _state(conn, db)
    assert _objects(conn, "adv_copy") == _objects(conn, db) == {
        "view vw", "trigger trg", "routine pr",
    }  # fmt: skip
    assert _state(conn, "adv_other") == other_before


REFUSED = [
    # (name, session settings, statement run with the source as default database or not,
    #  whether the target keeps the source's name, the reason expected)
    (
        "compressed",
        ["SET GLOBAL log_bin_compress=ON"],
        "ALTER TABLE {db}.t ADD COLUMN padding_for_compression_of_this_statement INT",
        False,
        "which the rename would not change",
    ),
    (
        "loaddata",
        ["SET SESSION binlog_format=STATEMENT"],
        "LOAD DATA INFILE '{file}' INTO TABLE adv_other2.o",
        True,
        "another database (adv_other2)",
    ),
    (
        "otherdefault",
        ["SET SESSION binlog_format=STATEMENT", "USE adv_other2"],
        "INSERT INTO {db}.t VALUES (999, 'from another default database', 0)",
        True,
        "from another default database (adv_other2)",
    ),
    # logged under the dropped database's name: the filter skips it (replayed, not run)
    ("dropdb", [], "DROP DATABASE adv_other3", True, None),
    (
        "grant",
        [],
        "GRANT SELECT ON t TO adv_someone@'%' IDENTIFIED BY 'pw-adv'",
        True,
        "accounts, privileges or plugins",
    ),
    # it only reads the source: skipped, and nothing of the source is lost
    (
        "readsource",
        ["SET SESSION binlog_format=STATEMENT", "USE adv_other2"],
        "INSERT INTO adv_other2.o SELECT id + 500, v FROM {db}.t",
        False,
        None,
    ),
    (
        "writesource",
        ["SET SESSION binlog_format=STATEMENT", "USE adv_other2"],
        "UPDATE adv_other2.o, {db}.t SET t.v = o.v WHERE t.id = o.id",
        False,
        "from another default database (adv_other2) and may change it",
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_statements_a_replay_cannot_apply_are_refused_before_the_target_is_touched(
    conn, tmp_path, case
):
    name, settings, sql, same_name, reason = case
    db = f"adv_ref_{name}"
    with connect(conn) as c:
        c.execute("CREATE DATABASE IF NOT EXISTS adv_other2")
        c.execute("CREATE TABLE IF NOT EXISTS adv_other2.o (id INT PRIMARY KEY, v TEXT)")
        c.execute("CREATE DATABASE IF NOT EXISTS adv_other3")
    backup = _setup(conn, db, tmp_path)
    data = tmp_path / "load.txt"
    data.write_text(f"{hash(name) % 100000}\tloaded\n")
    data.chmod(0o644)
    with connect(conn.with_database(db)) as c:
        try:
            for s in settings:
                c.execute(s)
            c.execute(sql.format(db=db, file=data))
        finally:
            c.execute("SET GLOBAL log_bin_compress=OFF")
    archive = tmp_path / "archive"
    pull(conn, archive)
    target = db if same_name else f"{db}_copy"
    if same_name:
        with connect(conn) as c:
            c.execute(f"DROP DATABASE {db}")
    if reason is None:
        with connect(conn) as c:
            c.execute("CREATE DATABASE IF NOT EXISTS adv_other3")
        other = _state(conn, "adv_other2")
        restore_until(backup, conn, target, _end(archive), archive)
        assert _exists(conn, "adv_other3") and _exists(conn, target)
        assert _state(conn, "adv_other2") == other
        return
    with pytest.raises(PitrUnavailable, match="cannot replay the statement") as err:
        restore_until(backup, conn, target, _end(archive), archive)
    assert reason in err.value.message
    assert "pw-adv" not in str(err.value) and "*" not in err.value.message  # no secret
    assert not _exists(conn, target)


def _rows(conn: ConnSettings, db: str) -> list[int]:
    with connect(conn) as c:
        return [int(r[0]) for r in c.query(f"SELECT id FROM `{db}`.t WHERE id > 30 ORDER BY id")]


def test_stops_on_second_boundaries_positions_and_gtids(conn, tmp_path):
    """Event times are set with SET timestamp, so several transactions share a second
    for sure; GTIDs of another domain and of another database's transactions."""
    db = "adv_until"
    with connect(conn) as c:
        c.execute("CREATE DATABASE IF NOT EXISTS adv_other4")
        c.execute("CREATE TABLE IF NOT EXISTS adv_other4.o (id INT PRIMARY KEY)")
        d0 = int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0)
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(200), n DOUBLE)")
        c.execute(f"INSERT INTO {db}.t VALUES (1, 'before', 0)")
        # logged a second later than the backup's start (a statement's time is its start):
        # the manifest's time, whole seconds before the snapshot, cannot tell
        c.execute(f"SET timestamp = {d0 + 1}")
        c.execute(f"INSERT INTO {db}.t VALUES (2, 'in the backup, logged at d0 + 1', 0)")
    backup = tmp_path / "backup"
    dump(conn, db, backup, DumpOptions(threads=1))
    with connect(conn) as c:
        while int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0) < d0 + 5:
            pass  # every event below carries a time after the backup and before now
    gtids: dict[int, str] = {}
    with connect(conn.with_database(db)) as c:
        for row, ts, domain in ((31, 2, 0), (32, 3, 0), (33, 3, 0), (34, 3, 7), (35, 4, 0)):
            c.execute(f"SET timestamp = {d0 + ts}")
            c.execute(f"SET gtid_domain_id = {domain}")
            c.execute(f"INSERT INTO t VALUES ({row}, 'r', 0)")
            gtids[row] = (c.scalar("SELECT @@last_gtid") or b"").decode()
            if row == 32:
                c.execute(f"INSERT INTO adv_other4.o VALUES ({row})")
                gtids[0] = (c.scalar("SELECT @@last_gtid") or b"").decode()
                c.execute("FLUSH BINARY LOGS")
    archive = tmp_path / "archive"
    pull(conn, archive)

    def until(name: str, target: Target) -> list[int]:
        restore_until(backup, conn, name, target, archive)
        return _rows(conn, name)

    assert until("adv_u1", Target(time=d0 + 2)) == []  # before the first event after it
    with pytest.raises(PitrUnavailable, match="already holds a transaction logged at"):
        restore_until(backup, conn, "adv_never", Target(time=d0 + 1), archive)
    assert until("adv_u2", Target(time=d0 + 3)) == [31]
    assert until("adv_u3", Target(time=d0 + 4)) == [31, 32, 33, 34]  # the whole second
    assert until("adv_u4", Target(gtid=gtids[34])) == [31, 32, 33, 34]  # domain 7
    assert gtids[34].startswith("7-")
    assert until("adv_u5", Target(gtid=gtids[0])) == [31, 32]  # another database's
    with connect(conn) as c:
        assert [int(r[0]) for r in c.query("SELECT id FROM adv_other4.o")] == [32]
    with pytest.raises(PitrUnavailable, match="after the end of the archive"):
        restore_until(backup, conn, "adv_never", Target(time=d0 + 3600), archive)
    last = Archive.open(archive).chain.files[-1]
    from moodump.binlog.events import iter_events

    events = iter_events(b"".join(Archive.open(archive).raw_blocks(last)))
    for inside in (events[-1].start + 3, events[1].start + 1):  # in the last event, or not
        with pytest.raises(ConfigError, match="not the start of an event"):
            restore_until(backup, conn, "adv_never", Target(file=last.name, position=inside),
                          archive)  # fmt: skip
    with pytest.raises(PitrUnavailable, match="past the archived end"):
        restore_until(backup, conn, "adv_never",
                      Target(file=last.name, position=last.size + 1), archive)  # fmt: skip
    assert not _exists(conn, "adv_never")


def test_reset_master_is_a_new_history_never_joined_to_the_archive(tmp_path):
    """RESET MASTER starts the file names over: the archive must refuse the new files
    (same names, other bytes) instead of joining them to the archived history, whether
    the server's newest file is before, at or after the archive's open one; a restart in
    between (a Stop event, a new file) is fine."""
    with LocalServer(binlog=True) as own:
        s = ConnSettings(host="127.0.0.1", port=own.port, user="root", password="")
        with connect(s) as c:
            c.execute("CREATE DATABASE r")
            c.execute("CREATE TABLE r.t (id INT PRIMARY KEY, v TEXT)")
            c.execute("INSERT INTO r.t VALUES (1, 'first history')")
        backup = tmp_path / "backup"
        dump(s, "r", backup, DumpOptions(threads=1))
        archive = tmp_path / "archive"
        pull(s, archive)
        own.stop(remove=False)  # the open file ends with a Stop event
        own.start()
        with connect(s) as c:
            c.execute("INSERT INTO r.t VALUES (2, 'after the restart')")
        pull(s, archive)
        names = [f.name for f in Archive.open(archive).chain.files]
        assert len(names) == 2 and all(f.complete for f in Archive.open(archive).chain.files[:1])
        restore_until(backup, s, "r_restart", _end(archive), archive)
        with connect(s) as c:
            assert int(c.scalar("SELECT COUNT(*) FROM r_restart.t") or 0) == 2
            c.execute("RESET MASTER")
            for i in range(6):
                c.execute(f"INSERT INTO r.t VALUES ({10 + i}, REPEAT('new history', {i + 1}))")
                if i % 2:
                    c.execute("FLUSH BINARY LOGS")
        before = (archive / "chain.json").read_text()
        with pytest.raises(ConfigError, match="RESET MASTER") as err:
            pull(s, archive)  # the server's binlog.000002 is longer than the archived one
        assert "not the history in" in err.value.message
        with connect(s) as c:
            c.execute("RESET MASTER")
            c.execute("INSERT INTO r.t VALUES (30, 'shorter')")
        with pytest.raises(ConfigError, match="RESET MASTER"):
            pull(s, archive)  # the server's newest file is binlog.000001
        with connect(s) as c:
            c.execute("RESET MASTER")
            c.execute("FLUSH BINARY LOGS")
            c.execute("INSERT INTO r.t VALUES (31, REPEAT('longer than the archived file', 30))")
        with pytest.raises(ConfigError, match="RESET MASTER") as err:
            pull(s, archive)  # binlog.000002 again, starting at another GTID state
        assert "GTID state" in err.value.message
        assert (archive / "chain.json").read_text() == before  # nothing of it was archived
        assert verify_archive(archive).ok
        # the new history archived into a new directory, as the refusal says: a backup of
        # the old history names a position of the old files, which the new ones (same
        # names) do not continue; its replay is refused, by the GTID state there
        with connect(s) as c:
            c.execute("RESET MASTER")
            for i in range(40):
                c.execute(f"INSERT INTO r.t VALUES ({100 + i}, 'the third history')")
        fresh = tmp_path / "archive-new"
        pull(s, fresh)
        with pytest.raises(PitrUnavailable, match="not the history of this archive") as err:
            restore_until(backup, s, "r_wrong", _end(fresh), fresh)
        assert "RESET MASTER" in err.value.message
        assert not _exists(s, "r_wrong")


def test_a_damaged_archive_fails_verify_and_restore_refuses_before_the_target(conn, tmp_path):
    db = "adv_damage"
    backup = _setup(conn, db, tmp_path)
    with connect(conn) as c:
        c.execute("FLUSH BINARY LOGS")  # the snapshot position is at the end of its file
    archive = tmp_path / "archive"
    pull(conn, archive)
    with connect(conn.with_database(db)) as c:
        for i in range(6):
            c.execute(f"INSERT INTO t VALUES ({40 + i}, REPEAT('x', 190), {i})")
            c.execute(f"UPDATE t SET v = REPEAT('y', 190) WHERE id < {10 + i}")
        last = int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0)
        while int(c.scalar("SELECT UNIX_TIMESTAMP()") or 0) <= last:
            pass  # covered_until is a second later than every event
    pull(conn, archive)
    files = Archive.open(archive).chain.files
    assert len(files) >= 3
    end = _end(archive)
    restore_until(backup, conn, "adv_damage_ok", end, archive)  # whole, it replays
    assert len(_rows(conn, "adv_damage_ok")) == 6
    victim = files[-2]

    def damaged(how: str) -> Path:
        copy = tmp_path / how
        shutil.copytree(archive, copy)
        p = copy / victim.stored
        data = bytearray(p.read_bytes())
        if how == "flipped":
            data[len(data) // 2] ^= 0x01
            p.write_bytes(bytes(data))
        elif how == "truncated":
            p.write_bytes(bytes(data[:-7]))
        else:  # the file is there, chain.json lost its entry
            text = json.loads((copy / "chain.json").read_text())
            gone = victim.name if how == "unlisted" else files[-1].name
            text["files"] = [f for f in text["files"] if f["name"] != gone]
            (copy / "chain.json").write_text(json.dumps(text))
        return copy

    for how, err, words in (
        ("flipped", IntegrityError, "does not match its checksum"),
        ("truncated", IntegrityError, "does not match its checksum"),
        ("unlisted", PitrUnavailable, "missing from the archive"),
        ("unlisted-last", PitrUnavailable, "missing from the archive"),
    ):
        copy = damaged(how)
        res = verify_archive(copy)
        assert not res.ok, how
        name = f"adv_damage_{how.replace('-', '_')}"
        with pytest.raises(err, match=words):
            # a time: the position of a file that is not listed is refused anyway
            restore_until(
                backup, conn, name, Target(time=Archive.open(copy).chain.covered_until), copy
            )
        assert not _exists(conn, name), how


def test_xa_and_large_transactions_replay(conn, tmp_path):
    """A transaction larger than max_binlog_size (one file holds it whole), XA
    transactions (prepared in one group, committed in another), into a server with
    gtid_strict_mode on."""
    db = "adv_xa"
    backup = _setup(conn, db, tmp_path)
    with connect(conn.with_database(db)) as c:
        c.execute("INSERT INTO t SELECT seq + 5000, REPEAT('big', 60), seq FROM seq_1_to_400")
        c.execute("XA START 'x1'")
        c.execute("INSERT INTO t VALUES (31, 'xa', 1)")
        c.execute("XA END 'x1'")
        c.execute("XA PREPARE 'x1'")
        c.execute("XA COMMIT 'x1'")
        c.execute("XA START 'x2'")
        c.execute("INSERT INTO t VALUES (32, 'xa one phase', 2)")
        c.execute("XA END 'x2'")
        c.execute("XA COMMIT 'x2' ONE PHASE")
        c.execute("INSERT INTO t VALUES (33, 'after xa', 3)")
    archive = tmp_path / "archive"
    pull(conn, archive)
    big = max(Archive.open(archive).chain.files, key=lambda f: f.size)
    assert big.size > 4096 * 4
    with connect(conn) as c:
        c.execute("SET GLOBAL gtid_strict_mode=ON")
    try:
        restore_until(backup, conn, "adv_xa_copy", _end(archive), archive)
    finally:
        with connect(conn) as c:
            c.execute("SET GLOBAL gtid_strict_mode=OFF")
    assert _state(conn, "adv_xa_copy") == _state(conn, db)
    from moodump.binlog.events import GTID, iter_events

    a = Archive.open(archive)
    events = [(f.name, e) for f in a.chain.files for e in iter_events(b"".join(a.raw_blocks(f)))]
    last_gtid = ""
    for _, e in events:  # the GTID of the XA PREPARE group
        if e.type == GTID:
            last_gtid = str(e.gtid)
        elif e.query.startswith("XA END"):
            break
    gtid = last_gtid
    with pytest.raises(PitrUnavailable, match="between the XA PREPARE and the commit"):
        restore_until(backup, conn, "adv_xa_never", Target(gtid=gtid), archive)
    assert not _exists(conn, "adv_xa_never")
