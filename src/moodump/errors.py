"""The one exception tree of moodump.

Every error the library raises on purpose is a :class:`MoodumpError`. Each class carries
the process exit code the CLI uses for it, and every message names the problem *and* the
next step, because these errors end up in cron mail and chat alerts, read by someone who
did not run the command.

Exit codes (also in docs/exit-codes.md):

====  =========================================================
0     success
1     success with warnings (``run``: only with MOODUMP_STRICT=1; else 0)
2     usage or configuration error
3     cannot connect / authenticate (database or off-site storage)
4     privileges missing
5     database or object not found
6     server failure during the operation (lost connection, killed)
7     storage error (disk full, unwritable, missing files)
8     backup is invalid (checksum, truncated, manifest not DONE)
9     concurrent DDL broke the snapshot
10    another run holds the lock
11    a check failed (stale backup, too small, shrank)
12    the restore target is not empty (use --drop)
13    an encrypted backup and no matching identity (private key)
14    the run took longer than its maximum run time (MOODUMP_MAX_RUNTIME)
15    a Moodle upgrade kept running past MOODUMP_UPGRADE_WAIT
16    point-in-time recovery impossible: the binary log archive does not cover the range
130   interrupted (Ctrl-C / SIGTERM)
====  =========================================================
"""

from __future__ import annotations


class MoodumpError(Exception):
    """Root of every error moodump raises deliberately."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  next step: {self.hint}"
        return self.message


class ConfigError(MoodumpError):
    """Bad configuration, flags or names."""

    exit_code = 2


class ConnectError(MoodumpError):
    """The server cannot be reached or refused the login."""

    exit_code = 3


class PrivilegeError(MoodumpError):
    """The account lacks a privilege the operation needs."""

    exit_code = 4


class NotFoundError(MoodumpError):
    """A database, table, backup or other named thing does not exist."""

    exit_code = 5


class ServerError(MoodumpError):
    """The server failed during the operation (lost connection, killed, SQL error)."""

    exit_code = 6


class ServerLost(ServerError):
    """The session was lost mid-operation: the server went away (crashed, OOM-killed,
    restarted), killed the query or the connection, or a timeout ended it. A failure of
    the server, not of what was sent to it (a verification by restore says nothing
    about the backup then)."""


class StorageError(MoodumpError):
    """Writing or reading backup files failed (disk full, permissions, missing file)."""

    exit_code = 7


class StorageAuthError(StorageError):
    """Off-site storage refused the credentials (wrong key or secret, expired token).

    A :class:`StorageError` for every catch site, with the authentication exit code.
    """

    exit_code = 3


class IntegrityError(MoodumpError):
    """A backup does not match its manifest, is truncated, or is not DONE."""

    exit_code = 8


class SnapshotError(MoodumpError):
    """The consistent snapshot could not be kept (DDL during the dump, lock timeout)."""

    exit_code = 9


class SchemaChanged(SnapshotError):
    """A table's definition changed while the dump ran (DDL during the snapshot: a
    Moodle upgrade, a plugin install). A :class:`SnapshotError` for every catch site;
    a run retries it within MOODUMP_UPGRADE_WAIT."""


class LockBusy(MoodumpError):
    """Another moodump run holds the lock."""

    exit_code = 10


class CheckFailed(MoodumpError):
    """A health check failed (stale, too small, shrank)."""

    exit_code = 11


class TargetNotEmpty(MoodumpError):
    """The restore target already has tables."""

    exit_code = 12


class DecryptionError(MoodumpError):
    """An encrypted backup cannot be read: no identity given, or none that matches.

    Raised before anything is written to a restore target; the message names the
    recipients the backup was encrypted to, so the operator knows which key to find.
    """

    exit_code = 13


class RuntimeExceeded(MoodumpError):
    """A database's run went past its maximum run time (MOODUMP_MAX_RUNTIME).

    Its queries were killed and nothing but a FAILED record was published; unlike
    :class:`Interrupted` the run goes on with the next database.
    """

    exit_code = 14


class UpgradeRunning(MoodumpError):
    """A Moodle upgrade was running (``upgraderunning`` in the site's config table, or
    the schema kept changing under the dump) for longer than MOODUMP_UPGRADE_WAIT;
    nothing was backed up."""

    exit_code = 15


class PitrUnavailable(MoodumpError):
    """A point-in-time restore cannot reach its target from the archived binary log:
    the snapshot has no position, a file was purged before it was archived (a gap), or
    the target lies before the snapshot or past the archived end. The message names the
    missing range; nothing was written to the target."""

    exit_code = 16


class Interrupted(MoodumpError):
    """The operation was interrupted by a signal."""

    exit_code = 130


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "success with warnings",
    2: "usage or configuration error",
    3: "cannot connect or authenticate (database or off-site storage)",
    4: "privileges missing",
    5: "database, table or backup not found",
    6: "server failure during the operation",
    7: "storage error (disk full, unwritable, missing file)",
    8: "backup invalid (checksum, truncated, manifest not DONE)",
    9: "concurrent DDL or lock timeout broke the snapshot",
    10: "another run holds the lock",
    11: "a check failed (stale, too small, shrank)",
    12: "restore target not empty (use --drop)",
    13: "encrypted backup: identity (private key) missing or not matching",
    14: "maximum run time exceeded (MOODUMP_MAX_RUNTIME); queries killed, nothing published",
    15: "a Moodle upgrade ran past MOODUMP_UPGRADE_WAIT; nothing was backed up",
    16: "point-in-time recovery impossible: the binary log archive does not cover the range",
    130: "interrupted",
}
