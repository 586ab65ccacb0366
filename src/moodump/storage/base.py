"""The one contract every storage backend keeps (local directory, FTPS, S3).

A backend is a flat key space of objects below a root: a directory, an FTP path, or an
S3 bucket plus prefix. Keys are ``/``-separated relative paths (``NAME/data/t.tsv.gz``);
:func:`check_key` rejects anything else. Every backend passes the same test suite
(``tests/test_storage_conformance.py``), which is the executable form of this contract:

Writes
    :meth:`Backend.put_file` / :meth:`Backend.put_stream` / :meth:`Backend.put_bytes`.
    The sha256 of what was read from the source is computed while sending. When the
    caller gives the expected ``sha256`` and the source does not match it, the source is
    damaged: :class:`~moodump.errors.IntegrityError`, and nothing is left at the key.
    After the transfer the backend proves that the stored object holds the bytes sent:
    by a checksum the server computes (FTP ``HASH``/``XSHA256``, the S3 ETag of the
    parts) or by reading the object back and hashing it (never by a listed size, which
    some S3 servers report wrongly). A stored object that differs is removed and a
    :class:`TransientError` raised, so the retry policy sends it again.

Atomic visibility
    An interrupted write leaves no object at the key: local and FTPS write a temporary
    name in the same directory and rename it; S3 uploads in parts that only become an
    object when the upload is completed. S3 has one exception, documented in
    :mod:`moodump.storage.s3`: pyarrow cannot abort an upload, so a failure *inside* the
    process may complete the partial object, which the backend then deletes at once.
    A crash or a kill never completes it.

Reads
    :meth:`Backend.open_read` streams an object without staging it on disk;
    :meth:`Backend.get_file` downloads it atomically (temp file and rename).

Resume
    :meth:`Backend.check` tells whether a key already holds exactly the expected bytes
    (sha256, and the local file when there is one), using the cheapest check that
    proves it, so a re-run after a crash does not send completed files again.

Failures
    Wrong credentials: :class:`~moodump.errors.StorageAuthError` (exit code 3). A missing
    root (directory, bucket): :class:`~moodump.errors.StorageError` naming it. Transient
    network failures are retried with exponential backoff (:class:`RetryPolicy`; the
    ``sleep`` is injectable so tests never wait). Every message names the problem and
    the next step. Secrets are registered with :func:`moodump.logs.register_secret` and
    never appear in messages, logs or ``repr``.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TypeVar

from moodump.errors import ConfigError, IntegrityError, StorageError
from moodump.fsmodes import mkstemp
from moodump.storage.keys import (
    TEMP_PREFIX,
    check_key,
    check_prefix,
    join_key,
    quote_url_path,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

BLOCK = 1 << 20


class TransientError(StorageError):
    """A storage failure that another attempt may fix (network, timeout, damaged transfer)."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object. ``size`` is what the server reports.

    Exact for local and FTPS; informative only for S3, where some servers (SeaweedFS)
    list multipart objects with a wrong size. Never decide integrity on it.
    """

    key: str
    size: int | None


@dataclass(frozen=True)
class PutResult:
    """A stored and checked object.

    ``check`` says how the stored bytes were proven equal to the bytes sent:
    ``"local-hash"`` (local file system: hashed while written and fsynced),
    ``"server-hash"`` (the FTP server's HASH/XSHA256), ``"download"`` (read back over
    FTP and hashed), ``"etag"`` (S3 ETag, the MD5 of each part computed by the server),
    ``"read-back"`` (read back from S3 and hashed).
    """

    key: str
    size: int
    sha256: str
    check: str


@dataclass(frozen=True)
class Check:
    """The answer of :meth:`Backend.check`: ``problem`` is None when the object matches."""

    problem: str | None
    method: str

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried.

    Attempt ``n`` (1-based) that fails waits ``backoff_s * 2**(n-1)``, capped at
    ``max_backoff_s``, before attempt ``n+1``; ``retries`` is the number of attempts
    after the first.
    """

    retries: int = 3
    backoff_s: float = 5.0
    max_backoff_s: float = 300.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ConfigError(
                "storage retries and backoff must not be negative",
                hint="fix the retry settings",
            )

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_s * (2 ** (attempt - 1)), self.max_backoff_s))


class Backend(ABC):
    """A flat key space of objects below a root (see the module docstring for the contract).

    Subclasses implement the abstract methods; every public method validates its keys,
    maps foreign exceptions to moodump errors and retries :class:`TransientError`
    according to ``retry``. ``retried`` counts the retries done so far (callers report
    attempts from it).
    """

    #: Whether :meth:`rename_prefix` works (local, FTPS); S3 has no rename.
    can_rename: bool = False
    #: Whether :attr:`ObjectInfo.size` can be trusted (not on S3).
    exact_sizes: bool = True
    #: Whether the size :meth:`stat` gives for one object is its length (on S3 too: a
    #: HEAD's Content-Length, where only the listing's sizes may be wrong).
    exact_stat_sizes: bool = True
    #: How many puts may run at once from different threads (a backup has hundreds of
    #: small files: per-object round trips dominate unless they overlap). 1 for a backend
    #: with one session (FTPS).
    max_concurrency: int = 1

    def __init__(
        self, *, retry: RetryPolicy | None = None, sleep: Callable[[float], None] | None = None
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._sleep = sleep or time.sleep
        self.retried = 0

    # -- description -------------------------------------------------------------------

    @property
    @abstractmethod
    def display(self) -> str:
        """Where the objects are, as a URL without secrets (for logs and messages)."""

    def where(self, key: str) -> str:
        """A human-readable location of ``key`` (for messages and results)."""
        return f"{self.display.rstrip('/')}/{key}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display}>"

    # -- writing -----------------------------------------------------------------------

    def put_file(self, key: str, path: Path | str, *, sha256: str | None = None) -> PutResult:
        """Upload the local file ``path`` to ``key`` (replacing it), atomically and checked.

        ``sha256`` is the digest the file must have; a file that does not match is
        local damage (IntegrityError, no object left). Transient failures are retried
        from the start of the file.
        """
        check_key(key)
        path = Path(path)

        def attempt() -> PutResult:
            try:
                fh = path.open("rb", buffering=0)
            except OSError as exc:
                raise IntegrityError(
                    f"cannot read {path}: {exc.strerror or exc}",
                    hint="check the local file (it must exist and be readable)",
                ) from exc
            with fh:
                return self._put(key, fh, sha256)

        return self._retrying(f"upload {self.where(key)}", attempt)

    def put_stream(self, key: str, stream: BinaryIO, *, sha256: str | None = None) -> PutResult:
        """Upload everything ``stream`` yields to ``key``, atomically and checked.

        Retried only when the stream is seekable (it is rewound to where it started);
        a pipe gets one attempt.
        """
        check_key(key)
        start = stream.tell() if _seekable(stream) else None

        def attempt() -> PutResult:
            if start is not None:
                stream.seek(start)
            return self._put(key, stream, sha256)

        if start is None:
            return self._once(f"upload {self.where(key)}", attempt)
        return self._retrying(f"upload {self.where(key)}", attempt)

    def put_bytes(self, key: str, data: bytes) -> PutResult:
        """Store ``data`` at ``key`` (small objects such as manifests)."""
        return self.put_stream(key, io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest())

    # -- reading -----------------------------------------------------------------------

    def open_read(self, key: str) -> BinaryIO:
        """A sequential stream of the object's bytes (no seeking, nothing staged on disk).

        StorageError when it does not exist. Close it when done.
        """
        check_key(key)
        return self._retrying(f"open {self.where(key)}", lambda: self._open_read(key))

    def read_bytes(self, key: str) -> bytes:
        """The whole object (small objects only)."""
        with self.open_read(key) as fh:
            return fh.read()

    def get_file(self, key: str, dest: Path | str, *, sha256: str | None = None) -> str:
        """Download ``key`` to ``dest`` atomically (temp file + rename); returns its sha256.

        With ``sha256`` given, a download that does not match is retried, then fails
        with StorageError; ``dest`` is never left half-written.
        """
        check_key(key)
        dest = Path(dest)

        def attempt() -> str:
            fd, tmp = mkstemp(dest.parent, prefix=TEMP_PREFIX)
            try:
                hasher = hashlib.sha256()
                with os.fdopen(fd, "wb") as out, self._open_read(key) as src:
                    while block := src.read(BLOCK):
                        hasher.update(block)
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                digest = hasher.hexdigest()
                if sha256 is not None and digest != sha256:
                    raise TransientError(
                        f"{self.where(key)} arrived with a different sha256",
                        hint="the download is retried; if it persists the remote copy is damaged",
                    )
                os.replace(tmp, dest)
                return digest
            except BaseException:
                _unlink(Path(tmp))
                raise

        try:
            return self._retrying(f"download {self.where(key)}", attempt)
        except OSError as exc:
            raise StorageError(
                f"cannot write {dest}: {exc.strerror or exc}", hint="check the local directory"
            ) from exc

    def list(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """Every object below ``prefix`` (recursive), keys relative to the root, sorted.

        A prefix that does not exist gives an empty list; so does a missing root when the
        backend was opened with ``create`` (else StorageError naming it).
        """
        prefix = check_prefix(prefix)
        return self._retrying(f"list {self.where(prefix)}", lambda: self._list(prefix))

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        """Names of the immediate sub-prefixes ("directories") of ``prefix``, sorted.

        Local and FTPS: every sub-directory, empty ones included. S3 has no directories:
        the sub-prefixes that hold objects.
        """
        prefix = check_prefix(prefix)
        return self._retrying(f"list {self.where(prefix)}", lambda: self._list_dirs(prefix))

    def stat(self, key: str) -> ObjectInfo | None:
        """The object at ``key``, or None when there is none."""
        check_key(key)
        return self._retrying(f"look up {self.where(key)}", lambda: self._stat(key))

    def root_missing(self) -> bool:
        """Whether the root itself (a directory: local, FTPS) does not exist, so nothing
        can be stored below it: for telling "no such copy" from other failures. False
        where the root is not a directory (an S3 bucket that is missing is an error of
        its own)."""
        return False

    def sha256(self, key: str) -> str:
        """The sha256 of the stored object: the server's own hash where it offers one,
        else read back and hashed (streaming)."""
        check_key(key)
        return self._retrying(f"hash {self.where(key)}", lambda: self._hash_back(key)[0])

    def check(
        self, key: str, *, sha256: str, size: int | None = None, local: Path | None = None
    ) -> Check:
        """Whether ``key`` holds exactly the expected bytes (for resume and re-checks).

        ``sha256``/``size`` describe the expected content; ``local`` is a local file with
        that content, which lets some backends use a cheaper proof (the S3 ETag). Its
        ``problem`` names what differs: ``"is missing"``,
        ``"has N bytes, expected M"`` or ``"has a different sha256"``.
        """
        check_key(key)
        return self._retrying(
            f"check {self.where(key)}", lambda: self._check(key, sha256, size, local)
        )

    # -- deleting and renaming -----------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Delete one object; False when there was none."""
        check_key(key)
        return self._retrying(f"delete {self.where(key)}", lambda: self._delete(key))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object below ``prefix`` (which must not be ""); returns how many.

        Temporary objects of interrupted uploads below it go too.
        """
        prefix = check_prefix(prefix)
        if not prefix:
            raise ConfigError(
                "refusing to delete everything below the storage root",
                hint="name the prefix to delete",
            )
        return self._retrying(f"delete {self.where(prefix)}", lambda: self._delete_prefix(prefix))

    def rename_prefix(self, src: str, dst: str) -> None:
        """Rename the "directory" ``src`` to ``dst``, which must not exist.

        Only when :attr:`can_rename`; publishing a directory this way is atomic.
        """
        check_prefix(src)
        check_prefix(dst)
        if not self.can_rename:
            raise StorageError(
                f"{self.display} cannot rename", hint="this is a bug: check can_rename first"
            )
        self._retrying(f"rename {self.where(src)}", lambda: self._rename_prefix(src, dst))

    def close(self) -> None:  # noqa: B027  (nothing to release by default)
        """Release connections. The backend may not be used afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what subclasses implement -------------------------------------------------------

    @abstractmethod
    def _put(self, key: str, stream: BinaryIO, sha256: str | None) -> PutResult:
        """One attempt at an atomic, checked upload (see :meth:`put_stream`)."""

    @abstractmethod
    def _open_read(self, key: str) -> BinaryIO:
        """One attempt at opening a read stream."""

    def _hash_back(self, key: str) -> tuple[str, int | None, str]:
        """(sha256, bytes or None when not counted, method) of the stored object.

        By default read back and hashed; backends with a server-side hash override it.
        """
        hasher = hashlib.sha256()
        count = 0
        with self._open_read(key) as fh:
            while block := fh.read(BLOCK):
                hasher.update(block)
                count += len(block)
        return hasher.hexdigest(), count, "read-back"

    def _check(self, key: str, sha256: str, size: int | None, local: Path | None) -> Check:
        info = self._stat(key)
        if info is None:
            return Check("is missing", "stat")
        known = info.size is not None and (self.exact_sizes or self.exact_stat_sizes)
        if known and size is not None and info.size != size:
            return Check(f"has {info.size} bytes, expected {size}", "size")
        digest, count, method = self._hash_back(key)
        if size is not None and count is not None and count != size:
            return Check(f"has {count} bytes, expected {size}", method)
        if digest != sha256:
            return Check("has a different sha256", method)
        return Check(None, method)

    @abstractmethod
    def _list(self, prefix: str) -> builtins.list[ObjectInfo]: ...

    @abstractmethod
    def _list_dirs(self, prefix: str) -> builtins.list[str]: ...

    @abstractmethod
    def _stat(self, key: str) -> ObjectInfo | None: ...

    @abstractmethod
    def _delete(self, key: str) -> bool: ...

    @abstractmethod
    def _delete_prefix(self, prefix: str) -> int: ...

    def _rename_prefix(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def _on_transient(self) -> None:  # noqa: B027  (hook; nothing to reset by default)
        """Called after a transient failure, before the retry (drop broken connections)."""

    # -- helpers for subclasses ------------------------------------------------------------

    def _retrying(self, action: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying :class:`TransientError` with exponential backoff."""
        attempts = 1 + self.retry.retries
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except TransientError as exc:
                self._on_transient()
                if attempt == attempts:
                    if attempt > 1:
                        exc.message = f"{exc.message} (after {attempt} attempts)"
                    raise
                delay = self.retry.delay(attempt)
                log.warning(
                    "%s failed (attempt %d of %d): %s; retrying in %g s",
                    action,
                    attempt,
                    attempts,
                    exc.message,
                    delay,
                )
                self.retried += 1
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except TransientError:
            self._on_transient()
            raise


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove the temporary file %s: %s", path, exc.strerror or exc)


def read_exact(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of the stream (pipes return short reads)."""
    first = stream.read(size)
    if not first or len(first) == size:
        return first or b""
    chunks = [first]
    have = len(first)
    while have < size:
        more = stream.read(size - have)
        if not more:
            break
        chunks.append(more)
        have += len(more)
    return b"".join(chunks)


def read_source(stream: BinaryIO, size: int, key: str, *, exact: bool = False) -> bytes:
    """Read from an upload's source; its read errors are local damage, not the server's.

    ``exact`` reads until ``size`` bytes or the end (see :func:`read_exact`).
    """
    try:
        block = read_exact(stream, size) if exact else stream.read(size)
    except OSError as exc:
        raise IntegrityError(
            f"cannot read the source of {key}: {exc.strerror or exc}",
            hint="check the local file",
        ) from exc
    return block or b""


def source_name(stream: BinaryIO, key: str) -> str:
    """How to name an upload's source in messages: its file name when it has one."""
    name = getattr(stream, "name", None)
    return f"local file {name}" if isinstance(name, str) else f"the source of {key}"


def local_damage(what: str, digest: str, expected: str) -> IntegrityError:
    """The error for a source whose sha256 is not the expected one."""
    return IntegrityError(
        f"{what} does not match its manifest (sha256 {digest[:12]}..., "
        f"manifest says {expected[:12]}...)",
        hint="the local backup is damaged; do not copy it off-site, use another backup",
    )


__all__ = [
    "BLOCK",
    "TEMP_PREFIX",
    "Backend",
    "Check",
    "ObjectInfo",
    "PutResult",
    "RetryPolicy",
    "TransientError",
    "check_key",
    "check_prefix",
    "join_key",
    "local_damage",
    "quote_url_path",
    "read_exact",
    "read_source",
    "source_name",
]
