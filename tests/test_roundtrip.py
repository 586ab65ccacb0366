"""Round trips must be exact: data (CHECKSUM TABLE) and every object's SHOW CREATE."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dbcompare import compare_databases
from helpers import SHARED, run_sql, run_sql_file
from moodump.db import connect
from moodump.db.connection import quote_ident
from moodump.dump import DumpOptions, dump
from moodump.errors import Interrupted
from moodump.manifest import read_done_manifest
from moodump.restore import RestoreOptions, restore
from moodump.verify import verify

ZOO = Path(__file__).parent / "sql" / "zoo.sql"


@pytest.fixture(scope="module")
def zoo(root_settings):
    """The type-and-object zoo, loaded once per module."""
    name = "zoo src ü`q"
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        c.execute(
            f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    run_sql_file(root_settings, ZOO, name)
    yield name
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def _roundtrip(settings, src: str, tmp_path: Path, opts: DumpOptions, target: str) -> Path:
    out = tmp_path / "backup"
    result = dump(settings, src, out, opts)
    assert result.manifest.status == "DONE"
    restore(out, settings, target, RestoreOptions(threads=opts.threads, drop=True))
    with connect(settings) as c:
        assert compare_databases(c, src, target) == []
        c.execute(f"DROP DATABASE {quote_ident(target)}")
    return out


def test_zoo_roundtrip_exact_parallel_gzip(root_settings, zoo, tmp_path):
    out = _roundtrip(root_settings, zoo, tmp_path, DumpOptions(threads=2), "zoo copy 1")
    m = read_done_manifest(out)
    assert m.snapshot["method"] == "lock-tables"
    assert m.snapshot["workers"] == 2
    assert set(m.snapshot["non_transactional_tables"]) == {"my", "ar"}
    by = {t.name: t for t in m.tables}
    assert by["nopk"].digest == "multiset"
    assert by["uniq_nopk"].order_by == ["a"]
    assert "v" not in by["onlygen"].columns  # generated columns are never data
    assert "hidden" in by["features"].columns  # invisible columns are
    assert by["seq_fancy"].kind == "sequence"


def test_zoo_roundtrip_zstd_one_thread_small_chunks(root_settings, zoo, tmp_path):
    opts = DumpOptions(threads=1, codec="zstd", level=5, chunk_bytes=1)
    out = _roundtrip(root_settings, zoo, tmp_path, opts, "zoo copy 2")
    m = read_done_manifest(out)
    assert m.snapshot["method"] == "single-connection"
    parts = m.table("parts")
    assert len(parts.chunks) == 1  # composite primary key: not split
    ints = m.table("ints")
    assert len(ints.chunks) > 1  # split by primary-key range
    assert sum(c.rows for c in ints.chunks) == 4
    assert all(f.name.endswith(".zst") for f in m.files if f.kind == "data")
    # Verify reads each key-range file back on its own, while the others still load.
    rep = verify(out, settings=root_settings, threads=2)
    assert rep.passed, rep.problems
    assert rep.tables_checked == len(m.tables)
    assert rep.rows_checked == sum(t.rows for t in m.tables)


def test_zoo_restores_with_stock_tools_only(root_settings, mariadb, zoo, tmp_path):
    """The documented stock-tools path: sh restore-with-mariadb.sh TARGET [client options]."""
    out = tmp_path / "b"
    dump(root_settings, zoo, out, DumpOptions(threads=2))
    env = dict(os.environ, MYSQL_PWD="")
    subprocess.run(
        [
            "sh",
            str(out / "restore-with-mariadb.sh"),
            "zoo stock",
            "-h",
            "127.0.0.1",
            "-P",
            str(mariadb.port),
            "-u",
            "root",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    with connect(root_settings) as c:
        assert compare_databases(c, zoo, "zoo stock") == []
        c.execute("DROP DATABASE `zoo stock`")


def test_zoo_verify_offline_and_by_restore(root_settings, zoo, tmp_path):
    out = tmp_path / "b"
    dump(root_settings, zoo, out, DumpOptions(threads=2))
    offline = verify(out)
    assert offline.passed, offline.problems
    online = verify(out, settings=root_settings)
    assert online.passed, online.problems
    assert online.restore_s is not None and online.tables_checked == 29
    record = json.loads((out / "verify.json").read_text())
    assert record["status"] == "PASS" and record["method"] == "restore"
    with connect(root_settings) as c:
        leftovers = c.query("SHOW DATABASES LIKE 'moodump_verify_%'")
    assert leftovers == []


def test_overflow_rows_fall_back_to_raw_fetch(root_settings, fresh_db, tmp_path):
    """A row longer than max_allowed_packet once escaped is fetched raw, byte-identically."""
    q = quote_ident(fresh_db)
    cols = ", ".join(f"c{i} TEXT" for i in range(300))
    vals = ", ".join("REPEAT(0x0A5C, 1000)" for _ in range(300))
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE {q}.wide (id INT PRIMARY KEY, {cols}) ROW_FORMAT=DYNAMIC")
        c.execute(f"INSERT INTO {q}.wide VALUES (1, {vals})")
        c.execute(f"INSERT INTO {q}.wide (id, c0) VALUES (2, 'x'), (3, NULL)")
        c.execute("SET GLOBAL max_allowed_packet = 1048576")
    try:
        out = tmp_path / "b"
        res = dump(root_settings, fresh_db, out, DumpOptions(threads=1))
        assert res.manifest.table("wide").rows == 3
    finally:
        with connect(root_settings) as c:
            c.execute("SET GLOBAL max_allowed_packet = 1073741824")
    restore(out, root_settings, fresh_db + "_r", RestoreOptions())
    with connect(root_settings) as c:
        assert compare_databases(c, fresh_db, fresh_db + "_r") == []
        c.execute(f"DROP DATABASE {quote_ident(fresh_db + '_r')}")
    # The digest does not depend on the path taken: a normal verify re-read agrees.
    assert verify(out, settings=root_settings).passed


def test_long_values_with_many_special_bytes(root_settings, fresh_db, tmp_path):
    """Values past the server-escape limit are escaped in Python (linear, exact)."""
    q = quote_ident(fresh_db)
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE {q}.t (id INT PRIMARY KEY, b LONGBLOB, v VARCHAR(12000))")
        c.execute(
            f"INSERT INTO {q}.t VALUES (1, REPEAT(0x0A5C09, 400000), REPEAT('\\n', 9000)),"
            " (2, REPEAT(0x0A, 2048), REPEAT(0x09, 2049)), (3, NULL, ''), (4, '', NULL)"
        )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=2))
    restore(out, root_settings, fresh_db + "_r", RestoreOptions())
    with connect(root_settings) as c:
        assert compare_databases(c, fresh_db, fresh_db + "_r") == []
        c.execute(f"DROP DATABASE {quote_ident(fresh_db + '_r')}")
    assert verify(out).passed


def test_16mb_row(root_settings, fresh_db, tmp_path):
    with connect(root_settings) as c:
        c.execute(f"USE {quote_ident(fresh_db)}")
        c.execute("CREATE TABLE huge (id INT PRIMARY KEY, b LONGBLOB)")
        c.execute(
            f"INSERT INTO {quote_ident(fresh_db)}.huge SELECT seq, "
            "REPEAT(UNHEX(SHA2(seq, 256)), 16 * 1024 * 1024 / 32) FROM seq_1_to_2"
        )
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=2))
    restore(out, root_settings, fresh_db + "_r", RestoreOptions())
    with connect(root_settings) as c:
        assert compare_databases(c, fresh_db, fresh_db + "_r") == []
        c.execute(f"DROP DATABASE {quote_ident(fresh_db + '_r')}")


def test_options_tables_exclude_where_schema_data(root_settings, fresh_db, tmp_path):
    q = quote_ident(fresh_db)
    run_sql(
        root_settings,
        "CREATE TABLE mdl_user (id INT PRIMARY KEY, n VARCHAR(10));"
        "INSERT INTO mdl_user SELECT seq, CONCAT('u', seq) FROM seq_1_to_20;"
        "CREATE TABLE mdl_sessions (id INT PRIMARY KEY, s TEXT);"
        "INSERT INTO mdl_sessions VALUES (1, 'secret');"
        "CREATE TABLE other (id INT PRIMARY KEY);"
        "CREATE VIEW v AS SELECT id FROM mdl_user;",
        fresh_db,
    )
    m = dump(
        root_settings,
        fresh_db,
        tmp_path / "a",
        DumpOptions(exclude=("other",), exclude_data=("mdl_sess*",), where="id <= 5"),
    ).manifest
    assert [t.name for t in m.tables] == ["mdl_sessions", "mdl_user"]
    assert m.table("mdl_sessions").data_skipped and m.table("mdl_sessions").rows == 0
    assert m.table("mdl_user").rows == 5
    m = dump(root_settings, fresh_db, tmp_path / "b", DumpOptions(schema_only=True)).manifest
    assert all(not t.chunks for t in m.tables) and m.objects
    m = dump(root_settings, fresh_db, tmp_path / "c", DumpOptions(data_only=True)).manifest
    assert all(not t.schema_file for t in m.tables) and not m.objects
    # data-only restores into existing tables
    with connect(root_settings) as c:
        c.execute(f"CREATE DATABASE {quote_ident(fresh_db + '_d')}")
        for t in ("mdl_user", "mdl_sessions", "other"):
            c.execute(f"CREATE TABLE {quote_ident(fresh_db + '_d')}.{t} LIKE {q}.{t}")
    restore(tmp_path / "c", root_settings, fresh_db + "_d", RestoreOptions(drop=True))
    with connect(root_settings) as c:
        assert c.scalar(f"SELECT COUNT(*) FROM {quote_ident(fresh_db + '_d')}.mdl_user") == b"20"
        c.execute(f"DROP DATABASE {quote_ident(fresh_db + '_d')}")
    m = dump(root_settings, fresh_db, tmp_path / "d", DumpOptions(tables=("mdl_u*",))).manifest
    assert [t.name for t in m.tables] == ["mdl_user"]


@pytest.mark.parametrize("dataset", ["sakila", "employees"])
def test_public_datasets_roundtrip(root_settings, tmp_path, dataset):
    base = SHARED / dataset
    if not base.exists():
        pytest.skip(f"{base} is not beside the repository")
    src = f"ds_{dataset}"
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {src}")
    if dataset == "sakila":
        schema = (base / "sakila-mv-schema.sql").read_text().replace("sakila", src)
        run_sql(root_settings, schema)
        data = __import__("gzip").decompress((base / "sakila-mv-data.sql.gz").read_bytes()).decode()
        run_sql(root_settings, data.replace("USE sakila;", f"USE {src};"), src)
    else:
        with connect(root_settings) as c:
            c.execute(f"CREATE DATABASE {src}")
        ddl = (base / "employees.sql").read_text()
        ddl = "\n".join(
            line
            for line in ddl.splitlines()
            if not line.lower().startswith(("source", "drop database", "create database", "use "))
            and "flush /*" not in line.lower()
        )
        run_sql(root_settings, "SET foreign_key_checks=0;\n" + ddl, src)
        for f in ("load_departments.dump", "load_dept_manager.dump"):
            run_sql(root_settings, "SET foreign_key_checks=0;\n" + (base / f).read_text(), src)
        objects = (base / "objects.sql").read_text().replace("use employees;", "", 1)
        run_sql(root_settings, objects, src)
    out = _roundtrip(root_settings, src, tmp_path, DumpOptions(threads=2), f"{src}_copy")
    assert verify(out, settings=root_settings).passed
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE {src}")


def test_deferred_secondary_indexes_restore_identical_definitions(root_settings, zoo, tmp_path):
    """Indexes built after the load give the same SHOW CREATE TABLE (zoo: every table)."""
    out = tmp_path / "b"
    dump(root_settings, zoo, out, DumpOptions(threads=2))
    restore(
        out, root_settings, "zoo deferred", RestoreOptions(threads=2, defer_indexes_min_bytes=0)
    )
    with connect(root_settings) as c:
        assert compare_databases(c, zoo, "zoo deferred") == []
        c.execute("DROP DATABASE `zoo deferred`")


def test_resume_builds_deferred_indexes_after_a_crash(root_settings, zoo, tmp_path, monkeypatch):
    """Crash after the data but before the index build: --resume adds exactly the missing indexes."""
    from moodump.restore import engine as r

    out = tmp_path / "b"
    dump(root_settings, zoo, out, DumpOptions(threads=1))
    real = r.Restore._build_indexes
    calls = {"n": 0}

    def crash_on_second(self, conn, table):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies here
        return real(self, conn, table)

    monkeypatch.setattr(r.Restore, "_build_indexes", crash_on_second)
    opts = RestoreOptions(threads=1, defer_indexes_min_bytes=0)
    with pytest.raises((KeyboardInterrupt, Interrupted)):
        restore(out, root_settings, "zoo crashed", opts)
    monkeypatch.setattr(r.Restore, "_build_indexes", real)
    res = restore(
        out,
        root_settings,
        "zoo crashed",
        RestoreOptions(threads=1, resume=True, defer_indexes_min_bytes=0),
    )
    assert res.files_skipped > 0
    with connect(root_settings) as c:
        assert compare_databases(c, zoo, "zoo crashed") == []
        c.execute("DROP DATABASE `zoo crashed`")


def test_restore_falls_back_to_inserts_when_local_infile_is_off(root_settings, zoo, tmp_path):
    """MySQL 8 ships with local_infile=OFF: the restore must still be exact."""
    out = tmp_path / "b"
    dump(root_settings, zoo, out, DumpOptions(threads=2))
    with connect(root_settings) as c:
        c.execute("SET GLOBAL local_infile = OFF")
    try:
        res = restore(out, root_settings, "zoo inserts", RestoreOptions(threads=2))
    finally:
        with connect(root_settings) as c:
            c.execute("SET GLOBAL local_infile = ON")
    assert any("local_infile" in w for w in res.warnings)
    with connect(root_settings) as c:
        assert compare_databases(c, zoo, "zoo inserts") == []
        c.execute("DROP DATABASE `zoo inserts`")


def test_all_three_fetch_paths_write_identical_files(root_settings, zoo, tmp_path, monkeypatch):
    """direct (C reads the session), c-format (C formats connector tuples) and server
    formatting produce the same bytes for every file of the zoo."""
    from moodump.db import rowstream
    from moodump.db.connection import connect

    if not rowstream.client_formatting():
        pytest.skip("the C accelerator is not built")
    with connect(root_settings) as c:
        assert rowstream.fetch_path(c) == "direct", rowstream.direct_unavailable(c)
    digests = lambda m: {c.file: (c.rows, c.content_digest) for t in m.tables for c in t.chunks}  # noqa: E731
    direct = digests(dump(root_settings, zoo, tmp_path / "d", DumpOptions(threads=2)).manifest)
    monkeypatch.setenv("MOODUMP_DIRECT_FETCH", "0")
    with connect(root_settings) as c:
        assert rowstream.fetch_path(c) == "c-format"
    cformat = digests(dump(root_settings, zoo, tmp_path / "c", DumpOptions(threads=2)).manifest)
    monkeypatch.setenv("MOODUMP_SERVER_FORMAT", "1")
    assert not rowstream.client_formatting()
    server = digests(dump(root_settings, zoo, tmp_path / "s", DumpOptions(threads=2)).manifest)
    assert direct == cformat == server
    assert len(direct) > 20


def test_direct_stream_left_early_leaves_the_session_usable(root_settings, zoo):
    """Closing a Stream mid-result drops the rest; the connection then runs queries as
    before. Errors carry the server's errno, as the connector's do."""
    from moodump.db import _speedups
    from moodump.db.connection import connect

    with connect(root_settings) as c:
        obj, tid = c.c_session()
        assert _speedups.usable(obj, tid) is None
        assert (
            _speedups.usable(obj, tid + 1) == "the connector's MySQL object has an unknown layout"
        )
        assert _speedups.usable(object(), tid) == "not a _mysql_connector.MySQL object"
        sql = b"SELECT seq, REPEAT(CONCAT('x', CHAR(92), CHAR(9), CHAR(10)), 2) FROM mysql.seq_1_to_100000"
        st = _speedups.Stream(obj, tid, sql, bytes([0, 1]))
        data, rows, done = st.fetch(1)
        assert (rows, done) == (1, False)
        assert data == b"1\t" + rb"x\\\t\nx\\\t\n" + b"\n"
        st.close()
        st.close()
        assert c.scalar("SELECT 41 + 1") == b"42"
        with pytest.raises(_speedups.StreamError) as err:
            _speedups.Stream(obj, tid, b"SELECT nope FROM mysql.seq_1_to_2", b"\x00")
        assert err.value.errno == 1054 and "nope" in err.value.msg
        with pytest.raises(_speedups.StreamError):  # a message quoting invalid UTF-8
            _speedups.Stream(obj, tid, b"SELECT `\xff\xfe` FROM mysql.seq_1_to_2", b"\x00")
        with pytest.raises(ValueError):
            _speedups.Stream(obj, tid, b"SELECT 1, 2", b"\x00")
        # A batch smaller than one row still returns whole rows, growing in place.
        big = b"SELECT REPEAT(CONCAT(CHAR(9), 'x'), 300000) FROM mysql.seq_1_to_3"
        st = _speedups.Stream(obj, tid, big, b"\x01")
        data, rows, done = st.fetch(10)
        assert rows == 1 and data == b"\\tx" * 300000 + b"\n"
        data, rows, done = st.fetch(1 << 30)
        assert rows == 2 and done and len(data) == 2 * (900000 + 1)
        assert c.scalar("SELECT 'still fine'") == b"still fine"


def test_stale_partial_directories_are_cleaned(tmp_path):
    import os
    import subprocess

    from moodump.dump import remove_stale_partials

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".x.partial-{dead.pid}"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "f").write_bytes(b"x")
    fresh = tmp_path / ".y.partial-999999999"
    fresh.mkdir()
    live = tmp_path / f".z.partial-{os.getpid()}"
    live.mkdir()
    old = 1_000_000
    for p in (stale, stale / "data", stale / "data" / "f", live):
        os.utime(p, (old, old))
    assert remove_stale_partials(tmp_path) == [stale]
    assert fresh.exists() and live.exists()  # too new / owner alive


def test_direct_stream_escapes_every_length_and_alignment(root_settings):
    """The C escaper copies 8-byte words that hold no special byte: check values of every
    length around the word size, with specials at every position, against Python."""
    import random

    from moodump.db import _speedups
    from moodump.db.connection import connect

    rng = random.Random(5)
    values = [b""]
    for n in range(1, 41):
        for _ in range(6):
            values.append(bytes(rng.choice(b"ab\\\t\n\r\x00\xff'\"") for _ in range(n)))
        values.append(b"x" * n)
    values += [b"\\" * 33, b"\n" * 17, b"abcdefg\t" * 9, bytes(range(256)) * 3]
    union = " UNION ALL ".join(
        f"SELECT {i} AS i, UNHEX('{v.hex()}') AS v" for i, v in enumerate(values)
    )
    sql = f"SELECT v FROM ({union}) AS t ORDER BY i".encode()
    expected = b"".join(
        v.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n") + b"\n"
        for v in values
    )
    with connect(root_settings) as c:
        c.execute("SET character_set_results = binary")
        obj, tid = c.c_session()
        st = _speedups.Stream(obj, tid, sql, b"\x01")
        got, rows, done = st.fetch(1 << 30)
    assert done and rows == len(values)
    assert got == expected
