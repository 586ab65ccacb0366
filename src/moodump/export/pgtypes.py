"""PostgreSQL column types -> Arrow types, and COPY text -> Arrow arrays.

Pure: no file, network or database I/O; pyarrow's types and compute kernels only.

A PostgreSQL backup's data file holds ``COPY`` text (docs/postgresql.md): fields split by
TAB, rows by LF, ``\\N`` is NULL, and inside a value ``\\b \\f \\n \\r \\t \\v \\\\``,
octal ``\\NNN`` and ``\\xHH`` are escapes (:func:`copy_unescape`; any other escaped
character is itself). The bytes are in the database's encoding (the manifest's
``snapshot.encoding``). The manifest gives each column's type as ``format_type()``
writes it; :func:`pg_plan_column` maps it (docs/export.md has the table):

==================================  ===========================================================
PostgreSQL                          Arrow (Parquet)
==================================  ===========================================================
smallint / integer / bigint / oid   int16 / int32 / int64 / uint32
numeric(p,s)                        decimal128(p,s), decimal256(p,s) when p > 38 (NaN,
                                    +-Infinity: NULL, counted); p > 76 or s outside 0..p:
                                    string
numeric (unconstrained)             string, the exact digits (no decimal type holds every
                                    scale), NaN and +-Infinity as written
real / double precision             float32 / float64, bit-exact (NaN, +-Infinity, -0 kept)
boolean                             bool
text, varchar, char(n), name,       string (char(n) with its padding)
citext, "char"
bytea                               binary
date                                date32 (+-infinity: NULL, counted; BC dates kept)
timestamp(p) / timestamptz(p)       timestamp[us] / timestamp[us, tz=UTC] (the dump's session
                                    TimeZone is UTC); +-infinity and years past Arrow's range
                                    (294247 AD): NULL, counted
time(p)                             time64[us] (24:00:00 included)
interval                            struct<months: int32, days: int32, microseconds: int64>
                                    (PostgreSQL's own three fields; Parquet cannot store
                                    Arrow's month_day_nano interval)
uuid                                arrow.uuid extension
json / jsonb                        arrow.json extension
anything else (timetz, arrays,      string: the exact COPY text, unescaped and decoded
ranges, composites, enums, domains,
money, xml, inet, bit, geometric)
==================================  ===========================================================

Every field carries the PostgreSQL type in its metadata (``moodump.pg_type``).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from moodump.export.convert import Converter
from moodump.export.types import ColumnDef, ColumnPlan

META_PG_TYPE = b"moodump.pg_type"

#: PostgreSQL server encoding -> Python codec. SQL_ASCII is bytes in no known encoding:
#: read as UTF-8, a value that is not is NULL (counted). Others not listed (MULE_INTERNAL,
#: EUC_TW) have no codec: ASCII text is read (every server encoding extends ASCII), any
#: other value is NULL, counted.
PG_CODECS = {
    "UTF8": "utf-8", "SQL_ASCII": "utf-8", "LATIN1": "latin-1", "LATIN2": "iso8859_2",
    "LATIN3": "iso8859_3", "LATIN4": "iso8859_4", "LATIN5": "iso8859_9", "LATIN6": "iso8859_10",
    "LATIN7": "iso8859_13", "LATIN8": "iso8859_14", "LATIN9": "iso8859_15",
    "LATIN10": "iso8859_16", "ISO_8859_5": "iso8859_5", "ISO_8859_6": "iso8859_6",
    "ISO_8859_7": "iso8859_7", "ISO_8859_8": "iso8859_8", "WIN866": "cp866", "WIN874": "cp874",
    "WIN1250": "cp1250", "WIN1251": "cp1251", "WIN1252": "cp1252", "WIN1253": "cp1253",
    "WIN1254": "cp1254", "WIN1255": "cp1255", "WIN1256": "cp1256", "WIN1257": "cp1257",
    "WIN1258": "cp1258", "KOI8R": "koi8_r", "KOI8U": "koi8_u", "EUC_JP": "euc_jp",
    "EUC_JIS_2004": "euc_jis_2004", "EUC_KR": "euc_kr", "EUC_CN": "gb2312", "SJIS": "cp932",
    "SHIFT_JIS_2004": "shift_jis_2004", "BIG5": "cp950", "GBK": "gbk", "UHC": "cp949",
    "GB18030": "gb18030", "JOHAB": "johab",
}  # fmt: skip

#: Characters Python's codec decodes differently from PostgreSQL's conversion to UTF-8
#: (PostgreSQL 15's maps, compared over every 1- and 2-byte sequence, and the 3-byte
#: ones of EUC_JP): pairs of (Python's character, PostgreSQL's), each Python character
#: made by one byte sequence only, so the translation is exact. The single-byte
#: encodings, EUC_CN, GBK and GB18030 agree everywhere.
_PG_FIXES = {
    "EUC_JP": "\u301c\uff5e\u2016\u2225\u2212\uff0d\xa2\uffe0\xa3\uffe1\xac\uffe2\xa6\uffe4",
    "EUC_JIS_2004": "\uffe3\u203e\u2015\u2014\uffe5\xa5\u2985\uff5f\u2986\uff60",
    "SHIFT_JIS_2004": "\xa5\\\u203e~\u2015\u2014\u2985\uff5f\u2986\uff60",
    "BIG5": "\u2027\u2022\ufe51\uff64\u2574\ufffd\xaf\u203e\uffe3\ufffd\u02cd\ufffd\uff5e\u223c\u2295\u2641\u2299\u2609\uff0f\ufffd\uff3c\ufffd\u2215\uff0f\ufe68\uff3c\uffe5\xa5\uffe0\xa2\uffe1\xa3",
}  # fmt: skip
_TRANSLATE = {enc: str.maketrans(pairs[0::2], pairs[1::2]) for enc, pairs in _PG_FIXES.items()}
#: Byte pairs PostgreSQL decodes to a character Python makes from another sequence too:
#: a value holding one is NULL (counted), never a wrong character.
_UNSURE = {"BIG5": (b"\xa2\xcc", b"\xa2\xce")}

_INTS = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(), "oid": pa.uint32()}
_TIMESTAMP = re.compile(r"^timestamp(?:\((\d+)\))? with(out)? time zone$")
_TIME = re.compile(r"^time(?:\((\d+)\))? without time zone$")
_NUMERIC = re.compile(r"^numeric\((\d+),(-?\d+)\)$")
_INTERVAL = pa.struct(
    [("months", pa.int32()), ("days", pa.int32()), ("microseconds", pa.int64())]
)

# -- COPY text -------------------------------------------------------------------------------

_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_SIMPLE = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _one(m: re.Match[bytes]) -> bytes:
    if m.group(1) is not None:
        return bytes((int(m.group(1), 8) & 0xFF,))
    if m.group(2) is not None:
        return bytes((int(m.group(2), 16),))
    ch = m.group(3)
    return _SIMPLE.get(ch, ch)


def copy_unescape_value(value: bytes) -> bytes:
    """One value of COPY text with its escapes undone (as ``COPY FROM`` reads them)."""
    return _ESCAPE.sub(_one, value) if b"\\" in value else value


_KERNEL_ESCAPES = (("\\t", "\t"), ("\\n", "\n"), ("\\r", "\r"), ("\\b", "\b"),
                   ("\\f", "\f"), ("\\v", "\v"))  # fmt: skip


def copy_unescape(arr: pa.Array) -> pa.Array:
    """A binary array of COPY text values, unescaped: values without a backslash as they
    are; the escapes ``COPY TO`` writes (``\\\\``, ``\\t`` ... ``\\v``) with Arrow's
    kernels, split at escaped backslashes so they are read left to right; any other
    escape (octal, ``\\x``, an escaped other character) value by value in Python."""
    if not pc.any(pc.match_substring(arr, "\\")).as_py():
        return arr
    parts = pc.split_pattern(arr, "\\\\")
    flat = parts.flatten()
    for escape, byte in _KERNEL_ESCAPES:
        flat = pc.replace_substring(flat, escape, byte)
    if pc.any(pc.match_substring(flat, "\\")).as_py():
        return pa.array(
            [None if v is None else copy_unescape_value(v) for v in arr.to_pylist()], pa.binary()
        )
    rebuilt = pa.ListArray.from_arrays(parts.offsets, flat, mask=parts.is_null())
    return pc.binary_join(rebuilt, pa.scalar(b"\\", pa.binary()))


def decode(arr: pa.Array, encoding: str) -> tuple[pa.Array, int]:
    """Unescaped binary -> string, from the database's encoding; a value that is not
    valid in it becomes NULL (counted)."""
    enc = encoding.upper().replace("-", "_")
    codec = PG_CODECS.get(enc, "")
    table = _TRANSLATE.get(enc)
    unsure = _UNSURE.get(enc, ())
    if codec == "utf-8":
        try:
            return arr.cast(pa.string()), 0
        except pa.ArrowInvalid:
            pass
    out: list[str | None] = []
    bad = 0
    for v in arr.to_pylist():
        if v is None:
            out.append(None)
            continue
        try:
            if any(u in v for u in unsure):
                raise UnicodeDecodeError(enc, v, 0, len(v), "a sequence Python decodes otherwise")
            text = codecs.decode(v, codec or "ascii")
            out.append(text.translate(table) if table else text)
        except (UnicodeDecodeError, LookupError):
            out.append(None)
            bad += 1
    return pa.array(out, pa.string()), bad


def _texts(arr: pa.Array, encoding: str) -> tuple[list[str | None], int]:
    text, bad = decode(copy_unescape(arr), encoding)
    return text.to_pylist(), bad


# -- converters --------------------------------------------------------------------------------


def text(encoding: str) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        return decode(copy_unescape(arr), encoding)

    return convert


def json_text(encoding: str) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        out, bad = decode(copy_unescape(arr), encoding)
        return pa.ExtensionArray.from_storage(pa.json_(pa.string()), out), bad

    return convert


def _nulling(
    parse: Callable[[str], object], typ: pa.DataType, encoding: str
) -> Converter:
    """A converter parsing each value with ``parse`` (None: the type cannot hold it,
    NULL and counted)."""

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        values, bad = _texts(arr, encoding)
        out = []
        for v in values:
            r = None if v is None else parse(v)
            if v is not None and r is None:
                bad += 1
            out.append(r)
        return pa.array(out, typ), bad

    return convert


_ISO = r"^\d{4}-\d\d-\d\d( \d\d:\d\d:\d\d(\.\d{1,6})?(\+00)?)?$"


def _fast(slow: Converter, typ: pa.DataType) -> Converter:
    """Dates and timestamps of 4-digit AD years (the dump's session is UTC: a
    timestamptz ends ``+00``) parsed by Arrow's cast in C++; others (BC, ±infinity,
    years past 9999) by ``slow``."""

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        text = arr.cast(pa.string())
        if not pc.all(pc.match_substring_regex(text, _ISO)).as_py():
            return slow(arr)
        if pa.types.is_timestamp(typ) and typ.tz is None and pc.any(pc.ends_with(text, "+00")).as_py():
            return slow(arr)
        return pc.cast(text, typ), 0

    return convert


def floats(typ: pa.DataType) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        return pc.cast(arr.cast(pa.string()), typ), 0

    return convert


def boolean(arr: pa.Array) -> tuple[pa.Array, int]:
    return pc.equal(arr.cast(pa.string()), "t"), 0


def numeric(typ: pa.DataType) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        s = arr.cast(pa.string())
        special = pc.is_in(s, pa.array(["NaN", "Infinity", "-Infinity"]))
        bad = int(pc.sum(special).as_py() or 0)
        if bad:
            s = pc.if_else(special, pa.scalar(None, pa.string()), s)
        return pc.cast(s, typ), bad

    return convert


def bytea(arr: pa.Array) -> tuple[pa.Array, int]:
    """``\\x<hex>`` (bytea_output=hex; the backslash is escaped in the file) -> bytes."""
    out: list[bytes | None] = []
    for v in copy_unescape(arr).to_pylist():
        out.append(None if v is None else bytes.fromhex(v[2:].decode("ascii")))
    return pa.array(out, pa.binary()), 0


def uuid_value(arr: pa.Array) -> tuple[pa.Array, int]:
    out = [None if v is None else bytes.fromhex(v.decode().replace("-", "")) for v in arr.to_pylist()]
    storage = pa.array(out, pa.binary(16))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage), 0


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 1 BC = 0)."""
    y -= m <= 2
    era = y // 400  # floor division: negative years too
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_DATE = re.compile(r"^(\d{4,})-(\d\d)-(\d\d)( BC)?$")
_TS = re.compile(
    r"^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-]\d\d(?::?\d\d){0,2})?( BC)?$"
)
_MIN_US, _MAX_US = -(2**63), 2**63 - 1


def _year(text: str, bc: str | None) -> int:
    return 1 - int(text) if bc else int(text)


def date_days(v: str) -> int | None:
    """PostgreSQL date text -> days since the epoch; None for +-infinity."""
    m = _DATE.match(v)
    if m is None:
        return None
    return days_from_civil(_year(m.group(1), m.group(4)), int(m.group(2)), int(m.group(3)))


def _offset_seconds(text: str) -> int:
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    h, mi, s = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    return sign * (h * 3600 + mi * 60 + s)


def timestamp_micros(v: str) -> int | None:
    """PostgreSQL timestamp[tz] text -> microseconds since the epoch (UTC for an offset);
    None for +-infinity and values outside int64 microseconds."""
    m = _TS.match(v)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, off, bc = m.groups()
    days = days_from_civil(_year(y, bc), int(mo), int(d))
    secs = days * 86400 + int(h) * 3600 + int(mi) * 60 + int(s)
    if off:
        secs -= _offset_seconds(off)
    us = secs * 1_000_000 + int((frac or "").ljust(6, "0"))
    return us if _MIN_US <= us <= _MAX_US else None


def time_micros(v: str) -> int | None:
    m = re.match(r"^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$", v)
    if m is None:
        return None
    h, mi, s, frac = m.groups()
    return ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int((frac or "").ljust(6, "0"))


_IV_PART = re.compile(r"([+-]?\d+) (year|mon|day)s?")
_IV_TIME = re.compile(r"([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$")


def interval_fields(v: str) -> dict[str, int] | None:
    """PostgreSQL interval text (IntervalStyle=postgres) -> its months, days and
    microseconds, as PostgreSQL stores them."""
    months = days = us = 0
    rest = v
    for m in _IV_PART.finditer(v):
        n = int(m.group(1))
        if m.group(2) == "year":
            months += 12 * n
        elif m.group(2) == "mon":
            months += n
        else:
            days += n
        rest = rest.replace(m.group(0), "", 1)
    rest = rest.strip()
    if rest:
        t = _IV_TIME.match(rest)
        if t is None:
            return None
        sign, h, mi, s, frac = t.groups()
        us = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int((frac or "").ljust(6, "0"))
        us = -us if sign == "-" else us
    if not (-(2**31) <= months < 2**31 and -(2**31) <= days < 2**31):
        return None
    return {"months": months, "days": days, "microseconds": us}


# -- the plan of one column ------------------------------------------------------------------


def pg_plan_column(name: str, pg_type: str, encoding: str) -> ColumnPlan:
    """The Arrow field and converter of a PostgreSQL column of type ``pg_type`` (as
    ``format_type()`` writes it) in a database of ``encoding`` (module doc)."""
    col = ColumnDef(name, f"postgresql {pg_type}", pg_type)  # never a MariaDB type
    meta = {META_PG_TYPE: pg_type.encode()}

    def plan(typ: pa.DataType, read: pa.DataType, converter: Converter) -> ColumnPlan:
        return ColumnPlan(col, pa.field(name, typ, metadata=meta), read, converter)

    t = pg_type
    if t in _INTS:
        return plan(_INTS[t], _INTS[t], lambda a: (a, 0))
    if m := _NUMERIC.match(t):
        p, s = int(m.group(1)), int(m.group(2))
        if 0 <= s <= p <= 76:
            dt = pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
            return plan(dt, pa.binary(), numeric(dt))
    if t == "real":
        return plan(pa.float32(), pa.binary(), floats(pa.float32()))
    if t == "double precision":
        return plan(pa.float64(), pa.binary(), floats(pa.float64()))
    if t == "boolean":
        return plan(pa.bool_(), pa.binary(), boolean)
    if t == "bytea":
        return plan(pa.binary(), pa.binary(), bytea)
    if t == "uuid":
        return plan(pa.uuid(), pa.binary(), uuid_value)
    if t in ("json", "jsonb"):
        return plan(pa.json_(pa.string()), pa.binary(), json_text(encoding))
    if t == "date":
        return plan(pa.date32(), pa.binary(), _fast(_nulling(date_days, pa.date32(), encoding), pa.date32()))
    if m := _TIMESTAMP.match(t):
        typ = pa.timestamp("us", None if m.group(2) else "UTC")
        return plan(typ, pa.binary(), _fast(_nulling(timestamp_micros, typ, encoding), typ))
    if _TIME.match(t):
        return plan(pa.time64("us"), pa.binary(), _nulling(time_micros, pa.time64("us"), encoding))
    if t == "interval" or t.startswith(("interval(", "interval ")):  # fields, precision
        return plan(_INTERVAL, pa.binary(), _nulling(interval_fields, _INTERVAL, encoding))
    # text types, unconstrained numeric, timetz and every other type: the exact text
    return plan(pa.string(), pa.binary(), text(encoding))


def pg_table_plans(columns: list[str], types: list[str], encoding: str) -> list[ColumnPlan]:
    """The plans of a PostgreSQL table's columns, in file order (the manifest's)."""
    return [
        pg_plan_column(name, types[i] if i < len(types) else "text", encoding)
        for i, name in enumerate(columns)
    ]


_SECTION = re.compile(r"^-- Name: (.*); Type: TABLE; Schema: (.*); Owner: .*$", re.MULTILINE)


def pg_table_definitions(pre_data: str) -> dict[tuple[str, str], str]:
    """Each table's ``CREATE TABLE`` statement (and what pg_dump writes with it in its
    section) from ``schema/pre-data.sql``, by (schema, table) as pg_dump's section
    headers name them."""
    found: dict[tuple[str, str], str] = {}
    for m in _SECTION.finditer(pre_data):
        start = pre_data.find("\n--\n", m.end())  # the header's closing line
        if start < 0:
            continue
        end = pre_data.find("\n--\n", start + 4)  # the next entry's header
        body = pre_data[start + 4 : end if end >= 0 else len(pre_data)].strip()
        if body.startswith("CREATE "):  # else a name that fooled the header: not used
            found.setdefault((m.group(2), m.group(1)), body)
    return found


def pg_definition(schema: str, name: str, columns: list[str], types: list[str]) -> str:
    """A table's definition when pg_dump's section is not found: its stored columns."""

    def q(ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'

    cols = ",\n".join(f"    {q(c)} {t}" for c, t in zip(columns, types, strict=False))
    return f"CREATE TABLE {q(schema)}.{q(name)} (\n{cols}\n);"
