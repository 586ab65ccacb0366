"""Checks: size floor, shrink, freshness, free space (pure decisions + the thin I/O)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moodump.catalog import BackupInfo
from moodump.checks import (
    FAIL,
    OK,
    WARN,
    CheckResult,
    check_backups,
    check_free_space,
    check_freshness,
    check_min_size,
    check_shrink,
    check_size,
    disk_free,
    free_space_precheck,
    human_size,
    previous_good,
    required_free_space,
    worst,
)
from moodump.retention import Backup

VAN = ZoneInfo("America/Vancouver")
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=VAN)
MB = 1024 * 1024


def info(
    core: str, hours_ago: float, *, status: str = "DONE", verify: str | None = None, size: int = MB
) -> BackupInfo:
    when = NOW - timedelta(hours=hours_ago)
    name = f"{core}_{when:%Y-%m-%d_%H-%M-%S}"
    return BackupInfo(
        path=Path("/backups/daily") / f"{when:%Y-%m-%d}" / name,
        name=name,
        core=core,
        tier="daily",
        when=when,
        status=status,
        size_bytes=size,
        verify_status=verify,
    )


# --------------------------------------------------------------------------- size


@pytest.mark.parametrize(
    ("size", "minimum", "level"),
    [(0, 0, OK), (100, 0, OK), (999, 1000, FAIL), (1000, 1000, OK), (0, 1, FAIL)],
)
def test_min_size(size: int, minimum: int, level: str) -> None:
    r = check_min_size(size, minimum, core="db-m")
    assert r.level == level and r.check == "min_size" and r.core == "db-m"
    if level == FAIL:
        assert "MOODUMP_MIN_SIZE" in r.message


@pytest.mark.parametrize(
    ("size", "previous", "limit", "mode", "level"),
    [
        (60, 100, 50, WARN, OK),  # 40 % smaller, limit 50 %
        (50, 100, 50, WARN, OK),  # exactly at the limit
        (49, 100, 50, WARN, WARN),
        (49, 100, 50, FAIL, FAIL),
        (200, 100, 50, FAIL, OK),  # grew
        (1, 100, 0, FAIL, OK),  # check off
        (1, None, 50, FAIL, OK),  # nothing to compare with
        (1, 0, 50, FAIL, OK),
    ],
)
def test_shrink(size: int, previous: int | None, limit: float, mode: str, level: str) -> None:
    r = check_shrink(size, previous, limit, mode)
    assert r.level == level, r.message


def test_shrink_message_and_bad_mode() -> None:
    r = check_shrink(10 * MB, 100 * MB, 50, FAIL, core="db-m")
    assert "90.0% smaller" in r.message and "MOODUMP_MAX_SHRINK_PERCENT" in r.message
    assert "+20.0%" in check_shrink(120, 100, 50).message
    with pytest.raises(ValueError):
        check_shrink(1, 2, 50, "explode")


def test_check_size_both() -> None:
    rs = check_size(
        10, previous_size=1000, min_size=100, max_shrink_percent=50, shrink_mode=WARN, core="x"
    )
    assert [(r.check, r.level) for r in rs] == [("min_size", FAIL), ("shrink", WARN)]
    assert worst(rs) == FAIL
    assert worst([]) == OK
    assert worst([CheckResult("a", OK, ""), CheckResult("b", WARN, "")]) == WARN


def test_previous_good_matches_exactly_and_skips_failed() -> None:
    backups = [
        info("db-moodle", 48, size=5),
        info("db-moodle", 24, status="FAILED", size=6),
        info("db-moodle_archive", 12, size=7),
        info("db-moodle", 1, size=8),
    ]
    prev = previous_good(backups, "db-moodle", NOW - timedelta(hours=1))
    assert prev is not None and prev.size_bytes == 5
    assert previous_good(backups, "db-moodle", NOW - timedelta(hours=48)) is None
    assert previous_good(backups, "db-other", NOW) is None


# --------------------------------------------------------------------------- freshness


def test_freshness_ok_and_stale() -> None:
    backups = [info("db-m", 30, verify="PASS"), info("db-m", 5, verify="PASS")]
    (r,) = check_freshness(backups, timedelta(hours=26), NOW)
    assert r.level == OK and r.core == "db-m" and "5h 0m old" in r.message
    (r,) = check_freshness(backups, timedelta(hours=4), NOW)
    assert r.level == FAIL and "limit 4h 0m" in r.message


def test_freshness_needs_verified_unless_accepted() -> None:
    backups = [info("db-m", 50, verify="PASS"), info("db-m", 2), info("db-m", 1, verify="FAIL")]
    (r,) = check_freshness(backups, timedelta(hours=26), NOW)
    assert r.level == FAIL and "2d 2h old" in r.message  # the newest *verified* is 50 h old
    (r,) = check_freshness(backups, timedelta(hours=26), NOW, accept_unverified=True)
    assert r.level == OK and "1h 0m old" in r.message


def test_freshness_no_backup_at_all_and_unverified_hint() -> None:
    backups = [info("db-m", 2)]
    results = check_freshness(backups, timedelta(hours=26), NOW, cores=["db-m", "db-new"])
    assert [(r.core, r.level) for r in results] == [("db-m", FAIL), ("db-new", FAIL)]
    assert "unverified DONE backups" in results[0].message
    assert results[1].message == "no verified backup"


def test_freshness_mentions_failed_newest() -> None:
    # backup-container#134: yesterday's verified file must not hide today's failure.
    backups = [info("db-m", 20, verify="PASS"), info("db-m", 1, status="FAILED")]
    (r,) = check_freshness(backups, timedelta(hours=26), NOW)
    assert r.level == OK and "is FAILED" in r.message
    (r,) = check_freshness(backups, timedelta(hours=12), NOW)
    assert r.level == FAIL and "is FAILED" in r.message


def test_freshness_accepts_retention_value_objects() -> None:
    b = Backup("x", "db-m", None, NOW - timedelta(hours=1), "DONE", verified=True)
    (r,) = check_freshness([b], timedelta(hours=2), NOW)
    assert r.level == OK


def test_freshness_across_dst() -> None:
    # 01:30 PST on 2026-11-01 is 2h30m before 03:00 PST, though the clock says 1h30m.
    b = Backup("x", "db-m", None, datetime(2026, 11, 1, 0, 30, tzinfo=VAN), "DONE", True)
    now = datetime(2026, 11, 1, 2, 0, tzinfo=VAN)
    (r,) = check_freshness([b], timedelta(hours=2), now)
    assert r.level == FAIL and "2h 30m old" in r.message


# --------------------------------------------------------------------------- free space


@pytest.mark.parametrize(
    ("min_free", "previous", "factor", "required"),
    [(0, None, 1.2, 0), (100, None, 1.2, 100), (100, 1000, 1.2, 1200), (5000, 1000, 1.2, 5000),
     (0, 1000, 0, 0), (0, 3, 1.5, 5)],
)  # fmt: skip
def test_required_free_space(
    min_free: int, previous: int | None, factor: float, required: int
) -> None:
    assert required_free_space(min_free, previous, factor) == required


def test_check_free_space() -> None:
    assert check_free_space(10, 0).level == OK
    assert check_free_space(10 * MB, 5 * MB, "/backups").level == OK
    r = check_free_space(1 * MB, 5 * MB, "/backups")
    assert r.level == FAIL and "only 1.0 MiB free on /backups, 5.0 MiB needed" in r.message


def test_disk_free_real_paths(tmp_path: Path) -> None:
    expected = shutil.disk_usage(tmp_path).free
    assert abs(disk_free(tmp_path) - expected) < 64 * MB
    # a BACKUP_DIR that does not exist yet: its nearest existing parent is measured
    assert abs(disk_free(tmp_path / "not" / "yet") - expected) < 64 * MB
    assert free_space_precheck(tmp_path, None, 1, 1.2).level == OK
    r = free_space_precheck(tmp_path, None, 1 << 60, 1.2)  # an exabyte: never free
    assert r.level == FAIL


def test_human_size() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(3 * 1024**3) == "3.0 GiB"


# --------------------------------------------------------------------------- moodump check


def test_check_backups_composition() -> None:
    backups = [
        info("db-m", 30, verify="PASS", size=100 * MB),
        info("db-m", 5, verify="PASS", size=20 * MB),
        info("db-other", 3, verify="PASS", size=2 * MB),
    ]
    results = check_backups(
        backups,
        now=NOW,
        max_age=timedelta(hours=26),
        cores=["db-m", "db-other"],
        min_size=10 * MB,
        max_shrink_percent=50,
        shrink_mode=FAIL,
    )
    table = {(r.core, r.check): r.level for r in results}
    assert table == {
        ("db-m", "freshness"): OK,
        ("db-other", "freshness"): OK,
        ("db-m", "min_size"): OK,
        ("db-m", "shrink"): FAIL,  # 100 MiB -> 20 MiB
        ("db-other", "min_size"): FAIL,  # 2 MiB < 10 MiB
        ("db-other", "shrink"): OK,  # nothing to compare with
    }
    # size checks off: only freshness
    only = check_backups(backups, now=NOW, max_age=timedelta(hours=26))
    assert {r.check for r in only} == {"freshness"}
    assert [r.to_dict()["check"] for r in only] == ["freshness", "freshness"]
