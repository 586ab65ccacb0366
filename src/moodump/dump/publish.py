"""Publishing a dump: the work directory, the FAILED record, file entries, and the
clean-up of work directories left by killed dumps.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from moodump.compression import sync_tree
from moodump.crypto import SigningKey, write_signature
from moodump.db.connection import ConnSettings, connect
from moodump.db.introspect import (
    ServerInfo,
    StoredObject,
    server_info,
)
from moodump.dump.model import _utcnow
from moodump.errors import StorageError
from moodump.fsmodes import make_dir, write_text
from moodump.manifest import (
    MANIFEST_NAME,
    STATUS_FAILED,
    Chunk,
    FileEntry,
    Manifest,
    TableEntry,
)

log = logging.getLogger("moodump.dump")

_PARTIAL = re.compile(r"^\..+\.partial-(\d+)$")


def remove_stale_partials(
    parent: Path, *, min_age_s: float = 3600.0, own_pid_idle: bool = False
) -> list[Path]:
    """Remove work directories that a killed dump (SIGKILL, OOM, node loss) left behind.

    A ``.<name>.partial-<pid>`` directory is stale when no process with that PID runs
    here *and* nothing in it changed for ``min_age_s`` (another pod sharing the volume
    may run a dump under the same PID). With ``own_pid_idle`` (the caller runs no dump
    now) this process's own PID counts as not running: a container restarted after an
    OOM kill gives its new ``moodump run`` the PID of the killed one. Returns what was
    removed.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _PARTIAL.match(entry.name)
        if not m or not entry.is_dir():
            continue
        pid = int(m.group(1))
        try:
            if not (own_pid_idle and pid == os.getpid()):
                os.kill(pid, 0)
                continue  # the owner may still be running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            newest = max([entry.stat().st_mtime] + [p.stat().st_mtime for p in entry.rglob("*")])
        except OSError:
            continue
        if now - newest >= min_age_s:
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed %s, left by a dump that did not finish", entry)
            removed.append(entry)
    return removed


def _visible_dirs(parent: Path) -> list[Path]:
    try:
        return [
            p for p in parent.iterdir()
            if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()
        ]  # fmt: skip
    except OSError:
        return []


def sweep_stale_partials(root: Path, *, min_age_s: float = 3600.0) -> list[Path]:
    """:func:`remove_stale_partials` in ``root`` and in its date and tier/date folders.

    A dump's work directory sits beside its backup, in the date folder of the run that
    was killed; later runs write to other date folders, so only this sweep (run under
    the run lock, before the backups: no dump of this process is running) removes it.
    """
    parents = [Path(root)]
    level = parents
    for _ in range(2):  # DATE/ and TIER/DATE/
        level = [d for parent in level for d in _visible_dirs(parent)]
        parents += level
    removed: list[Path] = []
    for parent in parents:
        removed += remove_stale_partials(parent, min_age_s=min_age_s, own_pid_idle=True)
    return removed


def _write_json(path: Path, text: str) -> None:
    write_text(path, text, fsync=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish_failure(tmp: Path, out: Path, manifest: Manifest, error: str) -> None:
    """Leave a data-less FAILED record so listings and retention see the failed run."""
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        make_dir(tmp, parents=True, exist_ok=True)
        manifest.status = STATUS_FAILED
        manifest.error = error
        manifest.finished_at = _utcnow()
        manifest.files = []
        for t in manifest.tables:
            t.chunks = []
        _write_json(tmp / MANIFEST_NAME, manifest.to_json())
        os.rename(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _file_entry(root: Path, name: str, kind: str) -> FileEntry:
    from moodump.compression import sha256_file

    size, sha = sha256_file(root / name)
    return FileEntry(name, size, sha, kind)


def record_chunk(manifest: Manifest, entry: TableEntry, data: FileEntry, chunk: Chunk) -> None:
    """Add a finished data file to the manifest and to its table (both engines; the
    caller holds its lock). Workers finish files in any order: the table's chunks are
    kept in file-name order, which is key-range order."""
    manifest.files.append(data)
    entry.chunks.append(chunk)
    entry.chunks.sort(key=lambda c: c.file)
    entry.rows += chunk.rows


def server_of(settings: ConnSettings) -> ServerInfo:
    """Flavour and version of a server (a convenience for callers and tests)."""
    with connect(settings) as c:
        return server_info(c)


def objects_json(objects: list[StoredObject]) -> str:
    """``objects.json``: every view, trigger, routine and event with the session settings
    it was created under, its definition base64-encoded (bytes exactly as the server gave
    them, whatever their character set)."""
    records = [
        {
            "kind": o.kind,
            "name": o.name,
            "table": o.table,
            "order": o.order,
            "sql_mode": o.sql_mode,
            "time_zone": o.time_zone,
            "character_set_client": o.character_set_client,
            "collation_connection": o.collation_connection,
            "create_b64": base64.b64encode(o.create).decode("ascii"),
            **({"defined_at": o.defined_at} if o.defined_at else {}),
            **({"db_collation": o.db_collation} if o.db_collation else {}),
        }
        for o in objects
    ]
    return json.dumps(records, indent=1) + "\n"


def make_staging(out: Path) -> Path:
    """Create the private staging directory ``.NAME.partial-PID`` (with ``schema/`` and
    ``data/``) beside ``out``, after removing stale ones left by dead runs. A dump writes
    there and :func:`publish_done` renames it to ``out`` once the manifest says DONE."""
    parent = out.parent
    remove_stale_partials(parent)
    tmp = parent / f".{out.name}.partial-{os.getpid()}"
    try:
        make_dir(tmp / "schema", parents=True)
        make_dir(tmp / "data")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(
            f"cannot create {tmp}: {exc.strerror}",
            hint="check that the output directory is writable",
        ) from exc
    return tmp


def publish_done(tmp: Path, out: Path, manifest: Manifest, signing_key: SigningKey | None) -> None:
    """Seal and publish: every data file durable before the manifest says DONE, the
    signature over the final manifest bytes, then one rename into place."""
    sync_tree(tmp)
    _write_json(tmp / MANIFEST_NAME, manifest.to_json())
    if signing_key is not None:
        write_signature(tmp, signing_key)
    _fsync_dir(tmp)
    os.rename(tmp, out)
    _fsync_dir(out.parent)
