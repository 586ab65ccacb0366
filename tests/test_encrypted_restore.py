"""Restore and verify of an encrypted backup: the key is checked before the target is
touched, every file is decrypted as it streams, and the result equals the source."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyrage import x25519

from dbcompare import compare_databases
from helpers import moodump_cli
from moodump.crypto import encrypt_backup_dir, load_identities, parse_recipients
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.dump import DumpOptions, dump
from moodump.errors import DecryptionError, IntegrityError
from moodump.restore import restore
from moodump.verify import verify

pytestmark = pytest.mark.db


def _key(directory: Path, name: str) -> tuple[Path, str]:
    native = x25519.Identity.generate()
    path = directory / f"{name}.txt"
    path.write_text(f"# test key\n{native}\n")
    return path, str(native.to_public())


@pytest.fixture(scope="module")
def encrypted(root_settings: ConnSettings, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("enc")
    db = "enc_src"
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {db}")
        c.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
        c.execute(f"USE {db}")
        c.execute("CREATE TABLE t (id INT PRIMARY KEY, secret VARCHAR(64), b BLOB)")
        c.execute(
            "INSERT INTO t SELECT seq, CONCAT('grade-', seq), UNHEX(SHA2(seq, 256)) "
            "FROM seq_1_to_5000"
        )
        c.execute("CREATE VIEW v AS SELECT id FROM t WHERE id < 10")
    plain = work / "plain"
    dump(root_settings, db, plain, DumpOptions(threads=2))
    key_path, public = _key(work, "ops")
    other_path, _ = _key(work, "other")
    enc = work / "encrypted"
    encrypt_backup_dir(plain, enc, parse_recipients(public))
    return {"db": db, "enc": enc, "key": key_path, "other": other_path, "public": public}


def _drop(settings: ConnSettings, name: str) -> None:
    with connect(settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def test_restore_with_the_identity_equals_the_source(root_settings, encrypted) -> None:
    target = "enc_restored"
    _drop(root_settings, target)
    res = restore(
        encrypted["enc"], root_settings, target, identities=load_identities(encrypted["key"])
    )
    assert res.rows == 5000
    with connect(root_settings) as c:
        assert compare_databases(c, encrypted["db"], target) == []
    _drop(root_settings, target)


@pytest.mark.parametrize("which", ["none", "other"])
def test_without_the_right_key_nothing_is_touched(root_settings, encrypted, which) -> None:
    target = f"enc_untouched_{which}"
    _drop(root_settings, target)
    ids = [] if which == "none" else load_identities(encrypted["other"])
    with pytest.raises(DecryptionError) as err:
        restore(encrypted["enc"], root_settings, target, identities=ids)
    assert err.value.exit_code == 13
    assert encrypted["public"] in str(err.value)
    with connect(root_settings) as c:
        q = f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{target}'"
        assert int(c.scalar(q)) == 0


def test_cli_restore_exit_13_then_works_with_identity(root_settings, encrypted) -> None:
    target = "enc_cli"
    _drop(root_settings, target)
    conn = ["-H", "127.0.0.1", "-P", str(root_settings.port), "-u", "root"]
    res = moodump_cli("restore", str(encrypted["enc"]), *conn, "-d", target, "-q")
    assert res.returncode == 13, res.stderr
    assert "encrypted" in res.stderr and "--identity" in res.stderr
    res = moodump_cli(
        "restore", str(encrypted["enc"]), *conn, "-d", target, "-q",
        "--identity", str(encrypted["key"]),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    _drop(root_settings, target)


def test_verify_offline_without_a_key_checks_the_ciphertext(encrypted) -> None:
    report = verify(encrypted["enc"])
    assert report.passed and report.method == "ciphertext"
    report = verify(encrypted["enc"], identities=load_identities(encrypted["key"]))
    assert report.passed and report.method == "offline" and report.rows_checked == 5000


def test_verify_by_restore_with_the_identity(root_settings, encrypted) -> None:
    report = verify(
        encrypted["enc"], settings=root_settings, identities=load_identities(encrypted["key"])
    )
    assert report.passed, report.problems
    assert report.rows_checked == 5000


def test_a_damaged_encrypted_file_fails_restore_and_verify(
    root_settings, encrypted, tmp_path
) -> None:
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(encrypted["enc"], copy)
    victim = sorted(copy.glob("data/*.age"))[0]  # the table's data file
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    ids = load_identities(encrypted["key"])
    report = verify(copy)
    assert not report.passed and victim.name in " ".join(report.problems)
    target = "enc_damaged"
    _drop(root_settings, target)
    with pytest.raises(IntegrityError):
        restore(copy, root_settings, target, identities=ids)
    _drop(root_settings, target)


def test_an_unreadable_encrypted_json_is_named_not_taken_for_a_plain_backup(encrypted) -> None:
    """encrypted.json that cannot be read (its mode, an NFS hiccup) is a storage problem
    to name; the backup was read as a plain one instead, whose missing manifest.json
    called a good backup damaged (exit code 8)."""
    from moodump.crypto import ENCRYPTED_MANIFEST_NAME
    from moodump.errors import StorageError
    from moodump.source import LocalSource, as_source

    class Unreadable(LocalSource):
        def open(self, name: str):  # type: ignore[no-untyped-def]
            if name == ENCRYPTED_MANIFEST_NAME:
                raise StorageError(
                    f"cannot read {self.root / name}: Permission denied",
                    hint="check the file's permissions",
                )
            return super().open(name)

    ids = load_identities(encrypted["key"])
    with pytest.raises(StorageError, match=r"encrypted\.json: Permission denied"):
        as_source(Unreadable(encrypted["enc"]), ids)
    with pytest.raises(StorageError, match=r"encrypted\.json: Permission denied"):
        verify(Unreadable(encrypted["enc"]))
