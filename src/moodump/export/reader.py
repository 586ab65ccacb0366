"""Reading a backup's data files as Arrow record batches of the columns' read types.

A data file holds ``LOAD DATA`` text (docs/format.md). :class:`RowReader` streams it
through the backup's source (the stored bytes are checked -- size, sha256 -- and
decompressed as they are read) in blocks of whole rows, and pyarrow's CSV reader, with
quoting and escaping off, splits each block at TAB and LF and parses it to the
:attr:`~moodump.export.types.ColumnPlan.read_type` of each column (the converters of
:mod:`moodump.export.convert` take it from there).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pyarrow as pa
import pyarrow.csv as pacsv

from moodump.compression import iter_line_blocks, open_reader
from moodump.errors import IntegrityError
from moodump.export.types import ColumnPlan
from moodump.manifest import Chunk, Manifest
from moodump.source import BackupSource


class RowReader:
    """The data files of one backup, read as row text or as record batches."""

    def __init__(self, source: BackupSource, manifest: Manifest, block_bytes: int) -> None:
        self.source = source
        self.manifest = manifest
        self.block_bytes = block_bytes

    def blocks(self, chunk: Chunk) -> Iterator[memoryview | bytes]:
        """The uncompressed row text of the data file of ``chunk`` in blocks of whole rows
        (about ``block_bytes``; a longer row makes a longer block; views of one reused
        buffer, each valid until the next is asked for), each raw CR byte written
        ``\\r``: pyarrow's CSV reader would end a row at a CR, and ``\\r`` never
        occurs in a data file otherwise (a backslash is always escaped); the converters
        turn it back into CR. The stored bytes are checked against the manifest (size,
        sha256) when the stream ends."""
        entry = self.manifest.file(chunk.file)
        shown = f"{self.source.where}/{entry.name}"
        stream = self.source.open_checked(entry)
        for block in iter_line_blocks(
            stream, self.block_bytes, name=shown, codec=self.manifest.codec
        ):
            if block[-1] != 0x0A:
                raise IntegrityError(
                    f"{shown} ends inside a row (no LF after its last row)",
                    hint="the backup is damaged; use another one",
                )
            if has_cr(block):
                yield bytes(block).replace(b"\r", b"\\r")
            else:
                yield block

    def batches(
        self,
        table_name: str,
        chunk: Chunk,
        plans: list[ColumnPlan],
        include: list[int] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """The rows of the data file of ``chunk`` (of table ``table_name``) as record
        batches of the plans' read types (or only the columns ``include``), one batch per
        block, parsed by pyarrow's CSV reader with quoting and escaping off: the split at
        TAB and LF is exact (docs/format.md)."""
        names = [f"c{i}" for i in range(len(plans))]
        types = {n: p.read_type for n, p in zip(names, plans, strict=True)}
        parse = pacsv.ParseOptions(
            delimiter="\t", quote_char=False, escape_char=False, double_quote=False,
            newlines_in_values=False, ignore_empty_lines=False,
        )  # fmt: skip
        convert = pacsv.ConvertOptions(
            column_types=types, null_values=["\\N"], strings_can_be_null=True,
            check_utf8=False, include_columns=None if include is None else [names[i] for i in include],
        )  # fmt: skip
        for block in self.blocks(chunk):
            read = pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(block) + 1
            )
            text = pa.py_buffer(block)
            try:
                table = pacsv.read_csv(
                    text, read_options=read, parse_options=parse, convert_options=convert
                )  # the arrays are copies: the block's buffer is reused after this
            except pa.ArrowInvalid as exc:
                raise _damaged(table_name, chunk, exc) from exc
            finally:
                del text  # let the reader reuse the block's buffer
            yield from table.combine_chunks().to_batches()

    def check_empty(self, chunk: Chunk) -> None:
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


def has_cr(block: memoryview | bytes) -> bool:
    """Whether a block holds a CR byte: one memchr over the buffer, no copy (a view of
    :func:`~moodump.compression.iter_line_blocks` starts at its buffer's first byte)."""
    whole = cast(bytearray, block.obj) if isinstance(block, memoryview) else block
    return whole.find(b"\r", 0, len(block)) >= 0


def _damaged(table_name: str, chunk: Chunk, exc: Exception) -> IntegrityError:
    return IntegrityError(
        f"{chunk.file} of table {table_name} cannot be read as row text: {exc}",
        hint="the backup is damaged or was not written by moodump; use another one",
    )
