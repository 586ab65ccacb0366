"""Rendering helpers shared by commands: sizes, durations, JSON.

The progress display on a terminal is in :mod:`moodump.cli._progress`.
"""

from __future__ import annotations

import json
from typing import Any

import click

from moodump.progress import human_bytes, human_duration


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


__all__ = ["emit_json", "human_bytes", "human_duration"]
