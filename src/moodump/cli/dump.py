"""``moodump dump``: a consistent dump of one database into a new backup directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from moodump.cli._group import (
    cli,
    connection_options,
    hidden_alias,
    moodle_defaults,
    threads_option,
)
from moodump.cli._progress import watch
from moodump.cli._render import emit_json, human_bytes
from moodump.dump import DumpOptions, dump
from moodump.sizes import parse_size

if TYPE_CHECKING:
    from moodump.crypto import SigningKey


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """The names of repeated, comma-separated ``--table``-like options, each stripped of
    the spaces around it. A backslash keeps the next comma, space or backslash as part
    of the name (``--table 'a\\,b'`` names the table ``a,b``; ``'t\\ '`` keeps a
    PostgreSQL name's trailing space); any other backslash is the name's own."""
    out: list[str] = []
    for v in values:
        piece: list[tuple[str, bool]] = []  # (character, escaped)
        i = 0
        while i <= len(v):
            if i < len(v) and v[i] == "\\" and i + 1 < len(v) and v[i + 1] in ",\\ ":
                piece.append((v[i + 1], True))
                i += 2
                continue
            if i == len(v) or v[i] == ",":
                while piece and piece[0][0].isspace() and not piece[0][1]:
                    piece.pop(0)
                while piece and piece[-1][0].isspace() and not piece[-1][1]:
                    piece.pop()
                if piece:
                    out.append("".join(ch for ch, _ in piece))
                piece = []
            else:
                piece.append((v[i], False))
            i += 1
    return tuple(out)


@cli.command("dump")
@connection_options
@click.argument("database", required=False)
@click.option(
    "--type",
    "db_type",
    type=click.Choice(["mysql", "mariadb", "postgres"]),
    default="mysql",
    show_default=True,
    help="Database type: MySQL/MariaDB, or PostgreSQL (connection defaults then come "
    "from PGHOST/PGPORT/PGUSER, the password from --password-file, PGPASSWORD or ~/.pgpass).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Backup directory to create (must not exist).",
)
@threads_option("Parallel reading connections (all share one snapshot).")
@click.option(
    "--codec",
    type=click.Choice(["gzip", "zstd"]),
    default="gzip",
    show_default=True,
    help="Compression of the data files.",
)
@click.option(
    "--level",
    type=int,
    default=None,
    help="Compression level (gzip/isal 0-3, default 1; zstd 1-19, default 3).",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="Only this table (a name or a glob; repeat or comma-separate; \\, for a comma in a name).",
)
@hidden_alias("--tables", "tables_alias", multiple=True, help="Old spelling of --table.")
@click.option("--exclude", multiple=True, help="Leave these tables out entirely.")
@click.option(
    "--exclude-data",
    multiple=True,
    help="Keep these tables' schema but skip their rows (e.g. 'mdl_sessions').",
)
@click.option(
    "--where", default="", help="Row filter applied to every table (like mysqldump --where)."
)
@click.option("--schema-only", is_flag=True, help="Schema and objects, no rows.")
@click.option("--data-only", is_flag=True, help="Rows only, no schema or objects.")
@click.option(
    "--no-objects",
    is_flag=True,
    help="Skip the objects: views, triggers, routines (procedures, functions) and events.",
)
@hidden_alias("--no-routines", "no_routines", is_flag=True, help="Old spelling of --no-objects.")
@click.option(
    "--chunk-size",
    default="64M",
    show_default=True,
    help="Split tables larger than this by primary-key range.",
)
@click.option(
    "--lock-wait-timeout",
    type=int,
    default=60,
    show_default=True,
    help="Seconds to wait for the brief LOCK TABLES that aligns the workers' snapshots.",
)
@click.option(
    "--upgrade-wait",
    type=click.IntRange(0),
    default=None,
    help="Seconds to wait, with backoff, while a Moodle upgrade runs (or retry a dump broken "
    "by DDL) before failing with exit 15 (default: MOODUMP_UPGRADE_WAIT, 3600).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display on the terminal.")
def dump_cmd(
    conn,
    database,
    db_type,
    output,
    threads,
    codec,
    level,
    tables,
    tables_alias,
    exclude,
    exclude_data,
    where,
    schema_only,
    data_only,
    no_objects,
    no_routines,
    chunk_size,
    lock_wait_timeout,
    upgrade_wait,
    as_json,
    quiet,
):
    """Dump DATABASE consistently into a new backup directory.

    The password comes from MYSQL_PWD, --password-file, an option file, a Moodle
    config.php or a prompt, never from the command line. With --moodle-config (or
    MOODLE_CONFIG) DATABASE defaults to its $CFG->dbname. With --type postgres:
    --password-file, PGPASSWORD or ~/.pgpass (see docs/postgresql.md).

    \b
    Example:
      MYSQL_PWD=secret moodump dump -H db -u moodle --threads 2 -o /backups/x moodle
      PGPASSWORD=secret moodump dump --type postgres -H pg -u moodle -o /backups/y moodle
    """
    from moodump.config import setting

    dbname, prefix, dataroot = moodle_defaults()
    database = database or dbname
    if not database:
        raise click.UsageError("Missing argument 'DATABASE' (or --moodle-config).")
    opts = DumpOptions(
        threads=threads,
        codec=codec,
        level=level,
        tables=_split(tables + tables_alias),
        exclude=_split(exclude),
        exclude_data=_split(exclude_data),
        where=where,
        schema_only=schema_only,
        data_only=data_only,
        routines=not (no_objects or no_routines),
        chunk_bytes=parse_size(chunk_size),
        lock_wait_timeout=lock_wait_timeout,
        signing_key=_signing_key(),
        moodle_prefix=prefix,
        upgrade_wait=upgrade_wait if upgrade_wait is not None else setting("MOODUMP_UPGRADE_WAIT"),
        moodle_dataroot=dataroot,
    )
    run_dump = dump
    if db_type == "postgres":  # imported on use: psycopg takes ~0.2 s to import
        from moodump.dump.pg import dump_postgres as run_dump
    with watch(quiet or as_json) as tracker:
        result = run_dump(conn, database, output, opts, tracker=tracker)
    m = result.manifest
    summary = {
        "status": m.status,
        "path": str(result.path),
        "database": database,
        "tables": len(m.tables),
        "rows": m.total_rows,
        "bytes": m.total_bytes,
        "duration_s": round(result.duration_s, 3),
        "snapshot": m.snapshot,
        "warnings": m.warnings,
    }
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"{m.status}: {database} -> {result.path} ({len(m.tables)} tables, {m.total_rows:,} rows, "
        f"{human_bytes(m.total_bytes)}) in {result.duration_s:.1f}s, snapshot via "
        f"{m.snapshot.get('method')} over {m.snapshot.get('workers')} connection(s)"
    )
    for w in m.warnings:
        click.echo(f"warning: {w}", err=True)


def _signing_key() -> SigningKey | None:
    """MOODUMP_SIGNING_KEY (or its _FILE), loaded; None when unset."""
    from moodump.config import setting
    from moodump.crypto import signing_key_from_setting

    value = setting("MOODUMP_SIGNING_KEY")
    return signing_key_from_setting(value) if value else None
