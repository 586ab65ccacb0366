"""Replay speed of point-in-time recovery: moodump's replay against ``mariadb-binlog | mariadb``.

Usage::

    PYTHONPATH=src python benchmarks/pitr.py                      # defaults below
    PYTHONPATH=src python benchmarks/pitr.py --txns 5000 --bulk-rows 50000 --repeat 1

Starts its own MariaDB with a binary log (``LocalServer(binlog=True)``, ROW format),
creates a Moodle-like log table, takes a moodump backup of it, then writes the workload
after the snapshot: ``--txns`` small autocommit transactions (an insert, and every third
an update and every seventh a delete, as a busy Moodle writes its log and grades) and a
bulk insert of ``--bulk-rows`` rows. ``moodump binlog pull`` archives it. Each
measurement restores the backup into a fresh database and then times only the replay:

- ``moodump``: :func:`moodump.pitr.replay.plan_replay` (extract from the archive with
  checksums, scan every event for the stop and the statement checks) plus
  :func:`moodump.pitr.replay.run_replay` (``mariadb-binlog`` piped through moodump's
  GTID filter into ``mariadb``);
- ``baseline``: ``mariadb-binlog --database --rewrite-db --start-position FILES | mariadb``
  on the server's own raw files, the same range, nothing checked.

Events are the database's row events and statements in the range (the same count for
both), MB are bytes of binary log in the range. The target tables are compared with
CHECKSUM TABLE against the source after each run. Results: a Markdown table for
docs/benchmarks-pitr.md, and ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from moodump.binlog.chain import Target
from moodump.db import ConnSettings, connect
from moodump.db.localserver import LocalServer
from moodump.dump import DumpOptions, dump
from moodump.pitr import Archive, pull
from moodump.pitr.replay import plan_replay, run_replay
from moodump.restore import RestoreOptions, restore

DB = "bench_pitr"
TABLE = """CREATE TABLE log (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, eventname VARCHAR(255) NOT NULL,
  component VARCHAR(100) NOT NULL, userid BIGINT NOT NULL, courseid BIGINT NOT NULL,
  timecreated BIGINT NOT NULL, other TEXT, KEY (userid), KEY (courseid, timecreated))"""


def _workload(s: ConnSettings, txns: int, bulk_rows: int) -> None:
    with connect(s.with_database(DB)) as c:
        for i in range(txns):
            c.execute(
                "INSERT INTO log (eventname, component, userid, courseid, timecreated, other) "
                f"VALUES ('\\\\mod_quiz\\\\event\\\\attempt_submitted', 'mod_quiz', {i % 997}, "
                f"{i % 41}, {1700000000 + i}, 'a:1:{{s:7:\"quizid\";i:{i};}}')"
            )
            if i % 3 == 0:
                c.execute(f"UPDATE log SET other = CONCAT(other, 'u') WHERE id = {i // 2 + 1}")
            if i % 7 == 0:
                c.execute(f"DELETE FROM log WHERE id = {i // 3 + 1}")
        c.execute(
            "INSERT INTO log (eventname, component, userid, courseid, timecreated, other) "
            "SELECT '\\\\core\\\\event\\\\course_viewed', 'core', seq % 5000, seq % 300, "
            f"1700000000 + seq, REPEAT('x', seq % 200) FROM seq_1_to_{bulk_rows}"
        )


def _checksum(s: ConnSettings, db: str) -> tuple[int, int]:
    with connect(s) as c:
        n = int(c.scalar(f"SELECT COUNT(*) FROM `{db}`.log") or 0)
        return n, int(c.query(f"CHECKSUM TABLE `{db}`.log")[0][1] or 0)


def _fresh(s: ConnSettings, backup: Path, name: str) -> None:
    restore(backup, s, name, RestoreOptions(threads=1, drop=True))


def _baseline(
    s: ConnSettings, files: list[Path], start: tuple[str, int], name: str, *, no_gtids: bool
) -> float:
    env = {**os.environ, "TZ": "UTC"}
    t0 = time.monotonic()
    producer = subprocess.Popen(
        ["mariadb-binlog", f"--database={DB}", f"--rewrite-db={DB}->{name}",
         f"--start-position={start[1]}", *map(str, files)],
        stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    stages = [producer]
    feed = producer.stdout
    if no_gtids:  # what moodump's filter drops, done by grep
        grep = subprocess.Popen(
            ["grep", "-v", "-e", "SET @@session.gtid_seq_no=", "-e",
             "SET @@session.gtid_domain_id=", "-e", "SET @@session.server_id="],
            stdin=producer.stdout, stdout=subprocess.PIPE,
        )  # fmt: skip
        stages.append(grep)
        feed = grep.stdout
    consumer = subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{s.port}", "-uroot",
         "--protocol=TCP", "--binary-mode", name],
        stdin=feed, env=env, check=True,
    )  # fmt: skip
    for p in stages:
        p.wait()
    assert consumer.returncode == 0 and all(p.returncode == 0 for p in stages)
    return time.monotonic() - t0


def _moodump(s: ConnSettings, archive: Path, start: tuple[str, int], name: str) -> tuple:
    a = Archive.open(archive)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-pitr-") as work:
        plan = plan_replay(
            a, start[0], start[1], Target(time=a.chain.covered_until), DB,
            rewrite=True, workdir=Path(work),
        )  # fmt: skip
        t_plan = time.monotonic() - t0
        run_replay(plan, s, DB, name)
    return time.monotonic() - t0, t_plan, plan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txns", type=int, default=20000, help="small autocommit transactions")
    ap.add_argument("--bulk-rows", type=int, default=200000, help="rows of the bulk insert")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (median shown)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = ap.parse_args()
    with LocalServer(binlog=True) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s = ConnSettings(host="127.0.0.1", port=server.port, user="root", password="")
        with connect(s) as c:
            c.execute(f"CREATE DATABASE {DB}")
            c.execute(f"USE {DB}")
            c.execute(TABLE)
        backup = work / "backup"
        m = dump(s, DB, backup, DumpOptions(threads=1)).manifest
        start = (m.snapshot["binlog_file"], int(m.snapshot["binlog_position"]))
        t0 = time.monotonic()
        _workload(s, args.txns, args.bulk_rows)
        print(f"workload written in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        time.sleep(1.1)  # the last events' second is over: covered_until includes them
        with connect(s) as c:
            # the replays below go to later files: the baseline reads the workload's only
            # (its original GTIDs, replayed, are out of order in the server's own log)
            c.execute("FLUSH BINARY LOGS")
            current = (c.query("SHOW MASTER STATUS")[0][0] or b"").decode()
        assert server.base_dir is not None
        raw_files = sorted(
            p for p in server.base_dir.glob("binlog.[0-9]*") if start[0] <= p.name < current
        )
        pull(s, work / "archive")
        want = _checksum(s, DB)
        rows: dict[str, list[float]] = {"moodump": [], "baseline": [], "baseline_no_gtids": []}
        plans = []
        t_plans = []
        for i in range(args.repeat):
            for kind in ("baseline", "baseline_no_gtids", "moodump"):
                name = f"r_{kind}_{i}"
                _fresh(s, backup, name)
                if kind.startswith("baseline"):
                    no_gtids = kind == "baseline_no_gtids"
                    rows[kind].append(_baseline(s, raw_files, start, name, no_gtids=no_gtids))
                else:
                    secs, t_plan, plan = _moodump(s, work / "archive", start, name)
                    rows[kind].append(secs)
                    t_plans.append(t_plan)
                    plans.append(plan)
                got = _checksum(s, name)
                assert got == want, (kind, got, want)
        plan = plans[0]
        mb = plan.binlog_bytes / 1e6
        res = {
            "txns": args.txns,
            "bulk_rows": args.bulk_rows,
            "events": plan.events,
            "transactions": plan.transactions,
            "binlog_mb": round(mb, 2),
            "repeat": args.repeat,
            "seconds": {k: round(statistics.median(v), 3) for k, v in rows.items()},
            "runs": {k: [round(x, 3) for x in v] for k, v in rows.items()},
            "moodump_plan_seconds": round(statistics.median(t_plans), 3),
        }
        res["events_per_s"] = {k: round(plan.events / v) for k, v in res["seconds"].items()}
        res["mb_per_s"] = {k: round(mb / v, 1) for k, v in res["seconds"].items()}
        res["ratio_moodump_to_baseline"] = round(
            res["seconds"]["moodump"] / res["seconds"]["baseline"], 2
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    print()
    print("| replay | seconds (median) | events/s | MB/s of binlog |")
    print("|---|---:|---:|---:|")
    for k, label in (
        ("baseline", "`mariadb-binlog \\| mariadb` (raw files)"),
        ("baseline_no_gtids", "`mariadb-binlog \\| grep -v` GTID lines `\\| mariadb`"),
        ("moodump", "moodump (extract + check + scan + replay)"),
    ):
        print(
            f"| {label} | {res['seconds'][k]} | {res['events_per_s'][k]:,} | {res['mb_per_s'][k]} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
