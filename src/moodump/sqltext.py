"""SQL text helpers: quoting identifiers and string literals (pure, no driver).

Everything moodump sends runs under a sql_mode without ANSI_QUOTES and
NO_BACKSLASH_ESCAPES (see :data:`moodump.formats.SESSION_SQL_MODE`), which is what these
quoting rules assume.
"""

from __future__ import annotations

from collections.abc import Sequence


def quote_ident(name: str) -> str:
    """Quote an identifier with backticks (backticks inside are doubled)."""
    return "`" + name.replace("`", "``") + "`"


def quote_str(value: str) -> str:
    """Quote a string literal for SQL under a sql_mode without NO_BACKSLASH_ESCAPES."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0") + "'"


def join_idents(names: Sequence[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)
