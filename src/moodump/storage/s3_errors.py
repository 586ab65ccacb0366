"""Why an S3 request failed, as a moodump error that names the next step.

The S3 backend (:mod:`moodump.storage.s3`) hands every pyarrow/AWS SDK failure to
:func:`diagnose`: a missing permission is named with the IAM action and resource to
grant, a clock too far from the server's is named as such (S3 refuses signatures more
than 15 minutes off, and a refused HEAD says no more than "403"), and a wrong key, a
missing bucket, a TLS failure and a server that is down or slow (:class:`TransientError`,
retried) are told apart. docs/storage.md has the table of permissions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from moodump.errors import MoodumpError, StorageAuthError, StorageError
from moodump.storage.base import TransientError
from moodump.storage.s3_settings import S3Settings

_AUTH_CODES = (
    "SIGNATURE_DOES_NOT_MATCH",
    "INVALID_ACCESS_KEY_ID",
    "ACCESS_DENIED",
    "EXPIRED_TOKEN",
    "INVALID_CLIENT_TOKEN_ID",
    "UNRECOGNIZED_CLIENT",
    "MISSING_AUTHENTICATION_TOKEN",
)
_TRANSIENT_CODES = (
    "NETWORK_CONNECTION",
    "REQUEST_TIMEOUT",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_FAILURE",
    "SLOW_DOWN",
    "THROTTLING",
    "REQUEST_TIME_TOO_SKEWED",
)
#: The S3 operation pyarrow names in a refusal -> the permission it needs and whether
#: that is granted on the bucket (else on its objects). docs/storage.md has the table.
_PERMISSIONS = (
    ("HeadBucket", "s3:ListBucket", True),
    ("ListObjects", "s3:ListBucket", True),
    ("HeadObject", "s3:GetObject", False),
    ("GetObject", "s3:GetObject", False),
    ("CreateMultipartUpload", "s3:PutObject", False),
    ("UploadPart", "s3:PutObject", False),
    ("CompleteMultipartUpload", "s3:PutObject", False),
    ("PutObject", "s3:PutObject", False),
    ("AbortMultipartUpload", "s3:AbortMultipartUpload", False),
    ("DeleteObject", "s3:DeleteObject", False),  # DeleteObjects too
    ("CreateBucket", "s3:CreateBucket", True),
)
_OPERATION = re.compile(r"during (\w+) operation")


def denied_permission(text: str) -> tuple[str, bool] | None:
    """``(permission, on the bucket)`` an S3 refusal (pyarrow's message) says is missing:
    ACCESS_DENIED during a named operation, or a batch delete whose keys were denied.
    None when the message names no operation moodump knows."""
    if "when deleting objects" in text and "Access Denied" in text:
        return "s3:DeleteObject", False
    if "ACCESS_DENIED" not in text:
        return None
    found = _OPERATION.search(text)
    operation = found.group(1) if found else ""
    for name, permission, on_bucket in _PERMISSIONS:
        if operation.startswith(name):
            return permission, on_bucket
    return None


#: S3 refuses signatures more than 15 minutes off its clock; more than 5 is named.
SKEW_LIMIT_S = 300.0
_CURL_TLS = re.compile(r"curlCode: (35|51|53|54|58|59|60|64|66|77|80|82|83|90|91)\b")


def server_clock_offset(
    scheme: str, host: str, ca_file: str | None, timeout_s: float
) -> float | None:
    """Seconds the server's clock (its ``Date`` header) is ahead of this machine's, asked
    with an unsigned HEAD of ``scheme://host/`` (AWS when no host); None when the server
    does not say."""
    import email.utils
    import ssl
    import urllib.error
    import urllib.request

    url = f"{scheme}://{host or 's3.amazonaws.com'}/"
    context = None
    if scheme == "https":
        context = ssl.create_default_context(cafile=ca_file or None)
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            date = response.headers.get("Date")
    except urllib.error.HTTPError as exc:  # 403 for an unsigned request: still dated
        date = exc.headers.get("Date")
    except (OSError, ValueError):
        return None
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp() if date else None
    except (TypeError, ValueError):
        server = None
    return None if server is None else server - time.time()


def diagnose(
    exc: OSError,
    what: str,
    *,
    settings: S3Settings,
    endpoint: str,
    host: str,
    objects: str,
    clock_offset: Callable[[], float | None],
    key_accepted: Callable[[str], bool],
) -> MoodumpError:
    """A pyarrow/AWS SDK failure ``exc`` while ``what`` as a moodump error.

    ``endpoint`` names the server in messages, ``host`` is the endpoint's host (empty for
    AWS), ``objects`` the path the backend's keys match (``bucket/prefix/*``).
    ``clock_offset()`` is asked only for a refusal (the server's clock minus ours);
    ``key_accepted(text)`` tells a missing permission from a wrong key when the refusal
    itself cannot (a refused HEAD has no body)."""
    text = str(exc)
    short = re.sub(r"\s*\(Request ID: [^)]*\)", "", text)
    short = short.split("; Details:")[0].strip()
    where = endpoint
    bucket = settings.bucket
    denied = denied_permission(text)
    if denied is not None or any(code in text for code in _AUTH_CODES):
        code = next((c for c in _AUTH_CODES if c in text), "ACCESS_DENIED")
        # A signature is only valid within 15 minutes of the server's time, and a HEAD
        # refused for that says no more than "403": look at the server's clock.
        offset = clock_offset()
        if offset is not None and abs(offset) > SKEW_LIMIT_S:
            return StorageAuthError(
                f"the S3 server {where} refused the request ({code}) while {what}: this "
                f"machine's clock is {_duration(abs(offset))} "
                f"{'behind' if offset > 0 else 'ahead of'} the server's, and S3 refuses "
                "signatures more than 15 minutes off",
                hint="fix this machine's time (NTP/chrony, or the node's clock), then retry; "
                "the access key may well be right",
            )
        if not settings.access_key:
            # pyarrow's default chain: AWS_* variables, ~/.aws, an instance or pod role;
            # with none of them the request is anonymous
            refused = f"{denied[0]}, " if denied is not None else ""
            return StorageAuthError(
                f"the S3 server {where} refused the request ({refused}{code}) while {what}: S3_USER "
                "is not set, so it carried the credentials the AWS SDK finds by itself "
                "(AWS_* variables, ~/.aws, an instance or pod role), or none",
                hint=(
                    "set S3_USER (access key) and S3_PASSWORD (secret key), or give the "
                    f"role this machine runs as access to the bucket {bucket!r} "
                    "(docs/storage.md lists the permissions moodump needs)"
                ),
            )
        if denied is not None and key_accepted(text):
            permission, on_bucket = denied
            resource = f"arn:aws:s3:::{bucket if on_bucket else objects}"
            also = ""
            if "HeadObject" in text:  # AWS: a missing object reads as denied then
                also = f", and s3:ListBucket on arn:aws:s3:::{bucket}"
            return StorageAuthError(
                f"the S3 server {where} refused access key {settings.access_key!r} "
                f"the permission {permission} while {what} ({code}; the key itself is "
                "accepted)",
                hint=(
                    f"grant this key {permission} on {resource}{also} (a bucket or IAM "
                    "policy; docs/storage.md lists the permissions moodump needs), or use "
                    "a key that has them"
                ),
            )
        return StorageAuthError(
            f"the S3 server {where} refused access key {settings.access_key!r} "
            f"({code}) while {what}",
            hint=(
                "check S3_USER (access key) and S3_PASSWORD (secret key), and that this "
                f"key may read and write the bucket {bucket!r}"
            ),
        )
    if "NO_SUCH_BUCKET" in text:
        return StorageError(
            f"the bucket {bucket!r} does not exist at {where}",
            hint=f"create it, fix S3_BUCKET, or set S3_CREATE_BUCKET=true ({what})",
        )
    if _CURL_TLS.search(text) or "certificate" in text.lower():
        return StorageError(
            f"no TLS connection to the S3 server {where} while {what}: {short}",
            hint=(
                "give the server's CA as S3_CA_BUNDLE (a PEM file), or fix S3_ENDPOINT "
                "(its host name; http:// for a server without TLS)"
            ),
        )
    virtual = ""
    if settings.path_style is False and host and "HeadBucket" in text:
        # asked as bucket.host: a server without that domain setting (SeaweedFS,
        # MinIO without MINIO_DOMAIN) answers 405/404 or the name does not resolve
        virtual = (
            f"; with S3_PATH_STYLE=false the bucket is asked as {bucket}.{host}, "
            "which this server may not serve: set S3_PATH_STYLE=auto (or true), or "
            "configure the server's domain for virtual-hosted buckets"
        )
    if any(code in text for code in _TRANSIENT_CODES) or "curlCode" in text:
        return TransientError(
            f"the S3 server {where} failed while {what}: {short}",
            hint=(
                "it is retried; if it persists, check S3_ENDPOINT, that the server is up "
                "and that the network allows it" + virtual
            ),
        )
    return StorageError(
        f"the S3 server {where} failed while {what}: {short}",
        hint="check the S3_* settings and the server's log" + virtual,
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes / 60:.1f} hours"


__all__ = ["SKEW_LIMIT_S", "denied_permission", "diagnose", "server_clock_offset"]
