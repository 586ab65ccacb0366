"""The scheduled moodledata cross-check after a backup (``MOODUMP_CHECK_FILES``).

The new backup's ``{prefix}files`` rows (the prefix the dump found and recorded in the
manifest's ``moodle`` section) are checked against ``MOODLE_DATAROOT``. The manifest is
sealed (its bytes are what ``manifest.sig`` signs and what restores identify a backup
by), so the result goes beside it, to ``files-check.json``, like ``verify.json``, and
into the run report. A missing or corrupt content file is a warning: the database
backup itself is good, but the site it restores would show broken files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from moodump.config import Config, DatabaseSpec
from moodump.errors import MoodumpError
from moodump.jobs.report import DatabaseResult
from moodump.manifest import Manifest
from moodump.moodlesite import HashPlan, check_backup_files, write_files_check

log = logging.getLogger(__name__)


def check_moodledata(
    cfg: Config, spec: DatabaseSpec, manifest: Manifest, path: Path, res: DatabaseResult
) -> None:
    """Run the check when configured and the database is Moodle's; record it in ``res``.
    The dataroot is MOODLE_DATAROOT, else the one config.php (MOODLE_CONFIG) names."""
    if cfg.check_files == "off":
        return
    dataroot = cfg.moodle_dataroot or spec.dataroot
    if not dataroot:
        res.warn(
            "MOODUMP_CHECK_FILES is set but no dataroot is known (MOODLE_DATAROOT, or "
            "config.php's $CFG->dataroot through MOODLE_CONFIG): moodledata not checked"
        )
        return
    prefix = (manifest.moodle or {}).get("prefix")
    if not prefix:
        return  # not a Moodle database
    plan = HashPlan("all") if cfg.check_files == "hash" else HashPlan()
    if cfg.check_files == "exists" and cfg.check_files_sample:
        plan = HashPlan.of(False, cfg.check_files_sample, None)
    try:
        report = check_backup_files(path, Path(dataroot), prefix=str(prefix), plan=plan)
    except MoodumpError as exc:
        res.warn(f"moodledata check not done: {exc.message}")
        return
    try:
        write_files_check(path, report)
    except OSError as exc:
        log.warning("could not write the files check record in %s: %s", path, exc.strerror)
    doc: dict[str, Any] = report.to_dict()
    res.files_check = {
        k: doc[k]
        for k in ("passed", "rows", "referenced", "present", "hash_mode", "hashed", "seed")
    } | {k: doc[k]["count"] for k in ("missing", "corrupt", "orphans", "invalid_rows")}
    level = "ok" if report.passed else "warn"
    res.checks.append(
        {"check": "moodledata", "level": level, "core": res.core, "message": report.summary()}
    )
    if not report.passed:
        first = (report.missing.examples + report.corrupt.examples)[:3]
        res.warn(
            f"moodledata {dataroot}: {report.summary()}; e.g. "
            + ", ".join(e["path"] for e in first)
        )
