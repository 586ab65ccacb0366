"""A throwaway PostgreSQL cluster in a temporary directory, for ``moodump verify --local``
of a PostgreSQL backup (restore into a server nobody else uses), as
:mod:`moodump.db.localserver` is for MariaDB.

``initdb`` (trust authentication, loopback only) in a new directory, ``pg_ctl start`` on
a free port with its socket in that directory, ``pg_ctl stop -m immediate`` and removal
on :meth:`LocalPgServer.stop` (also on ``with`` exit). ``initdb`` and ``postgres`` refuse
to run as root: under root the directory is given to the ``postgres`` account and the
tools run as it (``runuser``); any other user (an OpenShift arbitrary UID) runs them
directly. The binaries are those of :func:`moodump.pg.tools.client_for`: at least the
backup's server major version.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from moodump.db.connection import ConnSettings
from moodump.db.localserver import free_port
from moodump.errors import ConfigError, MoodumpError
from moodump.fsmodes import scratch_prefix
from moodump.pg.tools import client_for, run_tool


def server_available(major: int = 0) -> bool:
    """True when ``initdb`` and ``pg_ctl`` of at least ``major`` are installed."""
    try:
        bindir, _ = client_for(major)
    except ConfigError:
        return False
    return (bindir / "initdb").exists() and (bindir / "pg_ctl").exists()


class LocalPgServer:
    def __init__(self, base_dir: Path | None = None, major: int = 0) -> None:
        self.base_dir = base_dir
        self.major = major
        self.base: Path | None = None
        self.port = 0
        self.bindir: Path | None = None

    @property
    def settings(self) -> ConnSettings:
        return ConnSettings(host="127.0.0.1", port=self.port, user="postgres", ssl_mode="DISABLED")

    def _run(self, argv: list[str], what: str) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        run_tool(argv, dict(os.environ), what)

    def start(self, timeout: float = 120.0) -> LocalPgServer:
        bindir, _ = client_for(self.major)
        if not (bindir / "initdb").exists() or not (bindir / "pg_ctl").exists():
            raise ConfigError(
                f"no PostgreSQL server binaries (initdb, pg_ctl) in {bindir}",
                hint="install postgresql (the server package), or verify on a server with -H",
            )
        self.bindir = bindir
        if self.base_dir is not None:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base = Path(tempfile.mkdtemp(prefix=scratch_prefix("pg"), dir=self.base_dir))
        try:
            if os.geteuid() == 0:
                try:
                    pw = pwd.getpwnam("postgres")
                except KeyError:
                    raise ConfigError(
                        "initdb refuses to run as root and there is no postgres account",
                        hint="run moodump as another user, or create the postgres account",
                    ) from None
                os.chown(self.base, pw.pw_uid, pw.pw_gid)
            data = self.base / "data"
            try:
                self._run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                           "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], "initdb")  # fmt: skip
            except MoodumpError as exc:
                if "Permission denied" in exc.message and os.geteuid() == 0:
                    raise ConfigError(
                        f"the postgres account cannot reach {self.base}",
                        hint="give --local-dir (or its parents) search permission for others, "
                        "or leave it out to use the system's temporary directory",
                    ) from exc
                raise
            self.port = free_port()
            opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
            self._run([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                       str(self.base / "server.log"), "-t", str(int(timeout)), "-w", "start"],
                      "pg_ctl start")  # fmt: skip
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise
        return self

    def stop(self) -> None:
        if self.base is None or self.bindir is None:
            return
        with contextlib.suppress(Exception):  # already gone: the directory goes anyway
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-m",
                       "immediate", "stop"], "pg_ctl stop")  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def __enter__(self) -> LocalPgServer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
