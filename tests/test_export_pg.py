"""``moodump export`` of a PostgreSQL backup: every table of the type zoo as a dataset,
checked against the source server.

One dump of tests/sql/pg_zoo.sql (plus a few edge cases the zoo lacks: constrained
numerics holding NaN, char(n) padding, timetz, intervals, -0 and NaN floats, two
tables whose dotted names would collide), one export. For every table, DuckDB's aggregates
over the export (row count; per column: non-NULL count, min, max and sum for numbers;
count, min, max and total UTF-8 length for strings and bytes; sums of the three fields of
an interval) must equal PostgreSQL's over the source, computed in a session with the
dump's settings so that a type exported as its text compares with its text. Values
Parquet cannot hold (NaN/±Infinity numerics, ±infinity and out-of-range dates and
timestamps) are NULL in the export and counted; PostgreSQL's side leaves them out and
counts them, and the counts must equal the export's ``nulled``. Documented in
docs/export.md.
"""

from __future__ import annotations

import json
import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from moodump.db.connection import ConnSettings
from moodump.dump import DumpOptions, dump_postgres
from moodump.errors import NotFoundError
from moodump.export import ExportOptions, export
from moodump.export.engine import EXPORT_MANIFEST
from moodump.source import LocalSource
from rig_pg import PgServer

pytestmark = pytest.mark.db

ZOO = Path(__file__).parent / "sql" / "pg_zoo.sql"

EDGES = r"""
CREATE TABLE zoo.export_edges (
    id int PRIMARY KEY, n52 numeric(5,2), n50 numeric(50,10), cp char(4), vc varchar(3),
    ttz time with time zone, iv interval, r4 real, r8 double precision, ts3 timestamp(3),
    tz6 timestamptz(6), b boolean, t text
);
INSERT INTO zoo.export_edges VALUES
 (1, 'NaN', 'NaN', 'a', 'ä', '24:00:00+00', '-178000000 years -2 mons 3 days -00:00:00.000001',
  '-0', '-0', '1999-12-31 23:59:59.999', '2000-01-01 00:00:00.000001+05:30', true,
  E'\\x41 \b\f\x0b\\'),
 (2, '-999.99', '-1234567890123456789012345678901234567890.0123456789', 'abcd', '', '00:00:00-15:59',
  '00:00:00', 'NaN', 'NaN', '0044-03-15 12:00:00 BC', '1900-01-01 00:00:00+00', false, ''),
 (3, 0.5, 0, ' ', NULL, '12:34:56.789+05:45', '1 year 2 mons 3 days 04:05:06.789', 1.5, 2.5,
  'infinity', '-infinity', NULL, NULL),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE SCHEMA "a.b";
CREATE SCHEMA a;
CREATE TABLE "a.b"."c" (x int);
CREATE TABLE "a"."b.c" (y text);
INSERT INTO "a.b"."c" VALUES (1);
INSERT INTO "a"."b.c" VALUES ('two'), ('three');
"""

#: the dump's session settings (docs/postgresql.md), so text output matches COPY's
SESSION = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'; SET search_path = pg_catalog; "
    "SET lc_monetary = 'C'; SET xmloption = content"
)
#: microseconds since the epoch of the largest timestamp[us]
LAST_US = "'294247-01-10 04:00:54.775807'"


def _settings(pg: PgServer) -> ConnSettings:
    return ConnSettings(host="127.0.0.1", port=pg.port, user="postgres", password="")


@pytest.fixture(scope="module")
def pg_export(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Any]:
    db = f"zoox_{uuid.uuid4().hex[:8]}"
    pg.createdb(db)
    pg.psql(db, file=ZOO)
    pg.psql(db, EDGES)
    base = tmp_path_factory.mktemp("pgexport")
    dump_postgres(_settings(pg), db, base / "backup", DumpOptions(threads=2, chunk_bytes=4096))
    res = export(LocalSource(base / "backup"), base / "out", ExportOptions(row_group_rows=64))
    yield db, base, res
    pg.dropdb(db)


def _kind(col: dict[str, Any]) -> str:
    t = col["arrow_type"]
    if t.startswith(("int", "uint")):
        return "int"
    if t.startswith("decimal"):
        return "dec"
    if t in ("float", "double"):
        return "float"
    if t == "bool":
        return "bool"
    if t.startswith("date32"):
        return "date"
    if t.startswith("timestamp"):
        return "ts"
    if t.startswith("time64"):
        return "time"
    if t.startswith("struct"):
        return "interval"
    if t == "extension<arrow.uuid>":
        return "uuid"
    if t == "binary":
        return "bin"
    return "text"


def _pg_exprs(kind: str, c: str) -> list[str]:
    if kind == "int":
        return [f"count({c})", f"min({c})::text", f"max({c})::text", f"sum({c}::text::numeric)::text"]
    if kind == "dec":
        v = f"(CASE WHEN {c} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {c} END)"
        return [f"count({v})", f"min({v})::text", f"max({v})::text",
                f"count({c}) - count({v})"]  # fmt: skip
    if kind == "float":
        return [f"count({c})", f"min({c})::text", f"max({c})::text", f"sum({c})::text"]
    if kind == "bool":
        return [f"count({c})", f"sum({c}::int)", f"count({c}) FILTER (WHERE NOT {c})", "0"]
    if kind in ("date", "ts"):
        if kind == "date":
            v = f"(CASE WHEN isfinite({c}) THEN ({c} - '1970-01-01'::date)::numeric * 86400000000 END)"
        else:
            v = (f"(CASE WHEN isfinite({c}) AND {c} <= {LAST_US} THEN "
                 f"extract(epoch FROM {c}) * 1000000 END)")  # fmt: skip
        return [f"count({v})", f"min({v})::text", f"max({v})::text", f"count({c}) - count({v})"]
    if kind == "time":
        us = f"(extract(epoch FROM {c}) * 1000000)"
        return [f"count({c})", f"min({us})::text", f"max({us})::text", f"sum({us})::text"]
    if kind == "interval":
        months = f"(extract(year FROM {c}) * 12 + extract(month FROM {c}))"
        us = (f"(extract(hour FROM {c}) * 3600000000 + extract(minute FROM {c}) * 60000000 "
              f"+ extract(microseconds FROM {c}))")  # fmt: skip
        return [f"count({c})", f"sum({months})::text", f"sum(extract(day FROM {c}))::text",
                f"sum({us})::text"]  # fmt: skip
    # byte order: hex text of bytea/uuid, text in COLLATE "C" (code-point order in UTF8)
    if kind in ("uuid", "bin"):
        h = f"replace(encode({c}::bytea, 'hex'), '-', '')" if kind == "bin" else f"replace({c}::text, '-', '')"
        return [f"count({c})", f"upper(min({h} COLLATE \"C\"))", f"upper(max({h} COLLATE \"C\"))",
                f"sum(length({h}) / 2)"]  # fmt: skip
    # concat: char(n) with its padding; num_nonnulls: a composite of NULLs is a value
    t = f'(CASE WHEN num_nonnulls({c}) = 1 THEN concat({c}) END) COLLATE "C"'
    return [f"count({c})", f"upper(encode(convert_to(min({t}), 'UTF8'), 'hex'))",
            f"upper(encode(convert_to(max({t}), 'UTF8'), 'hex'))",
            f"sum(octet_length(convert_to({t}, 'UTF8')))"]  # fmt: skip


def _duck_exprs(kind: str, c: str) -> list[str]:
    if kind in ("int", "float"):
        return [f"count({c})", f"min({c})", f"max({c})", f"sum({c}::HUGEINT)" if kind == "int"
                else f"sum({c})"]  # fmt: skip
    if kind == "dec":
        return [f"count({c})", f"min({c})", f"max({c})", "NULL"]
    if kind == "bool":
        return [f"count({c})", f"sum({c}::INT)", f"count({c}) FILTER (WHERE NOT {c})", "0"]
    if kind == "date":  # days: a date past 294247 AD has no TIMESTAMP
        us = "(({}) - DATE '1970-01-01')::HUGEINT * 86400000000"
        return [f"count({c})", us.format(f"min({c})"), us.format(f"max({c})"), "NULL"]
    if kind == "ts":
        return [f"count({c})", f"epoch_us(min({c}))", f"epoch_us(max({c}))", "NULL"]
    if kind == "time":
        us = f"epoch_us({c})"
        return [f"count({c})", f"min({us})", f"max({us})", f"sum({us})"]
    if kind == "interval":
        return [f"count({c})", f"sum({c}.months)", f"sum({c}.days)", f"sum({c}.microseconds)"]
    if kind == "uuid":
        h = "upper(replace(CAST({} AS VARCHAR), '-', ''))"
        return [f"count({c})", h.format(f"min({c})"), h.format(f"max({c})"), f"count({c}) * 16"]
    if kind == "bin":
        return [f"count({c})", f"hex(min({c}))", f"hex(max({c}))", f"sum(octet_length({c}))"]
    s = f"CAST({c} AS VARCHAR)"
    return [f"count({c})", f"hex(min({s}))", f"hex(max({s}))", f"sum(strlen({s}))"]


def _value(kind: str, v: Any, arrow_type: str = "") -> Any:
    if v is None:
        return None
    if kind == "float":
        f = float(v) if not isinstance(v, str) else float(v.replace("Infinity", "inf"))
        return float(np.float32(f)) if arrow_type == "float" else f  # real: its float32
    if kind in ("int", "dec", "date", "ts", "time", "interval", "bool"):
        return Decimal(str(v))
    return str(v).upper() if isinstance(v, str) else v


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-12)
    return bool(a == b)


def _compare(pg: PgServer, db: str, out: Path) -> list[str]:
    doc = json.loads((out / EXPORT_MANIFEST).read_text())
    problems = []
    duck = duckdb.connect()
    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname=db) as conn:
        conn.execute(SESSION)
        for table in doc["tables"]:
            q = '"' + table["schema"].replace('"', '""') + '"."' + table["name"].replace('"', '""') + '"'
            files = ", ".join("'" + str(out / f["path"]).replace("'", "''") + "'" for f in table["files"])
            kinds = [_kind(c) for c in table["columns"]]
            p_sel, d_sel = ["count(*)"], ["count(*)"]
            for col, kind in zip(table["columns"], kinds, strict=True):
                p_sel += _pg_exprs(kind, '"' + col["name"].replace('"', '""') + '"')
                d_sel += _duck_exprs(kind, '"' + col["name"].replace('"', '""') + '"')
            p_row = conn.execute(f"SELECT {', '.join(p_sel)} FROM ONLY {q}").fetchone()
            d_row = duck.execute(f"SELECT {', '.join(d_sel)} FROM read_parquet([{files}])").fetchone()
            assert p_row is not None and d_row is not None
            label = f"{table['schema']}.{table['name']}"
            if p_row[0] != d_row[0] or d_row[0] != table["rows"]:
                problems.append(f"{label}: rows {p_row[0]} vs {d_row[0]}")
            for j, (col, kind) in enumerate(zip(table["columns"], kinds, strict=True)):
                for i in range(4):
                    k = 1 + 4 * j + i
                    at = col["arrow_type"]
                    a, b = _value(kind, p_row[k], at), _value(kind, d_row[k], at)
                    if i == 3 and kind in ("dec", "date", "ts"):  # NULL from values Parquet cannot hold
                        b = Decimal(table["nulled"].get(col["name"], 0))
                    if i == 0:
                        a, b = int(a), int(b)
                    elif kind == "dec" and col["arrow_type"].startswith("decimal256"):
                        a, b = float(a), float(b)  # DuckDB reads DECIMAL(p > 38) as DOUBLE
                    if not _same(a, b):
                        problems.append(f"{label}.{col['name']} ({kind}) #{i}: PostgreSQL {a!r} != DuckDB {b!r}")
    return problems


def test_pg_export_matches_the_source(pg: PgServer, pg_export: tuple[str, Path, Any]) -> None:
    db, base, res = pg_export
    out = base / "out"
    problems = _compare(pg, db, out)
    assert problems == [], "\n".join(problems)
    # "a.b"."c" and "a"."b.c": two datasets
    dirs = {(t.schema, t.name): t.directory for t in res.tables}
    assert dirs["a.b", "c"] == "a%2Eb.c" and dirs["a", "b.c"] == "a.b%2Ec"
    assert dirs["zoo", "numbers"] == "zoo.numbers"
    assert res.nulled["zoo.export_edges"] == {"n52": 1, "n50": 1, "ts3": 1, "tz6": 1}
    assert res.nulled["zoo.times"] == {"d": 2, "ts": 3, "tstz": 2}
    assert "zoo.counter" in res.skipped  # a sequence


def test_pg_export_has_the_declared_arrow_types(pg_export: tuple[str, Path, Any]) -> None:
    _, base, _ = pg_export
    out = base / "out"
    doc = json.loads((out / EXPORT_MANIFEST).read_text())
    for table in doc["tables"]:
        read = pq.read_table(out / table["directory"]).schema
        assert [str(f.type) for f in read] == [c["arrow_type"] for c in table["columns"]]
        assert all(f.metadata[b"moodump.pg_type"] == c["pg_type"].encode()
                   for f, c in zip(read, table["columns"], strict=True))  # fmt: skip

    def types(d: str) -> dict[str, pa.DataType]:
        return {f.name: f.type for f in pq.read_table(out / d).schema}

    assert types("zoo.numbers") == {
        "id": pa.int64(), "i2": pa.int16(), "i4": pa.int32(), "i8": pa.int64(),
        "n": pa.string(), "n10": pa.decimal128(20, 6), "r4": pa.float32(), "r8": pa.float64(),
        "m": pa.string(), "s": pa.int32(), "b": pa.bool_(),
    }  # fmt: skip
    times = types("zoo.times")
    assert times["d"] == pa.date32() and times["t"] == pa.time64("us")
    assert times["ts"] == pa.timestamp("us") and times["tstz"] == pa.timestamp("us", "UTC")
    assert times["iv"] == pa.struct(
        [("months", pa.int32()), ("days", pa.int32()), ("microseconds", pa.int64())]
    )
    misc = types("zoo.misc")
    assert misc["u"] == pa.uuid() and misc["jb"] == pa.json_(pa.string())
    assert types("zoo.bytes")["b"] == pa.binary()
    edges = (
        pq.read_table(out / "zoo.export_edges").sort_by("id").drop_columns(["ts3", "tz6"]).to_pydict()
    )  # ts3: a BC timestamp, which Python's datetime cannot hold
    assert edges["n50"][1] == Decimal("-1234567890123456789012345678901234567890.0123456789")
    assert edges["cp"][2] == "    " and edges["cp"][0] == "a   "  # char(n) keeps its padding
    assert math.copysign(1, edges["r4"][0]) == -1 and math.isnan(edges["r8"][1])
    assert edges["t"][0] == "\\x41 \b\f\v\\"
    assert edges["ttz"][:3] == ["24:00:00+00", "00:00:00-15:59", "12:34:56.789+05:45"]
    assert edges["iv"][0] == {"months": -178000000 * 12 - 2, "days": 3, "microseconds": -1}
    bytes_ = pq.read_table(out / "zoo.bytes").sort_by("id").to_pydict()
    assert bytes_["b"][0] == bytes(range(256)) and bytes_["b"][1] == b""
    meta = pq.ParquetFile(out / doc["tables"][0]["files"][0]["path"]).metadata.metadata
    assert meta[b"moodump.schema"] and b"CREATE TABLE" in meta[b"moodump.create_table"]
    assert json.loads(meta[b"moodump.snapshot"])["id"]


def test_pg_export_selects_schema_qualified_globs(pg_export: tuple[str, Path, Any]) -> None:
    _, base, _ = pg_export
    out = base / "globs"
    res = export(LocalSource(base / "backup"), out, ExportOptions(tables=("zoo.num*", "c")))
    assert sorted(p.name for p in out.iterdir()) == ["a%2Eb.c", "export.json", "zoo.numbers"]
    assert [(t.schema, t.name) for t in res.tables] == [("a.b", "c"), ("zoo", "numbers")]
    with pytest.raises(NotFoundError):
        export(LocalSource(base / "backup"), base / "none", ExportOptions(tables=("zoo.nope",)))
