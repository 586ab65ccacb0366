"""Results of a cycle: :class:`DatabaseResult` per database and the :class:`RunReport`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moodump import __version__
from moodump.catalog import PruneReport
from moodump.errors import (
    Interrupted,
    MoodumpError,
)
from moodump.logs import redact

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_WARNING = "warning"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"

VERIFY_NONE = "none"
VERIFY_OFFLINE = "offline"
VERIFY_LOCAL = "local"


# --------------------------------------------------------------------------- results


def iso_time(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


@dataclass
class DatabaseResult:
    """What happened to one database in one cycle.

    ``status`` is ok, warning, failed or skipped; ``exit_code`` follows
    :mod:`moodump.errors` (0 ok, 1 warning). ``backup_ok`` is True when a new backup is
    DONE and passed its checks and verification: only then is the database pruned.
    ``path`` is the backup directory (also for a FAILED record); ``size_bytes`` is its
    size on disk; ``rows`` and ``tables`` count what it holds. ``checks``, ``verify``
    and ``offsite`` are JSON-able dicts.
    """

    spec: str
    core: str
    status: str = STATUS_OK
    exit_code: int = 0
    path: str | None = None
    tier: str | None = None
    started_at: str | None = None
    size_bytes: int | None = None
    rows: int | None = None
    tables: int | None = None
    duration_s: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] | None = None
    offsite: dict[str, Any] | None = None
    previous: str | None = None
    backup_ok: bool = False
    files_check: dict[str, Any] | None = None  # MOODUMP_CHECK_FILES (docs/moodle.md)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.status == STATUS_OK:
            self.status, self.exit_code = STATUS_WARNING, 1

    def fail(self, exc: MoodumpError) -> None:
        self.status = STATUS_FAILED
        self.exit_code = exc.exit_code
        self.error = redact(str(exc))
        self.backup_ok = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "core": self.core,
            "status": self.status,
            "exit_code": self.exit_code,
            "path": self.path,
            "tier": self.tier,
            "started_at": self.started_at,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "tables": self.tables,
            "duration_s": round(self.duration_s, 3),
            "error": self.error,
            "warnings": list(self.warnings),
            "checks": list(self.checks),
            "verify": self.verify,
            "offsite": self.offsite,
            "previous": self.previous,
            "backup_ok": self.backup_ok,
            "files_check": self.files_check,
        }


@dataclass
class RunReport:
    """The outcome of one cycle (``action`` backup, verify, prune or check).

    ``warnings`` and ``errors`` are run-level (prune problems, a notifier that could not
    be set up); per-database facts are in ``databases``. ``pruned`` / ``pruned_remote``
    name the backups removed locally / from the FTPS server. ``notifications_failed``
    counts deliveries that did not arrive (they never change :attr:`exit_code`).
    ``checks`` holds check results that belong to no database; ``prune`` the retention
    plan and what it removed, for a prune.

    Exit-code policy: warnings (a database with status ``warning``, run-level
    ``warnings``) are logged, notified and reported, but count as 0 unless ``strict``
    (MOODUMP_STRICT), when they make the exit code 1. A database's own ``exit_code``
    stays 1 for its warnings, so the report shows them either way.
    """

    action: str
    started_at: str
    finished_at: str = ""
    duration_s: float = 0.0
    databases: list[DatabaseResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    pruned_remote: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    notifications_sent: int = 0
    notifications_failed: int = 0
    interrupted: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)
    prune: PruneReport | None = None
    #: Ignored or changed settings (see Config.run_warnings); they do not change the exit
    #: code, they are logged and notified at the start.
    setting_warnings: list[str] = field(default_factory=list)
    strict: bool = False

    @property
    def has_warnings(self) -> bool:
        return bool(self.warnings) or any(d.status == STATUS_WARNING for d in self.databases)

    @property
    def exit_code(self) -> int:
        """The worst code: a failure's own code beats 1 (warnings, only when ``strict``)
        beats 0."""
        codes = [d.exit_code for d in self.databases if d.status != STATUS_WARNING]
        codes += [code for code, _ in self.errors]
        if self.has_warnings and self.strict:
            codes.append(1)
        if self.interrupted:
            codes.append(Interrupted.exit_code)
        return max(codes, default=0)

    @property
    def failed(self) -> list[DatabaseResult]:
        return [d for d in self.databases if d.status == STATUS_FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "exit_code": self.exit_code,
            "strict": self.strict,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": round(self.duration_s, 3),
            "interrupted": self.interrupted,
            "databases": [d.to_dict() for d in self.databases],
            "pruned": list(self.pruned),
            "pruned_remote": list(self.pruned_remote),
            "warnings": list(self.warnings),
            "errors": [{"exit_code": c, "message": m} for c, m in self.errors],
            "notifications": {
                "sent": self.notifications_sent,
                "failed": self.notifications_failed,
            },
            "tool_version": __version__,
            **({"checks": list(self.checks)} if self.checks else {}),
            **({"setting_warnings": list(self.setting_warnings)} if self.setting_warnings else {}),
            **({"prune": self.prune.to_dict()} if self.prune is not None else {}),
        }

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
