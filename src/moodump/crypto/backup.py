"""Encrypted backup directories: the ``moodump-age/1`` format (see docs/encryption.md).

An encrypted backup is a directory beside (or instead of) a plain one::

    encrypted.json                  outer manifest, plaintext, written last
    manifest.json.age               the backup's own manifest.json, encrypted
    data/0001-mdl_user.00000.tsv.gz.age
    schema/0001-mdl_user.sql.age
    restore-with-mariadb.sh.age ...
    verify.json.age                 when the plain backup had one
    manifest.sig                    when the backup is signed: plaintext (no secret in
                                    it), the signature of the inner manifest.json

Every file ``X`` of the plain backup becomes ``X.age``, a standard age file that
``age -d`` decrypts. ``encrypted.json`` holds nothing sensitive: for every ``.age``
file its size and sha256 *as stored* (so transfers and offline checks need no key),
the recipients' public keys (so a failed decryption can say which key is needed),
and the dates listings and retention need. The inner manifest keeps everything else
(table and column names, row counts, content digests, the plaintext sha256s), and is
only read with a private key.

None of this authenticates who wrote a backup: anyone holding a recipient's *public*
key can make a backup that decrypts. The sha256s detect damage, not forgery; a signed
backup (:mod:`.signing`, ``manifest.sig``) is proof of origin.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import pyrage

from moodump import __version__
from moodump.compression import sha256_file, storage_error, sync_tree
from moodump.crypto.files import decrypt_file, encrypt_file
from moodump.crypto.hashing import HashingReader
from moodump.crypto.keys import Identity, Recipient, native_identities
from moodump.crypto.signing import SIGNATURE_NAME
from moodump.crypto.streams import open_decrypting, require_recipients
from moodump.errors import ConfigError, DecryptionError, IntegrityError, StorageError
from moodump.fsmodes import make_dir, write_bytes, write_text
from moodump.manifest import (
    MANIFEST_NAME,
    MAX_COUNT,
    MAX_FILES,
    MAX_MANIFEST_BYTES,
    STATUS_DONE,
    VERIFY_NAME,
    Manifest,
    NotARegularFile,
    check_relative_name,
    parse_manifest,
    read_done_manifest,
    read_small_file,
)

ENCRYPTED_FORMAT = "moodump-age/1"
ENCRYPTED_MANIFEST_NAME = "encrypted.json"
SUFFIX = ".age"
INNER_MANIFEST_NAME = MANIFEST_NAME + SUFFIX
AGE_FORMAT = "age-encryption.org/v1"

_ID_HINT = "pass one of their private keys with --identity FILE or MOODUMP_IDENTITY_FILE"


@dataclass
class EncryptedFile:
    """One ``.age`` file: ``bytes`` and ``sha256`` of the file as stored (ciphertext)."""

    name: str
    bytes: int
    sha256: str
    kind: str  # as in the inner manifest (schema/data/objects/script), or manifest/verify


@dataclass
class EncryptedManifest:
    """``encrypted.json``: what can be known about an encrypted backup without a key."""

    status: str = STATUS_DONE
    format: str = ENCRYPTED_FORMAT
    encryption: str = AGE_FORMAT
    tool_version: str = __version__
    encrypted_at: str = ""  # ISO 8601, UTC
    database: str = ""
    started_at: str = ""  # of the backup itself, copied from the inner manifest
    finished_at: str = ""
    recipients: list[str] = field(default_factory=list)  # age1… / "ssh-TYPE BASE64"
    files: list[EncryptedFile] = field(default_factory=list)  # manifest.json.age last

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def recipient_labels(self) -> list[str]:
        """The recipients as people recognise them (ssh keys by fingerprint)."""
        labels = []
        for key in self.recipients:
            try:
                labels.append(Recipient.from_key(key).label)
            except ConfigError:  # a damaged entry is still named
                labels.append(key)
        return labels

    def file(self, name: str) -> EncryptedFile:
        """The entry of ``name`` (the ``.age`` name); IntegrityError when not listed."""
        for f in self.files:
            if f.name == name:
                return f
        raise IntegrityError(
            f"{ENCRYPTED_MANIFEST_NAME} lists no file {name!r}",
            hint="the encrypted backup is damaged or incomplete; use another backup",
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(
        cls, text: str | bytes, *, where: str = ENCRYPTED_MANIFEST_NAME
    ) -> EncryptedManifest:
        """Parse ``encrypted.json``; IntegrityError when it is not one."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != ENCRYPTED_FORMAT:
                raise ValueError(f"format is not {ENCRYPTED_FORMAT}")
            files = [EncryptedFile(**f) for f in _file_records(data.pop("files", None), data)]
            known = set(cls.__dataclass_fields__)
            m = cls(**{k: v for k, v in data.items() if k in known}, files=files)
            _check_shape(m, where)
            return m
        except RecursionError:
            raise IntegrityError(
                f"{where} is nested too deeply to be a moodump encrypted-backup manifest",
                hint="the encrypted backup is damaged; use another backup",
            ) from None
        except (ValueError, TypeError) as exc:
            raise IntegrityError(
                f"{where} is not a moodump encrypted-backup manifest ({exc})",
                hint="the encrypted backup is damaged; use another backup",
            ) from exc


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _file_records(files: object, data: dict[str, Any]) -> list[dict[str, Any]]:
    """``files`` of ``encrypted.json``: a list of objects; a DONE one must have it (every
    encrypted.json moodump writes lists manifest.json.age at least)."""
    if files is None and data.get("status", STATUS_DONE) != STATUS_DONE:
        return []
    if not isinstance(files, list):
        raise ValueError("files is missing" if files is None else "files is not a list")
    if len(files) > MAX_FILES:
        raise ValueError(f"it lists {len(files)} files, more than the limit of {MAX_FILES}")
    if not all(isinstance(f, dict) for f in files):
        raise ValueError("an entry of files is not an object")
    return files


def _check_shape(m: EncryptedManifest, where: str) -> None:
    """ValueError unless every field of ``m`` has its type (a listing, retention and the
    restore trust them); IntegrityError for a file name outside the backup."""
    for attr in ("status", "encryption", "tool_version", "encrypted_at", "database",
                 "started_at", "finished_at"):  # fmt: skip
        if not isinstance(getattr(m, attr), str):
            raise ValueError(f"{attr} is not a string")
    if not isinstance(m.recipients, list) or not all(isinstance(r, str) for r in m.recipients):
        raise ValueError("recipients is not a list of strings")
    seen: set[str] = set()
    for f in m.files:
        if not isinstance(f.name, str):
            raise ValueError(f"file name {f.name!r:.80} is not a name")
        _check_name(f.name, where)
        try:
            check_relative_name(f.name, where)
        except IntegrityError as exc:
            raise ValueError(exc.message) from None
        if f.name in seen:
            raise ValueError(f"it lists {f.name!r:.200} twice")
        seen.add(f.name)
        if not isinstance(f.bytes, int) or isinstance(f.bytes, bool) or not 0 <= f.bytes <= MAX_COUNT:
            raise ValueError(f"the size of {f.name!r:.200} ({f.bytes!r:.40}) is not a count")
        if not isinstance(f.sha256, str) or not isinstance(f.kind, str):
            raise ValueError(f"the sha256 or kind of {f.name!r:.200} is not a string")
    if m.status == STATUS_DONE and INNER_MANIFEST_NAME not in seen:
        raise ValueError(f"it does not list {INNER_MANIFEST_NAME}")


def _check_name(name: str, where: str) -> None:
    """File names come from manifests: never let one point outside the backup directory."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name:
        raise IntegrityError(
            f"{where} names an unsafe file path {name!r}",
            hint="the backup was altered; do not use it",
        )


def is_encrypted_backup(path: Path | str) -> bool:
    """Whether ``path`` is an encrypted backup directory (has ``encrypted.json``)."""
    return (Path(path) / ENCRYPTED_MANIFEST_NAME).is_file()


def read_encrypted_manifest(backup_dir: Path | str) -> EncryptedManifest:
    """Load ``encrypted.json``; IntegrityError when missing, unreadable or not DONE."""
    path = Path(backup_dir) / ENCRYPTED_MANIFEST_NAME
    try:
        raw = read_small_file(path, MAX_MANIFEST_BYTES)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise IntegrityError(
                f"{path} is larger than {MAX_MANIFEST_BYTES >> 20} MiB: not a moodump "
                "encrypted-backup manifest",
                hint="the encrypted backup is damaged; use another backup",
            )
        text = raw.decode("utf-8")
    except FileNotFoundError as exc:
        raise IntegrityError(
            f"{backup_dir} has no {ENCRYPTED_MANIFEST_NAME}: it is not a finished encrypted backup",
            hint="an encryption that did not finish publishes nothing; use another backup",
        ) from exc
    except NotARegularFile as exc:
        raise IntegrityError(
            f"{exc}: not a moodump encrypted-backup manifest",
            hint="the encrypted backup is damaged; use another backup",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"cannot read {path}: {exc}", hint="check permissions") from exc
    m = EncryptedManifest.from_json(text, where=str(path))
    if m.status != STATUS_DONE:
        raise IntegrityError(
            f"{backup_dir} is not a complete encrypted backup (status {m.status})",
            hint="use the newest backup whose status is DONE (moodump list)",
        )
    return m


@dataclass
class CiphertextReport:
    """Result of :func:`verify_ciphertext`: problems are collected, not raised."""

    path: Path
    files_checked: int = 0
    bytes_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def verify_ciphertext(backup_dir: Path | str) -> CiphertextReport:
    """Check every ``.age`` file's size and sha256 against ``encrypted.json``; no key needed.

    What it proves: the files are the ones that were written (no damage in storage or
    transfer). Whether they decrypt, and to the right content, needs an identity
    (:func:`decrypt_backup_dir`, or a restore). Raises IntegrityError only when
    ``encrypted.json`` itself is missing or unreadable.
    """
    src = Path(backup_dir)
    em = read_encrypted_manifest(src)
    report = CiphertextReport(src)
    if not any(f.name == INNER_MANIFEST_NAME for f in em.files):
        report.problems.append(f"{ENCRYPTED_MANIFEST_NAME} does not list {INNER_MANIFEST_NAME}")
    for f in em.files:
        p = src / f.name
        try:
            size, sha = sha256_file(p)
        except FileNotFoundError:
            report.problems.append(f"{f.name} is missing")
            continue
        except OSError as exc:
            report.problems.append(f"{f.name} cannot be read: {exc.strerror}")
            continue
        report.files_checked += 1
        report.bytes_checked += size
        if size != f.bytes:
            report.problems.append(
                f"{f.name} has {size} bytes, {ENCRYPTED_MANIFEST_NAME} says {f.bytes} "
                "(truncated or replaced)"
            )
        elif sha != f.sha256:
            report.problems.append(
                f"{f.name} does not match its sha256 in {ENCRYPTED_MANIFEST_NAME} (corrupted)"
            )
    return report


def _no_match(em: EncryptedManifest, where: str, identities: Sequence[Identity]) -> DecryptionError:
    given = "; ".join(i.label for i in identities)
    return DecryptionError(
        f"{where} is encrypted to {_recipients_text(em)}; "
        f"the identity given ({given}) matches none of them",
        hint=_ID_HINT + " (`age-keygen -y KEYFILE` prints an age key's public part)",
    )


def _recipients_text(em: EncryptedManifest) -> str:
    labels = em.recipient_labels
    if not labels:
        return "recipients it does not name"
    return f"{len(labels)} recipient{'s' if len(labels) != 1 else ''}: " + ", ".join(labels)


def decrypt_manifest(
    encrypted: EncryptedManifest,
    ciphertext: bytes,
    identities: Sequence[Identity],
    *,
    where: str = "the backup",
) -> tuple[Manifest, bytes]:
    """The inner manifest (parsed, and its exact bytes) from ``manifest.json.age``'s bytes.

    For callers that fetch files themselves (object storage); :func:`check_identities`
    is the same for a local directory. The ciphertext is checked against the outer
    manifest first, so "no identity matches" can only mean a wrong key, never damage.
    Raises DecryptionError (exit 13), naming the recipients, or IntegrityError.
    """
    if not identities:
        raise DecryptionError(
            f"{where} is encrypted to {_recipients_text(encrypted)}; no identity was given",
            hint=_ID_HINT,
        )
    known = {i.public for i in identities}
    if None not in known and not known & set(encrypted.recipients):
        raise _no_match(encrypted, where, identities)
    entry = encrypted.file(INNER_MANIFEST_NAME)
    check = HashingReader(
        io.BytesIO(ciphertext),
        name=INNER_MANIFEST_NAME,
        sha256=entry.sha256,
        size=entry.bytes,
        where=ENCRYPTED_MANIFEST_NAME,
    )
    check.finish()
    try:
        raw = bytes(pyrage.decrypt(ciphertext, native_identities(identities)))
    except pyrage.DecryptError as exc:
        if str(exc) == "No matching keys found":
            raise _no_match(encrypted, where, identities) from None
        raise IntegrityError(
            f"{INNER_MANIFEST_NAME} of {where} cannot be decrypted ({exc})",
            hint="the encrypted backup is damaged; use another backup",
        ) from None
    manifest = parse_manifest(raw, f"the decrypted {MANIFEST_NAME} of {where}")
    if manifest.status != STATUS_DONE:
        raise IntegrityError(
            f"{where} holds a backup whose manifest status is {manifest.status}",
            hint="use the newest backup whose status is DONE (moodump list)",
        )
    for f in manifest.files:
        _check_name(f.name, MANIFEST_NAME)
    return manifest, raw


def check_identities(backup_dir: Path | str, identities: Sequence[Identity]) -> Manifest:
    """What a restore of an encrypted backup calls first, before touching the target.

    Reads ``encrypted.json`` and decrypts ``manifest.json.age``: returns the inner
    manifest (DONE), or raises DecryptionError (exit 13) naming the recipients the
    backup was encrypted to when no identity is given or none matches, or
    IntegrityError when the backup is damaged.
    """
    src = Path(backup_dir)
    em = read_encrypted_manifest(src)
    entry = em.file(INNER_MANIFEST_NAME)
    try:
        ciphertext = (src / entry.name).read_bytes()
    except OSError as exc:
        raise IntegrityError(
            f"cannot read {src / entry.name}: {exc.strerror}",
            hint="the encrypted backup is incomplete; use another backup",
        ) from exc
    return decrypt_manifest(em, ciphertext, identities, where=f"backup {src}")[0]


def open_backup_file(
    source: Path | str | Callable[[str], BinaryIO],
    name: str,
    identities: Sequence[Identity],
    *,
    encrypted: EncryptedManifest,
    manifest: Manifest,
) -> HashingReader:
    """A reader of the plaintext of file ``name`` (its plain-backup name) of an encrypted backup.

    ``source`` is the backup directory, or a function that opens a ``.age`` name as a
    stream (object storage). Put the decompressor on top. Both sides are checked while
    streaming: the ciphertext against ``encrypted.json`` and the plaintext against the
    inner manifest; a mismatch, truncation or bit flip raises IntegrityError naming the
    file instead of the end of the stream. Call ``finish()`` after the decompressor is
    done so the check also covers bytes a decompressor did not ask for.
    """
    entry = manifest.file(name)
    age_entry = encrypted.file(name + SUFFIX)
    if callable(source):
        stream: Any = source(age_entry.name)
    else:
        path = Path(source) / age_entry.name
        try:
            stream = open(path, "rb")  # noqa: SIM115 - owned by the returned reader
        except FileNotFoundError as exc:
            raise IntegrityError(f"missing file {path}", hint="the backup is incomplete") from exc
    cipher = HashingReader(
        stream,
        name=age_entry.name,
        sha256=age_entry.sha256,
        size=age_entry.bytes,
        where=ENCRYPTED_MANIFEST_NAME,
    )
    try:
        plain = open_decrypting(cipher, identities, name=age_entry.name)
    except BaseException:
        cipher.close()
        raise
    return HashingReader(plain, name=name, sha256=entry.sha256, size=entry.bytes)


def encrypt_backup_dir(
    src_dir: Path | str,
    dst_dir: Path | str,
    recipients: Sequence[Recipient],
    *,
    progress: Callable[[str], None] | None = None,
) -> EncryptedManifest:
    """Encrypt the DONE backup ``src_dir`` into the new directory ``dst_dir``, streaming.

    Every file the manifest lists is checked against its sha256 while it is encrypted
    (a damaged source is reported, not sealed). The work happens in a hidden
    ``.NAME.partial-PID`` directory beside ``dst_dir``; ``encrypted.json`` is written
    last, everything is synced, and the directory is renamed into place, so
    ``dst_dir`` is complete or absent. ``src_dir`` is not modified.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    manifest = read_done_manifest(src)
    require_recipients(recipients)
    em = EncryptedManifest(
        encrypted_at=_utcnow(),
        database=manifest.database,
        started_at=manifest.started_at,
        finished_at=manifest.finished_at,
        recipients=[r.key for r in recipients],
    )

    def work(tmp: Path) -> None:
        todo: list[tuple[str, str, str | None, int | None]] = [
            (f.name, f.kind, f.sha256, f.bytes) for f in manifest.files
        ]
        if (src / VERIFY_NAME).is_file():
            todo.append((VERIFY_NAME, "verify", None, None))
        todo.append((MANIFEST_NAME, "manifest", None, None))
        for name, kind, sha, size in todo:
            _check_name(name, MANIFEST_NAME)
            target = tmp / (name + SUFFIX)
            make_dir(target.parent, parents=True, exist_ok=True)
            d = encrypt_file(src / name, target, recipients, expect_sha256=sha, expect_bytes=size)
            em.files.append(EncryptedFile(name + SUFFIX, d.cipher_bytes, d.cipher_sha256, kind))
            if progress:
                progress(name)
        if (src / SIGNATURE_NAME).is_file():  # no secret in it: it stays plaintext
            write_bytes(tmp / SIGNATURE_NAME, (src / SIGNATURE_NAME).read_bytes())
        write_text(tmp / ENCRYPTED_MANIFEST_NAME, em.to_json())

    _publish(dst, work)
    return em


def decrypt_backup_dir(
    src_dir: Path | str,
    dst_dir: Path | str,
    identities: Sequence[Identity],
    *,
    progress: Callable[[str], None] | None = None,
) -> Manifest:
    """Decrypt the encrypted backup ``src_dir`` into a plain backup directory ``dst_dir``.

    Identities are checked first (DecryptionError, exit 13, before anything is
    written). Each file is checked on both sides while streaming: its ciphertext against
    ``encrypted.json`` and its plaintext against the inner manifest; any difference is
    an IntegrityError naming the file, and nothing is published. ``dst_dir`` appears
    complete (``manifest.json`` written last, byte-identical to the original) or not at
    all. Returns the manifest.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    em = read_encrypted_manifest(src)
    entry = em.file(INNER_MANIFEST_NAME)
    try:
        ciphertext = (src / entry.name).read_bytes()
    except OSError as exc:
        raise IntegrityError(
            f"cannot read {src / entry.name}: {exc.strerror}", hint="the backup is incomplete"
        ) from exc
    manifest, raw = decrypt_manifest(em, ciphertext, identities, where=f"backup {src}")

    def work(tmp: Path) -> None:
        todo: list[tuple[str, str | None, int | None]] = [
            (f.name, f.sha256, f.bytes) for f in manifest.files
        ]
        if any(f.name == VERIFY_NAME + SUFFIX for f in em.files):
            todo.append((VERIFY_NAME, None, None))
        for name, sha, size in todo:
            age_entry = em.file(name + SUFFIX)
            target = tmp / name
            make_dir(target.parent, parents=True, exist_ok=True)
            d = decrypt_file(
                src / age_entry.name,
                target,
                identities,
                expect_sha256=age_entry.sha256,
                expect_bytes=age_entry.bytes,
            )
            if (sha is not None and d.plain_sha256 != sha) or (
                size is not None and d.plain_bytes != size
            ):
                raise IntegrityError(
                    f"{name}, decrypted, does not match its sha256 in the backup's manifest",
                    hint="the encrypted backup was altered; use another backup",
                )
            if progress:
                progress(name)
        if (src / SIGNATURE_NAME).is_file():
            write_bytes(tmp / SIGNATURE_NAME, (src / SIGNATURE_NAME).read_bytes())
        write_bytes(tmp / MANIFEST_NAME, raw)

    _publish(dst, work)
    return manifest


def _publish(dst: Path, work: Callable[[Path], None]) -> None:
    """Run ``work`` in a partial directory beside ``dst``, then sync and rename it into place."""
    if dst.exists():
        raise StorageError(
            f"output {dst} already exists", hint="choose a new path; moodump never overwrites"
        )
    parent = dst.parent
    if not parent.is_dir():
        raise StorageError(f"output directory {parent} does not exist", hint="create it first")
    tmp = parent / f".{dst.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        make_dir(tmp)
        work(tmp)
        sync_tree(tmp)
        os.rename(tmp, dst)
        _fsync_dir(parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise storage_error(exc, Path(exc.filename or tmp)) from exc
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
