"""One FTPS session: explicit TLS login, PROT P, session reuse for data connections,
server-side hashes, and reading a file as a stream (used by :mod:`.ftps`).
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import posixpath
import re
import socket
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import BinaryIO

from moodump.errors import StorageError
from moodump.fsmodes import dir_mode
from moodump.storage.base import (
    BLOCK,
    TEMP_PREFIX,
    TransientError,
    read_source,
)

_SHA256_HEX = re.compile(r"\b[0-9a-fA-F]{64}\b")


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
        self.root_checked = False
        self.made: set[str] = set()
        #: False once the server refused SITE CHMOD: not asked again in this session.
        self.chmod_ok = True
        #: Sizes of files the last MLSD listings gave (path -> bytes): a listing needs
        #: no SIZE round trip per file where the server lists them.
        self.listed_sizes: dict[str, int] = {}

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
                for name, facts in self.ftp.mlsd(path, facts=["type", "size"]):
                    kind = facts.get("type", "").lower()
                    if kind in ("cdir", "pdir") or name in (".", ".."):
                        continue
                    out[name] = "dir" if kind == "dir" else "file" if kind == "file" else ""
                    size = facts.get("size", "")
                    if kind == "file" and size.isdigit():
                        self.listed_sizes[posixpath.join(path, name)] = int(size)
                return out
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    raise
        for entry in self.ftp.nlst(path):
            name = posixpath.basename(entry.rstrip("/"))
            if name not in ("", ".", ".."):
                out[name] = ""
        return out

    def entries(self, path: str) -> dict[str, str]:
        """Like :meth:`listdir`, with unknown kinds resolved (a file has a SIZE)."""
        out = self.listdir(path)
        for name, kind in out.items():
            if not kind:
                out[name] = "file" if self.size(posixpath.join(path, name)) is not None else "dir"
        return out

    def sha256(self, path: str) -> tuple[str, str]:
        """(sha256, method) of a remote file: the server's hash if offered, else download."""
        if self.hash_feature:
            digest = self._server_sha256(path)
            if digest:
                return digest, "server-hash"
        hasher = hashlib.sha256()
        try:
            self.ftp.retrbinary(f"RETR {path}", hasher.update, blocksize=BLOCK)
        except ftplib.error_perm as exc:
            raise StorageError(
                f"cannot read back {path} from the FTP server to check it ({exc})",
                hint=(
                    "let the FTP account download what it uploads (vsftpd anonymous uploads: "
                    "anon_umask=022), or use a server that offers HASH or XSHA256"
                ),
            ) from exc
        self.binary_mode = True
        return hasher.hexdigest(), "download"

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
        if path in ("", "/") or path in self.made:
            return
        current = "/" if path.startswith("/") else ""
        for part in path.split("/"):
            if not part:
                continue
            current = posixpath.join(current, part) if current else part
            if current in self.made:
                continue
            try:
                self.ftp.mkd(current)
            except ftplib.error_perm as exc:
                if not str(exc).startswith(("550", "521")):
                    raise
                # 550/521: exists (or cannot be created; the next command will say so)
            else:
                self.chmod(current, dir_mode())
            self.made.add(current)

    def missing_dir(self, path: str) -> str | None:
        """The first directory of ``path`` (itself, or a parent) the server cannot enter,
        None when all of them can be entered. For telling a file that cannot be stored
        because its directory is missing (a ``makedirs`` the server refused) apart from
        other refusals; the working directory is left as it was."""
        here = self.ftp.pwd()
        current = "/" if path.startswith("/") else ""
        try:
            for part in path.split("/"):
                if not part:
                    continue
                current = posixpath.join(current, part) if current else part
                try:
                    self.ftp.cwd(current)
                except ftplib.error_perm:
                    self.made = {
                        d for d in self.made if d != current and not d.startswith(current + "/")
                    }
                    return current
                self.ftp.cwd(here)
        finally:
            with contextlib.suppress(ftplib.error_perm):
                self.ftp.cwd(here)
        return None

    def chmod(self, path: str, mode: int) -> None:
        """``SITE CHMOD`` (backups private on the server too), where the server offers it.

        Best effort: a server without SITE CHMOD (or that refuses it) keeps its own
        modes (its umask, e.g. vsftpd's ``local_umask``), and is not asked again.
        """
        if not self.chmod_ok:
            return
        try:
            self.ftp.voidcmd(f"SITE CHMOD {mode:o} {path}")
        except (ftplib.error_perm, ftplib.error_reply, ftplib.error_temp):
            self.chmod_ok = False

    def rmtree(self, path: str) -> int:
        """Delete a remote directory and everything below it; returns the files deleted."""
        count = 0
        for name, kind in self.listdir(path).items():
            child = posixpath.join(path, name)
            if kind == "dir":
                count += self.rmtree(child)
            elif kind == "file":
                self.ftp.delete(child)
                count += not name.startswith(TEMP_PREFIX)
            else:
                try:
                    self.ftp.delete(child)
                    count += not name.startswith(TEMP_PREFIX)
                except ftplib.error_perm:
                    count += self.rmtree(child)
        self.ftp.rmd(path)
        self.made = {d for d in self.made if d != path and not d.startswith(path + "/")}
        return count

    def delete_quietly(self, path: str) -> None:
        with contextlib.suppress(ftplib.Error, OSError, EOFError):
            self.ftp.delete(path)


class _HashingReader:
    """The upload source: hashes what is read; a read error is local, not the server's."""

    def __init__(self, stream: BinaryIO, what: str) -> None:
        self.stream = stream
        self.what = what
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        block = read_source(self.stream, n, self.what)
        if block:
            self.hasher.update(block)
            self.size += len(block)
        return block or b""


class _FtpReadStream:
    """A download as a stream; owns its own FTP session, closed with the stream."""

    def __init__(
        self,
        ftp: ftplib.FTP,
        sock: socket.socket,
        what: str,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._ftp = ftp
        self._on_close = on_close  # told once, when the session has ended
        self._sock = sock
        self._file = sock.makefile("rb")
        self._what = what
        self._eof = False
        self._replied = False  # the transfer's final reply was read
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        if self._eof:
            return b""
        try:
            data = self._file.read(n if n is not None and n >= 0 else -1)
        except OSError as exc:
            raise StorageError(
                f"reading {self._what} from the FTP server failed: {exc}",
                hint="the connection broke; try again",
            ) from exc
        if not data or n is None or n < 0:
            self._finish()
        return data

    def _finish(self) -> None:
        """At the end of the data: the server's reply says whether that was the file's
        end (226) or the transfer was cut (426, 451): a cut must not read as a shorter
        file, which a restore would call a damaged backup."""
        self._eof = True
        try:
            self._file.close()
            if isinstance(self._sock, ssl.SSLSocket):
                self._sock.unwrap()
        except (OSError, ValueError):
            pass
        finally:
            self._sock.close()
        try:
            self._ftp.voidresp()
        except (ftplib.Error, OSError, EOFError) as exc:
            self._ftp.close()
            raise TransientError(
                f"the FTP server ended the transfer of {self._what} before its end: "
                f"{str(exc).strip()[:200] or type(exc).__name__}",
                hint="the connection broke off while reading: check the server and the "
                "network, then try again",
            ) from exc
        self._replied = True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self._eof:  # closed before the end: no reply to wait for
            try:
                self._file.close()
            except (OSError, ValueError):
                pass
            finally:
                self._sock.close()
        try:
            if self._replied:
                self._ftp.quit()
        except (ftplib.Error, OSError, EOFError):
            pass
        finally:
            self._ftp.close()
            if self._on_close is not None:
                self._on_close()

    def __enter__(self) -> _FtpReadStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
