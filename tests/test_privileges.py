"""Grant parsing (pure) and the dump's fail-closed privilege check (real accounts)."""

from __future__ import annotations

import pytest

from moodump.db import connect
from moodump.db.privileges import database_privileges, parse_grants
from moodump.dump import DumpOptions, dump
from moodump.errors import PrivilegeError


def test_parse_mariadb_and_mysql_grants():
    grants = parse_grants(
        [
            "GRANT USAGE ON *.* TO `moodle`@`%` IDENTIFIED BY PASSWORD '*ABC'",
            "GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON `moodle`.* TO `moodle`@`%`",
            "GRANT SELECT (`a`, `b`), INSERT ON `other`.`t` TO `moodle`@`%`",
            "GRANT ALL PRIVILEGES ON `lms\\_%`.* TO `moodle`@`%`",
            "GRANT `backup_role` TO `moodle`@`%`",
        ]
    )
    assert database_privileges(grants, "moodle") >= {"SELECT", "TRIGGER", "EVENT", "SHOW VIEW"}
    assert "SELECT" not in database_privileges(grants, "other")
    assert "EXECUTE" in database_privileges(grants, "lms_prod")
    assert "SELECT" not in database_privileges(grants, "lmsXprod")  # \_ is a literal _


def _account(c, name, grants):
    c.execute(f"DROP USER IF EXISTS '{name}'@'%'")
    c.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}'")
    for g in grants:
        c.execute(g.format(user=f"'{name}'@'%'"))


def test_table_level_grants_fail_closed(root_settings, fresh_db, tmp_path):
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.seen (id INT PRIMARY KEY)")
        c.execute(f"CREATE TABLE `{fresh_db}`.hidden (id INT PRIMARY KEY)")
        _account(c, "tblonly", [f"GRANT SELECT ON `{fresh_db}`.seen TO {{user}}"])
    s = root_settings.__class__(port=root_settings.port, user="tblonly", password="pw-tblonly")
    with pytest.raises(PrivilegeError) as err:
        dump(s, fresh_db, tmp_path / "b", DumpOptions(threads=1, routines=False))
    assert "SELECT ON" in str(err.value)
    assert not (tmp_path / "b").exists()
    # naming the tables explicitly is the user's informed choice
    m = dump(s, fresh_db, tmp_path / "c", DumpOptions(threads=1, tables=("seen",))).manifest
    assert [t.name for t in m.tables] == ["seen"]


def test_missing_trigger_privilege_fails_unless_no_routines(root_settings, fresh_db, tmp_path):
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
        c.execute(f"CREATE TABLE `{fresh_db}`.t2 (id INT PRIMARY KEY)")
        _account(
            c,
            "notrig",
            [f"GRANT SELECT, LOCK TABLES, SHOW VIEW, EVENT ON `{fresh_db}`.* TO {{user}}"],
        )
    s = root_settings.__class__(port=root_settings.port, user="notrig", password="pw-notrig")
    with pytest.raises(PrivilegeError) as err:
        dump(s, fresh_db, tmp_path / "b", DumpOptions(threads=2))
    assert "TRIGGER" in str(err.value) and "--no-objects" in str(err.value)
    m = dump(s, fresh_db, tmp_path / "c", DumpOptions(threads=2, routines=False)).manifest
    assert m.status == "DONE" and m.snapshot["method"] == "lock-tables"


def test_moodle_style_account_dumps_with_a_routine_warning(root_settings, fresh_db, tmp_path):
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
        _account(
            c,
            "moodleacct",
            [f"GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON `{fresh_db}`.* TO {{user}}"],
        )
    s = root_settings.__class__(
        port=root_settings.port, user="moodleacct", password="pw-moodleacct"
    )
    m = dump(s, fresh_db, tmp_path / "b", DumpOptions(threads=2)).manifest
    assert m.status == "DONE"
    assert any("routine" in n for n in m.notes) and not m.warnings
