"""Refresh a staging database from the newest verified backup, with the moodump API.

Tooling around moodump needs one import: ``import moodump``. This script reads the site's
configuration the way every ``moodump`` command does (BACKUP_DIR, TZ, BACKUP_CONF and the
rest of the environment), lists the backups like ``moodump list``, picks the newest one
of a database whose latest verification passed (``moodump run`` verifies after each
backup when MOODUMP_VERIFY_AFTER_BACKUP is set; ``moodump verify`` or ``run
--verify-all`` otherwise), and restores it into a database on a staging server. The
restore is atomic: it loads into a scratch database and swaps the tables in at the end,
so the staging site keeps working on its old data until the new data is complete.

    MYSQL_PWD=secret python examples/refresh_staging.py \\
        --database moodle --host staging-db --user root --into moodle_staging

``--database`` is the database name or the core name ``moodump list`` shows (e.g.
``mysql-moodle``). The staging password comes from MYSQL_PWD, never from the command
line. Exit status: 0 restored, 1 no verified backup of that database, else the exit code
of the moodump error (docs/exit-codes.md).
"""

from __future__ import annotations

import argparse
import os
import sys

import moodump


def newest_verified(found: moodump.Listing, database: str) -> moodump.BackupInfo | None:
    """The newest backup of ``database`` (name or core name) whose verification passed."""
    for group in found.groups:
        best = group.newest_verified
        if best is not None and database in (group.core, best.database):
            return best
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="database or core name to restore")
    parser.add_argument("--host", default="127.0.0.1", help="the staging server")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--into", required=True, help="database on the staging server")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    try:
        cfg = moodump.load_config_from_environment()
        backup = newest_verified(moodump.listing(cfg), args.database)
        if backup is None:
            print(f"no verified backup of {args.database} under {cfg.root}", file=sys.stderr)
            return 1
        print(f"restoring {backup.name} ({backup.when:%Y-%m-%d %H:%M %Z}, {backup.rows} rows)")
        staging = moodump.ConnSettings(
            host=args.host, port=args.port, user=args.user, password=os.environ.get("MYSQL_PWD", "")
        )
        result = moodump.restore(
            backup.path,
            staging,
            args.into,
            moodump.RestoreOptions(threads=args.threads, atomic=True),
        )
    except moodump.MoodumpError as exc:  # every error names the problem and the next step
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"restored {result.tables} tables, {result.rows:,} rows into {result.database} "
        f"on {staging.describe()} in {result.duration_s:.1f}s"
    )
    for warning in result.warnings:
        print(f"  warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
