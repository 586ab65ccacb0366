"""The scheduled binary log pull: a ``moodump binlog pull --output DIR`` line in
backup.conf's schedule, run by ``moodump run`` between (never during) the other jobs.

It connects the way the scheduler connects to the configured databases (their host's
credentials and TLS): to the one server they live on, or to the configured host the
line names with ``--host``. A gap ("PITR unavailable from X to Y") is a failure of the
run (exit 16) and a failure notification.
"""

from __future__ import annotations

import time
from pathlib import Path

from moodump.config import Config, DatabaseSpec
from moodump.errors import ConfigError, MoodumpError, PitrUnavailable
from moodump.jobs.report import RunReport
from moodump.jobs.wiring import Clock, Context, conn_settings_for, register_config_secrets
from moodump.notify import Event, Notifier
from moodump.pitr import pull
from moodump.schedule import ACTION_BINLOG


def _server_spec(cfg: Config, host: str | None, port: int | None) -> DatabaseSpec:
    specs = [
        d for d in cfg.databases
        if (host is None or d.host == host) and (port is None or d.port_or_default == port)
    ]  # fmt: skip
    servers = {(d.host, d.port_or_default) for d in specs}
    if len(servers) != 1:
        which = "no configured database" if not servers else "databases on several servers"
        raise ConfigError(
            f"the scheduled binlog pull does not know which server to read: {which}"
            + (f" on {host}" if host else ""),
            hint="name the server with --host (and --port) on the moodump binlog pull line",
        )
    return specs[0]


def binlog_pull_once(
    cfg: Config,
    output: Path | str,
    *,
    host: str | None = None,
    port: int | None = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
) -> RunReport:
    """Archive the server's binary log into ``output`` once (:func:`moodump.pitr.pull`)."""
    register_config_secrets(cfg)
    ctx = Context(cfg, ACTION_BINLOG, now=None, clock=clock, notifier=notifier,
                  sleep=time.sleep, stop=None)  # fmt: skip
    try:
        settings = conn_settings_for(cfg, _server_spec(cfg, host, port))
        res = pull(settings, output)
    except MoodumpError as exc:
        ctx.report.errors.append((exc.exit_code, f"binlog pull into {output}: {exc}"))
        ctx.notify(Event("failure", f"binlog pull into {output} failed: {exc}"))
        return ctx.finish()
    for gap in res.gaps:
        ctx.report.errors.append((PitrUnavailable.exit_code, gap))
        ctx.notify(Event("failure", f"binlog archive {output}: {gap}"))
    return ctx.finish()
