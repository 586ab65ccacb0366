"""SQL text helpers: quoting identifiers and string literals (pure, no driver).

Everything moodump sends runs under a sql_mode without ANSI_QUOTES and
NO_BACKSLASH_ESCAPES (see :data:`moodump.formats.SESSION_SQL_MODE`), which is what these
quoting rules assume.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def quote_ident(name: str) -> str:
    """Quote an identifier with backticks (backticks inside are doubled)."""
    return "`" + name.replace("`", "``") + "`"


def quote_str(value: str) -> str:
    """Quote a string literal for SQL under a sql_mode without NO_BACKSLASH_ESCAPES."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0") + "'"


def join_idents(names: Sequence[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)


_QUOTED_TABLE = re.compile(r'"((?:[^"]|"")+)"\."((?:[^"]|"")+)"')


def quoted_table(pattern: str) -> tuple[str, str] | None:
    """(schema, table) of a PostgreSQL ``--table`` pattern written ``"schema"."table"``
    (double quotes, doubled inside, as pg_dump reads them): one table exactly, for the
    names that read the same joined with a dot (``"a.b"."c"`` and ``"a"."b.c"``)."""
    m = _QUOTED_TABLE.fullmatch(pattern)
    return (m.group(1).replace('""', '"'), m.group(2).replace('""', '"')) if m else None
