"""Retention: a table of scenarios with golden results, invariants on every row, and a
Hypothesis property test of the same invariants.

Golden files live in tests/golden/retention_<scenario>.json. After an intended change of
the rules, refresh them with ``MOODUMP_UPDATE_GOLDEN=1 pytest tests/test_retention.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodump.errors import ConfigError
from moodump.naming import backup_name, tier_for
from moodump.retention import Backup, Plan, RetentionPolicy, last_good_copy, plan, utc
from moodump.schedule import runs_between

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MOODUMP_UPDATE_GOLDEN") == "1"

VAN = ZoneInfo("America/Vancouver")
PST8PDT = ZoneInfo("PST8PDT")
UTC = ZoneInfo("UTC")

KEEP_RULES = {
    "daily",
    "weekly",
    "monthly",
    "num_backups",
    "newest_good",
    "newest_verified",
    "newer_than_good",
    "in_progress",
    "after_failure",
    "no_good_backup",
    "not_selected",
    "outside_layout",
}
REMOVE_RULES = {"beyond_count", "unfinished_older"}

DEFAULTS = RetentionPolicy.resolve("rolling", num_backups=31, daily=6, weekly=4, monthly=1)
MOODLE = RetentionPolicy.resolve("rolling", num_backups=31, daily=5, weekly=1, monthly=1)


# --------------------------------------------------------------------------- builders


def make(
    core: str,
    when: datetime,
    policy: RetentionPolicy | None = None,
    *,
    tier: str | None = "auto",
    status: str = "DONE",
    verified: bool = False,
) -> Backup:
    """A backup named and placed exactly as moodump would place it."""
    if tier == "auto":
        tier = tier_for(when.date(), policy) if policy else None
    host, _, db = core.partition("-")
    name = backup_name(host, db, when)
    folder = f"{tier}/{when:%Y-%m-%d}" if tier else f"{when:%Y-%m-%d}"
    return Backup(f"{folder}/{name}", core, tier, when, status, verified)


def nightly(
    core: str,
    first: date,
    days: int,
    policy: RetentionPolicy,
    tz: ZoneInfo,
    at: Iterable[time] = (time(1, 0),),
    status: Callable[[date], str] = lambda d: "DONE",
    verified: Callable[[date], bool] = lambda d: False,
) -> list[Backup]:
    """One backup per run time per day, like cron would make them (nothing pruned)."""
    out = []
    for i in range(days):
        day = first + timedelta(days=i)
        for t in at:
            when = datetime.combine(day, t, tzinfo=tz)
            out.append(make(core, when, policy, status=status(day), verified=verified(day)))
    return out


def by_cron(
    core: str, expression: str, start: datetime, end: datetime, policy: RetentionPolicy, tz
) -> list[Backup]:
    """Backups at the times the scheduler would really start them (DST rules included)."""
    return [make(core, t, policy) for t in runs_between(expression, start, end, tz)]


def simulate(
    core: str,
    expression: str,
    start: datetime,
    end: datetime,
    policy: RetentionPolicy,
    tz,
    check: Callable[[list[Backup], Plan], None],
) -> list[Backup]:
    """Run the schedule and prune after every run (as moodump run does); return survivors."""
    alive: list[Backup] = []
    for t in runs_between(expression, start, end, tz):
        alive.append(make(core, t, policy))
        p = plan(alive, policy, t + timedelta(minutes=5))
        check(alive, p)
        alive = list(p.keep)
    return alive


# --------------------------------------------------------------------------- invariants


def assert_invariants(
    backups: list[Backup],
    result: Plan,
    policy: RetentionPolicy,
    now: datetime,
    *,
    after_failure: bool = False,
    only: set[str] | None = None,
) -> None:
    ids = [b.id for b in backups]
    kept = {b.id for b in result.keep}
    removed = {b.id for b in result.remove}
    # keep and remove partition the input
    assert kept | removed == set(ids)
    assert not kept & removed
    assert len(result.decisions) == len(backups)
    # exactly one rule and a reason per backup, from the known vocabulary
    for d in result.decisions:
        assert d.reason
        assert d.rule in (KEEP_RULES if d.keep else REMOVE_RULES), d
    cores = {b.core for b in backups}
    for core in cores:
        mine = sorted((b for b in backups if b.core == core), key=lambda b: (utc(b.when), b.id))
        decisions = result.for_core(core)
        if only is not None and core not in only:
            assert all(d.keep and d.rule == "not_selected" for d in decisions)
            continue
        done = [b for b in mine if b.done]
        verified = [b for b in done if b.verified]
        if done:
            assert done[-1].id in kept, f"newest DONE of {core} removed"
        if verified:
            assert verified[-1].id in kept, f"newest verified of {core} removed"
        if after_failure and mine and not mine[-1].done:
            assert not any(b.id in removed for b in mine)
        for d in decisions:
            if d.keep or d.backup.done:
                continue
            # a non-DONE backup is only removed when older than the newest DONE one
            assert done and utc(d.backup.when) <= utc(done[-1].when)
        # counts: the count rules never keep more than the policy allows per group
        count_rules = ("daily", "weekly", "monthly", "num_backups")
        for rule in count_rules:
            n = sum(1 for d in decisions if d.keep and d.rule == rule)
            limit = policy.count_for(rule if rule != "num_backups" else None)
            assert n <= max(limit, 0), (core, rule, n)
        # isolation: the decisions for one database do not depend on the others
        alone = plan(mine, policy, now, after_failure=after_failure)
        assert [(d.backup.id, d.keep, d.rule) for d in alone.decisions] == [
            (d.backup.id, d.keep, d.rule) for d in decisions
        ]
    # determinism: input order does not matter
    shuffled = list(backups)
    random.Random(4).shuffle(shuffled)
    again = plan(shuffled, policy, now, after_failure=after_failure, only=only)
    assert again.decisions == result.decisions


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    backups: list[Backup]
    policy: RetentionPolicy
    now: datetime
    after_failure: bool = False
    only: set[str] | None = None


def _leap_2028() -> Scenario:
    # Nightly at 01:00 Vancouver, 2028-01-20 .. 2028-03-14: Jan 31 (Mon) and the leap day
    # 2028-02-29 (Tue) go to monthly/, Sundays to weekly/, and the DST change of
    # 2028-03-12 passes at 02:00 without touching the 01:00 runs.
    b = nightly("mysql-moodle", date(2028, 1, 20), 55, DEFAULTS, VAN)
    return Scenario(b, DEFAULTS, datetime(2028, 3, 14, 9, tzinfo=VAN))


def _sunday_month_end_moodle() -> Scenario:
    # bcgov/moodle's settings (5/1/1, cron 0 9 * * * in PST8PDT) around 2027-10-31, a
    # Sunday that is also a month end (monthly wins), and 2027-02-28 (same, February).
    b = by_cron(
        "mysql-moodle",
        "0 9 * * *",
        datetime(2027, 10, 15, tzinfo=PST8PDT),
        datetime(2027, 11, 9, 12, tzinfo=PST8PDT),
        MOODLE,
        PST8PDT,
    )
    b += by_cron(
        "mysql-moodle",
        "0 9 * * *",
        datetime(2027, 2, 25, tzinfo=PST8PDT),
        datetime(2027, 3, 2, tzinfo=PST8PDT),
        MOODLE,
        PST8PDT,
    )
    return Scenario(b, MOODLE, datetime(2027, 11, 9, 12, tzinfo=PST8PDT))


def _dst_spring_vancouver() -> Scenario:
    # 02:30 does not exist on 2026-03-08: that run starts at 03:00 and is named 03-00-00.
    b = by_cron(
        "db-moodle",
        "30 2 * * *",
        datetime(2026, 3, 1, tzinfo=VAN),
        datetime(2026, 3, 12, tzinfo=VAN),
        DEFAULTS,
        VAN,
    )
    assert any(x.when.hour == 3 for x in b)
    return Scenario(b, DEFAULTS, datetime(2026, 3, 12, tzinfo=VAN))


def _dst_fall_pst8pdt_several_a_day() -> Scenario:
    # Every 6 hours plus 01:30 across the 2026-11-01 fall-back in PST8PDT, daily
    # strategy keeping 10: counting backups, not days, as the old container counted files.
    daily10 = RetentionPolicy.resolve("daily", num_backups=10, daily=6, weekly=4, monthly=1)
    b = by_cron(
        "mysql-0.mysql-moodle",
        "0 */6 * * *",
        datetime(2026, 10, 29, tzinfo=PST8PDT),
        datetime(2026, 11, 2, 12, tzinfo=PST8PDT),
        daily10,
        PST8PDT,
    )
    b += by_cron(
        "mysql-0.mysql-moodle",
        "30 1 * * *",
        datetime(2026, 10, 29, tzinfo=PST8PDT),
        datetime(2026, 11, 2, 12, tzinfo=PST8PDT),
        daily10,
        PST8PDT,
    )
    return Scenario(b, daily10, datetime(2026, 11, 2, 12, tzinfo=PST8PDT))


def _dst_fold_order() -> Scenario:
    # Two manual runs in the repeated hour: 01:40 PDT happens *before* 01:10 PST. Keep 1:
    # the PST one is the newest, although its wall-clock time is earlier.
    keep1 = RetentionPolicy.resolve("daily", num_backups=1, daily=6, weekly=4, monthly=1)
    first = datetime(2026, 11, 1, 1, 40, tzinfo=VAN, fold=0)
    second = datetime(2026, 11, 1, 1, 10, tzinfo=VAN, fold=1)
    assert utc(second) > utc(first)
    b = [make("db-moodle", first, keep1), make("db-moodle", second, keep1)]
    return Scenario(b, keep1, datetime(2026, 11, 1, 3, tzinfo=VAN))


def _exact_core_match() -> Scenario:
    # db-moodle must not count (or lose) db-moodle_archive's or db-moodle2's backups.
    p = RetentionPolicy.resolve("daily", num_backups=3, daily=6, weekly=4, monthly=1)
    b = nightly("db-moodle", date(2026, 6, 1), 6, p, UTC)
    b += nightly("db-moodle_archive", date(2026, 6, 1), 2, p, UTC, at=(time(2, 0),))
    b += nightly("db-moodle2", date(2026, 5, 20), 5, p, UTC, at=(time(3, 0),))
    return Scenario(b, p, datetime(2026, 6, 7, tzinfo=UTC))


def _failures(after_failure: bool) -> Callable[[], Scenario]:
    def build() -> Scenario:
        p = RetentionPolicy.resolve("rolling", num_backups=31, daily=3, weekly=1, monthly=1)
        statuses = {
            date(2026, 6, 3): "FAILED",
            date(2026, 6, 5): "MISSING",
            date(2026, 6, 9): "STARTED",
            date(2026, 6, 11): "FAILED",  # the newest backup failed
        }
        b = nightly(
            "db-moodle",
            date(2026, 6, 1),
            11,
            p,
            VAN,
            status=lambda d: statuses.get(d, "DONE"),
        )
        # another database whose newest backup is fine is pruned normally either way
        b += nightly("db-other", date(2026, 6, 1), 11, p, VAN, at=(time(2, 0),))
        return Scenario(b, p, datetime(2026, 6, 11, 8, tzinfo=VAN), after_failure=after_failure)

    return build


def _newest_verified_protected() -> Scenario:
    # Only the backup of June 2 was ever verified; it survives beyond the daily count.
    p = RetentionPolicy.resolve("rolling", num_backups=31, daily=3, weekly=0, monthly=0)
    b = nightly("db-moodle", date(2026, 6, 1), 9, p, VAN, verified=lambda d: d == date(2026, 6, 2))
    return Scenario(b, p, datetime(2026, 6, 10, tzinfo=VAN))


def _weekly_zero_sunday() -> Scenario:
    # WEEKLY_BACKUPS=0: Sunday backups go to daily/ (the old one put them in weekly/ and
    # deleted them at once). A weekly/ backup left by the old container goes.
    p = RetentionPolicy.resolve("rolling", num_backups=31, daily=4, weekly=0, monthly=1)
    b = nightly("db-moodle", date(2026, 6, 1), 10, p, VAN)
    assert not any(x.tier == "weekly" for x in b)
    b.append(make("db-moodle", datetime(2026, 5, 24, 1, tzinfo=VAN), tier="weekly"))
    return Scenario(b, p, datetime(2026, 6, 11, tzinfo=VAN))


def _all_counts_zero() -> Scenario:
    # All three counts 0: the daily count is forced to 1, as before.
    p = RetentionPolicy.resolve("rolling", num_backups=31, daily=0, weekly=0, monthly=0)
    assert p.count_for("daily") == 1
    b = nightly("db-moodle", date(2026, 5, 27), 7, p, VAN)
    return Scenario(b, p, datetime(2026, 6, 3, tzinfo=VAN))


def _daily_strategy_with_tier_leftovers() -> Scenario:
    # Switched from rolling to daily: NUM_BACKUPS counts every backup of the database,
    # wherever it sits (the old daily prune globbed the whole root too).
    rolling = RetentionPolicy.resolve("rolling", num_backups=31, daily=6, weekly=4, monthly=1)
    daily = RetentionPolicy.resolve("daily", num_backups=5, daily=6, weekly=4, monthly=1)
    b = nightly("db-moodle", date(2026, 5, 25), 10, rolling, VAN)
    b += nightly("db-moodle", date(2026, 6, 4), 3, daily, VAN)
    return Scenario(b, daily, datetime(2026, 6, 7, tzinfo=VAN))


def _rolling_with_flat_leftovers() -> Scenario:
    # Switched from daily to rolling: flat date folders are left alone (as before).
    daily = RetentionPolicy.resolve("daily", num_backups=5, daily=6, weekly=4, monthly=1)
    p = RetentionPolicy.resolve("rolling", num_backups=31, daily=2, weekly=1, monthly=1)
    b = nightly("db-moodle", date(2026, 5, 28), 4, daily, VAN)
    b += nightly("db-moodle", date(2026, 6, 1), 5, p, VAN)
    return Scenario(b, p, datetime(2026, 6, 6, tzinfo=VAN))


def _not_configured() -> Scenario:
    # Databases outside the configuration are not touched.
    p = RetentionPolicy.resolve("daily", num_backups=2, daily=6, weekly=4, monthly=1)
    b = nightly("db-moodle", date(2026, 6, 1), 5, p, UTC)
    b += nightly("db-old", date(2026, 1, 1), 5, p, UTC)
    return Scenario(b, p, datetime(2026, 6, 6, tzinfo=UTC), only={"db-moodle"})


def _in_progress_grace() -> Scenario:
    # A STARTED backup from 10 minutes ago is kept even though a newer DONE one exists
    # (it may still be running); an old STARTED one is removed; a recent FAILED one is
    # final and goes.
    p = RetentionPolicy.resolve("daily", num_backups=3, daily=6, weekly=4, monthly=1)
    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    b = nightly("db-moodle", date(2026, 6, 6), 4, p, UTC)
    b.append(make("db-moodle", now - timedelta(hours=30), p, status="STARTED"))
    b.append(make("db-moodle", now - timedelta(minutes=10), p, status="STARTED"))
    b.append(make("db-moodle", now - timedelta(minutes=11), p, status="DONE"))
    b.append(make("db-moodle", now - timedelta(minutes=30), p, status="FAILED"))
    return Scenario(b, p, now)


def _no_good_backup_yet() -> Scenario:
    p = RetentionPolicy.resolve("daily", num_backups=2, daily=6, weekly=4, monthly=1)
    b = nightly("db-new", date(2026, 6, 1), 4, p, UTC, status=lambda d: "FAILED")
    return Scenario(b, p, datetime(2026, 6, 8, tzinfo=UTC))


def _legacy_files() -> Scenario:
    # Old backup-container .sql.gz files on the volume age out like any DONE backup.
    p = RetentionPolicy.resolve("rolling", num_backups=31, daily=3, weekly=1, monthly=1)
    old = [
        replace(x, id=x.id + ".sql.gz")
        for x in nightly("mysql-moodle", date(2026, 5, 25), 5, p, VAN, at=(time(9, 0),))
    ]
    new = nightly("mysql-moodle", date(2026, 5, 30), 4, p, VAN, at=(time(9, 0),))
    return Scenario(old + new, p, datetime(2026, 6, 3, 10, tzinfo=VAN))


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "leap_2028": _leap_2028,
    "sunday_month_end_moodle": _sunday_month_end_moodle,
    "dst_spring_vancouver": _dst_spring_vancouver,
    "dst_fall_pst8pdt_several_a_day": _dst_fall_pst8pdt_several_a_day,
    "dst_fold_order": _dst_fold_order,
    "exact_core_match": _exact_core_match,
    "failures": _failures(False),
    "failures_after_failed_run": _failures(True),
    "newest_verified_protected": _newest_verified_protected,
    "weekly_zero_sunday": _weekly_zero_sunday,
    "all_counts_zero": _all_counts_zero,
    "daily_strategy_with_tier_leftovers": _daily_strategy_with_tier_leftovers,
    "rolling_with_flat_leftovers": _rolling_with_flat_leftovers,
    "not_configured": _not_configured,
    "in_progress_grace": _in_progress_grace,
    "no_good_backup_yet": _no_good_backup_yet,
    "legacy_files": _legacy_files,
}


def _golden_doc(name: str, s: Scenario, result: Plan) -> dict[str, object]:
    return {
        "scenario": name,
        "policy": s.policy.__dict__,
        "now": s.now.isoformat(),
        "after_failure": s.after_failure,
        "only": sorted(s.only) if s.only is not None else None,
        "decisions": [
            {
                "id": d.backup.id,
                "when": d.backup.when.isoformat(),
                "status": d.backup.status + (" verified" if d.backup.verified else ""),
                "keep": d.keep,
                "rule": d.rule,
                "reason": d.reason,
            }
            for d in result.decisions
        ],
    }


def check_golden(name: str, doc: object) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(doc, indent=1) + "\n"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run with MOODUMP_UPDATE_GOLDEN=1 and review it")
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(text), (
        f"plan differs from {path.name}; if the change is intended, refresh with "
        "MOODUMP_UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str) -> None:
    s = SCENARIOS[name]()
    result = plan(s.backups, s.policy, s.now, after_failure=s.after_failure, only=s.only)
    assert_invariants(
        s.backups, result, s.policy, s.now, after_failure=s.after_failure, only=s.only
    )
    check_golden(f"retention_{name}", _golden_doc(name, s, result))


# --------------------------------------------------------------------------- specific facts
# (the golden files hold everything; these spell out the facts that matter most)


def _kept_names(result: Plan) -> list[str]:
    return [d.backup.id.rsplit("/", 1)[1] for d in result.decisions if d.keep]


def test_leap_day_goes_to_monthly_and_is_kept() -> None:
    s = _leap_2028()
    leap = [b for b in s.backups if b.when.date() == date(2028, 2, 29)]
    assert [b.tier for b in leap] == ["monthly"]
    result = plan(s.backups, s.policy, s.now)
    assert result.decision(leap[0].id).reason == "monthly #1"
    jan31 = next(b for b in s.backups if b.when.date() == date(2028, 1, 31))
    assert jan31.tier == "monthly"
    assert result.decision(jan31.id).rule == "beyond_count"  # MONTHLY_BACKUPS=1


def test_sunday_month_end_is_monthly() -> None:
    s = _sunday_month_end_moodle()
    for day in (date(2027, 10, 31), date(2027, 2, 28)):
        assert [b.tier for b in s.backups if b.when.date() == day] == ["monthly"]


def test_three_runs_a_day_use_three_slots() -> None:
    s = _dst_fall_pst8pdt_several_a_day()
    result = plan(s.backups, s.policy, s.now)
    kept = [b for b in result.keep]
    assert len(kept) == 10
    newest = sorted(s.backups, key=lambda b: utc(b.when))[-10:]
    assert {b.id for b in kept} == {b.id for b in newest}


def test_fall_back_run_once_and_named_in_daylight_time() -> None:
    s = _dst_fall_pst8pdt_several_a_day()
    on_day = [b for b in s.backups if b.when.date() == date(2026, 11, 1) and b.when.hour == 1]
    assert len(on_day) == 1 and on_day[0].when.utcoffset() == timedelta(hours=-7)


def test_fold_order_keeps_the_later_instant() -> None:
    s = _dst_fold_order()
    result = plan(s.backups, s.policy, s.now)
    (kept,) = result.keep
    assert kept.when.fold == 1


def test_other_database_with_prefix_name_untouched() -> None:
    s = _exact_core_match()
    result = plan(s.backups, s.policy, s.now)
    archive = result.for_core("db-moodle_archive")
    assert len(archive) == 2 and all(d.keep for d in archive)
    assert sum(d.keep for d in result.for_core("db-moodle")) == 3


def test_after_failed_run_nothing_removed_for_that_database() -> None:
    s = _failures(True)()
    result = plan(s.backups, s.policy, s.now, after_failure=True)
    assert all(d.keep for d in result.for_core("db-moodle"))
    assert any(not d.keep for d in result.for_core("db-other"))
    normal = plan(s.backups, s.policy, s.now)
    removed = [d for d in normal.for_core("db-moodle") if not d.keep]
    assert {d.rule for d in removed} == {"beyond_count", "unfinished_older"}
    newest = normal.for_core("db-moodle")[0]
    assert newest.keep and newest.rule == "newer_than_good"


def test_simulated_year_rolling() -> None:
    """Two years of nightly runs pruned after each run: the survivors are the policy."""
    p = RetentionPolicy.resolve("rolling", num_backups=31, daily=6, weekly=4, monthly=12)

    def check(alive: list[Backup], result: Plan) -> None:
        assert_invariants(alive, result, p, max(b.when for b in alive) + timedelta(minutes=5))

    survivors = simulate(
        "mysql-moodle",
        "0 1 * * *",
        datetime(2027, 1, 1, tzinfo=VAN),
        datetime(2028, 12, 31, 12, tzinfo=VAN),
        p,
        VAN,
        check,
    )
    by_tier: dict[str, list[str]] = {}
    for b in sorted(survivors, key=lambda b: utc(b.when)):
        by_tier.setdefault(str(b.tier), []).append(b.when.date().isoformat())
    assert len(by_tier["daily"]) == 6
    assert len(by_tier["weekly"]) == 4
    assert len(by_tier["monthly"]) == 12
    check_golden("retention_simulated_two_years", by_tier)


# --------------------------------------------------------------------------- policy resolution


@pytest.mark.parametrize(
    ("strategy", "counts", "expected"),
    [
        ("rolling", (31, 6, 4, 1), ("rolling", 6, 4, 1)),
        ("ROLLING", (31, 6, 4, 1), ("rolling", 6, 4, 1)),
        ("daily", (31, 6, 4, 1), ("daily", 6, 4, 1)),
        ("rolling", (31, 6, -1, 1), ("daily", 6, -1, 1)),  # WEEKLY<0 selects daily
        ("rolling", (31, 0, 0, 0), ("rolling", 1, 0, 0)),  # forced daily 1
        ("rolling", (31, 0, 2, 0), ("rolling", 0, 2, 0)),
    ],
)
def test_policy_resolve(
    strategy: str, counts: tuple[int, ...], expected: tuple[object, ...]
) -> None:
    num, d, w, m = counts
    p = RetentionPolicy.resolve(strategy, num_backups=num, daily=d, weekly=w, monthly=m)
    assert (p.strategy, p.count_for("daily") if p.rolling else p.daily, p.weekly, p.monthly) == (
        expected
    )


@pytest.mark.parametrize(
    ("strategy", "counts", "needle"),
    [
        ("weekly", (31, 6, 4, 1), "BACKUP_STRATEGY"),
        ("rolling", (31, 6, 4, -1), "MONTHLY_BACKUPS"),
        ("daily", (-1, 6, 4, 1), "NUM_BACKUPS"),
        ("rolling", (31, -2, 4, 1), "DAILY_BACKUPS"),
    ],
)
def test_policy_resolve_rejects(strategy: str, counts: tuple[int, ...], needle: str) -> None:
    num, d, w, m = counts
    with pytest.raises(ConfigError, match=needle):
        RetentionPolicy.resolve(strategy, num_backups=num, daily=d, weekly=w, monthly=m)


def test_duplicate_ids_rejected() -> None:
    b = make("db-x", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        plan([b, b], DEFAULTS, datetime(2026, 1, 2, tzinfo=UTC))


def test_naive_times_rejected() -> None:
    b = Backup("x", "db-x", None, datetime(2026, 1, 1), "DONE")
    with pytest.raises(ValueError, match="timezone-aware"):
        plan([b], DEFAULTS, datetime(2026, 1, 2, tzinfo=UTC))


# --------------------------------------------------------------------------- property test

CORES = ["db-moodle", "db-moodle_archive", "db-moodle2", "mysql-0.mysql-moodle"]
STATUSES = ["DONE", "DONE", "DONE", "FAILED", "STARTED", "MISSING", "INVALID"]


Case = tuple[list[Backup], RetentionPolicy, datetime, bool, set[str] | None]


@st.composite
def backup_sets(draw: st.DrawFn) -> Case:
    n = draw(st.integers(min_value=0, max_value=30))
    backups = []
    for i in range(n):
        when = draw(
            st.datetimes(
                min_value=datetime(2026, 1, 1),
                max_value=datetime(2026, 12, 31),
                timezones=st.sampled_from([VAN, PST8PDT, UTC]),
            )
        )
        backups.append(
            Backup(
                id=f"b{i:02d}",
                core=draw(st.sampled_from(CORES)),
                tier=draw(st.sampled_from([None, "daily", "weekly", "monthly"])),
                when=when,
                status=draw(st.sampled_from(STATUSES)),
                verified=draw(st.booleans()),
            )
        )
    policy = RetentionPolicy.resolve(
        draw(st.sampled_from(["rolling", "daily"])),
        num_backups=draw(st.integers(0, 5)),
        daily=draw(st.integers(0, 4)),
        weekly=draw(st.integers(-1, 3)),
        monthly=draw(st.integers(0, 3)),
    )
    latest = max((utc(b.when) for b in backups), default=datetime(2026, 6, 1, tzinfo=UTC))
    now = latest + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)))
    only = draw(st.one_of(st.none(), st.sets(st.sampled_from(CORES))))
    return backups, policy, now, draw(st.booleans()), only


@settings(max_examples=150, deadline=None)
@given(backup_sets())
def test_invariants_property(case: Case) -> None:
    backups, policy, now, after_failure, only = case
    result = plan(backups, policy, now, after_failure=after_failure, only=only)
    assert_invariants(backups, result, policy, now, after_failure=after_failure, only=only)


def test_last_good_copy_counts_only_done_backups_whose_verification_did_not_fail() -> None:
    def b(i: str, core: str = "mysql-moodle", status: str = "DONE", failed: bool = False) -> Backup:
        return Backup(id=i, core=core, tier="daily", when=datetime(2026, 6, 1, tzinfo=ZoneInfo("UTC")),
                      status=status, verify_failed=failed)  # fmt: skip

    good, other = b("a"), b("b")
    assert not last_good_copy(good, [good, other])
    assert last_good_copy(good, [good, b("c", status="FAILED"), b("d", failed=True)])
    assert last_good_copy(good, [good, b("e", core="mysql-moodle_archive")])
    assert not last_good_copy(b("f", failed=True), [b("f", failed=True)])
    assert not last_good_copy(b("g", status="STARTED"), [])
