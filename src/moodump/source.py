"""Where a backup's files are read from: a local directory, or anything that opens them.

Restore and verify read a backup only through a :class:`BackupSource`: the manifest, the
schema and object files, and each data file as a stream of its stored (compressed)
bytes. :class:`LocalSource` is a backup directory; the off-site reader
(:mod:`moodump.offsite`) opens objects straight from storage, and an encrypted copy is
read through a decrypting source, so a restore from a bucket streams each file without
staging the backup on disk first.

Integrity does not depend on the source. Small files are read whole and checked against
the manifest's size and sha256 before they are used; a data file is checked while it is
streamed (:class:`CheckedReader`): a short read or a different sha256 raises
:class:`~moodump.errors.IntegrityError` at its end, before the restore commits the rows it
carried.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

from moodump.crypto import (
    ENCRYPTED_MANIFEST_NAME,
    INNER_MANIFEST_NAME,
    SIGNATURE_NAME,
    SUFFIX,
    EncryptedManifest,
    Identity,
    VerifyKey,
    check_signature,
    decrypt_manifest,
    open_decrypting,
)
from moodump.errors import IntegrityError, NotFoundError, StorageError
from moodump.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    check_relative_name,
    parse_manifest,
    require_done,
)


class BackupSource(ABC):
    """A backup's files by name (names as the manifest lists them, ``/``-separated)."""

    #: Where it is, for messages (a path or a URL without secrets).
    where: str
    #: The local backup directory, when there is one (verify.json goes there).
    local_dir: Path | None = None
    #: When set, :meth:`manifest` refuses a manifest not signed by one of these keys.
    verify_keys: tuple[VerifyKey, ...] = ()

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A stream of the file's stored bytes; IntegrityError when it is missing."""

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as fh:
            return fh.read()

    def manifest_bytes(self) -> bytes:
        return self.read_bytes(MANIFEST_NAME)

    def signature_bytes(self) -> bytes | None:
        """``manifest.sig``, or None when the backup has none."""
        try:
            with self.open(SIGNATURE_NAME) as fh:
                return fh.read(1 << 20)
        except IntegrityError:
            return None

    def manifest(self) -> Manifest:
        """The manifest, of any status. With :attr:`verify_keys`, its signature is
        checked first (IntegrityError: unsigned, another key, or changed)."""
        raw = self.manifest_bytes()
        if self.verify_keys:
            check_signature(raw, self.signature_bytes(), self.verify_keys, where=self.where)
        return parse_manifest(raw, f"{self.where}/{MANIFEST_NAME}")

    def done_manifest(self) -> Manifest:
        """The manifest; IntegrityError unless the backup is DONE."""
        return require_done(self.manifest(), self.where)

    def checked_bytes(self, entry: FileEntry) -> bytes:
        """A small file's bytes, after checking its size and sha256 against ``entry``."""
        data = self.read_bytes(entry.name)
        _compare(entry, len(data), hashlib.sha256(data).hexdigest(), self.where)
        return data

    def open_checked(self, entry: FileEntry) -> BinaryIO:
        """A stream of ``entry``'s stored bytes that checks size and sha256 at its end."""
        return cast(BinaryIO, CheckedReader(self.open(entry.name), entry, self.where))

    def check_stored(self, stored: Sequence[tuple[str, int]]) -> None:  # noqa: B027
        """IntegrityError when a stored file of these ``(name, bytes)`` is missing (or,
        where the storage lists exact sizes, has another size): one listing, before a
        restore touches its target. A directory is checked file by file instead
        (:func:`moodump.restore.check_files`); nothing to do here by default."""

    def check_listed(self, entries: Sequence[FileEntry]) -> None:
        """:meth:`check_stored` for the manifest entries ``entries`` (plaintext names)."""
        self.check_stored([(e.name, e.bytes) for e in entries])

    def prefetch(self, names: Sequence[str], *, once: bool = False) -> None:  # noqa: B027
        """Fetch these (small) files ahead, at once: a hint, not a promise. A remote
        source reads them concurrently, so hundreds of small files cost a few round
        trips of time rather than hundreds; a directory needs nothing. ``once``: each is
        read once (data files), so its memory is released at its first open."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release connections (nothing for a directory)."""


class LocalSource(BackupSource):
    """A backup directory on a local or mounted file system."""

    def __init__(self, path: Path | str) -> None:
        self.root = Path(path)
        self.local_dir = self.root
        self.where = str(path)

    def open(self, name: str) -> BinaryIO:
        path = _inside(self.root, name)
        try:
            # Without blocking: a named pipe in a file's place would wait for ever.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
            try:
                mode = os.fstat(fd).st_mode
                if stat.S_ISDIR(mode):
                    raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
                if not stat.S_ISREG(mode):
                    raise IntegrityError(
                        f"{name} in {self.where} is not a regular file (a pipe or a device)",
                        hint="the backup is damaged; use another one",
                    )
                os.set_blocking(fd, True)
                return os.fdopen(fd, "rb")
            except BaseException:
                os.close(fd)
                raise
        except FileNotFoundError as exc:
            if not self.root.is_dir():
                # no backup there at all: a wrong path, not a damaged backup
                raise NotFoundError(
                    f"no backup at {self.where}: the directory does not exist",
                    hint="check the path (moodump list shows the backups)",
                ) from exc
            raise IntegrityError(
                f"{name} is missing from {self.where}",
                hint="the backup is incomplete; use another one",
            ) from exc
        except IsADirectoryError as exc:
            # a file of the backup replaced by a directory: the backup is damaged
            raise IntegrityError(
                f"{name} in {self.where} is a directory, not a file",
                hint="the backup is damaged; use another one",
            ) from exc
        except OSError as exc:
            raise StorageError(
                f"cannot read {path}: {exc.strerror}", hint="check the file's permissions"
            ) from exc


class DecryptingSource(BackupSource):
    """An encrypted backup (``encrypted.json`` + ``X.age``) read through its identities.

    The inner (plaintext) manifest is decrypted first: a missing or wrong key fails
    here, naming the recipients, before a restore touches its target. Each file is then
    decrypted as it streams (age authenticates every 64 KiB chunk) and checked against
    the inner manifest's size and sha256 at its end.
    """

    def __init__(self, inner: BackupSource, identities: Sequence[Identity]) -> None:
        self.inner = inner
        self.identities = list(identities)
        self.where = inner.where
        self.local_dir = None  # the directory holds ciphertext: nothing is written there
        self.encrypted = EncryptedManifest.from_json(
            inner.read_bytes(ENCRYPTED_MANIFEST_NAME),
            where=f"{inner.where}/{ENCRYPTED_MANIFEST_NAME}",
        )
        entry = self.encrypted.file(INNER_MANIFEST_NAME)
        _m, self._manifest_bytes = decrypt_manifest(
            self.encrypted,
            inner.read_bytes(entry.name),
            self.identities,
            where=f"backup {inner.where}",
        )

    def manifest_bytes(self) -> bytes:
        return self._manifest_bytes

    def signature_bytes(self) -> bytes | None:
        # plaintext beside encrypted.json; it signs the decrypted manifest
        return self.inner.signature_bytes()

    def prefetch(self, names: Sequence[str], *, once: bool = False) -> None:
        self.inner.prefetch([n + SUFFIX for n in names], once=once)

    def check_listed(self, entries: Sequence[FileEntry]) -> None:
        # stored as X.age: check presence and the ciphertext sizes encrypted.json lists
        stored = []
        for e in entries:
            f = self.encrypted.file(e.name + SUFFIX)
            stored.append((f.name, f.bytes))
        self.inner.check_stored(stored)

    def open(self, name: str) -> BinaryIO:
        stored = self.inner.open(name + SUFFIX)
        return open_decrypting(stored, self.identities, name=name)

    def close(self) -> None:
        self.inner.close()


def is_encrypted(source: BackupSource) -> bool:
    """True when ``source`` holds an encrypted backup (an ``encrypted.json``)."""
    try:
        source.read_bytes(ENCRYPTED_MANIFEST_NAME)
    except IntegrityError:  # not there; one that cannot be read is a StorageError to name
        return False
    return True


def as_source(
    backup: Path | str | BackupSource,
    identities: Sequence[Identity] | None = None,
    verify_keys: Sequence[VerifyKey] = (),
) -> BackupSource:
    """A source for ``backup`` (a directory, or a source already), decrypting it when it
    is an encrypted backup. An encrypted backup without ``identities`` raises
    :class:`~moodump.errors.DecryptionError` naming the keys it was encrypted to.
    With ``verify_keys`` its manifest must be signed by one of them."""
    source = backup if isinstance(backup, BackupSource) else LocalSource(backup)
    if not isinstance(source, DecryptingSource) and is_encrypted(source):
        source = DecryptingSource(source, identities or ())
    if verify_keys:
        source.verify_keys = tuple(verify_keys)
    return source


class CheckedReader(io.RawIOBase):
    """Reads a stream through, hashing it; at its end, compares with the manifest entry.

    A mismatch raises :class:`IntegrityError` from the read that reaches the end, so a
    consumer that reads to the end (the restore's loader does) fails before it commits.
    """

    def __init__(self, inner: BinaryIO, entry: FileEntry, where: str) -> None:
        self._inner = inner
        self._entry = entry
        self._where = where
        self._hash = hashlib.sha256()
        self._size = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        if not data:
            if not self._checked:
                self._checked = True
                _compare(self._entry, self._size, self._hash.hexdigest(), self._where)
            return 0
        n = len(data)
        view[:n] = data
        self._hash.update(data)
        self._size += n
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def _compare(entry: FileEntry, size: int, sha: str, where: str) -> None:
    if size != entry.bytes:
        raise IntegrityError(
            f"{entry.name} in {where} has {size} bytes, the manifest says {entry.bytes} "
            "(truncated or replaced)",
            hint="the backup is damaged; use another one",
        )
    if sha != entry.sha256:
        raise IntegrityError(
            f"{entry.name} in {where} does not match its sha256 in the manifest (corrupted)",
            hint="the backup is damaged; use another one",
        )


def inside_backup(root: Path, name: str) -> Path:
    """``root/name``, refusing names that would leave the backup directory: absolute
    paths, ``..``, and a symbolic link (of the file or of a directory on its way) that
    resolves outside ``root``."""
    try:
        check_relative_name(name, f"the manifest of {root}")
    except IntegrityError as exc:
        raise IntegrityError(
            f"the manifest of {root} names a file outside the backup: {name!r}",
            hint="do not restore this backup: its manifest was altered",
        ) from exc
    path = root.joinpath(*name.split("/"))
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise IntegrityError(
            f"{name!r} in {root} is a symbolic link (or inside one) that leads outside "
            f"the backup, to {real}",
            hint="do not restore this backup: it was altered",
        )
    return path


_inside = inside_backup
