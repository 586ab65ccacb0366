"""Off-site copies of finished backup directories.

Only FTPS exists today (:mod:`moodump.offsite.ftps`, the old container's ``FTP_URL``).
A copy is published under its final name only after every file is on the server and has
been re-checked (size and sha256) against the backup's ``manifest.json``.
"""

from __future__ import annotations

from moodump.offsite.ftps import (
    FtpsSettings,
    FtpsTarget,
    FtpUrl,
    RecheckResult,
    RemoteBackup,
    UploadResult,
    parse_ftp_url,
    remote_names_to_prune,
)

__all__ = [
    "FtpUrl",
    "FtpsSettings",
    "FtpsTarget",
    "RecheckResult",
    "RemoteBackup",
    "UploadResult",
    "parse_ftp_url",
    "remote_names_to_prune",
]
