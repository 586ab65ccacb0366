"""The order of a PostgreSQL restore's jobs: pure rules, apart from the engine that runs
them (:mod:`moodump.restore.pg`).

One pool of workers loads the data files and builds the indexes and constraints. A
table's indexes and constraints wait for its last file, then go to the front of the queue
(the other tables still load meanwhile, as with pg_restore). How a worker picks its next
job decides how busy the cores stay:

- a job waits while another worker holds a lock on its table that it would wait for
  in the server (:func:`lock_of`, :func:`pick`), and a file of a table that another
  worker is loading now comes after the other jobs: two ``COPY`` into one table contend
  for its relation extension lock and buffers;
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
    """One table's index and constraint entries in the order they are queued: those that
    lock the table exclusively first (:func:`lock_of`: they run alone, while the other
    workers still have other tables' work to take), then the widest key first (longest
    processing time first, so that the short ones fill in at the end; ties in the dump's
    order). On the sample's logstore the 3- and 6-column indexes took 5.6 s and 5.3 s,
    the single-column ones 2.3 s to 5.0 s."""
    return sorted(entries, key=lambda e: (_mode(e) != EXCLUSIVE, -key_columns(e[2])))


#: What a job holds on its table: a ``COPY`` (ROW EXCLUSIVE), a ``CREATE INDEX``
#: (SHARE: several at once), an ``ALTER TABLE`` (ACCESS EXCLUSIVE: alone).
DATA, SHARE, EXCLUSIVE = "data", "share", "exclusive"

_ALTER_TABLE = re.compile(r"^ALTER TABLE ", re.M)


def _mode(entry: Entry) -> str:
    # ADD CONSTRAINT (primary key, unique, check, exclusion) and the ALTER TABLE an index
    # entry may carry (CLUSTER ON, REPLICA IDENTITY USING INDEX) lock out CREATE INDEX
    return EXCLUSIVE if entry[1] == "CONSTRAINT" or _ALTER_TABLE.search(entry[2]) else SHARE


def lock_of(job: Job, table_of: Callable[[str], str | None]) -> tuple[str | None, str]:
    """(the table a job locks, how: :data:`DATA`, :data:`SHARE` or :data:`EXCLUSIVE`);
    None: no table known, nothing to wait for."""
    kind, item = job
    if kind == "data":
        return item[0], DATA
    if kind == "entry":
        return table_of(item[2]), _mode(item)
    return item[0], EXCLUSIVE if any(_mode(e) == EXCLUSIVE for e in item[1]) else SHARE


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


def pick(
    queue: list[Job], held: dict[str, list[str]], lock: Callable[[Job], tuple[str | None, str]]
) -> int | None:
    """The index of the next job, None: wait for a running job to end. ``held``: what the
    running jobs hold, by table; ``lock``: a job's :func:`lock_of`.

    - A job whose lock conflicts with one held waits: the server would make its worker
      wait for the lock anyway, and meanwhile the worker can take another job. An
      ``ALTER TABLE … ADD PRIMARY KEY`` and a ``CREATE INDEX`` on one table exclude each
      other (the sample's restore spent 11 % of a worker's time in such waits), as
      pg_restore knows too.
    - A file of a table another worker is loading comes after the other jobs, but before
      waiting: two ``COPY`` into one table contend for its relation extension lock and
      buffers (the sample's logstore files, loaded by two sessions at once, cost the
      server 24 s of CPU against 16 s one after the other), yet both run.
    """
    second: int | None = None
    for i, job in enumerate(queue[:LOOKAHEAD]):
        table, mode = lock(job)
        running = held.get(table, []) if table is not None else []
        if not running or (mode == SHARE and all(m == SHARE for m in running)):
            return i
        if mode == DATA and second is None and all(m == DATA for m in running):
            second = i
    return second
