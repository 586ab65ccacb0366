"""moodump's configuration: one table of keys, the backup.conf reader, and the rendering.

Everything comes from environment variables (the old backup-container's names and
defaults, plus ``MOODUMP_*``) and the ``backup.conf`` file (database specs and cron lines).
:data:`KEYS` is the single table: each :class:`Key` names its :class:`Config` attribute,
environment variable, default, parser, whether it is a secret, and a one-line doc; the
docs page ``docs/configuration.md`` is generated from it (``python -m moodump.config
--markdown``).

Rules that apply to every key:

- An empty value counts as unset (the old scripts used ``${VAR:-default}``).
- A secret key (and a few others, e.g. user names that live in Kubernetes secrets) also
  accepts ``<ENV>_FILE``: the first line of that file is the value. Setting both is an error.
- Secrets are kept in :class:`Secret` objects whose ``repr``/``str`` never show the value;
  :meth:`Config.render` and :meth:`Config.to_dict` mask them.

:func:`load_config` is pure (environment mapping and file text in, frozen
:class:`Config` out; the only I/O is reading ``*_FILE`` secrets through an injectable
reader). :func:`load_config_from_environment` is the thin wrapper that reads
``os.environ`` and the BACKUP_CONF file.

backup.conf, as before but fixed:

- ``#`` to the end of a line is a comment; blank lines are ignored.
- ``[type=]host[:port]/database`` is a database (host names may contain dots, e.g.
  ``mysql-0.mysql/moodle``; the old parser silently took those for cron lines). Untyped
  lines and ``mariadb=``/``mysql=`` lines are ours, and ``postgres=`` lines (PostgreSQL,
  docs/postgresql.md); ``mongo=``, ``mssql=`` lines are skipped with a note (one ConfigMap
  can feed several containers).
- ``m h dom mon dow user command`` (or ``@daily user command``) is a schedule line.
- Anything else is a :class:`~moodump.errors.ConfigError` naming the file, the line
  number and the fix.
- Without database lines the database is ``DATABASE_SERVICE_NAME[:port]/DATABASE_NAME``.
  Without those either, it is the database of MOODLE_CONFIG's config.php
  (:mod:`moodump.config.moodlephp`), with its account, prefix and dataroot.
- Credentials per database: ``<HOST>_USER`` / ``<HOST>_PASSWORD`` (HOST upper-cased,
  ``-`` and ``.`` turned into ``_``), else DATABASE_USER / DATABASE_PASSWORD.
"""

from moodump.config.conffile import parse_backup_conf
from moodump.config.docs import main, render_markdown
from moodump.config.keys import KEYS, host_env_prefix, is_known_env_name, known_env_names
from moodump.config.load import (
    configured_zone,
    load_config,
    load_config_from_environment,
    read_moodle_config,
    setting,
)
from moodump.config.model import Config, DatabaseSpec, mask_url
from moodump.config.moodlephp import MoodleConfig, parse_moodle_config
from moodump.config.values import Secret, parse_percent, parse_size, parse_timedelta

__all__ = [
    "KEYS",
    "Config",
    "DatabaseSpec",
    "MoodleConfig",
    "Secret",
    "configured_zone",
    "host_env_prefix",
    "is_known_env_name",
    "known_env_names",
    "load_config",
    "load_config_from_environment",
    "main",
    "mask_url",
    "parse_backup_conf",
    "parse_moodle_config",
    "parse_percent",
    "parse_size",
    "parse_timedelta",
    "read_moodle_config",
    "render_markdown",
    "setting",
]
