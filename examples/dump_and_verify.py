"""Dump one database with the moodump library, then verify the backup.

The same steps `moodump dump` and `moodump verify` take, from Python: a consistent
parallel dump into a new backup directory, then a verification that re-reads every file
against the manifest (offline) or restores the backup into a throwaway local MariaDB and
compares row counts and checksums (--local; needs the mariadbd binaries).

    MYSQL_PWD=secret python examples/dump_and_verify.py \\
        --host 127.0.0.1 --user backup --database moodle --output /tmp/moodle-backup --local

The password comes from MYSQL_PWD (never from the command line). Exit status 0 when the
backup verified, 1 when verification found problems, 2 on any moodump error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from moodump.db import ConnSettings
from moodump.dump import DumpOptions, ProgressEvent, dump
from moodump.errors import MoodumpError
from moodump.verify import verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--database", required=True)
    parser.add_argument("--output", type=Path, required=True, help="new backup directory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codec", choices=("gzip", "zstd"), default="gzip")
    parser.add_argument(
        "--local", action="store_true", help="verify by restoring into a throwaway mariadbd"
    )
    args = parser.parse_args(argv)

    settings = ConnSettings(
        host=args.host, port=args.port, user=args.user, password=os.environ.get("MYSQL_PWD", "")
    )

    def show(event: ProgressEvent) -> None:
        # Called from worker threads (serialised by moodump); keep it cheap.
        if event.phase == "done":
            print(f"  dumped {event.tables_done}/{event.tables_total} tables", file=sys.stderr)

    try:
        result = dump(
            settings,
            args.database,
            args.output,
            DumpOptions(threads=args.threads, codec=args.codec),
            progress=show,
        )
        m = result.manifest
        print(
            f"dump:   {result.path}: {len(m.tables)} tables, {m.total_rows:,} rows, "
            f"{m.total_bytes:,} bytes ({m.codec}) in {result.duration_s:.1f}s, status {m.status}"
        )
        for warning in result.warnings:
            print(f"  warning: {warning}")

        report = verify(result.path, local=args.local)
    except MoodumpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    verdict = "PASS" if report.passed else "FAIL"
    restore = f", restore took {report.restore_s:.1f}s" if report.restore_s is not None else ""
    print(
        f"verify: {verdict} ({report.method}): {report.tables_checked} tables, "
        f"{report.rows_checked:,} rows checked in {report.duration_s:.1f}s{restore}"
    )
    for problem in report.problems:
        print(f"  problem: {problem}")
    # verify() wrote verify.json into the backup: `moodump list` and retention see it.
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
