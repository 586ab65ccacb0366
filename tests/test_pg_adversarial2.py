"""PostgreSQL, adversarial (the fourth zoo, tests/sql/pg_zoo_adversarial2.sql): OID
alias values that name objects of the new database (an index, which a restore builds
after most data; keys that sort by OID), and a ``--table`` restore of a table whose own
post-data entries go beyond indexes and constraints (a NOT VALID check, row level
security, a publication); a role's settings in the database (``ALTER ROLE … IN
DATABASE``); an atomic restore into a 63-byte name. One dump, one whole restore and one ``--table`` restore, each
compared row for row and by the whole ``pg_dump --schema-only``, and verified.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from moodump.dump import DumpOptions, dump_postgres
from moodump.dump import pg as pgdump
from moodump.errors import (
    CheckFailed,
    ConfigError,
    Interrupted,
    NotFoundError,
    ServerError,
    TargetNotEmpty,
)
from moodump.restore import RestoreOptions, restore
from moodump.verify import verify
from rig_pg import PgServer
from test_pg_hard import _settings, _state

pytestmark = pytest.mark.db

ZOO4 = Path(__file__).parent / "sql" / "pg_zoo_adversarial2.sql"


def _same(pg: PgServer, src: str, target: str) -> None:
    want, got = _state(pg, src), _state(pg, target)
    # hashed on an enum: rows may sit in other partitions (the enum's OIDs differ), the
    # tree's rows are the same
    for st, db in ((want, src), (got, target)):
        st.pop("z4.by_mood0", None)
        st.pop("z4.by_mood1", None)
        st["z4.by_mood (tree)"] = pg.psql(db, "SELECT m, n FROM z4.by_mood ORDER BY n")
    diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not diff, [(k, want.get(k), got.get(k)) for k in diff]
    assert pg.schema_dump(target) == pg.schema_dump(src)


def _schema_bytes(pg: PgServer, db: str) -> list[bytes]:
    """``pg_dump --schema-only`` in the database's own encoding (the ``\\restrict`` keys dropped)."""
    text = subprocess.run(
        [str(pg.bindir / "pg_dump"), "--schema-only", "-h", "127.0.0.1", "-p", str(pg.port),
         "-U", "postgres", db], check=True, capture_output=True,
    ).stdout  # fmt: skip
    return [x for x in text.split(b"\n") if not x.startswith((b"\\restrict", b"\\unrestrict"))]


def test_zoo4_oid_aliases_and_table_restore(pg: PgServer, tmp_path: Path) -> None:
    src, target = f"zoo4_{uuid.uuid4().hex[:8]}", f"zoo4_r_{uuid.uuid4().hex[:6]}"
    pg.createdb(src)
    pg.psql(src, file=ZOO4)
    pg.psql(src, f'ALTER ROLE z4_reader IN DATABASE "{src}" SET search_path = z4, "$user"; '
            f'ALTER ROLE z4_reader IN DATABASE "{src}" SET work_mem = \'3MB\'')  # fmt: skip
    out = tmp_path / "zoo4"
    dump_postgres(_settings(pg), src, out, DumpOptions(threads=2))
    restore(out, _settings(pg), target, RestoreOptions(threads=2, owners=True))
    _same(pg, src, target)
    role_settings = ("SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON "
                     "r.oid = s.setrole JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '{}'")  # fmt: skip
    assert "z4_reader" in pg.psql("postgres", role_settings.format(src))
    assert pg.psql("postgres", role_settings.format(target)) == pg.psql("postgres", role_settings.format(src))
    checked = verify(out, settings=_settings(pg), record=False)
    assert checked.passed, checked.problems
    # the table (and its child, which references it) restored alone, in place
    restore(out, _settings(pg), target,
            RestoreOptions(threads=2, owners=True, drop=True, tables=("z4.alone", "z4.alone_child")))  # fmt: skip
    _same(pg, src, target)
    # stopped after its first file: its progress record goes (a --table restore is not
    # resumed), so the next one makes the tables again instead of skipping pre-data
    stop = threading.Event()
    partial = RestoreOptions(threads=1, owners=True, drop=True, tables=("z4.alone", "z4.alone_child"))
    with pytest.raises(Interrupted):
        restore(out, _settings(pg), target, partial, stop=stop,
                progress=lambda e: stop.set() if e.phase == "data" else None)  # fmt: skip
    restore(out, _settings(pg), target, partial)
    _same(pg, src, target)
    # an unfinished whole restore's progress record: refused before a table is dropped
    pg.psql(target, "CREATE SCHEMA _moodump_restore; CREATE TABLE _moodump_restore.progress (item text PRIMARY KEY)")
    with pytest.raises(TargetNotEmpty, match="unfinished restore"):
        restore(out, _settings(pg), target, partial)
    pg.psql(target, "DROP SCHEMA _moodump_restore CASCADE")
    _same(pg, src, target)
    # a partition and an inheritance child alone, with something new in the target that
    # the parent's serial sequence counted (a restore of the child leaves it as it is)
    pg.psql(target, "INSERT INTO z4.serial_parent (v) VALUES ('new')")
    restore(out, _settings(pg), target,
            RestoreOptions(threads=2, owners=True, drop=True, tables=("z4.part1", "z4.serial_kid")))  # fmt: skip
    assert pg.psql(target, "SELECT last_value FROM z4.serial_parent_id_seq").split()[2] == "3"
    pg.psql(target, "DELETE FROM z4.serial_parent WHERE v = 'new'; SELECT setval('z4.serial_parent_id_seq', 2)")
    _same(pg, src, target)
    with pytest.raises(ConfigError, match="through the partition root"):
        restore(out, _settings(pg), target, RestoreOptions(drop=True, tables=("z4.by_mood0",)))
    pg.dropdb(target)
    # --atomic into a 63-byte name of few characters: its staging database's name, cut to
    # 63 bytes by the server, was the target's own (the swap dropped the restored copy)
    longest = "z" + "ф" * 31
    restore(out, _settings(pg), longest, RestoreOptions(threads=2, owners=True, atomic=True, drop=True))
    _same(pg, src, longest)
    pg.dropdb(longest)
    pg.dropdb(src)


def test_stale_generated_column_is_refused(pg: PgServer, tmp_path: Path) -> None:
    """A stored generated column whose function was replaced after its rows were written
    holds values a restore would not give back (``COPY FROM`` computes them afresh): the
    dump refuses, naming the column; once the rows are rewritten it dumps."""
    src = f"stale_{uuid.uuid4().hex[:8]}"
    pg.createdb(src)
    pg.psql(src, "CREATE SCHEMA s; CREATE FUNCTION s.f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1'; "
            "CREATE TABLE s.t (id int PRIMARY KEY, g int GENERATED ALWAYS AS (s.f(id)) STORED, "
            "ok numeric(4, 1) GENERATED ALWAYS AS (id / 3.0) STORED); "
            "INSERT INTO s.t VALUES (1), (2); "
            "CREATE OR REPLACE FUNCTION s.f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 100'")  # fmt: skip
    with pytest.raises(CheckFailed, match=r"s\.t\.g \(2 rows\)") as err:
        dump_postgres(_settings(pg), src, tmp_path / "stale", DumpOptions(threads=2))
    assert "s.t.ok" not in str(err.value)
    pg.psql(src, "UPDATE s.t SET id = id")
    dump_postgres(_settings(pg), src, tmp_path / "fresh", DumpOptions(threads=2))
    pg.dropdb(src)


def test_latin1_database_with_names_that_are_not_ascii(pg: PgServer, tmp_path: Path) -> None:
    """A LATIN1 database whose schema, table and column names are not ASCII: psql (the
    big files' path) and pg_dump (``--table``) get the names in the database's encoding,
    as their sessions read them; the --table dump's CREATE SCHEMA too; a --table restore
    finds the table's entries in the scripts (which are in LATIN1)."""
    src, target = f"latin1_{uuid.uuid4().hex[:8]}", f"latin1_r_{uuid.uuid4().hex[:6]}"
    pg.psql("postgres", f"CREATE DATABASE {src} TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'")
    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=src,
                         client_encoding="utf8") as c:  # fmt: skip
        c.execute('CREATE SCHEMA "sché"; CREATE TABLE "sché"."tâble" (id int PRIMARY KEY, "çol" text); '
                  "INSERT INTO \"sché\".\"tâble\" SELECT g, 'àÿ ' || g FROM generate_series(1, 3000) g; "
                  'CREATE TABLE "sché".autre (id int PRIMARY KEY); CREATE INDEX "índex" ON "sché"."tâble" ("çol"); '
                  'CREATE SEQUENCE "sché"."séq" OWNED BY "sché"."tâble".id; SELECT setval(\'"sché"."séq"\', 7); '
                  'CREATE MATERIALIZED VIEW "sché"."vüe" AS SELECT count(*) AS "nümber" FROM "sché".autre')  # fmt: skip
    out = tmp_path / "latin1"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pgdump, "PSQL_MIN_BYTES", 0)  # every file through psql
        dump_postgres(_settings(pg), src, out, DumpOptions(threads=2, chunk_bytes=16 << 10))
        restore(out, _settings(pg), target, RestoreOptions(threads=2))
        assert _state(pg, target) == _state(pg, src)
        assert _schema_bytes(pg, target) == _schema_bytes(pg, src)
        assert verify(out, settings=_settings(pg), record=False).passed
        # the table alone, in place: its entries are found in the scripts (in LATIN1)
        restore(out, _settings(pg), target, RestoreOptions(tables=("sché.tâble",), drop=True))
        assert _state(pg, target) == _state(pg, src)
        assert _schema_bytes(pg, target) == _schema_bytes(pg, src)
        pg.dropdb(target)
        one = tmp_path / "one"
        dump_postgres(_settings(pg), src, one, DumpOptions(tables=("sché.tâble",)))
    pg.psql("postgres", f"CREATE DATABASE {target} TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'")
    restore(one, _settings(pg), target, RestoreOptions())
    rows = 'SELECT count(*), max("çol") FROM "sché"."tâble"'
    got = []
    for db in (src, target):
        with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=db,
                             client_encoding="utf8") as c:  # fmt: skip
            got.append(c.execute(rows).fetchone())
    assert got[0] == got[1] == (3000, "àÿ 999")
    pg.dropdb(target)
    pg.dropdb(src)


def test_pg_dump_failure_is_the_error(pg: PgServer, tmp_path: Path) -> None:
    """pg_dump failing while the rows are read stops the workers: the error is pg_dump's
    (with its message), not "dump cancelled"."""
    src = f"pgdfail_{uuid.uuid4().hex[:8]}"
    pg.createdb(src)
    pg.psql(src, "CREATE TABLE t (id int PRIMARY KEY, v text); "
            "INSERT INTO t SELECT g, repeat('v', 200) FROM generate_series(1, 20000) g")  # fmt: skip

    def failing(*_a: object, **_k: object) -> None:
        raise ServerError("pg_dump --section=pre-data failed: boom", hint="see the tool's message")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pgdump, "write_section", failing)
        with pytest.raises(ServerError, match="boom"):
            dump_postgres(_settings(pg), src, tmp_path / "x", DumpOptions(threads=1, chunk_bytes=16 << 10))
    pg.dropdb(src)


def test_owners_of_a_role_the_server_lacks(pg: PgServer, tmp_path: Path) -> None:
    """--owners with a role of the backup that the server lacks: refused naming the role
    and the way out (create it, or restore without --owners), which works."""
    src, target = f"ghost_{uuid.uuid4().hex[:8]}", f"ghost_r_{uuid.uuid4().hex[:6]}"
    role, gone = f"z4_ghost_{uuid.uuid4().hex[:6]}", f"z4_gone_{uuid.uuid4().hex[:6]}"
    pg.createdb(src)
    pg.psql(src, f"CREATE ROLE {role} NOLOGIN; CREATE TABLE t (id int PRIMARY KEY); "
            f"ALTER TABLE t OWNER TO {role}; INSERT INTO t VALUES (1)")  # fmt: skip
    out = tmp_path / "ghost"
    dump_postgres(_settings(pg), src, out)
    pg.psql("postgres", f"ALTER ROLE {role} RENAME TO {gone}")
    try:
        with pytest.raises(NotFoundError, match=f"role '{role}' of the backup does not exist") as err:
            restore(out, _settings(pg), target, RestoreOptions(owners=True))
        assert "without --owners" in str(err.value)
        restore(out, _settings(pg), target, RestoreOptions(drop=True))
        assert _state(pg, target) == _state(pg, src)
    finally:
        pg.psql("postgres", f"ALTER ROLE {gone} RENAME TO {role}")
    pg.dropdb(target)
    pg.dropdb(src)
    pg.psql("postgres", f"DROP ROLE {role}")
