"""Apply the staging scrub (:mod:`.rules`) to a restored database, in one transaction."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from moodump.db.connection import Connection, quote_str
from moodump.moodlesite.rules import CONFIG, RULES, Plan, Rule, plan_scrub, rule_sql

log = logging.getLogger("moodump.moodle")


@dataclass
class ScrubReport:
    """What the scrub changed: one entry per rule applied, and the rules skipped."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_columns(conn: Connection, database: str) -> dict[str, list[str]]:
    """Every table of ``database`` with its columns, in order."""
    out: dict[str, list[str]] = {}
    for t, c in conn.query(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
        f"{quote_str(database)} ORDER BY TABLE_NAME, ORDINAL_POSITION"
    ):
        out.setdefault((t or b"").decode("utf-8", "surrogateescape"), []).append(
            (c or b"").decode("utf-8", "surrogateescape")
        )
    return out


def scrub(
    conn: Connection, database: str, prefix: str, rules: tuple[Rule, ...] = RULES
) -> ScrubReport:
    """Check the rules against ``database``'s schema, then apply every one in ONE
    transaction: either the copy is scrubbed as a whole or not at all (and the error
    says so). ConfigError before any change when a needed table or column is missing."""
    plan: Plan = plan_scrub(table_columns(conn, database), prefix, rules)
    report = ScrubReport(skipped=[_entry(r, prefix, None, "table absent") for r in plan.skipped])
    conn.execute("START TRANSACTION")
    try:
        for r in plan.rules:
            conn.execute(rule_sql(r, database, prefix))
            rows = conn.affected_rows()
            if r.action == CONFIG:
                rows = min(rows, 1)  # ON DUPLICATE KEY UPDATE counts an update as 2
            report.changes.append(_entry(r, prefix, rows))
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")
        raise
    for c in report.changes:
        log.info("staging: %s: %s.%s %s (%s rows)", c["rule"], c["table"], c["column"],
                 c["action"], c["rows"])  # fmt: skip
    return report


def _entry(r: Rule, prefix: str, rows: int | None, note: str = "") -> dict[str, Any]:
    e: dict[str, Any] = {
        "rule": r.name,
        "table": prefix + r.table,
        "column": r.column,
        "action": r.action if r.action != CONFIG else f"set to {r.value!r}",
        "rows": rows,
    }
    if note:
        e["note"] = note
    return e
