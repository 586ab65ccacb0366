"""What the account may see: parsed ``SHOW GRANTS`` (pure parser, one I/O function).

``information_schema`` silently hides what an account has no privilege on: tables without
a grant, triggers without TRIGGER, events without EVENT, views' definitions without SHOW
VIEW, routines without any routine privilege. A dump that trusted the catalogue alone
would publish a DONE backup with those objects missing. The dump therefore checks the
account's database-level privileges first and fails closed (see :mod:`moodump.dump`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moodump.db.connection import Connection

_GRANT = re.compile(
    r"^GRANT (?P<privs>.+?) ON (?:(?:PROCEDURE|FUNCTION|TABLE) )?(?P<obj>\S+) TO ", re.S
)
_OBJ = re.compile(r"^(?:\*|`(?P<db>(?:[^`]|``)+)`)\.(?:\*|`(?P<table>(?:[^`]|``)+)`)$")


@dataclass(frozen=True)
class Grant:
    privileges: frozenset[str]  # upper case; "ALL PRIVILEGES" kept as such
    database: str | None  # None for *.* ; a LIKE pattern otherwise
    table: str | None  # None for db.* and *.*


def parse_grants(lines: list[str]) -> list[Grant]:
    """Parse ``SHOW GRANTS`` lines; lines that are not privilege grants are skipped."""
    out = []
    for line in lines:
        m = _GRANT.match(line.strip())
        if not m:
            continue
        o = _OBJ.match(m.group("obj"))
        if not o:
            continue
        # Column lists ("SELECT (a, b)") make a privilege column-level: not database-wide.
        privs = frozenset(
            p.strip().upper()
            for p in re.split(r",(?![^()]*\))", m.group("privs"))
            if p.strip() and "(" not in p
        )
        db = o.group("db").replace("``", "`") if o.group("db") else None
        table = o.group("table").replace("``", "`") if o.group("table") else None
        out.append(Grant(privs, db, table))
    return out


def like_pattern(name: str) -> str:
    """``name`` as a literal in a grant's database pattern (``\\_`` and ``\\%``), backticks
    doubled for writing it between backticks."""
    escaped = name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return escaped.replace("`", "``")


def _like(pattern: str, name: str) -> bool:
    """MySQL grant patterns: % and _ are wildcards, \\% and \\_ literal."""
    rx = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            rx += re.escape(pattern[i + 1])
            i += 2
            continue
        rx += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(rx, name) is not None


def database_privileges(grants: list[Grant], database: str) -> set[str]:
    """Privileges that apply to every table of ``database`` (global or database level)."""
    privs: set[str] = set()
    for g in grants:
        if g.table is not None:
            continue
        if g.database is None or _like(g.database, database):
            privs |= g.privileges
    if "ALL PRIVILEGES" in privs or "ALL" in privs:
        privs |= DATABASE_PRIVILEGES
    return privs


#: What ALL [PRIVILEGES] grants at database level.
DATABASE_PRIVILEGES = frozenset({
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES",
    "CREATE TEMPORARY TABLES", "LOCK TABLES", "CREATE VIEW", "SHOW VIEW", "TRIGGER", "EVENT",
    "CREATE ROUTINE", "ALTER ROUTINE", "EXECUTE", "DELETE HISTORY",
})  # fmt: skip


def account_privileges(conn: Connection, database: str) -> set[str] | None:
    """Database-level privileges of the current account, or None if they cannot be read."""
    try:
        rows = conn.query("SHOW GRANTS")
    except Exception:
        return None
    lines = [(r[0] or b"").decode("utf-8", "replace") for r in rows]
    grants = parse_grants(lines)
    if not grants:
        return None
    return database_privileges(grants, database)


#: Global privileges that let an account create objects for another DEFINER.
DEFINER_PRIVILEGES = frozenset(
    {"SET USER", "SUPER", "ALL PRIVILEGES", "ALL", "SET_USER_ID", "SET_ANY_DEFINER"}
)  # MariaDB; MySQL 8

_ROLE_GRANT = re.compile(r"^GRANT `[^`]*`(?:@`[^`]*`)? TO ")


def global_privileges(lines: list[str]) -> set[str] | None:
    """Privileges granted ON *.* by ``SHOW GRANTS`` lines; None when a role is granted
    (its privileges are not listed there) or nothing could be parsed."""
    if any(_ROLE_GRANT.match(line.strip()) for line in lines):
        return None
    grants = parse_grants(lines)
    if not grants:
        return None
    out: set[str] = set()
    for g in grants:
        if g.database is None and g.table is None:
            out |= g.privileges
    return out


def account_global_privileges(conn: Connection) -> set[str] | None:
    """The current account's global privileges, or None if they cannot be known."""
    try:
        rows = conn.query("SHOW GRANTS")
    except Exception:
        return None
    return global_privileges([(r[0] or b"").decode("utf-8", "replace") for r in rows])
