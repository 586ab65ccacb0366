"""The pg_dump plain scripts a PostgreSQL restore runs (``schema/pre-data.sql`` and
``schema/post-data.sql``): a scanner that finds the lines at the top level of the SQL
(outside strings, quoted identifiers, dollar-quoted bodies and comments), the split into
entries at pg_dump's ``-- Name: …; Type: …`` headers, the entries a ``--table`` restore
keeps, and the removal of ``OWNER TO`` statements. Text only: no connection.
"""

from __future__ import annotations

import fnmatch
import re

from moodump.errors import ConfigError, NotFoundError
from moodump.manifest import Manifest, TableEntry
from moodump.pg.connection import qualified
from moodump.sqltext import quoted_table

_HEADER = re.compile(r"^--\n-- (?:Data for )?Name: .*; Type: (?P<type>[^;]+); Schema: .*$", re.M)
_OWNER = re.compile(r"^ALTER [A-Z ]+ .* OWNER TO .*;$", re.M)
_PARALLEL = {"INDEX", "CONSTRAINT"}
_SKIPPED_WITHOUT_OWNERS = {"ACL", "DEFAULT ACL"}


_TOKEN = re.compile(r"'|\"|\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$|--|/\*|\n")


def top_level_lines(text: str) -> set[int]:
    """Offsets of the lines of a pg_dump script that start outside any string literal,
    quoted identifier, dollar-quoted body or block comment. Only those can be entry
    headers, psql meta-commands or ``OWNER TO`` statements: the same text inside a
    comment string or a function body is data and must stay as it is."""
    out = {0}
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN.search(text, pos)
        if m is None:
            break
        tok, i = m.group(), m.start()
        if tok == "\n":
            out.add(i + 1)
            pos = i + 1
        elif tok == "--":  # to the end of the line (the newline is seen next)
            j = text.find("\n", i)
            pos = n if j < 0 else j
        elif tok == "/*":
            j = text.find("*/", i + 2)
            pos = n if j < 0 else j + 2
        elif tok in ("'", '"'):
            j = i + 1
            while True:
                j = text.find(tok, j)
                if j < 0 or text.startswith(tok, j + 1) is False:
                    break
                j += 2  # a doubled quote
            pos = n if j < 0 else j + 1
        else:  # $tag$ … $tag$
            j = text.find(tok, i + len(tok))
            pos = n if j < 0 else j + len(tok)
    return out


def split_entries(script: str) -> tuple[str, list[tuple[str, str]]]:
    """(preamble, [(type, sql)]) of a pg_dump plain script, split at its entry headers;
    psql meta-commands (``\\restrict``/``\\unrestrict``) are dropped. Only headers and
    meta-commands at the top level count (:func:`top_level_lines`)."""
    starts = top_level_lines(script)
    lines, at = [], 0
    for line in script.split("\n"):
        if not (line.startswith("\\") and at in starts):
            lines.append(line)
        at += len(line) + 1
    text = "\n".join(lines)
    starts = top_level_lines(text)
    marks = [mk for mk in _HEADER.finditer(text) if mk.start() in starts]
    if not marks:
        return text, []
    preamble = text[: marks[0].start()]
    out = []
    for i, mk in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append((mk.group("type"), text[mk.start() : end]))
    return preamble, _own_settings(preamble, out)


_STATE = re.compile(r"^SET (default_tablespace|default_table_access_method) = .*;\n?", re.M)


def _own_settings(preamble: str, entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each entry with the ``SET default_tablespace`` (and ``default_table_access_method``)
    it runs under. pg_dump writes such a line before an entry's header (so it ends the
    entry before), and only when the value changes: run alone, or in another session
    (post-data runs entry by entry, in parallel), an entry would get another entry's
    tablespace (an index on a table in the default one built in another tablespace, or
    the other way). Each entry now starts by setting them as the script had them there."""
    state: dict[str, str] = {}

    def take(text: str) -> str:
        starts = top_level_lines(text)
        kept, at = [], 0
        for m in _STATE.finditer(text):
            if m.start() in starts:
                state[m.group(1)] = m.group(0).rstrip("\n") + "\n"
                kept.append(text[at : m.start()])
                at = m.end()
        kept.append(text[at:])
        return "".join(kept)

    take(preamble)  # (the preamble keeps its own: it runs first)
    out = []
    for typ, sql in entries:
        head = "".join(state[k] for k in sorted(state))
        out.append((typ, head + take(sql)))
    return out


_ON_TABLE = re.compile(
    r'^(?:CREATE (?:UNIQUE )?INDEX "(?:[^"]|"")+" ON (?:ONLY )?|ALTER TABLE ONLY )'
    r'("(?:[^"]|"")+"\."(?:[^"]|"")+")',
    re.M,
)


def _table_of(sql: str) -> str | None:
    """The quoted ``"schema"."table"`` an index or constraint entry is on (pg_dump runs
    with ``--quote-all-identifiers``), or None."""
    m = _ON_TABLE.search(sql)
    return m.group(1) if m else None


_INDEX_OF = re.compile(r'^CREATE (?:UNIQUE )?INDEX ("(?:[^"]|"")+") ON (?:ONLY )?("(?:[^"]|"")+")\.', re.M)
_STATISTICS = re.compile(r'^CREATE STATISTICS ("(?:[^"]|"")+"\."(?:[^"]|"")+")', re.M)

_PRE_TYPES = {"TABLE", "DEFAULT", "SEQUENCE", "SEQUENCE OWNED BY", "COMMENT", "ACL",
              "TABLE ATTACH", "CONSTRAINT", "CHECK CONSTRAINT"}  # fmt: skip
#: post-data: a NOT VALID check (its own entry there), ENABLE ROW LEVEL SECURITY (a
#: table restored without it would show every row to everyone) and the table's place
#: in a publication (DROP TABLE took it out) too
_POST_TYPES = {"INDEX", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "RULE", "POLICY",
               "STATISTICS", "COMMENT", "CHECK CONSTRAINT", "ROW SECURITY",
               "PUBLICATION TABLE"}  # fmt: skip
_QUALIFIED = re.compile(r'"(?:[^"]|"")+"\."(?:[^"]|"")+"')


_ATTACH = re.compile(
    r'^ALTER TABLE ONLY "((?:[^"]|"")+)"\."((?:[^"]|"")+)" ATTACH PARTITION "((?:[^"]|"")+)"\."((?:[^"]|"")+)" ',
    re.M,
)


def partition_leaves(pre_data: str) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(schema, name) of each partitioned table of a pre-data script -> the (schema, name)
    of the partitions that hold its rows, at any depth (from its ``ATTACH PARTITION``
    statements; names as the script holds them)."""
    starts = top_level_lines(pre_data)
    children: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for m in _ATTACH.finditer(pre_data):
        if m.start() in starts:
            parent = (m.group(1).replace('""', '"'), m.group(2).replace('""', '"'))
            child = (m.group(3).replace('""', '"'), m.group(4).replace('""', '"'))
            children.setdefault(parent, set()).add(child)

    def leaves(node: tuple[str, str], seen: frozenset[tuple[str, str]]) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for c in children.get(node, set()) - seen:
            out |= leaves(c, seen | {c}) if c in children else {c}
        return out

    return {p: leaves(p, frozenset({p})) for p in children}


def _select(
    m: Manifest, patterns: tuple[str, ...],
    parents: dict[tuple[str, str], set[tuple[str, str]]] | None = None,
) -> set[str] | None:  # fmt: skip
    """The quoted ``"schema"."table"`` names ``--table`` picks (``schema.table`` or
    ``table``, names or globs); None for a whole restore. A partitioned table (one of
    ``parents``: :func:`partition_leaves`) picks the partitions that hold its rows."""
    if not patterns:
        return None
    tables = [t for t in m.tables if t.kind == "table"]
    by_name = {(t.schema, t.name): t for t in tables}
    for parent, leaves in (parents or {}).items():
        if parent not in by_name and leaves and all(x in by_name for x in leaves):
            # a stand-in entry: the parent's name, for its partitions
            tables.append(TableEntry(name=parent[1], schema=parent[0], kind="partitioned",
                                     engine="", columns=[]))  # fmt: skip
    out: set[str] = set()
    for p in patterns:
        # a pattern that is a table's name as it is names that table (``x[1]``), not
        # the ones it would match as a glob (``x1``, which --drop would replace); one
        # that is a table's schema.table names that one (``x.t``), not also a table
        # named "x.t" in another schema
        hits = [t for t in tables if p == f"{t.schema}.{t.name}"]
        if len({(t.schema, t.name) for t in hits}) > 1:  # "a.b"."c" and "a"."b.c"
            raise ConfigError(
                f"--table {p!r} names {len(hits)} tables of the backup: "
                + ", ".join(qualified(t.schema, t.name) for t in hits),
                hint='name one as "schema"."table" (in double quotes, doubled inside)',
            )
        hits = hits or [t for t in tables if p == t.name] or [
            t for t in tables if quoted_table(p) == (t.schema, t.name)] or [
            t for t in tables
            if fnmatch.fnmatchcase(f"{t.schema}.{t.name}", p) or fnmatch.fnmatchcase(t.name, p)
        ]  # fmt: skip
        if not hits:
            raise NotFoundError(f"--table {p!r} matches no table of the backup",
                                hint="name tables as schema.table or table")  # fmt: skip
        for t in hits:
            if t.kind == "partitioned":
                out |= {qualified(*x) for x in (parents or {})[(t.schema, t.name)]}
            else:
                out.add(qualified(t.schema, t.name))
    return out


_NAME_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$""", re.S)


def qualified_names(sql: str) -> list[str]:
    """The quoted ``"schema"."name"`` names of an entry's SQL, in order (pg_dump quotes
    every identifier): the first two parts of each dotted chain of quoted identifiers
    (``"s"."t"`` of a column's ``"s"."t"."c"``), outside string literals, comments and
    dollar-quoted bodies. Read token by token: ``"x"."t"`` is not a name of ``"a""x"."t"``."""
    out: list[str] = []
    pos, prev_end, chain, prev = 0, -1, 0, ""
    while (m := _NAME_TOKEN.search(sql, pos)) is not None:
        tok = m.group()
        pos = m.end()
        if not tok.startswith('"'):  # a literal, a comment or a dollar-quoted body
            if tok.startswith("$"):
                j = sql.find(tok, m.end())
                pos = len(sql) if j < 0 else j + len(tok)
            prev_end, chain = -1, 0
            continue
        joined = prev_end >= 0 and sql[prev_end : m.start()] == "."
        if joined and chain == 1:
            out.append(f"{prev}.{tok}")
        chain = chain + 1 if joined else 1
        prev, prev_end = tok, m.end()
    return out


def _owners(typ: str, sql: str) -> set[str]:
    """The quoted tables a pre- or post-data entry is on (matched whole, not as text
    inside the entry: ``"x"."t"`` is in ``"a""x"."t"``, or in a comment's string): the
    first name of its SQL (``CREATE TABLE``, ``ALTER TABLE``, ``GRANT … ON TABLE``,
    ``COMMENT ON COLUMN``, ``CREATE TRIGGER … ON``, ``CREATE RULE … TO``, ``CREATE
    POLICY … ON``, ``ALTER PUBLICATION … ADD TABLE``, an identity's ``ALTER TABLE``), the
    second of ``ALTER SEQUENCE … OWNED BY`` and ``CREATE STATISTICS … FROM``, both of
    ``ATTACH PARTITION``."""
    names = qualified_names(sql)
    if typ in ("SEQUENCE OWNED BY", "STATISTICS"):
        return set(names[1:2])
    if typ == "TABLE ATTACH":
        return set(names[:2])
    return set(names[:1])


_MADE_SEQUENCE = re.compile(r'(?:CREATE (?:UNLOGGED )?SEQUENCE|SEQUENCE NAME) ("(?:[^"]|"")+"\."(?:[^"]|"")+")')


def _entries_of(
    entries: list[tuple[str, str]], tables: set[str], types: set[str], *, post: bool = False
) -> list[tuple[str, str]]:
    """The entries of a pg_dump script that belong to ``tables``: their definitions,
    defaults, comments, owned sequences (pre-data); their indexes, constraints, triggers,
    rules (post-data: foreign keys *from* them only)."""

    keep: list[int] = []
    for i, (typ, sql) in enumerate(entries):
        if typ not in types:
            continue
        if post and typ in ("INDEX", "CONSTRAINT", "FK CONSTRAINT"):
            if _table_of(sql) in tables:
                keep.append(i)
        elif _owners(typ, sql) & tables:
            keep.append(i)
    if post:
        # comments on the tables' indexes and statistics, which do not name the table
        named = {f"{m.group(2)}.{m.group(1)}" for i in keep if entries[i][0] == "INDEX"
                 for m in [_INDEX_OF.search(entries[i][1])] if m}  # fmt: skip
        named |= {m.group(1) for i in keep if entries[i][0] == "STATISTICS"
                  for m in [_STATISTICS.search(entries[i][1])] if m}  # fmt: skip
        keep += [
            i for i, (typ, sql) in enumerate(entries)
            if typ == "COMMENT" and i not in keep
            and any(f"COMMENT ON {kind} {q} IS" in sql for q in named for kind in ("INDEX", "STATISTICS"))
        ]  # fmt: skip
    if not post:
        # sequences the tables own: CREATE SEQUENCE does not name the table. Not one a
        # default merely uses (a parent's serial, a shared one): DROP TABLE left it,
        # with its state, and CREATE SEQUENCE would fail on it
        used = {q for i in keep if entries[i][0] == "SEQUENCE OWNED BY"
                for q in _QUALIFIED.findall(entries[i][1])}  # fmt: skip
        keep += [
            i for i, (typ, sql) in enumerate(entries)
            if typ == "SEQUENCE" and i not in keep
            and {m.group(1) for m in _MADE_SEQUENCE.finditer(sql)} & used
        ]  # fmt: skip
        # their comments and grants (DROP TABLE dropped them with the sequences)
        made = sequences_made([entries[i] for i in keep])
        keep += [
            i for i, (typ, sql) in enumerate(entries)
            if typ in ("COMMENT", "ACL") and i not in keep and set(qualified_names(sql)[:1]) & made
        ]  # fmt: skip
    return [entries[i] for i in sorted(keep)]


def sequences_made(entries: list[tuple[str, str]]) -> set[str]:
    """The sequences (quoted) that ``entries`` create: ``CREATE [UNLOGGED] SEQUENCE`` (an
    unlogged table's, PostgreSQL 15) and identity columns' ``SEQUENCE NAME``; a restore
    sets these (and only these) to their values."""
    return {m.group(1) for typ, sql in entries if typ == "SEQUENCE"
            for m in _MADE_SEQUENCE.finditer(sql)}  # fmt: skip


_EXTENSION = re.compile(r'^CREATE EXTENSION IF NOT EXISTS "((?:[^"]|"")+)"', re.M)


def extensions_named(script: str) -> set[str]:
    """The extensions a pg_dump script creates (its top-level ``CREATE EXTENSION``)."""
    starts = top_level_lines(script)
    return {m.group(1).replace('""', '"') for m in _EXTENSION.finditer(script) if m.start() in starts}


_IDENT = r'(?:"(?:[^"]|"")+"|PUBLIC)'
_ROLE_LINES = (
    re.compile(r' OWNER TO ("(?:[^"]|"")+");$', re.M),
    re.compile(rf" (?:TO|FROM) ({_IDENT}(?:, ?{_IDENT})*)(?: WITH (?:GRANT|ADMIN) OPTION)?;$", re.M),
    re.compile(r'^ALTER DEFAULT PRIVILEGES FOR ROLE ("(?:[^"]|"")+")', re.M),
    re.compile(r'^SET SESSION AUTHORIZATION ("(?:[^"]|"")+");$', re.M),
)
_POLICY_ROLES = re.compile(
    rf'^CREATE POLICY "(?:[^"]|"")+" ON "(?:[^"]|"")+"\."(?:[^"]|"")+"(?: AS \w+)?(?: FOR \w+)? '
    rf"TO ({_IDENT}(?:, ?{_IDENT})*)", re.M,
)
_ROLE_STATEMENTS = ("ALTER ", "GRANT ", "REVOKE ", "SET SESSION AUTHORIZATION ", "CREATE POLICY ")


def roles_named(script: str, *, owners: bool = True) -> set[str]:
    """The roles a pg_dump script applies policies to (``CREATE POLICY … TO``, whatever
    the options), and with ``owners`` those it gives objects to (``OWNER TO``), grants to
    or revokes from, sets default privileges for, or grants as (``SET SESSION
    AUTHORIZATION``), at its top level (``PUBLIC`` is not a role)."""
    starts = top_level_lines(script)
    out: set[str] = set()
    for rx in (*_ROLE_LINES, _POLICY_ROLES) if owners else (_POLICY_ROLES,):
        for m in rx.finditer(script):
            line = script.rfind("\n", 0, m.start()) + 1
            if line in starts and script.startswith(_ROLE_STATEMENTS, line):
                out |= {q[1:-1].replace('""', '"') for q in re.findall(_IDENT, m.group(1)) if q != "PUBLIC"}
    return out


_TABLESPACE = re.compile(r'^SET default_tablespace = "((?:[^"]|"")+)";$', re.M)


def without_tablespaces(script: str) -> str:
    """The script with every object in the database's default tablespace (its
    top-level ``SET default_tablespace = "name";`` lines set ``''``)."""
    starts = top_level_lines(script)
    return _TABLESPACE.sub(
        lambda m: "SET default_tablespace = '';" if m.start() in starts else m.group(), script
    )


def tablespaces_named(script: str) -> set[str]:
    """The tablespaces a pg_dump script puts objects in (its top-level ``SET
    default_tablespace = "name";`` lines; the default one, ``''``, is not named)."""
    starts = top_level_lines(script)
    return {m.group(1).replace('""', '"') for m in _TABLESPACE.finditer(script) if m.start() in starts}


def _strip_owners(sql: str) -> str:
    """``ALTER … OWNER TO`` statements removed (at the top level only: the same line in a
    function body is the function's)."""
    starts = top_level_lines(sql)
    return _OWNER.sub(lambda m: "" if m.start() in starts else m.group(), sql)
