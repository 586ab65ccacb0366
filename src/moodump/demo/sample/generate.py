"""Create and fill a Moodle-shaped database, server-side and deterministically.

:func:`plan` is pure: it turns a scale factor into one :class:`TableJob` per Moodle table
(its CREATE TABLE, its index clauses and the ``INSERT ... SELECT ... FROM seq_A_to_B``
statements that fill it). :func:`create_moodle_database` runs the plan on a server with
a few connections in parallel.

Why it is fast: rows are computed by the server from MariaDB's Sequence engine, never
sent over the wire; all tables are created before any is filled; a big table is loaded
with its primary key only and gets its secondary indexes in one ``ALTER TABLE`` after
(each index is then built from sorted rows instead of maintained row by row); every
statement covers at most :data:`BATCH_ROWS` rows and commits on its own, so the undo log
stays small; the tables are spread over ``workers`` connections, biggest first.

Measured on MariaDB 10.11 (500 k log rows, 8 secondary indexes, server CPU): indexes
added after loading 4.9 s, maintained while inserting 10.0 s. ``foreign_key_checks`` is
off (Moodle declares no foreign keys on MySQL anyway) but ``unique_checks`` stays on:
with both off MariaDB >= 10.6 switches to its bulk insert into an empty table, which cost
more here (9.3 s with the indexes added after, 11.1 s with them in place).

Why it is deterministic: every value is a function of the row number through
deterministic functions (see :mod:`moodump.demo.sample.sql`), every ``id`` is given
explicitly, and nothing depends on the order in which tables are loaded. The same scale,
prefix and options give byte-identical tables on the same server version.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moodump.db.connection import Connection, ConnSettings, connect, quote_ident, quote_str
from moodump.demo.sample import vocab as V
from moodump.demo.sample.content import special_fills
from moodump.demo.sample.schema import DEFAULT_COLLATION, IndexNamer, create_table_sql, tables
from moodump.demo.sample.site import Fill, Site, site_at
from moodump.demo.sample.sql import (
    between,
    cat,
    hex_id,
    ipv4,
    lit,
    nullable,
    pick,
    timestamp,
    words,
)
from moodump.errors import ConfigError, MoodumpError, TargetNotEmpty

BATCH_ROWS = 500_000
CREATE_CONNECTIONS = 4
DEFER_INDEXES_ROWS = 20_000
MAX_SCALE = 100.0

Progress = Callable[[str, int, int], None]
"""``progress(table, rows_done, rows_total)``; called after each statement, from worker
threads (one call at a time)."""

_USERISH = {
    "usermodified", "modifierid", "authorid", "creatorid", "teacher", "grader", "reviewerid",
    "createdby", "usercreated", "contactid", "requesteduserid", "blockeduserid",
    "useridfrom", "useridto", "assigner", "owner", "reviewer", "user", "submitter",
}  # fmt: skip
_TIMEISH = {
    "added", "created", "modified", "expires", "lastcron", "nextruntime", "lastruntime",
    "lastaccess", "firstaccess", "lastlogin", "currentlogin", "lastmodified", "deadline",
}  # fmt: skip
_TOKENS = ["draft", "active", "default", "manual", "text", "standard", "none", "view",
           "edit", "submitted", "finished", "core", "new", "open", "closed", "site"]  # fmt: skip
_RICH = ("message", "summary", "intro", "description", "content", "feedback", "text",
         "comment", "definition", "answer", "response", "entry", "body", "instructions")  # fmt: skip
_STRUCTURED = ("data", "config", "other", "json", "param", "info", "settings", "options",
               "value", "customdata", "availability")  # fmt: skip


@dataclass
class TableJob:
    """Everything needed to create and fill one table."""

    table: str  # without prefix
    name: str  # with prefix
    create: str  # CREATE TABLE with the primary key only
    indexes: list[str]  # "KEY ..." / "UNIQUE KEY ..." clauses, in Moodle's order
    statements: list[tuple[str, int]] = field(default_factory=list)  # (sql, rows)
    rows: int = 0

    @property
    def deferred(self) -> bool:
        """Whether the secondary indexes are added after loading.

        Building an index from the loaded rows costs about half the server CPU of
        maintaining it row by row (500 k log rows, 8 indexes: 4.9 s against 10 s on
        MariaDB 10.11); for small tables the extra ALTER costs more than it saves.
        """
        return bool(self.indexes) and self.rows >= DEFER_INDEXES_ROWS

    @property
    def create_sql(self) -> str:
        """The CREATE TABLE to run: with the secondary indexes unless they are deferred."""
        if self.deferred or not self.indexes:
            return self.create
        head, sep, tail = self.create.rpartition("\n)")
        return head + ",\n    " + ",\n    ".join(self.indexes) + sep + tail

    @property
    def add_indexes_sql(self) -> str:
        return f"ALTER TABLE {quote_ident(self.name)} " + ", ".join(
            "ADD " + i for i in self.indexes
        )

    @property
    def cost(self) -> int:
        return self.rows * (2 + len(self.indexes))


# -- generic rules, for the tables without a hand-written fill ----------------------


def generic_rows(table: str, scale: float) -> int:
    """Rows of a table without a hand-written fill: 0 for ~30 % of them, else 30..10 000
    at scale 1 (log-uniform, fixed per table name), scaled and at least 1."""
    u = zlib.crc32(table.encode()) / 2**32
    if u < 0.3:
        return 0
    at_one = 10 ** (1.5 + 2.5 * (u - 0.3) / 0.7)
    return max(1, round(at_one * scale))


def _int_expr(table: str, name: str, length: int, site: Site, rows: int) -> str:
    salt = f"{table}.{name}"
    if name.endswith("userid") or name in _USERISH:
        return between(1, site.users, salt)
    if name in ("courseid", "course"):
        return between(1, site.courses, salt)
    if name.endswith("contextid"):
        return between(1, site.contexts, salt)
    if length >= 10 and (
        name.startswith("time") or name.endswith(("time", "date")) or name in _TIMEISH
    ):
        return timestamp(salt)
    if length == 1:
        return between(0, 1, salt)
    top = 10 ** min(length, 9) - 1
    if name.endswith("id") or name in ("instance", "parent", "category", "itemid"):
        return between(0 if name == "parent" else 1, min(top, max(10, rows)), salt)
    return between(0, min(top, 999), salt)


def _char_expr(table: str, name: str, length: int) -> str:
    salt = f"{table}.{name}"
    if name == "email":
        return cat(pick(V.ASCII_FIRST, salt), "seq", lit("@"), pick(V.DOMAINS, salt + "d"))
    if "hash" in name or name in ("sid", "token", "stamp", "checksum", "secret", "sesskey"):
        return hex_id(salt, min(length, 40))
    if name in ("component", "plugin"):
        return pick(V.PLUGINS, salt)
    if name == "lang":
        return pick(V.LANGS, salt)
    if name == "country":
        return pick(V.COUNTRIES, salt)
    if name == "city":
        return pick(V.CITIES, salt)
    if name == "timezone":
        return pick(V.TIMEZONES, salt)
    if "ip" in name.split("_") or name in ("ip", "lastip", "firstip", "ipaddress"):
        return ipv4(salt)
    if "url" in name:
        module = pick(V.MODULES, salt)
        return cat(lit("https://moodle.example.edu/mod/"), module, lit("/view.php?id="), "seq")
    if name in ("firstname", "lastname", "author"):
        return cat(pick(V.FIRST_NAMES, salt), lit(" "), pick(V.LAST_NAMES, salt + "l"))
    if name.endswith("name"):
        return words(V.WORDS, 3, salt)
    if name in ("subject", "title", "label", "idnumber", "shortname"):
        return words(V.WORDS, 2, salt)
    if length <= 40:
        return pick(_TOKENS, salt)
    return words(V.WORDS, 3, salt)


def _text_expr(table: str, name: str) -> str:
    salt = f"{table}.{name}"
    if any(r in name for r in _RICH):
        return cat(
            lit("<p>"),
            words(V.WORDS, 10, salt),
            pick(V.SENTENCE_ENDS, salt + "e"),
            lit(" "),
            words(V.WORDS, 6, salt + "2"),
            lit("</p>"),
        )
    if any(s in name for s in _STRUCTURED):
        return cat(
            lit('{"id":'),
            "seq",
            lit(',"name":'),
            f"JSON_QUOTE({words(V.WORDS, 2, salt)})",
            lit(',"flag":'),
            between(0, 1, salt + "f"),
            lit("}"),
        )
    return words(V.WORDS, 6, salt)


def generic_expr(
    table: str, field_def: list[Any], site: Site, rows: int, injective: set[str]
) -> str:
    """The generic SQL expression for one column.

    The column's name and XMLDB type decide: user/course/context references point at
    existing ids, time columns hold Unix times of the last three years, text is
    multilingual (HTML for message-like columns, JSON for data-like ones), every nullable
    column is NULL in about 15 % of rows, and ``injective`` columns are functions of
    ``seq`` alone so unique indexes hold.
    """
    name, xtype, length, decimals, notnull, sequence, _default = field_def
    salt = f"{table}.{name}"
    digits = len(str(rows + 1))
    if sequence:
        return "seq"
    if xtype == "int":
        if name in injective:
            return "seq"
        expr = _int_expr(table, name, length or 10, site, rows)
    elif xtype == "char":
        n = length or 255
        expr = _char_expr(table, name, n)
        if name in injective:
            return f"CONCAT(LEFT({expr},{n - digits - 1}),'-',seq)"
        expr = f"LEFT({expr},{n})"
    elif xtype == "text":
        expr = _text_expr(table, name)
    elif xtype == "number":
        length = length or 10
        d = decimals or 0
        top = 10 ** min(length - d, 3) * 10**d
        expr = f"CAST(({between(0, top - 1, salt)})/{10**d} AS DECIMAL({length},{d}))"
    elif xtype == "float":
        expr = f"({between(0, 999999, salt)})/1000"
    elif xtype == "binary":
        expr = f"UNHEX(SHA2(CONCAT(seq,{lit(salt)}),512))"
    elif xtype == "datetime":
        expr = f"FROM_UNIXTIME({timestamp(salt)})"
    else:  # pragma: no cover - the schema has no other types
        raise ValueError(f"unknown XMLDB type {xtype!r}")
    if not notnull:
        expr = nullable(expr, 15, salt + ".null")
    return expr


def _unique_sets(table: dict[str, Any]) -> list[list[str]]:
    """Column sets that must be unique: unique indexes and keys, and a primary key that
    is not the sequence (``id`` values are always ``seq``)."""
    sets = [list(cols) for _n, unique, cols in table["indexes"] if unique]
    sets += [
        list(cols)
        for _n, kt, cols, _rt, _rf in table["keys"]
        if kt in ("unique", "foreign-unique", "primary")
    ]
    sequences = {f[0] for f in table["fields"] if f[5]}
    return [cols for cols in sets if not set(cols) & sequences]


def _injective_columns(table: dict[str, Any], rows: int) -> set[str] | None:
    """Columns to make a function of ``seq`` alone so that every unique index holds.

    Returns None when some unique index has no column able to take ``rows`` distinct
    values (the table then gets a single row).
    """
    fields = {f[0]: f for f in table["fields"]}
    digits = len(str(rows + 1))
    chosen: set[str] = set()
    for cols in _unique_sets(table):
        if any(c in chosen for c in cols):
            continue
        pick_col = None
        for c in cols:
            _n, xtype, length, _d, _nn, _s, _def = fields[c]
            if xtype == "int" and (length or 10) >= digits + 1:
                pick_col = c
                break
            if xtype == "char" and (length or 255) >= digits + 4:
                pick_col = c
                break
        if pick_col is None:
            return None
        chosen.add(pick_col)
    return chosen


def _statements(
    name: str, columns: list[str], exprs: list[str], fill: Fill
) -> list[tuple[str, int]]:
    cols = ",".join(quote_ident(c) for c in columns)
    select = ",".join(exprs)
    out: list[tuple[str, int]] = [(sql, 0) for sql in fill.head]
    if fill.head_rows and fill.head:
        out[-1] = (out[-1][0], fill.head_rows)
    a = fill.first
    while a <= fill.last:
        b = min(fill.last, a + BATCH_ROWS - 1)
        sql = f"INSERT INTO {quote_ident(name)} ({cols}) SELECT {select} FROM seq_{a}_to_{b}"
        out.append((sql, b - a + 1))
        a = b + 1
    return out


def plan(
    scale: float,
    *,
    prefix: str = "mdl_",
    blobs: bool = False,
    row_format: str = "Dynamic",
    collation: str = DEFAULT_COLLATION,
) -> list[TableJob]:
    """One job per Moodle table, in installation order (pure; see the module docstring)."""
    if not (0 < scale <= MAX_SCALE):
        raise ConfigError(
            f"scale must be > 0 and <= {MAX_SCALE:g}, not {scale!r}",
            hint="use e.g. 0.001 for a demo, 1 for ~2 GB",
        )
    site = site_at(scale)
    specials = special_fills(site, prefix, blobs)
    namer = IndexNamer(prefix)
    jobs = []
    for table in tables():
        tname = table["name"]
        create, indexes = create_table_sql(
            table,
            namer,
            prefix=prefix,
            collation=collation,
            row_format=row_format,
            with_indexes=False,
        )
        if blobs and tname == "backup_controllers":
            create = create.replace(
                f"`controller` LONGTEXT COLLATE {collation} NOT NULL",
                "`controller` LONGBLOB NOT NULL",
            )
        job = TableJob(table=tname, name=prefix + tname, create=create, indexes=indexes)
        fill = specials.get(tname)
        if fill is None:
            rows = generic_rows(tname, scale)
            injective = _injective_columns(table, rows) if rows else set()
            if injective is None:
                rows = 1
                injective = set()
            fill = Fill(rows=rows)
        else:
            injective = set()
        if fill.total:
            columns = [f[0] for f in table["fields"]]
            exprs = [
                fill.columns[f[0]]
                if f[0] in fill.columns
                else generic_expr(tname, f, site, fill.last, injective)
                for f in table["fields"]
            ]
            job.statements = _statements(job.name, columns, exprs, fill)
            job.rows = fill.total
        jobs.append(job)
    return jobs


# -- execution -----------------------------------------------------------------------


_SESSION_SQL = (
    "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
    # Strict: a value that does not fit is an error here, never silently cut.
    "SET SESSION sql_mode='STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION foreign_key_checks=0",  # unique_checks stays on: see the module docstring
    # Settings that change generated values are pinned, not inherited from the server.
    "SET SESSION time_zone='+00:00'",
    "SET SESSION div_precision_increment=4",
)


def _open(settings: ConnSettings, database: str) -> Connection:
    conn = connect(settings.with_database(database))
    for sql in _SESSION_SQL:
        conn.execute(sql)
    return conn


def _prepare_database(conn: Connection, database: str, drop_existing: bool) -> None:
    exists = conn.query(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME="
        + quote_str(database)
    )
    if exists and drop_existing:
        conn.execute(f"DROP DATABASE {quote_ident(database)}")
    elif exists:
        count = conn.scalar(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA="
            + quote_str(database)
        )
        if int(count or 0):
            raise TargetNotEmpty(
                f"database {database!r} already has tables",
                hint="choose another name, drop it, or pass drop_existing=True (--drop)",
            )
    conn.execute(
        f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)} "
        f"CHARACTER SET utf8mb4 COLLATE {DEFAULT_COLLATION}"
    )
    try:
        conn.query(f"SELECT seq FROM {quote_ident(database)}.seq_1_to_1")
    except MoodumpError as exc:
        raise ConfigError(
            "the server has no Sequence engine (seq_1_to_N tables): " + exc.message,
            hint="generate the sample database on MariaDB 10.0 or later",
        ) from exc


def _parallel(
    settings: ConnSettings,
    database: str,
    connections: int,
    jobs: list[TableJob],
    run: Callable[[Connection, TableJob], None],
) -> None:
    """Run ``run(conn, job)`` for every job, in order, over up to ``connections`` sessions.

    The first failure stops the hand-out of further jobs and is re-raised here.
    """
    lock = threading.Lock()
    queue = list(reversed(jobs))
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with _open(settings, database) as conn:
                while True:
                    with lock:
                        if failures or not queue:
                            return
                        job = queue.pop()
                    run(conn, job)
        except BaseException as exc:  # re-raised in the calling thread below
            with lock:
                failures.append(exc)

    threads = [
        threading.Thread(target=worker, name=f"moodump-sample-{i}", daemon=True)
        for i in range(max(1, min(connections, len(jobs))))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


def _fill(conn: Connection, job: TableJob, report: Callable[[str, int, int], None]) -> None:
    done = 0
    last = len(job.statements) - 1
    for k, (sql, rows) in enumerate(job.statements):
        conn.execute(sql)  # autocommit: one transaction per batch keeps the undo log small
        done += rows
        if k < last:
            report(job.table, done, job.rows)
    if job.deferred:
        conn.execute(job.add_indexes_sql)
    report(job.table, job.rows, job.rows)


def create_moodle_database(
    settings: ConnSettings,
    database: str,
    *,
    scale: float = 0.001,
    prefix: str = "mdl_",
    progress: Progress | None = None,
    workers: int = 2,
    blobs: bool = False,
    row_format: str = "Dynamic",
    drop_existing: bool = False,
) -> dict[str, int]:
    """Create ``database`` with Moodle's 483 tables and fill them at ``scale``.

    Scale 1 is a mid-sized site: 5 M log rows, 2 M question step data rows, 1 M grades,
    500 k files, 300 k users, 50 k sessions, 6 k backup controllers, 2 000 courses --
    about 2 GB of InnoDB data; 0.001 fills in a couple of seconds. The database must not
    exist or be empty (``drop_existing`` drops it first). ``blobs`` stores
    ``backup_controllers.controller`` as raw LONGBLOB bytes instead of Moodle's base64
    LONGTEXT, for runs that need binary data; ``row_format`` may be ``"Compressed"``, as
    Moodle picks on servers that support it.

    Returns the number of rows put in each table (prefixed name -> rows), all tables
    included. Needs MariaDB (the Sequence engine) and CREATE/DROP/INSERT/ALTER rights.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, not {workers}", hint="use 1 to 4")
    jobs = plan(scale, prefix=prefix, blobs=blobs, row_format=row_format)
    with connect(settings.with_database(None)) as admin:
        _prepare_database(admin, database, drop_existing)

    lock = threading.Lock()

    def report(table: str, done: int, total: int) -> None:
        if progress is not None:
            with lock:
                progress(prefix + table, done, total)

    def create(conn: Connection, job: TableJob) -> None:
        conn.execute(job.create_sql)
        if not job.statements:
            report(job.table, 0, 0)

    # All tables first (DDL between big inserts waits on redo-log flushes), on a few
    # connections: creating a table is mostly waiting for fsync.
    _parallel(settings, database, max(workers, CREATE_CONNECTIONS), list(jobs), create)
    # Then the data, longest jobs first so that the connections finish together.
    pending = sorted((j for j in jobs if j.statements), key=lambda j: (-j.cost, j.table))
    _parallel(settings, database, workers, pending, lambda c, j: _fill(c, j, report))
    return {j.name: j.rows for j in jobs}


def table_sizes(settings: ConnSettings, database: str) -> dict[str, tuple[int, int, int]]:
    """``name -> (rows estimate, data_length, index_length)`` from information_schema."""
    with connect(settings.with_database(None)) as conn:
        rows = conn.query(
            "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA=" + quote_str(database)
        )
    return {(r[0] or b"").decode(): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}


__all__ = [
    "BATCH_ROWS",
    "TableJob",
    "create_moodle_database",
    "generic_rows",
    "plan",
    "table_sizes",
]
