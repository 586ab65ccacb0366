"""Moodle around a restore: maintenance mode (``--moodle-maintenance``) and staging
copies (``--staging``). See docs/moodle.md.

Order: the staging rules are checked against the backup's manifest first (a missing
column fails before anything is touched); the maintenance file is written before the
target database is touched; the scrub runs after the data is loaded and before the
tables are swapped in (``--atomic``: the target never holds unscrubbed rows) or the
objects are created; then the database caches are purged and, last, the maintenance
file is removed. Any failure leaves the site in maintenance and says so.
"""

from __future__ import annotations

import logging
from typing import Any

from moodump.db.connection import Connection, ConnSettings, connect
from moodump.errors import ConfigError, MoodumpError
from moodump.manifest import Manifest
from moodump.moodlesite import (
    enter_maintenance,
    leave_maintenance,
    maintenance_path,
    plan_scrub,
    purge_db_caches,
    scrub,
)
from moodump.restore.model import RestoreOptions, RestoreResult

log = logging.getLogger("moodump.restore")


class SiteSteps:
    """The Moodle steps of one restore; no side effect until :meth:`enter`."""

    def __init__(self, opts: RestoreOptions, manifest: Manifest, database: str) -> None:
        self.opts = opts
        self.prefix = opts.moodle_prefix or str((manifest.moodle or {}).get("prefix") or "mdl_")
        self.database = database
        self.entered = False  # we wrote the maintenance file (and so remove it)
        self.report: dict[str, Any] = {}
        if opts.staging:
            if opts.tables:
                raise ConfigError(
                    "--staging scrubs a whole restored site; it cannot be combined with --table",
                    hint="restore the whole backup with --staging",
                )
            plan = plan_scrub({t.name: list(t.columns) for t in manifest.tables}, self.prefix)
            if not plan.rules:
                raise ConfigError("--staging: nothing to scrub", hint="check --prefix")

    @property
    def active(self) -> bool:
        return self.opts.staging or self.opts.moodle_maintenance is not None

    def enter(self) -> None:
        if self.opts.moodle_maintenance is not None:
            self.entered = enter_maintenance(self.opts.moodle_maintenance)
            self.report["maintenance_file"] = str(maintenance_path(self.opts.moodle_maintenance))

    def after_load(self, conn: Connection, load_db: str) -> None:
        """The scrub, on the loaded tables (in the staging database of --atomic)."""
        if not self.opts.staging:
            return
        try:
            self.report["staging"] = scrub(conn, load_db, self.prefix).to_dict()
        except MoodumpError as exc:
            if load_db == self.database:
                exc.hint = (
                    f"{exc.hint or ''}; the copy in {self.database!r} holds the UNSCRUBBED "
                    "production data (the scrub was rolled back): drop it or restore again"
                ).lstrip("; ")
            raise

    def finish(self, settings: ConnSettings, result: RestoreResult) -> None:
        if self.opts.moodle_maintenance is not None:
            with connect(settings) as conn:
                self.report["caches_purged"] = purge_db_caches(conn, self.database, self.prefix)
            if self.entered:
                leave_maintenance(self.opts.moodle_maintenance)
                self.report["maintenance"] = "lifted after the restore and cache purge"
            else:
                self.report["maintenance"] = (
                    "left on: the maintenance file was there before the restore"
                )
        result.moodle = self.report

    def failed(self, exc: BaseException) -> None:
        if self.opts.moodle_maintenance is None:
            return
        path = maintenance_path(self.opts.moodle_maintenance)
        note = (
            f"the site stays in maintenance mode ({path} is left in place); remove it "
            "when the database is good again"
        )
        log.error("restore failed: %s", note)
        if isinstance(exc, MoodumpError):
            exc.hint = f"{exc.hint}; {note}" if exc.hint else note
