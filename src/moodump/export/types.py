"""From a backup's column definitions to Arrow types, and from row text to Arrow arrays.

Pure: no file, network or database I/O. It uses pyarrow's types and compute kernels
(in-memory array functions), never ``pyarrow.fs`` or the readers.

A data file holds ``LOAD DATA`` text (docs/format.md): fields split by TAB, rows by LF,
``\\N`` is NULL, and backslash, TAB and LF inside a value are escaped. The engine lets
pyarrow's CSV reader split the text with quoting and escaping turned off (a raw TAB or
LF byte never occurs inside a value, so the split is exact) and parse numbers in C++;
each column then goes through the converter of its :class:`ColumnPlan`, which undoes the
escapes and turns the text into the exact Arrow type:

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

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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
#: Character sets whose bytes are UTF-8 already (ASCII is a subset).
_UTF8 = {"utf8mb4", "utf8mb3", "utf8", "ascii"}
#: MariaDB character set -> Python codec (those not listed are looked up by name).
_CODECS = {
    "latin1": "moodump-latin1", "latin2": "iso8859_2", "latin5": "iso8859_9",
    "latin7": "iso8859_13", "ucs2": "utf_16_be", "utf16": "utf_16_be", "utf16le": "utf_16_le",
    "utf32": "utf_32_be", "sjis": "shift_jis", "cp932": "cp932", "ujis": "euc_jp",
    "eucjpms": "euc_jp", "gbk": "gbk", "gb2312": "gb2312", "big5": "big5", "euckr": "euc_kr",
    "koi8r": "koi8_r", "koi8u": "koi8_u", "greek": "iso8859_7", "hebrew": "iso8859_8",
    "tis620": "tis_620", "armscii8": "armscii8", "swe7": "ascii", "hp8": "hp_roman8",
    "dec8": "latin_1", "macroman": "mac_roman", "macce": "mac_latin2", "keybcs2": "cp895",
    "geostd8": "geostd8",
}  # fmt: skip
_BACKSLASH = pa.scalar(b"\\", pa.binary())
_BACKSLASH_BYTE = re.compile(rb"\\")


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

Converter = Callable[[pa.Array], tuple[pa.Array, int]]


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

    def plan(typ: pa.DataType, read: pa.DataType, conv: Converter) -> ColumnPlan:
        return ColumnPlan(col, pa.field(col.name, typ, metadata=meta), read, conv)

    if t in _INTS:
        typ = _INTS[t][1 if col.unsigned else 0]
        return plan(typ, typ, _same)
    if t == "year":
        return plan(pa.int16(), pa.int16(), _same)
    if t == "decimal":
        p = max(1, col.length or 10)
        dt = pa.decimal128(p, col.scale) if p <= 38 else pa.decimal256(p, col.scale)
        return plan(dt, pa.string(), _cast_to(dt))
    if t == "double":
        return plan(pa.float64(), pa.float64(), _same)
    if t == "float":  # written as the DOUBLE of the FLOAT: exact back to float32
        return plan(pa.float32(), pa.float64(), _to_float32)
    if t == "date":
        return plan(pa.date32(), pa.string(), _temporal(pa.date32()))
    if t in ("datetime", "timestamp"):
        unit = "ms" if col.fsp <= 3 else "us"
        zone = "UTC" if t == "timestamp" else None
        return plan(pa.timestamp(unit, zone), pa.string(), _temporal(pa.timestamp(unit), zone))
    if t == "time":
        unit = "ms" if col.fsp <= 3 else "us"
        return plan(pa.duration(unit), pa.string(), _time(unit))
    if t == "bit":
        width = max(1, ((col.length or 1) + 7) // 8)
        return plan(pa.binary(), pa.uint64(), _bits(width))
    if t == "enum":
        dictionary = pa.array(("", *col.members), pa.string())
        return plan(pa.dictionary(pa.int32(), pa.string()), pa.int64(), _enum(dictionary))
    if t == "set":
        return plan(pa.dictionary(pa.int32(), pa.string()), pa.uint64(), _set(col.members))
    if t in _SPATIAL:
        return plan(pa.binary(), pa.binary(), _wkb)
    if t == "uuid":
        return plan(pa.uuid(), pa.binary(), _uuid)
    if t in _TEXT or t == "json":
        if col.is_json:
            return plan(pa.json_(pa.string()), pa.binary(), _json(col.charset))
        return plan(pa.string(), pa.binary(), _text(col.charset))
    # binary types, INET4/INET6 and anything unknown: the stored bytes
    return plan(pa.binary(), pa.binary(), _binary)


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


# -- converters (arrays in, arrays out; pyarrow compute kernels) ------------------------------


def _same(arr: pa.Array) -> tuple[pa.Array, int]:
    return arr, 0


def _cast_to(dt: pa.DataType) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        return pc.cast(arr, dt), 0

    return convert


def _to_float32(arr: pa.Array) -> tuple[pa.Array, int]:
    return pc.cast(arr, pa.float32(), safe=False), 0


def _has_backslash(arr: pa.Array) -> bool:
    """Whether a value of a binary array holds a backslash: one vectorised scan of its
    data buffer (all of it, so a slice may answer yes for its neighbours' bytes, never
    no for its own). Arrow's ``match_substring`` takes about 10x longer for this one
    byte: about 10 % of all the CPU of the logstore export, measured with perf."""
    data = arr.buffers()[2] if pa.types.is_binary(arr.type) else None
    if data is None:
        return bool(pc.any(pc.match_substring(arr, "\\")).as_py())
    return _BACKSLASH_BYTE.search(memoryview(data)) is not None


def unescape(arr: pa.Array, *, checked: bool = False) -> pa.Array:
    """Undo the file escaping of a binary array: ``\\\\`` -> backslash, ``\\t`` -> TAB,
    ``\\n`` -> LF and ``\\r`` -> CR (the engine escapes raw CR bytes this way before the
    CSV reader sees them, since that reader would end a row at a CR).

    Fast path: values without a backslash are left alone; a column with backslashes but
    no ``\\t``/``\\n``/``\\r`` needs one replace. Otherwise the values are split at
    escaped backslashes, the other escapes are replaced within the pieces, and the
    pieces are joined with a backslash: that reads the escapes left to right, as
    ``LOAD DATA`` does.
    """
    if not checked and not _has_backslash(arr):  # checked: the caller found one
        return arr
    if not pc.any(pc.match_substring_regex(arr, r"\\[tnr]")).as_py():  # one pass: 4x faster
        return pc.replace_substring(arr, "\\\\", "\\")
    parts = pc.split_pattern(arr, "\\\\")
    flat = parts.flatten()
    for escape, byte in (("\\t", "\t"), ("\\n", "\n"), ("\\r", "\r")):
        flat = pc.replace_substring(flat, escape, byte)
    rebuilt = pa.ListArray.from_arrays(parts.offsets, flat, mask=parts.is_null())
    return pc.binary_join(rebuilt, _BACKSLASH)


def _binary(arr: pa.Array) -> tuple[pa.Array, int]:
    return unescape(arr), 0


def _text(charset: str | None) -> Converter:
    utf8 = (charset or "utf8mb4").lower() in _UTF8

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        if utf8 and not _has_backslash(arr):  # nothing to undo, nothing to decode
            return decode_text(arr, charset)
        return _by_dictionary(arr, charset) or decode_text(unescape(arr, checked=utf8), charset)

    return convert


#: A column whose first values have at most one distinct value in this many is
#: converted through its dictionary.
_REPEATS = 8
_PROBE = 512


def _by_dictionary(arr: pa.Array, charset: str | None) -> tuple[pa.Array, int] | None:
    """The text converter for a column that repeats its values (names, kinds), or None.

    The escapes are undone and the text decoded once per distinct value and the values
    taken back by index, instead of a regex check and a replace over every value (and,
    for character sets decoded in Python, a decode of every value): for the logstore
    table's ``eventname`` (18 distinct values, all with backslashes) about a third of
    the time. Used when the first values repeat.
    """
    if len(arr) < 2 * _PROBE or len(pc.unique(arr.slice(0, _PROBE))) * _REPEATS > _PROBE:
        return None
    encoded = pc.dictionary_encode(arr)
    if len(encoded.dictionary) * _REPEATS > len(arr):
        return None
    text, _ = decode_text(unescape(encoded.dictionary), charset)
    out = pc.take(text, encoded.indices)
    return out, out.null_count - arr.null_count


def _json(charset: str | None) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        text, nulled = decode_text(unescape(arr), charset)
        return pa.ExtensionArray.from_storage(pa.json_(pa.string()), text), nulled

    return convert


def decode_text(arr: pa.Array, charset: str | None) -> tuple[pa.Array, int]:
    """Binary -> UTF-8 string array. UTF-8 columns are validated in C++; other character
    sets are decoded value by value. A value that is not valid in its character set
    becomes NULL (and is counted)."""
    cs = (charset or "utf8mb4").lower()
    if cs in _UTF8:
        try:
            return arr.cast(pa.string()), 0
        except pa.ArrowInvalid:
            codec = "utf-8"
    else:
        codec = _CODECS.get(cs, cs)
    out: list[str | None] = []
    bad = 0
    for value in arr.to_pylist():
        if value is None:
            out.append(None)
            continue
        try:
            out.append(_decode(value, codec))
        except (UnicodeDecodeError, LookupError):
            out.append(None)
            bad += 1
    return pa.array(out, pa.string()), bad


def _cp1252_or_c1(b: int) -> str:
    try:
        return bytes((b,)).decode("cp1252")
    except UnicodeDecodeError:
        return chr(b)


#: MariaDB's latin1 is cp1252 with the 5 bytes cp1252 leaves undefined mapped to the C1
#: controls of the same code (as ISO-8859-1 does): a translation of latin-1 text.
_LATIN1 = {b: _cp1252_or_c1(b) for b in range(256) if _cp1252_or_c1(b) != chr(b)}


def _decode(value: bytes, codec: str) -> str:
    if codec == "moodump-latin1":
        return value.decode("latin-1").translate(_LATIN1)
    if codec == "shift_jis":  # MariaDB's sjis maps 0x815F to U+005C, Python's to U+FF3C
        return value.decode("shift_jis").replace("\uff3c", "\\")
    return codecs.decode(value, codec)


def _uuid(arr: pa.Array) -> tuple[pa.Array, int]:
    raw = unescape(arr)
    lengths = pc.binary_length(raw)
    bad = pc.and_(pc.is_valid(raw), pc.not_equal(lengths, 16))
    nulled = int(pc.sum(bad).as_py() or 0)
    if nulled:
        raw = pc.if_else(bad, pa.scalar(None, pa.binary()), raw)
    storage = raw.cast(pa.binary(16))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage), nulled


def _wkb(arr: pa.Array) -> tuple[pa.Array, int]:
    """MariaDB stores a spatial value as a 4-byte little-endian SRID and then WKB."""
    # value by value: spatial columns are rare, and pyarrow 26's binary_slice fails on
    # some binary arrays ("Negative buffer resize")
    values = unescape(arr).to_pylist()
    return pa.array([None if v is None else v[4:] for v in values], pa.binary()), 0


def srids(arr: pa.Array) -> set[int]:
    """The SRIDs (first 4 bytes, little-endian) of an unescaped spatial value array."""
    return {int.from_bytes(v[:4], "little") for v in arr.to_pylist() if v is not None}


def _bits(width: int) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        import numpy as np

        values = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False).astype(">u8")
        raw = values.view(np.uint8).reshape(-1, 8)[:, 8 - width :].tobytes()
        fixed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), len(values), [None, pa.py_buffer(raw)]
        )
        out = fixed.cast(pa.binary())
        if arr.null_count:
            out = pc.if_else(pc.is_null(arr), pa.scalar(None, pa.binary()), out)
        return out, 0

    return convert


def _enum(dictionary: pa.Array) -> Converter:
    size = len(dictionary)

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        bad = pc.or_(pc.less(arr, 0), pc.greater_equal(arr, size))
        nulled = int(pc.sum(bad).as_py() or 0)
        if nulled:  # an index the declaration does not have: not a value of the column
            arr = pc.if_else(bad, pa.scalar(None, arr.type), arr)
        indices = pc.cast(arr, pa.int32())
        return pa.DictionaryArray.from_arrays(indices, dictionary), nulled

    return convert


def _set(members: tuple[str, ...]) -> Converter:
    limit = (1 << len(members)) - 1

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        bad = pc.greater(arr, limit)
        nulled = int(pc.sum(bad).as_py() or 0)
        if nulled:
            arr = pc.if_else(bad, pa.scalar(None, arr.type), arr)
        masks = pc.unique(arr.drop_null()).to_pylist()
        names = [",".join(m for i, m in enumerate(members) if mask >> i & 1) for mask in masks]
        indices = pc.cast(pc.index_in(arr, pa.array(masks, pa.uint64())), pa.int32())
        return pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string())), nulled

    return convert


_DATE_PART = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def valid_date_text(text: str) -> bool:
    """True when the date part of ``text`` is a calendar date (month 1-12, day within it)."""
    m = _DATE_PART.match(text)
    if m is None:
        return False
    y, mo, d = (int(g) for g in m.groups())
    if not 1 <= mo <= 12 or d < 1:
        return False
    days = (31, 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28, 31, 30, 31,
            30, 31, 31, 30, 31, 30, 31)[mo - 1]  # fmt: skip
    return d <= days


def _temporal(dt: pa.DataType, zone: str | None = None) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        nulled = 0
        try:
            out = pc.cast(arr, dt)
        except pa.ArrowInvalid:  # zero dates and the like: NULL, counted
            values = arr.to_pylist()
            cleaned = [v if v is None or valid_date_text(v) else None for v in values]
            nulled = sum(
                1 for v, c in zip(values, cleaned, strict=True) if v is not None and c is None
            )
            out = pc.cast(pa.array(cleaned, pa.string()), dt)
        if zone is not None:
            out = out.cast(pa.timestamp(dt.unit, zone))
        return out, nulled

    return convert


_TIME = re.compile(r"^(-?)(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


def time_micros(text: str) -> int | None:
    """``[-]H+:MM:SS[.ffffff]`` -> microseconds, None when it is not a TIME value."""
    m = _TIME.match(text)
    if m is None:
        return None
    sign, h, mi, s, frac = m.groups()
    us = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int((frac or "").ljust(6, "0"))
    return -us if sign else us


def _time(unit: str) -> Converter:
    div = 1000 if unit == "ms" else 1

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        out: list[int | None] = []
        bad = 0
        for v in arr.to_pylist():
            us = None if v is None else time_micros(v)
            if v is not None and (us is None or us % div):
                bad += 1
                us = None
            out.append(None if us is None else us // div)
        return pa.array(out, pa.duration(unit)), bad

    return convert


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


def describe(plans: list[ColumnPlan]) -> list[dict[str, Any]]:
    """The columns as the export manifest lists them."""
    return [
        {"name": p.column.name, "mysql_type": p.column.column_type, "arrow_type": str(p.field.type)}
        for p in plans
    ]
