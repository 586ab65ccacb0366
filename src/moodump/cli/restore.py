"""``moodump restore``: load a backup into a server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from moodump.binlog.chain import Target, parse_position, parse_until
from moodump.binlog.events import Gtid
from moodump.cli._group import (
    cli,
    connection_options,
    hidden_alias,
    identity_option,
    moodle_defaults,
    refuse_unsigned_legacy,
    threads_option,
    verify_key_option,
)
from moodump.cli._progress import count_bytes, watch
from moodump.cli._render import emit_json
from moodump.cli.dump import _split
from moodump.config import configured_zone, setting
from moodump.db import ConnSettings
from moodump.errors import ConfigError
from moodump.legacy import is_legacy_file, restore_legacy
from moodump.offsite.source import is_url, locate_backup
from moodump.pitr import latest_before, restore_until
from moodump.restore import TOAST_CHOICES, RestoreOptions, restore


@cli.command("restore")
@connection_options
@click.argument("path", required=False, metavar="PATH|URL")
@click.option("--database", "-d", required=True, help="Target database (created if missing).")
@click.option(
    "--latest",
    "latest_of",
    metavar="SPEC",
    help="Restore the newest verified backup of this database (host/db or host-db) found "
    "at PATH|URL: a bucket (s3://bucket/prefix), an FTPS URL or a backup folder; without "
    "PATH|URL, at the configured S3 target. With --until: the newest finished backup "
    "taken before that time in the backup folder PATH (default: BACKUP_DIR).",
)
@threads_option("Parallel load connections.")
@click.option("--drop", is_flag=True, help="Replace a non-empty target (asks on a terminal).")
@click.option(
    "--atomic", is_flag=True, help="Load into a staging database, then swap tables in at once."
)
@click.option("--resume", is_flag=True, help="Continue an interrupted restore of the same backup.")
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="Restore only this table (a name or a glob; repeat or comma-separate; \\, for a comma in a name).",
)
@hidden_alias("--tables", "tables_alias", multiple=True, help="Old spelling of --table.")
@click.option(
    "--no-objects",
    is_flag=True,
    help="Skip the objects: views, triggers, routines (procedures, functions) and events.",
)
@hidden_alias("--no-routines", "no_routines", is_flag=True, help="Old spelling of --no-objects.")
@click.option(
    "--type",
    "db_type",
    type=click.Choice(["mysql", "mariadb", "postgres"]),
    default=None,
    help="Type of the target server (default: the backup's, read from its manifest when "
    "PATH is a directory; PostgreSQL takes PGHOST/PGPORT/PGUSER, PGPASSWORD or ~/.pgpass).",
)
@click.option(
    "--analyze", is_flag=True, help="PostgreSQL: ANALYZE the restored database at the end."
)
@click.option(
    "--toast-compression",
    type=click.Choice(list(TOAST_CHOICES)),
    default="auto",
    show_default=True,
    help="PostgreSQL: how long values are compressed as they are stored. auto: lz4 "
    "(several times faster to restore than pglz) unless the server's configuration or "
    "the source database sets a method; server: the server's default.",
)
@click.option(
    "--owners",
    is_flag=True,
    help="PostgreSQL: keep ownership and grants (the source's roles must exist).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display on the terminal.")
@click.option(
    "--moodle-maintenance",
    is_flag=True,
    help="Put the Moodle site in maintenance mode (climaintenance.html in --moodledata) "
    "during the restore; lifted after success and a purge of the database caches.",
)
@click.option(
    "--moodledata",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Moodle's dataroot, for --moodle-maintenance (default: config.php's "
    "$CFG->dataroot with --moodle-config).",
)
@click.option(
    "--staging",
    is_flag=True,
    help="Make a staging copy: scrub e-mails, password hashes, sessions, tokens; no mail, "
    "no cron (docs/moodle.md); the changes are listed.",
)
@click.option(
    "--prefix",
    default=None,
    help="Moodle's table prefix, for --staging and --moodle-maintenance (default: the "
    "prefix the backup recorded, else mdl_).",
)
@click.option(
    "--until",
    "until_time",
    metavar="'YYYY-MM-DD HH:MM:SS'",
    help="Point-in-time: after the backup, replay the archived binary log up to this "
    "second (read in the configured zone, TZ, unless it has an offset); events logged "
    "before it are applied. Needs --binlog-dir.",
)
@click.option(
    "--until-position",
    metavar="FILE:POS",
    help="Point-in-time: replay the events that start before this binary log position.",
)
@click.option(
    "--until-gtid",
    metavar="D-S-N",
    help="Point-in-time: replay up to and including the transaction with this GTID.",
)
@click.option(
    "--binlog-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The binary log archive (moodump binlog pull --output) to replay from.",
)
@identity_option
@verify_key_option
def restore_cmd(
    conn,
    path,
    database,
    latest_of,
    threads,
    drop,
    atomic,
    resume,
    tables,
    tables_alias,
    no_objects,
    no_routines,
    db_type,
    analyze,
    toast_compression,
    owners,
    yes,
    as_json,
    quiet,
    moodle_maintenance,
    moodledata,
    staging,
    prefix,
    until_time,
    until_position,
    until_gtid,
    binlog_dir,
    identities,
    verify_keys,
):
    """Restore the backup at PATH into --database.

    Every file is checked against the manifest before the target is touched. A non-empty
    target is refused unless --drop (or --atomic) is given. An old backup-container file
    (PATH ending in .sql.gz) is read end to end first (a truncated one fails, exit 8),
    then streamed to the mariadb client; the same --drop rule applies. An encrypted backup needs
    --identity (or MOODUMP_IDENTITY_FILE); a missing or wrong key fails (exit 13) before
    the target is touched. With --verify-key (or MOODUMP_VERIFY_KEY) the backup must be
    signed by one of those keys: unsigned, another key's or changed fails (exit 8)
    before the target is touched.

    PATH|URL may be an off-site copy: s3://bucket/prefix/<backup> (endpoint and keys from
    S3_*), ftps://host/path/<backup>. Its files stream from there, each checked against
    the manifest as it arrives; nothing is staged on disk.

    \b
    Examples:
      moodump restore /backups/daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00 \\
          -H db -u root --database moodle --drop
      moodump restore s3://backups/moodle/mysql-moodle_2026-11-24_01-00-00 -H db -d moodle
      moodump restore --latest mysql/moodle -H db -d moodle --identity key.txt
      moodump restore /backups/daily/2026-12-06/mysql-moodle_2026-12-06_01-00-00 -H db \\
          -d moodle_1041 --until '2026-12-06 10:41:59' --binlog-dir /backups/binlog

    \b
    Point in time (docs/pitr.md): with --until, --until-position or --until-gtid the
    backup is restored, then the archived binary log is replayed from the backup's
    snapshot position to the target, for the backup's database only, into --database.
    A range the archive does not cover (no position in the backup, a purged log, a
    target before the snapshot) is refused before the target is touched (exit 16).
    """
    if drop and not yes and sys.stdin.isatty():
        click.confirm(
            f"Replace the existing contents of {database!r} on {conn.describe()}?", abort=True
        )
    if moodle_maintenance and moodledata is None:
        dataroot = moodle_defaults()[2]
        moodledata = Path(dataroot) if dataroot else None
    if moodle_maintenance and moodledata is None:
        raise ConfigError(
            "--moodle-maintenance needs the site's dataroot",
            hint="pass --moodledata, or --moodle-config with the site's config.php",
        )
    if path and not latest_of and not is_url(path) and is_legacy_file(Path(path)):
        if moodle_maintenance or staging:
            raise ConfigError(
                "--moodle-maintenance and --staging need a moodump backup, not an old .sql.gz",
                hint="restore the old file first, then make a new backup",
            )
        if until_time or until_position or until_gtid:
            raise ConfigError(
                "an old .sql.gz backup records no binary log position to replay from",
                hint="restore a moodump backup taken with log_bin on",
            )
        refuse_unsigned_legacy(path, verify_keys)
        _restore_legacy(conn, Path(path), database, drop, atomic, resume, tables + tables_alias,
                        no_objects or no_routines, as_json, quiet)  # fmt: skip
        return
    target = _pitr_target(until_time, until_position, until_gtid, binlog_dir)
    if target is not None and (moodle_maintenance or staging):
        raise ConfigError(
            "--moodle-maintenance and --staging cannot be combined with a point-in-time "
            "target yet: they act when the backup is loaded, before the replay",
            hint="restore to the point in time first, then scrub or switch maintenance by hand",
        )
    if latest_of and target is not None and (target.time is not None or not is_url(path or "")):
        # the base for a point in time: the newest backup before it (from a copy's URL:
        # the newest copy, for a position or a GTID)
        if path and is_url(path):
            raise ConfigError(
                "--latest with --until picks a backup in a local folder only",
                hint="name the backup (its URL) instead of --latest",
            )
        path = str(
            latest_before(path or _default_root(), latest_of, target, binlog_dir, identities)
        )
        latest_of = None
    source = locate_backup(path, latest_of=latest_of, identities=identities, tz=configured_zone())
    opts = RestoreOptions(
        analyze=analyze,
        toast_compression=toast_compression,
        owners=owners,
        threads=threads,
        drop=drop,
        atomic=atomic,
        resume=resume,
        tables=_split(tables + tables_alias),
        objects=not (no_objects or no_routines),
        moodle_prefix=prefix,
        moodle_maintenance=moodledata if moodle_maintenance else None,
        staging=staging,
    )
    replay = None
    try:
        with watch(quiet or as_json) as tracker:
            if target is not None:
                pitr = restore_until(
                    source, conn, database, target, binlog_dir, opts,
                    verify_keys=verify_keys, tracker=tracker,
                )  # fmt: skip
                res, replay = pitr.restore, pitr.replay
            else:
                res = restore(
                    source, conn, database, opts, verify_keys=verify_keys, tracker=tracker
                )
    finally:
        source.close()
    path = source.where
    if replay is not None:
        if as_json:
            emit_json({**res.__dict__, "replay": replay.__dict__})
            return
        click.echo(
            f"replayed {replay.events:,} events of {replay.transactions:,} transactions "
            f"({replay.binlog_bytes:,} bytes of binary log) up to "
            f"{replay.stop_file}:{replay.stop_position} in {replay.duration_s:.1f}s"
        )
        for n in replay.notes:
            click.echo(f"note: {n}", err=True)
    if as_json:
        emit_json(res.__dict__)
        return
    click.echo(
        f"restored {path} into {database}: {res.tables} tables, {res.rows:,} rows, "
        f"{res.files_loaded} files loaded"
        + (f", {res.files_skipped} already loaded" if res.files_skipped else "")
        + f" in {res.duration_s:.1f}s"
    )
    _render_moodle(res.moodle)
    for w in res.warnings[:20]:
        click.echo(f"warning: {w}", err=True)


def _render_moodle(moodle: dict[str, Any] | None) -> None:
    if not moodle:
        return
    staging = moodle.get("staging")
    if staging:
        click.echo("staging copy, scrubbed:")
        for c in staging["changes"]:
            click.echo(f"  {c['rule']}: {c['table']}.{c['column']} {c['action']}, {c['rows']} rows")
        for c in staging["skipped"]:
            click.echo(f"  {c['rule']}: {c['table']} skipped ({c['note']})")
    for line in moodle.get("caches_purged", []):
        click.echo(f"caches: {line}")
    if moodle.get("maintenance"):
        click.echo(f"maintenance mode: {moodle['maintenance']}")


def _default_root() -> str:
    return str(setting("BACKUP_DIR"))


def _pitr_target(
    until_time: str | None,
    until_position: str | None,
    until_gtid: str | None,
    binlog_dir: Path | None,
) -> Target | None:
    given = [t for t in (until_time, until_position, until_gtid) if t]
    if not given:
        if binlog_dir is not None:
            raise ConfigError(
                "--binlog-dir without a target",
                hint="add --until, --until-position or --until-gtid",
            )
        return None
    if len(given) > 1:
        raise ConfigError(
            "--until, --until-position and --until-gtid exclude each other", hint="pick one"
        )
    if binlog_dir is None:
        raise ConfigError(
            "a point-in-time target needs --binlog-dir (the binary log archive)",
            hint="moodump binlog pull --output DIR writes one",
        )
    if until_time:
        return Target(time=parse_until(until_time, configured_zone()))
    if until_position:
        name, pos = parse_position(until_position)
        return Target(file=name, position=pos)
    try:
        Gtid.parse(until_gtid or "")
    except ValueError as exc:
        raise ConfigError(str(exc), hint="for example --until-gtid 0-1-4711") from None
    return Target(gtid=until_gtid or "")


def _restore_legacy(
    conn: ConnSettings,
    path: Path,
    database: str,
    drop: bool,
    atomic: bool,
    resume: bool,
    tables: tuple[str, ...],
    no_objects: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    unsupported = [
        flag
        for flag, given in (
            ("--atomic", atomic),
            ("--resume", resume),
            ("--table", tables),
            ("--no-objects", no_objects),
        )
        if given
    ]
    if unsupported:
        raise ConfigError(
            f"{', '.join(unsupported)} cannot be used with an old .sql.gz backup: it is one "
            "SQL stream, replayed whole",
            hint=f"moodump restore {path} --database {database} --drop",
        )
    with watch(quiet or as_json) as tracker, tracker.operation("restore", database):
        res = restore_legacy(path, conn, database, drop=drop, progress=count_bytes(tracker))
    if as_json:
        emit_json({k: v for k, v in res.__dict__.items() if k != "scan"})
        return
    click.echo(
        f"restored old backup {path} into {database}: {res.tables} tables, {res.rows:,} rows "
        f"(counted in the file) in {res.duration_s:.1f}s with {res.client}"
    )
