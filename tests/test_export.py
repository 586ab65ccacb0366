"""``moodump export``: a backup as Parquet, checked against the source server.

For every table of the type zoo and of the sample Moodle database, DuckDB's aggregates
over the export (row count; per column: non-NULL count, min, max and sum for numbers;
count, min, max and total UTF-8 length for strings and bytes) must equal MariaDB's over
the source. Comparisons that would depend on collations are made on bytes on both
sides: MariaDB converts text to utf8mb4 and compares ``CAST(... AS BINARY)``, which is
the code-point order DuckDB uses. Values Parquet cannot hold (zero dates) are NULL in
the export; MariaDB's side leaves them out and counts them, and the count must equal
the export's ``nulled`` figure. Documented in docs/export.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rig_s3
from helpers import moodump_cli, run_sql_file
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.dump import DumpOptions, dump
from moodump.errors import StorageAuthError
from moodump.export import ExportOptions, export
from moodump.export.engine import EXPORT_MANIFEST
from moodump.manifest import read_manifest
from moodump.source import LocalSource

ZOO = Path(__file__).parent / "sql" / "zoo.sql"
CHARSETS = Path(__file__).parent / "sql" / "zoo_charsets.sql"  # export only


@pytest.fixture(scope="module")
def zoo_backup(
    root_settings: ConnSettings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    name = "zoo_export"
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        c.execute(f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
    run_sql_file(root_settings, ZOO, name)
    run_sql_file(root_settings, CHARSETS, name)
    out = tmp_path_factory.mktemp("zoo") / "backup"
    dump(root_settings, name, out, DumpOptions(threads=2, chunk_bytes=4096))
    yield name, out
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


@pytest.fixture(scope="module")
def moodle_backup(
    root_settings: ConnSettings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    from moodump.demo.sample import create_moodle_database

    name = "moodle_export_src"
    create_moodle_database(root_settings, name, scale=0.002, drop_existing=True)
    out = tmp_path_factory.mktemp("moodle") / "backup"
    dump(root_settings, name, out, DumpOptions(threads=2, chunk_bytes=256 << 10))
    yield name, out
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


# -- aggregates on both sides -------------------------------------------------------------


def _kind(col: dict[str, Any]) -> str:
    t = col["arrow_type"]
    mysql = col["mysql_type"].split("(")[0].lower()
    if t.startswith(("int", "uint")):
        return "int"
    if t.startswith("decimal256"):
        return "dec256"
    if t.startswith("decimal"):
        return "dec"
    if t in ("float", "double"):
        return "float"
    if t.startswith("date32"):
        return "date"
    if t.startswith("timestamp"):
        return "ts"
    if t.startswith("duration"):
        return "time_ms" if "[ms]" in t else "time_us"
    if t == "extension<arrow.uuid>":
        return "uuid"
    if t == "binary":
        return "wkb" if mysql in _SPATIAL else "bin"
    return "text"  # string, json, dictionary (ENUM/SET)


_SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
            "multipolygon", "geometrycollection"}  # fmt: skip


def _mariadb_exprs(kind: str, c: str) -> list[str]:
    if kind in ("int", "dec", "dec256"):
        return [f"COUNT({c})", f"MIN({c})", f"MAX({c})", f"SUM({c})"]
    if kind == "float":
        d = f"CAST({c} AS DOUBLE)"
        return [f"COUNT({c})", f"MIN({d})", f"MAX({d})", f"SUM({d})"]
    if kind in ("date", "ts"):
        v = f"IF(MONTH({c}) = 0 OR DAYOFMONTH({c}) = 0, NULL, {c})"
        us = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {})"
        return [f"COUNT({v})", us.format(f"MIN({v})"), us.format(f"MAX({v})"),
                f"SUM({c} IS NOT NULL AND {v} IS NULL)"]  # fmt: skip
    if kind.startswith("time"):
        us = f"ROUND(TIME_TO_SEC({c}) * 1000000)"
        return [f"COUNT({c})", f"MIN({us})", f"MAX({us})", f"SUM({us})"]
    if kind == "text":
        b = f"CAST(CONVERT({c} USING utf8mb4) AS BINARY)"
        return [f"COUNT({c})", f"HEX(MIN({b}))", f"HEX(MAX({b}))", f"SUM(OCTET_LENGTH({b}))"]
    if kind == "wkb":
        b = f"SUBSTRING(CAST({c} AS BINARY), 5)"
        return [f"COUNT({c})", f"HEX(MIN({b}))", f"HEX(MAX({b}))", f"SUM(OCTET_LENGTH({b}))"]
    b = f"CAST({c} AS BINARY)"  # bin, uuid
    return [f"COUNT({c})", f"HEX(MIN({b}))", f"HEX(MAX({b}))", f"SUM(OCTET_LENGTH({b}))"]


def _duckdb_exprs(kind: str, c: str) -> list[str]:
    if kind in ("int", "dec", "dec256", "float"):
        return [f"count({c})", f"min({c})", f"max({c})", f"sum({c})"]
    if kind in ("date", "ts"):
        t = f"CAST({c} AS TIMESTAMP)" if kind == "date" else c
        return [f"count({c})", f"epoch_us(min({t}))", f"epoch_us(max({t}))", "NULL"]
    if kind.startswith("time"):
        f = 1000 if kind == "time_ms" else 1
        v = f"CAST({c} AS BIGINT) * {f}"
        return [f"count({c})", f"min({v})", f"max({v})", f"sum({v})"]
    if kind == "text":
        s = f"CAST({c} AS VARCHAR)"
        return [f"count({c})", f"hex(min({s}))", f"hex(max({s}))", f"sum(strlen({s}))"]
    if kind == "uuid":
        h = "upper(replace(CAST({} AS VARCHAR), '-', ''))"
        return [f"count({c})", h.format(f"min({c})"), h.format(f"max({c})"), f"count({c}) * 16"]
    return [f"count({c})", f"hex(min({c}))", f"hex(max({c}))", f"sum(octet_length({c}))"]


def _norm(kind: str, i: int, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if i == 0 or kind == "int" or kind.startswith("time"):
        return int(Decimal(str(value)))
    if kind == "dec":
        return Decimal(str(value))
    if kind in ("dec256", "float"):
        return float(value)
    if kind in ("date", "ts"):
        return int(Decimal(str(value))) if i < 3 else None
    if i == 3:
        return int(Decimal(str(value)))
    return str(value).upper()


def _same(kind: str, i: int, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b or (i == 3 and (a or 0) == (b or 0))
    if kind == "dec256" or (kind == "float" and i == 3):
        # DuckDB reads DECIMAL(p > 38) as DOUBLE; float sums depend on the order of addition
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    return bool(a == b)


def _compare_database(settings: ConnSettings, database: str, out: Path) -> list[str]:
    """Differences between MariaDB's aggregates of ``database`` and DuckDB's of the export."""
    doc = json.loads((out / EXPORT_MANIFEST).read_text())
    manifest = read_manifest(Path(doc["backup"]["where"]))
    problems: list[str] = []
    duck = duckdb.connect()
    with connect(settings.with_database(database)) as conn:
        conn.execute("SET time_zone = '+00:00'")
        for table in doc["tables"]:
            entry = manifest.table(table["name"])
            files = ", ".join(
                "'" + str(out / f["path"]).replace("'", "''") + "'" for f in table["files"]
            )
            kinds = [_kind(col) for col in table["columns"]]
            m_sel = ["COUNT(*)"]
            d_sel = ["count(*)"]
            for col, kind in zip(table["columns"], kinds, strict=True):
                m_sel += _mariadb_exprs(kind, quote_ident(col["name"]))
                d_sel += _duckdb_exprs(kind, '"' + col["name"].replace('"', '""') + '"')
            history = " FOR SYSTEM_TIME ALL" if entry.versioned else ""
            m_row = conn.query(
                f"SELECT {', '.join(m_sel)} FROM {quote_ident(table['name'])}{history}"
            )[0]
            d_row = duck.execute(
                f"SELECT {', '.join(d_sel)} FROM read_parquet([{files}])"
            ).fetchone()
            assert d_row is not None
            if int(m_row[0] or 0) != d_row[0] or d_row[0] != table["rows"]:
                problems.append(f"{table['name']}: rows {m_row[0]!r} vs {d_row[0]!r}")
            for j, (col, kind) in enumerate(zip(table["columns"], kinds, strict=True)):
                for i in range(4):
                    k = 1 + 4 * j + i
                    a, b = _norm(kind, i, m_row[k]), _norm(kind, i, d_row[k])
                    if kind in ("date", "ts") and i == 3:  # zero dates: NULL, counted
                        a, b = (
                            int(Decimal((m_row[k] or b"0").decode())),
                            table["nulled"].get(col["name"], 0),
                        )
                    if not _same(kind, i, a, b):
                        what = ("count", "min", "max", "sum/length/nulled")[i]
                        problems.append(f"{table['name']}.{col['name']} ({kind}) {what}: "
                                        f"MariaDB {a!r} != DuckDB {b!r}")  # fmt: skip
    return problems


# -- the tests ------------------------------------------------------------------------------


def test_zoo_export_matches_the_source(root_settings, zoo_backup, tmp_path):
    name, backup = zoo_backup
    out = tmp_path / "export"
    res = export(LocalSource(backup), out, ExportOptions(workers=2, row_group_rows=2048))
    assert _compare_database(root_settings, name, out) == []
    # zero dates of the zoo: NULL and counted, in the result, export.json and file metadata
    assert res.nulled["temporal"] == {"d": 3, "dt": 2, "dt6": 1}
    assert res.nulled["zero_ts"] == {"ts": 1}
    per_file: dict[str, int] = {}
    for part in (out / "temporal").iterdir():
        meta = pq.ParquetFile(part).metadata.metadata
        for col, n in json.loads(meta[b"moodump.nulled"]).items():
            per_file[col] = per_file.get(col, 0) + n
    assert per_file == {"d": 3, "dt": 2, "dt6": 1}
    doc = json.loads((out / EXPORT_MANIFEST).read_text())
    assert next(t for t in doc["tables"] if t["name"] == "zero_ts")["nulled"] == {"ts": 1}
    assert set(res.skipped) == {"seq_plain", "seq_fancy"}
    # every table of the backup is a dataset, sequences aside
    tables = {t.name for t in read_manifest(backup).tables if t.kind == "table"}
    assert {t.name for t in res.tables} == tables


def test_zoo_export_has_the_declared_arrow_types(zoo_backup, tmp_path):
    _, backup = zoo_backup
    out = tmp_path / "export"
    export(LocalSource(backup), out)
    doc = json.loads((out / EXPORT_MANIFEST).read_text())
    for table in doc["tables"]:
        schema = pq.read_schema(out / table["files"][0]["path"])
        assert [str(f.type) for f in schema] == [c["arrow_type"] for c in table["columns"]], table[
            "name"
        ]
        read = pq.read_table(out / table["directory"]).schema  # the directory as one dataset
        assert [str(f.type) for f in read] == [c["arrow_type"] for c in table["columns"]]

    def types(table: str) -> dict[str, pa.DataType]:
        return {f.name: f.type for f in pq.read_table(out / table).schema}

    assert types("ints") == {
        "id": pa.int32(), "ti": pa.int8(), "tu": pa.uint8(), "si": pa.int16(), "su": pa.uint16(),
        "mi": pa.int32(), "mu": pa.uint32(), "i": pa.int32(), "iu": pa.uint32(), "bi": pa.int64(),
        "bu": pa.uint64(), "z": pa.uint32(), "y": pa.int16(),
    }  # fmt: skip
    assert types("nums") == {
        "id": pa.uint64(), "d": pa.decimal256(65, 30), "d2": pa.decimal128(10, 5),
        "f": pa.float32(), "f2": pa.float32(), "dbl": pa.float64(), "r": pa.float64(),
        "b1": pa.binary(), "b64": pa.binary(), "b7": pa.binary(),
    }  # fmt: skip
    assert types("temporal") == {
        "id": pa.int32(), "d": pa.date32(), "dt": pa.timestamp("ms"), "dt6": pa.timestamp("us"),
        "ts": pa.timestamp("ms", "UTC"), "ts6": pa.timestamp("us", "UTC"),
        "t": pa.duration("ms"), "t6": pa.duration("us"), "t3": pa.duration("ms"), "y": pa.int16(),
    }  # fmt: skip
    blobs = types("blobs")
    assert blobs["j"] == pa.json_(pa.string()) and blobs["lb"] == pa.binary()
    enums = types("enums")
    assert enums["e"] == pa.dictionary(pa.int32(), pa.string())
    assert types("features")["uuidv"] == pa.uuid()
    spatial = pq.read_schema(out / "spatial" / "part-00000.parquet")  # one file: 2 rows
    assert spatial.field("p").metadata[b"srid"] == b"4326"
    assert spatial.field("g").metadata[b"srid"] == b"3857"
    # exact values where text dumps go wrong
    nums = pq.read_table(out / "nums").sort_by("id").to_pydict()
    assert nums["b64"][0] == b"\xff" * 8 and nums["b7"][0] == b"U"
    assert nums["f"][2] == 1.401298464324817e-45 and nums["dbl"][1] == 5e-324
    ints = pq.read_table(out / "ints").sort_by("id").to_pydict()
    assert ints["bu"][2] == 2**64 - 1
    temporal = pq.read_table(out / "temporal").sort_by("id").to_pydict()
    assert temporal["t"][0].total_seconds() == -(838 * 3600 + 59 * 60 + 59)
    charsets = pq.read_table(out / "charsets").sort_by("id").to_pydict()
    assert charsets["tx"][0] == "line1\r\nline2\ttab\\back" and charsets["cp"][0] == "Привет"
    # the file metadata: definition, snapshot, rows
    ints_doc = next(t for t in doc["tables"] if t["name"] == "ints")
    for f in ints_doc["files"]:
        meta = pq.ParquetFile(out / f["path"]).metadata.metadata
        assert meta[b"moodump.create_table"].startswith(b"CREATE TABLE `ints`")
        assert json.loads(meta[b"moodump.snapshot"])["started_at"] == doc["backup"]["started_at"]
        assert (
            int(meta[b"moodump.rows"])
            == f["rows"]
            == pq.ParquetFile(out / f["path"]).metadata.num_rows
        )
    assert sum(f["rows"] for f in ints_doc["files"]) == 4
    # export.json: every file with its rows and sha256
    for table in doc["tables"]:
        for f in table["files"]:
            data = (out / f["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]


def test_moodle_sample_export_matches_the_source(root_settings, moodle_backup, tmp_path):
    name, backup = moodle_backup
    out = tmp_path / "export"
    res = export(LocalSource(backup), out, ExportOptions(workers=2, row_group_rows=4096))
    assert len(res.tables) == len(read_manifest(backup).tables)
    assert any(len(t.files) > 1 for t in res.tables)  # split tables: one file per data file
    assert _compare_database(root_settings, name, out) == []


def test_cli_export_table_globs_and_refuses_a_non_empty_output(zoo_backup, tmp_path):
    _, backup = zoo_backup
    out = tmp_path / "cli"
    r = moodump_cli(
        "export", str(backup), "--output", str(out), "--table", "in*,temporal", "--json"
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["tables"] == 2 and summary["nulled"] == {"temporal": {"d": 3, "dt": 2, "dt6": 1}}
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "ints", "temporal"]
    again = moodump_cli("export", str(backup), "--output", str(out))
    assert again.returncode == 2 and "not empty" in again.stderr
    missing = moodump_cli("export", str(backup), "--output", str(tmp_path / "x"), "--table", "nope")
    assert missing.returncode == 5


@pytest.mark.storage
def test_export_to_s3_reads_back_as_datasets(zoo_backup, tmp_path):
    import pyarrow.dataset as ds

    _, backup = zoo_backup
    try:
        s3 = rig_s3.shared()
    except RuntimeError as exc:  # a required part of the rig: fail, never skip
        pytest.fail(f"SeaweedFS (the S3 server of the tests) did not start: {exc}")
    bucket = s3.bucket("exports")
    prefix = rig_s3.unique("zoo-")
    env = {
        "S3_ENDPOINT": s3.endpoint,
        "S3_USER": rig_s3.ACCESS_KEY,
        "S3_PASSWORD": rig_s3.SECRET_KEY,
    }
    res = export(LocalSource(backup), f"s3://{bucket}/{prefix}", env=env)
    assert res.output == f"s3://{bucket}/{prefix}"
    local = tmp_path / "local"
    export(LocalSource(backup), local)
    fs = s3.filesystem()
    doc = json.loads(fs.open_input_stream(f"{bucket}/{prefix}/{EXPORT_MANIFEST}").read())
    for table in doc["tables"]:
        remote = ds.dataset(
            f"{bucket}/{prefix}/{table['directory']}", filesystem=fs, format="parquet"
        )
        assert remote.to_table().equals(pq.read_table(local / table["directory"])), table["name"]
        for f in table["files"]:
            data = fs.open_input_stream(f"{bucket}/{prefix}/{f['path']}").read()
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
    # an export is never merged into another one
    with pytest.raises(Exception, match="not empty"):
        export(LocalSource(backup), f"s3://{bucket}/{prefix}", env=env)
    # a key that may read and list but not write is told the permission it lacks
    user, password = rig_s3.limited_key("read-list")
    with pytest.raises(StorageAuthError, match=r"s3:PutObject") as denied:
        export(LocalSource(backup), f"s3://{bucket}/{rig_s3.unique('zoo-')}",
               env={**env, "S3_USER": user, "S3_PASSWORD": password})  # fmt: skip
    assert denied.value.exit_code == 3 and password not in str(denied.value)


def test_export_of_an_encrypted_backup_equals_the_plain_one(zoo_backup, tmp_path):
    from pyrage import x25519

    from moodump.crypto import encrypt_backup_dir, parse_recipients

    _, backup = zoo_backup
    native = x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"{native}\n")
    enc = tmp_path / "encrypted"
    encrypt_backup_dir(backup, enc, parse_recipients(str(native.to_public())))
    no_key = moodump_cli("export", str(enc), "-o", str(tmp_path / "x"))
    assert no_key.returncode == 13, no_key.stderr
    r = moodump_cli("export", str(enc), "-o", str(tmp_path / "dec"), "--identity", str(key), "-q")
    assert r.returncode == 0, r.stderr
    export(LocalSource(backup), tmp_path / "plain")
    doc = json.loads((tmp_path / "plain" / EXPORT_MANIFEST).read_text())
    for table in doc["tables"]:
        a = pq.read_table(tmp_path / "plain" / table["directory"])
        b = pq.read_table(tmp_path / "dec" / table["directory"])
        assert a.equals(b), table["name"]
