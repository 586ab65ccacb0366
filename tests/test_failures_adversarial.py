"""Adversarial backups: every command refuses them cleanly (issue 18, the product rule).

A damaged backup (manifest of the wrong shape, a data, schema or objects file truncated,
emptied, replaced by a directory or a symbolic link to /etc/passwd) makes ``verify``,
``restore`` and ``export`` exit non-zero with a message naming the problem and a next
step, never a Python traceback, never exit 0; ``prune`` never removes the last good
backup because a newer one is damaged or failed its verification.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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
from moodump.db import ConnSettings

Damage = Callable[[Path], None]


def _manifest(edit: Callable[[dict[str, Any]], None]) -> Damage:
    def damage(backup: Path) -> None:
        path = backup / "manifest.json"
        m = json.loads(path.read_text(encoding="utf-8"))
        edit(m)
        path.write_text(json.dumps(m), encoding="utf-8")

    return damage


def _raw_manifest(raw: bytes) -> Damage:
    def damage(backup: Path) -> None:
        (backup / "manifest.json").write_bytes(raw)

    return damage


def _first_data(backup: Path) -> Path:
    return backup / data_file_names(backup)[0]


def _cut(keep: Callable[[bytes], bytes]) -> Damage:
    def damage(backup: Path) -> None:
        p = _first_data(backup)
        p.write_bytes(keep(p.read_bytes()))

    return damage


def _replace(name: str, how: str) -> Damage:
    def damage(backup: Path) -> None:
        p = _first_data(backup) if name == "data" else backup / name
        p.unlink()
        if how == "dir":
            p.mkdir()
        elif how == "symlink":
            p.symlink_to("/etc/passwd")
        elif how == "fifo":  # a named pipe: opening it waited for a writer, for ever
            os.mkfifo(p)
        elif how == "garbage":
            p.write_bytes(b"\xff\xfe{{ not json")

    return damage


# Damage every command must refuse (offline verification finds all of it).
DAMAGE: dict[str, Damage] = {
    "manifest-empty": _raw_manifest(b""),
    "manifest-not-json": _raw_manifest(b"{not json"),
    "manifest-a-list": _raw_manifest(b"[]"),
    "manifest-nul-byte": _raw_manifest(b'{"database": "a\x00b"}'),
    "manifest-status-running": _manifest(lambda m: m.__setitem__("status", "RUNNING")),
    "manifest-no-tables": _manifest(lambda m: m.pop("tables")),
    "manifest-files-an-object": _manifest(lambda m: m.__setitem__("files", {})),
    "manifest-tables-an-object": _manifest(lambda m: m.__setitem__("tables", {})),
    "manifest-huge-rows": _manifest(lambda m: m["tables"][0].__setitem__("rows", 10**40)),
    "manifest-negative-size": _manifest(lambda m: m["files"][0].__setitem__("bytes", -1)),
    "manifest-dotdot-name": _manifest(lambda m: m["files"][0].__setitem__("name", "../x")),
    "manifest-absolute-name": _manifest(
        lambda m: m["tables"][0]["chunks"][0].__setitem__("file", "/etc/passwd")
    ),
    "manifest-table-twice": _manifest(lambda m: m["tables"].append(dict(m["tables"][0]))),
    "manifest-file-twice": _manifest(lambda m: m["files"].append(dict(m["files"][-1]))),
    "manifest-unknown-codec": _manifest(lambda m: m.__setitem__("codec", "rar")),
    "data-in-gzip-header": _cut(lambda d: d[:5]),
    "data-mid-stream": _cut(lambda d: d[: len(d) // 2]),
    "data-no-trailer": _cut(lambda d: d[:-4]),
    "data-empty": _cut(lambda d: b""),
    "data-a-directory": _replace("data", "dir"),
    "data-symlink-to-passwd": _replace("data", "symlink"),
    "objects-not-json": _replace("objects.json", "garbage"),
    "objects-missing": _replace("objects.json", "missing"),
    "schema-a-directory": _replace("schema/0001-a.sql", "dir"),
    "schema-garbage": _replace("schema/0001-a.sql", "garbage"),
    "manifest-a-directory": _replace("manifest.json", "dir"),
    "manifest-symlink-to-passwd": _replace("manifest.json", "symlink"),
    "manifest-a-fifo": _replace("manifest.json", "fifo"),
}


def _clean_failure(res: Any, code: int | None = None) -> str:
    out = str(res.stdout) + str(res.stderr)
    assert res.returncode != 0, out
    if code is not None:
        assert res.returncode == code, out
    assert "Traceback" not in out, out
    assert "next step:" in out, out
    return out


@pytest.fixture()
def damaged(small: Source, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    backup = copy_backup(small, tmp_path / "backup")
    DAMAGE[request.param](backup)
    return backup


@pytest.fixture()
def target(root_settings: ConnSettings) -> Iterator[str]:
    name = unique_db("mda")
    yield name
    drop_database(root_settings, name)


@pytest.mark.parametrize("damaged", sorted(DAMAGE), indirect=True)
def test_offline_verify_refuses_damage_with_exit_8(damaged: Path) -> None:
    _clean_failure(run_cli("verify", "--offline", "-q", str(damaged)), 8)


@pytest.mark.parametrize("damaged", sorted(DAMAGE), indirect=True)
def test_restore_refuses_damage_and_creates_nothing(
    damaged: Path, root_settings: ConnSettings, target: str
) -> None:
    res = run_cli("restore", str(damaged), *conn_args(root_settings), "-d", target, "-q")
    _clean_failure(res, 8)
    assert target not in databases(root_settings)


# -- prune: a damaged newer backup never costs the older good one -------------------------------
def _two_backups(small: Source, root: Path) -> tuple[Path, Path]:
    out = []
    for day in ("2026-12-01", "2026-12-05"):
        b = root / day / f"h-db_{day}_01-00-00"
        shutil.copytree(small.backup, b)
        m = json.loads((b / "manifest.json").read_text(encoding="utf-8"))
        m.update(started_at=f"{day}T01:00:00Z", database="db", host="h")
        (b / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
        out.append(b)
    return out[0], out[1]


def _verify_failed(backup: Path) -> None:
    record = {"status": "FAIL", "method": "offline", "at": "2026-12-05T02:00:00Z",
              "duration_s": 1.0, "details": ["data/x: sha256 mismatch"]}  # fmt: skip
    (backup / "verify.json").write_text(json.dumps(record), encoding="utf-8")


def _encrypted_json(edit: Callable[[dict[str, Any]], None]) -> Damage:
    """The backup encrypted at rest (MOODUMP_ENCRYPT_AT_REST), then its encrypted.json
    edited: valid JSON of the wrong shape."""

    def damage(backup: Path) -> None:
        from pyrage import x25519

        from moodump.crypto import encrypt_backup_dir, parse_recipients

        recipients = parse_recipients(str(x25519.Identity.generate().to_public()))
        sealed = backup.parent / f".{backup.name}.encrypted"
        encrypt_backup_dir(backup, sealed, recipients)
        shutil.rmtree(backup)
        sealed.rename(backup)
        path = backup / "encrypted.json"
        m = json.loads(path.read_text(encoding="utf-8"))
        edit(m)
        path.write_text(json.dumps(m), encoding="utf-8")

    return damage


def _manifest_to_dev_zero(backup: Path) -> None:
    """Reading it never ends: a listing read it until memory ran out."""
    (backup / "manifest.json").unlink()
    (backup / "manifest.json").symlink_to("/dev/zero")


PRUNE_DAMAGE: dict[str, Damage] = {
    "manifest-a-fifo": DAMAGE["manifest-a-fifo"],
    "manifest-symlink-to-dev-zero": _manifest_to_dev_zero,
    "encrypted-no-files": _encrypted_json(lambda m: m.pop("files")),
    "encrypted-started-at-a-number": _encrypted_json(lambda m: m.__setitem__("started_at", 5)),
    "data-mid-stream": DAMAGE["data-mid-stream"],
    "data-empty": DAMAGE["data-empty"],
    "data-a-directory": DAMAGE["data-a-directory"],
    "data-symlink-to-passwd": DAMAGE["data-symlink-to-passwd"],
    "objects-missing": DAMAGE["objects-missing"],
    "schema-garbage": DAMAGE["schema-garbage"],
    "manifest-files-an-object": DAMAGE["manifest-files-an-object"],
    "manifest-unknown-codec": DAMAGE["manifest-unknown-codec"],
    "verify-failed": _verify_failed,
}


@pytest.mark.parametrize("kind", sorted(PRUNE_DAMAGE))
def test_prune_keeps_the_last_good_backup_when_a_newer_one_is_damaged(
    small: Source, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    old, new = _two_backups(small, root)
    PRUNE_DAMAGE[kind](new)
    for k in [k for k in os.environ if k.startswith(("BACKUP_", "NUM_", "MOODUMP_"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("BACKUP_STRATEGY", "daily")
    monkeypatch.setenv("NUM_BACKUPS", "1")
    monkeypatch.setenv("TZ", "UTC")
    listing = run_cli("list", "--backup-dir", str(root))
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    res = run_cli("prune", "--all-databases", "--backup-dir", str(root))
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    assert old.is_dir() and (old / "manifest.json").is_file(), res.stdout
    assert new.exists(), "a damaged backup newer than the good one is kept as evidence"


def test_a_verify_json_of_the_wrong_shape_is_no_verification(
    small: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify.json is valid JSON whose fields have other types, or a named pipe: ``list``
    and ``check`` read the backup as never verified (they ended in a traceback, or waited
    for ever), retention too."""
    root = tmp_path / "root"
    old, new = _two_backups(small, root)
    os.mkfifo(old / "verify.json")
    (new / "verify.json").write_text(
        json.dumps({"status": ["PASS"], "method": "offline", "at": 5, "duration_s": "1"}),
        encoding="utf-8",
    )
    for k in [k for k in os.environ if k.startswith(("BACKUP_", "NUM_", "MOODUMP_"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("TZ", "UTC")
    for argv in (["list"], ["check", "--max-age", "100000d"], ["list", "--json"]):
        res = run_cli(*argv, "--backup-dir", str(root), timeout=60)
        out = res.stdout + res.stderr
        assert "Traceback" not in out, out
        assert res.returncode == (11 if argv[0] == "check" else 0), out
    listing = json.loads(res.stdout)
    (db,) = listing["databases"]
    assert {b["name"]: b["verify"] for b in db["backups"]} == {old.name: None, new.name: None}


def test_prune_still_removes_beyond_the_count_when_all_are_intact(
    small: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    old, new = _two_backups(small, root)
    for k in [k for k in os.environ if k.startswith(("BACKUP_", "NUM_", "MOODUMP_"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("BACKUP_STRATEGY", "daily")
    monkeypatch.setenv("NUM_BACKUPS", "1")
    monkeypatch.setenv("TZ", "UTC")
    res = run_cli("prune", "--all-databases", "--backup-dir", str(root))
    assert res.returncode == 0, res.stderr
    assert not old.exists() and new.is_dir()


# export streams only the data and schema it converts: damage to objects.json is not its concern
EXPORT_DAMAGE = sorted(k for k in DAMAGE if not k.startswith("objects-"))


@pytest.mark.parametrize("damaged", EXPORT_DAMAGE, indirect=True)
def test_export_refuses_damage(damaged: Path, tmp_path: Path) -> None:
    _clean_failure(run_cli("export", "-q", "-o", str(tmp_path / "out"), str(damaged)))


# -- zstd: a bad frame or a cut stream --------------------------------------------------------
@pytest.fixture(scope="module")
def zstd_backup(small: Source, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zstd") / "backup"
    res = run_cli(
        "dump", *conn_args(small.settings), "-q", "--codec", "zstd", "-o", str(out),
        small.database, password=small.settings.password,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out


def _zstd_flip(d: bytes) -> bytes:
    raw = bytearray(d)
    raw[len(raw) // 2] ^= 0xFF
    return bytes(raw)


ZSTD_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "bad-magic": lambda d: b"\x00\x00\x00\x00" + d[4:],
    "flipped-byte-in-frame": _zstd_flip,
    "cut-mid-frame": lambda d: d[: len(d) // 2],
    "cut-in-header": lambda d: d[:3],
}


@pytest.mark.parametrize("kind", sorted(ZSTD_DAMAGE))
def test_zstd_damage_is_refused_by_verify_and_restore(
    zstd_backup: Path, tmp_path: Path, kind: str, root_settings: ConnSettings, target: str
) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(zstd_backup, backup)
    name = data_file_names(backup)[0]
    assert name.endswith(".zst")
    (backup / name).write_bytes(ZSTD_DAMAGE[kind]((backup / name).read_bytes()))
    out = _clean_failure(run_cli("verify", "--offline", "-q", str(backup)), 8)
    assert name in out
    res = run_cli("restore", str(backup), *conn_args(root_settings), "-d", target, "-q")
    assert name in _clean_failure(res, 8)
    assert target not in databases(root_settings)


# -- a path with no backup at all is "not found", not a damaged backup --------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--offline"],
        ["export", "-o", "{tmp}/out"],
        ["check-files", "--moodledata", "{tmp}"],
    ],
)
def test_a_path_that_does_not_exist_exits_5_naming_it(tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "no-backup-here"
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = _clean_failure(run_cli(*args, str(missing)), 5)
    assert str(missing) in out and "does not exist" in out


# -- damage behind a recomputed sha256: the file checks pass, the content does not -----------------
def _recompute(backup: Path, name: str, data: bytes) -> None:
    (backup / name).write_bytes(data)
    path = backup / "manifest.json"
    m = json.loads(path.read_text(encoding="utf-8"))
    for f in m["files"]:
        if f["name"] == name:
            f["bytes"] = len(data)
            f["sha256"] = hashlib.sha256(data).hexdigest()
    path.write_text(json.dumps(m), encoding="utf-8")


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'{"kind": "view"}', b'[{"kind": "view", "name": 3}]']
)
def test_objects_json_damaged_behind_its_sha256_exits_8_before_the_target_is_touched(
    small: Source, tmp_path: Path, root_settings: ConnSettings, target: str, content: bytes
) -> None:
    backup = copy_backup(small, tmp_path / "backup")
    _recompute(backup, "objects.json", content)
    out = _clean_failure(run_cli("verify", "--offline", "-q", str(backup)), 8)
    assert "objects.json" in out
    res = run_cli("restore", str(backup), *conn_args(root_settings), "-d", target, "-q")
    assert "objects.json" in _clean_failure(res, 8)
    assert target not in databases(root_settings)


def _stage_leftovers(settings: ConnSettings, target: str) -> set[str]:
    return {d for d in databases(settings) if d.startswith(target)}


@pytest.mark.parametrize("atomic", [False, True], ids=["plain", "atomic"])
def test_invalid_schema_behind_its_sha256_leaves_no_new_target(
    small: Source, tmp_path: Path, root_settings: ConnSettings, target: str, atomic: bool
) -> None:
    """Exit 6 left the target database the restore had created (and --atomic, whose
    target is never half-restored, too). Nothing was loaded: --resume has nothing to
    continue, so nothing of a database that did not exist before remains."""
    backup = copy_backup(small, tmp_path / "backup")
    m = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    schema = next(f["name"] for f in m["files"] if f["name"].startswith("schema/"))
    _recompute(backup, schema, b"CREATE TABLE broken ((;")
    extra = ["--atomic"] if atomic else []
    res = run_cli("restore", str(backup), *conn_args(root_settings), "-d", target, "-q", *extra)
    _clean_failure(res, 6)
    assert _stage_leftovers(root_settings, target) == set()


@pytest.mark.parametrize("atomic", [False, True], ids=["plain", "atomic"])
def test_failure_after_the_data_keeps_a_new_target_only_for_resume(
    small: Source, tmp_path: Path, root_settings: ConnSettings, target: str, atomic: bool
) -> None:
    """A trigger that fails after every data file is loaded: a plain restore keeps the
    new target (its progress table) for --resume and says so; --atomic leaves nothing."""
    backup = copy_backup(small, tmp_path / "backup")
    m = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    name = m["objects"]["definitions"]
    records = json.loads((backup / name).read_text(encoding="utf-8"))
    for r in records:
        if r["kind"] == "trigger":
            r["create_b64"] = base64.b64encode(b"CREATE TRIGGER broken ((").decode()
    _recompute(backup, name, json.dumps(records).encode())
    extra = ["--atomic"] if atomic else []
    res = run_cli("restore", str(backup), *conn_args(root_settings), "-d", target, "-q", *extra)
    out = _clean_failure(res)
    if atomic:
        assert _stage_leftovers(root_settings, target) == set()
    else:
        assert _stage_leftovers(root_settings, target) == {target}
        assert "--resume" in out
