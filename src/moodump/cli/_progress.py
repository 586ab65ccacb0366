"""Progress a person can watch: a ``rich`` display on the terminal, and the log ticker.

Both read the one :class:`~moodump.progress.Progress` the library counts into. The
display draws on stderr, and only when stdout and stderr are both terminals and
neither ``-q`` nor ``--json`` was given: output piped to a file or a log collector
never gets control characters. While it is up, moodump's log lines are printed above
it (rich's stderr proxy) instead of through it. The log ticker
(``MOODUMP_PROGRESS_INTERVAL``) runs in every case; ``-q`` silences the display only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moodump.progress import Progress, ProgressSnapshot, human_bytes, human_duration, log_progress

#: Redraws per second of the terminal display.
REFRESH_PER_SECOND = 4.0


def progress_interval() -> float:
    """MOODUMP_PROGRESS_INTERVAL in seconds (the key table's default when it is bad:
    ``moodump config`` reports a bad value, a dump should not fail over it)."""
    from moodump.config import setting
    from moodump.errors import ConfigError

    try:
        value = setting("MOODUMP_PROGRESS_INTERVAL")
    except ConfigError:
        value = setting("MOODUMP_PROGRESS_INTERVAL", {})
    return float(value.total_seconds())


def display_wanted(quiet: bool) -> bool:
    """Draw only for a person: both stdout and stderr are terminals and not ``-q``."""
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


class ProgressView:
    """The renderable: a rich ``__rich__`` that reads a fresh snapshot at each redraw."""

    def __init__(self, tracker: Progress) -> None:
        self.tracker = tracker

    def __rich__(self) -> Any:
        return render(self.tracker.snapshot())


def render(s: ProgressSnapshot) -> Any:
    """The display of one snapshot: a headline with a bar, counts, rate and ETA, then one
    line per worker with the table it works on."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    if not s.active:
        return Text("")
    where = s.phase + (f" / {s.step}" if s.step else "")
    head = Table.grid(padding=(0, 1))
    head.add_column(no_wrap=True)
    head.add_column(width=24, no_wrap=True)
    head.add_column(no_wrap=True)
    frac = s.fraction
    bar = ProgressBar(total=100.0, completed=frac * 100 if frac is not None else 0, width=24)
    if frac is None:
        bar = ProgressBar(total=None, width=24)  # pulses: no estimate to measure against
    rows = f"{s.rows_done:,}" + (f"/{s.rows_total_est:,}" if s.rows_total_est else "")
    tables = f" · {s.tables_done}/{s.tables_total} tables" if s.tables_total else ""
    numbers = (
        (f"{frac * 100:5.1f}% · " if frac is not None else "")
        + f"{rows} rows · {human_bytes(s.bytes_done)}{tables} · "
        + f"{s.rate_rows_s:,.0f} rows/s · {human_bytes(s.rate_bytes_s)}/s · "
        + f"ETA {human_duration(s.eta_s)} · {human_duration(s.elapsed_s)} elapsed"
    )
    head.add_row(Text(f"{s.operation} {s.database}: {where}", style="bold"), bar, numbers)
    lines: list[Any] = [head]
    for number, what in s.workers:
        lines.append(Text(f"  worker {number}: {what or 'idle'}", style="dim" if not what else ""))
    return Group(*lines)


@contextmanager
def terminal_display(tracker: Progress, enabled: bool) -> Iterator[None]:
    """Draw ``tracker`` on stderr while the block runs (if ``enabled``); erase it after."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.live import Live

    from moodump.logs import set_stream

    console = Console(stderr=True)
    live = Live(
        ProgressView(tracker),
        console=console,
        refresh_per_second=REFRESH_PER_SECOND,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=True,
    )
    live.start()
    old = set_stream(sys.stderr)  # rich's proxy: log lines print above the display
    try:
        yield
    finally:
        if old is not None:
            set_stream(old)
        live.stop()


@contextmanager
def watch(quiet: bool, tracker: Progress | None = None) -> Iterator[Progress]:
    """The progress of one command: the log ticker always, the display when wanted."""
    tracker = tracker or Progress()
    with (
        log_progress(tracker, progress_interval()),
        terminal_display(tracker, display_wanted(quiet)),
    ):
        yield tracker


def count_bytes(tracker: Progress) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback (bytes so far, bytes in all) feeding
    ``tracker``: the old .sql.gz restore reports that way."""
    last: list[int] = []

    def on(done: int, total: int) -> None:
        if not last:
            tracker.phase("replay", bytes_total=total)
            last.append(0)
        tracker.add(0, done - last[0])
        last[0] = done

    return on


__all__ = [
    "REFRESH_PER_SECOND",
    "ProgressView",
    "count_bytes",
    "display_wanted",
    "progress_interval",
    "render",
    "terminal_display",
    "watch",
]
