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
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moodump.compression import open_reader
from moodump.db.connection import ConnSettings
from moodump.errors import ConfigError, Interrupted, MoodumpError, NotFoundError, TargetNotEmpty
from moodump.manifest import Manifest, TableEntry
from moodump.pg.catalog import server_version
from moodump.pg.connection import (
    Conn,
    DriverError,
    connect,
    pg_error,
    qualified,
    quote_ident,
    quote_str,
    set_session,
)
from moodump.pg.copyio import copy_in
from moodump.pg.tools import client_for, run_tool, tool_env
from moodump.progress import Progress
from moodump.restore.model import RestoreEvent, RestoreOptions, RestoreResult, check_files
from moodump.source import BackupSource

PROGRESS_SCHEMA = "_moodump_restore"
_PROGRESS = f"{quote_ident(PROGRESS_SCHEMA)}.progress"
_HEADER = re.compile(r"^--\n-- (?:Data for )?Name: .*; Type: (?P<type>[^;]+); Schema: .*$", re.M)
_OWNER = re.compile(r"^ALTER [A-Z ]+ .* OWNER TO .*;$", re.M)
_PARALLEL = {"INDEX", "CONSTRAINT"}
_SKIPPED_WITHOUT_OWNERS = {"ACL", "DEFAULT ACL"}


_TOKEN = re.compile(r"'|\"|\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$|--|/\*|\n")


def top_level_lines(text: str) -> set[int]:
    """Offsets of the lines of a pg_dump script that start outside any string literal,
    quoted identifier, dollar-quoted body or block comment. Only those can be entry
    headers, psql meta-commands or ``OWNER TO`` statements: the same text inside a
    comment string or a function body is data and must stay as it is."""
    out = {0}
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN.search(text, pos)
        if m is None:
            break
        tok, i = m.group(), m.start()
        if tok == "\n":
            out.add(i + 1)
            pos = i + 1
        elif tok == "--":  # to the end of the line (the newline is seen next)
            j = text.find("\n", i)
            pos = n if j < 0 else j
        elif tok == "/*":
            j = text.find("*/", i + 2)
            pos = n if j < 0 else j + 2
        elif tok in ("'", '"'):
            j = i + 1
            while True:
                j = text.find(tok, j)
                if j < 0 or text.startswith(tok, j + 1) is False:
                    break
                j += 2  # a doubled quote
            pos = n if j < 0 else j + 1
        else:  # $tag$ … $tag$
            j = text.find(tok, i + len(tok))
            pos = n if j < 0 else j + len(tok)
    return out


def split_entries(script: str) -> tuple[str, list[tuple[str, str]]]:
    """(preamble, [(type, sql)]) of a pg_dump plain script, split at its entry headers;
    psql meta-commands (``\\restrict``/``\\unrestrict``) are dropped. Only headers and
    meta-commands at the top level count (:func:`top_level_lines`)."""
    starts = top_level_lines(script)
    lines, at = [], 0
    for line in script.split("\n"):
        if not (line.startswith("\\") and at in starts):
            lines.append(line)
        at += len(line) + 1
    text = "\n".join(lines)
    starts = top_level_lines(text)
    marks = [mk for mk in _HEADER.finditer(text) if mk.start() in starts]
    if not marks:
        return text, []
    preamble = text[: marks[0].start()]
    out = []
    for i, mk in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append((mk.group("type"), text[mk.start() : end]))
    return preamble, out


_ON_TABLE = re.compile(
    r'^(?:CREATE (?:UNIQUE )?INDEX "(?:[^"]|"")+" ON (?:ONLY )?|ALTER TABLE ONLY )'
    r'("(?:[^"]|"")+"\."(?:[^"]|"")+")',
    re.M,
)


def _table_of(sql: str) -> str | None:
    """The quoted ``"schema"."table"`` an index or constraint entry is on (pg_dump runs
    with ``--quote-all-identifiers``), or None."""
    m = _ON_TABLE.search(sql)
    return m.group(1) if m else None


_PRE_TYPES = {"TABLE", "DEFAULT", "SEQUENCE", "SEQUENCE OWNED BY", "COMMENT", "ACL",
              "TABLE ATTACH", "CONSTRAINT", "CHECK CONSTRAINT"}  # fmt: skip
_POST_TYPES = {"INDEX", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "RULE", "POLICY",
               "STATISTICS", "COMMENT"}  # fmt: skip
_QUALIFIED = re.compile(r'"(?:[^"]|"")+"\."(?:[^"]|"")+"')


def _select(m: Manifest, patterns: tuple[str, ...]) -> set[str] | None:
    """The quoted ``"schema"."table"`` names ``--table`` picks (``schema.table`` or
    ``table``, names or globs); None for a whole restore."""
    if not patterns:
        return None
    tables = [t for t in m.tables if t.kind == "table"]
    out: set[str] = set()
    for p in patterns:
        hits = [t for t in tables if fnmatch.fnmatchcase(f"{t.schema}.{t.name}", p)
                or fnmatch.fnmatchcase(t.name, p)]  # fmt: skip
        if not hits:
            raise NotFoundError(f"--table {p!r} matches no table of the backup",
                                hint="name tables as schema.table or table")  # fmt: skip
        out |= {qualified(t.schema, t.name) for t in hits}
    return out


def _entries_of(
    entries: list[tuple[str, str]], tables: set[str], types: set[str], *, post: bool = False
) -> list[tuple[str, str]]:
    """The entries of a pg_dump script that belong to ``tables``: their definitions,
    defaults, comments, owned sequences (pre-data); their indexes, constraints, triggers,
    rules (post-data: foreign keys *from* them only)."""

    def mentions(sql: str) -> bool:
        return any(q in sql for q in tables)

    keep: list[int] = []
    for i, (typ, sql) in enumerate(entries):
        if typ not in types:
            continue
        if post and typ in ("INDEX", "CONSTRAINT", "FK CONSTRAINT"):
            if _table_of(sql) in tables:
                keep.append(i)
        elif mentions(sql):
            keep.append(i)
    if not post:
        # sequences the tables own or default to: CREATE SEQUENCE does not name the table
        used = {q for i in keep if entries[i][0] in ("SEQUENCE OWNED BY", "DEFAULT")
                for q in _QUALIFIED.findall(entries[i][1])}  # fmt: skip
        keep += [
            i for i, (typ, sql) in enumerate(entries)
            if typ == "SEQUENCE" and i not in keep
            and any(f"CREATE SEQUENCE {q}" in sql for q in used)
        ]  # fmt: skip
    return [entries[i] for i in sorted(keep)]


_EVT_STATE = {"O": "ENABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def _drop_progress(conn: Conn) -> None:
    """Drop the progress schema. The restored event triggers would fire on (and may
    refuse) that DROP: they are disabled around it in the same transaction
    (``ALTER EVENT TRIGGER`` is not a command event triggers fire on)."""
    with conn.transaction():
        evts = conn.execute(
            "SELECT evtname, evtenabled FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D'"
        ).fetchall()
        for name, _state in evts:
            conn.execute(f"ALTER EVENT TRIGGER {quote_ident(name)} DISABLE")  # type: ignore[arg-type]
        conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(PROGRESS_SCHEMA)} CASCADE")  # type: ignore[arg-type]
        for name, state in evts:
            conn.execute(f"ALTER EVENT TRIGGER {quote_ident(name)} {_EVT_STATE[state]}")  # type: ignore[arg-type]


def _strip_owners(sql: str) -> str:
    """``ALTER … OWNER TO`` statements removed (at the top level only: the same line in a
    function body is the function's)."""
    starts = top_level_lines(sql)
    return _OWNER.sub(lambda m: "" if m.start() in starts else m.group(), sql)


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
    run = PgRestore(src, manifest, settings, database, opts, progress, stop or threading.Event())
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
            hint="continue it with the same command and --resume" if not opts.atomic
            else "run it again (the target was not changed)",
        ) from None


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
        self.selected = _select(m, opts.tables)  # quoted "schema"."table" names; None: all
        self.sequences_of_selected: set[str] = set()
        self.chunks = [
            (t, c) for t in m.tables if t.kind == "table" and self._wanted(t) for c in t.chunks
        ]
        self.files_total = len(self.chunks)
        self.rows_total = sum(c.rows for _, c in self.chunks)
        self.load_db = database
        self.encoding = str(m.snapshot.get("encoding") or "")  # the source's, of the data files
        paths = [str(x).partition("=")[2] for x in m.snapshot.get("settings") or []
                 if str(x).partition("=")[0].lower() == "search_path"]  # fmt: skip
        self.search_path: str | None = paths[0] if paths else None
        self.warnings: list[str] = []
        self.tracker = Progress()

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

    def _admin(self) -> Conn:
        """A connection to the maintenance database (``postgres``, else ``template1``)."""
        try:
            return connect(self.settings, self.settings.database or "postgres", autocommit=True)
        except NotFoundError:
            return connect(self.settings, "template1", autocommit=True)

    def run(self) -> RestoreResult:
        if self.opts.check_files:
            self._emit("check")
            if self.src.local_dir is not None:
                check_files(self.src.local_dir, self.m)
        pre = self._text(self.m.objects["pre_data"]) if self.m.objects.get("pre_data") else ""
        post = self._text(self.m.objects["post_data"]) if self.m.objects.get("post_data") else ""
        if self.selected is not None:  # the sequences the named tables own or use
            own = _entries_of(split_entries(pre)[1], self.selected, _PRE_TYPES)
            self.sequences_of_selected = {q for _t, sql in own for q in _QUALIFIED.findall(sql)}
        with self._admin() as admin:
            major, _ = server_version(admin)
            bindir, _ = client_for(major)
            fresh = self._prepare_partial(admin) if self.selected is not None else self._prepare(admin)
        try:
            with connect(self.settings, self.load_db, autocommit=True) as conn:
                done = self._done(conn)
            if "pre-data" not in done:
                self._emit("schema")
                self._pre_data(bindir, pre)
            skipped = self._data_and_indexes(post, done)
            if self.selected is None:
                self._large_objects(done)
            with connect(self.settings, self.load_db, autocommit=True) as conn:
                self._sequences(conn)
            self._emit("objects")
            self._post_data(post, done)
            with connect(self.settings, self.load_db, autocommit=True) as conn:
                if self.opts.analyze and self.selected is not None:
                    for name in sorted(self.selected):
                        conn.execute(f"ANALYZE {name}")
                elif self.opts.analyze:
                    conn.execute("ANALYZE")
                _drop_progress(conn)
            if self.selected is None and (fresh or self.opts.resume):
                self._database_settings()
            if self.load_db != self.target:
                self._swap()
        except BaseException:
            if self.load_db != self.target or (fresh and self.opts.atomic):
                self._drop_quietly(self.load_db)
            raise
        self._emit("done")
        return RestoreResult(
            self.target, sum(1 for t in self.m.tables if t.kind == "table" and self._wanted(t)),
            self.rows_done,
            self.files_done, skipped, time.monotonic() - self.t0, self.warnings,
        )  # fmt: skip

    # -- target ---------------------------------------------------------------------------
    def _exists(self, admin: Conn, name: str) -> bool:
        return admin.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def _create(self, admin: Conn, name: str) -> None:
        snap = self.m.snapshot
        base = f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0"
        if snap.get("encoding"):
            base += f" ENCODING {quote_str(str(snap['encoding']))}"
        provider = {"i": "icu", "b": "builtin"}.get(str(snap.get("locale_provider", "")))
        if provider:  # the default collation of an ICU (or builtin) database
            locale = quote_str(str(snap.get("locale", "")))
            provider += f" {'ICU_LOCALE' if provider == 'icu' else 'BUILTIN_LOCALE'} {locale}"
        try:
            admin.execute(
                base + f" LC_COLLATE {quote_str(str(snap.get('collate', 'C')))}"
                f" LC_CTYPE {quote_str(str(snap.get('ctype', 'C')))}"
                + (f" LOCALE_PROVIDER {provider}" if provider else "")
            )
        except DriverError:
            admin.execute(base)
            self.warnings.append(
                f"the server lacks the source's locale ({snap.get('collate')}); "
                "the database uses the server's default"
            )

    def _prepare(self, admin: Conn) -> bool:
        """Create (or check) the database to load into; True when it was created."""
        exists = self._exists(admin, self.target)
        if self.opts.resume:
            if not exists:
                raise NotFoundError(f"nothing to resume: database {self.target!r} does not exist",
                                    hint="run the restore without --resume")  # fmt: skip
            with connect(self.settings, self.target, autocommit=True) as conn:
                if not self._has_progress(conn):
                    raise NotFoundError(
                        f"nothing to resume in {self.target!r} (no restore progress record)",
                        hint="run the restore without --resume (add --drop to replace the database)",
                    )
            return False
        if exists and not self.opts.drop:
            with connect(self.settings, self.target, autocommit=True) as conn:
                n = conn.execute(
                    "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','S','f') AND "
                    "n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
                ).fetchone()
            if n and n[0] and not self.opts.atomic:
                raise TargetNotEmpty(
                    f"database {self.target!r} is not empty ({n[0]} relations)",
                    hint="add --drop to replace it, --atomic to swap it at the end, or pick another name",
                )
        if self.opts.atomic:
            if exists and not self.opts.drop:
                raise TargetNotEmpty(
                    f"database {self.target!r} exists; --atomic replaces it only with --drop",
                    hint="add --drop, or restore into a new name",
                )
            self.load_db = f"{self.target[:40]}__moodump_{uuid.uuid4().hex[:8]}"
            self._create(admin, self.load_db)
            return True
        if exists and not self.opts.drop:
            return False  # an empty database made for the restore: kept, with its settings
        if exists:
            admin.execute(f"DROP DATABASE {quote_ident(self.target)} WITH (FORCE)")
        self._create(admin, self.target)
        return True

    def _prepare_partial(self, admin: Conn) -> bool:
        """A partial restore goes into an existing database (its schemas, types and
        functions are there); the named tables must not exist, or go with --drop."""
        assert self.selected is not None
        if not self._exists(admin, self.target):
            raise NotFoundError(
                f"database {self.target!r} does not exist; --table restores tables into an "
                "existing database",
                hint="restore the whole backup first, or leave out --table",
            )
        with connect(self.settings, self.target, autocommit=True) as conn:
            there = [q for q in sorted(self.selected)
                     if conn.execute("SELECT to_regclass(%s)", (q,)).fetchone() not in (None, (None,))]  # fmt: skip
            if there and not self.opts.drop:
                raise TargetNotEmpty(
                    f"{len(there)} of the tables exist in {self.target!r}: {', '.join(there[:5])}",
                    hint="add --drop to replace them",
                )
            with conn.transaction():
                for q in there:
                    conn.execute(f"DROP TABLE {q}")  # type: ignore[arg-type]
        return False

    def _has_progress(self, conn: Conn) -> bool:
        return conn.execute("SELECT to_regclass(%s)", (_PROGRESS,)).fetchone() not in (None, (None,))

    def _done(self, conn: Conn) -> set[str]:
        if not self._has_progress(conn):
            return set()
        return {r[0] for r in conn.execute(f"SELECT item FROM {_PROGRESS}").fetchall()}

    def _swap(self) -> None:
        with self._admin() as admin:
            if self._exists(admin, self.target):
                admin.execute(f"DROP DATABASE {quote_ident(self.target)} WITH (FORCE)")
            admin.execute(f"ALTER DATABASE {quote_ident(self.load_db)} RENAME TO {quote_ident(self.target)}")
        self.load_db = self.target

    def _drop_quietly(self, name: str) -> None:
        try:
            with self._admin() as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        except (DriverError, MoodumpError):
            pass

    def _database_settings(self) -> None:
        """The source database's own settings (``ALTER DATABASE … SET``), given to the
        database this restore created, last (a ``default_transaction_read_only`` must not
        apply to the restore's sessions). Each value is set in the session first and
        stored ``FROM CURRENT``, so list values (``search_path``) keep their quoting. One
        the server refuses (a superuser-only one) is a warning."""
        settings = self.m.snapshot.get("settings") or []
        comment = self.m.snapshot.get("comment")
        if not isinstance(settings, list):
            return
        with connect(self.settings, self.load_db, autocommit=True) as conn:
            if isinstance(comment, str):
                conn.execute(f"COMMENT ON DATABASE {quote_ident(self.load_db)} IS {quote_str(comment)}")  # type: ignore[arg-type]
            for item in settings:
                name, _, value = str(item).partition("=")
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))
                        conn.execute(f"ALTER DATABASE {quote_ident(self.load_db)} SET "  # type: ignore[arg-type]
                                     f"{quote_ident(name)} FROM CURRENT")  # fmt: skip
                except DriverError as exc:
                    self.warnings.append(f"database setting {item!r} not restored: {str(exc).strip()}")

    # -- schema ---------------------------------------------------------------------------
    def _pre_data(self, bindir: Path, pre: str) -> None:
        preamble, entries = split_entries(pre)
        if self.selected is not None:
            entries = _entries_of(entries, self.selected, _PRE_TYPES)
        body = [sql for typ, sql in entries if self.opts.owners or typ not in _SKIPPED_WITHOUT_OWNERS]
        script = preamble + "".join(body)
        if not self.opts.owners:
            script = _strip_owners(script)
        script = (
            f"CREATE SCHEMA IF NOT EXISTS {quote_ident(PROGRESS_SCHEMA)};\n"
            f"CREATE TABLE IF NOT EXISTS {_PROGRESS} (item text PRIMARY KEY, at timestamptz DEFAULT now());\n"
            + script
            + f"\nINSERT INTO {_PROGRESS} (item) VALUES ('pre-data');\n"
        )
        argv = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                "--no-password", "-d", self.load_db, "-f", "-"]  # fmt: skip
        with tool_env(self.settings) as env:
            env["PGDATABASE"] = self.load_db
            run_tool(argv, env, "psql (pre-data)", stdin=script.encode("utf-8", "surrogateescape"))

    def _sequences(self, conn: Conn) -> None:
        for t in self.m.tables:
            if t.kind != "sequence" or not t.sequence:
                continue
            if self.selected is not None and qualified(t.schema, t.name) not in self.sequences_of_selected:
                continue
            conn.execute(
                "SELECT pg_catalog.setval(%s, %s, %s)",
                (qualified(t.schema, t.name), t.sequence["last_value"], bool(t.sequence["is_called"])),
            )

    def _post_items(self, post: str, done: set[str]) -> tuple[str, list[tuple[str, str, str]]]:
        """(preamble, the post-data entries still to run as (key, type, sql))."""
        preamble, entries = split_entries(post)
        if self.selected is not None:
            entries = _entries_of(entries, self.selected, _POST_TYPES, post=True)
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
            for item in rest[:first_event]:
                self._entry(conn, preamble, item)
            for t in self.m.tables:  # materialized views, in creation order
                key = f"refresh:{t.schema}.{t.name}"
                if t.kind == "materialized view" and key not in done and self.selected is None:
                    sql = f"REFRESH MATERIALIZED VIEW {qualified(t.schema, t.name)};"
                    self._entry(conn, preamble, (key, "MATERIALIZED VIEW DATA", sql))
            for item in rest[first_event:]:
                self._entry(conn, preamble, item)

    def _entry(self, conn: Conn, preamble: str, item: tuple[str, str, str]) -> None:
        key, _typ, sql = item
        with conn.transaction():
            # the script's own bytes (in the source database's encoding, which the session
            # uses: set_session), not re-encoded by the driver
            conn.execute((preamble + sql).encode("utf-8", "surrogateescape"))
            conn.execute(f"INSERT INTO {_PROGRESS} (item) VALUES (%s)", (key,))

    def _parallel(self, items: list[Any], fn: Callable[[Conn, Any], None]) -> None:
        queue = list(items)
        qlock = threading.Lock()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with connect(self.settings, self.load_db, autocommit=True) as conn:
                    # the data files' text is read as it was written (search_path: see
                    # _load_chunk)
                    set_session(conn, self.encoding, None)
                    conn.execute("SET synchronous_commit = off")
                    while not self.stop.is_set():
                        with qlock:
                            if not queue:
                                return
                            item = queue.pop(0)
                        fn(conn, item)
            except BaseException as exc:
                errors.append(exc)
                self.stop.set()

        n = max(1, min(self.opts.threads, len(items)))
        threads = [threading.Thread(target=work, daemon=True) for _ in range(n if items else 0)]
        for th in threads:
            th.start()
        for th in threads:
            while th.is_alive():
                th.join(0.2)
        if errors:
            real = [e for e in errors if not isinstance(e, Interrupted)]
            raise (real or errors)[0]
        if self.stop.is_set() and queue:
            raise Interrupted("restore interrupted", hint="continue it with --resume")

    # -- large objects ---------------------------------------------------------------------
    def _large_objects(self, done: set[str]) -> None:
        """Large objects with their OIDs (``lo_from_bytea``), comments, and with
        ``owners`` their owners and ACLs; one transaction with its progress row."""
        by = {t.name: t for t in self.m.tables if t.kind == "large objects"}
        data, meta = by.get("pg_largeobject"), by.get("pg_largeobject_metadata")
        if data is None or "large-objects" in done:
            return
        with connect(self.settings, self.load_db, autocommit=True) as conn, conn.transaction():
            set_session(conn, self.encoding)
            conn.execute("CREATE TEMP TABLE moodump_lo (loid oid, data bytea) ON COMMIT DROP")
            conn.execute("CREATE TEMP TABLE moodump_lo_meta (loid oid, owner name, acl text, "
                         "comment text) ON COMMIT DROP")  # fmt: skip
            for entry, table in ((data, "moodump_lo"), (meta, "moodump_lo_meta")):
                if entry is None:
                    continue
                for c in entry.chunks:
                    f = self.files.get(c.file)
                    raw = self.src.open_checked(f) if f and self.src.local_dir is None else self.src.open(c.file)
                    with open_reader(raw, name=c.file, codec=self.m.codec) as reader:
                        copy_in(conn, "pg_temp", table, entry.columns, reader, self.stop)
            conn.execute("SELECT count(pg_catalog.lo_from_bytea(loid, data)) FROM moodump_lo")
            rows = conn.execute(
                "SELECT loid, owner, acl, comment FROM moodump_lo_meta ORDER BY loid"
            ).fetchall()
            for loid, owner, acl, comment in rows:
                lo = f"LARGE OBJECT {int(loid)}"
                if comment is not None:
                    conn.execute(f"COMMENT ON {lo} IS {quote_str(comment)}")  # type: ignore[arg-type]
                if not self.opts.owners:
                    continue
                conn.execute(f"ALTER {lo} OWNER TO {quote_ident(owner)}")  # type: ignore[arg-type]
                if acl is None:
                    continue
                conn.execute(f"REVOKE ALL ON {lo} FROM PUBLIC, {quote_ident(owner)}")  # type: ignore[arg-type]
                for grantee, priv, grantable in conn.execute(
                    "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident("
                    "pg_catalog.pg_get_userbyid(a.grantee)) END, a.privilege_type, a.is_grantable "
                    "FROM pg_catalog.aclexplode(%s::aclitem[]) a", (acl,),
                ).fetchall():  # fmt: skip
                    option = " WITH GRANT OPTION" if grantable else ""
                    conn.execute(f"GRANT {priv} ON {lo} TO {grantee}{option}")  # type: ignore[arg-type]
            conn.execute(f"INSERT INTO {_PROGRESS} (item) VALUES ('large-objects')")
        n = data.rows + (meta.rows if meta else 0)
        with self.lock:
            self.rows_done += n  # as the manifest counts them (total_rows)
        self.tracker.add(n, sum(c.raw_bytes for c in data.chunks))

    # -- data -----------------------------------------------------------------------------
    def _data_and_indexes(self, post: str, done: set[str]) -> int:
        """Load the data files and build indexes and constraints on one worker pool: a
        table's indexes and constraints start as soon as its last file is in (while other
        tables still load, as pg_restore does), the others' after the data. Returns the
        number of files skipped (already loaded before a resume)."""
        preamble, items = self._post_items(post, done)
        todo = [(t, c) for t, c in self.chunks if c.file not in done]
        skipped = len(self.chunks) - len(todo)
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
        left: dict[str, int] = {}
        for t, _c in todo:
            key = qualified(t.schema, t.name)
            left[key] = left.get(key, 0) + 1
        waiting: dict[str, list[tuple[str, str, str]]] = {}
        after: list[tuple[str, str, str]] = []
        for item in items:
            if item[1] not in _PARALLEL:
                continue
            table = _table_of(item[2])
            if table is not None and table in left:
                waiting.setdefault(table, []).append(item)
            else:
                after.append(item)
        queue: list[tuple[str, Any]] = [("data", x) for x in todo] + [("entry", x) for x in after]
        cond = threading.Condition()
        busy = [0]

        def run_one(conn: Conn, kind: str, item: Any) -> None:
            if kind == "entry":
                self._entry(conn, preamble, item)
                return
            self._load_chunk(conn, item)
            key = qualified(item[0].schema, item[0].name)
            with cond:
                left[key] -= 1
                if left[key] == 0:  # the table is complete: its indexes go first
                    self.tracker.table_done()
                    queue[:0] = [("entry", x) for x in waiting.pop(key, [])]
                    cond.notify_all()

        def next_item() -> tuple[str, Any] | None:
            with cond:
                while not queue and busy[0] and not self.stop.is_set():
                    cond.wait(0.5)
                if not queue or self.stop.is_set():
                    return None
                busy[0] += 1
                return queue.pop(0)

        def work(conn: Conn, _item: Any) -> None:
            while (job := next_item()) is not None:
                try:
                    run_one(conn, *job)
                finally:
                    with cond:
                        busy[0] -= 1
                        cond.notify_all()

        self._parallel([None] * max(1, self.opts.threads), work)
        if self.stop.is_set() and (queue or busy[0]):
            raise Interrupted("restore interrupted", hint="continue it with --resume")
        return skipped

    def _load_chunk(self, conn: Conn, item: tuple[TableEntry, Any]) -> None:
        t, c = item
        self.tracker.working(f"{t.schema}.{t.name}")
        entry = self.files.get(c.file)
        raw = self.src.open_checked(entry) if entry and self.src.local_dir is None else self.src.open(c.file)
        with conn.transaction():
            # this worker may have run a post-data entry, whose preamble empties search_path
            if self.search_path is None:
                conn.execute("SET LOCAL search_path TO DEFAULT")
            else:
                conn.execute("SELECT pg_catalog.set_config('search_path', %s, true)", (self.search_path,))
            with open_reader(raw, name=c.file, codec=self.m.codec) as reader:
                copy_in(conn, t.schema, t.name, t.columns, reader, self.stop, via=t.load_clause)
            conn.execute(f"INSERT INTO {_PROGRESS} (item) VALUES (%s)", (c.file,))
        with self.lock:
            self.files_done += 1
            self.rows_done += c.rows
        self.tracker.add(c.rows, c.raw_bytes)
        self.tracker.working("")
        self._emit("data", f"{t.schema}.{t.name}", c.file)
