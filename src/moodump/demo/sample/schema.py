"""Moodle's tables as Moodle itself creates them on MariaDB/MySQL.

This is a Python transcription of what Moodle 4.4's ``mysql_sql_generator`` (and its base
``sql_generator``) emit for the shipped XMLDB schema, so the tables carry the same column
types, defaults, index names and table options as on a real site:

========================  ==========================================================
XMLDB                     MariaDB (``mysql_sql_generator::getTypeSQL``)
========================  ==========================================================
int, LENGTH > 9           ``BIGINT(L)`` (also when LENGTH is missing: treated as 10)
int, LENGTH 7..9          ``INT(L)``
int, LENGTH 5..6          ``MEDIUMINT(L)``
int, LENGTH 3..4          ``SMALLINT(L)``
int, LENGTH 1..2          ``TINYINT(L)``
char(L)                   ``VARCHAR(L) COLLATE <collation>`` (255 when LENGTH missing)
text                      ``LONGTEXT COLLATE <collation>``
number(L, D)              ``NUMERIC(L,D)`` (stored and shown by the server as DECIMAL)
float                     ``DOUBLE``; with DECIMALS < 6 ``FLOAT``; with LENGTH ``(L,D)``
binary                    ``LONGBLOB``
datetime                  ``DATETIME``
========================  ==========================================================

- Columns: ``NOT NULL`` then ``DEFAULT``; a NOT NULL char without a default gets
  ``DEFAULT ''`` (``$default_for_char``); text/binary never get a default; the sequence
  field (``id``) is ``BIGINT(10) NOT NULL auto_increment``. All numbers are signed.
- Keys: the primary key is declared inline. MySQL/MariaDB get **no foreign keys and no
  unique constraints**: every ``unique`` and ``foreign-unique`` key becomes a unique index
  (``_uix``), every ``foreign`` key a plain index (``_ix``), created after the table's own
  ``<INDEX>`` entries, in file order -- all folded into the CREATE TABLE, as Moodle's MySQL
  generator does.
- Index names follow ``sql_generator::getNameForObject``: the prefix, the first 4
  characters of each ``_``-separated part of the table name, ``_``, the first 3 characters
  of each column, cut to 30 characters minus the suffix, then ``_ix``/``_uix``
  (``mdl_logsstanlog_tim_ix``). Names are de-duplicated across the whole installation
  with a counter (``mdl_user_del2_ix``), in installation order; our order is core first,
  then the other ``install.xml`` files by path, so a rare clash may be numbered
  differently from a given real site (only the name differs).
- Table options: ``ENGINE=InnoDB DEFAULT COLLATE=utf8mb4_unicode_ci`` plus a row format,
  and the table comment cut to 60 bytes. Moodle asks for ``ROW_FORMAT=Compressed`` when
  the server supports it (MariaDB >= 10.3.1 with ``innodb_file_per_table``) and
  ``Dynamic`` otherwise; we default to ``Dynamic`` (the server default, and what the
  benchmark baseline measured) and accept ``row_format="Compressed"``.

Identifiers are always back-quoted (Moodle quotes only its reserved words); the created
tables are the same.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SCHEMA_RESOURCE = "moodle_schema.json"
DEFAULT_COLLATION = "utf8mb4_unicode_ci"
NAMES_MAX_LENGTH = 30  # sql_generator::$names_max_length


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The shipped schema (see :mod:`moodump.demo.sample.xmldb` for its layout)."""
    text = resources.files(__package__).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def tables() -> list[dict[str, Any]]:
    """All 483 table definitions in installation order."""
    result: list[dict[str, Any]] = load_schema()["tables"]
    return result


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _addslashes(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")


def type_sql(
    xtype: str, length: int | None, decimals: int | None, collation: str = DEFAULT_COLLATION
) -> str:
    """The column type Moodle's MySQL generator emits for an XMLDB type."""
    if xtype == "int":
        n = length or 10
        if n > 9:
            base = "BIGINT"
        elif n > 6:
            base = "INT"
        elif n > 4:
            base = "MEDIUMINT"
        elif n > 2:
            base = "SMALLINT"
        else:
            base = "TINYINT"
        return f"{base}({n})"
    if xtype == "number":
        if not length:
            return "NUMERIC"
        return f"NUMERIC({length},{decimals})" if decimals else f"NUMERIC({length})"
    if xtype == "float":
        base = "FLOAT" if decimals and decimals < 6 else "DOUBLE"
        if length:
            return f"{base}({length},{decimals})" if decimals else f"{base}({length}, 0)"
        return base
    if xtype == "char":
        return f"VARCHAR({length or 255}) COLLATE {collation}"
    if xtype == "text":
        return f"LONGTEXT COLLATE {collation}"
    if xtype == "binary":
        return "LONGBLOB"
    if xtype == "datetime":
        return "DATETIME"
    raise ValueError(f"unknown XMLDB type {xtype!r}")


def field_sql(field: list[Any], collation: str = DEFAULT_COLLATION) -> str:
    """One column definition (``sql_generator::getFieldSQL`` for MySQL)."""
    name, xtype, length, decimals, notnull, sequence, default = field
    sql = f"{_q(name)} {type_sql(xtype, length, decimals, collation)}"
    if notnull or sequence:
        sql += " NOT NULL"
    if sequence:
        return sql + " auto_increment"
    if default is not None:
        if xtype in ("char", "text"):
            sql += f" DEFAULT '{_addslashes(default)}'"
        elif xtype != "binary":
            sql += f" DEFAULT {default}"
    elif xtype == "char" and notnull:
        sql += " DEFAULT ''"
    return sql


class IndexNamer:
    """``sql_generator::getNameForObject`` with its per-installation name cache."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.used: set[str] = set()
        self.counters: dict[str, int] = {}

    def name(self, table: str, fields: list[str], suffix: str) -> str:
        base = "".join(part.strip()[:4] for part in table.split("_")) + "_"
        base += "".join(f.strip()[:3] for f in fields)
        base = (self.prefix + base).strip()
        room = NAMES_MAX_LENGTH - len(suffix) - (1 if suffix else 0)
        tail = "_" + suffix if suffix else ""
        if base in self.counters:
            counter = self.counters[base] + 1
            candidate = base[: room - len(str(counter))] + str(counter) + tail
        else:
            counter = 1
            candidate = base[:room] + tail
        while candidate in self.used:
            counter += 1
            candidate = base[: room - len(str(counter))] + str(counter) + tail
        self.used.add(candidate)
        self.counters[base] = counter
        return candidate.lower()


def table_indexes(table: dict[str, Any], namer: IndexNamer) -> list[tuple[str, bool, list[str]]]:
    """(name, unique, columns) of every secondary index, in Moodle's creation order."""
    result: list[tuple[str, bool, list[str]]] = []
    for _name, unique, cols in table["indexes"]:
        suffix = "uix" if unique else "ix"
        result.append((namer.name(table["name"], cols, suffix), bool(unique), list(cols)))
    for _name, ktype, cols, _reft, _reff in table["keys"]:
        if ktype in ("unique", "foreign-unique"):
            result.append((namer.name(table["name"], cols, "uix"), True, list(cols)))
        elif ktype == "foreign":
            result.append((namer.name(table["name"], cols, "ix"), False, list(cols)))
    return result


def create_table_sql(
    table: dict[str, Any],
    namer: IndexNamer,
    *,
    prefix: str = "mdl_",
    collation: str = DEFAULT_COLLATION,
    row_format: str = "Dynamic",
    engine: str = "InnoDB",
    with_indexes: bool = True,
) -> tuple[str, list[str]]:
    """(CREATE TABLE, secondary index clauses) for one table.

    With ``with_indexes=False`` the CREATE TABLE has only the primary key and the index
    clauses (``ADD KEY ...``/``ADD UNIQUE KEY ...``) are returned for a later ``ALTER
    TABLE`` -- the result is the same table, built faster when loaded in bulk.
    """
    lines = [field_sql(f, collation) for f in table["fields"]]
    for _name, ktype, cols, _reft, _reff in table["keys"]:
        if ktype == "primary":
            lines.append(f"PRIMARY KEY ({', '.join(_q(c) for c in cols)})")
    index_clauses = []
    for name, unique, cols in table_indexes(table, namer):
        kind = "UNIQUE KEY" if unique else "KEY"
        index_clauses.append(f"{kind} {_q(name)} ({', '.join(_q(c) for c in cols)})")
    if with_indexes:
        lines.extend(index_clauses)
    body = ",\n    ".join(lines)
    sql = f"CREATE TABLE {_q(prefix + table['name'])} (\n    {body}\n)"
    sql += f" ENGINE={engine} DEFAULT CHARSET=utf8mb4 COLLATE={collation}"
    if row_format:
        sql += f" ROW_FORMAT={row_format}"
    comment = table.get("comment") or ""
    if comment:
        cut = comment.encode("utf-8")[:60].decode("utf-8", "ignore")
        sql += f" COMMENT='{_addslashes(cut)}'"
    return sql, index_clauses


def ddl(
    prefix: str = "mdl_",
    *,
    collation: str = DEFAULT_COLLATION,
    row_format: str = "Dynamic",
    engine: str = "InnoDB",
) -> list[str]:
    """CREATE TABLE statements for all 483 Moodle tables (see the module docstring)."""
    namer = IndexNamer(prefix)
    return [
        create_table_sql(
            t, namer, prefix=prefix, collation=collation, row_format=row_format, engine=engine
        )[0]
        for t in tables()
    ]


# -- PostgreSQL ---------------------------------------------------------------------


def _pg_q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_type_sql(xtype: str, length: int | None, decimals: int | None) -> str:
    """The column type Moodle's ``pgsql_sql_generator::getTypeSQL`` emits for an XMLDB type.

    int: ``SMALLINT`` up to LENGTH 4, ``INTEGER`` up to 9, ``BIGINT`` above (or without a
    LENGTH); number: ``NUMERIC(L,D)``; float: ``DOUBLE PRECISION``, ``REAL`` when DECIMALS
    is under 6; char: ``VARCHAR(L)``; text: ``TEXT``; binary: ``BYTEA``; datetime:
    ``TIMESTAMP``.
    """
    if xtype == "int":
        n = length or 10
        return "BIGINT" if n > 9 else "INTEGER" if n > 4 else "SMALLINT"
    if xtype == "number":
        if not length:
            return "NUMERIC"
        return f"NUMERIC({length},{decimals})" if decimals else f"NUMERIC({length})"
    if xtype == "float":
        return "REAL" if decimals and decimals < 6 else "DOUBLE PRECISION"
    if xtype == "char":
        return f"VARCHAR({length or 255})"
    if xtype == "text":
        return "TEXT"
    if xtype == "binary":
        return "BYTEA"
    if xtype == "datetime":
        return "TIMESTAMP"
    raise ValueError(f"unknown XMLDB type {xtype!r}")


def pg_field_sql(field: list[Any]) -> str:
    """One column definition as Moodle creates it on PostgreSQL (the id is ``BIGSERIAL``)."""
    name, xtype, length, decimals, notnull, sequence, default = field
    if sequence:
        return f"{_pg_q(name)} BIGSERIAL"
    sql = f"{_pg_q(name)} {pg_type_sql(xtype, length, decimals)}"
    if notnull:
        sql += " NOT NULL"
    if default is not None:
        if xtype in ("char", "text"):
            sql += " DEFAULT '" + str(default).replace("'", "''") + "'"
        elif xtype != "binary":
            sql += f" DEFAULT {default}"
    elif xtype == "char" and notnull:
        sql += " DEFAULT ''"
    return sql


def pg_ddl(prefix: str = "mdl_", *, with_indexes: bool = True) -> list[tuple[str, str, list[str]]]:
    """(table name, CREATE TABLE, CREATE INDEX statements) for all 483 tables on PostgreSQL.

    Same names and keys as :func:`ddl` (Moodle's PostgreSQL generator also turns unique and
    foreign keys into indexes); the primary key is a named ``..._pk`` constraint. With
    ``with_indexes=False`` the indexes are still returned, for creation after a bulk load.
    """
    namer = IndexNamer(prefix)
    pk_namer = IndexNamer(prefix)  # its own cache: the index names stay those of ddl()
    out: list[tuple[str, str, list[str]]] = []
    for table in tables():
        name = prefix + table["name"]
        lines = [pg_field_sql(f) for f in table["fields"]]
        for _kname, ktype, cols, _reft, _reff in table["keys"]:
            if ktype == "primary":
                lines.append(
                    f"CONSTRAINT {_pg_q(pk_namer.name(table['name'], cols, 'pk'))} "
                    f"PRIMARY KEY ({', '.join(_pg_q(c) for c in cols)})"
                )
        create = f"CREATE TABLE {_pg_q(name)} (\n    " + ",\n    ".join(lines) + "\n)"
        indexes = [
            f"CREATE {'UNIQUE ' if unique else ''}INDEX {_pg_q(iname)} ON {_pg_q(name)} "
            f"({', '.join(_pg_q(c) for c in cols)})"
            for iname, unique, cols in table_indexes(table, namer)
        ]
        out.append((name, create, indexes))
    return out
