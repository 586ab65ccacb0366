"""PostgreSQL, adversarial: tests/sql/pg_zoo2.sql (awkward keys, keyless duplicates,
TOASTed values, every Unicode plane, odd identifiers, hash/list/range partitioning,
inheritance, identity and sequence states, objects of every kind) in a database whose own
settings (TimeZone, DateStyle, IntervalStyle, search_path, extra_float_digits,
bytea_output) are not the defaults. The dump is restored under another name, verified
offline and by restore, and compared table by table (ordered row text) and by the whole
``pg_dump --schema-only``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from moodump.db.connection import ConnSettings
from moodump.dump import DumpOptions, dump_postgres
from moodump.manifest import read_done_manifest
from moodump.restore import RestoreOptions, restore
from moodump.verify import verify
from rig_pg import PgServer

pytestmark = pytest.mark.db

ZOO2 = Path(__file__).parent / "sql" / "pg_zoo2.sql"

#: Odd defaults for the source database: the text of values must not depend on them.
DB_SETTINGS = (
    "TimeZone = 'Asia/Kathmandu'", "DateStyle = 'SQL, DMY'", "IntervalStyle = 'sql_standard'",
    "search_path = h, \"ext schema\", public", "extra_float_digits = -3", "bytea_output = 'escape'",
)  # fmt: skip
#: The comparison's own fixed session (so both sides print values the same way).
FIXED = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; "
         "SET search_path = pg_catalog; SET extra_float_digits = 3; SET bytea_output = 'hex'")  # fmt: skip


def _settings(pg: PgServer) -> ConnSettings:
    return ConnSettings(host="127.0.0.1", port=pg.port, user="postgres", password="")


def _connect(pg: PgServer, db: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=db)


def _state(pg: PgServer, db: str) -> dict[str, object]:
    """Every table's and materialized view's rows (ordered text, md5), and every
    sequence's state, read with fixed session settings."""
    out: dict[str, object] = {}
    with _connect(pg, db) as c:
        c.execute(FIXED)
        rels = c.execute(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2"
        ).fetchall()
        for schema, name, kind in rels:
            q = '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'
            if kind == "S":
                out[f"{schema}.{name}"] = c.execute(f"SELECT last_value, is_called FROM {q}").fetchone()
                continue
            try:
                out[f"{schema}.{name}"] = c.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) "
                    f"FROM ONLY {q} t"
                ).fetchone()
            except psycopg.errors.ObjectNotInPrerequisiteState:  # a WITH NO DATA view
                c.rollback()
                c.execute(FIXED)
                out[f"{schema}.{name}"] = "unpopulated"
        # a tree hashed on an enum: rows may sit in other partitions (enum OIDs differ),
        # the tree's rows are the same
        if out.pop("h.hpe0", None) is not None and out.pop("h.hpe1", None) is not None:
            out["h.hpe (tree)"] = c.execute(
                "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text COLLATE \"C\")) FROM h.hpe t"
            ).fetchone()
        out["large objects"] = c.execute(
            "SELECT count(*), string_agg(concat_ws(':', oid, md5(lo_get(oid)), pg_get_userbyid(lomowner), "
            "lomacl, obj_description(oid, 'pg_largeobject')), ',' ORDER BY oid) FROM pg_largeobject_metadata"
        ).fetchone()
    return out


def _bare_schema(pg: PgServer, db: str) -> str:
    """``pg_dump --schema-only --no-owner --no-acl``, its ``\\restrict`` keys dropped."""
    import subprocess

    out = subprocess.run(
        [str(pg.bindir / "pg_dump"), "--schema-only", "--no-owner", "--no-acl", "-h", "127.0.0.1",
         "-p", str(pg.port), "-U", "postgres", db],
        check=True, text=True, capture_output=True,
    ).stdout  # fmt: skip
    return "\n".join(x for x in out.splitlines() if not x.startswith(("\\restrict", "\\unrestrict")))


@pytest.fixture(scope="module")
def zoo2(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    db = f"zoo2_{uuid.uuid4().hex[:8]}"
    pg.createdb(db)
    for s in DB_SETTINGS:
        pg.psql("postgres", f'ALTER DATABASE "{db}" SET {s}')
    pg.psql("postgres", f"COMMENT ON DATABASE \"{db}\" IS $$the 'hard' one$$")
    pg.psql(db, file=ZOO2)
    # last, or the fixture could not load: the database is read-only by default
    pg.psql("postgres", f'ALTER DATABASE "{db}" SET default_transaction_read_only = on')
    out = tmp_path_factory.mktemp("pgzoo2") / "backup"
    dump_postgres(_settings(pg), db, out, DumpOptions(threads=2, chunk_bytes=1 << 20))
    return db, out


def test_zoo2_round_trip_is_exact(pg: PgServer, zoo2: tuple[str, Path]) -> None:
    src, backup = zoo2
    target = f"zoo2_copy_{uuid.uuid4().hex[:6]}"
    res = restore(backup, _settings(pg), target, RestoreOptions(threads=2, owners=True))
    assert res.rows == read_done_manifest(backup).total_rows
    want, got = _state(pg, src), _state(pg, target)
    diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not diff, diff
    assert pg.schema_dump(target) == pg.schema_dump(src)
    assert want["large objects"][0] == 3 and "hard_reader=r/postgres" in want["large objects"][1]
    config = ("SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
              "WHERE d.datname = '{}' AND s.setrole = 0")  # fmt: skip
    assert pg.psql("postgres", config.format(target)) == pg.psql("postgres", config.format(src))
    comment = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{}'"
    assert "the 'hard' one" in pg.psql("postgres", comment.format(target))
    by = {f"{t.schema}.{t.name}": t for t in read_done_manifest(backup).tables}
    assert by["h.hpe0"].load_clause == '"h"."hpe"' and by["h.hpci1"].load_clause == '"h"."hpci"'
    assert by["h.hp0"].load_clause == "" and by["h.hp0"].digest == "ordered"  # int: stable
    kinds = [t.kind for t in read_done_manifest(backup).tables]

    assert kinds.count("large objects") == 2
    pg.dropdb(target)
    # without --owners: only the ownership and grants differ (comment strings and function
    # bodies that look like pg_dump's headers or OWNER TO lines are kept as they are)
    restore(backup, _settings(pg), target, RestoreOptions(threads=2))
    assert _bare_schema(pg, target) == _bare_schema(pg, src)
    assert "OWNER TO nobody" in pg.psql(target, "SELECT obj_description('h.dups'::regclass)")
    offline = verify(backup, record=False)
    assert offline.passed, offline.problems
    by_restore = verify(backup, settings=_settings(pg), record=False)
    assert by_restore.passed, by_restore.problems
    assert by_restore.rows_checked == offline.rows_checked == read_done_manifest(backup).total_rows
    pg.dropdb(target)


def test_tables_changed_while_the_dump_starts(pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the plan (outside the snapshot) and the locks: a column added (with values)
    is dumped with its values; a table dropped fails the dump ("run again"), nothing
    published; a DROP once the tables are locked waits for the dump (here: times out)."""
    from moodump.dump import pg as pgdump
    from moodump.errors import SnapshotError

    db = f"race_{uuid.uuid4().hex[:8]}"
    pg.createdb(db)
    pg.psql(db, "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, 'v' FROM generate_series(1, 50) g; "
            "CREATE TABLE b (x int); INSERT INTO b VALUES (1)")  # fmt: skip
    real = pgdump.export_snapshot
    change: list[str] = []

    def racing(conn, relations, timeout):  # type: ignore[no-untyped-def]
        pg.psql(db, change.pop())
        return real(conn, relations, timeout)

    monkeypatch.setattr(pgdump, "export_snapshot", racing)
    change.append("ALTER TABLE a ADD COLUMN late text DEFAULT 'late value'")
    out = tmp_path / "altered"
    dump_postgres(_settings(pg), db, out)
    target = f"race_r_{uuid.uuid4().hex[:6]}"
    restore(out, _settings(pg), target)
    assert pg.psql(target, "SELECT count(*) FROM a WHERE late = 'late value'").split()[2] == "50"
    assert verify(out, settings=_settings(pg), record=False).passed

    change.append("DROP TABLE b")
    with pytest.raises(SnapshotError, match="run the dump again"):
        dump_postgres(_settings(pg), db, tmp_path / "dropped")
    assert not (tmp_path / "dropped").exists()
    monkeypatch.setattr(pgdump, "export_snapshot", real)

    refused: list[str] = []

    def drop_during(e):  # type: ignore[no-untyped-def]
        if e.phase == "data" and not refused:
            try:
                pg.psql(db, "SET lock_timeout = '300ms'; DROP TABLE a")
            except AssertionError as exc:
                refused.append(str(exc))

    out3 = tmp_path / "locked"
    dump_postgres(_settings(pg), db, out3, progress=drop_during)
    assert refused and "lock timeout" in refused[0]
    assert [t.name for t in read_done_manifest(out3).tables if t.kind == "table"] == ["a"]


def test_latin1_database_with_its_own_client_encoding(
    pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data files hold the database's own encoding whatever client_encoding the
    database (or the server) sets for its sessions; the restore reads them so. (Read
    through psql processes here, the big-file path.)"""
    from moodump.dump import pg as pgdump

    monkeypatch.setattr(pgdump, "PSQL_MIN_BYTES", 0)
    db = f"latin_{uuid.uuid4().hex[:8]}"
    pg.psql("postgres", f"CREATE DATABASE \"{db}\" TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'")
    pg.psql("postgres", f"ALTER DATABASE \"{db}\" SET client_encoding = 'UTF8'")
    pg.psql(db, "CREATE TABLE t (id int PRIMARY KEY, s text); "
            "INSERT INTO t SELECT g, chr(g) || 'é' FROM generate_series(160, 255) g; "
            "CREATE INDEX \"idx_é\" ON t (s); COMMENT ON INDEX \"idx_é\" IS 'café'; "
            "COMMENT ON TABLE t IS 'crème'")  # fmt: skip
    out = tmp_path / "latin"
    dump_postgres(_settings(pg), db, out)
    target = f"latin_r_{uuid.uuid4().hex[:6]}"
    restore(out, _settings(pg), target)
    assert _state(pg, target) == _state(pg, db)
    assert _bare_schema(pg, target) == _bare_schema(pg, db)
    assert verify(out, settings=_settings(pg), record=False).passed


def test_icu_database_keeps_its_default_collation(pg: PgServer, tmp_path: Path) -> None:
    db = f"icu_{uuid.uuid4().hex[:8]}"
    pg.psql("postgres", f"CREATE DATABASE \"{db}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C.UTF-8'")
    pg.psql(db, "CREATE TABLE t (k text PRIMARY KEY); INSERT INTO t VALUES ('a'), ('B'), ('ä'), ('Z')")
    out = tmp_path / "icu"
    dump_postgres(_settings(pg), db, out)
    target = f"icu_r_{uuid.uuid4().hex[:6]}"
    restore(out, _settings(pg), target)
    q = "SELECT datlocprovider, daticulocale FROM pg_database WHERE datname = '{}'"
    assert pg.psql("postgres", q.format(target)) == pg.psql("postgres", q.format(db))
    order = "SELECT string_agg(k, ',' ORDER BY k) FROM t"
    assert pg.psql(target, order) == pg.psql(db, order)
    assert _state(pg, target) == _state(pg, db)


def test_rows_hidden_by_row_level_security_fail_the_dump(pg: PgServer, tmp_path: Path) -> None:
    """An account subject to a (forced) policy would read only the rows it may see: the
    dump fails, naming it, instead of publishing a partial table (as pg_dump does)."""
    from moodump.errors import MoodumpError

    db = f"rls_{uuid.uuid4().hex[:8]}"
    pg.createdb(db)
    pg.psql("postgres", "DO $$ BEGIN CREATE ROLE rls_owner LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    pg.psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'hidden'), (2, 'seen'); "
            "ALTER TABLE t OWNER TO rls_owner; ALTER TABLE t ENABLE ROW LEVEL SECURITY; "
            "ALTER TABLE t FORCE ROW LEVEL SECURITY; CREATE POLICY p ON t USING (v = 'seen')")  # fmt: skip
    user = ConnSettings(host="127.0.0.1", port=pg.port, user="rls_owner", password="")
    with pytest.raises(MoodumpError, match="row-level security") as err:
        dump_postgres(user, db, tmp_path / "rls")
    assert "BYPASSRLS" in str(err.value)  # the next step (there is no privilege to grant)
    assert not (tmp_path / "rls").exists()
