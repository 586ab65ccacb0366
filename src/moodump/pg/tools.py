"""The PostgreSQL client tools (``pg_dump``, ``psql``): where they are, whether their
major version can read the server, and running them without a password on a command line.

``pg_dump`` refuses a server whose major version is newer than its own, and the catalogue
it writes is only exact for servers it knows. moodump looks for the tools in
``MOODUMP_PG_BINDIR``, then in Debian's ``/usr/lib/postgresql/<major>/bin`` (newest
first), then on ``PATH``, and picks one whose major version is at least the server's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from moodump.db.connection import ConnSettings
from moodump.errors import ConfigError, ServerError
from moodump.fsmodes import scratch_prefix


def dbname_arg(database: str) -> str:
    """The value of a client tool's ``-d`` naming ``database``: a connection string
    holding only its name (quoted), as ``-d NAME`` reads a name with ``=`` in it (or one
    starting ``postgresql://``) as a connection string of its own."""
    return "dbname='" + database.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _major_of(binary: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else None


def _candidates() -> list[Path]:
    out: list[Path] = []
    from moodump.config import setting

    env = setting("MOODUMP_PG_BINDIR")
    if env:
        out.append(Path(env))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name)
        )
        out += [p / "bin" for p in versions]
    found = shutil.which("pg_dump")
    if found:
        out.append(Path(found).resolve().parent)
    return out


def bindir() -> Path | None:
    """The first directory holding ``pg_dump`` (None when PostgreSQL's tools are absent)."""
    for d in _candidates():
        if (d / "pg_dump").exists():
            return d
    return None


def client_for(server_major: int) -> tuple[Path, int]:
    """(bin directory, major) of client tools that can dump a server of ``server_major``."""
    seen: list[str] = []
    for d in _candidates():
        if not (d / "pg_dump").exists() or not (d / "psql").exists():
            continue
        major = _major_of(d / "pg_dump")
        if major is None:
            continue
        seen.append(f"{d} ({major})")
        if major >= server_major:
            return d, major
    raise ConfigError(
        f"no PostgreSQL client tools of major version {server_major} or newer"
        + (f" (found: {', '.join(seen)})" if seen else " (pg_dump and psql not found)"),
        hint=f"install postgresql-client-{server_major} (or newer), or point "
        "MOODUMP_PG_BINDIR at its bin directory: pg_dump must be at least the server's version",
    )


@contextlib.contextmanager
def tool_env(settings: ConnSettings) -> Iterator[dict[str, str]]:
    """The environment for a client tool: ``PGHOST``/``PGPORT``/``PGUSER`` and, when a
    password is configured, a private ``PGPASSFILE`` (mode 0600, removed afterwards)."""
    env = dict(os.environ)
    if settings.password:  # the configured password wins over an inherited PGPASSWORD
        env.pop("PGPASSWORD", None)
    env.update(
        PGHOST=settings.socket or settings.host,
        PGPORT=str(settings.port),
        PGUSER=settings.user,
        PGAPPNAME="moodump",
        PGCONNECT_TIMEOUT=str(settings.connect_timeout),
    )
    if not settings.password:
        yield env
        return
    fd, name = tempfile.mkstemp(prefix=scratch_prefix("pgpass"))
    try:
        os.fchmod(fd, 0o600)

        def esc(v: str) -> str:
            return v.replace("\\", "\\\\").replace(":", "\\:")

        line = f"*:*:*:{esc(settings.user)}:{esc(settings.password)}\n"
        os.write(fd, line.encode("utf-8"))
        os.close(fd)
        env["PGPASSFILE"] = name
        yield env
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def run_tool(argv: Sequence[str | bytes], env: dict[str, str], what: str, *, stdin: bytes | None = None) -> bytes:
    """Run a client tool; ServerError with its message when it fails."""
    try:
        proc = subprocess.run(argv, env=env, input=stdin, capture_output=True, check=False)
    except OSError as exc:
        raise ConfigError(f"cannot run {argv[0]!s}: {exc.strerror}", hint="install the PostgreSQL client tools") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise ServerError(f"{what} failed: {err[-2000:]}", hint="see the tool's message; run again once fixed")
    return proc.stdout


#: A running client tool (see :func:`spawn`).
ToolProcess = subprocess.Popen[bytes]


def spawn(argv: Sequence[str | bytes], env: dict[str, str]) -> ToolProcess:
    """Start a client tool with its stdout and stderr piped (stdin closed); an argument
    given as bytes reaches it as those bytes (a statement in the database's encoding)."""
    try:
        return subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise ConfigError(f"cannot run {argv[0]!s}: {exc.strerror}", hint="install the PostgreSQL client tools") from exc
