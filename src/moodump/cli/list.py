"""``moodump list``: backups per database, with status, verification and free space."""

from __future__ import annotations

import json
from datetime import datetime

import click

from moodump.catalog import DatabaseBackups, listing_json
from moodump.checks import human_size
from moodump.cli._group import cli
from moodump.cli.config import ops_options
from moodump.config import Config
from moodump.errors import StorageAuthError, StorageError
from moodump.jobs.maintenance import listing
from moodump.jobs.offsite import OffsiteListing, list_offsite
from moodump.naming import age_text
from moodump.retention import utc


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
@click.option(
    "--offsite",
    is_flag=True,
    help="Also list the copies on the off-site targets (S3_*, FTP_URL), with their URLs.",
)
@ops_options
def list_cmd(as_json: bool, offsite: bool, cfg: Config, now: datetime) -> None:
    """List the backups of every database: tier, time, size, rows, status, verification.

    Configured databases are listed even when they have no backup yet; backups of other
    databases found under BACKUP_DIR are listed after them. Times and ages come from
    each backup's manifest (UTC), shown in TZ; old .sql.gz files are dated by their name.

    \b
    Examples:
      moodump list                           # BACKUP_DIR and backup.conf, as backup.sh -l
      moodump list --json                    # for scripts (backup.sh picks backups from it)
      moodump list --backup-dir /mnt/restore-copy
      moodump list --offsite                 # and the copies in the bucket, with URLs
    """
    found = listing(cfg)
    remote = list_offsite(cfg) if offsite else None
    if as_json:
        text = listing_json(found.groups, now, cfg.root, found.free_bytes)
        if remote is not None:
            doc = json.loads(text)
            doc["offsite"] = [r.to_dict() for r in remote]
            text = json.dumps(doc, indent=1)
        # Exit 0: each target's "error" says what failed, and backup.sh -r/-v picks a
        # local backup from this listing while the bucket is unreachable.
        click.echo(text)
        return
    click.echo(render_list(found.groups, cfg, now, found.free_bytes), nl=False)
    if remote is not None:
        click.echo(render_offsite(remote, now), nl=False)
    # exit code 3 when every target that cannot be listed refused the credentials
    failed = [r for r in remote or [] if r.error]
    if failed:
        error = StorageAuthError if all(r.error_code == 3 for r in failed) else StorageError
        raise error(
            f"{len(failed)} off-site target(s) could not be listed: "
            + "; ".join(f"{r.url}: {r.error}" for r in failed),
            hint="check the S3_* / FTP_* settings (moodump config)",
        )


def render_offsite(listings: list[OffsiteListing], now: datetime) -> str:
    """The off-site part of ``moodump list --offsite``."""
    lines: list[str] = []
    for r in listings:
        lines += ["", f"Off-site copies at {r.url} ({r.kind})"]
        if r.error:
            lines.append(f"  cannot list: {r.error}")
            continue
        if not r.backups:
            lines.append("  (no copies)")
        doc = r.to_dict()
        for g in doc["databases"]:
            lines.append(f"  {g['core']}")
            for b in g["backups"]:
                age = age_text(utc(now) - utc(datetime.fromisoformat(b["when"])))
                flags = ", ".join(
                    f
                    for f, on in (("verified", b["verified"]), ("encrypted", b["encrypted"]))
                    if on
                )
                size = human_size(b["bytes"]) if b["bytes"] is not None else "-"
                lines.append(
                    f"    {b['status']:<10} {size:>10}  {age:>8} ago  {b['path']}"
                    + (f"  ({flags})" if flags else "")
                )
                if b["error"]:  # why a copy with its marker counts as incomplete
                    lines.append(f"               {b['error']}")
    return "\n".join(lines) + "\n"


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
