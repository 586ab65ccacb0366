"""Schedule: cron lines, what they map to, DST-correct next runs, BACKUP_PERIOD."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from moodump.schedule import (
    Action,
    ScheduleError,
    command_action,
    format_duration,
    next_due,
    next_run,
    parse_backup_period,
    parse_cron_line,
    parse_duration,
    runs_between,
)

VAN = ZoneInfo("America/Vancouver")
PST8PDT = ZoneInfo("PST8PDT")
UTC = timezone.utc


def fmt(values: list[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


# --------------------------------------------------------------------------- parsing


def test_parse_old_style_line() -> None:
    c = parse_cron_line("0 1 * * * default ./backup.sh -s", line=7)
    assert (c.expression, c.user, c.command, c.line) == (
        "0 1 * * *",
        "default",
        "./backup.sh -s",
        7,
    )
    assert c.action == Action("backup")
    assert c.text == "0 1 * * * default ./backup.sh -s"


def test_parse_keeps_command_text() -> None:
    c = parse_cron_line("*/15  2-4 1,15 * MON-FRI   root   moodump check --max-age 26h")
    assert c.expression == "*/15 2-4 1,15 * MON-FRI"
    assert c.command == "moodump check --max-age 26h"
    assert c.action == Action("check", args=("--max-age", "26h"))


def test_parse_macro() -> None:
    c = parse_cron_line("@Daily default ./backup.sh -s")
    assert c.expression == "@daily"
    assert next_run(c.expression, datetime(2026, 6, 1, 12, tzinfo=VAN), VAN) == datetime(
        2026, 6, 2, 0, 0, tzinfo=VAN
    )


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("0 1 * * default ./backup.sh -s", "not a valid cron schedule"),
        ("0 1 * * *", "found 5 fields"),
        ("0 1 * * * default", "found 6 fields"),
        ("61 1 * * * default ./backup.sh -s", "not a valid cron schedule"),
        ("0 25 * * * default ./backup.sh -s", "not a valid cron schedule"),
        ("0 0 31 2 * default ./backup.sh -s", "never runs"),
        ("@reboot default ./backup.sh -s", "not a supported schedule macro"),
        ("@every 1h default ./backup.sh -s", "not a supported schedule macro"),
        ("0 1 * * * ./backup.sh -s", "the user field is missing"),
        ("0 1 * * * moodump run --once", "the user field is missing"),
    ],
)
def test_parse_rejects(line: str, needle: str) -> None:
    with pytest.raises(ScheduleError, match=needle):
        parse_cron_line(line)


@pytest.mark.parametrize(
    ("command", "action"),
    [
        ("./backup.sh -s", Action("backup")),
        ("/backup.sh -1", Action("backup")),
        ("./backup.sh -s -v all", Action("verify", target="all")),
        ("./backup.sh -sv all", Action("verify", target="all")),
        ("./backup.sh -s -v mysql/moodle", Action("verify", target="mysql/moodle")),
        (
            "./backup.sh -s -v all -f moodle_2026",
            Action("verify", target="all", filter="moodle_2026"),
        ),
        ("./backup.sh -p", Action("prune")),
        ("./backup.sh -s -p", Action("prune")),  # old precedence: prune first
        ("./backup.sh -l", Action("list")),
        ("./backup.sh -c", Action("config")),
        ("./backup.sh -r mysql/moodle -s", Action("restore", target="mysql/moodle")),
        ("./backup.sh", Action("other")),
        ("bash -c './backup.sh -s'", Action("backup")),
        ("sh /backup.sh -s", Action("backup")),
        ("moodump run --once", Action("backup")),
        ("/opt/moodump/bin/moodump run", Action("backup")),
        ("moodump verify --all", Action("verify", target="all", args=("--all",))),
        ("moodump prune", Action("prune")),
        ("moodump prune --dry-run", Action("prune", args=("--dry-run",))),
        ("python3 -m moodump check --max-age 26h", Action("check", args=("--max-age", "26h"))),
        ("moodump demo", Action("other", args=("demo",))),
        ("echo hello", Action("other")),
        ("echo 'unbalanced", Action("other")),
    ],
)
def test_command_action(command: str, action: Action) -> None:
    assert command_action(command) == action


def test_action_describe() -> None:
    assert Action("verify", target="all").describe() == "verify all"
    assert Action("check", args=("--max-age", "26h")).describe() == "check --max-age 26h"


# --------------------------------------------------------------------------- next run


def test_next_run_basic_and_strictly_after() -> None:
    at = datetime(2026, 6, 1, 9, 0, tzinfo=PST8PDT)
    assert next_run("0 9 * * *", at, PST8PDT) == datetime(2026, 6, 2, 9, 0, tzinfo=PST8PDT)
    assert next_run("0 9 * * *", at - timedelta(seconds=1), PST8PDT) == at
    # the configured zone decides, not the zone of "after"
    utc_after = datetime(2026, 6, 1, 15, 59, tzinfo=UTC)  # 08:59 PDT
    assert next_run("0 9 * * *", utc_after, PST8PDT) == at


def test_next_run_needs_aware_time() -> None:
    with pytest.raises(ValueError):
        next_run("0 9 * * *", datetime(2026, 6, 1), PST8PDT)


def test_spring_forward_skipped_time_runs_once_at_the_jump() -> None:
    # 2026-03-08: 02:00 PST jumps to 03:00 PDT; 02:30 does not exist that day.
    runs = runs_between(
        "30 2 * * *", datetime(2026, 3, 6, 12, tzinfo=VAN), datetime(2026, 3, 10, tzinfo=VAN), VAN
    )
    assert fmt(runs) == [
        "2026-03-07T02:30:00-08:00",
        "2026-03-08T03:00:00-07:00",
        "2026-03-09T02:30:00-07:00",
    ]


def test_spring_forward_frequent_jobs_collapse() -> None:
    runs = runs_between(
        "*/20 * * * *",
        datetime(2026, 3, 8, 1, 30, tzinfo=PST8PDT),
        datetime(2026, 3, 8, 3, 30, tzinfo=PST8PDT),
        PST8PDT,
    )
    assert fmt(runs) == [
        "2026-03-08T01:40:00-08:00",
        "2026-03-08T03:00:00-07:00",  # 02:00, 02:20, 02:40 do not exist: one run at 03:00
        "2026-03-08T03:20:00-07:00",
    ]


def test_fall_back_repeated_time_runs_once() -> None:
    # 2026-11-01: 02:00 PDT falls back to 01:00 PST; 01:30 happens twice, runs once.
    runs = runs_between(
        "30 1 * * *", datetime(2026, 10, 31, 12, tzinfo=VAN), datetime(2026, 11, 3, tzinfo=VAN), VAN
    )
    assert fmt(runs) == [
        "2026-11-01T01:30:00-07:00",
        "2026-11-02T01:30:00-08:00",
    ]


def test_fall_back_hourly_no_double_runs() -> None:
    runs = runs_between(
        "0 * * * *",
        datetime(2026, 11, 1, 0, 30, tzinfo=PST8PDT),
        datetime(2026, 11, 1, 3, 30, tzinfo=PST8PDT),
        PST8PDT,
    )
    assert fmt(runs) == [
        "2026-11-01T01:00:00-07:00",
        "2026-11-01T02:00:00-08:00",
        "2026-11-01T03:00:00-08:00",
    ]
    # strictly increasing instants, no duplicates
    instants = [r.astimezone(UTC) for r in runs]
    assert instants == sorted(set(instants))


def test_next_run_from_inside_the_repeated_hour() -> None:
    after = datetime(2026, 11, 1, 1, 10, tzinfo=VAN, fold=1)  # 01:10 PST, second pass
    assert next_run("30 1 * * *", after, VAN).isoformat() == "2026-11-02T01:30:00-08:00"
    assert next_run("*/20 * * * *", after, VAN).isoformat() == "2026-11-01T02:00:00-08:00"


def test_daily_runs_over_a_year_are_one_per_day() -> None:
    runs = runs_between(
        "0 9 * * *",
        datetime(2026, 1, 1, tzinfo=PST8PDT),
        datetime(2027, 1, 1, tzinfo=PST8PDT),
        PST8PDT,
    )
    assert len(runs) == 365
    assert all(r.hour == 9 and r.minute == 0 for r in runs)


def test_next_due_groups_lines() -> None:
    lines = [
        parse_cron_line("0 1 * * * default ./backup.sh -s", 1),
        parse_cron_line("0 4 * * * default ./backup.sh -s -v all", 2),
        parse_cron_line("0 1 * * 0 default moodump prune", 3),
    ]
    when, due = next_due(lines, datetime(2026, 6, 6, 12, tzinfo=VAN), VAN)  # a Saturday
    assert when == datetime(2026, 6, 7, 1, tzinfo=VAN)
    assert [c.line for c in due] == [1, 3]
    when, due = next_due(lines, when, VAN)
    assert when.hour == 4 and [c.line for c in due] == [2]
    with pytest.raises(ValueError):
        next_due([], when, VAN)


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3600", 3600),
        ("30s", 30),
        ("30m", 1800),
        ("12h", 43200),
        ("1d", 86400),
        ("1D", 86400),
        ("2w", 1209600),
        ("1.5h", 5400),
        ("1h 30m", 5400),
        ("26h", 93600),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "abc", "1y", "-5m", "1 d", "5mins"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_duration(text)


def test_backup_period() -> None:
    assert parse_backup_period("1d") == timedelta(days=1)
    with pytest.raises(ScheduleError, match="longer than zero"):
        parse_backup_period("0")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400, "1d"), (43200, "12h"), (5400, "90m"), (45, "45s"), (1209600, "2w"), (1.5, "1.5s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_moodump_run_verify_all_is_a_verification():
    from moodump.schedule import ACTION_VERIFY, command_action

    action = command_action("moodump run --verify-all")
    assert action.kind == ACTION_VERIFY and action.target == "all"
