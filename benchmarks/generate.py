"""Create the Moodle-shaped benchmark database and report what it took.

Examples::

    # into a server you run (MariaDB: the generator needs the Sequence engine)
    python benchmarks/generate.py --scale 1 --host 127.0.0.1 --port 3306 --user root \\
        --database moodle

    # into a private server (moodump.db.localserver) started in DIR for the run
    python benchmarks/generate.py --scale 0.1 --start-local /tmp/moodle-bench --database moodle

With ``--start-local DIR`` the server is stopped after the run but DIR and its data stay,
so a later ``--start-local DIR`` (or a LocalServer on DIR) finds the database again;
``--keep`` keeps the server running until Ctrl-C; remove DIR when done. Its server CPU
time is reported too (a contention-proof figure on a busy machine).

The password comes from MYSQL_PWD (never from the command line). Prints per-table rows,
data and index sizes (information_schema, after ANALYZE TABLE) and elapsed times, then
the totals; ``--json FILE`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.db.localserver import LocalServer
from moodump.demo.sample import create_moodle_database, table_sizes

LOCAL_SETTINGS = {
    "innodb-buffer-pool-size": "4G",
    "innodb-log-file-size": "1G",
}


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1024
    return f"{n:,.1f} GB"


class Timer:
    """Per-table elapsed time, from the generator's progress calls (one thread per table)."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.last: dict[int, float] = {}
        self.elapsed: dict[str, float] = {}
        self.start = self.filling = time.monotonic()

    def __call__(self, table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if total == 0:  # an empty table, reported while all tables are being created
            self.filling = now
            return
        ident = threading.get_ident()
        since = self.last.get(ident, self.filling)
        self.last[ident] = now
        self.elapsed[table] = self.elapsed.get(table, 0.0) + (now - since)
        if self.verbose and total >= 100_000:
            print(f"  {now - self.start:7.1f}s {table}: {done:,}/{total:,}", file=sys.stderr)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def analyze(settings: ConnSettings, database: str, names: list[str]) -> None:
    """Refresh InnoDB statistics so data_length/index_length are current."""
    with connect(settings.with_database(database)) as conn:
        for i in range(0, len(names), 50):
            conn.query("ANALYZE TABLE " + ", ".join(quote_ident(n) for n in names[i : i + 50]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="1 ~ 2 GB of InnoDB data")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3306)
    p.add_argument("--user", default="root")
    p.add_argument("--socket", default=None)
    p.add_argument("--database", default="moodle")
    p.add_argument("--prefix", default="mdl_")
    p.add_argument("--workers", type=int, default=2, help="parallel connections (default 2)")
    p.add_argument("--blobs", action="store_true", help="backup_controllers.controller as LONGBLOB")
    p.add_argument("--row-format", default="Dynamic", choices=["Dynamic", "Compressed"])
    p.add_argument("--drop", action="store_true", help="drop the database first if it exists")
    p.add_argument(
        "--start-local",
        metavar="DIR",
        type=Path,
        default=None,
        help="start a private MariaDB in DIR (new, or made by moodump); DIR is kept",
    )
    p.add_argument("--keep", action="store_true", help="with --start-local: keep it running")
    p.add_argument("--json", metavar="FILE", type=Path, default=None)
    p.add_argument("-v", "--verbose", action="store_true", help="progress of big tables")
    args = p.parse_args(argv)

    server: LocalServer | None = None
    if args.start_local is not None:
        server = LocalServer(base_dir=args.start_local, settings=dict(LOCAL_SETTINGS)).start()
        settings = ConnSettings(host="127.0.0.1", port=server.port, user="root")
        print(f"local server: 127.0.0.1:{server.port} (dir {args.start_local})")
    else:
        settings = ConnSettings(
            host=args.host,
            port=args.port,
            socket=args.socket,
            user=args.user,
            password=os.environ.get("MYSQL_PWD", ""),
        )
    try:
        timer = Timer(args.verbose)
        pid = server.process.pid if server is not None and server.process is not None else None
        cpu0 = process_cpu(pid) if pid else 0.0
        t0 = time.monotonic()
        rows = create_moodle_database(
            settings,
            args.database,
            scale=args.scale,
            prefix=args.prefix,
            progress=timer,
            workers=args.workers,
            blobs=args.blobs,
            row_format=args.row_format,
            drop_existing=args.drop,
        )
        elapsed = time.monotonic() - t0
        server_cpu = process_cpu(pid) - cpu0 if pid else None
        analyze(settings, args.database, sorted(rows))
        sizes = table_sizes(settings, args.database)
        report(args, rows, sizes, timer.elapsed, elapsed, server_cpu)
        if server is not None and args.keep:
            print(f"server kept running: 127.0.0.1:{server.port}; Ctrl-C stops and removes it")
            try:
                while server.process is not None and server.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        if server is not None:
            server.stop(remove=False)
    return 0


def report(
    args: argparse.Namespace,
    rows: dict[str, int],
    sizes: dict[str, tuple[int, int, int]],
    times: dict[str, float],
    elapsed: float,
    server_cpu: float | None,
) -> None:
    order = sorted(rows, key=lambda n: (-sizes.get(n, (0, 0, 0))[1], n))
    print(f"{'table':40s} {'rows':>12s} {'data_length':>14s} {'index_length':>14s} {'time':>8s}")
    shown = [n for n in order if rows[n]][:25]
    for n in shown:
        _r, d, i = sizes.get(n, (0, 0, 0))
        print(f"{n:40s} {rows[n]:>12,} {d:>14,} {i:>14,} {times.get(n, 0.0):>7.1f}s")
    rest = [n for n in order if n not in shown]
    data = sum(sizes.get(n, (0, 0, 0))[1] for n in rows)
    index = sum(sizes.get(n, (0, 0, 0))[2] for n in rows)
    filled = sum(1 for n in rows if rows[n])
    print(
        f"{'(' + str(len(rest)) + ' more tables)':40s} {sum(rows[n] for n in rest):>12,} "
        f"{sum(sizes.get(n, (0, 0, 0))[1] for n in rest):>14,} "
        f"{sum(sizes.get(n, (0, 0, 0))[2] for n in rest):>14,}"
    )
    print(
        f"total: {len(rows)} tables ({filled} with rows), {sum(rows.values()):,} rows, "
        f"data {human(data)}, indexes {human(index)}, {elapsed:.1f} s at scale {args.scale:g} "
        f"with {args.workers} workers"
        + (f"; server CPU {server_cpu:.1f} s" if server_cpu is not None else "")
    )
    if args.json is not None:
        out: dict[str, Any] = {
            "scale": args.scale,
            "workers": args.workers,
            "elapsed_s": round(elapsed, 3),
            "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
            "data_length": data,
            "index_length": index,
            "rows": sum(rows.values()),
            "tables": {
                n: {
                    "rows": rows[n],
                    "data_length": sizes.get(n, (0, 0, 0))[1],
                    "index_length": sizes.get(n, (0, 0, 0))[2],
                    "seconds": round(times.get(n, 0.0), 3),
                }
                for n in order
            },
        }
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
