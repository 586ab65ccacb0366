"""``check-files``: does Moodle's file store (``moodledata/filedir``) hold every file the
``{prefix}files`` table points at, with the right content?

Moodle keeps each file's content once, named by its SHA-1 (``contenthash``), at
``filedir/xx/yy/<contenthash>`` (``xx``, ``yy``: the first two and next two hex digits).
A row whose content file is missing restores into a site that shows broken links.

Memory stays bounded with millions of rows and files (docs/moodle.md, "Checking
moodledata"): the referenced hashes are streamed (from a backup's data files, or from
the live table with an unbuffered query) into 256 bucket files by their first byte, as
raw 20-byte digests. Then, for each ``xx`` in order, one bucket is read, sorted and
deduplicated in memory (1/256 of the rows) and merged against the listing of
``filedir/xx/*`` -- which Moodle already splits by hash prefix. Nothing holds every hash
at once: with 1 M rows a bucket is ~4,000 digests.

Moodle handles the empty file (SHA-1 ``da39a3ee...``) virtually -- directory rows
(``filename = '.'``) and empty files need no content file -- so that hash is never
reported missing nor orphaned. ``trashdir`` (deleted files awaiting cron) lives beside
``filedir``, not in it, and is not read.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moodump.errors import ConfigError, NotFoundError

#: SHA-1 of the empty string: Moodle serves it without a content file.
EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
EXAMPLES = 10
_HEX40 = re.compile(rb"[0-9a-f]{40}")
_HEX2 = re.compile(r"[0-9a-f]{2}")
_FLUSH = 32 << 10  # bytes buffered per bucket before it is appended to its file


@dataclass
class Finding:
    """One kind of problem: how many, and the first few (in hash order)."""

    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, example: dict[str, Any]) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


@dataclass
class FileCheckReport:
    """The result of one check. ``passed`` is False on any missing or corrupt file;
    orphans (content no row points at) are reported but do not fail the check."""

    source: str
    moodledata: str
    prefix: str
    rows: int = 0  # non-directory rows read
    directory_rows: int = 0
    referenced: int = 0  # distinct content hashes (the empty one aside)
    present: int = 0  # content files found in filedir
    hash_mode: str = "none"  # "none" | "all" | "sample"
    sample: int = 0
    seed: int | None = None
    hashed: int = 0  # content files whose SHA-1 was computed
    missing: Finding = field(default_factory=Finding)
    corrupt: Finding = field(default_factory=Finding)
    orphans: Finding = field(default_factory=Finding)
    invalid_rows: Finding = field(default_factory=Finding)  # contenthash not 40 hex digits
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not (self.missing.count or self.corrupt.count or self.invalid_rows.count)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{verdict}: {self.rows:,} file rows, {self.referenced:,} distinct contents, "
            f"{self.present:,} content files; {self.missing.count:,} missing, "
            f"{self.corrupt.count:,} corrupt ({self.hashed:,} hashed), "
            f"{self.orphans.count:,} orphans"
        )


@dataclass(frozen=True)
class HashPlan:
    """Which content files to hash: none, all (``--hash``) or a seeded sample."""

    mode: str = "none"  # "none" | "all" | "sample"
    sample: int = 0
    seed: int | None = None

    @classmethod
    def of(cls, hash_all: bool, sample: int | None, seed: int | None) -> HashPlan:
        if hash_all and sample is not None:
            raise ConfigError("--hash and --sample cannot be combined", hint="pick one")
        if sample is not None:
            if sample < 1:
                raise ConfigError(
                    f"--sample {sample} must be at least 1", hint="e.g. --sample 1000"
                )
            return cls(
                "sample",
                sample,
                seed if seed is not None else random.SystemRandom().randrange(1 << 32),
            )
        return cls("all" if hash_all else "none")


def content_path(filedir: Path, contenthash: str) -> Path:
    """Where Moodle keeps the content whose SHA-1 is ``contenthash``."""
    return filedir / contenthash[:2] / contenthash[2:4] / contenthash


def filedir_of(moodledata: Path) -> Path:
    filedir = Path(moodledata) / "filedir"
    if not filedir.is_dir():
        raise NotFoundError(
            f"{filedir} is not a directory: {moodledata} is not a Moodle dataroot",
            hint="pass --moodledata the directory $CFG->dataroot names (it holds filedir/)",
        )
    return filedir


#: A row source: yields (contenthash, filename) as the table stores them (bytes).
Rows = Callable[[], Iterable[tuple[bytes | None, bytes | None]]]
#: Given a few content hashes, the rows that point at them (for the examples), as dicts.
Describe = Callable[[set[str]], dict[str, dict[str, Any]]]


def check_filestore(
    rows: Rows,
    moodledata: Path,
    *,
    source: str,
    prefix: str,
    plan: HashPlan | None = None,
    describe: Describe | None = None,
    tmpdir: Path | None = None,
) -> FileCheckReport:
    """Cross-check the rows against ``moodledata/filedir`` (see the module docstring)."""
    import time

    t0 = time.monotonic()
    plan = plan or HashPlan()
    filedir = filedir_of(moodledata)
    report = FileCheckReport(source, str(moodledata), prefix, hash_mode=plan.mode,
                             sample=plan.sample, seed=plan.seed)  # fmt: skip
    rng = random.Random(plan.seed)
    reservoir: list[bytes] = []
    seen_unique = 0
    with tempfile.TemporaryDirectory(prefix="moodump-files-", dir=tmpdir) as tmp:
        buckets = _Buckets(Path(tmp))
        try:
            _fill(buckets, rows(), report)
        finally:
            buckets.close()
        empty = bytes.fromhex(EMPTY_SHA1)
        for xx in range(256):
            wanted = buckets.sorted_unique(xx)
            if empty in wanted:
                wanted.remove(empty)
            present = _listing(filedir, xx)
            report.present += len(present)
            report.referenced += len(wanted)
            have = set(present)
            for digest in wanted:
                if digest not in have:
                    report.missing.add(_example(filedir, digest))
                    continue
                seen_unique += 1
                if plan.mode == "all":
                    _hash_one(filedir, digest, report)
                elif plan.mode == "sample":
                    if len(reservoir) < plan.sample:
                        reservoir.append(digest)
                    else:
                        j = rng.randrange(seen_unique)
                        if j < plan.sample:
                            reservoir[j] = digest
            wanted_set = set(wanted)
            for digest in present:
                if digest not in wanted_set and digest != empty:
                    report.orphans.add(_example(filedir, digest))
        for digest in sorted(reservoir):
            _hash_one(filedir, digest, report)
    if describe is not None:
        _describe_examples(report, describe)
    report.duration_s = round(time.monotonic() - t0, 3)
    return report


def _fill(
    buckets: _Buckets, rows: Iterable[tuple[bytes | None, bytes | None]], report: FileCheckReport
) -> None:
    """Stream the rows' content hashes into the buckets (the hot loop: kept lean)."""
    buffers = buckets.buffers
    n = dirs = 0
    for contenthash, filename in rows:
        if filename == b".":
            dirs += 1
            continue
        n += 1
        try:
            digest = bytes.fromhex(contenthash.decode("ascii"))  # type: ignore[union-attr]
        except (AttributeError, ValueError):  # NULL, not hex, not ASCII
            digest = b""
        if len(digest) != 20 or len(contenthash or b"") != 40:  # (fromhex skips spaces)
            text = (contenthash or b"").decode("utf-8", "replace")
            report.invalid_rows.add({"contenthash": text})
            continue
        buf = buffers[digest[0]]
        buf += digest
        if len(buf) >= _FLUSH:
            buckets.flush(digest[0])
    report.rows, report.directory_rows = n, dirs


def _example(filedir: Path, digest: bytes) -> dict[str, Any]:
    h = digest.hex()
    return {"contenthash": h, "path": str(content_path(filedir, h))}


def _hash_one(filedir: Path, digest: bytes, report: FileCheckReport) -> None:
    path = content_path(filedir, digest.hex())
    sha = hashlib.sha1(usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                sha.update(block)
    except FileNotFoundError:  # deleted since it was listed
        report.missing.add(_example(filedir, digest))
        return
    except OSError as exc:
        report.corrupt.add({**_example(filedir, digest), "error": exc.strerror or str(exc)})
        return
    report.hashed += 1
    if sha.digest() != digest:
        report.corrupt.add({**_example(filedir, digest), "sha1": sha.hexdigest()})


def _describe_examples(report: FileCheckReport, describe: Describe) -> None:
    """Add the rows behind the first missing and corrupt files (filename, component...)."""
    wanted = {e["contenthash"] for f in (report.missing, report.corrupt) for e in f.examples}
    if not wanted:
        return
    found = describe(wanted)
    for finding in (report.missing, report.corrupt):
        for e in finding.examples:
            if e["contenthash"] in found:
                e["row"] = found[e["contenthash"]]


def _listing(filedir: Path, xx: int) -> list[bytes]:
    """The content files under ``filedir/xx/*/`` as sorted digests (other names skipped)."""
    top = filedir / f"{xx:02x}"
    out: list[bytes] = []
    try:
        subdirs = sorted(e.name for e in os.scandir(top) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return out
    for yy in subdirs:
        if not _HEX2.fullmatch(yy):
            continue
        prefix = f"{xx:02x}{yy}".encode()
        with os.scandir(top / yy) as it:
            for e in it:
                name = e.name.encode()
                if name.startswith(prefix) and _HEX40.fullmatch(name) and e.is_file():
                    out.append(bytes.fromhex(e.name))
    out.sort()
    return out


class _Buckets:
    """256 append-only files of raw 20-byte digests, one per first byte."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.buffers = [bytearray() for _ in range(256)]

    def add(self, digest: bytes) -> None:
        buf = self.buffers[digest[0]]
        buf += digest
        if len(buf) >= _FLUSH:
            self.flush(digest[0])

    def flush(self, i: int) -> None:
        buf = self.buffers[i]
        if buf:
            with open(self.root / f"{i:02x}", "ab") as fh:
                fh.write(buf)
            buf.clear()

    def close(self) -> None:
        for i in range(256):
            self.flush(i)

    def sorted_unique(self, i: int) -> list[bytes]:
        path = self.root / f"{i:02x}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        path.unlink()
        return sorted({data[j : j + 20] for j in range(0, len(data), 20)})


def backup_rows(
    lines: Iterator[bytes], columns: list[str]
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(contenthash, filename) of each row of a ``files`` data file's row text, as
    stored: escaping never changes a 40-hex-digit hash nor a ``.`` file name."""
    for name in ("contenthash", "filename"):
        if name not in columns:
            raise ConfigError(
                f"the files table of this backup has no {name} column",
                hint="is this a Moodle database? check --prefix",
            )
    ih, fn = columns.index("contenthash"), columns.index("filename")
    need = max(ih, fn) + 1
    for line in lines:
        fields = line.split(b"\t", need)
        if len(fields) < need:
            continue
        yield fields[ih], fields[fn]


def split_lines(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Rows (LF-terminated) of a stream of blocks of row text."""
    rest = b""
    for block in blocks:
        data = rest + block if rest else block
        lines = data.split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest
