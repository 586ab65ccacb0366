"""Full verify checks Moodle's site administrators by id (``siteadmins``), not by name.

A hardened site renames its ``admin`` account; verify must still pass. A site
administrator whose user row is gone (or deleted) fails verification, naming the id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.demo.sample import create_moodle_database
from moodump.dump import DumpOptions, dump
from moodump.verify import verify


@pytest.fixture(scope="module")
def moodle(root_settings: ConnSettings) -> Iterator[str]:
    name = "t_moodle_admins"
    create_moodle_database(root_settings, name, scale=0.0005, drop_existing=True)
    yield name
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def _sql(settings: ConnSettings, db: str, *statements: str) -> None:
    with connect(settings.with_database(db)) as c:
        for s in statements:
            c.execute(s)


def test_renamed_admin_passes_and_a_missing_siteadmin_fails_by_id(
    moodle: str, root_settings: ConnSettings, tmp_path: Path
) -> None:
    # The administrator (id 2, the one siteadmins names) was renamed: a hardened site.
    _sql(
        root_settings, moodle,
        "UPDATE mdl_user SET username = 'ops-7f3a' WHERE id = 2",
        "UPDATE mdl_config SET value = '2' WHERE name = 'siteadmins'",
    )  # fmt: skip
    renamed = dump(root_settings, moodle, tmp_path / "renamed", DumpOptions(threads=2)).path
    report = verify(renamed, settings=root_settings)
    assert report.passed, report.problems
    assert report.moodle is not None
    assert report.moodle["siteadmins"] == ["2"] and report.moodle["siteadmins_missing"] == []
    assert report.moodle["admin_user"] is True

    # A second administrator (id 4) whose account was deleted, and one (id 987654) whose
    # row is gone entirely: verification fails and names both ids.
    _sql(
        root_settings, moodle,
        "UPDATE mdl_user SET deleted = 1 WHERE id = 4",
        "DELETE FROM mdl_user WHERE id = 987654",
        "UPDATE mdl_config SET value = '2,4,987654' WHERE name = 'siteadmins'",
    )  # fmt: skip
    broken = dump(root_settings, moodle, tmp_path / "broken", DumpOptions(threads=2)).path
    report = verify(broken, settings=root_settings)
    assert not report.passed
    assert report.moodle is not None and report.moodle["siteadmins_missing"] == ["4", "987654"]
    problem = next(p for p in report.problems if "site administrator" in p)
    assert "4, 987654" in problem and "mdl_user" in problem
