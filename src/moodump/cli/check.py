"""``moodump check``: fail (exit 11) when backups are stale, too small or shrank."""

from __future__ import annotations

import json
from datetime import datetime

import click

from moodump.checks import FAIL, WARN
from moodump.cli._group import cli
from moodump.cli.config import ops_options
from moodump.config import Config, parse_percent, parse_size, parse_timedelta
from moodump.errors import CheckFailed, ConfigError
from moodump.jobs.maintenance import CheckOptions, check_once
from moodump.jobs.report import STATUS_FAILED
from moodump.notify import Notifier


def _parsed(parser, option: str):
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            return parser(value)
        except ValueError as exc:
            raise ConfigError(
                f"{option} {value!r}: {exc}", hint="see moodump check --help"
            ) from None

    return convert


@cli.command("check")
@click.option(
    "--max-age",
    callback=_parsed(parse_timedelta, "--max-age"),
    default=None,
    help="Fail when the newest verified backup is older (e.g. 26h; default MOODUMP_MAX_AGE).",
)
@click.option(
    "--accept-unverified",
    is_flag=True,
    default=None,
    help="Count DONE backups that were not verified (default MOODUMP_CHECK_UNVERIFIED).",
)
@click.option(
    "--min-size",
    callback=_parsed(parse_size, "--min-size"),
    default=None,
    help="Fail when the newest good backup is smaller (e.g. 10M; default MOODUMP_MIN_SIZE).",
)
@click.option(
    "--max-shrink",
    callback=_parsed(parse_percent, "--max-shrink"),
    default=None,
    help="Percent the newest good backup may be smaller than the previous one "
    "(default MOODUMP_MAX_SHRINK_PERCENT).",
)
@click.option(
    "--shrink-mode",
    type=click.Choice([WARN, FAIL]),
    default=None,
    help="What a larger shrink does (default MOODUMP_SHRINK_MODE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@ops_options
def check_cmd(
    max_age,
    accept_unverified,
    min_size,
    max_shrink,
    shrink_mode,
    as_json,
    cfg: Config,
    now: datetime,
) -> None:
    """Check every configured database's backups; exit 11 when a check fails.

    For alerting, Kubernetes CronJobs and probes: the newest verified backup of each
    database must be younger than --max-age, and its size must pass the size checks.
    Warnings (e.g. a shrink in warn mode) are printed but do not fail the check.
    Ages are measured from each backup's start time in its manifest (UTC).

    \b
    Examples:
      moodump check --max-age 26h                  # a daily CronJob or an alerting probe
      moodump check --max-age 8d --accept-unverified --json
      moodump check --min-size 500M --max-shrink 30 --shrink-mode fail
    """
    report = check_once(
        cfg,
        CheckOptions(max_age, accept_unverified, min_size, max_shrink, shrink_mode),
        now=now,
        notifier=Notifier(),  # a check at the terminal alerts nobody; the scheduled one does
    )
    results = [c for d in report.databases for c in d.checks] + report.checks
    failed = [d for d in report.databases if d.status == STATUS_FAILED]
    if as_json:
        doc = {"ok": not failed, "now": now.isoformat(), "results": results}
        click.echo(json.dumps(doc, indent=1))
    else:
        for r in results:
            click.echo(f"{r['level'].upper():<4} {r['core'] or '-'}: {r['check']}: {r['message']}")
    if failed:
        bad = [r for r in results if r["level"] == FAIL]
        raise CheckFailed(
            f"{len(bad)} check(s) failed: "
            + "; ".join(f"{r['core']}: {r['message']}" for r in bad),
            hint="look at the latest moodump run logs; run moodump list for the backups",
        )
