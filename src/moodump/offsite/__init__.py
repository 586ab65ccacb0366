"""Off-site copies of finished backup directories, on any storage backend.

:mod:`moodump.offsite.remote` is backend-independent (:func:`upload`, :func:`recheck`,
:func:`list_backups`, :func:`prune_remote`, :class:`RemoteBackupReader`);
:class:`FtpsTarget` (the old container's ``FTP_URL``) and :class:`ObjectStoreTarget`
(``S3_*``) bind it to one backend each. A copy counts as complete only when its
``manifest.json`` (uploaded last) exists and every file it lists checks.
"""

from __future__ import annotations

from moodump.offsite.ftps import FtpsSettings, FtpsTarget, FtpUrl, parse_ftp_url
from moodump.offsite.remote import (
    PARTIAL_SUFFIX,
    OffsiteTarget,
    RecheckResult,
    RemoteBackup,
    RemoteBackupReader,
    UploadResult,
    list_backups,
    prune_remote,
    recheck,
    remote_names_to_prune,
    upload,
)
from moodump.offsite.s3 import ObjectStoreTarget

__all__ = [
    "PARTIAL_SUFFIX",
    "FtpUrl",
    "FtpsSettings",
    "FtpsTarget",
    "ObjectStoreTarget",
    "OffsiteTarget",
    "RecheckResult",
    "RemoteBackup",
    "RemoteBackupReader",
    "UploadResult",
    "list_backups",
    "parse_ftp_url",
    "prune_remote",
    "recheck",
    "remote_names_to_prune",
    "upload",
]
