"""Pure tests of the file format: escaping round trips and the server-escape guard."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from moodump.formats import (
    NULL_MARK,
    Column,
    escape_value,
    index_typed_columns,
    is_guarded,
    load_spec,
    patch_long_values,
    sql_literal,
    unescape_field,
)


@given(st.binary(max_size=300))
def test_escape_then_unescape_is_identity(value):
    escaped = escape_value(value)
    assert b"\t" not in escaped and b"\n" not in escaped
    assert unescape_field(escaped) == value


def test_null_and_the_text_backslash_n_differ():
    assert escape_value(None) == NULL_MARK
    assert unescape_field(NULL_MARK) is None
    assert unescape_field(escape_value(b"\\N")) == b"\\N"


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.data())
def test_patch_long_values_replaces_only_marked_fields(values, data):
    marks = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    line = b"\t".join(b"" if m else escape_value(v) for v, m in zip(values, marks, strict=True))
    extras = tuple(v if m else None for v, m in zip(values, marks, strict=True))
    patched = patch_long_values(line, extras, tuple(range(len(values))))
    assert [unescape_field(f) for f in patched.split(b"\t")] == values


def test_guard_only_where_values_can_be_long():
    assert not is_guarded(Column("a", "varchar", "varchar(255)", True, max_bytes=1020))
    assert is_guarded(Column("a", "varchar", "varchar(1333)", True, max_bytes=5332))
    assert is_guarded(Column("a", "longtext", "longtext", True, max_bytes=4294967295))
    assert is_guarded(Column("g", "geometry", "geometry", True))
    assert not is_guarded(Column("i", "bigint", "bigint(10)", False))


def test_sql_literals():
    assert sql_literal(None, "int", index_typed=False) == b"NULL"
    assert sql_literal(b"5", "enum", index_typed=True) == b"5"
    assert sql_literal(b"a'b\\\x00", "varchar", index_typed=False) == b"_binary'a\\'b\\\\\\0'"
    assert sql_literal(b"{}", "json", index_typed=False).startswith(b"CONVERT(")
    # SET with its 64th member: the server prints col + 0 signed; wrapped as CAST does.
    assert sql_literal(b"-1", "set", index_typed=True) == b"18446744073709551615"
    assert sql_literal(b"-9223372036854775808", "set", index_typed=True) == b"9223372036854775808"


def test_index_typed_columns_match_whole_variables():
    cols = [Column(f"c{i}", "int", "int", True) for i in range(12)]
    cols[10] = Column("e", "enum", "enum('x')", True)
    cols[3] = Column("@v1", "varchar", "varchar(5)", True)  # a name, not a variable
    clause = load_spec(cols).clause()
    assert index_typed_columns(clause, 12) == [i == 10 for i in range(12)]
