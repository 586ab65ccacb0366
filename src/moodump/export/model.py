"""The export's options and results: what :func:`moodump.export.export` takes and returns.

No I/O; the engine (:mod:`moodump.export.engine`) fills them, and
:mod:`moodump.export.output` writes the result as ``export.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    schema: str = ""  # PostgreSQL: the table's schema (MariaDB/MySQL: empty)

    @property
    def label(self) -> str:
        """``schema.table`` (PostgreSQL) or the table name."""
        return f"{self.schema}.{self.name}" if self.schema else self.name


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
        return {t.label: t.nulled for t in self.tables if t.nulled}

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
