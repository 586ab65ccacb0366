"""Reading a MariaDB/MySQL binary log file: event headers, and the few bodies moodump needs.

A binlog file is a 4-byte magic (``0xfe 'bin'``) followed by events. Every event starts
with a 19-byte header (little endian)::

    timestamp u32 | type u8 | server_id u32 | event_size u32 | log_pos u32 | flags u16

``log_pos`` is the position just after the event (its end), so in a well-formed file each
event starts where the previous one ended. When the Format_description event says so,
every event ends with a CRC32 of the rest of it.

Bodies read here: Format_description (15: checksum algorithm, server version, whether
the server started with this file), Rotate
(4: the next file), Gtid (162, MariaDB: domain and sequence number; the server id is the
header's), Gtid_list (163, MariaDB: the GTID state at the start of the file), Query (2:
default database, sql_mode, thread id and statement text; also MariaDB's zlib-compressed Query, 165, written
with ``log_bin_compress=ON``, and Execute_load_query, 18, the statement of a LOAD DATA
logged in statement format), Table_map (19: database and table of the row events
after it) and Incident (26: the server declares that events are missing from its log). Everything else is carried as a header only. Pure: bytes in, values out.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

MAGIC = b"\xfebin"
HEADER_LEN = 19

QUERY = 2
EXECUTE_LOAD_QUERY = 18
QUERY_COMPRESSED = 165
STOP = 3
ROTATE = 4
INCIDENT = 26  # the server could not log some events: the log has a gap it declares
FORMAT_DESCRIPTION = 15
XID = 16
XA_PREPARE = 38  # MariaDB 10.5+: ends the group of an XA PREPARE
BINLOG_CHECKPOINT = 161
GTID = 162
GTID_LIST = 163

TABLE_MAP = 19
#: Row events (v1 and v2 write/update/delete, and MariaDB's compressed ones, 166-171):
#: they act on the table map before them.
ROW_EVENTS = frozenset({23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171})
#: Events that carry a statement with its default database (decoded into ``db``/``query``).
QUERY_EVENTS = frozenset({QUERY, EXECUTE_LOAD_QUERY, QUERY_COMPRESSED})
#: Events that belong to no transaction (their times are file creation or rotation times).
OUTSIDE_TRANSACTIONS = frozenset({FORMAT_DESCRIPTION, ROTATE, GTID_LIST, BINLOG_CHECKPOINT, STOP})

_HEADER = struct.Struct("<IBIIIH")


class BinlogFormatError(ValueError):
    """The bytes are not a well-formed binary log (bad magic, broken event chain, CRC)."""


@dataclass(frozen=True)
class Gtid:
    """A MariaDB GTID ``domain-server-seq``."""

    domain: int
    server: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> Gtid:
        """``"0-1-42"`` -> Gtid(0, 1, 42); ValueError for anything else."""
        parts = text.strip().split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not a MariaDB GTID (domain-server-sequence): {text!r}")
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))


@dataclass
class Event:
    """One event: where it starts and ends in the file, its header, and a decoded body
    for the types listed in the module docstring."""

    start: int
    end: int
    timestamp: int
    type: int
    server_id: int
    gtid: Gtid | None = None  # GTID events
    standalone: bool = False  # GTID events: the group is one statement (DDL), no COMMIT
    stmt_end: bool = False  # row events: the last row event of its statement
    gtid_list: list[Gtid] = field(default_factory=list)  # GTID_LIST events
    next_file: str = ""  # ROTATE events
    next_position: int = 0  # ROTATE events
    db: str = ""  # QUERY: the default database; TABLE_MAP: the table's database
    query: str = ""  # QUERY: the statement; TABLE_MAP: the table name
    query_bytes: bytes = b""  # QUERY: the statement as logged (in its session's charset)
    sql_mode: int = 0  # QUERY: the session's sql_mode (it changes how the statement reads)
    thread_id: int = 0  # QUERY: the session's (pseudo) thread id (its temporary tables')
    created: int = 0  # FORMAT_DESCRIPTION: non-zero in the first file after a server start
    incident: int = 0  # INCIDENT: its number (1: LOST_EVENTS); the message is in ``query``
    #: GTID events of an ALTER logged in two phases (binlog_alter_two_phase): "start",
    #: "commit" or "rollback"; "" for any other transaction
    alter: str = ""


class EventReader:
    """Iterate the events of one binlog file given in pieces (``feed``), keeping only what
    is needed to cut the next event. ``offset`` is where the bytes fed so far end.

    The parser checks the magic, that events are contiguous (``log_pos`` equals the end of
    the event; 0 is accepted for events that carry none) and, when the file says so, each
    event's CRC32. A trailing partial event stays in the buffer: :attr:`pending` tells how
    many bytes of an incomplete event the file ends with.
    """

    def __init__(self, *, verify_crc: bool = True, bodies: bool = True) -> None:
        self.buf = bytearray()
        self.offset = 0  # file offset of buf[0]
        self.magic_seen = False
        self.crc = False
        self.verify_crc = verify_crc
        self.bodies = bodies
        self.server_version = ""

    @property
    def pending(self) -> int:
        return len(self.buf)

    def feed(self, data: bytes) -> Iterator[Event]:
        self.buf += data
        if not self.magic_seen:
            if len(self.buf) < 4:
                return
            if bytes(self.buf[:4]) != MAGIC:
                raise BinlogFormatError("not a binary log (bad magic number)")
            del self.buf[:4]
            self.offset = 4
            self.magic_seen = True
        pos = 0
        buf = self.buf
        try:
            while len(buf) - pos >= HEADER_LEN:
                ts, etype, sid, size, log_pos, _flags = _HEADER.unpack_from(buf, pos)
                if size < HEADER_LEN:
                    raise BinlogFormatError(
                        f"event at position {self.offset + pos} has an impossible size {size}"
                    )
                if len(buf) - pos < size:
                    break
                start = self.offset + pos
                end = start + size
                if log_pos not in (0, end):
                    raise BinlogFormatError(
                        f"event at position {start} says it ends at {log_pos}, not {end}"
                    )
                raw = memoryview(buf)[pos : pos + size]
                try:
                    if etype == FORMAT_DESCRIPTION:
                        self._format_description(raw)
                    if self.crc and self.verify_crc:
                        want = int.from_bytes(raw[size - 4 : size], "little")
                        if zlib.crc32(raw[: size - 4]) != want:
                            raise BinlogFormatError(f"event at position {start} fails its CRC32")
                    ev = Event(start, end, ts, etype, sid)
                    if self.bodies or etype in (GTID, ROTATE, GTID_LIST):
                        self._body(ev, raw)
                finally:
                    raw.release()
                pos += size
                yield ev
        finally:
            del buf[:pos]
            self.offset += pos

    def _format_description(self, raw: memoryview) -> None:
        body = bytes(raw[HEADER_LEN:])
        self.server_version = body[2:52].split(b"\0", 1)[0].decode("ascii", "replace")
        # A checksum-aware writer (MySQL 5.6.1+, MariaDB 5.3+) puts the algorithm byte
        # and the event's own CRC32 after the post-header lengths: alg 1 is CRC32.
        self.crc = len(body) >= 5 and body[-5] == 1

    def _body(self, ev: Event, raw: memoryview) -> None:
        end = len(raw) - (4 if self.crc else 0)
        body = raw[HEADER_LEN:end]
        try:
            self._decode(ev, body)
        finally:
            body.release()  # before the buffer is trimmed, even when decoding fails

    def _decode(self, ev: Event, body: memoryview) -> None:
        t = ev.type
        if t == GTID and len(body) >= 12:
            seq, domain = struct.unpack_from("<QI", body, 0)
            ev.gtid = Gtid(domain, ev.server_id, seq)
            ev.standalone = len(body) > 12 and bool(body[12] & 1)
            ev.alter = _alter_phase(body)
        elif t == GTID_LIST and len(body) >= 4:
            count = int.from_bytes(body[:4], "little") & 0x0FFFFFFF
            for i in range(count):
                off = 4 + 16 * i
                if off + 16 > len(body):
                    break
                domain, server, seq = struct.unpack_from("<IIQ", body, off)
                ev.gtid_list.append(Gtid(domain, server, seq))
        elif t == ROTATE and len(body) >= 8:
            ev.next_position = int.from_bytes(body[:8], "little")
            ev.next_file = bytes(body[8:]).decode("utf-8", "replace")
        elif t == FORMAT_DESCRIPTION and len(body) >= 56:
            ev.created = int.from_bytes(body[52:56], "little")
        elif t in QUERY_EVENTS and len(body) >= 13:
            ev.thread_id = int.from_bytes(body[0:4], "little")
            # Execute_load_query's post-header adds file id, file name bounds, handling
            post = 26 if t == EXECUTE_LOAD_QUERY else 13
            db_len = body[8]
            status_len = int.from_bytes(body[11:13], "little")
            db_at = post + status_len
            ev.sql_mode = _sql_mode(body[post:db_at])
            ev.db = bytes(body[db_at : db_at + db_len]).decode("utf-8", "replace")
            text = bytes(body[db_at + db_len + 1 :])
            if t == QUERY_COMPRESSED:
                text = _uncompress(text, ev.start)
            ev.query = text.decode("utf-8", "replace")
            ev.query_bytes = text
        elif t in ROW_EVENTS and len(body) >= 8:
            ev.stmt_end = bool(int.from_bytes(body[6:8], "little") & 1)  # STMT_END_F
        elif t == INCIDENT and len(body) >= 2:
            ev.incident = int.from_bytes(body[0:2], "little")
            n = body[2] if len(body) > 2 else 0
            ev.query = bytes(body[3 : 3 + n]).decode("utf-8", "replace")
        elif t == TABLE_MAP and len(body) >= 9:
            db_len = body[8]
            ev.db = bytes(body[9 : 9 + db_len]).decode("utf-8", "replace")
            tbl_at = 9 + db_len + 1
            if tbl_at < len(body):
                tbl_len = body[tbl_at]
                ev.query = bytes(body[tbl_at + 1 : tbl_at + 1 + tbl_len]).decode("utf-8", "replace")


#: Gtid event flags: a commit id follows; an XA transaction's XID follows.
_FL_GROUP_COMMIT_ID = 2
_FL_XA = 64 | 128
#: flags_extra of MariaDB 10.8+: the phases of an ALTER logged in two phases.
_ALTER_PHASES = ((2, "start"), (4, "commit"), (8, "rollback"))


def _alter_phase(body: memoryview) -> str:
    """The ALTER phase a Gtid event's ``flags_extra`` names (after seq u64, domain u32,
    flags u8, the commit id u64 when flagged, and an XA transaction's XID)."""
    if len(body) < 13:
        return ""
    flags, at = body[12], 13
    if flags & _FL_GROUP_COMMIT_ID:
        at += 8
    if flags & _FL_XA:
        if len(body) < at + 6:
            return ""
        at += 6 + body[at + 4] + body[at + 5]  # formatID u32, gtrid and bqual lengths
    if len(body) <= at:
        return ""
    extra = body[at]
    return next((name for bit, name in _ALTER_PHASES if extra & bit), "")


def _sql_mode(status: memoryview) -> int:
    """The sql_mode among a Query event's status variables (0 when it is not there). The
    server writes them in code order: flags2 (code 0, 4 bytes) before sql_mode (code 1,
    8 bytes); the ones after it need not be understood."""
    i = 5 if len(status) >= 5 and status[0] == 0 else 0
    if len(status) >= i + 9 and status[i] == 1:
        return int.from_bytes(status[i + 1 : i + 9], "little")
    return 0


def _uncompress(data: bytes, start: int) -> bytes:
    """MariaDB's compressed event payload: a byte ``0x80 | algorithm << 4 | n``, the
    uncompressed length in ``n`` big-endian bytes, then a zlib stream (algorithm 0)."""
    if not data or not data[0] & 0x80 or (data[0] >> 4) & 0x07 != 0:
        raise BinlogFormatError(f"compressed event at position {start} has an unknown format")
    n = data[0] & 0x07
    want = int.from_bytes(data[1 : 1 + n], "big")
    try:
        out = zlib.decompress(data[1 + n :])
    except zlib.error as exc:
        raise BinlogFormatError(
            f"compressed event at position {start} does not decompress: {exc}"
        ) from None
    if len(out) != want:
        raise BinlogFormatError(
            f"compressed event at position {start} decompresses to {len(out)} bytes, not {want}"
        )
    return out


def iter_events(data: bytes, **kwargs: bool) -> list[Event]:
    """All complete events of a whole file's bytes (tests, small files)."""
    r = EventReader(**kwargs)
    out = list(r.feed(data))
    if r.pending:
        raise BinlogFormatError(f"the file ends inside an event ({r.pending} bytes)")
    return out
