"""Where passwords come from. Never argv: environment, files, option files, a prompt."""

from __future__ import annotations

import configparser
from collections.abc import Callable, Mapping
from pathlib import Path

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


def resolve_password(
    *,
    env: Mapping[str, str],
    password_file: Path | None,
    defaults_file: Path | None,
    interactive: bool,
    prompt: Callable[[], str] | None,
) -> tuple[dict[str, str], str]:
    """Return (option-file settings, password) by precedence.

    Precedence: --password-file, MYSQL_PWD, the option file's ``password``, a prompt when
    on a terminal, else the empty password.
    """
    opts = read_option_file(defaults_file) if defaults_file else {}
    if password_file is not None:
        return opts, read_secret_file(password_file)
    if "MYSQL_PWD" in env:
        return opts, env["MYSQL_PWD"]
    if "password" in opts:
        return opts, opts["password"]
    if interactive and prompt is not None:
        return opts, prompt()
    return opts, ""
