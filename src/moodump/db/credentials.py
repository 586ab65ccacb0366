"""Where connection settings and passwords come from. Never argv.

:func:`resolve_connection` is the one resolution every caller uses (the CLI's
connection options and the scheduler alike). For each field: what the caller was told
explicitly (a flag, or a database configured in backup.conf with its credentials) wins,
then a MySQL option file's ``[client]`` section (--defaults-file, MYSQL_DEFAULTS_FILE),
then the environment (MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_USER, MYSQL_PWD; for TLS
MOODUMP_SSL_MODE, MOODUMP_SSL_CA, MOODUMP_SSL_CERT, MOODUMP_SSL_KEY), then a Moodle config.php (--moodle-config,
MOODLE_CONFIG: dbhost, dboptions dbport/dbsocket, dbuser, dbpass), then the
default. Only a terminal gets a password prompt, and only when nothing else gave one.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from moodump.config.moodlephp import MoodleConfig
from moodump.config.values import secret_first_line
from moodump.db.connection import ConnSettings
from moodump.errors import ConfigError


def read_secret_file(path: Path, what: str = "password file") -> str:
    """First line of a secret file, without the line end (Kubernetes secrets have none)
    or a BOM (:func:`~moodump.config.values.secret_first_line`).

    Errors name the file, never its content.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror}", hint="check the path and its permissions"
        ) from exc
    except UnicodeDecodeError:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text", hint="save it as UTF-8 (a text editor can)"
        ) from None  # the exception's text would show the bytes around the bad one
    return secret_first_line(text)


# Option files, read as MariaDB's mysys/my_default.c reads them (my_print_defaults shows
# the result): the same comments, quotes, escapes and !include directives.
CLIENT_GROUPS = ("client", "mysql", "mariadb-client", "client-mariadb")
_SPACE = " \t\n\v\f\r"  # isspace() in the C locale; not Unicode's wider idea of it
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", '"': '"', "'": "'", "\\": "\\"}
_MAX_INCLUDE_DEPTH = 10  # deeper !include directives are skipped, as by MariaDB


def read_option_file(path: Path) -> dict[str, str]:
    """The client options of a MySQL/MariaDB option file, read as MariaDB reads it.

    Options of the groups in :data:`CLIENT_GROUPS` (group names without regard to case),
    in file order, included files at their directive, the last value of a name winning,
    as for the mariadb client; ``_`` and ``-`` are the same in names. Options without a
    value (``ssl``) are left out.

    Syntax: ``#`` and ``;`` start comment lines; ``#`` outside quotes ends a value;
    one pair of matching quotes around a value is removed; the escapes ``\\n \\t \\r \\b
    \\s \\" \\' \\\\`` are interpreted (any other backslash is kept); ``!include FILE``
    reads a file (a missing one is skipped) and ``!includedir DIR`` its ``*.cnf`` files
    in name order. A world-writable file, which MariaDB ignores, is refused.

    Errors name the file and the line, never what is on it: a password may be.
    """
    out: dict[str, str] = {}
    for group, name, value in _options(path, depth=0):
        if value is not None and group.lower() in CLIENT_GROUPS:
            out[name.replace("_", "-")] = value
    return out


def _options(path: Path, depth: int) -> Iterator[tuple[str, str, str | None]]:
    """(group, name, value or None) of every option of one file, includes expanded."""
    raw = _read_option_bytes(path, included=depth > 0)
    if raw is None:
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"option file {path} is not UTF-8 text (line {bad})",
            hint="save it as UTF-8 (a text editor can)",
        ) from None  # the exception's text would show the bytes around the bad one

    def malformed(lineno: int, problem: str) -> ConfigError:
        return ConfigError(
            f"option file {path} is malformed: line {lineno} {problem}", hint="fix the file"
        )

    group: str | None = None  # each file starts outside any group, as in MariaDB
    for lineno, line in enumerate(text.split("\n"), start=1):
        body = line.lstrip(_SPACE)
        if not body or body[0] in "#;":
            continue
        if body[0] == "!":
            if depth < _MAX_INCLUDE_DEPTH:
                yield from _directive(body[1:].lstrip(_SPACE), depth, lineno, malformed)
            continue  # an unknown directive is ignored, as by MariaDB
        if body[0] == "[":
            end = body.find("]")
            if end < 0:
                raise malformed(lineno, "has a section header without its closing ]")
            group = body[1:end].rstrip(_SPACE)
            continue
        if group is None:
            raise malformed(lineno, "has an option before any [section] header")
        name, eq, value = _cut_comment(body).partition("=")
        name = name.rstrip(_SPACE)
        if not name:
            raise malformed(lineno, "has an option without a name")
        if not eq:
            yield group, name, None
            continue
        value = value.strip(_SPACE)
        if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0]:
            value = value[1:-1]
        yield group, name, _ESCAPE.sub(lambda m: _ESCAPES.get(m[1], m[0]), value)


def _read_option_bytes(path: Path, *, included: bool) -> bytes | None:
    """The file's bytes; None for a missing included file (MariaDB skips it)."""
    try:
        st = path.stat()
        if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IWOTH:
            raise ConfigError(
                f"option file {path} is writable by everyone: MariaDB ignores such a "
                "file, so moodump refuses it rather than read what the client would not",
                hint=f"chmod o-w {path}",
            )
        if included and not stat.S_ISREG(st.st_mode):
            return None
        return path.read_bytes()
    except OSError as exc:
        if included and isinstance(exc, FileNotFoundError):
            return None
        raise ConfigError(
            f"cannot read option file {path}: {exc.strerror}", hint="check --defaults-file"
        ) from exc


def _directive(
    body: str, depth: int, lineno: int, malformed: Callable[[int, str], ConfigError]
) -> Iterator[tuple[str, str, str | None]]:
    """The options an ``!include``/``!includedir`` line brings in (``body`` after ``!``)."""
    for keyword in ("includedir", "include"):
        if body.startswith(keyword) and body[len(keyword) : len(keyword) + 1] in ("", *_SPACE):
            break
    else:
        return
    target = body[len(keyword) :].strip(_SPACE)
    if not target:
        raise malformed(lineno, f"has !{keyword} without a path")
    if keyword == "include":
        yield from _options(Path(target), depth + 1)
        return
    try:
        names = sorted(os.listdir(target))
    except OSError as exc:
        raise malformed(
            lineno, f"names an !includedir that cannot be read ({exc.strerror})"
        ) from None
    for name in names:
        if name.endswith(".cnf"):
            yield from _options(Path(target) / name, depth + 1)


def _cut_comment(body: str) -> str:
    """``body`` up to a ``#`` outside quotes (a backslash escapes a quote inside them)."""
    if "#" not in body:
        return body
    quote = ""
    escaped = False
    for i, ch in enumerate(body):
        if ch in "'\"" and not escaped:
            if not quote:
                quote = ch
            elif ch == quote:
                quote = ""
        if ch == "#" and not quote:
            return body[:i]
        escaped = bool(quote) and ch == "\\" and not escaped
    return body


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
    ssl_mode: str | None = None
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None


def resolve_connection(
    request: ConnRequest,
    *,
    env: Mapping[str, str],
    interactive: bool = False,
    prompt: Callable[[], str] | None = None,
    base: ConnSettings | None = None,
    moodle: MoodleConfig | None = None,
) -> ConnSettings:
    """Settings from ``request`` > option file > environment > ``moodle`` (a site's
    config.php) > defaults (see the module).

    The password: ``request.password`` or ``--password-file``, then the option file's
    ``password``, then MYSQL_PWD, then config.php's ``dbpass``, then a prompt when
    ``interactive``, else empty. A config.php value is read only when nothing above it
    gave one, so an unreadable one (``getenv()`` of an unset variable) that is
    overridden is no error.
    TLS: ``ssl-mode``, ``ssl-ca``, ``ssl-cert``, ``ssl-key`` of the option file, then
    MOODUMP_SSL_* (parsed by the key table), then ``base``'s. ``base`` supplies the
    fields this does not resolve (timeouts, the database).
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
    elif moodle is not None and moodle.has("dbpass"):
        password = moodle.text("dbpass", override="MYSQL_PWD or --password-file") or ""
    elif interactive and prompt is not None:
        password = prompt()
    else:
        password = ""
    host = request.host or opts.get("host") or env.get("MYSQL_HOST")
    user = request.user or opts.get("user") or env.get("MYSQL_USER")
    port_text = request.port or opts.get("port") or env.get("MYSQL_TCP_PORT")
    socket = request.socket or opts.get("socket") or None
    if moodle is not None:  # each value read only when nothing above gave one
        if not socket and not host:
            socket = moodle.socket()
        host = host or moodle.text("dbhost", override="--host or MYSQL_HOST")
        user = user or moodle.text("dbuser", override="--user or MYSQL_USER")
        port_text = port_text or moodle.port()
    port_text = port_text or 3306
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(
            f"port {port_text!r} is not a number",
            hint="fix the port in the option file or MYSQL_TCP_PORT",
        ) from None
    base = base if base is not None else ConnSettings()
    return replace(
        base,
        host=host or "127.0.0.1",
        port=port,
        socket=socket,
        user=user or env.get("USER") or "root",
        password=password,
        **_tls(request, opts, env, base),
    )


def _tls(
    request: ConnRequest, opts: Mapping[str, str], env: Mapping[str, str], base: ConnSettings
) -> dict[str, Any]:
    """The TLS fields: request > option file > MOODUMP_SSL_* > ``base``."""
    from moodump.config import setting
    from moodump.config.values import parse_ssl_mode

    out: dict[str, Any] = {}
    for name in ("ssl_mode", "ssl_ca", "ssl_cert", "ssl_key"):
        option = name.replace("_", "-")
        variable = f"MOODUMP_{name.upper()}"
        value = getattr(request, name) or opts.get(option)
        if value and name == "ssl_mode":
            try:
                value = parse_ssl_mode(value)
            except ValueError as exc:
                raise ConfigError(
                    f"{option} {value!r}: {exc}", hint="fix --ssl-mode or the option file"
                ) from None
        if not value and env.get(variable):
            value = setting(variable, env)
        out[name] = value or getattr(base, name)
    return out
