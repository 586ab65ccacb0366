"""Logging: text and JSON lines, and no secret ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from moodump.errors import ConfigError
from moodump.logs import (
    clear_secrets,
    redact,
    register_secret,
    reset_logging,
    setup_logging,
)

PASSWORD = "Tr0ub4dor&3 x/y"  # space, slash and & test the percent-encoded form too


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    clear_secrets()
    yield
    reset_logging()
    clear_secrets()


def _emit_everything(logger: logging.Logger) -> None:
    """Every way a secret can sneak into a record."""
    logger.info("connecting with password %s", PASSWORD)
    logger.warning("plain text mention: " + PASSWORD)
    logger.error("url ftp://backup:%s@ftp.example.org/x", "Tr0ub4dor%263%20x%2Fy")
    logger.info("extra field", extra={"dsn": f"mysql://root:{PASSWORD}@db/moodle", "rows": 12})
    try:
        raise RuntimeError(f"login failed for {PASSWORD}")
    except RuntimeError:
        logger.exception("with traceback")
    logger.info("%s", {"nested": [PASSWORD]})


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_registered_password_never_appears(fmt: str) -> None:
    register_secret(PASSWORD)
    stream = io.StringIO()
    setup_logging(fmt, "DEBUG", stream)
    _emit_everything(logging.getLogger("moodump.test"))
    out = stream.getvalue()
    assert out.count("\n") >= 6
    assert PASSWORD not in out
    assert "Tr0ub4dor" not in out  # neither raw nor percent-encoded
    assert "***" in out


def test_json_lines_have_the_fields() -> None:
    stream = io.StringIO()
    setup_logging("json", "info", stream)
    log = logging.getLogger("moodump.dump")
    log.debug("hidden at info level")
    log.info("dumped %s", "mdl_user", extra={"rows": 42, "table": "mdl_user"})
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.error("boom", exc_info=True)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert first["level"] == "INFO"
    assert first["logger"] == "moodump.dump"
    assert first["message"] == "dumped mdl_user"
    assert first["rows"] == 42 and first["table"] == "mdl_user"
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert "ZeroDivisionError" in lines[1]["exception"]


def test_text_lines_are_readable() -> None:
    stream = io.StringIO()
    setup_logging("text", "INFO", stream)
    logging.getLogger("moodump.run").info("backup done", extra={"database": "mysql/moodle"})
    line = stream.getvalue().strip()
    assert " INFO    moodump.run: backup done database=mysql/moodle" in line
    assert not line.startswith("{")


def test_setup_replaces_its_own_handler_only() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        first, second = io.StringIO(), io.StringIO()
        setup_logging("text", "INFO", first)
        setup_logging("text", "INFO", second)
        logging.getLogger("moodump").info("once")
        assert first.getvalue() == ""
        assert second.getvalue().count("once") == 1
        assert foreign in root.handlers
    finally:
        root.removeHandler(foreign)


def test_third_party_loggers_are_redacted_too() -> None:
    register_secret("hunter2-secret")
    stream = io.StringIO()
    setup_logging("text", "DEBUG", stream)
    logging.getLogger("pyftpdlib").info("PASS hunter2-secret")
    assert "hunter2-secret" not in stream.getvalue()


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("ftps://user:pa55word@host:21/dir/", "pa55word"),
        ("https://hooks.example/x?token=abcdef123&x=1", "abcdef123"),
        ("https://x/y?sig=zzz999", "zzz999"),
        ("FTP_PASSWORD=s3cr3t given", "s3cr3t"),
        ("env MYSQL_PWD=topsecret", "topsecret"),
        ("PGDUTY_SVC_KEY: abcd1234", "abcd1234"),
    ],
)
def test_url_credentials_and_tokens_are_masked_without_registration(text: str, leak: str) -> None:
    masked = redact(text)
    assert leak not in masked
    assert "***" in masked


def test_redact_keeps_innocent_text() -> None:
    text = "dumped 12 tables of moodle in 3.2 s to /backups/daily/2026-01-31"
    assert redact(text) == text


def test_bad_format_and_level_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        setup_logging("xml")
    with pytest.raises(ConfigError, match="log level"):
        setup_logging("text", "loud")


def test_the_servers_access_denied_message_stays_readable() -> None:
    """MariaDB/MySQL's "(using password: YES)" names no password, only whether one was
    sent: the assignment rule masked it as one, "(using password: ***" (the closing
    parenthesis eaten), in logs, run reports and notifications. A registered secret and
    a real `password: value` are still masked."""
    for sent in ("YES", "NO"):
        text = f"Access denied for user 'moodle'@'10.0.0.7' (using password: {sent})"
        assert redact(text) == text
    assert redact("retry with password: YES)x") == "retry with password: ***"
    assert redact("PASSWORD: NO) given") == "PASSWORD: *** given"
    register_secret("YES")
    assert redact("(using password: YES)") == "(using password: ***)"
