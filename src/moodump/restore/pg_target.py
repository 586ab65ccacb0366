"""The database a PostgreSQL restore loads into: checked or created (whole, ``--drop``,
``--resume``, ``--atomic`` into a staging database, ``--table`` into an existing one),
renamed into place at the end of an atomic restore, and the progress table
``"_moodump_restore".progress`` that makes ``--resume`` skip what was done.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from moodump.db.connection import ConnSettings
from moodump.errors import MoodumpError, NotFoundError, TargetNotEmpty
from moodump.pg.connection import Conn, DriverError, connect, quote_ident
from moodump.pg.database import create_database, drop_database
from moodump.restore.model import RestoreOptions

PROGRESS_SCHEMA = "_moodump_restore"
PROGRESS_TABLE = f"{quote_ident(PROGRESS_SCHEMA)}.progress"


def progress_schema(pre_data: str) -> str:
    """The progress schema of a backup's restore: ``_moodump_restore``, unless the
    backup's own definitions (``pre_data``, pg_dump's, every identifier quoted) name a
    schema so (then ``_moodump_restore_2``, …): the restore would fail to create it, or
    write into the source's table and drop the source's schema at the end."""
    name, n = PROGRESS_SCHEMA, 1
    while f"SCHEMA {quote_ident(name)}" in pre_data or f"{quote_ident(name)}." in pre_data:
        n += 1
        name = f"{PROGRESS_SCHEMA}_{n}"
    return name


def progress_table(schema: str = PROGRESS_SCHEMA) -> str:
    """The quoted progress table in the progress schema ``schema``."""
    return f"{quote_ident(schema)}.progress"


_EVT_STATE = {"O": "ENABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def admin_connect(settings: ConnSettings) -> Conn:
    """A connection to the maintenance database (``postgres``, else ``template1``)."""
    try:
        return connect(settings, settings.database or "postgres", autocommit=True)
    except NotFoundError:
        return connect(settings, "template1", autocommit=True)


def check_tablespaces(admin: Conn, names: set[str]) -> None:
    """Refuse, before the target is touched, a backup whose objects are in tablespaces
    the server lacks (pg_dump's ``SET default_tablespace`` would fail half-way, after the
    database was made): tablespaces are cluster-wide and not in a dump."""
    have = {str(r[0]) for r in admin.execute("SELECT spcname FROM pg_catalog.pg_tablespace").fetchall()}
    missing = sorted(n for n in names if n not in have)
    if missing:
        listed = ", ".join(repr(n) for n in missing)
        raise NotFoundError(
            f"tablespace {listed} of the backup does not exist on this server "
            "(tablespaces are cluster-wide: a dump does not hold them)",
            hint=f"create it first (CREATE TABLESPACE {quote_ident(missing[0])} LOCATION "
            "'/a/directory/the/server/owns'), then run the same command again",
        )


def check_extensions(admin: Conn, names: set[str]) -> None:
    """Refuse, before the target is touched, a backup whose extensions the server cannot
    create (its package is not installed): pre-data's ``CREATE EXTENSION`` would fail
    after ``--drop`` dropped the target."""
    have = {str(r[0]) for r in admin.execute("SELECT name FROM pg_catalog.pg_available_extensions").fetchall()}
    missing = sorted(n for n in names if n not in have)
    if missing:
        listed = ", ".join(repr(n) for n in missing)
        raise NotFoundError(
            f"extension {listed} of the backup is not available on this server "
            "(pg_available_extensions does not list it)",
            hint="install the extension's package for this server's PostgreSQL version "
            "(e.g. postgresql-NN-postgis-3), then run the same command again",
        )


def check_roles(admin: Conn, names: set[str], *, owners: bool) -> None:
    """Refuse, before the target is touched, a restore whose roles the server lacks
    (policies', and with ``--owners`` owners' and grantees'): the restore would fail on
    the first, after ``--drop`` dropped the target; roles are cluster-wide and not in a
    dump."""
    have = {str(r[0]) for r in admin.execute("SELECT rolname FROM pg_catalog.pg_roles").fetchall()}
    missing = sorted(n for n in names if n not in have)
    if missing:
        why = "--owners gives every object its owner and grants" if owners else "a policy applies to it"
        raise NotFoundError(
            f"role {missing[0]!r} of the backup does not exist on this server "
            f"({why}; missing: {', '.join(missing)})",
            hint=f"create the role first (CREATE ROLE {quote_ident(missing[0])} NOLOGIN)"
            + (", or restore without --owners (the restoring account then owns everything)" if owners else ""),
        )


def exists(admin: Conn, name: str) -> bool:
    return (
        admin.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)).fetchone()
        is not None
    )


def prepare(
    admin: Conn, settings: ConnSettings, target: str, opts: RestoreOptions,
    snap: dict[str, Any], warnings: list[str], progress: str = PROGRESS_SCHEMA,
) -> tuple[bool, str]:  # fmt: skip
    """Create (or check) the database to load into: (True when it was created, its
    name: ``target`` or, with ``atomic``, a staging name)."""
    there = exists(admin, target)
    if opts.resume:
        if not there:
            raise NotFoundError(f"nothing to resume: database {target!r} does not exist",
                                hint="run the restore without --resume")  # fmt: skip
        with connect(settings, target, autocommit=True) as conn:
            if not has_progress(conn, progress):
                raise NotFoundError(
                    f"nothing to resume in {target!r} (no restore progress record)",
                    hint="run the restore without --resume (add --drop to replace the database)",
                )
        return False, target
    if there and not opts.drop:
        with connect(settings, target, autocommit=True) as conn:
            n = conn.execute(
                "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','S','f') AND "
                "n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\\_%%' "
                "AND n.nspname <> %s",
                (progress,),
            ).fetchone()
            unfinished = has_progress(conn, progress)
            items = done_items(conn, progress) if unfinished else set()
        if unfinished and not items and not (n and n[0]) and not opts.atomic:
            # a database an earlier restore made and left before its definitions were in
            # (a failure, or a kill, during pre-data): restored into as one it made, so
            # that it gets the source database's settings at the end
            return True, target
        if unfinished and not opts.atomic:
            raise TargetNotEmpty(
                f"database {target!r} holds an unfinished restore ({progress_table(progress)})",
                hint="continue it with the same command and --resume, or add --drop to start again",
            )
        if n and n[0] and not opts.atomic:
            raise TargetNotEmpty(
                f"database {target!r} is not empty ({n[0]} relations)",
                hint="add --drop to replace it, --atomic to swap it at the end, or pick another name",
            )
    if opts.atomic:
        if there and not opts.drop:
            raise TargetNotEmpty(
                f"database {target!r} exists; --atomic replaces it only with --drop",
                hint="add --drop, or restore into a new name",
            )
        _drop_leftovers(admin, settings, target, warnings)
        load_db = staging_name(target)
        _create(admin, load_db, snap, warnings)
        return True, load_db
    if there and not opts.drop:
        return False, target  # an empty database made for the restore: kept, with its settings
    if there:
        drop_database(admin, settings, target)
    _create(admin, target, snap, warnings)
    # the progress table at once, committed: a restore that stops before its definitions
    # are in (a failure or a kill during pre-data) leaves a database marked as its own
    with connect(settings, target, autocommit=True) as conn:
        make_progress(conn, progress)
    return True, target


def staging_name(target: str) -> str:
    """The name of an atomic restore's staging database: the target's (cut to fit) and a
    random suffix, at most 63 bytes. PostgreSQL cuts a longer name to 63 bytes, and a
    63-byte target name of few (multibyte) characters cut so would have been the
    target's own: the swap then dropped the restored database as the old target."""
    return _staging_prefix(target) + f"__moodump_{uuid.uuid4().hex[:8]}"


def _staging_prefix(target: str) -> str:
    prefix = target[:40]
    while len(prefix.encode("utf-8", "surrogateescape")) + 18 > 63:  # + "__moodump_" + 8
        prefix = prefix[:-1]
    return prefix


def _drop_leftovers(admin: Conn, settings: ConnSettings, target: str, warnings: list[str]) -> None:
    """Drop the staging databases of ``target`` that atomic restores killed (SIGKILL, an
    OOM kill) left, each a whole copy that nothing else drops; one a session uses (a
    restore running now) stays."""
    shape = re.compile(re.escape(_staging_prefix(target)) + r"__moodump_[0-9a-f]{8}")
    for (name,) in admin.execute(
        "SELECT d.datname FROM pg_catalog.pg_database d WHERE NOT EXISTS ("
        "SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid) ORDER BY 1"
    ).fetchall():
        if name != target and shape.fullmatch(str(name)):
            drop_database(admin, settings, str(name))
            warnings.append(f"dropped {name!r}, the staging database an interrupted atomic "
                            f"restore into {target!r} left")  # fmt: skip


def _create(admin: Conn, name: str, snap: dict[str, Any], warnings: list[str]) -> None:
    warning = create_database(admin, name, snap)
    if warning is not None:
        warnings.append(warning)


def prepare_partial(
    admin: Conn, settings: ConnSettings, target: str, selected: set[str], drop: bool,
    progress: str = PROGRESS_SCHEMA,
) -> bool:  # fmt: skip
    """A partial restore goes into an existing database (its schemas, types and
    functions are there); the named tables must not exist, or go with --drop. A
    database holding an unfinished restore's progress record is refused (the partial
    restore would take its items for its own, and skip its definitions)."""
    if not exists(admin, target):
        raise NotFoundError(
            f"database {target!r} does not exist; --table restores tables into an "
            "existing database",
            hint="restore the whole backup first, or leave out --table",
        )
    with connect(settings, target, autocommit=True) as conn:
        if has_progress(conn, progress):
            raise TargetNotEmpty(
                f"database {target!r} holds the progress record of an unfinished restore "
                f"({progress_table(progress)})",
                hint="finish that restore (the same command with --resume), or drop that "
                f"schema (DROP SCHEMA {quote_ident(progress)} CASCADE) if it is no longer wanted",
            )
        there = [q for q in sorted(selected)
                 if conn.execute("SELECT to_regclass(%s)", (q,)).fetchone() not in (None, (None,))]  # fmt: skip
        if there and not drop:
            raise TargetNotEmpty(
                f"{len(there)} of the tables exist in {target!r}: {', '.join(there[:5])}",
                hint="add --drop to replace them",
            )
        if there:  # one statement: a table may depend on another one named (a foreign key)
            conn.execute(f"DROP TABLE {', '.join(there)}")  # type: ignore[arg-type]
    return False


def progress_ddl(schema: str = PROGRESS_SCHEMA) -> str:
    """The statements that make the progress schema and table (if missing)."""
    return (
        f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)};\n"
        f"CREATE TABLE IF NOT EXISTS {progress_table(schema)} "
        "(item text PRIMARY KEY, at timestamptz DEFAULT now());\n"
    )


def make_progress(conn: Conn, schema: str = PROGRESS_SCHEMA) -> None:
    with conn.transaction():
        for sql in progress_ddl(schema).splitlines():
            conn.execute(sql)  # type: ignore[arg-type]


def has_progress(conn: Conn, schema: str = PROGRESS_SCHEMA) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (progress_table(schema),)).fetchone() not in (
        None,
        (None,),
    )


def done_items(conn: Conn, schema: str = PROGRESS_SCHEMA) -> set[str]:
    """The items the progress table records as done (none without it)."""
    if not has_progress(conn, schema):
        return set()
    return {r[0] for r in conn.execute(f"SELECT item FROM {progress_table(schema)}").fetchall()}  # type: ignore[arg-type]


def drop_progress(conn: Conn, schema: str = PROGRESS_SCHEMA, *, drop_public: bool = False) -> None:
    """Drop the progress schema (and, ``drop_public``, the ``public`` schema that
    template0 gives every new database, when the source had none and it is still
    empty). The restored event triggers would fire on (and may refuse) that DROP: they
    are disabled around it in the same transaction (``ALTER EVENT TRIGGER`` is not a
    command event triggers fire on)."""
    with conn.transaction():
        evts = conn.execute(
            "SELECT evtname, evtenabled FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D'"
        ).fetchall()
        for name, _state in evts:
            conn.execute(f"ALTER EVENT TRIGGER {quote_ident(name)} DISABLE")  # type: ignore[arg-type]
        conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")  # type: ignore[arg-type]
        if drop_public:
            try:
                with conn.transaction():  # a savepoint: kept if something was put in it
                    conn.execute("DROP SCHEMA IF EXISTS public RESTRICT")
            except DriverError:
                pass
        for name, state in evts:
            conn.execute(f"ALTER EVENT TRIGGER {quote_ident(name)} {_EVT_STATE[state]}")  # type: ignore[arg-type]


def drop_progress_quietly(settings: ConnSettings, name: str, schema: str) -> None:
    """:func:`drop_progress` in ``name``, errors ignored (after a failed --table restore,
    whose progress record would otherwise block the next one)."""
    try:
        with connect(settings, name, autocommit=True) as conn:
            drop_progress(conn, schema)
    except (DriverError, MoodumpError):
        pass


def swap(settings: ConnSettings, load_db: str, target: str) -> None:
    """Replace ``target`` (if it exists) with ``load_db``, renamed."""
    with admin_connect(settings) as admin:
        if exists(admin, target):
            drop_database(admin, settings, target)
        admin.execute(f"ALTER DATABASE {quote_ident(load_db)} RENAME TO {quote_ident(target)}")


def drop_quietly(settings: ConnSettings, name: str) -> None:
    try:
        with admin_connect(settings) as admin:
            drop_database(admin, settings, name)
    except (DriverError, MoodumpError):
        pass
