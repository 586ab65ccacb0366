"""The order of a PostgreSQL restore's jobs: pure rules, apart from the engine that runs
them (:mod:`moodump.restore.pg`).

One pool of workers loads the data files and builds the indexes and constraints. A
table's indexes and constraints wait for its last file, then go to the front of the queue
(the other tables still load meanwhile, as with pg_restore). How a worker picks its next
job decides how busy the cores stay:

- a file of a table that another worker is loading now waits (:func:`pick`): two ``COPY``
  into one table contend for its relation extension lock and buffers;
- a small table's indexes and constraints are one job, one transaction (:func:`jobs_of`):
  a Moodle database has ~1,500 of them, mostly on small tables, and round trips add up;
- a big table's are a job each, widest key first (:func:`heaviest_first`): they are the
  longest jobs of a restore (the sample's logstore: 2.3 s to 5.6 s each), and the last
  of them to start sets how long the other worker idles at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: Tables with less data than this have their indexes and constraints built in one job.
BATCH_BYTES = 4 << 20

#: How far down the queue a worker looks for a file of a table nobody is loading.
LOOKAHEAD = 256

#: An entry: (progress key, pg_dump's entry type, its SQL).
Entry = tuple[str, str, str]

#: A job: ("data", (table entry, chunk)), ("entry", Entry) or ("entries", (table, [Entry])).
Job = tuple[str, Any]

_KEY_START = re.compile(r"\bUSING \"?\w+\"? \(|\b(?:PRIMARY KEY|UNIQUE(?: NULLS (?:NOT )?DISTINCT)?|EXCLUDE USING \"?\w+\"?) \(")


def key_columns(sql: str) -> int:
    """How many columns or expressions the key of an index or constraint entry has (1
    when it cannot tell): what a build's sort compares, the best guess of its cost before
    it runs. pg_dump writes ``CREATE INDEX … USING btree (a, b)``, ``ADD CONSTRAINT …
    PRIMARY KEY (a)``, ``UNIQUE (a, b)``, ``EXCLUDE USING gist (a WITH =)``."""
    m = _KEY_START.search(sql)
    if m is None:
        return 1
    depth, n, quote = 1, 1, ""
    for ch in sql[m.end():]:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return n
        elif ch == "," and depth == 1:
            n += 1
    return 1


def heaviest_first(entries: list[Entry]) -> list[Entry]:
    """One table's index and constraint entries, the widest key first (ties in the dump's
    order): longest processing time first, so that the short ones fill in at the end.
    (On the sample's logstore the 3- and 6-column indexes took 5.6 s and 5.3 s, the
    single-column ones 2.3 s to 5.0 s.)"""
    return sorted(entries, key=lambda e: -key_columns(e[2]))


def jobs_of(
    entries: list[Entry], size: dict[str, int], table_of: Callable[[str], str | None]
) -> list[Job]:
    """Entries as jobs: a small table's indexes and constraints as one job (one
    transaction), a big one's each on its own, so that the workers share them. ``size``:
    each table's data bytes (tables not in it count as big)."""
    out: list[Job] = []
    for item in entries:
        table = table_of(item[2])
        small = table is not None and size.get(table, BATCH_BYTES) < BATCH_BYTES
        if small and out and out[-1][0] == "entries" and out[-1][1][0] == table:
            out[-1][1][1].append(item)
        elif small:
            out.append(("entries", (table, [item])))
        else:
            out.append(("entry", item))
    return out


def pick(queue: list[Job], loading: dict[str, int], table_of: Callable[[Any], str]) -> int:
    """The index of the next job: the first that is not a file of a table another worker
    is loading now, else the first. Two ``COPY`` into one table contend for its relation
    extension lock and buffers: the sample's logstore files, loaded by two sessions at
    once, cost the server 24 s of CPU against 16 s one after the other, CPU that the
    other tables' files and indexes can use instead. ``table_of``: a data job's table."""
    for i, (kind, item) in enumerate(queue[:LOOKAHEAD]):
        if kind != "data" or not loading.get(table_of(item)):
            return i
    return 0
