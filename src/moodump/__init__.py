"""moodump: consistent, exact, verified logical backups of MySQL/MariaDB databases.

The library comes first; the ``moodump`` CLI is a thin layer over it. This package is the
public Python API (documented, with every signature, in ``docs/api.md``):

- one function per operation: :func:`dump`, :func:`restore`, :func:`verify` (one backup),
  :func:`run_once`, :func:`verify_all`, :func:`listing`, :func:`prune_once`,
  :func:`delete_backup_once`, :func:`check_once` (the configured site, as ``moodump run``,
  ``list``, ``prune`` and ``check`` do);
- their options and results (:class:`DumpOptions`, :class:`DumpResult`,
  :class:`RunReport` ...), the configuration (:class:`Config`,
  :func:`load_config_from_environment`) and connection settings (:class:`ConnSettings`);
- the errors: :class:`MoodumpError` and its subclasses, each with an exit code.

``import moodump`` stays cheap (the CLI, ``python -m moodump.config`` and every
``from moodump import __version__`` go through it): only :mod:`moodump.errors` is
imported here, everything else on first use through the module ``__getattr__`` (PEP 562).
The ``TYPE_CHECKING`` imports below give type checkers and IDEs the real types.

``moodump.dump``, ``moodump.restore`` and ``moodump.verify`` are the *functions*, although
the sub-package/module of the same name exists: the import system binds a sub-module on
its parent when it is first imported, and the package class below keeps it from
replacing the function. Reach the sub-modules with ``from moodump.dump import engine`` or
``importlib.import_module("moodump.dump")``, not ``import moodump.dump.engine as ...``.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from moodump.errors import (
    EXIT_CODES,
    CheckFailed,
    ConfigError,
    ConnectError,
    DecryptionError,
    IntegrityError,
    Interrupted,
    LockBusy,
    MoodumpError,
    NotFoundError,
    PitrUnavailable,
    PrivilegeError,
    RuntimeExceeded,
    SchemaChanged,
    ServerError,
    ServerLost,
    SnapshotError,
    StorageAuthError,
    StorageError,
    TargetNotEmpty,
    UpgradeRunning,
)

if TYPE_CHECKING:
    from moodump.catalog import BackupInfo, DatabaseBackups
    from moodump.config import Config, DatabaseSpec, load_config, load_config_from_environment
    from moodump.db import ConnSettings
    from moodump.db.credentials import ConnRequest, resolve_connection
    from moodump.dump import DumpOptions, DumpResult, ProgressEvent, dump
    from moodump.export import ExportOptions, ExportResult, export
    from moodump.jobs import (
        DatabaseResult,
        RunReport,
        check_once,
        conn_settings_for,
        prune_once,
        run_once,
        verify_all,
    )
    from moodump.jobs.maintenance import CheckOptions, Listing, delete_backup_once, listing
    from moodump.jobs.status import DatabaseStatus, Status, status
    from moodump.progress import Progress, ProgressSnapshot, log_progress
    from moodump.restore import RestoreEvent, RestoreOptions, RestoreResult, restore
    from moodump.verify import VerifyReport, verify

# name -> the module it is loaded from on first use. Adding a name here (and to the
# TYPE_CHECKING imports above) exports it; tests/test_api.py then requires it in
# docs/api.md with its exact signature.
_LAZY: dict[str, str] = {
    # one backup
    "dump": "moodump.dump",
    "DumpOptions": "moodump.dump",
    "DumpResult": "moodump.dump",
    "ProgressEvent": "moodump.dump",
    "restore": "moodump.restore",
    "RestoreOptions": "moodump.restore",
    "RestoreResult": "moodump.restore",
    "RestoreEvent": "moodump.restore",
    "verify": "moodump.verify",
    "VerifyReport": "moodump.verify",
    "export": "moodump.export",
    "ExportOptions": "moodump.export",
    "ExportResult": "moodump.export",
    # what dump, restore, verify, run_once and verify_all count into (tracker=)
    "Progress": "moodump.progress",
    "ProgressSnapshot": "moodump.progress",
    "log_progress": "moodump.progress",
    # the configured site (backup.conf and the environment)
    "run_once": "moodump.jobs",
    "verify_all": "moodump.jobs",
    "listing": "moodump.jobs.maintenance",
    "prune_once": "moodump.jobs",
    "delete_backup_once": "moodump.jobs.maintenance",
    "check_once": "moodump.jobs",
    "RunReport": "moodump.jobs",
    "DatabaseResult": "moodump.jobs",
    "Listing": "moodump.jobs.maintenance",
    "DatabaseBackups": "moodump.catalog",
    "BackupInfo": "moodump.catalog",
    "CheckOptions": "moodump.jobs.maintenance",
    "status": "moodump.jobs.status",
    "Status": "moodump.jobs.status",
    "DatabaseStatus": "moodump.jobs.status",
    # configuration and connections
    "Config": "moodump.config",
    "DatabaseSpec": "moodump.config",
    "load_config": "moodump.config",
    "load_config_from_environment": "moodump.config",
    "conn_settings_for": "moodump.jobs",
    "ConnSettings": "moodump.db",
    "ConnRequest": "moodump.db.credentials",
    "resolve_connection": "moodump.db.credentials",
}

# Literal, so type checkers see the re-exports; tests/test_api.py checks it is _LAZY,
# the errors and __version__.
__all__ = [
    "EXIT_CODES",
    "BackupInfo",
    "CheckFailed",
    "CheckOptions",
    "Config",
    "ConfigError",
    "ConnRequest",
    "ConnSettings",
    "ConnectError",
    "DatabaseBackups",
    "DatabaseResult",
    "DatabaseSpec",
    "DatabaseStatus",
    "DecryptionError",
    "DumpOptions",
    "DumpResult",
    "ExportOptions",
    "ExportResult",
    "IntegrityError",
    "Interrupted",
    "Listing",
    "LockBusy",
    "MoodumpError",
    "NotFoundError",
    "PitrUnavailable",
    "PrivilegeError",
    "Progress",
    "ProgressEvent",
    "ProgressSnapshot",
    "RestoreEvent",
    "RestoreOptions",
    "RestoreResult",
    "RunReport",
    "RuntimeExceeded",
    "SchemaChanged",
    "ServerError",
    "ServerLost",
    "SnapshotError",
    "Status",
    "StorageAuthError",
    "StorageError",
    "TargetNotEmpty",
    "UpgradeRunning",
    "VerifyReport",
    "__version__",
    "check_once",
    "conn_settings_for",
    "delete_backup_once",
    "dump",
    "export",
    "listing",
    "load_config",
    "load_config_from_environment",
    "log_progress",
    "prune_once",
    "resolve_connection",
    "restore",
    "run_once",
    "status",
    "verify",
    "verify_all",
]

# Exported functions named like the sub-module that defines them (dump, restore, verify).
_SHADOWED = frozenset(name for name, module in _LAZY.items() if module == f"{__name__}.{name}")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """The ``moodump`` module's class: keeps ``moodump.dump`` the function.

    Importing ``moodump.dump`` (the sub-package) makes the import system run
    ``setattr(moodump, "dump", <module>)``; without this, ``moodump.dump(...)`` and ``from
    moodump import dump`` would give the module whenever anything imported the
    sub-package first (the CLI does).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
