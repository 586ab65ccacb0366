"""``moodump verify``: prove a backup, offline or by restoring it."""

from __future__ import annotations

from pathlib import Path

import click

from moodump.cli._group import build_conn_settings, cli, identity_option
from moodump.cli._render import emit_json
from moodump.db.localserver import server_binaries
from moodump.errors import IntegrityError
from moodump.verify import verify


@cli.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
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
@click.option("--host", "-H", default=None, help="Restore into a scratch database on this server.")
@click.option("--port", "-P", type=int, default=None)
@click.option("--socket", "-S", default=None)
@click.option("--user", "-u", default=None)
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--defaults-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--threads", "-t", type=int, default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@identity_option
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
    threads,
    as_json,
    identities,
):
    """Verify the backup at PATH and record the result in PATH/verify.json.

    \b
    Modes:
      --offline          files only, no server
      --host/--socket    restore into a scratch database on that server, compare, drop it
      --local (default)  same, on a throwaway mariadbd started in a temp directory
    An encrypted backup: --identity (or MOODUMP_IDENTITY_FILE) decrypts it; without a
    key, --offline checks its ciphertext against encrypted.json.
    Exit status 8 when the backup fails verification.
    """
    settings = None
    if host or socket or port:
        settings = build_conn_settings(
            host=host,
            port=port,
            socket=socket,
            user=user,
            password_file=password_file,
            defaults_file=defaults_file,
        )
    elif not offline and not local:
        local = server_binaries() is not None
        offline = not local
    if offline:
        settings, local = None, False
    report = verify(
        path,
        settings=settings,
        local=local,
        threads=threads,
        local_dir=local_dir,
        identities=identities,
    )
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
                f"admin user present: {report.moodle.get('admin_user')}"
            )
        for p in report.problems:
            click.echo(f"  problem: {p}", err=True)
    if not report.passed:
        raise IntegrityError(
            f"{path} failed verification ({len(report.problems)} problem(s))",
            hint="do not rely on this backup; see the problems above",
        )
