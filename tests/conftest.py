"""Test rig: one throwaway MariaDB server for the whole run, on 127.0.0.1.

If the server binaries are missing and we are root, they are installed with apt-get
(CI runs in a fresh clone with nothing installed by hand). No test touches a system
server: every server here lives in a temp dir and listens on loopback only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.db.localserver import LocalServer, server_binaries


def _ensure_mariadb() -> None:
    if server_binaries() is not None and shutil.which("mariadb"):
        return
    if os.geteuid() != 0:
        pytest.exit("MariaDB is not installed: apt-get install -y mariadb-server mariadb-client", 2)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "mariadb-server", "mariadb-client"], check=True, env=env
    )


@pytest.fixture(scope="session")
def mariadb() -> Iterator[LocalServer]:
    """The session's MariaDB server (root, no password, TCP on 127.0.0.1)."""
    _ensure_mariadb()
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def root_settings(mariadb: LocalServer) -> ConnSettings:
    return ConnSettings(host="127.0.0.1", port=mariadb.port, user="root", password="")


@pytest.fixture()
def fresh_db(root_settings: ConnSettings) -> Iterator[str]:
    """A new, empty database name; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:10]
    with connect(root_settings) as c:
        c.execute(f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
    yield name
    with connect(root_settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")


from helpers import run_sql  # noqa: E402,F401  (re-exported for older tests)
