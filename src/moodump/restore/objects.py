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
from moodump.errors import MoodumpError, ServerError
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

    def _create_objects(self, conn: Connection, partial: bool) -> None:
        name = self.m.objects.get("definitions")
        if not name:
            return
        records = parse_object_records(self._text(name), name)
        wanted_tables = {t.name for t in self.tables}
        if partial:
            records = [r for r in records if r["kind"] == "trigger" and r["table"] in wanted_tables]
        if self.opts.resume:
            records = [r for r in records if not self._object_exists(conn, r)]
        # Routines first: views may call functions, while routine bodies are only
        # resolved when they run. Triggers and events come last.
        for r in records:
            if r["kind"] in ROUTINE_KINDS:
                self._create_object(conn, r)
        self._create_views(conn, [r for r in records if r["kind"] == "view"])
        for r in records:
            if r["kind"] in ("trigger", "event"):
                self._create_object(conn, r)
        _setup_load_session(conn)

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

    def _create_object(self, conn: Connection, r: dict[str, Any]) -> None:
        for stmt in object_session_sql(r):
            conn.execute(stmt)
        create = base64.b64decode(r["create_b64"])
        charset = r.get("character_set_client") or "utf8mb4"
        if r["kind"] == "trigger":
            create = retarget_trigger(create, self.m.database, self.target, charset)
        elif r["kind"] == "view":
            create = retarget_view(create, self.m.database, self.target, charset)
        try:
            conn.execute(create)
            if self.m.database != self.target and names_database(create, self.m.database, charset):
                self.warnings.append(
                    f"{r['kind']} {r['name']!r} names database {self.m.database!r} in its "
                    f"text: restored as written, it uses {self.m.database!r}, not "
                    f"{self.target!r}"
                )
        finally:
            conn.execute("SET NAMES utf8mb4")
            conn.execute(f"SET sql_mode = '{SESSION_SQL_MODE}'")
            conn.execute("SET time_zone = '+00:00'")
            conn.execute("SET timestamp = DEFAULT")

    def _create_views(self, conn: Connection, views: list[dict[str, Any]]) -> None:
        """Create views in the recorded order, retrying those whose dependencies came later."""
        pending = list(views)
        while pending:
            failed: list[tuple[dict[str, Any], MoodumpError]] = []
            for r in pending:
                try:
                    self._create_object(conn, r)
                except ServerError as exc:
                    failed.append((r, exc))
            if len(failed) == len(pending):
                # No progress: these views refer to something that does not exist (they
                # were invalid in the source too). Everything else is restored; the
                # missing views are named here and counted by verify.
                for view, error in failed:
                    log.warning("view %s not created: %s", view["name"], error.message)
                    self.warnings.append(f"view {view['name']!r} not created: {error.message}")
                return
            pending = [r for r, _ in failed]
