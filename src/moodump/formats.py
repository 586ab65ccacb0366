"""The data-file format: how each column is written and how it is loaded back. Pure.

A data file holds one row per line in the text format of ``LOAD DATA`` with its default
escaping, read as ``CHARACTER SET binary`` (no conversion, so every column keeps the bytes
of its own character set, mixed character sets in one table included):

- fields end with TAB, rows end with LF;
- ``\\N`` (backslash, N) is NULL; an empty field is the empty string;
- inside a value, backslash, TAB and LF are written ``\\\\``, ``\\t`` and ``\\n``; every
  other byte (NUL, CR, Ctrl-Z, invalid UTF-8) is written raw. So a raw LF byte only ever
  ends a row, and the number of rows is the number of LF bytes.

The server formats each row (``CONCAT`` over escaped expressions, computed in the
SELECT), which keeps per-row Python work off the hot path. Types that text dumps get
wrong are written in a form that loads back exactly:

- FLOAT as ``CAST(col AS DOUBLE)``: the server prints a DOUBLE with the shortest digits
  that round-trip, and FLOAT -> DOUBLE is exact (mariadb-dump prints FLOAT with 6 digits);
- BIT, ENUM and SET as their integer value (``col + 0``), loaded through a variable with
  ``CAST(@v AS UNSIGNED)``: an ENUM holding the invalid value (index 0) survives, and an
  ENUM whose members look like numbers is not misread;
- strings, blobs, JSON and spatial values as raw bytes of the stored value (spatial keeps
  its SRID prefix), escaped byte-wise on a BINARY cast;
- generated columns are never written; invisible columns are, since columns are always
  listed by name;
- TIMESTAMPs are written and loaded with ``time_zone = '+00:00'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moodump.sqltext import quote_ident

NULL_MARK = b"\\N"

# Byte-wise escaping done by the server on a BINARY cast. Order matters: backslash first.
_ESC = (
    "REPLACE(REPLACE(REPLACE(CAST({c} AS BINARY),'\\\\','\\\\\\\\'),'\\t','\\\\t'),'\\n','\\\\n')"
)
_INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_EXACT_NUMERIC = _INT_TYPES | {"decimal", "numeric", "double", "real", "year"}
_TEMPORAL = {"date", "datetime", "timestamp", "time"}
_INDEX_TYPES = {"bit", "enum", "set"}
# Types whose values may be long enough that a whole row, escaped, can exceed the
# server's max_allowed_packet; such columns are fetched raw on the fallback path.
LONG_TYPES = {"mediumblob", "longblob", "mediumtext", "longtext", "json", "blob", "text"}


@dataclass(frozen=True)
class Column:
    """What the engine needs to know about one column (from information_schema.COLUMNS)."""

    name: str
    data_type: str  # lower-case DATA_TYPE, e.g. "varchar", "float", "geometry"
    column_type: str  # full COLUMN_TYPE, e.g. "enum('a','b')", "int(10) unsigned"
    nullable: bool
    generated: bool = False
    period: str = ""  # "start" / "end": a system-versioning period column (written as data)
    max_bytes: int | None = None  # CHARACTER_OCTET_LENGTH: the longest value possible
    charset: str | None = None  # CHARACTER_SET_NAME (None for binary and non-string types)

    @property
    def is_long(self) -> bool:
        return self.data_type in LONG_TYPES


def _null_wrap(expr: str, col: Column) -> str:
    # Test the column, not the expression: an escaped value longer than the server's
    # max_allowed_packet makes REPLACE() return NULL, and IFNULL(expr, '\\N') would turn
    # that overflow into a silent SQL NULL. With IF(col IS NULL, ...) an overflow stays
    # NULL, which makes the whole CONCAT() row NULL, which the client detects.
    c = quote_ident(col.name)
    return f"IF({c} IS NULL,'\\\\N',{expr})" if col.nullable else expr


#: Values longer than this are not escaped by the server. MariaDB's REPLACE() costs time
#: quadratic in the number of matches in one value (300k newlines in one value: 43 s), so
#: long values come back raw in extra result columns and are escaped in Python (linear).
SERVER_ESCAPE_LIMIT = 2048

_SHORT_STRING_TYPES = {"char", "binary", "enum", "set"}


def is_guarded(col: Column) -> bool:
    """True for columns whose values may be long: escaped in Python when they are."""
    t = col.data_type
    if col.max_bytes is not None and col.max_bytes <= SERVER_ESCAPE_LIMIT:
        return False  # e.g. VARCHAR(255) in utf8mb4: at most 1020 bytes
    return not (
        t in _EXACT_NUMERIC
        or t in _TEMPORAL
        or t == "float"
        or t in _INDEX_TYPES
        or t in _SHORT_STRING_TYPES
        or t in ("uuid", "inet4", "inet6")
    )


def select_expr(col: Column) -> str:
    """The SQL expression that renders ``col`` as one escaped field.

    For guarded columns a value longer than :data:`SERVER_ESCAPE_LIMIT` renders as an
    empty field here and is delivered raw by :func:`long_value_expr`.
    """
    c = quote_ident(col.name)
    t = col.data_type
    if t in _EXACT_NUMERIC or t in _TEMPORAL:
        expr = c
    elif t == "float":
        expr = f"CAST({c} AS DOUBLE)"
    elif t in _INDEX_TYPES:
        expr = f"({c} + 0)"
    else:  # strings, blobs, json, spatial, uuid/inet types: raw bytes, escaped
        expr = _ESC.format(c=c)  # on BINARY: byte-exact for every charset, and cheapest
        if is_guarded(col):
            expr = f"IF(OCTET_LENGTH({c}) > {SERVER_ESCAPE_LIMIT},'',{expr})"
    return _null_wrap(expr, col)


def long_value_expr(col: Column) -> str:
    """The raw value of a guarded column when it is too long for server escaping, else NULL."""
    c = quote_ident(col.name)
    return f"IF(OCTET_LENGTH({c}) > {SERVER_ESCAPE_LIMIT},{c},NULL)"


def patch_long_values(
    line: bytes, extras: tuple[bytes | None, ...], positions: tuple[int, ...]
) -> bytes:
    """Put Python-escaped long values into the fields the server left empty."""
    fields = line.split(b"\t")
    for value, pos in zip(extras, positions, strict=False):
        if value is not None:
            fields[pos] = escape_value(value)
    return b"\t".join(fields)


def raw_select_expr(col: Column) -> str:
    """The expression used on the fallback path: long columns come raw, escaped in Python."""
    if col.is_long:
        return quote_ident(col.name)
    return select_expr(col)


def escape_value(value: bytes | None) -> bytes:
    """Python-side escaping of one raw value (fallback path for very long values)."""
    if value is None:
        return NULL_MARK
    return value.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n")


def row_query(
    database: str,
    table: str,
    columns: list[Column],
    *,
    where: str = "",
    order_by: list[str] | None = None,
    split_long: bool = False,
    history: bool = False,
) -> str:
    """The SELECT that streams a table (or a key range of it) in the file format.

    With ``split_long`` each column is a separate result value and long columns come
    raw; the caller escapes those and joins the fields (see :func:`join_split_row`).
    """
    if split_long:
        fields = ", ".join(raw_select_expr(c) for c in columns)
    else:
        # CONCAT, not CONCAT_WS: CONCAT_WS skips NULL arguments (a field would vanish),
        # CONCAT returns NULL for the whole row, the overflow signal (see rowstream).
        fields = "CONCAT(" + ",'\\t',".join(select_expr(c) for c in columns) + ")"
        extras = [long_value_expr(c) for c in columns if is_guarded(c)]
        if extras:
            fields += ", " + ", ".join(extras)
    if not columns:  # a table whose columns are all generated: count rows only
        fields = "''"
    return f"SELECT {fields} " + _from_clause(database, table, where, order_by, history)


def _from_clause(
    database: str, table: str, where: str, order_by: list[str] | None, history: bool
) -> str:
    sql = f"FROM {quote_ident(database)}.{quote_ident(table)}"
    if history:  # system-versioned table: every row version, not only the current ones
        sql += " FOR SYSTEM_TIME ALL"
    if where:
        sql += f" WHERE {where}"
    if order_by:
        sql += " ORDER BY " + ", ".join(quote_ident(c) for c in order_by)
    return sql


def join_split_row(row: tuple[bytes | None, ...], long_mask: tuple[bool, ...]) -> bytes:
    """Join a fallback-path row: escape long raw values, keep server-escaped ones."""
    return b"\t".join(
        escape_value(v) if is_long else (v if v is not None else NULL_MARK)
        for v, is_long in zip(row, long_mask, strict=False)
    )


@dataclass(frozen=True)
class LoadSpec:
    """The column list and SET clause of the LOAD DATA statement for a table."""

    targets: list[str]  # column names or "@vN" variables, in file order
    assignments: list[str]  # "`col` = expr" strings
    # Positions of the variables in ``targets``; every other target is a column name,
    # quoted even when it starts with "@" (a column may be named `@x`, or `@v1`).
    variables: tuple[int, ...] = ()

    def clause(self) -> str:
        cols = ", ".join(
            t if i in self.variables else quote_ident(t) for i, t in enumerate(self.targets)
        )
        sql = f"({cols})"
        if self.assignments:
            sql += " SET " + ", ".join(self.assignments)
        return sql


def load_spec(columns: list[Column]) -> LoadSpec:
    """How to load a data file written with :func:`row_query` for these columns."""
    targets: list[str] = []
    assignments: list[str] = []
    variables: list[int] = []
    for i, col in enumerate(columns):
        if col.data_type in _INDEX_TYPES:
            var = f"@v{i}"
            targets.append(var)
            variables.append(i)
            assignments.append(f"{quote_ident(col.name)} = CAST({var} AS UNSIGNED)")
        else:
            targets.append(col.name)
    return LoadSpec(targets, assignments, tuple(variables))


def load_data_sql(database: str, table: str, spec: LoadSpec, path: str) -> str:
    """The complete ``LOAD DATA LOCAL INFILE`` statement for one data file."""
    from moodump.sqltext import quote_str

    return (
        f"LOAD DATA LOCAL INFILE {quote_str(path)} INTO TABLE "
        f"{quote_ident(database)}.{quote_ident(table)} CHARACTER SET binary "
        "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' " + spec.clause()
    )


#: Session settings for every dump and restore session: UTC for TIMESTAMPs, no
#: NO_BACKSLASH_ESCAPES/ANSI_QUOTES (our SQL relies on both being off), and
#: NO_AUTO_VALUE_ON_ZERO so a stored 0 in an AUTO_INCREMENT column stays 0, and
#: ALLOW_INVALID_DATES so a date a table took under that mode ('2020-02-30', in its rows
#: or its DEFAULT) is loaded as it is, not as '0000-00-00' (nor refused).
SESSION_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES"

#: max_heap_table_size of restore sessions: a MEMORY table's size limit is its creating
#: session's (not in SHOW CREATE TABLE), so the restore creates them with one that does
#: not bind, the largest a 64-bit server takes without a warning (1 EiB; memory is only
#: used as rows arrive).
RESTORE_MAX_HEAP_TABLE_SIZE = 1 << 60


# -- the INSERT fallback (servers that refuse LOAD DATA LOCAL, e.g. MySQL 8's default) --

_UNESCAPE = {ord("\\"): b"\\", ord("t"): b"\t", ord("n"): b"\n", ord("0"): b"\0",
             ord("r"): b"\r", ord("Z"): b"\x1a", ord("b"): b"\b"}  # fmt: skip


def unescape_field(field: bytes) -> bytes | None:
    """Undo the file escaping of one field (``\\N`` is NULL), as LOAD DATA does."""
    if field == NULL_MARK:
        return None
    if b"\\" not in field:
        return field
    out = bytearray()
    i = 0
    n = len(field)
    while i < n:
        j = field.find(b"\\", i)
        if j < 0 or j == n - 1:
            out += field[i:]
            break
        out += field[i:j]
        nxt = field[j + 1]
        out += _UNESCAPE.get(nxt, bytes((nxt,)))
        i = j + 2
    return bytes(out)


_QUOTED_IDENT = re.compile(r"`(?:[^`]|``)*`")
_VARIABLE = re.compile(r"@v(\d+)\b")


def index_typed_columns(load_clause: str, count: int) -> list[bool]:
    """Which of a table's ``count`` file columns its LOAD DATA clause reads through an
    ``@vN`` variable (BIT/ENUM/SET). Whole tokens only: ``@v1`` is not in ``@v10``, and
    a column *named* ``@v1`` is a quoted identifier, not a variable."""
    found = {int(n) for n in _VARIABLE.findall(_QUOTED_IDENT.sub("", load_clause))}
    return [i in found for i in range(count)]


def sql_literal(value: bytes | None, data_type: str, *, index_typed: bool) -> bytes:
    """A SQL literal for one value, exact for its column type (connection utf8mb4)."""
    if value is None:
        return b"NULL"
    if index_typed:  # BIT/ENUM/SET written as their integer value
        negative = value.startswith(b"-")
        if not value[negative:].isdigit():
            raise ValueError(f"not an integer: {value[:20]!r}")
        if negative:
            # A SET with its 64th member chosen: the server prints ``col + 0`` as a
            # signed BIGINT; LOAD DATA's CAST(@v AS UNSIGNED) wraps it, and so do we.
            return str(int(value) + (1 << 64)).encode()
        return value
    body = (
        value.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\0", b"\\0")
        .replace(b"\n", b"\\n").replace(b"\r", b"\\r").replace(b"\x1a", b"\\Z")
    )  # fmt: skip
    if data_type == "json":  # MySQL refuses JSON from a binary string
        return b"CONVERT(_binary'" + body + b"' USING utf8mb4)"
    return b"_binary'" + body + b"'"


# -- the client-formatting path (moodump.db._speedups) ----------------------------------------


def needs_escaping(col: Column) -> bool:
    """True when a column's text can contain backslash, TAB or LF bytes."""
    t = col.data_type
    return not (t in _EXACT_NUMERIC or t in _TEMPORAL or t == "float" or t in _INDEX_TYPES)


def plain_expr(col: Column) -> str:
    """The column as the client-formatting path selects it (the server does no escaping)."""
    c = quote_ident(col.name)
    t = col.data_type
    if t == "float":
        return f"CAST({c} AS DOUBLE)"
    if t in _INDEX_TYPES:
        return f"({c} + 0)"
    if t in _EXACT_NUMERIC or t in _TEMPORAL or t in _PLAIN_STRING_TYPES:
        return c
    # Spatial, UUID, INET4/6, MySQL JSON...: the same bytes the server path writes (its
    # BINARY cast), e.g. a UUID's 16-byte form, which loads back exactly.
    return f"CAST({c} AS BINARY)"


_PLAIN_STRING_TYPES = {
    "char", "varchar", "tinytext", "text", "mediumtext", "longtext",
    "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
}  # fmt: skip


def plain_query(
    database: str,
    table: str,
    columns: list[Column],
    *,
    where: str = "",
    order_by: list[str] | None = None,
    history: bool = False,
) -> str:
    """The SELECT of the client-formatting path: plain columns, formatted by the client."""
    fields = ", ".join(plain_expr(c) for c in columns) if columns else "''"
    return f"SELECT {fields} " + _from_clause(database, table, where, order_by, history)


def escape_mask(columns: list[Column]) -> bytes:
    """One byte per selected column: 1 where the client must escape the value."""
    if not columns:
        return b"\x00"
    return bytes(1 if needs_escaping(c) else 0 for c in columns)


@dataclass(frozen=True)
class Codec:
    """A data file compression: its file name extension and its level range (isal's
    gzip levels 0-3, zstd's 1-19). The table is pure data, so that the configuration can
    check ``MOODUMP_LEVEL`` without importing the compressors (:mod:`moodump.compression`)."""

    name: str
    extension: str
    default_level: int
    min_level: int
    max_level: int


CODECS = {
    "gzip": Codec("gzip", ".gz", 1, 0, 3),
    "zstd": Codec("zstd", ".zst", 3, 1, 19),
    "none": Codec("none", "", 0, 0, 0),
}
