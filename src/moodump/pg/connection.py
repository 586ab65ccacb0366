"""Connections to PostgreSQL through psycopg 3, and its errors as moodump errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.copy import Copy

from moodump.db.connection import ConnSettings
from moodump.errors import (
    ConnectError,
    MoodumpError,
    NotFoundError,
    PrivilegeError,
    ServerError,
    ServerLost,
)

#: A psycopg connection and the driver's base error, for the use cases that hold
#: connections without importing the driver (only this package does).
Conn = psycopg.Connection[Any]
DriverError = psycopg.Error

# moodump's TLS modes (shared with MySQL) as libpq's sslmode.
_SSLMODE = {
    "DISABLED": "disable",
    "PREFERRED": "prefer",
    "REQUIRED": "require",
    "VERIFY_CA": "verify-ca",
    "VERIFY_IDENTITY": "verify-full",
}

#: Session settings of every dump and read-back session: the text form of every value
#: depends on them (time zone, date style, float digits, bytea form), so the dump and the
#: verification after a restore format rows identically whatever the server's defaults.
#: The restore's ``COPY FROM`` sessions use them too: ``search_path`` decides how reg*
#: values (regclass, regtype, regproc, …) print and resolve (a database-level
#: ``search_path`` printed them unqualified, and the new database could not read them
#: back), ``lc_monetary`` how money prints and parses.
SESSION_SETTINGS = (
    ("search_path", "pg_catalog"),
    ("lc_monetary", "C"),
    ("xmloption", "content"),  # xml input: a server set to DOCUMENT refuses fragments
    # an account subject to row-level security would read (or write) only the rows its
    # policies let it see: with row_security off that is an error, never a partial table
    ("row_security", "off"),
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    # a NULL element of an array reads as a null, not as the string "NULL" (a legacy
    # role, database or server may turn it off)
    ("array_nulls", "on"),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
)


def sql_bytes(text: str, encoding: str) -> bytes:
    """A statement's text as a client tool whose ``client_encoding`` is ``encoding`` (a
    PostgreSQL name: the database's) must send it: psql sends its arguments' bytes as
    they are, so a name of a LATIN1 database must go in LATIN1, not in UTF-8. UTF-8 (and
    SQL_ASCII's bytes, held as surrogates) otherwise, or for an encoding Python lacks."""
    name = encoding.upper().replace("-", "").replace("_", "")
    if name not in ("", "UTF8", "UNICODE", "SQLASCII"):
        try:
            from psycopg._encodings import pg2pyenc

            return text.encode(pg2pyenc(encoding.encode("ascii")))
        except (ImportError, LookupError, UnicodeError, psycopg.NotSupportedError):
            pass
    return text.encode("utf-8", "surrogateescape")


def sql_text(data: bytes, encoding: str) -> str:
    """The inverse of :func:`sql_bytes`: text a client tool wrote in ``encoding``
    (bytes that are not valid in it, or UTF-8, kept as surrogates)."""
    name = encoding.upper().replace("-", "").replace("_", "")
    if name not in ("", "UTF8", "UNICODE", "SQLASCII"):
        try:
            from psycopg._encodings import pg2pyenc

            return data.decode(pg2pyenc(encoding.encode("ascii")))
        except (ImportError, LookupError, UnicodeError, psycopg.NotSupportedError):
            pass
    return data.decode("utf-8", "surrogateescape")


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always quoted (any character but NUL)."""
    return '"' + name.replace('"', '""') + '"'


def quote_str(value: str) -> str:
    """A string literal that reads as ``value`` whatever ``standard_conforming_strings``
    is (a legacy server, role or database may turn it off, and would read ``'C:\\new'``
    with a newline): a value with a backslash is an escape string (``E'…'``)."""
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def conninfo(settings: ConnSettings, dbname: str) -> dict[str, Any]:
    """psycopg connection keywords. An empty password is left to libpq, which then reads
    ``PGPASSWORD`` or ``~/.pgpass`` (``PGPASSFILE``), as ``psql`` would."""
    kw: dict[str, Any] = {
        "host": settings.socket or settings.host,
        "port": settings.port,
        "user": settings.user,
        "dbname": dbname,
        "connect_timeout": settings.connect_timeout,
        "application_name": "moodump",
        "sslmode": _SSLMODE.get(settings.ssl_mode, "prefer"),
    }
    if settings.password:
        kw["password"] = settings.password
    if settings.ssl_ca:
        kw["sslrootcert"] = settings.ssl_ca
    if settings.ssl_cert:
        kw["sslcert"] = settings.ssl_cert
    if settings.ssl_key:
        kw["sslkey"] = settings.ssl_key
    return kw


class _SqlAsciiText(Loader):
    """Text of a ``SQL_ASCII`` database's session: bytes in no known encoding, which
    psycopg hands over as ``bytes``; read as UTF-8, any other byte kept as a surrogate
    (``surrogateescape``), as moodump reads pg_dump's scripts."""

    def load(self, data: Buffer) -> str:
        return bytes(data).decode("utf-8", "surrogateescape")


class _SqlAsciiStr(Dumper):
    """A str parameter for a ``SQL_ASCII`` session, encoded back the same way."""

    oid = 0  # unknown: the server infers the type, as for psycopg's own str dumper

    def dump(self, obj: str) -> bytes:
        return obj.encode("utf-8", "surrogateescape")


class _Cursor(psycopg.Cursor[Any]):
    """A cursor whose statements reach a ``SQL_ASCII`` session as their UTF-8 bytes (a
    surrogate as the byte it stands for): psycopg would encode them as ASCII, and fail
    on a name such a database holds in bytes of no known encoding."""

    def _moodump_encoded(self, query: Any) -> Any:
        if isinstance(query, str) and self.connection.info.encoding == "ascii":
            return query.encode("utf-8", "surrogateescape")
        return query

    def execute(self, query: Any, params: Any = None, **kw: Any) -> _Cursor:  # type: ignore[override]
        super().execute(self._moodump_encoded(query), params, **kw)
        return self

    @contextlib.contextmanager
    def copy(self, statement: Any, params: Any = None, **kw: Any) -> Iterator[Copy]:  # type: ignore[override]
        with super().copy(self._moodump_encoded(statement), params, **kw) as copy:  # type: ignore[arg-type]
            yield copy


def sql_ascii(conn: psycopg.Connection[Any]) -> None:
    """A ``SQL_ASCII`` session (psycopg's encoding "ascii") reads and writes text as
    :class:`_SqlAsciiText` and :class:`_SqlAsciiStr` do, instead of bytes."""
    if conn.info.encoding != "ascii":
        return
    for oid in (25, 1043, 1042, 19, 18, 705):  # text, varchar, bpchar, name, "char", unknown
        conn.adapters.register_loader(oid, _SqlAsciiText)
    conn.adapters.register_dumper(str, _SqlAsciiStr)


def describe(settings: ConnSettings) -> str:
    return f"{settings.user}@{settings.socket or settings.host}:{settings.port}"


def connect(settings: ConnSettings, dbname: str, *, autocommit: bool = False) -> Conn:
    """A connection to ``dbname``; ConnectError (with the next step) when it fails."""
    try:
        conn = psycopg.connect(
            **conninfo(settings, dbname), autocommit=autocommit, cursor_factory=_Cursor
        )
        sql_ascii(conn)
        return conn
    except psycopg.OperationalError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        if "does not exist" in text and "database" in text:
            raise NotFoundError(
                f"PostgreSQL database {dbname!r} does not exist on {describe(settings)}",
                hint="check the name (\\l in psql lists the databases)",
            ) from exc
        hint = "check host, port, user and password (PGPASSWORD, ~/.pgpass or MYSQL_PWD-style settings)"
        raise ConnectError(f"cannot connect to PostgreSQL {describe(settings)}: {text}", hint=hint) from exc


def set_session(
    conn: psycopg.Connection[Any], encoding: str = "", search_path: str | None = "pg_catalog"
) -> None:
    """Apply :data:`SESSION_SETTINGS` (outside or at the start of a transaction), and
    ``client_encoding`` = ``encoding`` (the source database's) when given: the data files
    hold the text in the database's own encoding, whatever client_encoding the server or
    the database sets for its sessions. ``search_path`` None keeps the session's own
    (the restore's loads: reg* values were printed schema-qualified, and CHECK
    functions that read tables by unqualified names find them as in the source)."""
    settings = [(k, v) for k, v in SESSION_SETTINGS if k != "search_path"]
    settings += [("client_encoding", encoding)] if encoding else []
    settings += [("search_path", search_path)] if search_path is not None else []
    with conn.cursor() as cur:
        for name, value in settings:
            cur.execute(f"SELECT pg_catalog.set_config({quote_str(name)}, {quote_str(value)}, false)")
    sql_ascii(conn)


def pg_error(exc: BaseException, what: str) -> MoodumpError:
    """A driver error as a moodump error saying what was being done."""
    if isinstance(exc, MoodumpError):
        return exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.InsufficientPrivilege) and "row-level security" in text:
        # no privilege to grant: the policies apply to the account (its owner's too
        # under FORCE ROW LEVEL SECURITY), and reading only the rows they let it see
        # would be a partial table
        return PrivilegeError(
            f"{what}: {text}",
            hint="the table's row level security applies to this account: dump as a "
            "superuser or a role with BYPASSRLS (ALTER ROLE … BYPASSRLS)",
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return PrivilegeError(f"{what}: {text}", hint="grant the account the privilege named")
    # OperationalError covers "object not in prerequisite state", "lock not available"
    # and the like too: only a lost connection (no SQLSTATE), a connection exception
    # (08…) or a shutdown (57P…) is a lost session: the server's failure mid-operation,
    # exit code 6 as for MySQL/MariaDB (a failure to connect is :func:`connect`'s, 3)
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, psycopg.OperationalError) and (state is None or state.startswith(("08", "57P"))):
        return ServerLost(f"{what}: {text}", hint="check that the server is up and reachable; run again")
    return ServerError(f"{what}: {text}", hint="see the server's message; run again once fixed")


def cancel(conn: Conn) -> None:
    """Cancel the statement ``conn`` runs (from another thread; errors ignored)."""
    with contextlib.suppress(psycopg.Error, AttributeError):
        conn.cancel_safe()


def close_quietly(conn: Conn) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.close()
