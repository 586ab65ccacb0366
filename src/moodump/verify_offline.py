"""Verify offline: prove a backup's files without a server.

The manifest is DONE (checked by the caller); every file has its recorded size and
sha256; the definitions file is valid JSON; every data file decompresses to the end,
has the recorded number of rows, and its row text has the recorded content digest,
computed exactly as the dump computed it (:func:`file_digest`). A backup read from an
off-site copy is checked in one pass: each data file's size and sha256 are checked while
its rows are digested.

The report, its record and the other methods are :mod:`moodump.verify`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from moodump.compression import iter_uncompressed
from moodump.db.rowstream import CONTENT_ALGO, _multiset_add, content_hash, digest_algo
from moodump.errors import IntegrityError
from moodump.manifest import Manifest, parse_object_records
from moodump.progress import Progress
from moodump.restore import check_files
from moodump.source import BackupSource

if TYPE_CHECKING:  # the report is verify's; only its fields are filled in here
    from moodump.verify import VerifyReport


def verify_offline(
    src: BackupSource,
    m: Manifest,
    report: VerifyReport,
    progress: Callable[[str], None] | None,
    tr: Progress,
) -> None:
    """Check the backup without a server, adding what is wrong to ``report.problems``
    and the tables and rows read to its counts (see the module docstring)."""
    tr.phase("checksums")
    data_files = {c.file for t in m.tables for c in t.chunks}
    entries = {f.name: f for f in m.files}
    try:
        if src.local_dir is not None:
            check_files(src.local_dir, m)
        else:  # one pass: the data files are checked while their digests are computed
            for f in m.files:
                if f.name not in data_files:
                    src.checked_bytes(f)
    except IntegrityError as exc:
        report.problems.append(str(exc.message))
        return
    if m.objects.get("definitions"):
        name = m.objects["definitions"]
        try:
            parse_object_records(src.read_bytes(name).decode("utf-8", "replace"), name)
        except IntegrityError as exc:
            report.problems.append(exc.message)

    def stream(name: str) -> BinaryIO:
        entry = entries.get(name)
        if src.local_dir is not None or entry is None:
            return src.open(name)
        return src.open_checked(entry)

    tr.phase(
        "rows",
        rows_total=sum(t.rows for t in m.tables),
        bytes_total=sum(c.raw_bytes for t in m.tables for c in t.chunks),
        tables_total=len(m.tables),
    )
    for t in m.tables:
        if progress:
            progress(t.name)
        tr.working(t.name)
        rows = 0
        for c in t.chunks:
            try:
                n, digest = file_digest(
                    stream(c.file),
                    name=c.file,
                    codec=m.codec,
                    ordered=(t.digest == "ordered"),
                    algo=digest_algo(c.content_digest),
                    count=tr.add,
                )
            except IntegrityError as exc:
                report.problems.append(str(exc.message))
                continue
            rows += n
            if n != c.rows:
                report.problems.append(f"{c.file}: {n} rows, the manifest says {c.rows}")
            elif digest != c.content_digest:
                report.problems.append(f"{c.file}: content digest differs from the manifest")
        if rows != t.rows and not report.problems:
            report.problems.append(f"table {t.name}: {rows} rows, the manifest says {t.rows}")
        report.tables_checked += 1
        report.rows_checked += rows
        tr.table_done()
    tr.working("")


def file_digest(
    path: Path | BinaryIO,
    *,
    ordered: bool,
    algo: str = CONTENT_ALGO,
    name: str | None = None,
    codec: str | None = None,
    count: Callable[[int, int], None] | None = None,
) -> tuple[int, str]:
    """(rows, digest) of a data file, computed exactly as the dump computed it.

    ``count`` gets (rows, bytes) of each block as it passes (progress)."""
    rows = 0
    shown = name or str(path)
    if ordered:
        h = content_hash(algo)
        for block in iter_uncompressed(path, name=shown, codec=codec):
            h.update(block)
            n = block.count(b"\n")
            rows += n
            if count is not None:
                count(n, len(block))
        return rows, f"{algo}:{h.hexdigest()}"
    acc = 0
    rest = b""
    for block in iter_uncompressed(path, name=shown, codec=codec):
        data = rest + block
        lines = data.split(b"\n")
        rest = lines.pop()
        acc = _multiset_add(acc, lines)
        rows += len(lines)
        if count is not None:
            count(len(lines), len(block))
    if rest:
        raise IntegrityError(f"{shown} ends in the middle of a row", hint="the file is truncated")
    return rows, f"multiset:{acc:016x}"
