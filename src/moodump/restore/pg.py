"""The restore engine for PostgreSQL backups (``database_type: postgresql``).

1. the files are checked against the manifest (as for MySQL);
2. the target database is created (``TEMPLATE template0``, the source's encoding and,
   when the server has them, its collation and ctype); with ``atomic`` a staging database
   is restored and renamed to the target at the end (``ALTER DATABASE … RENAME``);
3. pre-data (``schema/pre-data.sql``) runs through ``psql`` in ONE transaction together
   with the creation of the progress table ``"_moodump_restore".progress``;
4. the data files load in parallel with ``COPY … FROM STDIN``; each file's rows and its
   progress row commit in one transaction, so ``resume`` skips exactly the loaded files;
5. sequences are set (``setval``) to the values read in the dump's snapshot;
6. post-data runs entry by entry (pg_dump's ``-- Name: …; Type: …`` headers separate
   them): indexes and constraints in parallel, then foreign keys, triggers, rules,
   materialized view data and the rest in the dump's order; each entry commits with its
   progress row; ``analyze`` runs ``ANALYZE`` at the end;
7. the progress schema is dropped.

Ownership and grants (``OWNER TO``, ``GRANT``/``REVOKE``) are skipped unless ``owners``:
the roles of the source rarely exist where a backup is restored.

This module runs the steps; the pieces live beside it: the target database and the
progress table (:mod:`moodump.restore.pg_target`, with :mod:`moodump.pg.database` for
the encoding, locale and settings), the pg_dump scripts' scanner and entry selection
(:mod:`moodump.restore.pg_script`) and the large objects (:mod:`moodump.restore.pg_objects`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from moodump.compression import open_reader
from moodump.db.connection import ConnSettings
from moodump.errors import ConfigError, Interrupted, MoodumpError, NotFoundError, ServerError
from moodump.manifest import Manifest, TableEntry
from moodump.pg.catalog import regclass_tables, server_version
from moodump.pg.connection import (
    Conn,
    DriverError,
    connect,
    pg_error,
    qualified,
    quote_ident,
    quote_str,
    set_session,
    sql_bytes,
    sql_text,
)
from moodump.pg.copyio import copy_in
from moodump.pg.database import restore_settings, toast_settings
from moodump.pg.tools import client_for, dbname_arg, run_tool, tool_env
from moodump.progress import Progress
from moodump.restore import pg_target
from moodump.restore.model import (
    RestoreEvent,
    RestoreOptions,
    RestoreResult,
    check_files,
    choose_toast_compression,
)
from moodump.restore.pg_objects import restore_large_objects
from moodump.restore.pg_plan import Entry, Job
from moodump.restore.pg_pool import JobQueue, run_workers
from moodump.restore.pg_script import (
    _PARALLEL,
    _POST_TYPES,
    _PRE_TYPES,
    _SKIPPED_WITHOUT_OWNERS,
    _entries_of,
    _select,
    _strip_owners,
    _table_of,
    extensions_named,
    partition_leaves,
    roles_named,
    sequences_made,
    split_entries,
    tablespaces_named,
    without_tablespaces,
)
from moodump.restore.pg_target import drop_progress, progress_schema, progress_table
from moodump.source import BackupSource


def restore_postgres(
    src: BackupSource,
    manifest: Manifest,
    settings: ConnSettings,
    database: str,
    opts: RestoreOptions,
    *,
    progress: Callable[[RestoreEvent], None] | None = None,
    stop: threading.Event | None = None,
    tracker: Progress | None = None,
) -> RestoreResult:
    """Restore a PostgreSQL backup into ``database`` on the server of ``settings``;
    ``tracker`` counts the rows and bytes loaded (the progress display and log lines)."""
    if opts.staging or opts.moodle_maintenance is not None:
        raise ConfigError(
            "--staging and --moodle-maintenance are not supported for PostgreSQL backups yet",
            hint="restore without them (docs/postgresql.md)",
        )
    if opts.tables and (opts.atomic or opts.resume):
        raise ConfigError(
            "--table cannot be combined with --atomic or --resume for PostgreSQL backups",
            hint="restore the tables again (with --drop) if it stopped",
        )
    if opts.atomic and opts.resume:
        raise ConfigError("--atomic and --resume cannot be combined", hint="pick one")
    if manifest.options.get("data_only") or not manifest.objects.get("pre_data"):
        # refused before the target is touched: --drop would drop the database the
        # rows are to go into, and the new one has no tables to load them into
        raise ConfigError(
            "this PostgreSQL backup was made with --data-only: it holds no definitions, "
            "and moodump restores PostgreSQL backups with their definitions only",
            hint="restore a full backup (a dump without --data-only), or load its data "
            "files into the existing tables yourself (COPY … FROM STDIN, docs/postgresql.md)",
        )
    run = PgRestore(src, manifest, settings, database, opts, progress, stop or threading.Event())
    if opts.tables:
        _check_partial_trees(manifest, run.selected or set())
    run.tracker = tracker or run.tracker
    try:
        with run.tracker.operation("restore", database):
            return run.run()
    except DriverError as exc:
        raise pg_error(exc, f"restore into {database}") from exc
    except KeyboardInterrupt:
        run.stop.set()
        raise Interrupted(
            "restore interrupted",
            hint="continue it with the same command and --resume"
            if not opts.atomic
            else "run it again (the target was not changed)",
        ) from None


def _check_partial_trees(m: Manifest, selected: set[str]) -> None:
    """A partition whose rows load through the partition root (a tree hashed on an enum,
    an expression, …: the rows may belong to other partitions in the new database)
    cannot be restored with ``--table``: its rows would land in the other partitions,
    beside their own rows."""
    for t in m.tables:
        if t.kind == "table" and t.load_clause and qualified(t.schema, t.name) in selected:
            raise ConfigError(
                f"--table {t.schema}.{t.name}: its rows load through the partition root "
                f"{t.load_clause} (they may belong to other partitions in a new database), "
                "so it cannot be restored alone",
                hint="restore the whole backup (into another database, then copy the rows over)",
            )


#: The source database's settings (ALTER DATABASE … SET) that the materialized views'
#: refreshes use: those that shape values as text or parse text.
_REFRESH_SETTINGS = {"timezone", "datestyle", "intervalstyle", "extra_float_digits", "lc_monetary",
                     "lc_numeric", "lc_time", "bytea_output", "xmlbinary", "xmloption",
                     "default_text_search_config"}  # fmt: skip

class _Background:
    """A function run in a thread of its own; :meth:`wait` joins it and raises what it
    raised."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True,
                                       name="moodump-check")  # fmt: skip
        self.thread.start()

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:
            self.error = exc

    def failure(self) -> BaseException | None:
        """What the function raised, once it ended (None: nothing)."""
        self.thread.join()
        return self.error

    def wait(self) -> None:
        if (error := self.failure()) is not None:
            raise error


class PgRestore:
    def __init__(
        self, src: BackupSource, m: Manifest, settings: ConnSettings, database: str,
        opts: RestoreOptions, progress: Callable[[RestoreEvent], None] | None,
        stop: threading.Event,
    ) -> None:  # fmt: skip
        self.src, self.m, self.settings, self.target, self.opts = src, m, settings, database, opts
        self.progress_cb = progress
        self.stop = stop
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.files = {f.name: f for f in m.files}
        self.rows_done = self.files_done = 0
        self.encoding = str(m.snapshot.get("encoding") or "")  # the source's, of the data files
        # quoted "schema"."table" names; None: all. A partitioned table names the
        # partitions that hold its rows (from pre-data's ATTACH PARTITION statements)
        self.selected = _select(m, opts.tables, self._parents() if opts.tables else None)
        self.sequences_of_selected: set[str] = set()
        self.chunks = [
            (t, c) for t in m.tables if t.kind == "table" and self._wanted(t) for c in t.chunks
        ]
        self.files_total = len(self.chunks)
        self.rows_total = sum(c.rows for _, c in self.chunks)
        self.load_db = database
        paths = [str(x).partition("=")[2] for x in m.snapshot.get("settings") or []
                 if str(x).partition("=")[0].lower() == "search_path"]  # fmt: skip
        self.search_path: str | None = paths[0] if paths else None
        self.warnings: list[str] = []
        self.tracker = Progress()
        # "_moodump_restore", unless the backup has a schema of that name (run() picks)
        self.progress_schema = pg_target.PROGRESS_SCHEMA
        self.progress_table = progress_table(self.progress_schema)
        self.toast: str | None = None  # default_toast_compression of the sessions
        self._by_script: dict[str, str] | None = None  # see _table_key
        self.attach_later: list[tuple[str, str, str]] = []  # see _pre_data

    def _parents(self) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """The partitioned tables of the backup and the partitions holding their rows;
        names that are not valid in the script's encoding are left out."""
        pre = self._text(self.m.objects["pre_data"]) if self.m.objects.get("pre_data") else ""
        enc = self.encoding

        def name(x: tuple[str, str]) -> tuple[str, str]:
            return (sql_text(x[0].encode("utf-8", "surrogateescape"), enc),
                    sql_text(x[1].encode("utf-8", "surrogateescape"), enc))  # fmt: skip

        return {name(p): {name(x) for x in leaves} for p, leaves in partition_leaves(pre).items()}

    def _session(self, conn: Conn) -> None:
        """What every session that loads rows or builds indexes sets: the data files'
        encoding (search_path: see _load_chunk), no commit waits, and the TOAST
        compression (:func:`moodump.restore.model.choose_toast_compression`)."""
        set_session(conn, self.encoding, None)
        conn.execute("SET synchronous_commit = off")
        if self.toast is not None:
            conn.execute(f"SET default_toast_compression = {quote_str(self.toast)}")

    def _scripted(self, name: str) -> str:
        """A quoted name as pg_dump's scripts hold it (read as UTF-8, any other byte kept
        as a surrogate): in the database's encoding, which need not be UTF-8."""
        return sql_bytes(name, self.encoding).decode("utf-8", "surrogateescape")

    def _script_selected(self) -> set[str]:
        return {self._scripted(q) for q in self.selected or ()}

    def _wanted(self, t: TableEntry) -> bool:
        return self.selected is None or qualified(t.schema, t.name) in self.selected

    def _emit(self, phase: str, table: str = "", file: str = "") -> None:
        if phase in ("check", "schema", "objects"):
            self.tracker.phase(phase)
        if self.progress_cb is None:
            return
        with self.lock:
            self.progress_cb(RestoreEvent(
                phase, table, self.files_done, self.files_total, self.rows_done,
                self.rows_total, time.monotonic() - self.t0, file,
            ))  # fmt: skip

    def _text(self, name: str) -> str:
        entry = self.files.get(name)
        data = self.src.checked_bytes(entry) if entry else self.src.read_bytes(name)
        return data.decode("utf-8", "surrogateescape")

    def run(self) -> RestoreResult:
        checking: _Background | None = None
        if self.opts.check_files:
            self._emit("check")
            if (local := self.src.local_dir) is not None:
                checking = _Background(
                    lambda: check_files(local, self.m, threads=self.opts.threads)
                )
            else:  # object storage: every file is there (sha256s are checked as read)
                self.src.check_listed(self.m.files)
        pre = self._text(self.m.objects["pre_data"]) if self.m.objects.get("pre_data") else ""
        post = self._text(self.m.objects["post_data"]) if self.m.objects.get("post_data") else ""
        if not self.opts.tablespaces:  # every object in the default tablespace
            pre, post = without_tablespaces(pre), without_tablespaces(post)
        self.progress_schema = progress_schema(pre)
        self.progress_table = progress_table(self.progress_schema)
        if self.selected is not None:  # the sequences the named tables own or use
            own = _entries_of(split_entries(pre)[1], self._script_selected(), _PRE_TYPES)
            self.sequences_of_selected = sequences_made(own)
        with pg_target.admin_connect(self.settings) as admin:
            major, _ = server_version(admin)
            bindir, _ = client_for(major)
            # (names that are not valid in the script's encoding are left to the server)
            pg_target.check_tablespaces(admin, {
                n for n in tablespaces_named(pre) | tablespaces_named(post)
                if not any("\udc80" <= ch <= "\udcff" for ch in n)
            })  # fmt: skip
            if self.selected is None:  # (names that are not valid in the encoding: the server's)
                owner = self.m.snapshot.get("owner") if self.opts.owners else None  # the database's
                pg_target.check_roles(admin, {
                    n for n in roles_named(pre, owners=self.opts.owners) | roles_named(post, owners=self.opts.owners)
                    | ({owner} if isinstance(owner, str) else set())
                    if not any("\udc80" <= ch <= "\udcff" for ch in n)
                }, owners=self.opts.owners)  # fmt: skip
            if self.selected is None:  # (a --table restore creates none)
                pg_target.check_extensions(admin, {
                    n for n in extensions_named(pre) if not any("\udc80" <= ch <= "\udcff" for ch in n)
                })  # fmt: skip
            # The target is touched only once every file is checked, unless this restore
            # makes the database it loads (a new one, or --atomic's staging): the check then
            # runs on beside the definitions, on the core psql leaves idle, and a damaged
            # file found drops the database again.
            if checking is not None and (
                self.selected is not None or self.opts.resume
                or (not self.opts.atomic and pg_target.exists(admin, self.target))
            ):  # fmt: skip
                checking.wait()
                checking = None
            if self.selected is not None:
                fresh = pg_target.prepare_partial(
                    admin, self.settings, self.target, self.selected, self.opts.drop,
                    self.progress_schema,
                )  # fmt: skip
            else:
                fresh, self.load_db = pg_target.prepare(
                    admin, self.settings, self.target, self.opts, self.m.snapshot, self.warnings,
                    self.progress_schema,
                )  # fmt: skip
        loading = False  # in the data phase, whose progress --resume continues
        try:
            with connect(self.settings, self.load_db, autocommit=True) as conn:
                done = pg_target.done_items(conn, self.progress_schema)
                settings = self.m.snapshot.get("settings") or []
                self.toast = choose_toast_compression(
                    self.opts.toast_compression, *toast_settings(conn),
                    [str(x) for x in settings] if isinstance(settings, list) else [],
                )  # fmt: skip
            if "pre-data" not in done:
                self._emit("schema")
                self._pre_data(bindir, pre)
            if checking is not None:
                checking.wait()
                checking = None
            loading = True
            skipped = self._data_and_indexes(post, done)
            loading = False
            if self.selected is None:
                self._large_objects(done)
            with connect(self.settings, self.load_db, autocommit=True) as conn:
                self._sequences(conn)
            self._emit("objects")
            self._post_data(post, done)
            if self.selected is None and any(t.kind == "materialized view" for t in self.m.tables):
                # again: a refresh may have advanced one (a view calling nextval()); set
                # before the refreshes too, for views that read their state
                with connect(self.settings, self.load_db, autocommit=True) as conn:
                    self._sequences(conn)
            with connect(self.settings, self.load_db, autocommit=True) as conn:
                if self.opts.analyze and self.selected is not None:
                    for name in sorted(self.selected):
                        conn.execute(f"ANALYZE {name}")
                elif self.opts.analyze:
                    conn.execute("ANALYZE")
                # a database this restore made: without "public" if the source had none
                made = self.selected is None and (fresh or self.opts.resume)
                no_public = made and self.m.snapshot.get("public_schema") is False
                # its settings in the transaction that drops the progress record: killed
                # between the two, --resume would find nothing to resume, and the
                # database would stay without them
                with conn.transaction():
                    drop_progress(conn, self.progress_schema, drop_public=no_public)
                    if made:
                        self._database_settings(conn)
            if self.load_db != self.target:
                pg_target.swap(self.settings, self.load_db, self.target)
                self.load_db = self.target
        except BaseException as exc:
            # a file found damaged while the definitions went in (or failed) comes first
            damaged = (
                checking.failure() if checking and not isinstance(exc, KeyboardInterrupt) else None
            )
            if self.load_db != self.target or (fresh and (self.opts.atomic or damaged)):
                pg_target.drop_quietly(self.settings, self.load_db)
            elif self.selected is not None:  # a --table restore cannot be resumed
                pg_target.drop_progress_quietly(self.settings, self.load_db, self.progress_schema)
            elif loading and isinstance(exc, MoodumpError) and not isinstance(exc, Interrupted):
                # as the MariaDB restore: a source that broke off (a damaged file, a
                # bucket gone) leaves the target part restored, with its progress
                exc.hint = (exc.hint or "") + (
                    "; after fixing it, continue with: moodump restore --resume ..."
                )
            if damaged is not None and damaged is not exc:
                raise damaged from exc
            raise
        self._emit("done")
        return RestoreResult(
            self.target, sum(1 for t in self.m.tables if t.kind == "table" and self._wanted(t)),
            self.rows_done,
            self.files_done, skipped, time.monotonic() - self.t0, self.warnings,
        )  # fmt: skip

    def _database_settings(self, conn: Conn) -> None:
        """The source database's own comment and settings (:mod:`moodump.pg.database`),
        given to the database this restore created, last (a
        ``default_transaction_read_only`` must not apply to the restore's sessions), in
        the transaction of ``conn`` (connected to it) that drops the progress record."""
        if not isinstance(self.m.snapshot.get("settings") or [], list):
            return
        self.warnings += restore_settings(conn, self.load_db, self.m.snapshot, owners=self.opts.owners)

    # -- schema ---------------------------------------------------------------------------
    def _pre_data(self, bindir: Path, pre: str) -> None:
        preamble, entries = split_entries(pre)
        if self.selected is not None:
            entries = _entries_of(entries, self._script_selected(), _PRE_TYPES)
            # a partition restored alone is attached once its indexes and constraints
            # are built (ATTACH PARTITION adopts them): attached first, it would get the
            # parent's indexes made for it, and its own (post-data) ones would collide.
            # (_check_partial_trees: none loads its rows through the root)
            later = [(typ, sql) for typ, sql in entries if typ == "TABLE ATTACH"]
            self.attach_later = [(f"attach:{i}", typ, sql) for i, (typ, sql) in enumerate(later)]
            entries = [e for e in entries if e not in later]
        body = [
            sql for typ, sql in entries if self.opts.owners or typ not in _SKIPPED_WITHOUT_OWNERS
        ]
        script = preamble + "".join(body)
        if not self.opts.owners:
            script = _strip_owners(script)
        # One transaction, begun and committed by the script itself, not by psql's
        # --single-transaction: psql commits that one at the end of its input, and a
        # restore killed while it fed psql ends the input early (the definitions read so
        # far were committed, without the 'pre-data' progress row, and --resume failed
        # on them: "already exists"). Cut short, this one is rolled back.
        script = (
            # (array_nulls: a default's NULL array element is a null, as in the source)
            "BEGIN;\nSET client_min_messages = warning;\nSET array_nulls = on;\n"
            + pg_target.progress_ddl(self.progress_schema)
            + script
            + f"\nINSERT INTO {self.progress_table} (item) VALUES ('pre-data');\nCOMMIT;\n"
        )
        argv = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "--no-password", "-d", dbname_arg(self.load_db), "-f", "-"]  # fmt: skip
        with tool_env(self.settings) as env:
            env["PGDATABASE"] = self.load_db
            try:
                run_tool(argv, env, "psql (pre-data)", stdin=script.encode("utf-8", "surrogateescape"))
            except ServerError as exc:
                missing = re.search(r'ERROR:  role "((?:[^"]|"")*)" does not exist', exc.message)
                if self.opts.owners and missing:  # --owners: the source's roles must exist
                    raise NotFoundError(
                        f"role {missing.group(1)!r} of the backup does not exist on this server "
                        "(--owners gives every object its owner and grants)",
                        hint=f"create the role first (CREATE ROLE {quote_ident(missing.group(1))}"
                        " NOLOGIN), or restore without --owners (the restoring account then "
                        "owns everything)",
                    ) from exc
                raise

    def _sequences(self, conn: Conn) -> None:
        for t in self.m.tables:
            if t.kind != "sequence" or not t.sequence:
                continue
            if (
                self.selected is not None
                and self._scripted(qualified(t.schema, t.name)) not in self.sequences_of_selected
            ):
                continue
            conn.execute(
                "SELECT pg_catalog.setval(%s, %s, %s)",
                (
                    qualified(t.schema, t.name),
                    t.sequence["last_value"],
                    bool(t.sequence["is_called"]),
                ),
            )

    def _post_items(self, post: str, done: set[str]) -> tuple[str, list[tuple[str, str, str]]]:
        """(preamble, the post-data entries still to run as (key, type, sql))."""
        preamble, entries = split_entries(post)
        if self.selected is not None:
            entries = _entries_of(entries, self._script_selected(), _POST_TYPES, post=True)
        items = [
            (f"post:{i}", typ, sql if self.opts.owners else _strip_owners(sql))
            for i, (typ, sql) in enumerate(entries)
            if (self.opts.owners or typ not in _SKIPPED_WITHOUT_OWNERS) and f"post:{i}" not in done
        ]
        return preamble, items

    def _post_data(self, post: str, done: set[str]) -> None:
        """Foreign keys, triggers, rules, the rest of post-data in the dump's order, then
        the materialized views' refreshes (indexes and constraints ran with the data)."""
        preamble, items = self._post_items(post, done)
        rest = [x for x in items if x[1] not in _PARALLEL]  # indexes and constraints are in
        # Event triggers (pg_dump writes them last) come after the refreshes, as with
        # pg_restore: REFRESH MATERIALIZED VIEW is a command they fire on.
        first_event = next((i for i, x in enumerate(rest) if x[1] == "EVENT TRIGGER"), len(rest))
        with connect(self.settings, self.load_db, autocommit=True) as conn:
            set_session(conn, self.encoding)
            if self.toast is not None:  # materialized views' rows
                conn.execute(f"SET default_toast_compression = {quote_str(self.toast)}")
            for item in self.attach_later + rest[:first_event]:
                self._entry(conn, preamble, item)
            if self.selected is None:
                self._refresh_session(conn)
            for t in self.m.tables:  # materialized views, in creation order
                # quoted: "a.b"."c" and "a"."b.c" are two views
                key = f"refresh:{qualified(t.schema, t.name)}"
                if t.kind == "materialized view" and key not in done and self.selected is None:
                    sql = f"REFRESH MATERIALIZED VIEW {self._scripted(qualified(t.schema, t.name))};"
                    self._entry(conn, preamble, (key, "MATERIALIZED VIEW DATA", sql))
            for item in rest[first_event:]:
                self._entry(conn, preamble, item)

    def _refresh_session(self, conn: Conn) -> None:
        """The settings the materialized views' refreshes run with: those that shape text
        (a ``timestamptz::text`` under TimeZone, dates under DateStyle, ``to_tsvector``
        under default_text_search_config, …) as the source database sets them, else the
        server's defaults, as when the source refreshed them (not the restore's own)."""
        for name in ("TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits",
                     "lc_monetary", "bytea_output"):  # fmt: skip
            conn.execute(f"RESET {quote_ident(name)}")  # type: ignore[arg-type]
        for item in self.m.snapshot.get("settings") or []:
            key, _, value = str(item).partition("=")
            if key.lower() in _REFRESH_SETTINGS:
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_catalog.set_config(%s, %s, false)", (key, value))
                except DriverError as exc:  # as the database will (restore_settings) warn
                    self.warnings.append(f"refreshing the materialized views without {item!r}: "
                                         f"{str(exc).strip()}")  # fmt: skip

    def _entry(self, conn: Conn, preamble: str, item: tuple[str, str, str]) -> None:
        self._entries(conn, preamble, [item])

    def _entries(self, conn: Conn, preamble: str, items: list[tuple[str, str, str]]) -> None:
        """Run post-data entries and record their progress rows in ONE transaction and
        one round trip: the statements go as one simple query, which PostgreSQL runs as a
        single transaction (an error rolls all of it back). A Moodle database has ~1,500
        entries, mostly indexes of small tables, so round trips and commits add up."""
        script = preamble + "".join(
            f"{sql}\n;\nINSERT INTO {self.progress_table} (item) VALUES ({quote_str(self._scripted(key))});\n"
            for key, _typ, sql in items
        )
        # the script's own bytes (in the source database's encoding, which the session
        # uses: set_session), not re-encoded by the driver; what is added to it (names,
        # progress keys) is in that encoding too (_scripted)
        conn.execute(script.encode("utf-8", "surrogateescape"))

    def _parallel(self, items: list[Any], fn: Callable[[Conn, Any], None]) -> None:
        run_workers(items, fn, threads=self.opts.threads, stop=self.stop, session=self._worker_session)

    @contextmanager
    def _worker_session(self, n: int) -> Iterator[Conn]:
        """A worker's session (one of ``n``)."""
        with connect(self.settings, self.load_db, autocommit=True) as conn:
            self._session(conn)
            if n > 1:
                # n sessions already keep the cores busy: parallel workers of a CREATE
                # INDEX only add their sort merges and contention (the sample's 8
                # logstore indexes on 2 cores: 26 s -> 19 s)
                conn.execute("SET max_parallel_maintenance_workers = 0")
            yield conn

    # -- large objects ---------------------------------------------------------------------
    def _large_objects(self, done: set[str]) -> None:
        """Large objects (:mod:`moodump.restore.pg_objects`), unless done before a resume."""
        if "large-objects" in done:
            return
        counted = restore_large_objects(self.settings, self.load_db, self.encoding, self.src, self.m,
                                        owners=self.opts.owners, stop=self.stop,
                                        progress_table=self.progress_table)  # fmt: skip
        if counted is None:
            return
        n, nbytes = counted
        with self.lock:
            self.rows_done += n  # as the manifest counts them (total_rows)
        self.tracker.add(n, nbytes)

    # -- data -----------------------------------------------------------------------------
    def _data_and_indexes(self, post: str, done: set[str]) -> int:
        """Load the data files and build indexes and constraints on one worker pool: a
        table's indexes and constraints start as soon as its last file is in (while other
        tables still load, as pg_restore does), the others' after the data. Returns the
        number of files skipped (already loaded before a resume)."""
        preamble, items = self._post_items(post, done)
        todo = [(t, c) for t, c in self.chunks if c.file not in done]
        skipped = len(self.chunks) - len(todo)
        # tables with regclass values load last, once every index is built (a value may
        # name one); their own indexes are built before their rows, on the empty tables
        with connect(self.settings, self.load_db, autocommit=True) as conn:
            set_session(conn, self.encoding)
            late_tables = regclass_tables(conn)
        late = [(t, c) for t, c in todo if qualified(t.schema, t.name) in late_tables]
        todo = [(t, c) for t, c in todo if qualified(t.schema, t.name) not in late_tables]
        with self.lock:
            self.files_done = skipped
        todo.sort(key=lambda x: -x[1].raw_bytes)
        done_chunks = [c for _t, c in self.chunks if c.file in done]
        self.tracker.phase(
            "data",
            rows_total=self.rows_total,
            bytes_total=sum(c.raw_bytes for _t, c in self.chunks),
            tables_total=len({(t.schema, t.name) for t, _c in self.chunks}),
            rows_done=sum(c.rows for c in done_chunks),
            bytes_done=sum(c.raw_bytes for c in done_chunks),
        )
        waiting: dict[str, list[Entry]] = {}
        after: list[Entry] = []
        loaded = {qualified(t.schema, t.name) for t, _c in todo}
        for item in items:
            if item[1] not in _PARALLEL:
                continue
            table = self._table_key(item[2])
            if table is not None and table in loaded:
                waiting.setdefault(table, []).append(item)
            else:
                after.append(item)
        size: dict[str, int] = {}
        for t, c in self.chunks:
            key = qualified(t.schema, t.name)
            size[key] = size.get(key, 0) + c.raw_bytes
        jobs = JobQueue(
            [(qualified(t.schema, t.name), (t, c)) for t, c in todo], waiting, after,
            size=size, table_of=self._table_key, stop=self.stop,
            on_table_done=self.tracker.table_done,
        )  # fmt: skip

        def run(conn: Conn, job: Job) -> None:
            kind, item = job
            if kind == "entry":
                self._entry(conn, preamble, item)
            elif kind == "entries":
                self._entries(conn, preamble, item[1])
            else:
                self._load_chunk(conn, item[1])

        self._parallel([None] * max(1, self.opts.threads), lambda conn, _: jobs.work(conn, run))
        if self.stop.is_set() and jobs.unfinished:
            raise Interrupted("restore interrupted", hint="continue it with --resume")
        if late:
            late.sort(key=lambda x: -x[1].raw_bytes)
            files_left = {qualified(t.schema, t.name): 0 for t, _c in late}
            for t, _c in late:
                files_left[qualified(t.schema, t.name)] += 1

            def load_late(conn: Conn, item: tuple[TableEntry, Any]) -> None:
                self._load_chunk(conn, item)
                key = qualified(item[0].schema, item[0].name)
                with self.lock:
                    files_left[key] -= 1
                    if files_left[key] == 0:
                        self.tracker.table_done()

            self._parallel(late, load_late)
        return skipped

    def _table_key(self, sql: str) -> str | None:
        """The table an index or constraint entry is on, as :func:`qualified` quotes it
        (the script holds it in the database's encoding)."""
        table = _table_of(sql)
        if table is None or not self.encoding:
            return table
        if self._by_script is None:
            self._by_script = {self._scripted(qualified(t.schema, t.name)): qualified(t.schema, t.name)
                               for t, _c in self.chunks}  # fmt: skip
        return self._by_script.get(table, table)

    def _load_chunk(self, conn: Conn, item: tuple[TableEntry, Any]) -> None:
        t, c = item
        self.tracker.working(f"{t.schema}.{t.name}")
        entry = self.files.get(c.file)
        raw = (
            self.src.open_checked(entry)
            if entry and self.src.local_dir is None
            else self.src.open(c.file)
        )
        with conn.transaction():
            # this worker may have run a post-data entry, whose preamble empties search_path
            if self.search_path is None:
                conn.execute("SET LOCAL search_path TO DEFAULT")
            else:
                conn.execute(
                    "SELECT pg_catalog.set_config('search_path', %s, true)", (self.search_path,)
                )
            with open_reader(raw, name=c.file, codec=self.m.codec) as reader:
                copy_in(conn, t.schema, t.name, t.columns, reader, self.stop, via=t.load_clause)
            conn.execute(f"INSERT INTO {self.progress_table} (item) VALUES (%s)", (c.file,))  # type: ignore[arg-type]
        with self.lock:
            self.files_done += 1
            self.rows_done += c.rows
        self.tracker.add(c.rows, c.raw_bytes)
        self.tracker.working("")
        self._emit("data", f"{t.schema}.{t.name}", c.file)
