"""Deliver finished events (start, success, failure, verify, warning) to people.

Formats (``Notifier(format=...)``):

``generic`` (alias ``webhook``)
    The old backup-container's generic webhook, byte for byte: an HTTP POST, body
    ``application/x-www-form-urlencoded`` with ``projectFriendlyName``, ``projectName``,
    ``statusCode`` (INFO|WARN|ERROR) and ``message``, encoded like ``curl --data-urlencode``
    (``%20`` for spaces). Existing receivers (the Rocket.Chat integration script) keep working.
``json``
    The same four fields as a JSON object (the old ``webhook-template.json``).
``rocketchat``
    What the old Rocket.Chat integration script produced, posted straight to an incoming
    webhook (no script needed): ``text`` = "Status message received from [name](console
    link):" (bold and "Error ..." for errors) and one attachment with the message,
    coloured ``#36A64F`` or ``#A63636``.
``teams``
    A Microsoft Teams Adaptive Card in a ``message`` envelope (Workflows / Power Automate
    "post to a channel when a webhook request is received").
``teams-legacy``
    A Teams MessageCard (the retired Office 365 connector format).
``slack``
    A Slack incoming-webhook payload: fallback ``text`` plus one coloured attachment with
    blocks.

PagerDuty (``pagerduty_key``) gets ERROR events only, as the old container sent them:
``{"service_key", "event_type": "trigger", "description"}`` to ``pagerduty_url``.

Delivery never raises and never touches the disk: payloads are built in memory and sent
with :mod:`urllib.request`, so a failure alert still goes out when the backup volume is
full. Each target gets ``1 + retries`` attempts at most, each bounded by ``timeout_s``;
failures are logged with the URL's path and query masked (webhook URLs carry their
token in the path) and returned as :class:`DeliveryResult` values. A failed notification
never changes the outcome of the backup that caused it.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from moodump import __version__
from moodump.errors import ConfigError
from moodump.logs import redact, register_secret

log = logging.getLogger(__name__)

KINDS = ("start", "success", "failure", "verify", "warning")
STATUSES = ("INFO", "WARN", "ERROR")
_DEFAULT_STATUS = {
    "start": "INFO",
    "success": "INFO",
    "failure": "ERROR",
    "verify": "INFO",
    "warning": "WARN",
}
FORMATS = ("generic", "json", "rocketchat", "teams", "teams-legacy", "slack")
_ALIASES = {"webhook": "generic"}

COLOR_OK = "#36A64F"
COLOR_ERROR = "#A63636"
COLOR_WARN = "#D9A600"  # Slack/Teams only; the old Rocket.Chat script knows two colours

# The link the old Rocket.Chat script put behind the project name ({project} = ENVIRONMENT_NAME).
DEFAULT_CONSOLE_URL = (
    "https://console.apps.silver.devops.gov.bc.ca/k8s/cluster/projects/{project}/workloads"
)
# The PagerDuty Events API v1 endpoint the old container meant to default to.
DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/generic/2010-04-15/create_event.json"
PAGERDUTY_MAX_DESCRIPTION = 1024

_USER_AGENT = f"moodump/{__version__}"
_RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Event:
    """Something that happened to one database's backup, ready to be told to people.

    ``status`` defaults from ``kind`` (failure -> ERROR, warning -> WARN, else INFO); set it
    explicitly for a failed verification (``Event("verify", status="ERROR", ...)``).
    ``facts`` are shown as name/value pairs (file paths, sizes, durations, rows); values
    are shown with ``str()``, so pass them already formatted when units matter.
    """

    kind: str
    message: str
    status: str = ""
    database: str = ""  # backup.conf spec, e.g. "mysql/moodle"
    facts: Mapping[str, Any] = field(default_factory=dict)
    project_name: str = ""  # ENVIRONMENT_NAME
    project_friendly_name: str = ""  # ENVIRONMENT_FRIENDLY_NAME

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown event kind {self.kind!r}", hint=f"use one of {KINDS}")
        if not self.status:
            object.__setattr__(self, "status", _DEFAULT_STATUS[self.kind])
        if self.status not in STATUSES:
            raise ConfigError(
                f"unknown event status {self.status!r}", hint=f"use one of {STATUSES}"
            )

    @property
    def is_error(self) -> bool:
        return self.status == "ERROR"

    @property
    def title(self) -> str:
        """One line: ``moodump: backup failed for mysql/moodle``."""
        what = {
            "start": "backup run started",
            "success": "backup succeeded",
            "failure": "backup failed",
            "verify": "verification failed" if self.is_error else "verification passed",
            "warning": "warning",
        }[self.kind]
        return f"moodump: {what}" + (f" for {self.database}" if self.database else "")

    def text(self) -> str:
        """The message followed by one ``name: value`` line per fact (the old message body)."""
        lines = [self.message.rstrip("\n")]
        lines += [f"{name}: {_fact_text(value)}" for name, value in self.facts.items()]
        return "\n".join(line for line in lines if line)


def _fact_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of delivering one event to one target (URLs are masked)."""

    target: str  # "webhook" | "pagerduty"
    format: str
    url: str
    ok: bool
    attempts: int
    status: int | None = None  # last HTTP status, None when no response came
    error: str = ""


@dataclass(frozen=True)
class Request:
    """An HTTP request ready to send: built in memory, no I/O."""

    body: bytes
    content_type: str


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/X?x=1`` -> ``https://hooks.slack.com/***``.

    Only scheme, host and port survive; user info, path and query are dropped, because
    webhook tokens live there.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme or not host:
        return "<invalid URL>"
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{host}{port}" + ("/***" if rest.strip("/") else rest)


def build_payload(event: Event, format: str, *, console_url: str = DEFAULT_CONSOLE_URL) -> Request:
    """The request body for ``format`` (pure; see the module docstring for each format)."""
    format = _ALIASES.get(format, format)
    if format == "generic":
        fields = _old_fields(event)
        # curl --data-urlencode escapes everything but A-Z a-z 0-9 - . _ ~ (space -> %20)
        body = urlencode(fields, quote_via=quote, safe="")
        return Request(body.encode("utf-8"), "application/x-www-form-urlencoded")
    if format == "json":
        return _json(_old_fields(event))
    if format == "rocketchat":
        return _json(_rocketchat(event, console_url))
    if format == "teams":
        return _json(_teams_adaptive(event))
    if format == "teams-legacy":
        return _json(_teams_messagecard(event))
    if format == "slack":
        return _json(_slack(event))
    raise ConfigError(f"unknown notification format {format!r}", hint=f"use one of {FORMATS}")


def build_pagerduty(event: Event, service_key: str) -> Request:
    """The old container's PagerDuty trigger (Events API v1)."""
    description = event.text()
    if len(description) > PAGERDUTY_MAX_DESCRIPTION:
        description = description[: PAGERDUTY_MAX_DESCRIPTION - 3] + "..."
    return _json({"service_key": service_key, "event_type": "trigger", "description": description})


def _json(data: Mapping[str, Any]) -> Request:
    return Request(json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json")


def _old_fields(event: Event) -> dict[str, str]:
    return {
        "projectFriendlyName": event.project_friendly_name,
        "projectName": event.project_name,
        "statusCode": event.status,
        "message": event.text(),
    }


def _rocketchat(event: Event, console_url: str) -> dict[str, Any]:
    # Mirrors scripts/ocp4/rocket.chat.integration.js of the old container.
    friendly = event.project_friendly_name or event.project_name
    header = "Error" if event.is_error else "Status"
    if event.project_name:
        if console_url:
            link = console_url.format(project=event.project_name)
            header += f" message received from [{friendly}]({link}):"
        else:
            header += f" message received from {friendly}:"
    else:
        header += " message received:"
    if event.is_error:
        header = f"**{header}**"
    color = COLOR_ERROR if event.is_error else COLOR_OK
    return {"text": header, "attachments": [{"text": event.text(), "color": color}]}


def _color(event: Event) -> str:
    if event.is_error:
        return COLOR_ERROR
    return COLOR_WARN if event.status == "WARN" else COLOR_OK


def _context_facts(event: Event) -> list[tuple[str, str]]:
    facts = [("Status", event.status), ("Event", event.kind)]
    if event.database:
        facts.append(("Database", event.database))
    project = event.project_friendly_name or event.project_name
    if project:
        facts.append(("Project", project))
    facts += [(str(k), _fact_text(v)) for k, v in event.facts.items()]
    return facts


def _teams_adaptive(event: Event) -> dict[str, Any]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "TextBlock",
                "text": event.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": "Attention" if event.is_error else "Good",
            },
            {"type": "TextBlock", "text": event.message, "wrap": True},
            {
                "type": "FactSet",
                "facts": [{"title": k, "value": v} for k, v in _context_facts(event)],
            },
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _teams_messagecard(event: Event) -> dict[str, Any]:
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": event.title,
        "themeColor": _color(event).lstrip("#"),
        "title": event.title,
        "sections": [
            {
                "text": event.message,
                "facts": [{"name": k, "value": v} for k, v in _context_facts(event)],
            }
        ],
    }


def _slack(event: Event) -> dict[str, Any]:
    fields = [
        {"type": "mrkdwn", "text": f"*{k}*\n{_slack_escape(v)}"[:2000]}
        for k, v in _context_facts(event)
    ][:10]  # Slack allows 10 fields per section, 2000 characters each
    return {
        "text": f"{event.title}: {event.message}",
        "attachments": [
            {
                "color": _color(event),
                "blocks": [
                    {
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": f"*{_slack_escape(event.title)}*"},
                    },
                    {
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": _slack_escape(event.message)[:3000]},
                    },
                    {"type": "section", "fields": fields},
                ],
            }
        ],
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Notifier:
    """Sends events to the configured webhook and, for errors, to PagerDuty.

    Built from plain settings (the config layer maps WEBHOOK_URL, PGDUTY_SVC_KEY,
    PGDUTY_URL, ENVIRONMENT_NAME and ENVIRONMENT_FRIENDLY_NAME onto these). With no URL
    and no PagerDuty key it sends nothing. ``project_name``/``project_friendly_name``
    fill in events that leave theirs empty. ``sleep`` is injectable so tests need no
    wall-clock waits between retries.
    """

    def __init__(
        self,
        url: str = "",
        format: str = "generic",
        *,
        pagerduty_key: str = "",
        pagerduty_url: str = "",
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 2.0,
        project_name: str = "",
        project_friendly_name: str = "",
        console_url: str = DEFAULT_CONSOLE_URL,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        format = _ALIASES.get(format, format)
        if format not in FORMATS:
            raise ConfigError(
                f"unknown notification format {format!r}", hint=f"use one of {', '.join(FORMATS)}"
            )
        if retries < 0 or timeout_s <= 0:
            raise ConfigError(
                "notification retries must be >= 0 and the timeout > 0",
                hint="fix the notification settings",
            )
        for value in (url, pagerduty_url):
            if value and urlsplit(value).scheme not in ("http", "https"):
                raise ConfigError(
                    f"notification URL {mask_url(value)} is not an http(s) URL",
                    hint="set WEBHOOK_URL / PGDUTY_URL to an http:// or https:// address",
                )
        self.url = url
        self.format = format
        self.pagerduty_key = pagerduty_key
        self.pagerduty_url = pagerduty_url or (DEFAULT_PAGERDUTY_URL if pagerduty_key else "")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.project_name = project_name
        self.project_friendly_name = project_friendly_name
        self.console_url = console_url
        self._sleep = sleep
        for secret in (pagerduty_key, *_url_secrets(url), *_url_secrets(self.pagerduty_url)):
            register_secret(secret)

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.pagerduty_key)

    def send(self, event: Event) -> list[DeliveryResult]:
        """Deliver ``event`` to every configured target. Never raises.

        Returns one result per target tried (none when nothing is configured).
        """
        results: list[DeliveryResult] = []
        try:
            event = self._with_project(event)
            if self.url:
                results.append(self._deliver("webhook", self.format, self.url, event))
            if self.pagerduty_key and event.is_error:
                results.append(self._deliver("pagerduty", "pagerduty", self.pagerduty_url, event))
        except Exception as exc:  # never let a notification break a run
            error = redact(repr(exc))
            log.error("notification failed unexpectedly: %s", error)
            results.append(
                DeliveryResult("webhook", self.format, mask_url(self.url), False, 0, None, error)
            )
        return results

    def _with_project(self, event: Event) -> Event:
        if event.project_name or event.project_friendly_name:
            return event
        if not (self.project_name or self.project_friendly_name):
            return event
        return replace(
            event, project_name=self.project_name, project_friendly_name=self.project_friendly_name
        )

    def _deliver(self, target: str, format: str, url: str, event: Event) -> DeliveryResult:
        masked = mask_url(url)
        try:
            if target == "pagerduty":
                request = build_pagerduty(event, self.pagerduty_key)
            else:
                request = build_payload(event, format, console_url=self.console_url)
        except Exception as exc:
            log.error("cannot build the %s notification: %s", format, redact(str(exc)))
            return DeliveryResult(target, format, masked, False, 0, None, redact(str(exc)))
        attempts = 0
        status: int | None = None
        error = ""
        for attempt in range(1 + self.retries):
            if attempt:
                self._sleep(self.backoff_s * (2 ** (attempt - 1)))
            attempts += 1
            status, error, retryable = self._post(url, request)
            if not error:
                log.debug("%s notification delivered to %s (HTTP %s)", event.kind, masked, status)
                return DeliveryResult(target, format, masked, True, attempts, status)
            if not retryable:
                break
        log.warning(
            "%s notification to %s (%s) failed after %d attempt(s): %s",
            event.kind,
            masked,
            format,
            attempts,
            error,
            extra={"notify_target": target, "notify_status": status},
        )
        return DeliveryResult(target, format, masked, False, attempts, status, error)

    def _post(self, url: str, request: Request) -> tuple[int | None, str, bool]:
        """One attempt: (HTTP status, error text or "", whether a retry may help)."""
        req = urllib.request.Request(
            url,
            data=request.body,
            method="POST",
            headers={"Content-Type": request.content_type, "User-Agent": _USER_AGENT},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read(65536)
                return int(resp.status), "", False
        except urllib.error.HTTPError as exc:
            try:
                detail = exc.read(300).decode("utf-8", "replace").strip()
            except Exception:
                detail = ""
            finally:
                exc.close()
            text = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
            return exc.code, redact(text), exc.code in _RETRYABLE_HTTP
        except urllib.error.URLError as exc:
            return None, redact(f"cannot reach the receiver: {exc.reason}"), True
        except TimeoutError:
            return None, f"no answer within {self.timeout_s:g} s", True
        except (OSError, http.client.HTTPException) as exc:  # reset mid-response, bad reply
            return None, redact(f"connection failed: {exc!r}"), True


def _url_secrets(url: str) -> list[str]:
    """The parts of a webhook URL that must never be logged: path+query and user info."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    out = [url]
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    # a token-bearing path is long; masking "/hook" everywhere would only garble logs
    if len(rest.strip("/")) >= 8:
        out.append(rest)
    if parts.password:
        out.append(parts.password)
    return out


__all__ = [
    "COLOR_ERROR",
    "COLOR_OK",
    "DEFAULT_CONSOLE_URL",
    "DEFAULT_PAGERDUTY_URL",
    "FORMATS",
    "KINDS",
    "STATUSES",
    "DeliveryResult",
    "Event",
    "Notifier",
    "Request",
    "build_pagerduty",
    "build_payload",
    "mask_url",
]
