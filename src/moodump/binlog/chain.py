"""The archive's chain of binary log files, and every decision made on it.

``chain.json`` in an archive directory lists the archived files in order (their name on
the server, the stored compressed file, checksums, first/last event time, GTID state) and
the gaps: server files that were purged before they were archived, i.e. a time range in
which point-in-time recovery is impossible. Pure: the archiver (:mod:`moodump.pitr`)
reads and writes the file; the decisions (is a range covered, what may be pruned, is the
chain continuous) are made here and tested without a server.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

from moodump.errors import ConfigError, IntegrityError, PitrUnavailable

CHAIN_FORMAT = 1
CHAIN_FILE = "chain.json"

_NAME = re.compile(r"^(?P<base>.+)\.(?P<seq>\d{6,})$")


def split_name(name: str) -> tuple[str, int]:
    """``"binlog.000012"`` -> ("binlog", 12). ConfigError for a name without a sequence."""
    m = _NAME.match(name)
    if not m or "/" in name:
        raise ConfigError(
            f"{name!r} is not a binary log file name (base.NNNNNN)",
            hint="use a name from SHOW BINARY LOGS, such as binlog.000012",
        )
    return m["base"], int(m["seq"])


def file_name(base: str, seq: int) -> str:
    return f"{base}.{seq:06d}"


def when(ts: int | float) -> str:
    """An event time (epoch seconds) as shown in messages: ISO 8601, UTC."""
    if not ts:
        return "(unknown time)"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class ArchivedFile:
    """One server binlog file in the archive.

    ``complete``: the server had moved on to a later file when it was fetched, so the
    file will never grow; an incomplete file (the server's current one) is fetched again
    by the next pull. ``size`` is the raw length, which is also the last position the
    archive reaches in this file.
    """

    name: str
    stored: str
    complete: bool
    size: int
    sha256: str  # of the stored (compressed) file
    stored_bytes: int
    raw_sha256: str  # of the raw binlog bytes
    events: int = 0
    first_time: int = 0  # epoch seconds of the first and last event
    last_time: int = 0
    gtid_list: list[str] = field(default_factory=list)  # state at the start of the file
    gtid_first: list[str] = field(default_factory=list)  # first GTID per domain-server
    gtid_last: list[str] = field(default_factory=list)  # last GTID per domain-server
    next_file: str = ""  # what the closing Rotate event names

    @property
    def seq(self) -> int:
        return split_name(self.name)[1]


@dataclass
class Gap:
    """Files the server no longer had when the archive needed them: no recovery to any
    moment from ``from_time`` (the last archived event before) to ``to_time`` (the first
    archived event after)."""

    first_missing: str
    last_missing: str
    after_file: str = ""  # the archived file before the gap ("" at the start)
    after_position: int = 0  # ... and how far it was archived
    from_time: int = 0
    to_time: int = 0
    detected_at: str = ""

    def describe(self) -> str:
        files = (
            self.first_missing
            if self.first_missing == self.last_missing
            else f"{self.first_missing}..{self.last_missing}"
        )
        return (
            f"PITR unavailable from {when(self.from_time)} to {when(self.to_time)}: "
            f"binary log {files} was purged on the server before it was archived"
        )


@dataclass
class Chain:
    format: int = CHAIN_FORMAT
    server: str = ""  # host:port it was pulled from
    base: str = ""  # the server's log base name ("binlog")
    files: list[ArchivedFile] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    covered_until: int = 0  # server clock: every event logged before it is archived
    updated_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Chain:
        try:
            data: dict[str, Any] = json.loads(text)
            files = [ArchivedFile(**f) for f in data.pop("files", [])]
            gaps = [Gap(**g) for g in data.pop("gaps", [])]
            known = set(cls.__dataclass_fields__)
            chain = cls(**{k: v for k, v in data.items() if k in known}, files=files, gaps=gaps)
        except (ValueError, TypeError) as exc:
            raise IntegrityError(
                f"{CHAIN_FILE} is not a valid chain manifest: {exc}",
                hint="restore it from a copy, or start a new archive directory",
            ) from exc
        if chain.format > CHAIN_FORMAT:
            raise IntegrityError(
                f"{CHAIN_FILE} has format {chain.format}, newer than this moodump reads",
                hint="use the moodump version that wrote it, or a newer one",
            )
        return chain

    def get(self, name: str) -> ArchivedFile | None:
        for f in self.files:
            if f.name == name:
                return f
        return None

    def put(self, f: ArchivedFile) -> None:
        """Add or replace ``f`` keeping the files in sequence order."""
        self.files = [x for x in self.files if x.name != f.name] + [f]
        self.files.sort(key=lambda x: x.seq)

    def next_needed(self) -> str | None:
        """The first file a pull must fetch: the first incomplete one (unless a recorded
        gap starts there: its rest was purged on the server), else the one after the last
        complete one (None for an empty archive)."""
        purged = {g.first_missing for g in self.gaps}
        for f in self.files:
            if not f.complete and f.name not in purged:
                return f.name
        if not self.files:
            return None
        last = self.files[-1]
        base = split_name(last.name)[0]
        nxt = last.next_file or file_name(base, last.seq + 1)
        for g in self.gaps:  # the files a gap at the end of the archive names are gone
            lo, hi = split_name(g.first_missing)[1], split_name(g.last_missing)[1]
            if last.seq <= lo <= split_name(nxt)[1] <= hi:
                nxt = file_name(base, hi + 1)
        return nxt

    def gap_between(self, a: int, b: int) -> Gap | None:
        """A recorded gap that lies between sequence numbers ``a`` and ``b`` (a gap may
        start at ``a`` itself: the rest of an open file that was purged)."""
        for g in self.gaps:
            lo, hi = split_name(g.first_missing)[1], split_name(g.last_missing)[1]
            if a <= lo and hi < b:
                return g
        return None


def gtid_state(text: str) -> dict[tuple[int, int], int]:
    """A GTID list ``"0-1-5,1-2-9"`` as {(domain, server): seq}."""
    out: dict[tuple[int, int], int] = {}
    for part in text.replace("\n", "").split(","):
        part = part.strip()
        if not part:
            continue
        d, s, q = (int(x) for x in part.split("-"))
        out[(d, s)] = q
    return out


def check_chain(chain: Chain) -> list[str]:
    """Continuity problems of the chain (empty when it is continuous).

    Each next file follows its predecessor by sequence number (or the predecessor's
    Rotate names it), unless a recorded gap explains the jump; only the newest file may
    be incomplete; and the GTID state a file starts with includes the last GTID of each
    domain-server of the file before it.
    """
    problems: list[str] = []
    for prev, cur in zip(chain.files, chain.files[1:], strict=False):
        if not prev.complete:
            if chain.gap_between(prev.seq, cur.seq) is None:
                problems.append(f"{prev.name} is incomplete but {cur.name} follows it")
            continue
        expected = prev.next_file or file_name(split_name(prev.name)[0], prev.seq + 1)
        if cur.name != expected:
            gap = chain.gap_between(prev.seq, cur.seq)
            if gap is None:
                problems.append(
                    f"{cur.name} follows {prev.name}, but {expected} was expected and no "
                    "gap is recorded (files missing from the archive)"
                )
            continue
        if cur.gtid_list:
            start = gtid_state(",".join(cur.gtid_list))
            for g in prev.gtid_last:
                d, s, q = (int(x) for x in g.split("-"))
                if start.get((d, s), -1) < q:
                    problems.append(
                        f"{cur.name} starts at GTID state {','.join(cur.gtid_list) or '(empty)'}, "
                        f"which lacks {g}, the last transaction of {prev.name}"
                    )
    if missing := _missing_successor(chain):
        problems.append(missing)
    return problems


# ---------------------------------------------------------------- coverage of a restore


@dataclass(frozen=True)
class Target:
    """Where a replay stops: before the first transaction at or after ``time`` (epoch
    seconds), at ``file``:``position`` (events starting before it are replayed), or just
    after the transaction ``gtid``. Exactly one is set."""

    time: int | None = None
    file: str = ""
    position: int = 0
    gtid: str = ""

    def describe(self) -> str:
        if self.time is not None:
            return f"until {when(self.time)}"
        if self.file:
            return f"until position {self.file}:{self.position}"
        return f"until GTID {self.gtid}"


def replay_files(chain: Chain, start_file: str, start_pos: int, target: Target) -> list[str]:
    """The archived files a replay from ``start_file``:``start_pos`` to ``target`` reads,
    in order; :class:`PitrUnavailable` naming the missing range when the archive does not
    cover it (start not archived, a gap, the target past the archived end, or before the
    start)."""
    _base, start_seq = split_name(start_file)
    first = chain.get(start_file)
    if first is None:
        older = chain.files and chain.files[0].seq > start_seq
        raise PitrUnavailable(
            f"the backup's snapshot is at {start_file}:{start_pos}, which is not in the "
            + ("archive (it starts later, at " + chain.files[0].name + ")" if older else "archive"),
            hint="archive the binary log from before the backup was taken (moodump binlog "
            "pull), or restore a newer backup",
        )
    if start_pos > first.size:
        raise PitrUnavailable(
            f"the snapshot position {start_file}:{start_pos} is past the archived end of "
            f"{start_file} ({first.size} bytes)",
            hint="run moodump binlog pull, then restore again",
        )
    if target.file:
        _, tseq = split_name(target.file)
        if (tseq, target.position) < (start_seq, start_pos):
            raise PitrUnavailable(
                f"{target.describe()} is before the backup's snapshot ({start_file}:{start_pos})",
                hint="pick an older backup (moodump list), or a later position",
            )
    out: list[str] = []
    prev: ArchivedFile | None = None
    for f in chain.files:
        if f.seq < start_seq:
            continue
        if prev is not None and (
            not prev.complete or (f.seq != prev.seq + 1 and f.name != prev.next_file)
        ):
            gap = chain.gap_between(prev.seq, f.seq)
            raise PitrUnavailable(
                gap.describe()
                if gap
                else f"binary log files between {prev.name} and {f.name} are missing from the "
                f"archive: PITR unavailable from {when(prev.last_time)} to {when(f.first_time)}",
                hint="restore a backup taken after the gap, or a target before it",
            )
        out.append(f.name)
        prev = f
        if target.file and f.name == target.file:
            if target.position > f.size:
                raise PitrUnavailable(
                    f"{target.describe()} is past the archived end of {f.name} ({f.size} bytes)",
                    hint="run moodump binlog pull, then restore again",
                )
            return out
        if target.time is not None and f.last_time >= target.time:
            return out
    if target.file:
        raise PitrUnavailable(
            f"{target.file} is not in the archive after {start_file}",
            hint="check the name with moodump binlog verify; run moodump binlog pull",
        )
    if target.time is not None and target.time > chain.covered_until:
        raise PitrUnavailable(
            f"{target.describe()} is after the end of the archive (it covers events logged "
            f"before {when(chain.covered_until)})",
            hint="run moodump binlog pull, then restore again",
        )
    if target.time is not None and (missing := _missing_successor(chain)):
        raise PitrUnavailable(missing, hint="the archive is damaged: moodump binlog verify")
    return out


def _missing_successor(chain: Chain) -> str:
    """The archive ends with a complete file although it claims to cover events after
    that file's end (its Rotate is later than any ``covered_until`` a pull writes): the
    file after it is missing from ``chain.json``."""
    last = chain.files[-1] if chain.files else None
    if last is None or not last.complete or chain.covered_until <= last.last_time:
        return ""
    nxt = last.next_file or file_name(split_name(last.name)[0], last.seq + 1)
    return (
        f"the archive ends with {last.name}, which is complete, but covers events up to "
        f"{when(chain.covered_until)}: {nxt} is missing from the archive "
        f"(PITR unavailable after {when(last.last_time)})"
    )  # a GTID target: the scan of these files finds it (or says it is missing)


def coverage_problems(chain: Chain, start_file: str, start_pos: int) -> list[str]:
    """Why the archive cannot replay from a backup's snapshot position to its end
    (empty when it can): the verification of "from the oldest kept backup to now"."""
    try:
        replay_files(chain, start_file, start_pos, Target(time=chain.covered_until))
    except PitrUnavailable as exc:
        return [exc.message]
    return []


# ------------------------------------------------------------------------------ pruning


@dataclass(frozen=True)
class PruneDecision:
    name: str
    delete: bool
    reason: str


def plan_prune(chain: Chain, oldest_kept: tuple[str, int] | None) -> list[PruneDecision]:
    """Which archived files retention deletes: those wholly before the snapshot position
    of the oldest kept backup (``(file, position)``), and no other. Without such a
    position (no backup, or one without a binlog position) nothing is deleted: the
    archive might be all there is."""
    out: list[PruneDecision] = []
    if oldest_kept is None:
        return [
            PruneDecision(f.name, False, "kept: no kept backup records a binlog position")
            for f in chain.files
        ]
    _, keep_seq = split_name(oldest_kept[0])
    for f in chain.files:
        if f.seq < keep_seq:
            out.append(
                PruneDecision(
                    f.name, True, f"before the oldest kept backup's snapshot ({oldest_kept[0]})"
                )
            )
        else:
            out.append(
                PruneDecision(
                    f.name,
                    False,
                    "holds the oldest kept backup's snapshot position"
                    if f.seq == keep_seq
                    else "after the oldest kept backup's snapshot",
                )
            )
    return out


# ------------------------------------------------------------------------------ parsing


def parse_until(text: str, zone: tzinfo) -> int:
    """A ``--until`` time as epoch seconds. ``YYYY-MM-DD HH:MM:SS`` (or with ``T``) is
    read in ``zone`` (the configured zone, TZ); an explicit offset or ``Z`` wins. Binary
    log event times are whole seconds, so fractions are refused rather than rounded."""
    raw = text.strip()
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ConfigError(
            f"--until {text!r} is not a time",
            hint="write it as 'YYYY-MM-DD HH:MM:SS' (in the configured zone, TZ) or with "
            "an offset such as '2026-12-06T10:41:59+01:00'",
        ) from None
    if dt.microsecond:
        raise ConfigError(
            f"--until {text!r} has a fraction of a second; binary log events carry whole seconds",
            hint="give whole seconds: events logged before that second are replayed",
        )
    if dt.tzinfo is None:
        # a local time the clock shows twice (the hour after a fall-back) or never (the
        # hour skipped in spring) names no single second: refuse it, an offset decides
        first = dt.replace(tzinfo=zone)
        off0, off1 = first.utcoffset(), dt.replace(tzinfo=zone, fold=1).utcoffset()
        if off0 is not None and off1 is not None and off0 != off1:
            later = off0 > off1
            raise ConfigError(
                f"--until {text!r} "
                + ("happens twice" if later else "does not exist")
                + f" in the configured zone ({zone}): the clock "
                + ("is set back" if later else "skips it")
                + " for daylight saving time",
                hint="give the time with its UTC offset, such as "
                f"'{raw.replace(' ', 'T', 1)}{_offset(first)}'",
            )
        dt = dt.replace(tzinfo=zone)
    return int(dt.timestamp())


def _offset(dt: datetime) -> str:
    off = dt.utcoffset()
    minutes = int(off.total_seconds() // 60) if off is not None else 0
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_position(text: str) -> tuple[str, int]:
    """``binlog.000012:4567`` -> ("binlog.000012", 4567)."""
    name, sep, pos = text.strip().rpartition(":")
    if not sep or not pos.isdigit():
        raise ConfigError(
            f"--until-position {text!r} is not FILE:POSITION",
            hint="for example binlog.000012:4567 (SHOW MASTER STATUS prints both)",
        )
    split_name(name)
    return name, int(pos)
