"""Backups are untrusted input (issue 18, point 3).

They come back from buckets that anyone with write access could fill. A manifest is parsed
into a valid Manifest or refused with IntegrityError (never another exception); every path
it names stays inside the backup (no absolute path, no ``..``, no symbolic link leading
out); names, sizes and counts are bounded; damaged compressed streams give their data or
IntegrityError, never silently short data; ``restore-with-mariadb.sh`` inside a backup is
never executed by moodump.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import moodump
import moodump.manifest as manifest_mod
from helpers_failures import (
    Source,
    conn_args,
    copy_backup,
    data_file_names,
    databases,
    drop_database,
    run_cli,
    unique_db,
)
from moodump.compression import iter_uncompressed
from moodump.db import ConnSettings
from moodump.errors import IntegrityError
from moodump.manifest import FORMAT, Manifest, parse_manifest
from moodump.restore import check_files
from moodump.source import LocalSource

SHA = "0" * 64


def _valid() -> dict[str, Any]:
    return {
        "database": "moodle",
        "status": "DONE",
        "format": FORMAT,
        "codec": "gzip",
        "tables": [
            {
                "name": "mdl_user",
                "schema_file": "schema/0001-mdl_user.sql",
                "rows": 2,
                "columns": ["id", "username"],
                "chunks": [
                    {
                        "file": "data/0001-mdl_user.00000.tsv.gz",
                        "rows": 2,
                        "raw_bytes": 20,
                        "content_digest": "xxh3-128:00",
                    }
                ],
            }
        ],
        "objects": {"definitions": "objects.json"},
        "files": [
            {"name": "schema/0001-mdl_user.sql", "bytes": 10, "sha256": SHA, "kind": "schema"},
            {"name": "data/0001-mdl_user.00000.tsv.gz", "bytes": 30, "sha256": SHA, "kind": "data"},
        ],
    }


def _parse(data: Any) -> Manifest:
    return parse_manifest(json.dumps(data).encode("utf-8"), "m.json")


# -- the parser: a Manifest or IntegrityError, never anything else -------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _paths() -> list[tuple[Any, ...]]:
    """Every path (tuple of keys and indexes) to a value inside the valid manifest."""
    out: list[tuple[Any, ...]] = []

    def walk(v: Any, p: tuple[Any, ...]) -> None:
        out.append(p)
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, (*p, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, (*p, i))

    walk(_valid(), ())
    return out


_PATHS = _paths()
_nasty = _json | st.sampled_from(
    ["../x", "/etc/passwd", "a\x00b", "x" * 300, "a/../b", "", -1, 2**70, True, "C:x", "a\\b"]
)


def _expect_manifest_or_integrity_error(raw: bytes) -> None:
    try:
        m = parse_manifest(raw, "m.json")
    except IntegrityError:
        return
    assert isinstance(m, Manifest)
    for f in m.files:  # what parses is safe to use
        assert not f.name.startswith("/") and ".." not in f.name.split("/")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _nasty), min_size=1, max_size=3))
def test_mutated_manifest_parses_or_raises_integrity_error(
    edits: list[tuple[tuple[Any, ...], Any]],
) -> None:
    data: Any = _valid()
    for path, value in edits:
        if not path:
            data = value
            continue
        node = data
        try:
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _expect_manifest_or_integrity_error(json.dumps(data).encode("utf-8"))


@settings(max_examples=100, deadline=None)
@given(_json)
def test_arbitrary_json_parses_or_raises_integrity_error(data: Any) -> None:
    _expect_manifest_or_integrity_error(json.dumps(data).encode("utf-8"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_integrity_error(raw: bytes) -> None:
    _expect_manifest_or_integrity_error(raw)


def test_deeply_nested_json_is_integrity_error() -> None:
    with pytest.raises(IntegrityError, match="nested"):
        parse_manifest(b"[" * 100_000 + b"]" * 100_000, "m.json")


# -- bounds -------------------------------------------------------------------------------------
def test_valid_manifest_parses() -> None:
    m = _parse(_valid())
    assert m.tables[0].name == "mdl_user"


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["tables"][0].update(name="x" * 256), "longer than 255 bytes"),
        (lambda d: d["tables"][0].update(name="é" * 128), "longer than 255 bytes"),
        (lambda d: d["tables"][0].update(name="a\x00b"), "control character"),
        (lambda d: d["tables"][0].update(rows=-1), "not a count"),
        (lambda d: d["tables"][0].update(rows=2**64), "not a count"),
        (lambda d: d["tables"][0]["chunks"][0].update(rows="7"), "not a count"),
        (lambda d: d["files"][0].update(bytes=-5), "not a count"),
        (lambda d: d["files"][0].update(sha256="zz"), "64 hex"),
        (lambda d: d["files"][0].update(name="../secret.tsv.gz"), "outside the backup"),
        (lambda d: d["files"][0].update(name="/etc/passwd"), "outside the backup"),
        (lambda d: d["files"][0].update(name="data/./x"), "outside the backup"),
        (lambda d: d["files"][0].update(name="data\\..\\x"), "outside the backup"),
        (lambda d: d["files"][0].update(name="data/" + "x" * 256), "longer than 255"),
        (lambda d: d["tables"][0]["chunks"][0].update(file="../../x.gz"), "outside the backup"),
        (lambda d: d["tables"][0].update(schema_file="/tmp/x.sql"), "outside the backup"),
        (lambda d: d["objects"].update(definitions="../objects.json"), "outside the backup"),
        (lambda d: d.update(database=""), "not a name"),
        (lambda d: d.update(options=[]), "options"),
        (lambda d: d.update(tables="abc"), "unexpected shape"),
        (lambda d: d.update(files=[1]), "unexpected shape"),
    ],
)
def test_out_of_bounds_manifests_are_integrity_errors(edit: Any, needle: str) -> None:
    data = _valid()
    edit(data)
    with pytest.raises(IntegrityError, match=re.escape(needle)):
        _parse(data)


def test_limits_on_size_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = json.dumps(_valid()).encode("utf-8")
    monkeypatch.setattr(manifest_mod, "MAX_MANIFEST_BYTES", len(raw) - 1)
    with pytest.raises(IntegrityError, match="larger than"):
        parse_manifest(raw, "m.json")
    monkeypatch.undo()
    monkeypatch.setattr(manifest_mod, "MAX_TABLES", 1)
    data = _valid()
    data["tables"].append(dict(data["tables"][0], name="mdl_b", chunks=[]))
    with pytest.raises(IntegrityError, match="more than the limit of 1"):
        _parse(data)
    monkeypatch.setattr(manifest_mod, "MAX_FILES", 1)
    with pytest.raises(IntegrityError, match="2 files, more than"):
        _parse(_valid())


# -- paths stay inside the backup, symbolic links included -------------------------------------
def _backup_with(tmp_path: Path, name: str, content: bytes) -> tuple[Path, Manifest]:
    root = tmp_path / "backup"
    (root / "data").mkdir(parents=True)
    m = Manifest(database="moodle", status="DONE")
    m.files = [
        manifest_mod.FileEntry(name, len(content), hashlib.sha256(content).hexdigest(), "data")
    ]
    return root, m


def test_symlinked_file_or_directory_leading_out_is_refused(tmp_path: Path) -> None:
    content = b"secret rows"
    (tmp_path / "secret.tsv.gz").write_bytes(content)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.gz").write_bytes(content)
    root, m = _backup_with(tmp_path, "data/x.gz", content)
    (root / "data" / "x.gz").symlink_to(tmp_path / "secret.tsv.gz")
    with pytest.raises(IntegrityError, match="symbolic link"):
        LocalSource(root).open("data/x.gz")
    with pytest.raises(IntegrityError, match="symbolic link"):
        check_files(root, m)
    # a symlinked directory on the way
    root2 = tmp_path / "backup2"
    root2.mkdir()
    (root2 / "data").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError, match="symbolic link"):
        LocalSource(root2).open("data/x.gz")
    with pytest.raises(IntegrityError, match="symbolic link"):
        check_files(root2, m)
    # a link that stays inside is no escape
    (root / "data" / "y.gz").write_bytes(content)
    (root / "data" / "z.gz").symlink_to(root / "data" / "y.gz")
    assert LocalSource(root).read_bytes("data/z.gz") == content


def test_offsite_upload_refuses_symlinks(tmp_path: Path) -> None:
    from moodump.offsite.remote import _local_files

    (tmp_path / "secret").write_bytes(b"s")
    root = tmp_path / "b"
    root.mkdir()
    (root / "manifest.json").write_text("{}")
    (root / "data").symlink_to(tmp_path)
    with pytest.raises(IntegrityError, match="symbolic link"):
        _local_files(root, {})


# -- compressed streams: data or IntegrityError ----------------------------------------------
_PLAIN = b"".join(b"%d\trow number %d\t\\N\n" % (i, i * 7) for i in range(3000))
_STREAMS = {
    "gzip": gzip.compress(_PLAIN, compresslevel=1),
    "zstd": zstandard.ZstdCompressor(level=1, write_checksum=True).compress(_PLAIN),
}


def _read(raw: bytes, codec: str) -> bytes:
    return b"".join(iter_uncompressed(io.BytesIO(raw), 4096, name="f", codec=codec))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(_STREAMS)), st.integers(min_value=0, max_value=10**9))
def test_truncated_stream_is_never_silently_short(codec: str, cut: int) -> None:
    full = _STREAMS[codec]
    raw = full[: cut % len(full)]  # always shorter than the whole stream
    with pytest.raises(IntegrityError):
        _read(raw, codec)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(sorted(_STREAMS)),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_corrupt_stream_gives_its_data_or_integrity_error(
    codec: str, flips: list[tuple[int, int]]
) -> None:
    raw = bytearray(_STREAMS[codec])
    for pos, mask in flips:
        raw[pos % len(raw)] ^= mask
    try:
        out = _read(bytes(raw), codec)
    except IntegrityError:
        return
    assert out == _PLAIN  # a flip in a field the format ignores (gzip header mtime, ...)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(_STREAMS)), st.binary(min_size=1, max_size=64))
def test_trailing_garbage_is_integrity_error_or_ignored_never_other(
    codec: str, tail: bytes
) -> None:
    try:
        out = _read(_STREAMS[codec] + tail, codec)
    except IntegrityError:
        return
    assert out.startswith(_PLAIN)


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_decompression_bomb_streams_in_bounded_blocks(codec: str) -> None:
    zeros = b"\0" * (32 << 20)
    raw = (
        gzip.compress(zeros, 9) if codec == "gzip" else zstandard.ZstdCompressor(19).compress(zeros)
    )
    assert len(raw) < 1 << 20
    total = 0
    for block in iter_uncompressed(io.BytesIO(raw), 1 << 16, name="bomb", codec=codec):
        assert len(block) <= 1 << 16
        total += len(block)
    assert total == len(zeros)


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_wrong_codec_or_empty_is_integrity_error(codec: str) -> None:
    other = "zstd" if codec == "gzip" else "gzip"
    with pytest.raises(IntegrityError):
        _read(_STREAMS[other], codec)
    with pytest.raises(IntegrityError):
        _read(b"", codec)


# -- the restore script in a backup is never run ------------------------------------------------
def test_restore_script_is_never_executed() -> None:
    """Only these modules start processes (the local mariadbd, the legacy client, the
    PostgreSQL client tools, the binary-log tools of pitr), and no module that names the
    stock restore script starts one."""
    src = Path(moodump.__file__).parent
    starts = re.compile(r"\bsubprocess\b|os\.system|os\.exec|os\.spawn|os\.popen|\bpty\.")
    runners = {
        p.relative_to(src).as_posix() for p in src.rglob("*.py") if starts.search(p.read_text())
    }
    assert runners == {
        "legacy.py", "db/localserver.py", "pg/tools.py", "pitr/pull.py", "pitr/replay.py"
    }, runners
    for p in src.rglob("*.py"):
        text = p.read_text()
        if "restore-with-mariadb" in text:
            assert not starts.search(text), p
    for rel in runners:
        assert "restore-with-mariadb" not in (src / rel).read_text()
        assert ".sh" not in (src / rel).read_text()


# -- acceptance: a manifest pointing outside the backup --------------------------------------
@pytest.fixture()
def target(root_settings: ConnSettings):  # type: ignore[no-untyped-def]
    name = unique_db("mdu")
    yield name
    drop_database(root_settings, name)


@pytest.mark.parametrize("outside", ["../secret.tsv.gz", "ABSOLUTE"])
def test_manifest_pointing_outside_is_refused_by_verify_and_restore(
    small: Source, tmp_path: Path, root_settings: ConnSettings, target: str, outside: str
) -> None:
    backup = copy_backup(small, tmp_path / "backup")
    name = data_file_names(backup)[0]
    secret = tmp_path / "secret.tsv.gz"
    secret.write_bytes((backup / name).read_bytes())  # matching checksums
    bad = str(secret) if outside == "ABSOLUTE" else outside
    mpath = backup / "manifest.json"
    m = json.loads(mpath.read_text())
    for f in m["files"]:
        if f["name"] == name:
            f["name"] = bad
    for t in m["tables"]:
        for c in t["chunks"]:
            if c["file"] == name:
                c["file"] = bad
    mpath.write_text(json.dumps(m, indent=1))
    res = run_cli("verify", "--offline", str(backup))
    assert res.returncode == 8, res.stdout + res.stderr
    assert bad in res.stderr and "outside the backup" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    res = run_cli("restore", str(backup), *conn_args(root_settings), "-q", "-d", target)
    assert res.returncode == 8, res.stderr
    assert bad in res.stderr and "outside the backup" in res.stderr, res.stderr
    assert target not in databases(root_settings)


def test_data_file_symlinked_outside_is_refused_by_verify_and_restore(
    small: Source, tmp_path: Path, root_settings: ConnSettings, target: str
) -> None:
    backup = copy_backup(small, tmp_path / "backup")
    name = data_file_names(backup)[0]
    secret = tmp_path / "secret.tsv.gz"
    (backup / name).rename(secret)
    (backup / name).symlink_to(secret)
    res = run_cli("verify", "--offline", str(backup))
    assert res.returncode == 8 and "symbolic link" in res.stdout + res.stderr, res.stderr
    res = run_cli("restore", str(backup), *conn_args(root_settings), "-q", "-d", target)
    assert res.returncode == 8 and "symbolic link" in res.stderr, res.stderr
    assert target not in databases(root_settings)


@pytest.mark.db
def test_a_table_whose_name_holds_control_characters_round_trips(
    root_settings, fresh_db, tmp_path
) -> None:
    """Quoted SQL names may hold any character but NUL: such a table is dumped, and
    restored exactly (its file names are derived from it safely)."""
    from dbcompare import compare_databases
    from moodump.db import connect
    from moodump.db.connection import quote_ident
    from moodump.dump import DumpOptions, dump
    from moodump.restore import restore

    name = "odd\nname\twith ctl"
    with connect(root_settings) as c:
        c.execute(f"CREATE TABLE {quote_ident(fresh_db)}.{quote_ident(name)} (id INT PRIMARY KEY)")
        c.execute(f"INSERT INTO {quote_ident(fresh_db)}.{quote_ident(name)} VALUES (1), (2)")
    out = tmp_path / "b"
    dump(root_settings, fresh_db, out, DumpOptions(threads=1))
    target = fresh_db + "_copy"
    restore(out, root_settings, target)
    with connect(root_settings) as c:
        assert compare_databases(c, fresh_db, target) == []
        c.execute(f"DROP DATABASE {quote_ident(target)}")
