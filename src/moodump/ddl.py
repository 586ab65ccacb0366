"""Pure helpers over ``SHOW CREATE TABLE`` text (the dump's schema files).

The restore creates big tables without their secondary indexes and adds them after the
load: InnoDB then builds each index with one sorted pass instead of millions of random
inserts into every secondary B-tree, the main cost of a logical restore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INDEX_LINE = re.compile(r"^  (?:UNIQUE |SPATIAL )?KEY `")
_FK = re.compile(r"\bFOREIGN KEY\b")
_REFERENCES = re.compile(r"REFERENCES `((?:[^`]|``)+)`")
_INDEX_NAME = re.compile(r"KEY `((?:[^`]|``)+)`")
# A column definition with AUTO_INCREMENT before any quoted text (a DEFAULT or COMMENT).
_AUTO_COLUMN = re.compile(r"^  `((?:[^`]|``)+)` [^'`]*\bAUTO_INCREMENT\b")
_FIRST_KEY_COLUMN = re.compile(r"KEY (?:`(?:[^`]|``)+` )?\(`((?:[^`]|``)+)`")


@dataclass(frozen=True)
class SplitTable:
    """A CREATE TABLE without its deferrable indexes, and the ALTER clauses that add them."""

    create: str
    indexes: tuple[str, ...]  # e.g. "ADD KEY `ix` (`a`)"

    def index_names(self) -> list[str]:
        out = []
        for clause in self.indexes:
            m = _INDEX_NAME.search(clause)
            if m:
                out.append(m.group(1).replace("``", "`"))
        return out


def portable_create(create: str, database: str) -> str:
    """A ``SHOW CREATE TABLE`` without its own database's name in sequence calls.

    MariaDB prints ``DEFAULT nextval(`db`.`seq`)`` with the database the table is in;
    replayed elsewhere, the restored table would take its numbers from the source
    database's sequence (or fail when there is none). Unqualified, the name resolves in
    the database the table is created in.
    """
    own = re.escape("`" + database.replace("`", "``") + "`.")
    return re.sub(r"\b(nextval|lastval)\(" + own, r"\1(", create, flags=re.IGNORECASE)


#: Python codecs of the client character sets a view may be printed in.
_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "binary": "utf-8",
           "latin1": "cp1252"}  # fmt: skip


def portable_view(create: bytes, database: str, charset: str) -> bytes:
    """:func:`portable_create` for a ``SHOW CREATE VIEW`` in its ``character_set_client``:
    a view's text names the sequences it calls with their database, even its own, and
    so the stored functions it calls as ``db.f()``. Unqualified, they resolve in the
    database the view is created in."""
    try:
        own = ("`" + database.replace("`", "``") + "`.").encode(_CODECS.get(charset, charset))
    except (LookupError, UnicodeEncodeError):
        return create
    pattern = rb"\b(nextval|lastval)\(" + re.escape(own)
    return re.sub(pattern, rb"\1(", create, flags=re.IGNORECASE)


def retarget_view(create: bytes, source: str, target: str, charset: str) -> bytes:
    """A view of database ``source`` for database ``target``: the stored functions of its
    own database that it calls as ``db.f()`` (SHOW CREATE VIEW prints them so, written
    that way) are called in ``target``. Unqualified they would print otherwise.

    So are its own database's columns printed as ``db.t.c``: SHOW CREATE VIEW prints a
    view whose DEFINER no longer exists so (``select `db`.`t`.`id` AS `id` from `t```),
    and with ``db`` kept the copy names a table its FROM does not have (error 1054)."""
    codec = _CODECS.get(charset, charset)
    try:
        own = ("`" + source.replace("`", "``") + "`.").encode(codec)
        new = ("`" + target.replace("`", "``") + "`.").encode(codec)
    except (LookupError, UnicodeEncodeError):
        return create
    if source == target:
        return create
    # `db`.`f`( is a function call, `db`.`t`.`c` a column (a table `db`.`t` is printed
    # without its own database)
    return re.sub(re.escape(own) + rb"(?=`(?:[^`]|``)+`(?:\(|\.`))", lambda _: new, create)


#: An identifier as SHOW CREATE TRIGGER may print it: backticks, ANSI quotes, a user or
#: host name in single quotes (a DEFINER), or plain.
_IDENT = rb"""(?:`(?:[^`]|``)*`|"(?:[^"]|"")*"|'(?:[^'\\]|\\.|'')*'|[0-9A-Za-z_$\x80-\xff]+)"""
_TRIGGER_HEAD = re.compile(
    rb"(?P<pre>\s*CREATE\s+(?:OR\s+REPLACE\s+)?"
    rb"(?:DEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?|"
    + _IDENT
    + rb"(?:\s*@\s*"
    + _IDENT
    + rb")?)\s+)?TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?)"
    rb"(?:(?P<q1>" + _IDENT + rb")\s*\.\s*)?(?P<name>" + _IDENT + rb")"
    rb"(?P<mid>\s+(?:BEFORE|AFTER)\s+(?:INSERT|UPDATE|DELETE)\s+ON\s+)"
    rb"(?:(?P<q2>" + _IDENT + rb")\s*\.\s*)?(?P<table>" + _IDENT + rb")(?=\s)",
    re.IGNORECASE,
)


def _unquoted(ident: bytes) -> bytes:
    if ident[:1] in (b"`", b'"') and len(ident) > 1:
        q = ident[:1]
        return ident[1:-1].replace(q + q, q)
    return ident


def retarget_trigger(create: bytes, source: str, target: str, charset: str) -> bytes:
    """A ``SHOW CREATE TRIGGER`` of database ``source`` for database ``target``.

    The server prints a trigger as it was written: ``CREATE TRIGGER db.name ... ON
    db.table`` names its database, and under another database name the server refuses it
    ("Trigger in wrong schema", error 1435). The header's qualifiers that name ``source``
    name ``target`` instead, quoted the same way; nothing else changes. The body is left
    as written (like the body of a routine or an event).
    """
    m = _TRIGGER_HEAD.match(create)
    if m is None or source == target:
        return create
    codec = _CODECS.get(charset, charset)
    try:
        own = source.encode(codec)
        new = target.encode(codec)
    except (LookupError, UnicodeEncodeError):
        return create
    out = create
    for g in ("q2", "q1"):  # the later span first: the earlier offsets stay valid
        q = m.group(g)
        if q is None or _unquoted(q) != own:
            continue
        if q[:1] == b'"':
            text = b'"' + new.replace(b'"', b'""') + b'"'
        elif q[:1] == b"`" or not re.fullmatch(rb"[0-9A-Za-z_$]*[A-Za-z_$][0-9A-Za-z_$]*", new):
            text = b"`" + new.replace(b"`", b"``") + b"`"
        else:
            text = new
        out = out[: m.start(g)] + text + out[m.end(g) :]
    return out


def names_database(create: bytes, database: str, charset: str) -> bool:
    """True when a stored object's text names ``database`` as a qualifier (``db.t``,
    `` `db`.t``, ``"db".t``): restored under another name, it still uses that database.
    (Textual: a string literal that looks so counts too.)"""
    try:
        own = database.encode(_CODECS.get(charset, charset))
    except (LookupError, UnicodeEncodeError):
        return False
    pattern = (
        rb"(?:`" + re.escape(own.replace(b"`", b"``")) + rb'`|"'
        + re.escape(own.replace(b'"', b'""')) + rb'"|(?<![\w$`"@.])' + re.escape(own)
        + rb"(?![\w$]))\s*\.\s*[`\"\w$\x80-\xff]"
    )  # fmt: skip
    return re.search(pattern, create) is not None


_DEFINER = re.compile(
    rb"\bDEFINER\s*=\s*(?P<user>" + _IDENT + rb")(?:\s*@\s*(?P<host>" + _IDENT + rb"))?",
    re.IGNORECASE,
)


def definer_of(create: bytes) -> tuple[str, str] | None:
    """The (user, host) of a routine's, view's, trigger's or event's DEFINER clause."""
    m = _DEFINER.search(create)
    if m is None or m.group("user").upper() in (b"CURRENT_USER", b"CURRENT_ROLE"):
        return None

    def text(ident: bytes | None) -> str:
        if ident is None:
            return "%"
        if ident[:1] == b"'":
            ident = ident[1:-1].replace(b"''", b"'").replace(b"\\'", b"'")
        return _unquoted(ident).decode("utf-8", "replace")

    return text(m.group("user")), text(m.group("host"))


def referenced_tables(create: str) -> set[str]:
    """Tables a CREATE TABLE's foreign keys point at."""
    return {m.replace("``", "`") for m in _REFERENCES.findall(create)}


def has_foreign_keys(create: str) -> bool:
    return bool(_FK.search(create))


def _auto_increment_needs_secondary(lines: list[str]) -> bool:
    """True when the AUTO_INCREMENT column starts no primary key but a secondary index:
    InnoDB refuses the table without that index (error 1075), and creating it first
    would change the order SHOW CREATE TABLE lists the indexes in."""
    auto = next((m.group(1) for m in map(_AUTO_COLUMN.match, lines) if m), None)
    if auto is None:
        return False
    for line in lines:
        m = _FIRST_KEY_COLUMN.search(line)
        if line.startswith("  PRIMARY KEY ") and m and m.group(1) == auto:
            return False
    return True


def split_secondary_indexes(create: str) -> SplitTable:
    """Remove plain, unique and spatial secondary indexes from a ``SHOW CREATE TABLE``.

    Only the layout MariaDB/MySQL print is recognised (one definition per line, two
    spaces of indentation); anything else is left in place, so the worst case is a table
    created with its indexes, as usual. FULLTEXT indexes stay (adding the first one
    later rebuilds the table), and so does everything of a table without a primary key
    (InnoDB would cluster it on a unique key) or whose AUTO_INCREMENT column is not
    first in its primary key (it needs a secondary index from the start).
    """
    head, sep, tail = create.partition("\n) ")
    if not sep or "\n  PRIMARY KEY " not in head:
        return SplitTable(create, ())
    lines = head.split("\n")
    if _auto_increment_needs_secondary(lines):
        return SplitTable(create, ())
    kept: list[str] = []
    indexes: list[str] = []
    for line in lines:
        if _INDEX_LINE.match(line):
            indexes.append("ADD " + line.strip().rstrip(","))
        else:
            kept.append(line)
    if not indexes:
        return SplitTable(create, ())
    kept[-1] = kept[-1].rstrip(",")
    return SplitTable("\n".join(kept) + sep + tail, tuple(indexes))
