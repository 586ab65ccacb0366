"""Where connection settings and passwords come from. Never argv.

:func:`resolve_connection` is the one resolution every caller uses (the CLI's
connection options and the scheduler alike). For each field: what the caller was told
explicitly (a flag, or a database configured in backup.conf with its credentials) wins,
then a MySQL option file's ``[client]`` section (--defaults-file, MYSQL_DEFAULTS_FILE),
then the environment (MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_USER, MYSQL_PWD), then the
default. Only a terminal gets a password prompt, and only when nothing else gave one.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from moodump.db.connection import ConnSettings
from moodump.errors import ConfigError


def read_secret_file(path: Path, what: str = "password file") -> str:
    """First line of a secret file, without the line end (Kubernetes secrets have none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror}", hint="check the path and its permissions"
        ) from exc
    return text.splitlines()[0] if text else ""


def read_option_file(path: Path) -> dict[str, str]:
    """The [client] (and [mysql]/[mariadb-client]) keys of a MySQL option file."""
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=False)
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise ConfigError(
            f"cannot read option file {path}: {exc.strerror}", hint="check --defaults-file"
        ) from exc
    except configparser.Error as exc:
        raise ConfigError(f"option file {path} is malformed: {exc}", hint="fix the file") from exc
    out: dict[str, str] = {}
    for section in ("client", "mysql", "mariadb-client", "client-mariadb"):
        if parser.has_section(section):
            for key, value in parser.items(section):
                if value is not None:
                    out[key.replace("_", "-")] = value.strip().strip("'\"")
    return out


@dataclass(frozen=True)
class ConnRequest:
    """What the caller was told explicitly; None means "not said, look further"."""

    host: str | None = None
    port: int | None = None
    socket: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    defaults_file: Path | None = None


def resolve_connection(
    request: ConnRequest,
    *,
    env: Mapping[str, str],
    interactive: bool = False,
    prompt: Callable[[], str] | None = None,
    base: ConnSettings | None = None,
) -> ConnSettings:
    """Settings from ``request`` > option file > environment > defaults (see the module).

    The password: ``request.password`` or ``--password-file``, then the option file's
    ``password``, then MYSQL_PWD, then a prompt when ``interactive``, else empty.
    ``base`` supplies the fields this does not resolve (timeouts, TLS).
    """
    opts = read_option_file(request.defaults_file) if request.defaults_file else {}
    if request.password is not None:
        password = request.password
    elif request.password_file is not None:
        password = read_secret_file(request.password_file)
    elif "password" in opts:
        password = opts["password"]
    elif "MYSQL_PWD" in env:
        password = env["MYSQL_PWD"]
    elif interactive and prompt is not None:
        password = prompt()
    else:
        password = ""
    port_text = request.port or opts.get("port") or env.get("MYSQL_TCP_PORT") or 3306
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(
            f"port {port_text!r} is not a number",
            hint="fix the port in the option file or MYSQL_TCP_PORT",
        ) from None
    return replace(
        base if base is not None else ConnSettings(),
        host=request.host or opts.get("host") or env.get("MYSQL_HOST") or "127.0.0.1",
        port=port,
        socket=request.socket or opts.get("socket") or None,
        user=request.user or opts.get("user") or env.get("MYSQL_USER") or env.get("USER") or "root",
        password=password,
    )
