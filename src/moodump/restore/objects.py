"""The schema objects of a restore: views, stored routines, triggers and events.

Dropped from the old database by the atomic swap, created from the backup's definitions
file (``objects.json``) once the tables are loaded: routines first (views may call
functions), then the views in their recorded order (retried while their dependencies
appear), then triggers and events. Each definition runs under the session it was
created with (:func:`moodump.restore_script.object_session_sql`).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from moodump.db.connection import Connection, quote_ident, quote_str
from moodump.ddl import names_database, retarget_trigger, retarget_view
from moodump.errors import MoodumpError, NotFoundError, ServerError
from moodump.formats import SESSION_SQL_MODE
from moodump.manifest import Manifest, TableEntry, parse_object_records
from moodump.restore.load import _setup_load_session
from moodump.restore.model import RestoreOptions
from moodump.restore_script import object_session_sql

log = logging.getLogger("moodump.restore")

#: Stored routines, in the order they are created (a package before its body).
ROUTINE_KINDS = ("procedure", "function", "package", "package body")


class ObjectSteps:
    """The object steps of a restore.

    A mixin of the restore engine (:class:`moodump.restore.engine.Restore`), kept in its
    own module like :class:`~moodump.restore.load.DataLoader`; the attributes and
    ``_text`` are the engine's.
    """

    m: Manifest
    target: str
    load_db: str
    opts: RestoreOptions
    tables: list[TableEntry]
    warnings: list[str]

    def _text(self, name: str) -> str:
        raise NotImplementedError

    def _drop_objects(self, conn: Connection) -> None:
        qt = quote_ident(self.target)
        db = quote_str(self.target)
        for (v,) in conn.query(
            f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db}"
        ):
            conn.execute(f"DROP VIEW IF EXISTS {qt}.{quote_ident((v or b'').decode())}")
        for n, kind in conn.query(
            f"SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {db}"
        ):
            what = (kind or b"").decode()
            drop = f"DROP {what} IF EXISTS {qt}.{quote_ident((n or b'').decode())}"
            if what.startswith("PACKAGE"):  # MariaDB parses DROP PACKAGE in Oracle mode only
                conn.execute("SET sql_mode = 'ORACLE'")
                try:
                    conn.execute(drop)
                finally:
                    conn.execute(f"SET sql_mode = '{SESSION_SQL_MODE}'")
            else:
                conn.execute(drop)
        for (n,) in conn.query(
            f"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {db}"
        ):
            conn.execute(f"DROP EVENT IF EXISTS {qt}.{quote_ident((n or b'').decode())}")

    def _object_records(self, partial: bool) -> list[dict[str, Any]]:
        name = self.m.objects.get("definitions")
        if not name:
            return []
        records = parse_object_records(self._text(name), name)
        if partial:
            wanted_tables = {t.name for t in self.tables}
            records = [r for r in records if r["kind"] == "trigger" and r["table"] in wanted_tables]
        return records

    def _create_objects(
        self, conn: Connection, partial: bool, db: str | None = None, events: bool = True
    ) -> None:
        """Create the backup's objects in ``db`` (the target by default; the current
        database of ``conn`` must be ``db``)."""
        db = db or self.target
        records = self._object_records(partial)
        if self.opts.resume:
            records = [r for r in records if not self._object_exists(conn, r)]
        # Routines first: views may call functions, while routine bodies are only
        # resolved when they run. Triggers and events come last.
        for r in records:
            if r["kind"] in ROUTINE_KINDS:
                self._create_object(conn, r, db)
        self._create_views(conn, [r for r in records if r["kind"] == "view"], db)
        for r in records:
            if r["kind"] == "trigger" or (events and r["kind"] == "event"):
                self._create_object(conn, r, db)
        _setup_load_session(conn)

    def _check_trigger_names(self, conn: Connection) -> None:
        """--table: trigger names are unique in a database. A trigger of a restored table
        whose name another table of the target uses for its own is refused before the
        target is touched (it failed after the table was replaced)."""
        if not self.opts.objects or not self.target_exists(conn):
            return
        records = self._object_records(True)
        if not records:
            return
        wanted = {t.name for t in self.tables}
        taken = {
            (n or b"").decode(): (t or b"").decode()
            for n, t in conn.query(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                f"WHERE TRIGGER_SCHEMA = {quote_str(self.target)}"
            )
        }
        clash = [r for r in records if taken.get(r["name"], r["table"]) not in wanted]
        if clash:
            r = clash[0]
            raise ServerError(
                f"trigger {r['name']!r} of table {r['table']!r} cannot be created in "
                f"{self.target!r}: its table {taken[r['name']]!r} has a trigger of that "
                "name (trigger names are unique in a database)",
                hint=f"drop or rename that trigger of {taken[r['name']]!r}, or restore "
                "into another --database, or with --no-objects; the target is unchanged",
            )

    def target_exists(self, conn: Connection) -> bool:
        return bool(
            conn.query(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "
                + quote_str(self.target)
            )
        )

    def _check_objects_in_staging(self, conn: Connection, partial: bool) -> None:
        """--atomic: create the objects in the staging database before the swap, so that
        one the server refuses stops the restore while the target is still the old one.

        Events are
        tried only while the event scheduler is off (one that is due would run in the
        staging database, on the tables about to be swapped in). The staging database's
        triggers are dropped again (a table cannot move to another database with its
        triggers); the rest goes with the staging database.
        """
        records = self._object_records(partial)
        if not records:
            return
        scheduler = (conn.scalar("SELECT @@event_scheduler") or b"").decode().upper()
        saved = list(self.warnings)
        try:
            self._create_objects(conn, partial, self.load_db, events=scheduler != "ON")
        finally:
            self.warnings[:] = saved
        qs = quote_ident(self.load_db)
        for (n,) in conn.query(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = "
            + quote_str(self.load_db)
        ):
            conn.execute(f"DROP TRIGGER {qs}.{quote_ident((n or b'').decode())}")

    def _object_exists(self, conn: Connection, r: dict[str, Any]) -> bool:
        db = quote_str(self.target)
        n = quote_str(r["name"])
        q = {
            "view": f"SELECT 1 FROM information_schema.VIEWS WHERE TABLE_SCHEMA={db} AND TABLE_NAME={n}",
            "trigger": f"SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={db} AND TRIGGER_NAME={n}",
            "event": f"SELECT 1 FROM information_schema.EVENTS WHERE EVENT_SCHEMA={db} AND EVENT_NAME={n}",
        }.get(
            r["kind"],
            f"SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA={db} AND ROUTINE_NAME={n} "
            f"AND ROUTINE_TYPE={quote_str(r['kind'].upper())}",
        )
        return bool(conn.query(q))

    def _create_object(self, conn: Connection, r: dict[str, Any], db: str) -> None:
        # A routine, trigger or event takes the database's collation when it is created
        # (for its parameters and variables without a character set): the one it was
        # created under, which the database's own may no longer be, as mariadb-dump does.
        collation = r.get("db_collation") or ""
        was = ""
        if collation:
            was = (
                conn.scalar(
                    "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                    f"WHERE SCHEMA_NAME = {quote_str(db)}"
                )
                or b""
            ).decode()
            if was and was != collation:
                try:
                    conn.execute(f"ALTER DATABASE {quote_ident(db)} COLLATE {collation}")
                except ServerError as exc:  # a collation this server does not have
                    self.warnings.append(
                        f"{r['kind']} {r['name']!r} created under database collation {was}, "
                        f"not {collation} as in the source: {exc.message}"
                    )
                    was = ""
            else:
                was = ""
        try:
            self._create_object_as_is(conn, r, db)
        finally:
            if was:
                conn.execute(f"ALTER DATABASE {quote_ident(db)} COLLATE {was}")

    def _create_object_as_is(self, conn: Connection, r: dict[str, Any], db: str) -> None:
        for stmt in object_session_sql(r):
            conn.execute(stmt)
        create = base64.b64decode(r["create_b64"])
        charset = r.get("character_set_client") or "utf8mb4"
        if r["kind"] == "trigger":
            create = retarget_trigger(create, self.m.database, db, charset)
        elif r["kind"] == "view":
            create = retarget_view(create, self.m.database, db, charset)
        try:
            try:
                conn.execute(create)
            except (ServerError, NotFoundError) as exc:
                if r["kind"] == "view":  # retried by _create_views
                    raise
                raise ServerError(
                    f"{r['kind']} {r['name']!r} could not be created: {exc.message}",
                    hint=(exc.hint + "; " if exc.hint else "")
                    + "--no-objects restores the tables without the objects",
                ) from exc
            if self.m.database != db and names_database(create, self.m.database, charset):
                self.warnings.append(
                    f"{r['kind']} {r['name']!r} names database {self.m.database!r} in its "
                    f"text: restored as written, it uses {self.m.database!r}, not "
                    f"{db!r}"
                )
        finally:
            conn.execute("SET NAMES utf8mb4")
            conn.execute(f"SET sql_mode = '{SESSION_SQL_MODE}'")
            conn.execute("SET time_zone = '+00:00'")
            conn.execute("SET timestamp = DEFAULT")

    def _create_views(self, conn: Connection, views: list[dict[str, Any]], db: str) -> None:
        """Create views in the recorded order, retrying those whose dependencies came later."""
        pending = list(views)
        while pending:
            failed: list[tuple[dict[str, Any], MoodumpError]] = []
            for r in pending:
                try:
                    self._create_object(conn, r, db)
                except (ServerError, NotFoundError) as exc:  # 1146: a table it reads is gone
                    failed.append((r, exc))
            if len(failed) == len(pending):
                # No progress: these views refer to something that does not exist (they
                # were invalid in the source too). Everything else is restored; the
                # missing views are named here and counted by verify.
                for view, error in failed:
                    if db == self.target:  # not again for the try in the staging database
                        log.warning("view %s not created: %s", view["name"], error.message)
                    self.warnings.append(f"view {view['name']!r} not created: {error.message}")
                return
            pending = [r for r, _ in failed]
