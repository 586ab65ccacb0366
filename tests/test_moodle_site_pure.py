"""Pure parts of the Moodle features (no server): the staging rules against Moodle's
schema, and the file-store cross-check on synthetic rows and a tiny filedir."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from moodump.demo.sample.schema import tables
from moodump.errors import ConfigError, NotFoundError
from moodump.moodlesite.filestore import EMPTY_SHA1, HashPlan, check_filestore, content_path
from moodump.moodlesite.rules import RULES, plan_scrub, rule_sql


def _schema(prefix: str = "mdl_") -> dict[str, list[str]]:
    return {prefix + t["name"]: [f[0] for f in t["fields"]] for t in tables()}


def test_every_staging_rule_applies_to_moodles_schema() -> None:
    plan = plan_scrub(_schema("m2_"), "m2_")
    assert plan.rules == RULES and plan.skipped == ()


def test_a_missing_column_or_core_table_fails_naming_it() -> None:
    schema = _schema()
    schema["mdl_user"] = [c for c in schema["mdl_user"] if c != "password"]
    del schema["mdl_sessions"]
    with pytest.raises(ConfigError) as exc:
        plan_scrub(schema, "mdl_")
    assert "mdl_user has no column password" in str(exc.value)
    assert "table mdl_sessions is missing" in str(exc.value)


def test_an_absent_plugin_table_is_skipped_but_a_present_one_needs_its_column() -> None:
    schema = _schema()
    del schema["mdl_tool_mfa"]
    plan = plan_scrub(schema, "mdl_")
    assert [r.table for r in plan.skipped] == ["tool_mfa"]
    schema = _schema()
    schema["mdl_tool_mfa"].remove("secret")
    with pytest.raises(ConfigError, match="mdl_tool_mfa has no column secret"):
        plan_scrub(schema, "mdl_")


def test_rule_sql() -> None:
    by = {(r.table, r.column): r for r in RULES}
    assert rule_sql(by["user", "email"], "db", "x_") == (
        "UPDATE `db`.`x_user` SET `email` = CONCAT('user', `id`, '@example.invalid') "
        "WHERE `email` IS NOT NULL AND `email` <> ''"
    )
    assert rule_sql(by["user", "password"], "db", "x_").endswith("SET `password` = 'not cached' "
                                                                 "WHERE `password` IS NOT NULL")  # fmt: skip
    assert rule_sql(by["sessions", "sid"], "db", "x_") == "DELETE FROM `db`.`x_sessions`"
    assert "ON DUPLICATE KEY UPDATE" in rule_sql(by["config", "noemailever"], "db", "x_")


# -- the file store ----------------------------------------------------------------------
def _store(root: Path, n: int) -> list[str]:
    out = []
    for k in range(n):
        data = f"file {k}".encode()
        h = hashlib.sha1(data).hexdigest()
        p = content_path(root / "filedir", h)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out.append(h)
    return out


def test_filestore_findings(tmp_path: Path) -> None:
    hashes = _store(tmp_path, 40)
    rows = [(h.encode(), b"a.pdf") for h in hashes] * 2  # every content twice
    rows += [(EMPTY_SHA1.encode(), b"."), (EMPTY_SHA1.encode(), b"empty.txt"), (b"nothex", b"x")]
    gone = hashlib.sha1(b"gone").hexdigest()
    rows.append((gone.encode(), b"gone.pdf"))
    (tmp_path / "filedir" / "warning.txt").write_text("not a content file")
    (tmp_path / "trashdir" / "ab" / "cd").mkdir(parents=True)  # never read
    orphan = hashlib.sha1(b"nobody's").hexdigest()
    content_path(tmp_path / "filedir", orphan).parent.mkdir(parents=True, exist_ok=True)
    content_path(tmp_path / "filedir", orphan).write_bytes(b"nobody's")
    bad = content_path(tmp_path / "filedir", hashes[5])
    bad.write_bytes(b"changed")

    r = check_filestore(lambda: rows, tmp_path, source="test", prefix="mdl_",
                        plan=HashPlan("all"))  # fmt: skip
    assert (r.rows, r.directory_rows, r.referenced, r.present) == (83, 1, 41, 41)
    assert [e["contenthash"] for e in r.missing.examples] == [gone]
    assert [e["contenthash"] for e in r.corrupt.examples] == [hashes[5]]
    assert [e["contenthash"] for e in r.orphans.examples] == [orphan]
    assert r.invalid_rows.count == 1 and r.hashed == 40 and not r.passed


def test_sample_is_seeded_and_recorded(tmp_path: Path) -> None:
    hashes = _store(tmp_path, 30)
    rows = [(h.encode(), b"f") for h in hashes]
    plan = HashPlan.of(False, 5, None)
    assert plan.seed is not None
    r = check_filestore(lambda: rows, tmp_path, source="t", prefix="mdl_", plan=plan)
    assert (r.passed, r.hashed, r.seed) == (True, 5, plan.seed)
    with pytest.raises(ConfigError):
        HashPlan.of(True, 5, None)
    with pytest.raises(NotFoundError, match="not a Moodle dataroot"):
        check_filestore(lambda: rows, tmp_path / "nope", source="t", prefix="mdl_")
