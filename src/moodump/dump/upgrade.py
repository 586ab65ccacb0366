"""Upgrade awareness: a dump waits while a Moodle upgrade runs, and retries a dump that
DDL broke, within one time limit (MOODUMP_UPGRADE_WAIT).

Before each attempt the guard reads the site's ``<prefix>config`` table
(:func:`~moodump.db.introspect.moodle_site_state`): while ``upgraderunning`` is a unix
time in the future (Moodle sets it to now + 5 minutes and renews it while an upgrade
runs), the dump waits with backoff (1, 2, 4 ... 60 s) and reads it again. A database
without that table (not Moodle) is dumped at once. An attempt that fails with
:class:`~moodump.errors.SchemaChanged` (a table altered under the snapshot: an upgrade
that had not yet set the flag, a plugin install) is retried the same way. Past the
limit the dump fails with :class:`~moodump.errors.UpgradeRunning` (exit 15) while the
flag is set, else with the last :class:`SchemaChanged` (exit 9).

The guard also records in the manifest's ``moodle`` object what it saw: Moodle's CLI
maintenance file ``climaintenance.html`` in the dataroot (when the dataroot is known),
the seconds waited and the attempts made.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timezone
from pathlib import Path

from moodump import __version__
from moodump.db.connection import ConnSettings, connect
from moodump.db.introspect import MoodleSiteState, moodle_site_state
from moodump.dump.model import DumpOptions, DumpResult, _utcnow
from moodump.dump.publish import _publish_failure
from moodump.errors import Interrupted, MoodumpError, SchemaChanged, UpgradeRunning
from moodump.manifest import Manifest

log = logging.getLogger("moodump.dump")

CLI_MAINTENANCE_FILE = "climaintenance.html"
_MAX_BACKOFF = 60.0
_LOCK_WAIT = 5  # seconds the check waits for a locked config table, then goes on


class UpgradeGuard:
    """The waits and retries of one dump (see the module)."""

    def __init__(
        self,
        settings: ConnSettings,
        database: str,
        opts: DumpOptions,
        stop: threading.Event | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings.with_database(None)
        self.database = database
        self.prefix = opts.moodle_prefix if opts.moodle_prefix is not None else "mdl_"
        self.limit = float(opts.upgrade_wait or 0)
        self.dataroot = opts.moodle_dataroot or None
        self.record_failure = opts.record_failure
        self.started_at = opts.started_at
        self.stop = stop or threading.Event()
        self.clock = clock
        self.t0 = clock()
        self.attempts = 0
        self.delay = 1.0
        self.seen_upgrade: int | None = None
        self.state: MoodleSiteState | None = None

    # -- the loop ------------------------------------------------------------------------
    def run(self, out: Path, attempt: Callable[[UpgradeGuard], DumpResult]) -> DumpResult:
        """``attempt`` (one dump into ``out``) after any upgrade, again after DDL broke
        it, until it succeeds or the limit is reached."""
        while True:
            try:
                self.before_attempt()
            except (MoodumpError, KeyboardInterrupt) as exc:
                err = exc if isinstance(exc, MoodumpError) else None
                if err is None:
                    err = Interrupted(
                        "dump interrupted; nothing was published", hint="run it again"
                    )
                if self.record_failure and not out.exists():  # as a failed dump would
                    self._record(out, err)
                if err is exc:
                    raise
                raise err from exc
            try:
                return attempt(self)
            except SchemaChanged as exc:
                if not self.will_retry(exc):
                    raise
                self.after_failure(exc)

    def waited(self) -> float:
        return self.clock() - self.t0

    def remaining(self) -> float:
        return self.limit - self.waited()

    def before_attempt(self) -> None:
        """Wait while an upgrade runs; raise :class:`UpgradeRunning` past the limit."""
        while True:
            self.state = self._read_state()
            if self.state is None or not self.state.upgrading:
                self.attempts += 1
                return
            self.seen_upgrade = self.state.upgraderunning
            until = self.state.upgraderunning or 0
            left = until - self.state.server_time
            if self.remaining() <= 0:
                raise UpgradeRunning(
                    f"a Moodle upgrade is running on {self.database} (upgraderunning in "
                    f"{self.prefix}config holds the site for {left} s more); waited "
                    f"{self.waited():.0f} s (MOODUMP_UPGRADE_WAIT={self.limit:.0f}), "
                    "nothing was backed up",
                    hint="let the upgrade finish (admin/cli/upgrade.php), then run the backup "
                    "again; raise MOODUMP_UPGRADE_WAIT if upgrades take longer",
                )
            log.warning(
                "a Moodle upgrade is running on %s (upgraderunning %d s ahead): "
                "waiting %.0f s before trying again",
                self.database,
                left,
                min(self.delay, self.remaining()),
            )
            self._sleep()

    def will_retry(self, exc: BaseException | None) -> bool:
        """Whether ``exc`` (an attempt's failure) is retried: DDL, with time left."""
        return isinstance(exc, SchemaChanged) and self.remaining() > 0

    def after_failure(self, exc: SchemaChanged) -> None:
        """Back off after DDL broke an attempt (the caller checked :meth:`will_retry`)."""
        log.warning(
            "the dump of %s was broken by a schema change (%s): trying again in %.0f s "
            "(MOODUMP_UPGRADE_WAIT leaves %.0f s)",
            self.database,
            exc.message,
            min(self.delay, self.remaining()),
            self.remaining(),
        )
        self._sleep()

    def annotate(self, manifest: Manifest) -> None:
        """Add what the guard saw to ``manifest.moodle`` (a Moodle database only)."""
        if manifest.moodle is None:
            return
        climaintenance = self._climaintenance()
        manifest.moodle["climaintenance"] = climaintenance
        manifest.moodle["maintenance"] = bool(
            manifest.moodle.get("maintenance_enabled") or climaintenance
        )
        if self.seen_upgrade is not None:
            manifest.moodle["upgraderunning_waited_for"] = self.seen_upgrade
        manifest.moodle["upgrade_wait_s"] = round(self.waited(), 3)
        manifest.moodle["attempts"] = self.attempts

    # -- helpers -------------------------------------------------------------------------
    def _read_state(self) -> MoodleSiteState | None:
        """The site's state, read in a helper thread so that the caller's thread stays
        responsive to ``stop`` and to signals (a locked config table, a hung server)."""
        box: list[MoodleSiteState | None] = []

        def read() -> None:
            try:
                with connect(self.settings) as conn:
                    # A table locked by someone else must not hold the backup for long.
                    conn.execute(f"SET SESSION lock_wait_timeout = {_LOCK_WAIT}")
                    box.append(moodle_site_state(conn, self.database, self.prefix))
            except MoodumpError as exc:
                # The dump itself names a connection or privilege problem better.
                log.debug("upgrade state of %s not read: %s", self.database, exc.message)

        reader = threading.Thread(target=read, name="moodump-upgrade-check", daemon=True)
        reader.start()
        while reader.is_alive():
            reader.join(0.1)
            if self.stop.is_set():
                raise Interrupted("dump interrupted; nothing was published", hint="run it again")
        return box[0] if box else None

    def _climaintenance(self) -> bool | None:
        if not self.dataroot:
            return None
        return (Path(self.dataroot) / CLI_MAINTENANCE_FILE).exists()

    def _sleep(self) -> None:
        pause = max(0.0, min(self.delay, self.remaining()))
        self.delay = min(self.delay * 2, _MAX_BACKOFF)
        if self.stop.wait(pause):
            raise Interrupted(
                "dump interrupted while waiting for a Moodle upgrade", hint="run it again"
            )

    def _record(self, out: Path, err: MoodumpError) -> None:
        started = (
            self.started_at.astimezone(timezone.utc).isoformat(timespec="seconds")
            if self.started_at
            else _utcnow()
        ).replace("+00:00", "Z")
        manifest = Manifest(database=self.database, tool_version=__version__, started_at=started)
        manifest.host = self.settings.socket or self.settings.host
        manifest.port = self.settings.port
        manifest.moodle = {
            "prefix": self.prefix,
            "upgraderunning_waited_for": self.seen_upgrade,
            "maintenance_enabled": bool(self.state and self.state.maintenance_enabled),
            "climaintenance": self._climaintenance(),
            "upgrade_wait_s": round(self.waited(), 3),
            "attempts": self.attempts,
        }
        tmp = out.parent / f".{out.name}.partial-upgrade"
        _publish_failure(tmp, out, manifest, str(err))
