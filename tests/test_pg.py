"""PostgreSQL: the type zoo round trip, verification, and one point in time under writes.

The session cluster comes from tests/rig_pg.py (a throwaway ``initdb`` on 127.0.0.1).
"""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from moodump.db.connection import ConnSettings
from moodump.dump import DumpOptions, dump_postgres
from moodump.dump import pg as pgdump
from moodump.manifest import read_done_manifest
from moodump.restore import RestoreOptions, restore
from moodump.verify import verify
from rig_pg import PgServer

pytestmark = pytest.mark.db

ZOO = Path(__file__).parent / "sql" / "pg_zoo.sql"


def _settings(pg: PgServer) -> ConnSettings:
    return ConnSettings(host="127.0.0.1", port=pg.port, user="postgres", password="")


def _new_db(pg: PgServer, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    pg.createdb(name)
    return name


def _row_hashes(pg: PgServer, db: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and the md5 of its rows' text in sorted order."""
    out = {}
    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=db) as c:
        c.execute("SET TimeZone = 'UTC'")
        tables = c.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%'"
        ).fetchall()
        for schema, name in tables:
            q = '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'
            try:
                n, h = c.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) FROM ONLY {q} t"
                ).fetchone()
            except psycopg.errors.ObjectNotInPrerequisiteState:  # a WITH NO DATA view
                c.rollback()
                n, h = -1, "unpopulated"
            out[f"{schema}.{name}"] = (n, h)
    return out


@pytest.fixture(scope="module")
def zoo(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The zoo and its backup, every file read through psql (the big-file path); the CLI
    test dumps it again through psycopg (the small-file path) and compares the same way."""
    db = _new_db(pg, "zoo")
    pg.psql(db, file=ZOO)
    out = tmp_path_factory.mktemp("pgzoo") / "backup"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pgdump, "PSQL_MIN_BYTES", 0)
        res = dump_postgres(_settings(pg), db, out, DumpOptions(threads=2, chunk_bytes=4096))
    assert res.manifest.database_type == "postgresql"
    return db, out


def test_zoo_round_trip_is_exact(pg: PgServer, zoo: tuple[str, Path]) -> None:
    src, backup = zoo
    target = f"zoo_copy_{uuid.uuid4().hex[:6]}"
    res = restore(backup, _settings(pg), target, RestoreOptions(threads=2))
    assert res.rows == read_done_manifest(backup).total_rows
    assert _row_hashes(pg, target) == _row_hashes(pg, src)
    assert pg.schema_dump(target) == pg.schema_dump(src)
    states = []
    for db in (src, target):
        with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=db) as c:
            # sequences continue where the source was; the progress schema is gone
            states.append(c.execute(
                "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"
            ).fetchall())  # fmt: skip
            assert c.execute("SELECT to_regnamespace('_moodump_restore')").fetchone() == (None,)
    assert states[0] == states[1]
    assert ("counter", 114) in states[1]  # CACHE 3: two nextval() logged three values


def test_zoo_manifest_records_the_type_and_digests(zoo: tuple[str, Path]) -> None:
    m = read_done_manifest(zoo[1])
    assert m.database_type == "postgresql" and m.server_flavor == "postgresql"
    by = {f"{t.schema}.{t.name}": t for t in m.tables}
    assert by["zoo.nokey"].digest == "multiset" and by["zoo.nokey"].rows == 4
    assert by["zoo.texts"].digest == "ordered"
    assert len(by["zoo.bytes"].chunks) > 1  # split by key range
    assert by["zoo.counter"].kind == "sequence"
    assert "zoo.events" not in by  # a partitioned parent holds no rows itself
    assert m.objects == {"pre_data": "schema/pre-data.sql", "post_data": "schema/post-data.sql"}


def test_zoo_verifies_offline_and_by_restore(pg: PgServer, zoo: tuple[str, Path]) -> None:
    offline = verify(zoo[1], record=False)
    assert offline.passed, offline.problems
    by_restore = verify(zoo[1], settings=_settings(pg), record=False)
    assert by_restore.passed, by_restore.problems
    assert by_restore.rows_checked == read_done_manifest(zoo[1]).total_rows


def test_zoo_verifies_on_a_throwaway_local_cluster(zoo: tuple[str, Path]) -> None:
    import shutil
    import tempfile

    # under root the server runs as postgres, which must reach the directory
    where = Path(tempfile.mkdtemp(prefix="moodump-verify-"))
    where.chmod(0o755)
    try:
        report = verify(zoo[1], local=True, local_dir=where, record=True)
        assert report.passed, report.problems
        assert report.server.startswith("local postgres")
        assert report.rows_checked == read_done_manifest(zoo[1]).total_rows
        assert list(where.iterdir()) == []  # the cluster is gone
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_restore_refuses_a_non_empty_target_then_drop_and_atomic_replace_it(
    pg: PgServer, zoo: tuple[str, Path]
) -> None:
    from moodump.errors import TargetNotEmpty

    src, backup = zoo
    with pytest.raises(TargetNotEmpty):
        restore(backup, _settings(pg), src)
    target = _new_db(pg, "atomic")
    pg.psql(target, "CREATE TABLE old_stuff (x int)")
    restore(backup, _settings(pg), target, RestoreOptions(atomic=True, drop=True))
    assert _row_hashes(pg, target) == _row_hashes(pg, src)
    restore(backup, _settings(pg), target, RestoreOptions(drop=True, analyze=True))
    assert _row_hashes(pg, target) == _row_hashes(pg, src)
    empty = _new_db(pg, "empty")  # an empty database made for the restore is used as is
    pg.psql("postgres", f"ALTER DATABASE {empty} SET work_mem = '7MB'")
    restore(backup, _settings(pg), empty)
    assert _row_hashes(pg, empty) == _row_hashes(pg, src)
    assert "work_mem=7MB" in pg.psql("postgres", f"SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE datname = '{empty}'")


def test_a_damaged_file_leaves_no_database_and_the_target_untouched(
    pg: PgServer, zoo: tuple[str, Path], tmp_path: Path
) -> None:
    """The sha256 check of a restore into a new database runs beside its definitions; a
    damaged file found then drops the database again. A target that exists is touched only
    after the check: --drop keeps it when a file is damaged."""
    import shutil

    from moodump.errors import IntegrityError

    _src, backup = zoo
    damaged = tmp_path / "backup"
    shutil.copytree(backup, damaged)
    data = max((damaged / "data").iterdir(), key=lambda f: f.stat().st_size)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    for opts in (RestoreOptions(), RestoreOptions(atomic=True)):
        target = f"damaged_{uuid.uuid4().hex[:6]}"
        with pytest.raises(IntegrityError, match=data.name):
            restore(damaged, _settings(pg), target, opts)
        assert _scalar(pg, "postgres", f"SELECT count(*) FROM pg_database WHERE datname LIKE '{target}%'") == 0
    kept = _new_db(pg, "kept")
    pg.psql(kept, "CREATE TABLE old_stuff (x int); INSERT INTO old_stuff VALUES (1)")
    with pytest.raises(IntegrityError, match=data.name):
        restore(damaged, _settings(pg), kept, RestoreOptions(drop=True))
    assert _scalar(pg, kept, "SELECT x FROM old_stuff") == 1


def test_resume_skips_the_files_already_loaded(pg: PgServer, zoo: tuple[str, Path]) -> None:
    src, backup = zoo
    target = f"resume_{uuid.uuid4().hex[:6]}"
    stop = threading.Event()
    seen = []

    def on_event(e):
        if e.phase == "data":
            seen.append(e.file)
            if len(seen) == 3:
                stop.set()

    from moodump.errors import Interrupted

    with pytest.raises(Interrupted):
        restore(backup, _settings(pg), target, RestoreOptions(threads=1), progress=on_event, stop=stop)
    res = restore(backup, _settings(pg), target, RestoreOptions(resume=True))
    assert res.files_skipped >= 3
    assert _row_hashes(pg, target) == _row_hashes(pg, src)
    assert pg.schema_dump(target) == pg.schema_dump(src)


# -- one point in time under concurrent writes -----------------------------------------
TABLES = ("acct_a", "acct_b", "acct_c")
ROWS = 4000


def _writer(pg: PgServer, db: str, stop: threading.Event, count: list[int], seed: int) -> None:
    rnd = random.Random(seed)
    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=db) as c:
        while not stop.is_set():
            a, b = rnd.sample(TABLES, 2)
            steps = sorted([(a, rnd.randint(1, ROWS), -5), (b, rnd.randint(1, ROWS), 5)])
            try:
                for table, row, delta in steps:
                    c.execute(f"UPDATE {table} SET amount = amount + %s WHERE id = %s", (delta, row))
                c.commit()
                count[0] += 1
            except psycopg.errors.DeadlockDetected:
                c.rollback()


def test_invariant_holds_in_every_parallel_dump(
    pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _new_db(pg, "money")
    pg.psql(db, "; ".join(
        f"CREATE TABLE {t} (id int PRIMARY KEY, amount bigint NOT NULL, pad char(200) NOT NULL DEFAULT ''); "
        f"INSERT INTO {t} SELECT g, 1000, 'p' FROM generate_series(1, {ROWS}) g"
        for t in TABLES
    ) + "; ANALYZE")  # fmt: skip
    total = len(TABLES) * ROWS * 1000
    stop = threading.Event()
    counts = [[0], [0]]
    writers = [threading.Thread(target=_writer, args=(pg, db, stop, counts[i], i)) for i in range(2)]
    for w in writers:
        w.start()
    try:
        for n in range(8):
            # odd runs read through psql processes importing the snapshot, even ones psycopg
            monkeypatch.setattr(pgdump, "PSQL_MIN_BYTES", 0 if n % 2 else 1 << 62)
            out = tmp_path / f"b{n}"
            dump_postgres(_settings(pg), db, out, DumpOptions(threads=2, chunk_bytes=64 << 10))
            m = read_done_manifest(out)
            assert sum(len(t.chunks) for t in m.tables) > 6  # ranges interleave with writes
            target = f"money_r{n}_{uuid.uuid4().hex[:4]}"
            restore(out, _settings(pg), target)
            with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=target) as c:
                got = sum(int(c.execute(f"SELECT sum(amount) FROM {t}").fetchone()[0]) for t in TABLES)
            assert got == total, f"run {n}: {got} != {total}"
            pg.dropdb(target)
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert counts[0][0] + counts[1][0] > 0


def test_cli_dump_restore_verify_detect_postgres(pg: PgServer, zoo: tuple[str, Path], tmp_path: Path) -> None:
    """``moodump dump --type postgres``; restore and verify read the type from the
    manifest and take their connection defaults from PGHOST/PGPORT/PGUSER."""
    import os
    import subprocess
    import sys

    src, _ = zoo
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": "postgres"}
    env.pop("MYSQL_PWD", None)

    def moodump(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "moodump", *args], env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = tmp_path / "cli-backup"
    moodump("dump", "--type", "postgres", "-H", "127.0.0.1", "-P", str(pg.port), "-u", "postgres",
            "--threads", "2", "--codec", "zstd", "-q", "-o", str(out), src)  # fmt: skip
    target = f"cli_{uuid.uuid4().hex[:6]}"
    moodump("restore", str(out), "-d", target, "-q")
    assert _row_hashes(pg, target) == _row_hashes(pg, src)
    assert pg.schema_dump(target) == pg.schema_dump(src)
    report = moodump("verify", "--json", str(out))
    assert '"passed": true' in report


def test_password_reaches_psycopg_and_the_client_tools_never_argv(
    pg: PgServer, zoo: tuple[str, Path], tmp_path: Path
) -> None:
    """An account that must give a password (scram): moodump connects with it, pg_dump
    and psql get it through a private PGPASSFILE; a wrong one fails with exit 3."""
    import os
    import subprocess
    import sys

    src, _ = zoo
    hba = pg.data / "pg_hba.conf"
    old = hba.read_text()
    hba.write_text("host all pwuser 127.0.0.1/32 scram-sha-256\n" + old)
    pg.psql("postgres", "DROP ROLE IF EXISTS pwuser; CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD 'S3cret:pw\\x'")
    pg.psql("postgres", "SELECT pg_reload_conf()")
    try:
        secret = tmp_path / "pw"
        secret.write_text("S3cret:pw\\x\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL_PWD"))}

        def moodump(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "moodump", *args], env=env,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)  # fmt: skip

        common = ["-H", "127.0.0.1", "-P", str(pg.port), "-u", "pwuser"]
        ok = moodump("dump", "--type", "postgres", *common, "--password-file", str(secret),
                     "-q", "-o", str(tmp_path / "b1"), src)  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        target = f"pw_{uuid.uuid4().hex[:6]}"
        env["PGPASSWORD"] = "S3cret:pw\\x"  # libpq's own variable works too
        ok = moodump("restore", str(tmp_path / "b1"), *common, "-d", target, "-q")
        assert ok.returncode == 0, ok.stderr
        assert _row_hashes(pg, target) == _row_hashes(pg, src)
        env["PGPASSWORD"] = "wrong"
        bad = moodump("dump", "--type", "postgres", *common, "-q", "-o", str(tmp_path / "b2"), src)
        assert bad.returncode == 3, bad.stderr
        assert "password authentication failed" in bad.stderr and "wrong" not in bad.stderr
        assert not (tmp_path / "b2").exists()
    finally:
        hba.write_text(old)
        pg.psql("postgres", "SELECT pg_reload_conf()")


def test_cancelled_dump_publishes_nothing(pg: PgServer, zoo: tuple[str, Path], tmp_path: Path) -> None:
    from moodump.errors import Interrupted

    stop = threading.Event()
    out = tmp_path / "cancelled"

    def on_event(e):
        if e.phase == "data" and e.rows_done:
            stop.set()

    with pytest.raises(Interrupted):
        dump_postgres(_settings(pg), zoo[0], out, DumpOptions(threads=2, chunk_bytes=4096),
                      progress=on_event, stop=stop)  # fmt: skip
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # no work directory left either


def test_partial_restore_of_named_tables(pg: PgServer, zoo: tuple[str, Path]) -> None:
    """--table restores tables (definitions, owned sequences, data, indexes, constraints,
    triggers) into an existing database; existing ones only with --drop."""
    from moodump.errors import NotFoundError, TargetNotEmpty

    src, backup = zoo
    target = f"partial_{uuid.uuid4().hex[:6]}"
    restore(backup, _settings(pg), target)
    pg.psql(target, 'DROP TABLE zoo.serials; DELETE FROM zoo.texts; UPDATE zoo.bytes SET b = NULL; '
            'DROP TABLE "Ünïcødé ☃ schema"."Tåble ""quoted"" 😀"')  # fmt: skip
    tables = ("zoo.serials", "texts", "zoo.byt*", "Ünïcødé ☃ schema.*")
    with pytest.raises(TargetNotEmpty):
        restore(backup, _settings(pg), target, RestoreOptions(tables=tables))
    with pytest.raises(NotFoundError):
        restore(backup, _settings(pg), target, RestoreOptions(tables=("nope",), drop=True))
    res = restore(backup, _settings(pg), target, RestoreOptions(tables=tables, drop=True))
    assert res.tables == 4
    assert _row_hashes(pg, target) == _row_hashes(pg, src)
    assert pg.schema_dump(target) == pg.schema_dump(src)
    seqs = "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"
    assert pg.psql(target, seqs) == pg.psql(src, seqs)  # the owned sequences were set


def test_table_dump_restores_into_a_new_database(pg: PgServer, zoo: tuple[str, Path], tmp_path: Path) -> None:
    """dump --table: only those tables (and the sequences they own) are in the backup."""
    src, _ = zoo
    out = tmp_path / "some"
    dump_postgres(_settings(pg), src, out, DumpOptions(tables=("zoo.numbers", "nokey")))
    m = read_done_manifest(out)
    assert sorted(f"{t.schema}.{t.name}" for t in m.tables) == [
        "zoo.nokey", "zoo.numbers", "zoo.numbers_id_seq", "zoo.numbers_s_seq",
    ]  # fmt: skip
    target = f"some_{uuid.uuid4().hex[:6]}"
    restore(out, _settings(pg), target)
    hashes = _row_hashes(pg, target)
    assert hashes["zoo.numbers"] == _row_hashes(pg, src)["zoo.numbers"]
    assert set(hashes) == {"zoo.numbers", "zoo.nokey"}
    seq = "SELECT last_value FROM zoo.numbers_s_seq"
    assert pg.psql(target, seq) == pg.psql(src, seq)


def test_moodle_facts_are_recorded_and_checked_after_restore(pg: PgServer, tmp_path: Path) -> None:
    db = _new_db(pg, "moodle")
    pg.psql(db, (
        "CREATE TABLE mdl_config (id bigserial PRIMARY KEY, name varchar(255) UNIQUE, value text); "
        "CREATE TABLE mdl_config_plugins (id bigserial PRIMARY KEY, plugin varchar(100), name varchar(100), value text); "
        "CREATE TABLE mdl_user (id bigserial PRIMARY KEY, username varchar(100), deleted smallint NOT NULL DEFAULT 0); "
        "INSERT INTO mdl_config (name, value) VALUES ('version', '2024042200.01'), ('release', '4.4 (Build: 20240422)'), ('siteadmins', '2'); "
        "INSERT INTO mdl_user (username, deleted) VALUES ('guest', 0), ('boss', 0)"
    ))  # fmt: skip
    out = tmp_path / "moodle"
    m = dump_postgres(_settings(pg), db, out).manifest
    assert m.moodle is not None and m.moodle["version"] == "2024042200.01"
    assert m.moodle["siteadmins"] == ["2"] and m.moodle["admin_user"] is True
    report = verify(out, settings=_settings(pg), record=False)
    assert report.passed, report.problems
    assert report.moodle is not None and report.moodle["release"] == "4.4 (Build: 20240422)"
    pg.psql(db, "UPDATE mdl_user SET deleted = 1 WHERE id = 2")
    out2 = tmp_path / "moodle-no-admin"
    dump_postgres(_settings(pg), db, out2)
    report = verify(out2, settings=_settings(pg), record=False)
    assert not report.passed and "site administrator" in " ".join(report.problems)


def test_schema_comes_from_the_snapshot_and_a_lost_server_publishes_nothing(
    pg: PgServer, tmp_path: Path
) -> None:
    """A table created while the dump runs is in neither the data nor the definitions
    (pg_dump reads the exported snapshot); killed sessions fail the dump cleanly."""
    from moodump.errors import MoodumpError

    db = _new_db(pg, "snap")
    pg.psql(db, "CREATE TABLE a (id int PRIMARY KEY, pad text); "
            "INSERT INTO a SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")  # fmt: skip
    created = []

    def create_during(e):
        if e.phase == "data" and not created:
            created.append(1)
            pg.psql(db, "CREATE TABLE late (id int PRIMARY KEY); INSERT INTO late VALUES (1)")

    out = tmp_path / "snap"
    dump_postgres(_settings(pg), db, out, DumpOptions(threads=2, chunk_bytes=64 << 10),
                  progress=create_during)  # fmt: skip
    assert created
    m = read_done_manifest(out)
    assert [t.name for t in m.tables if t.kind == "table"] == ["a"]
    assert '"late"' not in (out / "schema" / "pre-data.sql").read_text()

    killed = []

    def kill_workers(e):
        if e.phase == "data" and not killed:
            killed.append(pg.psql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  f"WHERE datname = '{db}' AND application_name = 'moodump'"))  # fmt: skip

    out2 = tmp_path / "killed"
    with pytest.raises(MoodumpError):
        dump_postgres(_settings(pg), db, out2, DumpOptions(threads=2, chunk_bytes=64 << 10),
                      progress=kill_workers)  # fmt: skip
    assert killed and not out2.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]


def test_point_in_time_restore_of_a_postgres_backup_is_refused(
    pg: PgServer, zoo: tuple[str, Path], tmp_path: Path
) -> None:
    """--until replays a MySQL binary log: for a PostgreSQL backup it refuses, by name,
    before any database is created."""
    from moodump.binlog.chain import Target
    from moodump.errors import PitrUnavailable
    from moodump.pitr import restore_until

    _, backup = zoo
    target = f"pitr_{uuid.uuid4().hex[:6]}"
    with pytest.raises(PitrUnavailable, match="postgresql backup"):
        restore_until(backup, _settings(pg), target, Target(time=2_000_000_000), tmp_path)
    assert target not in pg.psql("postgres", "SELECT datname FROM pg_database")


def test_moodle_schema_round_trip_with_batched_indexes(pg: PgServer, tmp_path: Path) -> None:
    """Moodle's 483 tables as on PostgreSQL (~1,100 indexes and keys, most of them on
    small tables whose post-data entries the restore runs in one transaction each), with
    rows in some: the restore at 2 workers and its resume after a stop are exact."""
    from moodump.demo.sample.schema import pg_ddl

    db = _new_db(pg, "mdlpg")
    statements = pg_ddl()
    script = tmp_path / "moodle.sql"
    script.write_text(
        "".join(create + ";\n" + "".join(i + ";\n" for i in idx) for _n, create, idx in statements)
        + "INSERT INTO mdl_config (name, value) SELECT 'k' || g, repeat('v', g) FROM generate_series(1, 300) g;\n"
        + "INSERT INTO mdl_logstore_standard_log (eventname, component, action, target, crud, edulevel,"
        " contextid, contextlevel, contextinstanceid, userid, anonymous, timecreated)"
        " SELECT '\\core\\event\\x', 'core', 'viewed', 'course', 'r', 2, g % 50, 50, g, g % 7, 0, 1700000000 + g"
        " FROM generate_series(1, 5000) g;\n"
    )
    script.chmod(0o644)
    pg.psql(db, file=script)
    backup = tmp_path / "backup"
    dump_postgres(_settings(pg), db, backup, DumpOptions(threads=2, chunk_bytes=64 << 10))
    target = f"mdlpg_r_{uuid.uuid4().hex[:6]}"
    restore(backup, _settings(pg), target, RestoreOptions(threads=2))
    assert pg.schema_dump(target) == pg.schema_dump(db)
    assert _row_hashes(pg, target) == _row_hashes(pg, db)
    # stopped after some entries: the resumed restore skips what committed, runs the rest
    stop = threading.Event()
    seen: list[str] = []

    def on_event(e):  # type: ignore[no-untyped-def]
        if e.phase == "data":
            seen.append(e.file)
            if len(seen) == 200:
                stop.set()

    from moodump.errors import Interrupted

    again = f"mdlpg_s_{uuid.uuid4().hex[:6]}"
    with pytest.raises(Interrupted):
        restore(backup, _settings(pg), again, RestoreOptions(threads=2), progress=on_event, stop=stop)
    res = restore(backup, _settings(pg), again, RestoreOptions(threads=2, resume=True))
    assert res.files_skipped >= 200
    assert pg.schema_dump(again) == pg.schema_dump(db)
    assert _row_hashes(pg, again) == _row_hashes(pg, db)


def _scalar(pg: PgServer, db: str, sql: str) -> object:
    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=db) as c:
        row = c.execute(sql).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]


def test_long_values_are_stored_with_lz4_unless_a_method_was_chosen(
    pg: PgServer, tmp_path: Path
) -> None:
    """--toast-compression: auto stores long values with lz4 (the restore's speed), the
    values and the schema are the source's; a column's own COMPRESSION, the source
    database's setting and --toast-compression server keep what was chosen."""
    src = _new_db(pg, "toast")
    pg.psql(src, "CREATE TABLE t (id int PRIMARY KEY, doc text, own text COMPRESSION pglz); "
                 "INSERT INTO t SELECT g, repeat(md5(g::text), 400), repeat(md5(g::text), 400) "
                 "FROM generate_series(1, 50) g")  # fmt: skip
    out = tmp_path / "b"
    dump_postgres(_settings(pg), src, out, DumpOptions(threads=1))
    methods = ("SELECT DISTINCT pg_column_compression(doc) || '/' || "
               "pg_column_compression(own) FROM t")  # fmt: skip
    assert _scalar(pg, src, methods) == "pglz/pglz"
    auto = f"toast_auto_{uuid.uuid4().hex[:6]}"
    restore(out, _settings(pg), auto)
    assert _scalar(pg, auto, methods) == "lz4/pglz"
    assert _row_hashes(pg, auto) == _row_hashes(pg, src)
    assert pg.schema_dump(auto) == pg.schema_dump(src)
    kept = f"toast_server_{uuid.uuid4().hex[:6]}"
    restore(out, _settings(pg), kept, RestoreOptions(toast_compression="server"))
    assert _scalar(pg, kept, methods) == "pglz/pglz"
    # the source database chose pglz: auto keeps it
    pg.psql(src, f'ALTER DATABASE "{src}" SET default_toast_compression = pglz')
    out2 = tmp_path / "b2"
    dump_postgres(_settings(pg), src, out2, DumpOptions(threads=1))
    chosen = f"toast_db_{uuid.uuid4().hex[:6]}"
    restore(out2, _settings(pg), chosen)
    assert _scalar(pg, chosen, methods) == "pglz/pglz"
    assert _row_hashes(pg, chosen) == _row_hashes(pg, src)
