"""``moodump dump`` fails closed (issue 2, point 8), shown against real servers and processes.

Every failure must give a message naming the problem and the next step, the documented
exit code, publish nothing (no backup directory, no ``.partial-*`` work directory left)
and leave existing backups byte-identical. The CLI runs as a subprocess with the password
in ``MYSQL_PWD``; servers are really killed or stopped, disks really fill up.

When one of these tests finds a defect of the library, it is marked
``xfail(strict=True, reason="BUG: ...")`` until the library is fixed (the strict mark turns
the fix into an XPASS failure, so the mark cannot outlive the bug).
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers_failures import (
    Source,
    account,
    big_sql,
    cli_argv,
    cli_env,
    conn_args,
    data_files_in_progress,
    execute,
    finish,
    partial_dirs,
    read_json,
    run_cli,
    spawn_cli,
    tree_digest,
    wait_for,
)
from moodump.db import Connection, ConnSettings, connect
from moodump.db.localserver import LocalServer


@pytest.fixture()
def outdir(tmp_path: Path, small: Source) -> tuple[Path, dict[str, str]]:
    """An output directory that already holds a backup; returns it and that backup's digest."""
    parent = tmp_path / "backups"
    parent.mkdir()
    shutil.copytree(small.backup, parent / "existing")
    return parent, tree_digest(parent / "existing")


def assert_failed_cleanly(
    rc: int, err: str, expected_rc: int, parent: Path, name: str, existing: dict[str, str] | None
) -> None:
    """The common contract of every failed dump."""
    print(f"exit {rc}:\n{err}")  # shown with -rA or on failure
    assert rc == expected_rc, f"exit {rc}, expected {expected_rc}; stderr: {err}"
    assert "Traceback" not in err, err
    assert "moodump: error:" in err or expected_rc == 130, err
    if expected_rc != 130:
        assert "next step:" in err, f"no next step in: {err}"
    assert not (parent / name).exists(), "a failed dump published a backup"
    if parent.is_dir():
        assert partial_dirs(parent) == [], "a failed dump left its work directory behind"
        if existing is not None:
            assert tree_digest(parent / "existing") == existing, "an existing backup was changed"


# -- who may dump ------------------------------------------------------------------------------
def test_wrong_password_exits_3_without_echoing_it(
    root_settings: ConnSettings, big: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    grants = [f"GRANT ALL ON `{big.database}`.* TO {{user}}"]
    with account(root_settings, grants, password="Right-pw-1") as acct:
        res = run_cli(
            "dump",
            *conn_args(acct),
            "-o",
            str(parent / "new"),
            big.database,
            password="Wr0ng-Secret-xyz",
        )
    assert_failed_cleanly(res.returncode, res.stderr, 3, parent, "new", existing)
    assert "Access denied" in res.stderr
    assert "password" in res.stderr.split("next step:")[1]
    assert "Wr0ng-Secret-xyz" not in res.stderr + res.stdout


def test_unknown_database_exits_5(
    root_settings: ConnSettings, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    res = run_cli("dump", *conn_args(root_settings), "-o", str(parent / "new"), "no_such_db_x1")
    assert_failed_cleanly(res.returncode, res.stderr, 5, parent, "new", existing)
    assert "no_such_db_x1" in res.stderr
    assert "SHOW DATABASES" in res.stderr


def test_account_without_grants_on_the_database_exits_5_naming_grants(
    root_settings: ConnSettings, big: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    with account(root_settings, []) as acct:
        res = run_cli(
            "dump",
            *conn_args(acct),
            "-o",
            str(parent / "new"),
            big.database,
            password=acct.password,
        )
    assert_failed_cleanly(res.returncode, res.stderr, 5, parent, "new", existing)
    assert big.database in res.stderr
    assert "grants" in res.stderr.split("next step:")[1]


def test_account_with_select_on_one_table_only_is_refused(
    root_settings: ConnSettings, big: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    with account(root_settings, [f"GRANT SELECT ON `{big.database}`.`s` TO {{user}}"]) as acct:
        res = run_cli(
            "dump",
            *conn_args(acct),
            "-o",
            str(parent / "new"),
            big.database,
            password=acct.password,
        )
    assert_failed_cleanly(res.returncode, res.stderr, 4, parent, "new", existing)
    assert "no SELECT on" in res.stderr and "missing from the backup" in res.stderr
    assert f"GRANT SELECT ON `{big.database}`.*" in res.stderr.split("next step:")[1]


def test_account_that_cannot_see_triggers_and_events_is_refused(
    root_settings: ConnSettings, small: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    """information_schema hides triggers/events from such an account: fail, do not omit."""
    parent, existing = outdir
    grants = [f"GRANT SELECT, LOCK TABLES, SHOW VIEW ON `{small.database}`.* TO {{user}}"]
    with account(root_settings, grants) as acct:
        res = run_cli(
            "dump",
            *conn_args(acct),
            "-o",
            str(parent / "new"),
            small.database,
            password=acct.password,
        )
        assert_failed_cleanly(res.returncode, res.stderr, 4, parent, "new", existing)
        assert "TRIGGER" in res.stderr and "EVENT" in res.stderr
        assert "--no-objects" in res.stderr.split("next step:")[1]
        # The next step works: tables only.
        res = run_cli(
            "dump",
            *conn_args(acct),
            "--no-routines",
            "-q",
            "-o",
            str(parent / "tables-only"),
            small.database,
            password=acct.password,
        )
    assert res.returncode == 0, res.stderr
    assert read_json(parent / "tables-only" / "manifest.json")["status"] == "DONE"


def test_no_lock_tables_privilege_dumps_over_one_connection_and_says_so(
    root_settings: ConnSettings, big: Source, tmp_path: Path
) -> None:
    grants = [f"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `{big.database}`.* TO {{user}}"]
    with account(root_settings, grants) as acct:
        res = run_cli(
            "dump",
            *conn_args(acct),
            "--threads",
            "2",
            "--chunk-size",
            "2M",
            "-o",
            str(tmp_path / "b"),
            big.database,
            password=acct.password,
        )
    assert res.returncode == 0, res.stderr
    assert "LOCK TABLES" in res.stderr and "one connection" in res.stderr
    assert "over 1 connection" in res.stdout
    m = read_json(tmp_path / "b" / "manifest.json")
    assert m["status"] == "DONE"
    snap = m["snapshot"]
    assert isinstance(snap, dict)
    assert snap["method"] == "single-connection" and snap["workers"] == 1
    assert any("LOCK TABLES" in n for n in snap["notes"])
    warnings = m["warnings"]
    assert isinstance(warnings, list)
    assert any("LOCK TABLES" in w and "one connection" in w for w in warnings)
    # Still a complete backup: the same rows as the one taken with the privilege.
    assert (
        read_json(tmp_path / "b" / "manifest.json")["tables"]
        == read_json(big.backup / "manifest.json")["tables"]
    )


# -- the server goes away ----------------------------------------------------------------------
def _stop_at_first_data_file(proc: subprocess.Popen[str], parent: Path, name: str) -> None:
    """Freeze the dump (SIGSTOP) as soon as it opens its first data file: mid-dump, for sure."""
    wait_for(lambda: data_files_in_progress(parent, name), "the first data file", proc=proc)
    proc.send_signal(signal.SIGSTOP)
    assert proc.poll() is None
    assert not list(parent.glob(f".{name}.partial-*/manifest.json"))


def test_connection_killed_mid_dump_exits_6(
    root_settings: ConnSettings, big: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    proc = spawn_cli(
        "dump", *conn_args(root_settings), "--threads", "1", "-o", str(parent / "new"), big.database
    )
    try:
        with connect(root_settings) as c:
            ids = wait_for(
                lambda: _processlist(c, "SELECT", f"FROM `{big.database}`.`w`"),
                "the dump's row query",
                proc=proc,
            )
            assert isinstance(ids, list)
            proc.send_signal(signal.SIGSTOP)
            c.execute(f"KILL CONNECTION {ids[0]}")
    finally:
        proc.send_signal(signal.SIGCONT)
    rc, _, err = finish(proc)
    assert_failed_cleanly(rc, err, 6, parent, "new", existing)
    assert "Lost connection" in err or "killed" in err


@pytest.fixture()
def own_server() -> Iterator[LocalServer]:
    """A server of this test alone (it gets killed or stopped)."""
    server = LocalServer().start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)
    server.stop()


def _load_big(server: LocalServer, db: str = "victim") -> ConnSettings:
    settings = ConnSettings(host="127.0.0.1", port=server.port, user="root")
    execute(settings, f"CREATE DATABASE {db}")
    execute(settings, *big_sql(), database=db)
    return settings


def test_server_killed_mid_dump_exits_6(
    own_server: LocalServer, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    settings = _load_big(own_server)
    proc = spawn_cli(
        "dump", *conn_args(settings), "--threads", "2", "-o", str(parent / "new"), "victim"
    )
    try:
        _stop_at_first_data_file(proc, parent, "new")
        own_server.kill()
    finally:
        proc.send_signal(signal.SIGCONT)
    rc, _, err = finish(proc)
    assert_failed_cleanly(rc, err, 6, parent, "new", existing)
    assert "Lost connection" in err or "gone away" in err
    assert "server" in err.split("next step:")[1]


def test_postgres_server_killed_mid_dump_exits_6(
    outdir: tuple[Path, dict[str, str]],
) -> None:
    """A PostgreSQL server that dies mid-dump is a server failure (6), as for MariaDB;
    it was reported as "cannot connect or authenticate" (3)."""
    import rig_pg

    parent, existing = outdir
    servers = rig_pg.start_server()  # a private cluster, killed below
    pg = next(servers)
    try:
        pg.createdb("victim")
        pg.psql("victim", "CREATE TABLE t (id int PRIMARY KEY)")
        locker = subprocess.Popen(
            [str(pg.bindir / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port),
             "-U", "postgres", "-d", "victim"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert locker.stdin is not None
        locker.stdin.write("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;\n")
        locker.stdin.flush()
        proc = spawn_cli("dump", "--type", "postgres", "-H", "127.0.0.1", "-P", str(pg.port),
                         "-u", "postgres", "-o", str(parent / "new"), "victim")  # fmt: skip
        wait_for(
            lambda: "Lock" in pg.psql("postgres", "SELECT wait_event_type FROM pg_stat_activity"),
            what="the dump waiting for the locked table", proc=proc, interval=0.05,
        )
        pg.run_as_owner([str(pg.bindir / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "stop"])
        rc, _, err = finish(proc)
        locker.kill()
        locker.wait()
    finally:
        next(servers, None)
    assert_failed_cleanly(rc, err, 6, parent, "new", existing)
    assert "server closed the connection" in err and "server" in err.split("next step:")[1]


def test_hung_server_fails_after_the_read_timeout(
    own_server: LocalServer, outdir: tuple[Path, dict[str, str]]
) -> None:
    """A server that stops answering mid-stream (SIGSTOP: a hang or a network partition)."""
    parent, existing = outdir
    settings = _load_big(own_server)
    assert own_server.process is not None
    proc = spawn_cli(
        "dump", *conn_args(settings), "--read-timeout", "2", "-o", str(parent / "new"), "victim"
    )
    try:
        _stop_at_first_data_file(proc, parent, "new")
        own_server.process.send_signal(signal.SIGSTOP)
    finally:
        proc.send_signal(signal.SIGCONT)
    rc, _, err = finish(proc, timeout=60)
    assert_failed_cleanly(rc, err, 6, parent, "new", existing)
    assert "Lost connection" in err or "timeout" in err.lower()


# -- the disk fills up or cannot be written ---------------------------------------------------
def test_file_size_limit_exits_7(
    root_settings: ConnSettings, big: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    """``ulimit -f`` makes writes fail with EFBIG, like a full disk."""
    parent, existing = outdir
    argv = cli_argv("dump", *conn_args(root_settings), "-o", str(parent / "new"), big.database)
    script = "trap '' XFSZ; ulimit -f 200; exec " + shlex.join(argv)
    res = subprocess.run(
        ["sh", "-c", script],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_failed_cleanly(res.returncode, res.stderr, 7, parent, "new", existing)
    assert "no space" in res.stderr and "File too large" in res.stderr


_CHECK = (
    "import hashlib, json, os, sys\n"
    "root = sys.argv[1]\n"
    "files = {}\n"
    "for d, _, names in os.walk(os.path.join(root, 'existing')):\n"
    "    for n in names:\n"
    "        p = os.path.join(d, n)\n"
    "        files[os.path.relpath(p, root)] = hashlib.sha256(open(p, 'rb').read()).hexdigest()\n"
    "print('@@' + json.dumps({'entries': sorted(os.listdir(root)), 'existing': files}))\n"
)


def _private_tmpfs_dump(
    tmp_path: Path,
    existing: Path,
    settings: ConnSettings,
    database: str,
    *,
    size: str,
    prepare: str = "",
) -> tuple[int, str, list[dict[str, object]]]:
    """Dump ``database`` to ``$M/new`` on a small tmpfs ``$M`` in a private mount namespace.

    ``existing`` is copied in first; ``prepare`` is shell run before the dump. The
    directory is inspected inside the namespace before and after the dump (it vanishes
    with the namespace); returns (exit code, stderr, [state before, state after]).
    """
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("unshare -m is not permitted here: " + probe.stderr.decode(errors="replace"))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    check = shlex.join([sys.executable, "-c", _CHECK, str(mnt)])
    script = "\n".join(
        [
            "set -u",
            f"M={shlex.quote(str(mnt))}",
            f'mount -t tmpfs -o size={size} tmpfs "$M" || exit 90',
            f'cp -a {shlex.quote(str(existing))} "$M/existing" || exit 91',
            prepare,
            check,
            shlex.join(cli_argv("dump", *conn_args(settings)))
            + ' -o "$M/new" '
            + shlex.quote(database),
            "rc=$?",
            check,
            'echo "@@rc=$rc"',
        ]
    )
    res = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln[2:] for ln in res.stdout.splitlines() if ln.startswith("@@")]
    states = [json.loads(ln) for ln in lines if not ln.startswith("rc=")]
    rc = int(next(ln for ln in lines if ln.startswith("rc="))[3:])
    assert len(states) == 2, res.stdout
    return rc, res.stderr, states


def _assert_tmpfs_state(states: list[dict[str, object]]) -> None:
    before, after = states
    assert after["entries"] == ["existing"], f"left behind: {after['entries']}"
    assert after["existing"] == before["existing"], "an existing backup was changed"


def test_full_tmpfs_exits_7_enospc(
    root_settings: ConnSettings, big: Source, small: Source, tmp_path: Path
) -> None:
    rc, err, states = _private_tmpfs_dump(
        tmp_path,
        small.backup,
        root_settings,
        big.database,
        size="2m",
    )
    assert rc == 7, err
    assert "Traceback" not in err
    assert "no space" in err and "No space left on device" in err and "next step:" in err
    _assert_tmpfs_state(states)


def test_disk_already_full_exits_7(
    root_settings: ConnSettings, big: Source, small: Source, tmp_path: Path
) -> None:
    """The volume is full before the dump writes a byte (old backups filled it)."""
    rc, err, states = _private_tmpfs_dump(
        tmp_path,
        small.backup,
        root_settings,
        big.database,
        size="2m",
        prepare='head -c 4000000 /dev/zero > "$M/existing/filler" 2>/dev/null; true',
    )
    _assert_tmpfs_state(states)
    assert rc == 7, err
    assert "Traceback" not in err and "no space" in err and "next step:" in err


def test_read_only_output_filesystem_exits_7(
    root_settings: ConnSettings, small: Source, tmp_path: Path
) -> None:
    rc, err, states = _private_tmpfs_dump(
        tmp_path,
        small.backup,
        root_settings,
        small.database,
        size="2m",
        prepare='mount -o remount,ro "$M" || exit 92',
    )
    assert rc == 7, err
    assert "Read-only file system" in err and "next step:" in err
    _assert_tmpfs_state(states)


def test_output_parent_missing_exits_7(
    root_settings: ConnSettings, small: Source, tmp_path: Path
) -> None:
    parent = tmp_path / "nowhere"
    res = run_cli("dump", *conn_args(root_settings), "-o", str(parent / "new"), small.database)
    assert_failed_cleanly(res.returncode, res.stderr, 7, parent, "new", None)
    assert str(parent) in res.stderr
    assert not parent.exists()


def test_output_parent_is_a_file_exits_7(
    root_settings: ConnSettings, small: Source, tmp_path: Path
) -> None:
    parent = tmp_path / "afile"
    parent.write_bytes(b"not a directory")
    res = run_cli("dump", *conn_args(root_settings), "-o", str(parent / "new"), small.database)
    assert res.returncode == 7, res.stderr
    assert "Traceback" not in res.stderr and "next step:" in res.stderr
    assert parent.read_bytes() == b"not a directory"


def test_existing_output_exits_2_and_stays_byte_identical(
    root_settings: ConnSettings, small: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    res = run_cli("dump", *conn_args(root_settings), "-o", str(parent / "existing"), small.database)
    assert res.returncode == 2, res.stderr
    assert "already exists" in res.stderr and "next step:" in res.stderr
    assert tree_digest(parent / "existing") == existing
    assert partial_dirs(parent) == []


# -- the operator stops it ---------------------------------------------------------------------
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_mid_data_exits_130_and_publishes_nothing(
    root_settings: ConnSettings,
    big: Source,
    outdir: tuple[Path, dict[str, str]],
    sig: signal.Signals,
) -> None:
    """Ctrl-C / SIGTERM while rows stream into the data files (two workers, many chunks)."""
    parent, existing = outdir
    proc = spawn_cli(
        "dump",
        *conn_args(root_settings),
        "--threads",
        "2",
        "--chunk-size",
        "2M",
        "-o",
        str(parent / "new"),
        big.database,
    )
    try:
        _stop_at_first_data_file(proc, parent, "new")
        proc.send_signal(sig)
    finally:
        proc.send_signal(signal.SIGCONT)
    rc, _, err = finish(proc, timeout=30)
    assert_failed_cleanly(rc, err, 130, parent, "new", existing)
    assert "interrupted" in err


def _processlist(c: Connection, *needles: str) -> list[int]:
    """Ids of other sessions whose statement contains every needle (SHOW PROCESSLIST: the
    information_schema table crashed MariaDB 10.11 when polled in a tight loop)."""
    out = []
    for row in c.query("SHOW FULL PROCESSLIST"):
        text = (row[7] or b"").decode("utf-8", "replace") + " " + (row[6] or b"").decode()
        if int(row[0] or 0) != c.thread_id() and all(n in text for n in needles):
            out.append(int(row[0] or 0))
    return out


def test_worker_blocked_by_a_table_lock_fails_after_the_lock_wait_timeout(
    root_settings: ConnSettings, big: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    parent, existing = outdir
    with connect(root_settings) as holder:
        holder.execute(f"LOCK TABLES `{big.database}`.`w` WRITE")
        proc = spawn_cli(
            "dump",
            *conn_args(root_settings),
            "--threads",
            "1",
            "--tables",
            "w",
            "--chunk-size",
            "1G",
            "--lock-wait-timeout",
            "2",
            "-o",
            str(parent / "new"),
            big.database,
        )
        try:
            rc, _, err = finish(proc, timeout=10)
        finally:
            for leftover in parent.glob(".new.partial-*"):
                shutil.rmtree(leftover)
    assert_failed_cleanly(rc, err, 9, parent, "new", existing)
    assert "lock" in err


@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_while_a_worker_waits_for_a_table_lock_exits_130(
    root_settings: ConnSettings,
    big: Source,
    outdir: tuple[Path, dict[str, str]],
    sig: signal.Signals,
) -> None:
    """A worker blocked on a metadata lock (e.g. a Moodle upgrade's ALTER) is cancelled."""
    parent, existing = outdir
    with connect(root_settings) as holder:
        holder.execute(f"LOCK TABLES `{big.database}`.`w` WRITE")
        proc = spawn_cli(
            "dump",
            *conn_args(root_settings),
            "--threads",
            "1",
            "--tables",
            "w",
            "--chunk-size",
            "1G",
            "-o",
            str(parent / "new"),
            big.database,
        )
        with connect(root_settings) as c:
            wait_for(
                lambda: _processlist(c, f"`{big.database}`.`w`", "metadata lock"),
                "the worker to wait for the table lock",
                proc=proc,
                interval=0.01,
            )
        proc.send_signal(sig)
        rc, _, err = finish(proc, timeout=30)
    assert_failed_cleanly(rc, err, 130, parent, "new", existing)


def test_sigterm_while_waiting_for_the_snapshot_lock_exits_promptly(
    root_settings: ConnSettings, big: Source, outdir: tuple[Path, dict[str, str]]
) -> None:
    """A dump blocked behind a writer's lock still stops at once (Kubernetes allows 30 s)."""
    parent, existing = outdir
    with connect(root_settings) as holder:
        holder.execute(f"LOCK TABLES `{big.database}`.`s` WRITE")
        proc = spawn_cli(
            "dump",
            *conn_args(root_settings),
            "--threads",
            "2",
            "--lock-wait-timeout",
            "30",
            "-o",
            str(parent / "new"),
            big.database,
        )
        try:
            with connect(root_settings) as c:
                wait_for(
                    lambda: _processlist(c, "LOCK TABLES", f"`{big.database}`.`s` READ"),
                    "the snapshot lock wait",
                    proc=proc,
                    interval=0.01,
                )
            proc.send_signal(signal.SIGTERM)
            rc, _, err = finish(proc, timeout=3)
        finally:
            for leftover in parent.glob(".new.partial-*"):
                shutil.rmtree(leftover)
    assert_failed_cleanly(rc, err, 130, parent, "new", existing)
