"""Parsing sizes like ``64M`` or ``2G`` (pure)."""

from __future__ import annotations

import re

from moodump.errors import ConfigError

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int) -> int:
    """Bytes from ``"64M"``, ``"1.5G"``, ``"4096"`` (binary units, case-insensitive)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTB]?)(?:I?B)?\s*", text.upper())
    if not m:
        raise ConfigError(f"invalid size {text!r}", hint="use a number with K, M, G or T, e.g. 64M")
    return int(float(m.group(1)) * _UNITS[m.group(2)])
