"""Where ``check-files`` reads the ``{prefix}files`` rows: a backup's data files, or the
live table; and the sidecar record a scheduled check leaves in the backup directory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from moodump.compression import iter_uncompressed
from moodump.crypto import Identity, VerifyKey
from moodump.db.connection import ConnSettings, connect, quote_ident, quote_str
from moodump.errors import NotFoundError
from moodump.fsmodes import write_text
from moodump.manifest import Manifest, TableEntry
from moodump.moodlesite.filestore import (
    FileCheckReport,
    HashPlan,
    backup_rows,
    check_filestore,
    split_lines,
)
from moodump.source import BackupSource, as_source

log = logging.getLogger("moodump.moodle")

#: The record a scheduled check writes beside the manifest (which is sealed: its bytes
#: are hashed into the catalogue and may be signed, so it is never rewritten).
FILES_CHECK_NAME = "files-check.json"

#: Columns shown for the examples of missing and corrupt files.
_DESCRIBE = ("id", "contextid", "component", "filearea", "itemid", "filepath", "filename")


def check_backup_files(
    backup: Path | str | BackupSource,
    moodledata: Path,
    *,
    prefix: str | None = None,
    default_prefix: str = "mdl_",
    plan: HashPlan | None = None,
    identities: Sequence[Identity] = (),
    verify_keys: Sequence[VerifyKey] = (),
    tmpdir: Path | None = None,
) -> FileCheckReport:
    """Cross-check ``moodledata`` against the ``{prefix}files`` rows of a DONE backup.

    Each data file of the table is streamed (and checked against the manifest's sha256
    as it is read); rows are never held in memory (see :mod:`.filestore`). The table
    prefix is ``prefix``, else the one the dump recorded (the manifest's ``moodle``
    section), else ``default_prefix``.
    """
    plan = plan or HashPlan()
    src = as_source(backup, identities, verify_keys)
    m = src.done_manifest()
    prefix = prefix or str((m.moodle or {}).get("prefix") or default_prefix)
    table = _files_table(m, prefix, src.where)

    def rows() -> Iterator[tuple[bytes | None, bytes | None]]:
        entries = {f.name: f for f in m.files}
        for chunk in table.chunks:
            entry = entries.get(chunk.file)
            stream = src.open_checked(entry) if entry else src.open(chunk.file)
            blocks = iter_uncompressed(stream, name=chunk.file, codec=m.codec)
            yield from backup_rows(split_lines(blocks), table.columns)

    def describe(hashes: set[str]) -> dict[str, dict[str, Any]]:
        cols = [c for c in _DESCRIBE if c in table.columns]
        idx = [table.columns.index(c) for c in cols]
        ih = table.columns.index("contenthash")
        found: dict[str, dict[str, Any]] = {}
        from moodump.formats import unescape_field

        for chunk in table.chunks:
            blocks = iter_uncompressed(src.open(chunk.file), name=chunk.file, codec=m.codec)
            for line in split_lines(blocks):
                fields = line.split(b"\t")
                h = fields[ih].decode("ascii", "replace")
                if h in hashes and h not in found:
                    found[h] = {
                        c: _text(unescape_field(fields[i])) for c, i in zip(cols, idx, strict=True)
                    }
        return found

    try:
        return check_filestore(
            rows, moodledata, source=f"backup {src.where}", prefix=prefix, plan=plan,
            describe=describe, tmpdir=tmpdir,
        )  # fmt: skip
    finally:
        src.close()


def check_live_files(
    settings: ConnSettings,
    database: str,
    moodledata: Path,
    *,
    prefix: str = "mdl_",
    plan: HashPlan | None = None,
    tmpdir: Path | None = None,
) -> FileCheckReport:
    """Cross-check ``moodledata`` against the live ``{prefix}files`` table of ``database``,
    read with one unbuffered (server-side streamed) query."""
    plan = plan or HashPlan()
    qt = f"{quote_ident(database)}.{quote_ident(prefix + 'files')}"
    with connect(settings.with_database(None)) as conn:
        if not conn.query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            f"{quote_str(database)} AND TABLE_NAME = {quote_str(prefix + 'files')}"
        ):
            raise NotFoundError(
                f"{database!r} on {settings.describe()} has no table {prefix}files",
                hint="check --database and --prefix (the table prefix of config.php)",
            )

        def rows() -> Iterator[tuple[bytes | None, bytes | None]]:
            for row in conn.stream(f"SELECT contenthash, filename FROM {qt}"):
                yield row[0], row[1]

        def describe(hashes: set[str]) -> dict[str, dict[str, Any]]:
            listed = ", ".join(quote_str(h) for h in sorted(hashes))
            found: dict[str, dict[str, Any]] = {}
            sql = (
                f"SELECT contenthash, {', '.join(quote_ident(c) for c in _DESCRIBE)} FROM {qt} "
                f"WHERE filename <> '.' AND contenthash IN ({listed}) ORDER BY id"
            )
            for r in conn.query(sql):
                h = _text(r[0]) or ""
                found.setdefault(h, dict(zip(_DESCRIBE, (_text(v) for v in r[1:]), strict=True)))
            return found

        return check_filestore(
            rows, moodledata, source=f"live {settings.describe()}/{database}", prefix=prefix,
            plan=plan, describe=describe, tmpdir=tmpdir,
        )  # fmt: skip


def write_files_check(backup_dir: Path, report: FileCheckReport) -> Path:
    """Write :data:`FILES_CHECK_NAME` in ``backup_dir`` (the manifest stays untouched)."""
    path = backup_dir / FILES_CHECK_NAME
    write_text(path, json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return path


def _files_table(m: Manifest, prefix: str, where: str) -> TableEntry:
    name = prefix + "files"
    for t in m.tables:
        if t.name == name:
            if t.data_skipped:
                raise NotFoundError(
                    f"the backup {where} holds no rows of {name} (dumped without its data)",
                    hint="check against the live database with --live, or a full backup",
                )
            return t
    raise NotFoundError(
        f"the backup {where} of {m.database!r} has no table {name}",
        hint="check --prefix (the table prefix of config.php); is this a Moodle database?",
    )


def _text(v: bytes | None) -> str | None:
    return None if v is None else v.decode("utf-8", "replace")
