"""One point in time for every session of a dump: an exported snapshot.

The coordinator opens a REPEATABLE READ, READ ONLY transaction and locks every table to
dump in ACCESS SHARE mode *before* its first query: ``LOCK`` takes no snapshot, so the
snapshot (taken by ``pg_export_snapshot()``) is younger than the locks and no DDL can
come between them. Workers then import it with ``SET TRANSACTION SNAPSHOT``.
"""

from __future__ import annotations

import contextlib

import psycopg

from moodump.errors import SnapshotError
from moodump.pg.connection import Conn, quote_str


def export_snapshot(conn: Conn, relations: list[str], lock_timeout_s: int) -> str:
    """Begin the coordinator's transaction, lock ``relations`` (qualified, quoted names)
    and return the exported snapshot's id. The transaction stays open (the snapshot
    lives as long as it does)."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_s) * 1000}")
    if relations:
        try:
            conn.execute(f"LOCK TABLE {', '.join(relations)} IN ACCESS SHARE MODE")
        except psycopg.errors.UndefinedTable as exc:
            raise SnapshotError(
                f"a table was dropped while the dump started: {str(exc).strip()}",
                hint="run the dump again",
            ) from exc
        except psycopg.errors.LockNotAvailable as exc:
            raise SnapshotError(
                f"could not lock the tables within {lock_timeout_s} s (a schema change holds them)",
                hint="run the dump again once the schema change is finished",
            ) from exc
    row = conn.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


def join_snapshot(conn: Conn, snapshot: str) -> None:
    """Begin a worker's transaction on the exported ``snapshot``."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    conn.execute(f"SET TRANSACTION SNAPSHOT {quote_str(snapshot)}")


def end(conn: Conn) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.execute("ROLLBACK")
