"""From a backup's column definitions to Arrow types, and from row text to Arrow arrays.

Pure: no file, network or database I/O. It uses pyarrow's types and compute kernels
(in-memory array functions), never ``pyarrow.fs`` or the readers.

A data file holds ``LOAD DATA`` text (docs/format.md): fields split by TAB, rows by LF,
``\\N`` is NULL, and backslash, TAB and LF inside a value are escaped. The engine lets
pyarrow's CSV reader split the text with quoting and escaping turned off (a raw TAB or
LF byte never occurs inside a value, so the split is exact) and parse numbers in C++;
each column then goes through the converter of its :class:`ColumnPlan` (one of
:mod:`moodump.export.convert`), which undoes the escapes and turns the text into the
exact Arrow type:

===========================  ==============================================================
MariaDB / MySQL              Arrow (Parquet)
===========================  ==============================================================
TINYINT..BIGINT [UNSIGNED]   int8..int64 / uint8..uint64 (BIGINT UNSIGNED: uint64)
YEAR                         int16
DECIMAL(p,s)                 decimal128(p,s), decimal256(p,s) when p > 38
FLOAT / DOUBLE               float32 / float64, bit-exact (the dump writes round-trip digits)
DATE                         date32
DATETIME(fsp)                timestamp[ms] (fsp 0-3) or timestamp[us] (fsp 4-6), no zone
TIMESTAMP(fsp)               the same with tz=UTC (the dump writes TIMESTAMPs in UTC)
TIME(fsp)                    duration[ms] / duration[us] (negative and > 24 h included)
BIT(n)                       binary, ceil(n/8) bytes big-endian (as MariaDB stores it)
BINARY, VARBINARY, BLOBs     binary
CHAR, VARCHAR, TEXTs         string (UTF-8, converted from the column's character set)
JSON                         arrow.json extension type (Parquet JSON logical type)
ENUM / SET                   dictionary<int32, string>
spatial types                binary WKB (the 4-byte SRID prefix moved to field metadata)
UUID / INET4 / INET6         arrow.uuid extension / binary (16 / 4 bytes)
anything else                binary, the stored bytes
===========================  ==============================================================

Values the Arrow type cannot hold -- zero dates (``0000-00-00``), dates with a zero month
or day (``2020-00-15``), text that is not valid in its character set -- become NULL and
are counted per column (``ColumnPlan.convert`` returns the count); they are never
changed into another value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from moodump.export import convert as conv
from moodump.export.convert import Converter
from moodump.export.convert import decode_text as decode_text
from moodump.export.convert import srids as srids
from moodump.export.convert import time_micros as time_micros
from moodump.export.convert import unescape as unescape
from moodump.export.convert import valid_date_text as valid_date_text

#: Field metadata keys (bytes, as Arrow stores them).
META_TYPE = b"moodump.mysql_type"
META_CHARSET = b"moodump.charset"
META_SRID = b"srid"
META_NULLED = b"moodump.nulled"

_INTS = {
    "tinyint": (pa.int8(), pa.uint8()),
    "smallint": (pa.int16(), pa.uint16()),
    "mediumint": (pa.int32(), pa.uint32()),
    "int": (pa.int32(), pa.uint32()),
    "integer": (pa.int32(), pa.uint32()),
    "bigint": (pa.int64(), pa.uint64()),
}
_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
_SPATIAL = {
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
    "multipolygon", "geometrycollection", "geomcollection",
}  # fmt: skip


@dataclass(frozen=True)
class ColumnDef:
    """One stored column as the table's CREATE TABLE declares it."""

    name: str
    data_type: str  # lower-case base type: "int", "varchar", "datetime", ...
    column_type: str  # the declaration's type text, e.g. "int(10) unsigned"
    unsigned: bool = False
    length: int | None = None  # BIT width; DECIMAL precision
    scale: int = 0  # DECIMAL scale
    fsp: int = 0  # fractional seconds of DATETIME/TIMESTAMP/TIME
    charset: str | None = None  # text columns (None: binary)
    members: tuple[str, ...] = ()  # ENUM / SET members
    is_json: bool = False


# -- parsing CREATE TABLE -----------------------------------------------------------------

_COLUMN_LINE = re.compile(r"^\s*`((?:[^`]|``)+)`\s+(.*?),?\s*$")
_TYPE = re.compile(r"([a-zA-Z0-9_]+)\s*(\(([^()']|'(?:[^'\\]|''|\\.)*')*\))?", re.DOTALL)
_CHARSET = re.compile(r"\bCHARACTER SET (\w+)", re.IGNORECASE)
_TABLE_CHARSET = re.compile(r"\bDEFAULT CHARSET=(\w+)", re.IGNORECASE)
_QUOTED = re.compile(r"'((?:[^'\\]|''|\\.)*)'", re.DOTALL)


def parse_create_table(create: str) -> dict[str, ColumnDef]:
    """The columns of a ``SHOW CREATE TABLE`` statement, by name.

    MariaDB writes one column per line (``  `name` type ...``); lines of keys and
    constraints do not start with a back-quoted name and are skipped. A column without
    its own ``CHARACTER SET`` has the table's default.
    """
    m = _TABLE_CHARSET.search(create.rsplit(")", 1)[-1])
    table_charset = m.group(1).lower() if m else "utf8mb4"
    cols: dict[str, ColumnDef] = {}
    for line in create.splitlines()[1:]:
        lm = _COLUMN_LINE.match(line)
        if lm is None:
            continue
        name = lm.group(1).replace("``", "`")
        cols[name] = column_def(name, lm.group(2), table_charset)
    return cols


def column_def(name: str, definition: str, table_charset: str = "utf8mb4") -> ColumnDef:
    """A :class:`ColumnDef` from a column's definition text (after its name)."""
    tm = _TYPE.match(definition)
    if tm is None:
        return ColumnDef(name, "unknown", definition)
    base = tm.group(1).lower()
    args = (tm.group(2) or "")[1:-1]
    rest = definition[tm.end() :]
    column_type = definition[: tm.end()].strip()
    unsigned = bool(re.match(r"\s+unsigned\b", rest, re.IGNORECASE))
    if unsigned:
        column_type += " unsigned"
    length: int | None = None
    scale = 0
    fsp = 0
    members: tuple[str, ...] = ()
    numbers = [int(x) for x in re.findall(r"\d+", args)] if base not in ("enum", "set") else []
    if base in ("decimal", "numeric", "dec", "fixed"):
        base = "decimal"
        length = numbers[0] if numbers else 10
        scale = numbers[1] if len(numbers) > 1 else 0
    elif base == "bit":
        length = numbers[0] if numbers else 1
    elif base in ("datetime", "timestamp", "time"):
        fsp = numbers[0] if numbers else 0
    elif base in ("enum", "set"):
        members = tuple(_unquote(q) for q in _QUOTED.findall(args))
    elif base == "real":
        base = "double"
    elif base in ("bool", "boolean"):
        base = "tinyint"
    charset: str | None = None
    if base in _TEXT or base in ("enum", "set"):
        cm = _CHARSET.search(rest)
        charset = cm.group(1).lower() if cm else table_charset
        if charset == "binary":  # CHAR(n) CHARACTER SET binary is BINARY(n)
            charset = None
    is_json = base == "json" or bool(
        re.search(r"CHECK \(json_valid\(`(?:[^`]|``)+`\)\)", rest, re.IGNORECASE)
    )
    return ColumnDef(
        name, base, column_type, unsigned=unsigned, length=length, scale=scale, fsp=fsp,
        charset=charset, members=members, is_json=is_json,
    )  # fmt: skip


def _unquote(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in ("'", "\\") and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def fallback_def(name: str, data_type: str) -> ColumnDef:
    """A column the CREATE TABLE text does not show (MariaDB's implicit system-versioning
    ``row_start``/``row_end``, TIMESTAMP(6)), from the manifest's DATA_TYPE alone."""
    fsp = 6 if data_type in ("timestamp", "datetime", "time") else 0
    charset = "utf8mb4" if data_type in _TEXT or data_type in ("enum", "set") else None
    return ColumnDef(name, data_type, data_type, fsp=fsp, charset=charset)


# -- the plan of one column ---------------------------------------------------------------


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is read (``read_type``: what the CSV reader parses the text to)
    and converted (``convert``: array of ``read_type`` -> array of ``field.type``, plus
    the number of values that became NULL because the type cannot hold them)."""

    column: ColumnDef
    field: pa.Field
    read_type: pa.DataType
    convert: Converter = field(repr=False)

    @property
    def spatial(self) -> bool:
        return self.column.data_type in _SPATIAL


def plan_column(col: ColumnDef) -> ColumnPlan:
    """The Arrow field and converter for ``col`` (see the table in the module doc)."""
    t = col.data_type
    meta = {META_TYPE: col.column_type.encode()}
    if col.charset:
        meta[META_CHARSET] = col.charset.encode()

    def plan(typ: pa.DataType, read: pa.DataType, converter: Converter) -> ColumnPlan:
        return ColumnPlan(col, pa.field(col.name, typ, metadata=meta), read, converter)

    if t in _INTS:
        typ = _INTS[t][1 if col.unsigned else 0]
        return plan(typ, typ, conv.same)
    if t == "year":
        return plan(pa.int16(), pa.int16(), conv.same)
    if t == "decimal":
        p = max(1, col.length or 10)
        dt = pa.decimal128(p, col.scale) if p <= 38 else pa.decimal256(p, col.scale)
        return plan(dt, pa.string(), conv.cast_to(dt))
    if t == "double":
        return plan(pa.float64(), pa.float64(), conv.same)
    if t == "float":  # written as the DOUBLE of the FLOAT: exact back to float32
        return plan(pa.float32(), pa.float64(), conv.to_float32)
    if t == "date":
        return plan(pa.date32(), pa.string(), conv.temporal(pa.date32()))
    if t in ("datetime", "timestamp"):
        unit = "ms" if col.fsp <= 3 else "us"
        zone = "UTC" if t == "timestamp" else None
        return plan(pa.timestamp(unit, zone), pa.string(), conv.temporal(pa.timestamp(unit), zone))
    if t == "time":
        unit = "ms" if col.fsp <= 3 else "us"
        return plan(pa.duration(unit), pa.string(), conv.duration(unit))
    if t == "bit":
        width = max(1, ((col.length or 1) + 7) // 8)
        return plan(pa.binary(), pa.uint64(), conv.bits(width))
    if t == "enum":
        dictionary = pa.array(("", *col.members), pa.string())
        return plan(
            pa.dictionary(pa.int32(), pa.string()), pa.int64(), conv.enum_dictionary(dictionary)
        )
    if t == "set":  # read signed: the server prints a SET's 64th member as a negative number
        return plan(
            pa.dictionary(pa.int32(), pa.string()), pa.int64(), conv.set_dictionary(col.members)
        )
    if t in _SPATIAL:
        return plan(pa.binary(), pa.binary(), conv.wkb)
    if t == "uuid":
        return plan(pa.uuid(), pa.binary(), conv.uuid_bytes)
    if t in _TEXT or t == "json":
        if col.is_json:
            return plan(pa.json_(pa.string()), pa.binary(), conv.json_text(col.charset))
        return plan(pa.string(), pa.binary(), conv.text(col.charset))
    # binary types, INET4/INET6 and anything unknown: the stored bytes
    return plan(pa.binary(), pa.binary(), conv.binary)


def table_plans(create: str, columns: list[str], data_types: list[str]) -> list[ColumnPlan]:
    """The plans of a table's stored columns, in file order (the manifest's ``columns``)."""
    defs = parse_create_table(create)
    plans = []
    for i, name in enumerate(columns):
        col = defs.get(name)
        if col is None:
            col = fallback_def(name, data_types[i] if i < len(data_types) else "")
        plans.append(plan_column(col))
    return plans


# -- Parquet encodings ---------------------------------------------------------------------

#: A column is dictionary-encoded when its first row group has at most one distinct value
#: in this many non-NULL values.
DICTIONARY_RATIO = 8


def column_encodings(table: pa.Table) -> tuple[list[str], dict[str, str]]:
    """The Parquet encodings of a file's columns, chosen from its first row group:
    dictionary for a column that repeats its values (at most one distinct value in
    :data:`DICTIONARY_RATIO`), otherwise plain, or ``DELTA_BINARY_PACKED`` for integers,
    dates, timestamps and durations (ids, times: small deltas, a few bits each).

    Dictionaries for columns of (nearly) unique values cost encoding time and are
    abandoned by the writer anyway once they grow past its limit; measured on a file of
    the logstore table (277,778 rows): Parquet writing 0.51 s -> 0.27 s of CPU, the
    file 11.9 MB -> 7.9 MB. ``uint64`` stays plain (its values above 2**63 are negative
    as Parquet INT64, the deltas would wrap).
    """
    dictionary: list[str] = []
    encodings: dict[str, str] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        typ = col.type
        if pa.types.is_dictionary(typ):  # ENUM / SET: already a dictionary
            dictionary.append(name)
            continue
        values = len(col) - col.null_count
        if values and _distinct(col) * DICTIONARY_RATIO <= values:
            dictionary.append(name)
        elif (pa.types.is_integer(typ) and typ != pa.uint64()) or (
            pa.types.is_date32(typ) or pa.types.is_timestamp(typ) or pa.types.is_duration(typ)
        ):
            encodings[name] = "DELTA_BINARY_PACKED"
    return dictionary, encodings


def _distinct(col: pa.ChunkedArray) -> int:
    """The number of distinct values (of the storage of an extension type; a type
    without a kernel counts as all distinct)."""
    if isinstance(col.type, pa.ExtensionType):
        col = pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
    try:
        return int(pc.count_distinct(col).as_py())
    except pa.ArrowNotImplementedError:
        return len(col)


def describe(plans: list[ColumnPlan], postgres: bool = False) -> list[dict[str, Any]]:
    """The columns as the export manifest lists them (the source type as ``pg_type`` for
    PostgreSQL, ``mysql_type`` otherwise)."""
    key = "pg_type" if postgres else "mysql_type"
    return [
        {"name": p.column.name, key: p.column.column_type, "arrow_type": str(p.field.type)}
        for p in plans
    ]
