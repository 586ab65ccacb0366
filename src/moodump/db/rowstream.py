"""The row-streaming hot loop shared by dump (rows -> file) and verify (rows -> digest).

Per row, Python does one ``fetch_row`` call, one ``None`` check and one list append;
everything else happens per batch of about a MiB (join, hash, compress), so the cost per
row stays far below the server's cost of producing it.

Three paths produce byte-identical text. With the optional C accelerator
(:mod:`moodump.db._speedups`) the server sends plain columns, as for ``SELECT *``, and C code
formats them:

- ``direct`` (the default): ``_speedups.Stream`` reads the rows with the client library
  inside the connector's C extension, on the connector's own session, and formats a whole
  batch with the GIL released: no Python object per row, and the workers' threads run in
  parallel. ``MOODUMP_DIRECT_FETCH=0`` turns it off.
- ``c-format``: when ``direct`` is unavailable (``_speedups.usable`` says why), C code
  calls the connector's ``fetch_row`` (a tuple of ``bytes`` per row) and formats the batch.
- ``server``: without the accelerator the server formats each row (below); set
  ``MOODUMP_SERVER_FORMAT=1`` to force this path.

On the server-formatting path a row comes back ``NULL`` only when the server could not
build it because it was longer than ``max_allowed_packet``. The stream then restarts on the *split* query, which fetches
long columns raw and escapes them in Python; the bytes produced are identical, so the
content digest does not depend on which path was taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import xxhash

from moodump.config import setting
from moodump.db.connection import Connection
from moodump.errors import IntegrityError, Interrupted
from moodump.formats import (
    Column,
    escape_mask,
    is_guarded,
    join_split_row,
    patch_long_values,
    plain_query,
    row_query,
)

_fetch_format: Callable[..., tuple[bytes, int, bool]] | None
_Stream: Any
_usable: Callable[[Any, int], str | None] | None
try:
    from moodump.db._speedups import Stream as _Stream
    from moodump.db._speedups import fetch_format as _fetch_format
    from moodump.db._speedups import usable as _usable
except ImportError:  # pragma: no cover - the C accelerator is optional
    _fetch_format = _Stream = _usable = None


def client_formatting() -> bool:
    """True when rows are formatted by the C accelerator (the fast paths)."""
    return _fetch_format is not None and not setting("MOODUMP_SERVER_FORMAT")


def fetch_path(conn: Connection) -> str:
    """Which path :func:`stream_rows` takes on ``conn``: direct, c-format or server."""
    if not client_formatting():
        return "server"
    return "c-format" if direct_unavailable(conn) else "direct"


def direct_unavailable(conn: Connection) -> str | None:
    """Why the direct path is not used on ``conn`` (None when it is)."""
    if not client_formatting():
        return "rows are formatted by the server (no C accelerator, or MOODUMP_SERVER_FORMAT=1)"
    if _usable is None:
        return "the C accelerator is older than this moodump"
    if not setting("MOODUMP_DIRECT_FETCH"):
        return "MOODUMP_DIRECT_FETCH=0"
    obj, tid = conn.c_session()
    return _usable(obj, tid)


BATCH_BYTES = 1 << 20

#: The digest of ordered row text written into new manifests. XXH3-128 runs at memory
#: speed; sha256 (the digest before 0.1.0) cost about 1 CPU-s per 2 GB of row text,
#: a tenth of a whole dump's client CPU. The digest detects rows that changed between
#: dump and restore; the files' own integrity is their sha256 in the manifest.
CONTENT_ALGO = "xxh3-128"


def content_hash(algo: str) -> Any:
    """A new hasher (``update``/``hexdigest``) for a content digest algorithm."""
    if algo == "xxh3-128":
        return xxhash.xxh3_128()
    if algo == "sha256":
        return hashlib.sha256()
    raise IntegrityError(
        f"unknown content digest algorithm {algo!r}",
        hint="the backup was written by a newer moodump; verify it with that version",
    )


def digest_algo(recorded: str) -> str:
    """The algorithm of a recorded ordered digest (``xxh3-128:...`` -> ``xxh3-128``).

    Order-free (``multiset:``) digests do not use it; they get the current default.
    """
    algo = recorded.split(":", 1)[0] if ":" in recorded else "sha256"
    return CONTENT_ALGO if algo == "multiset" else algo


class _Overflow(Exception):
    pass


@dataclass
class StreamResult:
    rows: int
    raw_bytes: int
    digest: str  # sha256 hex (ordered) or "multiset:<hex>"


def _multiset_add(acc: int, lines: list[bytes]) -> int:
    """Order-free digest for tables without a unique row order: sum of 64-bit hashes."""
    mask = (1 << 64) - 1
    for line in lines:
        acc = (acc + int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "little")) & mask
    return acc


def stream_rows(
    conn: Connection,
    database: str,
    table: str,
    columns: list[Column],
    *,
    where: str,
    order_by: list[str],
    sink: Callable[[bytes, int], None] | None,
    reset: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    history: bool = False,
    algo: str = CONTENT_ALGO,
) -> StreamResult:
    """Stream a table (or range) in the file format to ``sink(data, rows)``.

    ``reset`` is called before the stream restarts on the split query (the sink must
    then forget what it received). ``algo``: the ordered content digest's algorithm
    (verify passes the one a backup recorded). Errors from the server propagate as
    moodump errors.
    """
    path = fetch_path(conn)
    if path != "server":
        return _stream_client(
            conn,
            database,
            table,
            columns,
            where,
            order_by,
            sink,
            stop,
            history,
            algo,
            direct=path == "direct",
        )
    try:
        return _stream(
            conn,
            database,
            table,
            columns,
            where,
            order_by,
            sink,
            stop,
            split=False,
            history=history,
            algo=algo,
        )
    except _Overflow:
        if reset is not None:
            reset()
        return _stream(
            conn,
            database,
            table,
            columns,
            where,
            order_by,
            sink,
            stop,
            split=True,
            history=history,
            algo=algo,
        )


class _Batches:
    """What both paths do with each batch of row text: digest, hand on, count."""

    def __init__(
        self,
        ordered: bool,
        sink: Callable[[bytes, int], None] | None,
        stop: threading.Event | None,
        algo: str = CONTENT_ALGO,
    ) -> None:
        self.ordered = ordered
        self.sink = sink
        self.stop = stop
        self.algo = algo
        self.content = content_hash(algo)
        self.multiset = 0
        self.rows = 0
        self.raw = 0

    def add(self, data: bytes, rows: int, lines: list[bytes] | None = None) -> None:
        """``data`` is ``rows`` whole lines; ``lines`` the same rows unjoined, if at hand."""
        if self.ordered:
            self.content.update(data)
        else:
            self.multiset = _multiset_add(
                self.multiset, lines if lines is not None else data.split(b"\n")[:-1]
            )
        if self.sink is not None:
            self.sink(data, rows)
        self.rows += rows
        self.raw += len(data)
        if self.stop is not None and self.stop.is_set():
            raise Interrupted("cancelled", hint="run it again")

    def result(self) -> StreamResult:
        digest = (
            f"{self.algo}:{self.content.hexdigest()}"
            if self.ordered
            else f"multiset:{self.multiset:016x}"
        )
        return StreamResult(self.rows, self.raw, digest)


@contextlib.contextmanager
def _result(conn: Connection, sql: str, table: str) -> Iterator[Callable[[], Any]]:
    """Run ``sql`` unbuffered; yield its fetch_row; always consume the rest of the result."""
    fetch = conn.raw_fetcher(sql.encode("utf-8"))
    try:
        with conn.mapped(f"reading table {table}"):
            yield fetch
    except BaseException:
        with contextlib.suppress(Exception):
            conn.finish_result()
        raise
    conn.finish_result()


def _stream(
    conn: Connection,
    database: str,
    table: str,
    columns: list[Column],
    where: str,
    order_by: list[str],
    sink: Callable[[bytes, int], None] | None,
    stop: threading.Event | None,
    *,
    split: bool,
    history: bool,
    algo: str,
) -> StreamResult:
    sql = row_query(
        database, table, columns, where=where, order_by=order_by, split_long=split, history=history
    )
    out = _Batches(bool(order_by), sink, stop, algo)
    long_mask = tuple(c.is_long for c in columns)
    positions = tuple(i for i, c in enumerate(columns) if is_guarded(c))
    no_extras = (None,) * len(positions)
    buf: list[bytes] = []
    append = buf.append
    size = 0
    with _result(conn, sql, table) as fetch:
        while True:
            row = fetch()
            if row is None:
                break
            if split:
                v = join_split_row(row, long_mask)
            else:
                v = row[0]
                if v is None:
                    raise _Overflow()
                if positions and row[1:] != no_extras:
                    v = patch_long_values(v, row[1:], positions)
            append(v)
            size += len(v)
            if size >= BATCH_BYTES:
                out.add(b"\n".join(buf) + b"\n", len(buf), buf)
                buf.clear()
                size = 0
        if buf:
            out.add(b"\n".join(buf) + b"\n", len(buf), buf)
    return out.result()


def _stream_client(
    conn: Connection,
    database: str,
    table: str,
    columns: list[Column],
    where: str,
    order_by: list[str],
    sink: Callable[[bytes, int], None] | None,
    stop: threading.Event | None,
    history: bool,
    algo: str,
    *,
    direct: bool,
) -> StreamResult:
    """The two C-formatting paths: the server sends plain columns, C makes the batches."""
    sql = plain_query(database, table, columns, where=where, order_by=order_by, history=history)
    out = _Batches(bool(order_by), sink, stop, algo)
    batches = _direct_batches if direct else _connector_batches
    with batches(conn, sql, table, escape_mask(columns)) as next_batch:
        while True:
            data, n, done = next_batch(BATCH_BYTES)
            if n:
                out.add(data, n)
            if done:
                break
    return out.result()


_NextBatch = Callable[[int], tuple[bytes, int, bool]]


@contextlib.contextmanager
def _direct_batches(conn: Connection, sql: str, table: str, mask: bytes) -> Iterator[_NextBatch]:
    """Batches read by ``_speedups.Stream`` on the connector's own session."""
    obj, tid = conn.c_session()
    with conn.mapped(f"reading table {table}"):
        stream = _Stream(obj, tid, sql.encode("utf-8"), mask)
        try:
            yield stream.fetch
        finally:
            # On an early exit this reads and drops the rest of the result, as the
            # connector's free_result does, so the session is usable afterwards.
            stream.close()


@contextlib.contextmanager
def _connector_batches(conn: Connection, sql: str, table: str, mask: bytes) -> Iterator[_NextBatch]:
    """Batches formatted in C from the connector's ``fetch_row`` tuples."""
    assert _fetch_format is not None
    fetch_format = _fetch_format
    with _result(conn, sql, table) as fetch:
        yield lambda max_bytes: fetch_format(fetch, mask, max_bytes)
