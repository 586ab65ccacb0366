"""PostgreSQL pieces that need no server: post-data splitting, connection resolution,
the private PGPASSFILE, the manifest's database type, backup.conf lines."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from moodump.config.conffile import parse_backup_conf
from moodump.config.model import DatabaseSpec
from moodump.db.connection import ConnSettings
from moodump.db.credentials import ConnRequest
from moodump.errors import ConfigError, IntegrityError
from moodump.manifest import Manifest, parse_manifest
from moodump.pg.catalog import PgTable
from moodump.pg.copyio import copy_query
from moodump.pg.credentials import resolve_pg_connection
from moodump.pg.tools import tool_env
from moodump.restore.model import choose_toast_compression
from moodump.restore.pg import split_entries

POST = """\\restrict abc
--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."t"
    ADD CONSTRAINT "t_pkey" PRIMARY KEY ("id");


--
-- Name: t_x; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX "t_x" ON "public"."t" USING "btree" ("x");


--
-- Name: u fk; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY "public"."u"
    ADD CONSTRAINT "fk" FOREIGN KEY ("t") REFERENCES "public"."t"("id");

\\unrestrict abc
"""


def test_post_data_splits_at_entry_headers_without_meta_commands() -> None:
    preamble, entries = split_entries(POST)
    assert "set_config('search_path'" in preamble and "\\restrict" not in preamble
    assert [t for t, _ in entries] == ["CONSTRAINT", "INDEX", "FK CONSTRAINT"]
    assert "PRIMARY KEY" in entries[0][1] and "FOREIGN KEY" in entries[2][1]
    assert not any("\\unrestrict" in sql for _, sql in entries)


def test_pg_connection_defaults_come_from_the_libpq_environment() -> None:
    env = {"PGHOST": "pg.example", "PGPORT": "6543", "PGUSER": "moodle", "MYSQL_PWD": "no"}
    s = resolve_pg_connection(ConnRequest(), env=env)
    assert (s.host, s.port, s.user, s.password) == ("pg.example", 6543, "moodle", "")
    s = resolve_pg_connection(ConnRequest(host="h", port=5555, user="u"), env=env)
    assert (s.host, s.port, s.user) == ("h", 5555, "u")
    s = resolve_pg_connection(ConnRequest(), env={})
    assert (s.host, s.port) == ("127.0.0.1", 5432)


def test_client_tools_get_the_password_in_a_private_passfile() -> None:
    settings = ConnSettings(host="h", port=5432, user="u:x", password="p:w\\d")
    with tool_env(settings) as env:
        path = Path(env["PGPASSFILE"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == "*:*:*:u\\:x:p\\:w\\\\d\n"
        assert "p:w" not in " ".join(f"{k}={v}" for k, v in env.items() if k != "PGPASSFILE")
    assert not path.exists()
    with tool_env(ConnSettings(password="")) as env:
        assert "PGPASSFILE" not in env or env["PGPASSFILE"] == os.environ.get("PGPASSFILE")


def test_copy_query_orders_by_key_with_c_collation() -> None:
    t = PgTable("s", 'we"ird', columns=["id", "t"], primary_key=["t", "id"],
                pk_types=["text", "int4"], pk_collatable=[True, False])  # fmt: skip
    assert copy_query(t) == (
        'COPY (SELECT "id", "t" FROM ONLY "s"."we""ird" ORDER BY "t" COLLATE "C", "id") TO STDOUT'
    )
    nokey = PgTable("s", "n", columns=["a"])
    assert copy_query(nokey) == 'COPY "s"."n" ("a") TO STDOUT'


def test_manifest_database_type_defaults_to_mysql_and_is_checked() -> None:
    m = Manifest(database="db", status="DONE")
    data = m.to_json().replace('"database_type": "mysql",\n', "").replace(
        ',\n "database_type": "mysql"', ""
    )
    assert "database_type" not in data
    assert parse_manifest(data, "old").database_type == "mysql"
    pg = Manifest(database="db", status="DONE", database_type="postgresql")
    assert parse_manifest(pg.to_json(), "new").database_type == "postgresql"
    with pytest.raises(IntegrityError, match="database type"):
        parse_manifest(pg.to_json().replace('"postgresql"', '"oracle"'), "x")


def test_postgres_lines_are_backed_up_on_port_5432() -> None:
    conf = parse_backup_conf("postgres=patroni/app\npostgresql=pg:6000/other?verifySchema=x\n")
    assert [(s.db_type, s.host, s.port) for s in conf.specs] == [
        ("postgres", "patroni", None),
        ("postgres", "pg", 6000),
    ]
    assert DatabaseSpec("patroni", "app", db_type="postgres").port_or_default == 5432
    assert DatabaseSpec("mysql", "moodle").port_or_default == 3306


def test_index_and_constraint_entries_name_their_table() -> None:
    from moodump.restore.pg import _table_of

    assert _table_of('CREATE UNIQUE INDEX "i" ON "s"."t ""q""" USING "btree" ("a");') == '"s"."t ""q"""'
    assert _table_of('CREATE INDEX "i" ON ONLY "s"."p" USING "btree" ("a");') == '"s"."p"'
    assert _table_of('ALTER TABLE ONLY "s"."t"\n    ADD CONSTRAINT "k" PRIMARY KEY ("id");') == '"s"."t"'
    assert _table_of('CREATE RULE "r" AS ON DELETE TO "s"."t" DO INSTEAD NOTHING;') is None


def test_client_tools_older_than_the_server_are_refused() -> None:
    from moodump.errors import ConfigError
    from moodump.pg.tools import bindir, client_for

    if bindir() is None:
        pytest.skip("no PostgreSQL client tools installed")
    with pytest.raises(ConfigError, match="major version 99 or newer") as exc:
        client_for(99)
    assert "postgresql-client-99" in (exc.value.hint or "")
    found, major = client_for(10)
    assert major >= 10 and (found / "pg_dump").exists()


def test_headers_meta_commands_and_owner_lines_count_only_at_the_top_level() -> None:
    """The same text inside a string, a quoted identifier or a dollar-quoted body is data."""
    from moodump.restore.pg import _strip_owners

    fake = "--\n-- Name: f; Type: ACL; Schema: -; Owner: -\n--\n\\restrict k\nALTER TABLE a OWNER TO b;\n"
    script = (
        f"COMMENT ON TABLE t IS 'it''s\n{fake}';\nCREATE FUNCTION f() AS $x$\n{fake}$x$;\n"
        f'CREATE TABLE "q\n{fake.replace(chr(34), "")}" ();\n'
        "--\n-- Name: real; Type: TABLE; Schema: h; Owner: o\n--\n\nALTER TABLE a OWNER TO b;\n\\unrestrict k\n"
    )
    preamble, entries = split_entries(script)
    assert [t for t, _ in entries] == ["TABLE"]
    assert preamble.count(fake) == 3 and "\\unrestrict" not in entries[0][1]
    stripped = _strip_owners(script)
    assert stripped.count("ALTER TABLE a OWNER TO b;") == 3  # the top-level one only is gone


def test_only_connection_failures_are_connect_errors() -> None:
    """A refused REFRESH ("has not been populated", SQLSTATE 55000) is the server's
    answer, not a lost server: its hint must not say to check that the server is up."""
    import psycopg

    from moodump.errors import ConnectError, ServerError, ServerLost
    from moodump.pg.connection import pg_error

    refused = pg_error(psycopg.errors.ObjectNotInPrerequisiteState("not populated"), "restore")
    assert isinstance(refused, ServerError) and not isinstance(refused, (ConnectError, ServerLost))
    assert "up and reachable" not in str(refused.hint)
    lock = pg_error(psycopg.errors.LockNotAvailable("lock"), "dump")
    assert isinstance(lock, ServerError) and not isinstance(lock, ServerLost)
    # a session lost mid-operation: exit code 6 (docs/exit-codes.md), as for MariaDB
    lost = pg_error(psycopg.OperationalError("server closed the connection"), "x")
    assert isinstance(lost, ServerLost) and lost.exit_code == 6
    assert isinstance(pg_error(psycopg.errors.AdminShutdown("terminated"), "x"), ServerLost)


@pytest.mark.parametrize(
    ("wanted", "source", "methods", "db_settings", "expected"),
    [
        ("auto", "default", ["pglz", "lz4"], [], "lz4"),  # nobody chose: the fast one
        ("auto", "default", ["pglz"], [], None),  # a server built without lz4
        ("auto", "configuration file", ["pglz", "lz4"], [], None),  # the admin chose
        ("auto", "user", ["pglz", "lz4"], [], None),  # ALTER ROLE … SET
        ("auto", "client", ["pglz", "lz4"], [], None),  # PGOPTIONS
        ("auto", "default", ["pglz", "lz4"], ["default_toast_compression=pglz"], "pglz"),
        ("auto", "default", ["pglz", "lz4"], ["search_path=a, b"], "lz4"),
        ("auto", None, [], [], None),  # PostgreSQL 13: one method, no setting
        ("server", "default", ["pglz", "lz4"], [], None),
        ("pglz", "default", ["pglz", "lz4"], [], "pglz"),
        ("lz4", "configuration file", ["pglz", "lz4"], [], "lz4"),  # asked for: given
    ],
)
def test_toast_compression_choice(
    wanted: str, source: str | None, methods: list[str], db_settings: list[str],
    expected: str | None,
) -> None:  # fmt: skip
    assert choose_toast_compression(wanted, source, methods, db_settings) == expected


def test_toast_compression_the_server_lacks_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="does not offer it") as e:
        choose_toast_compression("lz4", "default", ["pglz"], [])
    assert "--toast-compression server" in (e.value.hint or "")
    with pytest.raises(ConfigError, match="not one of"):
        choose_toast_compression("zstd", "default", ["pglz", "lz4"], [])


# -- the order of a restore's jobs (restore/pg_plan.py) ---------------------------------
@pytest.mark.parametrize(
    ("sql", "n"),
    [
        ('CREATE INDEX "i" ON "public"."t" USING "btree" ("a");', 1),
        ('CREATE UNIQUE INDEX "i" ON "public"."t" USING "btree" ("a", "b", "c");', 3),
        ('CREATE INDEX "i" ON "public"."t" USING "btree" ("lower"(("a")::"text"), "b");', 2),
        ('CREATE INDEX "i" ON "public"."t" USING "btree" ("a, b") WHERE ("c" = \'x, y\');', 1),
        ('CREATE INDEX "i" ON "public"."t" USING "gin" ("d") INCLUDE ("e", "f");', 1),
        ('ALTER TABLE ONLY "public"."t"\n    ADD CONSTRAINT "t_pk" PRIMARY KEY ("id");', 1),
        ('ALTER TABLE ONLY "public"."t"\n    ADD CONSTRAINT "u" UNIQUE ("a", "b");', 2),
        ('ALTER TABLE ONLY "public"."t"\n    ADD CONSTRAINT "u" UNIQUE NULLS NOT DISTINCT ("a", "b");', 2),
        ('ALTER TABLE ONLY "public"."t"\n    ADD CONSTRAINT "x" EXCLUDE USING "gist" ("r" WITH &&, "s" WITH =);', 2),
        ('ALTER TABLE ONLY "public"."t"\n    ADD CONSTRAINT "c" CHECK (("a" > 0));', 1),
    ],
)
def test_key_columns_of_index_and_constraint_entries(sql: str, n: int) -> None:
    from moodump.restore.pg_plan import key_columns

    assert key_columns(sql) == n


def test_a_tables_index_builds_start_with_the_widest_key() -> None:
    """Longest first: the sample's logstore, in the dump's (name) order, then as queued."""
    from moodump.restore.pg_plan import heaviest_first, jobs_of

    def idx(name: str, *cols: str) -> tuple[str, str, str]:
        keys = ", ".join(f'"{c}"' for c in cols)
        return (f"post:{name}", "INDEX", f'CREATE INDEX "{name}" ON "public"."log" USING "btree" ({keys});')

    pk = ("post:pk", "CONSTRAINT", 'ALTER TABLE ONLY "public"."log"\n    ADD CONSTRAINT "pk" PRIMARY KEY ("id");')
    entries = [pk, idx("con", "contextid"), idx("cou", "courseid"),
               idx("couanotim", "courseid", "anonymous", "timecreated"), idx("tim", "timecreated"),
               idx("useconconcr", "userid", "contextlevel", "contextinstanceid", "crud", "edulevel", "timecreated")]  # fmt: skip
    order = [e[0] for e in heaviest_first(entries)]
    # the primary key first (it locks the table: it runs alone, while the other worker
    # still has other tables' work), then the widest keys
    assert order == ["post:pk", "post:useconconcr", "post:couanotim", "post:con", "post:cou", "post:tim"]
    big = jobs_of(heaviest_first(entries), {'"public"."log"': 1 << 30}, lambda sql: '"public"."log"')
    assert [kind for kind, _ in big] == ["entry"] * 6  # a big table's: a job each
    small = jobs_of(entries, {'"public"."log"': 1000}, lambda sql: '"public"."log"')
    assert [kind for kind, _ in small] == ["entries"] and len(small[0][1][1]) == 6  # one job


def test_a_worker_takes_the_first_job_whose_lock_it_would_not_wait_for() -> None:
    """pick: a CREATE INDEX beside another (SHARE and SHARE), never beside an ALTER TABLE
    of its table (ACCESS EXCLUSIVE); a second file of a table being loaded only when
    nothing else can run; None: wait."""
    from moodump.restore.pg_plan import DATA, EXCLUSIVE, SHARE, lock_of, pick

    pk = ("post:pk", "CONSTRAINT", 'ALTER TABLE ONLY "public"."a"\n    ADD CONSTRAINT "pk" PRIMARY KEY ("id");')
    ix = ("post:ix", "INDEX", 'CREATE INDEX "ix" ON "public"."a" USING "btree" ("x");')
    clustered = ("post:cx", "INDEX", 'CREATE INDEX "cx" ON "public"."a" USING "btree" ("x");\n\nALTER TABLE "public"."a" CLUSTER ON "cx";')

    def table(sql: str) -> str:
        return '"public"."a"'

    assert lock_of(("entry", pk), table) == ('"public"."a"', EXCLUSIVE)
    assert lock_of(("entry", ix), table) == ('"public"."a"', SHARE)
    assert lock_of(("entry", clustered), table) == ('"public"."a"', EXCLUSIVE)
    assert lock_of(("entries", ('"public"."s"', [ix])), table) == ('"public"."s"', SHARE)
    assert lock_of(("entries", ('"public"."s"', [ix, pk])), table) == ('"public"."s"', EXCLUSIVE)
    assert lock_of(("data", ('"public"."b"', "file")), table) == ('"public"."b"', DATA)

    def lock(job: tuple[str, object]) -> tuple[str | None, str]:
        return lock_of(job, table)  # type: ignore[arg-type]

    a = '"public"."a"'
    queue = [("entry", pk), ("entry", ix), ("data", ('"public"."b"', "b1")), ("data", ('"public"."c"', "c1"))]
    assert pick(queue, {}, lock) == 0
    assert pick(queue, {a: [SHARE]}, lock) == 1  # the PRIMARY KEY waits, the index runs
    assert pick(queue, {a: [EXCLUSIVE]}, lock) == 2  # neither: another table's file
    assert pick(queue, {a: [EXCLUSIVE], '"public"."b"': [DATA]}, lock) == 3
    assert pick(queue[:3], {a: [EXCLUSIVE], '"public"."b"': [DATA]}, lock) == 2  # a second file
    assert pick(queue[:2], {a: [SHARE, SHARE]}, lock) == 1
    assert pick(queue[:2], {a: [EXCLUSIVE]}, lock) is None  # wait


def test_a_tables_index_builds_go_first_once_its_last_file_is_in() -> None:
    import threading

    from moodump.restore.pg_pool import JobQueue

    def idx(table: str, name: str, *cols: str) -> tuple[str, str, str]:
        keys = ", ".join(f'"{c}"' for c in cols)
        return (f"post:{name}", "INDEX", f'CREATE INDEX "{name}" ON "public"."{table}" USING "btree" ({keys});')

    big = {'"public"."a"': 1 << 30, '"public"."b"': 1 << 30}
    done: list[str] = []
    q = JobQueue(
        [('"public"."a"', "a1"), ('"public"."a"', "a2"), ('"public"."b"', "b1")],
        {'"public"."a"': [idx("a", "a_x", "x"), idx("a", "a_xy", "x", "y")], '"public"."b"': [idx("b", "b_x", "x")]},
        [idx("c", "c_x", "x")],
        size=big, table_of=lambda sql: '"public"."' + sql.split('"public"."')[1].split('"')[0] + '"',
        stop=threading.Event(), on_table_done=lambda: done.append("table"),
    )  # fmt: skip
    seen: list[str] = []
    q.work(None, lambda conn, job: seen.append(job[1][1] if job[0] == "data" else job[1][0]))
    assert seen == ["a1", "a2", "post:a_xy", "post:a_x", "b1", "post:b_x", "post:c_x"]
    assert done == ["table", "table"] and not q.unfinished


def test_the_queue_never_hands_out_an_index_build_beside_its_tables_primary_key() -> None:
    import threading

    from moodump.restore.pg_pool import JobQueue

    pk = ("post:pk", "CONSTRAINT", 'ALTER TABLE ONLY "public"."a"\n    ADD CONSTRAINT "pk" PRIMARY KEY ("id");')
    ix = ("post:ix", "INDEX", 'CREATE INDEX "ix" ON "public"."a" USING "btree" ("x");')
    other = ("post:ox", "INDEX", 'CREATE INDEX "ox" ON "public"."c" USING "btree" ("x");')
    q = JobQueue(
        [], {}, [pk, ix, other], size={'"public"."a"': 1 << 30, '"public"."c"': 1 << 30},
        table_of=lambda sql: '"public"."' + sql.split('"public"."')[1].split('"')[0] + '"',
        stop=threading.Event(), on_table_done=lambda: None,
    )  # fmt: skip
    first, second = q.next(), q.next()
    assert first is not None and second is not None
    assert (first[1][0], second[1][0]) == ("post:pk", "post:ox")  # not post:ix: it would wait
    q.done(first)
    q.release(first)
    third = q.next()
    assert third is not None and third[1][0] == "post:ix"
def test_a_schema_dot_table_pattern_names_that_table_only() -> None:
    """``x.t`` names the table t of the schema x (as pg_dump reads it), not also a table
    named "x.t" in another schema: ``restore --table x.t --drop`` replaced both (the
    other one's rows silently went back to the backup's), and the dump took both. A bare
    name still names the tables of that name in every schema."""
    from moodump.dump.pg_plan import pattern_hits
    from moodump.manifest import TableEntry
    from moodump.restore.pg_script import _select

    tables = [PgTable("x", "t"), PgTable("public", "x.t"), PgTable("public", "t"), PgTable("public", "t2")]
    names = {p: sorted(t.key for t in pattern_hits(tables, p)) for p in ("x.t", "t", "public.x.t")}
    assert names == {"x.t": ['"x"."t"'], "t": ['"public"."t"', '"x"."t"'], "public.x.t": ['"public"."x.t"']}
    m = Manifest(database="d", tool_version="0", codec="none", level=0, database_type="postgresql")
    m.tables = [TableEntry(name=t.name, schema=t.schema, kind="table", engine="", columns=["id"]) for t in tables]
    assert _select(m, ("x.t",)) == {'"x"."t"'}
    assert _select(m, ("t",)) == {'"public"."t"', '"x"."t"'}
    assert _select(m, ("public.x.t",)) == {'"public"."x.t"'}


def test_a_pattern_two_tables_read_the_same_is_refused_and_quoted_names_one() -> None:
    """``a.b.c`` is the ``schema.table`` of both "a.b"."c" and "a"."b.c": ``restore
    --table a.b.c --drop`` replaced both (and the dump took, or left out, both). It is
    refused, naming them; ``"a.b"."c"`` (double quotes, as pg_dump reads them) names
    one, in the dump and the restore alike."""
    from moodump.dump.pg_plan import pattern_hits
    from moodump.manifest import TableEntry
    from moodump.restore.pg_script import _select

    tables = [PgTable("a.b", "c"), PgTable("a", "b.c"), PgTable('q"s', 'n"m')]
    m = Manifest(database="d", tool_version="0", codec="none", level=0, database_type="postgresql")
    m.tables = [TableEntry(name=t.name, schema=t.schema, kind="table", engine="", columns=["id"]) for t in tables]
    for pick in (lambda p: pattern_hits(tables, p), lambda p: _select(m, (p,))):
        with pytest.raises(ConfigError, match="names 2 tables") as err:
            pick("a.b.c")
        assert '"a"."b.c"' in str(err.value) and '"a.b"."c"' in str(err.value)
    assert [t.key for t in pattern_hits(tables, '"a.b"."c"')] == ['"a.b"."c"']
    assert _select(m, ('"a"."b.c"',)) == {'"a"."b.c"'}
    assert _select(m, ('"q""s"."n""m"',)) == {'"q""s"."n""m"'}
