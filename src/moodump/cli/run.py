"""``moodump run``: the scheduled job (cron mode, legacy mode, or one cycle with --once)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import click

from moodump import jobs
from moodump.checks import human_size
from moodump.cli._cron import moodump_line_parser
from moodump.cli._group import cli, current_log_flags, logging_settings
from moodump.cli._progress import display_wanted, terminal_display
from moodump.cli._render import emit_json
from moodump.cli.config import resolve_now
from moodump.config import load_config_from_environment
from moodump.errors import ConfigError
from moodump.logs import reset_logging, setup_logging
from moodump.progress import Progress

log = logging.getLogger("moodump.run")


@contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM (a pod being stopped) sets ``stop``: the scheduler's sleep ends at once
    (exit 0); a running dump stops at its next batch of rows and publishes nothing but a
    FAILED record, and the run skips its remaining steps and databases (exit 130). A
    second SIGTERM raises KeyboardInterrupt, for steps that do not watch ``stop`` (a long
    verification restore, an upload)."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            log.warning("second SIGTERM: aborting now")
            raise KeyboardInterrupt
        stop.set()
        log.warning("SIGTERM: stopping (a running dump is aborted and publishes nothing)")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command("run")
@click.option("--once", is_flag=True, help="One backup cycle over every database, then exit.")
@click.option(
    "--verify-all",
    "verify_all",
    is_flag=True,
    help="One verification cycle instead (the newest backup of every database), then exit.",
)
@click.option(
    "--database",
    "databases",
    multiple=True,
    metavar="SPEC",
    help="With --once/--verify-all: only this database (spec, core name or db name; repeat).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display on the terminal.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines on stderr: text or json (same as moodump --log-format; default "
    "MOODUMP_LOG_FORMAT, text).",
)
@click.option(
    "--backup-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Backup root (default: BACKUP_DIR from the environment).",
)
@click.option("--now", "now_text", default=None, hidden=True, help="Pinned time (tests).")
def run_cmd(once, verify_all, databases, as_json, quiet, log_format, backup_dir, now_text):
    """Run the scheduled backups: cron mode, legacy mode, or one cycle (--once).

    \b
    Without --once, moodump stays in the foreground:
      cron mode    backup.conf has cron lines: each line's action runs at its time in
                   TZ ('./backup.sh -s' = backup, './backup.sh -s -v all' = verify all,
                   'moodump check ...', './backup.sh -p')
      legacy mode  no cron lines: a backup now, then every BACKUP_PERIOD
    --once runs one backup cycle (Kubernetes CronJob, backup.sh -1) and exits with the
    worst result of its databases. Runs never overlap: a run that finds the lock taken
    exits 10 and does nothing. SIGTERM stops the loop between runs; during a dump it
    aborts the dump (nothing but a FAILED record is published) and exits 130.

    \b
    Exit status: the worst of the databases. Warnings alone (a shrink in warn mode,
    dump warnings) are logged, notified and reported but exit 0; MOODUMP_STRICT=1
    makes them exit 1. A database that runs past MOODUMP_MAX_RUNTIME fails with 14.

    \b
    Examples:
      moodump run                                  # the container's CMD: cron or legacy mode
      moodump run --once                           # a Kubernetes CronJob (backup.sh -1)
      moodump run --once --database mysql/moodle --json
      moodump --log-format json run --verify-all   # the backup.sh -s -v all cron line
    See docs/scheduling.md.
    """
    overrides = {"BACKUP_DIR": str(backup_dir)} if backup_dir is not None else {}
    cfg = load_config_from_environment(overrides=overrides)
    if (databases or now_text) and not (once or verify_all):
        raise ConfigError(
            "--database and --now only go with --once or --verify-all",
            hint="moodump run --once --database mysql/moodle",
        )
    if once and verify_all:
        raise ConfigError("--once and --verify-all exclude each other", hint="pick one")
    now: datetime | None = resolve_now(cfg, now_text) if now_text else None
    only = list(databases) or None
    flags = current_log_flags()
    if log_format:  # run's own --log-format is the group's flag, given after the command
        flags = replace(flags, log_format=log_format)
    setup_logging(
        *logging_settings(flags, log_format=cfg.log_format, log_level=cfg.backup_log_level)
    )
    stop = threading.Event()
    tracker = Progress()
    display = terminal_display(tracker, display_wanted(quiet or as_json))
    try:
        if once or verify_all:
            with _stop_on_sigterm(stop), display:
                if verify_all:
                    report = jobs.verify_all(cfg, now=now, only=only, stop=stop, tracker=tracker)
                else:
                    report = jobs.run_once(cfg, now=now, only=only, stop=stop, tracker=tracker)
            if as_json:  # printed once the display is gone
                emit_json(report.to_dict())
            else:
                click.echo(render_report(report), nl=False)
            code = report.exit_code
        else:
            with _stop_on_sigterm(stop), display:

                def on_report(report: jobs.RunReport) -> None:
                    if as_json:
                        click.echo(report.to_json(indent=None))

                code = jobs.run_scheduled(
                    cfg, stop=stop, on_report=on_report, parse_moodump=moodump_line_parser(cfg),
                    tracker=tracker,
                )  # fmt: skip
    finally:
        reset_logging()
    if code:
        # Not ctx.exit(): main() runs the group with standalone_mode=False, where click
        # returns that code instead of raising it. The code is the worst result, not one
        # error, so it is not a MoodumpError either.
        raise SystemExit(code)


def render_report(report: jobs.RunReport) -> str:
    """The text summary of one cycle (stdout; the details are in the log lines)."""
    lines = []
    title = {"backup": "Backup run", "verify": "Verification run"}.get(report.action, report.action)
    lines.append(f"{title} {report.started_at} ({report.duration_s:.1f} s):")
    for d in report.databases:
        head = f"  {d.spec:<30} {d.status.upper():<8}"
        if d.status in (jobs.STATUS_FAILED, jobs.STATUS_SKIPPED):
            lines.append(f"{head} exit {d.exit_code}: {d.error}")
            if d.path:
                lines.append(f"    record: {d.path}")
            continue
        size = human_size(d.size_bytes) if d.size_bytes is not None else "-"
        rows = f"{d.rows:,} rows" if d.rows is not None else ""
        extra = []
        if d.verify is not None:
            extra.append(f"verified {d.verify['method']}")
        if d.offsite is not None and d.offsite.get("ok"):
            extra.append("copied off-site")
        lines.append(f"{head} {d.path}  {size}  {rows}  {d.duration_s:.1f} s  " + ", ".join(extra))
        lines += [f"    warning: {w}" for w in d.warnings]
    if report.pruned:
        lines.append(f"  pruned {len(report.pruned)} backup(s): " + ", ".join(report.pruned))
    if report.pruned_remote:
        lines.append(
            f"  pruned {len(report.pruned_remote)} off-site copy(ies): "
            + ", ".join(report.pruned_remote)
        )
    lines += [f"  warning: {w}" for w in report.warnings]
    lines += [f"  error (exit {c}): {m}" for c, m in report.errors]
    if report.notifications_failed:
        lines.append(f"  {report.notifications_failed} notification(s) could not be delivered")
    lines.append(f"Exit code {report.exit_code}.")
    return "\n".join(lines) + "\n"
