"""Object storage behind one contract: a local directory, an FTPS server, an S3 bucket.

:class:`~moodump.storage.base.Backend` is the contract (docs/storage.md);
:func:`open_backend` picks the implementation from a URL or a settings object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from moodump.config import setting
from moodump.errors import ConfigError
from moodump.storage.base import (
    TEMP_PREFIX,
    Backend,
    Check,
    ObjectInfo,
    PutResult,
    RetryPolicy,
    TransientError,
    check_key,
    check_prefix,
)
from moodump.storage.ftps import FtpsBackend, FtpsSettings, FtpUrl, parse_ftp_url
from moodump.storage.local import LocalBackend
from moodump.storage.s3 import S3Backend
from moodump.storage.s3_settings import S3Settings, parse_endpoint, s3_settings_from_env

Settings = FtpsSettings | S3Settings


def ftps_settings_from_env(
    url: str, env: Mapping[str, str], *, create: bool = False
) -> FtpsSettings:
    """The FTPS settings of ``url`` with the configured account and TLS trust: the same
    key table as the uploads (``FTP_USER``/``FTP_PASSWORD`` and their ``_FILE`` forms,
    ``MOODUMP_FTP_CA_FILE``, ``MOODUMP_FTP_RETRIES``), so a copy is read back with the
    settings that wrote it. An empty account leaves the URL's; a URL without one (as
    ``moodump list --offsite`` shows them) takes the account written into ``FTP_URL``
    when that names the same server (host and port)."""

    def value(name: str) -> str:
        return str(setting(name, env) or "")

    user, password = value("FTP_USER"), value("FTP_PASSWORD")
    if not user and not password:
        user, password = _configured_account(url, value("FTP_URL"))
    return FtpsSettings(
        url=url,
        user=user,
        password=password,
        ca_file=value("MOODUMP_FTP_CA_FILE").strip() or None,
        retries=int(setting("MOODUMP_FTP_RETRIES", env)),  # 0 is a count (value() gives "")
        create_dirs=create,
    )


def _configured_account(url: str, configured: str) -> tuple[str, str]:
    """``(user, password)`` written into the configured ``FTP_URL`` when ``url`` has no
    account and names the same host and port; else empty (never sent to another server)."""
    try:
        target, known = parse_ftp_url(url), parse_ftp_url(configured)
    except ConfigError:
        return "", ""  # a bad url is refused where it is used; a bad FTP_URL is not ours
    same = (target.host.lower(), target.port) == (known.host.lower(), known.port)
    if target.user or target.password or not same:
        return "", ""
    return known.user, known.password


def open_backend(
    target: str | Path | Settings,
    *,
    env: Mapping[str, str] | None = None,
    create: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Backend:
    """The backend for a URL, a local path or a settings object.

    - a path, or ``file:///path``: :class:`LocalBackend` (``create`` creates the directory);
    - ``ftp://`` / ``ftps://`` or :class:`FtpsSettings`: :class:`FtpsBackend` (the account
      from ``FTP_USER``/``FTP_PASSWORD`` or their ``_FILE`` forms in ``env``, else from
      the URL; ``MOODUMP_FTP_CA_FILE``, ``MOODUMP_FTP_RETRIES``: :func:`ftps_settings_from_env`);
    - ``s3://bucket/prefix`` or :class:`S3Settings`: :class:`S3Backend`. Endpoint and
      credentials come from ``env`` (the ``S3_*`` variables of
      :func:`s3_settings_from_env`); the URL's bucket and prefix win over ``S3_BUCKET``
      and ``S3_PREFIX``. Credentials written into an ``s3://`` URL are refused: they
      would end up in logs and process listings.
    """
    env = env or {}
    if isinstance(target, FtpsSettings):
        return FtpsBackend(target, sleep=sleep)
    if isinstance(target, S3Settings):
        return S3Backend(target, sleep=sleep)
    if isinstance(target, Path):
        return LocalBackend(target, create=create, sleep=sleep)
    text = str(target).strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not scheme:
        if not text:
            raise ConfigError("no storage location given", hint="give a path or a URL")
        return LocalBackend(text, create=create, sleep=sleep)
    try:
        urlsplit(text)
    except ValueError as exc:  # "Invalid IPv6 URL": an unclosed [
        raise ConfigError(
            f"the {scheme}:// URL is not valid: {exc}", hint="check the URL (its host part)"
        ) from None
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"file URLs must name a local path (got host {parts.netloc!r})",
                hint="use file:///absolute/path",
            )
        return LocalBackend(unquote(parts.path), create=create, sleep=sleep)
    if scheme in ("ftp", "ftps"):
        return FtpsBackend(ftps_settings_from_env(text, env, create=create), sleep=sleep)
    if scheme == "s3":
        parts = urlsplit(text)
        if "@" in parts.netloc:
            raise ConfigError(
                "s3:// URLs must not contain credentials",
                hint="give them in S3_USER and S3_PASSWORD (or their _FILE variants)",
            )
        if not parts.netloc:
            raise ConfigError("the s3:// URL names no bucket", hint="use s3://bucket/prefix")
        values = {**env, "S3_BUCKET": parts.netloc}
        values.setdefault("S3_ENDPOINT", "https://s3.amazonaws.com")
        # the URL's path is the prefix, also when it has none (the top of the bucket):
        # S3_PREFIX describes the configured target, not the bucket this URL names
        values["S3_PREFIX"] = unquote(parts.path).strip("/")
        settings = s3_settings_from_env(values)
        if settings is None:  # pragma: no cover  (S3_ENDPOINT is always set above)
            raise ConfigError("no S3 endpoint", hint="set S3_ENDPOINT")
        if create:
            settings = replace(settings, create_bucket=True)
        return S3Backend(settings, sleep=sleep)
    raise ConfigError(
        f"unknown storage scheme {scheme}:// (moodump reads a path, file://, ftp://, "
        "ftps:// and s3://)",
        hint="for a store with an S3 API (Google Cloud Storage with HMAC keys, Ceph, MinIO) "
        "use s3://bucket/prefix with S3_ENDPOINT set to its endpoint "
        "(https://storage.googleapis.com); otherwise copy the backup to a folder first",
    )


__all__ = [
    "TEMP_PREFIX",
    "Backend",
    "Check",
    "FtpUrl",
    "FtpsBackend",
    "FtpsSettings",
    "LocalBackend",
    "ObjectInfo",
    "PutResult",
    "RetryPolicy",
    "S3Backend",
    "S3Settings",
    "TransientError",
    "check_key",
    "check_prefix",
    "ftps_settings_from_env",
    "open_backend",
    "parse_endpoint",
    "parse_ftp_url",
    "s3_settings_from_env",
]
