"""The click group and option sets shared by several commands."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..credentials import resolve_password
from ..db import ConnSettings
from ..errors import EXIT_CODES

_EXIT_TEXT = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="\b\nEXIT STATUS\n" + _EXIT_TEXT,
)
@click.version_option(__version__, prog_name="moodump")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines on stderr as text or JSON lines (default: MOODUMP_LOG_FORMAT or text).",
)
@click.option(
    "--log-level",
    default=None,
    help="debug, info, warning or error (default: BACKUP_LOG_LEVEL or warning).",
)
def cli(log_format: str | None, log_level: str | None) -> None:
    """moodump: consistent, exact, verified backups of MySQL/MariaDB (Moodle) databases."""
    from ..logs import setup_logging

    fmt = log_format or os.environ.get("MOODUMP_LOG_FORMAT") or "text"
    level = log_level or os.environ.get("BACKUP_LOG_LEVEL") or "warning"
    setup_logging(fmt if fmt in ("text", "json") else "text", level)


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --host/--port/--socket/--user/--password-file/--defaults-file; pass ``conn``.

    The password is never taken from argv: MYSQL_PWD, --password-file, an option file
    ([client] password=) or a prompt on a terminal, in that order.
    """

    @click.option("--host", "-H", default=None, help="Server host (default 127.0.0.1).")
    @click.option("--port", "-P", type=int, default=None, help="Server port (default 3306).")
    @click.option("--socket", "-S", default=None, help="Unix socket path (instead of host/port).")
    @click.option("--user", "-u", default=None, help="Account name (default: $USER or root).")
    @click.option(
        "--password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Read the password from this file (first line).",
    )
    @click.option(
        "--defaults-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="MySQL option file with a [client] section (host, port, user, password, socket).",
    )
    @click.option(
        "--connect-timeout",
        type=int,
        default=10,
        show_default=True,
        help="Seconds to wait for the connection.",
    )
    @click.option(
        "--read-timeout",
        type=int,
        default=0,
        help="Fail when the server sends nothing for this many seconds (0 = wait forever; "
        "set it to notice a hung server or a network partition).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        conn = build_conn_settings(
            host=kwargs.pop("host"),
            port=kwargs.pop("port"),
            socket=kwargs.pop("socket"),
            user=kwargs.pop("user"),
            password_file=kwargs.pop("password_file"),
            defaults_file=kwargs.pop("defaults_file"),
        )
        kwargs["conn"] = replace(
            conn,
            connect_timeout=kwargs.pop("connect_timeout"),
            read_timeout=kwargs.pop("read_timeout"),
            write_timeout=conn.write_timeout,
        )
        return func(*args, **kwargs)

    return wrapper


def build_conn_settings(
    *,
    host: str | None,
    port: int | None,
    socket: str | None,
    user: str | None,
    password_file: Path | None,
    defaults_file: Path | None,
    env: dict[str, str] | None = None,
) -> ConnSettings:
    env = dict(os.environ) if env is None else env
    opts, password = resolve_password(
        env=env,
        password_file=password_file,
        defaults_file=defaults_file,
        interactive=click.get_text_stream("stdin").isatty(),
        prompt=lambda: click.prompt("Password", hide_input=True, default="", show_default=False),
    )
    return ConnSettings(
        host=host or opts.get("host") or env.get("MYSQL_HOST") or "127.0.0.1",
        port=int(port or opts.get("port") or env.get("MYSQL_TCP_PORT") or 3306),
        socket=socket or opts.get("socket") or None,
        user=user or opts.get("user") or env.get("MYSQL_USER") or env.get("USER") or "root",
        password=password,
    )
