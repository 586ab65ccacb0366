"""The off-site catalogue: what a storage target holds, as retention and listings see it.

A remote copy ``NAME`` is complete when its marker exists (``manifest.json``, or
``encrypted.json`` for an encrypted copy). It counts as **verified** when it carries the
record of a passing verification: a ``verify.json`` saying PASS, or, in an encrypted
copy, a ``verify.json.age`` (the backup cycle uploads only after a passing
verification; the record itself is only readable with the key).

Off-site retention is the same pure plan as local retention
(:func:`moodump.retention.plan`) over this listing, with the off-site counts
(``MOODUMP_OFFSITE_*_BACKUPS``, else the local ones): the newest verified copy and the
newest complete copy always stay, whatever the counts. A copy's tier is the tier its
date gets (monthly on a month's last day, weekly on a Sunday), exactly as when it was
made, because the copies sit flat in the bucket as the old container's did.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

from moodump.crypto import ENCRYPTED_MANIFEST_NAME, EncryptedManifest
from moodump.errors import IntegrityError, MoodumpError, StorageAuthError
from moodump.manifest import MANIFEST_NAME, STATUS_DONE, VERIFY_NAME, parse_manifest
from moodump.naming import localize, parse_backup_name, tier_for
from moodump.offsite.remote import (
    PARTIAL_SUFFIX,
    OffsiteTarget,
    some_problems,
    stored_problems,
)
from moodump.retention import Backup, Plan, RetentionPolicy, plan
from moodump.storage.base import TransientError

log = logging.getLogger(__name__)

STATUS_INCOMPLETE = "INCOMPLETE"
"""A remote copy without its marker (an upload that did not finish)."""


@dataclass(frozen=True)
class RemoteBackupInfo:
    """One backup on a storage target."""

    name: str
    core: str
    when: datetime
    complete: bool
    verified: bool = False
    encrypted: bool = False
    bytes: int | None = None
    where: str = ""
    error: str | None = None

    def to_backup(self, policy: RetentionPolicy) -> Backup:
        """The value object the retention plan works on (id = the copy's name)."""
        return Backup(
            id=self.name,
            core=self.core,
            tier=tier_for(self.when.date(), policy),
            when=self.when,
            status=STATUS_DONE if self.complete else STATUS_INCOMPLETE,
            verified=self.verified and self.complete,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "core": self.core,
            "when": self.when.isoformat(),
            "status": STATUS_DONE if self.complete else STATUS_INCOMPLETE,
            "verified": self.verified,
            "encrypted": self.encrypted,
            "bytes": self.bytes,
            "where": self.where,
            "error": self.error,
        }


def scan_remote(target: OffsiteTarget, tz: tzinfo) -> list[RemoteBackupInfo]:
    """Every backup-named copy on ``target``, oldest first, with what its marker says.

    Reads each complete copy's marker (a small object); a marker that is damaged or gone
    makes the copy count as incomplete, with the reason in ``error``. A marker that
    cannot be read for the network's or the key's sake (TransientError after the
    retries, StorageAuthError) fails the scan instead: retention would otherwise remove
    a good copy as an unfinished upload.
    """
    out: list[RemoteBackupInfo] = []
    backend = target.backend
    listed = target.list_backups()
    names = {rb.name for rb in listed}
    for rb in listed:
        base = rb.name.removesuffix(PARTIAL_SUFFIX)
        if base != rb.name and base in names:
            continue  # the staging of a repair: it goes with its copy
        # An upload that never finished is NAME.partial where copies are renamed into
        # place (local, FTPS): listed as an incomplete copy under that name, so that
        # retention removes it once it is old, as it does a copy without its marker.
        parsed = parse_backup_name(base)
        if parsed is None:
            continue  # something that is not ours
        core, naive = parsed
        info = RemoteBackupInfo(
            rb.name, core, localize(naive, tz), rb.complete, where=backend.where(rb.name)
        )
        if rb.complete:
            try:
                info = _describe(target, info)
            except (TransientError, StorageAuthError):
                # the network or the key failed, not the copy: a copy counted as
                # unreadable here would be pruned as an unfinished upload
                raise
            except MoodumpError as exc:
                log.warning("off-site copy %s is unreadable: %s", info.where, exc.message)
                info = replace(info, complete=False, error=exc.message)
        out.append(info)
    return sorted(out, key=lambda i: (i.core, i.when, i.name))


def _describe(target: OffsiteTarget, info: RemoteBackupInfo) -> RemoteBackupInfo:
    backend = target.backend
    name = info.name
    if backend.stat(f"{name}/{ENCRYPTED_MANIFEST_NAME}") is not None:
        em = EncryptedManifest.from_json(
            backend.read_bytes(f"{name}/{ENCRYPTED_MANIFEST_NAME}"), where=info.where
        )
        verified = any(f.name == VERIFY_NAME + ".age" for f in em.files)
        _check_present(target, info, [(f.name, f.bytes) for f in em.files])
        return replace(info, encrypted=True, verified=verified, bytes=em.total_bytes)
    manifest = parse_manifest(
        backend.read_bytes(f"{name}/{MANIFEST_NAME}"), f"{info.where}/{MANIFEST_NAME}"
    )
    verified = False
    if backend.stat(f"{name}/{VERIFY_NAME}") is not None:
        try:
            record = json.loads(backend.read_bytes(f"{name}/{VERIFY_NAME}"))
            verified = isinstance(record, dict) and record.get("status") == "PASS"
        except ValueError:
            verified = False
    complete = manifest.status == STATUS_DONE
    if complete:
        _check_present(target, info, [(f.name, f.bytes) for f in manifest.files])
    return replace(
        info,
        complete=complete,
        verified=verified,
        bytes=sum(f.bytes for f in manifest.files),
    )


def _check_present(
    target: OffsiteTarget, info: RemoteBackupInfo, stored: list[tuple[str, int]]
) -> None:
    """IntegrityError when the copy lost a file its marker lists (one listing): such a
    copy cannot be restored, so it must count neither as the newest good copy
    (retention would remove the older good ones) nor for ``--latest``."""
    problems = stored_problems(target.backend, info.name, stored)
    if problems:
        raise IntegrityError(
            f"the copy does not hold what its manifest lists: {some_problems(problems)}",
            hint="upload the backup again, or use another copy",
        )


def offsite_policy(
    local: RetentionPolicy, daily: int | None, weekly: int | None, monthly: int | None
) -> RetentionPolicy:
    """The local policy with the off-site counts that are set (None keeps the local one).

    For the flat daily strategy the daily count is ``NUM_BACKUPS``'s.
    """
    return replace(
        local,
        num_backups=daily if daily is not None and not local.rolling else local.num_backups,
        daily=daily if daily is not None and local.rolling else local.daily,
        weekly=weekly if weekly is not None else local.weekly,
        monthly=monthly if monthly is not None else local.monthly,
    )


def plan_remote(
    infos: Iterable[RemoteBackupInfo],
    policy: RetentionPolicy,
    now: datetime,
    *,
    only: Collection[str] | None = None,
) -> Plan:
    """The retention plan of the off-site copies (pure): every decision has its reason."""
    return plan([i.to_backup(policy) for i in infos], policy, now, only=only)


def newest(
    infos: Iterable[RemoteBackupInfo], core: str, *, verified: bool = True
) -> RemoteBackupInfo | None:
    """The newest complete (and, by default, verified) copy of ``core``."""
    candidates = [
        i for i in infos if i.core == core and i.complete and (i.verified or not verified)
    ]
    return max(candidates, key=lambda i: (i.when, i.name), default=None)


__all__ = [
    "STATUS_INCOMPLETE",
    "RemoteBackupInfo",
    "newest",
    "offsite_policy",
    "plan_remote",
    "scan_remote",
]
