"""Rendering helpers shared by commands: progress line on a terminal, sizes, JSON."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(s: float) -> str:
    s = int(max(0, s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class ProgressLine:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None, interval: float = 0.25) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.interval = interval
        self._last = 0.0
        self._width = 0

    def update(
        self, done: int, total: int, elapsed: float, label: str, force: bool = False
    ) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        rate = done / elapsed if elapsed > 0 else 0.0
        if total > 0:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 24)
            eta = human_duration((total - done) / rate) if rate > 0 and done < total else "0:00"
            text = (
                f"[{bar:<24}] {frac * 100:5.1f}% {done:,} rows {rate:,.0f} rows/s ETA {eta} {label}"
            )
        else:
            text = f"{done:,} rows {rate:,.0f} rows/s {label}"
        self._show(text)

    def status(self, text: str) -> None:
        """Show ``text`` as it is (e.g. which table a verify reads back)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        self._show(text)

    def _show(self, text: str) -> None:
        text = text[:150]
        pad = max(0, self._width - len(text))
        self._width = len(text)
        click.echo("\r" + text + " " * pad, err=True, nl=False)

    def finish(self) -> None:
        if self.enabled and self._width:
            click.echo("\r" + " " * self._width + "\r", err=True, nl=False)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
