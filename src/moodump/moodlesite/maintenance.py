"""Moodle's CLI maintenance mode around a restore, and the caches its database holds.

While ``climaintenance.html`` exists in the dataroot, every web request gets that page
(lib/setup.php checks for it before anything else, before the database is read), which
is what ``php admin/cli/maintenance.php --enable`` writes. A restore into a live site
writes it before touching the database and removes it only after the restore and the
cache purge succeeded; a failure leaves it, so users never see a half-restored site.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from moodump.db.connection import Connection, quote_ident, quote_str
from moodump.errors import NotFoundError, StorageError
from moodump.fsmodes import write_text

log = logging.getLogger("moodump.moodle")

MAINTENANCE_FILE = "climaintenance.html"

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Maintenance</title></head>
<body><h1>This site is being restored</h1>
<p>The site is in maintenance mode while its database is restored. Please try again later.</p>
<!-- {mark} -->
</body></html>
"""
#: Marks the file as moodump's: one left by a failed restore is lifted by the next
#: successful one; a file the operator wrote is never removed.
_MARK = "written by moodump restore --moodle-maintenance"
_PAGE = _PAGE.replace("{mark}", _MARK)

#: Tables that only cache (emptied after a restore): access-control dirty flags and
#: other cache flags; the filter text cache.
CACHE_TABLES = ("cache_flags", "cache_filters")
#: Config rows Moodle bumps in purge_all_caches(): theme, JavaScript, language-string
#: and template revisions (clients and every web node refetch), and the local cache
#: directory's purge stamp (every node empties its localcachedir).
CACHE_REVISIONS = ("themerev", "jsrev", "langrev", "templaterev", "localcachedirpurged")


def maintenance_path(dataroot: Path) -> Path:
    return Path(dataroot) / MAINTENANCE_FILE


def enter_maintenance(dataroot: Path) -> bool:
    """Write the maintenance file. True: it is ours, to remove after success (also one
    an earlier failed restore left); False: the operator's own, left in place."""
    root = Path(dataroot)
    if not root.is_dir():
        raise NotFoundError(
            f"--moodledata {root} is not a directory",
            hint="pass the Moodle dataroot ($CFG->dataroot); nothing was changed",
        )
    path = maintenance_path(root)
    if path.exists():
        try:
            ours = _MARK in path.read_text("utf-8", "replace")
        except OSError:
            ours = False
        if not ours:
            log.info("%s already exists: the site is in maintenance mode already", path)
            return False
        # left by an earlier restore of ours that failed: this one lifts it when it succeeds
        log.info("%s was left by an earlier failed restore; kept until this one succeeds", path)
        return True
    try:
        write_text(path, _PAGE, mode=0o644)
    except OSError as exc:
        raise StorageError(
            f"cannot write {path}: {exc.strerror}",
            hint="the dataroot must be writable by moodump; nothing was changed",
        ) from exc
    log.info("site in maintenance mode: wrote %s", path)
    return True


def leave_maintenance(dataroot: Path) -> None:
    path = maintenance_path(dataroot)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    log.info("site out of maintenance mode: removed %s", path)


def purge_db_caches(conn: Connection, database: str, prefix: str) -> list[str]:
    """Empty the cache tables and bump the cache revisions; returns what was done.

    File caches (``cache/``, ``localcache/`` in the dataroot, Redis or memcached MUC
    stores) are not the database's: bumping ``localcachedirpurged`` makes every node
    drop its local cache, and ``php admin/cli/purge_caches.php`` purges the rest.
    """
    done: list[str] = []
    qdb = quote_ident(database)
    present = {
        (r[0] or b"").decode()
        for r in conn.query(
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {quote_str(database)}"
        )
    }
    for t in CACHE_TABLES:
        if prefix + t in present:
            conn.execute(f"DELETE FROM {qdb}.{quote_ident(prefix + t)}")
            done.append(f"emptied {prefix}{t} ({conn.affected_rows()} rows)")
    if prefix + "config" in present:
        names = ", ".join(quote_str(n) for n in CACHE_REVISIONS)
        conn.execute(
            f"UPDATE {qdb}.{quote_ident(prefix + 'config')} SET value = "
            "GREATEST(CAST(value AS UNSIGNED) + 1, UNIX_TIMESTAMP()) "
            f"WHERE name IN ({names}) AND value REGEXP '^[0-9]+$'"
        )
        done.append(f"bumped {conn.affected_rows()} cache revisions ({', '.join(CACHE_REVISIONS)})")
    return done
