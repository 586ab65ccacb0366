"""The run state: what the last cycles did, kept between processes.

Every ``moodump run --once`` is a new process (a Kubernetes CronJob), yet Prometheus
counters must keep counting and "last success" must survive a failed run. So the facts
metrics and ``moodump status`` need are kept in a small JSON file beside the backups
(MOODUMP_STATE_FILE, default ``BACKUP_DIR/.moodump-state.json``), replaced atomically
with the backup file mode.

:func:`apply_report` is pure (state and report in, new state out): a failed database
moves its failure counter and its ``last_failure_at``, never ``last_success_at``.
:func:`load_state` and :func:`save_state` are the I/O; a missing or unreadable file is
an empty state (counters restart at 0, which Prometheus handles as a counter reset).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from moodump.fsmodes import write_text
from moodump.jobs.report import STATUS_OK, STATUS_WARNING, DatabaseResult, RunReport, iso_time
from moodump.schedule import ACTION_BACKUP, ACTION_VERIFY

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass
class DatabaseState:
    """The last known facts of one database (core name), all times ISO 8601 with offset.

    ``last_*`` describe the newest attempt of the given action; ``last_success_at`` and
    the size facts only move when a backup succeeded; ``previous_size_bytes`` is the size
    of the good backup before the last one (for the "backup shrank" alert). ``runs``
    counts attempts per action, ``failures`` failed attempts per action and exit code.
    """

    spec: str = ""
    last_run_at: str | None = None
    last_action: str | None = None
    last_status: str | None = None
    last_exit_code: int | None = None
    last_error: str | None = None
    last_backup_at: str | None = None
    last_backup_ok: bool | None = None
    last_backup_exit_code: int | None = None
    last_success_at: str | None = None
    last_failure_at: str | None = None
    last_failure_exit_code: int | None = None
    last_failure_error: str | None = None
    backup_path: str | None = None
    backup_tier: str | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    previous_size_bytes: int | None = None
    rows: int | None = None
    tables: int | None = None
    verify_at: str | None = None
    verify_passed: bool | None = None
    verify_method: str | None = None
    verify_path: str | None = None
    last_verified_at: str | None = None
    offsite_at: str | None = None
    offsite_ok: bool | None = None
    offsite_url: str | None = None
    offsite_error: str | None = None
    moodledata_at: str | None = None  # the scheduled moodledata check (MOODUMP_CHECK_FILES)
    moodledata_ok: bool | None = None
    moodledata_missing: int | None = None
    moodledata_corrupt: int | None = None
    runs: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DatabaseState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass
class RunState:
    """Every database's :class:`DatabaseState` (by core name) and the per-cycle counters:
    ``runs`` per action, ``failures`` per action and exit code (cycles whose exit code
    was not 0)."""

    databases: dict[str, DatabaseState] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    updated_at: str | None = None
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunState:
        dbs = doc.get("databases") or {}
        return cls(
            databases={str(k): DatabaseState.from_dict(v) for k, v in dbs.items()},
            runs={str(k): int(v) for k, v in (doc.get("runs") or {}).items()},
            failures={
                str(a): {str(c): int(n) for c, n in codes.items()}
                for a, codes in (doc.get("failures") or {}).items()
            },
            updated_at=doc.get("updated_at"),
        )


# --------------------------------------------------------------------------- pure update


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _finished_at(d: DatabaseResult, report: RunReport) -> str:
    """When this database's step ended: its start plus its duration for a backup; the
    cycle's end for a verification (whose ``started_at`` is the verified backup's) or
    when the start is unknown."""
    if d.started_at and report.action == ACTION_BACKUP:
        try:
            start = datetime.fromisoformat(d.started_at)
        except ValueError:
            pass
        else:
            return iso_time(start + timedelta(seconds=d.duration_s))
    return report.finished_at or report.started_at


def apply_report(state: RunState, report: RunReport) -> RunState:
    """The state after ``report`` (a ``backup`` or ``verify`` cycle; other actions only
    count as runs). ``state`` is not changed."""
    new = copy.deepcopy(state)
    action = report.action
    _bump(new.runs, action)
    if report.exit_code != 0:
        _bump(new.failures.setdefault(action, {}), str(report.exit_code))
    new.updated_at = report.finished_at or report.started_at
    if action not in (ACTION_BACKUP, ACTION_VERIFY):
        return new
    for d in report.databases:
        db = new.databases.setdefault(d.core, DatabaseState())
        db.spec = d.spec
        at = _finished_at(d, report)
        ok = d.status in (STATUS_OK, STATUS_WARNING)
        db.last_run_at, db.last_action, db.last_status = at, action, d.status
        db.last_exit_code, db.last_error = d.exit_code, d.error
        _bump(db.runs, action)
        if not ok:
            _bump(db.failures.setdefault(action, {}), str(d.exit_code))
        if action == ACTION_BACKUP:
            _apply_backup(db, d, at, ok)
        _apply_verify(db, d, at, action)
        if d.offsite is not None:
            db.offsite_at, db.offsite_ok = at, bool(d.offsite.get("ok"))
            db.offsite_url = d.offsite.get("url")
            db.offsite_error = None if db.offsite_ok else d.offsite.get("error")
        if d.files_check is not None:
            fc = d.files_check
            db.moodledata_at, db.moodledata_ok = at, bool(fc.get("passed"))
            db.moodledata_missing, db.moodledata_corrupt = fc.get("missing"), fc.get("corrupt")
    return new


def _apply_backup(db: DatabaseState, d: DatabaseResult, at: str, ok: bool) -> None:
    db.last_backup_at, db.last_backup_ok, db.last_backup_exit_code = at, ok, d.exit_code
    if ok:
        db.last_success_at = at
    else:
        db.last_failure_at, db.last_failure_exit_code = at, d.exit_code
        db.last_failure_error = d.error
    if d.backup_ok:  # a good backup exists (its off-site copy may still have failed)
        if db.size_bytes is not None:
            db.previous_size_bytes = db.size_bytes
        db.backup_path, db.backup_tier = d.path, d.tier
        db.duration_s = round(d.duration_s, 3)
        db.size_bytes, db.rows, db.tables = d.size_bytes, d.rows, d.tables


def _apply_verify(db: DatabaseState, d: DatabaseResult, at: str, action: str) -> None:
    if d.verify is not None:
        db.verify_at, db.verify_passed = at, bool(d.verify.get("passed"))
        db.verify_method, db.verify_path = d.verify.get("method"), d.path
        if db.verify_passed:
            db.last_verified_at = at
    elif action == ACTION_VERIFY and d.status not in (STATUS_OK, STATUS_WARNING):
        # A verification cycle that found nothing to verify (stale, missing) failed too.
        db.verify_at, db.verify_passed, db.verify_method, db.verify_path = at, False, None, d.path


# --------------------------------------------------------------------------- I/O


def load_state(path: Path) -> RunState:
    """The state in ``path``; an empty one when the file is missing or unreadable (said
    in the log: the counters restart)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RunState()
    except OSError as exc:
        log.warning("cannot read the state file %s (%s): starting a new one", path, exc)
        return RunState()
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return RunState.from_dict(doc)
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("the state file %s is not valid (%s): starting a new one", path, exc)
        return RunState()


def save_state(path: Path, state: RunState) -> None:
    """Replace ``path`` atomically with the backup file mode (it holds error messages,
    which are redacted but still name hosts and databases)."""
    write_text(path, state.to_json())
