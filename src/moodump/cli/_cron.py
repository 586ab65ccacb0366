"""``moodump ...`` cron lines parsed with the CLI's own grammar into typed jobs.

backup.conf may schedule moodump commands (``30 5 * * * default moodump check --max-age
26h``). The scheduler must run exactly what the command line would: so the line's words
go through the same click command (its options, types and conversions), and the
parameters become a typed :class:`~moodump.jobs.Job`. A line the CLI would reject is a
ConfigError naming the file, the line and the fix, both in ``moodump config`` and when
``moodump run`` starts; nothing is accepted and then ignored at run time.
"""

from __future__ import annotations

import click

from moodump.config import Config
from moodump.errors import ConfigError, MoodumpError
from moodump.jobs import Job
from moodump.jobs.maintenance import CheckOptions
from moodump.jobs.scheduler import MoodumpLineParser
from moodump.schedule import (
    ACTION_BACKUP,
    ACTION_BINLOG,
    ACTION_CHECK,
    ACTION_PRUNE,
    ACTION_VERIFY,
    CronLine,
)

# Options that make sense typed at a terminal but not in a scheduled line: the
# scheduler's configuration (BACKUP_DIR, the clock) is the environment's.
_NOT_IN_CRON = {"backup_dir": "--backup-dir", "now_text": "--now"}


def moodump_line_parser(cfg: Config) -> MoodumpLineParser:
    """The parser :func:`moodump.jobs.scheduled_jobs` uses for ``cfg``'s moodump lines."""

    def parse(line: CronLine) -> Job | None:
        return parse_moodump_line(line, str(cfg.conf_path))

    return parse


def parse_moodump_line(line: CronLine, conf: str = "backup.conf") -> Job | None:
    """The typed job of one ``moodump ...`` cron line, or None when the scheduler does
    not run that command (``list``, ``config``, ``verify PATH``, ``dump``...)."""
    from moodump.cli._group import cli

    where = f"{conf} line {line.line}: '{line.command}'"
    words = list(line.action.words)
    if not words:
        raise ConfigError(f"{where}: no moodump command", hint="e.g. moodump run --once")
    name, args = words[0], words[1:]
    command = cli.commands.get(name)
    if command is None or getattr(command, "hidden", False):
        known = ", ".join(sorted(n for n, c in cli.commands.items() if not c.hidden))
        raise ConfigError(f"{where}: '{name}' is not a moodump command", hint=f"one of {known}")
    if isinstance(command, click.Group) and args and args[0] in command.commands:
        name, command, args = f"{name} {args[0]}", command.commands[args[0]], args[1:]
    try:
        ctx = command.make_context(f"moodump {name}", args)
    except click.exceptions.Exit:
        raise ConfigError(f"{where}: --help/--version do nothing in a schedule",
                          hint="remove them from the line") from None  # fmt: skip
    except click.ClickException as exc:
        raise ConfigError(
            f"{where}: {exc.format_message()}", hint=f"fix the line; see moodump {name} --help"
        ) from None
    except MoodumpError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    params = ctx.params
    for key, flag in _NOT_IN_CRON.items():
        if params.get(key) is not None:
            raise ConfigError(
                f"{where}: {flag} is not applied to scheduled runs",
                hint="remove it; scheduled runs use BACKUP_DIR and the real clock",
            )
    return _job(name, params, where)


def _job(name: str, p: dict[str, object], where: str) -> Job | None:
    if name == "run":
        databases = tuple(str(d) for d in p.get("databases") or ())  # type: ignore[attr-defined]
        if p.get("verify_all"):
            return Job(ACTION_VERIFY, databases)
        if p.get("once"):
            return Job(ACTION_BACKUP, databases)
        raise ConfigError(
            f"{where}: 'moodump run' without --once is the scheduler itself",
            hint="schedule 'moodump run --once' (a backup) or 'moodump run --verify-all'",
        )
    if name == "check":
        return Job(
            ACTION_CHECK,
            check=CheckOptions(
                max_age=p.get("max_age"),  # type: ignore[arg-type]
                accept_unverified=p.get("accept_unverified"),  # type: ignore[arg-type]
                min_size=p.get("min_size"),  # type: ignore[arg-type]
                max_shrink_percent=p.get("max_shrink"),  # type: ignore[arg-type]
                shrink_mode=p.get("shrink_mode"),  # type: ignore[arg-type]
            ),
        )
    if name == "binlog pull":
        if p.get("follow"):
            raise ConfigError(
                f"{where}: --follow never ends, so it cannot be a scheduled job",
                hint="schedule 'moodump binlog pull --output DIR' every few minutes, or run "
                "the --follow pull as its own service",
            )
        return Job(
            ACTION_BINLOG,
            binlog_output=str(p["output"]),
            binlog_host=p.get("host"),  # type: ignore[arg-type]
            binlog_port=p.get("port"),  # type: ignore[arg-type]
        )
    if name == "prune":
        return Job(
            ACTION_PRUNE,
            dry_run=bool(p.get("dry_run")),
            all_databases=bool(p.get("all_databases")),
        )
    return None
