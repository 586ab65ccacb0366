"""What is in a database: server flavour, tables, columns, keys and stored objects.

All catalogue reads go through ``information_schema`` and ``SHOW CREATE`` on a
connection whose results are utf8mb4. Stored programs and views are re-read with
``character_set_results`` set to their own ``character_set_client``, so the bytes we keep
are the bytes the object was created with; replaying them under the same
``character_set_client``/``collation_connection``/``sql_mode`` (and time zone, for events)
recreates the object with identical metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moodump.db.connection import Connection, quote_ident, quote_str
from moodump.ddl import portable_view
from moodump.errors import NotFoundError, PrivilegeError
from moodump.formats import Column


@dataclass(frozen=True)
class ServerInfo:
    flavor: str  # "mariadb" | "mysql"
    version: str
    version_tuple: tuple[int, int, int]

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "mariadb"


#: Engines whose tables show other tables' rows (mariadb-dump skips their data too).
_PROXY_ENGINES = {"mrg_myisam", "federated", "spider"}


@dataclass
class TableInfo:
    name: str
    kind: str  # "table" | "sequence"
    engine: str
    rows_estimate: int
    data_length: int
    columns: list[Column] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    unique_keys: list[list[str]] = field(default_factory=list)
    pk_types: list[str] = field(default_factory=list)
    versioned: bool = False  # MariaDB system-versioned table (history rows are dumped)
    # Versioned by transaction id (ROW START/END are BIGINT UNSIGNED): MariaDB cannot
    # insert such history (error 1906), so only the current rows are dumped.
    trx_versioned: bool = False

    @property
    def holds_rows(self) -> bool:
        """False for a sequence, and for a table whose rows are other tables': MERGE
        (its underlying tables, dumped with them) and FEDERATED/SPIDER (remote tables).
        Loading their rows again would insert them into those tables a second time."""
        return self.kind == "table" and self.engine.lower() not in _PROXY_ENGINES

    @property
    def transactional(self) -> bool:
        return self.engine.lower() in ("innodb", "xtradb", "rocksdb", "tokudb", "sequence")

    @property
    def data_columns(self) -> list[Column]:
        """Columns written to data files: everything but generated columns.

        The ROW START/ROW END columns of a system-versioned table are data: they carry
        the history (hidden implicit ones are named row_start/row_end).
        """
        cols = [c for c in self.columns if not c.generated or (self.versioned and c.period)]
        if self.versioned and not any(c.period for c in self.columns):
            cols += [
                Column("row_start", "timestamp", "timestamp(6)", False, False, "start"),
                Column("row_end", "timestamp", "timestamp(6)", False, False, "end"),
            ]
        return cols

    @property
    def order_key(self) -> list[str]:
        """Columns giving a total, stable row order: the PK, else a NOT NULL unique key."""
        if self.versioned:
            # Row versions share the primary key; the period end makes them unique.
            end = [c.name for c in self.data_columns if c.period == "end"]
            return [*self.primary_key, *end] if self.primary_key else []
        if self.primary_key:
            return self.primary_key
        nullable = {c.name for c in self.columns if c.nullable}
        for key in self.unique_keys:
            if not any(k in nullable for k in key):
                return key
        return []


@dataclass
class StoredObject:
    """A view, trigger, procedure, function or event, with the session it needs."""

    # "view" | "trigger" | "procedure" | "function" | "package" | "package body" | "event"
    kind: str
    name: str
    create: bytes  # the CREATE statement, in character_set_client
    character_set_client: str
    collation_connection: str
    sql_mode: str = ""
    time_zone: str = ""
    table: str = ""  # triggers: the table they belong to
    order: int = 0  # triggers: ACTION_ORDER
    # events: when the definition was last accepted (unix time; 0 unknown). The server
    # drops, or refuses, an event whose schedule is over when it is created: replayed
    # with the session clock set back to then, it is accepted as it was.
    defined_at: int = 0
    # routines, triggers, events: the database's collation when they were created, which
    # their parameters and variables without a character set take ("Database Collation"
    # of SHOW CREATE); the database's own may have changed since.
    db_collation: str = ""


def _s(v: bytes | None) -> str:
    return "" if v is None else v.decode("utf-8", "surrogateescape")


def server_info(conn: Connection) -> ServerInfo:
    version = _s(conn.scalar("SELECT VERSION()"))
    comment = _s(conn.scalar("SELECT @@version_comment"))
    flavor = "mariadb" if "mariadb" in (version + comment).lower() else "mysql"
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    vt = (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (0, 0, 0)
    return ServerInfo(flavor, version, vt)


def database_ddl(conn: Connection, database: str) -> str:
    """``CREATE DATABASE`` with its character set and collation; NotFoundError if absent."""
    rows = conn.query(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
        f"information_schema.SCHEMATA WHERE SCHEMA_NAME = {quote_str(database)}"
    )
    if not rows:
        raise NotFoundError(
            f"database {database!r} does not exist on the server (or the account cannot see it)",
            hint="check the name with SHOW DATABASES, and the account's grants",
        )
    row = conn.query(f"SHOW CREATE DATABASE {quote_ident(database)}")
    return _s(row[0][1])


def list_tables(conn: Connection, database: str) -> tuple[list[TableInfo], list[str]]:
    """Base tables and sequences (with columns and keys), and the names of views."""
    db = quote_str(database)
    tables: dict[str, TableInfo] = {}
    views: list[str] = []
    for name, ttype, engine, rows, length in conn.query(
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, DATA_LENGTH FROM "
        f"information_schema.TABLES WHERE TABLE_SCHEMA = {db} ORDER BY TABLE_NAME"
    ):
        n, t = _s(name), _s(ttype)
        if t == "VIEW":
            views.append(n)
            continue
        kind = "sequence" if t == "SEQUENCE" else "table"
        tables[n] = TableInfo(n, kind, _s(engine), int(rows or 0), int(length or 0))
        tables[n].versioned = t == "SYSTEM VERSIONED"
    for tname, cname, dtype, ctype, nullable, extra, gexpr, octets, cset, gen in conn.query(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, EXTRA, "
        "GENERATION_EXPRESSION, CHARACTER_OCTET_LENGTH, CHARACTER_SET_NAME, "
        + ("IS_GENERATED" if _has_is_generated(conn) else "''")
        + f" FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION"
    ):
        info = tables.get(_s(tname))
        if info is None:
            continue
        ex = _s(extra).upper()
        generated = _s(gen).upper() == "ALWAYS" or (
            "GENERATED" in ex and "DEFAULT_GENERATED" not in ex
        )
        period = {"ROW START": "start", "ROW END": "end"}.get(_s(gexpr).upper(), "")
        info.columns.append(
            Column(
                _s(cname),
                _s(dtype).lower(),
                _s(ctype).lower(),
                _s(nullable) == "YES",
                generated,
                period,
                int(octets) if octets is not None else None,
                _s(cset).lower() or None,
            )
        )
    keys: dict[tuple[str, str], list[tuple[int, str, bool]]] = {}
    for tname, iname, seq, cname, non_unique, sub_part in conn.query(
        "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART FROM "
        f"information_schema.STATISTICS WHERE TABLE_SCHEMA = {db} "
        "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
    ):
        if _s(non_unique) != "0":
            continue
        keys.setdefault((_s(tname), _s(iname)), []).append(
            (int(seq or 0), _s(cname), sub_part is not None)
        )
    for (key_table, key_name), cols in sorted(keys.items()):
        info = tables.get(key_table)
        if info is None or any(prefix for _, _, prefix in cols):
            continue
        names = [c for _, c, _ in sorted(cols)]
        if key_name == "PRIMARY":
            info.primary_key = names
        else:
            info.unique_keys.append(names)
    for info in tables.values():
        if info.versioned and any(c.period and c.data_type == "bigint" for c in info.columns):
            info.versioned, info.trx_versioned = False, True
        types = {c.name: c.data_type for c in info.columns}
        info.pk_types = [types.get(c, "") for c in info.primary_key]
    return list(tables.values()), views


_IS_GENERATED_CACHE: dict[int, bool] = {}


def _has_is_generated(conn: Connection) -> bool:
    key = id(conn)
    if key not in _IS_GENERATED_CACHE:
        rows = conn.query(
            "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema' "
            "AND TABLE_NAME = 'COLUMNS' AND COLUMN_NAME = 'IS_GENERATED'"
        )
        _IS_GENERATED_CACHE[key] = bool(rows)
    return _IS_GENERATED_CACHE[key]


def show_create_table(conn: Connection, database: str, table: str, kind: str = "table") -> str:
    """``SHOW CREATE TABLE`` (or ``SEQUENCE``: its table form loses the start value)."""
    what = "SEQUENCE" if kind == "sequence" else "TABLE"
    rows = conn.query(f"SHOW CREATE {what} {quote_ident(database)}.{quote_ident(table)}")
    return _s(rows[0][1])


_AUTO_INC = re.compile(r" AUTO_INCREMENT=\d+")


def definition_fingerprint(create_table: str) -> str:
    """A table definition with the AUTO_INCREMENT counter removed (it moves with inserts)."""
    return _AUTO_INC.sub("", create_table)


def _show_create_in_own_charset(
    conn: Connection, sql: str, create_col: int, cs_col: int
) -> tuple[list[bytes | None], bytes]:
    """Run a SHOW CREATE twice if needed so the statement comes in its own client charset."""
    rows = conn.query(sql)
    if not rows:
        return [], b""
    row = list(rows[0])
    cs = _s(row[cs_col])
    if cs and cs not in ("utf8mb4",):
        conn.execute(f"SET character_set_results = {quote_str(cs)}")
        try:
            again = conn.query(sql)
        finally:
            conn.execute("SET character_set_results = utf8mb4")
        create = again[0][create_col]
    else:
        create = row[create_col]
    return row, create or b""


def stored_objects(conn: Connection, database: str) -> list[StoredObject]:
    """Every routine, view, trigger and event, in a creation order that works.

    Views are ordered so that a view comes after the views it reads (a restore still
    retries on failure, for references this textual analysis cannot see).
    """
    db = quote_str(database)
    # With the database as the default, SHOW CREATE VIEW leaves same-database references
    # unqualified, so the views restore under another database name.
    conn.execute(f"USE {quote_ident(database)}")
    out: list[StoredObject] = []

    view_names = [
        _s(r[0])
        for r in conn.query(
            f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db} "
            "ORDER BY TABLE_NAME"
        )
    ]
    views: list[StoredObject] = []
    for name in view_names:
        row, create = _show_create_in_own_charset(
            conn, f"SHOW CREATE VIEW {quote_ident(name)}", 1, 2
        )
        create = portable_view(create, database, _s(row[2]))
        views.append(StoredObject("view", name, create, _s(row[2]), _s(row[3])))
    ordered_views = _order_views(views)

    # PACKAGE before its PACKAGE BODY (MariaDB's sql_mode=ORACLE packages).
    for rtype in ("PROCEDURE", "FUNCTION", "PACKAGE", "PACKAGE BODY"):
        for (rname,) in conn.query(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE "
            f"ROUTINE_SCHEMA = {db} AND ROUTINE_TYPE = '{rtype}' ORDER BY ROUTINE_NAME"
        ):
            n = _s(rname)
            row, create = _show_create_in_own_charset(
                conn, f"SHOW CREATE {rtype} {quote_ident(n)}", 2, 3
            )
            if not create:
                raise PrivilegeError(
                    f"cannot read the definition of {rtype.lower()} {n!r}",
                    hint="the account must own the routine or have SELECT on mysql.proc "
                    "(MariaDB) / SHOW_ROUTINE (MySQL 8)",
                )
            routine = StoredObject(rtype.lower(), n, create, _s(row[3]), _s(row[4]), _s(row[1]))
            routine.db_collation = _s(row[5]) if len(row) > 5 else ""
            out.append(routine)

    # Creation order: routines, then views (which may call functions), triggers, events.
    out.extend(ordered_views)
    for tname_b, table, order in conn.query(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_ORDER FROM information_schema.TRIGGERS "
        f"WHERE TRIGGER_SCHEMA = {db} ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, "
        "EVENT_MANIPULATION, ACTION_ORDER"
    ):
        n = _s(tname_b)
        row, create = _show_create_in_own_charset(
            conn, f"SHOW CREATE TRIGGER {quote_ident(n)}", 2, 3
        )
        out.append(
            StoredObject(
                "trigger",
                n,
                create,
                _s(row[3]),
                _s(row[4]),
                _s(row[1]),
                table=_s(table),
                order=int(order or 0),
                db_collation=_s(row[5]) if len(row) > 5 else "",
            )
        )

    # UNIX_TIMESTAMP reads LAST_ALTERED in the session's time zone (UTC, like it is shown).
    for ename, altered in conn.query(
        "SELECT EVENT_NAME, UNIX_TIMESTAMP(LAST_ALTERED) FROM information_schema.EVENTS "
        f"WHERE EVENT_SCHEMA = {db} ORDER BY EVENT_NAME"
    ):
        n = _s(ename)
        row, create = _show_create_in_own_charset(conn, f"SHOW CREATE EVENT {quote_ident(n)}", 3, 4)
        ev = StoredObject("event", n, create, _s(row[4]), _s(row[5]), _s(row[1]), _s(row[2]))
        ev.defined_at = int(_s(altered) or 0)
        ev.db_collation = _s(row[6]) if len(row) > 6 else ""
        out.append(ev)
    return out


def _order_views(views: list[StoredObject]) -> list[StoredObject]:
    """Topological order by textual reference (`name` inside another view's text)."""
    names = {v.name for v in views}
    deps: dict[str, set[str]] = {}
    for v in views:
        text = v.create.decode("utf-8", "replace")
        deps[v.name] = {
            n for n in names if n != v.name and ("`" + n.replace("`", "``") + "`") in text
        }
    done: list[StoredObject] = []
    placed: set[str] = set()
    remaining = {v.name: v for v in views}
    while remaining:
        ready = [n for n in sorted(remaining) if deps[n] <= placed]
        if not ready:  # a cycle in the textual analysis: keep the rest in name order
            ready = sorted(remaining)
        for n in ready:
            done.append(remaining.pop(n))
            placed.add(n)
    return done


def sequence_state(conn: Connection, database: str, name: str) -> tuple[int, int]:
    """(next_not_cached_value, cycle_count) of a MariaDB sequence, read in the snapshot."""
    row = conn.query(
        "SELECT next_not_cached_value, cycle_count FROM "
        f"{quote_ident(database)}.{quote_ident(name)}"
    )[0]
    return int(_s(row[0])), int(_s(row[1]) or 0)


def moodle_info(
    conn: Connection, database: str, tables: list[str], prefix: str | None = None
) -> dict[str, object] | None:
    """Moodle version/release and its site administrators, when the database is Moodle's.

    ``prefix`` is the table prefix (``mdl_``) when known (MOODLE_PREFIX, config.php, a
    backup's manifest); when its ``<prefix>config`` / ``<prefix>config_plugins`` pair is
    absent, or it is not known, the prefix is found from such a pair.
    Site administrators are the user ids in the ``siteadmins`` config row (Moodle's own
    record; a hardened site renames its ``admin`` account, so the name proves nothing):
    ``siteadmins`` lists them, ``siteadmins_missing`` those without a live
    (``deleted = 0``) row in ``<prefix>user``, and ``admin_user`` is True when there is at
    least one and none is missing.
    """
    if prefix is None or not {f"{prefix}config", f"{prefix}config_plugins"} <= set(tables):
        prefix = None
        for t in tables:
            if t.endswith("config") and f"{t[:-6]}config_plugins" in tables:
                prefix = t[:-6]
                break
    if prefix is None:
        return None
    qdb = quote_ident(database)
    config = f"{qdb}.{quote_ident(prefix + 'config')}"
    info: dict[str, object] = {"prefix": prefix}
    for key in ("version", "release", "siteadmins"):
        rows = conn.query(f"SELECT value FROM {config} WHERE name = {quote_str(key)}")
        info[key] = _s(rows[0][0]) if rows else None
    state = _site_state(conn, config)
    info["maintenance_enabled"] = state.maintenance_enabled
    info["upgraderunning"] = state.upgraderunning
    text = info.pop("siteadmins")
    ids = [x.strip() for x in str(text or "").split(",") if x.strip()]
    info["siteadmins"] = ids
    if f"{prefix}user" in tables:
        live: set[str] = set()
        numeric = [x for x in ids if x.isdigit()]
        if numeric:
            rows = conn.query(
                f"SELECT id FROM {qdb}.{quote_ident(prefix + 'user')} "
                f"WHERE deleted = 0 AND id IN ({', '.join(numeric)})"
            )
            live = {_s(r[0]) for r in rows}
        missing = [x for x in ids if x not in live]
        info["siteadmins_missing"] = missing
        info["admin_user"] = bool(ids) and not missing
    return info


@dataclass(frozen=True)
class MoodleSiteState:
    """What a Moodle site's config table says about upgrades and maintenance.

    ``upgraderunning`` is Moodle's value: the unix time until which an upgrade holds
    the site (it sets it to now + 5 minutes and renews it while the upgrade runs), None
    when unset or 0; ``server_time`` is the server's clock when it was read, so
    ``upgrading`` compares both on one clock.
    """

    upgraderunning: int | None
    maintenance_enabled: bool
    server_time: int

    @property
    def upgrading(self) -> bool:
        return self.upgraderunning is not None and self.upgraderunning > self.server_time


def _site_state(conn: Connection, config_table: str) -> MoodleSiteState:
    rows = conn.query(
        "SELECT name, value, UNIX_TIMESTAMP() FROM "
        f"{config_table} WHERE name IN ('upgraderunning', 'maintenance_enabled')"
    )
    values = {_s(r[0]): _s(r[1]).strip() for r in rows}
    now_rows = rows or conn.query("SELECT UNIX_TIMESTAMP()")
    now = int(_s(now_rows[0][-1]).split(".")[0])
    running = values.get("upgraderunning", "")
    return MoodleSiteState(
        upgraderunning=int(running) if running.isdigit() and int(running) > 0 else None,
        maintenance_enabled=values.get("maintenance_enabled", "") not in ("", "0"),
        server_time=now,
    )


def moodle_site_state(conn: Connection, database: str, prefix: str) -> MoodleSiteState | None:
    """The site's upgrade and maintenance state from ``<prefix>config``; None when the
    database has no such table (not a Moodle database, or another prefix)."""
    rows = conn.query(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        f"{quote_str(database)} AND TABLE_NAME = {quote_str(prefix + 'config')}"
    )
    if not rows:
        return None
    return _site_state(conn, f"{quote_ident(database)}.{quote_ident(prefix + 'config')}")
