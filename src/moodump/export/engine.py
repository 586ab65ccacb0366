"""Export a backup as Parquet: read through a BackupSource, write through pyarrow.fs.

Each data file of a table becomes one Parquet file, ``OUT/<table>/part-NNNNN.parquet``
(NNNNN is the data file's position among the table's chunks), so the directory of a
table is one dataset for DuckDB (``read_parquet('OUT/t/*.parquet')``), pandas or
``pyarrow.dataset``. A file is streamed: the stored bytes are checked (size, sha256)
and decompressed as they are read, pyarrow's CSV reader splits and parses blocks of
``block_bytes``, each column is converted (:mod:`moodump.export.types`) and rows are
written in row groups of ``row_group_rows``; memory per worker is a few blocks and one
row group, whatever the table's size. Files are exported in parallel by ``workers``
threads (pyarrow's parsing, conversion and Parquet encoding run in C++ without the GIL).

``export.json`` is written at OUT last: an export without it is incomplete.
"""

from __future__ import annotations

import contextlib
import ctypes
import fnmatch
import hashlib
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from moodump import __version__
from moodump.compression import iter_line_blocks, open_reader
from moodump.crypto import VerifyKey
from moodump.errors import ConfigError, IntegrityError, StorageError
from moodump.export.types import (
    META_NULLED,
    META_SRID,
    ColumnPlan,
    column_encodings,
    describe,
    srids,
    table_plans,
    unescape,
)
from moodump.manifest import Chunk, Manifest, TableEntry
from moodump.progress import Progress
from moodump.source import BackupSource

log = logging.getLogger("moodump.export")

EXPORT_MANIFEST = "export.json"
EXPORT_FORMAT = "moodump-export/1"
COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "none")


@dataclass(frozen=True)
class ExportOptions:
    tables: tuple[str, ...] = ()  # names or globs; empty: every table
    workers: int = 2
    row_group_rows: int = 64 * 1024
    compression: str = "zstd"
    compression_level: int | None = 1
    row_group_bytes: int = 8 << 20  # a row group ends early at this much Arrow data
    block_bytes: int = 1 << 20  # row text parsed at once (longer for a longer row)


@dataclass
class FileExport:
    path: str  # relative to OUT, "/"-separated
    rows: int
    bytes: int
    sha256: str
    source_file: str


@dataclass
class TableExport:
    name: str
    directory: str
    rows: int = 0
    columns: list[dict[str, Any]] = field(default_factory=list)
    files: list[FileExport] = field(default_factory=list)
    nulled: dict[str, int] = field(default_factory=dict)  # column -> values made NULL


@dataclass
class ExportResult:
    output: str  # where (path or URL, no secrets)
    tables: list[TableExport]
    skipped: dict[str, str]  # table -> why it has no dataset
    rows: int
    bytes: int
    files: int
    duration_s: float
    warnings: list[str] = field(default_factory=list)

    @property
    def nulled(self) -> dict[str, dict[str, int]]:
        return {t.name: t.nulled for t in self.tables if t.nulled}

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "rows": self.rows,
            "bytes": self.bytes,
            "files": self.files,
            "duration_s": round(self.duration_s, 3),
            "tables": len(self.tables),
            "nulled": self.nulled,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


# -- where the export goes ----------------------------------------------------------------


@dataclass
class _Output:
    fs: Any
    base: str  # the base path in ``fs`` ("bucket/prefix" or an absolute directory)
    display: str
    close: Callable[[], None] = lambda: None

    def path(self, rel: str) -> str:
        return f"{self.base.rstrip('/')}/{rel}" if self.base else rel

    def make_dir(self, rel: str) -> None:
        """Create a directory (a local file system only: object stores have none)."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            try:
                self.fs.create_dir(self.path(rel), recursive=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create {self.path(rel)}: {exc}", hint="check the output"
                ) from exc


def _open_output(output: str, env: Mapping[str, str]) -> _Output:
    text = str(output).strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme == "s3":
        from moodump.storage import S3Backend, open_backend

        backend = open_backend(text, env=env)
        assert isinstance(backend, S3Backend)
        try:
            fs, base = backend.arrow_filesystem()
        except BaseException:
            backend.close()
            raise
        return _Output(fs, base, backend.where(""), backend.close)
    if scheme == "file":
        text = text[len("file://") :]
    elif scheme:
        raise ConfigError(
            f"an export is written to a directory or to s3://, not to {scheme}://",
            hint="export to a local directory and copy it, or give an s3:// URL",
        )
    if not text:
        raise ConfigError("no --output given", hint="give a directory or an s3:// URL")
    path = Path(text).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create {path}: {exc.strerror}", hint="check the path and its permissions"
        ) from exc
    return _Output(pafs.LocalFileSystem(), str(path), str(path))


def _refuse_non_empty(out: _Output) -> None:
    try:
        infos = out.fs.get_file_info(pafs.FileSelector(out.base, allow_not_found=True))
    except OSError as exc:
        raise StorageError(
            f"cannot list {out.display}: {exc}", hint="check the output location and access"
        ) from exc
    if infos:
        raise ConfigError(
            f"{out.display} is not empty",
            hint="export into a new, empty directory or prefix (an export is never merged "
            "into another one)",
        )


def table_directory(name: str) -> str:
    """A table's directory name below OUT: the name, with ``%``, ``/`` and ``\\`` (and a
    leading ``.``) percent-encoded, so no name can leave OUT or hide."""
    safe = name.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    return safe


# -- reading a data file ------------------------------------------------------------------


class _HashingSink(io.RawIOBase):
    """An output stream that hashes (sha256) and counts what is written through it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.sha.update(data)
        self._inner.write(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                super().close()


@dataclass
class _Task:
    table: TableEntry
    index: int
    chunk: Chunk | None  # None: an empty table (a schema-only file)
    plans: list[ColumnPlan]
    path: str  # relative to OUT
    metadata: dict[bytes, bytes]


@dataclass
class _Done:
    task: _Task
    file: FileExport
    nulled: dict[str, int]
    warnings: list[str]


class _Exporter:
    def __init__(
        self, source: BackupSource, manifest: Manifest, out: _Output, opts: ExportOptions
    ) -> None:
        self.source = source
        self.manifest = manifest
        self.out = out
        self.opts = opts

    def _blocks(self, task: _Task) -> Iterator[memoryview | bytes]:
        """The uncompressed row text of the task's data file in blocks of whole rows
        (about ``block_bytes``; a longer row makes a longer block; views of one reused
        buffer, each valid until the next is asked for), each raw CR byte written
        ``\\r``: pyarrow's CSV reader would end a row at a CR, and ``\\r`` never
        occurs in a data file otherwise (a backslash is always escaped); the converters
        turn it back into CR. The stored bytes are checked against the manifest (size,
        sha256) when the stream ends."""
        assert task.chunk is not None
        entry = self.manifest.file(task.chunk.file)
        shown = f"{self.source.where}/{entry.name}"
        stream = self.source.open_checked(entry)
        for block in iter_line_blocks(
            stream, self.opts.block_bytes, name=shown, codec=self.manifest.codec
        ):
            if block[-1] != 0x0A:
                raise IntegrityError(
                    f"{shown} ends inside a row (no LF after its last row)",
                    hint="the backup is damaged; use another one",
                )
            if _has_cr(block):
                yield bytes(block).replace(b"\r", b"\\r")
            else:
                yield block

    def _batches(self, task: _Task, include: list[int] | None = None) -> Iterator[pa.RecordBatch]:
        """The task's rows as record batches of the plans' read types (or only the
        columns ``include``), one batch per block, parsed by pyarrow's CSV reader with
        quoting and escaping off: the split at TAB and LF is exact (docs/format.md)."""
        names = [f"c{i}" for i in range(len(task.plans))]
        types = {n: p.read_type for n, p in zip(names, task.plans, strict=True)}
        parse = pacsv.ParseOptions(
            delimiter="\t", quote_char=False, escape_char=False, double_quote=False,
            newlines_in_values=False, ignore_empty_lines=False,
        )  # fmt: skip
        convert = pacsv.ConvertOptions(
            column_types=types, null_values=["\\N"], strings_can_be_null=True,
            check_utf8=False, include_columns=None if include is None else [names[i] for i in include],
        )  # fmt: skip
        for block in self._blocks(task):
            read = pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(block) + 1
            )
            text = pa.py_buffer(block)
            try:
                table = pacsv.read_csv(
                    text, read_options=read, parse_options=parse, convert_options=convert
                )  # the arrays are copies: the block's buffer is reused after this
            except pa.ArrowInvalid as exc:
                raise _damaged(task, exc) from exc
            finally:
                del text  # let the reader reuse the block's buffer
            yield from table.combine_chunks().to_batches()

    def _check_empty(self, chunk: Chunk) -> None:
        """Read a data file the manifest says is empty to its end (checking its sha256)."""
        entry = self.manifest.file(chunk.file)
        shown = f"{self.source.where}/{entry.name}"
        with open_reader(self.source.open_checked(entry), self.manifest.codec, name=shown) as fh:
            if fh.read(1 << 16):
                raise IntegrityError(
                    f"{chunk.file} holds rows, the manifest says it has none",
                    hint="the backup is damaged; use another one",
                )
            fh.read()

    def _srid_fields(self, task: _Task) -> tuple[list[pa.Field], list[str]]:
        """The fields, with each spatial column's SRID (found by a first pass over the
        file) in its field metadata: ``srid`` is the one SRID of the column's values,
        or all of them comma-separated (with a warning) when they differ."""
        fields = [p.field for p in task.plans]
        spatial = [i for i, p in enumerate(task.plans) if p.spatial]
        if not spatial or task.chunk is None:
            return fields, []
        found: dict[int, set[int]] = {i: set() for i in spatial}
        for batch in self._batches(task, include=spatial):
            for j, i in enumerate(spatial):
                found[i] |= srids(unescape(batch.column(j)))
        warnings = []
        for i in spatial:
            if not found[i]:
                continue
            meta = dict(fields[i].metadata or {})
            meta[META_SRID] = ",".join(str(s) for s in sorted(found[i])).encode()
            fields[i] = fields[i].with_metadata(meta)
            if len(found[i]) > 1:
                warnings.append(
                    f"{task.table.name}.{fields[i].name} ({task.path}): values have SRIDs "
                    f"{sorted(found[i])}; the WKB values do not carry them"
                )
        return fields, warnings

    def run(self, task: _Task) -> _Done:
        fields, warnings = self._srid_fields(task)
        nulled = [0] * len(task.plans)
        schema = pa.schema(fields, metadata=task.metadata)
        path = self.out.path(task.path)
        try:
            sink = _HashingSink(self.out.fs.open_output_stream(path))
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}", hint="check the output") from exc
        writer = _LazyWriter(sink, schema, self.opts)
        rows = 0
        pending: list[pa.RecordBatch] = []
        pending_rows = pending_bytes = 0
        n = self.opts.row_group_rows
        try:
            if task.chunk is not None and task.chunk.rows == 0:
                self._check_empty(task.chunk)
                writer.write_table(schema.empty_table())
            elif task.chunk is not None:
                for batch in self._batches(task):
                    cols = []
                    for i, plan in enumerate(task.plans):
                        arr, bad = plan.convert(batch.column(i))
                        nulled[i] += bad
                        cols.append(arr)
                    converted = pa.RecordBatch.from_arrays(cols, schema=schema)
                    rows += converted.num_rows
                    pending.append(converted)
                    pending_rows += converted.num_rows
                    pending_bytes += converted.nbytes
                    if pending_bytes >= self.opts.row_group_bytes and pending_rows < n:
                        # wide rows: a smaller row group, so memory stays bounded
                        writer.write_table(pa.Table.from_batches(pending, schema=schema))
                        pending, pending_rows, pending_bytes = [], 0, 0
                    while pending_rows >= n:
                        table = pa.Table.from_batches(pending, schema=schema)
                        writer.write_table(table.slice(0, n), row_group_size=n)
                        rest = table.slice(n)
                        pending = rest.to_batches()
                        pending_rows = rest.num_rows
                        pending_bytes = rest.nbytes
                if pending_rows:
                    writer.write_table(pa.Table.from_batches(pending, schema=schema))
                if rows != task.chunk.rows:
                    raise IntegrityError(
                        f"{task.chunk.file} holds {rows} rows, the manifest says {task.chunk.rows}",
                        hint="the backup is damaged; use another one",
                    )
            else:
                writer.write_table(schema.empty_table())
            by_name = {p.column.name: c for p, c in zip(task.plans, nulled, strict=True) if c}
            writer.add_key_value_metadata(
                {"moodump.rows": str(rows), META_NULLED.decode(): json.dumps(by_name)}
            )
            writer.close()
        except BaseException:
            _close_quietly(writer, sink)
            raise
        return _Done(
            task,
            FileExport(
                task.path,
                rows,
                sink.size,
                sink.sha.hexdigest(),
                task.chunk.file if task.chunk else "",
            ),
            by_name,
            warnings,
        )


class _LazyWriter:
    """A ParquetWriter made at the first write, when the first row group tells which
    columns repeat (:func:`column_encodings`)."""

    def __init__(self, sink: Any, schema: pa.Schema, opts: ExportOptions) -> None:
        self.sink = sink
        self.schema = schema
        self.opts = opts
        self.writer: pq.ParquetWriter | None = None

    def _open(self, first: pa.Table | None) -> pq.ParquetWriter:
        if self.writer is None:
            dictionary, encodings = column_encodings(first) if first is not None else ([], {})
            self.writer = pq.ParquetWriter(
                self.sink, self.schema, compression=self.opts.compression,
                compression_level=self.opts.compression_level, store_schema=True,
                use_dictionary=dictionary, column_encoding=encodings or None,
            )  # fmt: skip
        return self.writer

    def write_table(self, table: pa.Table, row_group_size: int | None = None) -> None:
        self._open(table if table.num_rows else None).write_table(
            table, row_group_size=row_group_size
        )

    def add_key_value_metadata(self, meta: dict[str, str]) -> None:
        self._open(None).add_key_value_metadata(meta)

    def close(self) -> None:
        self._open(None).close()


def _has_cr(block: memoryview | bytes) -> bool:
    """Whether a block holds a CR byte: one memchr over the buffer, no copy (a view of
    :func:`~moodump.compression.iter_line_blocks` starts at its buffer's first byte)."""
    whole = cast(bytearray, block.obj) if isinstance(block, memoryview) else block
    return whole.find(b"\r", 0, len(block)) >= 0


#: glibc's mmap threshold while exporting (see :func:`_return_freed_blocks`).
MMAP_THRESHOLD = 4 << 20


def _return_freed_blocks() -> None:
    """On glibc, fix the mmap threshold at :data:`MMAP_THRESHOLD` (4 MiB): an allocation
    that large (a long row's buffer, large Python objects) is its own mapping and goes
    back to the system when freed. glibc otherwise raises the threshold (up to 32 MiB)
    after such frees and serves later ones from per-thread heaps that keep their freed
    memory: peak RSS of the whole scale-1 export at 2 workers, 290 MB, against 260 MB
    with a fixed threshold. It was 128 KiB (glibc's initial value) until the row text
    got one reused buffer per worker; at 128 KiB every smaller block (zstd's
    contexts, Parquet pages, Python's copies) was also a fresh mapping whose pages
    fault in: measured at 2 workers, logstore 27.6 s of CPU and 229 MB, whole backup
    251 MB; at 4 MiB 24.5 s and 238 MB, 247 MB; without a fixed threshold 23.5 s and
    257 MB, 265 MB (docs/benchmarks-export.md). Process-wide; allocations stay correct
    either way."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(MMAP_THRESHOLD))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to do
        pass


#: How long jemalloc keeps freed pages (ms) before it gives them back to the system.
JEMALLOC_DECAY_MS = 1000


def _lean_memory_pool() -> Any:
    """Make jemalloc, purging freed pages after :data:`JEMALLOC_DECAY_MS`, pyarrow's
    default pool while the export runs, and return the pool it replaces (None when
    jemalloc is not built in).

    With the default mimalloc pool, memory freed between blocks stays with the process:
    measured peak RSS of the logstore export at 2 workers, 318 MB, against 277 MB with
    jemalloc (docs/benchmarks-export.md). Purging at once (decay 0) made every block's
    arrays fresh pages to fault in, more so with two threads: logstore at 2 workers,
    0.86 M page faults and 2.2 s of system CPU, against 0.35-0.36 M and 1.0-1.25 s with
    a decay of 1 s, for 8-11 MB more peak RSS (242 -> 250-253 MB; whole scale-1 backup
    252 -> 264-265 MB).
    """
    try:
        lean = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return None
    previous = pa.default_memory_pool()
    pa.set_memory_pool(lean)
    return previous


def _close_quietly(writer: Any, sink: _HashingSink) -> None:
    with contextlib.suppress(Exception):
        writer.close()
    with contextlib.suppress(Exception):
        sink.close()


def _damaged(task: _Task, exc: Exception) -> IntegrityError:
    where = task.chunk.file if task.chunk else task.path
    return IntegrityError(
        f"{where} of table {task.table.name} cannot be read as row text: {exc}",
        hint="the backup is damaged or was not written by moodump; use another one",
    )


# -- the use case -------------------------------------------------------------------------


def select_tables(manifest: Manifest, patterns: tuple[str, ...]) -> list[TableEntry]:
    """The tables named by ``patterns`` (names or globs, case-sensitive); all without."""
    if not patterns:
        return list(manifest.tables)
    chosen = [t for t in manifest.tables if any(fnmatch.fnmatchcase(t.name, p) for p in patterns)]
    missing = [
        p for p in patterns if not any(fnmatch.fnmatchcase(t.name, p) for t in manifest.tables)
    ]
    if missing:
        from moodump.errors import NotFoundError

        raise NotFoundError(
            f"no table of this backup matches {', '.join(repr(p) for p in missing)}",
            hint="table names are case-sensitive; the manifest lists them",
        )
    return chosen


def _file_metadata(
    source: BackupSource, m: Manifest, table: TableEntry, create: str, chunk: Chunk | None
) -> dict[bytes, bytes]:
    snapshot: dict[str, Any] = {"started_at": m.started_at, "finished_at": m.finished_at}
    for key in ("binlog_file", "binlog_position", "gtid", "method", "at"):
        if key in m.snapshot:
            snapshot[key] = m.snapshot[key]
    meta = {
        "moodump.format": EXPORT_FORMAT,
        "moodump.tool_version": __version__,
        "moodump.database": m.database,
        "moodump.table": table.name,
        "moodump.create_table": create,
        "moodump.snapshot": json.dumps(snapshot, sort_keys=True),
        "moodump.server": f"{m.server_flavor} {m.server_version}".strip(),
        "moodump.source_file": chunk.file if chunk else "",
    }
    return {k.encode(): v.encode() for k, v in meta.items()}


def export(
    source: BackupSource,
    output: str | Path,
    opts: ExportOptions | None = None,
    *,
    env: Mapping[str, str] | None = None,
    progress: Callable[[str, int], None] | None = None,
    verify_keys: Sequence[VerifyKey] = (),
    tracker: Progress | None = None,
) -> ExportResult:
    """Export the backup ``source`` as Parquet datasets at ``output``.

    ``output`` is a directory (created; it must be empty) or ``s3://bucket/prefix``
    (endpoint and credentials from the ``S3_*`` settings in ``env``, default the process
    environment). ``progress(path, rows)`` is called after each file, and ``tracker`` (a
    :class:`~moodump.progress.Progress`) counts rows and bytes as files finish. With
    ``verify_keys`` the backup's manifest must be signed by one of them. Returns what was
    written; ``export.json`` at ``output`` lists every file with its rows and sha256.
    """
    opts = opts or ExportOptions()
    if opts.workers < 1 or opts.row_group_rows < 1 or opts.block_bytes < 1024:
        raise ConfigError("workers and row-group rows must be >= 1", hint="use e.g. --workers 2")
    if opts.compression not in COMPRESSIONS:
        raise ConfigError(
            f"unknown Parquet compression {opts.compression!r}",
            hint=f"use one of {', '.join(COMPRESSIONS)}",
        )
    t0 = time.monotonic()
    if verify_keys:
        source.verify_keys = tuple(verify_keys)
    manifest = source.done_manifest()
    tables = select_tables(manifest, opts.tables)
    out = _open_output(str(output), dict(os.environ) if env is None else env)
    tr = tracker or Progress()
    try:
        with tr.operation("export", manifest.database):
            return _export(source, manifest, tables, out, opts, progress, t0, tr)
    finally:
        out.close()


def _export(
    source: BackupSource,
    manifest: Manifest,
    tables: list[TableEntry],
    out: _Output,
    opts: ExportOptions,
    progress: Callable[[str, int], None] | None,
    t0: float,
    tracker: Progress,
) -> ExportResult:
    _refuse_non_empty(out)

    skipped: dict[str, str] = {}
    results: dict[str, TableExport] = {}
    tasks: list[_Task] = []
    for table in tables:
        if table.kind != "table":
            skipped[table.name] = f"a {table.kind}, not a table"
            continue
        if table.data_skipped:
            skipped[table.name] = "its data was not dumped"
            continue
        if not table.columns:
            skipped[table.name] = "it has no stored columns (all are generated)"
            continue
        create = source.checked_bytes(manifest.file(table.schema_file)).decode("utf-8")
        plans = table_plans(create, table.columns, table.column_types)
        directory = table_directory(table.name)
        results[table.name] = TableExport(table.name, directory, columns=describe(plans))
        out.make_dir(directory)
        chunks: list[Chunk | None] = list(table.chunks) or [None]
        for i, chunk in enumerate(chunks):
            path = f"{directory}/part-{i:05d}.parquet"
            meta = _file_metadata(source, manifest, table, create, chunk)
            tasks.append(_Task(table, i, chunk, plans, path, meta))
    tasks.sort(key=lambda t: -(t.chunk.raw_bytes if t.chunk else 0))
    tracker.phase(
        "data",
        rows_total=sum(t.chunk.rows if t.chunk else t.table.rows for t in tasks),
        bytes_total=sum(t.chunk.raw_bytes if t.chunk else 0 for t in tasks),
    )

    def run(task: _Task) -> _Done:
        tracker.working(task.table.name)
        try:
            return exporter.run(task)
        finally:
            tracker.working("")

    exporter = _Exporter(source, manifest, out, opts)
    warnings: list[str] = []
    done: list[_Done] = []
    pool = _lean_memory_pool()
    _return_freed_blocks()
    with ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="export") as threads:
        futures = [threads.submit(run, t) for t in tasks]
        try:
            for f in as_completed(futures):
                d = f.result()  # the first failure stops the export
                done.append(d)
                chunk = d.task.chunk
                tracker.add(d.file.rows, chunk.raw_bytes if chunk else 0)
                if progress is not None:
                    progress(d.file.path, d.file.rows)
        except BaseException:
            for other in futures:
                other.cancel()
            raise
        finally:
            if pool is not None:
                pa.set_memory_pool(pool)

    for d in sorted(done, key=lambda d: (d.task.table.name, d.task.index)):
        te = results[d.task.table.name]
        te.files.append(d.file)
        te.rows += d.file.rows
        for col, count in d.nulled.items():
            te.nulled[col] = te.nulled.get(col, 0) + count
        warnings.extend(d.warnings)
    for te in results.values():
        for col, count in te.nulled.items():
            warnings.append(
                f"{te.name}.{col}: {count} value(s) Parquet cannot hold (zero or invalid "
                "dates, text invalid in its character set) exported as NULL"
            )
    exported = [results[t.name] for t in tables if t.name in results]
    result = ExportResult(
        output=out.display,
        tables=exported,
        skipped=skipped,
        rows=sum(t.rows for t in exported),
        bytes=sum(f.bytes for t in exported for f in t.files),
        files=sum(len(t.files) for t in exported),
        duration_s=0.0,
        warnings=warnings,
    )
    _write_manifest(out, source, manifest, opts, result)
    result.duration_s = time.monotonic() - t0
    return result


def _write_manifest(
    out: _Output, source: BackupSource, m: Manifest, opts: ExportOptions, result: ExportResult
) -> None:
    doc = {
        "format": EXPORT_FORMAT,
        "tool_version": __version__,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backup": {
            "where": source.where,
            "database": m.database,
            "server": f"{m.server_flavor} {m.server_version}".strip(),
            "started_at": m.started_at,
            "finished_at": m.finished_at,
            "snapshot": m.snapshot,
        },
        "options": {
            "compression": opts.compression,
            "compression_level": opts.compression_level,
            "row_group_rows": opts.row_group_rows,
            "tables": list(opts.tables),
        },
        "rows": result.rows,
        "tables": [asdict(t) for t in result.tables],
        "skipped": result.skipped,
        "warnings": result.warnings,
    }
    data = (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()
    path = out.path(EXPORT_MANIFEST)
    try:
        with out.fs.open_output_stream(path) as fh:
            fh.write(data)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}", hint="check the output") from exc
