"""The README's main job: `moodump demo` backs up, lists and verifies sample Moodle data."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from helpers import moodump_cli
from moodump.demo import demo_config, demo_target
from moodump.manifest import read_done_manifest, read_verify_record
from moodump.naming import parse_backup_name, tier_for


@pytest.mark.db  # the demo starts its own MariaDB server
def test_demo_backs_up_lists_and_verifies(tmp_path):
    work = tmp_path / "demo"
    res = moodump_cli("demo", "--workdir", str(work), "--scale", "0.0005", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "verified by restoring into a scratch database: PASS" in res.stdout
    # The tier folder depends on the day the test runs (weekly on Sundays, monthly on a
    # month's last day): derive the expected one from the backup's own name.
    backups = list((work / "backups").glob("*/*/mysql-moodle_*"))
    assert len(backups) == 1, backups
    parsed = parse_backup_name(backups[0].name)
    assert parsed is not None
    cfg = demo_config(work)
    assert backups[0].parent.parent.name == tier_for(parsed[1].date(), cfg.retention)
    assert backups[0].parent.name == parsed[1].strftime("%Y-%m-%d")
    m = read_done_manifest(backups[0])
    assert len(m.tables) == 483 and m.moodle and m.moodle["admin_user"]
    record = read_verify_record(backups[0])
    assert record is not None and record.passed and record.method == "restore"
    assert "mysql-moodle" in res.stdout and "PASS" in res.stdout  # the listing
    listing = moodump_cli(
        "list",
        "--json",
        env={"BACKUP_DIR": str(work / "backups"), "BACKUP_CONF": str(work / "backup.conf")},
    )
    assert listing.returncode == 0, listing.stderr
    doc = json.loads(listing.stdout)
    assert doc["databases"][0]["backups"][0]["status"] == "DONE"


@pytest.mark.parametrize(
    ("when", "tier"),
    [
        (datetime(2026, 12, 8, 12, 0, 0, tzinfo=timezone.utc), "daily"),  # a Tuesday
        (datetime(2026, 12, 6, 3, 0, 0, tzinfo=timezone.utc), "weekly"),  # a Sunday
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=timezone.utc), "monthly"),  # last day, Monday
        (datetime(2026, 5, 31, 0, 0, 0, tzinfo=timezone.utc), "monthly"),  # last day and Sunday
        (datetime(2028, 2, 29, 1, 0, 0, tzinfo=timezone.utc), "monthly"),  # leap day
    ],
)
def test_demo_tier_follows_the_injected_clock(tmp_path: Path, when: datetime, tier: str) -> None:
    cfg = demo_config(tmp_path)
    out = demo_target(cfg, when)
    assert out.parent.parent == tmp_path / "backups" / tier
    assert out.parent.name == when.strftime("%Y-%m-%d")
    assert out.name == "mysql-moodle_" + when.strftime("%Y-%m-%d_%H-%M-%S")


def test_demo_rejects_a_bad_clock(tmp_path: Path) -> None:
    res = moodump_cli("demo", "--workdir", str(tmp_path / "d"), "--at", "yesterday")
    assert res.returncode == 2
    assert "--at" in res.stderr


@pytest.mark.db
@pytest.mark.parametrize(
    ("clock", "tier"),
    [("2026-11-30 12:00:00", "monthly"), ("2026-12-06 03:00:00", "weekly")],
)
def test_demo_under_a_faked_wall_clock(tmp_path: Path, clock: str, tier: str) -> None:
    """The real clock path, on a month's last day and on a Sunday (libfaketime): the suite
    used to fail on exactly these days."""
    import shutil
    import subprocess
    import sys

    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.fail("faketime is not installed: apt-get install faketime (scripts/test.sh does)")
    work = tmp_path / "demo"
    res = subprocess.run(
        [faketime, clock, sys.executable, "-m", "moodump", "demo", "--workdir", str(work),
         "--scale", "0.0005"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**__import__("os").environ, "TZ": "UTC"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    (backup,) = (work / "backups").glob("*/*/mysql-moodle_*")
    assert backup.parent.parent.name == tier
    assert backup.parent.name == clock[:10]
