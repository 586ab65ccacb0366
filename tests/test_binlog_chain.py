"""The pure side of point-in-time recovery: binlog event parsing, the chain model (gaps,
continuity, coverage), pruning (golden), statement safety and the --until parsers."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moodump.binlog.chain import (
    ArchivedFile,
    Chain,
    Gap,
    Target,
    check_chain,
    coverage_problems,
    parse_position,
    parse_until,
    plan_prune,
    replay_files,
)
from moodump.binlog.events import (
    GTID,
    QUERY,
    ROTATE,
    BinlogFormatError,
    Gtid,
    iter_events,
)
from moodump.binlog.statements import unsafe_statement
from moodump.errors import ConfigError, PitrUnavailable

GOLDEN = Path(__file__).parent / "golden"


def _event(etype: int, body: bytes, pos: int, ts: int = 1000, crc: bool = True) -> bytes:
    size = 19 + len(body) + (4 if crc else 0)
    head = struct.pack("<IBIIIH", ts, etype, 1, size, pos + size, 0)
    raw = head + body
    return raw + struct.pack("<I", zlib.crc32(raw)) if crc else raw


def _binlog(*events: tuple[int, bytes, int]) -> bytes:
    # a format description whose last byte before the CRC says "CRC32"
    fde_body = struct.pack("<H", 4) + b"10.11.0-MariaDB".ljust(50, b"\0") + b"\0" * 4 + b"\x13"
    fde_body += b"\0" * 20 + b"\x01"
    out = b"\xfebin" + _event(15, fde_body, 4)
    for etype, body, ts in events:
        out += _event(etype, body, len(out), ts)
    return out


def test_events_are_parsed_with_their_bodies_and_crc_checked():
    gtid = struct.pack("<QIB", 42, 0, 1)  # seq 42, domain 0, standalone
    query = struct.pack("<IIBHH", 7, 0, 6, 0, 0) + b"moodle\0CREATE TABLE t (id INT)"
    rotate = struct.pack("<Q", 4) + b"binlog.000008"
    data = _binlog((GTID, gtid, 1001), (QUERY, query, 1001), (ROTATE, rotate, 1002))
    evs = iter_events(data)
    assert [e.type for e in evs] == [15, GTID, QUERY, ROTATE]
    assert evs[1].gtid == Gtid(0, 1, 42) and evs[1].standalone
    assert (evs[2].db, evs[2].query) == ("moodle", "CREATE TABLE t (id INT)")
    assert evs[3].next_file == "binlog.000008"
    assert evs[-1].end == len(data)
    damaged = bytearray(data)
    damaged[-6] ^= 0xFF
    with pytest.raises(BinlogFormatError, match="CRC32"):
        iter_events(bytes(damaged))
    with pytest.raises(BinlogFormatError, match="ends inside an event"):
        iter_events(data[:-3])
    with pytest.raises(BinlogFormatError, match="magic"):
        iter_events(b"nope" + data[4:])


def _file(seq: int, *, complete: bool = True, first: int = 0, last: int = 0,
          size: int = 1000, gl: list[str] | None = None, gtid_last: list[str] | None = None,
          ) -> ArchivedFile:  # fmt: skip
    return ArchivedFile(
        name=f"binlog.{seq:06d}", stored=f"binlog.{seq:06d}.zst", complete=complete, size=size,
        sha256="", stored_bytes=100, raw_sha256="", first_time=first or seq * 100,
        last_time=last or seq * 100 + 50, gtid_list=gl or [], gtid_last=gtid_last or [],
    )  # fmt: skip


def _chain(*files: ArchivedFile, gaps: list[Gap] | None = None, covered: int = 0) -> Chain:
    return Chain(base="binlog", files=list(files), gaps=gaps or [], covered_until=covered)


def test_a_continuous_chain_has_no_problems_and_a_jump_without_a_gap_record_has():
    good = _chain(
        _file(3, gtid_last=["0-1-10"]),
        _file(4, gl=["0-1-10"], gtid_last=["0-1-12"]),
        _file(5, complete=False, gl=["0-1-12"]),
    )
    assert check_chain(good) == []
    assert Chain.from_json(good.to_json()) == good
    jump = _chain(_file(3), _file(6))
    assert "binlog.000004 was expected" in check_chain(jump)[0]
    lost_gtid = _chain(_file(3, gtid_last=["0-1-10"]), _file(4, gl=["0-1-9"]))
    assert "lacks 0-1-10" in check_chain(lost_gtid)[0]
    recorded = _chain(
        _file(3), _file(6), gaps=[Gap("binlog.000004", "binlog.000005", "binlog.000003")]
    )
    assert check_chain(recorded) == []


def test_replay_coverage_refuses_gaps_missing_starts_and_targets_past_the_end():
    gap = Gap("binlog.000004", "binlog.000005", "binlog.000003", 1000, 350, 600)
    chain = _chain(_file(3), _file(6), _file(7, complete=False), gaps=[gap], covered=790)
    assert replay_files(chain, "binlog.000006", 120, Target(time=700)) == [
        "binlog.000006", "binlog.000007",
    ]  # fmt: skip
    with pytest.raises(
        PitrUnavailable, match=r"PITR unavailable from .* binlog.000004..binlog.000005"
    ):
        replay_files(chain, "binlog.000003", 120, Target(time=700))
    with pytest.raises(PitrUnavailable, match="after the end of the archive"):
        replay_files(chain, "binlog.000006", 120, Target(time=800))
    with pytest.raises(PitrUnavailable, match=r"starts later, at binlog\.000003"):
        replay_files(chain, "binlog.000002", 120, Target(time=700))
    with pytest.raises(PitrUnavailable, match="before the backup's snapshot"):
        replay_files(chain, "binlog.000006", 500, Target(file="binlog.000006", position=200))
    with pytest.raises(PitrUnavailable, match="past the archived end"):
        replay_files(chain, "binlog.000006", 500, Target(file="binlog.000007", position=5000))
    assert coverage_problems(chain, "binlog.000006", 4) == []
    assert "PITR unavailable" in coverage_problems(chain, "binlog.000003", 4)[0]


def test_prune_plan_golden():
    chain = _chain(*(_file(n) for n in range(3, 9)))
    plans = {
        "no position": plan_prune(chain, None),
        "oldest kept at binlog.000005:4567": plan_prune(chain, ("binlog.000005", 4567)),
        "oldest kept before the archive": plan_prune(chain, ("binlog.000001", 4)),
    }
    got = {k: [[d.name, d.delete, d.reason] for d in v] for k, v in plans.items()}
    assert got == json.loads((GOLDEN / "binlog_prune.json").read_text())
    kept = plans["oldest kept at binlog.000005:4567"]
    assert [d.name for d in kept if d.delete] == ["binlog.000003", "binlog.000004"]


@pytest.mark.parametrize(
    ("query", "db", "rewrite", "refused"),
    [
        ("CREATE TABLE t3 (id INT)", "moodle", True, ""),
        ("BEGIN", "moodle", True, ""),
        ("CREATE TABLE moodle.t3 (id INT)", "moodle", True, "would not change"),
        ("CREATE TABLE `moodle` . `t3` (id INT)", "moodle", True, "would not change"),
        ("CREATE TABLE moodle.t3 (id INT)", "moodle", False, ""),
        ("DROP DATABASE moodle", "moodle", False, "drops or alters a database"),
        ("ALTER TABLE moodle.t ADD c INT", "", False, "filter would skip it"),
        ("ALTER TABLE other.t ADD c INT", "", False, ""),
        ("CREATE TABLE t (v VARCHAR(9) DEFAULT 'moodle')", "moodle", True, ""),
        ("CREATE TABLE t (u VARCHAR(99) DEFAULT 'https://moodle.org')", "moodle", True, ""),
        ("ALTER TABLE t COMMENT 'it''s moodle.t', ADD c INT", "moodle", True, ""),
        ("CREATE TABLE other.x (id INT)", "moodle", False, "another database (other)"),
        ("CREATE TABLE IF NOT EXISTS `oth``er`.x (id INT)", "moodle", True, "another database"),
        ("INSERT INTO other.t VALUES (1)", "moodle", False, "another database (other)"),
        ("DROP TABLE t1, other.t2", "moodle", False, "another database (other)"),
        ("RENAME TABLE t1 TO other.t1", "moodle", False, "another database (other)"),
        ("CREATE INDEX i ON other.t (c)", "moodle", False, "another database (other)"),
        ("CREATE VIEW v AS SELECT a.c FROM t AS a", "moodle", True, ""),
        ("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES u (id)", "moodle", True, ""),
        ("UPDATE t SET c = 1 WHERE t.id = 2", "moodle", True, ""),
        # another default database: skipped; refused unless it only reads the source
        ("INSERT INTO other.t SELECT * FROM moodle.u", "other", False, ""),
        ("INSERT IGNORE INTO t SELECT * FROM `moodle`.u", "other", True, ""),
        ("CREATE TABLE x AS SELECT * FROM moodle.u", "other", False, ""),
        ("INSERT INTO moodle.t SELECT * FROM u", "other", False, "filter would skip it"),
        ("UPDATE other.t, moodle.u SET u.c = 1", "other", False, "filter would skip it"),
        ("DELETE FROM moodle.u WHERE 1", "other", False, "filter would skip it"),
        # the server's accounts: not the database's to replay
        ("GRANT SELECT ON t TO 'u'@'%'", "moodle", False, "accounts, privileges"),
        ("CREATE USER IF NOT EXISTS 'u'@'%'", "moodle", False, "accounts, privileges"),
        ("/* x */ DROP ROLE r", "moodle", False, "accounts, privileges"),
        ("CREATE TABLE user_grants (id INT)", "moodle", False, ""),
        ("SET DEFAULT ROLE 'rr' FOR 'uu'@'%'", "moodle", False, "accounts, privileges"),
        ("CREATE FUNCTION metaphon RETURNS STRING SONAME 'udf.so'", "moodle", False, "plugins"),
        ("CREATE AGGREGATE FUNCTION avgcost RETURNS REAL SONAME 'u.so'", "moodle", False, "plugins"),
        ("CREATE FUNCTION f(x INT) RETURNS INT RETURN x + 1", "moodle", False, ""),
        ("GRANT SELECT ON moodle.* TO 'u'@'%'", "", False, ""),  # skipped: changes no data
    ],
)
def test_statements_that_cannot_be_replayed_into_the_target_are_named(query, db, rewrite, refused):
    why = unsafe_statement(query, db, "moodle", rewrite)
    assert (refused in why) if refused else why == ""


def test_until_is_read_in_the_configured_zone_unless_it_has_an_offset():
    kolkata = ZoneInfo("Asia/Kolkata")
    assert parse_until("2026-12-06 10:41:59", kolkata) == 1796533919
    assert parse_until("2026-12-06T05:11:59Z", kolkata) == 1796533919
    assert parse_until("2026-12-06 05:11:59+00:00", ZoneInfo("UTC")) == 1796533919
    with pytest.raises(ConfigError, match="fraction"):
        parse_until("2026-12-06 10:41:59.5", kolkata)
    with pytest.raises(ConfigError, match="not a time"):
        parse_until("yesterday", kolkata)
    assert parse_position("binlog.000012:4567") == ("binlog.000012", 4567)
    with pytest.raises(ConfigError):
        parse_position("binlog.000012")


def test_compressed_and_load_data_statements_are_read():
    """MariaDB's compressed Query (165: 0x80|n, n big-endian length bytes, zlib) and
    Execute_load_query (18: 13 more post-header bytes) carry their statement and database."""
    text = b"ALTER TABLE moodle.t ADD c INT"
    packed = bytes([0x81, len(text)]) + zlib.compress(text)
    compressed = struct.pack("<IIBHH", 7, 0, 6, 0, 0) + b"moodle\0" + packed
    load = struct.pack("<IIBHH", 7, 0, 5, 0, 0) + b"\0" * 13 + b"other\0LOAD DATA INFILE 'f' "
    load += b"INTO TABLE moodle.t"
    evs = iter_events(_binlog((165, compressed, 1001), (18, load, 1002)))
    assert (evs[1].db, evs[1].query) == ("moodle", text.decode())
    assert (evs[2].db, evs[2].query) == ("other", "LOAD DATA INFILE 'f' INTO TABLE moodle.t")
    bad = struct.pack("<IIBHH", 7, 0, 6, 0, 0) + b"moodle\0" + bytes([0x81, 99]) + b"junk"
    with pytest.raises(BinlogFormatError, match="does not decompress"):
        iter_events(_binlog((165, bad, 1001)))


def test_a_complete_last_file_older_than_covered_until_means_its_successor_is_lost():
    chain = Chain(base="binlog", files=[_file(1, first=10, last=20)], covered_until=30)
    assert any("binlog.000002 is missing" in p for p in check_chain(chain))
    with pytest.raises(PitrUnavailable, match=r"binlog\.000002 is missing"):
        replay_files(chain, "binlog.000001", 4, Target(time=25))
    chain.covered_until = 20  # a pull reads the clock before the Rotate it archives
    assert check_chain(chain) == []


def test_a_pull_after_a_gap_continues_after_it_instead_of_recording_it_again():
    """An open file whose rest was purged stays incomplete in the chain, with a gap from
    it: it is not "needed" again (each pull recorded the gap again, exited 16 and fetched
    from the server's oldest file), and files a gap at the archive's end names are gone."""
    gap = Gap("binlog.000004", "binlog.000006", "binlog.000004", 300)
    chain = _chain(_file(3), _file(4, complete=False), _file(7), _file(8, complete=False),
                   gaps=[gap])  # fmt: skip
    assert chain.next_needed() == "binlog.000008"
    chain = _chain(_file(3), _file(4, complete=False), _file(7), gaps=[gap])
    assert chain.next_needed() == "binlog.000008"
    chain = _chain(_file(3), _file(4, complete=False), gaps=[gap])  # nothing after it yet
    assert chain.next_needed() == "binlog.000007"
    chain = _chain(_file(3), gaps=[Gap("binlog.000004", "binlog.000005", "binlog.000003")])
    assert chain.next_needed() == "binlog.000006"
    assert _chain(_file(3), _file(4, complete=False)).next_needed() == "binlog.000004"
