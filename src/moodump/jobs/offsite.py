"""The off-site step of the backup cycle: copy each new backup to every configured target
(FTPS, S3), encrypted to the configured recipients, and apply off-site retention.

Rules (issue 12, docs/offsite.md):

- Each DONE, verified backup is copied in the same run, to every target, and the copy is
  re-checked (size and sha256 of every object) before it counts.
- With ``MOODUMP_ENCRYPT_RECIPIENTS`` the copy is the encrypted form
  (:mod:`moodump.crypto`): data files, manifest and restore script are encrypted before
  they leave the pod, and ``encrypted.json`` (ciphertext checksums, no personal data)
  lets anyone check the copy without the key. Invalid recipients turn off-site copies
  off with an error rather than send plaintext.
- A failed copy is an ERROR (its own exit code: 3 for refused credentials, 7 for
  storage), the local backup stays, and **nothing is pruned** for that database, local
  or remote.
- Off-site retention runs only for databases whose copy succeeded in this run, on
  targets with pruning on (``S3_PRUNE_BACKUPS``, ``MOODUMP_FTP_PRUNE``). It is the same
  pure plan as local retention over the target's listing, with its own counts
  (``MOODUMP_OFFSITE_*_BACKUPS``); the newest verified copy always stays.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodump.config import Config
from moodump.crypto import (
    ENCRYPTED_MANIFEST_NAME,
    Recipient,
    encrypt_backup_dir,
    parse_recipients,
)
from moodump.errors import ConfigError, MoodumpError
from moodump.fsmodes import make_dir
from moodump.jobs.report import RunReport
from moodump.jobs.wiring import Sleep, ftps_target_from_config
from moodump.manifest import MANIFEST_NAME, STATUS_DONE, read_manifest
from moodump.offsite import ObjectStoreTarget, OffsiteTarget
from moodump.offsite.catalog import RemoteBackupInfo, offsite_policy, plan_remote, scan_remote
from moodump.storage.base import quote_url_path
from moodump.storage.s3_settings import s3_settings_from_config

log = logging.getLogger(__name__)

#: Below BACKUP_DIR: where a backup's encrypted form is built before it is uploaded
#: (removed afterwards; the name starts with a dot so listings never show it).
STAGING_DIR = ".moodump-offsite"


@dataclass
class Destination:
    """One off-site target of the configuration."""

    kind: str  # "ftps" | "s3"
    target: OffsiteTarget
    prune: bool

    @property
    def url(self) -> str:
        return str(self.target.url.display())


@dataclass
class OffsitePlan:
    """The targets and the encryption of this run's off-site copies."""

    destinations: list[Destination]
    recipients: list[Recipient]
    at_rest: bool = False  # MOODUMP_ENCRYPT_AT_REST: the local copy is encrypted too

    def close(self) -> None:
        for d in self.destinations:
            with contextlib.suppress(Exception):
                d.target.close()


def offsite_from_config(cfg: Config, report: RunReport, *, sleep: Sleep) -> OffsitePlan:
    """The run's off-site targets; a target or recipient that cannot be set up is an
    error in ``report`` (exit 2) and turns that part off, never the backups."""
    recipients: list[Recipient] = []
    if cfg.encrypt_recipients:
        try:
            recipients = parse_recipients(cfg.encrypt_recipients)
        except ConfigError as exc:
            report.errors.append((exc.exit_code, f"off-site copies are off: {exc}"))
            log.error("off-site copies are off (they would not be encrypted): %s", exc)
            return OffsitePlan([], [])
    at_rest = cfg.encrypt_at_rest and bool(recipients)
    if cfg.encrypt_at_rest and not recipients:
        msg = "MOODUMP_ENCRYPT_AT_REST is set but MOODUMP_ENCRYPT_RECIPIENTS is not: backups stay unencrypted"
        report.errors.append((ConfigError.exit_code, msg))
        log.error("%s; set the recipients' public keys", msg)
    out: list[Destination] = []
    try:
        ftps = ftps_target_from_config(cfg, sleep=sleep)
        if ftps is not None:
            out.append(Destination("ftps", ftps, cfg.ftp_prune))
    except ConfigError as exc:
        report.errors.append((exc.exit_code, f"off-site copies to FTPS are off: {exc}"))
        log.error("off-site copies to FTPS are off: %s", exc)
    try:
        s3 = s3_settings_from_config(cfg)
        if s3 is not None:
            out.append(Destination("s3", ObjectStoreTarget(s3, sleep=sleep), s3.prune))
    except ConfigError as exc:
        report.errors.append((exc.exit_code, f"off-site copies to S3 are off: {exc}"))
        log.error("off-site copies to S3 are off: %s", exc)
    return OffsitePlan(out, recipients, at_rest)


def encrypt_in_place(plan: OffsitePlan, path: Path) -> None:
    """Replace the DONE backup at ``path`` by its encrypted form (at rest on the PVC).

    The encrypted directory is built beside it and checked by construction; then the
    plaintext is moved aside, the encrypted one takes its name, and the plaintext goes.
    Restores and full verifies of it then need the identity; ``moodump verify
    --offline`` checks its ciphertext without it.
    """
    ready = path.parent / f".{path.name}.encrypted"
    aside = path.parent / f".{path.name}.plaintext"
    for leftover in (ready, aside):
        if leftover.exists():
            shutil.rmtree(leftover)
    encrypt_backup_dir(path, ready, plan.recipients)
    path.rename(aside)
    ready.rename(path)
    shutil.rmtree(aside)
    log.info("encrypted %s at rest to %d recipient(s)", path, len(plan.recipients))


def sweep_staging(root: Path) -> list[Path]:
    """Remove what stopped runs left in ``root``'s staging folder of encrypted copies
    (ciphertext only, but a backup's size each); returns what it removed. Runs under the
    run lock, so nothing there is in use."""
    staging = root / STAGING_DIR
    if not staging.is_dir():
        return []
    left = sorted(staging.iterdir())
    for p in left:
        log.warning("removing %s, left by a stopped run", p)
    shutil.rmtree(staging)
    return left


_READY, _ASIDE, _ENCRYPTING = ".encrypted", ".plaintext", ".encrypted.partial-"


def finish_at_rest(plan: OffsitePlan, root: Path) -> list[Path]:
    """Finish the encryptions at rest that a stopped run left half done; returns the
    backups it finished (encrypted now), sorted.

    :func:`encrypt_in_place` can be stopped (a kill, a pod eviction) while it encrypts
    (``..NAME.encrypted.partial-PID`` beside the plaintext backup), before it moves the
    plaintext aside (``.NAME.encrypted`` complete), between its two renames (only
    ``.NAME.plaintext`` and ``.NAME.encrypted``), or while it removes the plaintext.
    Each leaves plaintext on the volume that nothing else would remove (hidden
    directories are not backups): here every such backup ends encrypted, and the
    leftovers go. Runs under the run lock, before the backups.
    """
    names: set[tuple[Path, str]] = set()
    for p in root.rglob(".*"):
        if not p.is_dir() or p.parent.name.startswith("."):
            continue
        name = p.name[1:]
        if _ENCRYPTING in name and name.startswith("."):
            names.add((p.parent, name[1:].split(_ENCRYPTING, 1)[0]))
        elif name.endswith((_READY, _ASIDE)):
            names.add((p.parent, name.rsplit(".", 1)[0]))
    finished: list[Path] = []
    for parent, name in sorted(names):
        path, ready, aside = (parent / n for n in (name, f".{name}{_READY}", f".{name}{_ASIDE}"))
        for partial in parent.glob(glob.escape(f".{ready.name}.partial-") + "*"):
            shutil.rmtree(partial)
        if not path.exists():  # stopped between the renames
            if (ready / ENCRYPTED_MANIFEST_NAME).is_file():
                ready.rename(path)
            elif aside.is_dir():
                aside.rename(path)
        if (path / ENCRYPTED_MANIFEST_NAME).is_file():
            for leftover in (ready, aside):
                if leftover.exists():
                    shutil.rmtree(leftover)
        elif (path / MANIFEST_NAME).is_file() and read_manifest(path).status == STATUS_DONE:
            encrypt_in_place(plan, path)
        else:
            continue  # not a backup this can finish: left as it is
        log.warning("finished the encryption at rest of %s, which a stopped run left", path)
        finished.append(path)
    return finished


def copy_offsite(cfg: Config, plan: OffsitePlan, path: Path, out: dict[str, Any]) -> None:
    """Copy the DONE backup at ``path`` to every destination, recording into ``out``
    (the database's ``offsite`` report); raises the first failure after trying all."""
    out.update(ok=False, encrypted=bool(plan.recipients), copies=[])
    started = time.monotonic()
    source = path
    staging: Path | None = None
    first_error: MoodumpError | None = None
    try:
        if plan.recipients and not (path / ENCRYPTED_MANIFEST_NAME).exists():
            staging = cfg.root / STAGING_DIR / path.name
            if staging.exists():
                shutil.rmtree(staging)
            make_dir(staging.parent, parents=True, exist_ok=True)
            encrypt_backup_dir(path, staging, plan.recipients)
            source = staging
        for dest in plan.destinations:
            copy: dict[str, Any] = {"kind": dest.kind, "url": dest.url, "ok": False}
            out["copies"].append(copy)
            try:
                up = dest.target.upload(source, remote_name=path.name)
                check = dest.target.recheck(path.name, local_dir=source)
            except MoodumpError as exc:
                copy.update(error=exc.message, exit_code=exc.exit_code)
                log.error("the off-site copy to %s failed: %s", dest.url, exc)
                first_error = first_error or exc
                continue
            copy.update(
                ok=True,
                remote_path=check.remote_path,
                files=check.files,
                bytes=check.bytes,
                attempts=up.attempts,
                check_method=check.check_method,
                duration_s=round(up.duration_s, 3),
                skipped=up.skipped,
            )
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    out["duration_s"] = round(time.monotonic() - started, 3)
    out["bytes"] = sum(c.get("bytes", 0) for c in out["copies"])
    first_ok = next((c for c in out["copies"] if c["ok"]), None)
    if first_ok is not None:  # the fields a single-target report always had
        out.update({k: first_ok[k] for k in ("url", "remote_path", "files", "attempts")})
        out["check_method"] = first_ok["check_method"]
    if first_error is not None:
        raise first_error
    out["ok"] = True


def prune_offsite(
    cfg: Config, plan: OffsitePlan, cores: Sequence[str], now: Any, report: RunReport
) -> None:
    """Off-site retention for ``cores`` (databases whose copy succeeded in this run) on
    every destination with pruning on."""
    policy = offsite_policy(
        cfg.retention, cfg.offsite_daily, cfg.offsite_weekly, cfg.offsite_monthly
    )
    for dest in plan.destinations:
        if not dest.prune or not cores:
            continue
        try:
            infos = scan_remote(dest.target, cfg.tz)
            decided = plan_remote(infos, policy, now, only=cores)
            victims = [b.id for b in decided.remove]
            for b in decided.remove:
                reason = decided.decision(b.id).reason
                log.info("off-site %s: removing %s (%s)", dest.url, b.id, reason)
            if victims:
                report.pruned_remote += dest.target.prune_remote(victims)
        except MoodumpError as exc:
            report.warnings.append(f"pruning the off-site copies at {dest.url} failed: {exc}")
            log.error("pruning the off-site copies at %s failed: %s", dest.url, exc)


@dataclass
class OffsiteListing:
    """What one off-site target holds (``moodump list --offsite``)."""

    kind: str
    url: str
    backups: list[RemoteBackupInfo]
    error: str | None = None
    #: The exit code of the error (3: the target refused the credentials).
    error_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        cores: dict[str, list[RemoteBackupInfo]] = {}
        for b in self.backups:
            cores.setdefault(b.core, []).append(b)
        return {
            "kind": self.kind,
            "url": self.url,
            "error": self.error,
            "databases": [
                {
                    "core": core,
                    "backups": [
                        {**b.to_dict(), "path": _url_of(self.url, b.name)}
                        for b in sorted(group, key=lambda i: (i.when, i.name), reverse=True)
                    ],
                }
                for core, group in sorted(cores.items())
            ],
        }


def list_offsite(cfg: Config, *, sleep: Sleep = time.sleep) -> list[OffsiteListing]:
    """The copies on every configured off-site target, newest first per database.

    A target that cannot be listed (refused credentials, no bucket) is reported in its
    ``error``; the others are still listed. Raises ConfigError when none is configured.
    """
    report = RunReport("list", "")
    plan = offsite_from_config(cfg, report, sleep=sleep)
    try:
        if not plan.destinations:
            problems = "; ".join(m for _, m in report.errors)
            raise ConfigError(
                "no off-site target is configured" + (f" ({problems})" if problems else ""),
                hint="set S3_ENDPOINT and S3_BUCKET (or FTP_URL); see docs/offsite.md",
            )
        out = []
        for dest in plan.destinations:
            try:
                out.append(OffsiteListing(dest.kind, dest.url, scan_remote(dest.target, cfg.tz)))
            except MoodumpError as exc:
                out.append(
                    OffsiteListing(
                        dest.kind, dest.url, [], error=str(exc), error_code=exc.exit_code
                    )
                )
        return out
    finally:
        plan.close()


def _url_of(display: str, name: str) -> str:
    """The URL ``moodump restore`` takes for copy ``name`` of a target shown as ``display``
    (``s3://bucket/prefix/ at https://endpoint`` -> ``s3://bucket/prefix/NAME``)."""
    base = display.split(" at ", 1)[0]
    return base.rstrip("/") + "/" + quote_url_path(name)


__all__ = [
    "STAGING_DIR",
    "Destination",
    "OffsiteListing",
    "OffsitePlan",
    "copy_offsite",
    "encrypt_in_place",
    "finish_at_rest",
    "list_offsite",
    "offsite_from_config",
    "prune_offsite",
    "sweep_staging",
]
