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
from typing import Any, BinaryIO

import psycopg

from moodump.db.rowstream import CONTENT_ALGO, _multiset_add, content_hash
from moodump.errors import Interrupted
from moodump.pg.catalog import PgTable
from moodump.pg.connection import qualified, quote_ident

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
        return f"COPY {rel} ({cols}) TO STDOUT"
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
    h = content_hash(algo)
    acc = 0
    rows = 0
    size = 0
    buf = bytearray()

    def flush() -> None:
        nonlocal acc, rows, size
        data = bytes(buf)
        buf.clear()
        n = data.count(b"\n")
        if ordered:
            h.update(data)
        else:
            lines = data.split(b"\n")
            lines.pop()
            acc = _multiset_add(acc, lines)
        rows += n
        size += len(data)
        if sink is not None:
            sink(data, n)
        if stop is not None and stop.is_set():
            raise Interrupted("interrupted", hint="run it again")

    with conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            buf += block
            if len(buf) >= _BATCH:
                flush()
        if buf:
            flush()
    digest = f"{algo}:{h.hexdigest()}" if ordered else f"multiset:{acc:016x}"
    return CopyResult(rows, size, digest)


def copy_in(conn: psycopg.Connection[Any], t_schema: str, t_name: str, columns: list[str],
            reader: BinaryIO, stop: threading.Event | None = None) -> int:
    """``COPY … FROM STDIN`` of a file's text; returns the bytes sent."""
    cols = ", ".join(quote_ident(c) for c in columns)
    sent = 0
    with conn.cursor() as cur, cur.copy(f"COPY {qualified(t_schema, t_name)} ({cols}) FROM STDIN") as copy:
        while True:
            block = reader.read(_BATCH)
            if not block:
                break
            copy.write(block)
            sent += len(block)
            if stop is not None and stop.is_set():
                raise Interrupted("interrupted", hint="run it again")
    return sent
