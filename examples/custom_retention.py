"""A custom retention policy built on moodump.retention: keep quarter ends for years.

moodump's own rules are the old container's: the newest N daily, weekly and monthly
backups per database. An audit may want more, e.g. the month-end backup of every quarter
(March, June, September, December) for two years, while other month ends go after three
months. This script takes moodump's plan for that shorter monthly count and overrules it
for quarter ends. It only turns "remove" into "keep", so every safety rule of the pure
calculator still holds (never the newest good or newest verified backup, nothing pruned
after a failed run, failed and unfinished backups handled as usual).

Use it in place of the built-in monthly count: let `moodump run` keep enough monthly
backups that its own pruning never removes a quarter end before this script decides
(MONTHLY_BACKUPS >= RECENT_MONTHS + 4 * YEARS, e.g. 24), and run this script after the
backups (a cron line cannot run it; use a CronJob or `oc exec`):

    python examples/custom_retention.py                 # dry run over BACKUP_DIR
    python examples/custom_retention.py --apply         # delete what the plan removes
    python examples/custom_retention.py --demo          # two synthetic years, no disk

Configuration (BACKUP_DIR, TZ, BACKUP_CONF, DAILY/WEEKLY/MONTHLY_BACKUPS ...) is read from
the environment like every moodump command.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from moodump.catalog import apply_plan, scan_backups
from moodump.config import load_config_from_environment
from moodump.errors import MoodumpError
from moodump.naming import tier_for
from moodump.retention import TIER_MONTHLY, Backup, Decision, Plan, RetentionPolicy, plan, utc

QUARTER_END_MONTHS = (3, 6, 9, 12)


def quarter_end_keepers(backups: Iterable[Backup], now: datetime, years: int) -> set[str]:
    """Ids of the newest DONE monthly backup of each quarter-end month, per database,
    taken within the last ``years`` years."""
    cutoff = utc(now) - timedelta(days=366 * years)
    newest: dict[tuple[str, int, int], Backup] = {}
    for b in backups:
        if b.tier != TIER_MONTHLY or not b.done or utc(b.when) < cutoff:
            continue
        if b.when.month not in QUARTER_END_MONTHS:
            continue
        key = (b.core, b.when.year, b.when.month)
        if key not in newest or utc(b.when) > utc(newest[key].when):
            newest[key] = b
    return {b.id for b in newest.values()}


def custom_plan(
    backups: list[Backup],
    policy: RetentionPolicy,
    now: datetime,
    *,
    recent_months: int = 3,
    years: int = 2,
    only: Iterable[str] | None = None,
    after_failure: bool = False,
) -> Plan:
    """moodump's plan with ``recent_months`` monthly backups, plus quarter ends kept."""
    base = plan(
        backups,
        dataclasses.replace(policy, monthly=recent_months),
        now,
        only=None if only is None else set(only),
        after_failure=after_failure,
    )
    keepers = quarter_end_keepers(backups, now, years)
    decisions = []
    for d in base.decisions:
        if not d.keep and d.backup.id in keepers:
            quarter = (d.backup.when.month - 1) // 3 + 1
            d = Decision(d.backup, True, "quarter_end", f"end of Q{quarter} {d.backup.when.year}")
        decisions.append(d)
    return Plan(tuple(decisions))


def demo_backups(now: datetime, days: int = 730) -> list[Backup]:
    """One nightly DONE backup at 01:00 for ``days`` days, in the tier folders the
    rolling strategy would have used (moodump.naming.tier_for)."""
    policy = RetentionPolicy()
    out = []
    for n in range(days, 0, -1):
        when = (now - timedelta(days=n)).replace(hour=1, minute=0, second=0, microsecond=0)
        tier = tier_for(when.date(), policy)
        name = f"mysql-moodle_{when:%Y-%m-%d_%H-%M-%S}"
        out.append(Backup(f"/backups/{tier}/{when:%Y-%m-%d}/{name}", "mysql-moodle", tier,
                          when, "DONE", verified=True))  # fmt: skip
    return out


def report(result: Plan, *, removed: bool = True) -> str:
    lines = []
    for d in result.decisions:
        if d.keep or removed:
            verb = "keep  " if d.keep else "remove"
            lines.append(f"{verb} {d.backup.id}  ({d.reason})")
    kept = Counter(d.rule for d in result.decisions if d.keep)
    lines.append(
        "kept by rule: "
        + ", ".join(f"{rule} {n}" for rule, n in sorted(kept.items()))
        + f"; removed: {len(result.remove)}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recent-months", type=int, default=3)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--apply", action="store_true", help="delete what the plan removes")
    parser.add_argument("--demo", action="store_true", help="synthetic backups, no disk access")
    args = parser.parse_args(argv)

    if args.demo:
        now = datetime(2026, 11, 24, 2, 0, tzinfo=ZoneInfo("America/Vancouver"))
        result = custom_plan(
            demo_backups(now), RetentionPolicy(), now,
            recent_months=args.recent_months, years=args.years,
        )  # fmt: skip
        print(report(result, removed=False))
        return 0

    try:
        cfg = load_config_from_environment()
        needed = args.recent_months + 4 * args.years
        if cfg.retention.rolling and cfg.retention.monthly < needed:
            print(
                f"warning: MONTHLY_BACKUPS={cfg.retention.monthly}: moodump's own pruning "
                f"removes quarter ends before this policy keeps them; set it to {needed} or more",
                file=sys.stderr,
            )
        infos = scan_backups(cfg.root, cfg.tz)
        result = custom_plan(
            [i.to_backup() for i in infos], cfg.retention, datetime.now(cfg.tz),
            recent_months=args.recent_months, years=args.years, only=cfg.cores,
        )  # fmt: skip
        print(report(result))
        if args.apply:
            removed, errors = apply_plan(result, infos, cfg.root)
            print(f"deleted {len(removed)} backup(s)")
            for error in errors:
                print(f"error: {error}", file=sys.stderr)
            return 1 if errors else 0
        print("dry run: nothing deleted (use --apply)")
    except MoodumpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
