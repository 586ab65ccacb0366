"""The Moodle sample database: the shipped schema, Moodle's DDL, and the generator.

Everything that touches a server uses the session's real MariaDB (``mariadb`` fixture).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.demo.sample import TABLE_COUNT, create_moodle_database, ddl, load_schema, plan
from moodump.demo.sample.schema import type_sql
from moodump.demo.sample.site import (
    BACKUP_ROWS,
    FILE_ROWS,
    GRADE_ROWS,
    LOGSTORE_ROWS,
    SESSION_ROWS,
    STEP_DATA_ROWS,
    USER_ROWS,
)
from moodump.demo.sample.xmldb import read_tree
from moodump.errors import ConfigError, TargetNotEmpty

REPO = Path(__file__).resolve().parent.parent
SCALE = 0.005  # 25 000 log rows: enough for the indexes-after-loading path
TINY = 0.001


def _dataset_dir() -> Path | None:
    for base in (REPO.parent / "shared", REPO / ".." / "shared"):
        candidate = base / "datasets" / "moodle-schema"
        if candidate.is_dir():
            return candidate
    return None


def _load_script(name: str) -> ModuleType:
    path = REPO / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _drop(settings: ConnSettings, name: str) -> None:
    with connect(settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def _column(settings: ConnSettings, db: str, sql: str) -> list[bytes | None]:
    with connect(settings.with_database(db)) as c:
        return [r[0] for r in c.query(sql)]


# -- the shipped schema ---------------------------------------------------------------


def test_shipped_schema_has_all_tables() -> None:
    schema = load_schema()
    names = [t["name"] for t in schema["tables"]]
    assert len(names) == TABLE_COUNT == len(set(names)) == 483
    assert len(schema["files"]) == 84 and schema["files"][0] == "lib/db/install.xml"
    assert schema["source"]["version"] == "2023112400.00"
    assert {"logstore_standard_log", "question_attempt_step_data", "user"} <= set(names)


def test_shipped_schema_matches_xmldb() -> None:
    tree = _dataset_dir()
    if tree is None:
        pytest.skip("shared/datasets/moodle-schema is not beside the repository")
    fresh = read_tree(tree)
    shipped = load_schema()
    assert fresh["files"] == shipped["files"]
    assert fresh["tables"] == shipped["tables"]
    # The build script reproduces the file byte for byte.
    script = _load_script("build_moodle_schema")
    assert script.main([str(tree), "--check"]) == 0


# -- Moodle's DDL (pure) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("xtype", "length", "decimals", "expected"),
    [
        ("int", 10, None, "BIGINT(10)"),
        ("int", 20, None, "BIGINT(20)"),
        ("int", None, None, "BIGINT(10)"),
        ("int", 9, None, "INT(9)"),
        ("int", 7, None, "INT(7)"),
        ("int", 6, None, "MEDIUMINT(6)"),
        ("int", 5, None, "MEDIUMINT(5)"),
        ("int", 4, None, "SMALLINT(4)"),
        ("int", 3, None, "SMALLINT(3)"),
        ("int", 2, None, "TINYINT(2)"),
        ("int", 1, None, "TINYINT(1)"),
        ("char", 255, None, "VARCHAR(255) COLLATE utf8mb4_unicode_ci"),
        ("text", None, None, "LONGTEXT COLLATE utf8mb4_unicode_ci"),
        ("number", 10, 5, "NUMERIC(10,5)"),
        ("number", 10, None, "NUMERIC(10)"),
        ("float", None, None, "DOUBLE"),
        ("float", 11, 4, "FLOAT(11,4)"),
        ("float", 20, 8, "DOUBLE(20,8)"),
        ("binary", None, None, "LONGBLOB"),
    ],
)
def test_type_mapping_follows_moodles_mysql_generator(
    xtype: str, length: int | None, decimals: int | None, expected: str
) -> None:
    assert type_sql(xtype, length, decimals) == expected


def test_ddl_is_moodles() -> None:
    statements = ddl()
    assert len(statements) == 483
    text = "\n".join(statements)
    by_table = {re.match(r"CREATE TABLE `([^`]+)`", s).group(1): s for s in statements}  # type: ignore[union-attr]
    assert all(name.startswith("mdl_") for name in by_table)
    # Moodle creates no foreign keys and no unique constraints on MySQL, only indexes.
    assert "FOREIGN KEY" not in text and "REFERENCES" not in text and "CONSTRAINT" not in text
    # Index names exactly as a real Moodle site has them (getNameForObject).
    user = by_table["mdl_user"]
    for name in ("mdl_user_mneuse_uix", "mdl_user_del_ix", "mdl_user_las2_ix", "mdl_user_las3_ix"):
        assert f"`{name}`" in user
    log = by_table["mdl_logstore_standard_log"]
    assert "KEY `mdl_logsstanlog_tim_ix` (`timecreated`)" in log
    assert "KEY `mdl_logsstanlog_useconconcr_ix`" in log  # cut to 30 characters
    assert "`id` BIGINT(10) NOT NULL auto_increment" in log
    assert "`crud` VARCHAR(1) COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT ''" in log
    assert "`edulevel` TINYINT(1) NOT NULL" in log
    assert "`other` LONGTEXT COLLATE utf8mb4_unicode_ci," in log
    assert "`rawgrade` NUMERIC(10,5)," in by_table["mdl_grade_grades"]
    assert (
        "UNIQUE KEY `mdl_gradgrad_useite_uix` (`userid`, `itemid`)" in by_table["mdl_grade_grades"]
    )
    assert "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci" in log
    assert "ROW_FORMAT=Dynamic COMMENT='Standard log table'" in log
    other = ddl("x_", row_format="Compressed")
    assert all(s.startswith("CREATE TABLE `x_") for s in other)
    assert "ROW_FORMAT=Compressed" in other[0]


def test_plan_is_pure_and_scales() -> None:
    small = {j.name: j.rows for j in plan(0.01)}
    big = {j.name: j.rows for j in plan(0.1)}
    assert len(small) == len(big) == 483
    assert big["mdl_logstore_standard_log"] == 500_000
    assert big["mdl_config"] == small["mdl_config"] == 600  # settings do not scale
    with pytest.raises(ConfigError):
        plan(0)
    with pytest.raises(ConfigError):
        plan(-1)


# -- the generator, against a real server ---------------------------------------------


@pytest.fixture(scope="module")
def generated(root_settings: ConnSettings) -> Iterator[tuple[str, dict[str, int], list[tuple]]]:
    """A database generated at SCALE (Moodle's types: no blobs), with its progress calls."""
    name = "sample_" + uuid.uuid4().hex[:8]
    calls: list[tuple] = []
    rows = create_moodle_database(
        root_settings, name, scale=SCALE, progress=lambda *a: calls.append(a)
    )
    yield name, rows, calls
    _drop(root_settings, name)


def _counts(settings: ConnSettings, db: str, tables: list[str]) -> dict[str, int]:
    sql = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {quote_ident(t)}" for t in tables)
    with connect(settings.with_database(db)) as c:
        return {r[0].decode(): int(r[1]) for r in c.query(sql)}  # type: ignore[union-attr,arg-type]


def test_generated_tables_and_row_counts(
    root_settings: ConnSettings, generated: tuple[str, dict[str, int], list[tuple]]
) -> None:
    db, rows, calls = generated
    assert len(rows) == 483
    assert _counts(root_settings, db, sorted(rows)) == rows
    expected = {
        "mdl_logstore_standard_log": LOGSTORE_ROWS,
        "mdl_question_attempt_step_data": STEP_DATA_ROWS,
        "mdl_grade_grades": GRADE_ROWS,
        "mdl_files": FILE_ROWS,
        "mdl_user": USER_ROWS,
        "mdl_sessions": SESSION_ROWS,
        "mdl_backup_controllers": BACKUP_ROWS,
    }
    for table, at_one in expected.items():
        assert rows[table] == round(at_one * SCALE), table
    # The big tables dominate; many other tables have a few rows, some are empty.
    filled = [t for t, n in rows.items() if n]
    assert 250 < len(filled) < 483
    assert rows["mdl_logstore_standard_log"] > 2 * rows["mdl_question_attempt_step_data"]
    # Progress: every table reported, the last call of each carries its total.
    last = {t: (done, total) for t, done, total in calls}
    assert set(last) == set(rows)
    assert all(done == total == rows[t] for t, (done, total) in last.items())


def test_generated_tables_are_moodles_ddl(
    root_settings: ConnSettings, generated: tuple[str, dict[str, int], list[tuple]]
) -> None:
    """Loading big tables without their indexes and adding them after gives the same
    tables as ddl() (SHOW CREATE TABLE equal but for the AUTO_INCREMENT counter)."""
    db, rows, _calls = generated
    ref = "ddl_" + uuid.uuid4().hex[:8]
    with connect(root_settings) as c:
        c.execute(f"CREATE DATABASE {ref} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        with connect(root_settings.with_database(ref)) as c:
            for sql in ddl():
                c.execute(sql)

        def shapes(name: str) -> dict[str, str]:
            with connect(root_settings.with_database(name)) as c:
                out = {}
                for t in sorted(rows):
                    text = c.query(f"SHOW CREATE TABLE {quote_ident(t)}")[0][1]
                    assert text is not None
                    out[t] = re.sub(r" AUTO_INCREMENT=\d+", "", text.decode())
                return out

        assert shapes(db) == shapes(ref)
    finally:
        _drop(root_settings, ref)
    with connect(root_settings) as c:
        fks = c.scalar(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS "
            f"WHERE CONSTRAINT_SCHEMA='{db}'"
        )
    assert fks == b"0"


def test_generated_site_facts(
    root_settings: ConnSettings, generated: tuple[str, dict[str, int], list[tuple]]
) -> None:
    db, _rows, _calls = generated
    with connect(root_settings.with_database(db)) as c:
        config = dict(
            c.query("SELECT name, value FROM mdl_config WHERE name IN ('version','release')")
        )
        assert config == {b"version": b"2023112400.00", b"release": b"4.4dev (Build: 20231124)"}
        assert c.query("SELECT id, auth FROM mdl_user WHERE username='admin'") == [
            (b"2", b"manual")
        ]
        assert c.scalar("SELECT username FROM mdl_user WHERE id=1") == b"guest"
        assert c.scalar("SELECT format FROM mdl_course WHERE id=1") == b"site"
        nulls, total = c.query("SELECT SUM(rawgrade IS NULL), COUNT(*) FROM mdl_grade_grades")[0]
        assert 0 < int(nulls or 0) < int(total or 0)
        assert re.fullmatch(
            rb"\d{1,3}\.\d{5}", c.scalar("SELECT MAX(rawgrade) FROM mdl_grade_grades") or b""
        )
        big = c.scalar("SELECT MAX(filesize) FROM mdl_files")
        assert int(big or 0) > 2**32  # BIGINT sizes beyond 4 GiB
        assert re.fullmatch(
            rb"[0-9a-f]{40}", c.scalar("SELECT contenthash FROM mdl_files LIMIT 1") or b""
        )
        controller = c.scalar("SELECT controller FROM mdl_backup_controllers WHERE id=1") or b""
        assert b"\0*\0backupid" in base64.b64decode(controller)  # Moodle's base64 LONGTEXT
        sess = c.scalar("SELECT AVG(LENGTH(sessdata)) FROM mdl_sessions")
        assert 900 < float(sess or 0) < 1600


def test_generated_text_is_tricky(
    root_settings: ConnSettings, generated: tuple[str, dict[str, int], list[tuple]]
) -> None:
    db, _rows, _calls = generated
    names = _column(root_settings, db, "SELECT CONCAT(firstname, '|', lastname) FROM mdl_user")
    descriptions = _column(root_settings, db, "SELECT description FROM mdl_user")
    answers = _column(root_settings, db, "SELECT value FROM mdl_question_attempt_step_data")
    events = _column(root_settings, db, "SELECT eventname FROM mdl_logstore_standard_log")
    blob = b"\n".join(v for v in names + descriptions + answers if v is not None)
    for needle in ("😀", "🎓", "é", "美咲", "محمد", "Иван", "'", '"', "\\", "\t", "\r\n"):
        assert needle.encode() in blob, needle
    assert any(v is not None and b"\x00" in v for v in answers)  # a NUL inside text
    assert None in descriptions and None in answers  # SQL NULLs
    assert b"\\core\\event\\course_viewed" in set(events)


def test_generation_is_deterministic_with_blobs(root_settings: ConnSettings) -> None:
    """Two generations at the same scale are identical, table by table; blobs mode stores
    raw bytes, including the ones every dump format must escape."""
    names = ["det_" + uuid.uuid4().hex[:8] for _ in range(2)]
    try:
        sums = []
        for name in names:
            rows = create_moodle_database(root_settings, name, scale=TINY, blobs=True, workers=2)
            tables = ", ".join(quote_ident(t) for t in sorted(rows))
            with connect(root_settings.with_database(name)) as c:
                sums.append(
                    [(r[0].split(b".")[1], r[1]) for r in c.query(f"CHECKSUM TABLE {tables}")]
                )  # type: ignore[union-attr]
        assert len(sums[0]) == 483
        assert sums[0] == sums[1]
        assert sum(1 for _t, s in sums[0] if s not in (b"0", None)) > 250
        with connect(root_settings.with_database(names[0])) as c:
            kind = c.scalar(
                "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=DATABASE() "
                "AND TABLE_NAME='mdl_backup_controllers' AND COLUMN_NAME='controller'"
            )
            blobs = [r[0] or b"" for r in c.query("SELECT controller FROM mdl_backup_controllers")]
        assert kind == b"longblob"
        assert all(2048 <= len(b) <= 40000 for b in blobs)
        for byte in (b"\x00", b"'", b"\\", b"\n", b"\r", b"\t", b"\xff"):
            assert all(byte in b for b in blobs), byte
    finally:
        for name in names:
            _drop(root_settings, name)


def test_refuses_a_database_with_tables(root_settings: ConnSettings, fresh_db: str) -> None:
    with connect(root_settings.with_database(fresh_db)) as c:
        c.execute("CREATE TABLE keep (id INT PRIMARY KEY)")
    with pytest.raises(TargetNotEmpty):
        create_moodle_database(root_settings, fresh_db, scale=TINY)
    with connect(root_settings.with_database(fresh_db)) as c:
        assert c.query("SHOW TABLES") == [(b"keep",)]


def test_benchmark_cli_smoke(root_settings: ConnSettings, tmp_path: Path) -> None:
    script = _load_script("generate")
    name = "cli_" + uuid.uuid4().hex[:8]
    out = tmp_path / "sizes.json"
    try:
        code = script.main(
            ["--scale", "0.0005", "--port", str(root_settings.port), "--database", name,
             "--json", str(out)]
        )  # fmt: skip
        assert code == 0
        report = json.loads(out.read_text())
        assert len(report["tables"]) == 483
        assert report["tables"]["mdl_logstore_standard_log"]["rows"] == 2500
        assert report["data_length"] > 0 and report["elapsed_s"] > 0
    finally:
        _drop(root_settings, name)


def test_pg_ddl_is_moodles_postgres_schema() -> None:
    """The same 483 tables as Moodle's pgsql generator creates them (benchmarks/pg.py
    loads the sample into PostgreSQL with them)."""
    from moodump.demo.sample.schema import pg_ddl, pg_type_sql

    tables = {name: (create, indexes) for name, create, indexes in pg_ddl()}
    assert len(tables) == 483
    create, indexes = tables["mdl_logstore_standard_log"]
    assert '"id" BIGSERIAL' in create
    assert 'CONSTRAINT "mdl_logsstanlog_id_pk" PRIMARY KEY ("id")' in create
    assert '"crud" VARCHAR(1) NOT NULL DEFAULT \'\'' in create
    assert '"edulevel" SMALLINT NOT NULL' in create
    assert '"other" TEXT,' in create
    assert (
        'CREATE INDEX "mdl_logsstanlog_tim_ix" ON "mdl_logstore_standard_log" ("timecreated")'
        in indexes
    )
    grades, gindexes = tables["mdl_grade_grades"]
    assert '"rawgrade" NUMERIC(10,5)' in grades
    assert any(i.startswith('CREATE UNIQUE INDEX "mdl_gradgrad_useite_uix"') for i in gindexes)
    # the index names are those of the MariaDB tables (one name cache for both)
    mysql_names = set(re.findall(r"KEY `([^`]+)`", "\n".join(ddl())))
    pg_names = {re.search(r'INDEX "([^"]+)"', i).group(1) for _c, idx in tables.values() for i in idx}  # type: ignore[union-attr]
    assert pg_names == mysql_names
    assert [pg_type_sql("int", n, None) for n in (2, 4, 5, 9, 10, None)] == [
        "SMALLINT", "SMALLINT", "INTEGER", "INTEGER", "BIGINT", "BIGINT",
    ]  # fmt: skip
    assert pg_type_sql("float", 11, 4) == "REAL" and pg_type_sql("float", None, None) == (
        "DOUBLE PRECISION"
    )
