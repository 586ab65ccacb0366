"""The restore use case: load a backup into a server, fast, exactly, resumably.

Order: check every file against the manifest (before the target is touched), create the
database and tables, load data in parallel (one task per data file, largest first, over
N connections), then sequences, views, routines, triggers and events — triggers after the
data, so they do not fire during the load.

Data goes in with ``LOAD DATA LOCAL INFILE`` fed through a FIFO by a thread that
decompresses the file, so nothing is unpacked to disk. Each data file is loaded in ONE
transaction together with a row in the progress table ``_moodump_restore``; a crash of
moodump or of the server therefore leaves every file either fully loaded and recorded or
not loaded at all, and ``resume=True`` skips exactly the recorded files. (For
non-transactional tables, a file that is not recorded has its key range deleted before
it is loaded again.)

``atomic=True`` loads into a staging database and then swaps every table in with a
single ``RENAME TABLE``; the previous tables are dropped afterwards. The target is never
half-restored.
"""

from moodump.restore.engine import restore
from moodump.restore.model import (
    PROGRESS_TABLE,
    TOAST_CHOICES,
    RestoreEvent,
    RestoreOptions,
    RestoreResult,
    check_files,
)

__all__ = [
    "PROGRESS_TABLE",
    "TOAST_CHOICES",
    "RestoreEvent",
    "RestoreOptions",
    "RestoreResult",
    "check_files",
    "restore",
]
