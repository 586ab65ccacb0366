"""When to run and what: backup.conf cron lines, BACKUP_PERIOD, durations. Pure.

Cron lines have the go-crond/system-crontab form the old container used:
``m h dom mon dow user command`` (five time fields, a user, a command), or a
``@daily``-style macro in place of the five fields. The command is mapped to an
:class:`Action` (``./backup.sh -s`` = backup, ``./backup.sh -s -v all`` = verify all,
``moodump run --once`` = backup, ...), so ``moodump run`` can execute it in-process.

Time zones. Cron fields are local wall-clock times in TZ. :func:`next_run` is DST-correct
with one explicit rule set, tested on spring-forward and fall-back days:

- a wall-clock time skipped by spring-forward (02:30 on that day) runs at the first
  instant after the gap (03:00), once, like vixie-cron;
- a wall-clock time that happens twice at fall-back (01:30) runs once, at its first
  occurrence.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import PurePosixPath

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")

ACTION_BACKUP = "backup"
ACTION_VERIFY = "verify"
ACTION_PRUNE = "prune"
ACTION_CHECK = "check"
ACTION_BINLOG = "binlog"  # moodump binlog pull (point-in-time recovery archive)
ACTION_LIST = "list"
ACTION_CONFIG = "config"
ACTION_RESTORE = "restore"
ACTION_OTHER = "other"


class ScheduleError(ValueError):
    """A cron line or a period is malformed (config.py turns it into a ConfigError)."""


@dataclass(frozen=True)
class Action:
    """What a cron line asks for.

    ``kind`` is one of backup, verify, prune, check, list, config, restore, other.
    ``target`` is the database spec for verify/restore (``all`` for every database);
    ``filter`` is the old ``-f`` value (a backup name filter); ``args`` are the remaining
    moodump arguments of a ``moodump ...`` line (e.g. ``("--max-age", "26h")``).
    ``other`` means the command is neither backup.sh nor moodump: moodump does not run it.
    ``program`` is ``backup.sh``, ``moodump`` or empty; ``words`` are all of a moodump
    line's arguments (command first), for the CLI's own parser.
    """

    kind: str
    target: str | None = None
    filter: str | None = None
    args: tuple[str, ...] = ()
    # Provenance, not meaning: two lines that ask for the same thing are equal.
    program: str = field(default="", compare=False)
    words: tuple[str, ...] = field(default=(), compare=False)

    def describe(self) -> str:
        text = self.kind
        if self.target:
            text += f" {self.target}"
        if self.filter:
            text += f" (filter {self.filter})"
        if self.args:
            text += " " + " ".join(self.args)
        return text


@dataclass(frozen=True)
class CronLine:
    """One schedule line of backup.conf. ``line`` is its 1-based line number."""

    expression: str  # the five fields (or a macro), single-spaced
    user: str
    command: str
    action: Action
    line: int = 0

    @property
    def text(self) -> str:
        return f"{self.expression} {self.user} {self.command}"

    @property
    def program(self) -> str:
        """``backup.sh``, ``moodump`` or empty (another program)."""
        return self.action.program


# --------------------------------------------------------------------------- parsing


def parse_cron_line(text: str, line: int = 0) -> CronLine:
    """Parse ``m h dom mon dow user command`` (or ``@daily user command``).

    Raises :class:`ScheduleError` with a message that says what is wrong.
    """
    parts = text.split()
    if not parts:
        raise ScheduleError("empty line")
    if parts[0].startswith("@"):
        if parts[0].lower() not in MACROS:
            raise ScheduleError(
                f"{parts[0]!r} is not a supported schedule macro ({', '.join(MACROS)})"
            )
        nfields = 1
    else:
        nfields = 5
    if len(parts) < nfields + 2:
        raise ScheduleError(
            f"a cron line needs {nfields} time field{'s' if nfields > 1 else ''}, a user and "
            f"a command; found {len(parts)} field{'s' if len(parts) != 1 else ''}"
        )
    expression = " ".join(parts[:nfields])
    if nfields == 1:
        expression = expression.lower()
    if not croniter.is_valid(expression):
        raise ScheduleError(f"{expression!r} is not a valid cron schedule")
    try:  # reject schedules that never fire (e.g. 31 February)
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterBadDateError, CroniterBadCronError) as exc:
        raise ScheduleError(f"{expression!r} never runs") from exc
    user = parts[nfields]
    if "/" in user or user.endswith(".sh") or user in _PROGRAMS:
        raise ScheduleError(
            f"the user field is missing ({user!r} is the command); write "
            "'m h dom mon dow default command', as go-crond needed"
        )
    # Keep the command text exactly as written after the user field.
    command = _after_fields(text, nfields + 1)
    return CronLine(expression, user, command, command_action(command), line)


def _after_fields(text: str, n: int) -> str:
    rest = text.strip()
    for _ in range(n):
        rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
    return rest.strip()


_BACKUP_SH_OPTS = "nclr:v:f:1spha:I"
_PROGRAMS = frozenset({"moodump", "bash", "sh", "python", "python3", "env", "exec"})


def _getopt_backup_sh(args: Sequence[str]) -> dict[str, str | bool]:
    """The old ``getopts nclr:v:f:1spha:I`` of backup.sh, enough to classify a line."""
    takes_value = {
        c for i, c in enumerate(_BACKUP_SH_OPTS) if _BACKUP_SH_OPTS[i + 1 : i + 2] == ":"
    }
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            break
        letters = arg[1:]
        j = 0
        while j < len(letters):
            c = letters[j]
            if c in takes_value:
                value = letters[j + 1 :]
                if not value:
                    i += 1
                    value = args[i] if i < len(args) else ""
                opts[c] = value
                break
            opts[c] = True
            j += 1
        i += 1
    return opts


def command_action(command: str) -> Action:
    """Map a cron command to an :class:`Action` (see the module docstring)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return Action(ACTION_OTHER)
    # "bash -c '...'" / "sh ./backup.sh" wrappers
    while words and PurePosixPath(words[0]).name in ("bash", "sh", "exec", "env"):
        if len(words) > 2 and words[1] == "-c":
            return command_action(words[2])
        words = words[1:]
    if not words:
        return Action(ACTION_OTHER)
    program = PurePosixPath(words[0]).name
    if program == "backup.sh":
        return replace(_backup_sh_action(words[1:]), program="backup.sh")
    if program == "moodump":
        return replace(_moodump_action(words[1:]), program="moodump", words=tuple(words[1:]))
    if program.startswith("python") and words[1:3] == ["-m", "moodump"]:
        return replace(_moodump_action(words[3:]), program="moodump", words=tuple(words[3:]))
    return Action(ACTION_OTHER)


def _backup_sh_action(args: Sequence[str]) -> Action:
    o = _getopt_backup_sh(args)
    flt = o.get("f")
    flt_s = flt if isinstance(flt, str) and flt else None
    # The old getMode precedence: prune > restore > verify > once > scheduled.
    if o.get("p"):
        return Action(ACTION_PRUNE, filter=flt_s)
    if "r" in o:
        return Action(ACTION_RESTORE, target=str(o["r"]) or None, filter=flt_s)
    if "v" in o:
        return Action(ACTION_VERIFY, target=str(o["v"]) or "all", filter=flt_s)
    if o.get("l"):
        return Action(ACTION_LIST)
    if o.get("c"):
        return Action(ACTION_CONFIG)
    if o.get("1") or o.get("s"):
        return Action(ACTION_BACKUP)
    return Action(ACTION_OTHER)


_MOODUMP_KINDS = {
    "run": ACTION_BACKUP,
    "verify": ACTION_VERIFY,
    "prune": ACTION_PRUNE,
    "check": ACTION_CHECK,
    "list": ACTION_LIST,
    "config": ACTION_CONFIG,
}


def _moodump_action(args: Sequence[str]) -> Action:
    if not args or args[0] not in _MOODUMP_KINDS:
        return Action(ACTION_OTHER, args=tuple(args))
    kind = _MOODUMP_KINDS[args[0]]
    if args[0] == "run" and "--verify-all" in args[1:]:
        # `moodump run --verify-all` is the verification cycle (what `-v all` maps to)
        rest = tuple(a for a in args[1:] if a != "--verify-all")
        return Action(ACTION_VERIFY, target="all", args=rest)
    rest = tuple(a for a in args[1:] if not (kind == ACTION_BACKUP and a == "--once"))
    if kind == ACTION_VERIFY:
        target = "all" if ("--all" in rest or not rest) else None
        return Action(kind, target=target, args=rest)
    return Action(kind, args=rest)


# --------------------------------------------------------------------------- next run


def _wall(when: datetime, tz: tzinfo) -> datetime:
    # Through UTC: astimezone() to the *same* tzinfo returns the object unchanged, which
    # would let a non-existent wall time (in a DST gap) pass for a real one.
    return when.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None, fold=0)


def _resolve(naive: datetime, tz: tzinfo) -> datetime:
    """The instant of a wall-clock time: its first occurrence, or the end of a DST gap."""
    first = naive.replace(tzinfo=tz, fold=0)
    if _wall(first, tz) == naive:
        return first  # exists; fold=0 is the first occurrence of a repeated time
    # In a spring-forward gap: the two folds map to instants on both sides of the
    # transition; find the transition (the first instant whose wall clock is >= naive).
    a = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    b = int(first.timestamp())
    lo, hi = min(a, b), max(a, b)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(datetime.fromtimestamp(mid, tz), tz) >= naive:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, tz)


def next_run(expression: str, after: datetime, tz: tzinfo) -> datetime:
    """The first run strictly after ``after`` (aware), as an aware datetime in ``tz``.

    See the module docstring for the DST rules.
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    limit = after.astimezone(timezone.utc)
    it = croniter(expression, _wall(after, tz))
    for _ in range(100_000):
        naive = it.get_next(datetime)
        # Compare in UTC: datetimes sharing a tzinfo compare by wall clock, ignoring fold.
        instant = _resolve(naive, tz).astimezone(timezone.utc)
        if instant > limit:
            return instant.astimezone(tz)
    raise ScheduleError(f"{expression!r} has no run after {after.isoformat()}")


def next_due(
    lines: Sequence[CronLine], after: datetime, tz: tzinfo
) -> tuple[datetime, tuple[CronLine, ...]]:
    """The next instant any line is due, and every line due at that instant."""
    if not lines:
        raise ValueError("no cron lines")
    times = [(next_run(c.expression, after, tz).astimezone(timezone.utc), c) for c in lines]
    first = min(t for t, _ in times)
    return first.astimezone(tz), tuple(c for t, c in times if t == first)


def runs_between(expression: str, start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """Every run in (start, end]; for tests and ``moodump config``'s preview."""
    out: list[datetime] = []
    t = start
    stop = end.astimezone(timezone.utc)
    while True:
        t = next_run(expression, t, tz)
        if t.astimezone(timezone.utc) > stop:
            return out
        out.append(t)


# --------------------------------------------------------------------------- durations

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90``, ``30s``, ``30m``, ``12h``, ``1d``, ``1.5h``, ``2w`` -> timedelta.

    A bare number is seconds, as with ``sleep`` (the old BACKUP_PERIOD was passed to
    ``sleep``). Several parts add up like ``sleep 1h 30m``: ``"1h 30m"``.
    """
    parts = text.split()
    if not parts:
        raise ScheduleError("empty duration")
    total = 0.0
    for part in parts:
        m = _DURATION_RE.match(part)
        if not m:
            raise ScheduleError(
                f"{text!r} is not a duration (use a number with s, m, h, d or w, e.g. 26h)"
            )
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()]
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise ScheduleError(
            f"{text!r} is too long a duration (at most {timedelta.max.days} days)"
        ) from None


def parse_backup_period(text: str) -> timedelta:
    """BACKUP_PERIOD (legacy mode's ``sleep`` argument); must be positive."""
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ScheduleError(f"BACKUP_PERIOD {text!r} must be longer than zero")
    if value < timedelta(seconds=1):
        # `sleep 0.001` between runs: one backup after another, hammering the database.
        raise ScheduleError(f"BACKUP_PERIOD {text!r} is shorter than a second (use 1s or more)")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest exact form: ``1d``, ``12h``, ``90m``, ``45s``."""
    seconds = value.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


__all__ = [
    "ACTION_BACKUP",
    "ACTION_CHECK",
    "ACTION_CONFIG",
    "ACTION_LIST",
    "ACTION_OTHER",
    "ACTION_PRUNE",
    "ACTION_RESTORE",
    "ACTION_VERIFY",
    "Action",
    "CronLine",
    "ScheduleError",
    "command_action",
    "format_duration",
    "next_due",
    "next_run",
    "parse_backup_period",
    "parse_cron_line",
    "parse_duration",
    "runs_between",
]
