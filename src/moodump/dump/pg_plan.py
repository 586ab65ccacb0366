"""The plan of a PostgreSQL dump: the tables ``--table``/``--exclude`` pick, those whose
data ``--exclude-data``/``--schema-only`` skip, the copy tasks, one per file (a table, a
primary-key range of a big one (``chunk_bytes``), the large objects' two pseudo-tables),
and the manifest's entries for the tables, sequences, materialized views and large
objects.
"""

from __future__ import annotations

from moodump.dump.model import DumpOptions, _match, _safe, key_ranges
from moodump.errors import ConfigError
from moodump.manifest import TableEntry
from moodump.pg.catalog import (
    LARGE_OBJECT_META,
    LARGE_OBJECT_META_QUERY,
    LARGE_OBJECTS,
    LARGE_OBJECTS_QUERY,
    PgSequence,
    PgTable,
    is_int_key,
)
from moodump.pg.connection import Conn, qualified, quote_ident
from moodump.pg.copyio import copy_query
from moodump.sqltext import quoted_table


class PgTask:
    """One data file to write: ``table`` (rows ``where``) by ``query``."""

    def __init__(
        self, table: PgTable, index: int, where: str, file: str, estimate: int, query: str = ""
    ) -> None:  # fmt: skip
        self.table, self.index, self.where, self.file, self.estimate = (
            table,
            index,
            where,
            file,
            estimate,
        )
        self.query = query or copy_query(table, where)


def _mode(tables: list[PgTable], pattern: str) -> str:
    """How a ``--table``/``--exclude`` pattern names tables: ``"full"`` when it is, as it
    is, some table's ``schema.table`` (``x.t`` is the table t of the schema x, not also
    a table named "x.t" in another schema, as pg_dump reads it), else ``"name"`` when it
    is some table's name as it is (``x[1]``), else ``"quoted"`` when it is written
    ``"schema"."table"``, else ``"glob"``. A ``schema.table`` two tables read the same
    (``"a.b"."c"`` and ``"a"."b.c"``) is refused: each is named quoted."""
    names = [a for t in tables for a in _names(t)]
    full = {(s, n) for s, n in names if f"{s}.{n}" == pattern}
    if len(full) > 1:
        listed = ", ".join(PgTable(s, n).key for s, n in sorted(full))
        raise ConfigError(
            f"{pattern!r} names {len(full)} tables: {listed}",
            hint='name one as "schema"."table" (in double quotes, doubled inside)',
        )
    if full:
        return "full"
    if any(n == pattern for _s, n in names):
        return "name"
    return "quoted" if quoted_table(pattern) is not None else "glob"


def _named(schema: str, name: str, pattern: str, mode: str) -> bool:
    if mode == "full":
        return f"{schema}.{name}" == pattern
    if mode == "name":
        return name == pattern
    if mode == "quoted":
        return quoted_table(pattern) == (schema, name)
    return _match(f"{schema}.{name}", (pattern,)) or _match(name, (pattern,))


def _names(t: PgTable) -> list[tuple[str, str]]:
    """A table's own (schema, name) and its partitioned ancestors'."""
    return [(t.schema, t.name), *t.ancestors]


def is_name(tables: list[PgTable], pattern: str) -> bool:
    """Whether ``pattern`` is, as it is, the name of a table (or partitioned table)."""
    return _mode(tables, pattern) != "glob"


def pattern_hits(tables: list[PgTable], pattern: str) -> list[PgTable]:
    """The tables a ``--table``/``--exclude`` pattern names: those whose ``schema.table``
    it is, as it is, else those whose ``table`` it is (``x[1]`` is a table's name, not a
    glob matching ``x1``), else those it matches as a glob; a partitioned table named so
    names its partitions."""
    mode = _mode(tables, pattern)
    return [t for t in tables if any(_named(s, n, pattern, mode) for s, n in _names(t))]


def named_parents(tables: list[PgTable], pattern: str) -> set[tuple[str, str]]:
    """The partitioned tables (schema, name) a pattern names (as :func:`pattern_hits`),
    with those between them and their partitions (a sub-partitioned partition)."""
    mode = _mode(tables, pattern)
    out: set[tuple[str, str]] = set()
    for t in tables:
        named = [i for i, a in enumerate(t.ancestors) if _named(*a, pattern, mode)]
        if named:
            out |= set(t.ancestors[: max(named) + 1])
    return out


def select_tables(tables: list[PgTable], opts: DumpOptions, database: str) -> list[PgTable]:
    """The tables to dump; a ``--table`` pattern that matches none is an error."""
    o = opts
    wanted: set[str] = set()
    for pattern in o.tables:
        hits = pattern_hits(tables, pattern)
        if not hits:
            raise ConfigError(
                f"--table {pattern!r} matches no table in {database}",
                hint="name tables as schema.table or table (\\dt in psql lists them)",
            )
        # an extension's configuration table by its name only: a glob would take rows
        # without their table (a --table dump writes no CREATE EXTENSION)
        wanted |= {t.key for t in hits if not t.config or _mode(tables, pattern) != "glob"}
    excluded = {t.key for pattern in o.exclude for t in pattern_hits(tables, pattern)}
    no_data = {t.key for pattern in o.exclude_data for t in pattern_hits(tables, pattern)}
    out = [t for t in tables if (not o.tables or t.key in wanted) and t.key not in excluded]
    for t in out:
        t.no_data = t.key in no_data
    return out


def skip_data(t: PgTable, opts: DumpOptions) -> bool:
    """Whether the table's rows are left out: ``--schema-only``, or ``--exclude-data``
    names it or a partitioned table above it (:func:`select_tables` marks it)."""
    return opts.schema_only or t.no_data


def plan_tasks(
    coord: Conn, tables: list[PgTable], opts: DumpOptions, ext: str, pending: dict[str, int]
) -> list[PgTask]:
    """The copy tasks of ``tables``, biggest first; ``pending`` gets each table's number
    of files."""
    tasks: list[PgTask] = []
    for idx, t in enumerate(tables, 1):
        if skip_data(t, opts):
            continue
        base = f"data/{idx:04d}-{_safe(t.schema)}.{_safe(t.name)}"
        ranges = _ranges(coord, t, opts.chunk_bytes)
        pending[t.key] = len(ranges)
        for n, rng in enumerate(ranges):
            est = t.data_length // max(1, len(ranges))
            tasks.append(PgTask(t, n, rng, f"{base}.{n:05d}.tsv{ext}", est))
    tasks.sort(key=lambda k: -k.estimate)
    return tasks


def _ranges(coord: Conn, t: PgTable, chunk_bytes: int) -> list[str]:
    """Primary-key ranges of a big table; the last one is open-ended. An extension's
    configuration table: the rows that are the user's, in one file."""
    if t.config_where:
        return [t.config_where]
    if not is_int_key(t) or t.data_length <= chunk_bytes:
        return [""]
    pk = quote_ident(t.primary_key[0])
    row = coord.execute(
        f"SELECT min({pk}), max({pk}) FROM ONLY {qualified(t.schema, t.name)}"
    ).fetchone()
    if row is None or row[0] is None:
        return [""]
    return key_ranges(pk, int(row[0]), int(row[1]), t.data_length, chunk_bytes)


def large_object_tasks(
    ext: str, pending: dict[str, int], entries: dict[str, TableEntry]
) -> list[PgTask]:
    """The copy tasks of the large objects' data and metadata, with their entries."""
    tasks = []
    for i, (pseudo, query) in enumerate(((LARGE_OBJECTS, LARGE_OBJECTS_QUERY),
                                         (LARGE_OBJECT_META, LARGE_OBJECT_META_QUERY))):  # fmt: skip
        pending[pseudo.key] = 1
        tasks.append(PgTask(pseudo, 0, "", f"data/large-objects-{i}.00000.tsv{ext}", 0, query))
        entries[pseudo.key] = TableEntry(
            name=pseudo.name, schema=pseudo.schema, kind="large objects", engine="",
            columns=list(pseudo.columns), column_types=list(pseudo.column_types),
            order_by=["loid"], digest="ordered",
        )  # fmt: skip
    return tasks


def add_entries(
    entries: dict[str, TableEntry], selected: list[PgTable], seqs: list[PgSequence],
    matviews: list[tuple[str, str]], opts: DumpOptions,
) -> None:  # fmt: skip
    """The manifest's entries of the tables, the sequences (with the values read in the
    snapshot) and the populated materialized views (refreshed by the restore after
    post-data), in that order."""
    o = opts
    for t in selected:
        entries[t.key] = TableEntry(
            name=t.name, schema=t.schema, kind="table", engine="", columns=list(t.columns),
            column_types=list(t.column_types), order_by=list(t.primary_key),
            digest="ordered" if t.primary_key else "multiset",
            data_skipped=skip_data(t, o),
            load_clause=t.load_via,  # PostgreSQL: the partition root to load through
        )  # fmt: skip
    for s in seqs:
        if _match(f"{s.schema}.{s.name}", o.exclude) or _match(s.name, o.exclude):
            continue
        entries[qualified(s.schema, s.name)] = TableEntry(
            name=s.name, schema=s.schema, kind="sequence", engine="",
            sequence={"last_value": s.last_value, "is_called": int(s.is_called)},
        )  # fmt: skip
    for schema, name in matviews:  # refreshed by the restore after post-data
        entries[qualified(schema, name)] = TableEntry(
            name=name, schema=schema, kind="materialized view", engine=""
        )
