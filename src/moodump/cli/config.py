"""``moodump config``: print the effective configuration (secrets masked) and validate it.

Also holds the option set the operations commands share (``--backup-dir`` and the hidden
``--now``) and their configuration loader.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from moodump.cli._cron import moodump_line_parser
from moodump.cli._group import cli
from moodump.config import Config, load_config_from_environment
from moodump.errors import ConfigError
from moodump.jobs import scheduled_jobs


def ops_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--backup-dir`` (overrides BACKUP_DIR) and the hidden ``--now`` (ISO time,
    for previews such as "what would prune do on the 31st"; naive = in TZ)."""

    @click.option(
        "--backup-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Backup root (default: BACKUP_DIR from the environment).",
    )
    @click.option("--now", "now_text", default=None, hidden=True)
    @functools.wraps(func)
    def wrapper(*args: Any, backup_dir: Path | None, now_text: str | None, **kwargs: Any) -> Any:
        overrides = {"BACKUP_DIR": str(backup_dir)} if backup_dir is not None else {}
        cfg = load_config_from_environment(overrides=overrides)
        return func(*args, cfg=cfg, now=resolve_now(cfg, now_text), **kwargs)

    return wrapper


def resolve_now(cfg: Config, text: str | None) -> datetime:
    """The current time in TZ, or ``text`` (ISO 8601; naive means local in TZ)."""
    if not text:
        return datetime.now(cfg.tz)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--now {text!r} is not an ISO date-time", hint="use e.g. 2026-05-31T09:00"
        ) from None
    return value.replace(tzinfo=cfg.tz) if value.tzinfo is None else value.astimezone(cfg.tz)


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print the configuration as JSON.")
@ops_options
def config_cmd(as_json: bool, cfg: Config, now: datetime) -> None:
    """Print the effective configuration, with secrets masked, and validate it.

    Reads the environment (the old backup-container's variables and MOODUMP_*) and
    BACKUP_CONF, like ``backup.sh -c``. Exit status 2 when something is wrong (a bad
    variable, a bad backup.conf line with its file:line, a scheduled moodump command
    the command line would reject, or no database configured).
    """
    if as_json:
        click.echo(cfg.to_json(masked=True, now=now))
    else:
        click.echo(cfg.render(masked=True, now=now), nl=False)
    cfg.require_databases()
    if cfg.schedule:
        scheduled_jobs(cfg, moodump_line_parser(cfg))  # raises for a line moodump run would refuse
