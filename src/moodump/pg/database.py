"""A PostgreSQL database's own properties, which pg_dump writes only with ``--create``:
its encoding, collation and ctype (and, from PostgreSQL 15, the default collation's
provider and locale), its comment and its settings (``ALTER DATABASE … SET``, and
``ALTER ROLE … IN DATABASE … SET``).

The dump reads them into the manifest's ``snapshot`` (:func:`database_facts`); the
restore creates the database with them (:func:`create_database`) and gives it its
comment and settings at the end (:func:`restore_settings`).
"""

from __future__ import annotations

from typing import Any

from moodump.db.connection import ConnSettings
from moodump.pg.connection import Conn, DriverError, connect, quote_ident, quote_str


def database_facts(conn: Conn, major: int) -> dict[str, Any]:
    """The current database's encoding, ``collate``, ``ctype``, ``locale_provider`` and
    ``locale`` (when not libc), ``public_schema`` (False when it has none), ``comment``
    (when set), ``connection_limit`` (when set) and ``settings`` (``name=value`` strings), in that order, for the
    manifest's ``snapshot``."""
    out: dict[str, Any] = {}
    enc = conn.execute(
        "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype "
        "FROM pg_catalog.pg_database WHERE datname = current_database()"
    ).fetchone()
    assert enc is not None
    out["encoding"], out["collate"], out["ctype"] = enc
    if major >= 15:  # the default collation's provider (ICU, PG17's builtin) and locale
        loc = "datlocale" if major >= 17 else "daticulocale"
        prov = conn.execute(
            f"SELECT datlocprovider::text, {loc} FROM pg_catalog.pg_database "
            "WHERE datname = current_database()"
        ).fetchone()
        if prov is not None and prov[0] != "c":
            out["locale_provider"], out["locale"] = str(prov[0]), str(prov[1] or "")
    # a database without the "public" schema template0 gives every new one: recorded
    # (only then) so that the restore drops it too; pg_dump cannot say so
    row = conn.execute("SELECT pg_catalog.to_regnamespace('public') IS NULL").fetchone()
    if row is not None and row[0]:
        out["public_schema"] = False
    row = conn.execute(  # COMMENT ON DATABASE: pg_dump writes it only with --create
        "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
        "WHERE datname = current_database()"
    ).fetchone()
    if row is not None and row[0] is not None:
        out["comment"] = str(row[0])
    row = conn.execute(  # ALTER DATABASE … CONNECTION LIMIT, which pg_dump --create keeps
        "SELECT datconnlimit FROM pg_catalog.pg_database WHERE datname = current_database()"
    ).fetchone()
    if row is not None and int(row[0]) != -1:
        out["connection_limit"] = int(row[0])
    row = conn.execute(  # its owner and grants, which pg_dump --create keeps (--owners)
        "SELECT pg_catalog.pg_get_userbyid(datdba), datacl::text FROM pg_catalog.pg_database "
        "WHERE datname = current_database()"
    ).fetchone()
    if row is not None:
        out["owner"] = str(row[0])
        if row[1] is not None:
            out["acl"] = str(row[1])
    # the database's own settings (ALTER DATABASE … SET), which pg_dump writes only
    # with --create: the restore gives them to the database it creates
    out["settings"] = [str(r[0]) for r in conn.execute(
        "SELECT unnest(s.setconfig) FROM pg_catalog.pg_db_role_setting s "
        "JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase "
        "WHERE d.datname = current_database() AND s.setrole = 0"
    ).fetchall()]  # fmt: skip
    # the settings of a role in this database (ALTER ROLE … IN DATABASE … SET), which
    # pg_dump --create writes too: [role, "name=value"] pairs, recorded when there are any
    role_settings = [[str(r[0]), str(r[1])] for r in conn.execute(
        "SELECT r.rolname, unnest(s.setconfig) FROM pg_catalog.pg_db_role_setting s "
        "JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase "
        "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
        "WHERE d.datname = current_database() ORDER BY r.rolname COLLATE \"C\""
    ).fetchall()]  # fmt: skip
    if role_settings:
        out["role_settings"] = role_settings
    return out


def create_database(admin: Conn, name: str, snap: dict[str, Any]) -> str | None:
    """``CREATE DATABASE name TEMPLATE template0`` with the source's encoding, collation,
    ctype and locale provider (``snap``: :func:`database_facts`). A server that lacks
    the locale gets the database with its default one: the warning says so (else None)."""
    base = f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0"
    if snap.get("encoding"):
        base += f" ENCODING {quote_str(str(snap['encoding']))}"
    provider = {"i": "icu", "b": "builtin"}.get(str(snap.get("locale_provider", "")))
    if provider:  # the default collation of an ICU (or builtin) database
        locale = quote_str(str(snap.get("locale", "")))
        provider += f" {'ICU_LOCALE' if provider == 'icu' else 'BUILTIN_LOCALE'} {locale}"
    try:
        admin.execute(
            base + f" LC_COLLATE {quote_str(str(snap.get('collate', 'C')))}"
            f" LC_CTYPE {quote_str(str(snap.get('ctype', 'C')))}"
            + (f" LOCALE_PROVIDER {provider}" if provider else "")
        )
    except DriverError:
        admin.execute(base)
        return (
            f"the server lacks the source's locale ({snap.get('collate')}); "
            "the database uses the server's default"
        )
    return None


def restore_settings(conn: Conn, name: str, snap: dict[str, Any], *, owners: bool = False) -> list[str]:
    """Give the database ``name`` (``conn`` is connected to it) the source's
    comment, connection limit (last, so that it never limits the restore itself) and
    settings (``snap``: :func:`database_facts`), and with ``owners`` its owner and
    grants. Each value is set in the
    session first and stored ``FROM CURRENT``, so list values (``search_path``) keep
    their quoting. One the server refuses (a superuser-only one) is a warning: the
    warnings are returned."""
    warnings: list[str] = []
    if owners and isinstance(snap.get("owner"), str):
        warnings += _owner_and_grants(conn, name, str(snap["owner"]), snap.get("acl"))
    settings = snap.get("settings") or []
    comment = snap.get("comment")
    if not isinstance(settings, list):
        return warnings
    if isinstance(comment, str):
        conn.execute(f"COMMENT ON DATABASE {quote_ident(name)} IS {quote_str(comment)}")  # type: ignore[arg-type]
    limit = snap.get("connection_limit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        conn.execute(f"ALTER DATABASE {quote_ident(name)} CONNECTION LIMIT {int(limit)}")  # type: ignore[arg-type]
    for item in settings:
        key, _, value = str(item).partition("=")
        try:
            with conn.transaction():
                _store(conn, f"ALTER DATABASE {quote_ident(name)}", key, value)
        except DriverError as exc:
            warnings.append(f"database setting {item!r} not restored: {str(exc).strip()}")
    role_settings = snap.get("role_settings") or []
    for pair in role_settings if isinstance(role_settings, list) else []:
        role, item = str(pair[0]), str(pair[1])
        key, _, value = item.partition("=")
        try:  # a role the server lacks: a warning, as pg_restore's error for it
            with conn.transaction():
                _store(conn, f"ALTER ROLE {quote_ident(role)} IN DATABASE {quote_ident(name)}", key, value)
        except DriverError as exc:
            warnings.append(f"setting {item!r} of role {role!r} in the database not restored: "
                            f"{str(exc).strip()}")  # fmt: skip
    return warnings


def _owner_and_grants(conn: Conn, name: str, owner: str, acl: object) -> list[str]:
    """``ALTER DATABASE … OWNER TO`` and its grants (``acl``: its ``datacl`` as text, None
    for the defaults), as pg_dump --create writes them; one the server refuses (a role
    it lacks) is a warning."""
    db = quote_ident(name)
    try:
        with conn.transaction():
            conn.execute(f"ALTER DATABASE {db} OWNER TO {quote_ident(owner)}")  # type: ignore[arg-type]
            if not isinstance(acl, str):
                return []
            items = conn.execute(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident("
                "pg_catalog.pg_get_userbyid(a.grantee)) END, a.privilege_type, a.is_grantable "
                "FROM pg_catalog.aclexplode(%s::pg_catalog.aclitem[]) a", (acl,),
            ).fetchall()  # fmt: skip
            conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC, {quote_ident(owner)}")  # type: ignore[arg-type]
            for grantee, priv, grantable in items:
                option = " WITH GRANT OPTION" if grantable else ""
                conn.execute(f"GRANT {priv} ON DATABASE {db} TO {grantee}{option}")  # type: ignore[arg-type]
    except DriverError as exc:
        return [f"the database's owner {owner!r} and grants not restored: {str(exc).strip()}"]
    return []


def _store(conn: Conn, alter: str, key: str, value: str) -> None:
    """``ALTER … SET key`` (``alter``: ``ALTER DATABASE x`` or ``ALTER ROLE r IN
    DATABASE x``) to ``value`` as the source stored it: set in the session first and
    stored ``FROM CURRENT`` (list values keep their quoting), then reset (set locally in
    a savepoint, it would stay for the rest of the caller's transaction)."""
    conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (key, value))
    conn.execute(f"{alter} SET {quote_ident(key)} FROM CURRENT")  # type: ignore[arg-type]
    conn.execute(f"RESET {quote_ident(key)}")  # type: ignore[arg-type]


def drop_database(admin: Conn, settings: ConnSettings, name: str) -> None:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)`` (``admin``: a connection to another
    database). A database with a logical replication subscription cannot be dropped
    ("is being used by logical replication subscription"), and a restored one has the
    source's: each is disabled, detached from its replication slot (``slot_name =
    NONE``: the publisher is not contacted) and dropped first."""
    subs = admin.execute(
        "SELECT s.subname FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d "
        "ON d.oid = s.subdbid WHERE d.datname = %s ORDER BY 1",
        (name,),
    ).fetchall()
    if subs:
        with connect(settings, name, autocommit=True) as conn:
            for (sub,) in subs:
                q = quote_ident(str(sub))
                conn.execute(f"ALTER SUBSCRIPTION {q} DISABLE")  # type: ignore[arg-type]
                conn.execute(f"ALTER SUBSCRIPTION {q} SET (slot_name = NONE)")  # type: ignore[arg-type]
                conn.execute(f"DROP SUBSCRIPTION {q}")  # type: ignore[arg-type]
    admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")  # type: ignore[arg-type]


def toast_settings(conn: Conn) -> tuple[str | None, list[str]]:
    """Where the session's ``default_toast_compression`` comes from (pg_settings'
    ``source``: ``default`` when nobody set it) and the methods the server offers;
    (None, []) before PostgreSQL 14, which has one method."""
    row = conn.execute(
        "SELECT source, enumvals FROM pg_catalog.pg_settings "
        "WHERE name = 'default_toast_compression'"
    ).fetchone()
    if row is None:
        return None, []
    return str(row[0]), [str(x) for x in row[1] or []]
