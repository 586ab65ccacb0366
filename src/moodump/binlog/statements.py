"""Which statements of a binary log a replay into one database can apply faithfully.

Pure text analysis, no I/O: :func:`unsafe_statement` says why a statement in the replay
range must not be replayed (it changes a database, the server's accounts, or another
database, or names the source database in a way ``mariadb-binlog --rewrite-db`` would not
rename), and :class:`Elsewhere` remembers the source's triggers and stored functions that
write another database, so that a statement firing them is refused too. A statement in
statement format whose replay would give other values is refused as well:
:func:`unrepeatable` (``UUID()``, ``CURRENT_USER()``), :meth:`Elsewhere.default_used`
(a column ``DEFAULT (UUID())`` it lets fill a row), :meth:`Elsewhere.reads_other`
(another database's table), :func:`misread_load` (``LOAD XML``), :func:`unordered_limit`.
:mod:`moodump.pitr.replay` calls them while it scans the events of the range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from moodump.errors import ConfigError


def _qualified(db: str) -> re.Pattern[str]:
    """``db`` used as a qualifier (``db.t`` or `` `db`.`t` ``) in a statement."""
    quoted = re.escape("`" + db.replace("`", "``") + "`") + r"\s*\."
    if re.fullmatch(r"[A-Za-z0-9_$]+", db):
        plain = r"(?<![\w$`.])" + re.escape(db) + r"\s*\.\s*[`\w$]"
        return re.compile(f"{quoted}|{plain}", re.IGNORECASE)
    return re.compile(quoted, re.IGNORECASE)


_DB_STATEMENT = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(CREATE|DROP|ALTER)\s+(DATABASE|SCHEMA)\b", re.I | re.S
)
#: Statements on the server rather than on a database: accounts, privileges, plugins.
_SERVER_STATEMENT = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(?:GRANT|REVOKE|SET\s+PASSWORD|RENAME\s+USER"
    r"|(?:CREATE|DROP|ALTER)\s+(?:OR\s+REPLACE\s+)?(?:USER|ROLE|SERVER)"
    r"|(?:INSTALL|UNINSTALL)\s+(?:PLUGIN|SONAME)|SET\s+DEFAULT\s+ROLE"
    # a user-defined function (UDF) is the server's, loaded from a shared library
    r"|CREATE\s+(?:OR\s+REPLACE\s+)?(?:AGGREGATE\s+)?FUNCTION\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?:`(?:[^`]|``)+`|[\w$]+)\s+RETURNS\s+\w+\s+SONAME)\b",
    re.I | re.S,
)
_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_USER_PART = rf"(?:{_IDENT}|'(?:[^'\\]|\\.|'')*')"
#: ``DEFINER = user@host`` as the server logs it (`` `my user`@`%` ``: blanks included).
_DEFINER = (
    rf"DEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?|CURRENT_ROLE"
    rf"|{_USER_PART}(?:\s*@\s*{_USER_PART})?)\s+"
)
#: DEFINER, SQL SECURITY and ALGORITHM in any order (the server logs a view's
#: ``CREATE ALGORITHM=... DEFINER=... SQL SECURITY ... VIEW``).
_VIEW_OPTIONS = rf"(?:(?:{_DEFINER}|SQL\s+SECURITY\s+\w+\s+|ALGORITHM\s*=\s*\w+\s+))*"
#: The object a statement creates, changes or writes, when it is written db.name.
_OBJECT = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(?:"
    r"(?:CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?"
    rf"{_VIEW_OPTIONS}"
    r"(?:TABLE|VIEW|TRIGGER|PROCEDURE|FUNCTION|EVENT|SEQUENCE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    rf"|ALTER\s+(?:(?:ONLINE|IGNORE)\s+)*{_VIEW_OPTIONS}"
    r"(?:TABLE|VIEW|PROCEDURE|FUNCTION|EVENT|SEQUENCE)\s+"
    r"(?:IF\s+EXISTS\s+)?"
    r"|TRUNCATE\s+(?:TABLE\s+)?"
    r"|(?:CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+"
    r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?" + _IDENT + r"\s+ON\s+"
    r"|(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?"
    r"|LOAD\s+(?:DATA|XML)\s+.*?\bINTO\s+TABLE\s+)"
    r"(?P<db>" + _IDENT + r")\s*\.\s*" + _IDENT,
    re.I | re.S,
)
#: Every db.name of a statement that only lists tables (DROP TABLE a, b; RENAME TABLE).
_LISTS_TABLES = re.compile(
    r"^\s*(?:DROP\s+(?:TEMPORARY\s+)?TABLES?|DROP\s+VIEW|RENAME\s+TABLES?"
    r"|(?:OPTIMIZE|REPAIR|ANALYZE)\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLES?)\b",
    re.I,
)
#: UPDATE and DELETE, single- or multi-table: the table references they may write are
#: the ones before SET (UPDATE) or before WHERE/ORDER BY/LIMIT/RETURNING (DELETE), e.g.
#: ``UPDATE t JOIN other.o ... SET o.v = ...``, ``DELETE o FROM other.o JOIN t ...``.
_UPDATE_DELETE = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(?:WITH\b.*?\)\s*)?(?:UPDATE|DELETE)"
    r"(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE)\b)*(?P<refs>.*?)"
    r"(?:\b(?:SET|WHERE|ORDER\s+BY|LIMIT|RETURNING)\b|$)",
    re.I | re.S,
)
#: A table reference ``db.name`` where a table stands in a table list (not ``alias.col``
#: of an ON condition), and the table names and aliases a list declares.
_TABLE_REF = re.compile(
    r"(?:^|,|\bJOIN|\bSTRAIGHT_JOIN|\bFROM|\bUSING)\s*\(?\s*(?P<db>"
    + _IDENT
    + r")\s*\.\s*"
    + _IDENT,
    re.I,
)
_KEYWORD = (
    r"(?!(?:FROM|JOIN|USING|ON|AS|LEFT|RIGHT|INNER|OUTER|CROSS|NATURAL|STRAIGHT_JOIN|USE"
    r"|FORCE|IGNORE|PARTITION)\b)"
)
_DECLARED = re.compile(
    rf"(?:^|,|\bJOIN|\bSTRAIGHT_JOIN|\bFROM|\bUSING)\s*\(?\s*(?:{_IDENT}\s*\.\s*)?{_KEYWORD}"
    rf"(?P<name>{_IDENT})"
    rf"(?:\s+(?:AS\s+)?{_KEYWORD}(?P<alias>{_IDENT}))?",
    re.I,
)
#: ``ALTER TABLE t ... RENAME [TO|AS] other.t`` moves the table into another database,
#: ``... EXCHANGE PARTITION p WITH TABLE other.x`` swaps rows with one.
_ALTER_RENAME = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*ALTER\s.*?\b(?:RENAME\s+(?:TO\s+|AS\s+)?"
    rf"|EXCHANGE\s+PARTITION\s+{_IDENT}\s+WITH\s+TABLE\s+)(?P<db>{_IDENT})\s*\.",
    re.I | re.S,
)
#: Statements that write one table only, named first: (db.)table.
_SINGLE_TARGET = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(?:"
    r"(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?"
    r"|CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?)"
    r"(?:(?P<db>" + _IDENT + r")\s*\.\s*)?" + _IDENT + r"(?![\w$`.])",
    re.I | re.S,
)
_PAIR = re.compile(r"(?P<db>" + _IDENT + r")\s*\.\s*" + _IDENT)


def _unquote(ident: str) -> str:
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


#: Statements the server logs with the functions they call (the function runs again when
#: the statement is replayed); a function that writes, called by a SELECT, SET or DO, is
#: logged as ``SELECT `db`.`f`(...)``.
_CALLS = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(?:INSERT|REPLACE|UPDATE|DELETE|LOAD|SELECT|DO|SET|WITH)\b", re.I | re.S
)
#: A call of ``name(`` (``db.name(``, quoted or not).
_FUNC_CALL = re.compile(rf"(?<![\w$`.])(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<name>{_IDENT})\s*\(")


def _other_function(text: str, source_db: str) -> str:
    """``db.f`` when the (masked) statement calls a function ``f`` of another database."""
    if not _CALLS.match(text):
        return ""
    for m in _FUNC_CALL.finditer(text):
        if m["db"] and _unquote(m["db"]).lower() != source_db.lower():
            return f"{_unquote(m['db'])}.{_unquote(m['name'])}"
    return ""


def _other_database(query: str, source_db: str) -> str:
    """A database other than ``source_db`` that the statement writes to, or ""."""
    if _LISTS_TABLES.match(query):
        names = [_unquote(m["db"]) for m in _PAIR.finditer(query)]
    elif ud := _UPDATE_DELETE.match(query):
        # every table of a multi-table UPDATE/DELETE may be written (SET o.v = ...,
        # DELETE o FROM ...): refuse when one is another database's
        refs = ud["refs"].strip()
        local = {_unquote(x).lower() for m in _DECLARED.finditer(refs) for x in m.groups() if x}
        names = [_unquote(m["db"]) for m in _TABLE_REF.finditer(refs)]
        names = [n for n in names if n.lower() not in local - {source_db.lower()}]
    else:
        m = _OBJECT.match(query) or _ALTER_RENAME.match(query)
        names = [_unquote(m["db"])] if m else []
    return next((n for n in names if n.lower() != source_db.lower()), "")


#: sql_mode bits of a Query event that change how a statement is read: ``"x"`` names an
#: identifier (set by ANSI, ORACLE, POSTGRESQL... too), a backslash is an ordinary
#: character in a string.
MODE_ANSI_QUOTES = 1 << 2
MODE_NO_BACKSLASH_ESCAPES = 1 << 20
_EXEC_COMMENT = re.compile(r"/\*M?!\d*")
_DASHES_END = ("", " ", "\t", "\n", "\r")  # what follows "--" when it starts a comment
_PLAIN = re.compile(r"[^'\"`/#*-]*")  # a run without a quote or the start of a comment
#: a string literal (to its end, or the statement's when it is not closed)
_STRING = {q: re.compile(rf"{q}(?:[^{q}\\]+|\\.|{q}{q})*(?:{q}|\\?$)", re.S) for q in "'\""}
_STRING_NO_BACKSLASH = {q: re.compile(rf"{q}(?:[^{q}]+|{q}{q})*{q}?", re.S) for q in "'\""}
_QUOTED = {q: re.compile(rf"{q}((?:[^{q}]+|{q}{q})*){q}?", re.S) for q in "`\""}


#: ``SET STATEMENT var=value, ... FOR`` (MariaDB): the statement after it is what runs.
_SET_STATEMENT = re.compile(r"^\s*SET\s+STATEMENT\s.*?\bFOR\s+", re.I | re.S)


def _statement(query: str, sql_mode: int = 0) -> str:
    """The statement as the checks read it: masked (:func:`_masked`), without a leading
    ``SET STATEMENT ... FOR``."""
    return _SET_STATEMENT.sub("", _masked(query, sql_mode), count=1)


def _masked(query: str, sql_mode: int = 0) -> str:
    """``query`` with each string literal as ``''``, each double-quoted identifier
    (ANSI_QUOTES) backquoted, comments dropped and executable comments (``/*!...*/``,
    ``/*M!...*/``) opened, as the server reads it under ``sql_mode``: names inside strings
    or comments are no references, and ``"db".t`` under ANSI_QUOTES is one."""
    ansi = bool(sql_mode & MODE_ANSI_QUOTES)
    strings = _STRING_NO_BACKSLASH if sql_mode & MODE_NO_BACKSLASH_ESCAPES else _STRING
    out: list[str] = []
    i, n, opened = 0, len(query), 0  # opened: executable comments open at i
    while i < n:
        plain = _PLAIN.match(query, i)
        assert plain is not None  # it matches the empty string
        if plain.end() > i:
            out.append(query[i : plain.end()])
            i = plain.end()
            continue
        c = query[i]
        if c == "'" or (c == '"' and not ansi):
            m = strings[c].match(query, i)
            assert m is not None
            out.append("''")
            i = m.end()
        elif c in "`\"":
            m = _QUOTED[c].match(query, i)
            assert m is not None
            name = m[1].replace(c + c, c)
            out.append("`" + name.replace("`", "``") + "`")
            i = m.end()
        elif query.startswith(("/*!", "/*M!"), i):
            out.append(" ")
            opened += 1
            i = _EXEC_COMMENT.match(query, i).end()  # type: ignore[union-attr]
        elif query.startswith("*/", i) and opened:
            out.append(" ")
            opened -= 1
            i += 2
        elif query.startswith("/*", i):
            j = query.find("*/", i + 2)
            out.append(" ")
            i = n if j < 0 else j + 2
        elif c == "#" or (query.startswith("--", i) and query[i + 2 : i + 3] in _DASHES_END):
            j = query.find("\n", i)
            out.append(" ")
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


#: Statements that only delimit a transaction (never unsafe, never a change of their own).
TXN_WORDS = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "XA END", "XA PREPARE", "XA COMMIT"})


def unsafe_statement(
    query: str, default_db: str, source_db: str, rewrite: bool, sql_mode: int = 0
) -> str:
    """Why a statement in the replay range cannot be replayed into the target ("" when
    it can). ``--rewrite-db`` renames the default database and the tables of row events,
    but not names written in a statement, and ``--database`` keeps statements by their
    default database only; so refuse a statement on the database itself, a statement
    whose default database is the source and that qualifies names with it while the
    target has another name, a statement with another default database that qualifies
    names with the source (it would be skipped), and a statement whose default database
    is the source but whose object is in another database (``CREATE TABLE other.t``,
    ``INSERT INTO other.t``: the filter would let it through to that database). The
    statement is read under the ``sql_mode`` it was logged with (:func:`_masked`)."""
    head = query.strip()[:16].upper()
    if head in TXN_WORDS or head.startswith(("XA ", "SAVEPOINT", "RELEASE SAVEPOINT")):
        return ""
    # names inside string literals ('see moodle.org') are not references
    text = _statement(query, sql_mode)
    mentions = _qualified(source_db).search(text) is not None
    if default_db == source_db:
        if _DB_STATEMENT.match(text):
            return "it creates, drops or alters a database"
        if _SERVER_STATEMENT.match(text):
            return (
                "it changes the server's accounts, privileges or plugins, which a replay "
                "must not touch"
            )
        if rewrite and mentions:
            return f"it names tables as {source_db}.<table>, which the rename would not change"
        if (
            rewrite
            and (_DML.match(text) or _CREATE_SELECT.match(text))
            and (d := _DATABASE_CALL.search(text))
        ):
            return (
                f"it uses {d['name'].upper()}(), which replayed into another name gives that "
                f"name, not {source_db}"
            )
        other = _other_database(text, source_db)
        if other:
            return f"it changes another database ({other}), which a replay must not touch"
        if call := _other_function(text, source_db):
            return (
                f"it calls {call}(), a stored function of another database "
                f"({_unquote(call.split('.')[0].strip())}): replayed as a statement it runs "
                "there again, and may write there"
            )
        return ""
    if mentions and not _SERVER_STATEMENT.match(query):  # GRANT ... ON src.*: skipped
        target = _SINGLE_TARGET.match(text)
        if target and _unquote(target["db"] or default_db).lower() != source_db.lower():
            return ""  # it only reads the source (INSERT INTO other.t SELECT ... FROM src.u)
        return (
            f"it names {source_db} from another default database "
            f"({default_db or 'none'}) and may change it, but the database filter would "
            "skip it"
        )
    return ""


#: Functions whose value a statement-format replay does not repeat: the log holds no
#: value for them (it does for NOW(), RAND(), LAST_INSERT_ID() and user variables), and
#: MIXED logs a statement calling them as rows.
_UNREPEATABLE = re.compile(
    r"(?<![\w$.`])(?:(?P<name>UUID|UUID_SHORT|SYS_GUID|SYSDATE|USER|SESSION_USER|SYSTEM_USER"
    r"|VERSION|LOAD_FILE|FOUND_ROWS|ROW_COUNT|RANDOM_BYTES)\s*\("
    # the account and role: the replay's own (the one restoring), not the source session's
    r"|(?P<bare>CURRENT_USER|CURRENT_ROLE)\b(?!\s*\.)(?:\s*\(\s*\))?)",
    re.I,
)


def _function(m: re.Match[str]) -> str:
    """The function an :data:`_UNREPEATABLE` match names (``UUID()``)."""
    return (m["name"] or m["bare"]).upper() + "()"


#: ``DATABASE()``: the default database, the target's when replayed into another name.
_DATABASE_CALL = re.compile(r"(?<![\w$.`])(?P<name>DATABASE|SCHEMA)\s*\(\s*\)", re.I)
#: ``CREATE TABLE … SELECT`` (its rows are the SELECT's, computed again by a replay).
_CREATE_SELECT = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\b.*?\bSELECT\b", re.I | re.S
)
#: ... unless the name is a table's (``INSERT INTO user (id) …``).
_TABLE_BEFORE = re.compile(r"\b(?:INTO|TABLE|UPDATE|JOIN|FROM|REPLACE|INSERT)\s*$", re.I)
#: A system variable (``@@hostname``, ``@@session.x``); the log holds the session's value
#: of these ones only (the Query event's status and the SET lines mariadb-binlog prints).
_SYSTEM_VARIABLE = re.compile(r"@@(?:(?:GLOBAL|SESSION|LOCAL)\s*\.\s*)?`?(?P<name>[\w$]+)", re.I)
_LOGGED_VARIABLES = frozenset({
    "auto_increment_increment", "auto_increment_offset", "autocommit", "character_set_client",
    "character_set_connection", "character_set_database", "character_set_server",
    "collation_connection", "collation_database", "collation_server", "foreign_key_checks",
    "unique_checks", "sql_auto_is_null", "sql_mode", "time_zone", "timestamp",
    "lc_time_names", "pseudo_thread_id", "insert_id", "last_insert_id", "identity",
    "check_constraint_checks", "explicit_defaults_for_timestamp",
})  # fmt: skip


def unrepeatable(query: str, sql_mode: int = 0) -> str:
    """What a statement-format DML statement reads whose value its replay would not
    repeat (``UUID()``, ``@@hostname``), or ""."""
    text = _statement(query, sql_mode)
    return _uses_unrepeatable(text) if _DML.match(text) or _CREATE_SELECT.match(text) else ""


def _top_level(text: str) -> str:
    """``text`` without what is inside parentheses (subqueries, calls)."""
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def unordered_limit(query: str, sql_mode: int = 0) -> str:
    """Why a statement-format write cannot be replayed exactly because a ``LIMIT``
    without ``ORDER BY`` picks its rows (``DELETE FROM t LIMIT 1``: the copy's rows lie
    in another order, the replay picks others), or ""."""
    text = _statement(query, sql_mode)
    if not (_DML.match(text) or _CREATE_SELECT.match(text)):
        return ""
    top = _top_level(text)
    if re.search(r"\bORDER\s+BY\b", top, re.I):
        return ""
    if re.search(r"\bLIMIT\b", top, re.I):
        return (
            "logged in statement format, it writes the rows a LIMIT without ORDER BY picks, "
            "and a replay may pick others (the copy's rows lie in another order; "
            "binlog_format MIXED or ROW logs its rows)"
        )
    if _DUPLICATES_SELECT.match(text) and re.search(r"\bSELECT\b.*\bFROM\b", top, re.I | re.S):
        return (
            "logged in statement format, which of the rows its SELECT reads wins on a "
            "duplicate key (INSERT IGNORE, REPLACE, ON DUPLICATE KEY UPDATE) depends on the "
            "order it reads them, which a replay may not repeat (the copy's rows lie in "
            "another order; binlog_format MIXED or ROW logs its rows)"
        )
    return ""


#: ``INSERT IGNORE … SELECT``, ``REPLACE … SELECT``, ``INSERT … SELECT … ON DUPLICATE KEY
#: UPDATE``: the order of the SELECT's rows decides which one a duplicate key keeps.
_DUPLICATES_SELECT = re.compile(
    r"^\s*(?:INSERT\s+(?:(?:LOW_PRIORITY|HIGH_PRIORITY|DELAYED)\s+)*IGNORE\b(?=.*\bSELECT\b)"
    r"|REPLACE\b(?=.*\bSELECT\b)|INSERT\b(?=.*\bSELECT\b.*\bON\s+DUPLICATE\s+KEY\b))",
    re.I | re.S,
)


def _uses_unrepeatable(text: str, account: bool = True) -> str:
    """What ``text`` uses whose value a replay does not repeat ("" for nothing). With
    ``account`` CURRENT_USER() counts; not in a trigger's or stored function's body, which
    runs as its DEFINER, on the copy too."""
    for m in _UNREPEATABLE.finditer(text):
        if m["bare"] and not account:
            continue
        if not _TABLE_BEFORE.search(text, 0, m.start()):
            return _function(m)
    for v in _SYSTEM_VARIABLE.finditer(text):
        if v["name"].lower() not in _LOGGED_VARIABLES:
            return "@@" + v["name"].lower()
    return ""


#: ``LOAD XML`` as the server logs it in statement format: a ``LOAD DATA`` of the same file
#: whose lines end at the XML row tag (``LINES TERMINATED BY '<row>'``).
_LOAD_XML = re.compile(
    r"^\s*LOAD\s+DATA\b.*\bLINES\s+TERMINATED\s+BY\s+'<[^'<>]*>'", re.I | re.S
)


def misread_load(query: str) -> str:
    """Why a statement-format LOAD cannot be replayed as logged ("" when it can): the
    server logs ``LOAD XML`` as a ``LOAD DATA`` that reads the XML file as delimited text
    (the rows replayed are not the file's)."""
    if _LOAD_XML.match(query):
        return (
            "logged in statement format, it is a LOAD XML, which the server logs as a LOAD "
            "DATA of the file: replayed, it reads the XML as delimited text, not its rows "
            "(binlog_format=ROW logs its rows)"
        )
    return ""


def shown_statement(query: str) -> str:
    """A statement as a message quotes it: account statements only by their first words
    (the log holds ``IDENTIFIED BY 'password'`` in clear)."""
    if _SERVER_STATEMENT.match(query):
        return " ".join(query.split()[:2]) + " …"
    return query[:200]


#: A write into ``db.name`` inside a trigger's or stored function's body.
_BODY_WRITE = re.compile(
    r"\b(?:INSERT(?:\s+(?:IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY))*(?:\s+INTO)?"
    r"|REPLACE(?:\s+(?:LOW_PRIORITY|DELAYED))*(?:\s+INTO)?|UPDATE(?:\s+(?:IGNORE|LOW_PRIORITY))*"
    r"|DELETE(?:\s+(?:IGNORE|LOW_PRIORITY|QUICK))*\s+FROM|TRUNCATE(?:\s+TABLE)?|CALL)\s+"
    rf"(?P<db>{_IDENT})\s*\.\s*{_IDENT}",
    re.I,
)
#: A write into a table inside a body, qualified or not (``INSERT INTO u``, ``UPDATE db.u``).
_BODY_TABLE = re.compile(
    r"\b(?:INSERT(?:\s+(?:IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY))*(?:\s+INTO)?"
    r"|REPLACE(?:\s+(?:LOW_PRIORITY|DELAYED))*(?:\s+INTO)?|UPDATE(?:\s+(?:IGNORE|LOW_PRIORITY))*"
    r"|DELETE(?:\s+(?:IGNORE|LOW_PRIORITY|QUICK))*\s+FROM)\s+(?!ON\b)"
    rf"(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<table>{_IDENT})",
    re.I,
)
_CREATE_TRIGGER = re.compile(
    rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:{_DEFINER})?TRIGGER\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})\s+(?:BEFORE|AFTER)\s+"
    rf"\w+\s+ON\s+"
    rf"(?:{_IDENT}\s*\.\s*)?(?P<table>{_IDENT})",
    re.I,
)
_CREATE_FUNCTION = re.compile(
    rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:{_DEFINER})?(?:AGGREGATE\s+)?FUNCTION\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})\s*\(",
    re.I,
)
_DROP_TRIGGER = re.compile(
    rf"^\s*DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})", re.I
)
_DML = re.compile(r"^\s*(?:/\*.*?\*/\s*)*(?:INSERT|REPLACE|UPDATE|DELETE|LOAD)\b", re.I | re.S)
#: ``CREATE``/``ALTER VIEW`` (as the server logs it and SHOW CREATE VIEW gives it).
_CREATE_VIEW = re.compile(
    rf"^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?|ALTER\s+){_VIEW_OPTIONS}VIEW\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})",
    re.I,
)
_DROP_VIEW = re.compile(r"^\s*DROP\s+VIEW\s+(?:IF\s+EXISTS\s+)?(?P<list>.*)$", re.I | re.S)
#: A view's FROM clause: the tables a write through the view may change.
_VIEW_FROM = re.compile(
    r"\bFROM\b(?P<refs>.*?)(?:\b(?:WHERE|GROUP\s+BY|HAVING|ORDER\s+BY|LIMIT|UNION|EXCEPT"
    r"|INTERSECT|WINDOW|WITH\s+(?:CASCADED\s+|LOCAL\s+)?CHECK\s+OPTION)\b|$)",
    re.I | re.S,
)
_FROM_TABLE = re.compile(
    rf"(?:^|,|\bJOIN|\bSTRAIGHT_JOIN)\s*\(*\s*(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<table>{_IDENT})",
    re.I,
)
#: The table an INSERT, REPLACE or LOAD DATA writes.
_WRITE_TARGET = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(?:(?:INSERT|REPLACE)\s+"
    r"(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?"
    r"|LOAD\s+(?:DATA|XML)\s+.*?\bINTO\s+TABLE\s+)"
    rf"(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<table>{_IDENT})",
    re.I | re.S,
)
_QUOTED_NAME = re.compile(r"`(?:[^`]|``)+`")
#: ``CREATE OR REPLACE TABLE t`` (not a temporary one): the old ``t`` is dropped first.
_REPLACE_TABLE = re.compile(
    rf"^\s*CREATE\s+OR\s+REPLACE\s+TABLE\s+(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})", re.I
)
#: ``RENAME TABLE a TO b, c TO d`` and ``ALTER TABLE a ... RENAME [TO|AS] b`` (not a
#: column's, an index's or a key's RENAME).
_RENAME_TABLE = re.compile(r"^\s*RENAME\s+TABLES?\s+(?P<list>.*)$", re.I | re.S)
_RENAME_PAIR = re.compile(
    rf"(?:^|,)\s*(?:{_IDENT}\s*\.\s*)?(?P<old>{_IDENT})\s+TO\s+"
    rf"(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<new>{_IDENT})",
    re.I,
)
_ALTER_TABLE_RENAME = re.compile(
    rf"^\s*ALTER\s+(?:(?:ONLINE|IGNORE)\s+)*TABLE\s+(?:IF\s+EXISTS\s+)?"
    rf"(?:{_IDENT}\s*\.\s*)?(?P<old>{_IDENT})\s.*?\bRENAME\s+(?!(?:COLUMN|INDEX|KEY)\b)"
    rf"(?:TO\s+|AS\s+)?(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<new>{_IDENT})",
    re.I | re.S,
)


def _written(text: str, source_db: str) -> set[str]:
    """The source's tables (or views) a masked DML statement names where it writes:
    the target of INSERT, REPLACE, LOAD DATA; the table references of UPDATE, DELETE."""
    out: set[str] = set()
    if m := _WRITE_TARGET.match(text):
        if not m["db"] or _unquote(m["db"]).lower() == source_db.lower():
            out.add(_unquote(m["table"]).lower())
    elif ud := _UPDATE_DELETE.match(text):
        for d in _DECLARED.finditer(ud["refs"].strip()):
            out |= {_unquote(x).lower() for x in (d["name"], d["alias"]) if x}
    return out


@dataclass
class Elsewhere:
    """The source's triggers and stored functions that write another database, and its
    views of another database's tables: a statement replayed in statement format runs
    them again, there (row events do not); a statement writing a view writes its tables
    and fires their triggers.
    With ``rewrite`` (a restore into another name) a write into the source database
    written ``source.table`` counts: the copy's trigger would write the source."""

    rewrite: bool = False
    triggers: dict[str, tuple[str, str]] = field(default_factory=dict)  # trigger -> (table, db)
    functions: dict[str, str] = field(default_factory=dict)  # function -> db
    #: every trigger, function and view of the source -> (its table, for a trigger;
    #: its name, for a view), the tables of the source its body writes (a view: its FROM clause's): a chain (a trigger writing a table whose trigger
    #: writes elsewhere) fires the last one too
    writes: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)  # view -> another database it shows
    #: "trigger t" / "function f" -> what its body uses whose value a replay of the
    #: statement that runs it does not repeat (``UUID()``)
    unrepeat: dict[str, str] = field(default_factory=dict)
    #: table -> its columns whose DEFAULT a statement-format replay does not repeat
    #: (``DEFAULT (UUID())``) -> the function (``UUID()``)
    defaults: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the source's events -> whether enabled; and every event enabled at some point of
    #: the backup or the range (the target's event scheduler would run it in the copy)
    events: dict[str, bool] = field(default_factory=dict)
    events_enabled: set[str] = field(default_factory=set)
    #: the backup's ``CREATE TABLE`` of a table ("" when it has none), read the first
    #: time a statement writes the table or DDL changes it (most ranges need none)
    schemas: Callable[[str], str] | None = None
    known: set[str] = field(default_factory=set)  # tables whose defaults are followed

    def learn_table(self, create: str, sql_mode: int = 0) -> None:
        """Note the columns of the table ``create`` (``CREATE TABLE``) defines whose
        default a replay does not repeat; forget the table's (``DROP TABLE``, ``RENAME``
        and ``ALTER`` follow it, :meth:`learn`)."""
        body = _masked(create, sql_mode)
        if c := _CREATE_TABLE.match(body):
            self.known.add(_unquote(c["name"]).lower())
        _learn_defaults(self.defaults, body)

    def _ensure(self, table: str) -> None:
        """Read the backup's definition of ``table`` (once), before anything follows it."""
        if table in self.known:
            return
        self.known.add(table)
        if self.schemas is not None and (create := self.schemas(table)):
            self.learn_table(create)

    def default_used(self, query: str, sql_mode: int = 0, source_db: str = "") -> str:
        """Why a statement-format ``query`` gives another value when replayed, through a
        column default (``DEFAULT (UUID())``) that it lets fill a row ("" when none):
        a write into such a table that leaves the column out (or says DEFAULT), or an
        ALTER that adds such a column to the existing rows."""
        text = _statement(query, sql_mode)
        if _DML.match(text):
            for table in _written(text, source_db):
                self._ensure(table)
        return _default_used(self.defaults, text, source_db)

    def learn(self, create: str, source_db: str, sql_mode: int = 0) -> None:
        """Note the trigger or function ``create`` defines when its body writes another
        database, and the view it defines (forget one redefined without, or dropped:
        ``DROP TRIGGER``, ``DROP VIEW``)."""
        if d := _DROP_TRIGGER.match(create):
            self.triggers.pop(_unquote(d["name"]).lower(), None)
            self.writes.pop("trigger " + _unquote(d["name"]).lower(), None)
            self.unrepeat.pop("trigger " + _unquote(d["name"]).lower(), None)
            return
        body = _masked(create, sql_mode)
        self._follow_tables(body)
        _learn_defaults(self.defaults, body)
        if e := _EVENT_DDL.match(body):
            self._learn_event(e)
            return
        if r := _RENAME_TABLE.match(body):
            for p in _RENAME_PAIR.finditer(r["list"]):
                self._renamed(p, source_db)
            return
        if r := _ALTER_TABLE_RENAME.match(body):
            self._renamed(r, source_db)
            return
        if v := _CREATE_VIEW.match(body):
            self._learn_view(_unquote(v["name"]).lower(), body[v.end() :], source_db)
            return
        if (d := _DROP_TABLES.match(body)) and not re.match(r"\s*DROP\s+TEMPORARY", body, re.I):
            self._dropped({_unquote(x["name"]).lower() for x in _LISTED.finditer(d["list"])})
            return
        if r := _REPLACE_TABLE.match(body):  # the old table goes, with its triggers
            self._dropped({_unquote(r["name"]).lower()})
            return
        if d := _DROP_VIEW.match(body):
            for x in _LISTED.finditer(d["list"]):
                self.views.pop(_unquote(x["name"]).lower(), None)
                self.writes.pop("view " + _unquote(x["name"]).lower(), None)
            return
        tables = frozenset(
            _unquote(m["table"]).lower()
            for m in _BODY_TABLE.finditer(body)
            if not m["db"] or _unquote(m["db"]).lower() == source_db.lower()
        )
        t, f = _CREATE_TRIGGER.match(body), _CREATE_FUNCTION.match(body)
        head = t or f
        # a write there, or a call of a function there (it may write there)
        other = next(
            (
                _unquote(m["db"])
                for m in (
                    *_BODY_WRITE.finditer(body),
                    *(_FUNC_CALL.finditer(body, head.end()) if head else ()),
                )
                if m["db"] and (self.rewrite or _unquote(m["db"]).lower() != source_db.lower())
            ),
            "",
        )
        if head:
            key = ("trigger " if t else "function ") + _unquote(head["name"]).lower()
            self.unrepeat.pop(key, None)
            if uses := _uses_unrepeatable(body[head.end() :], account=False):
                self.unrepeat[key] = uses
        if t:
            name = _unquote(t["name"]).lower()
            self.triggers.pop(name, None)
            self.writes["trigger " + name] = (_unquote(t["table"]).lower(), tables)
            if other:
                self.triggers[name] = (_unquote(t["table"]).lower(), other)
        elif f:
            name = _unquote(f["name"]).lower()
            self.functions.pop(name, None)  # redefined (CREATE OR REPLACE)
            self.writes["function " + name] = ("", tables)
            if other:
                self.functions[name] = other

    def _follow_tables(self, body: str) -> None:
        """Before DDL changes a table's columns or name: its definition in the backup is
        read first (or, for a table the DDL creates or drops, no longer needed)."""
        if c := _CREATE_TABLE.match(body):
            self.known.add(_unquote(c["name"]).lower())
            if c["like"]:
                self._ensure(_unquote(c["like"]).lower())
        elif a := _ALTER_TABLE.match(body):
            self._ensure(_unquote(a["name"]).lower())
            if r := _ALTER_TABLE_RENAME.match(body):
                self.known.add(_unquote(r["new"]).lower())
        elif r := _RENAME_TABLE.match(body):
            for p in _RENAME_PAIR.finditer(r["list"]):
                self._ensure(_unquote(p["old"]).lower())
                self.known.add(_unquote(p["new"]).lower())
        elif d := _DROP_TABLES.match(body):
            self.known |= {_unquote(x["name"]).lower() for x in _LISTED.finditer(d["list"])}

    def _learn_event(self, e: re.Match[str]) -> None:
        name, verb = _unquote(e["name"]).lower(), e["verb"].upper()
        head = re.split(r"\bDO\b", e["rest"], maxsplit=1, flags=re.I)[0]
        if verb == "DROP":
            self.events.pop(name, None)
            return
        if verb == "ALTER" and (r := re.search(rf"\bRENAME\s+TO\s+(?:{_IDENT}\s*\.\s*)?"
                                               rf"(?P<new>{_IDENT})", head, re.I)):  # fmt: skip
            self.events[_unquote(r["new"]).lower()] = self.events.pop(name, True)
            name = _unquote(r["new"]).lower()
        if re.search(r"\bDISABLE\b", head, re.I):
            self.events[name] = False
        elif verb == "CREATE" or re.search(r"\bENABLE\b", head, re.I):
            self.events[name] = True
        if self.events.get(name, True):
            self.events_enabled.add(name)

    def _dropped(self, gone: set[str]) -> None:
        """Tables dropped: their triggers went with them."""
        for table in gone:
            self.defaults.pop(table, None)
        for key, (table, _tables) in list(self.writes.items()):
            if key.startswith("trigger ") and table in gone:
                del self.writes[key]
                self.triggers.pop(key[8:], None)
                self.unrepeat.pop(key, None)

    def _renamed(self, m: re.Match[str], source_db: str) -> None:
        """A table or view renamed within the source: its triggers go with it."""
        if m["db"] and _unquote(m["db"]).lower() != source_db.lower():
            return  # moved out of the source: refused (unsafe_statement)
        old, new = _unquote(m["old"]).lower(), _unquote(m["new"]).lower()
        if old in self.defaults:
            self.defaults[new] = self.defaults.pop(old)
        for name, (table, other) in list(self.triggers.items()):
            if table == old:
                self.triggers[name] = (new, other)
        for key, (table, tables) in list(self.writes.items()):
            if key.startswith("trigger ") and table == old:
                self.writes[key] = (new, tables)
            elif key == "view " + old:
                del self.writes[key]
                self.writes["view " + new] = (new, tables)
        if old in self.views:
            self.views[new] = self.views.pop(old)

    def _learn_view(self, name: str, select: str, source_db: str) -> None:
        """A view writes the tables of its FROM clause (an INSERT, UPDATE or DELETE
        through it changes one of them): the source's, or another database's."""
        m = _VIEW_FROM.search(select)
        refs = [(_unquote(r["db"] or source_db), _unquote(r["table"]).lower())
                for r in _FROM_TABLE.finditer(m["refs"].strip())] if m else []  # fmt: skip
        self.views.pop(name, None)
        self.writes["view " + name] = (name, frozenset(
            t for d, t in refs if d.lower() == source_db.lower()))  # fmt: skip
        if other := next((d for d, _ in refs if d.lower() != source_db.lower()), ""):
            self.views[name] = other

    def reads_other(self, query: str, sql_mode: int = 0, source_db: str = "") -> str:
        """Why the statement-format ``query`` reads another database's table (or the
        source's view of one), whose rows a replay reads as they are on the target then,
        not as the source read them ("" when it does not)."""
        text = _statement(query, sql_mode)
        if not (_DML.match(text) or _CREATE_SELECT.match(text) or _CTE_DML.match(text)):
            return ""
        why = (
            "logged in statement format, it {what}: replayed, it reads {where} as it is on "
            "the target server then, not as the source read it (the copy would differ from "
            "the source; binlog_format=ROW logs its rows)"
        )
        declared = {source_db.lower()} | {
            _unquote(x).lower()
            for m in (*_DECLARED.finditer(text), *(x for r in _ALIASED for x in r.finditer(text)))
            for x in m.groups()
            if x
        }
        for m in _PAIR.finditer(text):
            db = _unquote(m["db"])
            if (
                db.isdigit()
                or db.lower() in declared
                or _FUNC_AFTER.match(text, m.end())
                or text[max(0, m.start() - 1) : m.start()] in ("@", ".")  # @@session.x
            ):
                continue
            table = _unquote(text[m.start() : m.end()].split(".", 1)[1].strip())
            if _SEQ_TABLE.fullmatch(table):
                continue  # the Sequence engine's seq_1_to_N: the same everywhere
            name = f"{db}.{table}"
            return why.format(what=f"reads {name}", where="that table")
        words = {w.lower() for w in re.findall(r"[\w$]+", text)}
        words |= {_unquote(q).lower() for q in _QUOTED_NAME.findall(text)}
        for view, other in self.views.items():
            if view in words:
                return why.format(
                    what=f"reads view {view}, whose table is in another database ({other})",
                    where="that table",
                )
        return ""

    def fired_by(self, query: str, sql_mode: int = 0, source_db: str = "") -> str:
        """Why replaying the statement ``query`` would write another database, or ""."""
        text = _statement(query, sql_mode)
        if not (self.triggers or self.functions or self.views or self.unrepeat) or not (
            _CALLS.match(text)
        ):
            return ""
        # the function as written (a DML statement), or as the server logs a SELECT, SET
        # or DO that calls it: SELECT `db`.`f`(...)
        dml = bool(_DML.match(text))
        called = {
            _unquote(m["name"]).lower()
            for m in _FUNC_CALL.finditer(text)
            if dml or m["db"]
        }
        # the tables the statement may write, with those its functions' and the fired
        # triggers' bodies write, and so on
        words = {w.lower() for w in re.findall(r"[\w$]+", text)} if dml else set()
        if dml:  # a name with a blank or another character is one word too
            words |= {_unquote(q).lower() for q in _QUOTED_NAME.findall(text)}
        # what it surely writes: its target, a view's tables through it, and so on
        written = _written(text, source_db) if dml else set()
        for func in called:
            written |= self.writes.get("function " + func, ("", frozenset()))[1]
        grown = True
        while grown:
            grown = False
            for key, (table, tables) in self.writes.items():
                kind = key.split(" ", 1)[0]
                fires = table in words or table in written if kind == "trigger" else (
                    kind == "view" and table in written)  # fmt: skip
                if fires and not tables <= written:
                    written |= tables
                    grown = True
        words |= written
        for view, other in self.views.items():
            if view in written:
                return (
                    f"it writes view {view}, whose table is in another database ({other}): "
                    "replayed as a statement, it would write there again"
                )
        for trigger, (table, other) in self.triggers.items():
            if table in words:
                return (
                    f"it fires trigger {trigger} (on {table}), which writes another database "
                    f"({other}): replayed as a statement, it would write there again"
                )
        for func, other in self.functions.items():
            if func in called:
                return (
                    f"it calls function {func}, which writes another database ({other}): "
                    "replayed as a statement, it would write there again"
                )
        for key, uses in self.unrepeat.items():
            kind, name = key.split(" ", 1)
            if (kind == "trigger" and self.writes.get(key, ("", ""))[0] in words) or (
                kind == "function" and name in called
            ):
                what = "fires trigger" if kind == "trigger" else "calls function"
                return (
                    f"logged in statement format, it {what} {name}, which uses {uses}, whose "
                    "value a replay does not repeat (the copy would differ from the source; "
                    "binlog_format MIXED or ROW logs its rows)"
                )
        return ""


#: ``CREATE TABLE t (`` or ``CREATE TABLE t LIKE s`` (masked).
_CREATE_TABLE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})\s*(?:(?P<open>\()\s*(?:LIKE\s+)?|LIKE\s+)"
    rf"(?:(?:{_IDENT}\s*\.\s*)?(?P<like>{_IDENT})\s*\)?\s*$)?",
    re.I | re.S,
)
_ALTER_TABLE = re.compile(
    r"^\s*ALTER\s+(?:(?:ONLINE|IGNORE)\s+)*TABLE\s+(?:IF\s+EXISTS\s+)?"
    rf"(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})\s*(?P<rest>.*)$",
    re.I | re.S,
)
#: what a part of a table's column list that is not a column starts with
_NOT_A_COLUMN = re.compile(
    r"(?:PRIMARY|KEY|INDEX|UNIQUE|CONSTRAINT|FOREIGN|CHECK|FULLTEXT|SPATIAL|PERIOD)\b", re.I
)
_NAME = re.compile(_IDENT)
_DEFAULT_WORD = re.compile(r"(?<![\w$`.@])DEFAULT\b", re.I)
_ALTER_CLAUSE = re.compile(
    r"(?P<verb>ADD|MODIFY|CHANGE|ALTER|DROP|RENAME)\s+(?:COLUMN\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    r"(?P<rest>.*)$",
    re.I | re.S,
)


def _split_top(text: str) -> list[str]:
    """``text`` cut at its commas outside parentheses (masked text: no strings)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _closing(text: str, at: int) -> int:
    """The index of the ``)`` closing the ``(`` at ``at`` (or the end)."""
    depth = 0
    for i in range(at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def _column_default(definition: str) -> tuple[str, str]:
    """(column, the function of its DEFAULT a replay does not repeat, or "") of a column
    definition ``name type ... DEFAULT expr ...``; ("", "") when it is not a column's."""
    d = definition.strip()
    if _NOT_A_COLUMN.match(d):
        return "", ""
    m = _NAME.match(d)
    if not m:
        return "", ""
    default = _DEFAULT_WORD.search(d, m.end())
    func = _UNREPEATABLE.search(_default_expression(d, default.end())) if default else None
    if not func and re.search(r"\bAUTO_INCREMENT\b", d[m.end() :], re.I):
        return _unquote(m[0]).lower(), AUTO_INCREMENT
    return _unquote(m[0]).lower(), _function(func) if func else ""


#: what :attr:`Elsewhere.defaults` holds for an AUTO_INCREMENT column (its values replay
#: exactly, the log holds them; but not which row a statement's SELECT gave each one)
AUTO_INCREMENT = "AUTO_INCREMENT"


_DEFAULT_TERM = re.compile(r"\s*(?:[\w$.]+(?:\s*\((?:[^()]|\([^()]*\))*\))?|''|\S+)")


def _default_expression(text: str, at: int) -> str:
    """The expression of the ``DEFAULT`` that ends at ``at`` (``(uuid())``, ``uuid()``,
    ``''``, ``5``), not the rest of the column's definition (``REFERENCES user (id)``)."""
    rest = text[at:].lstrip()
    if rest.startswith("("):
        return rest[: _closing(rest, 0) + 1]
    m = _DEFAULT_TERM.match(rest)
    return m[0] if m else ""


def _learn_defaults(defaults: dict[str, dict[str, str]], body: str) -> None:
    """Follow a (masked) CREATE TABLE or ALTER TABLE's columns with such a default."""
    if c := _CREATE_TABLE.match(body):
        name = _unquote(c["name"]).lower()
        defaults.pop(name, None)
        if c["like"]:
            if got := defaults.get(_unquote(c["like"]).lower()):
                defaults[name] = dict(got)
            return
        cols = {}
        for part in _split_top(body[c.start("open") + 1 : _closing(body, c.start("open"))]):
            col, func = _column_default(part)
            if func:
                cols[col] = func
        if cols:
            defaults[name] = cols
        return
    a = _ALTER_TABLE.match(body)
    if not a:
        return
    table = _unquote(a["name"]).lower()
    cols = defaults.setdefault(table, {})
    for part in _split_top(a["rest"]):
        m = _ALTER_CLAUSE.match(part.strip())
        if not m:
            continue
        verb, rest = m["verb"].upper(), m["rest"].strip()
        if verb in ("ADD", "MODIFY") and not _NOT_A_COLUMN.match(rest):
            # ADD (a ..., b ...) or one column
            inner = _split_top(rest[1 : _closing(rest, 0)]) if rest.startswith("(") else [rest]
            for d in inner:
                col, func = _column_default(d)
                cols.pop(col, None)
                if func:
                    cols[col] = func
        elif verb == "CHANGE" and (old := _NAME.match(rest)):
            cols.pop(_unquote(old[0]).lower(), None)
            col, func = _column_default(rest[old.end() :])
            if func:
                cols[col] = func
        elif verb == "ALTER" and (n := _NAME.match(rest)):
            col = _unquote(n[0]).lower()
            after = rest[n.end() :]
            if re.match(r"\s*DROP\s+DEFAULT\b", after, re.I):
                cols.pop(col, None)
            elif sd := re.match(r"\s*SET\s+DEFAULT\b", after, re.I):
                cols.pop(col, None)
                if f := _UNREPEATABLE.search(_default_expression(after, sd.end())):
                    cols[col] = _function(f)
        elif verb == "DROP" and not re.match(
            r"(?:PRIMARY|KEY|INDEX|FOREIGN|CONSTRAINT|CHECK|PARTITION|SYSTEM|PERIOD)\b", rest, re.I
        ) and (n := _NAME.match(rest)):
            cols.pop(_unquote(n[0]).lower(), None)
        elif (
            verb == "RENAME"  # RENAME [COLUMN] a TO b (not an index's, a key's)
            and (r := re.match(rf"(?P<old>{_IDENT})\s+TO\s+(?P<new>{_IDENT})", rest, re.I))
            and (old_col := _unquote(r["old"]).lower()) in cols
        ):
            cols[_unquote(r["new"]).lower()] = cols.pop(old_col)
    if not cols:
        defaults.pop(table, None)


_ALTER_ADDS = re.compile(r"^\s*ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<rest>.*)$",
                         re.I | re.S)  # fmt: skip
#: ``INSERT INTO t SET a = 1, b = 2``: the columns it sets
_SET_COLUMN = re.compile(rf"(?:^|,)\s*(?:{_IDENT}\s*\.\s*)?(?P<col>{_IDENT})\s*=")


def _default_used(defaults: dict[str, dict[str, str]], text: str, source_db: str) -> str:
    if a := _ALTER_TABLE.match(text):
        for part in _split_top(a["rest"]):
            m = _ALTER_ADDS.match(part.strip())
            if not m or _NOT_A_COLUMN.match(m["rest"]):
                continue
            rest = m["rest"].strip()
            for d in _split_top(rest[1 : _closing(rest, 0)]) if rest.startswith("(") else [rest]:
                col, func = _column_default(d)
                if func and func != AUTO_INCREMENT:
                    return (
                        f"logged in statement format (as every ALTER is, whatever "
                        f"binlog_format says), it adds column {_unquote(a['name'])}.{col} "
                        f"with DEFAULT {func}, which fills the existing rows with values a "
                        "replay does not repeat"
                    )
        return ""
    if not defaults or not _DML.match(text):
        return ""
    said_default = _DEFAULT_WORD.search(text) is not None
    if w := _WRITE_TARGET.match(text):
        if w["db"] and source_db and _unquote(w["db"]).lower() != source_db.lower():
            return ""
        table = _unquote(w["table"]).lower()
        known = defaults.get(table, {})
        cols = {c: f for c, f in known.items() if f != AUTO_INCREMENT}
        auto = [c for c, f in known.items() if f == AUTO_INCREMENT]
        if not known:
            return ""
        rest = text[w.end() :].lstrip()
        named: set[str] | None = None  # None: every column
        load = re.match(r"\s*(?:/\*.*?\*/\s*)*LOAD\b", text, re.I | re.S) is not None
        if load:
            named = set()
            for g in re.finditer(r"\(", rest):
                named |= {_unquote(x[0]).lower() for x in _NAME.finditer(
                    rest[g.start() + 1 : _closing(rest, g.start())])}  # fmt: skip
            if s := re.search(r"\bSET\b(?P<a>.*)$", rest, re.I | re.S):
                named |= {_unquote(x["col"]).lower() for x in _SET_COLUMN.finditer(s["a"])}
        else:
            rest = re.sub(r"^PARTITION\s*\([^)]*\)\s*", "", rest, flags=re.I)
            if rest.startswith("(") and not re.match(r"\(\s*(?:SELECT|WITH|VALUES)\b", rest, re.I):
                named = {_unquote(x[0]).lower() for x in _NAME.finditer(
                    rest[1 : _closing(rest, 0)])}  # fmt: skip
            elif s := re.match(r"SET\b(?P<a>.*?)(?:\bON\s+DUPLICATE\b|$)", rest, re.I | re.S):
                named = {_unquote(x["col"]).lower() for x in _SET_COLUMN.finditer(s["a"])}
        select = re.match(r"(?:\([^)]*\)\s*)?\(?\s*(?:SELECT|WITH)\b", rest, re.I)
        top = _top_level(rest)
        if (
            not load
            and auto
            and select
            and named is not None
            and auto[0] not in named
            and re.search(r"\bFROM\b", top, re.I)
            and not re.search(r"\bORDER\s+BY\b", top, re.I)
        ):
            return (
                f"logged in statement format, it gives the rows its SELECT reads values of "
                f"{table}.{auto[0]} (AUTO_INCREMENT) in the order it reads them, which a "
                "replay may not repeat (the copy's rows lie in another order; binlog_format "
                "MIXED or ROW logs its rows)"
            )
        missing = [c for c in cols if named is not None and c not in named]
        if not cols or not (missing or said_default):
            return ""
        col = (missing or list(cols))[0]
    elif _UPDATE_DELETE.match(text):  # UPDATE t SET u = DEFAULT
        if not said_default or not text.lstrip().upper().startswith(("UPDATE", "WITH")):
            return ""
        hit = [(t, c) for t in _written(text, source_db)
               for c, f in defaults.get(t, {}).items() if f != AUTO_INCREMENT]  # fmt: skip
        if not hit:
            return ""
        table, col = hit[0]
    else:
        return ""
    return (
        f"logged in statement format, it lets column {table}.{col} (DEFAULT "
        f"{defaults[table][col]}) take its default, whose value a replay does not repeat "
        "(the copy would differ from the source; binlog_format MIXED or ROW logs its rows)"
    )


#: ``CREATE``/``ALTER``/``DROP EVENT`` (as logged, and as SHOW CREATE EVENT gives it).
_EVENT_DDL = re.compile(
    rf"^\s*(?P<verb>CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?(?:{_DEFINER})?EVENT\s+"
    rf"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})(?P<rest>.*)$",
    re.I | re.S,
)

#: ``WITH … UPDATE|DELETE|INSERT`` (the CTE before the write).
_CTE_DML = re.compile(r"^\s*WITH\b.*?\b(?:INSERT|REPLACE|UPDATE|DELETE)\b", re.I | re.S)
#: names a statement declares besides its tables: a derived table's or a CTE's
#: (``(SELECT …) AS s``, ``WITH c AS (``, ``, d AS (``), a column alias, the table an
#: UPDATE or INSERT writes and its alias
_ALIASED = (
    re.compile(rf"\)\s*(?:AS\s+)?(?P<a>{_IDENT})", re.I),
    re.compile(rf"\bAS\s+(?P<b>{_IDENT})", re.I),
    re.compile(
        rf"(?:\bWITH\s+(?:RECURSIVE\s+)?|,\s*)(?P<c>{_IDENT})\s*(?:\([^)]*\)\s*)?AS\s*\(", re.I
    ),
    re.compile(
        rf"\b(?:UPDATE|INTO|TABLE)\s+(?:(?:LOW_PRIORITY|IGNORE)\s+)*(?:{_IDENT}\s*\.\s*)?"
        rf"(?P<d>{_IDENT})(?:\s+(?:AS\s+)?{_KEYWORD}(?P<e>{_IDENT}))?",
        re.I,
    ),
)
_FUNC_AFTER = re.compile(r"\s*\(")  # db.f( : a function (its own check)
_SEQ_TABLE = re.compile(r"seq_\d+_to_\d+(?:_step_\d+)?", re.I)
_CREATE_TEMPORARY = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TEMPORARY\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})",
    re.I,
)
_DROP_TABLES = re.compile(
    r"^\s*DROP\s+(?:TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?(?P<list>.*)$", re.I | re.S
)
_LISTED = re.compile(rf"(?:^|,)\s*(?:{_IDENT}\s*\.\s*)?(?P<name>{_IDENT})")


def temporary_tables(query: str, sql_mode: int = 0) -> tuple[str, list[str]]:
    """The temporary table a statement creates ("" for none), and the tables it drops
    (``DROP [TEMPORARY] TABLE a, b``; the server's own ``DROP /*!40005 TEMPORARY */
    TABLE IF EXISTS`` at a session's end), lowercased, without their database."""
    text = _statement(query, sql_mode)
    if m := _CREATE_TEMPORARY.match(text):
        return _unquote(m["name"]).lower(), []
    if m := _DROP_TABLES.match(text):
        return "", [_unquote(x["name"]).lower() for x in _LISTED.finditer(m["list"])]
    return "", []


def check_names(source_db: str, target_db: str) -> None:
    """Refuse names ``mariadb-binlog --rewrite-db=SRC->DST`` cannot carry: ``->`` in either
    (its own syntax), and, when the names differ, a blank in the target (it cuts the new
    name at the first one: restored into ``moodle copy``, the events would go to
    ``moodle``).

    :raises ConfigError: naming the problem and a name that would do.
    """
    if "->" in source_db or "->" in target_db:
        raise ConfigError(
            f"the binary log cannot be replayed into {target_db!r} from {source_db!r}: a "
            "database name containing '->' is mariadb-binlog's rename syntax",
            hint="restore into a name without '->'",
        )
    if target_db != source_db and any(ch.isspace() for ch in target_db):
        cut = (target_db.split() or [""])[0]
        raise ConfigError(
            f"the binary log cannot be replayed into {target_db!r}: mariadb-binlog "
            f"--rewrite-db cuts a new database name at its first blank (the events of "
            f"{source_db!r} would go to {cut!r})",
            hint="restore into a name without blanks (spaces, tabs)",
        )
