"""An archive directory of binary log files: ``chain.json`` (the chain manifest, see
:mod:`moodump.binlog.chain`) and one zstd file per server file (``binlog.000012.zst``).

Files are written beside their final name and renamed; ``chain.json`` is replaced
atomically after the file it lists is durable. A file on disk that ``chain.json`` does
not list (a pull killed between the two) is simply fetched and written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from moodump.binlog.chain import CHAIN_FILE, ArchivedFile, Chain, Gap, check_chain
from moodump.binlog.events import GTID, ROTATE, BinlogFormatError, EventReader, Gtid
from moodump.compression import DataWriter, get_codec, iter_uncompressed
from moodump.errors import IntegrityError, NotFoundError, StorageError
from moodump.fsmodes import make_dir, write_text

log = logging.getLogger("moodump.pitr")

LOCK_FILE = ".lock"
STAGING = ".incoming"


@dataclass
class Summary:
    """What parsing a raw binlog file found: how far it is whole, and its metadata."""

    size: int  # end of the last complete event
    events: int
    first_time: int
    last_time: int
    gtid_list: list[str]
    gtid_first: list[str]
    gtid_last: list[str]
    ends_with_rotate: bool
    next_file: str
    raw_sha256: str = ""
    trailing: int = 0  # bytes of an incomplete last event


def summarize(path: Path, limit: int | None = None) -> Summary:
    """Parse a raw binlog file (CRC-checked) up to its last complete event, or ``limit``."""
    reader = EventReader(bodies=False)
    first: dict[tuple[int, int], Gtid] = {}
    last: dict[tuple[int, int], Gtid] = {}
    s = Summary(4, 0, 0, 0, [], [], [], False, "")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        remaining = limit
        while True:
            chunk = fh.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            for ev in reader.feed(chunk):
                s.events += 1
                s.size = ev.end
                if not s.first_time:
                    s.first_time = ev.timestamp
                s.last_time = max(s.last_time, ev.timestamp)
                s.ends_with_rotate = ev.type == ROTATE
                if ev.type == ROTATE:
                    s.next_file = ev.next_file
                elif ev.type == GTID and ev.gtid is not None:
                    key = (ev.gtid.domain, ev.gtid.server)
                    first.setdefault(key, ev.gtid)
                    last[key] = ev.gtid
                elif ev.gtid_list and not s.gtid_list:
                    s.gtid_list = [str(g) for g in ev.gtid_list]
    if not reader.magic_seen:
        raise BinlogFormatError("too short for a binary log")
    s.trailing = reader.pending
    s.gtid_first = [str(g) for g in first.values()]
    s.gtid_last = [str(g) for g in last.values()]
    # sha256 of the whole-event prefix (what is archived)
    with open(path, "rb") as fh:
        left = s.size
        while left:
            b = fh.read(min(1 << 20, left))
            if not b:
                break
            h.update(b)
            left -= len(b)
    s.raw_sha256 = h.hexdigest()
    return s


@dataclass
class Archive:
    """An archive directory (created when missing)."""

    root: Path
    chain: Chain = field(default_factory=Chain)

    @classmethod
    def open(cls, root: Path | str, *, create: bool = False) -> Archive:
        root = Path(root)
        if not (root / CHAIN_FILE).exists():
            if not create:
                raise NotFoundError(
                    f"{root} is not a binary log archive (no {CHAIN_FILE})",
                    hint="give the directory moodump binlog pull --output writes to",
                )
            try:
                make_dir(root, parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create {root}: {exc.strerror}", hint="check the path"
                ) from exc
            return cls(root)
        return cls(root, Chain.from_json((root / CHAIN_FILE).read_text(encoding="utf-8")))

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    def save(self) -> None:
        self.chain.updated_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            write_text(self.root / CHAIN_FILE, self.chain.to_json(), fsync=True)
        except OSError as exc:
            raise StorageError(
                f"cannot write {self.root / CHAIN_FILE}: {exc.strerror}",
                hint="free space or fix the permissions; the archive is unchanged",
            ) from exc

    def store(self, raw: Path, name: str, *, complete: bool) -> ArchivedFile:
        """Compress the whole events of the raw file ``raw`` (server file ``name``) into
        the archive and list it in the chain (saved). Returns its entry."""
        s = summarize(raw)
        codec, level = get_codec("zstd")
        stored = name + codec.extension
        tmp = self.root / f".{stored}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        w = DataWriter(tmp, codec, level, threaded=False)
        try:
            with open(raw, "rb") as fh:
                left = s.size
                while left:
                    b = fh.read(min(1 << 20, left))
                    if not b:
                        raise IntegrityError(
                            f"{raw} shrank while it was archived", hint="pull again"
                        )
                    w.write(b)
                    left -= len(b)
            stored_bytes, sha = w.close()
        except BaseException:
            w.abort()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / stored)
        entry = ArchivedFile(
            name=name,
            stored=stored,
            complete=complete,
            size=s.size,
            sha256=sha,
            stored_bytes=stored_bytes,
            raw_sha256=s.raw_sha256,
            events=s.events,
            first_time=s.first_time,
            last_time=s.last_time,
            gtid_list=s.gtid_list,
            gtid_first=s.gtid_first,
            gtid_last=s.gtid_last,
            next_file=s.next_file,
        )
        self.chain.put(entry)
        for gap in self.chain.gaps:  # a gap ends where the first file after it starts
            if not gap.to_time and gap.last_missing < name and entry.first_time:
                gap.to_time = entry.first_time
        self.save()
        log.info(
            "archived %s (%d bytes, %d events, %s)",
            name, s.size, s.events, "complete" if complete else "open: the next pull continues it",
        )  # fmt: skip
        return entry

    def add_gap(self, gap: Gap) -> None:
        self.chain.gaps.append(gap)
        self.save()

    def raw_blocks(self, f: ArchivedFile) -> Iterator[bytes]:
        """The raw bytes of an archived file, checked: the stored file's size and sha256
        first, then the raw length and sha256 as they stream.

        A pull may store the open file again (longer, same name) after this archive's
        ``chain.json`` was read: the stored file is then the one the chain lists now, and
        ``f``'s bytes are its prefix, read from it and checked against ``f``'s raw sha256.
        The file is opened once, so a pull replacing it meanwhile changes nothing here."""
        path = self.root / f.stored
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by iter_uncompressed (or below)
        except FileNotFoundError:
            raise IntegrityError(
                f"{f.stored} is missing from the archive {self.root}",
                hint="the archive is damaged: moodump binlog verify lists what is wrong",
            ) from None
        try:
            size, sha = _sha256_open(fh)
            if (size, sha) != (f.stored_bytes, f.sha256) and not self._stored_again(f, size, sha):
                raise IntegrityError(
                    f"{f.stored} in {self.root} does not match its checksum in {CHAIN_FILE}",
                    hint="the archive is damaged; restore to a point before this file",
                )
            fh.seek(0)
        except BaseException:
            fh.close()
            raise
        h = hashlib.sha256()
        n = 0
        for b in iter_uncompressed(fh, name=str(path), codec="zstd"):
            b = b[: f.size - n]
            h.update(b)
            n += len(b)
            if b:
                yield b
        if n != f.size or h.hexdigest() != f.raw_sha256:
            raise IntegrityError(
                f"{f.stored} decompresses to other bytes than were archived",
                hint="the archive is damaged; restore to a point before this file",
            )

    def _stored_again(self, f: ArchivedFile, size: int, sha: str) -> bool:
        """Whether the stored file (``size``, ``sha``) is ``f`` archived again by a pull
        since this archive's chain.json was read: the newer chain lists it, longer."""
        try:
            now = Chain.from_json((self.root / CHAIN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        newer = now.get(f.name)
        return (
            newer is not None
            and (newer.stored_bytes, newer.sha256) == (size, sha)
            and newer.size >= f.size
        )

    def extract(self, f: ArchivedFile, dest_dir: Path) -> Path:
        """Write the checked raw file into ``dest_dir`` (for mariadb-binlog)."""
        out = dest_dir / f.name
        with open(out, "wb") as fh:
            for b in self.raw_blocks(f):
                fh.write(b)
        return out

    def problems(self) -> list[str]:
        return check_chain(self.chain)


def _sha256_open(fh: BinaryIO) -> tuple[int, str]:
    """(size, sha256) of an open file's bytes from its start."""
    h = hashlib.sha256()
    size = 0
    while b := fh.read(1 << 20):
        h.update(b)
        size += len(b)
    return size, h.hexdigest()
