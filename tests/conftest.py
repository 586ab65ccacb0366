"""Test rig: one throwaway MariaDB server for the whole run, on 127.0.0.1.

If the server binaries are missing and we are root, they are installed with apt-get
(CI runs in a fresh clone with nothing installed by hand). No test touches a system
server: every server here lives in a temp dir and listens on loopback only.

Every test that uses the server (through ``mariadb`` or a fixture built on it) or a
storage server (marked ``storage``) is marked ``db`` automatically; modules that start
servers of their own mark themselves. So ``pytest -m "not db"`` runs the pure tests
alone, with no server, in seconds.

Shared sources: ``small`` and ``big`` are a database on the session server with a DONE
backup of it, built once per session (see ``helpers_failures.source``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from helpers_failures import Source, source
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


@pytest.fixture(scope="session")
def small(root_settings: ConnSettings, tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A small source database and its backup (shared by the failure tests)."""
    return source(root_settings, "small", lambda: tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="session")
def big(root_settings: ConnSettings, tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A source big enough that a dump or restore takes a while (to interrupt it)."""
    return source(root_settings, "big", lambda: tmp_path_factory.mktemp("big"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``db`` every test that needs a server the rig starts: the session MariaDB, or
    a storage server (``storage``: SeaweedFS, FTPS). ``-m "not db"`` is the pure rest."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "mariadb" in names or "pg" in names or item.get_closest_marker("storage"):
            item.add_marker(pytest.mark.db)


from helpers import run_sql  # noqa: E402,F401  (re-exported for older tests)
from rig_pg import pg  # noqa: E402,F401  (the session PostgreSQL cluster, tests/rig_pg.py)
