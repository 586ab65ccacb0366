"""Public keys to encrypt to (recipients) and private keys to decrypt with (identities).

Both are parsed here, once, into small wrappers around pyrage's key objects, so that
the rest of moodump never handles raw key text and never prints a private key:
:class:`Identity` has no text form of its secret at all (pyrage's ``str()`` of an X25519
identity *is* the secret key), and every secret line read from an identity file is
registered with :func:`moodump.logs.register_secret` before anything else happens to it.

Supported, as in age: X25519 recipients (``age1…``) and identities
(``AGE-SECRET-KEY-1…``), and unencrypted OpenSSH ``ssh-ed25519``/``ssh-rsa`` keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from pyrage import ssh, x25519

from moodump.errors import ConfigError
from moodump.logs import register_secret

ENV_RECIPIENTS = "MOODUMP_ENCRYPT_RECIPIENTS"
ENV_IDENTITY_FILE = "MOODUMP_IDENTITY_FILE"

SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")

_GOOD_RECIPIENT = (
    "an age public key (age1… as printed by `age-keygen -y KEYFILE`) or an OpenSSH public "
    "key line (ssh-ed25519 AAAA… / ssh-rsa AAAA…), separated by commas or newlines, or the "
    "path of a file with one per line"
)
_OPENSSH_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----"
_BOM = b"\xef\xbb\xbf"
_KEY_STARTS = ("age1", "ssh-", "age-secret-key-")
_PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


@dataclass(frozen=True)
class Recipient:
    """A public key a backup is encrypted to.

    ``key`` is the canonical text: ``age1…`` or ``ssh-TYPE BASE64`` without the ssh
    comment (which often carries a person's e-mail address and is not needed to encrypt).
    It is what ``encrypted.json`` records, so it must stay public-only.
    """

    key: str
    _native: Any = field(compare=False, repr=False, hash=False)

    @property
    def kind(self) -> str:
        """``X25519``, ``ssh-ed25519`` or ``ssh-rsa``."""
        return "X25519" if self.key.startswith("age1") else self.key.split(" ", 1)[0]

    @property
    def label(self) -> str:
        """How people recognise the key: the ``age1…`` text, or ssh's SHA256 fingerprint."""
        if self.kind == "X25519":
            return self.key
        return f"{self.kind} {ssh_fingerprint(self.key)}"

    @classmethod
    def from_key(cls, key: str) -> Recipient:
        """Parse one canonical key; ConfigError (naming it) when it is not a valid one."""
        return _parse_one(key, where="recipient")


class Identity:
    """A private key (age X25519 or unencrypted OpenSSH) loaded from ``source``.

    ``public`` is the matching recipient key when it can be derived (always for age
    keys; for ssh keys from the key file's public part), so errors can say *which* key
    was tried. There is deliberately no way to get the secret back out.
    """

    __slots__ = ("_native", "public", "source")

    def __init__(self, native: Any, public: str | None, source: str) -> None:
        self._native = native
        self.public = public
        self.source = source

    @property
    def label(self) -> str:
        """The public key (or ssh fingerprint) and the file it came from; never the secret."""
        if self.public is None:
            return f"ssh key from {self.source}"
        if self.public.startswith("age1"):
            return f"{self.public} (from {self.source})"
        kind = self.public.split(" ", 1)[0]
        return f"{kind} {ssh_fingerprint(self.public)} (from {self.source})"

    def __repr__(self) -> str:
        return f"Identity({self.label})"

    def __reduce__(self) -> Any:
        # Pickling would copy the secret into wherever pickles go (multiprocessing, caches).
        raise TypeError("a moodump Identity cannot be pickled")


def native_recipients(recipients: Iterable[Recipient]) -> list[Any]:
    """The pyrage objects behind ``recipients`` (for pyrage's encrypt functions)."""
    return [r._native for r in recipients]


def native_identities(identities: Iterable[Identity]) -> list[Any]:
    """The pyrage objects behind ``identities`` (for pyrage's decrypt functions)."""
    return [i._native for i in identities]


def ssh_fingerprint(key: str) -> str:
    """``SHA256:…`` of an OpenSSH public key line, as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_recipients(value: str | os.PathLike[str]) -> list[Recipient]:
    """Recipients from ``MOODUMP_ENCRYPT_RECIPIENTS`` (or ``--recipient``) text, or a file.

    ``value`` is either the keys themselves or the path of a file of them (one per line,
    blank lines and lines starting with ``#`` ignored, as age's ``-R``). A ``PathLike``
    is always a file; a string is a file when it names one, or when it is a single
    word starting with ``/``, ``./`` or ``~`` (then a missing file is an error, not a
    bad key).

    In the text, entries are separated by commas or newlines. An entry that starts with
    ``ssh-`` is one OpenSSH public key line (type, key, optional comment); any other
    entry may hold several ``age1…`` keys separated by spaces. Duplicates are dropped,
    order is kept. Raises ConfigError naming the first bad entry (never echoing
    something that looks like a private key).
    """
    if isinstance(value, os.PathLike):
        return _parse_text(_read_recipients_file(Path(value)), where=os.fspath(value))
    text = value.strip()
    if text and not re.search(r"[\s,]", text):
        expanded = Path(text).expanduser()
        if expanded.is_file():
            return _parse_text(_read_recipients_file(expanded), where=text)
        if text.startswith(("/", "./", "../", "~")):
            raise ConfigError(
                f"recipients file {text} does not exist",
                hint=f"set {ENV_RECIPIENTS} to {_GOOD_RECIPIENT}",
            )
    return _parse_text(value, where=ENV_RECIPIENTS)


def _read_recipients_file(path: Path) -> str:
    try:
        # utf-8-sig: an editor's byte order mark (Windows) is not part of the first key
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read recipients file {path}: {getattr(exc, 'strerror', None) or exc}",
            hint="check the path and permissions",
        ) from exc


def _parse_text(text: str, *, where: str) -> list[Recipient]:
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    if any(_OPENSSH_PRIVATE in ln or _PEM_PRIVATE.search(ln) for ln in lines):
        raise ConfigError(
            f"{where} holds a private key block; recipients are public keys",
            hint=f"use the .pub file of the key instead; expected {_GOOD_RECIPIENT}",
        )
    result: list[Recipient] = []
    entries: list[str] = []
    for line in lines:
        in_ssh_line = False
        for entry in line.split(","):
            word = entry.strip()
            if in_ssh_line and word and not word.lower().startswith(_KEY_STARTS):
                # the rest of an ssh key's comment, which may hold commas (ssh-keygen -C)
                entries.append("")
                continue
            in_ssh_line = in_ssh_line or word.startswith("ssh-")
            entries.append(entry)
    for n, entry in enumerate(entries, 1):
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("ssh-"):
            keys = [" ".join(entry.split()[:2])]
        else:
            keys = entry.split()
            if any(k.startswith("ssh-") for k in keys):
                raise ConfigError(
                    f"{where}: entry {n} mixes an ssh key with other keys on one line: "
                    f"{_shorten(entry)!r}",
                    hint="put each ssh key on its own line or separate it with a comma",
                )
        for key in keys:
            r = _parse_one(key, where=f"{where}: entry {n}")
            if r not in result:
                result.append(r)
    if not result:
        raise ConfigError(f"{where} names no recipient", hint=f"give {_GOOD_RECIPIENT}")
    return result


def _parse_one(key: str, *, where: str) -> Recipient:
    if key.upper().startswith("AGE-SECRET-KEY-"):
        register_secret(key)
        raise ConfigError(
            f"{where} is a private key (AGE-SECRET-KEY-1…), not a public key; "
            "it was not echoed here",
            hint="recipients are public keys: print yours with `age-keygen -y KEYFILE` and "
            "keep the private key out of the backup job's environment",
        )
    try:
        if key.startswith("age1"):
            return Recipient(key, x25519.Recipient.from_str(key))
        if key.startswith("ssh-"):
            kind = key.split(" ", 1)[0]
            if kind not in SSH_KEY_TYPES:
                raise ConfigError(
                    f"{where}: ssh key type {kind} is not supported by age",
                    hint="use an ssh-ed25519 or ssh-rsa key, or an age key (age1… from age-keygen)",
                )
            return Recipient(key, ssh.Recipient.from_str(key))
    except pyrage.RecipientError as exc:
        raise ConfigError(
            f"{where} is not a valid public key: {_shorten(key)!r} ({exc})",
            hint=f"expected {_GOOD_RECIPIENT}",
        ) from None
    raise ConfigError(
        f"{where} is not a public key: {_shorten(key)!r}", hint=f"expected {_GOOD_RECIPIENT}"
    )


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_identities(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[Identity]:
    """Private keys from ``--identity FILE`` / ``MOODUMP_IDENTITY_FILE`` (one path or several).

    Each file is either an age identity file (``AGE-SECRET-KEY-1…`` lines; blank lines
    and ``#`` comments ignored; several keys allowed, as written by ``age-keygen``) or an
    unencrypted OpenSSH private key (ed25519 or RSA). Raises ConfigError naming the file
    and line, never its content. Every secret is registered for log redaction first.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result: list[Identity] = []
    for p in paths:
        result.extend(_load_identity_file(Path(p)))
    if not result:
        raise ConfigError(
            "no identity file given", hint=f"pass --identity FILE or set {ENV_IDENTITY_FILE}"
        )
    return result


def _load_identity_file(path: Path) -> list[Identity]:
    try:
        raw = path.expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read identity file {path}: {exc.strerror or exc}",
            hint=f"check --identity / {ENV_IDENTITY_FILE} and the file's permissions",
        ) from exc
    raw = raw.removeprefix(_BOM)  # an editor's byte order mark (Windows) is no part of a key
    text = raw.decode("utf-8", errors="replace")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-----")):
            register_secret(line)
    if _OPENSSH_PRIVATE in text or _PEM_PRIVATE.search(text):
        return [_load_ssh_identity(path, raw)]
    identities: list[Identity] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("AGE-SECRET-KEY-1"):
            what = "a public key" if line.startswith(("age1", "ssh-")) else "not an age identity"
            raise ConfigError(
                f"identity file {path}, line {lineno}: {what}",
                hint="an identity file holds private keys (AGE-SECRET-KEY-1… lines from "
                "age-keygen) or is an unencrypted OpenSSH private key",
            )
        try:
            native = x25519.Identity.from_str(line)
        except pyrage.IdentityError:
            raise ConfigError(
                f"identity file {path}, line {lineno}: not a valid age identity (damaged key?)",
                hint="compare it with the key's backup copy",
            ) from None
        identities.append(Identity(native, str(native.to_public()), str(path)))
    if not identities:
        raise ConfigError(
            f"identity file {path} holds no key",
            hint="an identity file holds AGE-SECRET-KEY-1… lines (age-keygen -o FILE)",
        )
    return identities


def _load_ssh_identity(path: Path, raw: bytes) -> Identity:
    try:
        native = ssh.Identity.from_buffer(raw)
    except pyrage.IdentityError as exc:
        if "decrypted" in str(exc):
            hint = (
                "passphrase-protected ssh keys are not supported: use an age identity "
                "(age-keygen) or a copy of the key without a passphrase (ssh-keygen -p)"
            )
        else:
            hint = "use an ssh-ed25519 or ssh-rsa key in OpenSSH format, or an age identity"
        raise ConfigError(f"cannot use ssh key {path}: {exc}", hint=hint) from None
    return Identity(native, _ssh_public_key(path, raw), str(path))


def _ssh_public_key(path: Path, raw: bytes) -> str | None:
    """The public key line of an OpenSSH private key, or None when it cannot be told.

    The ``openssh-key-v1`` container stores the public key in clear before the
    (possibly encrypted) private part; reading it is framing, not cryptography. Older
    PEM keys have no public part, so the ``.pub`` file beside them is tried.
    """
    try:
        body = "".join(
            ln.strip()
            for ln in raw.decode("ascii").splitlines()
            if ln.strip() and not ln.startswith("-----")
        )
        data = base64.b64decode(body)
        magic = b"openssh-key-v1\0"
        if data.startswith(magic):
            pos = len(magic)
            for _ in range(3):  # ciphername, kdfname, kdfoptions
                (n,) = struct.unpack(">I", data[pos : pos + 4])
                pos += 4 + n
            pos += 4  # number of keys
            (n,) = struct.unpack(">I", data[pos : pos + 4])
            blob = data[pos + 4 : pos + 4 + n]
            (tn,) = struct.unpack(">I", blob[:4])
            return f"{blob[4 : 4 + tn].decode('ascii')} {base64.b64encode(blob).decode()}"
    except (UnicodeDecodeError, binascii.Error, struct.error):
        pass
    pub = path.with_name(path.name + ".pub")
    try:
        parts = pub.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return None
    return " ".join(parts[:2]) if len(parts) >= 2 and parts[0] in SSH_KEY_TYPES else None
