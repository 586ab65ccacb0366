"""Layout: names, tiers, target folders, scanning real directories, deleting, listing."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moodump.catalog import delete_backup, group_by_database, listing_json, prune, scan_backups
from moodump.errors import StorageError
from moodump.manifest import FileEntry, Manifest, TableEntry, VerifyRecord
from moodump.naming import (
    age_text,
    backup_name,
    core_name,
    parse_backup_name,
    target_dir,
    target_dir_for,
    tier_for,
)
from moodump.retention import RetentionPolicy

VAN = ZoneInfo("America/Vancouver")
PST8PDT = ZoneInfo("PST8PDT")
ROLLING = RetentionPolicy.resolve("rolling", num_backups=31, daily=6, weekly=4, monthly=1)
DAILY = RetentionPolicy.resolve("daily", num_backups=3, daily=6, weekly=4, monthly=1)


def make_backup(
    root: Path,
    folder: str,
    name: str,
    *,
    status: str | None = "DONE",
    rows: int = 10,
    data: bytes = b"x" * 1000,
    verify: str | None = None,
    started_at: str = "",
) -> Path:
    """A real backup directory: one data file and a manifest (written by moodump's types)."""
    path = root / folder / name
    path.mkdir(parents=True)
    (path / "t.00000.tsv.gz").write_bytes(data)
    if status is not None:
        m = Manifest(
            database=name.rsplit("_", 2)[0].split("-", 1)[1],
            status=status,
            host=name.split("-", 1)[0],
            started_at=started_at,
            tables=[TableEntry(name="t", rows=rows)],
            files=[
                FileEntry("t.00000.tsv.gz", len(data), hashlib.sha256(data).hexdigest(), "data")
            ],
        )
        (path / "manifest.json").write_text(m.to_json(), encoding="utf-8")
    if verify is not None:
        rec = VerifyRecord(status=verify, method="offline", at="2026-06-02T10:00:00Z", duration_s=1)
        (path / "verify.json").write_text(rec.to_json(), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- names


def test_backup_name_matches_old_format() -> None:
    when = datetime(2026, 3, 8, 3, 0, 5, tzinfo=VAN)
    assert backup_name("mysql", "moodle", when) == "mysql-moodle_2026-03-08_03-00-05"
    assert core_name("mysql-0.mysql", "moodle") == "mysql-0.mysql-moodle"


@pytest.mark.parametrize(
    ("name", "core", "stamp"),
    [
        ("mysql-moodle_2026-03-08_03-00-05", "mysql-moodle", "2026-03-08 03:00:05"),
        ("db-moodle_archive_2026-01-02_01-00-00", "db-moodle_archive", "2026-01-02 01:00:00"),
        ("mysql-0.mysql-moodle_2026-01-02_01-00-00", "mysql-0.mysql-moodle", "2026-01-02 01:00:00"),
        ("mysql-moodle_2024-10-19_09-00-01.sql.gz", "mysql-moodle", "2024-10-19 09:00:01"),
        (
            "mysql-moodle_2024-10-19_09-00-01.sql.gz.in_progress",
            "mysql-moodle",
            "2024-10-19 09:00:01",
        ),
    ],
)
def test_parse_backup_name(name: str, core: str, stamp: str) -> None:
    parsed = parse_backup_name(name)
    assert parsed is not None
    assert parsed[0] == core
    assert str(parsed[1]) == stamp


@pytest.mark.parametrize(
    "name",
    ["lost+found", ".moodump.lock", "mysql-moodle", "mysql-moodle_2026-13-40_01-00-00", "x_2026"],
)
def test_parse_backup_name_rejects(name: str) -> None:
    assert parse_backup_name(name) is None


# --------------------------------------------------------------------------- tiers

M0 = RetentionPolicy.resolve("rolling", num_backups=31, daily=6, weekly=4, monthly=0)
W0 = RetentionPolicy.resolve("rolling", num_backups=31, daily=6, weekly=0, monthly=1)


@pytest.mark.parametrize(
    ("day", "policy", "tier"),
    [
        (date(2026, 6, 2), ROLLING, "daily"),  # Tuesday
        (date(2026, 6, 7), ROLLING, "weekly"),  # Sunday
        (date(2026, 6, 30), ROLLING, "monthly"),  # Tuesday, month end
        (date(2026, 5, 31), ROLLING, "monthly"),  # Sunday AND month end: monthly wins
        (date(2027, 2, 28), ROLLING, "monthly"),  # Sunday, February month end
        (date(2028, 2, 28), ROLLING, "daily"),  # leap year: not the month end
        (date(2028, 2, 29), ROLLING, "monthly"),  # leap day
        (date(2026, 12, 31), ROLLING, "monthly"),
        (date(2026, 5, 31), M0, "weekly"),  # MONTHLY=0: the Sunday rule applies
        (date(2026, 6, 30), M0, "daily"),
        (date(2026, 6, 7), W0, "daily"),  # fix: WEEKLY=0 no longer means "weekly, keep 0"
        (date(2026, 6, 7), DAILY, None),  # daily strategy: flat folders
    ],
)
def test_tier_for(day: date, policy: RetentionPolicy, tier: str | None) -> None:
    assert tier_for(day, policy) == tier


def test_target_dir_both_layouts(tmp_path: Path) -> None:
    when = datetime(2026, 5, 31, 9, 0, 0, tzinfo=PST8PDT)
    assert target_dir(tmp_path, "daily", None, when, "mysql", "moodle") == (
        tmp_path / "2026-05-31" / "mysql-moodle_2026-05-31_09-00-00"
    )
    assert target_dir(tmp_path, "rolling", "weekly", when, "mysql", "moodle") == (
        tmp_path / "weekly" / "2026-05-31" / "mysql-moodle_2026-05-31_09-00-00"
    )
    assert target_dir_for(tmp_path, ROLLING, when, "mysql", "moodle").parts[-3] == "monthly"
    with pytest.raises(ValueError):
        target_dir(tmp_path, "rolling", None, when, "mysql", "moodle")
    with pytest.raises(ValueError):
        target_dir(tmp_path, "hourly", None, when, "mysql", "moodle")


# --------------------------------------------------------------------------- scanning


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "backups"
    make_backup(root, "daily/2026-06-01", "mysql-moodle_2026-06-01_01-00-00", verify="PASS")
    make_backup(root, "daily/2026-06-02", "mysql-moodle_2026-06-02_01-00-00", verify="FAIL")
    make_backup(root, "weekly/2026-06-07", "mysql-moodle_2026-06-07_01-00-00")
    make_backup(root, "daily/2026-06-08", "mysql-moodle_2026-06-08_01-00-00", status="FAILED")
    make_backup(root, "daily/2026-06-09", "mysql-moodle_2026-06-09_01-00-00", status="STARTED")
    make_backup(root, "daily/2026-06-10", "mysql-moodle_2026-06-10_01-00-00", status=None)
    bad = make_backup(root, "daily/2026-06-10", "mysql-moodle_2026-06-10_02-00-00", status=None)
    (bad / "manifest.json").write_text("{not json", encoding="utf-8")
    make_backup(root, "daily/2026-06-10", "mysql-moodle_archive_2026-06-10_01-00-00", rows=7)
    make_backup(root, "2026-05-20", "mysql-moodle_2026-05-20_01-00-00")  # flat (daily strategy)
    legacy = root / "daily" / "2024-10-19"
    legacy.mkdir(parents=True)
    (legacy / "mysql-moodle_2024-10-19_09-00-01.sql.gz").write_bytes(b"\x1f\x8b" + b"0" * 98)
    (legacy / "mysql-moodle_2024-10-20_09-00-01.sql.gz.in_progress").write_bytes(b"\x1f\x8b")
    # things that are not backups
    (root / ".moodump.lock").write_text("pid 1")
    (root / "lost+found").mkdir()
    (root / "daily" / "notes.txt").write_text("hello")
    (root / "daily" / "2026-06-01" / "README").write_text("x")
    (root / "daily" / "2026-06-01" / ".hidden_2026-06-01_01-00-00").mkdir()
    (root / "monthly" / "not-a-date").mkdir(parents=True)
    return root


def test_scan_finds_every_backup_and_nothing_else(tree: Path) -> None:
    found = scan_backups(tree, VAN)
    names = [b.name for b in found]
    assert len(names) == 11
    assert "README" not in names and "notes.txt" not in names
    by_name = {b.name: b for b in found}

    b = by_name["mysql-moodle_2026-06-01_01-00-00"]
    assert (b.core, b.tier, b.status, b.verify_status, b.verified) == (
        "mysql-moodle",
        "daily",
        "DONE",
        "PASS",
        True,
    )
    assert b.when == datetime(2026, 6, 1, 1, tzinfo=VAN)
    assert b.when.utcoffset() == timedelta(hours=-7)
    assert b.rows == 10 and b.database == "moodle" and b.host == "mysql"
    assert b.size_bytes == sum(f.stat().st_size for f in b.path.iterdir())

    assert by_name["mysql-moodle_2026-06-02_01-00-00"].verified is False  # FAIL
    assert by_name["mysql-moodle_2026-06-07_01-00-00"].tier == "weekly"
    assert by_name["mysql-moodle_2026-06-08_01-00-00"].status == "FAILED"
    assert by_name["mysql-moodle_2026-06-09_01-00-00"].status == "STARTED"
    assert by_name["mysql-moodle_2026-06-10_01-00-00"].status == "MISSING"
    invalid = by_name["mysql-moodle_2026-06-10_02-00-00"]
    assert invalid.status == "INVALID" and invalid.error
    assert by_name["mysql-moodle_2026-05-20_01-00-00"].tier is None
    old = by_name["mysql-moodle_2024-10-19_09-00-01.sql.gz"]
    assert old.legacy and old.status == "DONE" and old.size_bytes == 100
    partial = by_name["mysql-moodle_2024-10-20_09-00-01.sql.gz.in_progress"]
    assert partial.legacy and partial.status == "STARTED"


def test_scan_matches_core_names_exactly(tree: Path) -> None:
    found = scan_backups(tree, VAN)
    archive = [b for b in found if b.core == "mysql-moodle_archive"]
    assert len(archive) == 1 and archive[0].rows == 7
    assert all(b.core in ("mysql-moodle", "mysql-moodle_archive") for b in found)


def test_scan_sorted_and_missing_root(tmp_path: Path, tree: Path) -> None:
    found = scan_backups(tree, VAN)
    keys = [(b.core, b.when.astimezone(timezone.utc)) for b in found]
    assert keys == sorted(keys)
    assert scan_backups(tmp_path / "nope", VAN) == []


def test_scan_uses_manifest_time_in_the_repeated_hour(tmp_path: Path) -> None:
    # 01:30 happens twice on 2026-11-01 in Vancouver; started_at says which one.
    root = tmp_path / "b"
    make_backup(root, "2026-11-01", "db-m_2026-11-01_01-30-00", started_at="2026-11-01T09:30:00Z")
    make_backup(root, "2026-11-02", "db-m_2026-11-02_01-30-00", started_at="2026-11-02T09:30:00Z")
    make_backup(root, "2026-10-31", "db-m_2026-10-31_01-30-00")
    found = {b.name: b for b in scan_backups(root, VAN)}
    second = found["db-m_2026-11-01_01-30-00"].when
    assert second.utcoffset() == timedelta(hours=-8)  # the PST (second) 01:30
    assert second.astimezone(timezone.utc) == datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc)
    assert found["db-m_2026-10-31_01-30-00"].when.utcoffset() == timedelta(hours=-7)


# --------------------------------------------------------------------------- deleting / pruning


def test_delete_refuses_outside_root(tmp_path: Path, tree: Path) -> None:
    info = scan_backups(tree, VAN)[0]
    with pytest.raises(StorageError, match="not inside the backup root"):
        delete_backup(info, tmp_path / "elsewhere")
    assert info.path.exists()


def test_prune_dry_run_then_real(tree: Path) -> None:
    policy = RetentionPolicy.resolve("rolling", num_backups=31, daily=1, weekly=1, monthly=1)
    now = datetime(2026, 6, 10, 12, tzinfo=VAN)
    before = sorted(p for p in tree.rglob("*"))
    dry = prune(tree, policy, now, VAN, dry_run=True, only=["mysql-moodle"])
    assert dry.removed and sorted(p for p in tree.rglob("*")) == before

    report = prune(tree, policy, now, VAN, only=["mysql-moodle"])
    assert [b.name for b in report.removed] == [b.name for b in dry.removed]
    left = {b.name: b for b in scan_backups(tree, VAN)}
    # kept: the newest good (weekly #1 and daily #1), the newest verified, the newer
    # unfinished ones; the other database and the flat folder are untouched.
    reasons = {report.info(d.backup.id).name: d.reason for d in report.plan.decisions}
    assert reasons["mysql-moodle_2026-06-07_01-00-00"] == "weekly #1"
    assert reasons["mysql-moodle_2026-06-02_01-00-00"] == "daily #1"
    assert reasons["mysql-moodle_2026-06-01_01-00-00"] == "newest verified backup of this database"
    for name in (
        "mysql-moodle_2026-06-07_01-00-00",
        "mysql-moodle_2026-06-02_01-00-00",
        "mysql-moodle_2026-06-01_01-00-00",
        "mysql-moodle_2026-06-08_01-00-00",  # FAILED but newer than the newest good
        "mysql-moodle_2026-06-10_01-00-00",  # no manifest, newer than the newest good
    ):
        assert name in left
    assert "mysql-moodle_archive_2026-06-10_01-00-00" in left
    assert "mysql-moodle_2026-05-20_01-00-00" in left
    assert "mysql-moodle_2024-10-19_09-00-01.sql.gz" not in left  # legacy file aged out
    assert "mysql-moodle_2024-10-20_09-00-01.sql.gz.in_progress" not in left
    # empty date folders are gone, the root, the tier folders in use and the lock stay
    assert not (tree / "daily" / "2024-10-19").exists()
    assert (tree / ".moodump.lock").exists() and (tree / "lost+found").exists()
    assert report.freed_bytes == sum(b.size_bytes for b in report.removed)
    doc = report.to_dict()
    assert doc["removed"] == len(report.removed)
    assert {d["id"] for d in doc["decisions"]} == {str(b.path) for b in report.backups}


def test_prune_daily_strategy_counts_backups_not_days(tmp_path: Path) -> None:
    root = tmp_path / "b"
    for day in (1, 2):
        for hour in (1, 9, 17):
            make_backup(root, f"2026-06-0{day}", f"db-m_2026-06-0{day}_{hour:02d}-00-00")
    report = prune(root, DAILY, datetime(2026, 6, 3, tzinfo=VAN), VAN)
    assert sorted(b.name for b in scan_backups(root, VAN)) == [
        "db-m_2026-06-02_01-00-00",
        "db-m_2026-06-02_09-00-00",
        "db-m_2026-06-02_17-00-00",
    ]
    assert len(report.removed) == 3
    assert not (root / "2026-06-01").exists()


def test_half_deleted_backup_is_not_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest goes first, so a deletion that fails half-way leaves no "DONE" backup."""
    root = tmp_path / "b"
    make_backup(root, "2026-06-01", "db-m_2026-06-01_01-00-00")
    info = scan_backups(root, VAN)[0]

    def fail(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("moodump.catalog.shutil.rmtree", fail)
    with pytest.raises(StorageError, match="cannot delete"):
        delete_backup(info, root)
    assert scan_backups(root, VAN)[0].status == "MISSING"


# --------------------------------------------------------------------------- listing


def test_group_by_database_and_json(tree: Path) -> None:
    found = scan_backups(tree, VAN)
    groups = group_by_database(found, ["mysql-moodle", "mysql-new"])
    assert [g.core for g in groups] == ["mysql-moodle", "mysql-new", "mysql-moodle_archive"]
    moodle, new, archive = groups
    assert moodle.configured and new.configured and not archive.configured
    assert new.backups == () and new.newest is None
    assert moodle.newest_verified is not None
    assert moodle.newest_verified.name == "mysql-moodle_2026-06-01_01-00-00"
    assert moodle.newest_done is not None
    assert moodle.newest_done.name == "mysql-moodle_2026-06-07_01-00-00"
    times = [b.when.astimezone(timezone.utc) for b in moodle.backups]
    assert times == sorted(times, reverse=True)
    now = datetime(2026, 6, 10, 12, tzinfo=VAN)
    doc = json.loads(listing_json(groups, now, tree, 12345))
    assert doc["free_bytes"] == 12345
    first = doc["databases"][0]
    assert first["newest_verified"] == "mysql-moodle_2026-06-01_01-00-00"
    assert first["newest_verified_age_s"] == (9 * 86400 + 11 * 3600)
    assert {b["status"] for b in first["backups"]} >= {"DONE", "FAILED", "MISSING", "INVALID"}


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=40), "40m"),
        (timedelta(hours=5, minutes=12), "5h 12m"),
        (timedelta(days=3, hours=4, minutes=5), "3d 4h"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_age_text(delta: timedelta, text: str) -> None:
    assert age_text(delta) == text
