"""The pure parts of observability: the run state, the metric builders, the status
builder. No server, no files (milliseconds); the processes are in
test_observability_run.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from moodump.catalog import BackupInfo
from moodump.config import load_config
from moodump.jobs.metrics import METRICS, Facts, build_families, metrics_text, sample_names
from moodump.jobs.report import DatabaseResult, RunReport
from moodump.jobs.state import RunState, apply_report
from moodump.jobs.status import build_status, next_backup_runs, render_status

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CORE, SPEC = "mysql-moodle", "mysql:3306/moodle"
CONFIGURED = [(CORE, SPEC)]


def backup_report(at: datetime, *, ok: bool = True, size: int = 1000, code: int = 2,
                  offsite: bool | None = None) -> RunReport:  # fmt: skip
    report = RunReport(
        "backup", at.isoformat(), finished_at=(at + timedelta(minutes=1)).isoformat()
    )
    d = DatabaseResult(SPEC, CORE, started_at=at.isoformat(), duration_s=30.0)
    if ok:
        d.size_bytes, d.rows, d.tables, d.backup_ok = size, 200, 3, True
        d.verify = {"method": "offline", "passed": True}
        d.path = f"/backups/daily/x/{CORE}_{at:%H-%M}"
    else:
        d.status, d.exit_code, d.error = "failed", code, "cannot connect"
    if offsite is not None:
        d.offsite = {"ok": offsite, "url": "s3://bucket/", "error": None if offsite else "denied"}
    report.databases.append(d)
    return report


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def db_value(text: str, name: str, **labels: str) -> float | None:
    want = frozenset({"database": CORE, "spec": SPEC, **labels}.items())
    return samples(text).get((name, want))


# --------------------------------------------------------------------------- state


def test_a_failed_run_moves_the_failure_counter_not_the_success_time() -> None:
    s1 = apply_report(RunState(), backup_report(T0, size=1000))
    s2 = apply_report(s1, backup_report(T0 + timedelta(days=1), ok=False, code=3))
    a, b = s1.databases[CORE], s2.databases[CORE]
    assert b.last_success_at == a.last_success_at == (T0 + timedelta(seconds=30)).isoformat()
    assert b.last_failure_at == (T0 + timedelta(days=1, seconds=30)).isoformat()
    assert b.failures == {"backup": {"3": 1}} and b.runs == {"backup": 2}
    assert b.size_bytes == 1000 and b.last_backup_ok is False
    assert s2.runs == {"backup": 2} and s2.failures == {"backup": {"3": 1}}
    assert s1.databases[CORE].failures == {}, "apply_report does not change its input"
    # a round trip through JSON keeps everything
    assert RunState.from_dict(s2.to_dict()) == s2


def test_previous_size_and_verify_and_offsite() -> None:
    s = apply_report(RunState(), backup_report(T0, size=1000, offsite=True))
    s = apply_report(s, backup_report(T0 + timedelta(days=1), size=400, offsite=False))
    db = s.databases[CORE]
    assert (db.previous_size_bytes, db.size_bytes) == (1000, 400)
    assert db.verify_passed and db.last_verified_at
    assert db.offsite_ok is False and db.offsite_error == "denied"


def test_a_bad_state_document_is_read_leniently() -> None:
    s = RunState.from_dict({"databases": {CORE: {"spec": SPEC, "unknown_later_field": 1}}})
    assert s.databases[CORE].spec == SPEC


# --------------------------------------------------------------------------- metrics


def test_metrics_text_parses_and_holds_the_facts() -> None:
    s = apply_report(RunState(), backup_report(T0, size=1000))
    s = apply_report(s, backup_report(T0 + timedelta(days=1), ok=False, code=3))
    newest = T0 - timedelta(hours=1)
    facts = Facts(CONFIGURED, kept={CORE: {"daily": 4, "weekly": 1}},
                  newest_verified={CORE: newest}, free_bytes=123, root="/backups")  # fmt: skip
    text = metrics_text(s, facts)
    success = (T0 + timedelta(seconds=30)).timestamp()
    assert db_value(text, "moodump_backup_last_success_timestamp_seconds") == success
    assert db_value(text, "moodump_backup_last_duration_seconds") == 30.0
    assert db_value(text, "moodump_backup_last_size_bytes") == 1000
    assert db_value(text, "moodump_backup_last_rows") == 200
    assert db_value(text, "moodump_backup_last_tables") == 3
    assert db_value(text, "moodump_backup_last_ok") == 0
    assert db_value(text, "moodump_backup_last_exit_code") == 3
    assert db_value(text, "moodump_database_failures_total", action="backup", exit_code="3") == 1
    assert db_value(text, "moodump_database_runs_total", action="backup") == 2
    assert db_value(text, "moodump_backups_kept", tier="daily") == 4
    assert db_value(text, "moodump_backup_newest_verified_timestamp_seconds") == newest.timestamp()
    all_samples = samples(text)
    assert (
        all_samples[("moodump_backup_volume_free_bytes", frozenset({("path", "/backups")}))] == 123
    )
    assert all_samples[("moodump_run_failures_total",
                        frozenset({("action", "backup"), ("exit_code", "3")}))] == 1  # fmt: skip
    assert {name for name, _ in all_samples} <= sample_names()


def test_every_declared_metric_is_exported_with_its_type() -> None:
    families = {f.name: f.type for f in build_families(RunState(), Facts(CONFIGURED))}
    assert families == {name: kind for name, (kind, _) in METRICS.items()}


def test_a_configured_database_without_verified_backup_reports_zero() -> None:
    """So that "no verified backup in 26 h" fires for a database never backed up."""
    text = metrics_text(RunState(), Facts(CONFIGURED))
    assert db_value(text, "moodump_backup_newest_verified_timestamp_seconds") == 0
    assert db_value(text, "moodump_backup_last_success_timestamp_seconds") is None


# --------------------------------------------------------------------------- status


def info(when: datetime, status: str = "DONE", verify: str | None = "PASS") -> BackupInfo:
    name = f"{CORE}_{when:%Y-%m-%d_%H-%M-%S}"
    return BackupInfo(Path("/backups/daily") / name, name, CORE, "daily", when, status, 1000,
                      verify_status=verify)  # fmt: skip


def test_status_healthy_and_the_reasons_for_unhealthy() -> None:
    now = T0 + timedelta(hours=2)
    good = apply_report(RunState(), backup_report(T0))
    st = build_status(CONFIGURED, [info(T0)], good, now, max_age=timedelta(hours=26))
    assert st.healthy
    (d,) = st.databases
    assert d.newest_verified is not None and d.to_dict()["newest_verified"]["age_s"] == 7200
    assert "HEALTHY" in render_status(st)

    later = now + timedelta(days=2)
    stale = build_status(CONFIGURED, [info(T0)], good, later, max_age=timedelta(hours=26))
    assert not stale.healthy and "old" in stale.databases[0].problems[0]

    failed = apply_report(good, backup_report(T0 + timedelta(hours=1), ok=False, code=3))
    st = build_status(CONFIGURED, [info(T0)], failed, now, max_age=timedelta(hours=26))
    assert st.databases[0].problems == ("the last backup failed (exit 3): cannot connect",)
    doc: dict[str, Any] = st.to_dict()
    assert doc["healthy"] is False and doc["databases"][0]["last_run"]["exit_code"] == 3

    nothing = build_status(CONFIGURED, [], RunState(), now, max_age=timedelta(hours=26))
    assert nothing.databases[0].problems == ("no verified backup",)
    unverified = [info(T0, verify=None)]
    st = build_status(CONFIGURED, unverified, RunState(), now, max_age=timedelta(hours=26))
    assert not st.healthy
    st = build_status(CONFIGURED, unverified, RunState(), now, max_age=timedelta(hours=26),
                      accept_unverified=True)  # fmt: skip
    assert st.healthy

    # no state at all (a new state file): a FAILED newest backup on disk still counts
    st = build_status(CONFIGURED, [info(T0), info(now, status="FAILED", verify=None)],
                      RunState(), now, max_age=timedelta(hours=26))  # fmt: skip
    assert "failed" in st.databases[0].problems[0]

    off = apply_report(RunState(), backup_report(T0, offsite=False))
    st = build_status(CONFIGURED, [info(T0)], off, now, max_age=timedelta(hours=26))
    assert st.databases[0].problems == ("the last off-site copy failed: denied",)


def test_next_backup_run_from_the_cron_lines_in_tz() -> None:
    conf = "mysql/moodle\nmysql/other\n0 1 * * * default ./backup.sh -s\n"
    cfg = load_config({"TZ": "America/Vancouver"}, conf, "backup.conf")
    now = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 04:00 PDT, the day DST starts
    runs, how = next_backup_runs(cfg, now, RunState(), None)
    assert "cron mode" in how
    expected = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)  # 01:00 PDT next day
    assert {core: t.astimezone(UTC) for core, t in runs.items() if t} == {
        "mysql-moodle": expected, "mysql-other": expected,
    }  # fmt: skip

    legacy = load_config({"TZ": "UTC", "BACKUP_PERIOD": "12h"}, "mysql/moodle\n", "backup.conf")
    state = RunState.from_dict({"databases": {"mysql-moodle": {"last_run_at": T0.isoformat()}}})
    runs, how = next_backup_runs(legacy, now, state, None)
    assert "legacy" in how and runs["mysql-moodle"] == T0 + timedelta(hours=12)


def verify_report(at: datetime, *, passed: bool | None) -> RunReport:
    report = RunReport("verify", at.isoformat(), finished_at=at.isoformat())
    d = DatabaseResult(SPEC, CORE, started_at=(at - timedelta(days=1)).isoformat())
    if passed is None:  # nothing to verify: a stale or missing backup
        d.status, d.exit_code, d.error = "failed", 11, "stale"
    else:
        d.verify = {"method": "local", "passed": passed}
        if not passed:
            d.status, d.exit_code, d.error = "failed", 8, "checksum"
    report.databases.append(d)
    return report


def test_the_verification_cycle_updates_only_the_verify_facts() -> None:
    s = apply_report(RunState(), backup_report(T0))
    before = s.databases[CORE]
    s = apply_report(s, verify_report(T0 + timedelta(hours=3), passed=True))
    db = s.databases[CORE]
    assert db.verify_passed and db.verify_method == "local"
    assert db.last_success_at == before.last_success_at and db.last_backup_ok
    s = apply_report(s, verify_report(T0 + timedelta(hours=6), passed=False))
    s = apply_report(s, verify_report(T0 + timedelta(hours=9), passed=None))
    db = s.databases[CORE]
    assert db.verify_passed is False and db.verify_at == (T0 + timedelta(hours=9)).isoformat()
    assert db.last_verified_at == (T0 + timedelta(hours=3)).isoformat()
    assert db.failures == {"verify": {"8": 1, "11": 1}}
    assert db.runs == {"backup": 1, "verify": 3}
    assert db.last_backup_ok is True, "a failed verification is not a failed backup"


def test_record_run_writes_state_and_metrics_and_never_raises(tmp_path: Path) -> None:
    from moodump.jobs.exporter import record_run

    prom = tmp_path / "moodump.prom"
    env = {"TZ": "UTC", "BACKUP_DIR": str(tmp_path / "backups"), "MOODUMP_METRICS_FILE": str(prom)}
    cfg = load_config(env, "mysql:3306/moodle\n", "backup.conf")
    cfg.root.mkdir()  # (the run lock creates it in a real run)
    state = record_run(cfg, backup_report(T0))
    assert state is not None and cfg.state_path.exists()
    assert db_value(prom.read_text(), "moodump_backup_last_size_bytes") == 1000
    assert oct(prom.stat().st_mode & 0o777) == oct(0o644)
    # a state file that cannot be written: logged, None, no exception
    env["MOODUMP_STATE_FILE"] = str(tmp_path / "missing" / "dir" / "state.json")
    assert (
        record_run(load_config(env, "mysql:3306/moodle\n", "backup.conf"), backup_report(T0))
        is None
    )
