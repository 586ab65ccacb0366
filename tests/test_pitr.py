"""Point-in-time recovery against a real MariaDB with a binary log (issue 16 acceptance).

The module starts its own server (``--log-bin --server-id=1 --binlog-format=ROW``). The
target time is taken from the server's clock and placed between seconds, because binary
log event times are whole seconds: every write before it happened in an earlier second,
every destructive change more than a second later.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from helpers import moodump_cli
from moodump.db import ConnSettings, connect
from moodump.db.localserver import LocalServer
from moodump.dump import DumpOptions, dump
from moodump.pitr import Archive, verify_archive

pytestmark = pytest.mark.db  # starts its own MariaDB server

ZONE = "Asia/Kolkata"  # +05:30, so a zone mistake cannot hide behind whole hours


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(binlog=True) as s:
        yield s


@pytest.fixture(scope="module")
def conn(server: LocalServer) -> ConnSettings:
    return ConnSettings(host="127.0.0.1", port=server.port, user="root", password="")


def _cli(conn: ConnSettings, *args: str) -> subprocess.CompletedProcess:
    return moodump_cli(*args, env={"TZ": ZONE, "MYSQL_PWD": ""})


def _server_args(conn: ConnSettings) -> list[str]:
    return ["-H", conn.host, "-P", str(conn.port), "-u", conn.user]


def _state(conn: ConnSettings, db: str) -> dict[str, tuple[int, int]]:
    """Each table's row count and CHECKSUM TABLE."""
    with connect(conn) as c:
        tables = sorted(
            r[0].decode()
            for r in c.query(
                f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{db}' "
                "AND TABLE_NAME NOT LIKE '\\_moodump%'"
            )
        )
        out = {}
        for t in tables:
            n = int(c.scalar(f"SELECT COUNT(*) FROM `{db}`.`{t}`") or 0)
            cs = int(c.query(f"CHECKSUM TABLE `{db}`.`{t}`")[0][1] or 0)
            out[t] = (n, cs)
        return out


def _server_time(conn: ConnSettings) -> float:
    with connect(conn) as c:
        return float(c.scalar("SELECT UNIX_TIMESTAMP(NOW(6))") or 0)


def _wait_server_time(conn: ConnSettings, t: float) -> None:
    while (now := _server_time(conn)) < t:
        time.sleep(min(0.2, t - now + 0.01))


def _writes(conn: ConnSettings, db: str) -> None:
    s = conn.with_database(db)
    with connect(s) as c:
        c.execute("INSERT INTO t1 (v, n) VALUES ('after-dump', 1), ('x', 2), ('y', 3)")
        c.execute("UPDATE t1 SET n = n + 100 WHERE id % 3 = 0")
        c.execute("DELETE FROM t1 WHERE id % 7 = 0")
        c.execute("FLUSH BINARY LOGS")  # the range spans files
        c.execute("CREATE TABLE t3 (id INT PRIMARY KEY, note TEXT)")
        c.execute("INSERT INTO t3 VALUES (1, 'new table'), (2, REPEAT('z', 5000))")
        c.execute("UPDATE t2 SET w = CONCAT(w, '!') WHERE k < 5")
        c.execute("START TRANSACTION")
        c.execute("INSERT INTO t2 (k, w) VALUES (1000, 'in a transaction')")
        c.execute("DELETE FROM t2 WHERE k = 3")
        c.execute("COMMIT")


def _destroy(conn: ConnSettings, db: str) -> None:
    s = conn.with_database(db)
    with connect(s) as c:
        c.execute("DELETE FROM t1 WHERE id > 10")
        c.execute("DROP TABLE t2")
        c.execute("INSERT INTO t3 VALUES (3, 'too late')")


@pytest.fixture(scope="module")
def scenario(conn: ConnSettings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Dump, write, note T (and the position there), destroy, pull."""
    db = "moodle_pitr"
    base = tmp_path_factory.mktemp("pitr")
    s = conn.with_database(None)
    with connect(s) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t1 (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(50), n INT)")
        c.execute(f"CREATE TABLE {db}.t2 (k INT PRIMARY KEY, w VARCHAR(100))")
        c.execute(
            f"INSERT INTO {db}.t1 (v, n) SELECT CONCAT('row', seq), seq FROM {db}.seq_1_to_200"
        )
        c.execute(f"INSERT INTO {db}.t2 SELECT seq, CONCAT('w', seq) FROM {db}.seq_1_to_50")
        c.execute("CREATE DATABASE other_db")
        c.execute("CREATE TABLE other_db.o (id INT PRIMARY KEY)")
        c.execute("FLUSH BINARY LOGS")  # older files for retention to prune
        c.execute("FLUSH BINARY LOGS")
    backup = base / "backup"
    m = dump(s, db, backup, DumpOptions(threads=2)).manifest
    assert m.snapshot["binlog_file"]
    _writes(conn, db)
    with connect(s) as c:
        c.execute("INSERT INTO other_db.o VALUES (1), (2)")  # another database: not replayed
    # T: the next whole second after the writes; nothing is written until T + 1.2 s.
    t_epoch = math.ceil(_server_time(conn))
    _wait_server_time(conn, t_epoch + 1.2)
    at_t = _state(conn, db)
    with connect(s) as c:
        file, pos = (x.decode() for x in c.query("SHOW MASTER STATUS")[0][:2])
        gtid = (c.scalar("SELECT @@GLOBAL.gtid_binlog_pos") or b"").decode()
    _destroy(conn, db)
    assert _state(conn, db) != at_t
    archive = base / "binlog"
    r = _cli(conn, "binlog", "pull", *_server_args(conn), "--output", str(archive))
    assert r.returncode == 0, r.stderr
    return {
        "db": db,
        "backup": backup,
        "archive": archive,
        "t": t_epoch,
        "position": f"{file}:{pos}",
        "gtid": gtid,
        "at_t": at_t,
    }


def _local_text(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")


def test_restore_until_time_matches_the_source_at_that_time(conn, scenario):
    target = "pitr_by_time"
    r = _cli(
        conn, "restore", str(scenario["backup"]), *_server_args(conn), "-d", target,
        "--until", _local_text(scenario["t"]), "--binlog-dir", str(scenario["archive"]), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "replayed" in r.stdout
    assert _state(conn, target) == scenario["at_t"]
    assert set(scenario["at_t"]) == {"t1", "t2", "t3"}
    # the source and the other database were not touched by the replay
    assert "t2" not in _state(conn, scenario["db"])
    with connect(conn) as c:
        assert int(c.scalar("SELECT COUNT(*) FROM other_db.o") or 0) == 2


def test_restore_until_position_matches_the_source_at_that_position(conn, scenario):
    target = "pitr_by_position"
    r = _cli(
        conn, "restore", str(scenario["backup"]), *_server_args(conn), "-d", target,
        "--until-position", scenario["position"], "--binlog-dir", str(scenario["archive"]),
        "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert f"{out['replay']['stop_file']}:{out['replay']['stop_position']}" == scenario["position"]
    assert out["replay"]["events"] > 0
    assert _state(conn, target) == scenario["at_t"]


def test_restore_until_gtid_includes_that_transaction(conn, scenario):
    target = "pitr_by_gtid"
    r = _cli(
        conn, "restore", str(scenario["backup"]), *_server_args(conn), "-d", target,
        "--until-gtid", scenario["gtid"], "--binlog-dir", str(scenario["archive"]), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _state(conn, target) == scenario["at_t"]


def test_prune_keeps_everything_from_the_oldest_kept_backup(scenario, tmp_path):
    import shutil

    archive = tmp_path / "archive"
    shutil.copytree(scenario["archive"], archive)
    root = tmp_path / "backups"
    day = root / "2026-12-06"
    day.mkdir(parents=True)
    shutil.copytree(scenario["backup"], day / "mysql-moodle_pitr_2026-12-06_01-00-00")
    snap_file = json.loads((scenario["backup"] / "manifest.json").read_text())["snapshot"][
        "binlog_file"
    ]
    before = [f.name for f in Archive.open(archive).chain.files]
    r = moodump_cli("binlog", "prune", "--binlog-dir", str(archive), "--backup-dir", str(root))
    assert r.returncode == 0, r.stderr
    after = [f.name for f in Archive.open(archive).chain.files]
    assert after == [n for n in before if n >= snap_file] and after[0] == snap_file
    assert len(after) < len(before)
    assert sorted(p.name for p in archive.glob("*.zst")) == [n + ".zst" for n in after]
    assert verify_archive(archive, backup_dir=root).ok
    # without any backup nothing goes
    r = moodump_cli("binlog", "prune", "--binlog-dir", str(archive), "--backup-dir",
                    str(tmp_path / "none"))  # fmt: skip
    assert r.returncode == 0 and [f.name for f in Archive.open(archive).chain.files] == after


def test_a_utc_offset_in_until_overrides_the_zone(conn, scenario):
    target = "pitr_by_utc"
    iso = datetime.fromtimestamp(scenario["t"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = _cli(
        conn, "restore", str(scenario["backup"]), *_server_args(conn), "-d", target,
        "--until", iso, "--binlog-dir", str(scenario["archive"]), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _state(conn, target) == scenario["at_t"]


def test_a_target_before_the_snapshot_is_refused(conn, scenario):
    r = _cli(
        conn, "restore", str(scenario["backup"]), *_server_args(conn), "-d", "pitr_never",
        "--until", "2001-01-01 00:00:00", "--binlog-dir", str(scenario["archive"]),
    )  # fmt: skip
    assert r.returncode == 16, r.stderr
    assert "before the backup's snapshot" in r.stderr
    with connect(conn) as c:
        assert not c.query("SHOW DATABASES LIKE 'pitr_never'")


def test_the_archive_verifies(scenario):
    res = verify_archive(scenario["archive"])
    assert res.ok, res.problems
    assert res.files_checked >= 2


def _binlog_files(server: LocalServer) -> dict[str, bytes]:
    assert server.base_dir is not None
    return {
        p.name: p.read_bytes()
        for p in sorted(server.base_dir.glob("binlog.[0-9]*"))
        if p.name.split(".")[-1].isdigit()
    }


def test_sigkill_of_pull_follow_then_resume_archives_everything_once(server, conn, tmp_path):
    archive = tmp_path / "followed"
    db = "pitr_follow"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.big (id INT AUTO_INCREMENT PRIMARY KEY, pad TEXT)")
    stop = threading.Event()

    def writer() -> None:
        with connect(conn.with_database(db)) as w:
            i = 0
            while not stop.is_set():
                w.execute("INSERT INTO big (pad) VALUES (REPEAT('p', 2000))")
                i += 1
                if i % 400 == 0:
                    w.execute("FLUSH BINARY LOGS")

    cmd = [sys.executable, "-m", "moodump", "binlog", "pull", *_server_args(conn),
           "--output", str(archive), "--follow", "--publish-interval", "1"]  # fmt: skip
    env = {**os.environ, "MYSQL_PWD": ""}
    th = threading.Thread(target=writer)
    th.start()
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        staging = archive / ".incoming"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a complete file archived, the next one half-way
            chain = json.loads((archive / "chain.json").read_text()) if (
                archive / "chain.json"
            ).exists() else {"files": []}  # fmt: skip
            open_files = [p for p in staging.glob("binlog.*")] if staging.exists() else []
            if any(f["complete"] for f in chain["files"]) and any(
                p.stat().st_size > 20_000 for p in open_files
            ):
                break
            time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail("the follower archived no complete file: " + proc.stderr.read().decode())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
    finally:
        stop.set()
        th.join()
    # the fetcher died with it (it would otherwise keep writing into staging)
    sizes = {p.name: p.stat().st_size for p in (archive / ".incoming").glob("binlog.*")}
    time.sleep(1.0)
    assert sizes == {p.name: p.stat().st_size for p in (archive / ".incoming").glob("binlog.*")}
    with connect(conn) as c:
        c.execute(f"INSERT INTO {db}.big (pad) VALUES ('after the kill')")
    # start it again; stop it with SIGTERM once it caught up
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    a = Archive.open(archive)
    names = [f.name for f in a.chain.files]
    assert len(names) == len(set(names))
    on_server = _binlog_files(server)
    first = names[0]
    expected = [n for n in on_server if n >= first]
    assert names == expected
    for f in a.chain.files:
        data, disk = b"".join(a.raw_blocks(f)), on_server[f.name]
        if not f.complete:
            # the server's open file has the "in use" flag in its first event; the copy
            # it sends does not: compare every event after that one
            fde_end = 4 + int.from_bytes(disk[13:17], "little")
            data, disk = data[fde_end:], disk[fde_end:]
        assert data == disk, f.name  # byte for byte: nothing lost or doubled
    assert a.chain.files[-1].complete is False
    assert all(f.complete for f in a.chain.files[:-1])
    assert verify_archive(archive).ok


def test_a_purged_unarchived_log_makes_restore_refuse_naming_the_range(conn, tmp_path):
    db = "pitr_gap"
    s = conn.with_database(None)
    archive = tmp_path / "gappy"
    with connect(s) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY)")
    r = _cli(conn, "binlog", "pull", *_server_args(conn), "--output", str(archive))
    assert r.returncode == 0, r.stderr
    backup = tmp_path / "backup"
    dump(s, db, backup, DumpOptions(threads=1))
    with connect(s) as c:
        c.execute(f"INSERT INTO {db}.t VALUES (1)")
        c.execute("FLUSH BINARY LOGS")
        c.execute(f"INSERT INTO {db}.t VALUES (2)")
        c.execute("FLUSH BINARY LOGS")
        current = c.query("SHOW MASTER STATUS")[0][0].decode()
        deadline = time.monotonic() + 30
        while c.query("SHOW BINARY LOGS")[0][0].decode() != current:
            # the server keeps files until InnoDB checkpointed them: try until it lets go
            assert time.monotonic() < deadline, "PURGE BINARY LOGS removed nothing"
            c.execute(f"PURGE BINARY LOGS TO '{current}'")
            time.sleep(0.2)
        c.execute(f"INSERT INTO {db}.t VALUES (3)")
    r = _cli(conn, "binlog", "pull", *_server_args(conn), "--output", str(archive))
    assert r.returncode == 16, r.stderr
    assert "PITR unavailable from" in r.stderr and "(unknown time)" not in r.stderr
    # the next pull continues after the gap: the open file whose rest was purged is not
    # "needed" again (it was: each pull recorded the gap again, exited 16 and fetched the
    # server's files from its oldest one)
    with connect(s) as c:
        c.execute(f"INSERT INTO {db}.t VALUES (4)")
    r = _cli(conn, "binlog", "pull", *_server_args(conn), "--output", str(archive))
    assert r.returncode == 0, r.stderr
    assert len(Archive.open(archive).chain.gaps) == 1
    until = _local_text(int(_server_time(conn)) + 1)
    _wait_server_time(conn, int(_server_time(conn)) + 1.1)
    r = _cli(
        conn, "restore", str(backup), *_server_args(conn), "-d", "pitr_gap_restored",
        "--until", until, "--binlog-dir", str(archive),
    )  # fmt: skip
    assert r.returncode == 16, r.stderr
    assert "PITR unavailable from" in r.stderr and "was purged" in r.stderr
    with connect(conn) as c:
        assert not c.query("SHOW DATABASES LIKE 'pitr_gap_restored'")
    st = moodump_cli("binlog", "status", "--binlog-dir", str(archive))
    assert st.returncode == 16 and "PITR unavailable" in st.stderr
    # moodump status and the metrics say it too
    from moodump.config import load_config
    from moodump.jobs.exporter import gather_facts
    from moodump.jobs.metrics import metrics_text
    from moodump.jobs.state import RunState
    from moodump.jobs.status import render_status, status

    env = {"BACKUP_DIR": str(tmp_path / "backups") + "/", "TZ": ZONE, "DATABASE_USER": "root",
           "MOODUMP_BINLOG_DIR": str(archive)}  # fmt: skip
    cfg = load_config(env, f"127.0.0.1:{conn.port}/{db}\n", str(tmp_path / "backup.conf"))
    report = status(cfg, now=datetime.now(ZoneInfo(ZONE)))
    assert not report.healthy and "PITR unavailable from" in report.binlog_problems[0]
    assert "PITR unavailable from" in render_status(report)
    assert f'moodump_binlog_gaps{{path="{archive}"}} 1.0' in metrics_text(
        RunState(), gather_facts(cfg)
    )


def test_an_account_without_binlog_replay_is_refused_before_the_restore(conn, scenario):
    with connect(conn) as c:
        c.execute("CREATE USER IF NOT EXISTS pitr_weak@'%' IDENTIFIED BY 'weak-pw'")
        c.execute("GRANT ALL ON `pitr_weak_db`.* TO pitr_weak@'%'")
    r = moodump_cli(
        "restore", str(scenario["backup"]), "-H", conn.host, "-P", str(conn.port),
        "-u", "pitr_weak", "-d", "pitr_weak_db", "--until-position", scenario["position"],
        "--binlog-dir", str(scenario["archive"]), env={"MYSQL_PWD": "weak-pw"},
    )  # fmt: skip
    assert r.returncode == 4, r.stderr
    assert "BINLOG REPLAY" in r.stderr
    with connect(conn) as c:
        assert not c.query("SHOW DATABASES LIKE 'pitr_weak_db'")


def test_a_qualified_statement_refuses_a_restore_into_another_name(conn, tmp_path):
    db = "pitr_qualified"
    s = conn.with_database(None)
    with connect(s) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY)")
    backup = tmp_path / "backup"
    dump(s, db, backup, DumpOptions(threads=1))
    with connect(conn.with_database(db)) as c:
        c.execute(f"ALTER TABLE {db}.t ADD COLUMN c INT")  # rename would miss this name
    archive = tmp_path / "archive"
    assert (
        _cli(conn, "binlog", "pull", *_server_args(conn), "--output", str(archive)).returncode == 0
    )
    r = _cli(
        conn, "restore", str(backup), *_server_args(conn), "-d", "pitr_qualified_copy",
        "--until-position", f"{Archive.open(archive).chain.files[-1].name}:"
        f"{Archive.open(archive).chain.files[-1].size}", "--binlog-dir", str(archive),
    )  # fmt: skip
    assert r.returncode == 16, r.stderr
    assert "which the rename would not change" in r.stderr and "ALTER TABLE" in r.stderr
    with connect(conn) as c:
        assert not c.query("SHOW DATABASES LIKE 'pitr_qualified_copy'")


def test_the_cycles_verify_and_prune_the_archive_with_moodump_binlog_dir(conn, tmp_path):
    from moodump import jobs
    from moodump.config import load_config

    db = "pitr_cycle"
    with connect(conn) as c:
        c.execute(f"CREATE DATABASE {db}")
        c.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY)")
        c.execute("FLUSH BINARY LOGS")
    archive = tmp_path / "archive"
    assert (
        _cli(conn, "binlog", "pull", *_server_args(conn), "--output", str(archive)).returncode == 0
    )
    conf = tmp_path / "backup.conf"
    conf.write_text(f"127.0.0.1:{conn.port}/{db}\n")
    env = {
        "BACKUP_DIR": str(tmp_path / "backups") + "/", "TZ": ZONE, "DATABASE_USER": "root",
        "MOODUMP_THREADS": "1", "MOODUMP_VERIFY_AFTER_BACKUP": "none",
        "MOODUMP_BINLOG_DIR": str(archive),
    }  # fmt: skip
    cfg = load_config(env, conf.read_text(), str(conf))
    assert jobs.run_once(cfg).exit_code == 0
    with connect(conn) as c:
        c.execute(f"INSERT INTO {db}.t VALUES (1)")
    assert (
        _cli(conn, "binlog", "pull", *_server_args(conn), "--output", str(archive)).returncode == 0
    )
    before = [f.name for f in Archive.open(archive).chain.files]
    pruned = jobs.prune_once(cfg)
    assert pruned.exit_code == 0
    after = [f.name for f in Archive.open(archive).chain.files]
    assert 0 < len(after) < len(before)
    assert [p for p in pruned.pruned if str(archive) in p]
    assert jobs.verify_all(cfg, method="offline").exit_code == 0
    from moodump.jobs.exporter import gather_facts
    from moodump.jobs.metrics import metrics_text
    from moodump.jobs.state import RunState

    text = metrics_text(RunState(), gather_facts(cfg))
    assert f'moodump_binlog_gaps{{path="{archive}"}} 0.0' in text
    assert f'moodump_binlog_archive_files{{path="{archive}"}} {float(len(after))}' in text
    assert "moodump_binlog_covered_until_timestamp_seconds{" in text
    victim = archive / Archive.open(archive).chain.files[-1].stored
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # always a change (a 0 byte may be there)
    report = jobs.verify_all(cfg, method="offline")
    assert report.exit_code == 8
    assert any("binlog archive" in text for _, text in report.errors)
    r = moodump_cli("binlog", "verify", "--binlog-dir", str(archive))
    assert r.returncode == 8 and "does not match its checksum" in r.stderr, r.stderr


def test_pull_follow_survives_a_server_restart(tmp_path):
    archive = tmp_path / "archive"
    with LocalServer(binlog=True) as own:
        s = ConnSettings(host="127.0.0.1", port=own.port, user="root", password="")
        with connect(s) as c:
            c.execute("CREATE DATABASE r")
            c.execute("CREATE TABLE r.t (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)")
            c.execute("INSERT INTO r.t (v) VALUES ('before the restart')")
        cmd = [sys.executable, "-m", "moodump", "binlog", "pull", *_server_args(s),
               "--output", str(archive), "--follow", "--publish-interval", "1"]  # fmt: skip
        proc = subprocess.Popen(cmd, env={**os.environ, "MYSQL_PWD": ""},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            time.sleep(3)
            own.stop(remove=False)
            own.start()
            with connect(s) as c:
                c.execute("INSERT INTO r.t (v) VALUES ('after the restart')")
                c.execute("FLUSH BINARY LOGS")
                c.execute("INSERT INTO r.t (v) VALUES ('in the next file')")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                a = Archive.open(archive)
                if [f.name for f in a.chain.files if f.complete] == list(_binlog_files(own))[:-1]:
                    break
                time.sleep(0.5)
            time.sleep(2)  # the open file is published every second
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        a = Archive.open(archive)
        on_server = _binlog_files(own)
        assert [f.name for f in a.chain.files] == list(on_server)
        assert len(on_server) >= 3  # the restart and the flush each started a file
        last = a.chain.files[-1]
        assert last.size == len(on_server[last.name])
        assert verify_archive(archive).ok


def test_latest_with_until_picks_the_newest_backup_before_that_time(conn, scenario, tmp_path):
    import shutil

    root = tmp_path / "backups"
    (root / "2026-12-06").mkdir(parents=True)
    shutil.copytree(
        scenario["backup"], root / "2026-12-06" / "mysql-moodle_pitr_2026-12-06_01-00-00"
    )
    target = "pitr_latest"
    r = _cli(
        conn, "restore", str(root), "--latest", "mysql/moodle_pitr", *_server_args(conn),
        "-d", target, "--until", _local_text(scenario["t"]),
        "--binlog-dir", str(scenario["archive"]), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _state(conn, target) == scenario["at_t"]
    r = _cli(
        conn, "restore", str(root), "--latest", "mysql/moodle_pitr", *_server_args(conn),
        "-d", "pitr_latest_none", "--until", "2001-01-01 00:00:00",
        "--binlog-dir", str(scenario["archive"]),
    )  # fmt: skip
    assert r.returncode == 5 and "taken before" in r.stderr, r.stderr


def test_pull_needs_only_replication_slave_and_binlog_monitor(conn, tmp_path):
    with connect(conn) as c:
        c.execute("CREATE USER IF NOT EXISTS pitr_puller@'%' IDENTIFIED BY 'pull-pw'")
        c.execute("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO pitr_puller@'%'")
        c.execute("CREATE USER IF NOT EXISTS pitr_nobody@'%' IDENTIFIED BY 'nobody-pw'")
    args = ["binlog", "pull", "-H", conn.host, "-P", str(conn.port), "--output"]
    r = moodump_cli(*args, str(tmp_path / "a"), "-u", "pitr_puller", env={"MYSQL_PWD": "pull-pw"})
    assert r.returncode == 0, r.stderr
    assert "pull-pw" not in r.stderr + r.stdout
    assert Archive.open(tmp_path / "a").chain.files
    r = moodump_cli(*args, str(tmp_path / "b"), "-u", "pitr_nobody", env={"MYSQL_PWD": "nobody-pw"})
    assert r.returncode == 4, r.stderr
    assert "BINLOG MONITOR" in r.stderr


def test_the_replay_benchmark_runs(tmp_path):
    """benchmarks/pitr.py end to end at a tiny size (no figure is asserted)."""
    out = tmp_path / "b.json"
    r = subprocess.run(
        [sys.executable, str(Path(__file__).parent.parent / "benchmarks" / "pitr.py"),
         "--txns", "30", "--bulk-rows", "100", "--repeat", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["events"] > 30 and set(res["seconds"]) == {
        "moodump", "baseline", "baseline_no_gtids",
    }  # fmt: skip


def test_a_scheduled_binlog_pull_line_is_run_by_the_scheduler(conn, tmp_path):
    from moodump.cli._cron import moodump_line_parser
    from moodump.config import load_config
    from moodump.errors import ConfigError
    from moodump.jobs.scheduler import run_job, scheduled_jobs

    archive = tmp_path / "archive"
    text = (
        f"127.0.0.1:{conn.port}/pitr_sched\n"
        f"*/5 * * * * default moodump binlog pull --output {archive}\n"
    )
    env = {"BACKUP_DIR": str(tmp_path / "backups") + "/", "TZ": ZONE, "DATABASE_USER": "root"}
    cfg = load_config(env, text, str(tmp_path / "backup.conf"))
    ((_, job),) = scheduled_jobs(cfg, moodump_line_parser(cfg))
    assert job.kind == "binlog" and job.binlog_output == str(archive)
    assert job.describe() == f"binlog pull into {archive}"
    report = run_job(cfg, job)
    assert report.exit_code == 0, report.errors
    assert Archive.open(archive).chain.files
    follow = load_config(env, text.replace("--output", "--follow --output"), "backup.conf")
    with pytest.raises(ConfigError, match="--follow never ends"):
        scheduled_jobs(follow, moodump_line_parser(follow))


def test_a_second_pull_continues_the_open_file_instead_of_fetching_it_again(server, conn, tmp_path):
    archive = tmp_path / "archive"
    args = ["binlog", "pull", *_server_args(conn), "--output", str(archive)]
    with connect(conn) as c:
        c.execute("CREATE DATABASE IF NOT EXISTS pitr_cont")
        c.execute("CREATE TABLE pitr_cont.t (id INT PRIMARY KEY)")
    assert _cli(conn, *args).returncode == 0
    first = Archive.open(archive).chain.files[-1]
    with connect(conn) as c:
        c.execute("INSERT INTO pitr_cont.t VALUES (1), (2)")
    r = _cli(conn, *args)
    assert r.returncode == 0, r.stderr
    assert f"continuing {first.name} from position {first.size}" in r.stderr
    a = Archive.open(archive)
    last = a.chain.get(first.name)
    assert last is not None and last.size > first.size
    disk = _binlog_files(server)[first.name]
    data = b"".join(a.raw_blocks(last))
    fde_end = 4 + int.from_bytes(disk[13:17], "little")  # the open file's in-use flag
    assert data[fde_end:] == disk[fde_end:] and data[:21] == disk[:21]
    assert verify_archive(archive).ok
