"""The dump use case: a consistent, exact, streaming dump of one database.

Shape of a run:

1. read the catalogue (tables, columns, keys, objects) and plan tasks: one per table, or
   one per primary-key range for tables larger than ``chunk_bytes``;
2. open N worker connections on one snapshot (:mod:`moodump.db.snapshot`);
3. workers take tasks, largest first; each streams ``SELECT CONCAT_WS(...)`` over an
   unbuffered result (the server formats and escapes the rows, see
   :mod:`moodump.formats`) into its own compressed file, hashing the row text on the way;
4. after each table the worker checks that its definition did not change (DDL during
   the dump fails the dump with a clear error instead of producing a mixed dump), then
   rolls back to a savepoint so the table's metadata lock is released;
5. sequences, the Moodle version and object definitions are written; ``manifest.json``
   is written last with status DONE and the directory is renamed into place.

Nothing is published unless everything succeeded: work happens in a hidden temporary
directory beside the output, removed on any failure (disk full, lost server, Ctrl-C).
"""

from typing import Any

from moodump.dump.engine import dump
from moodump.dump.model import DumpOptions, DumpResult, ProgressEvent
from moodump.dump.publish import remove_stale_partials, server_of, sweep_stale_partials


def __getattr__(name: str) -> Any:
    """``dump_postgres`` is imported on first use (psycopg costs ~0.2 s to import)."""
    if name == "dump_postgres":
        from moodump.dump.pg import dump_postgres

        return dump_postgres
    raise AttributeError(f"module 'moodump.dump' has no attribute {name!r}")


__all__ = [
    "DumpOptions",
    "DumpResult",
    "ProgressEvent",
    "dump",
    "dump_postgres",
    "remove_stale_partials",
    "server_of",
    "sweep_stale_partials",
]
