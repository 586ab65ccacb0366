"""The README's main job: `moodump demo` backs up, lists and verifies sample Moodle data."""

from __future__ import annotations

import json

from helpers import moodump_cli
from moodump.manifest import read_done_manifest, read_verify_record


def test_demo_backs_up_lists_and_verifies(tmp_path):
    work = tmp_path / "demo"
    res = moodump_cli("demo", "--workdir", str(work), "--scale", "0.0005", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "verified by restoring into a scratch database: PASS" in res.stdout
    backups = list((work / "backups" / "daily").glob("*/mysql-moodle_*"))
    assert len(backups) == 1
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
