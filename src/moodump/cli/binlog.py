"""``moodump binlog pull|verify|prune|status``: the binary log archive for point-in-time
recovery (docs/pitr.md)."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from moodump.binlog.chain import when
from moodump.checks import human_size
from moodump.cli._group import cli, connection_options
from moodump.cli._render import emit_json
from moodump.cli.run import _stop_on_sigterm
from moodump.errors import IntegrityError, PitrUnavailable
from moodump.pitr import archive_status, prune_archive, pull, verify_archive

_DIR = click.Path(file_okay=False, path_type=Path)


@cli.group("binlog")
def binlog_group() -> None:
    """Archive the server's binary log for point-in-time recovery (docs/pitr.md).

    \b
    Examples:
      moodump binlog pull -H db -u backup --output /backups/binlog            # a CronJob
      moodump binlog pull -H db -u backup --output /backups/binlog --follow   # a service
      moodump binlog verify --binlog-dir /backups/binlog --backup-dir /backups
      moodump restore /backups/daily/.../mysql-moodle_... -H db -d moodle_at_1041 \\
          --until '2026-12-06 10:41:59' --binlog-dir /backups/binlog
    """


@binlog_group.command("pull")
@connection_options
@click.option(
    "--output", "-o", type=_DIR, required=True, help="Archive directory (created if missing)."
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep streaming (until SIGTERM): archive each file as the server rotates past it, "
    "reconnect after server restarts.",
)
@click.option(
    "--publish-interval",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    help="With --follow: seconds between archiving the server's current (open) file.",
)
@click.option(
    "--server-id",
    type=click.IntRange(1, 2**32 - 1),
    default=None,
    help="With --follow: the replica server id the stream uses (default: derived from "
    "--output); must differ from every server id of the replication topology.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def pull_cmd(conn, output, follow, publish_interval, server_id, as_json):
    """Copy the server's binary log files into the archive --output.

    Each file is compressed (zstd), checksummed and listed in chain.json with its
    positions, event times and GTIDs. Without --follow everything up to the server's
    current end is fetched (the open file too; the next pull continues it) and the
    command exits: run it every few minutes. A complete file is never fetched twice.
    A file the server purged before it was archived is a gap: logged as an error,
    recorded in chain.json, and the command exits 16 after archiving the rest.

    The account needs REPLICATION SLAVE and BINLOG MONITOR (docs/pitr.md).
    """
    stop = threading.Event()
    with _stop_on_sigterm(stop):
        res = pull(
            conn,
            output,
            follow=follow,
            stop=stop,
            publish_s=publish_interval,
            server_id=server_id,
            progress=None if as_json else (lambda msg: click.echo(msg, err=True)),
        )
    if as_json:
        emit_json({**res.__dict__, "output": str(res.output)})
    else:
        click.echo(
            f"archived into {res.output}: {len(res.archived)} complete file(s)"
            + (f", open file {res.open_file}" if res.open_file else "")
            + f"; covers events logged before {when(res.covered_until)}"
        )
    if res.gaps:
        raise PitrUnavailable(
            "; ".join(res.gaps),
            hint="pull more often than the server purges its logs (expire_logs_days / "
            "binlog_expire_logs_seconds), and take a new backup: recovery needs one after "
            "the gap",
        )


@binlog_group.command("verify")
@click.option("--binlog-dir", type=_DIR, required=True, help="The archive directory.")
@click.option(
    "--backup-dir",
    type=_DIR,
    default=None,
    help="Also check the archive covers everything from the oldest DONE backup here "
    "(its snapshot position) to the archive's end.",
)
@click.option("--quick", is_flag=True, help="Check the chain manifest only, not every file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def verify_cmd(binlog_dir, backup_dir, quick, as_json):
    """Check the archive offline: every file's checksums and events, the chain's
    continuity (positions, GTIDs), gaps, and the coverage from the oldest kept backup.
    Exits 8 when anything is wrong."""
    res = verify_archive(binlog_dir, backup_dir=backup_dir, deep=not quick)
    st = res.status
    if as_json:
        emit_json(
            {
                "ok": res.ok,
                "files": st.files,
                "files_checked": res.files_checked,
                "first_file": st.first_file,
                "last_file": st.last_file,
                "covered_until": st.covered_until,
                "gaps": st.gaps,
                "problems": res.problems,
                "oldest_kept": list(res.oldest_kept) if res.oldest_kept else None,
            }
        )
    else:
        click.echo(
            f"{binlog_dir}: {st.files} file(s) {st.first_file}..{st.last_file}, "
            f"{human_size(st.stored_bytes)}, covers events logged before "
            f"{when(st.covered_until)}; {res.files_checked} checked"
        )
        for p in res.problems:
            click.echo(f"problem: {p}", err=True)
    if not res.ok:
        raise IntegrityError(
            f"the binary log archive {binlog_dir} has {len(res.problems)} problem(s)",
            hint="read them above; a gap needs a new backup taken after it",
        )


@binlog_group.command("prune")
@click.option("--binlog-dir", type=_DIR, required=True, help="The archive directory.")
@click.option(
    "--backup-dir",
    type=_DIR,
    envvar="BACKUP_DIR",
    required=True,
    help="The backups retention keeps (default: $BACKUP_DIR); files before the oldest "
    "one's snapshot position go.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
def prune_cmd(binlog_dir, backup_dir, dry_run, as_json):
    """Remove archived files older than the oldest kept backup's snapshot position;
    none newer. Without a backup that records a position nothing is removed."""
    res = prune_archive(binlog_dir, backup_dir, dry_run=dry_run)
    if as_json:
        emit_json(
            {
                "dry_run": res.dry_run,
                "oldest_kept": list(res.oldest_kept) if res.oldest_kept else None,
                "decisions": [d.__dict__ for d in res.decisions],
                "deleted": res.deleted,
                "freed_bytes": res.freed_bytes,
            }
        )
        return
    for d in res.decisions:
        verb = ("would delete" if dry_run else "delete") if d.delete else "keep"
        click.echo(f"{verb:12} {d.name}  ({d.reason})")
    if not dry_run:
        click.echo(f"removed {len(res.deleted)} file(s), {human_size(res.freed_bytes)}")


@binlog_group.command("status")
@click.option("--binlog-dir", type=_DIR, required=True, help="The archive directory.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_cmd(binlog_dir, as_json):
    """What the archive holds and until when it covers, from chain.json alone; exits 16
    when it records a gap."""
    st = archive_status(binlog_dir)
    if as_json:
        emit_json({**st.__dict__, "root": str(st.root), "ok": st.ok})
    else:
        click.echo(
            f"{st.root}: {st.files} file(s) {st.first_file}..{st.last_file}, "
            f"{human_size(st.stored_bytes)}, covers events logged before {when(st.covered_until)}"
        )
        for g in st.gaps:
            click.echo(g, err=True)
    if not st.ok:
        raise PitrUnavailable("; ".join(st.gaps), hint="take a new backup after the gap")
