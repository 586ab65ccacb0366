"""Off-site copies on an FTPS server: :class:`FtpsTarget`, the old container's ``FTP_URL``.

A thin layer over :mod:`moodump.offsite.remote` and
:class:`~moodump.storage.ftps.FtpsBackend`, which holds the FTPS code (explicit TLS,
``PROT P``, TLS session reuse, server-side hashes, retries). The names this module
exported before the storage backends existed stay importable from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from moodump.offsite.remote import (
    PARTIAL_SUFFIX,
    OffsiteTarget,
    RecheckResult,
    RemoteBackup,
    UploadResult,
    remote_names_to_prune,
)
from moodump.storage.ftps import FtpsBackend, FtpsSettings, FtpUrl, parse_ftp_url


class FtpsTarget(OffsiteTarget):
    """An FTPS server directory holding backup directories.

    ``sleep`` (between retries) and ``clock`` (durations) are injectable so tests never
    wait on the wall clock. ``url`` is the parsed :class:`FtpUrl` (``url.display()``).
    """

    backend: FtpsBackend

    def __init__(
        self,
        settings: FtpsSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(FtpsBackend(settings, sleep=sleep), clock=clock)
        self.settings = settings
        self.url = self.backend.url
        self.user = self.backend.user

    @property
    def base(self) -> str:
        """The remote base directory ("" = the login directory)."""
        return self.backend.base


__all__ = [
    "PARTIAL_SUFFIX",
    "FtpUrl",
    "FtpsSettings",
    "FtpsTarget",
    "RecheckResult",
    "RemoteBackup",
    "UploadResult",
    "parse_ftp_url",
    "remote_names_to_prune",
]
