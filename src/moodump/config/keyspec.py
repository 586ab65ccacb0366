"""What a configuration key is: :class:`Key`, the documentation groups and origins.

The key table itself (:data:`moodump.config.keys.KEYS`) is data made of these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GROUP_DATABASES = "Databases and credentials"
GROUP_LAYOUT = "Layout and retention"
GROUP_SCHEDULE = "Schedule"
GROUP_DUMP = "Dump and verification"
GROUP_CHECKS = "Checks"
GROUP_MOODLE = "Moodle"
GROUP_NOTIFY = "Notifications"
GROUP_FTP = "Off-site copy (FTPS)"
GROUP_S3 = "Off-site copy (S3-compatible object storage)"
GROUP_CRYPT = "Encryption"
GROUP_OPS = "Logging and locking"
GROUP_IGNORED = "Recognised but not used"
GROUPS = (
    GROUP_DATABASES,
    GROUP_LAYOUT,
    GROUP_SCHEDULE,
    GROUP_DUMP,
    GROUP_CHECKS,
    GROUP_MOODLE,
    GROUP_NOTIFY,
    GROUP_FTP,
    GROUP_S3,
    GROUP_CRYPT,
    GROUP_OPS,
    GROUP_IGNORED,
)

ORIGIN_OLD = "backup-container"
ORIGIN_NEW = "moodump"


@dataclass(frozen=True)
class Key:
    """One configuration key.

    ``name`` is the :class:`Config` attribute (None for a recognised-but-unused variable,
    which only produces a note when set); ``default`` is the raw text fed to ``parse``
    when the variable is unset or empty; ``aliases`` are older names also read (they win
    over ``env`` when ``aliases_win``, as ROOT_BACKUP_DIR did); ``file_ok`` allows
    ``<ENV>_FILE`` (always on for secrets); ``default_doc`` replaces the default in docs.
    """

    name: str | None
    env: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    group: str
    origin: str = ORIGIN_OLD
    secret: bool = False
    file_ok: bool = False
    aliases: tuple[str, ...] = ()
    aliases_win: bool = False
    default_doc: str | None = None
    ignored_note: str = ""
    #: Set when a variable the old container read means something else now; a run
    #: warns about it at start (like an ignored one), so nobody loses a setting silently.
    changed_note: str = ""
    #: ``<ENV>_FILE`` is read whole (a multi-line PEM key), not only its first line.
    whole_file: bool = False

    @property
    def accepts_file(self) -> bool:
        return self.secret or self.file_ok

    @property
    def env_names(self) -> tuple[str, ...]:
        """Every environment name this key reads, in precedence order (no _FILE)."""
        return (*self.aliases, self.env) if self.aliases_win else (self.env, *self.aliases)
