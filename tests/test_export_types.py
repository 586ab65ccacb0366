"""The export's pure type mapping: CREATE TABLE -> Arrow types, and the value converters."""

from __future__ import annotations

import io
import math
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from moodump.export.engine import table_directory
from moodump.export.types import (
    column_def,
    column_encodings,
    decode_text,
    parse_create_table,
    plan_column,
    table_plans,
    time_micros,
    unescape,
    valid_date_text,
)

CREATE = """CREATE TABLE `t` (
  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `a``b` decimal(65,30) DEFAULT NULL,
  `e` enum('x','it''s','a,b') NOT NULL DEFAULT 'x',
  `l` varchar(10) DEFAULT NULL,
  `u` text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`j`)),
  `ts` timestamp(3) NULL DEFAULT NULL,
  `b` bit(12) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `k` (`l`)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci"""


def test_create_table_columns_and_their_arrow_types():
    cols = parse_create_table(CREATE)
    assert list(cols) == ["id", "a`b", "e", "l", "u", "j", "ts", "b"]
    assert cols["e"].members == ("x", "it's", "a,b") and cols["e"].charset == "latin1"
    assert cols["l"].charset == "latin1" and cols["u"].charset == "utf8mb4"
    types = {c.name: plan_column(c).field.type for c in cols.values()}
    assert types == {
        "id": pa.uint64(), "a`b": pa.decimal256(65, 30),
        "e": pa.dictionary(pa.int32(), pa.string()), "l": pa.string(), "u": pa.string(),
        "j": pa.json_(pa.string()), "ts": pa.timestamp("ms", "UTC"), "b": pa.binary(),
    }  # fmt: skip
    # a column the definition does not show (implicit system-versioning periods)
    plans = table_plans(CREATE, ["id", "row_start"], ["bigint", "timestamp"])
    assert plans[1].field.type == pa.timestamp("us", "UTC")


def test_converters():
    cols = parse_create_table(CREATE)
    enum, _ = plan_column(cols["e"]).convert(pa.array([1, 0, None, 3], pa.int64()))
    assert enum.to_pylist() == ["x", "", None, "a,b"]
    bits, _ = plan_column(cols["b"]).convert(pa.array([4095, None, 1], pa.uint64()))
    assert bits.to_pylist() == [b"\x0f\xff", None, b"\x00\x01"]
    ts, nulled = plan_column(cols["ts"]).convert(
        pa.array(
            ["2020-01-02 03:04:05.678", "0000-00-00 00:00:00.000", None, "2020-00-15 00:00:00"]
        )
    )
    assert nulled == 2 and ts.null_count == 3 and ts.type == pa.timestamp("ms", "UTC")


def test_a_64_member_set_with_its_last_member():
    """The server writes SET + 0 signed: the 64th member makes it negative."""
    members = ", ".join(f"'m{i}'" for i in range(64))
    col = column_def("s", f"set({members}) DEFAULT NULL")
    plan = plan_column(col)
    values = pa.array([-1, -(1 << 63), 1, None, 0], plan.read_type)
    out, nulled = plan.convert(values)
    assert nulled == 0
    got = out.to_pylist()
    assert got[0] == ",".join(f"m{i}" for i in range(64))
    assert got[1:] == ["m63", "m0", None, ""]


def test_unescape_reads_escapes_left_to_right():
    raw = [b"a\\\\tb", b"\\t\\n\\r\\\\", b"plain", None, b"\\\\\\\\n", b"c:\\\\x"]
    assert unescape(pa.array(raw, pa.binary())).to_pylist() == [
        b"a\\tb", b"\t\n\r\\", b"plain", None, b"\\\\n", b"c:\\x",
    ]  # fmt: skip


def test_dates_times_and_charsets():
    assert valid_date_text("2024-02-29 00:00:00") and not valid_date_text("2023-02-29")
    assert not valid_date_text("0000-00-00") and valid_date_text("0000-01-01")
    assert time_micros("-838:59:59.5") == -(838 * 3600 + 59 * 60 + 59) * 10**6 - 500_000
    assert time_micros("12:00") is None
    latin1, bad = decode_text(pa.array([b"caf\xe9 \x80 \x81"]), "latin1")
    assert latin1.to_pylist() == ["café € \x81"] and bad == 0
    sjis, _ = decode_text(pa.array([b"\x81\x5ft"]), "sjis")
    assert sjis.to_pylist() == ["\\t"]  # as MariaDB's CONVERT(... USING utf8mb4)
    invalid, bad = decode_text(pa.array([b"ok", b"\xff"]), "utf8mb4")
    assert invalid.to_pylist() == ["ok", None] and bad == 1


def test_table_directories_stay_inside_the_output():
    assert table_directory("mdl_user") == "mdl_user"
    assert table_directory("../x") == "%2E.%2Fx"
    assert table_directory("a/b\\c%") == "a%2Fb%5Cc%25"


def test_parquet_encodings_follow_the_first_row_group():
    big = 2**63 - 1
    table = pa.table(
        {
            "id": pa.array([-big - 1, big, 0, -1] * 4 + list(range(16)), pa.int64()),
            "u": pa.array([2**64 - 1, *range(31)], pa.uint64()),
            "kind": pa.array(["a", "b"] * 16),
            "ts": pa.array(list(range(32)), pa.timestamp("us")),
            "note": pa.array([str(i) for i in range(32)]),
        }
    )
    dictionary, encodings = column_encodings(table)
    assert dictionary == ["kind"]
    assert encodings == {"id": "DELTA_BINARY_PACKED", "ts": "DELTA_BINARY_PACKED"}
    sink = io.BytesIO()  # deltas that overflow int64 still read back exactly
    pq.write_table(table, sink, use_dictionary=dictionary, column_encoding=encodings)
    assert pq.read_table(io.BytesIO(sink.getvalue())).equals(table)


def test_repeating_text_converts_through_its_dictionary_like_value_by_value():
    escaped = [b"core\\\\event", b"a\\tb\\\\", None, b"caf\xe9", b"plain", b"\\\\N"]
    arr = pa.array(escaped * 400, pa.binary())  # 6 distinct values: the dictionary path
    for charset in ("utf8mb4", "latin1"):
        col = parse_create_table(
            f"CREATE TABLE `t` (\n  `v` varchar(9) CHARACTER SET {charset} DEFAULT NULL\n)"
        )["v"]
        out, nulled = plan_column(col).convert(arr)
        want, want_nulled = decode_text(unescape(arr), charset)
        assert out.type == pa.string() and out.equals(want) and nulled == want_nulled
        assert nulled == (400 if charset == "utf8mb4" else 0)  # invalid UTF-8: NULL


def test_the_cli_offers_the_engines_compressions() -> None:
    """cli/export.py spells the list out (so the CLI loads without pyarrow)."""
    from moodump.cli.export import COMPRESSIONS as CLI_COMPRESSIONS
    from moodump.export.engine import COMPRESSIONS

    assert CLI_COMPRESSIONS == COMPRESSIONS


# -- PostgreSQL ------------------------------------------------------------------------------


def test_pg_copy_text_escapes_are_undone_exactly():
    from moodump.export.pgtypes import copy_unescape

    raw = pa.array(
        [rb"a\tb\nc\rd\\e", rb"\b\f\v", rb"\101\0\x41\x4", rb"\.\N", b"plain", None], pa.binary()
    )
    assert copy_unescape(raw).to_pylist() == [
        b"a\tb\nc\rd\\e", b"\b\f\v", b"A\x00A\x04", b".N", b"plain", None,
    ]  # fmt: skip


def test_pg_text_decodes_from_the_database_encoding_or_is_null_counted():
    from moodump.export.pgtypes import pg_plan_column

    latin1 = pg_plan_column("t", "text", "LATIN1")
    arr, bad = latin1.convert(pa.array([b"caf\xe9", rb"\351t\xe9", None], pa.binary()))
    assert arr.to_pylist() == ["café", "été", None] and bad == 0
    win = pg_plan_column("t", "character varying(5)", "WIN1252")
    assert win.convert(pa.array([b"\x80"], pa.binary()))[0].to_pylist() == ["€"]
    ascii_ = pg_plan_column("t", "text", "SQL_ASCII")  # bytes of no known encoding
    arr, bad = ascii_.convert(pa.array([b"ok \xc3\xa9", b"bad \xe9", rb"oct \351"], pa.binary()))
    assert arr.to_pylist() == ["ok é", None, None] and bad == 2
    mule = pg_plan_column("t", "text", "MULE_INTERNAL")  # no codec: ASCII only, never wrong
    assert mule.convert(pa.array([b"x", b"\x92\xa4"], pa.binary()))[0].to_pylist() == ["x", None]


def test_pg_types_map_to_exact_arrow_types():
    from moodump.export.pgtypes import pg_plan_column

    def typ(t: str) -> pa.DataType:
        return pg_plan_column("c", t, "UTF8").field.type

    assert typ("smallint") == pa.int16() and typ("bigint") == pa.int64() and typ("oid") == pa.uint32()
    assert typ("numeric(10,2)") == pa.decimal128(10, 2) and typ("numeric(60,0)") == pa.decimal256(60, 0)
    assert typ("numeric") == pa.string() and typ("numeric(3,-2)") == pa.string()
    assert typ("numeric(1000,5)") == pa.string() and typ("numeric(2,5)") == pa.string()
    assert typ("timestamp(3) without time zone") == pa.timestamp("us")
    assert typ("timestamp with time zone") == pa.timestamp("us", "UTC")
    assert typ("time(2) without time zone") == pa.time64("us")
    assert typ("time with time zone") == pa.string() and typ("integer[]") == pa.string()
    assert typ("public.citext") == pa.string() and typ('"char"') == pa.string()
    interval = typ("interval")
    assert typ("interval year to month") == typ("interval day to second(3)") == interval
    assert typ("interval(2)") == interval and pa.types.is_struct(interval)
    assert typ("point") == pa.string()  # a PostgreSQL point is text, not a MariaDB spatial
    assert not pg_plan_column("p", "point", "UTF8").spatial


def test_pg_values_convert_exactly_and_what_arrow_cannot_hold_is_null_counted():
    from moodump.export.pgtypes import pg_plan_column

    def conv(t: str, values: list[bytes | None]) -> tuple[list[object], int]:
        arr, bad = pg_plan_column("c", t, "UTF8").convert(pa.array(values, pa.binary()))
        return arr.cast(arr.type.storage_type if isinstance(arr.type, pa.ExtensionType) else arr.type).to_pylist(), bad

    assert conv("numeric(5,2)", [b"NaN", b"-999.99", None]) == ([None, Decimal("-999.99"), None], 1)
    floats, _ = conv("real", [b"NaN", b"-Infinity", b"-0", b"1.4e-45"])
    assert math.isnan(floats[0]) and floats[1] == -math.inf and math.copysign(1, floats[2]) == -1
    assert floats[3] == 1.401298464324817e-45
    assert conv("boolean", [b"t", b"f", None]) == ([True, False, None], 0)
    assert conv("bytea", [rb"\\x00ff5c", rb"\\x", None]) == ([b"\x00\xff\\", b"", None], 0)
    days, bad = pg_plan_column("d", "date", "UTF8").convert(
        pa.array([b"infinity", b"0001-01-01 BC", b"2024-02-29", b"5874897-12-31"], pa.binary())
    )
    assert bad == 1 and days.cast(pa.int32()).to_pylist() == [None, -719528, 19782, 2145042905]
    ts, bad = pg_plan_column("t", "timestamp with time zone", "UTF8").convert(
        pa.array([b"-infinity", b"2000-01-01 05:30:00.000001+05:30", b"294276-12-31 23:59:59+00",
                  b"0044-03-15 12:00:00+00 BC"], pa.binary())
    )
    assert bad == 2
    assert ts.cast(pa.int64()).to_pylist() == [None, 946684800000001, None, -63517780800000000]
    iv, bad = pg_plan_column("i", "interval", "UTF8").convert(
        pa.array([b"-178000000 years -2 mons +3 days -00:00:00.000001", b"1 day 24:00:00"], pa.binary())
    )
    assert bad == 0 and iv.to_pylist() == [
        {"months": -2136000002, "days": 3, "microseconds": -1},
        {"months": 0, "days": 1, "microseconds": 86_400_000_000},
    ]
    t, _ = pg_plan_column("t", "time without time zone", "UTF8").convert(
        pa.array([b"24:00:00", b"00:00:00.5"], pa.binary())
    )
    assert t.cast(pa.int64()).to_pylist() == [86_400_000_000, 500_000]


def test_pg_directories_keep_dotted_names_apart():
    from moodump.export.output import pg_directory

    assert pg_directory("a.b", "c") == "a%2Eb.c" and pg_directory("a", "b.c") == "a.b%2Ec"
    assert pg_directory("h", "new\nline/x") == "h.new%0Aline%2Fx"
    assert pg_directory(".", "..") == "%2E.%2E%2E"


def test_pg_multibyte_text_decodes_as_postgresql_converts_it():
    from moodump.export.pgtypes import decode

    # Python's euc_jp makes U+301C of 0xA1C1, PostgreSQL U+FF5E; 0xADA1 (NEC's circled 1)
    # Python cannot decode: NULL, counted, never another character
    arr, bad = decode(pa.array([bytes.fromhex("c6fccbdca1c1a1c2"), bytes.fromhex("ada1")]), "EUC_JP")
    assert arr.to_pylist() == ["日本\uff5e\u2225", None] and bad == 1
    assert decode(pa.array([b"a\\b~"]), "SHIFT_JIS_2004")[0].to_pylist() == ["a\\b~"]
    arr, bad = decode(pa.array([bytes.fromhex("a145"), bytes.fromhex("a2cc")]), "BIG5")
    assert arr.to_pylist() == ["\u2022", None] and bad == 1


def test_pg_table_definitions_come_from_pg_dump_sections_only():
    from moodump.export.pgtypes import pg_table_definitions

    pre = (
        "--\n-- Name: t; Type: TABLE; Schema: public; Owner: postgres\n--\n\n"
        'CREATE TABLE "public"."t" (\n    "id" integer\n);\n\n\n'
        'ALTER TABLE "public"."t" OWNER TO "postgres";\n\n'
        "--\n-- Name: x; Type: TABLE; Schema: s; Owner: postgres\n--\n\nGRANT ALL ON x;\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict KEY\n"
    )
    found = pg_table_definitions(pre)
    assert list(found) == [("public", "t")]
    assert found["public", "t"].endswith('OWNER TO "postgres";')


def test_text_mariadb_cannot_convert_is_null_and_counted_never_pythons_guess():
    # MariaDB converts these bytes to '?' or U+FFFD; Python's codecs make characters of them
    cases = [("cp932", b"\x80"), ("big5", bytes.fromhex("a15a")), ("cp1256", b"\x8a"),
             ("eucjpms", bytes.fromhex("8fa2b7")), ("big5", bytes.fromhex("a2cc")), ("swe7", b"\x7f")]  # fmt: skip
    for charset, raw in cases:
        arr, bad = decode_text(pa.array([raw, b"ok"], pa.binary()), charset)
        assert arr.to_pylist() == [None, "ok"] and bad == 1, charset
    # and these MariaDB converts otherwise than Python: MariaDB's character
    assert decode_text(pa.array([b"\\[|"], pa.binary()), "swe7")[0].to_pylist() == ["ÖÄö"]
    assert decode_text(pa.array([b"\xfc"], pa.binary()), "cp866")[0].to_pylist() == ["\u207f"]


def test_long_encoded_names_make_short_unique_directories():
    from moodump.export.output import pg_directory

    dots, nl = pg_directory("." * 63, "." * 63), pg_directory("\n" * 63, "." * 63)
    assert dots != nl and all(len(d.encode()) <= 255 for d in (dots, nl))
    assert "~" in dots and not dots.startswith(".")
    emoji = table_directory("😀" * 64)  # 256 bytes
    assert len(emoji.encode()) <= 255 and emoji.startswith("😀" * 50)
    assert table_directory("mdl_user") == "mdl_user"
