"""Progress a person can watch: a ``rich`` display on the terminal, and the log ticker.

Both read the one :class:`~moodump.progress.Progress` the library counts into. The
display draws on stderr, and only when stdout and stderr are both terminals and
neither ``-q`` nor ``--json`` was given: output piped to a file or a log collector
never gets control characters. While it is up, moodump's log lines are printed above
it (rich's stderr proxy) instead of through it. The log ticker
(``MOODUMP_PROGRESS_INTERVAL``) runs in every case; ``-q`` silences the display only.
"""

from __future__ import annotations

import io
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
    """The display of one snapshot::

    dump moodle: data  ━━━━━━━━━━╸━━━━━━━━━━━━━  42.0%  ETA 0:12
      1,234,567/2,938,000 rows · 310.2 MiB · 12/400 tables · 98,000 rows/s · 24.1 MiB/s
      worker 1: mdl_logstore_standard_log
      worker 2: mdl_question_attempt_step_data
    """
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    if not s.active:
        return Text("")
    where = s.phase + (f" / {s.step}" if s.step else "")
    frac = s.fraction
    if frac is None:
        bar = ProgressBar(total=None, width=24)  # pulses: no estimate to measure against
    else:
        bar = ProgressBar(total=100.0, completed=frac * 100, width=24)
    head = Table.grid(padding=(0, 2))
    head.add_row(
        Text(f"{s.operation} {s.database}: {where}", style="bold", overflow="ellipsis"),
        bar,
        f"{frac * 100:5.1f}%" if frac is not None else "",
        f"ETA {human_duration(s.eta_s)}",
        f"{human_duration(s.elapsed_s)} elapsed",
    )
    rows = f"{s.rows_done:,}" + (f"/{s.rows_total_est:,}" if s.rows_total_est else "")
    tables = f" · {s.tables_done}/{s.tables_total} tables" if s.tables_total else ""
    numbers = (
        f"  {rows} rows · {human_bytes(s.bytes_done)}{tables} · "
        f"{s.rate_rows_s:,.0f} rows/s · {human_bytes(s.rate_bytes_s)}/s"
    )
    lines: list[Any] = [head, Text(numbers, overflow="ellipsis", no_wrap=True)]
    for number, what in s.workers:
        line = Text(f"  worker {number}: {what or 'idle'}", overflow="ellipsis", no_wrap=True)
        if not what:
            line.stylize("dim")
        lines.append(line)
    return Group(*lines)


class ConsoleLines(io.TextIOBase):
    """A text stream that prints whole lines through a rich console, unwrapped: log lines
    written while the display is up appear above it, intact."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._part = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        from rich.text import Text

        *lines, self._part = (self._part + text).split("\n")
        for line in lines:
            self.console.print(Text(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        self.console.file.flush()


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
        redirect_stdout=True,  # what a command prints meanwhile goes above the display
        redirect_stderr=True,
    )
    live.start()
    old = set_stream(ConsoleLines(console))  # type: ignore[arg-type]
    tracker.on_phase = live.refresh  # a phase shorter than a refresh is still drawn
    try:
        yield
    finally:
        tracker.on_phase = None
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
