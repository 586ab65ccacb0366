"""Connection settings for PostgreSQL, resolved the way ``psql`` users expect.

For each field: what the caller was told explicitly (a flag, or a ``postgres=`` line of
backup.conf with its credentials) wins, then the libpq environment (``PGHOST``,
``PGPORT``, ``PGUSER``), then the default (127.0.0.1, 5432, ``$USER`` or postgres). The
password: ``--password-file`` (or the configured one), else none is set and libpq itself
reads ``PGPASSWORD`` or the password file (``~/.pgpass``, ``PGPASSFILE``), as ``psql``
does. Client tools get the same password through a private ``PGPASSFILE``, never argv.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from moodump.db.connection import ConnSettings
from moodump.db.credentials import ConnRequest, read_secret_file
from moodump.errors import ConfigError

PG_DEFAULT_PORT = 5432


def resolve_pg_connection(
    request: ConnRequest, *, env: Mapping[str, str], base: ConnSettings | None = None
) -> ConnSettings:
    """Settings from ``request`` > ``PG*`` environment > defaults."""
    if request.password is not None:
        password = request.password
    elif request.password_file is not None:
        password = read_secret_file(request.password_file)
    else:
        password = ""  # libpq: PGPASSWORD, then ~/.pgpass (PGPASSFILE)
    port_text = request.port or env.get("PGPORT") or PG_DEFAULT_PORT
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"port {port_text!r} is not a number", hint="fix PGPORT") from None
    base = base if base is not None else ConnSettings()
    tls = {
        name: getattr(request, name) or getattr(base, name)
        for name in ("ssl_mode", "ssl_ca", "ssl_cert", "ssl_key")
    }
    return replace(
        base,
        host=request.host or env.get("PGHOST") or "127.0.0.1",
        port=port,
        socket=request.socket or None,
        user=request.user or env.get("PGUSER") or env.get("USER") or "postgres",
        password=password,
        **tls,
    )
