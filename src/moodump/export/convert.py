"""The value converters of the export: row text (as Arrow arrays) -> the exact Arrow type.

Pure: no file, network or database I/O; pyarrow's compute kernels (in-memory array
functions) only. :func:`moodump.export.types.plan_column` picks one converter per
column; a converter takes the array the CSV reader parsed (its ``read_type``) and
returns the array of the column's Arrow type and the number of values that became NULL.

A data file holds ``LOAD DATA`` text (docs/format.md): ``\\N`` is NULL, and backslash,
TAB and LF inside a value are escaped (:func:`unescape` undoes that). Values the Arrow
type cannot hold -- zero dates (``0000-00-00``), dates with a zero month or day
(``2020-00-15``), text that is not valid in its character set -- become NULL and are
counted; they are never changed into another value.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from moodump.export.charmaps import MARIADB_FIXES, MARIADB_UNSURE

#: Character sets whose bytes are UTF-8 already (ASCII is a subset).
_UTF8 = {"utf8mb4", "utf8mb3", "utf8", "ascii"}
#: MariaDB character set -> Python codec (those not listed are looked up by name).
_CODECS = {
    "latin1": "moodump-latin1", "latin2": "iso8859_2", "latin5": "iso8859_9",
    "latin7": "iso8859_13", "ucs2": "utf_16_be", "utf16": "utf_16_be", "utf16le": "utf_16_le",
    "utf32": "utf_32_be", "sjis": "shift_jis", "cp932": "cp932", "ujis": "euc_jp",
    "eucjpms": "euc_jp", "gbk": "gbk", "gb2312": "gb2312", "big5": "big5", "euckr": "cp949",
    "koi8r": "koi8_r", "koi8u": "koi8_u", "greek": "iso8859_7", "hebrew": "iso8859_8",
    "tis620": "tis_620", "armscii8": "latin-1", "swe7": "ascii", "hp8": "hp_roman8",
    "dec8": "latin_1", "macroman": "mac_roman", "macce": "mac_latin2", "keybcs2": "latin-1",
    "geostd8": "latin-1",
}  # fmt: skip
#: Python's decoding -> MariaDB's, where they differ (:mod:`moodump.export.charmaps`);
#: U+DFFF (no codec makes a lone surrogate) marks bytes MariaDB cannot convert.
_TRANSLATE = {cs: str.maketrans(p[0::2], p[1::2]) for cs, p in MARIADB_FIXES.items()}
_UNCONVERTIBLE = "\udfff"
_BACKSLASH = pa.scalar(b"\\", pa.binary())
_BACKSLASH_BYTE = re.compile(rb"\\")

#: A converter: array of the read type -> (array of the field type, values made NULL).
Converter = Callable[[pa.Array], tuple[pa.Array, int]]

# -- converters (arrays in, arrays out; pyarrow compute kernels) ------------------------------


def same(arr: pa.Array) -> tuple[pa.Array, int]:
    return arr, 0


def cast_to(dt: pa.DataType) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        return pc.cast(arr, dt), 0

    return convert


def to_float32(arr: pa.Array) -> tuple[pa.Array, int]:
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


def binary(arr: pa.Array) -> tuple[pa.Array, int]:
    return unescape(arr), 0


def text(charset: str | None) -> Converter:
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


def json_text(charset: str | None) -> Converter:
    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        text, nulled = decode_text(unescape(arr), charset)
        return pa.ExtensionArray.from_storage(pa.json_(pa.string()), text), nulled

    return convert


def decode_text(arr: pa.Array, charset: str | None) -> tuple[pa.Array, int]:
    """Binary -> UTF-8 string array. UTF-8 columns are validated in C++; other character
    sets are decoded value by value, as MariaDB's ``CONVERT(... USING utf8mb4)`` does
    (Python's codec, with the characters it maps otherwise translated:
    :mod:`moodump.export.charmaps`). A value that is not valid in its character set, or
    that MariaDB cannot convert, becomes NULL (and is counted)."""
    cs = (charset or "utf8mb4").lower()
    if cs in _UTF8:
        try:
            return arr.cast(pa.string()), 0
        except pa.ArrowInvalid:
            codec = "utf-8"
    else:
        codec = _CODECS.get(cs, cs)
    table = _TRANSLATE.get(cs)
    unsure = MARIADB_UNSURE.get(cs, ())
    out: list[str | None] = []
    bad = 0
    for value in arr.to_pylist():
        if value is None:
            out.append(None)
            continue
        try:
            text = _decode(value, codec)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None and table is not None:
            text = text.translate(table)
            if _UNCONVERTIBLE in text:
                text = None
        if text is not None and any(u in value for u in unsure):
            text = None
        out.append(text)
        bad += text is None
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


def uuid_bytes(arr: pa.Array) -> tuple[pa.Array, int]:
    raw = unescape(arr)
    lengths = pc.binary_length(raw)
    bad = pc.and_(pc.is_valid(raw), pc.not_equal(lengths, 16))
    nulled = int(pc.sum(bad).as_py() or 0)
    if nulled:
        raw = pc.if_else(bad, pa.scalar(None, pa.binary()), raw)
    storage = raw.cast(pa.binary(16))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage), nulled


def wkb(arr: pa.Array) -> tuple[pa.Array, int]:
    """MariaDB stores a spatial value as a 4-byte little-endian SRID and then WKB."""
    # value by value: spatial columns are rare, and pyarrow 26's binary_slice fails on
    # some binary arrays ("Negative buffer resize")
    values = unescape(arr).to_pylist()
    return pa.array([None if v is None else v[4:] for v in values], pa.binary()), 0


def srids(arr: pa.Array) -> set[int]:
    """The SRIDs (first 4 bytes, little-endian) of an unescaped spatial value array."""
    return {int.from_bytes(v[:4], "little") for v in arr.to_pylist() if v is not None}


def bits(width: int) -> Converter:
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


def enum_dictionary(dictionary: pa.Array) -> Converter:
    size = len(dictionary)

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        bad = pc.or_(pc.less(arr, 0), pc.greater_equal(arr, size))
        nulled = int(pc.sum(bad).as_py() or 0)
        if nulled:  # an index the declaration does not have: not a value of the column
            arr = pc.if_else(bad, pa.scalar(None, arr.type), arr)
        indices = pc.cast(arr, pa.int32())
        return pa.DictionaryArray.from_arrays(indices, dictionary), nulled

    return convert


def set_dictionary(members: tuple[str, ...]) -> Converter:
    limit = pa.scalar((1 << len(members)) - 1, pa.uint64())

    def convert(arr: pa.Array) -> tuple[pa.Array, int]:
        # The file holds SET + 0 as the server prints it, a signed BIGINT: a 64-member
        # SET with its last member chosen is negative. Its bits are the mask.
        arr = pc.cast(arr, pa.uint64(), safe=False)
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


def temporal(dt: pa.DataType, zone: str | None = None) -> Converter:
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


def duration(unit: str) -> Converter:
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
