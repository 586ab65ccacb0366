"""``moodump verify``: prove a backup, offline or by restoring it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from moodump.cli._group import (
    _is_postgres_backup,
    build_conn_settings,
    build_pg_conn_settings,
    cli,
    identity_option,
    refuse_unsigned_legacy,
    server_flags,
    threads_option,
    timeout_options,
    tls_options,
    verify_key_option,
)
from moodump.cli._progress import watch
from moodump.cli._render import emit_json
from moodump.db.localserver import server_binaries
from moodump.errors import IntegrityError
from moodump.legacy import is_legacy_file, verify_legacy
from moodump.offsite.source import is_url, open_backup
from moodump.pg.localserver import server_available as pg_server_available
from moodump.verify import verify


@cli.command("verify")
@click.argument("path", metavar="PATH|URL")
@click.option("--offline", is_flag=True, help="Only files: sizes, sha256, row counts, digests.")
@click.option(
    "--local",
    is_flag=True,
    help="Restore into a throwaway local mariadbd (default when binaries exist).",
)
@click.option(
    "--local-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the throwaway server keeps its data (e.g. the verification volume).",
)
@server_flags(optional=True)
@tls_options
@timeout_options
@threads_option("Parallel restore and read-back connections.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display on the terminal.")
@identity_option
@verify_key_option
def verify_cmd(
    path,
    offline,
    local,
    local_dir,
    host,
    port,
    socket,
    user,
    password_file,
    defaults_file,
    tls,
    timeouts,
    threads,
    as_json,
    quiet,
    identities,
    verify_keys,
):
    """Verify the backup at PATH and record the result in PATH/verify.json.

    \b
    Modes:
      --offline          files only, no server
      --host/--socket    restore into a scratch database on that server, compare, drop it
      --local (default)  same, on a throwaway mariadbd started in a temp directory
    A PostgreSQL backup is restored into a scratch database on the PostgreSQL server
    named by the flags or PGHOST/PGPORT/PGUSER; without one (or with --local), on a
    throwaway local cluster (initdb) when PostgreSQL's server binaries are installed.
    An encrypted backup: --identity (or MOODUMP_IDENTITY_FILE) decrypts it; without a
    key, --offline checks its ciphertext against encrypted.json.
    With --verify-key (or MOODUMP_VERIFY_KEY) the backup must be signed by one of those
    keys (manifest.sig); an unsigned one, another key's, or a changed manifest fails.
    An old backup-container file (PATH ending in .sql.gz) is restored the same way
    and its tables and row counts are compared with the INSERT statements in the file
    (method legacy: such files carry no digests); --offline checks its gzip stream.
    An off-site copy is verified where it lies (URL s3://bucket/prefix/<backup> or
    ftps://...): --offline streams and checks every object; the others restore from it.
    The record (verify.json) is written only for a local backup.
    Exit status 8 when the backup fails verification.

    \b
    Examples:
      moodump verify /backups/daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00
      moodump verify --offline --json /backups/daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00
      moodump verify /backups/monthly/2026-10-31/mysql-moodle_2026-10-31_01-00-00.sql.gz
      moodump verify --offline s3://backups/moodle/mysql-moodle_2026-11-24_01-00-00
    """
    settings = None
    if not offline and not local and _is_postgres_backup(path) and not (
        host or socket or port or os.environ.get("PGHOST")
    ):
        # A PostgreSQL backup without a server named: a throwaway local cluster
        # (initdb), as --local is for MySQL, when its binaries are installed.
        local = pg_server_available()
        offline = not local
    elif not offline and not local and _is_postgres_backup(path):
        # A PostgreSQL backup is verified by restore into a scratch database on a
        # PostgreSQL server: these flags, else PGHOST/PGPORT/PGUSER (docs/postgresql.md).
        settings = build_pg_conn_settings(
            host=host, port=port, socket=socket, user=user, password_file=password_file, tls=tls
        )
        settings = replace(settings, connect_timeout=timeouts[0], read_timeout=timeouts[1])
    elif host or socket or port:
        settings = build_conn_settings(
            host=host,
            port=port,
            socket=socket,
            user=user,
            password_file=password_file,
            defaults_file=defaults_file,
            tls=tls,
        )
        settings = replace(settings, connect_timeout=timeouts[0], read_timeout=timeouts[1])
    elif not offline and not local:
        local = server_binaries() is not None
        offline = not local
    if offline:
        settings, local = None, False
    source = None
    try:
        with watch(quiet or as_json) as tracker:
            if not is_url(path) and is_legacy_file(Path(path)):
                refuse_unsigned_legacy(path, verify_keys)
                with tracker.operation("verify", Path(path).name):
                    report = verify_legacy(
                        Path(path),
                        settings=settings,
                        local=local,
                        local_dir=local_dir,
                        progress=tracker.working,
                    )
            else:
                source = open_backup(path, decrypt=False)
                report = verify(
                    source,
                    settings=settings,
                    local=local,
                    threads=threads,
                    local_dir=local_dir,
                    identities=identities,
                    verify_keys=verify_keys,
                    tracker=tracker,
                )
    finally:
        if source is not None:
            source.close()
    if as_json:
        emit_json(report.__dict__)
    else:
        verdict = "PASS" if report.passed else "FAIL"
        extra = f", restore took {report.restore_s:.1f}s" if report.restore_s is not None else ""
        click.echo(
            f"{verdict} ({report.method}): {path}: {report.tables_checked} tables, "
            f"{report.rows_checked:,} rows checked in {report.duration_s:.1f}s{extra}"
        )
        if report.moodle:
            click.echo(
                f"Moodle {report.moodle.get('release')} (version {report.moodle.get('version')}), "
                f"site administrators present: {report.moodle.get('admin_user')}"
            )
        for note in report.notes:
            click.echo(f"  note: {note}")
        for p in report.problems:
            click.echo(f"  problem: {p}", err=True)
    if not report.passed:
        raise IntegrityError(
            f"{path} failed verification ({len(report.problems)} problem(s))",
            hint="do not rely on this backup; see the problems above",
        )
