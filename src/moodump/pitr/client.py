"""The stock client programs point-in-time recovery drives: ``mariadb-binlog`` (fetches the
raw binary log from the server, and turns archived files into SQL) and ``mariadb``
(applies that SQL). The password goes through the environment (``MYSQL_PWD``), never the
command line; the children run in UTC so event times mean the same everywhere, and die
with moodump (``PR_SET_PDEATHSIG``), so a ``kill -9`` of moodump leaves no stray fetcher
writing into the archive.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
from pathlib import Path

from moodump.db.connection import ConnSettings
from moodump.errors import ConfigError
from moodump.legacy import _client_tls_args  # the stock clients' TLS flags, one copy

_PR_SET_PDEATHSIG = 1


def find(names: tuple[str, ...], what: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        f"{what} needs {names[0]} (from the MariaDB client package), which is not on PATH",
        hint="install it (apt-get install mariadb-client); the container image has it",
    )


def binlog_tool() -> str:
    return find(("mariadb-binlog", "mysqlbinlog"), "point-in-time recovery")


def sql_client() -> str:
    return find(("mariadb", "mysql"), "replaying the binary log")


def connection_args(program: str, settings: ConnSettings) -> list[str]:
    """Where and as whom ``program`` connects: the same server and TLS mode as moodump's
    own connections (no password: see :func:`child_env`)."""
    args: list[str] = []
    if settings.socket:
        args.append(f"--socket={settings.socket}")
    else:
        args += [f"--host={settings.host}", f"--port={settings.port}", "--protocol=TCP"]
    args += [f"--user={settings.user}"]
    # mariadb-binlog takes the same TLS flags as the mariadb client.
    tls_as = "mysql" if Path(program).name in ("mysql", "mysqlbinlog") else "mariadb"
    args += _client_tls_args(tls_as, settings)
    return args


def child_env(settings: ConnSettings | None) -> dict[str, str]:
    env = {**os.environ, "TZ": "UTC"}
    env.pop("MYSQL_PWD", None)
    if settings is not None and settings.password:
        env["MYSQL_PWD"] = settings.password
    return env


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGKILL when moodump dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the lock still keeps a second pull out
        pass
