"""Where and how to reach an S3 bucket: :class:`S3Settings`, the endpoint rule, and the
mapping from the key table's ``S3_*`` variables (pure apart from reading ``*_FILE``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moodump.config import Config, setting
from moodump.config.model import mask_userinfo, userinfo_needs_encoding
from moodump.errors import ConfigError
from moodump.storage.base import quote_url_path

_AWS_HOST = re.compile(r"(^|\.)amazonaws\.com(\.cn)?$")
_AWS_REGION = re.compile(r"^s3[.-](?!external)(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.")


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach the bucket.

    ``endpoint`` is ``http(s)://host[:port]`` (empty: AWS). ``path_style`` None means
    what the old container's ``mc`` did ("auto"): virtual-hosted addressing for
    ``*.amazonaws.com``, path style (``host/bucket/key``) for every other endpoint.
    ``ca_file`` is a PEM bundle for a private CA. ``prefix`` is prepended to every key.
    ``retries``/``backoff_s``/``max_backoff_s`` are moodump's retries of a whole
    operation; ``sdk_attempts`` are the AWS SDK's own attempts of one request (a failed
    part), with the SDK's backoff. ``prune`` (``S3_PRUNE_BACKUPS``) is for the caller:
    remote retention follows local retention.
    """

    bucket: str
    endpoint: str = ""
    prefix: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    region: str = ""
    path_style: bool | None = None
    ca_file: str | None = None
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 60.0
    create_bucket: bool = False
    retries: int = 3
    backoff_s: float = 5.0
    max_backoff_s: float = 300.0
    sdk_attempts: int = 3
    prune: bool = False

    def display(self) -> str:
        """``s3://bucket/prefix/`` plus the endpoint, without credentials.

        The URL part opens this prefix again: ``%``, ``#`` and ``?`` in the
        prefix are escaped (:func:`~moodump.storage.base.quote_url_path`).
        """
        prefix = quote_url_path(self.prefix.strip("/") + "/") if self.prefix.strip("/") else ""
        where = f"s3://{self.bucket}/{prefix}"
        return f"{where} at {self.endpoint}" if self.endpoint else where


def parse_endpoint(endpoint: str) -> tuple[str, str]:
    """``http(s)://host[:port][/]`` -> (scheme, host[:port]); ConfigError otherwise.

    The same rule as the ``mc alias set`` the old container ran: a scheme is required
    and there is no path (mc refuses ``minio:9000`` and ``http://minio:9000/x``).
    """
    hint = "set S3_ENDPOINT like https://minio.example.org:9000 (scheme, host, optional port)"
    text = endpoint.strip()
    if userinfo_needs_encoding(text):  # urllib would take the password for a port
        raise ConfigError(
            "S3_ENDPOINT has a user or password with an unencoded '/', '?' or '#' (and "
            "must hold no credentials)",
            hint="give them in S3_USER and S3_PASSWORD",
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"S3_ENDPOINT is not a valid URL: {exc}", hint=hint) from exc
    if port == 0:  # was taken as the scheme's default
        raise ConfigError("S3_ENDPOINT has port 0 (use 1-65535, or none)", hint=hint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "S3_ENDPOINT must start with http:// or https:// and name a host "
            f"(got {mask_userinfo(text)!r})",
            hint=hint,
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("S3_ENDPOINT must not have a path, ? or #", hint=hint)
    if parts.username or parts.password:
        raise ConfigError(
            "S3_ENDPOINT must not contain credentials",
            hint="give them in S3_USER and S3_PASSWORD",
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, f"{host}:{port}" if port else host


def s3_settings_from_env(
    env: Mapping[str, str], *, read_file: Callable[[str], str] | None = None
) -> S3Settings | None:
    """The S3 settings of the old container's variables, or None when ``S3_ENDPOINT`` is unset.

    Every variable is a row of the key table (``moodump.config.keys``: its parser,
    default and ``_FILE`` rule); this only maps the parsed values. Unchanged from the
    old container: ``S3_ENDPOINT`` (with scheme, as ``mc`` required), ``S3_USER``,
    ``S3_PASSWORD``, ``S3_BUCKET``, ``S3_PRUNE_BACKUPS``; new: ``S3_REGION`` (default:
    from an AWS endpoint's host name, else ``us-east-1`` like mc), ``S3_PATH_STYLE``
    (default auto), ``S3_CA_BUNDLE``, ``S3_PREFIX``, ``S3_CREATE_BUCKET`` (default false),
    ``S3_SESSION_TOKEN``. Pure apart from ``read_file`` (``*_FILE`` secrets).
    """
    return s3_settings(lambda name: setting(name, env, read_file=read_file))


def s3_settings_from_config(cfg: Config) -> S3Settings | None:
    """:func:`s3_settings_from_env` for an already loaded :class:`~moodump.config.Config`."""
    return s3_settings(cfg.value_of)


def s3_settings(value: Callable[[str], Any]) -> S3Settings | None:
    """Map the key table's S3 values (``value(ENV_NAME)``) to :class:`S3Settings`."""
    endpoint = str(value("S3_ENDPOINT")).strip()
    if not endpoint:
        return None
    _, host = parse_endpoint(endpoint)
    bucket = str(value("S3_BUCKET")).strip()
    if not bucket:
        raise ConfigError(
            "S3_ENDPOINT is set but S3_BUCKET is not",
            hint="set S3_BUCKET to the bucket the backups go to (or unset S3_ENDPOINT)",
        )
    region = str(value("S3_REGION")).strip()
    if not region:
        match = _AWS_REGION.match(host)
        region = match.group("region") if match and _AWS_HOST.search(host) else "us-east-1"
    style = str(value("S3_PATH_STYLE"))
    return S3Settings(
        bucket=bucket,
        endpoint=endpoint.rstrip("/"),
        prefix=str(value("S3_PREFIX")).strip().strip("/"),
        access_key=str(value("S3_USER") or ""),
        secret_key=str(value("S3_PASSWORD") or ""),
        session_token=str(value("S3_SESSION_TOKEN") or ""),
        region=region,
        path_style=None if style == "auto" else style == "true",
        ca_file=str(value("S3_CA_BUNDLE")).strip() or None,
        create_bucket=bool(value("S3_CREATE_BUCKET")),
        prune=bool(value("S3_PRUNE_BACKUPS")),
    )


def _first_line(path: str) -> str:
    text = Path(path).read_text(encoding="utf-8")
    return text.splitlines()[0] if text else ""
