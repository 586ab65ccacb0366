"""Value parsers and the :class:`Secret` wrapper: pure, shared by every key."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moodump import sizes
from moodump.errors import ConfigError
from moodump.schedule import (
    ScheduleError,
    parse_backup_period,
    parse_duration,
)

DEFAULT_PORT = 3306
PG_DEFAULT_PORT = 5432  # postgres= lines (the old container's POSTGRESQL_PORT_NUM default)
LOCK_NAME = ".moodump.lock"
#: The run state (last results, counters) behind metrics and ``moodump status``.
STATE_NAME = ".moodump-state.json"

# --------------------------------------------------------------------------- secrets


class Secret:
    """A secret string that never shows itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: only for handing to a driver, a server or an HTTP client."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    def __str__(self) -> str:
        return "****"

    def __format__(self, spec: str) -> str:
        return "****"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


# --------------------------------------------------------------------------- parsers


def parse_str(value: str) -> str:
    return value.strip()


_INT_RE = re.compile(r"[+-]?[0-9]+")


def parse_int(value: str) -> int:
    """A whole number in ASCII digits, as the shell's ``test -gt`` took it (Python's
    ``int()`` would also take ``1_0`` and non-ASCII digits)."""
    text = value.strip()
    if not _INT_RE.fullmatch(text):
        raise ValueError("not a whole number")
    return int(text)


def parse_nonneg_int(value: str) -> int:
    n = parse_int(value)
    if n < 0:
        raise ValueError("must be 0 or more")
    return n


def parse_pos_int(value: str) -> int:
    n = parse_int(value)
    if n < 1:
        raise ValueError("must be 1 or more")
    return n


#: The most connections one command opens (every engine and ``--threads`` refuse more).
MAX_THREADS = 64


def parse_threads(value: str) -> int:
    n = parse_int(value)
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"must be 1 to {MAX_THREADS}")
    return n


def parse_optional_int(value: str) -> int | None:
    return parse_int(value) if value.strip() else None


#: The longest wait a timeout setting takes (30 days); far larger values overflow the
#: operating system's timers (OverflowError in the middle of a run).
MAX_WAIT_SECONDS = 30 * 86400


def _at_most_max_wait(seconds: float) -> None:
    if seconds > MAX_WAIT_SECONDS:
        raise ValueError(f"longer than the maximum, {MAX_WAIT_SECONDS} seconds (30 days)")


def parse_pos_seconds(value: str) -> int:
    """Seconds, 1 to :data:`MAX_WAIT_SECONDS`."""
    n = parse_pos_int(value)
    _at_most_max_wait(n)
    return n


def parse_nonneg_seconds(value: str) -> int:
    """Seconds, 0 to :data:`MAX_WAIT_SECONDS` (0 usually means off or at once)."""
    n = parse_nonneg_int(value)
    _at_most_max_wait(n)
    return n


def parse_optional_nonneg_int(value: str) -> int | None:
    """A count of 0 or more, or None when empty (a negative count would keep nothing)."""
    n = parse_optional_int(value)
    if n is not None and n < 0:
        raise ValueError("must be 0 or more (empty = the local count)")
    return n


def parse_optional_port(value: str) -> int | None:
    """A TCP port (1-65535), or None when empty (off)."""
    n = parse_optional_int(value)
    if n is not None and not 1 <= n <= 65535:
        raise ValueError("must be a port from 1 to 65535 (empty = off)")
    return n


_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError("not a boolean (use true or false)")


def parse_auto_bool(value: str) -> str:
    """``auto``, or a boolean in any spelling parse_bool takes: ``auto``/``true``/``false``."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return "true" if parse_bool(value) else "false"
    except ValueError:
        raise ValueError("not auto or a boolean (use auto, true or false)") from None


def parse_size(value: str) -> int:
    """``0``, ``512``, ``10K``, ``500M``, ``1.5G``, ``2GiB`` -> bytes (K = 1024)."""
    try:
        return sizes.parse_size(value)
    except ConfigError:
        raise ValueError(
            "not a size (use bytes or a number with K, M, G or T, e.g. 500M)"
        ) from None


def parse_percent(value: str) -> float:
    try:
        p = float(value.strip().rstrip("%"))
    except ValueError:
        raise ValueError("not a percentage") from None
    if not 0 <= p <= 100:
        raise ValueError("must be between 0 and 100")
    return p


def parse_factor(value: str) -> float:
    try:
        f = float(value.strip())
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(f):  # nan compares false with everything: the check would be off
        raise ValueError("not a finite number")
    if f < 0:
        raise ValueError("must be 0 or more")
    return f


def parse_timedelta(value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def parse_interval(value: str) -> timedelta:
    """A duration (:func:`parse_timedelta`) of at most :data:`MAX_WAIT_SECONDS`."""
    d = parse_timedelta(value)
    _at_most_max_wait(d.total_seconds())
    return d


def parse_period(value: str) -> timedelta:
    try:
        return parse_backup_period(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


#: A POSIX TZ without daylight saving: a name and a whole-hour offset (``UTC0``, ``EST5``,
#: ``<+03>-3``); glibc took these, and ``Etc/GMT+N`` is the same zone (same sign).
_POSIX_FIXED_RE = re.compile(r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]+>)([+-]?)(\d{1,2})")


def parse_tz(value: str) -> ZoneInfo:
    """A zone name (``PST8PDT``, ``America/Vancouver``, ``:UTC``), a path into a zoneinfo
    directory (``/usr/share/zoneinfo/America/Vancouver``) or a POSIX fixed offset
    (``UTC0``, ``EST5``) -> ZoneInfo."""
    name = value.strip().lstrip(":")
    if name.startswith("/") and "/zoneinfo/" in name:
        name = name.split("/zoneinfo/", 1)[1]
    m = _POSIX_FIXED_RE.fullmatch(name)
    if m and not _zone_exists(name):
        hours = int(m.group(2))
        if hours == 0:
            name = "UTC"
        elif hours <= 12:
            name = f"Etc/GMT{'-' if m.group(1) == '-' else '+'}{hours}"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "not a known time zone name (use a tz database name such as America/Vancouver, "
            "PST8PDT or UTC)"
        ) from None


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_file_mode(value: str) -> int:
    """An octal file mode (``0640``, ``640``, ``0o660``) for backup files.

    The owner must be able to read and write (moodump reads its own files back to verify
    them); world-writable modes are refused: anyone could then alter a backup that will
    be restored into production.
    """
    v = value.strip().lower().removeprefix("0o")
    try:
        mode = int(v, 8)
    except ValueError:
        raise ValueError("not an octal file mode (e.g. 0640)") from None
    if not 0 <= mode <= 0o777:
        raise ValueError("must be a permission mode between 0000 and 0777 (e.g. 0640)")
    if mode & 0o002:
        raise ValueError(
            "world-writable: anyone could alter a backup (use 0640, or 0660 for a "
            "group-writable volume)"
        )
    if mode & 0o600 != 0o600:
        raise ValueError("the owner needs read and write (the first digit must be 6 or 7)")
    return mode


def parse_secret(value: str) -> Secret:
    return Secret(value)


def secret_first_line(text: str) -> str:
    """A secret file's value: its first line, ended by LF, CR LF or a lone CR, without a
    UTF-8 byte order mark (a Windows editor's). The one rule for ``*_FILE`` settings and
    ``--password-file`` (and backup.sh's ``account``): any other character, U+2028 or a
    form feed too, is the secret's own."""
    return re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"), maxsplit=1)[0]


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting one of ``allowed`` (case-insensitive, returned lower-case)."""

    def parse(value: str) -> str:
        v = value.strip().lower()
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v

    parse.__doc__ = " | ".join(allowed)
    return parse


#: TLS modes of a database connection, as MySQL's ``--ssl-mode`` names them, weakest first.
SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


def parse_ssl_mode(value: str) -> str:
    """One of :data:`SSL_MODES` (case-insensitive, ``-`` for ``_``), returned upper-case;
    empty means the default, PREFERRED."""
    v = value.strip().upper().replace("-", "_") or "PREFERRED"
    if v not in SSL_MODES:
        raise ValueError(f"must be one of {', '.join(SSL_MODES)}")
    return v


parse_ssl_mode.__doc__ = " | ".join(SSL_MODES)


def parse_log_level(value: str) -> str:
    v = value.strip().lower()
    v = {"warn": "warning", "err": "error"}.get(v, v)
    if v not in ("debug", "info", "warning", "error"):
        raise ValueError("must be one of debug, info, warning, error")
    return v


def parse_table_prefix(raw: str) -> str:
    """A Moodle table prefix (``mdl_``): letters, digits and ``_``, as Moodle allows."""
    text = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_]{0,32}", text):
        raise ValueError("a table prefix is letters, digits and _ (e.g. mdl_)")
    return text
