"""``moodump check-files``: cross-check Moodle's file store against the files table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from moodump.cli._group import (
    cli,
    connection_options,
    identity_option,
    moodle_defaults,
    verify_key_option,
)
from moodump.errors import CheckFailed, ConfigError
from moodump.moodlesite import HashPlan, check_backup_files, check_live_files
from moodump.moodlesite.filestore import FileCheckReport
from moodump.offsite.source import open_backup


@cli.command("check-files")
@click.argument("backup", required=False, metavar="BACKUP")
@click.option(
    "--moodledata",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Moodle's dataroot, the directory holding filedir/ (default: config.php's "
    "$CFG->dataroot with --moodle-config).",
)
@click.option("--live", is_flag=True, help="Read the files table from the running database.")
@click.option(
    "--database",
    "-d",
    default=None,
    help="The Moodle database, with --live (default: config.php's dbname).",
)
@connection_options(lazy=True)
@click.option(
    "--prefix",
    default=None,
    help="Moodle's table prefix (default: for a BACKUP the prefix it recorded; else "
    "MOODLE_PREFIX, config.php's prefix, mdl_).",
)
@click.option("--hash", "hash_all", is_flag=True, help="Check every content file's SHA-1.")
@click.option(
    "--sample",
    type=int,
    default=None,
    metavar="N",
    help="Check the SHA-1 of N content files picked at random (the seed is reported).",
)
@click.option("--seed", type=int, default=None, help="Seed of --sample (to repeat a sample).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@identity_option
@verify_key_option
def check_files_cmd(
    backup, moodledata, live, database, conn, prefix, hash_all, sample, seed, as_json,
    identities, verify_keys,
):  # fmt: skip
    """Check that moodledata holds the content of every row of the files table.

    Reads the {prefix}files rows from BACKUP (a backup folder or an off-site copy's URL)
    or, with --live, from --database on the server, and checks that each file's content
    is at filedir/xx/yy/<contenthash>. --hash (all) or --sample N also recompute SHA-1s.
    Reports missing, corrupt and orphan content files (orphans do not fail the check).
    Memory stays bounded with millions of rows (docs/moodle.md).

    Exits 11 when a content file is missing or corrupt (or a row's contenthash is not a
    SHA-1).

    \b
    Examples:
      moodump check-files --moodledata /var/moodledata /backups/daily/2026-11-24/mysql-moodle_...
      moodump check-files --moodledata /var/moodledata --live -H db -d moodle --sample 1000
    """
    plan = HashPlan.of(hash_all, sample, seed)
    dbname, site_prefix, dataroot = moodle_defaults()
    if moodledata is None:
        if not dataroot:
            raise ConfigError(
                "--moodledata is missing",
                hint="pass the site's dataroot, or --moodle-config with its config.php",
            )
        moodledata = Path(dataroot)
    if live == bool(backup):
        raise ConfigError(
            "name a BACKUP or pass --live (not both)",
            hint="moodump check-files --moodledata PATH BACKUP, or --live --database DB",
        )
    if live:
        settings = conn()  # resolved (and a password looked up) only when it is used
        database = database or dbname or settings.database
        if not database:
            raise ConfigError("--live needs --database", hint="e.g. --live -d moodle")
        prefix = prefix or site_prefix
        report = check_live_files(settings, database, moodledata, prefix=prefix, plan=plan)
    else:
        source = open_backup(backup, identities=identities)
        try:
            report = check_backup_files(
                source,
                moodledata,
                prefix=prefix,
                default_prefix=site_prefix,
                plan=plan,
                verify_keys=verify_keys,
            )
        finally:
            source.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
    else:
        _render(report)
    if not report.passed:
        raise CheckFailed(
            f"moodledata {moodledata}: {report.missing.count} content file(s) missing, "
            f"{report.corrupt.count} corrupt, {report.invalid_rows.count} invalid row(s)",
            hint="restore the named files into filedir/ from a file-store backup; the "
            "database rows name the courses and activities that lost them",
        )


def _render(report: FileCheckReport) -> None:
    click.echo(f"{report.source} against {report.moodledata}/filedir:")
    click.echo(report.summary())
    if report.hash_mode == "sample":
        click.echo(f"sample of {report.sample} with --seed {report.seed}")
    for label, finding in (
        ("missing", report.missing),
        ("corrupt", report.corrupt),
        ("orphan", report.orphans),
        ("invalid row", report.invalid_rows),
    ):
        for e in finding.examples:
            row = e.get("row") or {}
            what = (
                f" ({row.get('component')}/{row.get('filearea')} {row.get('filename')!r})"
                if row
                else ""
            )
            click.echo(f"  {label}: {e.get('path') or e.get('contenthash')}{what}")
        if finding.count > len(finding.examples):
            click.echo(f"  ... and {finding.count - len(finding.examples):,} more {label}")
