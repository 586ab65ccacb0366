"""Off-site copies of backup directories on any storage backend (reading them back:
:mod:`moodump.offsite.reader`).

A remote copy of backup ``NAME`` is the objects ``NAME/<file>`` below the backend's
root, one per file of the local backup directory. It is **complete** only when
``NAME/manifest.json`` exists and every file the manifest lists checks (size and
sha256); :func:`upload` therefore sends data and schema files first, ``verify.json``
next and ``manifest.json`` last, each one checked by the backend as it is stored.

- Backends that can rename (local directory, FTPS) keep the old publishing: everything
  goes into ``NAME.partial/``, and only when every file is there and checked is the
  directory renamed to ``NAME``. A directory without ``.partial`` is always complete.
- On S3 (no rename) the files go straight to ``NAME/``, manifest last. When a copy
  already exists but differs, its manifest is deleted first, so it does not look
  complete while it is being repaired.

Uploading again skips files that are already there and match (resume after a crash,
:meth:`~moodump.storage.base.Backend.check`), and skips the whole copy when it is
complete and matches. ``verify.json`` is copied but never compared: every verification
rewrites it.

:class:`RemoteBackupReader` opens a remote copy's files as streams (restore straight
from the bucket, nothing staged on disk) and checks each one against the manifest as it
is read. :class:`OffsiteTarget` bundles these functions for one backend, with the
surface the jobs module has used since the FTPS-only version.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodump.crypto import (
    ENCRYPTED_MANIFEST_NAME,
    EncryptedManifest,
    read_encrypted_manifest,
)
from moodump.errors import IntegrityError, StorageError
from moodump.manifest import (
    MANIFEST_NAME,
    VERIFY_NAME,
    read_done_manifest,
)
from moodump.offsite.reader import RemoteBackupReader, _check_name, _remote_manifest
from moodump.storage.base import BLOCK, Backend

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
_BACKUP_NAME = re.compile(r"^(?P<core>.+)_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class RemoteBackup:
    """A backup directory on the remote side.

    ``complete`` is False for a ``*.partial`` directory and for a directory without
    ``manifest.json``; :func:`recheck` proves the files as well.
    """

    name: str
    complete: bool


@dataclass(frozen=True)
class UploadResult:
    """What :func:`upload` did.

    ``attempts`` is 1 plus the retries the backend needed; ``skipped`` says the complete
    copy was already there and matched (nothing sent); ``skipped_files`` counts files
    that were already there and matched (resume). ``check_method`` is how the stored
    files were proven: ``local-hash``, ``server-hash``, ``download``, ``etag``,
    ``read-back``, or ``mixed``.
    """

    remote_path: str
    files: int
    bytes: int
    attempts: int
    duration_s: float
    check_method: str
    skipped: bool = False
    skipped_files: int = 0


@dataclass(frozen=True)
class RecheckResult:
    """A remote copy that matched its manifest (a mismatch raises StorageError instead)."""

    remote_path: str
    files: int
    bytes: int
    check_method: str


@dataclass(frozen=True)
class _LocalFile:
    rel: str  # path inside the backup directory, "/"-separated
    path: Path
    size: int
    sha256: str  # from the manifest, or hashed here for files it does not list


def upload(
    backend: Backend,
    local_dir: Path | str,
    name: str | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> UploadResult:
    """Copy a DONE backup directory to ``NAME/`` on ``backend`` (NAME: its own name).

    Raises IntegrityError when the local backup is not DONE or its files do not match
    its manifest (nothing is published then), StorageError when the copy cannot be made
    and checked.
    """
    local_dir = Path(local_dir)
    marker, listed = _describe_local(local_dir)
    name = name or local_dir.name
    _check_name(name)
    files = _local_files(local_dir, listed, marker)
    total = sum(f.size for f in files)
    where = backend.where(name)
    started = clock()
    retried = backend.retried
    methods: set[str] = set()
    log.info("copying %s to %s (%d files, %d bytes)", local_dir, where, len(files), total)

    differing: set[str] | None = None  # files of an existing complete copy that differ
    if backend.stat(f"{name}/{marker}") is not None:
        differing = set()
        for f in files:
            if f.rel == VERIFY_NAME:
                continue  # rewritten by every verification: a stale one is no reason to re-send
            check = backend.check(f"{name}/{f.rel}", sha256=f.sha256, size=f.size, local=f.path)
            if check.ok:
                methods.add(check.method)
            else:
                differing.add(f.rel)
        if not differing:
            duration = clock() - started
            log.info(
                "already complete and matching: %s (%d files re-checked by %s) in %.1f s",
                where,
                len(files),
                _method(methods),
                duration,
            )
            return UploadResult(
                where,
                len(files),
                total,
                1 + backend.retried - retried,
                duration,
                _method(methods),
                skipped=True,
                skipped_files=len(files),
            )
        log.warning(
            "off-site copy %s exists but differs (%s); replacing it",
            where,
            ", ".join(sorted(differing)[:5]),
        )

    staging = name + PARTIAL_SUFFIX if backend.can_rename else name
    if staging == name and differing is not None:
        backend.delete(f"{name}/{marker}")  # not complete while it is repaired
    # One listing tells which objects exist; only those are checked (resume after a
    # crash). A fresh copy costs one put per file, not a look-up as well.
    existing = {o.key for o in backend.list(staging)}
    # Objects that are not files of this backup go first, a marker before the rest: a
    # copy made before encryption was turned on (or off) would otherwise keep its
    # plaintext beside the ciphertext, or read as the old form through its old marker.
    wanted = {f"{staging}/{f.rel}" for f in files}
    markers = {f"{staging}/{m}" for m in (MANIFEST_NAME, ENCRYPTED_MANIFEST_NAME)}
    for key in sorted(existing - wanted, key=lambda k: (k not in markers, k)):
        backend.delete(key)
    present = existing & wanted if differing is None else set()
    todo: list[_LocalFile] = []
    skipped_files = 0
    for f in files:
        key = f"{staging}/{f.rel}"
        if staging == name and differing is not None:
            already = f.rel not in differing and f.rel not in (marker, VERIFY_NAME)
        elif key in present:
            check = backend.check(key, sha256=f.sha256, size=f.size, local=f.path)
            already = check.ok
            if already:
                methods.add(check.method)
        else:
            already = False
        if already:
            skipped_files += 1
        else:
            todo.append(f)
    # The marker (manifest.json / encrypted.json) goes last, after every other object is
    # stored and proven; the rest may overlap where the backend allows it.
    last = [f for f in todo if f.rel == marker]
    rest = [f for f in todo if f.rel != marker]

    def put(f: _LocalFile) -> str:
        return backend.put_file(f"{staging}/{f.rel}", f.path, sha256=f.sha256).check

    workers = max(1, min(backend.max_concurrency, len(rest)))
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="moodump-upload") as pool:
            methods.update(pool.map(put, rest))
    else:
        methods.update(put(f) for f in rest)
    methods.update(put(f) for f in last)

    if staging != name:
        if name in backend.list_dirs(""):
            backend.delete_prefix(name)
        backend.rename_prefix(staging, name)
    duration = clock() - started
    log.info(
        "copied and re-checked %s (%d files, %d already there, checked by %s) in %.1f s",
        where,
        len(files),
        skipped_files,
        _method(methods),
        duration,
    )
    return UploadResult(
        where,
        len(files),
        total,
        1 + backend.retried - retried,
        duration,
        _method(methods),
        skipped_files=skipped_files,
    )


def recheck(backend: Backend, name: str, local_dir: Path | str | None = None) -> RecheckResult:
    """Check every file of a remote copy against the manifest (size and sha256).

    With ``local_dir`` the local backup is the reference: every file its manifest
    lists, plus ``manifest.json`` itself (byte-identical). Without it, the remote
    ``manifest.json`` is read and the files it lists are checked. ``verify.json`` is
    never compared. Raises StorageError naming the files on any difference.
    """
    _check_name(name)
    where = backend.where(name)
    want: list[tuple[str, int, str, Path | None]]
    if local_dir is not None:
        local = Path(local_dir)
        marker, listed = _describe_local(local)
        want = [
            (f.rel, f.size, f.sha256, f.path)
            for f in _local_files(local, listed, marker)
            if f.rel != VERIFY_NAME
        ]
    elif backend.stat(f"{name}/{ENCRYPTED_MANIFEST_NAME}") is not None:
        em = EncryptedManifest.from_json(
            backend.read_bytes(f"{name}/{ENCRYPTED_MANIFEST_NAME}"), where=backend.where(name)
        )
        want = [(f.name, f.bytes, f.sha256, None) for f in em.files]
    else:
        manifest = _remote_manifest(backend, name)
        want = [(f.name, f.bytes, f.sha256, None) for f in manifest.files]
    problems: list[str] = []
    methods: set[str] = set()
    for rel, size, digest, path in want:
        check = backend.check(f"{name}/{rel}", sha256=digest, size=size, local=path)
        if check.ok:
            methods.add(check.method)
        else:
            problems.append(f"{rel} {check.problem}")
    if problems:
        raise StorageError(
            f"the off-site copy {where} does not match its manifest: {some_problems(problems)}",
            hint="upload the backup again (moodump copies it when the remote copy differs)",
        )
    method = _method(methods)
    log.info("off-site copy %s matches its manifest (%d files, by %s)", where, len(want), method)
    return RecheckResult(where, len(want), sum(w[1] for w in want), method)


def some_problems(problems: list[str], shown: int = 5) -> str:
    """The first ``shown`` problems of a copy, and how many more there are: a copy that
    lost a whole directory would otherwise make a message of thousands of lines."""
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more


def stored_problems(backend: Backend, name: str, stored: Iterable[tuple[str, int]]) -> list[str]:
    """What one listing of copy ``name`` shows missing among the files ``stored``
    (``(file, bytes)`` as its marker lists them): ``"F is missing"`` or ``"F has N
    bytes, expected M"``. Empty when all are there. Where the backend's listed sizes
    may be wrong (S3), a size that differs is looked up again by itself (a HEAD), so a
    file cut short or replaced is found here and not half-way through a restore.
    """
    listed = {o.key: o.size for o in backend.list(name)}
    problems = []
    for rel, size in stored:
        key = f"{name}/{rel}"
        have = listed.get(key, -1)
        if have == -1:
            problems.append(f"{rel} is missing")
            continue
        if have == size:
            continue
        if not backend.exact_sizes:  # the listing may be wrong: ask for this one object
            if not backend.exact_stat_sizes:
                continue
            info = backend.stat(key)
            if info is None:
                problems.append(f"{rel} is missing")
                continue
            have = info.size
        if have is not None and have != size:
            problems.append(f"{rel} has {have} bytes, expected {size}")
    return problems


def list_backups(backend: Backend) -> list[RemoteBackup]:
    """The directories below the backend's root, sorted by name (plain files are ignored).

    A root that does not exist yet gives an empty list (when the backend creates it).
    """
    out: list[RemoteBackup] = []
    for name in backend.list_dirs(""):
        if name.endswith(PARTIAL_SUFFIX):
            out.append(RemoteBackup(name, False))
        else:
            complete = any(
                backend.stat(f"{name}/{marker}") is not None
                for marker in (MANIFEST_NAME, ENCRYPTED_MANIFEST_NAME)
            )
            out.append(RemoteBackup(name, complete))
    return out


def prune_remote(backend: Backend, remove: Iterable[str], *, dry_run: bool = False) -> list[str]:
    """Delete exactly the named backups (and their ``.partial``) on ``backend``.

    Names that are not there are skipped; nothing else is touched. Returns the names
    removed (or, with ``dry_run``, that would be).
    """
    names = list(dict.fromkeys(remove))
    for name in names:
        _check_name(name)
    present = set(backend.list_dirs(""))
    gone: list[str] = []
    for name in names:
        found = [c for c in (name, name + PARTIAL_SUFFIX) if c in present]
        for candidate in found:
            if not dry_run:
                # the markers first: a prune that stops half-way (S3 deletes in batches,
                # in no promised order) must not leave a copy that looks complete
                for marker in (ENCRYPTED_MANIFEST_NAME, MANIFEST_NAME):
                    backend.delete(f"{candidate}/{marker}")
                backend.delete_prefix(candidate)
                log.info("removed off-site backup %s", backend.where(candidate))
        if found:
            gone.append(name)
    return gone


def remote_names_to_prune(remote: Iterable[str], keep: Iterable[str], core_name: str) -> list[str]:
    """Remote backups of ``core_name`` (``<host>-<db>``) that local retention did not keep.

    Matches the core name exactly (``db-moodle`` never matches
    ``db-moodle_archive_2026-01-01_01-00-00``), ignores ``.partial`` directories and
    anything that is not named like a backup. Pure; feed the result to
    :func:`prune_remote` to make remote retention follow local retention.
    """
    kept = set(keep)
    out = []
    for name in remote:
        match = _BACKUP_NAME.match(name)
        if match and match.group("core") == core_name and name not in kept:
            out.append(name)
    return sorted(out)


class _DisplayUrl:
    """Something with ``display()``, like :class:`~moodump.storage.ftps.FtpUrl`."""

    def __init__(self, text: str) -> None:
        self._text = text

    def display(self) -> str:
        return self._text


class OffsiteTarget:
    """The off-site copies on one backend: upload, recheck, list, prune, read.

    ``clock`` (durations) is injectable so tests never depend on the wall clock.
    """

    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.url: Any = _DisplayUrl(backend.display)
        self._clock = clock

    def remote_path(self, name: str) -> str:
        _check_name(name)
        return self.backend.where(name)

    def upload(self, local_dir: Path | str, *, remote_name: str | None = None) -> UploadResult:
        """Copy a DONE backup directory (see :func:`upload`)."""
        return upload(self.backend, local_dir, remote_name, clock=self._clock)

    def recheck(self, remote_name: str, local_dir: Path | str | None = None) -> RecheckResult:
        """Check a remote copy against its manifest (see :func:`recheck`)."""
        return recheck(self.backend, remote_name, local_dir)

    def list_backups(self) -> list[RemoteBackup]:
        """The remote backup directories, sorted by name (see :func:`list_backups`)."""
        return list_backups(self.backend)

    def prune_remote(self, remove: Iterable[str], *, dry_run: bool = False) -> list[str]:
        """Delete exactly the named remote backups (see :func:`prune_remote`)."""
        return prune_remote(self.backend, remove, dry_run=dry_run)

    def reader(self, name: str) -> RemoteBackupReader:
        """Read a remote backup's files as streams (see :class:`RemoteBackupReader`)."""
        return RemoteBackupReader(self.backend, name)

    def close(self) -> None:
        self.backend.close()


def _method(methods: set[str]) -> str:
    real = methods - {"stat", "size"}
    if not real:
        return "none"
    return real.pop() if len(real) == 1 else "mixed"


def _hash_local(path: Path) -> str:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(BLOCK):
                hasher.update(block)
    except OSError as exc:
        raise IntegrityError(
            f"cannot read {path}: {exc.strerror}", hint="the local backup is damaged"
        ) from exc
    return hasher.hexdigest()


def _describe_local(local_dir: Path) -> tuple[str, dict[str, tuple[int, str]]]:
    """(marker, {file: (bytes, sha256)}) of a local backup directory.

    A plain backup is complete with its ``manifest.json`` (DONE); an encrypted one
    (:mod:`moodump.crypto`) with its ``encrypted.json``, which lists every ``.age``
    file's ciphertext size and sha256 (``manifest.json.age`` included), so its copy is
    checked without the key. The marker is uploaded last.
    """
    if (local_dir / ENCRYPTED_MANIFEST_NAME).is_file():
        em = read_encrypted_manifest(local_dir)
        return ENCRYPTED_MANIFEST_NAME, {f.name: (f.bytes, f.sha256) for f in em.files}
    manifest = read_done_manifest(local_dir)
    return MANIFEST_NAME, {f.name: (f.bytes, f.sha256) for f in manifest.files}


def _local_files(
    local_dir: Path, listed: dict[str, tuple[int, str]], marker: str = MANIFEST_NAME
) -> list[_LocalFile]:
    """Every file of the backup directory, data first, the marker last.

    Sizes are checked against the listing here (cheap); the sha256 of listed files is
    checked while uploading. Files it does not list (the marker itself, verify.json;
    both small) are hashed here.
    """
    found: dict[str, Path] = {}
    for path in sorted(local_dir.rglob("*")):
        if path.is_symlink():  # a backup holds none; one could lead out of it
            raise IntegrityError(
                f"{path} is a symbolic link; a backup holds only regular files",
                hint="the local backup was altered; do not copy it off-site",
            )
        if path.is_file():
            found[path.relative_to(local_dir).as_posix()] = path
    missing = sorted(set(listed) - set(found))
    if missing:
        raise IntegrityError(
            f"{local_dir} lacks {len(missing)} file(s) its manifest lists: "
            + ", ".join(missing[:5]),
            hint="the local backup is damaged; use another backup",
        )
    out: list[_LocalFile] = []
    for rel, path in found.items():
        size = path.stat().st_size
        entry = listed.get(rel)
        if entry is not None and entry[0] != size:
            raise IntegrityError(
                f"{path} has {size} bytes but its manifest says {entry[0]}",
                hint="the local backup is damaged; use another backup",
            )
        digest = entry[1] if entry is not None else _hash_local(path)
        out.append(_LocalFile(rel, path, size, digest))
    last = {marker: 2, VERIFY_NAME: 1}
    out.sort(key=lambda f: (last.get(f.rel, 0), f.rel))
    return out


__all__ = [
    "PARTIAL_SUFFIX",
    "OffsiteTarget",
    "RecheckResult",
    "RemoteBackup",
    "RemoteBackupReader",
    "UploadResult",
    "list_backups",
    "prune_remote",
    "recheck",
    "remote_names_to_prune",
    "stored_problems",
    "upload",
]
