"""PostgreSQL, adversarial, round 3 (the fifth zoo, tests/sql/pg_zoo_adversarial3.sql):
partitions keyed by RANGE and LIST on OID alias values, a partitioned table restored by
its name (``--table``). One dump, one whole restore and one ``--table`` restore, compared
row for row and by the whole ``pg_dump --schema-only``, and verified; then restores that
stop before their definitions are in, a tablespace the server lacks, and table names
that read as globs.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from moodump.dump import DumpOptions, dump_postgres
from moodump.errors import NotFoundError
from moodump.manifest import read_done_manifest
from moodump.restore import RestoreOptions, restore
from moodump.verify import verify
from rig_pg import PgServer
from test_pg_hard import _connect, _settings, _state

pytestmark = pytest.mark.db

ZOO5 = Path(__file__).parent / "sql" / "pg_zoo_adversarial3.sql"

#: Trees keyed on OID alias values: the restored objects' OIDs sort in another order, so
#: a row may sit in another partition there; the tree's rows are the same.
_TREES = {"z5.by_rel": ("z5.by_rel_lo", "z5.by_rel_hi"), "z5.by_dom": ("z5.by_dom_lo", "z5.by_dom_hi"),
          "z5.by_type": ("z5.by_type_e", "z5.by_type_d")}  # fmt: skip


def _same(pg: PgServer, src: str, target: str) -> None:
    want, got = _state(pg, src), _state(pg, target)
    for st, db in ((want, src), (got, target)):
        for tree, parts in _TREES.items():
            for part in parts:
                st.pop(part, None)
            st[f"{tree} (tree)"] = pg.psql(db, f"SELECT r::text, n FROM {tree} t(r, n) ORDER BY n")
    diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not diff, [(k, want.get(k), got.get(k)) for k in diff]
    assert pg.schema_dump(target) == pg.schema_dump(src)


def test_zoo5_round_trip(pg: PgServer, tmp_path: Path) -> None:
    src, target = f"zoo5_{uuid.uuid4().hex[:8]}", f"zoo5_r_{uuid.uuid4().hex[:6]}"
    pg.createdb(src)
    pg.psql(src, file=ZOO5)
    out = tmp_path / "zoo5"
    dump_postgres(_settings(pg), src, out, DumpOptions(threads=2))
    # a range keyed on regclass: the rows load through the partition root (the new
    # OIDs put z5.zz below z5.mm), not into the source's partition ("violates
    # partition constraint")
    restore(out, _settings(pg), target, RestoreOptions(threads=2))
    _same(pg, src, target)
    checked = verify(out, settings=_settings(pg), record=False)
    assert checked.passed, checked.problems
    # a partitioned table named by --table: the partitions that hold its rows, at any
    # depth (it was "matches no table of the backup")
    pg.psql(target, "DELETE FROM z5.logs WHERE id % 3 = 0; UPDATE z5.logs SET v = 'changed'")
    restore(out, _settings(pg), target, RestoreOptions(threads=2, drop=True, tables=("z5.logs",)))
    _same(pg, src, target)
    pg.dropdb(target)
    pg.dropdb(src)


def test_a_restore_that_failed_before_its_definitions_is_run_again(pg: PgServer, tmp_path: Path) -> None:
    """A restore that stopped before its definitions were in (here: --owners with a role
    the server lacks; a SIGKILL during pre-data leaves the same) left the database it made,
    empty. Run again, that database is the restore's own, not one an operator made: it
    gets the source database's settings and comment, and loses the ``public`` schema the
    source had not (they were silently left out). And its connection limit, which the
    restore did not carry over at all."""
    src, target = f"again_{uuid.uuid4().hex[:8]}", f"again_r_{uuid.uuid4().hex[:6]}"
    role, gone = f"z5_ghost_{uuid.uuid4().hex[:6]}", f"z5_gone_{uuid.uuid4().hex[:6]}"
    pg.createdb(src)
    pg.psql(src, f"CREATE ROLE {role} NOLOGIN; DROP SCHEMA public; CREATE SCHEMA s; "
            f"CREATE TABLE s.t (id int PRIMARY KEY); ALTER TABLE s.t OWNER TO {role}; INSERT INTO s.t VALUES (1); "
            f"ALTER DATABASE \"{src}\" SET TimeZone = 'Asia/Kathmandu'; COMMENT ON DATABASE \"{src}\" IS 'again'; "
            f"ALTER DATABASE \"{src}\" CONNECTION LIMIT 40")  # fmt: skip
    out = tmp_path / "again"
    dump_postgres(_settings(pg), src, out)
    pg.psql("postgres", f"ALTER ROLE {role} RENAME TO {gone}")
    facts = ("SELECT d.setconfig, shobj_description(b.oid, 'pg_database'), b.datconnlimit, "
             "(SELECT count(*) FROM pg_namespace WHERE nspname = 'public') FROM pg_database b "
             "LEFT JOIN pg_db_role_setting d ON d.setdatabase = b.oid AND d.setrole = 0 WHERE b.datname = '{}'")  # fmt: skip
    try:
        with pytest.raises(NotFoundError, match="does not exist"):
            restore(out, _settings(pg), target, RestoreOptions(owners=True))
        restore(out, _settings(pg), target, RestoreOptions())
    finally:
        pg.psql("postgres", f"ALTER ROLE {gone} RENAME TO {role}")
    assert _state(pg, target) == _state(pg, src)
    assert "Asia/Kathmandu" in pg.psql(src, facts.format(src))
    assert pg.psql(target, facts.format(target)) == pg.psql(src, facts.format(src))
    pg.dropdb(target)
    pg.dropdb(src)
    pg.psql("postgres", f"DROP ROLE {role}")


def test_a_restore_killed_while_psql_reads_its_definitions(pg: PgServer, tmp_path: Path) -> None:
    """A restore killed (SIGKILL) while it feeds psql the definitions: psql reads to the
    end of what it was given. Its ``--single-transaction`` committed that part (the
    definitions read so far, without the progress row that says pre-data is in), so the
    database held half a schema and ``--resume`` failed on it ("already exists"). The
    script's own BEGIN without its COMMIT is rolled back: nothing is left, and the same
    command with --resume restores everything.

    psql is held on the schema's ``CREATE SCHEMA`` (an uncommitted schema of the same name
    in another session; past the preamble's SELECT, whose output would kill psql with
    SIGPIPE) while the restore fills the pipe, then the restore is killed; the first
    table's comment is sized so that the cut falls between two statements (an incomplete
    last statement fails, which rolls back in any case)."""
    src, target = f"kill_{uuid.uuid4().hex[:8]}", f"kill_r_{uuid.uuid4().hex[:6]}"
    pg.createdb(src)
    pg.psql(src, "CREATE SCHEMA k; " + "".join(
        f"CREATE TABLE k.t{i} (id int PRIMARY KEY, v text); COMMENT ON TABLE k.t{i} IS "
        f"'{'x' * 84 if i == 0 else f'table {i}'}'; " for i in range(400)))  # fmt: skip
    pg.psql(src, "INSERT INTO k.t1 VALUES (1, 'one')")
    out = tmp_path / "kill"
    dump_postgres(_settings(pg), src, out)
    pg.createdb(target)  # an empty database made for the restore
    code = (
        f"import sys; sys.path[:0] = [{str(Path(__file__).parents[1] / 'src')!r}]\n"
        "from moodump.db.connection import ConnSettings\n"
        "from moodump.restore import RestoreOptions, restore\n"
        f"restore({str(out)!r}, ConnSettings(host='127.0.0.1', port={pg.port}, user='postgres', "
        f"password=''), {target!r}, RestoreOptions())\n"
    )
    with _connect(pg, target) as blocker, _connect(pg, "postgres") as mon:
        mon.autocommit = True
        blocker.execute("CREATE SCHEMA k")  # uncommitted: psql waits on it
        proc = subprocess.Popen([sys.executable, "-c", code])
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
        deadline = time.monotonic() + 60
        while not mon.execute(waiting, (target,)).fetchone()[0]:  # type: ignore[index]
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # the pipe fills while psql waits
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        blocker.rollback()
        sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s"
        while mon.execute(sessions, (target, blocker.info.backend_pid)).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    left = "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('k', '_moodump_restore')"
    assert pg.psql(target, left).split()[2] == "0"
    restore(out, _settings(pg), target, RestoreOptions())
    assert _state(pg, target) == _state(pg, src)
    pg.dropdb(target)
    pg.dropdb(src)


def test_a_tablespace_the_server_lacks_is_refused_naming_it(pg: PgServer, tmp_path: Path) -> None:
    """A table (and its index) in a tablespace that the restoring server lacks (a new
    server after a disaster): refused before the target is made, naming the tablespace
    and what to do, instead of psql's "invalid value for parameter default_tablespace"
    after the database was made (a verification by restore, whose scratch database need
    not have it, restores into the default tablespace); once the tablespace is there, the restore works, each
    index in its own tablespace (pg_dump sets it once for the entries after it: run entry
    by entry in several sessions, an index of a table in the default tablespace was built
    in the other one, and the other way)."""
    where = Path(tempfile.mkdtemp(prefix="moodump-ts-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(where, pw.pw_uid, pw.pw_gid)
    ts = f"z5_ts_{uuid.uuid4().hex[:6]}"
    src, target = f"ts_{uuid.uuid4().hex[:8]}", f"ts_r_{uuid.uuid4().hex[:6]}"
    pg.psql("postgres", f"CREATE TABLESPACE {ts} LOCATION '{where}'")
    pg.createdb(src)
    pg.psql(src, f"CREATE TABLE t (id int PRIMARY KEY USING INDEX TABLESPACE {ts}, v text) TABLESPACE {ts}; CREATE INDEX t_v ON t (v) TABLESPACE {ts}; CREATE TABLE u (id int PRIMARY KEY, v text); CREATE INDEX u_v ON u (v); "
            "INSERT INTO t VALUES (1, 'a')")  # fmt: skip
    out = tmp_path / "ts"
    dump_postgres(_settings(pg), src, out)
    pg.psql("postgres", f"ALTER TABLESPACE {ts} RENAME TO {ts}_x")
    try:
        with pytest.raises(NotFoundError, match=f"tablespace '{ts}'") as err:
            restore(out, _settings(pg), target, RestoreOptions())
        assert "CREATE TABLESPACE" in str(err.value)
        assert target not in pg.psql("postgres", "SELECT datname FROM pg_database")
        # a verification restores into the default tablespace (rows do not depend on it)
        checked = verify(out, settings=_settings(pg), record=False)
        assert checked.passed, checked.problems
    finally:
        pg.psql("postgres", f"ALTER TABLESPACE {ts}_x RENAME TO {ts}")
    restore(out, _settings(pg), target, RestoreOptions(threads=2))
    assert _state(pg, target) == _state(pg, src)
    assert pg.schema_dump(target) == pg.schema_dump(src)
    pg.dropdb(target)
    pg.dropdb(src)
    pg.psql("postgres", f"DROP TABLESPACE {ts}")
    shutil.rmtree(where, ignore_errors=True)


def test_table_names_that_read_as_globs_are_taken_as_names(pg: PgServer, tmp_path: Path) -> None:
    """``--table 'k.x[1]'`` names the table ``x[1]``: as a glob it also (or only) matched
    ``x1``, which a ``--table … --drop`` restore then replaced with the backup's rows
    (silently losing what changed since), and ``--exclude`` left out instead of the one
    named. A glob that names no table as it is still works as a glob."""
    src, target = f"glob_{uuid.uuid4().hex[:8]}", f"glob_r_{uuid.uuid4().hex[:6]}"
    pg.createdb(src)
    pg.psql(src, 'CREATE SCHEMA k; CREATE TABLE k."x[1]" (id int PRIMARY KEY); CREATE TABLE k.x1 (id int PRIMARY KEY); '
            'CREATE TABLE k."y*" (id int); CREATE TABLE k.yy (id int); '
            'INSERT INTO k."x[1]" VALUES (1); INSERT INTO k.x1 VALUES (1); INSERT INTO k."y*" VALUES (1); INSERT INTO k.yy VALUES (1)')  # fmt: skip
    out, one = tmp_path / "glob", tmp_path / "one"
    dump_postgres(_settings(pg), src, out)
    dump_postgres(_settings(pg), src, one, DumpOptions(tables=("k.x[1]",), exclude=("k.y*",)))
    assert sorted(t.name for t in read_done_manifest(one).tables if t.kind == "table") == ["x[1]"]
    no_data = tmp_path / "no-data"
    dump_postgres(_settings(pg), src, no_data, DumpOptions(exclude_data=("k.x[1]",)))
    skipped = {t.name: t.data_skipped for t in read_done_manifest(no_data).tables if t.kind == "table"}
    assert skipped == {"x[1]": True, "x1": False, "y*": False, "yy": False}
    excluded = tmp_path / "excluded"
    dump_postgres(_settings(pg), src, excluded, DumpOptions(exclude=("k.y*", "x[1]")))
    assert sorted(t.name for t in read_done_manifest(excluded).tables if t.kind == "table") == ["x1", "yy"]
    # and pg_dump left out the same tables' definitions (as its own patterns, "x[1]" and
    # "k.y*" would name x1 and yy): the backup restores
    restore(excluded, _settings(pg), target, RestoreOptions())
    pg.dropdb(target)
    restore(out, _settings(pg), target, RestoreOptions())
    pg.psql(target, 'INSERT INTO k.x1 VALUES (2); INSERT INTO k.yy VALUES (2); DELETE FROM k."x[1]"; DELETE FROM k."y*"')
    restore(out, _settings(pg), target, RestoreOptions(tables=("k.x[1]", "y*"), drop=True))
    counts = ('SELECT (SELECT count(*) FROM k."x[1]"), (SELECT count(*) FROM k.x1), '
              '(SELECT count(*) FROM k."y*"), (SELECT count(*) FROM k.yy)')  # fmt: skip
    with _connect(pg, target) as c:
        assert c.execute(counts).fetchone() == (1, 2, 1, 2)
    restore(out, _settings(pg), target, RestoreOptions(tables=("k.x?",), drop=True))  # a glob
    with _connect(pg, target) as c:
        assert c.execute(counts).fetchone() == (1, 1, 1, 2)
    pg.dropdb(target)
    pg.dropdb(src)


def test_dump_table_and_exclude_of_a_partitioned_table(pg: PgServer, tmp_path: Path) -> None:
    """``dump --exclude`` of a partitioned table left out its definition (pg_dump's) but
    not its partitions, whose ATTACH then failed the restore: a backup that could not be
    restored. ``--exclude-data`` of it kept the rows, and ``--table`` of it was "matches no
    table". A partitioned table now names its partitions in all three (and pg_dump gets
    the parent's definition with ``--table``)."""
    src, target = f"pex_{uuid.uuid4().hex[:8]}", f"pex_r_{uuid.uuid4().hex[:6]}"
    pg.createdb(src)
    pg.psql(src, "CREATE TABLE logs (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at); "
            "CREATE TABLE logs_a PARTITION OF logs FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') PARTITION BY HASH (id); "
            "CREATE TABLE logs_a0 PARTITION OF logs_a FOR VALUES WITH (MODULUS 1, REMAINDER 0); "
            "CREATE TABLE logs_b PARTITION OF logs DEFAULT; INSERT INTO logs VALUES (1, '2020-02-02'), (2, '1999-01-01'); "
            "CREATE TABLE keep (id int PRIMARY KEY); INSERT INTO keep VALUES (1)")  # fmt: skip
    tables = "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace"
    rows = "SELECT (SELECT count(*) FROM keep), (SELECT count(*) FROM logs)"
    for name, opts, want_tables, want_rows in (
        ("ex", DumpOptions(exclude=("public.logs",)), "keep", None),
        ("exd", DumpOptions(exclude_data=("logs",)), "keep,logs,logs_a,logs_a0,logs_b", (1, 0)),
        ("tb", DumpOptions(tables=("logs",)), "logs,logs_a,logs_a0,logs_b", None),
    ):  # fmt: skip
        out = tmp_path / name
        dump_postgres(_settings(pg), src, out, opts)
        restore(out, _settings(pg), target, RestoreOptions(drop=True))
        assert pg.psql(target, tables).split()[2] == want_tables, name
        if want_rows:
            with _connect(pg, target) as c:
                assert c.execute(rows).fetchone() == want_rows, name
        else:
            kept = set(want_tables.split(","))
            assert {k: v for k, v in _state(pg, target).items() if k.startswith("public.")} == {
                k: v for k, v in _state(pg, src).items() if k.partition(".")[2] in kept
            }
    pg.dropdb(target)
    pg.dropdb(src)


def test_comments_with_backslashes_under_standard_conforming_strings_off(pg: PgServer, tmp_path: Path) -> None:
    """A restoring account (or server) with ``standard_conforming_strings = off`` (a
    legacy setting) read the literals the restore writes itself, the database's and the
    large objects' comments, with backslash escapes: ``C:\\new`` came back with a
    newline. They are written so that either setting reads them as they are. So with
    ``array_nulls = off``, under which the rows' NULL array elements would load as the
    string "NULL": the restore's sessions set it on."""
    role = f"z5_legacy_{uuid.uuid4().hex[:6]}"
    src, target = f"scs_{uuid.uuid4().hex[:8]}", f"scs_r_{uuid.uuid4().hex[:6]}"
    pg.psql("postgres", f"CREATE ROLE {role} LOGIN CREATEDB; ALTER ROLE {role} SET standard_conforming_strings = off; "
            f"ALTER ROLE {role} SET array_nulls = off")  # fmt: skip
    pg.createdb(src)
    pg.psql(src, f"COMMENT ON DATABASE \"{src}\" IS 'C:\\new\\tab ''q'''; "
            "SELECT lo_from_bytea(4242, 'x'); COMMENT ON LARGE OBJECT 4242 IS 'a\\b\\\\c'; "
            "CREATE TABLE arr (id int PRIMARY KEY, a text[] DEFAULT '{NULL,x}', n int[]); "
            "INSERT INTO arr VALUES (1, '{NULL,\"NULL\",b}', '{1,NULL}'), (2, DEFAULT, NULL)")  # fmt: skip
    out = tmp_path / "scs"
    dump_postgres(_settings(pg), src, out)
    legacy = dataclasses.replace(_settings(pg), user=role)
    try:
        restore(out, legacy, target, RestoreOptions())
        facts = ("SELECT shobj_description(d.oid, 'pg_database'), obj_description(4242, 'pg_largeobject') "
                 "FROM pg_database d WHERE d.datname = %s")  # fmt: skip
        with _connect(pg, src) as a, _connect(pg, target) as b:
            want, got = a.execute(facts, (src,)).fetchone(), b.execute(facts, (target,)).fetchone()
        assert want == ("C:\\new\\tab 'q'", "a\\b\\\\c")
        assert got == want
        # and array_nulls = off read the rows' NULL array elements (and a default's) as
        # the string "NULL" (or failed on an int[])
        rows = [{k: v for k, v in _state(pg, db).items() if k != "large objects"} for db in (src, target)]
        assert rows[1] == rows[0]  # (the large object's owner is the restoring account)
        schemas = [pg.schema_dump(db).replace(role, "postgres") for db in (src, target)]
        assert schemas[1] == schemas[0]
    finally:
        pg.dropdb(target)
        pg.dropdb(src)
        pg.psql("postgres", f"DROP ROLE {role}")
