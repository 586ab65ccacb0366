"""container/backup.sh: the old backup-container flags map onto the right moodump commands.

This is a test of the flag mapping. A stand-in ``moodump`` first on PATH records its argv
and a few environment variables; ``moodump list --json`` is passed on to the real command,
which lists real backup directories (manifests written with :mod:`moodump.manifest`)
under a temporary BACKUP_DIR, so the script's choice of backups is checked against the
real listing format. What restore/verify/run then do is tested with the real commands
elsewhere. The cases are the command lines of backup.conf cron lines, the old CronJob and
the old runbooks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import moodump
from moodump.manifest import MANIFEST_NAME, Manifest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "container" / "backup.sh"

FAKE_MOODUMP = """#!{python}
import json, os, sys

argv = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as fh:
    keep = ("MYSQL_PWD", "BACKUP_CONF", "TZ", "MYSQL_PASSWORD")
    env = {{k: os.environ[k] for k in keep if k in os.environ}}
    fh.write(json.dumps({{"argv": argv, "env": env}}) + "\\n")
if argv[:1] == ["list"] or argv[:2] == ["prune", "--delete"]:
    os.execv(sys.executable, [sys.executable, "-m", "moodump", *argv])
if argv[:1] == ["verify"] and os.environ.get("FAKE_VERIFY_FAIL", "\\0") in argv[1]:
    sys.exit(8)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


@pytest.fixture
def rig(tmp_path: Path) -> SimpleNamespace:
    """A fake moodump on PATH, a BACKUP_DIR with backups, and a runner for backup.sh."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "moodump"
    fake.write_text(FAKE_MOODUMP.format(python=sys.executable))
    fake.chmod(0o755)
    (bindir / "python3").symlink_to(sys.executable)
    log = tmp_path / "calls.jsonl"
    root = tmp_path / "backups"

    conf = tmp_path / "backup.conf"
    conf.write_text("mysql/moodle\ndb2/wiki\n0 1 * * * default ./backup.sh -s\n")

    def backup(rel: str, status: str = "DONE") -> Path:
        d = root / rel
        d.mkdir(parents=True)
        host, db = d.name.rsplit("_", 2)[0].split("-", 1)
        manifest = Manifest(database=db, host=host, status=status)
        (d / MANIFEST_NAME).write_text(manifest.to_json())
        return d

    def run(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        log.write_text("")
        full_env = {
            "PATH": f"{bindir}:/usr/bin:/bin",
            "FAKE_LOG": str(log),
            "BACKUP_DIR": f"{root}/",
            "BACKUP_CONF": str(conf),
            "TZ": "UTC",
            "HOME": str(tmp_path),
            # `moodump list` runs the same moodump package this test imports
            "PYTHONPATH": str(Path(moodump.__file__).resolve().parents[1]),
            **env,
        }
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=60,
        )

    def calls() -> list[list[str]]:
        return [json.loads(line)["argv"] for line in log.read_text().splitlines()]

    def envs() -> list[dict[str, str]]:
        return [json.loads(line)["env"] for line in log.read_text().splitlines()]

    return SimpleNamespace(root=root, conf=conf, backup=backup, run=run, calls=calls, envs=envs)


def standard_backups(rig) -> dict[str, Path]:
    """Two configured databases with several runs, one unconfigured look-alike, and an
    old backup-container file newer than all of them."""
    return {
        "old": rig.backup("daily/2026-11-20/mysql-moodle_2026-11-20_01-00-00"),
        "good": rig.backup("weekly/2026-11-22/mysql-moodle_2026-11-22_01-00-00"),
        "failed": rig.backup("daily/2026-11-23/mysql-moodle_2026-11-23_01-00-00", "FAILED"),
        "archive": rig.backup("daily/2026-11-23/mysql-moodle_archive_2026-11-23_02-00-00"),
        "other": rig.backup("daily/2026-11-21/db2-wiki_2026-11-21_01-00-00"),
        "legacy": legacy_file(rig, "daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00.sql.gz"),
    }


def legacy_file(rig, rel: str) -> Path:
    path = rig.root / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x1f\x8b old mysqldump | gzip output")
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), [["run"]]),  # the image's old CMD: cron mode
        (("-1",), [["run", "--once"]]),  # the old CronJob
        (("-s",), [["run", "--once"]]),  # backup.conf: `0 1 * * * default ./backup.sh -s`
        (("-1", "-s"), [["run", "--once"]]),
        (("-l",), [["list"]]),
        (("-c",), [["config"]]),
        (("-p",), [["prune"]]),
        (("-s", "-p"), [["prune"]]),
        (("-n", "-1"), [["run", "--once"]]),
        (("-l", "-c"), [["list"]]),  # old precedence: list before config
    ],
)
def test_simple_flags_map_to_one_command(rig, args, expected) -> None:
    res = rig.run(*args)
    assert res.returncode == 0, res.stderr
    assert rig.calls() == expected


def test_exit_status_is_moodumps(rig) -> None:
    res = rig.run("-1", FAKE_EXIT="5")
    assert res.returncode == 5
    assert rig.calls() == [["run", "--once"]]


def test_environment_passes_through(rig) -> None:
    res = rig.run("-s", BACKUP_CONF="/backup.conf", TZ="PST8PDT")
    assert res.returncode == 0, res.stderr
    assert rig.envs() == [{"BACKUP_CONF": "/backup.conf", "TZ": "PST8PDT"}]


@pytest.mark.parametrize("args", [("-s", "-v", "all"), ("-v", "all")])
def test_verify_all_is_moodumps_verify_cycle(rig, args) -> None:
    """-v all runs moodump's verification cycle (newest DONE backup per configured database,
    stale or missing backups fail: tested in test_jobs.py), and passes its exit status on."""
    standard_backups(rig)
    res = rig.run(*args)
    assert res.returncode == 0, res.stderr
    assert rig.calls() == [["run", "--verify-all"]]
    res = rig.run(*args, FAKE_EXIT="11")
    assert res.returncode == 11


def test_verify_one_spec_matches_that_database_exactly(rig) -> None:
    b = standard_backups(rig)
    res = rig.run("-v", "mariadb=mysql/moodle")  # a typed spec, as backup.conf allows
    assert res.returncode == 0, res.stderr
    assert rig.calls() == [["list", "--json"], ["verify", str(b["good"])]]


def test_verify_with_filter_uses_the_newest_match(rig) -> None:
    b = standard_backups(rig)
    res = rig.run("-v", "mysql/moodle", "-f", "2026-11-20")
    assert res.returncode == 0, res.stderr
    assert rig.calls() == [["list", "--json"], ["verify", str(b["old"])]]


def test_restore_and_verify_an_old_sql_gz_file_by_filter(rig) -> None:
    b = standard_backups(rig)
    res = rig.run("-s", "-r", "mysql/moodle", "-f", "mysql-moodle_2026-11-24_01-00-00.sql.gz")
    assert res.returncode == 0, res.stderr
    restore = ["restore", str(b["legacy"]), "--host", "mysql", "--database", "moodle"]
    assert rig.calls() == [["list", "--json"], [*restore, "--drop", "--yes"]]
    res = rig.run("-v", "mysql/moodle", "-f", ".sql.gz")
    assert res.returncode == 0, res.stderr
    assert rig.calls() == [["list", "--json"], ["verify", str(b["legacy"])]]


def test_an_old_file_is_the_newest_backup_only_without_moodump_backups(rig) -> None:
    b = standard_backups(rig)
    rig.run("-v", "mysql/moodle")
    assert rig.calls()[1] == ["verify", str(b["good"])]  # moodump's own backup first
    old = legacy_file(rig, "monthly/2026-10-31/db2-wiki_2026-10-31_01-00-00.sql.gz")
    for path in rig.root.rglob("db2-wiki_*"):
        if path.is_dir():
            (path / MANIFEST_NAME).unlink()
            path.rmdir()
    res = rig.run("-v", "db2/wiki")
    assert res.returncode == 0, res.stderr
    assert rig.calls() == [["list", "--json"], ["verify", str(old)]]


def test_verify_without_backups_fails_clearly(rig) -> None:
    rig.root.mkdir()
    res = rig.run("-s", "-v", "mysql/moodle")
    assert res.returncode == 5
    assert "no finished backup found for mysql-moodle" in res.stderr
    assert rig.calls() == [["list", "--json"]]


def test_restore_with_filter_after_confirmation(rig) -> None:
    b = standard_backups(rig)
    res = rig.run(
        "-r",
        "mysql/moodle",
        "-f",
        "mysql-moodle_2026-11-20_01-00-00",
        stdin="y\n",
        MYSQL_USER="moodle",
        MYSQL_PASSWORD="s3cret",
    )
    assert res.returncode == 0, res.stderr
    assert "Restore " + str(b["old"]) + " into mysql/moodle" in res.stderr
    restore = ["restore", str(b["old"]), "--host", "mysql", "--database", "moodle"]
    restore += ["--drop", "--yes"]
    assert rig.calls() == [["list", "--json"], [*restore, "--user", "moodle"]]
    # The password reaches moodump in MYSQL_PWD, never on its command line.
    assert rig.envs()[1]["MYSQL_PWD"] == "s3cret"
    assert all("s3cret" not in arg for call in rig.calls() for arg in call)


def test_restore_declined_does_nothing(rig) -> None:
    standard_backups(rig)
    res = rig.run("-r", "mysql/moodle", stdin="n\n")
    assert res.returncode == 1
    assert "cancelled" in res.stderr
    assert rig.calls() == [["list", "--json"]]


def test_scripted_restore_of_newest_backup_with_host_dots_and_port(rig) -> None:
    newest = rig.backup("daily/2026-11-23/mysql-0.mysql-moodle_2026-11-23_01-00-00")
    rig.backup("daily/2026-11-22/mysql-0.mysql-moodle_2026-11-22_01-00-00")
    res = rig.run(
        "-s",
        "-r",
        "mysql-0.mysql:3307/moodle",
        "-a",
        "adminpw",
        "-I",
        MYSQL_0_MYSQL_USER="backup",
        MYSQL_0_MYSQL_PASSWORD="pw",
        DATABASE_USER="fallback",
    )
    assert res.returncode == 0, res.stderr
    assert rig.calls()[1] == [
        "restore",
        str(newest),
        "--host",
        "mysql-0.mysql",
        "--database",
        "moodle",
        "--drop",
        "--yes",
        "--port",
        "3307",
        "--user",
        "backup",
    ]
    assert rig.envs()[1]["MYSQL_PWD"] == "pw"
    assert "adminpw" not in json.dumps(rig.calls())
    assert "-a is ignored" in res.stderr and "-I is ignored" in res.stderr


def test_restore_falls_back_to_database_credentials_and_password_files(rig, tmp_path) -> None:
    standard_backups(rig)
    pwfile = tmp_path / "pw"
    pwfile.write_text("filepw")
    res = rig.run(
        "-s",
        "-r",
        "mysql/moodle",
        DATABASE_USER="dbuser",
        DATABASE_PASSWORD_FILE=str(pwfile),
    )
    assert res.returncode == 0, res.stderr
    call = rig.calls()[1]
    assert call[-4:] == ["--user", "dbuser", "--password-file", str(pwfile)]
    assert "MYSQL_PWD" not in rig.envs()[1]


def test_prune_with_filter_deletes_matches_one_by_one(rig) -> None:
    b = standard_backups(rig)
    res = rig.run("-p", "-f", "mysql-moodle_2026", stdin="y\n" * 4)
    assert res.returncode == 0, res.stderr
    # Every match goes, whatever its status, old .sql.gz files too, newest first.
    gone = ["legacy", "failed", "good", "old"]
    assert not any(b[k].exists() for k in gone)
    assert b["archive"].exists() and b["other"].exists()
    positions = [res.stderr.index(f"deleted {b[k]}") for k in gone]
    assert positions == sorted(positions)
    # moodump itself deletes each one (under the run lock), never the script.
    deletes = [["prune", "--delete", str(b[k]), "--force"] for k in gone]
    expected = [c for pair in zip([["list", "--json"]] * 4, deletes, strict=True) for c in pair]
    assert rig.calls() == [*expected, ["list", "--json"]]


def test_prune_with_filter_leaves_a_running_backup_alone(rig) -> None:
    running = rig.backup("daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00", "STARTED")
    done = rig.backup("daily/2026-11-23/mysql-moodle_2026-11-23_01-00-00")
    res = rig.run("-s", "-p", "-f", "mysql-moodle_2026-11-2")
    assert res.returncode == 0, res.stderr
    assert running.exists() and not done.exists()


def test_prune_with_filter_stops_when_declined(rig) -> None:
    b = standard_backups(rig)
    res = rig.run("-p", "-f", "db2-wiki", stdin="n\n")
    assert res.returncode == 1
    assert b["other"].exists()


def test_prune_with_filter_and_no_match(rig) -> None:
    standard_backups(rig)
    res = rig.run("-s", "-p", "-f", "nothing-like-this")
    assert res.returncode == 5
    assert "no backup matches" in res.stderr


def test_help_exits_1(rig) -> None:
    res = rig.run("-h")
    assert res.returncode == 1
    assert "Usage:" in res.stdout and "moodump run --once" in res.stdout
    assert rig.calls() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-x",), "unknown option -x"),
        (("-r",), "option -r needs a value"),
        (("-1", "extra"), "unexpected argument: extra"),
        (("-f", "name"), "-f selects a backup for -r, -v or -p"),
        (("-s", "-r", "moodle"), "is not a database spec"),
    ],
)
def test_usage_errors_exit_2(rig, args, message) -> None:
    res = rig.run(*args)
    assert res.returncode == 2
    assert message in res.stderr
    assert rig.calls() == []


def test_missing_moodump_is_reported(rig, tmp_path) -> None:
    if shutil.which("moodump", path="/usr/bin:/bin"):
        pytest.skip("a moodump is installed in /usr/bin or /bin")
    empty = tmp_path / "empty"
    empty.mkdir()
    res = subprocess.run(
        ["bash", str(SCRIPT), "-1"],
        capture_output=True,
        text=True,
        env={"PATH": f"{empty}:/usr/bin:/bin"},
        timeout=30,
    )
    assert res.returncode == 127
    assert "moodump is not on PATH" in res.stderr


def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)
