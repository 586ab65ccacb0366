"""A throwaway MariaDB server in a temporary directory.

Used by ``moodump verify --local`` (restore into a server nobody else uses), by the
README demo, by the test rig and by the benchmarks. The server listens on 127.0.0.1 and a
Unix socket inside its own directory, runs without a binary log unless asked, and is
stopped and removed by :meth:`LocalServer.stop` (also on ``with`` exit).

Debian installs daemons without starting them; this module never touches a system
server, and it refuses to use a data directory it did not create.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from moodump.errors import ConfigError, ServerError
from moodump.fsmodes import scratch_prefix

_SERVER_NAMES = ("mariadbd", "mysqld")
_INSTALL_NAMES = ("mariadb-install-db", "mysql_install_db")
_SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for d in _SEARCH_DIRS:
            candidate = Path(d) / name
            if candidate.exists():
                return str(candidate)
    return None


def server_binaries() -> tuple[str, str] | None:
    """Return (server, install-db) paths if a MariaDB server is installed, else None."""
    server = _find(_SERVER_NAMES)
    install = _find(_INSTALL_NAMES)
    if server and install:
        return server, install
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _PortTaken(Exception):
    """Another process bound the port between our choice and the server's start."""


@dataclass
class LocalServer:
    """A private MariaDB instance; root has no password and connects over TCP or socket.

    :param base_dir: where to create the instance (a new temp dir when None).
    :param binlog: run with a binary log (needed to test binlog/GTID capture).
    :param settings: extra ``--name=value`` server options.
    """

    base_dir: Path | None = None
    binlog: bool = False
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _own_dir: bool = False

    @property
    def socket(self) -> str:
        assert self.base_dir is not None
        return str(self.base_dir / "mysqld.sock")

    @property
    def datadir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "server.log"

    def start(self, timeout: float = 60.0) -> LocalServer:
        """Initialise a data directory, start the server and wait until it answers."""
        bins = server_binaries()
        if bins is None:
            raise ConfigError(
                "no MariaDB server binaries found (mariadbd / mariadb-install-db)",
                hint="install them: apt-get install -y mariadb-server mariadb-client",
            )
        server, install = bins
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix=scratch_prefix("mariadb")))
            self._own_dir = True
        self.base_dir.mkdir(parents=True, exist_ok=True)
        marker = self.base_dir / ".moodump-localserver"
        if self.datadir.exists() and not marker.exists():
            raise ConfigError(
                f"{self.datadir} exists and was not created by moodump",
                hint="point --local-dir at an empty directory",
            )
        marker.touch()
        if not (self.datadir / "mysql").exists():
            self.datadir.mkdir(exist_ok=True)
            cmd = [
                install,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]
            if os.geteuid() == 0:
                cmd.append("--user=root")
            res = subprocess.run(cmd, capture_output=True, check=False)
            if res.returncode != 0:
                raise ServerError(
                    "mariadb-install-db failed: " + res.stderr.decode(errors="replace")[-2000:],
                    hint="check that the directory is writable and has free space",
                )
        chosen_port = not self.port
        for attempt in range(5):
            if chosen_port:
                self.port = free_port()
            try:
                return self._launch(server, timeout)
            except _PortTaken:
                if not chosen_port or attempt == 4:
                    raise ServerError(
                        f"port {self.port} on 127.0.0.1 is taken", hint="pick another port"
                    ) from None
        raise AssertionError("unreachable")

    def _launch(self, server: str, timeout: float) -> LocalServer:
        assert self.base_dir is not None
        (self.base_dir / "tmp").mkdir(exist_ok=True)
        args = [
            server,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket}",
            f"--pid-file={self.base_dir / 'mysqld.pid'}",
            f"--log-error={self.log_path}",
            # Temp tables in our own directory, not a /tmp shared with other servers and
            # with anything that cleans it.
            f"--tmpdir={self.base_dir / 'tmp'}",
            "--local-infile=1",
            "--max-allowed-packet=1G",
            "--innodb-buffer-pool-size=512M",
            "--innodb-log-file-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--skip-name-resolve",
        ]
        if self.binlog:
            args += [
                f"--log-bin={self.base_dir / 'binlog'}",
                "--server-id=1",
                "--binlog-format=ROW",
            ]
        else:
            args.append("--skip-log-bin")
        if os.geteuid() == 0:
            args.append("--user=root")
        for k, v in self.settings.items():
            args.append(f"--{k}={v}")
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self._log_tail()
                if "Address already in use" in log or "Bind on TCP/IP port" in log:
                    self.log_path.write_text("")  # the next attempt gets a clean log
                    raise _PortTaken()
                raise ServerError(
                    f"the local MariaDB server exited at start (code {self.process.returncode}): "
                    + self._log_tail(),
                    hint="read the server log above; a full disk or a bad setting is usual",
                )
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError(
            f"the local MariaDB server did not answer within {timeout:.0f}s",
            hint="raise DATABASE_SERVER_TIMEOUT or check the server log",
        )

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.settimeout(0.5)
                return len(s.recv(4)) > 0
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"

    def kill(self) -> None:
        """SIGKILL the server (crash tests); the data directory stays."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, remove: bool = True) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory if we made it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if remove and self._own_dir and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
