"""The ``backup.conf`` reader: database specs and cron lines, with file:line errors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from moodump.errors import ConfigError
from moodump.naming import core_name
from moodump.schedule import (
    ACTION_OTHER,
    CronLine,
    ScheduleError,
    parse_cron_line,
)

# --------------------------------------------------------------------------- backup.conf

_SPEC_RE = re.compile(
    r"^(?:(?P<type>[A-Za-z0-9_-]+)=)?"
    r"(?P<host>[A-Za-z0-9_][A-Za-z0-9._-]*)"
    r"(?::(?P<port>[0-9]*))?"
    r"/(?P<db>[A-Za-z0-9_$-]+)"
    r"(?:\?(?P<query>\S*))?$"
)
OUR_TYPES = ("mariadb", "mysql", "postgres", "postgresql")
OTHER_TYPES = ("mongo", "mssql", "null")
#: The type of a ``postgres=`` (or ``postgresql=``) line, as DatabaseSpec records it.
POSTGRES = "postgres"

_CONF_HINT = (
    "a database line is '[type=]host[:port]/database' without spaces (e.g. mysql-0.mysql/moodle); "
    "a schedule line is 'minute hour day-of-month month day-of-week user command' "
    "(e.g. '0 1 * * * default ./backup.sh -s'); '#' starts a comment"
)


@dataclass(frozen=True)
class _RawSpec:
    line: int
    spec: str
    db_type: str
    host: str
    port: int | None
    database: str


@dataclass(frozen=True)
class ConfFile:
    """What backup.conf contains, parsed (credentials not yet resolved)."""

    specs: tuple[_RawSpec, ...]
    schedule: tuple[CronLine, ...]
    notes: tuple[str, ...]


def _parse_port(text: str | None, where: str, fix: str) -> int | None:
    if not text:
        return None
    port = int(text)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port {port} is out of range", hint=fix)
    return port


_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_DB_RE = re.compile(r"[A-Za-z0-9_$-]+")


def _why_not_a_spec(content: str) -> str:
    """Which part of a would-be database line (``...host.../db``) is wrong, or ""."""
    if "/" not in content:
        return ""
    if content.startswith("="):
        return " (no database type before '=': write mariadb=, postgres= or leave it out)"
    left, _, db = content.rpartition("/")
    left = left.split("=", 1)[1] if "=" in left.split("/", 1)[0] else left
    if left.startswith("[") or left.count(":") > 1:
        return " (an IPv6 address cannot be written here: use the host's DNS name)"
    host, _, port = left.partition(":")
    if not db:
        return " (no database name after the last '/')"
    if "/" in host:
        return " (one '/' only, between host[:port] and the database name)"
    if not _HOST_RE.fullmatch(host):
        return f" (host {host!r}: letters, digits, '.', '_' and '-' only)"
    if port and not port.isdigit():
        return f" (port {port!r} is not a number)"
    if not _DB_RE.fullmatch(db):
        return f" (database name {db!r}: ASCII letters, digits, '_', '$' and '-' only)"
    return ""


def parse_backup_conf(text: str, path: str = "backup.conf") -> ConfFile:
    """Parse backup.conf text (see the module docstring for the grammar)."""
    specs: list[_RawSpec] = []
    cron: list[CronLine] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    # Lines end at "\n", "\r\n" or a lone "\r" (an old Mac editor), nothing else:
    # str.splitlines() would also split at U+2028, NEL or a form feed in a comment and
    # report a bogus line. A UTF-8 byte-order mark is not part of line 1.
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    for number, raw in enumerate(text.split("\n"), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        where = f"{path}:{number}"
        if not any(ch.isspace() for ch in content):
            m = _SPEC_RE.match(content)
            if not m:
                raise ConfigError(
                    f"{where}: {content!r} is neither a database line nor a schedule line"
                    + _why_not_a_spec(content),
                    hint=_CONF_HINT,
                )
            db_type = (m.group("type") or "").lower()
            if db_type and db_type not in OUR_TYPES:
                if db_type in OTHER_TYPES:
                    notes.append(f"{where}: {content} is a {db_type} database: skipped")
                    continue
                raise ConfigError(
                    f"{where}: unknown database type {db_type!r} in {content!r}",
                    hint="use mariadb= (or no type) for MariaDB/MySQL, postgres= for PostgreSQL; "
                    "mongo= and mssql= lines are skipped",
                )
            if db_type == "postgresql":
                db_type = POSTGRES
            if m.group("query"):
                notes.append(
                    f"{where}: '?{m.group('query')}' (the old container's verification schema): "
                    "ignored, moodump verifies every table"
                )
            port = _parse_port(m.group("port"), where, "use a port between 1 and 65535")
            spec = _RawSpec(number, content, db_type, m.group("host"), port, m.group("db"))
            # Host names are case-insensitive (DNS): DB/moodle is db/moodle once more.
            core = core_name(spec.host.lower(), spec.database)
            if core in seen:
                raise ConfigError(
                    f"{where}: {content!r} backs up the same database as line {seen[core]} "
                    f"(both would be named {core_name(spec.host, spec.database)}_..., "
                    "host names ignore case)",
                    hint="list each database once",
                )
            seen[core] = number
            specs.append(spec)
            continue
        try:
            cron.append(parse_cron_line(content, number))
        except ScheduleError as exc:
            raise ConfigError(f"{where}: {exc}: {content!r}", hint=_CONF_HINT) from None
    for c in cron:
        if c.action.kind == ACTION_OTHER:
            notes.append(
                f"{path}:{c.line}: '{c.command}' is not a backup.sh or moodump command; "
                "moodump run does not execute it"
            )
    return ConfFile(tuple(specs), tuple(cron), tuple(notes))
