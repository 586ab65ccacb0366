"""Signed backups (issue 18, point 4): ``manifest.sig`` proves where a backup came from.

An untouched signed backup passes verify and restore with the verify key; a data file
changed with its manifest checksum updated to match fails (the manifest no longer matches
its signature), as do an unsigned backup and one signed by another key, before the target
is touched; the private key never shows in logs or ``moodump config``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helpers_failures import (
    Source,
    cli_env,
    conn_args,
    copy_backup,
    data_file_names,
    databases,
    drop_database,
    rewrite_data_file,
    unique_db,
)
from moodump.crypto import (
    SIGNATURE_NAME,
    check_signature,
    load_signing_key,
    load_verify_keys,
    parse_verify_keys,
    write_signature,
)
from moodump.db import ConnSettings
from moodump.errors import ConfigError, IntegrityError
from moodump.manifest import MANIFEST_NAME
from moodump.verify import verify


def _keypair(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """(private PEM, public PEM, public OpenSSH) files of a new Ed25519 key."""
    key = Ed25519PrivateKey.generate()
    priv = tmp / f"{name}.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub = tmp / f"{name}.pub.pem"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ssh = tmp / f"{name}.pub"
    ssh.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b" ops@example\n"
    )
    return priv, pub, ssh


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, Path]:
    priv, pub, ssh = _keypair(tmp_path, "signer")
    other_priv, other_pub, _ = _keypair(tmp_path, "other")
    return {"priv": priv, "pub": pub, "ssh": ssh, "other_priv": other_priv, "other_pub": other_pub}


def _run(
    *args: str, env: dict[str, str] | None = None, password: str = ""
) -> subprocess.CompletedProcess[str]:
    full = cli_env(password)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "moodump", *args],
        env=full,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


# -- pure: the signature file -------------------------------------------------------------------
def test_signature_covers_the_exact_manifest_bytes(keys: dict[str, Path]) -> None:
    from moodump.crypto import sign_manifest

    sk = load_signing_key(keys["priv"].read_bytes())
    raw = b'{"format": "moodump/1"}\n'
    sig = sign_manifest(raw, sk)
    doc = json.loads(sig)
    assert doc["algorithm"] == "ed25519" and doc["key"] == sk.fingerprint
    assert doc["format"] == "moodump-sig/1"
    for pub in ("pub", "ssh"):
        (vk,) = load_verify_keys(keys[pub])
        assert check_signature(raw, sig, [vk], where="b").fingerprint == sk.fingerprint
    (vk,) = load_verify_keys(keys["pub"])
    with pytest.raises(IntegrityError, match="does not match"):
        check_signature(raw + b" ", sig, [vk], where="b")
    with pytest.raises(IntegrityError, match="not signed"):
        check_signature(raw, None, [vk], where="b")
    (other,) = load_verify_keys(keys["other_pub"])
    with pytest.raises(IntegrityError, match="not a verify key"):
        check_signature(raw, sig, [other], where="b")
    # several keys: any one of them
    assert check_signature(raw, sig, [other, vk], where="b") == vk
    for junk in (b"", b"[]", b"{}", b'{"format":"moodump-sig/1","key":"x","signature":"!!"}'):
        with pytest.raises(IntegrityError):
            check_signature(raw, junk, [vk], where="b")


def test_key_parsers_refuse_wrong_keys_without_quoting_them(keys: dict[str, Path]) -> None:
    text = keys["pub"].read_text() + keys["ssh"].read_text().replace("signer", "x")
    assert len(parse_verify_keys(text)) == 2
    with pytest.raises(ConfigError):
        parse_verify_keys("ssh-rsa AAAAB3NzaC1yc2E something")
    with pytest.raises(ConfigError) as exc:
        load_signing_key(keys["priv"].read_text().replace("A", "B"))
    assert "PRIVATE" not in str(exc.value)
    assert "SigningKey(SHA256:" in repr(load_signing_key(keys["priv"].read_bytes()))


def test_private_key_never_in_moodump_config(keys: dict[str, Path], tmp_path: Path) -> None:
    pem = keys["priv"].read_text()
    body = pem.splitlines()[1]
    conf = tmp_path / "backup.conf"
    conf.write_text("mysql/moodle\n", encoding="utf-8")
    for env in ({"MOODUMP_SIGNING_KEY": pem}, {"MOODUMP_SIGNING_KEY_FILE": str(keys["priv"])}):
        for extra in ((), ("--json",)):
            res = _run("config", *extra, env={**env, "BACKUP_CONF": str(conf)})
            out = res.stdout + res.stderr
            assert res.returncode == 0, out
            assert body not in out and "PRIVATE KEY" not in out, out
            assert "MOODUMP_SIGNING_KEY" in out or "signing_key" in out


# -- with a server: dump signs, verify and restore check ------------------------------------------
@pytest.fixture()
def signed(small: Source, tmp_path: Path, keys: dict[str, Path]) -> Path:
    """A backup dumped with MOODUMP_SIGNING_KEY_FILE (the dump signs it), with --log-level debug."""
    out = tmp_path / "signed"
    res = _run(
        "--log-level", "debug", "dump", *conn_args(small.settings), "-q", "-o", str(out),
        small.database,
        env={"MOODUMP_SIGNING_KEY_FILE": str(keys["priv"])},
        password=small.settings.password,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "PRIVATE KEY" not in res.stdout + res.stderr
    assert keys["priv"].read_text().splitlines()[1] not in res.stdout + res.stderr
    return out


@pytest.fixture()
def target(root_settings: ConnSettings):  # type: ignore[no-untyped-def]
    name = unique_db("mds")
    yield name
    drop_database(root_settings, name)


def _verify_cli(backup: Path, key: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run("verify", "--offline", "--verify-key", str(key), *extra, str(backup))


def test_signed_backup_passes_verify_and_restore(
    signed: Path, keys: dict[str, Path], root_settings: ConnSettings, target: str
) -> None:
    doc = json.loads((signed / SIGNATURE_NAME).read_text())
    assert doc["key"] == load_verify_keys(keys["pub"])[0].fingerprint
    res = _verify_cli(signed, keys["ssh"])
    assert res.returncode == 0, res.stdout + res.stderr
    # the default comes from MOODUMP_VERIFY_KEY (a file, or the keys themselves)
    res = _run(
        "verify", "--offline", str(signed), env={"MOODUMP_VERIFY_KEY": keys["pub"].read_text()}
    )
    assert res.returncode == 0, res.stdout + res.stderr
    res = _run(
        "restore", str(signed), *conn_args(root_settings), "-q", "-d", target,
        env={"MOODUMP_VERIFY_KEY_FILE": str(keys["pub"])},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert target in databases(root_settings)


def test_changed_data_with_updated_checksum_fails_signature(
    signed: Path, keys: dict[str, Path], root_settings: ConnSettings, target: str
) -> None:
    name = data_file_names(signed)[0]
    rewrite_data_file(signed, name, lambda rows: rows)  # same rows, new file bytes + sha256
    # without a key the (consistent) backup still passes: only the signature catches it
    assert verify(signed, record=False).passed
    res = _verify_cli(signed, keys["pub"])
    assert res.returncode == 8, res.stdout + res.stderr
    assert "does not match its manifest.json" in res.stderr
    res = _run("restore", str(signed), *conn_args(root_settings), "-q", "-d", target,
               "--verify-key", str(keys["pub"]))  # fmt: skip
    assert res.returncode == 8, res.stderr
    assert "signature" in res.stderr
    assert target not in databases(root_settings)


def test_unsigned_backup_fails_when_a_key_is_set(
    small: Source, tmp_path: Path, keys: dict[str, Path], root_settings: ConnSettings, target: str
) -> None:
    backup = copy_backup(small, tmp_path / "unsigned")
    res = _verify_cli(backup, keys["pub"])
    assert res.returncode == 8 and "not signed" in res.stderr, res.stderr
    res = _run("restore", str(backup), *conn_args(root_settings), "-q", "-d", target,
               "--verify-key", str(keys["pub"]))  # fmt: skip
    assert res.returncode == 8 and "not signed" in res.stderr, res.stderr
    assert target not in databases(root_settings)


def test_backup_signed_by_another_key_fails(
    small: Source, tmp_path: Path, keys: dict[str, Path], root_settings: ConnSettings, target: str
) -> None:
    backup = copy_backup(small, tmp_path / "forged")
    write_signature(backup, load_signing_key(keys["other_priv"].read_bytes()))
    res = _verify_cli(backup, keys["pub"])
    assert res.returncode == 8 and "not a verify key" in res.stderr, res.stderr
    res = _run("restore", str(backup), *conn_args(root_settings), "-q", "-d", target,
               "--verify-key", str(keys["pub"]))  # fmt: skip
    assert res.returncode == 8 and "not a verify key" in res.stderr, res.stderr
    assert target not in databases(root_settings)
    # the other key's holder verifies it fine
    assert verify(backup, record=False, verify_keys=load_verify_keys(keys["other_pub"])).passed


def test_signature_travels_with_encryption(
    signed: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    pyrage = pytest.importorskip("pyrage")
    from moodump.crypto import decrypt_backup_dir, encrypt_backup_dir, parse_recipients
    from moodump.crypto.keys import load_identities

    ident = pyrage.x25519.Identity.generate()
    id_file = tmp_path / "id.txt"
    id_file.write_text(str(ident) + "\n")
    enc = tmp_path / "enc"
    encrypt_backup_dir(signed, enc, parse_recipients(str(ident.to_public())))
    assert (enc / SIGNATURE_NAME).read_bytes() == (signed / SIGNATURE_NAME).read_bytes()
    identities = load_identities([id_file])
    vk = load_verify_keys(keys["pub"])
    assert verify(enc, identities=identities, verify_keys=vk, record=False).passed
    # key-less ciphertext check: the signature cannot be checked, and it says so
    rep = verify(enc, verify_keys=vk, record=False)
    assert rep.passed and any("signature" in n for n in rep.notes)
    with pytest.raises(IntegrityError, match="not a verify key"):
        verify(enc, identities=identities, record=False,
               verify_keys=load_verify_keys(keys["other_pub"]))  # fmt: skip
    dec = tmp_path / "dec"
    decrypt_backup_dir(enc, dec, identities)
    assert (dec / MANIFEST_NAME).read_bytes() == (signed / MANIFEST_NAME).read_bytes()
    assert verify(dec, verify_keys=vk, record=False).passed
    # without its manifest.sig the encrypted backup is unsigned
    os.remove(enc / SIGNATURE_NAME)
    with pytest.raises(IntegrityError, match="not signed"):
        verify(enc, identities=identities, verify_keys=vk, record=False)


def test_signed_backup_goes_off_site_and_is_checked_there(
    signed: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    from moodump.offsite.remote import list_backups, recheck, upload
    from moodump.offsite.source import RemoteSource
    from moodump.storage import LocalBackend

    backend = LocalBackend(tmp_path / "bucket", create=True)
    upload(backend, signed)
    name = signed.name
    assert (tmp_path / "bucket" / name / SIGNATURE_NAME).is_file()
    # recheck raises StorageError when a file differs; against the local copy it
    # includes manifest.sig
    assert recheck(backend, name, signed).files == recheck(backend, name).files + 2
    assert [b.name for b in list_backups(backend)] == [name]
    vk = load_verify_keys(keys["pub"])
    assert verify(RemoteSource(backend, name), verify_keys=vk).passed
    (tmp_path / "bucket" / name / SIGNATURE_NAME).unlink()
    with pytest.raises(IntegrityError, match="not signed"):
        verify(RemoteSource(backend, name), verify_keys=vk)


def test_signing_key_is_a_secret_redacted_from_logs(keys: dict[str, Path]) -> None:
    from moodump.config import load_config

    pem = keys["priv"].read_text()
    cfg = load_config({"MOODUMP_SIGNING_KEY": pem}, "mysql/moodle\n", "backup.conf")
    assert pem not in repr(cfg) and pem.splitlines()[1] not in repr(cfg)
    secrets = cfg.secret_values()
    assert pem in secrets and pem.splitlines()[1] in secrets
