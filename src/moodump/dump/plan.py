"""The plan of a dump, made on the coordinating connection before the snapshot.

Which tables (``--table``, ``--exclude``), checked against the account's privileges so
that nothing is silently invisible; which of them have data (``--schema-only``,
``--exclude-data``, sequences); the primary-key ranges that split a big table into
several data files; each table's manifest entry and schema file.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from moodump.db.connection import Connection, ConnSettings, quote_ident
from moodump.db.introspect import TableInfo, definition_fingerprint
from moodump.db.privileges import account_privileges
from moodump.ddl import portable_create
from moodump.dump.model import _INT_TYPES, DumpOptions, _match, _safe, _Task, key_ranges
from moodump.dump.publish import _file_entry
from moodump.errors import ConfigError, PrivilegeError
from moodump.formats import load_spec
from moodump.fsmodes import write_text
from moodump.manifest import Manifest, TableEntry


class DumpPlanner:
    """The planning steps of a dump.

    A mixin of the dump engine (:class:`moodump.dump.engine.DumpRun`), kept in its own
    module like the restore engine's :class:`~moodump.restore.load.DataLoader`; the
    attributes are the engine's.
    """

    settings: ConnSettings
    database: str
    tmp: Path
    opts: DumpOptions
    ext: str
    _known: frozenset[str] | set[str] = frozenset()  # the database's table names (_select)
    manifest: Manifest
    _pending_chunks: dict[str, int]

    def _check_privileges(self, conn: Connection) -> None:
        """Fail closed when the catalogue would hide tables or objects from this account."""
        privs = account_privileges(conn, self.database)
        if privs is None:
            self.manifest.notes.append("could not read the account's grants; not checked")
            return
        who = self.settings.describe()
        if "SELECT" not in privs and not self.opts.tables:
            raise PrivilegeError(
                f"{who} has no SELECT on `{self.database}`.* (only table-level grants?): "
                "tables it has no grant on are invisible and would be missing from the backup",
                hint=f"GRANT SELECT ON `{self.database}`.* to the account, "
                "or name the tables to dump with --table",
            )
        if self._want_objects():
            missing = sorted({"SHOW VIEW", "TRIGGER", "EVENT"} - privs)
            if missing:
                raise PrivilegeError(
                    f"{who} lacks {', '.join(missing)} on `{self.database}`.*: views, triggers "
                    "or events it cannot see would be missing from the backup",
                    hint=f"GRANT {', '.join(missing)} ON `{self.database}`.* to the account, "
                    "or pass --no-objects to dump tables only",
                )
            if "EXECUTE" not in privs and not ({"CREATE ROUTINE", "ALTER ROUTINE"} & privs):
                # A note, not a warning: Moodle has no stored routines, and its account
                # usually has no routine privilege, so this would make every run "warn".
                self.manifest.notes.append(
                    "the account has no routine privilege on the database: stored procedures "
                    "and functions defined by other accounts are invisible to it"
                )

    def _want_objects(self) -> bool:
        return self.opts.routines and not self.opts.data_only and not self.opts.tables

    def _select(self, tables: list[TableInfo]) -> list[TableInfo]:
        out = []
        names = self._known = {t.name for t in tables}
        for pattern in self.opts.tables:
            if pattern not in names and not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                raise ConfigError(
                    f"--table {pattern!r} matches no table in {self.database}",
                    hint="check the name (case matters); list tables with SHOW TABLES",
                )
        for t in tables:
            if self.opts.tables and not _match(t.name, self.opts.tables, names):
                continue
            if _match(t.name, self.opts.exclude, names):
                continue
            out.append(t)
        return out

    def _skip_data(self, t: TableInfo) -> bool:
        return (
            self.opts.schema_only
            or not t.holds_rows
            or _match(t.name, self.opts.exclude_data, self._known)
        )

    def _plan(
        self, coord: Connection, tables: list[TableInfo], schemas: dict[str, str]
    ) -> list[_Task]:
        tasks: list[_Task] = []
        for idx, t in enumerate(tables, 1):
            if self._skip_data(t):
                continue
            base = f"data/{idx:04d}-{_safe(t.name)}"
            fp = definition_fingerprint(schemas[t.name])
            user_where = f"({self.opts.where})" if self.opts.where else ""
            ranges = self._ranges(coord, t)
            self._pending_chunks[t.name] = len(ranges)
            for n, rng in enumerate(ranges):
                where = " AND ".join(x for x in (user_where, rng) if x)
                est = t.data_length // max(1, len(ranges))
                tasks.append(_Task(t, n, where, f"{base}.{n:05d}.tsv{self.ext}", est, fp))
        tasks.sort(key=lambda k: -k.estimate)
        return tasks

    def _ranges(self, coord: Connection, t: TableInfo) -> list[str]:
        """Primary-key range predicates; one open-ended range covers rows added later."""
        if (
            len(t.primary_key) != 1
            or t.pk_types[0] not in _INT_TYPES
            or t.data_length <= self.opts.chunk_bytes
        ):
            return [""]
        pk = quote_ident(t.primary_key[0])
        row = coord.query(
            f"SELECT MIN({pk}), MAX({pk}) FROM {quote_ident(self.database)}.{quote_ident(t.name)}"
        )[0]
        if row[0] is None or row[1] is None:
            return [""]
        return key_ranges(pk, int(row[0]), int(row[1]), t.data_length, self.opts.chunk_bytes)

    def _table_entry(self, idx: int, t: TableInfo, create: str) -> TableEntry:
        cols = t.data_columns
        entry = TableEntry(
            name=t.name,
            kind=t.kind,
            engine=t.engine,
            transactional=t.transactional,
            columns=[c.name for c in cols],
            column_types=[c.data_type for c in cols],
            versioned=t.versioned,
            load_clause=load_spec(cols).clause(),
            order_by=t.order_key,
            digest="ordered" if t.order_key else "multiset",
            data_skipped=self._skip_data(t) and t.holds_rows,
        )
        if not self.opts.data_only:
            name = f"schema/{idx:04d}-{_safe(t.name)}.sql"
            write_text(self.tmp / name, portable_create(create, self.database) + ";\n")
            entry.schema_file = name
            self.manifest.files.append(_file_entry(self.tmp, name, "schema"))
        return entry

    def _write_database_file(self) -> None:
        write_text(self.tmp / "database.sql", self.manifest.database_ddl + ";\n")
        self.manifest.files.append(_file_entry(self.tmp, "database.sql", "schema"))
