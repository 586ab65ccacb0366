"""Helpers shared by tests (imported as ``helpers``)."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

from moodump.db import ConnSettings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def run_sql(settings: ConnSettings, sql: str, database: str | None = None) -> None:
    """Run a script of ;-separated statements through the mariadb client (test setup only)."""
    args = [
        "mariadb",
        "--no-defaults",
        "--default-character-set=utf8mb4",
        "--binary-mode",
        "-h",
        settings.host,
        "-P",
        str(settings.port),
        "-u",
        settings.user,
    ]
    if database:
        args.append(database)
    subprocess.run(
        args,
        input=sql.encode("utf-8", "surrogateescape"),
        check=True,
        env=dict(os.environ, MYSQL_PWD=settings.password),
    )


def run_sql_file(settings: ConnSettings, path: Path, database: str | None = None) -> None:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    run_sql(settings, data.decode("utf-8", "surrogateescape"), database)


def moodump_cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """Run the moodump CLI as a subprocess (passwords only via env)."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "moodump", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        **kw,
    )
