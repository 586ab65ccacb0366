"""The large objects of a PostgreSQL backup, restored with their OIDs: the dump's two
pseudo-tables (``pg_largeobject`` data and ``pg_largeobject_metadata``) load into
temporary tables, ``lo_from_bytea`` recreates each object, then its comment and, with
``owners``, its owner and ACL. One transaction, which also records the progress row.
"""

from __future__ import annotations

import threading

from moodump.compression import open_reader
from moodump.db.connection import ConnSettings
from moodump.manifest import Manifest
from moodump.pg.connection import connect, quote_ident, quote_str, set_session
from moodump.pg.copyio import copy_in
from moodump.restore.pg_target import PROGRESS_TABLE
from moodump.source import BackupSource


def restore_large_objects(
    settings: ConnSettings, database: str, encoding: str, src: BackupSource, m: Manifest,
    *, owners: bool, stop: threading.Event, progress_table: str = PROGRESS_TABLE,
) -> tuple[int, int] | None:  # fmt: skip
    """Restore the large objects of ``m`` into ``database``: (rows, raw bytes) as the
    manifest counts them, or None when the backup has none."""
    by = {t.name: t for t in m.tables if t.kind == "large objects"}
    data, meta = by.get("pg_largeobject"), by.get("pg_largeobject_metadata")
    if data is None:
        return None
    files = {f.name: f for f in m.files}
    with connect(settings, database, autocommit=True) as conn, conn.transaction():
        set_session(conn, encoding)
        conn.execute("CREATE TEMP TABLE moodump_lo (loid oid, data bytea) ON COMMIT DROP")
        conn.execute("CREATE TEMP TABLE moodump_lo_meta (loid oid, owner name, acl text, "
                     "comment text) ON COMMIT DROP")  # fmt: skip
        for entry, table in ((data, "moodump_lo"), (meta, "moodump_lo_meta")):
            if entry is None:
                continue
            for c in entry.chunks:
                f = files.get(c.file)
                raw = src.open_checked(f) if f and src.local_dir is None else src.open(c.file)
                with open_reader(raw, name=c.file, codec=m.codec) as reader:
                    copy_in(conn, "pg_temp", table, entry.columns, reader, stop)
        conn.execute("SELECT count(pg_catalog.lo_from_bytea(loid, data)) FROM moodump_lo")
        rows = conn.execute(
            "SELECT loid, owner, acl, comment FROM moodump_lo_meta ORDER BY loid"
        ).fetchall()
        for loid, owner, acl, comment in rows:
            lo = f"LARGE OBJECT {int(loid)}"
            if comment is not None:
                conn.execute(f"COMMENT ON {lo} IS {quote_str(comment)}")  # type: ignore[arg-type]
            if not owners:
                continue
            conn.execute(f"ALTER {lo} OWNER TO {quote_ident(owner)}")  # type: ignore[arg-type]
            if acl is None:
                continue
            conn.execute(f"REVOKE ALL ON {lo} FROM PUBLIC, {quote_ident(owner)}")  # type: ignore[arg-type]
            for grantee, priv, grantable in conn.execute(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident("
                "pg_catalog.pg_get_userbyid(a.grantee)) END, a.privilege_type, a.is_grantable "
                "FROM pg_catalog.aclexplode(%s::aclitem[]) a", (acl,),
            ).fetchall():  # fmt: skip
                option = " WITH GRANT OPTION" if grantable else ""
                conn.execute(f"GRANT {priv} ON {lo} TO {grantee}{option}")  # type: ignore[arg-type]
        conn.execute(f"INSERT INTO {progress_table} (item) VALUES ('large-objects')")  # type: ignore[arg-type]
    return data.rows + (meta.rows if meta else 0), sum(c.raw_bytes for c in data.chunks)
