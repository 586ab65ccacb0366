"""Verify by restore, the comparison: read a restored scratch database back.

:class:`ReadBack` streams every restored table again, file by file, with the same query
the dump used, and compares each file's row count and content digest with the values the
dump recorded inside its snapshot, while the restore is still loading other files.
:func:`sequence_problems` compares the sequences' state with the dump's, and
:func:`object_problems` compares the counts of the other schema objects (views,
triggers, routines, events) with the backup's definitions file.

The restore itself, the Moodle checks, the scratch database's life and the report are
:mod:`moodump.verify`'s.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from moodump.db.connection import Connection, ConnSettings, connect, quote_str
from moodump.db.introspect import list_tables, sequence_state, server_info
from moodump.db.rowstream import digest_algo, stream_rows
from moodump.db.snapshot import setup_read_session
from moodump.errors import Interrupted, NotFoundError, ServerError
from moodump.formats import Column
from moodump.manifest import Manifest, parse_object_records
from moodump.progress import Progress
from moodump.source import BackupSource


class ReadBack:
    """Reads restored tables back and compares them with the dump's digests.

    The unit of work is one data file: its rows are a key range of the table, and the
    dump recorded their count and digest. Each file's range is read back as soon as the
    restore has committed that file, while other files still load and while the table's
    deferred indexes are built (an index build does not change rows; the two only wait
    for each other's metadata lock for a moment), so the read-back hides behind the
    restore instead of following it, and the threads share a big table. Tables without
    data files are checked after the restore. Each thread has its own connection;
    problems are kept per file and reported in manifest order.
    """

    def __init__(
        self,
        settings: ConnSettings,
        database: str,
        m: Manifest,
        threads: int,
        stop: threading.Event,
        progress: Callable[[str], None] | None,
        tracker: Progress,
    ) -> None:
        self.settings = settings
        self.database = database
        self.m = m
        self.entries = {t.name: t for t in m.tables}
        self.stop = stop
        self.progress = progress
        # (table, index of the chunk in the manifest; -1: a table without data files)
        self.queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self.queued: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        self.problems: dict[tuple[str, int], list[str]] = {}
        self.tables = 0
        self.rows = 0
        self.bytes = 0
        # Counts go to the tracker once the restore is over (see follow()); until then
        # the tracker counts the restore, and the readers only say what they read.
        self.tracker = tracker
        self._counting = False
        self.errors: list[BaseException] = []
        self._left: dict[str, int] = {}
        self._columns: dict[str, list[Column]] | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"moodump-readback-{i}", daemon=True)
            for i in range(max(1, threads))
        ]

    def start(self) -> None:
        for th in self._threads:
            th.start()

    def put(self, table: str, file: str = "") -> None:
        """Queue one file of ``table`` (loaded), or with no file, all not queued yet."""
        entry = self.entries.get(table)
        if entry is None:
            return
        with self.lock:
            if table not in self._left:
                self._left[table] = max(1, len(entry.chunks))
            todo = [
                i
                for i, c in enumerate(entry.chunks)
                if (not file or c.file == file) and (table, i) not in self.queued
            ]
            if not entry.chunks and (table, -1) not in self.queued:
                todo = [-1]
            self.queued.update((table, i) for i in todo)
        for i in todo:
            self.queue.put((table, i))

    def follow(self) -> None:
        """The restore is over: the tracker's phase is now ``compare``, counting reads."""
        with self.lock:
            self.tracker.phase(
                "compare",
                rows_total=sum(t.rows for t in self.m.tables),
                bytes_total=sum(c.raw_bytes for t in self.m.tables for c in t.chunks),
                tables_total=len(self.m.tables),
                rows_done=self.rows,
                bytes_done=self.bytes,
                tables_done=self.tables,
            )
            self._counting = True

    def table_problems(self, table: str) -> list[str]:
        found = sorted((k, v) for k, v in self.problems.items() if k[0] == table)
        return [p for _, ps in found for p in ps]

    def finish(self) -> None:
        """Queue the tables not read yet and wait until every table is read."""
        for entry in self.m.tables:
            self.put(entry.name)
        for _ in self._threads:
            self.queue.put(None)
        for th in self._threads:
            while th.is_alive():
                th.join(0.1)

    def close(self) -> None:
        """Stop the readers (after an error or Ctrl-C) and wait for them."""
        self.stop.set()
        for _ in self._threads:
            self.queue.put(None)
        for th in self._threads:
            if th.ident is not None:
                th.join(30)

    def raise_error(self) -> None:
        if self.errors:
            real = [e for e in self.errors if not isinstance(e, Interrupted)]
            raise (real or self.errors)[0]

    def _work(self) -> None:
        try:
            with connect(self.settings) as conn:
                setup_read_session(conn, server_info(conn), binary_results=True)
                while not self.stop.is_set():
                    item = self.queue.get()
                    if item is None:
                        return
                    self._check(conn, *item)
        except BaseException as exc:
            with self.lock:
                self.errors.append(exc)
            self.stop.set()

    def _table_columns(self, conn: Connection) -> dict[str, list[Column]]:
        # Every table exists (empty) before the first one is loaded, and loading does
        # not change columns: one look at information_schema serves the whole run.
        with self.lock:
            if self._columns is None:
                tables, _ = list_tables(conn, self.database)
                self._columns = {t.name: t.data_columns for t in tables}
            return self._columns

    def _check(self, conn: Connection, name: str, index: int) -> None:
        entry = self.entries[name]
        problems: list[str] = []
        rows = nbytes = 0
        if self.progress and index <= 0:
            with self.lock:
                self.progress(name)
        self.tracker.working(f"read back {name}")
        have = self._table_columns(conn).get(name)
        if have is None:
            if index <= 0:
                problems.append(f"table {name} is missing after the restore")
        else:
            cols = {c.name: c for c in have}
            missing = [n for n in entry.columns if n not in cols]
            if missing:
                if index <= 0:
                    problems.append(f"table {name}: column {missing[0]!r} missing after restore")
            elif index >= 0:
                c = entry.chunks[index]
                res = stream_rows(
                    conn,
                    self.database,
                    name,
                    [cols[n] for n in entry.columns],
                    where=c.where,
                    order_by=entry.order_by,
                    sink=None,
                    stop=self.stop,
                    history=entry.versioned,
                    algo=digest_algo(c.content_digest),
                )
                rows, nbytes = res.rows, res.raw_bytes
                if res.rows != c.rows:
                    problems.append(
                        f"table {name} ({c.file}): {res.rows} rows restored, {c.rows} dumped"
                    )
                elif res.digest != c.content_digest:
                    problems.append(
                        f"table {name} ({c.file}): restored rows differ from the dump "
                        "(content digest mismatch)"
                    )
        self.tracker.working("")
        with self.lock:
            self.problems[(name, index)] = problems
            self.rows += rows
            self.bytes += nbytes
            self._left[name] -= 1
            done = self._left[name] == 0
            if done:
                self.tables += 1
            if self._counting:
                self.tracker.add(rows, nbytes)
                if done:
                    self.tracker.table_done()


def sequence_problems(conn: Connection, m: Manifest, db: str) -> list[str]:
    """The sequences of the restored database ``db`` whose state (the next value, the
    cycles done) is not the one the dump read: their rows are not data files, so the
    read-back does not see them."""
    problems = []
    for t in m.tables:
        if t.kind != "sequence" or not t.sequence:
            continue
        want = (int(t.sequence["next_not_cached_value"]), int(t.sequence.get("cycle_count", 0)))
        try:
            have = sequence_state(conn, db, t.name)
        except (NotFoundError, ServerError):
            continue  # a missing table is named by the read-back
        if have != want:
            problems.append(
                f"sequence {t.name}: next value {have[0]} (cycle {have[1]}) after restore, "
                f"{want[0]} (cycle {want[1]}) in the backup"
            )
    return problems


def object_problems(
    conn: Any, src: BackupSource, m: Manifest, db: str, views: list[str]
) -> list[str]:
    """The views, triggers, routines and events the restored database ``db`` lacks (or
    has beyond) the backup's definitions file, named (no file: nothing to compare), and
    those created under another database collation than the backup records."""
    name = m.objects.get("definitions")
    if not name:
        return []
    records = parse_object_records(src.read_bytes(name).decode("utf-8", "replace"), name)
    want: dict[str, list[str]] = {}
    for r in records:
        want.setdefault(r["kind"], []).append(r["name"])
    q = quote_str(db)
    have: dict[str, list[str]] = {"view": list(views)}
    collations: dict[tuple[str, str], str] = {}  # (kind, name): the database collation
    for kind, sql in (
        (
            "trigger",
            "SELECT TRIGGER_NAME, DATABASE_COLLATION FROM information_schema.TRIGGERS "
            f"WHERE TRIGGER_SCHEMA={q}",
        ),
        (
            "event",
            "SELECT EVENT_NAME, DATABASE_COLLATION FROM information_schema.EVENTS "
            f"WHERE EVENT_SCHEMA={q}",
        ),
    ):
        have[kind] = []
        for n, coll in conn.query(sql):
            have[kind].append((n or b"").decode("utf-8", "replace"))
            collations[(kind, have[kind][-1])] = (coll or b"").decode()
    for rtype, n_, coll in conn.query(
        "SELECT ROUTINE_TYPE, ROUTINE_NAME, DATABASE_COLLATION FROM information_schema.ROUTINES "
        f"WHERE ROUTINE_SCHEMA={q}"
    ):  # procedures, functions, packages and package bodies
        kind = (rtype or b"").decode().lower()
        have.setdefault(kind, []).append((n_ or b"").decode("utf-8", "replace"))
        collations[(kind, have[kind][-1])] = (coll or b"").decode()
    problems = [
        f"{r['kind']} {r['name']!r}: created under database collation "
        f"{collations[(r['kind'], r['name'])]}, {r['db_collation']} in the backup"
        for r in records
        if r.get("db_collation")
        and collations.get((r["kind"], r["name"]), r["db_collation"]) != r["db_collation"]
    ]
    for kind, names in want.items():
        got = have.get(kind, [])
        if len(got) == len(names) and sorted(got) == sorted(names):
            continue
        missing = sorted(set(names) - set(got))
        extra = sorted(set(got) - set(names))
        detail = "; ".join(
            part
            for part in (
                "missing: " + ", ".join(map(repr, missing)) if missing else "",
                "not in the backup: " + ", ".join(map(repr, extra)) if extra else "",
            )
            if part
        )
        problems.append(
            f"{kind}s: {len(got)} after restore, {len(names)} in the backup"
            + (f" ({detail})" if detail else "")
        )
    return problems
