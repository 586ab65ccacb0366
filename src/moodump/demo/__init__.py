"""The embedded demo: a throwaway MariaDB with sample Moodle data, backed up, listed, verified.

``moodump demo`` (and the README's first command) runs the main job end to end on this
machine without any existing server: it starts a private ``mariadbd`` in the work
directory, creates Moodle's 483 tables with deterministic sample data, dumps them into
the old backup-container's rolling layout (``backups/daily/YYYY-MM-DD/<host>-<db>_...``),
verifies the backup by restoring it into a scratch database and comparing digests, and
stops the server. The backups stay in the work directory for ``moodump list``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from moodump.config import Config, load_config_from_environment
from moodump.db.connection import ConnSettings
from moodump.db.localserver import LocalServer
from moodump.dump import DumpOptions, DumpResult, dump
from moodump.fsmodes import make_dir
from moodump.naming import target_dir_for
from moodump.progress import Progress
from moodump.verify import VerifyReport, verify


@dataclass
class DemoResult:
    config: Config
    dump: DumpResult
    verify: VerifyReport
    sample_rows: int


def demo_config(workdir: Path) -> Config:
    """The configuration the demo runs under: rolling layout below ``workdir/backups``."""
    return load_config_from_environment(
        overrides={
            "BACKUP_DIR": str(workdir / "backups"),
            "BACKUP_STRATEGY": "rolling",
            "BACKUP_CONF": str(_demo_conf(workdir)),
            "TZ": "UTC",
        }
    )


def _demo_conf(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "backup.conf"
    conf.write_text("# moodump demo\nmysql/moodle\n0 1 * * * default ./backup.sh -s\n")
    return conf


def demo_target(cfg: Config, when: datetime) -> Path:
    """Where the demo's backup taken at ``when`` goes: the rolling layout's tier folder.

    The tier follows the old container's rules for ``when``'s local date (``monthly`` on
    a month's last day, ``weekly`` on a Sunday, else ``daily``), so the folder depends on
    the date: callers that need a fixed answer pass a fixed ``when``.
    """
    local = when.astimezone(cfg.tz).replace(microsecond=0)
    return target_dir_for(cfg.root, cfg.retention, local, "mysql", "moodle")


def run_demo(
    workdir: Path,
    *,
    scale: float = 0.002,
    threads: int = 2,
    say: Callable[[str], None] = lambda _msg: None,
    now: datetime | None = None,
    tracker: Progress | None = None,
) -> DemoResult:
    """Run the demo in ``workdir`` (created if needed) and return what happened.

    ``now`` is the clock the backup is named and filed by (default: the wall clock);
    a timezone-naive value is taken as UTC. ``tracker`` follows the dump and the
    verification (see :mod:`moodump.progress`).
    """
    from moodump.demo.sample import create_moodle_database

    workdir = Path(workdir).resolve()
    cfg = demo_config(workdir)
    server_dir = workdir / "mariadb"
    with LocalServer(base_dir=server_dir) as server:
        settings = ConnSettings(host="127.0.0.1", port=server.port, user="root")
        say(f"started a throwaway MariaDB on 127.0.0.1:{server.port} ({server_dir})")
        rows = create_moodle_database(
            settings, "moodle", scale=scale, prefix=cfg.moodle_prefix, blobs=True,
            drop_existing=True,
        )  # fmt: skip
        say(
            f"created sample Moodle database 'moodle': {len(rows)} tables, {sum(rows.values()):,} rows"
        )
        when = now or datetime.now(cfg.tz)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        out = demo_target(cfg, when)
        make_dir(out.parent, parents=True, exist_ok=True)  # private, like the backup itself
        opts = DumpOptions(threads=threads, moodle_prefix=cfg.moodle_prefix)
        result = dump(settings, "moodle", out, opts, tracker=tracker)
        say(f"backed up into {out} in {result.duration_s:.1f}s")
        report = verify(out, settings=settings, threads=threads, tracker=tracker)
        say(
            f"verified by restoring into a scratch database: {'PASS' if report.passed else 'FAIL'}"
            f" (restore {report.restore_s or 0:.1f}s)"
        )
    return DemoResult(cfg, result, report, sum(rows.values()))
