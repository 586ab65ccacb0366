"""Object keys, the storage contract's names for objects (pure): what a valid key is,
prefixes, joining, and keys in URLs. :mod:`moodump.storage.base` re-exports them."""

from __future__ import annotations

import re

from moodump.errors import ConfigError

#: Temporary objects (an upload in progress) start with this; keys may not.
TEMP_PREFIX = ".moodump-tmp-"


def check_key(key: str) -> str:
    """Return ``key`` when it is a valid object key, else raise ConfigError.

    Valid: non-empty ``/``-separated segments, none empty, ``.`` or ``..``, none starting
    with :data:`TEMP_PREFIX`, no backslash, NUL, CR or LF (FTP commands end at a line
    break), not absolute.
    """
    problem = _key_problem(key)
    if problem:
        raise ConfigError(
            f"{key!r} is not a valid storage key: {problem}",
            hint="keys are relative paths like NAME/data/file.tsv.gz",
        )
    return key


def check_prefix(prefix: str) -> str:
    """A key prefix (a "directory"): "" for the whole root, else a valid key.

    A trailing ``/`` is accepted and dropped.
    """
    stripped = prefix[:-1] if prefix.endswith("/") else prefix
    return check_key(stripped) if stripped else ""


def join_key(*parts: str) -> str:
    """Join key segments, skipping empty ones."""
    return "/".join(p for p in parts if p)


_URL_RESERVED = re.compile(r"[%#?\x00-\x1f\x7f]")


def quote_url_path(path: str) -> str:
    """``path`` for the path part of a URL that :func:`urllib.parse.unquote` gives back.

    Only what a URL parser would cut, drop or decode is escaped (``%``, ``#``, ``?`` and
    control characters such as TAB, as ``%XX``); everything else, spaces and non-ASCII
    letters included, stays readable.
    """
    return _URL_RESERVED.sub(
        lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), path
    )


def _key_problem(key: str) -> str:
    if not isinstance(key, str) or not key:
        return "it is empty"
    if key.startswith("/"):
        return "it is absolute"
    for bad, what in (("\\", "a backslash"), ("\0", "NUL"), ("\n", "a line break"), ("\r", "CR")):
        if bad in key:
            return f"it contains {what}"
    for segment in key.split("/"):
        if not segment:
            return "it has an empty segment"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
        if segment.startswith(TEMP_PREFIX):
            return f"segments starting with {TEMP_PREFIX!r} are reserved"
    return ""
