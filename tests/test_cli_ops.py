"""moodump config / list / prune / check on real directories of real backup dirs.

The backups are directories with manifest.json (and verify.json) written with moodump's
own manifest types; the configuration comes from a real backup.conf and environment.
``--now`` (a hidden option) pins the clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from moodump.cli import cli
from moodump.config import is_known_env_name
from moodump.errors import MoodumpError
from moodump.manifest import FileEntry, Manifest, TableEntry, VerifyRecord

NOW = "2026-06-10T12:00:00"  # local time in TZ (America/Vancouver, PDT)
SECRET = "S3cr3t-cli-7d9e"


def make_backup(
    root: Path,
    folder: str,
    name: str,
    *,
    status: str = "DONE",
    verify: str | None = None,
    size: int = 4000,
    rows: int = 42,
    started_at: str = "",
) -> Path:
    path = root / folder / name
    path.mkdir(parents=True)
    data = os.urandom(size)
    (path / "t.00000.tsv.gz").write_bytes(data)
    core = name.rsplit("_", 2)[0]
    m = Manifest(
        database=core.split("-", 1)[1],
        status=status,
        host=core.split("-", 1)[0],
        tables=[TableEntry(name="mdl_user", rows=rows)],
        files=[FileEntry("t.00000.tsv.gz", size, hashlib.sha256(data).hexdigest(), "data")],
        started_at=started_at,
    )
    (path / "manifest.json").write_text(m.to_json(), encoding="utf-8")
    if verify:
        rec = VerifyRecord(status=verify, method="offline", at="2026-06-10T10:00:00Z", duration_s=1)
        (path / "verify.json").write_text(rec.to_json(), encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: backup.conf, BACKUP_DIR with backups of two databases."""
    for name in list(os.environ):
        if is_known_env_name(name) or name.startswith("MOODUMP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "backups"
    conf = tmp_path / "backup.conf"
    conf.write_text("# moodle\nmysql/moodle\n0 9 * * * default ./backup.sh -s\n", encoding="utf-8")
    env = {
        "BACKUP_CONF": str(conf),
        "BACKUP_DIR": str(root),
        "TZ": "America/Vancouver",
        "DAILY_BACKUPS": "2",
        "WEEKLY_BACKUPS": "1",
        "MONTHLY_BACKUPS": "1",
        "MYSQL_USER": "moodle",
        "MYSQL_PASSWORD": SECRET,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    make_backup(root, "daily/2026-06-05", "mysql-moodle_2026-06-05_09-00-00", verify="PASS")
    make_backup(root, "weekly/2026-06-07", "mysql-moodle_2026-06-07_09-00-00", verify="PASS")
    make_backup(root, "daily/2026-06-08", "mysql-moodle_2026-06-08_09-00-00")
    make_backup(root, "daily/2026-06-09", "mysql-moodle_2026-06-09_09-00-00", verify="PASS")
    make_backup(root, "daily/2026-06-10", "mysql-moodle_2026-06-10_09-00-00", status="FAILED")
    # another database whose name starts with the same core name: never touched
    make_backup(root, "daily/2026-06-01", "mysql-moodle_archive_2026-06-01_09-00-00")
    make_backup(root, "daily/2026-06-02", "mysql-moodle_archive_2026-06-02_09-00-00")
    return tmp_path


def run(args: list[str]) -> tuple[int, str, str]:
    """Invoke like main(): a MoodumpError becomes its exit code and message."""
    result = CliRunner().invoke(cli, args)
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        if isinstance(exc, MoodumpError):
            return exc.exit_code, result.stdout, str(exc)
        raise exc
    return result.exit_code, result.stdout, result.stderr


def names(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*_20*") if p.is_dir()}


# --------------------------------------------------------------------------- config


def test_config_prints_masked_settings(site: Path) -> None:
    code, out, _ = run(["config", "--now", NOW])
    assert code == 0
    assert SECRET not in out
    assert "- Current backup type: daily (Wednesday 2026-06-10)" in out
    assert (
        "mysql/moodle  (host mysql, port 3306, database moodle; user moodle from MYSQL_USER" in out
    )
    assert "password from MYSQL_PASSWORD" in out
    assert "0 9 * * * default ./backup.sh -s  -> backup; next 2026-06-11 09:00 PDT" in out


def test_config_json(site: Path) -> None:
    code, out, _ = run(["config", "--json", "--now", NOW])
    assert code == 0 and SECRET not in out
    doc = json.loads(out)
    assert doc["databases"][0]["core"] == "mysql-moodle"
    assert doc["databases"][0]["password"] == "****"
    assert doc["retention"] == {"num_backups": 31, "daily": 2, "weekly": 1, "monthly": 1}
    assert doc["today_tier"] == "daily"


def test_config_bad_line_exits_2_with_file_and_line(site: Path) -> None:
    conf = site / "backup.conf"
    conf.write_text("mysql/moodle\n0 9 * * default ./backup.sh -s\n", encoding="utf-8")
    code, _, err = run(["config"])
    assert code == 2
    assert f"{conf}:2: " in err and "next step:" in err


def test_config_without_database_exits_2(site: Path) -> None:
    (site / "backup.conf").write_text("0 9 * * * default ./backup.sh -s\n", encoding="utf-8")
    code, out, err = run(["config"])
    assert code == 2 and "no database is configured" in err
    assert "Settings:" in out  # still shows what it has


# --------------------------------------------------------------------------- list


def test_list_text(site: Path) -> None:
    code, out, _ = run(["list", "--now", NOW])
    assert code == 0
    assert out.splitlines()[0].startswith(f"Backups in {site / 'backups'} (")
    assert "free)" in out.splitlines()[0]
    assert "mysql-moodle  newest verified: 1d 3h ago" in out
    assert "mysql-moodle_archive  (not in the configuration)  newest verified: none" in out
    assert "2026-06-10 09:00:00 PDT   FAILED" in out
    assert "weekly   2026-06-07 09:00:00 PDT   DONE     PASS" in out


def test_list_json(site: Path) -> None:
    code, out, _ = run(["list", "--json", "--now", NOW])
    assert code == 0
    doc = json.loads(out)
    assert doc["free_bytes"] > 0
    moodle, archive = doc["databases"]
    assert (moodle["core"], moodle["configured"], moodle["count"]) == ("mysql-moodle", True, 5)
    assert moodle["newest_verified"] == "mysql-moodle_2026-06-09_09-00-00"
    assert moodle["newest_verified_age_s"] == 27 * 3600
    first = moodle["backups"][0]
    assert (first["status"], first["tier"], first["rows"]) == ("FAILED", "daily", 42)
    assert first["path"].endswith("daily/2026-06-10/mysql-moodle_2026-06-10_09-00-00")
    assert archive["configured"] is False and archive["count"] == 2


@pytest.mark.parametrize(
    ("name", "started_at", "tz", "now"),
    [
        # written at 09:00 PDT (16:00Z), listed after TZ became UTC, at 17:00Z
        ("mysql-moodle_2026-06-11_09-00-00", "2026-06-11T16:00:00Z", "UTC", "2026-06-11T17:00"),
        # written at 16:00 UTC, listed after TZ became Vancouver, at 10:00 PDT (17:00Z):
        # read in the new TZ, the name would be 7 hours in the future
        ("mysql-moodle_2026-06-11_16-00-00", "2026-06-11T16:00:00Z", "America/Vancouver",
         "2026-06-11T10:00"),
    ],
)  # fmt: skip
def test_ages_come_from_the_manifest_after_a_tz_change(
    site: Path, monkeypatch: pytest.MonkeyPatch, name: str, started_at: str, tz: str, now: str
) -> None:
    root = site / "backups"
    make_backup(root, "daily/2026-06-11", name, verify="PASS", started_at=started_at)
    monkeypatch.setenv("TZ", tz)
    code, out, _ = run(["list", "--now", now])
    assert code == 0
    assert "newest verified: 1h 0m ago" in out
    assert "2026-06-11 16:00:00 UTC" in out or "2026-06-11 09:00:00 PDT" in out
    doc = json.loads(run(["list", "--json", "--now", now])[1])
    (group,) = [g for g in doc["databases"] if g["core"] == "mysql-moodle"]
    assert group["backups"][0]["when"].startswith(("2026-06-11T16:00:00+00:00", "2026-06-11T09:00:00-07:00"))
    code, out, err = run(["check", "--max-age", "2h", "--now", now])
    assert code == 0, out + err


def test_list_backup_dir_override(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    make_backup(other, "2026-06-09", "mysql-moodle_2026-06-09_01-00-00")
    code, out, _ = run(["list", "--json", "--backup-dir", str(other), "--now", NOW])
    assert code == 0
    (moodle,) = json.loads(out)["databases"]
    assert [b["tier"] for b in moodle["backups"]] == [None]


# --------------------------------------------------------------------------- prune


def test_prune_dry_run_removes_nothing(site: Path) -> None:
    before = names(site / "backups")
    code, out, _ = run(["prune", "--dry-run", "--now", NOW])
    assert code == 0
    assert names(site / "backups") == before
    assert "would remove" in out and "Dry run: would remove 1 backup(s)" in out
    assert "daily/2026-06-05/mysql-moodle_2026-06-05_09-00-00" in out


def test_prune_keeps_with_reasons_and_removes(site: Path) -> None:
    code, out, _ = run(["prune", "--now", NOW])
    assert code == 0, out
    left = names(site / "backups")
    assert "mysql-moodle_2026-06-05_09-00-00" not in left  # beyond DAILY_BACKUPS=2
    assert {
        "mysql-moodle_2026-06-07_09-00-00",  # weekly #1
        "mysql-moodle_2026-06-08_09-00-00",  # daily #2
        "mysql-moodle_2026-06-09_09-00-00",  # daily #1, newest good and verified
        "mysql-moodle_2026-06-10_09-00-00",  # FAILED, newer than the newest good
        "mysql-moodle_archive_2026-06-01_09-00-00",  # not configured: untouched
        "mysql-moodle_archive_2026-06-02_09-00-00",
    } <= left
    assert not (site / "backups" / "daily" / "2026-06-05").exists()
    assert "weekly #1" in out and "daily #1" in out and "daily #2" in out
    assert "left alone: not one of the databases being pruned" in out
    assert "Removed 1 backup(s)" in out


def test_prune_json_and_all_databases(site: Path) -> None:
    code, out, _ = run(["prune", "--json", "--all-databases", "--dry-run", "--now", NOW])
    assert code == 0
    doc = json.loads(out)
    assert doc["dry_run"] is True and doc["removed"] == 1
    archive = [d for d in doc["decisions"] if d["core"] == "mysql-moodle_archive"]
    # with --all-databases the other database is pruned by the rules too (2 daily kept)
    assert [d["rule"] for d in archive] == ["daily", "daily"]
    assert all(d["size_bytes"] > 4000 for d in doc["decisions"])


def test_prune_without_configuration_refuses(site: Path) -> None:
    (site / "backup.conf").write_text("# nothing\n", encoding="utf-8")
    code, _, err = run(["prune"])
    assert code == 2 and "--all-databases" in err
    assert len(names(site / "backups")) == 7


# --------------------------------------------------------------------------- check


def test_check_passes_when_fresh(site: Path) -> None:
    code, out, _ = run(["check", "--max-age", "30h", "--now", NOW])
    assert code == 0, out
    assert out.startswith("OK   mysql-moodle: freshness: newest verified backup is 1d 3h old")
    assert "the newest backup (2026-06-10 09:00) is FAILED" in out


def test_check_fails_when_stale(site: Path) -> None:
    code, out, err = run(["check", "--max-age", "26h", "--now", NOW])
    assert code == 11
    assert out.startswith("FAIL mysql-moodle: freshness")
    assert "1 check(s) failed" in err


def test_check_accept_unverified_and_json(site: Path) -> None:
    later = "2026-06-11T10:00:00"  # newest verified 49 h, newest DONE (unverified) also 49 h
    code, out, _ = run(["check", "--max-age", "26h", "--json", "--now", later])
    assert code == 11
    doc = json.loads(out)
    assert doc["ok"] is False and doc["results"][0]["level"] == "fail"
    code, _, _ = run(["check", "--max-age", "50h", "--accept-unverified", "--now", later])
    assert code == 0


def test_check_size_options(site: Path) -> None:
    code, out, _ = run(["check", "--max-age", "30h", "--min-size", "1M", "--now", NOW])
    assert code == 11 and "min_size" in out and "below the minimum" in out
    code, out, _ = run(["check", "--max-age", "30h", "--max-shrink", "10", "--now", NOW])
    assert code == 0 and "shrink" in out


def test_check_bad_option_value(site: Path) -> None:
    code, _, err = run(["check", "--max-age", "soon"])
    assert code == 2 and "--max-age 'soon'" in err


def test_check_defaults_from_environment(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODUMP_MAX_AGE", "20h")
    code, _, _ = run(["check", "--now", NOW])
    assert code == 11
    monkeypatch.setenv("MOODUMP_MAX_AGE", "2d")
    code, _, _ = run(["check", "--now", NOW])
    assert code == 0


# --------------------------------------------------------------------------- real process


def test_exit_codes_through_main(site: Path) -> None:
    """The installed entry point maps the errors to exit codes (11, 2, 0)."""
    env = {k: v for k, v in os.environ.items()}

    def moodump(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "moodump", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    stale = moodump("check", "--max-age", "1h", "--now", NOW)
    assert stale.returncode == 11, stale.stderr
    assert "moodump: error:" in stale.stderr
    env["NUM_BACKUPS"] = "many"
    bad = moodump("config")
    assert bad.returncode == 2 and "NUM_BACKUPS='many'" in bad.stderr
    del env["NUM_BACKUPS"]
    ok = moodump("list", "--now", NOW)
    assert ok.returncode == 0 and SECRET not in ok.stdout + ok.stderr


# --------------------------------------------------------------------------- one operation each


def _hold_lock(site: Path) -> subprocess.Popen[str]:
    """A second process holding the run lock, as a running backup does."""
    code = (
        "import sys\n"
        "from moodump.config import load_config_from_environment\n"
        "from moodump.lock import RunLock\n"
        "with RunLock(load_config_from_environment().lock_path, purpose='run --once'):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize(
    "args",
    [
        ["prune"],
        ["prune", "--all-databases"],
        ["prune", "--delete", "backups/daily/2026-06-05/mysql-moodle_2026-06-05_09-00-00"],
    ],
)
def test_prune_while_a_run_holds_the_lock_deletes_nothing(site: Path, args: list[str]) -> None:
    before = names(site / "backups")
    holder = _hold_lock(site)
    try:
        code, _, err = run([*args, "--now", NOW])
    finally:
        holder.communicate("\n", timeout=30)
    assert code == 10, err
    assert "lock" in err and str(holder.pid) in err
    assert names(site / "backups") == before


def test_prune_delete_removes_one_backup_under_backup_dir(site: Path, tmp_path: Path) -> None:
    target = site / "backups" / "daily" / "2026-06-08" / "mysql-moodle_2026-06-08_09-00-00"
    code, out, _ = run(["prune", "--delete", str(target)])
    assert code == 0 and "deleted" in out
    assert not target.exists()
    assert "mysql-moodle_2026-06-09_09-00-00" in names(site / "backups")
    outside = tmp_path / "elsewhere" / "mysql-moodle_2026-06-08_09-00-00"
    outside.mkdir(parents=True)
    code, _, err = run(["prune", "--delete", str(outside)])
    assert code == 2 and "not under BACKUP_DIR" in err and outside.exists()
    code, _, err = run(["prune", "--delete", str(site / "backups" / "daily")])
    assert code == 5 and "is not a backup" in err


def test_prune_delete_refuses_the_only_good_backup_of_a_database_unless_forced(
    site: Path,
) -> None:
    root = site / "backups"
    first = root / "daily" / "2026-06-01" / "mysql-moodle_archive_2026-06-01_09-00-00"
    last = root / "daily" / "2026-06-02" / "mysql-moodle_archive_2026-06-02_09-00-00"
    code, _out, err = run(["prune", "--delete", str(first)])
    assert code == 0 and not first.exists(), err
    # a newer backup whose verification failed is no copy to restore
    failed = make_backup(root, "daily/2026-06-03", "mysql-moodle_archive_2026-06-03_09-00-00",
                         verify="FAIL")  # fmt: skip
    code, _, err = run(["prune", "--delete", str(last)])
    assert code == 2 and last.exists(), err
    assert "only good backup of mysql-moodle_archive" in err and "--force" in err
    code, _, err = run(["prune", "--force"])
    assert code == 2 and "--force goes with --delete" in err
    code, _, err = run(["prune", "--delete", str(last), "--force"])
    assert code == 0 and not last.exists() and failed.exists(), err
    # the other database's backups were never part of the question
    assert "mysql-moodle_2026-06-09_09-00-00" in names(root)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("moodump verify --all", "No such option '--all'"),
        ("moodump check --min-size lots", "--min-size"),
        ("moodump run --database mysql/moodle", "without --once"),
    ],
)
def test_config_rejects_a_cron_line_the_cli_would_reject(
    site: Path, line: str, message: str
) -> None:
    conf = site / "backup.conf"
    conf.write_text(f"mysql/moodle\n0 9 * * * default {line}\n", encoding="utf-8")
    code, _, err = run(["config"])
    assert code == 2
    assert f"{conf} line 2: '{line}'" in err and message in err


def test_config_accepts_the_cron_lines_the_cli_accepts(site: Path) -> None:
    conf = site / "backup.conf"
    conf.write_text(
        "mysql/moodle\n"
        "0 1 * * * default moodump run --once\n"
        "0 4 * * * default moodump run --verify-all --database mysql/moodle\n"
        "30 5 * * * default moodump check --max-age 26h --min-size 10M\n"
        "0 6 * * * default moodump prune --dry-run\n"
        "0 7 * * * default moodump list --json\n",
        encoding="utf-8",
    )
    code, _, err = run(["config"])
    assert code == 0, err
