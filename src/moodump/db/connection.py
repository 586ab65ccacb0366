"""Connections over mysql-connector-python's C extension, and driver-error mapping.

This module is the only place that imports the driver, and it imports the low-level
``_mysql_connector`` C extension first. The connector's wheels vendor a newer OpenSSL
than Debian 12's, under the same sonames, and loading can fail depending on what the
process loaded before:

- ``hashlib`` (the system libcrypto) but not ``ssl``: the vendored libssl then needs
  symbols the already loaded libcrypto lacks. Loading ``ssl`` too and retrying works:
  the extension then uses the system libssl, which is complete (checked with 9.1-9.7),
  so a program that imported ``hashlib`` before moodump still gets the C extension;
- ``ssl`` with connector releases 26.x: the import fails either way (hence the pin).

The high-level package would then silently run in pure Python, 8-9x slower. moodump never
falls back: without the C extension it refuses to run and says why.

The low-level object is used directly (no cursor classes): ``raw=True`` returns every
value as ``bytes`` exactly as the server sent it, and ``buffered=False`` streams rows
from a server-side result set, so memory never depends on table size.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from moodump.config.values import SSL_MODES
from moodump.errors import (
    ConfigError,
    ConnectError,
    MoodumpError,
    NotFoundError,
    PrivilegeError,
    SchemaChanged,
    ServerError,
    ServerLost,
    SnapshotError,
    StorageError,
)
from moodump.sqltext import join_idents as join_idents  # re-exported for callers
from moodump.sqltext import quote_ident as quote_ident
from moodump.sqltext import quote_str as quote_str


def _import_cext() -> tuple[Any, str | None]:
    """The connector's C extension (see the module docstring), or None and why not."""
    try:
        import _mysql_connector

        return _mysql_connector, None
    except ImportError as exc:
        first = str(exc)
    import ssl  # noqa: F401 - the system libssl, to match an already loaded libcrypto

    try:
        import _mysql_connector

        return _mysql_connector, None
    except ImportError:  # pragma: no cover - depends on the installation
        return None, first


_mysql_connector, _CEXT_ERROR = _import_cext()

# Server error numbers we map (MariaDB and MySQL share them).
ER_ACCESS_DENIED = 1045
ER_ACCESS_DENIED_NO_PASSWORD = 1698  # the account's auth plugin refused (unix_socket, PAM)
ER_DBACCESS_DENIED = 1044
ER_BAD_DB = 1049
ER_NO_SUCH_TABLE = 1146
ER_SPECIFIC_ACCESS_DENIED = 1227
ER_TABLEACCESS_DENIED = 1142
ER_COLUMNACCESS_DENIED = 1143
ER_PROCACCESS_DENIED = 1370
ER_LOCK_WAIT_TIMEOUT = 1205
ER_TABLE_DEF_CHANGED = 1412
ER_NO_SUCH_TABLE_ENGINE = 1932
ER_QUERY_INTERRUPTED = 1317
ER_CONN_KILLED = 1927
CR_CONN_HOST_ERROR = 2003
CR_CONNECTION_ERROR = 2002
CR_SERVER_GONE = 2006
CR_SERVER_LOST = 2013
CR_UNKNOWN_HOST = 2005
CR_AUTH_PLUGIN = 2059
CR_SSL_CONNECTION_ERROR = 2026  # TLS failed: certificate check, files, handshake
ER_READ_TIMEOUT = 3024

_PRIVILEGE_ERRNOS = {
    ER_DBACCESS_DENIED,
    ER_SPECIFIC_ACCESS_DENIED,
    ER_TABLEACCESS_DENIED,
    ER_COLUMNACCESS_DENIED,
    ER_PROCACCESS_DENIED,
}
_LOST_ERRNOS = {
    CR_SERVER_GONE,
    CR_SERVER_LOST,
    ER_CONN_KILLED,
    ER_QUERY_INTERRUPTED,
    ER_READ_TIMEOUT,
}


def cext_loaded() -> bool:
    """True when the C extension is importable (tests assert this)."""
    return _mysql_connector is not None


def _plugin_dir() -> str:
    # Authentication plugins ship inside the wheel; the low-level object must be told
    # where, or mysql_native_password cannot load.
    import mysql.connector as _pkg  # imported after _mysql_connector on purpose

    base = os.path.dirname(os.path.abspath(_pkg.__file__))
    return os.path.normpath(os.path.join(base, "..", "vendor", "plugin"))


@dataclass(frozen=True)
class ConnSettings:
    """Where and how to connect. ``password`` is never printed (see ``__repr__``)."""

    host: str = "127.0.0.1"
    port: int = 3306
    socket: str | None = None
    user: str = "root"
    password: str = field(default="", repr=False)
    database: str | None = None
    connect_timeout: int = 10
    read_timeout: int = 0
    write_timeout: int = 0
    #: One of :data:`SSL_MODES` (see :func:`ssl_arguments`).
    ssl_mode: str = "PREFERRED"
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None

    def with_database(self, database: str | None) -> ConnSettings:
        return replace(self, database=database)

    def describe(self) -> str:
        where = self.socket if self.socket else f"{self.host}:{self.port}"
        return f"{self.user}@{where}"


def ssl_arguments(settings: ConnSettings) -> dict[str, Any]:
    """The connector's TLS arguments for ``settings.ssl_mode``.

    The connector knows "off" and "on" (``ssl_disabled``), and "on" never fails for want
    of TLS: against a server without TLS it connects in the clear, even with
    ``ssl_verify_cert``. So PREFERRED and REQUIRED both ask for TLS here, and
    :class:`Connection` checks ``Ssl_cipher`` after connecting for REQUIRED and
    stricter. ``ssl_verify_cert`` without a CA file verifies nothing, so VERIFY_CA and
    VERIFY_IDENTITY without ``ssl_ca`` use the system's CA bundle (as a browser would).
    """
    mode = settings.ssl_mode
    if mode not in SSL_MODES:
        raise ConfigError(f"unknown TLS mode {mode!r}", hint="use one of " + ", ".join(SSL_MODES))
    if mode == "DISABLED":
        return {"ssl_disabled": True}
    verify = mode in ("VERIFY_CA", "VERIFY_IDENTITY")
    ca = settings.ssl_ca
    if verify and not ca:
        ca = _system_ca_file()
    out: dict[str, Any] = {"ssl_disabled": False, "ssl_verify_cert": verify}
    if mode == "VERIFY_IDENTITY":
        out["ssl_verify_identity"] = True
    for name, value in (
        ("ssl_ca", ca),
        ("ssl_cert", settings.ssl_cert),
        ("ssl_key", settings.ssl_key),
    ):
        if value:
            _check_readable(value, name)
            out[name] = value
    if bool(settings.ssl_cert) != bool(settings.ssl_key):
        raise ConfigError(
            "a client certificate needs both --ssl-cert and --ssl-key",
            hint="give both files (or neither)",
        )
    return out


def _system_ca_file() -> str:
    import ssl  # here, after the C extension is loaded (see the module docstring)

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    raise ConfigError(
        "TLS verification needs a CA file and the system has no CA bundle",
        hint="give the CA that signed the server's certificate: --ssl-ca (MOODUMP_SSL_CA)",
    )


def _check_readable(path: str, option: str) -> None:
    """A missing file would surface as an OpenSSL error that does not name it."""
    flag = "--" + option.replace("_", "-")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot read the {flag} file {path}: {exc.strerror}",
            hint="check the path and its permissions",
        ) from None


def map_driver_error(exc: BaseException, context: str) -> MoodumpError:
    """Translate a driver exception into the most specific moodump error.

    The pure-Python and C paths raise different classes for the same server error, so
    this matches on ``errno`` only.
    """
    errno = getattr(exc, "errno", None)
    if errno is None and exc.args and isinstance(exc.args[0], int):
        errno = exc.args[0]
    msg = getattr(exc, "msg", None) or str(exc)
    text = f"{context}: {msg} (error {errno})" if errno else f"{context}: {msg}"
    if errno == ER_ACCESS_DENIED:
        return ConnectError(
            text, hint="check the user name and password (MYSQL_PWD, --password-file)"
        )
    if errno == ER_ACCESS_DENIED_NO_PASSWORD:
        return ConnectError(
            text,
            hint="check the user name and password (MYSQL_PWD, --password-file); an account "
            "that logs in by unix_socket (such as Debian's root) works only through the "
            "server's socket as the same system user: use --socket, or an account with a "
            "password",
        )
    if errno in (CR_CONN_HOST_ERROR, CR_CONNECTION_ERROR, CR_UNKNOWN_HOST):
        return ConnectError(
            text, hint="check --host/--port/--socket and that the server is running"
        )
    if errno == CR_SSL_CONNECTION_ERROR:
        return ConnectError(
            text,
            hint="check the --ssl-ca/--ssl-cert/--ssl-key files (PEM) and the server's TLS "
            "setup, or choose another --ssl-mode (docs/tls.md)",
        )
    if errno == CR_AUTH_PLUGIN:
        return ConnectError(
            text, hint="the account uses an authentication plugin this client lacks (ed25519?)"
        )
    if errno == ER_BAD_DB:
        return NotFoundError(text, hint="check the database name (SHOW DATABASES)")
    if errno == ER_NO_SUCH_TABLE:
        return NotFoundError(text, hint="check the table name")
    if errno == ER_NO_SUCH_TABLE_ENGINE:
        # The table is defined, but its engine has no data for it: the server's damage,
        # not a wrong name, so a server failure (6) rather than "not found" (5).
        return ServerError(
            text,
            hint="the table is defined but its storage engine has no data for it (a missing "
            "or discarded tablespace, a damaged data dictionary): check the server's error log",
        )
    if errno in _PRIVILEGE_ERRNOS:
        return PrivilegeError(
            text, hint="grant the missing privilege to the account, or use another"
        )
    if errno == ER_TABLE_DEF_CHANGED:
        return SchemaChanged(
            text, hint="a table was altered during the dump; run the dump again after the DDL"
        )
    if errno == ER_LOCK_WAIT_TIMEOUT or errno == 1205:
        return SnapshotError(
            text, hint="a long transaction holds locks; retry or raise --lock-wait-timeout"
        )
    if errno in _LOST_ERRNOS:
        return ServerLost(
            text, hint="the server went away or killed the query; check the server and run again"
        )
    if errno in (1021, 3, 1114) or (errno == 1030 and "error 28" in str(msg)):
        # disk full on the server: 1021, 1114 "The table is full", 1030 "Got error 28"
        return StorageError(text, hint="free space on the database server, then run again")
    return ServerError(text, hint="see the server error above")


_DRIVER_MODULES = ("_mysql_connector", "mysql", "moodump.db._speedups")


def is_driver_error(exc: BaseException) -> bool:
    """True for an error the driver raised: the connector or ``_speedups``' row stream."""
    module = type(exc).__module__
    return any(module == m or module.startswith(m + ".") for m in _DRIVER_MODULES)


class Connection:
    """One server session over the C extension's low-level object.

    Values come back as ``bytes`` (or ``None`` for NULL). Use :meth:`query` for small
    results and :meth:`stream` for row streams.
    """

    def __init__(self, settings: ConnSettings, *, local_infile: bool = False) -> None:
        if _mysql_connector is None:
            raise ConnectError(
                "the C extension of mysql-connector-python cannot be loaded: " + str(_CEXT_ERROR),
                hint="pip install 'mysql-connector-python>=9.4,<26' (moodump never runs in pure Python)",
            )
        self.settings = settings
        self._c = _mysql_connector.MySQL(
            raw=True,
            buffered=False,
            # the handshake carries the database name: in the client's default character
            # set, a non-ASCII name (mödle) is another name ("Unknown database")
            charset_name="utf8mb4",
            connection_timeout=settings.connect_timeout,
            plugin_dir=_plugin_dir(),
        )
        kwargs: dict[str, Any] = {
            "user": settings.user,
            "password": settings.password,
            "database": settings.database,
            "local_infile": local_infile,
            "read_timeout": settings.read_timeout,
            "write_timeout": settings.write_timeout,
        }
        if settings.socket:
            kwargs["unix_socket"] = settings.socket
            kwargs["host"] = "localhost"
        else:
            kwargs["host"] = settings.host
            kwargs["port"] = settings.port
        kwargs.update(ssl_arguments(settings))
        try:
            self._c.connect(**kwargs)
        except Exception as exc:
            raise self._connect_error(exc, kwargs) from exc
        try:
            self._require_encryption()
            # Identifiers and catalogue values may be non-ASCII: never rely on the
            # client library's default character set.
            self._c.query(b"SET NAMES utf8mb4")
            # Read once: an interrupt handler asks for it while another thread may be
            # inside a query on this connection.
            self._thread_id = int(self._c.thread_id())
        except MoodumpError:
            with contextlib.suppress(Exception):
                self._c.close()
            raise
        except Exception as exc:
            raise map_driver_error(exc, f"cannot connect to {settings.describe()}") from exc
        self.closed = False

    def _require_encryption(self) -> None:
        """REQUIRED and stricter: fail unless the session is encrypted (the connector
        falls back to a clear connection when the server offers no TLS). A Unix socket
        never leaves the host, and the server counts it as secure transport too."""
        s = self.settings
        if s.ssl_mode in ("DISABLED", "PREFERRED") or s.socket:
            return
        if self.cipher():
            return
        raise ConnectError(
            f"cannot connect to {s.describe()}: --ssl-mode {s.ssl_mode} needs an encrypted "
            "connection, and the server does not offer TLS",
            hint="configure TLS on the server (ssl_cert, ssl_key), or lower --ssl-mode "
            "(MOODUMP_SSL_MODE) if a clear connection is acceptable",
        )

    def cipher(self) -> str:
        """The session's TLS cipher; empty for a clear connection."""
        self._c.query(b"SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = self._c.fetch_row()
        self._c.free_result()
        value = row[1] if row else b""
        return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")

    def _connect_error(self, exc: BaseException, kwargs: dict[str, Any]) -> MoodumpError:
        """The error of a failed connect, with what the TLS settings explain.

        A failed certificate check looks the same for a wrong CA and a wrong host name,
        and a server that requires TLS refuses a clear login as "access denied"; one
        more connection attempt tells these apart (only after a failure)."""
        s = self.settings
        mapped = map_driver_error(exc, f"cannot connect to {s.describe()}")
        errno = getattr(exc, "errno", None)
        if errno == CR_SSL_CONNECTION_ERROR and "verify failed" in str(exc):
            if s.ssl_mode == "VERIFY_IDENTITY" and self._tries(kwargs, ssl_verify_identity=False):
                return ConnectError(
                    f"cannot connect to {s.describe()}: TLS host name verification failed: "
                    f"the server's certificate is valid but not issued for {s.host!r}",
                    hint="connect by a name the certificate lists (its subjectAltName), or "
                    "use --ssl-mode VERIFY_CA to check the CA only",
                )
            return ConnectError(
                f"cannot connect to {s.describe()}: TLS certificate verification failed: the "
                "server's certificate is not signed by the trusted CA "
                f"({s.ssl_ca or 'the system CA bundle'})",
                hint="give the CA that signed the server's certificate: --ssl-ca "
                "(MOODUMP_SSL_CA, <HOST>_SSL_CA)",
            )
        if (
            errno == ER_ACCESS_DENIED
            and s.ssl_mode == "DISABLED"
            and not s.socket
            and self._tries(kwargs, ssl_disabled=False)
        ):
            return ConnectError(
                f"cannot connect to {s.describe()}: the server requires secure transport "
                "(require_secure_transport=ON) and --ssl-mode DISABLED turned TLS off",
                hint="use --ssl-mode REQUIRED, VERIFY_CA or VERIFY_IDENTITY (MOODUMP_SSL_MODE)",
            )
        return mapped

    def _tries(self, kwargs: dict[str, Any], **change: Any) -> bool:
        """True when a connection with ``change`` applied to ``kwargs`` succeeds."""
        assert _mysql_connector is not None
        probe = _mysql_connector.MySQL(
            raw=True,
            buffered=False,
            connection_timeout=self.settings.connect_timeout,
            plugin_dir=_plugin_dir(),
        )
        try:
            probe.connect(**{**kwargs, **change})
        except Exception:
            return False
        with contextlib.suppress(Exception):
            probe.close()
        return True

    # -- statements -----------------------------------------------------------------
    def execute(self, sql: str | bytes) -> None:
        """Run a statement and discard any result."""
        for _ in self.stream(sql):
            pass

    def query(self, sql: str | bytes) -> list[tuple[bytes | None, ...]]:
        """Run a statement and return all rows (small results only)."""
        return list(self.stream(sql))

    def query_dicts(self, sql: str) -> list[dict[str, bytes | None]]:
        """Rows as dicts keyed by column name."""
        rows = []
        with self.mapped(sql):
            self._c.query(sql.encode("utf-8"))
            if self._c.have_result_set:
                names = [
                    f[4].decode("utf-8", "replace") if isinstance(f[4], bytes) else str(f[4])
                    for f in self._c.fetch_fields()
                ]
                while True:
                    row = self._c.fetch_row()
                    if row is None:
                        break
                    rows.append(dict(zip(names, row, strict=False)))
                self._c.free_result()
        return rows

    def scalar(self, sql: str) -> bytes | None:
        rows = self.query(sql)
        return rows[0][0] if rows else None

    def stream(self, sql: str | bytes) -> Iterator[tuple[bytes | None, ...]]:
        """Yield rows one at a time from an unbuffered (server-side) result."""
        data = sql.encode("utf-8") if isinstance(sql, str) else sql
        with self.mapped(_describe_sql(data)):
            self._c.query(data)
            if not self._c.have_result_set:
                self._consume_more()
                return
            fetch = self._c.fetch_row
            try:
                while True:
                    row = fetch()
                    if row is None:
                        break
                    yield row
            finally:
                with contextlib.suppress(Exception):
                    self._c.free_result()
            self._consume_more()

    def raw_fetcher(self, sql: bytes) -> Any:
        """Start an unbuffered query; return the C ``fetch_row`` for hot loops.

        The caller must call :meth:`finish_result` after the last row (``None``).
        """
        with self.mapped(_describe_sql(sql)):
            self._c.query(sql)
        return self._c.fetch_row

    def c_session(self) -> tuple[Any, int]:
        """The connector's C session object and its thread id.

        For :class:`moodump.db._speedups.Stream`, which reads rows on that session directly;
        the thread id lets it check that it found the session where it expects it.
        """
        return self._c, self._thread_id

    def finish_result(self) -> None:
        with contextlib.suppress(Exception):
            self._c.free_result()
        self._consume_more()

    def _consume_more(self) -> None:
        while self._c.more_results():
            self._c.next_result()
            if self._c.have_result_set:
                self._c.free_result()

    @contextlib.contextmanager
    def mapped(self, context: str) -> Iterator[None]:
        """Re-raise driver errors raised inside the block as moodump errors.

        Only the driver's errors: anything else raised in the block (an OSError from
        writing a file, a bug) passes through unchanged, for the caller to report as
        what it is. An OSError has an ``errno`` too, but not a server's error number.
        """
        try:
            yield
        except Exception as exc:
            if is_driver_error(exc):
                raise map_driver_error(exc, context) from exc
            raise

    def affected_rows(self) -> int:
        return int(self._c.affected_rows())

    def warning_count(self) -> int:
        return int(self._c.warning_count())

    def thread_id(self) -> int:
        return self._thread_id

    def server_version(self) -> str:
        return str(self._c.get_server_info())

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._c.close()
            self.closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe_sql(sql: bytes) -> str:
    text = sql[:120].decode("utf-8", "replace").replace("\n", " ")
    return f"query failed ({text}{'...' if len(sql) > 120 else ''})"


def connect(settings: ConnSettings, *, local_infile: bool = False) -> Connection:
    """Open a connection (C extension only)."""
    return Connection(settings, local_infile=local_infile)
