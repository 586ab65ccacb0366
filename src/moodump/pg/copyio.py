"""Rows in and out with ``COPY``: the dump's query, streaming with row counts and content
digests, and loading a file back.

The data files hold ``COPY … TO STDOUT`` text (one row a line; tabs, newlines and
backslashes escaped), which is also what ``COPY FROM`` reads. The content digest is the
same as MySQL's (docs/format.md): XXH3-128 of the uncompressed text in the order read for a
table with a primary key, read ``ORDER BY`` the key (``COLLATE "C"`` on text columns, so
the order does not depend on the server's locale); an order-free sum of per-row hashes
(``multiset:``) for a table without one. A verification reads the restored table with the
same query and must find the same digest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import psycopg

from moodump.db.rowstream import CONTENT_ALGO, _multiset_add, content_hash
from moodump.errors import Interrupted, ServerError
from moodump.pg.catalog import PgTable
from moodump.pg.connection import SESSION_SETTINGS, qualified, quote_ident, quote_str, sql_bytes
from moodump.pg.tools import ToolProcess, dbname_arg, spawn

_BATCH = 1 << 20


@dataclass
class CopyResult:
    rows: int
    raw_bytes: int
    digest: str


def copy_query(t: PgTable, where: str = "") -> str:
    """The ``COPY … TO STDOUT`` of a table (or a range of it) in its digest's order."""
    cols = ", ".join(quote_ident(c) for c in t.columns)
    rel = qualified(t.schema, t.name)
    if not t.primary_key and not where:
        # no column list for a table without columns to copy (none, or only generated
        # ones): one empty line a row, which COPY FROM reads back
        return f"COPY {rel} ({cols}) TO STDOUT" if cols else f"COPY {rel} TO STDOUT"
    sql = f"SELECT {cols} FROM ONLY {rel}"
    if where:
        sql += f" WHERE {where}"
    if t.primary_key:
        keys = [
            quote_ident(k) + (' COLLATE "C"' if coll else "")
            for k, coll in zip(t.primary_key, t.pk_collatable, strict=False)
        ]
        sql += " ORDER BY " + ", ".join(keys)
    return f"COPY ({sql}) TO STDOUT"


class _Digest:
    """Row count, text size and content digest of a COPY text stream fed in blocks
    (a block may end anywhere; rows end with a newline)."""

    def __init__(self, ordered: bool, algo: str, sink: Callable[[bytes, int], None] | None,
                 stop: threading.Event | None) -> None:  # fmt: skip
        self.ordered, self.algo, self.sink, self.stop = ordered, algo, sink, stop
        self.h = content_hash(algo)
        self.acc = self.rows = self.size = 0
        self.rest = b""

    def feed(self, data: bytes) -> None:
        n = data.count(b"\n")
        if self.ordered:
            self.h.update(data)
        else:
            lines = (self.rest + data).split(b"\n")
            self.rest = lines.pop()
            self.acc = _multiset_add(self.acc, lines)
        self.rows += n
        self.size += len(data)
        if self.sink is not None:
            self.sink(data, n)
        if self.stop is not None and self.stop.is_set():
            raise Interrupted("interrupted", hint="run it again")

    def result(self) -> CopyResult:
        if self.ordered:
            return CopyResult(self.rows, self.size, f"{self.algo}:{self.h.hexdigest()}")
        return CopyResult(self.rows, self.size, f"multiset:{self.acc:016x}")


def copy_out(
    conn: psycopg.Connection[Any],
    query: str,
    sink: Callable[[bytes, int], None] | None,
    *,
    ordered: bool,
    stop: threading.Event | None = None,
    algo: str = CONTENT_ALGO,
) -> CopyResult:
    """Run ``query`` (a COPY TO STDOUT) and hand its text to ``sink(data, rows)`` in
    blocks of about 1 MiB; return the row count, text size and content digest."""
    d = _Digest(ordered, algo, sink, stop)
    buf = bytearray()
    with conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            buf += block
            if len(buf) >= _BATCH:
                d.feed(bytes(buf))
                buf.clear()
        if buf:
            d.feed(bytes(buf))
    return d.result()


def copy_out_psql(
    psql: Path,
    env: dict[str, str],
    database: str,
    snapshot: str,
    query: str,
    sink: Callable[[bytes, int], None] | None,
    *,
    ordered: bool,
    stop: threading.Event | None = None,
    on_start: Callable[[ToolProcess], None] | None = None,
) -> CopyResult:
    """The same as :func:`copy_out`, through a ``psql`` process that imports the exported
    ``snapshot``: psycopg hands COPY data over one row at a time, which costs about
    2 µs a row in Python; psql writes it to a pipe read here in 1 MiB blocks, about twice
    as fast for big tables. Used for big files only (a process start costs ~20 ms)."""
    argv: list[str | bytes] = [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password",
                               "-d", dbname_arg(database)]  # fmt: skip
    for name, value in SESSION_SETTINGS:
        argv += ["-c", f"SET {quote_ident(name)} TO {quote_str(value)}"]
    argv += ["-c", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
             "-c", f"SET TRANSACTION SNAPSHOT {quote_str(snapshot)}",
             # in the session's client_encoding (the database's): names that are not ASCII
             "-c", sql_bytes(query, env.get("PGCLIENTENCODING", ""))]  # fmt: skip
    d = _Digest(ordered, CONTENT_ALGO, sink, stop)
    proc = spawn(argv, env)
    if on_start is not None:
        on_start(proc)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while True:
            block = proc.stdout.read1(_BATCH)  # type: ignore[attr-defined]
            if not block:
                break
            d.feed(block)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    err = proc.stderr.read().decode("utf-8", "replace").strip()
    if proc.wait() != 0:
        raise ServerError(f"psql COPY failed: {err[-2000:]}", hint="see the server's message; run again")
    return d.result()


def copy_in(conn: psycopg.Connection[Any], t_schema: str, t_name: str, columns: list[str],
            reader: BinaryIO, stop: threading.Event | None = None, *, via: str = "") -> int:
    """``COPY … FROM STDIN`` of a file's text (into ``via``, a quoted partition root,
    when given: the rows find their partitions); returns the bytes sent."""
    cols = ", ".join(quote_ident(c) for c in columns)
    rel = via or qualified(t_schema, t_name)
    sent = 0
    sql = f"COPY {rel} ({cols}) FROM STDIN" if cols else f"COPY {rel} FROM STDIN"
    with conn.cursor() as cur, cur.copy(sql) as copy:
        while True:
            block = reader.read(_BATCH)
            if not block:
                break
            copy.write(block)
            sent += len(block)
            if stop is not None and stop.is_set():
                raise Interrupted("interrupted", hint="run it again")
    return sent
