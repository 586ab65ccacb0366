"""Point-in-time recovery: archive the server's binary log, verify and prune the archive,
and restore a backup then replay the log up to a chosen moment.

The decisions (chain continuity, coverage, pruning) are pure, in :mod:`moodump.binlog`;
this package does the I/O: :func:`pull` (``moodump binlog pull``), :func:`restore_until`
(``moodump restore --until…``), :func:`verify_archive` (``moodump binlog verify``),
:func:`prune_archive` (``moodump binlog prune``) and :func:`archive_status` for status and
metrics.
"""

from moodump.pitr.archive import Archive
from moodump.pitr.manage import (
    ArchiveStatus,
    PruneResult,
    VerifyResult,
    archive_status,
    latest_before,
    prune_archive,
    verify_archive,
)
from moodump.pitr.pull import PullResult, pull
from moodump.pitr.replay import ReplayStats
from moodump.pitr.restore import PitrResult, restore_until

__all__ = [
    "Archive",
    "ArchiveStatus",
    "PitrResult",
    "PruneResult",
    "PullResult",
    "ReplayStats",
    "VerifyResult",
    "archive_status",
    "latest_before",
    "prune_archive",
    "pull",
    "restore_until",
    "verify_archive",
]
