"""One point in time for N reading connections, without holding locks for the dump.

Method ``lock-tables`` (N > 1 workers): a coordinator takes ``LOCK TABLES t1 READ, ...``
on every table of the database — it needs only the LOCK TABLES privilege that a Moodle
account has, unlike FLUSH TABLES WITH READ LOCK (RELOAD) — which waits for running write
transactions on those tables and then holds writers back. While it holds them, every
worker runs ``START TRANSACTION WITH CONSISTENT SNAPSHOT``, so all workers see the same
committed state of the database; the lock is released right after (milliseconds).

Method ``single-connection`` (1 worker, or no LOCK TABLES privilege): one snapshot
transaction, consistent by itself.

DDL is not blocked by a snapshot. The dump engine detects it instead (definition
compared before and after each table is read, plus error 1412) and fails the dump; see
:mod:`moodump.dump`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moodump.db.connection import Connection, ConnSettings, connect, quote_ident, quote_str
from moodump.db.introspect import ServerInfo
from moodump.errors import PrivilegeError
from moodump.formats import SESSION_SQL_MODE


@dataclass
class Snapshot:
    method: str
    workers: list[Connection]
    position: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "workers": len(self.workers),
            "consistent": True,
            **self.position,
            "notes": self.notes,
        }

    def close(self) -> None:
        for w in self.workers:
            w.close()


def setup_read_session(
    conn: Connection,
    server: ServerInfo,
    *,
    binary_results: bool,
    lock_wait_timeout: int | None = None,
) -> None:
    """Session settings for a dump connection (UTC, known sql_mode, no statement timeout).

    ``lock_wait_timeout`` bounds how long a read waits for a metadata lock (a table
    locked or being altered by another session): the dump then fails clearly instead of
    hanging.
    """
    stmts = [
        "SET NAMES utf8mb4",
        "SET time_zone = '+00:00'",
        f"SET sql_mode = '{SESSION_SQL_MODE}'",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "SET SESSION net_write_timeout = 3600",
        "SET SESSION net_read_timeout = 3600",
        "SET SESSION wait_timeout = 28800",
        "SET SESSION sql_quote_show_create = 1",
    ]
    if binary_results:
        stmts.append("SET character_set_results = binary")
    if lock_wait_timeout is not None:
        stmts.append(f"SET SESSION lock_wait_timeout = {int(lock_wait_timeout)}")
    if server.is_mariadb:
        stmts.append("SET SESSION max_statement_time = 0")
    elif server.version_tuple >= (5, 7, 8):
        stmts.append("SET SESSION max_execution_time = 0")
    for s in stmts:
        conn.execute(s)


def _position(conn: Connection, server: ServerInfo) -> dict[str, Any]:
    """Binlog file/position and GTID that match the snapshot, when the server has them."""
    pos: dict[str, Any] = {}
    if server.is_mariadb:
        # MariaDB reports the binlog position that matches a consistent-snapshot
        # transaction without any lock or privilege.
        status = {
            (r[0] or b"").decode().lower(): (r[1] or b"").decode()
            for r in conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        }
        f, p = status.get("binlog_snapshot_file", ""), status.get("binlog_snapshot_position", "")
        if f:
            pos["binlog_file"], pos["binlog_position"] = f, int(p or 0)
            with contextlib.suppress(Exception):
                gtid = conn.scalar(f"SELECT BINLOG_GTID_POS({quote_str(f)}, {int(p or 0)})")
                pos["gtid"] = (gtid or b"").decode()
    else:
        with contextlib.suppress(Exception):
            gtid = conn.scalar("SELECT @@GLOBAL.gtid_executed")
            if gtid:
                pos["gtid"] = gtid.decode().replace("\n", "")
        with contextlib.suppress(Exception):
            rows = conn.query("SHOW MASTER STATUS")
            if rows:
                pos["binlog_file"] = (rows[0][0] or b"").decode()
                pos["binlog_position"] = int((rows[0][1] or b"0").decode())
    return pos


def open_snapshot(
    settings: ConnSettings,
    server: ServerInfo,
    database: str,
    tables: list[str],
    workers: int,
    *,
    lock_wait_timeout: int = 60,
    connect_fn: Callable[[ConnSettings], Connection] = connect,
) -> Snapshot:
    """Open ``workers`` connections that all read the same consistent snapshot."""
    conns = [connect_fn(settings)]
    try:
        setup_read_session(
            conns[0], server, binary_results=True, lock_wait_timeout=lock_wait_timeout
        )
        notes: list[str] = []
        method = "single-connection"
        if workers > 1 and tables:
            coord = connect_fn(settings)
            try:
                setup_read_session(coord, server, binary_results=False)
                coord.execute(f"SET SESSION lock_wait_timeout = {int(lock_wait_timeout)}")
                qdb = quote_ident(database)
                try:
                    coord.execute(
                        "LOCK TABLES " + ", ".join(f"{qdb}.{quote_ident(t)} READ" for t in tables)
                    )
                except PrivilegeError as exc:
                    notes.append(
                        f"no LOCK TABLES privilege ({exc.message}); dumped over one connection"
                    )
                else:
                    try:
                        for _ in range(workers - 1):
                            c = connect_fn(settings)
                            conns.append(c)
                            setup_read_session(
                                c,
                                server,
                                binary_results=True,
                                lock_wait_timeout=lock_wait_timeout,
                            )
                        for c in conns:
                            c.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                        method = "lock-tables"
                    finally:
                        coord.execute("UNLOCK TABLES")
            finally:
                coord.close()
        if method == "single-connection":
            for c in conns[1:]:
                c.close()
            conns = conns[:1]
            conns[0].execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        for c in conns:
            # Released after each table so finished tables do not hold metadata locks.
            c.execute("SAVEPOINT moodump_table")
        snap = Snapshot(method, conns, _position(conns[0], server), notes)
        if method == "single-connection" and not server.is_mariadb and snap.position:
            snap.notes.append("binlog position read after the snapshot started (MySQL)")
        return snap
    except BaseException:
        for c in conns:
            c.close()
        raise
