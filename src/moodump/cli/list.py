"""``moodump list``: backups per database, with status, verification and free space."""

from __future__ import annotations

from datetime import datetime

import click

from moodump.catalog import DatabaseBackups, listing_json
from moodump.checks import human_size
from moodump.cli._group import cli
from moodump.cli.config import ops_options
from moodump.config import Config
from moodump.jobs.maintenance import listing
from moodump.naming import age_text
from moodump.retention import utc


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
@ops_options
def list_cmd(as_json: bool, cfg: Config, now: datetime) -> None:
    """List the backups of every database: tier, time, size, rows, status, verification.

    Configured databases are listed even when they have no backup yet; backups of other
    databases found under BACKUP_DIR are listed after them. Times and ages come from
    each backup's manifest (UTC), shown in TZ; old .sql.gz files are dated by their name.

    \b
    Examples:
      moodump list                           # BACKUP_DIR and backup.conf, as backup.sh -l
      moodump list --json                    # for scripts (backup.sh picks backups from it)
      moodump list --backup-dir /mnt/restore-copy
    """
    found = listing(cfg)
    if as_json:
        click.echo(listing_json(found.groups, now, cfg.root, found.free_bytes))
        return
    click.echo(render_list(found.groups, cfg, now, found.free_bytes), nl=False)


def render_list(groups: list[DatabaseBackups], cfg: Config, now: datetime, free: int | None) -> str:
    free_text = human_size(free) if free is not None else "unknown"
    lines = [f"Backups in {cfg.root} ({free_text} free)"]
    if not groups:
        lines.append("  no databases configured and no backups found")
    for g in groups:
        lines.append("")
        head = f"{g.core}" + ("" if g.configured else "  (not in the configuration)")
        nv = g.newest_verified
        if nv is not None:
            head += f"  newest verified: {age_text(utc(now) - utc(nv.when))} ago"
        else:
            head += "  newest verified: none"
        nd = g.newest_done
        if nd is not None and nd is not nv:
            head += f"; newest good: {age_text(utc(now) - utc(nd.when))} ago"
        lines.append(head)
        if not g.backups:
            lines.append("  (no backups)")
            continue
        lines.append(
            f"  {'TIER':<8} {'TIME':<25} {'STATUS':<8} {'VERIFY':<7} {'SIZE':>10} {'ROWS':>14}"
        )
        for b in g.backups:
            rows = f"{b.rows:,}" if b.rows is not None else "-"
            tier = b.tier or "-"
            status = b.status + (" (old .sql.gz)" if b.legacy else "")
            when = f"{b.when:%Y-%m-%d %H:%M:%S %Z}"
            lines.append(
                f"  {tier:<8} {when:<25} {status:<8} "
                f"{b.verify_status or '-':<7} {human_size(b.size_bytes):>10} {rows:>14}"
            )
    return "\n".join(lines) + "\n"
