"""Restore to a point in time: a backup, then the archived binary log up to a target."""

from __future__ import annotations

import base64
import json
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from moodump.binlog.chain import Target, gtid_state, when
from moodump.binlog.events import Gtid
from moodump.binlog.statements import Elsewhere, check_names
from moodump.crypto import Identity, VerifyKey
from moodump.db.connection import ConnSettings, connect
from moodump.db.privileges import parse_grants
from moodump.errors import ConfigError, MoodumpError, PitrUnavailable, PrivilegeError
from moodump.manifest import Manifest
from moodump.pitr.archive import Archive
from moodump.pitr.replay import (
    ReplayPlan,
    ReplayStats,
    needed_packet,
    plan_replay,
    run_replay,
)
from moodump.progress import Progress
from moodump.restore import RestoreEvent, RestoreOptions, RestoreResult, restore
from moodump.source import BackupSource, as_source


@dataclass
class PitrResult:
    restore: RestoreResult
    replay: ReplayStats
    target: str  # the target as asked ("until 2026-12-06 10:41:59 UTC")


def restore_until(
    path: Path | str | BackupSource,
    settings: ConnSettings,
    database: str,
    target: Target,
    binlog_dir: Path | str,
    options: RestoreOptions | None = None,
    *,
    progress: Callable[[RestoreEvent], None] | None = None,
    stop: threading.Event | None = None,
    identities: Sequence[Identity] = (),
    verify_keys: Sequence[VerifyKey] = (),
    tracker: Progress | None = None,
) -> PitrResult:
    """Restore the backup at ``path`` into ``database``, then replay the database's events
    from the archive in ``binlog_dir``, from the backup's snapshot position to ``target``.

    Everything that can refuse does so before the target is touched: the backup's
    manifest must record a binlog position, the archive must cover the range without a
    gap, the target must lie after the snapshot, and every statement in the range must
    be replayable into ``database`` (:func:`moodump.binlog.statements.unsafe_statement`). The
    restore itself is :func:`moodump.restore.restore`, with all its checks.

    :raises PitrUnavailable: the range cannot be replayed (the message names why).
    """
    opts = options or RestoreOptions()
    if opts.tables:
        raise ConfigError(
            "--table cannot be combined with a point-in-time target: the replay applies "
            "the whole database's events",
            hint="restore the whole database (into another name), then copy the tables",
        )
    src = as_source(path, identities, verify_keys)
    m = src.done_manifest()
    if m.database_type != "mysql":
        raise PitrUnavailable(
            f"the backup of {m.database} is a {m.database_type} backup: point-in-time "
            "recovery replays a MySQL/MariaDB binary log and is not available for it",
            hint="restore the backup without --until; see docs/pitr.md and docs/postgresql.md",
        )
    check_names(m.database, database)
    start_file = str(m.snapshot.get("binlog_file") or "")
    start_pos = int(m.snapshot.get("binlog_position") or 0)
    if not start_file or not start_pos:
        raise PitrUnavailable(
            f"the backup of {m.database} taken {m.started_at} records no binary log position "
            "(the server had no binary log then), so nothing can be replayed after it",
            hint="restore a backup taken with log_bin on; see docs/pitr.md",
        )
    _before_snapshot(m.started_at, str(m.snapshot.get("gtid") or ""), target)
    _check_replay_privilege(settings)
    archive = Archive.open(binlog_dir)
    elsewhere = _elsewhere(src, m, rewrite=database != m.database)
    # the backup's events (not created with --no-objects; those of the range always are)
    backup_events = set() if opts.objects else set(elsewhere.events_enabled)
    with tempfile.TemporaryDirectory(prefix="moodump-pitr-") as work:
        plan = plan_replay(
            archive, start_file, start_pos, target, m.database,
            rewrite=database != m.database, workdir=Path(work), elsewhere=elsewhere,
            snapshot_gtid=str(m.snapshot.get("gtid") or ""),
        )  # fmt: skip
        _check_packet(settings, plan)
        _check_event_scheduler(settings, elsewhere.events_enabled - backup_events)
        res = restore(
            src, settings, database, opts, progress=progress, stop=stop,
            identities=identities, verify_keys=verify_keys, tracker=tracker,
        )  # fmt: skip
        stats = run_replay(plan, settings, m.database, database)
    return PitrResult(res, stats, target.describe())


def _elsewhere(src: BackupSource, m: Manifest, *, rewrite: bool) -> Elsewhere:
    """The backup's triggers and stored functions whose bodies write another database,
    its views (a write through one writes its tables), and its tables' columns whose
    default a statement-format replay does not repeat (``DEFAULT (UUID())``)."""
    out = Elsewhere(rewrite)
    files = {f.name: f for f in m.files}
    schemas = {t.name.lower(): files[t.schema_file] for t in m.tables
               if t.kind == "table" and t.schema_file in files}  # fmt: skip

    def schema(table: str) -> str:  # read when the range first writes or alters the table
        entry = schemas.get(table)
        return src.checked_bytes(entry).decode("utf-8", "replace") if entry else ""

    out.schemas = schema
    name = m.objects.get("definitions")
    if not name:
        return out
    entry = next((f for f in m.files if f.name == name), None)
    data = src.checked_bytes(entry) if entry else src.read_bytes(name)
    for r in json.loads(data.decode("utf-8")):
        if r.get("kind") in ("trigger", "function", "view", "event"):
            out.learn(base64.b64decode(r["create_b64"]).decode("utf-8", "replace"), m.database)
    return out


def _check_event_scheduler(settings: ConnSettings, events: set[str]) -> None:
    """An event of the backup, or one the range creates or enables (``events``), would
    run in the copy as soon as it is there when the target server's event scheduler is ON,
    and the replay applies the source's runs of it as well: refused before the restore."""
    if not events:
        return
    with connect(settings.with_database(None)) as conn:
        scheduler = (conn.scalar("SELECT @@GLOBAL.event_scheduler") or b"").decode().upper()
    if scheduler in ("ON", "1"):
        names = ", ".join(sorted(events))
        raise PitrUnavailable(
            f"the target server's event_scheduler is ON: the database's event(s) {names} "
            "would run in the copy during the replay, which applies the source's runs of "
            "them too (twice)",
            hint="SET GLOBAL event_scheduler = OFF on the target server for the restore "
            "(ON again after it), or restore to a server with it OFF",
        )


def _check_packet(settings: ConnSettings, plan: ReplayPlan) -> None:
    """The target server must take the replay's longest BINLOG statement: one statement's
    row events (an UPDATE of many rows is one), which the source never needed in one
    packet; and its longest statement-format statement (another server may take less
    than the source did). Refused before the restore, with the setting that would do."""
    need = needed_packet(plan)
    if need <= 1 << 20:  # the smallest max_allowed_packet that a server usually has
        return
    with connect(settings.with_database(None)) as conn:
        have = int(conn.scalar("SELECT @@GLOBAL.max_allowed_packet") or 0)
    if have < need:
        mib = -(-need // (1 << 20))
        why = (
            f"the statement at {plan.largest_statement_at} is "
            f"{plan.largest_statement / (1 << 20):.1f} MB long"
            if plan.largest_statement + 1024 >= need
            else f"one statement in the range logged {plan.largest_rows_statement // (1 << 20)} "
            "MB of row events, which mariadb-binlog prints as one BINLOG statement"
        )
        raise PitrUnavailable(
            f"the replay needs max_allowed_packet of at least {mib} MB on the target server "
            f"(it has {have // (1 << 20)} MB): {why}",
            hint=f"SET GLOBAL max_allowed_packet = {mib} * 1024 * 1024 on the target server "
            "(up to 1024 MB), then restore again; or restore to a point before that statement",
        )


def _check_replay_privilege(settings: ConnSettings) -> None:
    """Row events are applied as BINLOG statements, which need BINLOG REPLAY (or SUPER):
    refuse before the restore when the account's grants show it lacks them. Grants that
    cannot be read, or that come through a role, are not second-guessed."""
    with connect(settings.with_database(None)) as conn:
        try:
            lines = [(r[0] or b"").decode("utf-8", "replace") for r in conn.query("SHOW GRANTS")]
        except MoodumpError:
            return
    grants = parse_grants(lines)
    if not grants or len(grants) < len(lines):  # role grants and the like: cannot tell
        return
    held = set().union(*(g.privileges for g in grants if g.database is None))
    if not held & {"BINLOG REPLAY", "SUPER", "ALL PRIVILEGES", "ALL"}:
        raise PrivilegeError(
            f"{settings.user} may not replay binary log events (BINLOG statements)",
            hint="GRANT BINLOG REPLAY ON *.* TO the account that restores (docs/pitr.md)",
        )


def _before_snapshot(started_at: str, snapshot_gtid: str, target: Target) -> None:
    if target.time is not None and started_at:
        try:
            started = int(datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp())
        except ValueError:
            started = 0
        if target.time < started:
            raise PitrUnavailable(
                f"{target.describe()} is before the backup's snapshot (taken {when(started)})",
                hint="pick an older backup (moodump list), or a later time",
            )
    if target.gtid and snapshot_gtid:
        g = Gtid.parse(target.gtid)
        have = gtid_state(snapshot_gtid).get((g.domain, g.server))
        if have is not None and g.seq <= have:
            raise PitrUnavailable(
                f"GTID {g} is already in the backup (its snapshot is at GTID {snapshot_gtid})",
                hint="pick an older backup, or a later GTID",
            )
