"""What a PostgreSQL database holds that a dump needs: its tables (with their columns,
primary key and size), sequences and server version. Read in the caller's transaction, so
inside the dump's snapshot.

Only relations that hold rows of their own are dumped as data: plain tables (``r``),
including partitions and inheritance children; partitioned parents hold none. Tables that
belong to an extension are the extension's (``CREATE EXTENSION`` makes them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

_INT_TYPES = {"int2", "int4", "int8"}

#: The OID alias types and their arrays: their values hash (and sort) by the OID of the
#: object named, which the restored object does not keep.
_OID_ALIASES = tuple(
    f"pg_catalog.{t}{arr}"
    for t in ("regclass", "regtype", "regproc", "regprocedure", "regoper", "regoperator",
              "regconfig", "regdictionary", "regnamespace", "regrole", "regcollation")
    for arr in ("", "[]")
)  # fmt: skip


#: Of the types in the first parameter (OIDs), those whose values are or hold values of
#: the types in the second (a ``regtype[]``): through arrays, domains, composite types
#: (table row types too) and ranges, followed down any depth (index lookups only).
_HOLDING = (
    "WITH RECURSIVE walk(root, typ) AS ("
    " SELECT x, x FROM pg_catalog.unnest(%s::pg_catalog.oid[]) x"
    " UNION"
    " SELECT w.root, c.sub FROM walk w JOIN pg_catalog.pg_type t ON t.oid = w.typ"
    " CROSS JOIN LATERAL ("
    "  SELECT t.typelem WHERE t.typelem <> 0"
    "  UNION ALL SELECT t.typbasetype WHERE t.typbasetype <> 0"
    "  UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a"
    "   WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped"
    "  UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid"
    "{multirange}"
    " ) c(sub)) "
    "SELECT DISTINCT root FROM walk WHERE typ = ANY(%s::pg_catalog.regtype[])"
)


def _holding(conn: psycopg.Connection[Any], types: set[int], held: list[str]) -> set[int]:
    """The OIDs of ``types`` whose values are or hold values of a type in ``held``."""
    if not types:
        return set()
    # multiranges (PostgreSQL 14 and newer) hold their range's subtype too
    multirange = (
        "  UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid"
        if server_version(conn)[0] >= 14 else ""
    )  # fmt: skip
    sql = _HOLDING.replace("{multirange}", multirange)
    return {int(r[0]) for r in conn.execute(sql, (sorted(types), held)).fetchall()}


@dataclass
class PgTable:
    schema: str
    name: str
    columns: list[str] = field(default_factory=list)  # COPY columns (no generated ones)
    column_types: list[str] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    pk_types: list[str] = field(default_factory=list)
    pk_collatable: list[bool] = field(default_factory=list)
    rows_estimate: int = 0
    data_length: int = 0
    #: The partition root to load the rows through (quoted), for a partition of a tree
    #: hashed on an enum (or an expression): an enum hashes by its OID, which differs in
    #: the new database, so a row may belong to another partition there (pg_dump's
    #: ``--load-via-partition-root`` case). Such a table is read without a key order.
    #: Any type that is not built in (OID >= 16384: enums, domains, composites, ranges
    #: and arrays of them, extension types) counts, to be safe; so does a nondeterministic
    #: collation (its hash is the ICU sort key, which another ICU version may change), and
    #: the OID alias types (regclass, regtype, …: a value is an object's OID, which
    #: differs in the new database too), whatever the partitioning: a range keyed on
    #: them compares the new OIDs, which sort in another order.
    load_via: str = ""
    #: (schema, name) of the partitioned tables above a partition, nearest first: a
    #: ``--table``/``--exclude`` naming one of them names the partition too.
    ancestors: list[tuple[str, str]] = field(default_factory=list)
    #: ``--exclude-data`` names it (set by the dump's selection, which sees every table)
    no_data: bool = False
    #: An extension's configuration table (``pg_extension_config_dump``), and the rows
    #: that are the user's (its condition, as a ``where``; ``CREATE EXTENSION`` makes the
    #: others; "" for every row).
    config: bool = False
    config_where: str = ""

    @property
    def full_name(self) -> str:
        """``schema.name`` as the manifest records it (unquoted): for display and
        ``--table`` patterns only, as two tables can share it (``"a.b"."c"`` and
        ``"a"."b.c"``); :attr:`key` tells them apart."""
        return f"{self.schema}.{self.name}"

    @property
    def key(self) -> str:
        """``"schema"."name"``, quoted: one table's own key."""
        return '"' + self.schema.replace('"', '""') + '"."' + self.name.replace('"', '""') + '"'


@dataclass
class PgSequence:
    schema: str
    name: str
    last_value: int
    is_called: bool
    #: an extension's configuration sequence: ``CREATE EXTENSION`` makes it, the
    #: restore sets its value (pre-data does not name it)
    config: bool = False


def server_version(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    """(major, full version text) of the server, e.g. (15, "15.18")."""
    num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    text = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    return num // 10000, text.split()[0]


def _not_extension(alias: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
        f"'pg_catalog.pg_class'::regclass AND d.objid = {alias}.oid AND d.deptype = 'e')"
    )


def _ours(alias: str) -> str:
    """Not an extension's, or one of its configuration tables or sequences
    (``pg_extension_config_dump``: their rows, or value, are the user's, which pg_dump
    dumps; ``CREATE EXTENSION`` makes them)."""
    return (
        f"({_not_extension(alias)} OR EXISTS (SELECT 1 FROM pg_catalog.pg_extension e "
        f"WHERE {alias}.oid = ANY(e.extconfig)))"
    )


def _config_condition(text: str) -> str:
    """The rows of an extension's configuration table that are the user's: its
    condition (``WHERE NOT standard``, which pg_dump appends to its ``SELECT``) as the
    ``where`` of the table's copy, "" for every row."""
    cond = re.sub(r"(?i)^where\b", "", text.strip()).strip()
    return f"({cond})" if cond else ""


def list_tables(conn: psycopg.Connection[Any]) -> list[PgTable]:
    """Every user table holding rows, in (schema, name) order (three catalogue queries,
    whatever the number of tables: Moodle has hundreds)."""
    rows = conn.execute(
        "SELECT c.oid, n.nspname, c.relname, c.reltuples::bigint, "
        "pg_catalog.pg_relation_size(c.oid), (SELECT e.extcondition[pg_catalog.array_position("
        "e.extconfig, c.oid)] FROM pg_catalog.pg_extension e WHERE c.oid = ANY(e.extconfig) LIMIT 1) "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_temp\\_%%' "
        "AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%' AND " + _ours("c") + " "
        "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    by_oid: dict[int, PgTable] = {}
    out: list[PgTable] = []
    for oid, schema, name, reltuples, size, condition in rows:
        t = PgTable(schema, name, rows_estimate=max(0, int(reltuples)), data_length=int(size))
        if condition is not None:
            t.config = True
            t.config_where = _config_condition(str(condition))
        by_oid[int(oid)] = t
        out.append(t)
    if not out:
        return out
    oids = list(by_oid)
    for oid, col, typ in conn.execute(
        "SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
        "FROM pg_catalog.pg_attribute a WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 "
        "AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attrelid, a.attnum",
        (oids,),
    ).fetchall():
        by_oid[int(oid)].columns.append(col)
        by_oid[int(oid)].column_types.append(typ)
    key_types: dict[int, set[int]] = {}
    for oid, col, typ, coll, typoid in conn.execute(
        "SELECT i.indrelid, a.attname, t.typname, a.attcollation <> 0, a.atttypid "
        "FROM pg_catalog.pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
        "WHERE i.indrelid = ANY(%s::oid[]) AND i.indisprimary ORDER BY i.indrelid, k.ord",
        (oids,),
    ).fetchall():
        t = by_oid[int(oid)]
        t.primary_key.append(col)
        t.pk_types.append(typ)
        t.pk_collatable.append(bool(coll))
        key_types.setdefault(int(oid), set()).add(int(typoid))
    aliases = _holding(conn, set().union(*key_types.values()), list(_OID_ALIASES))
    for oid in (o for o, types in key_types.items() if types & aliases):
        # a key of OID alias values (regclass, regtype, …, or a type holding them) sorts
        # by the OIDs of the objects named, which the restored objects do not keep: the
        # rows would come back in another order (and the verification find another
        # digest). Such a table is read without a key order (an order-free digest).
        t = by_oid[oid]
        t.primary_key, t.pk_types, t.pk_collatable = [], [], []
    for oid, anc_schema, anc_name in conn.execute(
        "SELECT c.oid, an.nspname, a.relname FROM pg_catalog.pg_class c "
        "CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(c.oid) WITH ORDINALITY x(relid, n) "
        "JOIN pg_catalog.pg_class a ON a.oid = x.relid "
        "JOIN pg_catalog.pg_namespace an ON an.oid = a.relnamespace "
        "WHERE c.oid = ANY(%s::oid[]) AND c.relispartition AND x.relid <> c.oid ORDER BY c.oid, x.n",
        (oids,),
    ).fetchall():
        by_oid[int(oid)].ancestors.append((str(anc_schema), str(anc_name)))
    # Range and list partitions keyed on OID alias values (or a type holding them)
    # too: a range's bounds and the rows' values name objects whose new OIDs sort in
    # another order, so a row may belong to another partition in the new database.
    part_key_types = {int(r[0]) for r in conn.execute(
        "SELECT DISTINCT a.atttypid FROM pg_catalog.pg_partitioned_table pt "
        "CROSS JOIN LATERAL unnest(pt.partattrs::int2[]) k(attnum) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum"
    ).fetchall()}  # fmt: skip
    oid_keys = sorted(_holding(conn, part_key_types, list(_OID_ALIASES)))
    for oid, root_schema, root_name in conn.execute(
        "SELECT c.oid, rn.nspname, r.relname FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_class r ON r.oid = pg_catalog.pg_partition_root(c.oid) "
        "JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace "
        "WHERE c.oid = ANY(%s::oid[]) AND c.relispartition AND EXISTS ("
        " SELECT 1 FROM pg_catalog.pg_partition_ancestors(c.oid) anc(relid) "
        " JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = anc.relid "
        " CROSS JOIN LATERAL unnest(pt.partattrs::int2[]) k(attnum) "
        " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum "
        " WHERE a.atttypid = ANY(%s::pg_catalog.oid[]) OR (pt.partstrat = 'h' AND ("
        "  k.attnum = 0 OR a.atttypid >= 16384 OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation co "
        "  WHERE co.oid = ANY(pt.partcollation::oid[]) AND NOT co.collisdeterministic))))",
        (oids, oid_keys),
    ).fetchall():
        t = by_oid[int(oid)]
        t.load_via = '"' + root_schema.replace('"', '""') + '"."' + root_name.replace('"', '""') + '"'
        # the rows may land in other partitions: one order-free digest over the tree
        t.primary_key, t.pk_types, t.pk_collatable = [], [], []
    return out


def regclass_tables(conn: psycopg.Connection[Any]) -> set[str]:
    """The quoted ``"schema"."name"`` of the tables with a column holding ``regclass``
    values (or a type holding them: arrays, domains, composites, ranges). A value may
    name an index, which a restore builds after the data of most tables: such a table
    is loaded once every index is there (``COPY`` resolves each name as it reads it)."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname, a.atttypid FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
        "AND n.nspname <> ALL(%s)",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    holding = _holding(conn, {int(r[2]) for r in rows}, ["pg_catalog.regclass"])
    return {
        '"' + str(schema).replace('"', '""') + '"."' + str(name).replace('"', '""') + '"'
        for schema, name, typ in rows if int(typ) in holding
    }  # fmt: skip


def stale_generated(conn: psycopg.Connection[Any], tables: list[PgTable]) -> list[str]:
    """The stored generated columns of ``tables`` holding values their expression no
    longer gives (a function it calls was replaced after the rows were written), as
    ``schema.table.column (N rows)``: ``COPY FROM`` computes them afresh, so a restore
    would change them. Read in the caller's transaction (the snapshot), each table's
    check under a savepoint (an expression that fails now counts as stale)."""
    wanted = {t.key for t in tables}
    rows = conn.execute(
        "SELECT n.nspname, c.relname, a.attname, "
        "pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attgenerated = 's' AND NOT a.attisdropped AND c.relkind = 'r' "
        "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\", a.attnum"
    ).fetchall()
    by_table: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for schema, name, col, typ, expr in rows:
        t = PgTable(str(schema), str(name))
        if t.key in wanted:
            by_table.setdefault((t.schema, t.name), []).append((str(col), str(typ), str(expr)))
    out: list[str] = []
    for (schema, name), cols in by_table.items():
        rel = PgTable(schema, name).key
        for col, typ, expr in cols:
            q = '"' + col.replace('"', '""') + '"'
            conn.execute("SAVEPOINT moodump_generated")
            try:
                row = conn.execute(
                    f"SELECT count(*) FROM ONLY {rel} WHERE {q}::text IS DISTINCT FROM "
                    f"CAST(({expr}) AS {typ})::text"
                ).fetchone()
                n = int(row[0]) if row else 0
                conn.execute("RELEASE SAVEPOINT moodump_generated")
            except psycopg.Error as exc:
                conn.execute("ROLLBACK TO SAVEPOINT moodump_generated")
                out.append(f"{schema}.{name}.{col} (its expression fails now: "
                           f"{str(exc).strip().splitlines()[0]})")  # fmt: skip
                continue
            if n:
                out.append(f"{schema}.{name}.{col} ({n} rows)")
    return out


def list_sequences(conn: psycopg.Connection[Any]) -> list[PgSequence]:
    """Every user sequence (identity and serial ones included) with its state.

    A sequence is not transactional: its state is what it is when read, as with
    ``pg_dump``; read it right after the snapshot is taken."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname, NOT " + _not_extension("c") + " FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' AND n.nspname <> ALL(%s) AND " + _ours("c") + " "
        "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    out = []
    for schema, name, config in rows:
        q = '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'
        last, called = conn.execute(f"SELECT last_value, is_called FROM {q}").fetchone()  # type: ignore[misc]
        out.append(PgSequence(schema, name, int(last), bool(called), bool(config)))
    return out


#: Large objects (``pg_largeobject``) as two pseudo tables, read in the snapshot: their
#: contents (``lo_get`` reads a large object as of the transaction's snapshot), and their
#: owner, ACL and comment. ``pg_dump --schema-only`` writes neither (nor their data).
LARGE_OBJECTS = PgTable(
    "pg_catalog", "pg_largeobject", columns=["loid", "data"], column_types=["oid", "bytea"],
    primary_key=["loid"], pk_types=["oid"], pk_collatable=[False],
)  # fmt: skip
LARGE_OBJECTS_QUERY = (
    "COPY (SELECT m.oid, pg_catalog.lo_get(m.oid) FROM pg_catalog.pg_largeobject_metadata m "
    "ORDER BY m.oid) TO STDOUT"
)
LARGE_OBJECT_META = PgTable(
    "pg_catalog", "pg_largeobject_metadata", columns=["loid", "owner", "acl", "comment"],
    column_types=["oid", "name", "aclitem[]", "text"],
    primary_key=["loid"], pk_types=["oid"], pk_collatable=[False],
)  # fmt: skip
LARGE_OBJECT_META_QUERY = (
    "COPY (SELECT m.oid, pg_catalog.pg_get_userbyid(m.lomowner), m.lomacl, "
    "pg_catalog.obj_description(m.oid, 'pg_largeobject') "
    "FROM pg_catalog.pg_largeobject_metadata m ORDER BY m.oid) TO STDOUT"
)


def count_large_objects(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata").fetchone()
    return int(row[0]) if row else 0


def is_int_key(t: PgTable) -> bool:
    return len(t.primary_key) == 1 and t.pk_types[0] in _INT_TYPES


def populated_matviews(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(schema, name) of the materialized views that hold data, in an order they can be
    refreshed in: each after the ones it reads, directly or through views (as pg_dump
    orders them) and SQL-standard function bodies, else in creation order. Creation
    order alone is not enough: a view (or function) an old materialized view reads may
    be redefined to read a younger one. One that reads
    an unpopulated one cannot be refreshed, and is left out (unpopulated, as pg_dump
    leaves it). ``pg_dump --schema-only`` leaves their ``REFRESH`` out, as it is data."""
    rows = conn.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relispopulated FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'm' AND n.nspname <> ALL(%s) AND "
        + _not_extension("c") + " ORDER BY c.oid",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    names = {int(r[0]): (str(r[1]), str(r[2])) for r in rows if r[3]}
    if not names:
        return []
    every = [int(r[0]) for r in rows]
    # the materialized views each one's query reads, followed through views and SQL
    # functions with standard bodies (BEGIN ATOMIC: their dependencies are recorded),
    # not through other materialized views (their own order comes from their own edges)
    cls, proc, rule = ("'pg_catalog.pg_class'::regclass", "'pg_catalog.pg_proc'::regclass",
                       "'pg_catalog.pg_rewrite'::regclass")  # fmt: skip
    edges = conn.execute(
        "WITH RECURSIVE reads(mv, cls, obj) AS ("
        f" SELECT r.ev_class, d.refclassid, d.refobjid FROM pg_catalog.pg_rewrite r "
        f" JOIN pg_catalog.pg_depend d ON d.classid = {rule} AND d.objid = r.oid "
        f" WHERE r.ev_class = ANY(%s::oid[]) AND d.refclassid IN ({cls}, {proc}) "
        f"  AND NOT (d.refclassid = {cls} AND d.refobjid = r.ev_class) "
        " UNION "
        f" SELECT reads.mv, d.refclassid, d.refobjid FROM reads "
        f" LEFT JOIN pg_catalog.pg_class v ON reads.cls = {cls} AND v.oid = reads.obj AND v.relkind = 'v' "
        f" LEFT JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid "
        f" JOIN pg_catalog.pg_depend d ON (d.classid = {rule} AND d.objid = r.oid) "
        f"  OR (reads.cls = {proc} AND d.classid = {proc} AND d.objid = reads.obj) "
        f" WHERE d.refclassid IN ({cls}, {proc}) "
        f"  AND NOT (d.refclassid = reads.cls AND d.refobjid = reads.obj)) "
        f"SELECT DISTINCT mv, obj FROM reads WHERE cls = {cls} AND obj = ANY(%s::oid[]) AND obj <> mv",
        (list(names), every),
    ).fetchall()
    needs: dict[int, set[int]] = {oid: set() for oid in names}
    for mv, rel in edges:
        needs[int(mv)].add(int(rel))
    # one that reads an unpopulated one (or one left out for that) cannot be refreshed
    kept = set(names)
    while bad := {o for o in kept if not needs[o] <= kept}:
        kept -= bad
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(kept):
        ready = [o for o in names if o in kept and o not in placed and needs[o] <= placed]
        # a cycle cannot be made with views; if one were, creation order breaks it
        pick = ready[0] if ready else min(kept - placed)
        order.append(pick)
        placed.add(pick)
    return [names[o] for o in order]


def moodle_info(
    conn: psycopg.Connection[Any], tables: list[PgTable], prefix: str | None = None
) -> dict[str, object] | None:
    """Moodle version/release and its site administrators, as
    :func:`moodump.db.introspect.moodle_info` finds them for MySQL (the same keys), from
    the ``<prefix>config`` table of the first schema that has one with
    ``<prefix>config_plugins`` beside it (Moodle on PostgreSQL uses ``public``)."""
    names = {(t.schema, t.name) for t in tables}
    found: tuple[str, str] | None = None
    for schema, name in sorted(names, key=lambda x: (x[0] != "public", x)):
        p = name[:-6] if name.endswith("config") else None
        if p is not None and (prefix is None or p == prefix) and (schema, f"{p}config_plugins") in names:
            found = (schema, p)
            break
    if found is None:
        return None
    schema, prefix = found

    def rel(n: str) -> str:
        """The quoted table, for a query with parameters: a ``%`` in a name is doubled
        (psycopg would read ``%c`` as a placeholder)."""
        q = '"' + schema.replace('"', '""') + '"."' + (prefix + n).replace('"', '""') + '"'
        return q.replace("%", "%%")

    info: dict[str, object] = {"prefix": prefix}
    for key in ("version", "release", "siteadmins"):
        row = conn.execute(f"SELECT value FROM {rel('config')} WHERE name = %s", (key,)).fetchone()
        info[key] = None if row is None or row[0] is None else str(row[0])
    ids = [x.strip() for x in str(info.pop("siteadmins") or "").split(",") if x.strip()]
    info["siteadmins"] = ids
    if (schema, f"{prefix}user") in names:
        numeric = [int(x) for x in ids if x.isdigit()]
        live = {
            str(r[0])
            for r in conn.execute(
                f"SELECT id FROM {rel('user')} WHERE deleted = 0 AND id = ANY(%s)", (numeric,)
            ).fetchall()
        } if numeric else set()  # fmt: skip
        missing = [x for x in ids if x not in live]
        info["siteadmins_missing"] = missing
        info["admin_user"] = bool(ids) and not missing
    return info
