"""Grant parsing (pure) and the dump's fail-closed privilege check (real accounts)."""

from __future__ import annotations

import pytest

from moodump.db import connect
from moodump.db.privileges import (
    database_privileges,
    global_privileges,
    like_pattern,
    parse_grants,
)
from moodump.ddl import definer_of
from moodump.dump import DumpOptions, dump
from moodump.errors import PrivilegeError
from moodump.restore import RestoreOptions, restore
from moodump.verify import verify


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


def test_restore_of_other_definers_objects_is_refused_before_the_target_is_touched(
    root_settings, fresh_db, tmp_path
):
    """A routine, view or trigger of another DEFINER needs SET USER (or SUPER) to be
    created: an account without it loaded every table, then failed on the first such
    object (exit 4, target half-restored), and a view of another definer was left out
    with a warning only. Refused before anything is written, naming the privilege."""
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
        c.execute(f"INSERT INTO `{fresh_db}`.t VALUES (1)")
        c.execute(f"CREATE DEFINER = `nobody_here`@`%` VIEW `{fresh_db}`.v AS SELECT 1 AS a")
    m = dump(root_settings, fresh_db, tmp_path / "b", DumpOptions(threads=1)).manifest
    target = fresh_db + "_r"
    with connect(root_settings) as c:
        _account(c, "restorer", [f"GRANT ALL PRIVILEGES ON `{target}`.* TO {{user}}"])
    s = root_settings.__class__(port=root_settings.port, user="restorer", password="pw-restorer")
    try:
        with pytest.raises(PrivilegeError) as err:
            restore(tmp_path / "b", s, target, RestoreOptions())
        assert "SET USER" in str(err.value) and "nobody_here" in str(err.value)
        assert "--no-objects" in str(err.value)
        with connect(root_settings) as c:
            assert not c.query(f"SHOW DATABASES LIKE '{target}'")
        # Without the objects, the same account restores the tables.
        restore(tmp_path / "b", s, target, RestoreOptions(objects=False))
        assert m.status == "DONE"
    finally:
        with connect(root_settings) as c:
            c.execute(f"DROP DATABASE IF EXISTS `{target}`")
            c.execute("DROP USER IF EXISTS 'restorer'@'%'")


def test_global_privileges_and_definers_are_parsed():
    assert global_privileges(
        ["GRANT SET USER ON *.* TO `a`@`%`", "GRANT ALL PRIVILEGES ON `db`.* TO `a`@`%`"]
    ) == {"SET USER"}
    assert global_privileges(["GRANT `r` TO `a`@`%`", "GRANT USAGE ON *.* TO `a`@`%`"]) is None
    assert definer_of(b"CREATE DEFINER=`a``b`@`%` VIEW v AS SELECT 1") == ("a`b", "%")
    assert definer_of(b'CREATE DEFINER="u"@"h" TRIGGER t') == ("u", "h")
    assert definer_of(b"CREATE DEFINER='u'@'localhost' PROCEDURE p() SELECT 1") == (
        "u",
        "localhost",
    )
    assert definer_of(b"CREATE DEFINER=CURRENT_USER PROCEDURE p() SELECT 1") is None


def test_restore_atomic_and_verify_name_the_databases_to_grant(root_settings, fresh_db, tmp_path):
    """An account with privileges on the target only: --atomic failed on CREATE DATABASE
    of its staging database (error 1044, "grant the missing privilege"), and verify
    asked for privileges on its random scratch name (`moodump_verify_3f2a...`), which no
    one can grant ahead. Both name the pattern to grant now, before anything is written."""
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    target = fresh_db + "_r"
    with connect(root_settings) as c:
        _account(c, "onlytarget", [f"GRANT ALL ON `{target}`.* TO {{user}}"])
    s = root_settings.__class__(
        port=root_settings.port, user="onlytarget", password="pw-onlytarget"
    )
    try:
        with pytest.raises(PrivilegeError) as err:
            restore(out, s, target, RestoreOptions(atomic=True))
        assert f"`{like_pattern(target)}\\_\\_md%`.*" in str(err.value)
        with connect(root_settings) as c:
            assert c.query(f"SHOW DATABASES LIKE '{fresh_db}%'") == [(fresh_db.encode(),)]
        with pytest.raises(PrivilegeError) as err:
            verify(out, settings=s)
        assert "ON `moodump\\_verify\\_%`.*" in err.value.hint
        with connect(root_settings) as c:
            c.execute("GRANT ALL ON `moodump\\_verify\\_%`.* TO 'onlytarget'@'%'")
        assert verify(out, settings=s).passed
    finally:
        with connect(root_settings) as c:
            c.execute("DROP USER IF EXISTS 'onlytarget'@'%'")
            c.execute(f"DROP DATABASE IF EXISTS `{target}`")
