"""A throwaway PostgreSQL cluster for the tests (``initdb`` in a temp dir, loopback port).

``initdb`` and ``postgres`` refuse to run as root, so under root the data directory is
owned by the ``postgres`` account and the server runs as it (``runuser``). The session
fixture ``pg`` in tests/conftest_pg (imported by the PostgreSQL tests) starts one server
and stops it at the end; tests skip cleanly only when the binaries are absent.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from moodump.pg.tools import bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    base: Path
    port: int
    bindir: Path

    @property
    def data(self) -> Path:
        return self.base / "data"

    def run_as_owner(self, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]

    def start(self) -> PgServer:
        initdb = str(self.bindir / "initdb")
        self.run_as_owner(
            [initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8"]
        )
        opts = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60 -c max_wal_size=1GB"
        )
        self.run_as_owner(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
             str(self.base / "log"), "-w", "start"]
        )
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run_as_owner(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            )
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, db: str, sql: str | None = None, *, file: Path | None = None) -> str:
        argv = [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db]  # fmt: skip
        argv += ["-f", str(file)] if file else ["-c", sql or ""]
        proc = subprocess.run(argv, check=False, text=True, capture_output=True)
        if proc.returncode:
            raise AssertionError(f"psql failed: {proc.stderr}")
        return proc.stdout

    def createdb(self, name: str) -> None:
        self.psql("postgres", f'CREATE DATABASE "{name}"')

    def dropdb(self, name: str) -> None:
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def schema_dump(self, db: str) -> str:
        """``pg_dump --schema-only`` normalised: the ``\\restrict`` keys dropped."""
        out = subprocess.run(
            [str(self.bindir / "pg_dump"), "--schema-only", "-h", "127.0.0.1", "-p",
             str(self.port), "-U", "postgres", db],
            check=True, text=True, capture_output=True,
        ).stdout
        return "\n".join(
            line for line in out.splitlines()
            if not line.startswith(("\\restrict", "\\unrestrict"))
        )


def start_server() -> Iterator[PgServer]:
    where = bindir()
    if where is None or not (where / "initdb").exists():
        pytest.skip("PostgreSQL server binaries are absent (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="moodump-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o755)
    server = PgServer(base, _free_port(), where).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """The session's PostgreSQL 15 cluster (user postgres, trust auth, 127.0.0.1)."""
    yield from start_server()
