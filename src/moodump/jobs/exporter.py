"""The I/O side of observability: gathering facts, recording a cycle in the state file,
writing the metrics text file, serving ``/metrics``.

:func:`record_run` is called at the end of every backup and verification cycle (still
under the run lock, so two processes never update the state at once). It is best effort:
a state or metrics file that cannot be written (a full disk) is logged, and never
changes the cycle's result. The metric families themselves are built by the pure
:mod:`moodump.jobs.metrics`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import CollectorRegistry

from moodump.catalog import group_by_database, scan_backups
from moodump.checks import disk_free
from moodump.config import Config
from moodump.errors import ConfigError, MoodumpError
from moodump.fsmodes import write_text
from moodump.jobs.metrics import Facts, FamiliesCollector, build_families, metrics_text
from moodump.jobs.report import RunReport
from moodump.jobs.state import RunState, apply_report, load_state, save_state
from moodump.pitr import archive_status

log = logging.getLogger(__name__)

#: The metrics file holds no secret (no error text, no credentials) and node-exporter
#: usually runs as another user: it is world-readable.
METRICS_FILE_MODE = 0o644


def gather_facts(cfg: Config) -> Facts:
    """Backups per database and tier, the newest verified one, and the free space."""
    groups = group_by_database(scan_backups(cfg.root, cfg.tz), cfg.cores)
    kept: dict[str, dict[str, int]] = {}
    newest = {}
    for g in groups:
        tiers: dict[str, int] = {}
        for b in g.backups:
            if b.done:
                tiers[b.tier or "none"] = tiers.get(b.tier or "none", 0) + 1
        kept[g.core] = tiers
        nv = g.newest_verified
        newest[g.core] = nv.when if nv is not None else None
    try:
        free: int | None = disk_free(cfg.root)
    except OSError:
        free = None
    binlog: dict[str, int] = {}
    if cfg.binlog_dir:
        try:
            st = archive_status(cfg.binlog_dir)
        except (MoodumpError, OSError) as exc:
            log.warning("metrics: cannot read the binlog archive %s: %s", cfg.binlog_dir, exc)
        else:
            binlog = {
                "binlog_covered_until": st.covered_until,
                "binlog_gaps": len(st.gaps),
                "binlog_files": st.files,
            }
    return Facts(
        configured=[(d.core, d.spec) for d in cfg.databases],
        kept=kept,
        newest_verified=newest,
        free_bytes=free,
        root=str(cfg.root),
        binlog_dir=cfg.binlog_dir,
        **binlog,  # type: ignore[arg-type]
    )


def _facts_or_configured(cfg: Config) -> Facts:
    """:func:`gather_facts`; a backup folder that cannot be read leaves out what comes
    from it (logged), not the whole scrape."""
    try:
        return gather_facts(cfg)
    except Exception as exc:
        log.warning("metrics: cannot read the backups in %s: %s", cfg.root, _reason(exc))
        return Facts(configured=[(d.core, d.spec) for d in cfg.databases], root=str(cfg.root))


class ScrapeCache:
    """The families for ``/metrics``: the state file is read at every scrape, the
    backups on disk (a walk of every backup directory, maybe on NFS) only when the state
    file changed (a cycle ended) or ``max_age_s`` passed; the free space is always
    fresh. Scrapes may come from several threads."""

    def __init__(self, cfg: Config, *, max_age_s: float = 300.0) -> None:
        self.cfg = cfg
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._facts: Facts | None = None
        self._key: tuple[int, float] | None = None

    def _state_mtime(self) -> int:
        try:
            return self.cfg.state_path.stat().st_mtime_ns
        except OSError:
            return 0

    def families(self) -> list[Metric]:
        with self._lock:
            mtime, now = self._state_mtime(), time.monotonic()
            if (
                self._facts is None
                or self._key is None
                or self._key[0] != mtime
                or now - self._key[1] > self.max_age_s
            ):
                self._facts, self._key = _facts_or_configured(self.cfg), (mtime, now)
            facts = self._facts
        try:
            facts = replace(facts, free_bytes=disk_free(self.cfg.root))
        except OSError:
            facts = replace(facts, free_bytes=None)
        return build_families(load_state(self.cfg.state_path), facts)


def write_metrics_file(cfg: Config, state: RunState | None = None) -> None:
    """Write MOODUMP_METRICS_FILE atomically (written beside it, then renamed, so the
    textfile collector never reads half a file)."""
    if state is None:
        state = load_state(cfg.state_path)
    write_text(Path(cfg.metrics_file), metrics_text(state, gather_facts(cfg)),
               mode=METRICS_FILE_MODE)  # fmt: skip


def record_run(cfg: Config, report: RunReport) -> RunState | None:
    """Add ``report`` to the state file and rewrite the metrics file (when configured).

    Returns the new state, or None when it could not be saved. Never raises: a problem
    is logged, and the run's result does not change."""
    try:
        state = apply_report(load_state(cfg.state_path), report)
        save_state(cfg.state_path, state)
    except Exception as exc:
        log.warning("cannot update the state file %s: %s (metrics and moodump status miss "
                    "this run)", cfg.state_path, _reason(exc))  # fmt: skip
        return None
    if cfg.metrics_file:
        try:
            write_metrics_file(cfg, state)
        except Exception as exc:
            log.warning("cannot write the metrics file %s: %s", cfg.metrics_file, _reason(exc))
    return state


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc)


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`close` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(cfg: Config, port: int | None = None) -> MetricsServer:
    """Serve the metrics on MOODUMP_METRICS_ADDRESS:MOODUMP_METRICS_PORT (``port``
    overrides; 0 picks a free one). Every scrape reads the state file again (see
    :class:`ScrapeCache`), so it also shows cycles run by other processes
    (``moodump run --once``).

    :raises ConfigError: the address cannot be bound (in use, not an address here).
    """
    chosen = cfg.metrics_port if port is None else port
    if chosen is None:
        raise ConfigError("no metrics port", hint="set MOODUMP_METRICS_PORT")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamiliesCollector(ScrapeCache(cfg).families))
    try:
        server, thread = start_http_server(chosen, addr=cfg.metrics_address, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {cfg.metrics_address}:{chosen}: {exc.strerror or exc}",
            hint="pick a free port (MOODUMP_METRICS_PORT) or another MOODUMP_METRICS_ADDRESS",
        ) from exc
    log.info("serving Prometheus metrics on http://%s:%d/metrics", cfg.metrics_address,
             server.server_port)  # fmt: skip
    return MetricsServer(server, thread)
