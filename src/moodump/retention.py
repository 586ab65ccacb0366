"""Which backups to keep: a pure calculator, no I/O, no clock.

:func:`plan` takes value objects (:class:`Backup`), a :class:`RetentionPolicy` and ``now``
and returns one :class:`Decision` per backup: keep (with the rule that kept it) or remove
(with the reason). Something else deletes (:func:`moodump.catalog.apply_plan`).

The rules, per database (the *core name* ``<host>-<db>``, matched exactly):

1. **Counts per tier.** Rolling strategy: the newest ``daily`` / ``weekly`` / ``monthly``
   DONE backups of each tier folder are kept ("daily #3"). Daily strategy: the newest
   ``num_backups`` DONE backups wherever they sit ("num_backups #3"). Like the old
   backup-container, backups are counted, not days: three runs in one day use three slots.
   Only DONE backups count; a failed or unfinished one never takes a slot.
2. **Never the last good copy.** The newest DONE backup of a database whose latest
   verification did not fail (nor a file of it is missing or of the wrong size) is always kept
   ("newest good"), and so is the newest DONE backup whose latest verification passed
   ("newest verified"), whatever the counts say.
3. **Failed and unfinished backups** (status FAILED, STARTED, no manifest, unreadable) that
   are newer than the newest DONE one are kept (they are evidence, or still running); those
   older than the newest DONE one are removed. A STARTED/unreadable one younger than
   ``in_progress_grace`` is kept in any case (it may still be running).
4. **After a failed run** (``after_failure=True``) nothing of a database whose newest backup
   is not DONE is removed: the operator needs every old copy until a backup succeeds again.
5. Backups of databases outside ``only`` (when given) are kept untouched, and in the rolling
   strategy backups in flat date folders (left over from the daily strategy) are kept: the
   old container never pruned them either.

Backups are ordered by their time (an aware datetime, so DST changes order correctly), with
the id as a tie-breaker so the result never depends on input order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from moodump.errors import ConfigError

STRATEGY_DAILY = "daily"
STRATEGY_ROLLING = "rolling"
STRATEGIES = (STRATEGY_DAILY, STRATEGY_ROLLING)

TIER_DAILY = "daily"
TIER_WEEKLY = "weekly"
TIER_MONTHLY = "monthly"
TIERS = (TIER_DAILY, TIER_WEEKLY, TIER_MONTHLY)

STATUS_DONE = "DONE"
#: Statuses that mean "maybe still being written" (FAILED is final, so it is not here).
STATUS_UNFINISHED = frozenset({"STARTED", "MISSING", "INVALID"})


@dataclass(frozen=True)
class RetentionPolicy:
    """Retention settings, already resolved to the *effective* strategy.

    Build it with :meth:`resolve` from the raw settings; that applies the old container's
    rules for choosing the strategy and for the forced minimum of one daily backup.
    """

    strategy: str = STRATEGY_ROLLING
    num_backups: int = 31
    daily: int = 6
    weekly: int = 4
    monthly: int = 1

    @classmethod
    def resolve(
        cls, strategy: str, *, num_backups: int, daily: int, weekly: int, monthly: int
    ) -> RetentionPolicy:
        """Apply the old container's strategy rules to raw settings.

        - ``rolling`` is active when the strategy is ``rolling`` and WEEKLY >= 0 and
          MONTHLY >= 0; ``daily`` when the strategy is ``daily`` or WEEKLY < 0 (the old
          documented switch). Anything else is a configuration error.
        - In rolling mode the daily count is forced to 1 when all three counts are <= 0.
        - Negative counts other than the WEEKLY switch are rejected (the old scripts
          deleted everything for a negative count).
        """
        s = strategy.strip().lower()
        if s not in STRATEGIES:
            raise ConfigError(
                f"BACKUP_STRATEGY={strategy!r} is not a known backup strategy",
                hint="set BACKUP_STRATEGY to rolling or daily",
            )
        if s == STRATEGY_DAILY or weekly < 0:
            if num_backups < 0:
                raise ConfigError(
                    f"NUM_BACKUPS={num_backups} is negative",
                    hint="set NUM_BACKUPS to the number of backups to keep (e.g. 31)",
                )
            return cls(STRATEGY_DAILY, num_backups, daily, weekly, monthly)
        if monthly < 0:
            raise ConfigError(
                f"BACKUP_STRATEGY=rolling needs MONTHLY_BACKUPS >= 0 (got {monthly})",
                hint="set MONTHLY_BACKUPS to 0 or more, or BACKUP_STRATEGY=daily",
            )
        if daily < 0:
            raise ConfigError(
                f"DAILY_BACKUPS={daily} is negative",
                hint="set DAILY_BACKUPS to the number of daily backups to keep (e.g. 6)",
            )
        if daily <= 0 and weekly <= 0 and monthly <= 0:
            daily = 1
        return cls(STRATEGY_ROLLING, num_backups, daily, weekly, monthly)

    @property
    def rolling(self) -> bool:
        return self.strategy == STRATEGY_ROLLING

    def count_for(self, tier: str | None) -> int:
        """How many DONE backups one group keeps (``tier`` None = daily strategy)."""
        if not self.rolling:
            return self.num_backups
        return {TIER_DAILY: self.daily, TIER_WEEKLY: self.weekly, TIER_MONTHLY: self.monthly}[
            tier or TIER_DAILY
        ]


@dataclass(frozen=True)
class Backup:
    """What retention needs to know about one backup.

    ``id`` is unique (the path); ``core`` is ``<host>-<db>``; ``tier`` is the tier folder
    the backup sits in (None for a flat date folder); ``when`` is timezone-aware;
    ``status`` is the manifest status (``DONE``, ``FAILED``, ``STARTED``, ``MISSING`` when
    there is no manifest, ``INVALID`` when it cannot be read); ``verified`` is True when
    the latest verification of the backup passed; ``verify_failed`` when it failed (such a
    backup still counts, but is never the "newest good" one that protects older backups).
    """

    id: str
    core: str
    tier: str | None
    when: datetime
    status: str
    verified: bool = False
    verify_failed: bool = False

    @property
    def done(self) -> bool:
        return self.status == STATUS_DONE


@dataclass(frozen=True)
class Decision:
    """Keep or remove one backup, and why.

    ``rule`` is a stable machine name (``daily``, ``weekly``, ``monthly``, ``num_backups``,
    ``newest_good``, ``newest_verified``, ``newer_than_good``, ``in_progress``,
    ``after_failure``, ``no_good_backup``, ``not_selected``, ``outside_layout`` for kept
    backups; ``beyond_count`` and ``unfinished_older`` for removed ones); ``reason`` is
    the human text, e.g. ``daily #3`` or ``beyond the 6 newest daily backups``.
    """

    backup: Backup
    keep: bool
    rule: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.backup.id,
            "core": self.backup.core,
            "tier": self.backup.tier,
            "when": self.backup.when.isoformat(),
            "status": self.backup.status,
            "verified": self.backup.verified,
            "keep": self.keep,
            "rule": self.rule,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Plan:
    """The decisions, one per input backup, ordered by core name then newest first."""

    decisions: tuple[Decision, ...]

    @property
    def keep(self) -> tuple[Backup, ...]:
        return tuple(d.backup for d in self.decisions if d.keep)

    @property
    def remove(self) -> tuple[Backup, ...]:
        return tuple(d.backup for d in self.decisions if not d.keep)

    def for_core(self, core: str) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.backup.core == core)

    def decision(self, backup_id: str) -> Decision:
        for d in self.decisions:
            if d.backup.id == backup_id:
                return d
        raise KeyError(backup_id)

    def to_list(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.decisions]


def last_good_copy(backup: Backup, group: Sequence[Backup]) -> bool:
    """Whether ``backup`` is the only good backup of its database in ``group`` (DONE, and
    its latest verification did not fail): deleting it by hand (``moodump prune
    --delete``) would leave no copy to restore, which rule 2 never lets retention do."""
    def good(b: Backup) -> bool:
        return b.done and not b.verify_failed

    return good(backup) and not any(
        good(b) for b in group if b.core == backup.core and b.id != backup.id
    )


def utc(when: datetime) -> datetime:
    """``when`` as UTC.

    Compare and subtract through this: Python compares two datetimes that share a tzinfo
    by wall clock alone, ignoring ``fold``, which orders the repeated hour of a DST
    fall-back wrongly.
    """
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()}: times must be timezone-aware")
    return when.astimezone(timezone.utc)


def _order(b: Backup) -> tuple[datetime, str]:
    return (utc(b.when), b.id)


def _beyond(policy: RetentionPolicy, tier: str | None) -> str:
    n = policy.count_for(tier)
    if policy.rolling and tier:
        var, what = f"{tier.upper()}_BACKUPS", f"{tier} backups"
    else:
        var, what = "NUM_BACKUPS", "backups"
    if n <= 0:
        return f"{var}={n}: no {what} are kept"
    return f"older than the {n} newest {what} ({var}={n})"


def plan(
    backups: Iterable[Backup],
    policy: RetentionPolicy,
    now: datetime,
    *,
    after_failure: bool = False,
    only: Collection[str] | None = None,
    in_progress_grace: timedelta = timedelta(hours=12),
) -> Plan:
    """Decide keep/remove for every backup (see the module docstring for the rules).

    :param backups: every backup found (all databases); ids must be unique.
    :param policy: the effective policy (:meth:`RetentionPolicy.resolve`).
    :param now: aware "now"; only used for the in-progress grace of unfinished backups.
    :param after_failure: the caller just saw a backup fail; databases whose newest
        backup is not DONE lose nothing.
    :param only: core names to prune; backups of other databases are kept untouched.
    :param in_progress_grace: STARTED/unreadable backups younger than this are kept.
    """
    items = list(backups)
    ids = [b.id for b in items]
    if len(set(ids)) != len(ids):
        raise ValueError("backup ids must be unique")
    by_core: dict[str, list[Backup]] = {}
    for b in items:
        by_core.setdefault(b.core, []).append(b)

    decisions: list[Decision] = []
    for core in sorted(by_core):
        group = sorted(by_core[core], key=_order, reverse=True)
        if only is not None and core not in only:
            decisions.extend(
                Decision(
                    b, True, "not_selected", "left alone: not one of the databases being pruned"
                )
                for b in group
            )
            continue
        decisions.extend(_plan_core(group, policy, now, after_failure, in_progress_grace))
    return Plan(tuple(decisions))


def _plan_core(
    group: Sequence[Backup],
    policy: RetentionPolicy,
    now: datetime,
    after_failure: bool,
    grace: timedelta,
) -> list[Decision]:
    """Decisions for one database; ``group`` is sorted newest first."""
    if after_failure and group and not group[0].done:
        return [
            Decision(b, True, "after_failure", "not pruned: the newest backup did not succeed")
            for b in group
        ]

    kept: dict[str, tuple[str, str]] = {}  # id -> (rule, reason)

    # 1. Counts per tier group (DONE backups only, newest first).
    groups: dict[str | None, list[Backup]] = {}
    for b in group:
        if not b.done:
            continue
        if policy.rolling:
            if b.tier is None:
                continue  # flat folder under the rolling strategy: handled below
            groups.setdefault(b.tier, []).append(b)
        else:
            groups.setdefault(None, []).append(b)
    for tier, members in groups.items():
        n = policy.count_for(tier)
        rule = tier if policy.rolling and tier else "num_backups"
        for i, b in enumerate(members[: max(n, 0)], start=1):
            kept[b.id] = (rule, f"{rule} #{i}")

    # 2. Protect the newest good and the newest verified backup.
    # A DONE backup whose verification failed is not good: the newest one that did not
    # fail is protected, so a newer damaged backup never costs the last good one.
    newest_done = next((b for b in group if b.done and not b.verify_failed), None)
    if newest_done is not None and newest_done.id not in kept:
        kept[newest_done.id] = ("newest_good", "newest good backup of this database")
    newest_verified = next((b for b in group if b.done and b.verified), None)
    if newest_verified is not None and newest_verified.id not in kept:
        kept[newest_verified.id] = ("newest_verified", "newest verified backup of this database")

    out: list[Decision] = []
    for b in group:
        if b.id in kept:
            rule, reason = kept[b.id]
            out.append(Decision(b, True, rule, reason))
        elif b.done:
            if policy.rolling and b.tier is None:
                out.append(
                    Decision(
                        b,
                        True,
                        "outside_layout",
                        "flat date folder under the rolling strategy: not pruned (remove by hand)",
                    )
                )
            else:
                out.append(Decision(b, False, "beyond_count", _beyond(policy, b.tier)))
        # 3. Failed / unfinished backups.
        elif b.status in STATUS_UNFINISHED and utc(now) - utc(b.when) < grace:
            out.append(Decision(b, True, "in_progress", f"{b.status} and recent: may be running"))
        elif newest_done is None:
            out.append(
                Decision(b, True, "no_good_backup", f"{b.status}, but no good backup exists yet")
            )
        elif _order(b) > _order(newest_done):
            out.append(
                Decision(
                    b,
                    True,
                    "newer_than_good",
                    f"{b.status} and newer than the newest good backup: kept as evidence",
                )
            )
        else:
            out.append(
                Decision(
                    b,
                    False,
                    "unfinished_older",
                    f"{b.status} (not a usable backup) and older than the newest good backup "
                    f"({newest_done.when.isoformat()})",
                )
            )
    return out


__all__ = [
    "STRATEGIES",
    "STRATEGY_DAILY",
    "STRATEGY_ROLLING",
    "TIERS",
    "TIER_DAILY",
    "TIER_MONTHLY",
    "TIER_WEEKLY",
    "Backup",
    "Decision",
    "Plan",
    "RetentionPolicy",
    "plan",
    "utc",
]
