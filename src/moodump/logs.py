"""Logging setup: readable lines or JSON lines, and redaction of secrets.

moodump's own modules log through ``logging.getLogger("moodump.<module>")`` and never
configure handlers; :func:`setup_logging` (called once by the CLI) does.

Redaction happens in :class:`RedactingFilter`, attached to the handler that
:func:`setup_logging` installs, so it covers every logger that reaches that handler
(moodump's, pyftpdlib's, urllib's), and the formatters redact their final output again.
Three kinds of text are masked:

- values registered with :func:`register_secret` (passwords, webhook URLs, PagerDuty
  keys), also in their percent-encoded form, wherever they appear;
- the password part of ``scheme://user:password@host`` URLs;
- values of credential-like query parameters (``?token=``, ``&key=``...) and of
  ``NAME_PASSWORD=value``-style assignments.

A secret registered once stays registered for the life of the process: logs written
later (a failure two hours into a run) must still not show it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import datetime, timezone
from typing import IO, Any
from urllib.parse import quote

from moodump.errors import ConfigError

MASK = "***"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None

# scheme://user:password@  ->  scheme://user:***@
_URL_USERINFO = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)")
# ?token=... / &access_token=... / &sig=...
_QUERY_SECRET = re.compile(
    r"(?P<pre>[?&;](?:[A-Za-z0-9_-]*(?:token|secret|password|passwd|pwd|signature|apikey|api_key"
    r"|key|sig|auth|code))=)[^&\s#\"']+",
    re.IGNORECASE,
)
# FTP_PASSWORD=..., MYSQL_PWD=..., PGDUTY_SVC_KEY=..., password: ...; not the server's
# "Access denied for user 'u'@'h' (using password: YES)", which only says one was sent
_ASSIGNMENT_SECRET = re.compile(
    r"(?P<pre>\b[A-Za-z0-9_]*(?:PASSWORD|PASSWD|PWD|SECRET|TOKEN|SVC_KEY|API_KEY)\s*[=:]\s*)"
    r"(?!\*\*\*)(?!(?<=\(using password: )(?:YES|NO)\))[^\s,;\"']+",
    re.IGNORECASE,
)

_HANDLER_MARK = "_moodump_handler"

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its percent-encoded form) in every log line from now on.

    Empty values are ignored. Short values are masked too, even if that also masks an
    innocent word: a leaked password is worse than an odd-looking log line.
    """
    if not value:
        return
    global _secret_pattern
    with _secrets_lock:
        before = len(_secrets)
        _secrets.add(value)
        encoded = quote(value, safe="")
        if encoded != value:
            _secrets.add(encoded)
        if len(_secrets) != before:
            ordered = sorted(_secrets, key=len, reverse=True)  # longest first
            _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secret_pattern
    with _secrets_lock:
        _secrets.clear()
        _secret_pattern = None


def redact(text: str) -> str:
    """``text`` with registered secrets, URL passwords and credential parameters masked."""
    if not text:
        return text
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _URL_USERINFO.sub(lambda m: m.group("pre") + MASK, text)
    text = _QUERY_SECRET.sub(lambda m: m.group("pre") + MASK, text)
    return _ASSIGNMENT_SECRET.sub(lambda m: m.group("pre") + MASK, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with ``extra=`` (not the standard LogRecord ones)."""
    return {
        k: v
        for k, v in record.__dict__.items()
        if k not in _STANDARD_ATTRS and not k.startswith("_")
    }


class RedactingFilter(logging.Filter):
    """Rewrite a record in place so that no secret survives in it.

    The message is rendered (``msg % args``) and redacted, the traceback is formatted and
    redacted into ``exc_text`` (formatters reuse it), and string ``extra`` fields are
    redacted. Attach it to a handler: handler filters see records from every logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in extra_fields(record).items():
            setattr(record, key, _redact_value(value))
        return True


class TextFormatter(logging.Formatter):
    """``2026-01-31 01:00:02 INFO    moodump.dump: message key=value ...`` (local time)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = extra_fields(record)
        if extras:
            tail = " ".join(f"{k}={_text_value(v)}" for k, v in extras.items())
            head, sep, rest = line.partition("\n")  # keep a traceback below the first line
            line = f"{head} {tail}{sep}{rest}"
        return redact(line)


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC), level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        out: dict[str, Any] = {
            "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in extra_fields(record).items():
            out.setdefault(key, _redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = redact(record.exc_text)
        if record.stack_info:
            out["stack"] = redact(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def parse_level(level: str | int) -> int:
    """``"debug"``/``"INFO"``/``20`` -> a logging level number; ConfigError otherwise."""
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        raise ConfigError(
            f"unknown log level {level!r}",
            hint="use one of: debug, info, warning, error, critical",
        )
    return value


def setup_logging(
    format: str = "text",
    level: str | int = "INFO",
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Install moodump's one log handler on the root logger and return it.

    ``format`` is ``"text"`` (readable lines) or ``"json"`` (one JSON object per line).
    ``stream`` defaults to ``sys.stderr`` (read at call time, so test runners that swap
    stderr get the output). Calling it again replaces the handler installed before;
    handlers installed by others (pytest's, for instance) are left alone.
    """
    if format == "text":
        formatter: logging.Formatter = TextFormatter()
    elif format == "json":
        formatter = JsonFormatter()
    else:
        raise ConfigError(f"unknown log format {format!r}", hint="use --log-format text or json")
    number = parse_level(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    handler.setLevel(number)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    reset_logging()
    root.addHandler(handler)
    root.setLevel(number)
    return handler


def set_stream(stream: IO[str]) -> IO[str] | None:
    """Point the handler :func:`setup_logging` installed at ``stream``; return the old one.

    The terminal progress display uses it so that log lines print above the display
    instead of through it. None (and nothing changed) when no handler is installed.
    """
    for handler in logging.getLogger().handlers:
        if getattr(handler, _HANDLER_MARK, False) and isinstance(handler, logging.StreamHandler):
            return handler.setStream(stream)  # type: ignore[no-any-return]
    return None


def reset_logging() -> None:
    """Remove the handler :func:`setup_logging` installed (if any)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()


__all__ = [
    "MASK",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "clear_secrets",
    "extra_fields",
    "parse_level",
    "redact",
    "register_secret",
    "reset_logging",
    "set_stream",
    "setup_logging",
]
