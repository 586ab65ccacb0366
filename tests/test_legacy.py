"""Old backup-container backups (``mysqldump DB | gzip`` as ``.sql.gz``) through moodump.

Real files: made by the stock ``mariadb-dump`` with the old container's options (none),
restored and verified by the real ``moodump`` command and ``container/backup.sh``
against the test MariaDB.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import moodump
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.legacy import is_legacy_file, scan_legacy

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "container" / "backup.sh"
ROWS = {"mdl_config": 3, "mdl_user": 300, "mdl_log": 0}


@pytest.fixture(scope="module")
def source(root_settings: ConnSettings) -> Iterator[str]:
    name = "t_legacy_src"
    q = quote_ident(name)
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {q}")
        c.execute(f"CREATE DATABASE {q} CHARACTER SET utf8mb4")
        c.execute(f"CREATE TABLE {q}.mdl_config (id BIGINT PRIMARY KEY, name VARCHAR(100), value TEXT)")
        c.execute(
            f"INSERT INTO {q}.mdl_config VALUES (1, 'version', '2024100700'), "
            "(2, 'siteadmins', '2'), (3, 'motd', 'it''s (not) a tuple: ),( \\\\ ''x'' \\n end')"
        )
        c.execute(f"CREATE TABLE {q}.mdl_config_plugins (id BIGINT PRIMARY KEY)")
        c.execute(
            f"CREATE TABLE {q}.mdl_user (id BIGINT PRIMARY KEY, username VARCHAR(100), "
            "deleted TINYINT NOT NULL DEFAULT 0, bio BLOB)"
        )
        c.execute(
            f"INSERT INTO {q}.mdl_user SELECT seq, CONCAT('user(', seq, ')'), 0, "
            f"UNHEX(SHA2(seq, 256)) FROM {q}.seq_1_to_300"
        )
        c.execute(f"CREATE TABLE {q}.mdl_log (id BIGINT PRIMARY KEY)")
        c.execute(f"CREATE VIEW {q}.v_users AS SELECT id, username FROM {q}.mdl_user")
    with connect(root_settings.with_database(name)) as c:
        c.execute("CREATE TRIGGER trg BEFORE INSERT ON mdl_log FOR EACH ROW SET NEW.id = NEW.id")
    yield name
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {q}")


def client_env(settings: ConnSettings) -> dict[str, str]:
    return {**os.environ, "MYSQL_PWD": settings.password}


@pytest.fixture(scope="module")
def sql(root_settings: ConnSettings, source: str) -> bytes:
    """What the old container's ``mysqldump -h H -u U DB`` wrote (before gzip)."""
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    assert dump, "the mariadb client tools are installed with the server"
    args = [dump, "--no-defaults", "-h", root_settings.host, "-P", str(root_settings.port)]
    args += ["-u", root_settings.user, source]
    return subprocess.run(args, capture_output=True, check=True, env=client_env(root_settings)).stdout


def write_gz(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data))
    return path


@pytest.fixture
def legacy(tmp_path: Path, sql: bytes) -> Path:
    return write_gz(
        tmp_path / "backups/monthly/2026-10-31/127.0.0.1-moodle_2026-10-31_01-00-00.sql.gz", sql
    )


def moodump_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moodump", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip


def conn_args(settings: ConnSettings) -> list[str]:
    return ["-H", settings.host, "-P", str(settings.port), "-u", settings.user]


def counts(settings: ConnSettings, db: str) -> dict[str, int]:
    with connect(settings) as c:
        return {
            t: int(c.scalar(f"SELECT COUNT(*) FROM {quote_ident(db)}.{quote_ident(t)}") or 0)
            for t in ROWS
        }


def drop(settings: ConnSettings, db: str) -> None:
    with connect(settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(db)}")


def test_scan_counts_rows_per_table_from_the_stream(legacy: Path) -> None:
    assert is_legacy_file(legacy)
    scan = scan_legacy(legacy)
    assert scan.completed and scan.own_database is None
    assert {t: scan.tables[t] for t in ROWS} == ROWS


def test_restore_an_old_file_like_a_backup(
    root_settings: ConnSettings, legacy: Path, tmp_path: Path
) -> None:
    target = "t_legacy_restored"
    drop(root_settings, target)
    try:
        res = moodump_cli("restore", *conn_args(root_settings), str(legacy), "-d", target, "-q")
        assert res.returncode == 0, res.stderr
        assert "restored old backup" in res.stdout
        assert counts(root_settings, target) == ROWS
        with connect(root_settings) as c:
            motd = c.scalar(f"SELECT value FROM {quote_ident(target)}.mdl_config WHERE id = 3")
            assert motd == b"it's (not) a tuple: ),( \\ 'x' \n end"
            assert c.scalar(f"SELECT COUNT(*) FROM {quote_ident(target)}.v_users") in (300, b"300")

        # A non-empty target is refused without --drop (exit 12), untouched.
        res = moodump_cli("restore", *conn_args(root_settings), str(legacy), "-d", target, "-q")
        assert res.returncode == 12, res.stderr
        assert "--drop" in res.stderr
        with connect(root_settings) as c:
            c.execute(f"INSERT INTO {quote_ident(target)}.mdl_log VALUES (7)")
            c.execute(f"CREATE TABLE {quote_ident(target)}.only_in_target (id INT)")
        res = moodump_cli(
            "restore", *conn_args(root_settings), str(legacy), "-d", target, "--drop", "-y", "-q"
        )
        assert res.returncode == 0, res.stderr
        assert counts(root_settings, target) == ROWS  # replaced, not merged
        with connect(root_settings) as c:
            left = c.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                f"WHERE TABLE_SCHEMA = '{target}' AND TABLE_NAME = 'only_in_target'"
            )
        assert left == []
    finally:
        drop(root_settings, target)


def test_a_truncated_file_fails_before_the_target_is_touched(
    root_settings: ConnSettings, legacy: Path, sql: bytes
) -> None:
    data = legacy.read_bytes()
    legacy.write_bytes(data[: len(data) * 2 // 3])  # a copy cut short
    target = "t_legacy_truncated"
    drop(root_settings, target)
    res = moodump_cli("restore", *conn_args(root_settings), str(legacy), "-d", target, "-q")
    assert res.returncode == 8, res.stderr
    assert "truncated" in res.stderr
    with connect(root_settings) as c:
        assert not c.query(f"SHOW DATABASES LIKE '{target}'")
    res = moodump_cli("verify", "--offline", str(legacy))
    assert res.returncode == 8 and "truncated" in res.stderr

    # A valid gzip of half a dump: mysqldump died, the old plugin reported gzip's success.
    cut = sql[: sql.index(b"-- Dump completed")]
    cut = cut[: cut.index(b"INSERT INTO `mdl_user`")]
    write_gz(legacy, cut)
    res = moodump_cli("restore", *conn_args(root_settings), str(legacy), "-d", target, "-q")
    assert res.returncode == 8 and "not a complete mysqldump" in res.stderr
    with connect(root_settings) as c:
        assert not c.query(f"SHOW DATABASES LIKE '{target}'")


def test_verify_an_old_file_by_restore_compares_row_counts(
    root_settings: ConnSettings, legacy: Path, sql: bytes
) -> None:
    res = moodump_cli("verify", *conn_args(root_settings), "--json", str(legacy))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["method"] == "legacy" and report["passed"]
    assert report["tables_checked"] == 4 and report["rows_checked"] == sum(ROWS.values())
    assert any("no digests" in n for n in report["notes"])
    assert report["moodle"]["siteadmins"] == ["2"] and report["moodle"]["admin_user"]

    # Rows the file inserts but the restored table lacks: the counts differ, FAIL (exit 8).
    tampered = sql.replace(
        b"-- Dump completed", b"DELETE FROM `mdl_user` WHERE id = 5;\n-- Dump completed"
    )
    write_gz(legacy, tampered)
    res = moodump_cli("verify", *conn_args(root_settings), str(legacy))
    assert res.returncode == 8
    assert "table mdl_user: 299 rows after the restore, the file inserts 300" in res.stderr
    with connect(root_settings) as c:  # the scratch databases are gone
        assert not c.query("SHOW DATABASES LIKE 'moodump_verify_%'")


def test_backup_sh_restores_and_verifies_an_old_file(
    root_settings: ConnSettings, legacy: Path, tmp_path: Path
) -> None:
    """``backup.sh -r SPEC -f FILTER`` and ``backup.sh -v SPEC -f FILTER`` on an old file,
    through the real script and the real moodump (restore by its spec's credentials)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "moodump"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m moodump "$@"\n')
    wrapper.chmod(0o755)
    conf = tmp_path / "backup.conf"
    conf.write_text(f"127.0.0.1:{root_settings.port}/t_legacy_sh\n")
    env = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(moodump.__file__).resolve().parents[1]),
        "TZ": "PST8PDT",
        "BACKUP_CONF": str(conf),
        "BACKUP_DIR": f"{tmp_path / 'backups'}/",
        "DATABASE_USER": root_settings.user,
        "DATABASE_PASSWORD": root_settings.password,
    }
    drop(root_settings, "t_legacy_sh")
    try:
        run = [
            "bash", str(SCRIPT), "-s", "-r", f"127.0.0.1:{root_settings.port}/t_legacy_sh",
            "-f", "2026-10-31_01-00-00.sql.gz",
        ]  # fmt: skip
        res = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert counts(root_settings, "t_legacy_sh") == ROWS
        verify = ["bash", str(SCRIPT), "-v", f"127.0.0.1:{root_settings.port}/t_legacy_sh"]
        verify += ["-f", "127.0.0.1-moodle_2026-10-31"]
        res = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("PASS (legacy)"), res.stdout
    finally:
        drop(root_settings, "t_legacy_sh")
