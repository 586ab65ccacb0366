"""An FTPS server directory as a storage backend.

Settings follow the old container: ``FTP_URL`` (``ftp://host[:port]/path/`` or
``ftps://...``), ``FTP_USER``, ``FTP_PASSWORD``. The old container ran
``curl --ftp-ssl -T file``; moodump speaks explicit FTPS (``AUTH TLS`` on the control
port, then ``PROT P`` so file data is encrypted too) for both URL schemes and, unlike
``--ftp-ssl``, refuses to fall back to plain FTP unless ``require_tls=False``. Implicit
FTPS (a TLS handshake straight after connecting, usually port 990) is not spoken.

URL paths follow curl: ``ftp://host/backups/`` means the directory ``backups`` below the
login directory, ``ftp://host//srv/backups/`` the absolute ``/srv/backups``. With
``create_dirs`` (the default, as before) the directory is created when missing.

Every object is written to a temporary name (``.moodump-tmp-…``) in its directory,
checked, then renamed to its key, so an interrupted upload never leaves a partial file
under the real name. The check compares the sha256 of what was sent with the server's
own hash when it offers ``HASH`` (SHA-256) or ``XSHA256``, otherwise with the hash of the
file downloaded again (streamed; nothing touches the local disk).

One control connection is kept open and reused; any failure drops it and the retry opens
a new one. Transient failures (no connection, timeouts, 4xx replies, TLS resets, a file
that arrived damaged) are retried with exponential backoff. A refused login
(:class:`~moodump.errors.StorageAuthError`), a certificate that does not verify, a
missing permission or a full remote disk are not. The password is registered with
:func:`moodump.logs.register_secret` and never logged.
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import posixpath
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

from moodump.config.model import USERINFO_RULE, userinfo_needs_encoding
from moodump.errors import ConfigError, MoodumpError, StorageAuthError, StorageError
from moodump.fsmodes import file_mode
from moodump.logs import register_secret
from moodump.storage.base import (
    BLOCK,
    TEMP_PREFIX,
    Backend,
    ObjectInfo,
    PutResult,
    RetryPolicy,
    TransientError,
    local_damage,
    quote_url_path,
    source_name,
)
from moodump.storage.ftps_conn import _Conn, _FtpReadStream, _HashingReader, _TLSClient

log = logging.getLogger(__name__)

T = TypeVar("T")
_IDLE_S = 15.0  # a session unused this long is probed with NOOP before it is reused


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
        return f"{self.scheme}://{host}:{self.port}{quote_url_path(path)}"


def parse_ftp_url(url: str) -> FtpUrl:
    """Parse ``FTP_URL``; ConfigError naming the problem when it is not usable."""
    if userinfo_needs_encoding(url.strip()):  # urllib would take the password for a port
        raise ConfigError(
            "FTP_URL has a user or password with an unencoded '/', '?' or '#'",
            hint=USERINFO_RULE.replace("its own variable", "FTP_PASSWORD"),
        )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"FTP_URL is not a valid URL: {exc}", hint=_URL_HINT) from exc
    if port == 0:  # was taken as 21
        raise ConfigError("FTP_URL has port 0 (use 1-65535, or none for 21)", hint=_URL_HINT)
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
    if any(ch in text for text in (path, unquote(parts.netloc)) for ch in "\r\n\0"):
        # each would end the FTP command it is sent in (ftplib refuses CR and LF)
        raise ConfigError("FTP_URL has a line break or NUL (%0D, %0A, %00)", hint=_URL_HINT)
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
    """Everything the FTPS backend needs; the config layer fills it from FTP_* variables.

    ``user``/``password`` win over credentials written into the URL. ``ca_file`` adds a
    CA bundle for servers with a private or self-signed certificate; ``verify_tls=False``
    skips certificate checks altogether (encrypted but not authenticated; avoid).
    ``require_tls=False`` allows plain FTP when the server offers no TLS (the old
    ``curl --ftp-ssl`` behaviour; sends the password in clear text). ``create_dirs``
    creates the URL's directory when it is missing (otherwise that is an error).
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
    create_dirs: bool = True


class FtpsBackend(Backend):
    """The objects below the directory of ``settings.url`` on an FTPS server.

    ``sleep`` (between retries) is injectable so tests never wait on the wall clock.
    """

    can_rename = True
    exact_sizes = True

    def __init__(
        self, settings: FtpsSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if settings.retries < 0 or settings.timeout_s <= 0:
            raise ConfigError(
                "FTP retries must be >= 0 and the timeout > 0", hint="fix the FTP settings"
            )
        super().__init__(
            retry=RetryPolicy(settings.retries, settings.backoff_s, settings.max_backoff_s),
            sleep=sleep,
        )
        self.settings = settings
        self.url = parse_ftp_url(settings.url)
        self.user = settings.user or self.url.user
        self._password = settings.password or self.url.password
        register_secret(self._password)
        self.base = self.url.path
        self._conn: _Conn | None = None
        self._used = 0.0
        # Each open_read has its own session. A server that limits sessions per client
        # address answers one too many with 421: the limit learnt from that is kept, and
        # reads wait for a session to end instead of hammering the server.
        self._gate = threading.Condition()
        self._reading = 0
        self._read_cap: int | None = None

    @property
    def display(self) -> str:
        return self.url.display()

    def where(self, key: str) -> str:
        return self._path(key) if key else (self.base or ".")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(ftplib.Error, OSError, EOFError):
                conn.ftp.quit()
            conn.ftp.close()

    # -- the contract ----------------------------------------------------------------------

    def _put(self, key: str, stream: BinaryIO, sha256: str | None) -> PutResult:
        path = self._path(key)
        parent, name = posixpath.split(path)
        tmp = posixpath.join(parent, f"{TEMP_PREFIX}{secrets.token_hex(4)}-{name}")

        def run(conn: _Conn) -> PutResult:
            self._root(conn, write=True)
            conn.makedirs(parent)
            source = _HashingReader(stream, key)
            conn.binary()
            try:
                conn.ftp.storbinary(f"STOR {tmp}", source, blocksize=BLOCK)  # type: ignore[arg-type]
            except ftplib.error_perm as exc:
                # 550 (proftpd, pyftpdlib), 553 (vsftpd, pure-ftpd): "could not create file"
                refused = str(exc).startswith(("550", "553"))
                missing = conn.missing_dir(parent) if refused else None
                if missing is None:
                    raise
                raise StorageError(
                    f"the directory {missing} does not exist on the FTP server {self._where()} "
                    f"and could not be created ({str(exc)[:3]})",
                    hint=(
                        "create it on the server (or let the FTP account create directories "
                        "there), or fix the path in FTP_URL"
                    ),
                ) from exc
            digest = source.hasher.hexdigest()
            if sha256 is not None and digest != sha256:
                conn.delete_quietly(tmp)
                raise local_damage(source_name(stream, key), digest, sha256)
            stored, method = conn.sha256(tmp)
            if stored != digest:
                conn.delete_quietly(tmp)
                raise TransientError(
                    f"{path} arrived damaged on the FTP server (sha256 differs after the upload)",
                    hint="the transfer was damaged; it is retried",
                )
            try:
                conn.ftp.rename(tmp, path)
            except ftplib.error_perm:
                # some servers refuse to rename over an existing file
                conn.ftp.delete(path)
                conn.ftp.rename(tmp, path)
            conn.chmod(path, file_mode())
            return PutResult(key, source.size, digest, method)

        return self._op(run)

    def _open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        self._enter_read()
        try:
            ftp = self._login()
        except (ftplib.Error, OSError, EOFError) as exc:
            self._leave_read(too_many=str(exc).startswith("421"))
            raise self._map(exc) from exc
        except BaseException:
            self._leave_read()
            raise
        try:
            ftp.voidcmd("TYPE I")
            sock = ftp.transfercmd(f"RETR {path}")
        except ftplib.error_perm as exc:
            ftp.close()
            self._leave_read()
            raise StorageError(
                f"{path} does not exist on the FTP server {self._where()} ({str(exc)[:3]})",
                hint="check the name (list the remote backups) and the account's permissions",
            ) from exc
        except (ftplib.Error, OSError, EOFError) as exc:
            ftp.close()
            self._leave_read()
            raise self._map(exc) from exc
        except BaseException:
            ftp.close()
            self._leave_read()
            raise
        return _FtpReadStream(ftp, sock, path, on_close=self._leave_read)  # type: ignore[return-value]

    def _enter_read(self) -> None:
        """Wait (at most the timeout: never a deadlock) while the sessions the server
        allows are all reading, then count one more."""
        deadline = time.monotonic() + self.settings.timeout_s
        with self._gate:
            while self._read_cap is not None and self._reading >= self._read_cap:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._gate.wait(left)
            self._reading += 1

    def _leave_read(self, *, too_many: bool = False) -> None:
        with self._gate:
            self._reading -= 1
            if too_many:  # "421 Too many connections": the sessions open are the limit
                cap = max(1, self._reading)
                if self._read_cap is None or cap < self._read_cap:
                    log.info(
                        "the FTP server %s takes %d reading session(s) at a time",
                        self._where(),
                        cap,
                    )
                    self._read_cap = cap
            self._gate.notify_all()

    def _hash_back(self, key: str) -> tuple[str, int | None, str]:
        digest, method = self._op(lambda conn: conn.sha256(self._path(key)))
        return digest, None, method

    def _list(self, prefix: str) -> list[ObjectInfo]:
        def run(conn: _Conn) -> list[ObjectInfo]:
            if not self._root(conn, write=False):
                return []
            conn.listed_sizes.clear()
            out: list[ObjectInfo] = []

            def walk(rel: str) -> None:
                try:
                    entries = conn.entries(self._path(rel))
                except ftplib.error_perm as exc:
                    if str(exc).startswith("550"):
                        return  # no such directory: nothing below it
                    raise
                for name, kind in sorted(entries.items()):
                    if name.startswith(TEMP_PREFIX):
                        continue
                    child = f"{rel}/{name}" if rel else name
                    if kind == "dir":
                        walk(child)
                    else:
                        path = self._path(child)
                        size = conn.listed_sizes.pop(path, None)
                        out.append(ObjectInfo(child, conn.size(path) if size is None else size))

            walk(prefix)
            return sorted(out, key=lambda i: i.key)

        return self._op(run)

    def _list_dirs(self, prefix: str) -> list[str]:
        def run(conn: _Conn) -> list[str]:
            if not self._root(conn, write=False):
                return []
            try:
                entries = conn.entries(self._path(prefix))
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    return []
                raise
            return sorted(n for n, kind in entries.items() if kind == "dir")

        return self._op(run)

    def _stat(self, key: str) -> ObjectInfo | None:
        def run(conn: _Conn) -> ObjectInfo | None:
            if not self._root(conn, write=False):
                return None
            size = conn.size(self._path(key))
            return None if size is None else ObjectInfo(key, size)

        return self._op(run)

    def _delete(self, key: str) -> bool:
        def run(conn: _Conn) -> bool:
            try:
                conn.ftp.delete(self._path(key))
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    return False
                raise
            return True

        return self._op(run)

    def _delete_prefix(self, prefix: str) -> int:
        def run(conn: _Conn) -> int:
            path = self._path(prefix)
            parent, name = posixpath.split(path)
            try:
                kind = conn.entries(parent).get(name)
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    return 0  # the parent does not exist either
                raise
            return conn.rmtree(path) if kind == "dir" else 0

        return self._op(run)

    def _rename_prefix(self, src: str, dst: str) -> None:
        def run(conn: _Conn) -> None:
            source = self._path(src)
            conn.ftp.rename(source, self._path(dst))
            conn.made = {d for d in conn.made if d != source and not d.startswith(source + "/")}

        self._op(run)

    def _on_transient(self) -> None:
        self._drop()

    # -- sessions -----------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        if not key:
            return self.base
        return posixpath.join(self.base, key) if self.base else key

    def _where(self) -> str:
        return f"{self.url.host}:{self.url.port}"

    def _op(self, fn: Callable[[_Conn], T]) -> T:
        """Run ``fn`` on the session (logging in when needed), mapping FTP failures.

        Any failure drops the session: after an error in the middle of a transfer the
        control connection is in an unknown state.
        """
        try:
            if self._conn is not None and time.monotonic() - self._used > _IDLE_S:
                try:  # servers close idle sessions; find out before relying on this one
                    self._conn.ftp.voidcmd("NOOP")
                except (ftplib.Error, OSError, EOFError):
                    self._drop()
            if self._conn is None:
                self._conn = self._probe(self._login())
            self._used = time.monotonic()
            return fn(self._conn)
        except MoodumpError:
            self._drop()
            raise
        except (ftplib.Error, OSError, EOFError) as exc:
            self._drop()
            raise self._map(exc) from exc
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.ftp.close()

    def root_missing(self) -> bool:
        if not self.base or self.base == "/":
            return False
        return self._op(lambda conn: conn.missing_dir(self.base) is not None)

    def _root(self, conn: _Conn, *, write: bool) -> bool:
        """Whether the base directory exists; created for writes with ``create_dirs``.

        False (nothing stored yet) only for reads with ``create_dirs``; a missing base
        without ``create_dirs`` is a StorageError naming it.
        """
        if conn.root_checked or not self.base or self.base == "/":
            return True
        if self.settings.create_dirs and write:
            conn.makedirs(self.base)
            conn.root_checked = True
            return True
        here = conn.ftp.pwd()
        try:
            conn.ftp.cwd(self.base)
        except ftplib.error_perm as exc:
            if self.settings.create_dirs:
                return False
            raise StorageError(
                f"the directory {self.base} does not exist on the FTP server {self._where()} "
                f"({str(exc)[:3]})",
                hint="create it on the server, or fix the path in FTP_URL",
            ) from exc
        conn.ftp.cwd(here)
        conn.root_checked = True
        return True

    def _login(self) -> ftplib.FTP_TLS:
        s = self.settings
        where = self._where()
        ftp = _TLSClient(context=self._tls_context(), timeout=s.timeout_s)
        try:
            ftp.connect(self.url.host, self.url.port)
            tls = True
            try:
                ftp.auth()
            except ftplib.error_perm as exc:
                if s.require_tls:
                    raise StorageError(
                        f"the FTP server {where} does not offer explicit TLS (AUTH TLS: {exc})",
                        hint=(
                            "enable FTPS on the server; plain FTP sends the password in clear "
                            "text (allow it only deliberately, with the require-TLS setting off)"
                        ),
                    ) from exc
                log.warning("FTP server %s offers no TLS; continuing WITHOUT encryption", where)
                tls = False
            try:
                ftp.login(self.user, self._password, secure=False)
            except ftplib.error_perm as exc:
                raise StorageAuthError(
                    f"the FTP server {where} refused the login for user "
                    f"{self.user or 'anonymous'!r} ({str(exc)[:3]})",
                    hint="check FTP_USER and FTP_PASSWORD",
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

    def _map(self, exc: BaseException) -> StorageError:
        where = self._where()
        if isinstance(exc, ssl.SSLCertVerificationError):
            return StorageError(
                f"the FTP server {where} presented a certificate that does not verify "
                f"({exc.verify_message})",
                hint=(
                    "give the server's CA with the FTP CA-file setting, "
                    "or fix the host name in FTP_URL"
                ),
            )
        if isinstance(exc, ftplib.error_perm):
            text = str(exc)
            hint = "check the user's permissions on the server and free space there"
            if text.startswith(("552", "452")):
                hint = "the FTP server is out of space: free space there or prune remote copies"
            return StorageError(f"the FTP server {where} refused: {text}", hint=hint)
        if isinstance(exc, ftplib.error_temp):
            return TransientError(
                f"the FTP server {where} reported a temporary failure: {exc}",
                hint="it is retried; if it persists, check the server",
            )
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return TransientError(
                f"no answer from the FTP server {where} within {self.settings.timeout_s:g} s",
                hint=(
                    "check FTP_URL, that the server is up and that a network policy allows "
                    "the control and passive data ports; an implicit-FTPS server (port 990) "
                    "is not supported"
                ),
            )
        if isinstance(exc, (ftplib.Error, EOFError)):
            return TransientError(
                f"the FTP conversation with {where} failed: {exc or 'connection closed'}",
                hint="it is retried; if it persists, check the server's log",
            )
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return TransientError(
            f"cannot talk to the FTP server {where}: {reason}",
            hint="check FTP_URL, that the server is up and that the network allows it",
        )


__all__ = ["FtpUrl", "FtpsBackend", "FtpsSettings", "parse_ftp_url"]
