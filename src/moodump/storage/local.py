"""A directory as a storage backend (a mounted volume, an NFS share, a second disk).

Writes go to a temporary file in the key's directory, are hashed while written,
fsynced, then renamed over the key and the directory fsynced: a crash at any point
leaves either the old object or the new one, never a partial one. The integrity check is
the hash of the bytes written (re-reading a file that is still in the page cache would
prove nothing more). Directory renames make :meth:`Backend.rename_prefix` atomic.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from moodump.errors import StorageError
from moodump.fsmodes import make_dir, mkstemp
from moodump.storage.base import (
    BLOCK,
    TEMP_PREFIX,
    Backend,
    ObjectInfo,
    PutResult,
    RetryPolicy,
    _unlink,
    local_damage,
    read_source,
    source_name,
)


class LocalBackend(Backend):
    """Objects are files below ``root``; keys are their relative paths.

    ``create=True`` creates ``root`` on the first write; otherwise a missing ``root`` is
    a StorageError naming it (a typo in a mount path must not silently fill the
    container's own disk).
    """

    can_rename = True
    max_concurrency = 4
    exact_sizes = True

    def __init__(
        self,
        root: Path | str,
        *,
        create: bool = False,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(retry=retry or RetryPolicy(retries=0), sleep=sleep)
        self.root = Path(root).absolute()
        self.create = create

    @property
    def display(self) -> str:
        return self.root.as_uri()

    def where(self, key: str) -> str:
        return str(self.root / key) if key else str(self.root)

    # -- the contract ----------------------------------------------------------------------

    def _put(self, key: str, stream: BinaryIO, sha256: str | None) -> PutResult:
        path = self._path(key)
        self._root_for_write()
        try:
            make_dir(path.parent, parents=True, exist_ok=True)
            fd, name = mkstemp(path.parent, prefix=TEMP_PREFIX, suffix=f"-{path.name}")
            tmp = Path(name)
        except OSError as exc:
            raise self._error(exc, f"cannot write {path}") from exc
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while block := read_source(stream, BLOCK, key):
                    hasher.update(block)
                    out.write(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            if sha256 is not None and digest != sha256:
                raise local_damage(source_name(stream, key), digest, sha256)
            os.replace(tmp, path)
        except OSError as exc:
            _unlink(tmp)
            raise self._error(exc, f"cannot write {path}") from exc
        except BaseException:
            _unlink(tmp)
            raise
        _fsync_dir(path.parent)
        return PutResult(key, size, digest, "local-hash")

    def _open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        self._root_for_read()
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise StorageError(
                f"{path} does not exist", hint="check the name (list the remote backups)"
            ) from exc
        except OSError as exc:
            raise self._error(exc, f"cannot read {path}") from exc

    def _list(self, prefix: str) -> list[ObjectInfo]:
        if not self._root_for_read():
            return []
        base = self._path(prefix) if prefix else self.root
        out: list[ObjectInfo] = []
        try:
            for dirpath, dirnames, filenames in os.walk(base, onerror=_raise):
                dirnames.sort()
                for name in filenames:
                    if name.startswith(TEMP_PREFIX):
                        continue
                    full = Path(dirpath) / name
                    rel = full.relative_to(self.root).as_posix()
                    out.append(ObjectInfo(rel, full.stat().st_size))
        except FileNotFoundError:
            return out
        except OSError as exc:
            raise self._error(exc, f"cannot list {base}") from exc
        return sorted(out, key=lambda i: i.key)

    def _list_dirs(self, prefix: str) -> list[str]:
        if not self._root_for_read():
            return []
        base = self._path(prefix) if prefix else self.root
        try:
            return sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise self._error(exc, f"cannot list {base}") from exc

    def _stat(self, key: str) -> ObjectInfo | None:
        if not self._root_for_read():
            return None
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._error(exc, f"cannot look at {path}") from exc
        return ObjectInfo(key, st.st_size) if path.is_file() else None

    def _delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        except IsADirectoryError:
            return False
        except OSError as exc:
            raise self._error(exc, f"cannot delete {path}") from exc
        return True

    def _delete_prefix(self, prefix: str) -> int:
        path = self._path(prefix)
        if path.is_file():
            return 0  # a prefix names a directory; an object of that name is not below it
        count = sum(1 for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise self._error(exc, f"cannot delete {path}") from exc
        return count

    def _rename_prefix(self, src: str, dst: str) -> None:
        source, target = self._path(src), self._path(dst)
        if target.exists():
            raise StorageError(
                f"cannot rename {source} to {target}: the target exists",
                hint="delete the target first",
            )
        try:
            make_dir(target.parent, parents=True, exist_ok=True)
            os.rename(source, target)
        except OSError as exc:
            raise self._error(exc, f"cannot rename {source} to {target}") from exc
        _fsync_dir(target.parent)

    # -- internals ---------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / key

    def root_missing(self) -> bool:
        return not self.root.exists()

    def _root_for_read(self) -> bool:
        """True when the root exists; False (nothing stored yet) only with ``create``."""
        if self.root.is_dir():
            return True
        if self.create and not self.root.exists():
            return False
        raise self._missing_root()

    def _root_for_write(self) -> None:
        if self.root.is_dir():
            return
        if not self.create or self.root.exists():
            raise self._missing_root()
        try:
            make_dir(self.root, parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(exc, f"cannot create {self.root}") from exc

    def _missing_root(self) -> StorageError:
        what = "is not a directory" if self.root.exists() else "does not exist"
        return StorageError(
            f"the storage directory {self.root} {what}",
            hint="create it (or mount the volume there), or fix the path",
        )

    def _error(self, exc: OSError, what: str) -> StorageError:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "free space there, or prune old backups"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = f"let this user write to {self.root} (or mount it read-write)"
        elif exc.errno == errno.ENOENT:
            hint = "check that it exists"
        else:
            hint = f"check {self.root}"
        return StorageError(f"{what}: {reason}", hint=hint)


def _raise(exc: OSError) -> None:
    raise exc


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["LocalBackend"]
