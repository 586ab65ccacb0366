"""moodump: consistent, exact, verified logical backups of MySQL/MariaDB databases.

The library comes first; the ``moodump`` CLI is a thin layer over it. Main entry points:

- :func:`moodump.dump` takes a consistent dump of one database into a backup directory;
- :func:`moodump.restore` loads a backup into a server;
- :func:`moodump.verify` proves a backup (offline, or by restoring it);
- :mod:`moodump.retention` decides which backups to keep (pure).
"""

from __future__ import annotations

__version__ = "0.1.0"

from moodump.errors import MoodumpError

__all__ = ["MoodumpError", "__version__"]
