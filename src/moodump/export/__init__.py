"""The export use case: a backup as Parquet datasets, one per table (docs/export.md).

:func:`export` reads a backup through a :class:`~moodump.source.BackupSource` (a
directory, an off-site copy, an encrypted one) and writes ``OUT/<table>/part-NNNNN.parquet``
through ``pyarrow.fs`` (a local directory or an S3 bucket), one file per data file of
the table, streamed with bounded memory and in parallel over files. The type mapping
is pure and lives in :mod:`moodump.export.types` (its value converters in
:mod:`moodump.export.convert`).
"""

from moodump.export.engine import ExportOptions, ExportResult, TableExport, export

__all__ = ["ExportOptions", "ExportResult", "TableExport", "export"]
