"""Prometheus metrics, built purely: run state and gathered facts in, metric families or
exposition text out.

Nothing here reads a file or opens a socket: :mod:`moodump.jobs.exporter` gathers the
facts (backups on disk, free space), loads the state, writes the text file and serves
``/metrics``. Names and meanings are listed in :data:`METRICS` (docs/observability.md
and the alert rules in deploy/ use exactly these names; a test checks it).

Per-database series carry ``database`` (the core name, ``host-db``) and ``spec``
(``host:port/db`` as in backup.conf). Timestamps are Unix seconds. A configured database
without a verified backup has ``moodump_backup_newest_verified_timestamp_seconds`` 0, so
"no verified backup in 26 h" fires for it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from moodump import __version__
from moodump.jobs.state import DatabaseState, RunState

DB_LABELS = ("database", "spec")

#: Every family moodump exports: name -> (type, help). Counters are named without
#: ``_total`` here, as prometheus_client does; their samples end in ``_total``.
METRICS: dict[str, tuple[str, str]] = {
    "moodump_info": ("gauge", "moodump's version (always 1)."),
    "moodump_backup_last_success_timestamp_seconds": (
        "gauge", "When the last successful backup of the database ended."),
    "moodump_backup_last_failure_timestamp_seconds": (
        "gauge", "When the last failed backup of the database ended."),
    "moodump_backup_last_ok": (
        "gauge", "1 when the last backup attempt succeeded (warnings included), else 0."),
    "moodump_backup_last_exit_code": (
        "gauge", "Exit code of the last backup attempt (docs/exit-codes.md)."),
    "moodump_backup_last_duration_seconds": (
        "gauge", "Duration of the last good backup (dump, checks, verification, copy)."),
    "moodump_backup_last_size_bytes": ("gauge", "Size on disk of the last good backup."),
    "moodump_backup_previous_size_bytes": (
        "gauge", "Size on disk of the good backup before the last one."),
    "moodump_backup_last_rows": ("gauge", "Rows in the last good backup."),
    "moodump_backup_last_tables": ("gauge", "Tables in the last good backup."),
    "moodump_backup_newest_verified_timestamp_seconds": (
        "gauge", "Start time of the newest verified backup on disk (0: none)."),
    "moodump_backups_kept": ("gauge", "Backups of the database on disk, per retention tier."),
    "moodump_verify_last_timestamp_seconds": (
        "gauge", "When the last verification of the database ended."),
    "moodump_verify_last_ok": ("gauge", "1 when the last verification passed, else 0."),
    "moodump_verify_last_success_timestamp_seconds": (
        "gauge", "When the last passing verification of the database ended."),
    "moodump_offsite_last_timestamp_seconds": (
        "gauge", "When the last off-site copy of the database was attempted."),
    "moodump_offsite_last_ok": (
        "gauge", "1 when the last off-site copy was uploaded and re-checked, else 0."),
    "moodump_moodledata_last_timestamp_seconds": (
        "gauge", "When the last moodledata check (MOODUMP_CHECK_FILES) ended."),
    "moodump_moodledata_last_ok": (
        "gauge", "1 when the last moodledata check found no missing or corrupt content file."),
    "moodump_moodledata_missing_files": (
        "gauge", "Content files the files table names that moodledata lacks (last check)."),
    "moodump_moodledata_corrupt_files": (
        "gauge", "Content files whose SHA-1 differs from their name (last check, those hashed)."),
    "moodump_backup_volume_free_bytes": ("gauge", "Free bytes on the backup volume."),
    "moodump_binlog_covered_until_timestamp_seconds": (
        "gauge", "Every event logged before this time is in the binary log archive "
        "(MOODUMP_BINLOG_DIR): the newest point-in-time recovery target."),
    "moodump_binlog_gaps": (
        "gauge", "Gaps in the binary log archive (logs purged before they were archived: "
        "PITR unavailable across each); should be 0."),
    "moodump_binlog_archive_files": ("gauge", "Files in the binary log archive."),
    "moodump_runs": ("counter", "Cycles run, per action (backup, verify)."),
    "moodump_run_failures": (
        "counter", "Cycles that ended with a non-zero exit code, per action and exit code."),
    "moodump_database_runs": ("counter", "Database steps run, per action."),
    "moodump_database_failures": (
        "counter", "Failed database steps, per action and exit code (the reason)."),
}  # fmt: skip


def sample_names() -> set[str]:
    """Every sample name the exposition can hold (counters with ``_total``)."""
    return {f"{n}_total" if t == "counter" else n for n, (t, _) in METRICS.items()}


@dataclass(frozen=True)
class Facts:
    """What is read from the disk when the metrics are built (not kept in the state).

    ``configured`` holds (core, spec) of each configured database; ``kept`` the number
    of backups per core and tier; ``newest_verified`` the start time of each core's
    newest verified backup (None: none); ``free_bytes`` the backup volume's free space.
    """

    configured: Sequence[tuple[str, str]] = ()
    kept: dict[str, dict[str, int]] = field(default_factory=dict)
    newest_verified: dict[str, datetime | None] = field(default_factory=dict)
    free_bytes: int | None = None
    root: str = ""
    #: the binary log archive (MOODUMP_BINLOG_DIR), when one is configured and readable
    binlog_dir: str = ""
    binlog_covered_until: int | None = None
    binlog_gaps: int | None = None
    binlog_files: int | None = None


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _gauge(name: str, labels: Sequence[str] = DB_LABELS) -> GaugeMetricFamily:
    kind, doc = METRICS[name]
    assert kind == "gauge", name
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, labels: Sequence[str]) -> CounterMetricFamily:
    kind, doc = METRICS[name]
    assert kind == "counter", name
    return CounterMetricFamily(name, doc, labels=list(labels))


def _per_database(state: RunState, facts: Facts) -> list[tuple[str, str, DatabaseState]]:
    """Configured databases first (with an empty state when none is known), then any
    others the state remembers (removed from backup.conf but still on disk)."""
    out = []
    seen = set()
    for core, spec in facts.configured:
        db = state.databases.get(core) or DatabaseState(spec=spec)
        out.append((core, db.spec or spec, db))
        seen.add(core)
    for core in sorted(state.databases):
        if core not in seen:
            out.append((core, state.databases[core].spec, state.databases[core]))
    return out


def build_families(state: RunState, facts: Facts) -> list[Metric]:
    """The metric families for ``state`` and ``facts``; series with no known value are
    left out (e.g. no failure time for a database that never failed)."""
    per_db: dict[str, Callable[[DatabaseState], float | None]] = {
        "moodump_backup_last_success_timestamp_seconds": lambda d: _ts(d.last_success_at),
        "moodump_backup_last_failure_timestamp_seconds": lambda d: _ts(d.last_failure_at),
        "moodump_backup_last_ok": lambda d: _flag(d.last_backup_ok),
        "moodump_backup_last_exit_code": lambda d: d.last_backup_exit_code,
        "moodump_backup_last_duration_seconds": lambda d: d.duration_s,
        "moodump_backup_last_size_bytes": lambda d: d.size_bytes,
        "moodump_backup_previous_size_bytes": lambda d: d.previous_size_bytes,
        "moodump_backup_last_rows": lambda d: d.rows,
        "moodump_backup_last_tables": lambda d: d.tables,
        "moodump_verify_last_timestamp_seconds": lambda d: _ts(d.verify_at),
        "moodump_verify_last_ok": lambda d: _flag(d.verify_passed),
        "moodump_verify_last_success_timestamp_seconds": lambda d: _ts(d.last_verified_at),
        "moodump_offsite_last_timestamp_seconds": lambda d: _ts(d.offsite_at),
        "moodump_offsite_last_ok": lambda d: _flag(d.offsite_ok),
        "moodump_moodledata_last_timestamp_seconds": lambda d: _ts(d.moodledata_at),
        "moodump_moodledata_last_ok": lambda d: _flag(d.moodledata_ok),
        "moodump_moodledata_missing_files": lambda d: d.moodledata_missing,
        "moodump_moodledata_corrupt_files": lambda d: d.moodledata_corrupt,
    }
    dbs = _per_database(state, facts)
    configured = {core for core, _ in facts.configured}
    families: list[Metric] = []
    info = _gauge("moodump_info", ["version"])
    info.add_metric([__version__], 1)
    families.append(info)
    for name, value_of in per_db.items():
        g = _gauge(name)
        for core, spec, db in dbs:
            value = value_of(db)
            if value is not None:
                g.add_metric([core, spec], float(value))
        families.append(g)

    newest = _gauge("moodump_backup_newest_verified_timestamp_seconds")
    kept = _gauge("moodump_backups_kept", [*DB_LABELS, "tier"])
    for core, spec, _db in dbs:
        when = facts.newest_verified.get(core)
        if when is not None:
            newest.add_metric([core, spec], when.timestamp())
        elif core in configured:
            newest.add_metric([core, spec], 0.0)
        for tier, n in sorted(facts.kept.get(core, {}).items()):
            kept.add_metric([core, spec, tier], float(n))
    families += [newest, kept]

    free = _gauge("moodump_backup_volume_free_bytes", ["path"])
    if facts.free_bytes is not None:
        free.add_metric([facts.root], float(facts.free_bytes))
    families.append(free)

    for name, value in (
        ("moodump_binlog_covered_until_timestamp_seconds", facts.binlog_covered_until),
        ("moodump_binlog_gaps", facts.binlog_gaps),
        ("moodump_binlog_archive_files", facts.binlog_files),
    ):
        g = _gauge(name, ["path"])
        if facts.binlog_dir and value is not None:
            g.add_metric([facts.binlog_dir], float(value))
        families.append(g)

    families += _counters(state, dbs)
    return families


def _counters(state: RunState, dbs: Iterable[tuple[str, str, DatabaseState]]) -> list[Metric]:
    runs = _counter("moodump_runs", ["action"])
    for action, n in sorted(state.runs.items()):
        runs.add_metric([action], float(n))
    run_failures = _counter("moodump_run_failures", ["action", "exit_code"])
    for action, codes in sorted(state.failures.items()):
        for code, n in sorted(codes.items()):
            run_failures.add_metric([action, code], float(n))
    db_runs = _counter("moodump_database_runs", [*DB_LABELS, "action"])
    db_failures = _counter("moodump_database_failures", [*DB_LABELS, "action", "exit_code"])
    for core, spec, db in dbs:
        for action, n in sorted(db.runs.items()):
            db_runs.add_metric([core, spec, action], float(n))
        for action, codes in sorted(db.failures.items()):
            for code, n in sorted(codes.items()):
                db_failures.add_metric([core, spec, action, code], float(n))
    return [runs, run_failures, db_runs, db_failures]


class FamiliesCollector(Collector):
    """A registry collector whose families come from ``build``, called at each collection
    (each scrape of ``/metrics``)."""

    def __init__(self, build: Callable[[], Iterable[Metric]]) -> None:
        self._build = build

    def collect(self) -> Iterator[Metric]:
        yield from self._build()


def exposition(families: Iterable[Metric]) -> str:
    """The Prometheus text exposition format (0.0.4) of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    fixed = list(families)
    registry.register(FamiliesCollector(lambda: fixed))
    return generate_latest(registry).decode("utf-8")


def metrics_text(state: RunState, facts: Facts) -> str:
    """``exposition(build_families(state, facts))``: the text file's content."""
    return exposition(build_families(state, facts))
