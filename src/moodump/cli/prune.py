"""``moodump prune``: apply retention now (what ``backup.sh -p`` did, but exact)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from moodump.catalog import PruneReport
from moodump.checks import human_size
from moodump.cli._group import cli
from moodump.cli.config import ops_options
from moodump.config import Config
from moodump.errors import ConfigError, StorageError
from moodump.jobs.maintenance import delete_backup_once, prune_once
from moodump.notify import Notifier


@cli.command("prune")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@click.option(
    "--all-databases",
    is_flag=True,
    help="Also prune databases that are not in the configuration (default: leave them).",
)
@click.option(
    "--delete",
    "delete",
    type=click.Path(path_type=Path),
    default=None,
    metavar="BACKUP",
    help="Instead of retention, delete this one backup (a path moodump list shows; "
    "what backup.sh -p -f does).",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --delete: delete the backup even when it is the only good one of its "
    "database.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@ops_options
def prune_cmd(
    dry_run: bool,
    all_databases: bool,
    delete: Path | None,
    force: bool,
    as_json: bool,
    cfg: Config,
    now: datetime,
) -> None:
    """Remove the backups retention no longer keeps; print each decision and its rule.

    \b
    Rules (docs/retention.md): per database (exact name match) and tier, the newest
    DAILY/WEEKLY/MONTHLY_BACKUPS (rolling) or NUM_BACKUPS (daily) DONE backups stay;
    the newest good and the newest verified backup always stay; failed or unfinished
    backups older than the newest good one go.

    \b
    Both take the run lock: while a backup or verification runs, prune exits 10 and
    deletes nothing.

    \b
    Examples:
      moodump prune --dry-run            # what retention would remove, and why
      moodump prune                      # remove it
      moodump prune --delete /backups/daily/2026-11-24/mysql-moodle_2026-11-24_01-00-00

    \b
    --delete refuses the only good backup of a database (exit 2) unless --force is given.
    """
    if delete is not None:
        if dry_run or all_databases:
            raise ConfigError(
                "--delete removes one backup; it does not combine with --dry-run or "
                "--all-databases",
                hint="moodump prune --delete PATH",
            )
        click.echo(f"deleted {delete_backup_once(cfg, delete, force=force)}")
        return
    if force:
        raise ConfigError("--force goes with --delete", hint="moodump prune --delete PATH --force")
    report = prune_once(
        cfg, dry_run=dry_run, all_databases=all_databases, now=now, notifier=Notifier()
    )
    pr = report.prune
    assert pr is not None
    if as_json:
        click.echo(json.dumps(pr.to_dict(), indent=1))
    else:
        click.echo(render_prune(pr, cfg), nl=False)
    if report.errors:
        raise StorageError(
            f"{len(report.errors)} backup(s) could not be removed: "
            + "; ".join(m for _, m in report.errors),
            hint="fix the permissions of the backup volume and run moodump prune again",
        )


def render_prune(report: PruneReport, cfg: Config) -> str:
    lines: list[str] = []
    current = None
    removed_ids = {str(b.path) for b in report.removed}
    for d in report.plan.decisions:
        if d.backup.core != current:
            current = d.backup.core
            lines.append(f"{current}:")
        info = report.info(d.backup.id)
        try:
            shown = info.path.relative_to(cfg.root)
        except ValueError:
            shown = info.path
        verdict = "keep  " if d.keep else ("would remove" if report.dry_run else "remove")
        if not d.keep and not report.dry_run and d.backup.id not in removed_ids:
            verdict = "FAILED to remove"
        verify = f" {info.verify_status}" if info.verify_status else ""
        lines.append(
            f"  {verdict:<12} {shown}  {info.status}{verify}  {human_size(info.size_bytes)}  "
            f"{d.reason}"
        )
    n = len(report.removed)
    size = human_size(report.freed_bytes)
    if not report.plan.decisions:
        lines.append(f"No backups found in {cfg.root}.")
    elif report.dry_run:
        lines.append(f"Dry run: would remove {n} backup(s), {size}.")
    else:
        lines.append(f"Removed {n} backup(s), freed {size}.")
    return "\n".join(lines) + "\n"
