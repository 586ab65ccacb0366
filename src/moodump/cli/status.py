"""``moodump status``: every database at a glance; exit 11 when one is not healthy."""

from __future__ import annotations

import json
from datetime import datetime

import click

from moodump.cli._cron import moodump_line_parser
from moodump.cli._group import cli
from moodump.cli.check import _parsed
from moodump.cli.config import ops_options
from moodump.config import Config, parse_timedelta
from moodump.errors import CheckFailed
from moodump.jobs.status import render_status, status


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--max-age",
    callback=_parsed(parse_timedelta, "--max-age"),
    default=None,
    help="Unhealthy when the newest verified backup is older (e.g. 26h; default MOODUMP_MAX_AGE).",
)
@click.option(
    "--accept-unverified",
    is_flag=True,
    default=None,
    help="Count DONE backups that were not verified (default MOODUMP_CHECK_UNVERIFIED).",
)
@ops_options
def status_cmd(as_json, max_age, accept_unverified, cfg: Config, now: datetime) -> None:
    """Show each configured database's newest and newest verified backup, their ages,
    the last run's result, the next scheduled backup and the off-site state.

    A database is healthy when its newest verified backup is younger than --max-age,
    its last backup did not fail and its last off-site copy did not fail. The last run
    comes from the state file (MOODUMP_STATE_FILE) that moodump run updates.

    \b
    Exit status: 0 every database is healthy, 11 at least one is not (the output still
    shows all of them), 2 a configuration problem. For probes and alerting:
      moodump status                        # at a terminal
      moodump status --json --max-age 26h   # a probe or a monitoring script
    """
    result = status(
        cfg,
        now=now,
        max_age=max_age,
        accept_unverified=accept_unverified,
        parse_moodump=moodump_line_parser(cfg),
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1, ensure_ascii=False))
    else:
        click.echo(render_status(result), nl=False)
    if not result.healthy:
        bad = [d for d in result.databases if not d.healthy]
        raise CheckFailed(
            f"{len(bad)} database(s) not healthy: "
            + "; ".join(f"{d.core}: {', '.join(d.problems)}" for d in bad),
            hint="moodump list shows the backups; the moodump run logs say why a run failed",
        )
