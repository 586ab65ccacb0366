"""Verification by restore, PostgreSQL side: read every restored table again with the
dump's own ``COPY`` query (range by range) and compare row counts and content digests
with the values the dump recorded inside its snapshot."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from moodump.db.connection import ConnSettings
from moodump.db.rowstream import digest_algo
from moodump.manifest import Chunk, Manifest, TableEntry
from moodump.pg.catalog import (
    LARGE_OBJECTS_QUERY,
    PgTable,
    list_sequences,
    list_tables,
    moodle_info,
)
from moodump.pg.connection import connect, pg_error, set_session
from moodump.pg.copyio import copy_out, copy_query


@dataclass
class ReadBack:
    problems: list[str] = field(default_factory=list)
    tables: int = 0
    rows: int = 0
    moodle: dict[str, object] | None = None


def read_back(settings: ConnSettings, database: str, m: Manifest, threads: int) -> ReadBack:
    """Compare every data file of ``m`` with the restored ``database``."""
    out = ReadBack()
    with connect(settings, database, autocommit=True) as conn:
        tables = list_tables(conn)
        restored = {(t.schema, t.name): t for t in tables}
        if m.moodle:
            recorded = m.moodle.get("prefix")
            out.moodle = moodle_info(conn, tables, recorded if isinstance(recorded, str) else None)
    # keyed by (schema, name): "a.b"."c" and "a"."b.c" read the same joined with a dot
    wanted = {(t.schema, t.name): t for t in m.tables if t.kind == "table"}
    # (an extension's configuration tables: CREATE EXTENSION makes them, and a backup
    # made before moodump dumped their rows does not list them)
    extra = sorted(k for k in set(restored) - set(wanted) if not restored[k].config)
    if extra:
        out.problems.append("unexpected tables after restore: " + ", ".join(f"{s}.{n}" for s, n in extra))
    work: list[tuple[TableEntry, PgTable, Chunk]] = []
    trees: dict[str, list[tuple[TableEntry, PgTable]]] = {}
    for name, entry in wanted.items():
        if name not in restored:
            out.problems.append(f"table {name[0]}.{name[1]} is missing after restore")
            continue
        if entry.data_skipped:
            continue
        out.tables += 1
        table = restored[name]
        if entry.columns and set(entry.columns) <= set(table.columns):
            # read in the dump's column order: the restored table's may differ (a column
            # added to an inheritance parent after its child's own: pg_dump recreates the
            # child with the inherited columns first)
            table = replace(table, columns=list(entry.columns))
        if entry.load_clause:  # loaded through its partition root: compared as a tree
            trees.setdefault(entry.load_clause, []).append((entry, table))
            continue
        work += [(entry, table, c) for c in entry.chunks]
    seqs = [e for e in m.tables if e.kind == "sequence" and e.sequence]
    if seqs:  # the values the dump read, which the restore sets
        with connect(settings, database, autocommit=True) as conn:
            set_session(conn, str(m.snapshot.get("encoding") or ""))
            have = {(s.schema, s.name): s for s in list_sequences(conn)}
        for e in seqs:
            got = have.get((e.schema, e.name))
            want = (int(e.sequence["last_value"]), bool(e.sequence["is_called"]))
            if got is None:
                out.problems.append(f"sequence {e.schema}.{e.name} is missing after restore")
            elif (got.last_value, got.is_called) != want:
                out.problems.append(f"sequence {e.schema}.{e.name}: {got.last_value} (is_called "
                                    f"{got.is_called}) after restore, the dump read {want[0]} "
                                    f"(is_called {want[1]})")  # fmt: skip
    lo = [e for e in m.tables if e.kind == "large objects" and e.name == "pg_largeobject"]
    if lo:  # the contents; owners, ACLs and comments are checked offline (the file)
        with connect(settings, database, autocommit=True) as conn:
            set_session(conn, str(m.snapshot.get("encoding") or ""))
            for c in lo[0].chunks:
                res = copy_out(conn, LARGE_OBJECTS_QUERY, None, ordered=True,
                               algo=digest_algo(c.content_digest))  # fmt: skip
                out.rows += res.rows
                if res.rows != c.rows:
                    out.problems.append(f"{c.file}: {res.rows} large objects restored, the dump read {c.rows}")
                elif res.digest != c.content_digest:
                    out.problems.append(f"{c.file}: the restored large objects differ from the dump's")
            # their metadata (owners and ACLs come back only with --owners): counted
            for e in m.tables:
                if e.kind == "large objects" and e.name == "pg_largeobject_metadata":
                    row = conn.execute("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata").fetchone()
                    n = int(row[0]) if row else 0
                    out.rows += min(n, e.rows)
                    if n != e.rows:
                        out.problems.append(f"{n} large objects after restore, the dump read {e.rows}")
    if trees:
        with connect(settings, database, autocommit=True) as conn:
            set_session(conn, str(m.snapshot.get("encoding") or ""))
            for root, members in sorted(trees.items()):
                _check_tree(conn, root, members, out)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with connect(settings, database, autocommit=True) as conn:
                set_session(conn, str(m.snapshot.get("encoding") or ""))
                while True:
                    with lock:
                        if not work:
                            return
                        entry, table, chunk = work.pop()
                    _check(conn, entry, table, chunk, out, lock)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, threads))]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    if errors:
        exc = errors[0]
        raise pg_error(exc, f"reading back {database}") if isinstance(exc, psycopg.Error) else exc
    return out


def _check(
    conn: psycopg.Connection[Any], entry: TableEntry, table: PgTable, chunk: Chunk,
    out: ReadBack, lock: threading.Lock,
) -> None:  # fmt: skip
    ordered = entry.digest == "ordered"
    res = copy_out(conn, copy_query(table, chunk.where), None, ordered=ordered,
                   algo=digest_algo(chunk.content_digest))  # fmt: skip
    with lock:
        out.rows += res.rows
        if res.rows != chunk.rows:
            out.problems.append(f"{chunk.file}: {res.rows} rows restored, the dump read {chunk.rows}")
        elif res.digest != chunk.content_digest:
            out.problems.append(f"{chunk.file}: the restored rows' digest differs from the dump's")


def _check_tree(
    conn: psycopg.Connection[Any], root: str, members: list[tuple[TableEntry, PgTable]],
    out: ReadBack,
) -> None:  # fmt: skip
    """The partitions of a tree hashed on an enum, as one multiset: a row may sit in
    another partition than in the source (the enum's OIDs differ), never elsewhere."""
    mask = (1 << 64) - 1
    want_rows = want_sum = got_rows = got_sum = 0
    for entry, table in members:
        for c in entry.chunks:
            want_rows += c.rows
            want_sum = (want_sum + int(c.content_digest.partition(":")[2], 16)) & mask
        res = copy_out(conn, copy_query(table), None, ordered=False)
        got_rows += res.rows
        got_sum = (got_sum + int(res.digest.partition(":")[2], 16)) & mask
    out.rows += got_rows
    if got_rows != want_rows:
        out.problems.append(f"partitions of {root}: {got_rows} rows restored, the dump read {want_rows}")
    elif got_sum != want_sum:
        out.problems.append(f"partitions of {root}: the restored rows' digest differs from the dump's")


def drop_database(settings: ConnSettings, name: str) -> None:
    """Drop a (scratch) database, closing its sessions (and its subscriptions)."""
    from moodump.pg.database import drop_database as drop

    with connect(settings, settings.database or "postgres", autocommit=True) as admin:
        drop(admin, settings, name)
