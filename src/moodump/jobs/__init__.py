"""The cron-run sequence: what ``moodump run`` does, as library functions.

One **backup cycle** (:func:`run_once`, ``moodump run --once``, ``backup.sh -1`` / ``-s``):

1. take the run lock (:class:`~moodump.lock.RunLock`); a busy lock raises
   :class:`~moodump.errors.LockBusy` (exit 10) before anything is written;
2. for each configured database, in backup.conf order and isolated from the others (a
   failure is recorded and the next database runs):

   a. free-space pre-check (MOODUMP_MIN_FREE_SPACE, MOODUMP_FREE_SPACE_FACTOR x the
      previous good backup);
   b. dump into ``target_dir_for(...)`` (the old layout and names); a failed dump leaves a
      data-less directory whose manifest says FAILED, so listings, ``moodump check`` and
      retention see the failure. When that name is taken (two runs in one second, the
      repeated hour of a DST fall-back) the time in the name moves on by a second until
      it is free, so names keep the old pattern;
   c. size checks against the previous good backup of the same database (minimum size;
      shrink beyond MOODUMP_MAX_SHRINK_PERCENT warns or fails per MOODUMP_SHRINK_MODE);
   d. verification (MOODUMP_VERIFY_AFTER_BACKUP: ``none``, ``offline`` or ``local``);
   e. FTPS copy and re-check when FTP_URL is set;
   f. one notification: ``success`` (INFO), ``warning`` (WARN: backed up, but a check
      warned) or ``failure`` (ERROR);

3. prune with ``after_failure=True``, and only the databases whose backup succeeded and
   passed its checks: a database whose backup just failed loses nothing (even when its
   FAILED record could not be written, e.g. on a full disk). Remote copies follow local
   retention when MOODUMP_FTP_PRUNE is on.
4. record the report in the state file (MOODUMP_STATE_FILE) and rewrite
   MOODUMP_METRICS_FILE, still under the lock (:mod:`moodump.jobs.exporter`; the
   verification cycle does the same). ``moodump status`` (:mod:`moodump.jobs.status`)
   and the ``/metrics`` endpoint of :func:`run_scheduled` read them.

The :class:`RunReport` holds one :class:`DatabaseResult` per database; its exit code is the
worst one (0 ok, 1 warnings, else the failure's code from :mod:`moodump.errors`).

A **verification cycle** (:func:`verify_all`, the ``backup.sh -s -v all`` cron line)
verifies the newest DONE backup of each database and fails with exit 11 when that backup
is stale: a newer attempt failed or it is older than MOODUMP_MAX_AGE. The old container
re-verified an old file after a failed backup and reported success (its issue #134).

:func:`run_scheduled` is the long-running loop: cron mode (the backup.conf cron lines,
in-process, in TZ, DST-safe through :func:`moodump.schedule.next_due`) or legacy mode
(every BACKUP_PERIOD). Time is injected everywhere (``clock``, ``sleep``) and ``stop``
(a :class:`threading.Event`) ends the loop between runs and aborts a running dump.

Notifications never change a result: the notifier never raises, and failures to deliver
are counted in the report. Payloads are built in memory, so failure alerts go out when
the backup disk is full.
"""

from __future__ import annotations

from moodump.jobs.backup import run_once
from moodump.jobs.maintenance import check_once, prune_once
from moodump.jobs.report import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    STATUS_WARNING,
    DatabaseResult,
    RunReport,
)
from moodump.jobs.scheduler import RUNNABLE_ACTIONS, Job, run_job, run_scheduled, scheduled_jobs
from moodump.jobs.verify_cycle import verify_all
from moodump.jobs.wiring import conn_settings_for, ftps_target_from_config, notifier_from_config

__all__ = [
    "RUNNABLE_ACTIONS",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_SKIPPED",
    "STATUS_WARNING",
    "DatabaseResult",
    "Job",
    "RunReport",
    "check_once",
    "conn_settings_for",
    "ftps_target_from_config",
    "notifier_from_config",
    "prune_once",
    "run_job",
    "run_once",
    "run_scheduled",
    "scheduled_jobs",
    "verify_all",
]
