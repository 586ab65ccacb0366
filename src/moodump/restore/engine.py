"""The restore engine: target preparation, schema, data (:mod:`.load`), indexes,
objects (:mod:`.objects`), and the atomic swap.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from moodump.crypto import Identity, VerifyKey
from moodump.db.connection import Connection, ConnSettings, connect, quote_ident, quote_str
from moodump.db.privileges import (
    DEFINER_PRIVILEGES,
    account_global_privileges,
    account_privileges,
    like_pattern,
)
from moodump.db.workers import LiveConnections, run_interruptible
from moodump.ddl import (
    SplitTable,
    definer_of,
    has_foreign_keys,
    referenced_tables,
    split_secondary_indexes,
)
from moodump.errors import (
    ConfigError,
    Interrupted,
    MoodumpError,
    NotFoundError,
    PrivilegeError,
    TargetNotEmpty,
)
from moodump.manifest import Manifest, TableEntry, parse_object_records
from moodump.progress import Progress
from moodump.restore.load import DataLoader, _setup_load_session
from moodump.restore.model import (
    RESUME_HINT,
    RestoreEvent,
    RestoreOptions,
    RestoreResult,
    check_files,
    progress_table_name,
)
from moodump.restore.objects import ObjectSteps
from moodump.restore.site import SiteSteps
from moodump.restore_script import database_options, sequence_sql
from moodump.source import BackupSource, as_source

log = logging.getLogger("moodump.restore")


def restore(
    path: Path | str | BackupSource,
    settings: ConnSettings,
    database: str,
    options: RestoreOptions | None = None,
    *,
    progress: Callable[[RestoreEvent], None] | None = None,
    stop: threading.Event | None = None,
    identities: Sequence[Identity] = (),
    verify_keys: Sequence[VerifyKey] = (),
    tracker: Progress | None = None,
) -> RestoreResult:
    """Restore the backup at ``path`` into ``database`` on the server of ``settings``.

    ``path`` is a backup directory or any :class:`~moodump.source.BackupSource` (an
    off-site copy, an encrypted one): files are streamed from it, never staged whole.
    An encrypted backup needs ``identities`` (age or ssh private keys); without one
    that matches, :class:`~moodump.errors.DecryptionError` (exit 13) names the keys it
    was encrypted to, before anything is written to the target. With ``verify_keys``
    the manifest must be signed by one of them (``manifest.sig``): an unsigned backup,
    another key's, or a manifest changed after signing raises IntegrityError, before
    anything is written to the target.

    ``tracker`` (a :class:`~moodump.progress.Progress`) counts the rows and bytes sent
    to the server, for the terminal display and the progress log lines.

    :raises TargetNotEmpty: the target has tables and neither ``drop`` nor ``resume``.
    :raises IntegrityError: a file does not match the manifest (target untouched).
    """
    opts = options or RestoreOptions()
    if opts.threads < 1 or opts.threads > 64:
        raise ConfigError(f"--threads {opts.threads} is out of range", hint="use 1..64")
    if not database or len(database) > 64:
        raise ConfigError(f"invalid target database name {database!r}", hint="use 1-64 characters")
    if opts.atomic and opts.resume:
        raise ConfigError("--atomic and --resume cannot be combined", hint="pick one")
    src = as_source(path, identities, verify_keys)
    manifest = src.done_manifest()
    if manifest.database_type == "postgresql":
        from moodump.restore.pg import restore_postgres

        return restore_postgres(
            src, manifest, settings, database, opts, progress=progress, stop=stop, tracker=tracker
        )
    site = SiteSteps(opts, manifest, database)  # checks --staging's columns; no side effect
    run = Restore(src, manifest, settings.with_database(None), database, opts, progress, stop)
    run.tracker = tracker or run.tracker
    run.after_load = site.after_load
    site.enter()  # --moodle-maintenance: before the target is touched
    try:
        result = _run(run, opts, database)
        site.finish(settings.with_database(None), result)
    except BaseException as exc:
        site.failed(exc)
        raise
    return result


def _run(run: Restore, opts: RestoreOptions, database: str) -> RestoreResult:
    with run.tracker.operation("restore", database):
        result, pool = run_interruptible(run.run, run.stop, run.kill_all)
    if pool.interrupted:
        raise Interrupted(
            "restore interrupted",
            hint="continue it with the same command and --resume"
            if not opts.atomic
            else "run it again (the target was not changed)",
        )
    if pool.errors:
        real = [e for e in pool.errors if not isinstance(e, Interrupted)]
        raise (real or pool.errors)[0]
    assert result is not None
    return result


#: Seconds a cleanup after a failure waits for a table lock before it gives up.
CLEANUP_LOCK_WAIT_S = 30


class Restore(DataLoader, ObjectSteps):
    def __init__(
        self,
        src: BackupSource,
        manifest: Manifest,
        settings: ConnSettings,
        database: str,
        opts: RestoreOptions,
        progress: Callable[[RestoreEvent], None] | None,
        stop: threading.Event | None,
    ) -> None:
        self.src = src
        self.m = manifest
        self.files = {f.name: f for f in manifest.files}
        self.settings = settings
        self.target = database
        self.opts = opts
        self.progress_cb = progress
        self.stop = stop or threading.Event()
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.rows_done = 0
        self.files_done = 0
        self.files_total = 0
        self.rows_total = 0
        self.warnings: list[str] = []
        self.tables = self._selected_tables()
        self.load_db = database
        #: This restore created the target database (it did not exist before).
        self.created_target = False
        self.manifest_id = hashlib.sha256(src.manifest_bytes()).hexdigest()
        self.progress_table = progress_table_name(t.name for t in manifest.tables)
        # Schema and object files are small and read before any data: fetch them at once
        # (concurrently from object storage; a no-op for a directory).
        src.prefetch([f.name for f in manifest.files if f.kind != "data" and f.bytes < 4 << 20])
        src.prefetch(_small_data_files(manifest), once=True)
        self.deferred: dict[str, SplitTable] = self._plan_deferred_indexes()
        self.insert_mode = False  # set when the server refuses LOAD DATA LOCAL
        self._live = LiveConnections(settings)
        self._chunks_left: dict[str, int] = {}
        self.tracker = Progress()
        #: Called with the loaded database before the swap and the objects (--staging).
        self.after_load: Callable[[Connection, str], None] | None = None

    def _plan_deferred_indexes(self) -> dict[str, SplitTable]:
        schemas = {t.name: self._text(t.schema_file) for t in self.tables if t.schema_file}
        in_fk: set[str] = set()
        for name, create in schemas.items():
            refs = referenced_tables(create)
            if refs or has_foreign_keys(create):
                in_fk |= refs | {name}
        out = {}
        for t in self.tables:
            size = sum(c.raw_bytes for c in t.chunks)
            if (
                t.name in schemas
                and t.name not in in_fk
                and size >= self.opts.defer_indexes_min_bytes
            ):
                split = split_secondary_indexes(schemas[t.name].rstrip().rstrip(";"))
                if split.indexes:
                    out[t.name] = split
        return out

    def _text(self, name: str) -> str:
        """A schema or object file's text, checked against the manifest when it lists it."""
        entry = self.files.get(name)
        data = self.src.checked_bytes(entry) if entry else self.src.read_bytes(name)
        return data.decode("utf-8")

    def _connect(self, settings: ConnSettings, *, local_infile: bool = False) -> Connection:
        """Open a connection that an interrupt can reach (see :meth:`kill_all`)."""
        return self._live.open(settings, local_infile=local_infile)

    def kill_all(self) -> None:
        """Kill the running statement of every connection of this restore (on Ctrl-C)."""
        self.stop.set()
        self._live.kill()

    def kill_connections(self) -> None:
        """Close every connection of this restore from the server's side (a killed
        statement that does not return: see :func:`moodump.restore.load._release_fifos`)."""
        self._live.kill(connection=True)

    def _selected_tables(self) -> list[TableEntry]:
        if not self.opts.tables:
            return list(self.m.tables)
        out: list[TableEntry] = []
        for name in self.opts.tables:
            exact = next((t for t in self.m.tables if t.name == name), None)
            if exact is None and any(ch in name for ch in "*?["):  # a glob, as dump --table takes
                matched = [t for t in self.m.tables if fnmatch.fnmatchcase(t.name, name)]
                if not matched:
                    raise NotFoundError(
                        f"--table {name!r} matches no table of the backup",
                        hint="moodump list shows the backups; the manifest names the tables",
                    )
                out += [t for t in matched if t not in out]
            elif (entry := self.m.table(name)) not in out:  # NotFoundError names it
                out.append(entry)
        return out

    def _emit(self, phase: str, table: str = "", file: str = "") -> None:
        if phase in ("check", "schema", "objects"):
            self.tracker.phase(phase)
        elif phase == "indexes":
            self.tracker.working(f"{table} (indexes)")
        if self.progress_cb is None:
            return
        with self.lock:
            self.progress_cb(
                RestoreEvent(
                    phase,
                    table,
                    self.files_done,
                    self.files_total,
                    self.rows_done,
                    self.rows_total,
                    time.monotonic() - self.t0,
                    file,
                )
            )

    def run(self) -> RestoreResult:
        try:
            return self._run()
        except BaseException as exc:
            # Best effort: the server may be the problem.
            with contextlib.suppress(Exception), connect(self.settings) as conn:
                self._clean_up_failure(conn, exc)
            raise

    def _clean_up_failure(self, conn: Connection, exc: BaseException) -> None:
        """After a failure, remove what the restore created that nothing can use.

        A failed --atomic restore leaves the target as it was: its staging database goes,
        and so does the target when this restore created it. Otherwise a target this
        restore created stays only when ``--resume`` can use it: the restore was
        interrupted, or some data file is loaded and recorded (the error then says so).
        """
        # A killed LOAD DATA can linger on the server ("Killed", holding its table's
        # metadata lock: see load._release_fifos); a DROP waits for that lock, by default
        # for a year. Bounded, a cleanup that cannot happen fails instead of hanging.
        conn.execute(f"SET SESSION lock_wait_timeout = {CLEANUP_LOCK_WAIT_S}")
        if self.load_db != self.target:
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(self.load_db)}")
        hint = exc.hint if isinstance(exc, MoodumpError) else None
        qdb = quote_ident(self.target)
        interrupted = self.stop.is_set() or isinstance(exc, (Interrupted, KeyboardInterrupt))
        recorded = False
        if not self.opts.atomic and self.progress_table in self._existing_tables(conn, self.target):
            recorded = bool(
                conn.query(f"SELECT 1 FROM {qdb}.{quote_ident(self.progress_table)} LIMIT 1")
            )
        if self.created_target and (self.opts.atomic or not (interrupted or recorded)):
            conn.execute(f"DROP DATABASE IF EXISTS {qdb}")
            if isinstance(exc, MoodumpError):
                exc.hint = (hint or "fix the cause").replace(RESUME_HINT, "") + (
                    f"; database {self.target!r} did not exist before and was removed: "
                    "run the same command again"
                )
        elif recorded and isinstance(exc, MoodumpError) and "--resume" not in (hint or ""):
            exc.hint = (hint or "fix the cause") + (
                "; then continue with the same command and --resume (the loaded files of "
                f"{self.target!r} are recorded)"
            )

    def _check_privileges(self, conn: Connection) -> None:
        """Refuse before writing anything when the account cannot finish the restore."""
        privs = account_privileges(conn, self.target)
        if privs is None:
            return
        need = {"CREATE", "INSERT"}
        if self.opts.drop or self.opts.atomic:
            need.add("DROP")
        if self.opts.atomic or self.deferred:
            need.add("ALTER")
        if self.deferred:
            need.add("INDEX")
        if self.opts.objects and self.m.objects.get("definitions"):
            name = self.m.objects["definitions"]
            records = parse_object_records(self._text(name), name)
            kinds = {r["kind"] for r in records}
            if self.opts.tables:
                kinds &= {"trigger"}
            need |= {
                {"view": "CREATE VIEW", "trigger": "TRIGGER", "event": "EVENT"}.get(
                    k, "CREATE ROUTINE"
                )
                for k in kinds
            }
        missing = sorted(need - privs)
        if not missing and self.opts.atomic:
            # The staging and old-tables databases <target>__mdstage_/__mdold_<id> are
            # created, filled (objects too) and dropped: the same privileges there.
            staged = account_privileges(conn, self._staging_name()) or set()
            old = account_privileges(conn, f"{self.target[:40]}__mdold_00000000") or set()
            lacking = sorted(need - (staged & old))
            if lacking:
                pattern = like_pattern(self.target[:40] + "__md") + "%"
                raise PrivilegeError(
                    f"{self.settings.describe()} lacks {', '.join(lacking)} on the "
                    f"databases --atomic stages in (`{pattern}`.*); the restore would stop "
                    "half-way",
                    hint=f"GRANT {', '.join(sorted(need))} ON `{pattern}`.* to the account, "
                    "or restore without --atomic (--drop replaces the tables in place); "
                    "nothing was changed",
                )
        if not missing:
            self._check_definers(conn)
        if missing:
            raise PrivilegeError(
                f"{self.settings.describe()} lacks {', '.join(missing)} on "
                f"`{self.target}`.*; the restore would stop half-way",
                hint=f"GRANT {', '.join(missing)} ON `{self.target}`.* to the account, "
                "or restore with an account that has them; nothing was changed",
            )

    def _check_definers(self, conn: Connection) -> None:
        """Objects of another DEFINER need SET USER (or SUPER): refused before anything
        is written when the account lacks it, rather than after every table is loaded."""
        name = self.m.objects.get("definitions")
        if not self.opts.objects or not name:
            return
        records = parse_object_records(self._text(name), name)
        if self.opts.tables:
            wanted = {t.name for t in self.tables}
            records = [r for r in records if r["kind"] == "trigger" and r["table"] in wanted]
        if not records:
            return
        me = (conn.scalar("SELECT CURRENT_USER()") or b"").decode("utf-8", "replace")
        user, _, host = me.rpartition("@")
        others = []
        for r in records:
            definer = definer_of(base64.b64decode(r["create_b64"]))
            if definer and (definer[0] != user or definer[1].lower() != host.lower()):
                others.append((r, definer))
        if not others:
            return
        privs = account_global_privileges(conn)
        if privs is None or privs & DEFINER_PRIVILEGES:
            return
        shown = ", ".join(f"{r['kind']} {r['name']!r} ({u}@{h})" for r, (u, h) in others[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        raise PrivilegeError(
            f"{self.settings.describe()} ({me}) lacks SET USER (or SUPER), needed to create "
            f"objects of another DEFINER: {shown}{more}; the restore would stop half-way",
            hint="GRANT SET USER ON *.* to the account, or restore with an account that has "
            "it (or as the definer); --no-objects restores the tables alone; nothing was changed",
        )

    def _run(self) -> RestoreResult:
        partial = bool(self.opts.tables)
        if self.opts.check_files:
            self._emit("check")
            names = None
            if partial:
                names = {t.schema_file for t in self.tables} | {
                    c.file for t in self.tables for c in t.chunks
                }
                names |= {"objects.json", "database.sql"}
            if self.src.local_dir is not None:
                check_files(self.src.local_dir, self.m, names, threads=self.opts.threads)
            else:
                # Elsewhere (object storage) each file's sha256 is checked as it is read
                # (reading every file twice would double the transfer); one listing
                # proves every file is there before the target is touched.
                self.src.check_listed([f for f in self.m.files if names is None or f.name in names])
        definitions = self.m.objects.get("definitions")
        if self.opts.objects and definitions:
            # a damaged objects.json is refused before the target is touched
            parse_object_records(self._text(definitions), definitions)
        with self._connect(self.settings) as conn:
            _setup_load_session(conn)
            self._check_privileges(conn)
            if partial and not self.opts.resume:
                self._check_trigger_names(conn)
            if self.opts.atomic and partial:
                self._check_foreign_keys_stay_inside(conn)
            self._prepare_target(conn, partial)
            if self.opts.atomic:
                self.load_db = self._staging_name()
                conn.execute(
                    f"CREATE DATABASE {quote_ident(self.load_db)} {database_options(self.m.database_ddl)}"
                )
            conn.execute(f"USE {quote_ident(self.load_db)}")
            done = self._progress_table(conn)
            if self.opts.resume:
                done = self._forget_memory_tables(conn, done)
            self._emit("schema")
            self._create_tables(conn, done)
        skipped = self._load_data(done)
        with self._connect(self.settings) as conn:
            _setup_load_session(conn)
            conn.execute(f"USE {quote_ident(self.load_db)}")
            self._sequences(conn)
            if self.after_load is not None:
                self.after_load(conn, self.load_db)
            if self.opts.atomic:
                if self.opts.objects:
                    self._check_objects_in_staging(conn, partial)
                self._swap(conn)
                conn.execute(f"USE {quote_ident(self.target)}")
            if self.opts.objects:
                self._emit("objects")
                self._create_objects(conn, partial)
            conn.execute(
                f"DROP TABLE IF EXISTS {quote_ident(self.target)}.{quote_ident(self.progress_table)}"
            )
        self._emit("done")
        return RestoreResult(
            self.target,
            len(self.tables),
            self.rows_done,
            self.files_done,
            skipped,
            time.monotonic() - self.t0,
            self.warnings,
        )

    # -- target preparation -------------------------------------------------------------
    def _existing_tables(self, conn: Connection, db: str) -> list[str]:
        return [
            (r[0] or b"").decode("utf-8", "surrogateescape")
            for r in conn.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                + quote_str(db)
            )
        ]

    def _db_exists(self, conn: Connection, db: str) -> bool:
        return bool(
            conn.query(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = " + quote_str(db)
            )
        )

    def _prepare_target(self, conn: Connection, partial: bool) -> None:
        qdb = quote_ident(self.target)
        exists = self._db_exists(conn, self.target)
        self.created_target = not exists and not self.opts.resume
        existing = self._existing_tables(conn, self.target) if exists else []
        if self.opts.resume:
            if self.progress_table not in existing:
                raise NotFoundError(
                    f"nothing to resume in {self.target!r} (no restore progress record)",
                    hint="run the restore without --resume (add --drop to replace the database)",
                )
            return
        if self.tables and not any(t.schema_file for t in self.tables):
            # A --data-only dump (a database without tables is restored as a whole).
            self._prepare_data_only(conn, existing)
            return
        in_way = [t for t in existing if not partial or t in {x.name for x in self.tables}]
        if in_way and not self.opts.drop and not self.opts.atomic:
            shown = ", ".join(sorted(in_way)[:5]) + (" ..." if len(in_way) > 5 else "")
            raise TargetNotEmpty(
                f"target database {self.target!r} is not empty ({len(in_way)} tables: {shown})",
                hint="pass --drop to replace them, --atomic to swap them, or pick another --database",
            )
        if self.opts.atomic:
            if not exists:
                conn.execute(f"CREATE DATABASE {qdb} {database_options(self.m.database_ddl)}")
            return
        if partial:
            if not exists:
                conn.execute(f"CREATE DATABASE {qdb} {database_options(self.m.database_ddl)}")
            for t in in_way:
                conn.execute(f"DROP TABLE {qdb}.{quote_ident(t)}")
            return
        if exists and self.opts.drop:
            conn.execute(f"DROP DATABASE {qdb}")
            exists = False
        if not exists:
            conn.execute(f"CREATE DATABASE {qdb} {database_options(self.m.database_ddl)}")

    def _prepare_data_only(self, conn: Connection, existing: list[str]) -> None:
        """A --data-only backup loads into existing tables; --drop empties them first."""
        if self.opts.atomic:
            raise ConfigError(
                "a --data-only backup cannot be restored with --atomic", hint="drop --atomic"
            )
        qdb = quote_ident(self.target)
        for t in self.tables:
            if t.name not in existing:
                raise NotFoundError(
                    f"table {t.name!r} does not exist in {self.target!r} and the backup has no "
                    "schema (a --data-only dump)",
                    hint="create the tables first, or restore a full backup",
                )
            if t.kind != "table":
                continue
            qt = f"{qdb}.{quote_ident(t.name)}"
            if self.opts.drop:
                conn.execute(f"DELETE FROM {qt}")
            elif conn.query(f"SELECT 1 FROM {qt} LIMIT 1"):
                raise TargetNotEmpty(
                    f"table {t.name!r} in {self.target!r} already has rows",
                    hint="pass --drop to empty the tables before loading",
                )

    def _staging_name(self) -> str:
        return f"{self.target[:40]}__mdstage_{uuid.uuid4().hex[:8]}"

    def _progress_table(self, conn: Connection) -> set[str]:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quote_ident(self.progress_table)} ("
            "file VARCHAR(255) NOT NULL PRIMARY KEY, rows_loaded BIGINT NOT NULL, "
            "backup CHAR(64) NOT NULL, loaded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )
        rows = conn.query(f"SELECT file, backup FROM {quote_ident(self.progress_table)}")
        done = set()
        for f, b in rows:
            if (b or b"").decode() != self.manifest_id:
                raise ConfigError(
                    f"the interrupted restore in {self.target!r} was of another backup",
                    hint="restore with --drop instead of --resume",
                )
            done.add((f or b"").decode("utf-8", "surrogateescape"))
        return done

    def _check_foreign_keys_stay_inside(self, conn: Connection) -> None:
        """--atomic --table: refuse a foreign key between a selected table and another.

        A key follows the table it references through RENAME TABLE: the swapped-in
        table's key would name the staging database's copy of the other table, and the
        target's other table's key the old-tables database's, both dropped after it.
        """
        selected = {t.name for t in self.tables}
        links: list[str] = []
        for t in self.tables:
            if not t.schema_file:
                continue
            for other in sorted(referenced_tables(self._text(t.schema_file)) - selected):
                links.append(f"{t.name!r} -> {other!r}")
        names = ", ".join(quote_str(n) for n in sorted(selected))
        for key, table, ref in conn.query(
            "SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME FROM "
            "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = "
            f"{quote_str(self.target)} AND (TABLE_NAME IN ({names}) OR "
            f"REFERENCED_TABLE_NAME IN ({names}))"
        ):
            child, parent = (table or b"").decode(), (ref or b"").decode()
            if (child in selected) != (parent in selected):
                links.append(f"{child!r} -> {parent!r} ({(key or b'').decode()})")
        if links:
            raise ConfigError(
                "--atomic cannot swap in some tables linked by a foreign key to a table "
                f"it leaves: {', '.join(sorted(set(links)))}; the key would name a "
                "database the swap drops",
                hint="add the linked tables (--table), or restore these without --atomic "
                "(--drop replaces them in place); nothing was changed",
            )

    def _forget_memory_tables(self, conn: Connection, done: set[str]) -> set[str]:
        """--resume: the recorded files of MEMORY tables are loaded again. A server
        restart (the crash being resumed from) empties those tables, while their files
        stay recorded as loaded."""
        for t in self.tables:
            files = {c.file for c in t.chunks} & done
            if t.engine.lower() != "memory" or not files:
                continue
            log.info("%s: a MEMORY table, its %d recorded files load again", t.name, len(files))
            conn.execute(f"DELETE FROM {quote_ident(t.name)}")
            names = ", ".join(quote_str(f) for f in sorted(files))
            conn.execute(f"DELETE FROM {quote_ident(self.progress_table)} WHERE file IN ({names})")
            done = done - files
        return done

    def _create_tables(self, conn: Connection, done: set[str]) -> None:
        existing = set(self._existing_tables(conn, self.load_db))
        # Sequences first: a table whose DEFAULT calls nextval() needs its sequence.
        for t in sorted(self.tables, key=lambda t: t.kind != "sequence"):
            if not t.schema_file:
                if t.name not in existing:
                    raise NotFoundError(
                        f"table {t.name!r} does not exist in the target and the backup has no schema "
                        "(a --data-only dump)",
                        hint="create the tables first, or restore a full backup",
                    )
                continue
            if t.name in existing:
                if self.opts.resume:
                    continue
                raise TargetNotEmpty(f"table {t.name!r} already exists", hint="use --drop")
            if t.name in self.deferred:
                conn.execute(self.deferred[t.name].create)
            else:
                ddl = self._text(t.schema_file)
                conn.execute(ddl.rstrip().rstrip(";"))

    # -- data ----------------------------------------------------------------------------
    def _build_indexes(self, conn: Connection, table: str) -> None:
        """Add the deferred secondary indexes (those not there yet) and record it."""
        split = self.deferred[table]
        have = {
            (r[0] or b"").decode("utf-8", "surrogateescape")
            for r in conn.query(
                "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE "
                f"TABLE_SCHEMA = {quote_str(self.load_db)} AND TABLE_NAME = {quote_str(table)}"
            )
        }
        clauses = [
            c for c, n in zip(split.indexes, split.index_names(), strict=True) if n not in have
        ]
        if clauses:
            self._emit("indexes", table)
            conn.execute(f"ALTER TABLE {quote_ident(table)} " + ", ".join(clauses))
        conn.execute(
            f"INSERT IGNORE INTO {quote_ident(self.progress_table)} (file, rows_loaded, backup) VALUES "
            f"({quote_str('index:' + table)}, 0, {quote_str(self.manifest_id)})"
        )

    # -- after the data ------------------------------------------------------------------
    def _sequences(self, conn: Connection) -> None:
        for t in self.tables:
            if t.kind == "sequence" and t.sequence:
                for stmt in sequence_sql(t.name, t.sequence):
                    conn.execute(stmt)

    def _repoint_sequence_defaults(self, conn: Connection) -> None:
        """A DEFAULT nextval(seq) keeps the database it was created in: after the swap
        it would name the staging database (dropped next). Point it at the target's,
        every such column of a table in one ALTER (each one re-reads all defaults)."""
        stage = quote_ident(self.load_db).encode() + b"."
        qt = quote_ident(self.target)
        alters: dict[bytes, list[bytes]] = {}
        for table, column, default in conn.query(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS "
            f"WHERE TABLE_SCHEMA = {quote_str(self.target)} AND LOCATE('val(', COLUMN_DEFAULT)"
        ):
            if default is None or stage not in default:
                continue
            expr = default.replace(stage, qt.encode() + b".")
            col = quote_ident((column or b"").decode()).encode()
            alters.setdefault(table or b"", []).append(
                b"ALTER COLUMN " + col + b" SET DEFAULT (" + expr + b")"
            )
        for table, clauses in alters.items():
            name = quote_ident(table.decode()).encode()
            conn.execute(b"ALTER TABLE " + qt.encode() + b"." + name + b" " + b", ".join(clauses))

    def _swap(self, conn: Connection) -> None:
        """Move staged tables into the target in one RENAME; old tables go away after."""
        old_db = f"{self.target[:40]}__mdold_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE DATABASE {quote_ident(old_db)}")
        qt, qs, qo = quote_ident(self.target), quote_ident(self.load_db), quote_ident(old_db)
        existing = set(self._existing_tables(conn, self.target))
        moves = []
        for t in self.tables:
            n = quote_ident(t.name)
            if t.name in existing:
                # Triggers cannot move between databases with their table; drop them.
                for (trg,) in conn.query(
                    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
                    f"TRIGGER_SCHEMA = {quote_str(self.target)} AND EVENT_OBJECT_TABLE = "
                    + quote_str(t.name)
                ):
                    conn.execute(f"DROP TRIGGER {qt}.{quote_ident((trg or b'').decode())}")
                moves.append(f"{qt}.{n} TO {qo}.{n}")
            moves.append(f"{qs}.{n} TO {qt}.{n}")
        if moves:
            conn.execute("RENAME TABLE " + ", ".join(moves))
            self._repoint_sequence_defaults(conn)
        if not self.opts.tables:
            # A full restore replaces the whole database: tables the backup lacks go too.
            for name in sorted(existing - {t.name for t in self.tables}):
                if name != self.progress_table:
                    conn.execute(f"DROP TABLE IF EXISTS {qt}.{quote_ident(name)}")
            self._drop_objects(conn)
        conn.execute(f"DROP DATABASE {qs}")
        conn.execute(f"DROP DATABASE {qo}")


#: Small data files fetched ahead from a remote source, up to this much in all: most of a
#: Moodle database is hundreds of small tables, where a round trip per file would
#: dominate; big files stream as the loaders reach them.
PREFETCH_DATA_BYTES = 64 << 20


def _small_data_files(m: Manifest) -> list[str]:
    out, total = [], 0
    for f in sorted((f for f in m.files if f.kind == "data"), key=lambda f: f.bytes):
        if f.bytes > 1 << 20 or total + f.bytes > PREFETCH_DATA_BYTES:
            break
        out.append(f.name)
        total += f.bytes
    return out
