"""Backups are private by default: files 0640, directories 0750, lock 0600, whatever the umask.

Backups hold every user's password hash and personal data on shared volumes, so no file
or directory of a backup may be world-readable unless MOODUMP_FILE_MODE asks for it. The
umask of the test process is set to a permissive (000) and a restrictive (077) value:
neither may change the modes moodump sets.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from helpers_failures import Source
from moodump import fsmodes, jobs
from moodump.config import load_config
from moodump.config.values import parse_file_mode
from moodump.dump import DumpOptions, dump
from moodump.errors import ConfigError
from moodump.lock import RunLock
from moodump.notify import Notifier
from moodump.storage.s3 import S3Backend
from moodump.storage.s3_settings import s3_settings_from_env

UMASKS = [0o000, 0o077]


@pytest.fixture(params=UMASKS, ids=["umask000", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """The permission bits of ``root`` and of everything below it."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for p in sorted(root.rglob("*")):
        out[p.relative_to(root).as_posix()] = stat.S_IMODE(p.lstat().st_mode)
    return out


def assert_private(root: Path, file_mode: int = 0o640, *, skip: tuple[str, ...] = ()) -> None:
    dir_mode = fsmodes.dir_mode(file_mode)
    for rel, mode in modes(root).items():
        path = root / rel
        if rel in skip:
            continue
        assert not mode & 0o007, f"{rel} is {mode:04o}: other users can reach it"
        if path.is_dir():
            assert mode == dir_mode, f"directory {rel} is {mode:04o}"
        elif path.name == "restore-with-mariadb.sh":
            assert mode == dir_mode, f"{rel} is {mode:04o}"  # executable: x where r
        else:
            assert mode == file_mode, f"{rel} is {mode:04o}"


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("text", "mode"), [("0640", 0o640), ("640", 0o640), ("0o660", 0o660), ("0600", 0o600)]
)
def test_file_mode_values(text: str, mode: int) -> None:
    assert parse_file_mode(text) == mode


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0666", "world-writable"),
        ("0642", "world-writable"),
        ("0777", "world-writable"),
        ("0440", "owner needs read and write"),
        ("rw-r-----", "not an octal"),
        ("1640", "between 0000 and 0777"),
    ],
)
def test_bad_file_modes_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"MOODUMP_FILE_MODE": text}, None, "backup.conf")


def test_directories_add_x_where_r_is_set() -> None:
    assert fsmodes.dir_mode(0o640) == 0o750
    assert fsmodes.dir_mode(0o660) == 0o770
    assert fsmodes.dir_mode(0o600) == 0o700
    assert fsmodes.dir_mode(0o644) == 0o755


def test_world_readable_is_allowed_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load_config({"MOODUMP_FILE_MODE": "0644"}, None, "backup.conf")
    assert cfg.file_mode == 0o644
    assert any("world-readable" in w for w in cfg.run_warnings)
    assert re.search(r"MOODUMP_FILE_MODE +0644", cfg.render())
    monkeypatch.setenv("MOODUMP_FILE_MODE", "0644")
    monkeypatch.setattr(fsmodes, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="moodump"):
        assert fsmodes.file_mode() == 0o644
    assert "world-readable" in caplog.text
    default = load_config({}, None, "backup.conf")
    assert default.file_mode == 0o640 and not default.run_warnings


def test_world_writable_environment_fails_where_a_file_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOODUMP_FILE_MODE", "0646")
    with pytest.raises(ConfigError, match=r"MOODUMP_FILE_MODE.*world-writable"):
        fsmodes.write_text(tmp_path / "x", "data")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the helpers


def test_helpers_ignore_the_umask(umask: int, tmp_path: Path) -> None:
    fsmodes.make_dir(tmp_path / "a" / "b" / "c", parents=True)
    fsmodes.make_dir(tmp_path / "a" / "b", parents=True, exist_ok=True)
    with pytest.raises(FileExistsError):
        fsmodes.make_dir(tmp_path / "a")
    with fsmodes.open_new(tmp_path / "a" / "new.bin") as fh:
        fh.write(b"x")
    with pytest.raises(FileExistsError):
        fsmodes.open_new(tmp_path / "a" / "new.bin")
    fsmodes.write_text(tmp_path / "a" / "b" / "text.json", "{}")
    fsmodes.write_text(tmp_path / "a" / "b" / "text.json", "{}")  # replaces, same mode
    fd, _name = fsmodes.mkstemp(tmp_path / "a", prefix=".tmp")
    os.close(fd)
    assert_private(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["c", "text.json"]


def test_lock_file_is_owner_only(umask: int, tmp_path: Path) -> None:
    path = tmp_path / ".moodump.lock"
    with RunLock(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # a lock file an older version left world-readable is narrowed when taken
    path.chmod(0o644)
    with RunLock(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_s3_objects_are_uploaded_private(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every object is written with the canned ACL bucket-owner-full-control (what a
    bucket with ACLs disabled still accepts; no grant to anyone else)."""
    import pyarrow.fs as pafs

    seen: dict[str, Any] = {}

    def fake(**kwargs: Any) -> object:
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(pafs, "S3FileSystem", fake)
    # Long values: S3Backend registers its keys for redaction for the rest of the process.
    env = {
        "S3_ENDPOINT": "http://127.0.0.1:1",
        "S3_BUCKET": "backups",
        "S3_USER": "acl-test-access-key",
        "S3_PASSWORD": "acl-test-secret-key",
    }
    settings = s3_settings_from_env(env)
    assert settings is not None
    S3Backend(settings)._filesystem()
    assert seen["default_metadata"] == {"ACL": "bucket-owner-full-control"}


# --------------------------------------------------------------------------- a dump, a run


def test_a_dump_is_private_whatever_the_umask(umask: int, small: Source, tmp_path: Path) -> None:
    out = tmp_path / "backups" / "one"
    (tmp_path / "backups").mkdir()
    dump(small.settings, small.database, out, DumpOptions(threads=2))
    assert_private(out)


def test_file_mode_0660_is_honoured(
    monkeypatch: pytest.MonkeyPatch, small: Source, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOODUMP_FILE_MODE", "0660")
    out = tmp_path / "one"
    dump(small.settings, small.database, out, DumpOptions(threads=1))
    assert_private(out, 0o660)
    assert modes(out)["manifest.json"] == 0o660 and modes(out)["."] == 0o770


def test_run_once_with_the_rolling_layout_is_private(
    umask: int, small: Source, tmp_path: Path
) -> None:
    """Tier and date folders, the backup, verify.json, the lock: nothing world-readable."""
    port = small.settings.port
    text = f"127.0.0.1:{port}/{small.database}\n0 1 * * * default ./backup.sh -s\n"
    env = {
        "BACKUP_DIR": f"{tmp_path / 'backups'}/",
        "BACKUP_STRATEGY": "rolling",
        "TZ": "America/Vancouver",
        "DATABASE_USER": small.settings.user,
        "MOODUMP_THREADS": "1",
        "MOODUMP_VERIFY_AFTER_BACKUP": "offline",
    }
    cfg = load_config(env, text, str(tmp_path / "backup.conf"))
    # a Sunday: the weekly tier
    now = datetime(2026, 11, 22, 1, 0, tzinfo=ZoneInfo("America/Vancouver"))
    report = jobs.run_once(cfg, now=now, notifier=Notifier())
    assert report.exit_code == 0, report
    root = tmp_path / "backups"
    (backup,) = [p.parent for p in root.rglob("manifest.json")]
    assert backup.parent.parent.name == "weekly"
    assert (backup / "verify.json").is_file()
    assert stat.S_IMODE((root / ".moodump.lock").stat().st_mode) == 0o600
    assert_private(root, skip=(".moodump.lock",))


def test_sweep_scratch_keeps_what_may_still_be_in_use(tmp_path: Path) -> None:
    """The throwaway servers' directories and the password file of a dead moodump go once
    they are an hour old; a live process's, a young one, one whose server still runs, and
    names moodump does not make stay."""
    import subprocess
    import sys
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = os.getppid()  # pytest's parent: alive for the whole test
    old = time.time() - 2 * 3600

    def make(name: str, *, server_pid: int | None = None, age: float = old) -> Path:
        p = tmp_path / name
        if name.startswith(("moodump-mariadb-", "moodump-pg-")):
            (p / "data").mkdir(parents=True)
            if server_pid is not None:
                (p / "mysqld.pid").write_text(f"{server_pid}\n")
            for q in (p / "data", p):
                os.utime(q, (age, age))
        else:
            p.write_text("*:*:*:u:secret\n")
            os.utime(p, (age, age))
        return p

    gone = [make(f"moodump-mariadb-{dead.pid}-abc"), make(f"moodump-pgpass-{dead.pid}-x1"),
            make(f"moodump-pg-{os.getpid()}-q")]  # fmt: skip
    kept = [make(f"moodump-pgpass-{live}-x2"), make(f"moodump-pg-{dead.pid}-young", age=time.time()),
            make(f"moodump-mariadb-{dead.pid}-srv", server_pid=live), make("moodump-pg-abcdefgh"),
            make(f"moodump-pgpass-{dead.pid}")]  # fmt: skip
    assert sorted(fsmodes.sweep_scratch(tmp_path)) == sorted(gone)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
