"""An S3 bucket (AWS, MinIO, Ceph RGW, SeaweedFS...) as a storage backend, via pyarrow.fs.

Settings come from :class:`S3Settings`, or from the old backup-container's variables
through :func:`s3_settings_from_env` (``S3_ENDPOINT``, ``S3_USER``, ``S3_PASSWORD``,
``S3_BUCKET``, unchanged; see docs/storage.md).

Uploads
    The source is read in parts of :data:`PART_SIZE` (10 MiB, pyarrow's own part size,
    so every write becomes exactly one part of the multipart upload); each part is
    hashed (sha256 of the whole, MD5 of the part) and handed to pyarrow, which uploads
    parts in the background while the next one is read. The object appears only when
    the upload is completed.

Integrity check
    After the upload the object's ETag (HEAD) is compared with the ETag the parts must
    give: S3 servers compute it as the MD5 of the concatenated part MD5s plus ``-N``
    (AWS without SSE-KMS/SSE-C, MinIO, Ceph, SeaweedFS). When it does not match (an
    encrypting server, another part layout), the object is read back and hashed
    instead, and a real difference deletes the object and raises TransientError
    (retried).
    Listed sizes are never used: SeaweedFS lists multipart objects with wrong sizes.

What pyarrow cannot do, and what this backend does instead
    - **No abort.** pyarrow's output stream has no ``abort()``; closing it, explicitly or
      when it is garbage-collected, *completes* the upload with whatever was written.
      So a failure inside this process in the middle of a file (a local read error,
      Ctrl-C, a source that does not match its sha256, a network error while sending)
      may complete a partial object, which the backend deletes at once. A reader could see it for that moment, and a
      failed replacement leaves the key empty rather than with the old object. Files
      of one part (up to 10 MiB: manifests, schemas, most data files) are read and
      checked completely before the upload starts, so they never appear partially. A
      crash or a kill never completes an upload (configure the bucket's
      ``AbortIncompleteMultipartUpload`` lifecycle rule to reclaim the parts).
      Keeping the stream referenced instead of closing it was tried: the interpreter
      then hangs at exit in pyarrow's S3 finalizer.
    - **No user metadata.** pyarrow passes only ``ACL``, ``Cache-Control``,
      ``Content-Type``, ``Content-Language``, ``Content-Encoding``,
      ``Content-Disposition`` and ``Expires``; ``x-amz-meta-*`` is silently dropped
      (checked with pyarrow 26 against SeaweedFS). Resume therefore compares the ETag
      with the local file's part MD5s (and the local file's sha256 with the expected
      one), which proves more than a recorded digest would.
    - **Compression by file name.** ``open_output_stream``/``open_input_stream`` default
      to ``compression="detect"``: a key ending in ``.gz`` (every moodump data file)
      would be gzipped again on upload and gunzipped on download, so the bucket would
      hold double-compressed files that only pyarrow reads back as they were. This
      backend always passes ``compression=None``.
    - ``request_timeout`` only takes effect on Windows and macOS (pyarrow's docs); on
      Linux only ``connect_timeout`` applies.

Buckets
    The bucket is checked (HEAD) before the first operation: SeaweedFS creates a missing
    bucket on the first write, so a typo in ``S3_BUCKET`` would otherwise go unnoticed.
    With ``create_bucket`` it is created instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from moodump.errors import ConfigError, MoodumpError, StorageError
from moodump.logs import register_secret
from moodump.storage.base import (
    Backend,
    Check,
    ObjectInfo,
    PutResult,
    RetryPolicy,
    TransientError,
    check_prefix,
    join_key,
    local_damage,
    quote_url_path,
    read_source,
    source_name,
)
from moodump.storage.etag import PART_SIZE, _hash_local, _PartHasher, expected_etags
from moodump.storage.s3_errors import diagnose, server_clock_offset
from moodump.storage.s3_settings import _AWS_HOST, S3Settings, parse_endpoint

log = logging.getLogger(__name__)

#: Reads ask for this much at a time: each read is an HTTP range request, and 1 MiB
#: requests reach about half the throughput of 8 MiB ones (SeaweedFS on loopback).
READ_SIZE = 8 * 1024 * 1024

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class _InputStream(io.RawIOBase):
    """A pyarrow input stream as a Python binary stream, mapping its errors."""

    def __init__(self, native: Any, backend: S3Backend, key: str) -> None:
        self._native = native
        self._backend = backend
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._native.read(len(buffer))
        except OSError as exc:
            raise self._broken(exc) from exc
        n = len(data)
        buffer[:n] = data
        return n

    def readall(self) -> bytes:
        # RawIOBase's readall reads 8 KiB at a time, and every read is an HTTP request.
        return self.read(-1)

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(
                self._native.read() if size is None or size < 0 else self._native.read(size)
            )
        except OSError as exc:
            raise self._broken(exc) from exc

    def _broken(self, exc: OSError) -> MoodumpError:
        error = self._backend._map(exc, f"reading {self._key}")
        if isinstance(error, TransientError):
            # A stream that broke off is not retried (its reader has consumed part of
            # it); what retries a whole read (a hash, a download) says so itself.
            error.hint = (
                "the connection broke off while reading: check S3_ENDPOINT, that the server "
                "is up and that the network allows it"
            )
        return error

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                self._native.close()
        super().close()


class S3Backend(Backend):
    """The objects below ``s3://bucket/prefix/``.

    pyarrow is imported on first use (it takes a while to load). ``sleep`` (between
    retries) is injectable so tests never wait on the wall clock.
    """

    can_rename = False
    max_concurrency = 8  # pyarrow's S3 filesystem is thread-safe; small objects overlap
    exact_sizes = False  # listings may be wrong (SeaweedFS); a HEAD is exact

    def __init__(
        self, settings: S3Settings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if not _BUCKET_NAME.match(settings.bucket) or ".." in settings.bucket:
            raise ConfigError(
                f"{settings.bucket!r} is not a valid S3 bucket name",
                hint="bucket names are 3-63 lower-case letters, digits, dots and hyphens",
            )
        if settings.endpoint:
            self._scheme, self._host = parse_endpoint(settings.endpoint)
        else:
            self._scheme, self._host = "https", ""
        if settings.connect_timeout_s <= 0 or settings.request_timeout_s <= 0:
            raise ConfigError("S3 timeouts must be > 0", hint="fix the S3 timeout settings")
        if settings.sdk_attempts < 1:
            raise ConfigError("S3 SDK attempts must be >= 1", hint="fix the S3 settings")
        if bool(settings.access_key) != bool(settings.secret_key) or (
            settings.session_token and not settings.access_key
        ):
            missing = "S3_PASSWORD (secret key)" if settings.access_key else "S3_USER (access key)"
            raise ConfigError(
                f"{missing} is empty while the rest of the S3 key is set",
                hint=(
                    f"set {missing.split()[0]} (or its _FILE form: is the Secret mounted?), "
                    "or unset S3_USER, S3_PASSWORD and S3_SESSION_TOKEN to use the AWS "
                    "SDK's own credentials (environment, instance or pod role)"
                ),
            )
        try:
            self.prefix = check_prefix(settings.prefix.strip("/"))
        except ConfigError as exc:
            raise ConfigError(
                f"S3_PREFIX {settings.prefix!r} is not a usable key prefix: "
                + exc.message.split(": ", 1)[-1],
                hint="use /-separated names without empty, '.' or '..' parts, e.g. moodle/prod",
            ) from exc
        super().__init__(
            retry=RetryPolicy(settings.retries, settings.backoff_s, settings.max_backoff_s),
            sleep=sleep,
        )
        self.settings = settings
        register_secret(settings.secret_key)
        register_secret(settings.session_token)
        self._fs_obj: Any = None
        self._bucket_ok = False
        self._pool: ThreadPoolExecutor | None = None
        self._clock_offset: float | None = None  # the server's clock minus ours, seconds
        self._clock_checked = False
        self._etag_hits = 0  # uploads whose ETag proved them
        self._etag_misses = 0  # uploads that had to be read back

    @property
    def display(self) -> str:
        return self.settings.display()

    def where(self, key: str) -> str:
        # a URL that open_backend/open_backup read back as this very key
        return f"s3://{self.settings.bucket}/" + quote_url_path(join_key(self.prefix, key))

    @property
    def path_style(self) -> bool:
        if self.settings.path_style is not None:
            return self.settings.path_style
        return not (self._host and _AWS_HOST.search(self._host.rsplit(":", 1)[0]))

    # -- the contract ----------------------------------------------------------------------

    def _put(self, key: str, stream: BinaryIO, sha256: str | None) -> PutResult:
        fs = self._ready()
        path = self._path(key)
        hashes = _PartHasher(self._md5_pool())

        def next_block() -> bytes:
            block = read_source(stream, PART_SIZE, key, exact=True)
            if block:
                hashes.add(block)
            return block

        def verify_source() -> str:
            digest = hashes.sha256()
            if sha256 is not None and digest != sha256:
                raise local_damage(source_name(stream, key), digest, sha256)
            return digest

        # The first part is read (and, for a one-part object, checked) before the upload
        # starts: what is never written can never be completed by pyarrow's close.
        block = next_block()
        following = next_block() if len(block) == PART_SIZE else b""
        if not following:
            verify_source()
        try:
            # compression=None: the default ("detect") would gzip every key ending in .gz
            # on the way up (and gunzip it on the way down)
            out = fs.open_output_stream(path, compression=None)
        except OSError as exc:
            raise self._map(exc, f"starting the upload of {key}") from exc
        try:
            try:
                out.write(block)
                while following:
                    block, following = following, next_block()
                    out.write(block)
            except OSError as exc:
                raise self._map(exc, f"uploading {key}") from exc
            digest = verify_source()
        except BaseException:
            self._discard(out, path)
            raise
        try:
            out.close()
        except OSError as exc:
            raise self._map(exc, f"completing the upload of {key}") from exc

        method = self._verify_upload(key, digest, hashes.size, hashes.md5s())
        return PutResult(key, hashes.size, digest, method)

    def _md5_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="moodump-md5")
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def _verify_upload(self, key: str, digest: str, size: int, md5s: list[bytes]) -> str:
        """Prove the stored object holds the bytes sent (ETag, else read back)."""
        path = self._path(key)
        etag = self._etag(path)
        if etag is not None and etag in expected_etags(md5s):
            self._etag_hits += 1
            return "etag"
        stored, count, _ = self._hash_back(key)
        if stored == digest and count == size:
            if not self._etag_misses:
                log.info(
                    "%s: the ETag of %s is not the MD5 of the parts sent (an encrypting "
                    "server, such as AWS with SSE-KMS); such uploads are checked by "
                    "reading them back",
                    self.display,
                    key,
                )
            self._etag_misses += 1
            return "read-back"
        self._delete_quietly(path)
        raise TransientError(
            f"{self.where(key)} arrived damaged (it has {count} bytes and a different sha256 "
            f"than the {size} bytes sent)",
            hint="the transfer was damaged; it is retried",
        )

    def _hash_back(self, key: str) -> tuple[str, int | None, str]:
        hasher = hashlib.sha256()
        count = 0
        with self._open_read(key) as fh:
            while block := fh.read(READ_SIZE):
                hasher.update(block)
                count += len(block)
        return hasher.hexdigest(), count, "read-back"

    def _check(self, key: str, sha256: str, size: int | None, local: Path | None) -> Check:
        path = self._path(key)
        self._ready()
        etag = self._etag(path)
        if etag is None:
            return Check("is missing", "stat")
        if local is not None and (self._etag_hits or not self._etag_misses):
            # The ETag proves the object equals the local file, and the local file's
            # sha256 proves it is the expected content. A local file that does not have
            # the expected digest proves nothing: then the object is read back.
            digest, md5s, _ = _hash_local(local)
            if digest == sha256 and etag in expected_etags(md5s):
                return Check(None, "etag")
        return super()._check(key, sha256, size, local)

    def _open_read(self, key: str) -> BinaryIO:
        fs = self._ready()
        try:
            native = fs.open_input_stream(self._path(key), compression=None)
        except FileNotFoundError as exc:
            raise StorageError(
                f"{self.where(key)} does not exist",
                hint="check the name (list the remote backups)",
            ) from exc
        except OSError as exc:
            raise self._map(exc, f"opening {key}") from exc
        return io.BufferedReader(_InputStream(native, self, key), buffer_size=READ_SIZE)  # type: ignore[return-value]

    def _list(self, prefix: str) -> list[ObjectInfo]:
        import pyarrow.fs as pafs

        fs = self._ready()
        root = self._path("")
        try:
            infos = fs.get_file_info(
                pafs.FileSelector(self._path(prefix), recursive=True, allow_not_found=True)
            )
        except OSError as exc:
            raise self._map(exc, f"listing {prefix or 'the bucket'}") from exc
        out = [
            ObjectInfo(info.path[len(root) + 1 :], info.size)
            for info in infos
            if info.type == pafs.FileType.File and info.path.startswith(root + "/")
        ]
        return sorted(out, key=lambda i: i.key)

    def _list_dirs(self, prefix: str) -> list[str]:
        # From the objects, not from the "directories" S3 lists: pyarrow leaves an empty
        # "dir/" marker behind when it deletes a directory's last object, and SeaweedFS
        # keeps empty folders, so listed directories may hold nothing.
        start = len(prefix) + 1 if prefix else 0
        names = {i.key[start:].split("/", 1)[0] for i in self._list(prefix) if "/" in i.key[start:]}
        return sorted(names)

    def _stat(self, key: str) -> ObjectInfo | None:
        import pyarrow.fs as pafs

        fs = self._ready()
        try:
            info = fs.get_file_info(self._path(key))
        except OSError as exc:
            raise self._map(exc, f"looking up {key}") from exc
        return ObjectInfo(key, info.size) if info.type == pafs.FileType.File else None

    def _delete(self, key: str) -> bool:
        fs = self._ready()
        try:
            fs.delete_file(self._path(key))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._map(exc, f"deleting {key}") from exc
        return True

    def _delete_prefix(self, prefix: str) -> int:
        fs = self._ready()
        objects = self._list(prefix)
        if not objects:
            return 0
        try:
            fs.delete_dir(self._path(prefix))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise self._map(exc, f"deleting {prefix}/") from exc
        return len(objects)

    def arrow_filesystem(self) -> tuple[Any, str]:
        """The pyarrow S3 file system (the bucket checked, or created when allowed) and
        the ``bucket/prefix`` path below which this backend's keys live: for writers
        that need a file system rather than put/get (the Parquet export)."""
        return self._ready(), join_key(self.settings.bucket, self.prefix)

    # -- internals ------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return join_key(self.settings.bucket, self.prefix, key)

    def _filesystem(self) -> Any:
        if self._fs_obj is None:
            import pyarrow.fs as pafs

            s = self.settings
            kwargs: dict[str, Any] = {
                "access_key": s.access_key or None,
                "secret_key": s.secret_key or None,
                "session_token": s.session_token or None,
                "region": s.region or "us-east-1",
                "scheme": self._scheme,
                "connect_timeout": s.connect_timeout_s,
                "request_timeout": s.request_timeout_s,
                "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=s.sdk_attempts),
                "allow_bucket_creation": s.create_bucket,
                "background_writes": True,
                # Objects private to the bucket owner. Not "private": buckets with ACLs
                # disabled (AWS's default since 2023, "bucket owner enforced") refuse every
                # ACL but this one; with ACLs on it grants no one but the owner(s).
                "default_metadata": {"ACL": "bucket-owner-full-control"},
            }
            if self._host:
                kwargs["endpoint_override"] = self._host
                kwargs["force_virtual_addressing"] = not self.path_style
            if s.ca_file:
                if not Path(s.ca_file).is_file():
                    raise ConfigError(
                        f"the S3 CA bundle {s.ca_file} does not exist",
                        hint="check S3_CA_BUNDLE (a PEM file)",
                    )
                kwargs["tls_ca_file_path"] = s.ca_file
            if not s.access_key and not s.secret_key:
                kwargs.pop("access_key")
                kwargs.pop("secret_key")
                kwargs.pop("session_token")
            self._fs_obj = pafs.S3FileSystem(**kwargs)
        return self._fs_obj

    def _ready(self) -> Any:
        """The filesystem, after checking once that the bucket exists (or creating it)."""
        import pyarrow.fs as pafs

        fs = self._filesystem()
        if self._bucket_ok:
            return fs
        bucket = self.settings.bucket
        try:
            info = fs.get_file_info(bucket)
        except OSError as exc:
            raise self._map(exc, f"looking up the bucket {bucket!r}") from exc
        if info.type == pafs.FileType.NotFound:
            if not self.settings.create_bucket:
                raise StorageError(
                    f"the bucket {bucket!r} does not exist at {self._endpoint()}",
                    hint=(
                        f"create it (mc mb ALIAS/{bucket}, aws s3 mb s3://{bucket}), fix "
                        "S3_BUCKET, or set S3_CREATE_BUCKET=true to let moodump create it"
                    ),
                )
            try:
                fs.create_dir(bucket)
            except OSError as exc:
                raise self._map(exc, f"creating the bucket {bucket!r}") from exc
            log.info("created the bucket %s at %s", bucket, self._endpoint())
        self._bucket_ok = True
        return fs

    def _etag(self, path: str) -> str | None:
        """The object's ETag (lower case, unquoted), None when there is no object."""
        fs = self._filesystem()
        try:
            with fs.open_input_file(path) as fh:
                meta = fh.metadata()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._map(exc, f"looking up {path}") from exc
        raw = meta.get("ETag") or meta.get("etag") or b""
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        return text.strip().strip('"').lower()

    def _discard(self, out: Any, path: str) -> None:
        """Get rid of an upload that failed inside this process (see the module docs)."""
        try:
            out.close()  # pyarrow cannot abort: this completes the partial object
        except Exception:
            return  # not completed: nothing is visible
        self._delete_quietly(path)

    def _delete_quietly(self, path: str) -> None:
        try:
            self._filesystem().delete_file(path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            log.error(
                "could not remove the incomplete object s3://%s (%s); delete it by hand",
                path,
                exc,
            )

    def server_clock_offset(self) -> float | None:
        """Seconds the server's clock (its ``Date`` header) is ahead of this machine's,
        asked once with an unsigned HEAD; None when the server does not say."""
        if self._clock_checked:
            return self._clock_offset
        self._clock_checked = True
        self._clock_offset = server_clock_offset(
            self._scheme, self._host, self.settings.ca_file, self.settings.connect_timeout_s
        )
        return self._clock_offset

    def _key_accepted(self, text: str) -> bool:
        """Whether a refusal was for a missing permission rather than a wrong key.

        A refused HEAD has no body, so it says "access denied" for a wrong secret too.
        Until a request has worked with this key (the bucket's HEAD), one listing of a
        name no one uses asks again: its refusal has a body, with the real reason."""
        if self._bucket_ok or "No response body" not in text:
            return True
        import pyarrow.fs as pafs

        probe = pafs.FileSelector(self._path(".moodump-probe"), allow_not_found=True)
        try:
            self._filesystem().get_file_info(probe)
        except OSError as exc:
            return "ACCESS_DENIED" in str(exc)  # not a wrong key, a clock off, no server
        return True

    def _endpoint(self) -> str:
        return self.settings.endpoint or "AWS S3"

    def explain(self, exc: OSError, what: str) -> MoodumpError:
        """A failure of this bucket's file system used directly (an export writes through
        :meth:`arrow_filesystem`) as the error moodump gives for its own requests: a
        missing permission named, a clock off, a wrong key, a server that is down."""
        return self._map(exc, what)

    def _map(self, exc: OSError, what: str) -> MoodumpError:
        """A pyarrow/AWS SDK failure as a moodump error that names the next step."""
        return diagnose(
            exc,
            what,
            settings=self.settings,
            endpoint=self._endpoint(),
            host=self._host,
            objects=self._path("*"),
            clock_offset=self.server_clock_offset,
            key_accepted=self._key_accepted,
        )


__all__ = [
    "PART_SIZE",
    "S3Backend",
    "S3Settings",
    "expected_etags",
    "parse_endpoint",
]
