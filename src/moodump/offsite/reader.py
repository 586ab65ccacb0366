"""Reading an off-site copy back (:class:`RemoteBackupReader`): its manifest, and its
files as streams that are checked against the manifest as they are read (a restore or a
verification straight from the bucket, nothing staged on disk). Writing copies is
:mod:`moodump.offsite.remote`'s."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any, BinaryIO

from moodump.errors import ConfigError, IntegrityError, StorageError
from moodump.manifest import MANIFEST_NAME, STATUS_DONE, FileEntry, Manifest
from moodump.storage.base import BLOCK, Backend, check_key


class RemoteBackupReader:
    """Read a complete remote backup without copying it to disk first.

    :meth:`manifest` loads ``NAME/manifest.json`` (it must say DONE); :meth:`open`
    streams one of the files it lists and raises IntegrityError at the end of the stream
    when the bytes read do not have the manifest's size and sha256, so a restore fed
    from it fails instead of loading damaged data.
    """

    def __init__(self, backend: Backend, name: str) -> None:
        _check_name(name)
        self.backend = backend
        self.name = name
        self._manifest: Manifest | None = None

    def manifest(self) -> Manifest:
        if self._manifest is None:
            manifest = _remote_manifest(self.backend, self.name)
            if manifest.status != STATUS_DONE:
                raise IntegrityError(
                    f"the off-site copy {self.backend.where(self.name)} is not a complete "
                    f"backup (manifest status {manifest.status})",
                    hint="use a backup whose status is DONE",
                )
            self._manifest = manifest
        return self._manifest

    def files(self) -> list[FileEntry]:
        return list(self.manifest().files)

    def open(self, rel: str) -> BinaryIO:
        """A stream of one file of the backup, checked against the manifest at its end."""
        check_key(rel)
        entry = self.manifest().file(rel)
        stream = self.backend.open_read(f"{self.name}/{rel}")
        return io.BufferedReader(  # type: ignore[return-value]
            _Verifying(stream, entry, self.backend.where(f"{self.name}/{rel}")), BLOCK
        )


class _Verifying(io.RawIOBase):
    """Passes a stream through, hashing it; at its end, compares with the manifest entry."""

    def __init__(self, inner: BinaryIO, entry: FileEntry, where: str) -> None:
        self._inner = inner
        self._entry = entry
        self._where = where
        self._hasher = hashlib.sha256()
        self._count = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        if n:
            buffer[:n] = data
            self._hasher.update(data)
            self._count += n
        elif not self._checked:
            self._checked = True
            if self._count != self._entry.bytes or self._hasher.hexdigest() != self._entry.sha256:
                raise IntegrityError(
                    f"{self._where} does not match its manifest ({self._count} bytes read, "
                    f"{self._entry.bytes} expected, or a different sha256)",
                    hint="the remote copy is damaged; use another backup or upload it again",
                )
        return n

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def _remote_manifest(backend: Backend, name: str) -> Manifest:
    where = backend.where(name)
    key = f"{name}/{MANIFEST_NAME}"
    if backend.stat(key) is None:
        raise StorageError(
            f"the off-site copy {where} has no {MANIFEST_NAME}",
            hint="it is incomplete or not a moodump backup; upload it again",
        )
    try:
        return Manifest.from_dict(json.loads(backend.read_bytes(key).decode("utf-8")))
    except (ValueError, TypeError) as exc:
        raise StorageError(
            f"the off-site copy {where} has a damaged {MANIFEST_NAME}",
            hint="upload the backup again",
        ) from exc


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\n" in name:
        raise ConfigError(
            f"{name!r} is not a valid backup name", hint="use the backup directory's own name"
        )
    check_key(name)
