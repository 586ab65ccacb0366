"""The dump engine for PostgreSQL: the same backup layout, manifest and publication as
MySQL's (:mod:`moodump.dump.engine`), over an exported snapshot.

1. a planning connection reads the database's own properties (:mod:`moodump.pg.database`)
   and lists the tables (:mod:`moodump.pg.catalog`); the tables to dump and the files
   to write are planned by :mod:`moodump.dump.pg_plan`;
2. the coordinator opens a REPEATABLE READ, READ ONLY transaction, takes ACCESS SHARE
   locks on every table to dump (``LOCK`` takes no snapshot, so the snapshot is younger
   than the locks and no DDL can slip between them), then ``pg_export_snapshot()``;
3. N workers ``SET TRANSACTION SNAPSHOT`` to that snapshot and stream each table (or
   primary-key range of a big one) with ``COPY … TO STDOUT`` into the per-file
   compressed writers, counting rows and digesting the text (:mod:`moodump.pg.copyio`);
4. meanwhile ``pg_dump --schema-only --snapshot=<id>`` writes the definitions of every
   object from the same snapshot, split into ``schema/pre-data.sql`` (before the data) and
   ``schema/post-data.sql`` (indexes, constraints, triggers, rules, materialized view
   data) (:mod:`moodump.dump.pg_schema`); sequences' values are read right after the
   snapshot, as ``pg_dump`` does;
5. ``manifest.json`` (``database_type: postgresql``) is written last and the directory is
   renamed into place, exactly as for MySQL.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from moodump import __version__
from moodump.compression import DataWriter, get_codec, storage_error
from moodump.db.connection import ConnSettings
from moodump.dump.engine import _utc_text
from moodump.dump.model import (
    _SMALL_FILE_BYTES,
    DumpOptions,
    DumpResult,
    ProgressEvent,
    _utcnow,
)
from moodump.dump.pg_plan import (
    PgTask,
    add_entries,
    large_object_tasks,
    plan_tasks,
    select_tables,
    skip_data,
)
from moodump.dump.pg_schema import POST_DATA, PRE_DATA, write_section
from moodump.dump.publish import (
    _file_entry,
    _publish_failure,
    make_staging,
    publish_done,
    record_chunk,
)
from moodump.errors import (
    CheckFailed,
    ConfigError,
    Interrupted,
    MoodumpError,
    SnapshotError,
    StorageError,
)
from moodump.manifest import STATUS_DONE, Chunk, FileEntry, Manifest, TableEntry
from moodump.pg.catalog import (
    PgTable,
    count_large_objects,
    list_sequences,
    list_tables,
    moodle_info,
    populated_matviews,
    server_version,
    stale_generated,
)
from moodump.pg.connection import (
    SESSION_SETTINGS,
    Conn,
    DriverError,
    cancel,
    close_quietly,
    connect,
    pg_error,
    qualified,
    quote_ident,
    quote_str,
    sql_ascii,
    sql_bytes,
)
from moodump.pg.copyio import copy_out, copy_out_psql
from moodump.pg.database import database_facts
from moodump.pg.snapshot import end, export_snapshot, join_snapshot
from moodump.pg.tools import ToolProcess, client_for, tool_env
from moodump.progress import Progress

#: Files estimated at least this big are read through a psql process (copy_out_psql).
PSQL_MIN_BYTES = 16 << 20


def session_sql() -> list[str]:
    return [f"SET {quote_ident(k)} TO {quote_str(v)}" for k, v in SESSION_SETTINGS]


def dump_postgres(
    settings: ConnSettings,
    database: str,
    output: Path | str,
    options: DumpOptions | None = None,
    *,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop: threading.Event | None = None,
    tracker: Progress | None = None,
) -> DumpResult:
    """Dump the PostgreSQL database ``database`` into the new directory ``output``.

    Same contract as :func:`moodump.dump.dump`: nothing is published unless everything
    succeeded. The account needs SELECT on every table and sequence (and whatever
    ``pg_dump --schema-only`` needs); the client tools must be at least the server's
    major version (:func:`moodump.pg.tools.client_for`).
    """
    opts = options or DumpOptions()
    if opts.schema_only and opts.data_only:
        raise ConfigError("--schema-only and --data-only exclude each other", hint="pick one")
    if opts.threads < 1 or opts.threads > 64:
        raise ConfigError(f"--threads {opts.threads} is out of range", hint="use 1..64")
    if opts.where:
        raise ConfigError("--where is not supported for PostgreSQL", hint="dump whole tables")
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
    tmp = make_staging(out)
    run = PgDumpRun(
        settings, database, tmp, opts, codec.name, codec.extension, level, progress, stop
    )
    run.tracker = tracker or run.tracker
    with run.tracker.operation("dump", database):
        return _publish(run, tmp, out, parent, opts, database)


def _publish(
    run: PgDumpRun, tmp: Path, out: Path, parent: Path, opts: DumpOptions, database: str
) -> DumpResult:
    t0 = time.monotonic()
    try:
        manifest = run.run()
        run.tracker.phase("publish")
        publish_done(tmp, out, manifest, opts.signing_key)
    except BaseException as exc:
        run.abort()
        err = exc if isinstance(exc, MoodumpError) else None
        if isinstance(exc, KeyboardInterrupt):
            err = Interrupted("dump interrupted; nothing was published", hint="run it again")
        elif isinstance(exc, OSError):
            err = storage_error(exc, Path(exc.filename or tmp))
        elif isinstance(exc, DriverError):
            err = pg_error(exc, f"dump of {database}")
        if opts.record_failure:
            _publish_failure(tmp, out, run.manifest, str(err or exc))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if err is not None and err is not exc:
            raise err from exc
        raise
    return DumpResult(out, manifest, time.monotonic() - t0, list(manifest.warnings))


class PgDumpRun:
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
        self.settings = settings
        self.database = database
        self.tmp = tmp
        self.opts = opts
        self.codec, self.ext, self.level = codec, ext, level
        self.progress_cb = progress
        self.stop = stop or threading.Event()
        self.manifest = Manifest(
            database=database, tool_version=__version__, codec=codec, level=level,
            database_type="postgresql",
        )  # fmt: skip
        self._lock = threading.Lock()
        self._writers: list[DataWriter] = []
        self._conns: list[Conn] = []
        self._t0 = time.monotonic()
        self._rows_done = self._bytes_done = self._rows_estimate = 0
        self._tables_done = self._tables_total = 0
        self._entries: dict[str, TableEntry] = {}
        self._pending: dict[str, int] = {}
        self._procs: list[ToolProcess] = []
        self._env: dict[str, str] = {}
        self._psql: Path | None = None
        self._snapshot = ""
        self._encoding = ""
        self.tracker = Progress()

    # -- orchestration -------------------------------------------------------------------
    def run(self) -> Manifest:
        with tool_env(self.settings) as env:
            env["PGDATABASE"] = self.database
            self._env = env
            return self._run()

    def _run(self) -> Manifest:
        m = self.manifest
        o = self.opts
        m.started_at = _utc_text(o.started_at) if o.started_at else _utcnow()
        m.host = self.settings.socket or self.settings.host
        m.port = self.settings.port
        m.options = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in o.__dict__.items()
            if k not in ("started_at", "signing_key")
        }
        m.options["signing_key"] = o.signing_key.fingerprint if o.signing_key else None

        self.tracker.phase("plan", rows_done=0, bytes_done=0, tables_done=0)
        with connect(self.settings, self.database, autocommit=True) as plan:
            major, version = server_version(plan)
            m.server_flavor, m.server_version = "postgresql", version
            bindir, client_major = client_for(major)
            self._psql = bindir / "psql"
            facts = database_facts(plan, major)
            enc = (facts["encoding"], facts["collate"], facts["ctype"])
            m.database_ddl = f"ENCODING {quote_str(enc[0])} LC_COLLATE {quote_str(enc[1])} LC_CTYPE {quote_str(enc[2])}"
            m.snapshot.update(facts)
            # every session (and psql, pg_dump) reads in the database's own encoding
            self._encoding = str(enc[0])
            self._env["PGCLIENTENCODING"] = self._encoding
            selected = select_tables(list_tables(plan), o, self.database)

        self.tracker.phase("snapshot")
        coord = self._open()
        snap_id = self._snapshot = export_snapshot(
            coord, [qualified(t.schema, t.name) for t in selected], o.lock_wait_timeout
        )
        every = list_tables(coord)
        in_snapshot = select_tables(every, o, self.database)
        if {t.key for t in in_snapshot} != {t.key for t in selected}:
            raise SnapshotError(
                "tables were created or dropped while the dump started", hint="run the dump again"
            )
        # Columns and keys as of the snapshot: a table altered (ALTER TABLE ADD COLUMN, a
        # new key) between the plan and the locks was copied with the plan's stale column
        # list, silently leaving the new column's values out.
        selected = in_snapshot
        # a stored generated column that its expression would now compute otherwise: a
        # restore recomputes it (COPY cannot write one), a silent change of the data
        stale = stale_generated(coord, [t for t in selected if not skip_data(t, o)])
        if stale:
            raise CheckFailed(
                f"{len(stale)} stored generated column(s) hold values their expression no "
                f"longer gives, which a restore would recompute: {', '.join(stale[:5])}",
                hint="store what the expression gives now (UPDATE the table, e.g. SET one of "
                "its other columns to itself), or restore the function the expression "
                "called, then dump again",
            )
        seqs = list_sequences(coord) if not o.schema_only else []
        matviews = (
            populated_matviews(coord) if not (o.schema_only or o.data_only or o.tables) else []
        )
        m.snapshot.update(id=snap_id, at=_utcnow(), isolation="repeatable read",
                          client_tools=f"{bindir} ({client_major})")  # fmt: skip

        tasks = plan_tasks(coord, selected, o, self.ext, self._pending)
        # Large objects: a whole-database dump holds them (as pg_dump's does); a --table
        # dump leaves them out, as pg_dump --table does.
        n_lo = count_large_objects(coord) if not (o.schema_only or o.tables) else 0
        if n_lo:
            tasks += large_object_tasks(self.ext, self._pending, self._entries)
        m.snapshot.update(method="pg_export_snapshot", workers=max(1, min(o.threads, len(tasks))))
        add_entries(self._entries, selected, seqs, matviews, o)
        m.tables = list(self._entries.values())
        self._tables_total = len(selected)
        self._rows_estimate = sum(t.rows_estimate for t in selected if not skip_data(t, o))
        self._emit("plan")
        self.tracker.phase(
            "data",
            rows_total=self._rows_estimate,
            bytes_total=sum(t.data_length for t in selected if not skip_data(t, o)),
            tables_total=len(self._pending),
        )

        schema_threads: list[threading.Thread] = []
        schema_errors: list[BaseException] = []
        if not o.data_only:
            for section, name in (("pre-data", PRE_DATA), ("post-data", POST_DATA)):
                th = threading.Thread(
                    target=self._schema, args=(bindir, section, name, snap_id, selected, schema_errors, every),
                    name=f"pg_dump-{section}", daemon=True,
                )  # fmt: skip
                th.start()
                schema_threads.append(th)
        try:
            try:
                self._run_workers(tasks, snap_id)
            except Interrupted:
                # the workers stopped because pg_dump failed: its message is the error
                if schema_errors:
                    raise schema_errors[0] from None
                raise
            m.moodle = moodle_info(coord, selected)  # in the snapshot, as the rows
            for th in schema_threads:
                th.join()
        finally:
            if schema_errors:
                self.stop.set()
            end(coord)
            close_quietly(coord)
        if schema_errors:
            raise schema_errors[0]
        if not o.data_only:
            # A sequence the definitions do not create (a --table dump leaves out the
            # sequences of other tables) gets no setval at restore time.
            pre_text = (self.tmp / PRE_DATA).read_text(encoding="utf-8", errors="surrogateescape")
            # (the script is in the database's encoding, read as UTF-8 with surrogates)
            config = {qualified(s.schema, s.name) for s in seqs if s.config and not o.tables}

            def scripted(e: TableEntry) -> str:
                return sql_bytes(qualified(e.schema, e.name), self._encoding).decode(
                    "utf-8", "surrogateescape")  # fmt: skip

            # A materialized view they do not create (--exclude named it) is not refreshed
            # either: the restore's REFRESH failed on it, at the very end.
            m.tables = [
                e for e in m.tables
                if (e.kind != "sequence" or qualified(e.schema, e.name) in config
                    or scripted(e) in pre_text)
                and (e.kind != "materialized view"
                     or f"CREATE MATERIALIZED VIEW {scripted(e)} " in pre_text)
            ]  # fmt: skip
        for name, n in self._pending.items():
            if n:
                raise SnapshotError(
                    f"table {name}: {n} chunk(s) were not written", hint="run again"
                )
        if not o.data_only:
            m.objects = {"pre_data": PRE_DATA, "post_data": POST_DATA}
            for name in (PRE_DATA, POST_DATA):
                m.files.append(_file_entry(self.tmp, name, "schema"))
        m.finished_at = _utcnow()
        m.status = STATUS_DONE
        self._emit("done")
        return m

    def _schema(
        self, bindir: Path, section: str, name: str, snap: str, selected: list[PgTable],
        errors: list[BaseException], every: list[PgTable] | None = None,
    ) -> None:  # fmt: skip
        """One schema section (:func:`moodump.dump.pg_schema.write_section`) into ``name``,
        on a thread: an error is reported by the coordinator."""
        try:
            write_section(bindir, self._env, self.database, section, self.tmp / name, snap,
                          selected, self.opts, every)  # fmt: skip
        except BaseException as exc:  # reported by the coordinator
            errors.append(exc)
            self.stop.set()

    # -- workers --------------------------------------------------------------------------
    def _open(self) -> Conn:
        conn = connect(self.settings, self.database, autocommit=True)
        with self._lock:
            self._conns.append(conn)
        for sql in session_sql():
            conn.execute(sql)
        if self._encoding:
            conn.execute(f"SET client_encoding TO {quote_str(self._encoding)}")
            sql_ascii(conn)  # a SQL_ASCII database's text
        return conn

    def _run_workers(self, tasks: list[PgTask], snap: str) -> None:
        queue = list(tasks)
        qlock = threading.Lock()
        errors: list[BaseException] = []
        n = max(1, min(self.opts.threads, len(tasks)))
        conns = []
        for _ in range(n if tasks else 0):
            c = self._open()
            join_snapshot(c, snap)
            conns.append(c)

        def work(conn: Conn) -> None:
            try:
                while not self.stop.is_set():
                    with qlock:
                        if not queue:
                            return
                        task = queue.pop(0)
                    self._dump_task(conn, task)
            except BaseException as exc:
                errors.append(exc)
                self.stop.set()

        threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in conns]
        for th in threads:
            th.start()
        try:
            for th in threads:
                while th.is_alive():
                    th.join(0.2)
        except KeyboardInterrupt:
            self.stop.set()
            self._cancel()
            raise
        for c in conns:
            end(c)
        if errors:
            real = [e for e in errors if not isinstance(e, Interrupted)]
            exc = (real or errors)[0]
            if isinstance(exc, DriverError):
                raise pg_error(exc, f"dump of {self.database}") from exc
            raise exc
        if self.stop.is_set() and queue:
            raise Interrupted("dump cancelled; nothing was published", hint="run it again")

    def _dump_task(self, conn: Conn, task: PgTask) -> None:
        t = task.table
        self.tracker.working(t.full_name)
        path = self.tmp / task.file
        codec = get_codec(self.codec, self.level)
        writer = DataWriter(path, codec[0], codec[1], threaded=task.estimate >= _SMALL_FILE_BYTES)
        with self._lock:
            self._writers.append(writer)

        def sink(data: bytes, rows: int) -> None:
            writer.write(data)
            self._count(rows, len(data))

        try:
            if self._psql is not None and task.estimate >= PSQL_MIN_BYTES and self._snapshot:
                res = copy_out_psql(
                    self._psql, self._env, self.database, self._snapshot, task.query,
                    sink, ordered=bool(t.primary_key), stop=self.stop, on_start=self._started,
                )  # fmt: skip
            else:
                res = copy_out(conn, task.query, sink,
                               ordered=bool(t.primary_key), stop=self.stop)  # fmt: skip
        except BaseException:
            writer.abort()
            with self._lock:
                self._writers.remove(writer)
            path.unlink(missing_ok=True)
            raise
        size_c, sha = writer.close()
        chunk = Chunk(task.file, res.rows, res.raw_bytes, res.digest, task.where)
        with self._lock:
            self._writers.remove(writer)
            data = FileEntry(task.file, size_c, sha, "data")
            record_chunk(self.manifest, self._entries[t.key], data, chunk)
            self._pending[t.key] -= 1
            if self._pending[t.key] == 0:
                self._tables_done += 1
                self.tracker.table_done()
        self.tracker.working("")
        self._emit("data", t.full_name)

    def _started(self, proc: ToolProcess) -> None:
        with self._lock:
            self._procs.append(proc)

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
            self.progress_cb(ProgressEvent(
                phase, table, self._rows_done, self._rows_estimate, self._bytes_done,
                self._tables_done, self._tables_total, time.monotonic() - self._t0,
            ))  # fmt: skip

    def _cancel(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            cancel(c)

    def abort(self) -> None:
        self.stop.set()
        self._cancel()
        with self._lock:
            writers = list(self._writers)
            conns = list(self._conns)
            procs = list(self._procs)
        for p in procs:
            if p.poll() is None:
                p.kill()
        for w in writers:
            w.abort()
        for c in conns:
            close_quietly(c)
