"""``moodump demo``: the main job on an embedded default (throwaway MariaDB + sample data)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from moodump.cli._group import cli
from moodump.cli._progress import watch
from moodump.cli.list import render_list
from moodump.demo import run_demo
from moodump.errors import IntegrityError
from moodump.jobs.maintenance import listing


@cli.command("demo")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("demo-backups"),
    show_default=True,
    help="Where the throwaway server and the backups live.",
)
@click.option(
    "--scale",
    type=float,
    default=0.002,
    show_default=True,
    help="Sample data scale (1 = about 2 GB of InnoDB data).",
)
@click.option("--threads", type=int, default=2, show_default=True, help="Dump and restore workers.")
@click.option(
    "--at",
    "at",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default=None,
    help="Take the backup as if at this UTC time (default: now). The tier folder "
    "(daily, weekly on Sundays, monthly on a month's last day) follows it.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display on the terminal.")
def demo_cmd(workdir, scale, threads, at, quiet):
    """Back up, list and verify a sample Moodle database on a throwaway local MariaDB.

    Needs the MariaDB server binaries (apt-get install mariadb-server mariadb-client);
    touches no existing server. Run it again to add another backup to the listing.
    """
    when = at.replace(tzinfo=timezone.utc) if at is not None else None
    with watch(quiet) as tracker:
        res = run_demo(
            workdir, scale=scale, threads=threads, say=click.echo, now=when, tracker=tracker
        )
    cfg = res.config
    now = max(datetime.now(cfg.tz), when or datetime.now(cfg.tz))
    found = listing(cfg)
    click.echo("")
    click.echo(render_list(found.groups, cfg, now, found.free_bytes), nl=False)
    click.echo(
        f"\nTry: BACKUP_DIR={cfg.root} moodump list    |    "
        f"moodump verify --offline {res.dump.path}"
    )
    if not res.verify.passed:
        raise IntegrityError(
            "the demo backup failed verification: " + "; ".join(res.verify.problems)
        )
