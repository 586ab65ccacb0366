"""Where an export is written: a local directory or an S3 prefix, through ``pyarrow.fs``.

:func:`open_output` opens the target (an ``s3://`` URL with the ``S3_*`` settings, or a
directory, created), :func:`refuse_non_empty` keeps an export from being merged into
another one, :class:`HashingSink` and :class:`LazyWriter` write one Parquet file
(hashed and counted as it is written; its encodings chosen from its first row group),
and :func:`write_manifest` writes ``export.json``, last: an export without it is
incomplete.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from moodump import __version__
from moodump.errors import ConfigError, MoodumpError, StorageError
from moodump.export.model import ExportOptions, ExportResult
from moodump.export.types import column_encodings
from moodump.manifest import Manifest
from moodump.source import BackupSource

EXPORT_MANIFEST = "export.json"
EXPORT_FORMAT = "moodump-export/1"


@dataclass
class Output:
    """The export's target: a ``pyarrow.fs`` file system and the base path in it."""

    fs: Any
    base: str  # the base path in ``fs`` ("bucket/prefix" or an absolute directory)
    display: str
    close: Callable[[], None] = lambda: None
    #: an object store's diagnosis of a failure (S3: :meth:`S3Backend.explain`)
    explain: Callable[[OSError, str], MoodumpError] | None = None

    def failure(self, exc: OSError, doing: str, hint: str = "check the output") -> MoodumpError:
        """The error for a failed request to the target while ``doing`` (e.g. "writing
        x"): the object store's own diagnosis where it has one (a permission the key
        lacks, named), else the OS's message."""
        if self.explain is not None:
            return self.explain(exc, doing)
        return StorageError(f"failed {doing}: {exc}", hint=hint)

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


def open_output(output: str, env: Mapping[str, str]) -> Output:
    """The target ``output``: ``s3://bucket/prefix`` (endpoint and credentials from the
    ``S3_*`` settings in ``env``) or a local directory (``file://`` optional), created."""
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
        return Output(fs, base, backend.where(""), backend.close, backend.explain)
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
    return Output(pafs.LocalFileSystem(), str(path), str(path))


def refuse_non_empty(out: Output) -> None:
    """Refuse a target that holds anything: an export is never merged into another."""
    try:
        infos = out.fs.get_file_info(pafs.FileSelector(out.base, allow_not_found=True))
    except OSError as exc:
        raise out.failure(exc, f"listing {out.display}", "check the output location and access") from exc
    if infos:
        raise ConfigError(
            f"{out.display} is not empty",
            hint="export into a new, empty directory or prefix (an export is never merged "
            "into another one)",
        )


#: The longest file name most file systems take (bytes).
NAME_MAX = 255


def _fit(safe: str, key: str) -> str:
    """``safe`` when it is at most :data:`NAME_MAX` bytes; otherwise its first 200
    bytes (whole characters) and ``~`` with the sha256 of ``key`` (the source names),
    so a long encoded name stays a valid and unique file name."""
    if len(safe.encode("utf-8", "surrogatepass")) <= NAME_MAX:
        return safe
    head = safe.encode("utf-8", "surrogatepass")[:200].decode("utf-8", "ignore")
    cut = head.rfind("%", len(head) - 2)
    if cut >= 0:  # no escape cut in two
        head = head[:cut]
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{head}~{digest}"


def table_directory(name: str) -> str:
    """A table's directory name below OUT: the name, with ``%``, ``/`` and ``\\`` (and a
    leading ``.``) percent-encoded, so no name can leave OUT or hide; a name longer than
    :data:`NAME_MAX` bytes so encoded is cut and ends ``~<hash>`` (:func:`_fit`)."""
    safe = name.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    return _fit(safe, name)


def pg_directory(schema: str, name: str) -> str:
    """A PostgreSQL table's directory name below OUT: ``<schema>.<table>``, each name
    percent-encoded as :func:`table_directory` does, with its own dots (``%2E``) and
    control characters (a PostgreSQL name may hold a newline) encoded too, so
    ``"a.b"."c"`` (``a%2Eb.c``) and ``"a"."b.c"`` (``a.b%2Ec``) differ."""

    def part(text: str) -> str:
        safe = text.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
        safe = safe.replace(".", "%2E")
        return "".join(f"%{ord(ch):02X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in safe)

    return _fit(f"{part(schema)}.{part(name)}", f"{schema}\0{name}")


class HashingSink(io.RawIOBase):
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


class LazyWriter:
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


def close_quietly(writer: Any, sink: HashingSink) -> None:
    with contextlib.suppress(Exception):
        writer.close()
    with contextlib.suppress(Exception):
        sink.close()


def write_manifest(
    out: Output, source: BackupSource, m: Manifest, opts: ExportOptions, result: ExportResult
) -> None:
    """Write ``export.json`` at the target: the backup, the options, every file."""
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
        raise out.failure(exc, f"writing {path}") from exc
