"""``moodump restore``: load a backup into a server."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from moodump.cli._group import cli, connection_options, identity_option
from moodump.cli._render import ProgressLine, emit_json
from moodump.restore import RestoreOptions, restore


@cli.command("restore")
@connection_options
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--database", "-d", required=True, help="Target database (created if missing).")
@click.option(
    "--threads", "-t", type=int, default=2, show_default=True, help="Parallel load connections."
)
@click.option("--drop", is_flag=True, help="Replace a non-empty target (asks on a terminal).")
@click.option(
    "--atomic", is_flag=True, help="Load into a staging database, then swap tables in at once."
)
@click.option("--resume", is_flag=True, help="Continue an interrupted restore of the same backup.")
@click.option("--table", "tables", multiple=True, help="Restore only this table (repeatable).")
@click.option("--no-objects", is_flag=True, help="Skip views, routines, triggers and events.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@identity_option
def restore_cmd(
    conn,
    path,
    database,
    threads,
    drop,
    atomic,
    resume,
    tables,
    no_objects,
    yes,
    as_json,
    quiet,
    identities,
):
    """Restore the backup at PATH into --database.

    Every file is checked against the manifest before the target is touched. A non-empty
    target is refused unless --drop (or --atomic) is given. An encrypted backup needs
    --identity (or MOODUMP_IDENTITY_FILE); a missing or wrong key fails (exit 13) before
    the target is touched.

    \b
    Example:
      moodump restore /backups/daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00 \\
          -H db -u root --database moodle --drop
    """
    if drop and not yes and sys.stdin.isatty():
        click.confirm(
            f"Replace the existing contents of {database!r} on {conn.describe()}?", abort=True
        )
    opts = RestoreOptions(
        threads=threads,
        drop=drop,
        atomic=atomic,
        resume=resume,
        tables=tuple(tables),
        objects=not no_objects,
    )
    line = ProgressLine(enabled=False if (quiet or as_json) else None)
    try:
        res = restore(
            path,
            conn,
            database,
            opts,
            progress=lambda e: line.update(e.rows_done, e.rows_total, e.elapsed_s, e.table),
            identities=identities,
        )
    finally:
        line.finish()
    if as_json:
        emit_json(res.__dict__)
        return
    click.echo(
        f"restored {path} into {database}: {res.tables} tables, {res.rows:,} rows, "
        f"{res.files_loaded} files loaded"
        + (f", {res.files_skipped} already loaded" if res.files_skipped else "")
        + f" in {res.duration_s:.1f}s"
    )
    for w in res.warnings[:20]:
        click.echo(f"warning: {w}", err=True)
