"""With a binary log, the manifest records the binlog position and GTID of the snapshot."""

from __future__ import annotations

import threading

import pytest

from moodump.db import ConnSettings, connect
from moodump.db.localserver import LocalServer
from moodump.dump import DumpOptions, dump

pytestmark = pytest.mark.db  # starts its own MariaDB server


def test_binlog_position_and_gtid_match_the_snapshot(tmp_path):
    with LocalServer(binlog=True) as server:
        s = ConnSettings(port=server.port)
        with connect(s) as c:
            c.execute("CREATE DATABASE d")
            c.execute("CREATE TABLE d.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
            c.execute("INSERT INTO d.t (v) VALUES (1), (2), (3)")
            pos_before = c.query("SHOW MASTER STATUS")[0]
        stop = threading.Event()

        def writer():
            with connect(s) as w:
                while not stop.is_set():
                    w.execute("INSERT INTO d.t (v) VALUES (9)")

        th = threading.Thread(target=writer)
        th.start()
        try:
            m = dump(s, "d", tmp_path / "b", DumpOptions(threads=2)).manifest
        finally:
            stop.set()
            th.join()
        snap = m.snapshot
        assert snap["binlog_file"] == pos_before[0].decode()
        assert snap["binlog_position"] >= int(pos_before[1])
        assert snap["gtid"].startswith("0-1-")
        # The GTID's sequence number counts the transactions the snapshot contains:
        # 3 setup statements (create db, create table, insert) + the writer's inserts seen.
        seen_writer_rows = m.table("t").rows - 3
        assert int(snap["gtid"].split("-")[2]) == 3 + seen_writer_rows


def test_no_binlog_means_no_position(root_settings, fresh_db, tmp_path):
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE `{fresh_db}`.t (id INT PRIMARY KEY)")
    m = dump(root_settings, fresh_db, tmp_path / "b", DumpOptions(threads=2)).manifest
    assert "binlog_file" not in m.snapshot
