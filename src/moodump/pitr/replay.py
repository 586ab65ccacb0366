"""Replaying archived binary log events of one database up to a target.

Two steps. :func:`plan_replay` works offline, before anything is written: it checks that
the archive covers the range (:func:`moodump.binlog.chain.replay_files`), extracts the
files (checksums checked), and scans the events from the snapshot position to find the
exact stop: the start of the first transaction at or after the target time, the given
position (snapped back to the start of a transaction it falls inside), or the end of the
transaction with the given GTID. The scan also refuses statements that a replay could
not apply faithfully to the target database (see :func:`moodump.binlog.statements.unsafe_statement`).

:func:`run_replay` then pipes ``mariadb-binlog --database=SRC [--rewrite-db=SRC->DST]
--start-position --stop-position FILES`` into ``mariadb``. Only events of the dumped
database pass (row events by their table's database, statements by their default
database). The session GTID settings are dropped from the stream, so the replayed
transactions are new transactions of the target server with its own GTIDs.
"""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from moodump.binlog.chain import (
    ArchivedFile,
    Target,
    gtid_state,
    replay_files,
    split_name,
    when,
)
from moodump.binlog.events import (
    FORMAT_DESCRIPTION,
    GTID,
    GTID_LIST,
    INCIDENT,
    OUTSIDE_TRANSACTIONS,
    QUERY,
    QUERY_COMPRESSED,
    QUERY_EVENTS,
    ROW_EVENTS,
    TABLE_MAP,
    XA_PREPARE,
    XID,
    BinlogFormatError,
    Event,
    EventReader,
    Gtid,
)
from moodump.binlog.statements import (
    TXN_WORDS,
    Elsewhere,
    check_names,
    misread_load,
    shown_statement,
    temporary_tables,
    unordered_limit,
    unrepeatable,
    unsafe_statement,
)
from moodump.db.connection import ConnSettings
from moodump.errors import ConfigError, IntegrityError, PitrUnavailable, ServerError
from moodump.pitr.archive import Archive
from moodump.pitr.client import binlog_tool, child_env, connection_args, sql_client

#: Events that belong to no transaction (their times are file creation or rotation times).
_OUTSIDE = OUTSIDE_TRANSACTIONS

#: mariadb-binlog's per-transaction session settings that carry the original GTID.
_GTID_LINES = (
    b"/*M!100001 SET @@session.gtid_domain_id=",
    b"/*M!100001 SET @@session.server_id=",
    b"/*M!100001 SET @@session.gtid_seq_no=",
)

#: A row event is printed as ``BINLOG '`` + its base64 lines + ``'/*!*/;``: one packet,
#: a third larger than the event. A row as large as the server's max_allowed_packet (which
#: the source accepted) would not fit; longer than this it is sent in two user variables
#: (``BINLOG @binlog_fragment_0, @binlog_fragment_1``, MariaDB 10.2.25+), each half as long.
#: An XA statement as mariadb-binlog prints it (XA START with its delimiter on its line).
_XA_LINE = re.compile(rb"^XA (START|END|PREPARE|COMMIT|ROLLBACK) (.+?)(/\*!\*/;)?$")
#: mariadb-binlog's header line of a Format_description the server wrote at its start
#: (``... Start: binlog v 4, server v ... created 261206 10:00:00 at startup``).
_STARTUP = b" at startup"
_THREAD_LINE = b"SET @@session.pseudo_thread_id="
_BINLOG_START = b"BINLOG '\n"
_BINLOG_END = b"'/*!*/;"
#: the same within an executable comment (mariadb-binlog prints a START ALTER so)
_BINLOG_START_COMMENT = re.compile(rb"^/\*!\d+ BINLOG '\n$")
_BINLOG_END_COMMENT = b"' *//*!*/;"
FRAGMENT_OVER = 1 << 20


#: A line of a BINLOG statement's base64 (an event is at least 19 bytes: 28 characters).
_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/]{28,}={0,2}\n?$")


def needed_packet(plan: ReplayPlan) -> int:
    """The max_allowed_packet the target server needs for the replay's longest statement:
    a statement's row events as one BINLOG statement (base64, a third longer), or past
    :data:`FRAGMENT_OVER` each of its two halves; or a statement-format statement."""
    text = (plan.largest_rows_statement + 2) // 3 * 4
    rows = (text if text <= FRAGMENT_OVER else (text + 1) // 2) + 1024
    return max(rows, plan.largest_statement + 1024)


def _rewrite_stream(lines: Iterable[bytes], plan: ReplayPlan) -> Iterator[bytes]:
    """mariadb-binlog's output as the replay sends it to the client: without the original
    GTIDs; each long BINLOG statement in two fragments (:func:`_binlog_statement`), and one
    whose ``BINLOG '`` line mariadb-binlog lost given it back (``--database`` drops it when
    the statement's row events after the first are of another database: a trigger or a
    multi-table UPDATE writing both); the XA statements of an XA transaction the filter
    left empty, and the XA ROLLBACK of one prepared before the snapshot, as ``DO 0``; an
    ALTER logged in two phases as its statement, once (:func:`_alter_statement`)."""
    body: list[bytes] | None = None  # the lines of a BINLOG statement so far
    commented = False  # ... within an executable comment
    opener = _BINLOG_START  # its first line
    alters = iter(plan.alters)
    boundary = True  # the last statement line ended with the delimiter
    orphans = {x.encode() for x in plan.xa_orphans}
    prepared: set[bytes] = set()  # XIDs of the XA transactions prepared in the stream
    empty = {x.encode(): list(flags) for x, flags in plan.xa_empty.items()}
    skipping: set[bytes] = set()  # XIDs of the empty XA transaction being skipped
    restarts = iter(plan.restart_drops)
    thread = b""  # the last pseudo_thread_id line mariadb-binlog printed
    for line in lines:
        if body is not None:
            if line.rstrip(b"\n") == (_BINLOG_END_COMMENT if commented else _BINLOG_END):
                if _is_query(body):
                    yield from _alter_statement(body, next(alters, None), opener, line)
                elif commented:
                    yield from (opener, *body, line)
                else:
                    yield from _binlog_statement(body)
                body, boundary = None, True
            else:
                body.append(line)
            continue
        if line == _BINLOG_START or (boundary and _BASE64_LINE.match(line)):
            body, commented, opener = [] if line == _BINLOG_START else [line], False, _BINLOG_START
            continue
        if _BINLOG_START_COMMENT.match(line):
            body, commented, opener = [], True, line
            continue
        if line.startswith(_GTID_LINES):
            continue
        if plan.generated and (own := plan.generated.get(line.rstrip(b"\n"))):
            yield own + b"\n"
            continue
        if line.startswith(_THREAD_LINE):
            thread = line
        elif (
            boundary
            and line.startswith(b"#")
            and b"\tStart: binlog v " in line
            and line.rstrip().endswith(_STARTUP)
        ):
            yield line  # the Format_description of a file the server started with
            drops = next(restarts, [])
            for tid, name in drops:
                quoted = "`" + name.replace("`", "``") + "`"
                yield b"%s%d/*!*/;\n" % (_THREAD_LINE, tid)
                yield b"DROP TEMPORARY TABLE IF EXISTS %s/*!*/;\n" % quoted.encode()
            if drops and thread:
                yield thread
            boundary = True
            continue
        if line.startswith(b"XA ") and (m := _XA_LINE.match(line.rstrip(b"\n"))):
            verb, xid, inline = m[1], m[2], m[3] or b""
            if verb == b"START" and empty.get(xid) and empty[xid].pop(0):
                skipping.add(xid)
            stmt = line.rstrip(b"\n")
            if xid in skipping:
                if verb in (b"COMMIT", b"ROLLBACK"):
                    skipping.discard(xid)
                line = b"DO 0" + inline + b"\n"  # keeps the delimiter lines
            elif verb == b"END":
                prepared.add(xid)
            elif verb in (b"COMMIT", b"ROLLBACK") and xid in orphans and xid not in prepared:
                line = b"DO 0 /* moodump: " + stmt + b" (prepared before the backup) */\n"
            if verb in (b"COMMIT", b"ROLLBACK"):
                prepared.discard(xid)
        if line.strip() and not line.startswith(b"#"):
            boundary = line.rstrip().endswith(b"/*!*/;")
        yield line
    if body is not None:  # cut short: what mariadb-binlog printed, as it was
        yield _BINLOG_START
        yield from body


#: The statement a server logs when it first opens a MEMORY table after a restart (the
#: table is empty then): ``TRUNCATE TABLE `db`.`t` /* generated by server ... */``.
_MEMORY_EMPTIED = re.compile(
    r"(?P<verb>TRUNCATE TABLE|DELETE FROM) `(?P<db>(?:[^`]|``)+)`\.(?P<table>`(?:[^`]|``)+`)"
    r"(?P<note> /\* generated by server[^*]*\*/)"
)


def _memory_emptied(query: str, source_db: str) -> bytes:
    """The server's emptying of a MEMORY table of ``source_db`` after a restart, as the
    replay runs it: on the table of the session's database (b"" for another statement)."""
    m = _MEMORY_EMPTIED.fullmatch(query.strip())
    if not m or m["db"].replace("``", "`") != source_db:
        return b""
    return f"{m['verb']} {m['table']}{m['note']}".encode()


def _is_query(body: list[bytes]) -> bool:
    """A BINLOG statement of a Query event (mariadb-binlog prints an ALTER logged in two
    phases so), not of row events."""
    try:
        head = base64.b64decode(body[0][:28]) if body else b""
    except ValueError:
        return False
    return len(head) > 4 and head[4] in (QUERY, QUERY_COMPRESSED)


def _alter_statement(
    body: list[bytes], alter: tuple[str, bytes] | None, opener: bytes, closer: bytes
) -> list[bytes]:
    """An ALTER logged in two phases, as the replay runs it: once, as the statement, at
    its COMMIT ALTER (in the session's default database, the target's); its START ALTER
    and a ROLLBACK ALTER not at all. The BINLOG statement mariadb-binlog prints for them
    carries the source's name, which --rewrite-db does not change."""
    if alter is None:  # not one the scan saw: as mariadb-binlog printed it
        return [opener, *body, closer]
    phase, query = alter
    if phase != "commit":  # a comment line: nothing runs
        what = b"run at its COMMIT ALTER" if phase == "start" else b"not run"
        return [b"# moodump: a " + phase.upper().encode() + b" ALTER, " + what + b"\n"]
    return [query + b"\n/*!*/;\n"]


def _binlog_statement(body: list[bytes]) -> list[bytes]:
    """The lines to send for a ``BINLOG`` statement whose base64 lines are ``body``."""
    size = sum(len(x) for x in body)
    if size <= FRAGMENT_OVER:
        return [_BINLOG_START, *body, _BINLOG_END + b"\n"]
    text = b"".join(body)
    half = len(text) // 2
    return [
        b"SET @binlog_fragment_0='" + text[:half] + b"'/*!*/;\n",
        b"SET @binlog_fragment_1='" + text[half:] + b"'/*!*/;\n",
        b"BINLOG @binlog_fragment_0, @binlog_fragment_1/*!*/;\n",
        b"SET @binlog_fragment_0=NULL, @binlog_fragment_1=NULL/*!*/;\n",
    ]


@dataclass
class ReplayPlan:
    files: list[ArchivedFile]
    paths: list[Path]
    start_file: str
    start_position: int
    stop_file: str
    stop_position: int  # events that start before it (in stop_file) are replayed
    events: int = 0  # row events and statements of the database in the range
    transactions: int = 0  # transactions (GTID groups) in the range, all databases
    binlog_bytes: int = 0  # bytes of binlog in the range, all databases
    last_time: int = 0  # time of the last event replayed
    notes: list[str] = field(default_factory=list)
    #: XA transactions prepared in the range and not (yet) committed: xid -> where
    #: their PREPARE group starts
    xa_prepared: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: the longest run of the source's table map and row events of one statement: the
    #: replay sends it as one BINLOG statement (see :func:`needed_packet`)
    largest_rows_statement: int = 0
    #: the longest statement-format statement of the source (bytes), and where it is
    largest_statement: int = 0
    largest_statement_at: str = ""
    #: XIDs whose XA ROLLBACK, or XA COMMIT, in the range finishes a transaction prepared
    #: before the snapshot that undoes, or commits, nothing of the source database (a
    #: rollback always; a commit when the start file shows the transaction had no event of
    #: it): the target server knows no such XID, the replay skips them
    xa_orphans: set[str] = field(default_factory=set)
    #: XA transactions prepared before the snapshot in the start file: XID -> whether it
    #: has an event of the source database
    xa_before: dict[str, bool] = field(default_factory=dict)
    #: per XID, in the order of their XA END in the range: whether that XA transaction
    #: has no event of the source database (the filter leaves it empty, and an empty XA
    #: transaction cannot be prepared and then committed: the replay skips it)
    xa_empty: dict[str, list[bool]] = field(default_factory=dict)
    #: statement-format temporary tables of the source open so far in the range:
    #: (thread id, lowercased name) -> name
    temp_tables: dict[tuple[int, str], str] = field(default_factory=dict)
    #: per file of the range that the server started with (its Format_description says
    #: so), in order: the temporary tables open when the server went down (they were gone
    #: after the restart, but the replay's one session still has them): dropped there
    restart_drops: list[list[tuple[int, str]]] = field(default_factory=list)
    #: the source's ALTERs logged in two phases (binlog_alter_two_phase) in the range, in
    #: order: (phase, statement) for each START, COMMIT and ROLLBACK ALTER (mariadb-binlog
    #: prints them as BINLOG statements, which --rewrite-db does not rename)
    alters: list[tuple[str, bytes]] = field(default_factory=list)
    #: the backup's GTID position at its snapshot (``0-1-42,1-2-7``; "" when unknown)
    snapshot_gtid: str = ""
    #: the server's own emptying of a MEMORY table after a restart, which names the table
    #: with the source's database: the statement -> the same on the table of the session's
    #: database (the target's, by --rewrite-db)
    generated: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return (self.stop_file, self.stop_position) <= (self.start_file, self.start_position)


@dataclass
class ReplayStats:
    events: int
    transactions: int
    binlog_bytes: int
    duration_s: float
    stop_file: str
    stop_position: int
    last_time: int
    notes: list[str] = field(default_factory=list)


def plan_replay(
    archive: Archive,
    start_file: str,
    start_position: int,
    target: Target,
    source_db: str,
    *,
    rewrite: bool,
    workdir: Path,
    elsewhere: Elsewhere | None = None,
    snapshot_gtid: str = "",
) -> ReplayPlan:
    """Check coverage, extract the files into ``workdir`` and find the stop (module doc).
    ``elsewhere``: the backup's triggers and functions that write another database;
    ``snapshot_gtid``: the GTID position the backup recorded with its snapshot position
    (the archive must show the same there).

    :raises PitrUnavailable: the archive does not cover the range, the target is before
        the snapshot, the GTID is not in the range, or a statement cannot be replayed.
    """
    names = replay_files(archive.chain, start_file, start_position, target)
    files = [f for f in archive.chain.files if f.name in names]
    plan = ReplayPlan(files, [], start_file, start_position, start_file, start_position)
    plan.snapshot_gtid = snapshot_gtid
    gtid = Gtid.parse(target.gtid) if target.gtid else None
    found = False
    stop: tuple[str, int] | None = None
    for f in files:
        path = archive.extract(f, workdir)
        plan.paths.append(path)
        try:
            stop, found = _scan(
                plan,
                f,
                path,
                target,
                gtid,
                source_db,
                rewrite,
                found,
                elsewhere or Elsewhere(rewrite),
            )
        except BinlogFormatError as exc:
            raise IntegrityError(
                f"the archived {f.name} cannot be read: {exc}",
                hint="moodump binlog verify checks the archive; restore to a point before it",
            ) from exc
        if stop is not None:
            break
    if gtid is not None and not found:
        raise PitrUnavailable(
            f"GTID {gtid} is not in the archived binary log after the backup's snapshot "
            f"({start_file}:{start_position}, archived up to {files[-1].name}:{files[-1].size})",
            hint="check the GTID (a transaction of this server after the backup), or run "
            "moodump binlog pull first",
        )
    if stop is None:
        last = files[-1]
        stop = (last.name, last.size)
    plan.stop_file, plan.stop_position = stop
    keep = [i for i, f in enumerate(files) if split_name(f.name)[1] <= split_name(stop[0])[1]]
    plan.files = [files[i] for i in keep]
    plan.paths = [plan.paths[i] for i in keep if i < len(plan.paths)]
    dangling = [x for x, at in plan.xa_prepared.items() if (split_name(at[0])[1], at[1]) < (
        split_name(stop[0])[1], stop[1]) and not plan.xa_empty[x][-1]]  # fmt: skip
    if dangling:
        raise PitrUnavailable(
            f"{target.describe()} falls between the XA PREPARE and the commit of the XA "
            f"transaction {dangling[0]}: the replay would leave it prepared on the target "
            "server, holding its locks",
            hint="pick a target before its XA PREPARE or after its XA COMMIT",
        )
    if (stop[0], stop[1]) < (start_file, start_position):
        raise PitrUnavailable(
            f"{target.describe()} is before the backup's snapshot ({start_file}:{start_position})",
            hint="pick an older backup (moodump list), or a later target",
        )
    return plan


_XA = re.compile(r"^\s*XA\s+(END|COMMIT|ROLLBACK)\s+(.+?)\s*$", re.I | re.S)


def _xa(plan: ReplayPlan, ev: Event, where: tuple[str, int], touched: bool) -> None:
    """Follow XA transactions: ``XA END xid`` opens the group its ``XA PREPARE`` closes,
    ``XA COMMIT xid`` / ``XA ROLLBACK xid`` (their own group) finishes it. A commit of a
    transaction prepared before the snapshot cannot be replayed: its changes are neither
    in the backup (a consistent snapshot does not see a prepared transaction) nor in the
    range. Its rollback undoes nothing of either, and is skipped."""
    m = _XA.match(ev.query)
    if not m:
        return
    verb, xid = m[1].upper(), m[2]
    if verb == "END":
        plan.xa_prepared[xid] = where
        plan.xa_empty.setdefault(xid, []).append(not touched)
    elif plan.xa_prepared.pop(xid, None) is not None:
        pass
    elif verb == "ROLLBACK" or plan.xa_before.get(xid) is False:
        plan.xa_orphans.add(xid)  # nothing of the source to undo or commit: skipped
    else:
        raise PitrUnavailable(
            f"the XA transaction {xid} committed at {where[0]}:{ev.start} "
            f"({when(ev.timestamp)}) was prepared before the backup's snapshot: its changes "
            "are in neither the backup nor the replay range",
            hint="restore to a point before that commit, or an older backup",
        )


def _xa_before(plan: ReplayPlan, ev: Event, source_db: str, touched: bool) -> None:
    """Before the snapshot: note each XA transaction prepared (whether it has an event of
    the source database), and forget it when it is finished there."""
    m = _XA.match(ev.query)
    if m and m[1].upper() == "END":
        plan.xa_before[m[2]] = touched
    elif m:
        plan.xa_before.pop(m[2], None)


def _follow_temporary(plan: ReplayPlan, ev: Event) -> None:
    """Note a temporary table the statement creates, forget those it drops."""
    created, dropped = temporary_tables(ev.query, ev.sql_mode)
    if created:
        plan.temp_tables[ev.thread_id, created] = created
    for name in dropped:
        plan.temp_tables.pop((ev.thread_id, name), None)


def _ends_group(ev: Event, standalone: bool) -> bool:
    if ev.type in (XID, XA_PREPARE):
        return True
    return ev.type in QUERY_EVENTS and (
        standalone or ev.query.strip().upper() in ("COMMIT", "ROLLBACK")
    )


def _scan(
    plan: ReplayPlan,
    f: ArchivedFile,
    path: Path,
    target: Target,
    gtid: Gtid | None,
    source_db: str,
    rewrite: bool,
    found: bool,
    elsewhere: Elsewhere,
) -> tuple[tuple[str, int] | None, bool]:
    """Scan one file's events in the range: (the stop when it is in this file, whether
    the target GTID has been seen)."""
    begin = plan.start_position if f.name == plan.start_file else 0
    reader = EventReader()
    group: int | None = None  # start of the open transaction (its GTID event)
    standalone = False
    alter = ""  # the open group's ALTER phase (binlog_alter_two_phase)
    start = f.name == plan.start_file  # the snapshot is in this file: check it is there
    # the GTID state before the snapshot (the start file's, as its Gtid_list says)
    state = gtid_state(",".join(f.gtid_list)) if start else {}
    in_db = False  # the last table map was of the source database
    touched = False  # the open transaction has an event of the source database
    statement = 0  # bytes of the source's table maps and row events of this statement
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            for ev in reader.feed(chunk):
                if ev.type == FORMAT_DESCRIPTION and ev.created:
                    # a server start: the temporary tables open before it are gone
                    open_ = sorted(plan.temp_tables) if ev.start >= begin else []
                    plan.restart_drops.append([(t, plan.temp_tables[t, n]) for t, n in open_])
                    plan.temp_tables.clear()
                if start and ev.start < begin:
                    if ev.type == GTID_LIST:
                        state = {(g.domain, g.server): g.seq for g in ev.gtid_list}
                    elif ev.type == GTID and ev.gtid is not None:
                        state[ev.gtid.domain, ev.gtid.server] = ev.gtid.seq
                elif start:
                    _check_start(plan, ev.start, group is not None, state)
                    start = False
                if ev.start < begin:
                    if (
                        target.time is not None
                        and ev.type not in _OUTSIDE
                        and ev.timestamp >= target.time
                    ):
                        # the backup's manifest time is whole seconds and taken before the
                        # snapshot: the log tells exactly what the backup already holds
                        raise PitrUnavailable(
                            f"{target.describe()} is before the backup's snapshot: the backup "
                            f"already holds a transaction logged at {when(ev.timestamp)} "
                            f"({f.name}:{ev.start})",
                            hint="pick an older backup (moodump list), or a later time",
                        )
                    if ev.type == GTID:
                        group, standalone, touched = ev.start, ev.standalone, False
                    elif ev.type == TABLE_MAP:
                        in_db = ev.db == source_db
                    elif ev.type in ROW_EVENTS:
                        touched = touched or in_db
                    elif ev.type in QUERY_EVENTS:
                        _xa_before(plan, ev, source_db, touched)
                        touched = touched or (
                            ev.db == source_db and ev.query.strip().upper() not in TXN_WORDS
                        )
                    if _ends_group(ev, standalone):
                        group = None
                    continue
                here = group if group is not None else ev.start
                if (
                    target.time is not None
                    and ev.type not in _OUTSIDE
                    and ev.timestamp >= target.time
                ):
                    return (f.name, here), found
                if target.file == f.name and ev.start >= target.position:
                    if ev.start > target.position and (group is None or group >= target.position):
                        raise _not_an_event(target)
                    if group is not None and group < target.position:
                        plan.notes.append(
                            f"{target.file}:{target.position} is inside a transaction; the "
                            f"replay stops before it, at {f.name}:{group}"
                        )
                    return (f.name, here), found
                if found and group is None and ev.type in (GTID, *_OUTSIDE):
                    return (f.name, ev.start), found
                if ev.type == INCIDENT:
                    raise _incident(f, ev)
                plan.binlog_bytes += ev.end - ev.start
                if ev.type == GTID:
                    group, standalone, touched = ev.start, ev.standalone, False
                    alter = ev.alter
                    plan.transactions += 1
                    found = found or (gtid is not None and ev.gtid == gtid)
                    continue
                if ev.type == TABLE_MAP:
                    in_db = ev.db == source_db
                    statement += (ev.end - ev.start) if in_db else 0
                elif ev.type in ROW_EVENTS:
                    statement += (ev.end - ev.start) if in_db else 0
                    if ev.stmt_end:
                        plan.largest_rows_statement = max(plan.largest_rows_statement, statement)
                        statement = 0
                    if in_db:
                        touched = True
                        plan.events += 1
                        plan.last_time = ev.timestamp
                elif ev.type in QUERY_EVENTS:
                    why = unsafe_statement(ev.query, ev.db, source_db, rewrite, ev.sql_mode)
                    if why and ev.db == source_db and (own := _memory_emptied(ev.query, source_db)):
                        plan.generated[ev.query_bytes] = own
                        why = ""
                    if ev.db == source_db:
                        why = why or elsewhere.fired_by(ev.query, ev.sql_mode, source_db)
                        if not why and (func := unrepeatable(ev.query, ev.sql_mode)):
                            why = (
                                f"logged in statement format, it uses {func}, whose value "
                                "a replay does not repeat (the copy would differ from the "
                                "source; binlog_format MIXED or ROW logs its rows)"
                            )
                        why = why or elsewhere.default_used(ev.query, ev.sql_mode, source_db)
                        why = why or elsewhere.reads_other(ev.query, ev.sql_mode, source_db)
                        why = why or misread_load(ev.query)
                        why = why or unordered_limit(ev.query, ev.sql_mode)
                        _, dropped = temporary_tables(ev.query, ev.sql_mode)
                        if not any((ev.thread_id, n) in plan.temp_tables for n in dropped):
                            # (a DROP TABLE of a temporary table leaves the real one's triggers)
                            elsewhere.learn(ev.query, source_db, ev.sql_mode)
                    if why:
                        raise PitrUnavailable(
                            f"cannot replay the statement at {f.name}:{ev.start} "
                            f"({when(ev.timestamp)}): {why}: {shown_statement(ev.query)!r}",
                            hint=f"restore to a point before it (--until-position "
                            f"{f.name}:{ev.start})"
                            + ("" if "statement format" in why else ", or into a database with "
                               "the source's name on another server")
                            + "; see docs/pitr.md",
                        )
                    if ev.db == source_db:
                        _follow_temporary(plan, ev)
                        if len(ev.query_bytes) > plan.largest_statement:
                            plan.largest_statement = len(ev.query_bytes)
                            plan.largest_statement_at = f"{f.name}:{ev.start}"
                        if alter:
                            plan.alters.append((alter, ev.query_bytes))
                    xa = ev.query.lstrip()[:3].upper() == "XA "
                    if xa:
                        _xa(plan, ev, (f.name, group if group is not None else ev.start), touched)
                    if ev.db == source_db and ev.query.strip().upper() not in TXN_WORDS:
                        touched = touched or not xa
                        plan.events += 1
                        plan.last_time = ev.timestamp
                if _ends_group(ev, standalone):
                    group = None
                    if found:
                        return (f.name, ev.end), found
    if start:  # the snapshot is the end of the archived file
        _check_start(plan, reader.offset, group is not None, state)
    if target.file == f.name:
        # no event starts at or after the position: it must be the end of the archived
        # file, not a point inside its last event (whose transaction would be replayed)
        if target.position != reader.offset:
            raise _not_an_event(target)
        if group is not None:
            plan.notes.append(
                f"{target.file}:{target.position} is inside a transaction; the replay stops "
                f"before it, at {f.name}:{group}"
            )
            return (f.name, group), found
        return (f.name, reader.offset), found
    return None, found


def _check_start(
    plan: ReplayPlan, at: int, in_group: bool, state: dict[tuple[int, int], int]
) -> None:
    """The backup's snapshot position must be a point between transactions of this
    archive's history where its GTID state is the backup's: a backup of another server
    (a replica) or of the history before a RESET MASTER names a position of other files
    of the same name, and a replay from there is another history's (or no events)."""
    where = f"{plan.start_file}:{plan.start_position}"
    why = ""
    if at != plan.start_position:
        why = "no event starts there in the archived file"
    elif in_group:
        why = "it is inside a transaction in the archived file"
    else:
        try:
            recorded = gtid_state(plan.snapshot_gtid)
        except ValueError:  # MySQL's uuid:1-5 GTID sets: the position alone decides
            recorded = {}
        for key, seq in recorded.items():
            if state.get(key, -1) != seq:
                have = ",".join(f"{d}-{s}-{q}" for (d, s), q in sorted(state.items()))
                why = (
                    f"the backup recorded GTID {plan.snapshot_gtid} there, the archive is at "
                    f"GTID {have or '(none)'}"
                )
                break
    if why:
        raise PitrUnavailable(
            f"the backup's snapshot position {where} is not the history of this archive: "
            f"{why} (the backup was taken from another server, such as a replica, or before "
            "a RESET MASTER)",
            hint="replay with the archive of the binary log of the server the backup was "
            "taken from, or restore a backup of this history",
        )


def _incident(f: ArchivedFile, ev: Event) -> PitrUnavailable:
    """An Incident event in the range: the source server declared that it could not log
    some changes there, so no replay through it can be exact (mariadb-binlog prints it as
    a statement that fails on purpose)."""
    what = {1: "LOST_EVENTS"}.get(ev.incident, f"incident {ev.incident}")
    said = f": {ev.query!r}" if ev.query else ""
    return PitrUnavailable(
        f"the binary log has an incident event at {f.name}:{ev.start} "
        f"({when(ev.timestamp)}, {what}{said}): the server could not log some changes "
        "there, so a replay through it cannot be exact",
        hint=f"restore a backup taken after {when(ev.timestamp)} (its snapshot is past the "
        f"incident), or a target before {f.name}:{ev.start}",
    )


def _not_an_event(target: Target) -> ConfigError:
    return ConfigError(
        f"position {target.file}:{target.position} is not the start of an event in the "
        "archived binary log",
        hint="use a position SHOW MASTER STATUS or mariadb-binlog printed",
    )


def run_replay(
    plan: ReplayPlan, settings: ConnSettings, source_db: str, target_db: str
) -> ReplayStats:
    """Pipe the planned range through ``mariadb-binlog`` into ``mariadb`` (module doc).

    :raises ServerError: either program failed (the last lines of its stderr are in the
        message); the target then holds the dump and part of the replay.
    """
    t0 = time.monotonic()
    stats = ReplayStats(
        plan.events, plan.transactions, plan.binlog_bytes, 0.0,
        plan.stop_file, plan.stop_position, plan.last_time, list(plan.notes),
    )  # fmt: skip
    if plan.empty or not plan.paths:
        return stats
    check_names(source_db, target_db)
    tool, client = binlog_tool(), sql_client()
    dump_cmd = [tool, f"--database={source_db}"]
    if target_db != source_db:
        dump_cmd.append(f"--rewrite-db={source_db}->{target_db}")
    workdir = plan.paths[0].parent
    dump_cmd += [
        # LOAD DATA in statement format: its data goes to a file the client loads with
        # LOCAL; keep it in the private temporary folder (removed after), not in /tmp
        f"--local-load={workdir}",
        f"--start-position={plan.start_position}",
        f"--stop-position={plan.stop_position}",
        *(str(p) for p in plan.paths),
    ]
    load_cmd = [client, *connection_args(client, settings.with_database(None)), "--binary-mode",
                "--max-allowed-packet=1G", "--local-infile=1", target_db]  # fmt: skip
    with open(workdir / "binlog.err", "wb") as e1, open(workdir / "client.err", "wb") as e2:
        producer = subprocess.Popen(
            dump_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=e1,
            env=child_env(None),
        )  # fmt: skip
        consumer = subprocess.Popen(
            load_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=e2,
            env=child_env(settings),
        )  # fmt: skip
        assert producer.stdout is not None and consumer.stdin is not None
        failed: list[BaseException] = []

        def pump() -> None:
            src, dst = producer.stdout, consumer.stdin
            assert src is not None and dst is not None
            try:
                dst.writelines(_rewrite_stream(src, plan))
            except BrokenPipeError:
                pass  # the client died: its status says why
            except BaseException as exc:
                failed.append(exc)
            finally:
                with contextlib.suppress(BrokenPipeError):
                    dst.close()

        t = threading.Thread(target=pump, name="binlog-replay", daemon=True)
        t.start()
        try:
            rc_load = consumer.wait()
            rc_dump = producer.wait()
        except BaseException:
            producer.kill()
            consumer.kill()
            raise
        t.join()
    for rc, name, err in ((rc_dump, Path(tool).name, "binlog.err"), (rc_load, Path(client).name,
                          "client.err")):  # fmt: skip
        if rc != 0:
            tail = (workdir / err).read_text(errors="replace").strip().splitlines()[-3:]
            raise ServerError(
                f"replaying the binary log into {target_db} failed: {name} exited {rc}: "
                + " | ".join(tail),
                hint="fix what it reports; the target holds the backup and part of the "
                "replay, so restore again (with --drop)",
            )
    if failed:
        raise failed[0]
    stats.duration_s = time.monotonic() - t0
    return stats
