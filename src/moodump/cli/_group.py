"""The click group and option sets shared by several commands."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from moodump import __version__
from moodump.db import ConnSettings
from moodump.db.credentials import ConnRequest, resolve_connection
from moodump.errors import EXIT_CODES

_EXIT_TEXT = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


class Command(click.Command):
    """A command whose usage errors never name a hidden option.

    click suggests close matches for a mistyped option ("Did you mean --tables?") from
    every option, hidden ones included; hidden aliases and test hooks stay hidden.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            hidden = {
                name
                for p in self.params
                if isinstance(p, click.Option) and p.hidden
                for name in (*p.opts, *p.secondary_opts)
            }
            exc.possibilities = [p for p in exc.possibilities or () if p not in hidden]
            raise


class Group(click.Group):
    command_class = Command


@dataclass(frozen=True)
class LogFlags:
    """The group's --log-format/--log-level as given (None: not given), in ``ctx.obj``."""

    log_format: str | None = None
    log_level: str | None = None


def logging_settings(
    flags: LogFlags, *, log_format: str | None = None, log_level: str | None = None
) -> tuple[str, str]:
    """(format, level) by one precedence for every command: a flag (the group's, or a
    command's own ``--log-format``) > the configuration (``log_format``/``log_level``, or
    MOODUMP_LOG_FORMAT / BACKUP_LOG_LEVEL read through the key table) > the key table's
    default. A bad value in the environment falls back to the default here; ``moodump
    config`` and ``moodump run`` report it."""
    from moodump.config import setting
    from moodump.errors import ConfigError

    def configured(env: str, given: str | None) -> str:
        if given is not None:
            return given
        try:
            return str(setting(env))
        except ConfigError:
            return str(setting(env, {}))

    fmt = flags.log_format or configured("MOODUMP_LOG_FORMAT", log_format)
    level = flags.log_level or configured("BACKUP_LOG_LEVEL", log_level)
    return fmt, level


def current_log_flags() -> LogFlags:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, LogFlags) else LogFlags()


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="\b\nEXIT STATUS\n" + _EXIT_TEXT,
)
@click.version_option(__version__, prog_name="moodump", help="Show the version and exit.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines on stderr as text or JSON lines (default: MOODUMP_LOG_FORMAT, text).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default=None,
    help="Least important log lines shown (default: BACKUP_LOG_LEVEL, info).",
)
@click.pass_context
def cli(ctx: click.Context, log_format: str | None, log_level: str | None) -> None:
    """moodump: consistent, exact, verified backups of MySQL/MariaDB (Moodle) databases.

    Flags win over the environment and the environment over defaults, for every
    command: --log-format/--log-level over MOODUMP_LOG_FORMAT/BACKUP_LOG_LEVEL.
    """
    from moodump.logs import setup_logging

    flags = LogFlags(log_format, log_level.lower() if log_level else None)
    ctx.obj = flags
    setup_logging(*logging_settings(flags))


def threads_default() -> int:
    """The --threads default of every command: MOODUMP_THREADS (key-table default).

    A bad MOODUMP_THREADS is an error naming it (exit 2), not silently 2; only while
    click completes a command line (resilient parsing) does the key table's default stand in.
    """
    from moodump.config import setting
    from moodump.errors import ConfigError

    try:
        return int(setting("MOODUMP_THREADS"))
    except ConfigError:
        ctx = click.get_current_context(silent=True)
        if ctx is not None and ctx.resilient_parsing:
            return int(setting("MOODUMP_THREADS", {}))
        raise


def threads_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--threads/-t`` with the one default (MOODUMP_THREADS, else the key table's)."""
    return click.option(
        "--threads",
        "-t",
        type=click.IntRange(1, 64),
        default=threads_default,
        show_default="MOODUMP_THREADS or 2",
        help=help_text,
    )


def timeout_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--connect-timeout`` and ``--read-timeout`` (defaults: MOODUMP_CONNECT_TIMEOUT,
    MOODUMP_READ_TIMEOUT); pass ``timeouts`` as a (connect, read) pair."""

    @click.option(
        "--connect-timeout",
        type=click.IntRange(1),
        default=None,
        help="Seconds to wait for the connection (default: MOODUMP_CONNECT_TIMEOUT, 10).",
    )
    @click.option(
        "--read-timeout",
        type=click.IntRange(0),
        default=None,
        help="Fail when the server sends nothing for this many seconds (0 = wait forever; "
        "default: MOODUMP_READ_TIMEOUT). Set it to notice a hung server or a network "
        "partition.",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from moodump.config import setting

        connect_timeout = kwargs.pop("connect_timeout")
        read_timeout = kwargs.pop("read_timeout")
        kwargs["timeouts"] = (
            connect_timeout if connect_timeout is not None else setting("MOODUMP_CONNECT_TIMEOUT"),
            read_timeout if read_timeout is not None else setting("MOODUMP_READ_TIMEOUT"),
        )
        return func(*args, **kwargs)

    return wrapper


def tls_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--ssl-mode``, ``--ssl-ca``, ``--ssl-cert``, ``--ssl-key``; pass ``tls``, a dict of
    the :class:`~moodump.db.credentials.ConnRequest` TLS fields (None: not given)."""
    from moodump.config.values import SSL_MODES

    @click.option(
        "--ssl-mode",
        type=click.Choice(SSL_MODES, case_sensitive=False),
        default=None,
        help="TLS to the server: DISABLED, PREFERRED (TLS when offered), REQUIRED (fail "
        "without TLS), VERIFY_CA (check the certificate's CA), VERIFY_IDENTITY (and the "
        "host name) (default: option file ssl-mode, MOODUMP_SSL_MODE, PREFERRED).",
    )
    @click.option(
        "--ssl-ca",
        type=click.Path(dir_okay=False),
        default=None,
        help="CA certificate(s), PEM, that sign the server's certificate (default: "
        "MOODUMP_SSL_CA; the system CAs for VERIFY_*).",
    )
    @click.option(
        "--ssl-cert",
        type=click.Path(dir_okay=False),
        default=None,
        help="Client certificate, PEM, for a server that asks for one (default: MOODUMP_SSL_CERT).",
    )
    @click.option(
        "--ssl-key",
        type=click.Path(dir_okay=False),
        default=None,
        help="The client certificate's private key, PEM (default: MOODUMP_SSL_KEY).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mode = kwargs.pop("ssl_mode")
        kwargs["tls"] = {
            "ssl_mode": mode.upper() if mode else None,
            "ssl_ca": kwargs.pop("ssl_ca"),
            "ssl_cert": kwargs.pop("ssl_cert"),
            "ssl_key": kwargs.pop("ssl_key"),
        }
        return func(*args, **kwargs)

    return wrapper


def hidden_alias(old: str, dest: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """An old spelling of an option, still accepted but not shown (``dest`` is its
    parameter name; the command merges it into the new option)."""
    return click.option(old, dest, hidden=True, **kwargs)


def server_flags(*, optional: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--host/--port/--socket/--user/--password-file/--defaults-file as plain parameters.

    ``optional``: the server is optional for the command (``verify`` restores into a
    scratch database on it when given), and the help says "that server".
    """
    that = "that server" if optional else "server"
    helps = {
        "host": "Restore into a scratch database on this server."
        if optional
        else "Server host (default 127.0.0.1).",
        "port": f"Port of {that} (default 3306)." if optional else "Server port (default 3306).",
        "socket": "Unix socket of that server (instead of host/port)."
        if optional
        else "Unix socket path (instead of host/port).",
        "user": "Account on that server (default: $USER or root)."
        if optional
        else "Account name (default: $USER or root).",
        "password_file": "Read that account's password from this file (first line)."
        if optional
        else "Read the password from this file (first line).",
    }
    options = [
        click.option("--host", "-H", default=None, help=helps["host"]),
        click.option("--port", "-P", type=int, default=None, help=helps["port"]),
        click.option("--socket", "-S", default=None, help=helps["socket"]),
        click.option("--user", "-u", default=None, help=helps["user"]),
        click.option(
            "--password-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=helps["password_file"],
        ),
        click.option(
            "--defaults-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="MySQL option file with a [client] section (host, port, user, password, "
            "socket, ssl-mode, ssl-ca, ssl-cert, ssl-key).",
        ),
    ]

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


MOODLE_SITE = "moodump.moodle_site"


def current_moodle_site() -> Any:
    """The :class:`~moodump.config.MoodleConfig` that --moodle-config (or MOODLE_CONFIG)
    named for this command, else None (commands read its dbname, prefix, dataroot)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(MOODLE_SITE) if ctx is not None else None


def moodle_defaults() -> tuple[str | None, str, str | None]:
    """(database name, table prefix, dataroot) of the command's Moodle site: config.php's
    dbname (None without one), MOODLE_PREFIX when set, else config.php's prefix, else
    mdl_; config.php's dataroot (None when unknown)."""
    from moodump.config import setting
    from moodump.errors import ConfigError

    site = current_moodle_site()
    prefix = os.environ.get("MOODLE_PREFIX") and setting("MOODLE_PREFIX")
    if site is None:
        return None, prefix or str(setting("MOODLE_PREFIX", {})), None
    if not prefix:
        prefix = setting("MOODLE_PREFIX", {"MOODLE_PREFIX": site.text("prefix") or ""})
    try:
        dataroot = site.text("dataroot")
    except ConfigError:  # unreadable: the CLI maintenance file is not looked for
        dataroot = None
    return site.text("dbname", override="the DATABASE argument"), str(prefix), dataroot


def connection_options(
    func: Callable[..., Any] | None = None, *, lazy: bool = False
) -> Any:
    """Add --host/--port/--socket/--user/--password-file/--defaults-file and
    --moodle-config; pass ``conn``.

    The password is never taken from argv: MYSQL_PWD, --password-file, an option file
    ([client] password=), config.php's dbpass or a prompt on a terminal, in that order.

    With ``lazy=True`` ``conn`` is a function that resolves the settings on its first call
    (and remembers them), for commands that connect only on some paths: a command that
    reads a backup never prompts for a password it will not use.
    """
    if func is None:
        return functools.partial(connection_options, lazy=lazy)

    @server_flags()
    @click.option(
        "--moodle-config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The Moodle site's config.php: its database settings (dbhost, dboptions, "
        "dbuser, dbpass, dbname, prefix, dataroot) fill in what flags, option file and "
        "environment leave unset (default: MOODLE_CONFIG; docs/moodle.md).",
    )
    @tls_options
    @timeout_options
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("db_type") == "postgres" or (
            kwargs.get("db_type") is None and _is_postgres_backup(kwargs.get("path"))
        ):
            conn = build_pg_conn_settings(
                host=kwargs.pop("host"),
                port=kwargs.pop("port"),
                socket=kwargs.pop("socket"),
                user=kwargs.pop("user"),
                password_file=kwargs.pop("password_file"),
                tls=kwargs.pop("tls"),
            )
            kwargs.pop("defaults_file")
            kwargs.pop("moodle_config")  # config.php describes a MySQL/MariaDB site here
            click.get_current_context().meta[MOODLE_SITE] = None
            connect_timeout, read_timeout = kwargs.pop("timeouts")
            pg = replace(conn, connect_timeout=connect_timeout, read_timeout=read_timeout)
            kwargs["conn"] = (lambda: pg) if lazy else pg
            return func(*args, **kwargs)
        from moodump.config import read_moodle_config, setting

        path = kwargs.pop("moodle_config") or setting("MOODLE_CONFIG") or None
        site = read_moodle_config(str(path)) if path else None
        click.get_current_context().meta[MOODLE_SITE] = site
        flags = {k: kwargs.pop(k) for k in _CONN_FLAGS}
        connect_timeout, read_timeout = kwargs.pop("timeouts")

        @functools.cache
        def resolve() -> ConnSettings:
            conn = build_conn_settings(**flags, moodle=site)
            if site is not None:  # a password read from a file: masked in every log line
                from moodump.logs import register_secret

                register_secret(conn.password)
            return replace(conn, connect_timeout=connect_timeout, read_timeout=read_timeout)

        kwargs["conn"] = resolve if lazy else resolve()
        return func(*args, **kwargs)

    return wrapper


def _is_postgres_backup(path: object) -> bool:
    """True when ``path`` is a local backup directory of a PostgreSQL database (restore
    detects the type from the manifest; connection defaults follow it: PG*, 5432)."""
    if not isinstance(path, (str, Path)) or not str(path) or "://" in str(path):
        return False
    try:
        from moodump.manifest import read_manifest

        return read_manifest(Path(path)).database_type == "postgresql"
    except Exception:  # not a backup directory: the command reports that itself
        return False


def build_pg_conn_settings(
    *,
    host: str | None,
    port: int | None,
    socket: str | None,
    user: str | None,
    password_file: Path | None,
    tls: dict[str, str | None] | None = None,
    env: dict[str, str] | None = None,
) -> ConnSettings:
    """PostgreSQL connection flags resolved by :func:`moodump.pg.credentials.resolve_pg_connection`."""
    from moodump.pg.credentials import resolve_pg_connection

    return resolve_pg_connection(
        ConnRequest(
            host=host, port=port, socket=socket, user=user, password_file=password_file,
            defaults_file=None,
            **(tls or {}),
        ),
        env=dict(os.environ) if env is None else env,
    )


_CONN_FLAGS = ("host", "port", "socket", "user", "password_file", "defaults_file", "tls")


def build_conn_settings(
    *,
    host: str | None,
    port: int | None,
    socket: str | None,
    user: str | None,
    password_file: Path | None,
    defaults_file: Path | None,
    tls: dict[str, str | None] | None = None,
    env: dict[str, str] | None = None,
    moodle: Any = None,
) -> ConnSettings:
    """The connection flags resolved by :func:`moodump.db.credentials.resolve_connection`."""
    return resolve_connection(
        ConnRequest(
            host=host,
            port=port,
            socket=socket,
            user=user,
            password_file=password_file,
            defaults_file=defaults_file,
            **(tls or {}),
        ),
        env=dict(os.environ) if env is None else env,
        interactive=click.get_text_stream("stdin").isatty(),
        prompt=lambda: click.prompt("Password", hide_input=True, default="", show_default=False),
        moodle=moodle,
    )


def identity_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--identity FILE`` (repeatable; default MOODUMP_IDENTITY_FILE); pass
    ``identities``, the loaded private keys for encrypted backups (empty when none)."""

    @click.option(
        "--identity",
        "identity_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Private key (age identity or ssh key) for an encrypted backup; repeatable "
        "(default: MOODUMP_IDENTITY_FILE).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, identity_files: tuple[Path, ...], **kwargs: Any) -> Any:
        from moodump.config import setting
        from moodump.crypto import load_identities

        files = list(identity_files) or (
            [Path(setting("MOODUMP_IDENTITY_FILE"))] if setting("MOODUMP_IDENTITY_FILE") else []
        )
        kwargs["identities"] = load_identities(files) if files else []
        return func(*args, **kwargs)

    return wrapper


def verify_key_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--verify-key FILE`` (repeatable; default MOODUMP_VERIFY_KEY); pass
    ``verify_keys``, the public keys a backup must be signed with (empty: not checked)."""

    @click.option(
        "--verify-key",
        "verify_key_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Ed25519 public key(s) (PEM or ssh-ed25519 lines) the backup must be signed "
        "with; repeatable (default: MOODUMP_VERIFY_KEY).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, verify_key_files: tuple[Path, ...], **kwargs: Any) -> Any:
        from moodump.config import setting
        from moodump.crypto import load_verify_keys

        keys = [k for f in verify_key_files for k in load_verify_keys(f, where=str(f))]
        if not verify_key_files and setting("MOODUMP_VERIFY_KEY"):
            keys = load_verify_keys(setting("MOODUMP_VERIFY_KEY"))
        kwargs["verify_keys"] = keys
        return func(*args, **kwargs)

    return wrapper


def refuse_unsigned_legacy(path: str, verify_keys: Sequence[Any]) -> None:
    """An old .sql.gz file is never signed: with verify keys set, it is refused."""
    if verify_keys:
        from moodump.errors import IntegrityError

        raise IntegrityError(
            f"{path} is an old backup-container file, which is never signed, and a verify "
            "key is set",
            hint="to restore an old file you trust, run without --verify-key and "
            "MOODUMP_VERIFY_KEY",
        )
