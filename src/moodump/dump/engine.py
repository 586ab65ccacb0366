"""The dump engine: snapshot, per-table tasks over the worker pool, manifest last.

The plan made before the snapshot (tables, privileges, key ranges, schema files) is
:mod:`.plan`; publishing and the FAILED record are :mod:`.publish`.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moodump import __version__
from moodump.compression import DataWriter, get_codec, storage_error
from moodump.db.connection import Connection, ConnSettings
from moodump.db.introspect import (
    StoredObject,
    database_ddl,
    definition_fingerprint,
    list_tables,
    moodle_info,
    sequence_state,
    server_info,
    show_create_table,
    stored_objects,
)
from moodump.db.rowstream import direct_unavailable, stream_rows
from moodump.db.snapshot import Snapshot, open_snapshot, setup_read_session
from moodump.db.workers import LiveConnections, run_interruptible, run_pool
from moodump.dump.model import (
    _SMALL_FILE_BYTES,
    DumpOptions,
    DumpResult,
    ProgressEvent,
    _Task,
    _utcnow,
)
from moodump.dump.plan import DumpPlanner
from moodump.dump.publish import (
    _file_entry,
    _publish_failure,
    _write_json,
    make_staging,
    objects_json,
    publish_done,
    record_chunk,
)
from moodump.dump.upgrade import UpgradeGuard
from moodump.errors import (
    ConfigError,
    Interrupted,
    MoodumpError,
    NotFoundError,
    SchemaChanged,
    ServerError,
    SnapshotError,
    StorageError,
)
from moodump.manifest import (
    STATUS_DONE,
    Chunk,
    FileEntry,
    Manifest,
    TableEntry,
)
from moodump.progress import Progress
from moodump.restore_script import write_stock_restore_script

log = logging.getLogger("moodump.dump")


def dump(
    settings: ConnSettings,
    database: str,
    output: Path | str,
    options: DumpOptions | None = None,
    *,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop: threading.Event | None = None,
    tracker: Progress | None = None,
) -> DumpResult:
    """Dump ``database`` into the new directory ``output`` and return its manifest.

    :param settings: how to connect (the account needs SELECT, LOCK TABLES for a
        parallel snapshot, SHOW VIEW, TRIGGER and EVENT for the objects).
    :param output: the backup directory to create; it must not exist yet.
    :param progress: called with :class:`ProgressEvent` as data is written.
    :param stop: set it from another thread to cancel (raises :class:`Interrupted`).
    :param tracker: a :class:`~moodump.progress.Progress` to count rows and bytes into
        (what the terminal display and the progress log lines read).
    :raises MoodumpError: on any failure; nothing is published then. With
        ``options.upgrade_wait`` set, a Moodle upgrade is waited for and DDL retried
        first (:mod:`moodump.dump.upgrade`; :class:`~moodump.errors.UpgradeRunning`).
    """
    opts = options or DumpOptions()
    if opts.schema_only and opts.data_only:
        raise ConfigError("--schema-only and --data-only exclude each other", hint="pick one")
    if opts.threads < 1 or opts.threads > 64:
        raise ConfigError(f"--threads {opts.threads} is out of range", hint="use 1..64")
    codec, level = get_codec(opts.codec, opts.level)
    out = Path(output)
    if out.exists():
        raise ConfigError(
            f"output {out} already exists",
            hint="choose a new --output path; moodump never overwrites",
        )
    parent = out.parent
    if not parent.is_dir():
        raise StorageError(f"output directory {parent} does not exist", hint="create it first")

    tr = tracker or Progress()

    def attempt(guard: UpgradeGuard | None) -> DumpResult:
        return _attempt(settings, database, out, opts, (codec, level), progress, stop, guard, tr)

    with tr.operation("dump", database):
        if opts.upgrade_wait is None:
            return attempt(None)
        return UpgradeGuard(settings, database, opts, stop).run(out, attempt)


def _attempt(
    settings: ConnSettings, database: str, out: Path, opts: DumpOptions, codec_level: Any,
    progress: Callable[[ProgressEvent], None] | None, stop: threading.Event | None,
    guard: UpgradeGuard | None, tracker: Progress,
) -> DumpResult:  # fmt: skip
    """One dump into ``out``; a failure the guard retries publishes no FAILED record."""
    codec, level = codec_level
    tmp = make_staging(out)

    engine = DumpRun(
        settings, database, tmp, opts, codec.name, codec.extension, level, progress, stop
    )
    engine.tracker = tracker
    t0 = time.monotonic()
    tracker.phase("plan", rows_done=0, bytes_done=0, tables_done=0)  # an attempt counts anew
    try:
        manifest, pool = run_interruptible(engine.run, engine.stop, engine.kill_all)
        engine.abandoned = engine.abandoned or pool.abandoned
        if pool.interrupted:
            raise Interrupted("dump interrupted; nothing was published", hint="run it again")
        if pool.errors:
            real = [e for e in pool.errors if not isinstance(e, Interrupted)]
            raise (real or pool.errors)[0]
        assert manifest is not None
        if guard is not None:
            guard.annotate(manifest)
        tracker.phase("publish")
        publish_done(tmp, out, manifest, opts.signing_key)
    except BaseException as exc:
        engine.abort()
        err = exc if isinstance(exc, MoodumpError) else None
        if isinstance(exc, KeyboardInterrupt):
            err = Interrupted("dump interrupted; nothing was published", hint="run it again")
        elif isinstance(exc, OSError):  # writing schema/object files or the manifest
            err = storage_error(exc, Path(exc.filename or tmp))
        if opts.record_failure and not (guard is not None and guard.will_retry(err)):
            if guard is not None:
                guard.annotate(engine.manifest)
            _publish_failure(tmp, out, engine.manifest, str(err or exc))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if err is not None and err is not exc:
            raise err from exc
        raise
    return DumpResult(out, manifest, time.monotonic() - t0, list(manifest.warnings))


def _utc_text(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class DumpRun(DumpPlanner):
    def __init__(
        self,
        settings: ConnSettings,
        database: str,
        tmp: Path,
        opts: DumpOptions,
        codec: str,
        ext: str,
        level: int,
        progress: Callable[[ProgressEvent], None] | None,
        stop: threading.Event | None,
    ) -> None:
        self.settings = settings.with_database(None)
        self.database = database
        self.tmp = tmp
        self.opts = opts
        self.codec = codec
        self.ext = ext
        self.level = level
        self.progress_cb = progress
        self.stop = stop or threading.Event()
        self.manifest = Manifest(
            database=database, tool_version=__version__, codec=codec, level=level
        )
        self.snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._writers: list[DataWriter] = []
        self._t0 = time.monotonic()
        self._rows_done = 0
        self._bytes_done = 0
        self._rows_estimate = 0
        self._tables_done = 0
        self._tables_total = 0
        self._entries: dict[str, TableEntry] = {}
        self._pending_chunks: dict[str, int] = {}
        self.abandoned = False
        self._live = LiveConnections(self.settings)
        self.tracker = Progress()

    # -- orchestration -------------------------------------------------------------------
    def run(self) -> Manifest:
        m = self.manifest
        m.started_at = _utc_text(self.opts.started_at) if self.opts.started_at else _utcnow()
        m.host = self.settings.socket or self.settings.host
        m.port = self.settings.port
        m.options = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in self.opts.__dict__.items()
            if k not in ("started_at", "signing_key", "upgrade_wait", "moodle_dataroot")
        }
        # the public fingerprint of the signing key (manifest.sig), never the key
        m.options["signing_key"] = (
            self.opts.signing_key.fingerprint if self.opts.signing_key else None
        )
        with self._connect(self.settings) as coord:
            server = server_info(coord)
            m.server_flavor, m.server_version = server.flavor, server.version
            slow = direct_unavailable(coord)
            if slow:  # same bytes, more client CPU: worth knowing when a dump is slow
                log.warning("rows are read on a slower path: %s", slow)
            setup_read_session(coord, server, binary_results=False)
            m.database_ddl = database_ddl(coord, self.database)
            self._check_privileges(coord)
            tables, _views = list_tables(coord, self.database)
            selected = self._select(tables)
            objects = stored_objects(coord, self.database) if self._want_objects() else []
            schemas = {
                t.name: show_create_table(coord, self.database, t.name, t.kind) for t in selected
            }
            tasks = self._plan(coord, selected, schemas)
        self._write_database_file()
        for idx, t in enumerate(selected, 1):
            self._entries[t.name] = self._table_entry(idx, t, schemas[t.name])
        m.tables = list(self._entries.values())
        self._tables_total = len(selected)
        self._rows_estimate = sum(t.rows_estimate for t in selected if not self._skip_data(t))
        self._emit("plan")

        # Every dumped table is locked for the snapshot, data or not, so that the
        # sequence values and Moodle facts read later come from the same instant.
        lock_names = [t.name for t in selected]
        workers = max(1, min(self.opts.threads, len(tasks) or 1))
        self.tracker.phase("snapshot")
        self.snapshot = open_snapshot(
            self.settings,
            server,
            self.database,
            lock_names,
            workers,
            lock_wait_timeout=self.opts.lock_wait_timeout,
            connect_fn=self._connect,
        )
        m.snapshot = {**self.snapshot.describe(), "at": _utcnow()}
        if self.snapshot.notes:
            m.warnings.extend(self.snapshot.notes)
        trx = [t.name for t in selected if t.trx_versioned and not self._skip_data(t)]
        if trx:
            m.warnings.append(
                "history not dumped (versioned by transaction id, which MariaDB cannot "
                "restore): current rows only of " + ", ".join(trx)
            )
        non_tx = [t.name for t in selected if not t.transactional and t.kind == "table"]
        if non_tx:
            m.warnings.append(
                "not snapshot-consistent (non-transactional engine): " + ", ".join(non_tx)
            )
            m.snapshot["non_transactional_tables"] = non_tx
        data = [t for t in selected if not self._skip_data(t)]
        self.tracker.phase(
            "data",
            rows_total=self._rows_estimate,
            bytes_total=sum(t.data_length for t in data),
            tables_total=len(self._pending_chunks),
        )
        try:
            self._run_workers(tasks)
            first = self.snapshot.workers[0]
            for t in selected:
                if t.kind == "sequence" and not self.opts.schema_only:
                    nxt, cycles = sequence_state(first, self.database, t.name)
                    self._entries[t.name].sequence = {
                        "next_not_cached_value": nxt,
                        "cycle_count": cycles,
                    }
            m.moodle = moodle_info(
                first, self.database, [t.name for t in tables], self.opts.moodle_prefix
            )
        finally:
            self.snapshot.close()
        for name, n in self._pending_chunks.items():
            if n:
                raise SnapshotError(
                    f"table {name}: {n} chunk(s) were not written", hint="run again"
                )
        self.tracker.phase("objects")
        self._write_objects(objects)
        self._emit("objects")
        write_stock_restore_script(self.tmp, m)
        m.files.append(_file_entry(self.tmp, "restore-with-mariadb.sh", "script"))
        m.finished_at = _utcnow()
        m.status = STATUS_DONE
        self._emit("done")
        return m

    # -- workers --------------------------------------------------------------------------
    def _run_workers(self, tasks: list[_Task]) -> None:
        assert self.snapshot is not None
        queue = list(tasks)
        qlock = threading.Lock()

        def worker(conn: Connection) -> Callable[[], None]:
            def work() -> None:
                while not self.stop.is_set():
                    with qlock:
                        if not queue:
                            return
                        task = queue.pop(0)
                    self._dump_task(conn, task)

            return work

        pool = run_pool([worker(c) for c in self.snapshot.workers], self.stop, self.kill_all)
        self.abandoned = pool.abandoned
        if pool.interrupted:
            raise Interrupted("dump interrupted; nothing was published", hint="run it again")
        if pool.errors:
            real = [e for e in pool.errors if not isinstance(e, Interrupted)]
            raise (real or pool.errors)[0]
        if self.stop.is_set():
            raise Interrupted("dump cancelled; nothing was published", hint="run it again")

    def _connect(self, settings: ConnSettings) -> Connection:
        """Open a connection that an interrupt can reach (see :meth:`kill_all`)."""
        return self._live.open(settings)

    def kill_all(self) -> None:
        """Kill the running statement of every connection of this dump (on Ctrl-C)."""
        self.stop.set()
        self._live.kill()

    def _dump_task(self, conn: Connection, task: _Task) -> None:
        t = task.table
        path = self.tmp / task.file
        codec = get_codec(self.codec, self.level)
        # Small files compress in the worker thread: a compression thread per tiny table
        # costs more than it saves (Moodle has hundreds of small tables).
        small = task.estimate < _SMALL_FILE_BYTES
        holder: list[DataWriter] = [self._new_writer(path, codec, small)]
        self.tracker.working(t.name)
        counted = [0, 0]  # rows, bytes of this task (taken back if it starts over)

        def sink(data: bytes, rows: int) -> None:
            holder[0].write(data)
            counted[0] += rows
            counted[1] += len(data)
            self._count(rows, len(data))

        def reset() -> None:
            log.info(
                "table %s: a row exceeds max_allowed_packet; fetching long columns raw", t.name
            )
            self.tracker.add(-counted[0], -counted[1])
            counted[:] = [0, 0]
            self._drop_writer(holder[0], path)
            holder[0] = self._new_writer(path, codec, small)

        try:
            try:
                res = stream_rows(
                    conn,
                    self.database,
                    t.name,
                    t.data_columns,
                    where=task.where,
                    order_by=t.order_key,
                    sink=sink,
                    reset=reset,
                    stop=self.stop,
                    history=t.versioned,
                )
            except (ServerError, NotFoundError) as read_error:
                # A dropped or renamed column/table fails the read itself (1054, 1146 -
                # the latter a NotFoundError): report the schema change, which is the
                # real cause. If the check cannot even run (the connection is gone), the
                # read's own error stands.
                try:
                    self._check_definition(conn, task)
                except (ServerError, NotFoundError):
                    raise read_error from None
                raise
            self._check_definition(conn, task)
        except BaseException:
            self._drop_writer(holder[0], path)
            raise
        finally:
            self.tracker.working("")
        conn.execute("ROLLBACK TO SAVEPOINT moodump_table")
        writer = holder[0]
        size_c, sha = writer.close()
        chunk = Chunk(task.file, res.rows, res.raw_bytes, res.digest, task.where)
        with self._lock:
            self._writers.remove(writer)
            data = FileEntry(task.file, size_c, sha, "data")
            record_chunk(self.manifest, self._entries[t.name], data, chunk)
            self._pending_chunks[t.name] -= 1
            if self._pending_chunks[t.name] == 0:
                self._tables_done += 1
                self.tracker.table_done()
        self._emit("data", t.name)

    def _new_writer(self, path: Path, codec: tuple[Any, int], small: bool = False) -> DataWriter:
        path.unlink(missing_ok=True)
        w = DataWriter(path, codec[0], codec[1], threaded=not small)
        with self._lock:
            self._writers.append(w)
        return w

    def _drop_writer(self, writer: DataWriter, path: Path) -> None:
        writer.abort()
        with self._lock:
            if writer in self._writers:
                self._writers.remove(writer)
        path.unlink(missing_ok=True)

    def _check_definition(self, conn: Connection, task: _Task) -> None:
        # One round trip: under binary results SHOW CREATE comes in the server's metadata
        # character set (utf8), byte-identical to the utf8mb4 text captured when planning.
        try:
            now = definition_fingerprint(show_create_table(conn, self.database, task.table.name))
        except NotFoundError:
            now = "(table dropped or renamed)"
        if now != task.fingerprint:
            raise SchemaChanged(
                f"table {task.table.name!r} was altered while the dump was running "
                "(its definition no longer matches the snapshot)",
                hint="run the dump again once the schema change (e.g. a Moodle upgrade) is finished",
            )

    def _count(self, rows: int, nbytes: int) -> None:
        self.tracker.add(rows, nbytes)
        with self._lock:
            self._rows_done += rows
            self._bytes_done += nbytes
        self._emit("data")

    def _emit(self, phase: str, table: str = "") -> None:
        if self.progress_cb is None:
            return
        with self._lock:
            ev = ProgressEvent(
                phase,
                table,
                self._rows_done,
                self._rows_estimate,
                self._bytes_done,
                self._tables_done,
                self._tables_total,
                time.monotonic() - self._t0,
            )
            self.progress_cb(ev)

    # -- objects ---------------------------------------------------------------------------
    def _write_objects(self, objects: list[StoredObject]) -> None:
        if not objects:
            return
        _write_json(self.tmp / "objects.json", objects_json(objects))
        self.manifest.objects = {"definitions": "objects.json"}
        self.manifest.files.append(_file_entry(self.tmp, "objects.json", "objects"))

    def abort(self) -> None:
        self.stop.set()
        if self.abandoned:
            # Workers are still inside the driver or a compressor: closing their
            # connections and writers now could crash the process. The temp directory
            # is still removed; the process exit releases the rest.
            return
        with self._lock:
            writers = list(self._writers)
        for w in writers:
            w.abort()
        if self.snapshot is not None:
            self.snapshot.close()
