"""Loading a backup's data files: LOAD DATA LOCAL INFILE through a FIFO, or INSERTs
when the server refuses it, each file in its own transaction, retried on deadlocks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from moodump.compression import iter_uncompressed
from moodump.db.connection import Connection, ConnSettings, quote_ident, quote_str
from moodump.db.workers import run_pool
from moodump.ddl import SplitTable
from moodump.errors import (
    IntegrityError,
    Interrupted,
    MoodumpError,
    ServerError,
    SnapshotError,
)
from moodump.formats import (
    RESTORE_MAX_HEAP_TABLE_SIZE,
    SESSION_SQL_MODE,
    index_typed_columns,
    sql_literal,
    unescape_field,
)
from moodump.manifest import Chunk, FileEntry, Manifest, TableEntry
from moodump.progress import Progress
from moodump.restore.model import RESUME_HINT, RestoreOptions
from moodump.source import BackupSource

#: Bytes of a statement kept free below max_allowed_packet (the protocol's own header).
_PACKET_SLACK = 1024

log = logging.getLogger("moodump.restore")


def _setup_load_session(conn: Connection) -> None:
    for stmt in (
        "SET NAMES utf8mb4",
        "SET time_zone = '+00:00'",
        f"SET sql_mode = '{SESSION_SQL_MODE}'",
        "SET foreign_key_checks = 0",
        "SET unique_checks = 0",
        # Fewer gap locks between parallel loads (each file is its own transaction).
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET SESSION net_read_timeout = 3600",
        "SET SESSION net_write_timeout = 3600",
    ):
        conn.execute(stmt)
    # History rows of system-versioned tables are loaded with their own period values.
    with contextlib.suppress(MoodumpError):
        conn.execute("SET SESSION system_versioning_insert_history = 1")
    # A TIMESTAMP column printed without a DEFAULT stays so: with the server default of
    # MariaDB < 10.10 and MySQL 5.7 (OFF), the first such NOT NULL column would become
    # DEFAULT current_timestamp() ON UPDATE current_timestamp().
    with contextlib.suppress(MoodumpError):
        conn.execute("SET SESSION explicit_defaults_for_timestamp = 1")
    # Rows are restored as they were, even those that violate a CHECK constraint added
    # later with check_constraint_checks=0 (MariaDB only; MySQL has no such switch).
    with contextlib.suppress(MoodumpError):
        conn.execute("SET SESSION check_constraint_checks = 0")
    # Tables InnoDB accepted with innodb_strict_mode=0 (e.g. ROW_FORMAT=DYNAMIC with a
    # KEY_BLOCK_SIZE, ROW_FORMAT=FIXED) keep those options in SHOW CREATE TABLE; in strict
    # mode (the default) the same CREATE fails with "Wrong create options".
    with contextlib.suppress(MoodumpError):
        conn.execute("SET SESSION innodb_strict_mode = 0")
    # A MEMORY table holds at most the session's max_heap_table_size of its creator (not
    # in SHOW CREATE TABLE): one filled past the default 16 MiB would be "full" on load.
    conn.execute(f"SET SESSION max_heap_table_size = {RESTORE_MAX_HEAP_TABLE_SIZE}")
    # Not logging the restore to the binary log needs a privilege most accounts lack.
    with contextlib.suppress(MoodumpError):
        conn.execute("SET SESSION sql_log_bin = 0")


class _SwitchToInsert(Exception):
    """LOAD DATA LOCAL was refused; load this file with INSERTs instead."""


# 1148: not allowed with this version; 3948/2068: local infile disabled (MySQL 8 / client)
_LOCAL_INFILE_ERRNOS = ("(error 1148)", "(error 3948)", "(error 2068)", "(error 4166)")


def _local_infile_refused(exc: MoodumpError) -> bool:
    return any(code in exc.message for code in _LOCAL_INFILE_ERRNOS)


class _Fed:
    """What of one data file was sent to the server, counted into the progress tracker.

    Rows are prorated by bytes (the manifest has both for each file) rather than counted
    in the data: no extra pass over every byte for a progress figure. The count is exact
    when the whole file was sent, and taken back when its load fails.
    """

    def __init__(self, tracker: Progress, chunk: Chunk) -> None:
        self.tracker = tracker
        self.rows_total = chunk.rows
        self.raw_bytes = chunk.raw_bytes
        self.rows = 0
        self.bytes = 0

    def add(self, nbytes: int) -> None:
        self.bytes += nbytes
        if self.bytes >= self.raw_bytes:
            rows = self.rows_total
        else:
            rows = self.rows_total * self.bytes // self.raw_bytes
        self.tracker.add(rows - self.rows, nbytes)
        self.rows = rows

    def undo(self) -> None:
        self.tracker.add(-self.rows, -self.bytes)
        self.rows = self.bytes = 0


def _unblock_fifo(fifo: Path) -> None:
    """If LOAD DATA failed before opening the FIFO, the feeder blocks in open(); release it."""
    with contextlib.suppress(OSError):
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)


def _eof_to_reader(fifo: Path) -> None:
    """Give a client blocked opening (or reading) ``fifo`` an end of file, when no feeder
    holds its write end: open it for writing and close it at once (ENXIO when nobody
    reads: nothing to release)."""
    with contextlib.suppress(OSError):
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)


def _release_fifos(
    fifo_dir: Path,
    done: threading.Event,
    limit_s: float = 120.0,
    *,
    escalate: Callable[[], None] | None = None,
    grace_s: float = 5.0,
) -> None:
    """After a failure or an interrupt, until the workers are done: release every party
    still waiting on a FIFO, and after ``grace_s`` close the connections still busy.

    A killed ``LOAD DATA LOCAL`` still waits for the client to send the file, and the
    client may open its FIFO only *after* the feeder was released and gave up: it would
    then wait for a writer forever, and the restore with it (seen with a full server).
    Each pass gives such a reader an end of file, and a feeder blocked in ``open`` a
    reader; a feeder that is writing keeps the FIFO open, so it is not disturbed.

    MariaDB can also leave a killed LOAD DATA LOCAL for ever in "Killed / Reading file"
    while the client, its file sent, waits for the answer (reproduced about one run in
    twelve with a full tablespace and two loads: the client held no FIFO, the server
    thread waited on the network past ``net_read_timeout``). ``escalate`` (``KILL
    CONNECTION`` of the restore's connections) then ends that wait from the server's
    side; the blocked worker gets a lost connection, and the restore reports the first
    error, the one that stopped it. Its uncommitted file rolls back as any other.
    """
    start = time.monotonic()
    deadline = start + limit_s
    escalated = escalate is None
    while not done.is_set() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for p in list(fifo_dir.iterdir()):
                _unblock_fifo(p)
                _eof_to_reader(p)
        if not escalated and time.monotonic() - start >= grace_s:
            escalated = True
            assert escalate is not None
            escalate()
        done.wait(0.1)


class DataLoader:
    """The data phase of a restore: every data file loaded in parallel, resumably.

    A mixin of the restore engine (:class:`moodump.restore.engine.Restore`), kept in its
    own module; the attributes and the four methods below are the engine's.
    """

    src: BackupSource
    m: Manifest
    files: dict[str, FileEntry]
    settings: ConnSettings
    opts: RestoreOptions
    stop: threading.Event
    lock: threading.Lock
    rows_done: int
    files_done: int
    files_total: int
    rows_total: int
    warnings: list[str]
    tables: list[TableEntry]
    load_db: str
    manifest_id: str
    progress_table: str
    deferred: dict[str, SplitTable]
    insert_mode: bool
    tracker: Progress
    _chunks_left: dict[str, int]

    def _connect(self, settings: ConnSettings, *, local_infile: bool = False) -> Connection:
        raise NotImplementedError

    def _open_data(self, name: str) -> BinaryIO:
        """The stored bytes of a data file. Unless every file was checked before the
        restore began, the stream checks its size and sha256 as it ends, so a damaged
        file fails its own transaction instead of committing."""
        entry = self.files.get(name)
        if entry is None or (self.src.local_dir is not None and self.opts.check_files):
            return self.src.open(name)
        return self.src.open_checked(entry)

    def kill_all(self) -> None:
        raise NotImplementedError

    def kill_connections(self) -> None:
        raise NotImplementedError

    def _emit(self, phase: str, table: str = "", file: str = "") -> None:
        raise NotImplementedError

    def _build_indexes(self, conn: Connection, table: str) -> None:
        raise NotImplementedError

    def _load_data(self, done: set[str]) -> int:
        tasks: list[tuple[TableEntry, Chunk]] = []
        skipped = 0
        for t in self.tables:
            for c in t.chunks:
                if c.file in done:
                    skipped += 1
                    continue
                tasks.append((t, c))
        self.files_total = len(tasks)
        self.rows_total = sum(c.rows for _, c in tasks)
        for t, _ in tasks:
            self._chunks_left[t.name] = self._chunks_left.get(t.name, 0) + 1
        pending_indexes = [
            name
            for name in self.deferred
            if name not in self._chunks_left and f"index:{name}" not in done
        ]
        if pending_indexes:  # resumed after the data of these tables was complete
            with self._connect(self.settings.with_database(self.load_db)) as conn:
                _setup_load_session(conn)
                for name in pending_indexes:
                    self._build_indexes(conn, name)
        self.tracker.phase(
            "data",
            rows_total=self.rows_total,
            bytes_total=sum(c.raw_bytes for _, c in tasks),
            tables_total=len(self._chunks_left),
        )
        sizes = {f.name: f.bytes for f in self.m.files}
        tasks.sort(key=lambda tc: -sizes.get(tc[1].file, 0))
        if not tasks:
            return skipped
        qlock = threading.Condition()
        # Non-transactional tables (Aria, MyISAM, ...) take one file at a time: two LOAD
        # DATA into one empty Aria table with a FULLTEXT index at once left it corrupt
        # ("Found 4 keys of 7", error 1034 on COUNT(*)).
        busy: set[str] = set()

        def next_task() -> tuple[TableEntry, Chunk] | None:
            with qlock:
                while tasks and not self.stop.is_set():
                    for i, (t, c) in enumerate(tasks):
                        if t.transactional or t.name not in busy:
                            del tasks[i]
                            if not t.transactional:
                                busy.add(t.name)
                            return t, c
                    qlock.wait(0.5)
                return None

        def task_done(t: TableEntry) -> None:
            with qlock:
                busy.discard(t.name)
                qlock.notify_all()

        fifo_dir = Path(tempfile.mkdtemp(prefix="moodump-fifo-"))

        def worker(n: int) -> Callable[[], None]:
            def work() -> None:
                conn = self._connect(self.settings.with_database(self.load_db), local_infile=True)
                try:
                    _setup_load_session(conn)
                    while not self.stop.is_set():
                        task = next_task()
                        if task is None:
                            return
                        t, c = task
                        self.tracker.working(t.name)
                        try:
                            self._load_chunk_retrying(conn, t, c, fifo_dir / f"w{n}")
                        finally:
                            task_done(t)
                finally:
                    self.tracker.working("")
                    conn.close()

            return work

        pool_over = threading.Event()

        def kill_loads() -> None:
            self.kill_all()
            threading.Thread(
                target=_release_fifos, args=(fifo_dir, pool_over), name="moodump-fifo-release",
                kwargs={"escalate": self.kill_connections}, daemon=True,
            ).start()  # fmt: skip

        try:
            pool = run_pool(
                [worker(i) for i in range(min(self.opts.threads, len(tasks)))],
                self.stop,
                kill_loads,
                name="moodump-load",
            )
        finally:
            pool_over.set()
            for p in fifo_dir.iterdir():
                with contextlib.suppress(OSError):
                    p.unlink()
            with contextlib.suppress(OSError):
                fifo_dir.rmdir()
        if pool.interrupted:
            raise Interrupted(
                "restore interrupted", hint="continue it with: moodump restore --resume ..."
            )
        if pool.errors:
            real = [e for e in pool.errors if not isinstance(e, Interrupted)]
            first = (real or pool.errors)[0]
            if isinstance(first, MoodumpError) and not self.opts.atomic:
                first.hint = (first.hint or "") + RESUME_HINT
            raise first
        if self.stop.is_set():
            raise Interrupted("restore cancelled", hint="continue it with --resume")
        return skipped

    def _load_chunk_retrying(
        self, conn: Connection, t: TableEntry, c: Chunk, fifo: Path, attempts: int = 5
    ) -> None:
        """Load one file; retry when InnoDB picks its transaction as a deadlock victim.

        Parallel loads that commit their progress rows at the same time can deadlock on
        gap locks (error 1213) or time out (1205). The file's transaction was rolled back
        whole, so loading it again is exact.
        """
        for attempt in range(1, attempts + 1):
            try:
                self._load_chunk(conn, t, c, fifo)
                return
            except (ServerError, SnapshotError) as exc:
                transient = "(error 1213)" in exc.message or "(error 1205)" in exc.message
                if not transient or attempt == attempts or self.stop.is_set():
                    raise
                log.info("%s: %s; loading it again (attempt %d)", c.file, exc.message, attempt + 1)
                time.sleep(0.2 * attempt)

    def _load_chunk(self, conn: Connection, t: TableEntry, c: Chunk, fifo: Path) -> None:
        qt = quote_ident(t.name)
        if not t.transactional and self.opts.resume:
            # A half-loaded chunk of a non-transactional table is not rolled back (by
            # LOAD DATA or by the INSERTs alike).
            conn.execute(f"DELETE FROM {qt}" + (f" WHERE {c.where}" if c.where else ""))
        if self.insert_mode:
            self._insert_chunk(conn, t, c)
            return
        if not fifo.exists():
            os.mkfifo(fifo, 0o600)
        feeder_error: list[BaseException] = []
        fed = _Fed(self.tracker, c)

        def feed() -> None:
            try:
                with open(fifo, "wb") as out:
                    for block in iter_uncompressed(
                        self._open_data(c.file), name=c.file, codec=self.m.codec
                    ):
                        out.write(block)
                        fed.add(len(block))
            except BrokenPipeError:
                pass
            except BaseException as exc:
                feeder_error.append(exc)

        th = threading.Thread(target=feed, daemon=True)
        th.start()
        sql = (
            f"LOAD DATA LOCAL INFILE {quote_str(str(fifo))} INTO TABLE {qt} CHARACTER SET binary "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            + t.load_clause
        )
        try:
            conn.execute("START TRANSACTION")
            try:
                conn.execute(sql)
            except MoodumpError as exc:
                if not _local_infile_refused(exc):
                    raise
                with self.lock:
                    if not self.insert_mode:
                        self.insert_mode = True
                        self.warnings.append(
                            "the server refuses LOAD DATA LOCAL INFILE (local_infile=OFF): "
                            "restored with INSERT statements instead (slower); "
                            "SET GLOBAL local_infile=ON makes restores faster"
                        )
                raise _SwitchToInsert() from exc
            loaded = conn.affected_rows()
            conn.execute(
                f"INSERT INTO {quote_ident(self.progress_table)} (file, rows_loaded, backup) VALUES "
                f"({quote_str(c.file)}, {int(loaded)}, {quote_str(self.manifest_id)})"
            )
            th.join()  # the server saw the end of the FIFO: the feeder is done, or failing
            if feeder_error:
                raise feeder_error[0]
            if loaded != c.rows:
                raise IntegrityError(
                    f"{c.file}: loaded {loaded} rows, the manifest says {c.rows}",
                    hint="the data file does not match its table; use another backup",
                )
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            _unblock_fifo(fifo)
            th.join(10)
            fed.undo()
            if isinstance(exc, _SwitchToInsert):
                self._insert_chunk(conn, t, c)
                return
            if feeder_error and isinstance(feeder_error[0], MoodumpError):
                raise feeder_error[0] from None
            raise
        th.join()
        self._chunk_done(conn, t, c)

    def _chunk_done(self, conn: Connection, t: TableEntry, c: Chunk) -> None:
        warn = conn.warning_count()
        with self.lock:
            self.rows_done += c.rows
            self.files_done += 1
            if warn:
                self.warnings.append(f"{c.file}: {warn} warning(s) while loading")
            self._chunks_left[t.name] -= 1
            last = self._chunks_left[t.name] == 0
        if last:
            self.tracker.table_done()
        self._emit("data", t.name, c.file)
        if last and t.name in self.deferred:
            self._build_indexes(conn, t.name)

    def _insert_chunk(self, conn: Connection, t: TableEntry, c: Chunk) -> None:
        """Load one data file with multi-row INSERTs (when LOAD DATA LOCAL is refused).

        Same transaction discipline as LOAD DATA: the rows and the progress record commit
        together, so resume works the same way.
        """
        types = t.column_types or [""] * len(t.columns)
        index_typed = index_typed_columns(t.load_clause, len(t.columns))
        head = (
            f"INSERT INTO {quote_ident(t.name)} ("
            + ", ".join(quote_ident(n) for n in t.columns)
            + ") VALUES "
        ).encode("utf-8")
        loaded = 0
        batch: list[bytes] = []
        size = 0
        rest = b""
        fed = _Fed(self.tracker, c)
        # Every statement must fit in the server's max_allowed_packet (16 MiB by default,
        # as little as 1 MiB on some servers): batches stay below it, with room to spare.
        packet = int(conn.scalar("SELECT @@max_allowed_packet") or 0) or 16 << 20
        limit = max(1, min(1 << 20, packet - len(head) - _PACKET_SLACK))
        conn.execute("START TRANSACTION")
        try:
            for block in iter_uncompressed(
                self._open_data(c.file), name=c.file, codec=self.m.codec
            ):
                fed.add(len(block))
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    fields = line.split(b"\t") if t.columns else []
                    if len(fields) != len(t.columns):
                        raise IntegrityError(
                            f"{c.file}: a row has {len(fields)} fields, expected {len(t.columns)}",
                            hint="the data file is damaged; use another backup",
                        )
                    values = [unescape_field(f) for f in fields]
                    lits = [
                        sql_literal(v, ty, index_typed=ix)
                        for v, ty, ix in zip(values, types, index_typed, strict=True)
                    ]
                    row = b"(" + b",".join(lits) + b")"
                    loaded += 1
                    if batch and size + len(row) > limit:
                        conn.execute(head + b",".join(batch))
                        batch.clear()
                        size = 0
                    if len(head) + len(row) + _PACKET_SLACK > packet:
                        self._insert_long_row(conn, t, c, head, values, lits, types, packet)
                        continue
                    batch.append(row)
                    size += len(row) + 1
            if rest:
                raise IntegrityError(f"{c.file} ends inside a row", hint="the file is truncated")
            if batch:
                conn.execute(head + b",".join(batch))
            if loaded != c.rows:
                raise IntegrityError(
                    f"{c.file}: loaded {loaded} rows, the manifest says {c.rows}",
                    hint="the data file does not match its table; use another backup",
                )
            conn.execute(
                f"INSERT INTO {quote_ident(self.progress_table)} (file, rows_loaded, backup) VALUES "
                f"({quote_str(c.file)}, {loaded}, {quote_str(self.manifest_id)})"
            )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            fed.undo()
            raise
        self._chunk_done(conn, t, c)

    def _insert_long_row(
        self,
        conn: Connection,
        t: TableEntry,
        c: Chunk,
        head: bytes,
        values: list[bytes | None],
        lits: list[bytes],
        types: list[str],
        packet: int,
    ) -> None:
        """Insert one row too long for one statement: its longest values are built in
        user variables, a piece per statement, and the INSERT names the variables.

        A value longer than max_allowed_packet itself cannot be built (the server's
        CONCAT() gives NULL): refused, never loaded changed.
        """
        piece = max(1, (packet - _PACKET_SLACK) // 4)  # an escaped byte takes 2 at most
        parts = list(lits)
        total = len(head) + sum(len(x) + 1 for x in lits) + 2
        names: list[bytes] = []
        for i in sorted(range(len(lits)), key=lambda i: -len(lits[i])):
            if total + _PACKET_SLACK <= packet:
                break
            value = values[i]
            if value is None:
                break
            if len(value) > packet:
                raise ServerError(
                    f"{c.file}: a value of table {t.name!r}, column {t.columns[i]!r}, is "
                    f"{len(value)} bytes, more than the target server's max_allowed_packet "
                    f"({packet}): INSERT statements cannot load it",
                    hint="SET GLOBAL local_infile = ON on the target server (LOAD DATA has no "
                    "such limit), or SET GLOBAL max_allowed_packet = "
                    f"{-(-len(value) // (1 << 20))} * 1024 * 1024 (up to 1024 MB), then "
                    "restore again",
                )
            var = f"@_moodump_v{i}".encode()
            names.append(var)
            conn.execute(b"SET " + var + b" = _binary''")
            for k in range(0, len(value), piece):
                chunk = sql_literal(value[k : k + piece], "", index_typed=False)
                conn.execute(b"SET " + var + b" = CONCAT(" + var + b", " + chunk + b")")
            got = conn.scalar(f"SELECT LENGTH({var.decode()})")
            if got is None or int(got) != len(value):
                raise ServerError(
                    f"{c.file}: the server built {got!r} bytes of a {len(value)}-byte value "
                    f"of table {t.name!r}, column {t.columns[i]!r}",
                    hint="SET GLOBAL local_infile = ON on the target server, then restore again",
                )
            parts[i] = b"CONVERT(" + var + b" USING utf8mb4)" if types[i] == "json" else var
            total -= len(lits[i]) - len(parts[i])
        conn.execute(head + b"(" + b",".join(parts) + b")")
        for var in names:
            conn.execute(b"SET " + var + b" = NULL")
