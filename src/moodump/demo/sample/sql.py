"""SQL expression builders for server-side, deterministic row generation.

Every generated row is a function of ``seq`` -- the row number coming from MariaDB's
Sequence engine (``FROM seq_1_to_N``) -- and of constants, through deterministic server
functions only (integer arithmetic, MD5/SHA1/SHA2, ELT, CONCAT...). Never ``RAND()``,
``UUID()``, ``RANDOM_BYTES()`` or ``NOW()``: the same scale must give byte-identical tables.

:func:`h` is the workhorse: a multiplicative hash of ``seq`` modulo the prime
4294967291 followed by an xor-shift, whose multiplier and offset are derived from a *salt*
string, so two columns
with different salts look independent while the same salt always gives the same value
(which is how correlated columns -- an event name and its component -- are made).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

PRIME = 4294967291  # largest prime below 2**32
# 2023-11-24 00:00:00 UTC: Moodle 4.4dev build date; the generated site "ends" here.
T_END = 1700784000
YEAR = 365 * 86400


def lit(value: str) -> str:
    """A SQL string literal (backslash escapes; the session runs without NO_BACKSLASH_ESCAPES)."""
    return (
        "'"
        + value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\0", "\\0")
        .replace("\x1a", "\\Z")
        + "'"
    )


def h(salt: str, var: str = "seq") -> str:
    """A pseudo-random integer in [0, 2**32) that depends on ``var`` and ``salt`` only."""
    c = zlib.crc32(salt.encode("utf-8"))
    mult = (zlib.crc32(b"m" + salt.encode("utf-8")) | 1) % (1 << 31) + (1 << 24)
    y = f"(({var}*{mult}+{c}) MOD {PRIME})"
    # The xor-shift breaks the linear pattern that ``y MOD n`` shows along ``seq``.
    return f"({y}^({y}>>15))"


def between(lo: int, hi: int, salt: str, var: str = "seq") -> str:
    """An integer in [lo, hi]."""
    span = hi - lo + 1
    if span <= 1:
        return str(lo)
    return f"({lo}+{h(salt, var)} MOD {span})"


def chance(percent: int, salt: str, var: str = "seq") -> str:
    """A boolean SQL condition true for about ``percent`` % of rows."""
    return f"({h(salt, var)} MOD 100 < {percent})"


def pick(values: Sequence[str], salt: str, var: str = "seq") -> str:
    """One of ``values`` (SQL string literals made here) chosen by the hash."""
    if len(values) == 1:
        return lit(values[0])
    return f"ELT(1+{h(salt, var)} MOD {len(values)},{','.join(lit(v) for v in values)})"


def pick_field(rows: Sequence[Sequence[object]], index: int, salt: str, var: str = "seq") -> str:
    """Field ``index`` of one of ``rows``: the same salt picks the same row for every field,
    so that related columns (an event name and its component) stay consistent."""
    values = [r[index] for r in rows]
    items = ",".join(str(v) if isinstance(v, int) else lit(str(v)) for v in values)
    return f"ELT(1+{h(salt, var)} MOD {len(rows)},{items})"


def cat(*parts: str) -> str:
    """``CONCAT`` of SQL expressions (use :func:`lit` for the literal parts)."""
    return f"CONCAT({','.join(parts)})"


def pick_sql(exprs: Sequence[str], salt: str, var: str = "seq") -> str:
    """One of several SQL expressions chosen by the hash (only the chosen one is evaluated)."""
    if len(exprs) == 1:
        return exprs[0]
    return f"ELT(1+{h(salt, var)} MOD {len(exprs)},{','.join(exprs)})"


def nullable(expr: str, percent_null: int, salt: str, var: str = "seq") -> str:
    """``expr``, or NULL for about ``percent_null`` % of rows."""
    return f"IF({chance(percent_null, salt, var)},NULL,{expr})"


def words(vocab: Sequence[str], count: int, salt: str, var: str = "seq") -> str:
    """``count`` words drawn from ``vocab``, separated by single spaces."""
    parts = [pick(vocab, f"{salt}.{i}", var) for i in range(count)]
    return f"CONCAT_WS(' ',{','.join(parts)})"


def timestamp(salt: str, years: float = 3.0, var: str = "seq") -> str:
    """A Unix time in the ``years`` before :data:`T_END`."""
    return f"({T_END - int(years * YEAR)}+{h(salt, var)} MOD {int(years * YEAR)})"


def random_bytes(salt: str, blocks: int, var: str = "seq") -> str:
    """``64 * blocks`` incompressible bytes (a SHA-512 chain), fixed per row and salt."""
    parts = [f"UNHEX(SHA2(CONCAT({var},{lit(f'{salt}.{i}')}),512))" for i in range(blocks)]
    return parts[0] if blocks == 1 else f"CONCAT({','.join(parts)})"


def hex_id(salt: str, length: int, var: str = "seq") -> str:
    """A lower-case hex string of ``length`` (<= 128) characters."""
    if length <= 32:
        return f"LEFT(MD5(CONCAT({var},{lit(salt)})),{length})"
    if length <= 40:
        return f"LEFT(SHA1(CONCAT({var},{lit(salt)})),{length})"
    return f"LEFT(SHA2(CONCAT({var},{lit(salt)}),512),{length})"


def ipv4(salt: str, var: str = "seq") -> str:
    return (
        f"CONCAT_WS('.',{between(10, 223, salt + '.a', var)},{between(0, 255, salt + '.b', var)},"
        f"{between(0, 255, salt + '.c', var)},{between(1, 254, salt + '.d', var)})"
    )
