"""Export a backup as Parquet: read through a BackupSource, write through pyarrow.fs.

Each data file of a table becomes one Parquet file, ``OUT/<table>/part-NNNNN.parquet``
(NNNNN is the data file's position among the table's chunks), so the directory of a
table is one dataset for DuckDB (``read_parquet('OUT/t/*.parquet')``), pandas or
``pyarrow.dataset``. A file is streamed: the stored bytes are checked (size, sha256)
and decompressed as they are read, pyarrow's CSV reader splits and parses blocks of
``block_bytes``, each column is converted (:mod:`moodump.export.convert`) and rows are
written in row groups of ``row_group_rows``; memory per worker is a few blocks and one
row group, whatever the table's size. Files are exported in parallel by ``workers``
threads (pyarrow's parsing, conversion and Parquet encoding run in C++ without the GIL).

A PostgreSQL backup (manifest ``database_type: postgresql``) is planned by
:mod:`moodump.export.pgtypes` (``format_type()`` text -> Arrow types, COPY text ->
arrays) and written as ``OUT/<schema>.<table>/part-NNNNN.parquet``
(:func:`~moodump.export.output.pg_directory`); a MariaDB/MySQL one by
:mod:`moodump.export.types` from its ``CREATE TABLE``.

``export.json`` is written at OUT last: an export without it is incomplete.

This module runs the use case; its parts live beside it: :mod:`~moodump.export.reader`
(data files -> record batches), :mod:`~moodump.export.types` and
:mod:`~moodump.export.convert` (the pure type mapping and value converters),
:mod:`~moodump.export.output` (the ``pyarrow.fs`` target, the Parquet writer,
``export.json``), :mod:`~moodump.export.memory` (the allocators' settings) and
:mod:`~moodump.export.model` (the options and results).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from moodump import __version__
from moodump.crypto import VerifyKey
from moodump.errors import ConfigError, IntegrityError
from moodump.export.memory import lean_memory_pool, return_freed_blocks
from moodump.export.model import COMPRESSIONS as COMPRESSIONS
from moodump.export.model import ExportOptions as ExportOptions
from moodump.export.model import ExportResult as ExportResult
from moodump.export.model import FileExport as FileExport
from moodump.export.model import TableExport as TableExport
from moodump.export.output import EXPORT_FORMAT as EXPORT_FORMAT
from moodump.export.output import EXPORT_MANIFEST as EXPORT_MANIFEST
from moodump.export.output import (
    HashingSink,
    LazyWriter,
    Output,
    close_quietly,
    open_output,
    pg_directory,
    refuse_non_empty,
    write_manifest,
)
from moodump.export.output import table_directory as table_directory
from moodump.export.pgtypes import (
    PG_CODECS,
    pg_definition,
    pg_table_definitions,
    pg_table_plans,
)
from moodump.export.reader import RowReader
from moodump.export.types import (
    META_NULLED,
    META_SRID,
    ColumnPlan,
    describe,
    srids,
    table_plans,
    unescape,
)
from moodump.manifest import Chunk, Manifest, TableEntry
from moodump.progress import Progress
from moodump.source import BackupSource

log = logging.getLogger("moodump.export")


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
        self, source: BackupSource, manifest: Manifest, out: Output, opts: ExportOptions
    ) -> None:
        self.out = out
        self.opts = opts
        self.reader = RowReader(source, manifest, opts.block_bytes)

    def _srid_fields(self, task: _Task) -> tuple[list[pa.Field], list[str]]:
        """The fields, with each spatial column's SRID (found by a first pass over the
        file) in its field metadata: ``srid`` is the one SRID of the column's values,
        or all of them comma-separated (with a warning) when they differ."""
        fields = [p.field for p in task.plans]
        spatial = [i for i, p in enumerate(task.plans) if p.spatial]
        if not spatial or task.chunk is None:
            return fields, []
        found: dict[int, set[int]] = {i: set() for i in spatial}
        for batch in self.reader.batches(task.table.name, task.chunk, task.plans, spatial):
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
            sink = HashingSink(self.out.fs.open_output_stream(path))
        except OSError as exc:
            raise self.out.failure(exc, f"writing {path}") from exc
        writer = LazyWriter(sink, schema, self.opts)
        rows = 0
        pending: list[pa.RecordBatch] = []
        pending_rows = pending_bytes = 0
        n = self.opts.row_group_rows
        try:
            if task.chunk is not None and task.chunk.rows == 0:
                self.reader.check_empty(task.chunk)
                writer.write_table(schema.empty_table())
            elif task.chunk is not None:
                for batch in self.reader.batches(task.table.name, task.chunk, task.plans):
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
            close_quietly(writer, sink)
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


# -- the use case -------------------------------------------------------------------------


def table_label(table: TableEntry) -> str:
    """The name a table is selected and reported by: ``schema.table`` for PostgreSQL,
    the table name for MariaDB/MySQL (one database, one schema)."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def _matches(table: TableEntry, pattern: str) -> bool:
    """A glob matches a MariaDB table's name; a PostgreSQL table's ``schema.table``
    (the names as they are, joined by a dot), or, for a glob without a dot, its table
    name in any schema."""
    if fnmatch.fnmatchcase(table_label(table), pattern):
        return True
    return bool(table.schema) and "." not in pattern and fnmatch.fnmatchcase(table.name, pattern)


def select_tables(manifest: Manifest, patterns: tuple[str, ...]) -> list[TableEntry]:
    """The tables named by ``patterns`` (names or globs, case-sensitive); all without."""
    if not patterns:
        return list(manifest.tables)
    # a pattern that is a table's name as it is names that table only (``x[1]``, not
    # ``x1``, which it matches as a glob)
    labels = {table_label(t) for t in manifest.tables} | {t.name for t in manifest.tables}

    def hit(t: TableEntry, p: str) -> bool:
        return p in (table_label(t), t.name) if p in labels else _matches(t, p)

    chosen = [t for t in manifest.tables if any(hit(t, p) for p in patterns)]
    missing = [p for p in patterns if not any(hit(t, p) for t in manifest.tables)]
    if missing:
        from moodump.errors import NotFoundError

        raise NotFoundError(
            f"no table of this backup matches {', '.join(repr(p) for p in missing)}",
            hint="table names are case-sensitive; the manifest lists them "
            "(PostgreSQL: schema.table)",
        )
    return chosen


def _file_metadata(
    source: BackupSource, m: Manifest, table: TableEntry, create: str, chunk: Chunk | None
) -> dict[bytes, bytes]:
    snapshot: dict[str, Any] = {"started_at": m.started_at, "finished_at": m.finished_at}
    for key in ("binlog_file", "binlog_position", "gtid", "method", "at", "id", "encoding"):
        if key in m.snapshot:
            snapshot[key] = m.snapshot[key]
    meta = {
        "moodump.format": EXPORT_FORMAT,
        "moodump.tool_version": __version__,
        "moodump.database": m.database,
        "moodump.table": table.name,
        **({"moodump.schema": table.schema} if table.schema else {}),
        "moodump.create_table": create,
        "moodump.snapshot": json.dumps(snapshot, sort_keys=True),
        "moodump.server": f"{m.server_flavor} {m.server_version}".strip(),
        "moodump.source_file": chunk.file if chunk else "",
    }
    return {k.encode(): v.encode() for k, v in meta.items()}


def _pg_definitions(
    source: BackupSource, manifest: Manifest, encoding: str
) -> dict[tuple[str, str], str]:
    """The tables' sections of a PostgreSQL backup's ``schema/pre-data.sql`` (in the
    database's encoding), by (schema, table)."""
    name = manifest.objects.get("pre_data", "")
    if not name:
        return {}
    raw = source.checked_bytes(manifest.file(name))
    codec = PG_CODECS.get(encoding.upper(), "utf-8")
    try:
        text = raw.decode(codec, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    return pg_table_definitions(text)


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
    out = open_output(str(output), dict(os.environ) if env is None else env)
    tr = tracker or Progress()
    try:
        with tr.operation("export", manifest.database):
            return _export(source, manifest, tables, out, opts, progress, t0, tr)
    except OSError as exc:  # a Parquet file's upload (S3: at its close), export.json, ...
        raise out.failure(exc, f"writing the export to {out.display}") from exc
    finally:
        out.close()


def _export(
    source: BackupSource,
    manifest: Manifest,
    tables: list[TableEntry],
    out: Output,
    opts: ExportOptions,
    progress: Callable[[str, int], None] | None,
    t0: float,
    tracker: Progress,
) -> ExportResult:
    refuse_non_empty(out)

    skipped: dict[str, str] = {}
    results: dict[tuple[str, str], TableExport] = {}  # by (schema, table)
    tasks: list[_Task] = []
    postgres = manifest.database_type == "postgresql"
    encoding = str(manifest.snapshot.get("encoding") or "UTF8")
    definitions = _pg_definitions(source, manifest, encoding) if postgres else {}
    for table in tables:
        if table.kind != "table":
            skipped[table_label(table)] = f"{table.kind}: not a table"
            continue
        if table.data_skipped:
            skipped[table_label(table)] = "its data was not dumped"
            continue
        if not table.columns:
            skipped[table_label(table)] = (
                "it has no columns" if postgres else "it has no stored columns (all are generated)"
            )
            continue
        if postgres:
            create = definitions.get((table.schema, table.name)) or pg_definition(
                table.schema, table.name, table.columns, table.column_types
            )
            plans = pg_table_plans(table.columns, table.column_types, encoding)
            directory = pg_directory(table.schema, table.name)
        else:
            create = source.checked_bytes(manifest.file(table.schema_file)).decode("utf-8")
            plans = table_plans(create, table.columns, table.column_types)
            directory = table_directory(table.name)
        results[(table.schema, table.name)] = TableExport(
            table.name, directory, columns=describe(plans, postgres), schema=table.schema
        )
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
    pool = lean_memory_pool()
    return_freed_blocks()
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

    for d in sorted(done, key=lambda d: (table_label(d.task.table), d.task.index)):
        te = results[(d.task.table.schema, d.task.table.name)]
        te.files.append(d.file)
        te.rows += d.file.rows
        for col, count in d.nulled.items():
            te.nulled[col] = te.nulled.get(col, 0) + count
        warnings.extend(d.warnings)
    for te in results.values():
        for col, count in te.nulled.items():
            what = (
                "NaN/infinite numerics, infinite or out-of-range dates and timestamps, text "
                "invalid in the database's encoding"
                if postgres
                else "zero or invalid dates, text invalid in its character set"
            )
            warnings.append(
                f"{te.label}.{col}: {count} value(s) Parquet cannot hold ({what}) exported as NULL"
            )
    exported = [results[k] for t in tables if (k := (t.schema, t.name)) in results]
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
    write_manifest(out, source, manifest, opts, result)
    result.duration_s = time.monotonic() - t0
    return result
