"""Signed backups: an Ed25519 signature over the exact bytes of ``manifest.json``.

The manifest lists every file's size and sha256, so a signature over its bytes covers
the whole backup. The dump writes ``manifest.sig`` right after the manifest
(``MOODUMP_SIGNING_KEY``); restore and verify with ``MOODUMP_VERIFY_KEY`` /
``--verify-key`` refuse a backup that is unsigned, signed by another key, or whose
manifest no longer matches its signature, before anything else reads the manifest.

``manifest.sig`` (format ``moodump-sig/1``) holds no secret::

    {"format": "moodump-sig/1", "algorithm": "ed25519",
     "key": "SHA256:<base64 of the public key's sha256>", "signature": "<base64>"}

An encrypted backup keeps it in plaintext beside ``encrypted.json``; it signs the inner
(decrypted) manifest and is checked after decryption (docs/format.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from moodump.errors import ConfigError, IntegrityError
from moodump.fsmodes import write_bytes
from moodump.manifest import MANIFEST_NAME

SIGNATURE_NAME = "manifest.sig"
SIGNATURE_FORMAT = "moodump-sig/1"
ALGORITHM = "ed25519"
#: A signature file is ~200 bytes; anything much larger is not one.
MAX_SIGNATURE_BYTES = 64 << 10

_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)
_SIGN_HINT = (
    "MOODUMP_SIGNING_KEY must be an Ed25519 private key in PEM (openssl genpkey -algorithm ed25519)"
)
_VERIFY_HINT = (
    "MOODUMP_VERIFY_KEY / --verify-key: Ed25519 public keys in PEM or 'ssh-ed25519 ...' "
    "lines, or a file of them"
)


def fingerprint(public: Ed25519PublicKey) -> str:
    """``SHA256:...`` of the raw public key, as ``ssh-keygen -l`` shows an ssh key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True, repr=False)
class SigningKey:
    """A private signing key. Its ``repr`` shows only the public fingerprint."""

    private: Ed25519PrivateKey
    fingerprint: str

    def __repr__(self) -> str:
        return f"SigningKey({self.fingerprint})"


@dataclass(frozen=True)
class VerifyKey:
    """A public key that backups may be signed with."""

    public: Ed25519PublicKey
    fingerprint: str


def load_signing_key(pem: str | bytes) -> SigningKey:
    """The Ed25519 private key of a PEM text (unencrypted PKCS#8 or OpenSSH).

    Errors never quote the key."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    key: object
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            "MOODUMP_SIGNING_KEY is not a readable unencrypted private key", hint=_SIGN_HINT
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("MOODUMP_SIGNING_KEY is not an Ed25519 key", hint=_SIGN_HINT)
    return SigningKey(key, fingerprint(key.public_key()))


def signing_key_from_setting(value: str) -> SigningKey:
    """The key of ``MOODUMP_SIGNING_KEY``: the PEM text itself, or the path of its file."""
    if "-----BEGIN" in value:
        return load_signing_key(value)
    try:
        data = Path(value.strip()).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the MOODUMP_SIGNING_KEY file: {exc.strerror}", hint=_SIGN_HINT
        ) from None
    return load_signing_key(data)


def parse_verify_keys(text: str | bytes, *, where: str = "MOODUMP_VERIFY_KEY") -> list[VerifyKey]:
    """Every Ed25519 public key in ``text``: PEM blocks and ``ssh-ed25519`` lines."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    keys: list[object] = []
    try:
        for block in _PEM_BLOCK.findall(data):
            keys.append(serialization.load_pem_public_key(block))
        rest = _PEM_BLOCK.sub(b"", data)
        for line in rest.splitlines():
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            if not line.startswith(b"ssh-ed25519 "):
                raise ValueError("not a key line")
            keys.append(serialization.load_ssh_public_key(b" ".join(line.split()[:2])))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{where} holds something that is not a public key", hint=_VERIFY_HINT
        ) from None
    out: list[VerifyKey] = []
    for k in keys:
        if not isinstance(k, Ed25519PublicKey):
            raise ConfigError(f"{where} holds a public key that is not Ed25519", hint=_VERIFY_HINT)
        out.append(VerifyKey(k, fingerprint(k)))
    if not out:
        raise ConfigError(f"{where} holds no public key", hint=_VERIFY_HINT)
    return out


def load_verify_keys(value: str | Path, *, where: str = "MOODUMP_VERIFY_KEY") -> list[VerifyKey]:
    """Keys from ``value``: the path of a file of keys, or the keys themselves."""
    text = str(value)
    if "\n" not in text and "-----" not in text and not text.startswith("ssh-"):
        path = Path(text)
        try:
            return parse_verify_keys(path.read_bytes(), where=str(path))
        except OSError as exc:
            raise ConfigError(
                f"cannot read verify key file {path}: {exc.strerror}", hint=_VERIFY_HINT
            ) from exc
    return parse_verify_keys(text, where=where)


def sign_manifest(manifest_raw: bytes, key: SigningKey) -> bytes:
    """The ``manifest.sig`` bytes for these exact manifest bytes."""
    sig = key.private.sign(manifest_raw)
    doc = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "key": key.fingerprint,
        "signature": base64.b64encode(sig).decode("ascii"),
    }
    return (json.dumps(doc, indent=1) + "\n").encode("utf-8")


def write_signature(backup_dir: Path, key: SigningKey) -> Path:
    """Sign ``backup_dir/manifest.json`` into ``backup_dir/manifest.sig`` (synced)."""
    raw = (backup_dir / MANIFEST_NAME).read_bytes()
    path = backup_dir / SIGNATURE_NAME
    write_bytes(path, sign_manifest(raw, key), fsync=True)  # private mode, like the rest
    return path


def check_signature(
    manifest_raw: bytes,
    signature_raw: bytes | None,
    keys: Sequence[VerifyKey],
    *,
    where: str,
) -> VerifyKey:
    """The key that signed ``manifest_raw``; IntegrityError when the signature is
    missing, made by none of ``keys``, or does not match these bytes."""
    hint = "do not restore this backup unless you know where it came from"
    if signature_raw is None:
        raise IntegrityError(
            f"{where} is not signed (no {SIGNATURE_NAME}), and a verify key is set",
            hint=hint,
        )
    if len(signature_raw) > MAX_SIGNATURE_BYTES:
        raise IntegrityError(f"{where}/{SIGNATURE_NAME} is too large to be a signature", hint=hint)
    try:
        doc = json.loads(signature_raw.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        fmt, algo, fp, sig_b64 = (doc.get(k) for k in ("format", "algorithm", "key", "signature"))
        if fmt != SIGNATURE_FORMAT or not isinstance(fp, str) or not isinstance(sig_b64, str):
            raise ValueError("unexpected fields")
        sig = base64.b64decode(sig_b64, validate=True)
    except (ValueError, binascii.Error):
        raise IntegrityError(
            f"{where}/{SIGNATURE_NAME} is not a moodump signature", hint=hint
        ) from None
    if algo != ALGORITHM:
        raise IntegrityError(
            f"{where}/{SIGNATURE_NAME} uses algorithm {str(algo)[:40]!r}, not {ALGORITHM}",
            hint=hint,
        )
    matching = [k for k in keys if k.fingerprint == fp]
    if not matching:
        raise IntegrityError(
            f"{where} is signed by key {fp[:60]}, which is not a verify key "
            f"(expected {', '.join(k.fingerprint for k in keys)})",
            hint=hint,
        )
    for k in matching:
        try:
            k.public.verify(sig, manifest_raw)
            return k
        except InvalidSignature:
            continue
    raise IntegrityError(
        f"the signature of {where} does not match its {MANIFEST_NAME} "
        "(the manifest was changed after it was signed)",
        hint=hint,
    )
