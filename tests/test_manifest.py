"""The manifest and verification record (moodump.manifest): JSON round trips, and which
manifests a restore, verify or listing must refuse, with which error."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodump.errors import IntegrityError, NotFoundError
from moodump.manifest import (
    FORMAT,
    MANIFEST_NAME,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_STARTED,
    VERIFY_NAME,
    Chunk,
    FileEntry,
    Manifest,
    TableEntry,
    VerifyRecord,
    parse_manifest,
    read_done_manifest,
    read_manifest,
    read_verify_record,
    require_done,
)

DIGEST = "xxh3-128:" + "ab" * 16
SHA = "0123456789abcdef" * 4


def _manifest(status: str = STATUS_DONE) -> Manifest:
    """A manifest with every kind of record, shaped like a real Moodle dump."""
    user = TableEntry(
        "mdl_user",
        schema_file="schema/0001-mdl_user.sql",
        rows=3,
        columns=["id", "username", "picture"],
        column_types=["bigint", "varchar", "longblob"],
        load_clause="(`id`, `username`, `picture`)",
        order_by=["id"],
        chunks=[
            Chunk("data/0001-mdl_user.00000.tsv.gz", 2, 40, DIGEST, "`id` < 100"),
            Chunk("data/0001-mdl_user.00001.tsv.gz", 1, 20, DIGEST, "`id` >= 100"),
        ],
    )
    log = TableEntry(
        "mdl_log_é",
        engine="Aria",
        transactional=False,
        digest="multiset",
        chunks=[Chunk("data/0002-mdl_log_é.00000.tsv.gz", 0, 0, "multiset:" + "0" * 16)],
    )
    seq = TableEntry("s1", kind="sequence", sequence={"next_not_cached_value": 7, "cycle_count": 0})
    files = [
        FileEntry("database.sql", 80, SHA, "schema"),
        FileEntry("schema/0001-mdl_user.sql", 300, SHA, "schema"),
        FileEntry("data/0001-mdl_user.00000.tsv.gz", 61, SHA, "data"),
        FileEntry("data/0001-mdl_user.00001.tsv.gz", 45, SHA, "data"),
        FileEntry("objects.json", 2, SHA, "objects"),
        FileEntry("restore-with-mariadb.sh", 4000, SHA, "script"),
    ]
    return Manifest(
        database="moodle",
        status=status,
        tool_version="0.1.0",
        host="db.example",
        port=3306,
        server_flavor="mariadb",
        server_version="10.11.6-MariaDB",
        started_at="2026-11-24T09:00:00Z",
        finished_at="2026-11-24T09:01:00Z",
        codec="zstd",
        level=3,
        snapshot={"method": "single-connection", "workers": 2, "gtid": "0-1-42"},
        database_ddl="CREATE DATABASE `moodle` CHARACTER SET utf8mb4",
        tables=[user, log, seq],
        objects={"routines": "objects.json"},
        files=files,
        moodle={"prefix": "mdl_", "version": "2024100700", "release": "4.5"},
        options={"threads": 2, "exclude_data": ["mdl_sessions"]},
        warnings=["mdl_log_é is not snapshot-consistent (Aria)"],
        notes=["sequence s1 dumped"],
        error="boom" if status == STATUS_FAILED else None,
    )


def _save(backup: Path, data: dict | str | bytes, name: str = MANIFEST_NAME) -> Path:
    backup.mkdir(parents=True, exist_ok=True)
    path = backup / name
    if isinstance(data, dict):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return backup


# --------------------------------------------------------------------------- round trips


def test_manifest_json_round_trip():
    m = _manifest()
    text = m.to_json()
    assert text.endswith("\n")
    assert "mdl_log_é" in text  # UTF-8 text, not \u escapes
    back = Manifest.from_dict(json.loads(text))
    assert back == m
    assert back.to_json() == text
    assert isinstance(back.tables[0].chunks[0], Chunk) and isinstance(back.files[0], FileEntry)


def test_manifest_round_trip_through_the_backup_directory(tmp_path):
    m = _manifest()
    (tmp_path / MANIFEST_NAME).write_text(m.to_json(), encoding="utf-8")
    assert read_done_manifest(tmp_path) == m
    assert read_done_manifest(str(tmp_path)) == m  # a str path works too
    assert read_manifest(tmp_path) == m


def test_manifest_parses_from_bytes_or_text():
    """Off-site and encrypted sources hand over the manifest's bytes, not a path."""
    m = _manifest()
    assert parse_manifest(m.to_json().encode("utf-8"), "s3://bucket/b/manifest.json") == m
    assert parse_manifest(m.to_json(), "x") == m
    assert require_done(m, "s3://bucket/b") is m


def test_manifest_derived_values():
    m = _manifest()
    assert m.total_rows == 3
    assert m.total_bytes == sum(f.bytes for f in m.files)
    assert m.table("mdl_user").data_files == [
        "data/0001-mdl_user.00000.tsv.gz",
        "data/0001-mdl_user.00001.tsv.gz",
    ]
    assert m.file("objects.json").kind == "objects"
    with pytest.raises(IntegrityError):
        m.file("data/nope.tsv.gz")
    with pytest.raises(NotFoundError) as err:
        m.table("mdl_nope")
    assert err.value.exit_code == 5 and err.value.hint


def test_new_manifest_defaults():
    m = Manifest("moodle")
    assert (m.status, m.format, m.codec, m.level) == (STATUS_STARTED, FORMAT, "gzip", 1)
    assert FORMAT == "moodump/1"
    assert Manifest.from_dict(json.loads(m.to_json())) == m


_names = st.text(min_size=1, max_size=20)
_chunks = st.builds(
    Chunk,
    file=_names,
    rows=st.integers(0, 2**63 - 1),
    raw_bytes=st.integers(0, 2**63 - 1),
    content_digest=st.sampled_from(["xxh3-128:", "multiset:", "sha256:"]).map(lambda p: p + "0f"),
    where=st.text(max_size=30),
)
_tables = st.builds(
    TableEntry,
    name=_names,
    kind=st.sampled_from(["table", "sequence"]),
    rows=st.integers(0, 10**12),
    columns=st.lists(_names, max_size=4),
    chunks=st.lists(_chunks, max_size=3),
    sequence=st.dictionaries(_names, st.integers(-(2**63), 2**63 - 1), max_size=2),
    versioned=st.booleans(),
)
_files = st.builds(
    FileEntry,
    name=_names,
    bytes=st.integers(0, 2**63 - 1),
    sha256=st.just(SHA),
    kind=st.sampled_from(["schema", "data", "objects", "script"]),
)


@settings(max_examples=80, deadline=None)
@given(
    m=st.builds(
        Manifest,
        database=_names,
        status=st.sampled_from([STATUS_STARTED, STATUS_DONE, STATUS_FAILED]),
        tables=st.lists(_tables, max_size=3),
        files=st.lists(_files, max_size=3),
        warnings=st.lists(st.text(max_size=20), max_size=2),
        error=st.none() | st.text(max_size=20),
        snapshot=st.dictionaries(_names, st.integers() | st.text(max_size=10), max_size=3),
    )
)
def test_manifest_round_trip_property(m):
    assert Manifest.from_dict(json.loads(m.to_json())) == m


def test_verify_record_round_trip(tmp_path):
    rec = VerifyRecord(
        "PASS",
        "restore",
        "2026-11-24T10:00:00Z",
        12.5,
        restore_s=9.25,
        server="mariadb 10.11",
        details=["42 tables", "résumé"],
        moodle={"admin_user": "admin"},
    )
    _save(tmp_path, rec.to_json(), VERIFY_NAME)
    back = read_verify_record(tmp_path)
    assert back == rec and back.passed
    assert not VerifyRecord("FAIL", "offline", "2026-11-24T10:00:00Z", 1.0).passed


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("status", [STATUS_STARTED, STATUS_FAILED, "", "done"])
def test_read_done_manifest_refuses_an_unfinished_backup(tmp_path, status):
    m = _manifest(status)
    _save(tmp_path, m.to_json())
    with pytest.raises(IntegrityError) as err:
        read_done_manifest(tmp_path)
    assert f"manifest status {status}" in err.value.message
    assert "moodump list" in (err.value.hint or "") and err.value.exit_code == 8
    if status == STATUS_FAILED:
        assert "boom" in err.value.message  # the recorded error is passed on
    assert read_manifest(tmp_path).status == status  # listings still see it
    with pytest.raises(IntegrityError) as err:
        require_done(m, "s3://bucket/b")
    assert err.value.message.startswith("s3://bucket/b is not a complete backup")


@pytest.mark.parametrize("where", ["empty dir", "missing dir"])
def test_missing_manifest_is_not_a_backup(tmp_path, where):
    backup = tmp_path / "b"
    if where == "empty dir":
        backup.mkdir()
    with pytest.raises(IntegrityError) as err:
        read_done_manifest(backup)
    assert f"has no {MANIFEST_NAME}" in err.value.message and err.value.hint


def test_unreadable_manifest(tmp_path):
    (tmp_path / MANIFEST_NAME).mkdir()  # unreadable even for root
    with pytest.raises(IntegrityError) as err:
        read_done_manifest(tmp_path)
    assert err.value.message.startswith("cannot read") and err.value.hint


def _done() -> dict:
    return json.loads(_manifest().to_json())


def _with(path: str, value: object) -> dict:
    """The DONE manifest with one value (dotted path, list indices as digits) replaced."""
    data = _done()
    *parents, last = path.split(".")
    node: Any = data
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[int(last) if isinstance(node, list) else last] = value
    return data


GARBLED = {
    "empty file": "",
    "not JSON": "status: DONE\n",
    "truncated JSON": _manifest().to_json()[:200],
    "JSON array": "[]",
    "JSON string": '"moodump/1"',
    "no format": json.dumps({k: v for k, v in _done().items() if k != "format"}),
    "foreign format": json.dumps(_with("format", "mydumper/0.15")),
    "format not a version": json.dumps(_with("format", "moodump/one")),
    "format of no version": json.dumps(_with("format", "moodump/0")),
    "format not a string": json.dumps(_with("format", 1)),
    "tables not a list": json.dumps(_with("tables", "mdl_user")),
    "tables null": json.dumps(_with("tables", None)),
    "table not an object": json.dumps(_with("tables.0", "mdl_user")),
    "file without sha256": json.dumps(_with("files.0", {"name": "x", "bytes": 1, "kind": "data"})),
    "chunk without rows": json.dumps(
        _with("tables.0.chunks.0", {"file": "f", "raw_bytes": 1, "content_digest": DIGEST})
    ),
    "unknown key in a chunk": json.dumps(_with("tables.0.chunks.0.compressed", 5)),
}


@pytest.mark.parametrize("name", list(GARBLED))
def test_garbled_manifest_is_an_integrity_error(tmp_path, name):
    _save(tmp_path, GARBLED[name])
    with pytest.raises(IntegrityError) as err:
        read_done_manifest(tmp_path)
    assert str(tmp_path / MANIFEST_NAME) in err.value.message
    assert "another backup" in (err.value.hint or "") and err.value.exit_code == 8
    with pytest.raises(IntegrityError) as err:
        parse_manifest(GARBLED[name].encode("utf-8"), "s3://bucket/b/manifest.json")
    assert "s3://bucket/b/manifest.json" in err.value.message


@pytest.mark.parametrize("via", ["directory", "bytes"])
def test_manifest_that_is_not_utf8_is_an_integrity_error(tmp_path, via):
    raw = _manifest().to_json().encode("utf-8").replace(b"moodle", b"m\xffodle")
    _save(tmp_path, raw)
    with pytest.raises(IntegrityError) as err:
        if via == "directory":
            read_done_manifest(tmp_path)
        else:
            parse_manifest(raw, "s3://bucket/b/manifest.json")
    assert "not valid UTF-8" in err.value.message and err.value.exit_code == 8
    assert "another backup" in (err.value.hint or "")


def test_manifest_of_a_future_format_is_refused(tmp_path):
    _save(tmp_path, _with("format", "moodump/2"))
    with pytest.raises(IntegrityError) as err:
        read_done_manifest(tmp_path)
    assert "moodump/2" in err.value.message
    assert err.value.hint == (
        "this backup was written by a newer moodump (format moodump/2); "
        "restore it with that version or newer"
    )


def test_unknown_top_level_keys_are_kept_aside(tmp_path):
    """A newer moodump/1 writer may add keys; they are recorded, not fatal."""
    data = _done()
    data["compressed_total"] = 123
    data["zz_extra"] = {"a": 1}
    _save(tmp_path, data)
    m = read_done_manifest(tmp_path)
    assert m.options["_unknown_keys"] == ["compressed_total", "zz_extra"]
    assert m.tables == _manifest().tables


# --------------------------------------------------------------------------- older field names


def test_older_content_sha256_is_read_as_a_sha256_digest(tmp_path):
    """Manifests from before 0.1.0 named the chunk digest content_sha256 (docs/format.md)."""
    data = _done()
    old = data["tables"][0]["chunks"]
    for chunk in old:
        del chunk["content_digest"]
    old[0]["content_sha256"] = SHA  # a bare hex digest
    old[1]["content_sha256"] = "sha256:" + SHA  # already prefixed
    _save(tmp_path, data)
    m = read_done_manifest(tmp_path)
    assert [c.content_digest for c in m.table("mdl_user").chunks] == ["sha256:" + SHA] * 2
    rewritten = m.to_json()
    assert "content_sha256" not in rewritten and '"content_digest"' in rewritten


def test_chunk_defaults_for_older_manifests():
    """A chunk written without ``where`` (whole table) reads with an empty predicate."""
    chunk = {"file": "data/t.tsv.gz", "rows": 1, "raw_bytes": 2, "content_sha256": SHA}
    data = _done()
    data["tables"] = [{"name": "t", "chunks": [chunk]}]
    m = Manifest.from_dict(data)
    assert m.tables[0].chunks == [Chunk("data/t.tsv.gz", 1, 2, "sha256:" + SHA, "")]
    assert m.tables[0].kind == "table" and m.tables[0].digest == "ordered"


# --------------------------------------------------------------------------- verify.json


def test_never_verified_backup_has_no_record(tmp_path):
    assert read_verify_record(tmp_path) is None
    assert read_verify_record(tmp_path / "missing-dir") is None


VERIFY_GARBLED = {
    "empty file": b"",
    "not JSON": b"PASS\n",
    "truncated JSON": b'{"status": "PASS", "meth',
    "JSON array": b"[]",
    "missing keys": json.dumps({"status": "PASS"}).encode(),
    "unknown key": json.dumps(
        {**asdict(VerifyRecord("PASS", "offline", "t", 1.0)), "extra": 1}
    ).encode(),
    "not UTF-8": b'{"status": "PASS\xff"}',
}


@pytest.mark.parametrize("name", list(VERIFY_GARBLED))
def test_garbled_verify_record_counts_as_never_verified(tmp_path, name):
    _save(tmp_path, VERIFY_GARBLED[name], VERIFY_NAME)
    assert read_verify_record(tmp_path) is None


def test_unreadable_verify_record_counts_as_never_verified(tmp_path):
    (tmp_path / VERIFY_NAME).mkdir()
    assert read_verify_record(tmp_path) is None
