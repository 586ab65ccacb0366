"""Copy finished backup directories to an FTPS server, and check the copies.

Settings follow the old container: ``FTP_URL`` (``ftp://host[:port]/path/`` or
``ftps://...``), ``FTP_USER``, ``FTP_PASSWORD``. The old container ran
``curl --ftp-ssl -T file``; moodump speaks explicit FTPS (``AUTH TLS`` on the control
port, then ``PROT P`` so file data is encrypted too) for both URL schemes and, unlike
``--ftp-ssl``, refuses to fall back to plain FTP unless ``require_tls=False``. Implicit
FTPS (a TLS handshake straight after connecting, usually port 990) is not spoken.

URL paths follow curl: ``ftp://host/backups/`` means the directory ``backups`` below the
login directory, ``ftp://host//srv/backups/`` the absolute ``/srv/backups``. The
directory is created when missing.

Publishing is atomic from a reader's point of view. A backup ``NAME`` is uploaded into
``NAME.partial``; data files first, ``manifest.json`` last. Every file is then re-checked
on the server: its size (``SIZE``) and its sha256, computed by the server when it offers
``HASH`` (SHA-256) or ``XSHA256``, otherwise by downloading it and hashing the stream
(nothing touches the local disk). Only when every file matches is the directory renamed
to ``NAME``. A directory without ``.partial`` is therefore always complete and checked.

Transient failures (no connection, timeouts, 4xx replies, TLS resets, a file that
arrived damaged) are retried ``retries`` times with exponential backoff; a retry keeps
the files already on the server whose size matches and uploads the rest. A refused login,
a certificate that does not verify, a missing permission or a full remote disk are not
retried. Every failure is a :class:`~moodump.errors.StorageError` saying what to check.
The password is registered with :func:`moodump.logs.register_secret` and never logged.
"""

from __future__ import annotations

import ftplib
import hashlib
import json
import logging
import posixpath
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from moodump.errors import ConfigError, IntegrityError, StorageError
from moodump.logs import register_secret
from moodump.manifest import MANIFEST_NAME, VERIFY_NAME, Manifest, read_done_manifest

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
_BLOCK = 1 << 20
_SHA256_HEX = re.compile(r"\b[0-9a-fA-F]{64}\b")
_BACKUP_NAME = re.compile(r"^(?P<core>.+)_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$")
T = TypeVar("T")


@dataclass(frozen=True)
class FtpUrl:
    """A parsed ``FTP_URL``. ``path`` is the remote base directory ("" = login dir)."""

    scheme: str
    host: str
    port: int
    path: str
    user: str = ""
    password: str = field(default="", repr=False)

    def display(self) -> str:
        """The URL without credentials, for logs and messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        # curl's spelling: /rel/ is below the login directory, //abs/ is absolute
        path = "/" + self.path.strip("/") + "/" if self.path.strip("/") else "/"
        if self.path.startswith("/"):
            path = "/" + path
        return f"{self.scheme}://{host}:{self.port}{path}"


def parse_ftp_url(url: str) -> FtpUrl:
    """Parse ``FTP_URL``; ConfigError naming the problem when it is not usable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"FTP_URL is not a valid URL: {exc}", hint=_URL_HINT) from exc
    if parts.scheme not in ("ftp", "ftps"):
        raise ConfigError(
            f"FTP_URL must start with ftp:// or ftps:// (got {parts.scheme or 'no'} scheme)",
            hint=_URL_HINT,
        )
    if not parts.hostname:
        raise ConfigError("FTP_URL has no host name", hint=_URL_HINT)
    if parts.query or parts.fragment:
        raise ConfigError("FTP_URL must not contain ? or #", hint=_URL_HINT)
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    path = path.rstrip("/") if path.strip("/") else ("/" if path.startswith("/") else "")
    return FtpUrl(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or 21,
        path=path,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


_URL_HINT = "set FTP_URL like ftp://backup.example.org:21/moodle/ (explicit FTPS is used)"


@dataclass(frozen=True)
class FtpsSettings:
    """Everything the FTPS target needs; the config layer fills it from FTP_* variables.

    ``user``/``password`` win over credentials written into the URL. ``ca_file`` adds a
    CA bundle for servers with a private or self-signed certificate; ``verify_tls=False``
    skips certificate checks altogether (encrypted but not authenticated; avoid).
    ``require_tls=False`` allows plain FTP when the server offers no TLS (the old
    ``curl --ftp-ssl`` behaviour; sends the password in clear text).
    """

    url: str
    user: str = ""
    password: str = field(default="", repr=False)
    require_tls: bool = True
    verify_tls: bool = True
    ca_file: str | None = None
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 5.0
    max_backoff_s: float = 300.0
    use_server_hash: bool = True  # trust HASH/XSHA256 replies instead of downloading


@dataclass(frozen=True)
class RemoteBackup:
    """A directory in the remote base directory. ``complete`` is False for ``*.partial``."""

    name: str
    complete: bool


@dataclass(frozen=True)
class UploadResult:
    """What :meth:`FtpsTarget.upload` did."""

    remote_path: str
    files: int
    bytes: int
    attempts: int
    duration_s: float
    check_method: str  # "server-hash" | "download" | "mixed"
    skipped: bool = False  # the remote copy was already complete and matched


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


class _RemoteError(StorageError):
    """A mapped FTP failure; ``retryable`` says whether another attempt may help."""

    def __init__(self, message: str, *, hint: str, retryable: bool) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class _TLSClient(ftplib.FTP_TLS):
    """FTP_TLS that resumes the control connection's TLS session on data connections.

    vsftpd (``require_ssl_reuse=YES``, its default) and proftpd (``TLSOptions``
    without ``NoSessionReuseRequired``) refuse data connections that do not reuse the
    session, which the stdlib client never does.
    """

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if getattr(self, "_prot_p", False):
            session = getattr(self.sock, "session", None)
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


class _Conn:
    """One logged-in FTP session plus what we learnt about the server (FEAT)."""

    def __init__(self, ftp: ftplib.FTP, features: set[str], hash_feature: str) -> None:
        self.ftp = ftp
        self.features = features
        self.hash_feature = hash_feature  # "HASH" | "XSHA256" | ""
        self.binary_mode = False
        self._hash_selected = False
        self.used_server_hash = False
        self.used_download = False

    def binary(self) -> None:
        if not self.binary_mode:
            self.ftp.voidcmd("TYPE I")
            self.binary_mode = True

    def size(self, path: str) -> int | None:
        """Size of a remote file, None when it does not exist (or is not a file)."""
        self.binary()
        try:
            return self.ftp.size(path)
        except ftplib.error_perm:
            return None

    def listdir(self, path: str) -> dict[str, str]:
        """Entries of a directory: name -> "dir" | "file" | "" (unknown)."""
        self.binary_mode = False  # listings switch the session to ASCII
        out: dict[str, str] = {}
        if any(f.startswith("MLST") for f in self.features):
            try:
                for name, facts in self.ftp.mlsd(path, facts=["type"]):
                    kind = facts.get("type", "").lower()
                    if kind in ("cdir", "pdir") or name in (".", ".."):
                        continue
                    out[name] = "dir" if kind == "dir" else "file" if kind == "file" else ""
                return out
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    raise
        for entry in self.ftp.nlst(path):
            name = posixpath.basename(entry.rstrip("/"))
            if name not in ("", ".", ".."):
                out[name] = ""
        return out

    def sha256(self, path: str) -> str:
        """sha256 of a remote file: the server's answer if it offers one, else download."""
        if self.hash_feature:
            digest = self._server_sha256(path)
            if digest:
                self.used_server_hash = True
                return digest
        hasher = hashlib.sha256()
        try:
            self.ftp.retrbinary(f"RETR {path}", hasher.update, blocksize=_BLOCK)
        except ftplib.error_perm as exc:
            raise _RemoteError(
                f"cannot read back {path} from the FTP server to check it ({exc})",
                hint=(
                    "let the FTP account download what it uploads (vsftpd anonymous uploads: "
                    "anon_umask=022), or use a server that offers HASH or XSHA256"
                ),
                retryable=False,
            ) from exc
        self.binary_mode = True
        self.used_download = True
        return hasher.hexdigest()

    def _server_sha256(self, path: str) -> str:
        try:
            if self.hash_feature == "HASH":
                if not self._hash_selected:
                    self.ftp.sendcmd("OPTS HASH SHA-256")
                    self._hash_selected = True
                reply = self.ftp.sendcmd(f"HASH {path}")
                # 213 SHA-256 0-1234 <hex> <name>
                fields = reply[4:].split(" ", 3)
                if len(fields) >= 3 and fields[0].upper() == "SHA-256":
                    return fields[2].lower()
                return ""
            reply = self.ftp.sendcmd(f"XSHA256 {path}")
            match = _SHA256_HEX.search(reply[4:])
            return match.group(0).lower() if match else ""
        except ftplib.error_perm:
            # the server cannot hash this file after all: fall back to downloading
            self.hash_feature = ""
            return ""

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its parents; existing directories are fine."""
        if path in ("", "/"):
            return
        parts = path.split("/")
        current = "/" if path.startswith("/") else ""
        for part in parts:
            if not part:
                continue
            current = posixpath.join(current, part) if current else part
            try:
                self.ftp.mkd(current)
            except ftplib.error_perm as exc:
                if not str(exc).startswith("550") and not str(exc).startswith("521"):
                    raise
                # 550/521: exists (or cannot be created; the next command will say so)

    def rmtree(self, path: str) -> None:
        """Delete a remote directory and everything below it."""
        for name, kind in self.listdir(path).items():
            child = posixpath.join(path, name)
            if kind == "dir":
                self.rmtree(child)
            elif kind == "file":
                self.ftp.delete(child)
            else:
                try:
                    self.ftp.delete(child)
                except ftplib.error_perm:
                    self.rmtree(child)
        self.ftp.rmd(path)


class FtpsTarget:
    """An FTPS server directory holding backup directories.

    ``sleep`` (between retries) and ``clock`` (durations) are injectable so tests never
    wait on the wall clock.
    """

    def __init__(
        self,
        settings: FtpsSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.url = parse_ftp_url(settings.url)
        self.user = settings.user or self.url.user
        self._password = settings.password or self.url.password
        register_secret(self._password)
        if settings.retries < 0 or settings.timeout_s <= 0:
            raise ConfigError(
                "FTP retries must be >= 0 and the timeout > 0", hint="fix the FTP settings"
            )
        self._sleep = sleep
        self._clock = clock

    @property
    def base(self) -> str:
        return self.url.path

    def remote_path(self, name: str) -> str:
        _check_name(name)
        return posixpath.join(self.base, name) if self.base else name

    # -- public operations -------------------------------------------------------------

    def upload(self, local_dir: Path | str, *, remote_name: str | None = None) -> UploadResult:
        """Copy a DONE backup directory to ``<base>/<remote_name or its own name>``.

        When that remote directory already exists and matches, nothing is sent
        (``skipped``); when it differs it is replaced. Raises IntegrityError when the
        local backup is not DONE or its files do not match its manifest, StorageError
        when the copy cannot be made and checked.
        """
        local_dir = Path(local_dir)
        manifest = read_done_manifest(local_dir)
        name = remote_name or local_dir.name
        final = self.remote_path(name)
        partial = self.remote_path(name + PARTIAL_SUFFIX)
        files = _local_files(local_dir, manifest)
        total = sum(f.size for f in files)
        where = f"{self.url.display()}{name}"
        started = self._clock()
        log.info("copying %s to %s (%d files, %d bytes)", local_dir, where, len(files), total)

        def attempt(conn: _Conn) -> bool:
            return self._upload_once(conn, files, final, partial)

        skipped, attempts, method = self._retrying(f"copy to {where}", attempt)
        duration = self._clock() - started
        log.info(
            "%s %s (%d files re-checked by %s) in %.1f s",
            "already complete and matching:" if skipped else "copied and re-checked",
            where,
            len(files),
            method,
            duration,
        )
        return UploadResult(final, len(files), total, attempts, duration, method, skipped)

    def recheck(self, remote_name: str, local_dir: Path | str | None = None) -> RecheckResult:
        """Check every file of a remote copy against the manifest (size and sha256).

        With ``local_dir`` the local backup is the reference: every file its manifest
        lists, plus ``manifest.json`` itself (byte-identical). Without it, the remote
        ``manifest.json`` is downloaded and the files it lists are checked. ``verify.json``
        is never compared: every later verification rewrites it. Raises StorageError on
        any difference.
        """
        final = self.remote_path(remote_name)
        where = f"{self.url.display()}{remote_name}"
        expected: dict[str, tuple[int, str]] | None = None
        if local_dir is not None:
            local = Path(local_dir)
            files = _local_files(local, read_done_manifest(local))
            expected = {f.rel: (f.size, f.sha256) for f in files if f.rel != VERIFY_NAME}

        def attempt(conn: _Conn) -> tuple[int, int]:
            want = expected if expected is not None else self._remote_expected(conn, final)
            problems = self._compare(conn, final, want)
            if problems:
                more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
                raise _RemoteError(
                    f"the off-site copy {where} does not match its manifest: "
                    + "; ".join(problems[:5])
                    + more,
                    hint="upload the backup again (moodump copies it when the remote copy differs)",
                    retryable=False,
                )
            return len(want), sum(size for size, _ in want.values())

        (count, total), _, method = self._retrying(f"re-check {where}", attempt)
        log.info("off-site copy %s matches its manifest (%d files, by %s)", where, count, method)
        return RecheckResult(final, count, total, method)

    def list_backups(self) -> list[RemoteBackup]:
        """Backup directories in the base directory, sorted by name (files are ignored)."""

        def attempt(conn: _Conn) -> list[RemoteBackup]:
            out: list[RemoteBackup] = []
            try:
                entries = conn.listdir(self.base)
            except ftplib.error_perm as exc:
                if str(exc).startswith("550") and self.base:
                    return []  # the base directory does not exist yet: nothing copied
                raise
            for name, kind in sorted(entries.items()):
                if kind == "file":
                    continue
                if kind == "" and conn.size(posixpath.join(self.base, name)) is not None:
                    continue  # NLST fallback: it has a size, so it is a file
                out.append(RemoteBackup(name, not name.endswith(PARTIAL_SUFFIX)))
            return out

        result, _, _ = self._retrying("list the off-site backups", attempt)
        return result

    def prune_remote(self, remove: Iterable[str], *, dry_run: bool = False) -> list[str]:
        """Delete exactly the named backup directories (and their ``.partial``) remotely.

        Names that are not on the server are skipped; nothing else is touched. Returns the
        names removed (or, with ``dry_run``, that would be).
        """
        names = list(dict.fromkeys(remove))
        for name in names:
            _check_name(name)

        def attempt(conn: _Conn) -> list[str]:
            present = conn.listdir(self.base)
            gone: list[str] = []
            for name in names:
                found = [c for c in (name, name + PARTIAL_SUFFIX) if c in present]
                for candidate in found:
                    if not dry_run:
                        conn.rmtree(self.remote_path(candidate))
                        log.info("removed off-site backup %s", candidate)
                if found:
                    gone.append(name)
            return gone

        result, _, _ = self._retrying("prune the off-site backups", attempt)
        return result

    # -- internals -----------------------------------------------------------------------

    def _upload_once(self, conn: _Conn, files: list[_LocalFile], final: str, partial: str) -> bool:
        """One attempt. Returns True when ``final`` was already complete (nothing sent)."""
        conn.makedirs(self.base)
        present = conn.listdir(self.base)
        final_name = posixpath.basename(final)
        want = {f.rel: (f.size, f.sha256) for f in files}
        if final_name in present:
            # verify.json is rewritten by every verification: a stale one is no reason to re-send
            current = {rel: v for rel, v in want.items() if rel != VERIFY_NAME}
            if not self._compare(conn, final, current):
                return True
            log.warning("off-site copy %s exists but differs; replacing it", final_name)

        conn.makedirs(partial)
        made_dirs: set[str] = set()
        for f in files:
            remote = posixpath.join(partial, f.rel)
            if conn.size(remote) == f.size:
                continue  # left by an earlier attempt; the re-check below proves it
            parent = posixpath.dirname(f.rel)
            if parent and parent not in made_dirs:
                conn.makedirs(posixpath.join(partial, parent))
                made_dirs.add(parent)
            self._store(conn, f, remote)

        bad = self._compare(conn, partial, want, names_only=True)
        if bad:
            for rel in bad:
                with suppress(ftplib.error_perm):
                    conn.ftp.delete(posixpath.join(partial, rel))
            raise _RemoteError(
                f"{len(bad)} file(s) differ on the server after the upload: {', '.join(bad[:5])}",
                hint="the transfer was damaged; it is retried",
                retryable=True,
            )
        if final_name in present:
            conn.rmtree(final)
        conn.ftp.rename(partial, final)
        return False

    def _store(self, conn: _Conn, f: _LocalFile, remote: str) -> str:
        """Upload one file, hashing what was sent; returns its sha256."""
        hasher = hashlib.sha256()
        try:
            fh = f.path.open("rb")
        except OSError as exc:
            raise IntegrityError(
                f"cannot read {f.path}: {exc.strerror}", hint="the local backup is damaged"
            ) from exc
        with fh:
            conn.ftp.storbinary(f"STOR {remote}", fh, blocksize=_BLOCK, callback=hasher.update)
        conn.binary_mode = True  # storbinary sent TYPE I
        digest = hasher.hexdigest()
        if digest != f.sha256:
            raise IntegrityError(
                f"local file {f.path} does not match its manifest (sha256 {digest[:12]}..., "
                f"manifest says {f.sha256[:12]}...)",
                hint="the local backup is damaged; do not copy it off-site, use another backup",
            )
        return digest

    def _compare(
        self,
        conn: _Conn,
        directory: str,
        want: dict[str, tuple[int, str]],
        *,
        names_only: bool = False,
    ) -> list[str]:
        """Where the server differs from ``want`` (problem texts, or file names)."""
        problems: list[str] = []
        for rel, (size, digest) in want.items():
            path = posixpath.join(directory, rel)
            remote_size = conn.size(path)
            if remote_size is None:
                problem = f"{rel} is missing"
            elif remote_size != size:
                problem = f"{rel} has {remote_size} bytes, expected {size}"
            elif conn.sha256(path) != digest:
                problem = f"{rel} has a different sha256"
            else:
                continue
            problems.append(rel if names_only else problem)
        return problems

    def _remote_expected(self, conn: _Conn, final: str) -> dict[str, tuple[int, str]]:
        chunks: list[bytes] = []
        try:
            conn.ftp.retrbinary(f"RETR {posixpath.join(final, MANIFEST_NAME)}", chunks.append)
        except ftplib.error_perm as exc:
            raise _RemoteError(
                f"the off-site copy {final} has no readable {MANIFEST_NAME} ({exc})",
                hint="it is incomplete or not a moodump backup; upload it again",
                retryable=False,
            ) from exc
        conn.binary_mode = True
        try:
            manifest = Manifest.from_dict(json.loads(b"".join(chunks).decode("utf-8")))
        except (ValueError, TypeError) as exc:
            raise _RemoteError(
                f"the off-site copy {final} has a damaged {MANIFEST_NAME}",
                hint="upload the backup again",
                retryable=False,
            ) from exc
        return {f.name: (f.bytes, f.sha256) for f in manifest.files}

    def _retrying(self, action: str, fn: Callable[[_Conn], T]) -> tuple[T, int, str]:
        """Run ``fn`` in a fresh session, retrying transient failures with backoff."""
        attempts = 1 + self.settings.retries
        for attempt in range(1, attempts + 1):
            try:
                with self._session() as conn:
                    result = fn(conn)
                    method = _method(conn)
                return result, attempt, method
            except _RemoteError as exc:
                if not exc.retryable or attempt == attempts:
                    if attempt > 1:
                        exc.message = f"{exc.message} (after {attempt} attempts)"
                    raise
                delay = min(
                    self.settings.backoff_s * (2 ** (attempt - 1)), self.settings.max_backoff_s
                )
                log.warning(
                    "%s failed (attempt %d of %d): %s; retrying in %g s",
                    action,
                    attempt,
                    attempts,
                    exc.message,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _session(self) -> Iterator[_Conn]:
        ftp: ftplib.FTP | None = None
        clean = False
        try:
            ftp = self._login()
            yield self._probe(ftp)
            clean = True
        except (_RemoteError, IntegrityError, ConfigError):
            raise
        except (ftplib.Error, OSError, EOFError) as exc:
            raise self._map(exc) from exc
        finally:
            if ftp is not None:
                # after a failure the session may be mid-transfer: do not wait for QUIT
                try:
                    if clean:
                        ftp.quit()
                except (ftplib.Error, OSError, EOFError):
                    pass
                ftp.close()

    def _login(self) -> ftplib.FTP_TLS:
        s = self.settings
        where = f"{self.url.host}:{self.url.port}"
        ftp = _TLSClient(context=self._tls_context(), timeout=s.timeout_s)
        try:
            ftp.connect(self.url.host, self.url.port)
            tls = True
            try:
                ftp.auth()
            except ftplib.error_perm as exc:
                if s.require_tls:
                    raise _RemoteError(
                        f"the FTP server {where} does not offer explicit TLS (AUTH TLS: {exc})",
                        hint=(
                            "enable FTPS on the server; plain FTP sends the password in clear "
                            "text (allow it only deliberately, with the require-TLS setting off)"
                        ),
                        retryable=False,
                    ) from exc
                log.warning("FTP server %s offers no TLS; continuing WITHOUT encryption", where)
                tls = False
            try:
                ftp.login(self.user, self._password, secure=False)
            except ftplib.error_perm as exc:
                raise _RemoteError(
                    f"the FTP server {where} refused the login for user "
                    f"{self.user or 'anonymous'!r} ({str(exc)[:3]})",
                    hint="check FTP_USER and FTP_PASSWORD",
                    retryable=False,
                ) from exc
            if tls:
                ftp.prot_p()
        except BaseException:
            ftp.close()
            raise
        return ftp

    def _probe(self, ftp: ftplib.FTP) -> _Conn:
        features: set[str] = set()
        try:
            reply = ftp.sendcmd("FEAT")
            features = {line.strip().upper() for line in reply.splitlines()[1:-1] if line.strip()}
        except ftplib.error_perm:
            pass
        hash_feature = ""
        if self.settings.use_server_hash:
            if any(f.startswith("HASH") and "SHA-256" in f for f in features):
                hash_feature = "HASH"
            elif "XSHA256" in features:
                hash_feature = "XSHA256"
        return _Conn(ftp, features, hash_feature)

    def _tls_context(self) -> ssl.SSLContext:
        s = self.settings
        try:
            context = ssl.create_default_context(cafile=s.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the FTP CA file {s.ca_file}: {exc}", hint="check the CA file setting"
            ) from exc
        if not s.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _map(self, exc: BaseException) -> _RemoteError:
        where = f"{self.url.host}:{self.url.port}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return _RemoteError(
                f"the FTP server {where} presented a certificate that does not verify "
                f"({exc.verify_message})",
                hint=(
                    "give the server's CA with the FTP CA-file setting, "
                    "or fix the host name in FTP_URL"
                ),
                retryable=False,
            )
        if isinstance(exc, ftplib.error_perm):
            text = str(exc)
            hint = "check the user's permissions on the server and free space there"
            if text.startswith(("552", "452")):
                hint = "the FTP server is out of space: free space there or prune remote copies"
            return _RemoteError(
                f"the FTP server {where} refused: {text}", hint=hint, retryable=False
            )
        if isinstance(exc, ftplib.error_temp):
            return _RemoteError(
                f"the FTP server {where} reported a temporary failure: {exc}",
                hint="it is retried; if it persists, check the server",
                retryable=True,
            )
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return _RemoteError(
                f"no answer from the FTP server {where} within {self.settings.timeout_s:g} s",
                hint=(
                    "check FTP_URL, that the server is up and that a network policy allows "
                    "the control and passive data ports; an implicit-FTPS server (port 990) "
                    "is not supported"
                ),
                retryable=True,
            )
        if isinstance(exc, (ftplib.Error, EOFError)):
            return _RemoteError(
                f"the FTP conversation with {where} failed: {exc or 'connection closed'}",
                hint="it is retried; if it persists, check the server's log",
                retryable=True,
            )
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return _RemoteError(
            f"cannot talk to the FTP server {where}: {reason}",
            hint="check FTP_URL, that the server is up and that the network allows it",
            retryable=True,
        )


def remote_names_to_prune(remote: Iterable[str], keep: Iterable[str], core_name: str) -> list[str]:
    """Remote backups of ``core_name`` (``<host>-<db>``) that local retention did not keep.

    Matches the core name exactly (``db-moodle`` never matches
    ``db-moodle_archive_2026-01-01_01-00-00``), ignores ``.partial`` directories and
    anything that is not named like a backup. Pure; feed the result to
    :meth:`FtpsTarget.prune_remote` to make remote retention follow local retention.
    """
    kept = set(keep)
    out = []
    for name in remote:
        match = _BACKUP_NAME.match(name)
        if match and match.group("core") == core_name and name not in kept:
            out.append(name)
    return sorted(out)


def _method(conn: _Conn) -> str:
    if conn.used_server_hash and conn.used_download:
        return "mixed"
    if conn.used_server_hash:
        return "server-hash"
    return "download"


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\n" in name:
        raise ConfigError(
            f"{name!r} is not a valid backup name", hint="use the backup directory's own name"
        )


def _hash_local(path: Path) -> str:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(_BLOCK):
                hasher.update(block)
    except OSError as exc:
        raise IntegrityError(
            f"cannot read {path}: {exc.strerror}", hint="the local backup is damaged"
        ) from exc
    return hasher.hexdigest()


def _local_files(local_dir: Path, manifest: Manifest) -> list[_LocalFile]:
    """Every file of the backup directory, data first, manifest.json last.

    Sizes are checked against the manifest here (cheap); the sha256 of listed files is
    checked while uploading. Files the manifest does not list (manifest.json itself,
    verify.json; both small) are hashed here.
    """
    listed = {f.name: f for f in manifest.files}
    found: dict[str, Path] = {}
    for path in sorted(local_dir.rglob("*")):
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
        if entry is not None and entry.bytes != size:
            raise IntegrityError(
                f"{path} has {size} bytes but its manifest says {entry.bytes}",
                hint="the local backup is damaged; use another backup",
            )
        digest = entry.sha256 if entry is not None else _hash_local(path)
        out.append(_LocalFile(rel, path, size, digest))
    last = {MANIFEST_NAME: 2, VERIFY_NAME: 1}
    out.sort(key=lambda f: (last.get(f.rel, 0), f.rel))
    return out


__all__ = [
    "PARTIAL_SUFFIX",
    "FtpUrl",
    "FtpsSettings",
    "FtpsTarget",
    "RecheckResult",
    "RemoteBackup",
    "UploadResult",
    "parse_ftp_url",
    "remote_names_to_prune",
]
