"""Verifying, pruning and reporting on a binary log archive (no server needed)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

from moodump.binlog.chain import (
    Chain,
    PruneDecision,
    Target,
    coverage_problems,
    gtid_state,
    plan_prune,
    split_name,
    when,
)
from moodump.binlog.events import (
    INCIDENT,
    OUTSIDE_TRANSACTIONS,
    BinlogFormatError,
    EventReader,
    Gtid,
)
from moodump.catalog import scan_backups
from moodump.crypto import Identity, check_identities, is_encrypted_backup
from moodump.errors import (
    ConfigError,
    DecryptionError,
    IntegrityError,
    MoodumpError,
    NotFoundError,
)
from moodump.lock import RunLock
from moodump.manifest import read_manifest
from moodump.offsite.source import core_of
from moodump.pitr.archive import LOCK_FILE, Archive

log = logging.getLogger("moodump.pitr")


@dataclass
class ArchiveStatus:
    """What status pages and metrics show about an archive."""

    root: Path
    files: int
    first_file: str
    last_file: str
    covered_until: int  # epoch seconds; 0 when nothing was archived yet
    gaps: list[str]  # "PITR unavailable from X to Y: ..."
    stored_bytes: int

    @property
    def ok(self) -> bool:
        return not self.gaps


def archive_status(root: Path | str) -> ArchiveStatus:
    """The state of the archive in ``root`` from its chain manifest alone (cheap)."""
    chain = Archive.open(root).chain
    return _status(Path(root), chain)


def _status(root: Path, chain: Chain) -> ArchiveStatus:
    return ArchiveStatus(
        root,
        len(chain.files),
        chain.files[0].name if chain.files else "",
        chain.files[-1].name if chain.files else "",
        chain.covered_until,
        [g.describe() for g in chain.gaps],
        sum(f.stored_bytes for f in chain.files),
    )


def oldest_kept_position(backup_dir: Path | str, base: str) -> tuple[str, int] | None:
    """The earliest snapshot position (file, position) among the DONE backups under
    ``backup_dir`` whose binary log has the base name ``base`` (None without one)."""
    best: tuple[int, int, str] | None = None
    for info in scan_backups(Path(backup_dir), timezone.utc):
        if not info.done or info.legacy:
            continue
        try:
            m = read_manifest(info.path)
        except (MoodumpError, OSError):
            continue
        f = str(m.snapshot.get("binlog_file") or "")
        if not f:
            continue
        try:
            fbase, seq = split_name(f)
        except ConfigError:
            continue
        if fbase != base:
            continue
        key = (seq, int(m.snapshot.get("binlog_position") or 0), f)
        if best is None or key < best:
            best = key
    return (best[2], best[1]) if best else None


def latest_before(
    backup_dir: Path | str,
    spec: str,
    until: int | Target,
    binlog_dir: Path | str | None = None,
    identities: Sequence[Identity] = (),
) -> Path:
    """The newest DONE backup of ``spec`` (``host/db`` or ``host-db``) under the local
    ``backup_dir`` before ``until`` (epoch seconds, or a :class:`Target`: a time, a
    position or a GTID) that records a binlog position: the base with the shortest replay.

    A backup's start time is whole seconds, taken before its snapshot: one started in
    the target second (or waiting for its snapshot past it) may already hold a
    transaction logged at or after it, and no replay from it reaches the target.
    With ``binlog_dir`` (the archive) the snapshot's file tells: such a backup is passed
    over for the one before it (a backup whose file is not archived is not second-guessed:
    the restore says what is missing). A position target passes over the backups whose
    snapshot is after it, a GTID target those whose snapshot holds it. A backup encrypted
    at rest is read with ``identities`` (without a matching one, the error says which
    keys would do)."""
    target = until if isinstance(until, Target) else Target(time=until)
    core = core_of(spec)
    candidates = [
        b
        for b in scan_backups(Path(backup_dir), timezone.utc)
        if b.core == core
        and b.done
        and not b.legacy
        and (target.time is None or b.when.timestamp() <= target.time)
    ]
    archive = Archive.open(binlog_dir) if binlog_dir is not None else None
    passed: list[str] = []
    for b in sorted(candidates, key=lambda b: b.when, reverse=True):
        try:
            if is_encrypted_backup(b.path):
                m = check_identities(b.path, identities)
            else:
                m = read_manifest(b.path)
        except DecryptionError:
            raise
        except (MoodumpError, OSError):
            continue
        file = str(m.snapshot.get("binlog_file") or "")
        if not file:
            continue
        pos = int(m.snapshot.get("binlog_position") or 0)
        if why := _past_target(archive, file, pos, str(m.snapshot.get("gtid") or ""), target):
            passed.append(f"{b.path.name} ({why})")
            continue
        return b.path
    if passed:
        raise NotFoundError(
            f"no finished backup of {core} in {backup_dir} is before {target.describe()}: "
            + "; ".join(passed),
            hint="pick a later target, or restore an older backup by its name",
        )
    raise NotFoundError(
        f"no finished backup of {core} in {backup_dir} taken before {target.describe()} "
        "records a binary log position",
        hint="moodump list shows the backups; pick a later target or name a backup",
    )


def _past_target(
    archive: Archive | None, file: str, position: int, gtid: str, target: Target
) -> str:
    """Why a backup whose snapshot is ``file``:``position`` (GTID state ``gtid``) cannot
    be replayed to ``target`` ("" when it may be)."""
    if target.time is not None:
        at = _logged_from(archive, file, position, target.time) if archive else ""
        return f"it holds a transaction logged at {at}" if at else ""
    if target.file:
        try:
            (base, seq), (tbase, tseq) = split_name(file), split_name(target.file)
        except ConfigError:
            return ""
        if base == tbase and (seq, position) > (tseq, target.position):
            return f"its snapshot is at {file}:{position}"
        return ""
    if target.gtid:
        try:
            g = Gtid.parse(target.gtid)
            have = [q for (d, _s), q in gtid_state(gtid).items() if d == g.domain]
        except ValueError:  # MySQL's GTID sets: not second-guessed
            return ""
        if have and max(have) >= g.seq:
            return f"its snapshot is at GTID {gtid}"
    return ""


def _logged_from(archive: Archive, file: str, position: int, until: int) -> str:
    """Where (``file:pos``, time) the archived ``file`` has a transaction's event before
    ``position`` logged at or after ``until`` ("" for none, or when it is not archived)."""
    f = archive.chain.get(file)
    if f is None:
        return ""
    reader = EventReader(bodies=False)
    try:
        for block in archive.raw_blocks(f):
            for ev in reader.feed(block):
                if ev.start >= position:
                    return ""
                if ev.type not in OUTSIDE_TRANSACTIONS and ev.timestamp >= until:
                    return f"{when(ev.timestamp)}, {file}:{ev.start}"
    except (IntegrityError, BinlogFormatError):
        return ""  # the restore refuses a damaged archive, naming the damage
    return ""


@dataclass
class VerifyResult:
    status: ArchiveStatus
    files_checked: int
    problems: list[str] = field(default_factory=list)
    oldest_kept: tuple[str, int] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_archive(
    root: Path | str, *, backup_dir: Path | str | None = None, deep: bool = True
) -> VerifyResult:
    """Check the archive offline: every file against its checksums and as a binary log
    (events contiguous, CRC32s, the length archived), the chain's continuity (positions,
    GTIDs, recorded gaps) and, with ``backup_dir``, that it covers the range from the
    oldest kept backup's snapshot position to its end. Problems are returned, not raised.
    """
    archive = Archive.open(root)
    chain = archive.chain
    res = VerifyResult(_status(archive.root, chain), 0)
    if deep:
        for f in chain.files:
            try:
                reader = EventReader(bodies=False)
                for block in archive.raw_blocks(f):
                    for ev in reader.feed(block):
                        if ev.type == INCIDENT:
                            res.problems.append(
                                f"{f.name}:{ev.start} holds an incident event "
                                f"({when(ev.timestamp)}): the server could not log some "
                                "changes there, so no replay crosses it (a backup taken after "
                                "it restores past it)"
                            )
                if reader.pending:
                    raise BinlogFormatError(f"it ends inside an event ({reader.pending} bytes)")
            except (IntegrityError, BinlogFormatError) as exc:
                res.problems.append(f"{f.name}: {exc}")
            res.files_checked += 1
    res.problems += archive.problems()
    res.problems += res.status.gaps
    if backup_dir is not None and chain.base:
        res.oldest_kept = oldest_kept_position(backup_dir, chain.base)
        if res.oldest_kept is not None:
            res.problems += [
                f"from the oldest kept backup: {p}"
                for p in coverage_problems(chain, *res.oldest_kept)
            ]
    for p in res.problems:
        log.error("binlog archive %s: %s", archive.root, p)
    return res


@dataclass
class PruneResult:
    decisions: list[PruneDecision]
    deleted: list[str]
    freed_bytes: int
    oldest_kept: tuple[str, int] | None
    dry_run: bool


def prune_archive(
    root: Path | str, backup_dir: Path | str, *, dry_run: bool = False
) -> PruneResult:
    """Delete the archived files wholly before the oldest kept backup's snapshot position
    (:func:`moodump.binlog.chain.plan_prune`), under the archive's lock; none newer.
    Gap records that lie before the first file kept go with them."""
    archive = Archive.open(root)
    with RunLock(archive.root / LOCK_FILE, purpose="binlog prune"):
        archive = Archive.open(root)
        chain = archive.chain
        oldest = oldest_kept_position(backup_dir, chain.base) if chain.base else None
        decisions = plan_prune(chain, oldest)
        res = PruneResult(decisions, [], 0, oldest, dry_run)
        doomed = {d.name for d in decisions if d.delete}
        if dry_run or not doomed:
            return res
        gone = [f for f in chain.files if f.name in doomed]
        chain.files = [f for f in chain.files if f.name not in doomed]
        if chain.files:
            first = chain.files[0].seq
            chain.gaps = [g for g in chain.gaps if split_name(g.last_missing)[1] >= first]
        archive.save()  # the chain stops listing them first: a crash leaves only strays
        for f in gone:
            with contextlib.suppress(FileNotFoundError):
                (archive.root / f.stored).unlink()
            res.deleted.append(f.name)
            res.freed_bytes += f.stored_bytes
            log.info("pruned %s (before the oldest kept backup, %s)", f.name, when(f.last_time))
        return res
