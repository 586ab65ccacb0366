"""Compare two databases on one server: data (CHECKSUM TABLE) and every object's definition."""

from __future__ import annotations

import re

from moodump.db import Connection
from moodump.db.connection import quote_ident, quote_str


def _names(c: Connection, sql: str) -> list[str]:
    return sorted((r[0] or b"").decode() for r in c.query(sql))


def _own(value: bytes | None, db: str) -> bytes | None:
    """A table definition with its own database's name made generic (not the other's)."""
    return None if value is None else value.replace(quote_ident(db).encode() + b".", b"`DB`.")


def _own_trigger(value: bytes | None, db: str) -> bytes | None:
    """A trigger's statement with its own database's name in any quoting made generic."""
    if value is None:
        return None
    name = re.escape(db.encode())
    pattern = rb'(?:`' + re.escape(db.replace("`", "``").encode()) + rb'`|"' + re.escape(
        db.replace('"', '""').encode()
    ) + rb'"|(?<![\w`"])' + name + rb")(\s*\.)"
    return re.sub(pattern, rb"`DB`\1", value)


def _history(c: Connection, db: str, table: str) -> list[tuple]:
    """Every row version of a system-versioned table, period columns included, sorted."""
    cols = c.query(
        "SELECT COLUMN_NAME, GENERATION_EXPRESSION FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA={quote_str(db)} AND TABLE_NAME={quote_str(table)} "
        "ORDER BY ORDINAL_POSITION"
    )
    names = [(n or b"").decode() for n, _ in cols]
    if not any((g or b"").upper() in (b"ROW START", b"ROW END") for _, g in cols):
        names += ["row_start", "row_end"]
    sel = ", ".join(f"HEX({quote_ident(n)})" for n in names)
    rows = c.query(f"SELECT {sel} FROM {quote_ident(db)}.{quote_ident(table)} FOR SYSTEM_TIME ALL")
    return sorted(rows, key=repr)


def row_hashes(c: Connection, db: str, table: str) -> list[bytes]:
    """One hash per row (history rows included), sorted: an exact multiset of the rows.

    Every column is hashed, invisible and generated ones too, as its bytes
    (``CAST AS BINARY``: -0 and 0 differ, so do trailing spaces and charsets), and BIT,
    ENUM and SET also by their number (an invalid ENUM value and the member ''
    differ). NULL is not any string.
    """
    cols = c.query(
        "SELECT COLUMN_NAME, DATA_TYPE, GENERATION_EXPRESSION FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA={quote_str(db)} AND TABLE_NAME={quote_str(table)} "
        "ORDER BY ORDINAL_POSITION"
    )
    kind = c.scalar(
        "SELECT TABLE_TYPE FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA={quote_str(db)} AND TABLE_NAME={quote_str(table)}"
    )
    exprs = []
    for name_b, dtype, _ in cols:
        q = quote_ident((name_b or b"").decode())
        e = f"IF({q} IS NULL, 'N', CONCAT('v', HEX(CAST({q} AS BINARY))))"
        if dtype in (b"bit", b"enum", b"set"):
            e += f", IFNULL({q} + 0, 'N')"
        exprs.append(e)
    history = ""
    if kind == b"SYSTEM VERSIONED":
        history = " FOR SYSTEM_TIME ALL"
        if not any((g or b"").upper() == b"ROW START" for _, _, g in cols):
            # the implicit period columns are not listed
            exprs += ["HEX(CAST(row_start AS BINARY))", "HEX(CAST(row_end AS BINARY))"]
    hashes = c.query(
        f"SELECT SHA2(CONCAT_WS(',', {', '.join(exprs)}), 256) AS h "
        f"FROM {quote_ident(db)}.{quote_ident(table)}{history} ORDER BY h"
    )
    return [h for (h,) in hashes if h is not None]


def compare_rows_exactly(c: Connection, a: str, b: str) -> list[str]:
    """Differences in the rows of the same-named tables of ``a`` and ``b``, row by row."""
    diffs: list[str] = []
    c.execute("SET NAMES utf8mb4")
    sql = (
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE NOT IN "
        "('VIEW', 'SEQUENCE') AND TABLE_SCHEMA={}"
    )
    in_b = set(_names(c, sql.format(quote_str(b))))
    for t in _names(c, sql.format(quote_str(a))):
        if t not in in_b:  # compare_databases names the missing tables
            diffs.append(f"table {t}: missing")
            continue
        ha, hb = row_hashes(c, a, t), row_hashes(c, b, t)
        if ha != hb:
            diffs.append(f"table {t}: rows differ ({len(ha)} vs {len(hb)} rows)")
    return diffs


def compare_databases(c: Connection, a: str, b: str) -> list[str]:
    """Differences between databases ``a`` and ``b`` (empty list = identical)."""
    diffs: list[str] = []
    qa, qb = quote_str(a), quote_str(b)
    tables_a = _names(
        c,
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA={qa} AND TABLE_TYPE<>'VIEW'",
    )
    tables_b = _names(
        c,
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA={qb} AND TABLE_TYPE<>'VIEW'",
    )
    if tables_a != tables_b:
        diffs.append(f"tables differ: {tables_a} vs {tables_b}")
    c.execute("SET NAMES utf8mb4")
    for t in tables_a:
        if t not in tables_b:
            continue
        ta = f"{quote_ident(a)}.{quote_ident(t)}"
        tb = f"{quote_ident(b)}.{quote_ident(t)}"
        kind = c.query(
            f"SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA={qa} AND TABLE_NAME={quote_str(t)}"
        )[0][0]
        if kind == b"SEQUENCE":
            sa = c.query(f"SHOW CREATE SEQUENCE {ta}")[0][1]
            sb = c.query(f"SHOW CREATE SEQUENCE {tb}")[0][1]
            if sa != sb:
                diffs.append(f"sequence {t}: {sa!r} vs {sb!r}")
            # The state too: the next value to hand out and the cycles done.
            va = c.query(f"SELECT next_not_cached_value, cycle_count FROM {ta}")
            vb = c.query(f"SELECT next_not_cached_value, cycle_count FROM {tb}")
            if va != vb:
                diffs.append(f"sequence {t}: state {va!r} vs {vb!r}")
            continue
        if kind == b"SYSTEM VERSIONED":  # CHECKSUM TABLE sees current rows only
            ha, hb = _history(c, a, t), _history(c, b, t)
            if ha != hb:
                diffs.append(f"table {t}: history differs: {ha!r} vs {hb!r}")
        ca = c.query(f"CHECKSUM TABLE {ta} EXTENDED")[0][1]
        cb = c.query(f"CHECKSUM TABLE {tb} EXTENDED")[0][1]
        if ca != cb:
            diffs.append(f"table {t}: checksum {ca!r} vs {cb!r}")
        na = c.scalar(f"SELECT COUNT(*) FROM {ta}")
        nb = c.scalar(f"SELECT COUNT(*) FROM {tb}")
        if na != nb:
            diffs.append(f"table {t}: {na!r} rows vs {nb!r}")
        # A DEFAULT nextval() names the sequence's database: each side its own.
        da = _own(c.query(f"SHOW CREATE TABLE {ta}")[0][1], a)
        db_ = _own(c.query(f"SHOW CREATE TABLE {tb}")[0][1], b)
        if da != db_:
            diffs.append(f"table {t}: SHOW CREATE TABLE differs:\n{da!r}\n{db_!r}")
    views_a = _names(c, f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA={qa}")
    views_b = _names(c, f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA={qb}")
    if views_a != views_b:
        diffs.append(f"views differ: {views_a} vs {views_b}")
    for v in views_a:
        if v in views_b:
            ra = c.query(f"SHOW CREATE VIEW {quote_ident(a)}.{quote_ident(v)}")[0]
            rb = c.query(f"SHOW CREATE VIEW {quote_ident(b)}.{quote_ident(v)}")[0]
            # Each side's own database name only: a view that still names the source
            # database after a restore (a sequence call) must show.
            if [_own(x, a) for x in ra] != [_own(x, b) for x in rb]:
                diffs.append(f"view {v}: {ra!r} vs {rb!r}")
    for kind, sql, skip in (
        (
            "TRIGGER",
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={}",
            {6},
        ),
        (
            "PROCEDURE",
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE='PROCEDURE' AND ROUTINE_SCHEMA={}",
            set(),
        ),
        (
            "FUNCTION",
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE='FUNCTION' AND ROUTINE_SCHEMA={}",
            set(),
        ),
        (
            "PACKAGE",
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE='PACKAGE' AND ROUTINE_SCHEMA={}",
            set(),
        ),
        (
            "PACKAGE BODY",
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE='PACKAGE BODY' AND ROUTINE_SCHEMA={}",
            set(),
        ),
        ("EVENT", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA={}", set()),
    ):
        na_ = _names(c, sql.format(qa))
        nb_ = _names(c, sql.format(qb))
        if na_ != nb_:
            diffs.append(f"{kind.lower()}s differ: {na_} vs {nb_}")
            continue
        for n in na_:
            ra = c.query(f"SHOW CREATE {kind} {quote_ident(a)}.{quote_ident(n)}")[0]
            rb = c.query(f"SHOW CREATE {kind} {quote_ident(b)}.{quote_ident(n)}")[0]
            ra = tuple(x for i, x in enumerate(ra) if i not in skip)
            rb = tuple(x for i, x in enumerate(rb) if i not in skip)
            if kind == "TRIGGER":  # its header may name its own database (each side its own)
                ra = tuple(_own_trigger(x, a) if isinstance(x, bytes) else x for x in ra)
                rb = tuple(_own_trigger(x, b) if isinstance(x, bytes) else x for x in rb)
            if ra != rb:
                diffs.append(f"{kind.lower()} {n}: {ra!r} vs {rb!r}")
    order_a = c.query(
        f"SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={qa} ORDER BY 1"
    )
    order_b = c.query(
        f"SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={qb} ORDER BY 1"
    )
    if order_a != order_b:
        diffs.append(f"trigger order differs: {order_a} vs {order_b}")
    # The database's comment too (MariaDB 10.5+)
    comment = (
        ", SCHEMA_COMMENT"
        if c.query(
            "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema' "
            "AND TABLE_NAME = 'SCHEMATA' AND COLUMN_NAME = 'SCHEMA_COMMENT'"
        )
        else ""
    )
    ddl_a = c.query(
        f"SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME{comment} FROM information_schema.SCHEMATA WHERE SCHEMA_NAME={qa}"
    )
    ddl_b = c.query(
        f"SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME{comment} FROM information_schema.SCHEMATA WHERE SCHEMA_NAME={qb}"
    )
    if ddl_a != ddl_b:
        diffs.append(f"database options differ: {ddl_a} vs {ddl_b}")
    return diffs
