"""Notifications, delivered to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from moodump.errors import ConfigError
from moodump.notify import (
    COLOR_ERROR,
    COLOR_OK,
    DEFAULT_CONSOLE_URL,
    Event,
    Notifier,
    build_payload,
    mask_url,
)

TOKEN = "T0KEN-9f8e7d6c5b4a"  # webhook URLs carry their secret in the path


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    base: str
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # a proxy from the environment must not carry 127.0.0.1 traffic elsewhere
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Records every request; paths starting /500 or /404 answer with that status."""
    got: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            got.append(Received("POST", self.path, dict(self.headers.items()), body))
            status = 200
            if self.path.startswith("/500"):
                status = 500
            elif self.path.startswith("/404"):
                status = 404
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"nope")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}", got)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


FAILURE = Event(
    "failure",
    "Failed to backup mysql/moodle: lost connection (2013) while reading mdl_log",
    database="mysql/moodle",
    facts={"backup": "/backups/daily/2026-01-31/mysql-moodle_2026-01-31_01-00-00", "rows": 1200},
    project_name="abc123-prod",
    project_friendly_name="Moodle Prod",
)
SUCCESS = Event(
    "success",
    "Successfully backed up mysql/moodle.",
    database="mysql/moodle",
    facts={"size": "1.2 GiB", "duration": "93.4 s", "verified": True},
    project_name="abc123-prod",
    project_friendly_name="Moodle Prod",
)


def test_generic_webhook_sends_the_old_form_fields(receiver: Receiver) -> None:
    results = Notifier(receiver.url(f"/hook/{TOKEN}"), "generic").send(SUCCESS)
    assert [(r.ok, r.attempts, r.status) for r in results] == [(True, 1, 200)]
    (req,) = receiver.requests
    assert req.path == f"/hook/{TOKEN}"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.form() == {
        "projectFriendlyName": ["Moodle Prod"],
        "projectName": ["abc123-prod"],
        "statusCode": ["INFO"],
        "message": [
            "Successfully backed up mysql/moodle.\nsize: 1.2 GiB\nduration: 93.4 s\nverified: yes"
        ],
    }
    # encoded like curl --data-urlencode: %20 for spaces, %0A for new lines, no "+"
    body = req.body.decode()
    assert body.startswith("projectFriendlyName=Moodle%20Prod&projectName=abc123-prod&")
    assert "statusCode=INFO&message=Successfully%20backed%20up%20mysql%2Fmoodle.%0Asize" in body
    assert "+" not in body


def test_webhook_status_codes_follow_the_event(receiver: Receiver) -> None:
    notifier = Notifier(receiver.url("/hook"), "webhook")  # old name of "generic"
    assert notifier.format == "generic"
    notifier.send(FAILURE)
    notifier.send(Event("warning", "backup shrank by 60%", database="mysql/moodle"))
    notifier.send(Event("verify", "verify failed: 3 tables differ", status="ERROR"))
    codes = [r.form()["statusCode"] for r in receiver.requests]
    assert codes == [["ERROR"], ["WARN"], ["ERROR"]]


def test_notifier_fills_in_project_names(receiver: Receiver) -> None:
    notifier = Notifier(receiver.url("/h"), project_name="ns-prod", project_friendly_name="Prod")
    notifier.send(Event("start", "Starting backup run"))
    form = receiver.requests[0].form()
    assert form["projectName"] == ["ns-prod"]
    assert form["projectFriendlyName"] == ["Prod"]


def test_json_format(receiver: Receiver) -> None:
    Notifier(receiver.url("/j"), "json").send(FAILURE)
    (req,) = receiver.requests
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {
        "projectFriendlyName": "Moodle Prod",
        "projectName": "abc123-prod",
        "statusCode": "ERROR",
        "message": FAILURE.text(),
    }


def test_rocketchat_payload_matches_the_old_integration_script(receiver: Receiver) -> None:
    notifier = Notifier(receiver.url("/hooks/abc/def"), "rocketchat")
    notifier.send(SUCCESS)
    notifier.send(FAILURE)
    link = DEFAULT_CONSOLE_URL.format(project="abc123-prod")
    ok, err = (r.json() for r in receiver.requests)
    assert ok == {
        "text": f"Status message received from [Moodle Prod]({link}):",
        "attachments": [{"text": SUCCESS.text(), "color": COLOR_OK}],
    }
    assert err == {
        "text": f"**Error message received from [Moodle Prod]({link}):**",
        "attachments": [{"text": FAILURE.text(), "color": COLOR_ERROR}],
    }
    assert COLOR_OK == "#36A64F" and COLOR_ERROR == "#A63636"


def test_rocketchat_without_project_names() -> None:
    body = json.loads(build_payload(Event("start", "hi"), "rocketchat").body)
    assert body["text"] == "Status message received:"
    named = Event("start", "hi", project_name="ns")  # friendly name falls back to the name
    body = json.loads(build_payload(named, "rocketchat", console_url="").body)
    assert body["text"] == "Status message received from ns:"


def test_teams_adaptive_card(receiver: Receiver) -> None:
    Notifier(receiver.url("/teams"), "teams").send(FAILURE)
    payload = receiver.requests[0].json()
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, message, facts = card["body"]
    assert title["text"] == "moodump: backup failed for mysql/moodle"
    assert title["color"] == "Attention"
    assert message["text"] == FAILURE.message
    assert {"title": "Status", "value": "ERROR"} in facts["facts"]
    assert {"title": "rows", "value": "1200"} in facts["facts"]


def test_teams_legacy_messagecard() -> None:
    card = json.loads(build_payload(SUCCESS, "teams-legacy").body)
    assert card["@type"] == "MessageCard"
    assert card["themeColor"] == "36A64F"
    assert card["title"] == "moodump: backup succeeded for mysql/moodle"
    assert {"name": "verified", "value": "yes"} in card["sections"][0]["facts"]


def test_slack_payload(receiver: Receiver) -> None:
    Notifier(receiver.url("/services/T/B/X"), "slack").send(FAILURE)
    payload = receiver.requests[0].json()
    assert payload["text"].startswith("moodump: backup failed for mysql/moodle: Failed")
    (attachment,) = payload["attachments"]
    assert attachment["color"] == COLOR_ERROR
    header, message, fields = attachment["blocks"]
    assert header["text"] == {
        "type": "mrkdwn",
        "text": "*moodump: backup failed for mysql/moodle*",
    }
    assert message["text"]["text"] == FAILURE.message
    assert {"type": "mrkdwn", "text": "*Database*\nmysql/moodle"} in fields["fields"]


def test_pagerduty_gets_errors_only(receiver: Receiver) -> None:
    notifier = Notifier(
        receiver.url("/hook"),
        pagerduty_key="svc-key-123",
        pagerduty_url=receiver.url("/pd/create_event.json"),
    )
    assert [r.target for r in notifier.send(SUCCESS)] == ["webhook"]
    results = notifier.send(FAILURE)
    assert [(r.target, r.ok) for r in results] == [("webhook", True), ("pagerduty", True)]
    pd = [r for r in receiver.requests if r.path.startswith("/pd/")]
    assert len(pd) == 1
    assert pd[0].headers["Content-Type"] == "application/json"
    assert pd[0].json() == {
        "service_key": "svc-key-123",
        "event_type": "trigger",
        "description": FAILURE.text(),
    }


def test_pagerduty_alone(receiver: Receiver) -> None:
    notifier = Notifier(pagerduty_key="k", pagerduty_url=receiver.url("/pd"))
    assert notifier.send(SUCCESS) == []
    assert [r.ok for r in notifier.send(FAILURE)] == [True]


def test_nothing_configured_sends_nothing() -> None:
    notifier = Notifier()
    assert not notifier.enabled
    assert notifier.send(FAILURE) == []


def test_server_error_is_retried_then_reported_without_raising(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    notifier = Notifier(receiver.url(f"/500/{TOKEN}"), retries=2, backoff_s=1.5, sleep=sleeps)
    with caplog.at_level(logging.DEBUG):
        results = notifier.send(FAILURE)
    (result,) = results
    assert not result.ok
    assert result.attempts == 3
    assert result.status == 500
    assert "HTTP 500" in result.error
    assert sleeps.calls == [1.5, 3.0]  # bounded, exponential, never on the wall clock
    assert len(receiver.requests) == 3
    assert result.url == f"{receiver.base}/***"
    assert "failed after 3 attempt(s)" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in result.error + result.url


def test_client_error_is_not_retried(receiver: Receiver) -> None:
    sleeps = Sleeps()
    (result,) = Notifier(receiver.url("/404"), retries=3, sleep=sleeps).send(SUCCESS)
    assert (result.ok, result.attempts, result.status) == (False, 1, 404)
    assert sleeps.calls == []


def test_receiver_that_never_answers_is_bounded() -> None:
    # accepts TCP connections (the kernel's backlog) but never reads or answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook/{TOKEN}"
    sleeps = Sleeps()
    try:
        started = time.monotonic()
        results = Notifier(url, timeout_s=0.2, retries=1, sleep=sleeps).send(FAILURE)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    (result,) = results
    assert not result.ok and result.attempts == 2 and result.status is None
    assert sleeps.calls == [2.0]
    assert elapsed < 5  # 2 attempts x 0.2 s, plus slack for a busy machine


def test_refused_connection_is_reported() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    (result,) = Notifier(f"http://127.0.0.1:{port}/x", retries=0).send(FAILURE)
    assert not result.ok and result.attempts == 1
    assert "cannot reach the receiver" in result.error


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="format"):
        Notifier("http://127.0.0.1/x", "carrier-pigeon")
    with pytest.raises(ConfigError, match="not an http"):
        Notifier("ftp://127.0.0.1/x")
    with pytest.raises(ConfigError):
        Event("exploded", "x")
    with pytest.raises(ConfigError):
        Event("start", "x", status="FINE")


def test_event_defaults() -> None:
    assert Event("failure", "x").status == "ERROR"
    assert Event("warning", "x").status == "WARN"
    assert Event("verify", "x").title == "moodump: verification passed"
    assert Event("verify", "x", status="ERROR").title == "moodump: verification failed"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.slack.com/services/T0/B0/XyZ", "https://hooks.slack.com/***"),
        ("https://chat.example.org:8443/hooks/id/tok?x=1", "https://chat.example.org:8443/***"),
        ("http://user:pw@127.0.0.1:9/", "http://127.0.0.1:9/"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9"),
        ("not a url", "<invalid URL>"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


DISK_FULL_CHILD = textwrap.dedent(
    """
    import errno, os, resource, signal, sys, tempfile
    from moodump.notify import Event, Notifier

    # make every file write fail, the way a full backup volume does
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    try:
        with open(os.path.join(sys.argv[2], "probe"), "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
        sys.exit(3)  # the disk was not "full": the test would prove nothing
    except OSError as exc:
        reason = os.strerror(exc.errno)
    try:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x")
            fh.flush()
        sys.exit(4)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC

    results = Notifier(sys.argv[1], retries=0, timeout_s=5).send(
        Event("failure", f"backup failed: {reason}; /dev/full: No space left on device")
    )
    sys.exit(0 if results and all(r.ok for r in results) else 5)
    """
)


def test_failure_alert_goes_out_when_no_file_can_be_written(
    receiver: Receiver, tmp_path: Any
) -> None:
    env = dict(os.environ, TMPDIR="/nonexistent-moodump-test", PYTHONDONTWRITEBYTECODE="1")
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    with open("/dev/full", "w") as full:  # the child cannot even write to stdout/stderr
        proc = subprocess.run(
            [sys.executable, "-c", DISK_FULL_CHILD, receiver.url("/hook"), str(tmp_path)],
            stdout=full,
            stderr=full,
            env=env,
            timeout=60,
        )
    assert proc.returncode == 0
    (req,) = receiver.requests
    message = req.form()["message"][0]
    assert "No space left on device" in message
    assert req.form()["statusCode"] == ["ERROR"]
