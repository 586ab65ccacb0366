"""Reading a backup where it lies: a local directory, or an off-site copy by its URL.

``moodump restore s3://bucket/prefix/<backup>`` and ``moodump verify ...`` name a copy
by URL; :func:`open_backup` turns that into a :class:`~moodump.source.BackupSource`
that streams each file from the bucket (nothing is staged on disk), decrypting it on
the way when the copy is encrypted. :func:`latest` finds the newest verified copy of a
database on a target, for ``--latest``.

URLs: ``s3://bucket[/prefix]/NAME`` (endpoint and credentials from the ``S3_*``
settings, never from the URL), ``ftp://`` or ``ftps://host[:port]/path/NAME`` (account
from ``FTP_USER``/``FTP_PASSWORD``), ``file:///path/NAME``, or a plain path.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone, tzinfo
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from moodump.catalog import group_by_database, scan_backups
from moodump.crypto import Identity
from moodump.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    StorageAuthError,
    StorageError,
)
from moodump.manifest import MANIFEST_NAME
from moodump.naming import parse_backup_name
from moodump.offsite.catalog import RemoteBackupInfo, newest, scan_remote
from moodump.offsite.remote import OffsiteTarget, some_problems, stored_problems
from moodump.source import BackupSource, LocalSource, as_source
from moodump.storage import Backend, open_backend
from moodump.storage.base import TransientError, quote_url_path
from moodump.storage.s3_settings import s3_settings_from_env

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str) -> bool:
    """True for ``scheme://...`` locations: those moodump reads remotely, and any other
    scheme (``gs://``, ``https://``), which opening refuses by name instead of looking
    for a local folder of that name."""
    return bool(_SCHEME.match(location))


class RemoteSource(BackupSource):
    """A backup copy ``NAME/`` on a storage backend, read object by object."""

    def __init__(self, backend: Backend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.where = backend.where(name)
        self.local_dir = None
        self._cache: dict[str, bytes] = {}
        self._once: set[str] = set()

    def prefetch(self, names: Sequence[str], *, once: bool = False) -> None:
        """Read small objects concurrently into memory, served from there when opened."""
        todo = [n for n in dict.fromkeys(names) if n not in self._cache]
        if once:
            self._once.update(todo)
        if not todo:
            return
        # Latency-bound (a request or two per object): more in flight than for uploads.
        workers = max(1, min(4 * self.backend.max_concurrency, len(todo)))
        with ThreadPoolExecutor(workers, thread_name_prefix="moodump-prefetch") as pool:
            for name, data in zip(todo, pool.map(self._fetch, todo), strict=True):
                self._cache[name] = data

    def check_stored(self, stored: Sequence[tuple[str, int]]) -> None:
        """One listing of the copy: every file is there (and, where the backend lists
        exact sizes, has its size), so a copy that lost a file fails before a restore
        touches its target instead of half-way (each file's sha256 is still checked
        as it streams)."""
        problems = stored_problems(self.backend, self.name, stored)
        if problems:
            raise IntegrityError(
                f"the off-site copy {self.where} does not hold what its manifest lists: "
                + some_problems(problems),
                hint="the copy is incomplete or damaged; nothing was changed; use another "
                "backup (moodump list --offsite) or upload it again",
            )

    def _fetch(self, name: str) -> bytes:
        with self._open_remote(name) as fh:
            return fh.read()

    def read_bytes(self, name: str) -> bytes:
        if name == MANIFEST_NAME:  # read several times by a restore: fetch it once
            if MANIFEST_NAME not in self._cache:
                self._cache[MANIFEST_NAME] = super().read_bytes(name)
            return self._cache[MANIFEST_NAME]
        return super().read_bytes(name)

    def open(self, name: str) -> BinaryIO:
        # Kept unless read once: a restore reads each schema file twice.
        cached = self._cache.pop(name, None) if name in self._once else self._cache.get(name)
        if cached is not None:
            return io.BytesIO(cached)
        return self._open_remote(name)

    def _open_remote(self, name: str) -> BinaryIO:
        key = f"{self.name}/{name}"
        try:
            return self.backend.open_read(key)
        except (TransientError, StorageAuthError):
            raise  # its retries are spent, or the key is refused: a look-up would repeat it
        except StorageError:
            if self.backend.root_missing():  # a typo in the URL's path, as on S3
                raise NotFoundError(
                    f"there is no copy {self.name} at {self.backend.display}: "
                    "that directory does not exist",
                    hint="check the URL; moodump list --offsite shows the copies and their URLs",
                ) from None
            if self.backend.stat(key) is None:
                if not self.backend.list(self.name):  # no copy at all: a typo, or pruned
                    raise NotFoundError(
                        f"there is no copy {self.name} at {self.backend.display}",
                        hint="check the name; moodump list --offsite shows the copies and "
                        "their URLs",
                    ) from None
                raise IntegrityError(
                    f"{name} is missing from the off-site copy {self.where}",
                    hint="the copy is incomplete; use another backup (moodump list --offsite)",
                ) from None
            raise

    def close(self) -> None:
        self.backend.close()


def split_location(url: str) -> tuple[str, str]:
    """``(root URL, backup name)`` of ``.../NAME``; ConfigError when NAME is no backup's."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL": an unclosed [
        raise ConfigError(
            f"{url} is not a valid URL: {exc}",
            hint="moodump list --offsite shows the copies and their URLs",
        ) from None
    path = parts.path.rstrip("/")
    head, _, quoted = path.rpartition("/")
    name = unquote(quoted)  # the URLs moodump shows escape %, #, ? and spaces
    if parse_backup_name(name) is None:
        raise ConfigError(
            f"{url} does not end in a backup's name (<host>-<db>_YYYY-MM-DD_HH-MM-SS)",
            hint="moodump list --offsite shows the copies and their URLs",
        )
    root = parts._replace(path=head or "/").geturl()
    return root, name


def open_backup(
    location: str | Path,
    *,
    identities: Sequence[Identity] = (),
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    decrypt: bool = True,
) -> BackupSource:
    """A source for a local backup directory or an off-site copy's URL.

    An encrypted backup is decrypted with ``identities``; without a matching one,
    :class:`~moodump.errors.DecryptionError` (exit 13) names the keys it needs, before
    anything else happens. ``decrypt=False`` gives the stored bytes (for a key-less
    check of the ciphertext).
    """
    text = str(location)
    if not is_url(text):
        local = LocalSource(text)
        return as_source(local, identities) if decrypt else local
    root, name = split_location(text)
    backend = open_backend(root, env=dict(os.environ) if env is None else env, sleep=sleep)
    try:
        remote = RemoteSource(backend, name)
        return as_source(remote, identities) if decrypt else remote
    except BaseException:
        backend.close()
        raise


def latest(
    root: str,
    database: str,
    tz: tzinfo,
    *,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, RemoteBackupInfo]:
    """The URL and description of the newest verified copy of ``database`` below ``root``.

    ``database`` is a core name (``<host>-<db>``). NotFoundError names the newest
    unverified copy, if there is one, so the operator can choose it explicitly.
    """
    backend = open_backend(root, env=dict(os.environ) if env is None else env, sleep=sleep)
    target = OffsiteTarget(backend)
    try:
        infos = scan_remote(target, tz)
    except (TransientError, StorageAuthError):
        raise
    except StorageError:
        if not backend.root_missing():
            raise
        infos = []  # a directory that does not exist holds no copies (as an S3 prefix)
    finally:
        target.close()
    best = newest(infos, database)
    if best is None:
        fallback = newest(infos, database, verified=False)
        known = sorted({i.core for i in infos})
        hint = (
            f"the newest complete but unverified copy is {fallback.name}: name it to restore it"
            if fallback is not None
            else f"copies found for: {', '.join(known) or 'nothing'}"
        )
        raise NotFoundError(f"no verified copy of {database} in {root}", hint=hint)
    return root.rstrip("/") + "/" + quote_url_path(best.name), best


def core_of(spec: str) -> str:
    """``[type=]host[:port]/db`` -> ``host-db``; a core name (``host-db``) stays as it is."""
    if "/" not in spec:
        return spec
    hostport, _, db = spec.split("=", 1)[-1].partition("/")
    return f"{hostport.split(':', 1)[0]}-{db.split('?', 1)[0]}"


def default_offsite_root(env: Mapping[str, str]) -> str:
    """``s3://S3_BUCKET/S3_PREFIX`` of the configured S3 target (ConfigError when none)."""
    settings = s3_settings_from_env(env)
    if settings is None:
        raise ConfigError(
            "no location given and no S3 target configured",
            hint="name one: s3://bucket/prefix, ftps://host/path/ or a backup folder; or set "
            "S3_ENDPOINT and S3_BUCKET",
        )
    return f"s3://{settings.bucket}/{quote_url_path(settings.prefix)}".rstrip("/")


def locate_backup(
    location: str | None,
    *,
    latest_of: str | None = None,
    identities: Sequence[Identity] = (),
    tz: tzinfo | None = None,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BackupSource:
    """The backup ``moodump restore``/``verify`` were pointed at, opened as a source.

    ``location`` is a backup (a directory or a copy's URL); with ``latest_of`` (a
    database spec or core name) it is where to look instead (a bucket or FTPS URL, or a
    local BACKUP_DIR; default: the configured S3 target), and the newest verified
    backup of that database there is opened.
    """
    env = dict(os.environ) if env is None else env
    if latest_of is None:
        if not location:
            raise ConfigError("no backup given", hint="name a backup folder or a copy's URL")
        return open_backup(location, identities=identities, env=env, sleep=sleep)
    zone = tz or timezone.utc
    core = core_of(latest_of)
    root = location or default_offsite_root(env)
    if is_url(root):
        url, _info = latest(root, core, zone, env=env, sleep=sleep)
        return open_backup(url, identities=identities, env=env, sleep=sleep)
    groups = group_by_database(scan_backups(Path(root), zone), [core])
    best = next((g.newest_verified for g in groups if g.core == core), None)
    if best is None:
        raise NotFoundError(
            f"no verified backup of {core} in {root}",
            hint="moodump list shows the backups; name one to restore it",
        )
    return open_backup(best.path, identities=identities, env=env, sleep=sleep)


__all__ = [
    "RemoteSource",
    "core_of",
    "default_offsite_root",
    "is_url",
    "latest",
    "locate_backup",
    "open_backup",
    "split_location",
]
