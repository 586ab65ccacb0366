"""Test rig: FTP(S) servers (pyftpdlib, in-process, on 127.0.0.1) and their certificate.

Shared by tests/test_offsite_ftps.py and tests/test_storage_conformance.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

USER = "moodump"
PASSWORD = "ftp-Pa55/w0rd+x"  # "/" and "+" would break a hand-built URL


def make_certfile(path: Path) -> Path:
    """Write a self-signed certificate (and key, same file) for 127.0.0.1 to ``path``.

    Valid from 2020 for 30 years, so the tests pass on any date until 2050.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def free_ports(count: int) -> list[int]:
    """``count`` ports on 127.0.0.1 that were free a moment ago (the OS picks them)."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass
class Server:
    port: int
    root: Path
    handler: type[FTPHandler]

    def url(self, path: str = "/offsite/moodle/", scheme: str = "ftps") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


class _Loop(threading.Thread):
    def __init__(self, server: FTPServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.server.serve_forever(timeout=0.01, blocking=False, handle_exit=False)
        self.server.close_all()


@dataclass
class FtpServers:
    """Starts FTP(S) servers on demand; :meth:`stop` ends them all."""

    certfile: Path
    default_root: Path
    loops: list[_Loop] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._log = logging.getLogger("pyftpdlib")
        self._old_level = self._log.level
        self._log.setLevel(logging.WARNING)

    def start(
        self,
        base: type[FTPHandler] | None = None,
        *,
        tls: bool = True,
        root: Path | None = None,
        perm: str = "elradfmwMT",
        **attrs: Any,
    ) -> Server:
        """A server whose user USER/PASSWORD lives in ``root``; ``tls=False``: plain FTP;
        ``perm``: pyftpdlib's permission letters (M: SITE CHMOD)."""
        home = root or self.default_root
        home.mkdir(exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(home), perm=perm)
        parent = base or (TLS_FTPHandler if tls else FTPHandler)
        settings: dict[str, Any] = {
            "authorizer": authorizer,
            "passive_ports": free_ports(8),
            "auth_failed_timeout": 0,  # answer a bad password at once
            **attrs,
        }
        if issubclass(parent, TLS_FTPHandler):
            settings.update(
                certfile=str(self.certfile),
                tls_control_required=True,
                tls_data_required=True,
                ssl_context=None,
            )
        handler = type("Handler", (parent,), settings)
        server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
        loop = _Loop(server)
        loop.start()
        self.loops.append(loop)
        return Server(server.address[1], home, handler)

    def stop(self) -> None:
        for loop in self.loops:
            loop.stopping.set()
            loop.join(5)
        self.loops.clear()
        self._log.setLevel(self._old_level)
