"""Moodle-aware operations beyond the database: the file store (``moodledata``), the
site's maintenance mode and cache tables around a restore, and staging copies.

- :func:`check_backup_files` / :func:`check_live_files`: ``moodump check-files``;
- :func:`enter_maintenance`, :func:`leave_maintenance`, :func:`purge_db_caches`:
  ``restore --moodle-maintenance``;
- :func:`scrub` with the declared rules of :mod:`.rules` (pure): ``restore --staging``.

Every table name takes the site's table prefix (``mdl_`` by default).
"""

from moodump.moodlesite.check import (
    FILES_CHECK_NAME,
    check_backup_files,
    check_live_files,
    write_files_check,
)
from moodump.moodlesite.filestore import EMPTY_SHA1, FileCheckReport, HashPlan, content_path
from moodump.moodlesite.maintenance import (
    MAINTENANCE_FILE,
    enter_maintenance,
    leave_maintenance,
    maintenance_path,
    purge_db_caches,
)
from moodump.moodlesite.rules import RULES, Rule, plan_scrub
from moodump.moodlesite.staging import ScrubReport, scrub

__all__ = [
    "EMPTY_SHA1",
    "FILES_CHECK_NAME",
    "MAINTENANCE_FILE",
    "RULES",
    "FileCheckReport",
    "HashPlan",
    "Rule",
    "ScrubReport",
    "check_backup_files",
    "check_live_files",
    "content_path",
    "enter_maintenance",
    "leave_maintenance",
    "maintenance_path",
    "plan_scrub",
    "purge_db_caches",
    "scrub",
    "write_files_check",
]
