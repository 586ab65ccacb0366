"""``moodump export``: a backup as Parquet datasets, one per table."""

from __future__ import annotations

import click

from moodump.cli._group import cli, identity_option, verify_key_option
from moodump.cli._progress import watch
from moodump.cli._render import emit_json
from moodump.cli.dump import _split
from moodump.config import configured_zone
from moodump.offsite.source import locate_backup

#: The engine's ``COMPRESSIONS`` (tests/test_export_types.py checks they agree), spelled
#: out so that loading the CLI does not import pyarrow (~0.3 s on every command).
COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "none")


@cli.command("export")
@click.argument("path", metavar="BACKUP")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet"]),
    default="parquet",
    show_default=True,
    help="Output format (Parquet, one dataset per table).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="DIR|s3://BUCKET/PREFIX",
    help="Where the datasets go: a new or empty directory, or an S3 prefix (endpoint and "
    "keys from S3_*). Each table becomes OUT/<table>/part-NNNNN.parquet (PostgreSQL: "
    "OUT/<schema>.<table>/); export.json lists every file with rows and sha256.",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="Export only this table (a name or a glob; repeat or comma-separate; \\, for a comma in a name). PostgreSQL: "
    "schema.table, or a table name in any schema.",
)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Data files converted at once.",
)
@click.option(
    "--row-group-rows",
    type=click.IntRange(1024, 16 << 20),
    default=None,
    help="Rows per Parquet row group [default: 65536] (fewer when a group reaches 8 MiB of data; memory per worker grows with it).",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default=None,
    help="Parquet page compression [default: zstd].",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display on the terminal.")
@identity_option
@verify_key_option
def export_cmd(
    path, fmt, output, tables, workers, row_group_rows, compression, as_json, quiet,
    identities, verify_keys,
):  # fmt: skip
    """Export the backup at BACKUP as Parquet, one dataset per table.

    BACKUP is a backup directory or an off-site copy (s3://bucket/prefix/<backup>,
    ftps://host/path/<backup>); an encrypted one needs --identity. The data files are
    checked against the manifest as they stream; nothing is staged on disk. Types are
    exact (docs/export.md); values Parquet cannot hold, such as zero dates, become NULL
    and are counted in the summary, in each file's metadata and in export.json.

    \b
    Examples:
      moodump export /backups/daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00 -o /data/moodle
      moodump export s3://backups/moodle/mysql-moodle_2026-11-24_01-00-00 \\
          -o s3://analytics/moodle/2026-11-24 --table 'mdl_logstore_*' --table mdl_grade_grades
    """
    from moodump.export import ExportOptions, export

    del fmt  # the only format
    given: dict[str, object] = {"tables": _split(tables), "workers": workers}
    if row_group_rows is not None:
        given["row_group_rows"] = row_group_rows
    if compression is not None:
        given["compression"] = compression
        given["compression_level"] = 1 if compression == "zstd" else None
    opts = ExportOptions(**given)  # type: ignore[arg-type]
    source = locate_backup(path, identities=identities, tz=configured_zone())
    try:
        with watch(quiet or as_json) as tracker:
            res = export(source, output, opts, verify_keys=verify_keys, tracker=tracker)
    finally:
        source.close()
    if as_json:
        emit_json(res.as_dict())
        return
    click.echo(
        f"exported {source.where} to {res.output}: {len(res.tables)} tables, "
        f"{res.rows:,} rows, {res.files} files, {res.bytes / 1e6:,.1f} MB in "
        f"{res.duration_s:.1f}s"
    )
    for name, why in res.skipped.items():
        click.echo(f"skipped {name}: {why}", err=True)
    for w in res.warnings[:20]:
        click.echo(f"warning: {w}", err=True)
