"""Moodle's ``config.php`` read without PHP: text in, :class:`MoodleConfig` out (pure).

A Moodle site keeps its database settings in ``config.php`` (the shape of Moodle's
``config-dist.php``)::

    <?php  // Moodle configuration file
    unset($CFG);
    global $CFG;
    $CFG = new stdClass();
    $CFG->dbtype    = 'mariadb';
    $CFG->dbhost    = 'db.example.org';
    $CFG->dbname    = 'moodle';
    $CFG->dbuser    = 'moodle';
    $CFG->dbpass    = 'secret';
    $CFG->prefix    = 'mdl_';
    $CFG->dboptions = array('dbport' => 3306, 'dbsocket' => '');
    $CFG->wwwroot   = 'https://moodle.example.org';
    $CFG->dataroot  = '/var/moodledata';
    require_once(__DIR__ . '/lib/setup.php');

:func:`parse_moodle_config` reads the statements that assign a literal to one of the
settings moodump uses (:data:`KEYS`): single- and double-quoted strings with PHP's
escapes, numbers, ``true``/``false``/``null``, ``array(...)`` and ``[...]`` (with
``'dbport' => ...`` pairs), and ``$CFG->dboptions['dbport'] = ...``. Comments (``//``,
``#``, ``/* */``) and every other statement are skipped. The last assignment wins, as
in PHP.

``getenv('NAME')`` is the one call it evaluates, deliberately: it is read from the
environment mapping the caller passes (moodump's own environment), for containers where
Moodle and moodump get the same variables. Anything else (a concatenation, a variable,
a constant, another call, a double-quoted string with a variable in it, an assignment
inside ``if``/a block, ``getenv`` of a variable that is not set) is *unreadable*: the
key is kept with the line and the reason, and :meth:`MoodleConfig.value` raises a
:class:`~moodump.errors.ConfigError` naming the file, the line and the key when (and
only when) moodump needs that value, so a value overridden by a flag or an environment
variable never gets in the way.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moodump.errors import ConfigError

#: The ``$CFG`` settings moodump reads.
KEYS = ("dbtype", "dbhost", "dbname", "dbuser", "dbpass", "prefix", "dataroot", "wwwroot",
        "dboptions")  # fmt: skip
#: ``dbtype`` values of the MySQL family (Moodle's drivers for MySQL, MariaDB, Aurora).
MYSQL_TYPES = ("mysqli", "mariadb", "auroramysql")


@dataclass(frozen=True)
class Unreadable:
    """A value that cannot be known without running PHP: where, and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class MoodleConfig:
    """The settings of one ``config.php``: each key's value (str, int, bool, None, a dict
    for ``dboptions``) or an :class:`Unreadable`, and the line that set it."""

    path: str
    values: Mapping[str, Any] = field(default_factory=dict, repr=False)
    lines: Mapping[str, int] = field(default_factory=dict)

    def has(self, key: str, sub: str | None = None) -> bool:
        """True when config.php sets ``key`` (``dboptions[sub]``), readable or not."""
        if key not in self.values:
            return False
        if sub is None:
            return True
        opts = self.values[key]
        return isinstance(opts, Unreadable) or (isinstance(opts, dict) and sub in opts)

    def value(self, key: str, sub: str | None = None, *, override: str = "") -> Any:
        """The value of ``$CFG->key`` (or ``$CFG->key['sub']``); None when not set.

        :param override: what the operator can set instead (named in the error).
        :raises ConfigError: the value is unreadable (names the file, line and key).
        """
        name = f"$CFG->{key}" + (f"['{sub}']" if sub else "")
        value = self.values.get(key)
        if sub is not None and isinstance(value, dict):
            value = value.get(sub)
        elif sub is not None and not isinstance(value, Unreadable):
            value = None
        if isinstance(value, Unreadable):
            instead = f", or set {override} (it wins over config.php)" if override else ""
            raise ConfigError(
                f"{self.path}:{value.line}: {name} cannot be read without running PHP: "
                f"it is {value.reason}",
                hint=f"write it as a plain quoted string in {self.path}{instead}",
            )
        return value

    def text(self, key: str, sub: str | None = None, *, override: str = "") -> str | None:
        """:meth:`value` as text (a number becomes its digits; None, '' and false: None)."""
        value = self.value(key, sub, override=override)
        if value is None or value is False or value == "":
            return None
        if value is True:
            return "1"
        if isinstance(value, dict):
            raise ConfigError(
                f"{self.path}:{self.lines.get(key, 0)}: $CFG->{key} is an array, not a value",
                hint=f"fix {self.path}",
            )
        return str(value)

    def check_engine(self) -> str:
        """The ``dbtype``, which must be one of :data:`MYSQL_TYPES`."""
        dbtype = self.text("dbtype")
        if dbtype is None:
            raise ConfigError(
                f"{self.path} sets no $CFG->dbtype",
                hint="point --moodle-config / MOODLE_CONFIG at the site's config.php",
            )
        if dbtype == "pgsql":
            raise ConfigError(
                f"{self.path}:{self.lines['dbtype']}: $CFG->dbtype is 'pgsql': moodump backs "
                "up MySQL and MariaDB sites; PostgreSQL sites are not handled yet",
                hint="back up a PostgreSQL site with pg_dump",
            )
        if dbtype not in MYSQL_TYPES:
            raise ConfigError(
                f"{self.path}:{self.lines['dbtype']}: $CFG->dbtype is {dbtype!r}: moodump "
                f"backs up {', '.join(MYSQL_TYPES)} sites only",
                hint="use the database vendor's own backup tool for this site",
            )
        return dbtype

    def port(self) -> int | None:
        """``dboptions['dbport']`` as a number; None for Moodle's default ('' or 0)."""
        text = self.text("dboptions", "dbport", override="--port or MYSQL_TCP_PORT")
        if text is None or text == "0":
            return None
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ConfigError(
                f"{self.path}:{self.lines.get('dboptions', 0)}: $CFG->dboptions['dbport'] "
                f"{text!r} is not a port number",
                hint=f"fix {self.path}, or set --port / MYSQL_TCP_PORT",
            )
        return int(text)

    def socket(self) -> str | None:
        """``dboptions['dbsocket']`` when it is a path (``true`` means PHP's default
        socket, whose path only PHP knows: None, the host is used)."""
        value = self.value("dboptions", "dbsocket", override="--socket")
        if isinstance(value, str) and value not in ("", "0", "1"):
            return value
        return None


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<open><\?php\b|<\?=?)
  | (?P<close>\?>)
  | (?P<comment>(?://|\#)[^\n]*?(?=\n|\?>|$)|/\*.*?(?:\*/|$))
  | (?P<sq>'(?:[^'\\]|\\.)*')
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|(?:\d[\d_]*)?\.\d[\d_]*(?:[eE][+-]?\d+)?|\d[\d_]*(?:[eE][+-]?\d+)?)
  | (?P<var>\$[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)
  | (?P<name>\\?[A-Za-z_\x80-\uffff][\w\x80-\uffff]*(?:\\[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)*)
  | (?P<op>->|=>|::|\?\?=?|\?:|===|!==|==|!=|<=|>=|\.=|\+=|-=|\*=|/=|&&|\|\||<<<|.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # sq dq num var name op
    text: str
    line: int


def _tokens(text: str) -> list[_Tok]:
    """PHP tokens of the code (comments and whitespace dropped; text after ``?>`` too)."""
    out: list[_Tok] = []
    pos, line = 0, 1
    in_php = False
    while pos < len(text):
        if not in_php:
            start = text.find("<?php", pos)
            if start < 0:
                break
            line += text.count("\n", pos, start)
            pos, in_php = start + 5, True
            continue
        m = _TOKEN.match(text, pos)
        if m is None:  # an unterminated string: the rest is one unreadable token
            out.append(_Tok("op", text[pos], line))
            break
        kind = m.lastgroup or "op"
        chunk = m.group()
        if kind == "close":
            in_php = False
        elif kind not in ("ws", "comment", "open"):
            out.append(_Tok(kind, chunk, line))
        line += chunk.count("\n")
        pos = m.end()
    return out


_SQ_ESCAPE = re.compile(r"\\([\\'])")
_DQ_ESCAPE = re.compile(r"\\(u\{[0-9A-Fa-f]+\}|x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|[nrtvef\\$\"])")
_DQ_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "v": "\v", "e": "\x1b", "f": "\f",
              "\\": "\\", "$": "$", '"': '"'}  # fmt: skip
_INTERPOLATION = re.compile(r"(?<!\\)(?:\\\\)*(\$[A-Za-z_{]|\{\$)")


def _dq(body: str) -> str:
    def sub(m: re.Match[str]) -> str:
        e = m[1]
        if e in _DQ_SIMPLE:
            return _DQ_SIMPLE[e]
        if e[0] == "u":
            return chr(int(e[2:-1], 16))
        if e[0] == "x":
            return chr(int(e[1:], 16))
        return chr(int(e, 8) & 0xFF)

    return _DQ_ESCAPE.sub(sub, body)


class _Unknown(Exception):
    """An expression that needs PHP to evaluate (the message says what it is)."""


class _Expr:
    """Evaluates one right-hand side: literals, arrays, ``getenv('X')``."""

    def __init__(self, toks: list[_Tok], env: Mapping[str, str] | None) -> None:
        self.toks = toks
        self.i = 0
        self.env = env

    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise _Unknown("an incomplete expression")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise _Unknown(
                f"an expression PHP would have to evaluate ({tok.text!r} instead of {text!r})"
            )

    def whole(self) -> Any:
        value = self.item()
        tok = self.peek()
        if tok is not None:
            raise _Unknown(_what_follows(tok))
        return value

    def item(self) -> Any:
        """One value; inside an array an unreadable element becomes an Unreadable."""
        tok = self.take()
        low = tok.text.lower()
        if tok.kind == "sq":
            return _SQ_ESCAPE.sub(r"\1", tok.text[1:-1])
        if tok.kind == "dq":
            body = tok.text[1:-1]
            m = _INTERPOLATION.search(body)
            if m:
                raise _Unknown(f"a double-quoted string with a variable in it ({m[1]}...)")
            return _dq(body)
        if tok.kind == "num":
            return _number(tok.text)
        if tok.text == "-" and (nxt := self.peek()) is not None and nxt.kind == "num":
            self.i += 1
            return -_number(nxt.text)
        if tok.kind == "name" and low in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[low]
        if tok.kind == "name" and low == "array" and (nxt := self.peek()) and nxt.text == "(":
            self.i += 1
            return self.array(")")
        if tok.text == "[":
            return self.array("]")
        if tok.kind == "name" and low == "getenv":
            return self.getenv()
        if tok.kind == "var":
            raise _Unknown(f"the variable {tok.text}")
        if tok.kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt.text == "(":
                raise _Unknown(f"a call to {tok.text}()")
            raise _Unknown(f"the constant {tok.text}")
        if tok.text == "<<<":
            raise _Unknown("a heredoc")
        raise _Unknown(f"an expression PHP would have to evaluate (it starts with {tok.text!r})")

    def array(self, end: str) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        index = 0
        while True:
            tok = self.peek()
            if tok is None:
                raise _Unknown("an unterminated array")
            if tok.text == end:
                self.i += 1
                return out
            start = self.i
            key: Any = None
            try:
                first = self.item()
                nxt = self.peek()
                if nxt is not None and nxt.text == "=>":
                    if not isinstance(first, (str, int)):
                        raise _Unknown("an array key that is not a string or number")
                    key = first
                    self.i += 1
                else:
                    self.i = start
            except _Unknown:
                self.i = start
            if key is None:
                key = index
            if isinstance(key, int):
                index = key + 1
            out[key] = self.element(end)
            sep = self.take()
            if sep.text == end:
                return out
            if sep.text != ",":
                raise _Unknown(_what_follows(sep))

    def element(self, end: str) -> Any:
        """An array element's value; an unreadable one is kept as :class:`Unreadable`
        (up to the next ``,`` or the end) so the rest of the array stays readable."""
        start = self.i
        try:
            value = self.item()
            nxt = self.peek()
            if nxt is not None and nxt.text not in (",", end):
                raise _Unknown(_what_follows(nxt))
            return value
        except _Unknown as exc:
            self.i = start
            depth = 0
            while (tok := self.peek()) is not None:
                if tok.text in ("(", "["):
                    depth += 1
                elif tok.text in (")", "]"):
                    if depth == 0:
                        break
                    depth -= 1
                elif tok.text == "," and depth == 0:
                    break
                self.i += 1
            at = self.toks[min(start, len(self.toks) - 1)] if self.toks else None
            return Unreadable(at.line if at else 0, str(exc))

    def getenv(self) -> str:
        self.expect("(")
        tok = self.take()
        if tok.kind not in ("sq", "dq"):
            raise _Unknown("getenv() of something that is not a quoted name")
        name = tok.text[1:-1]
        self.expect(")")
        if self.env is None:
            raise _Unknown(f"getenv('{name}') (environment not read)")
        if name not in self.env:
            raise _Unknown(f"getenv('{name}') and {name} is not set in moodump's environment")
        return self.env[name]


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    low = t.lower()
    if low.startswith("0x"):
        return int(low, 16)
    if low.startswith("0b"):
        return int(low, 2)
    if any(c in low for c in ".e"):
        return float(t)
    if len(t) > 1 and t.startswith("0"):
        return int(t, 8)
    return int(t)


def _what_follows(tok: _Tok) -> str:
    if tok.text == ".":
        return "a concatenation (.)"
    if tok.text in ("?:", "??", "?"):
        return f"a conditional expression ({tok.text})"
    return f"an expression PHP would have to evaluate ({tok.text!r})"


# --------------------------------------------------------------------------- statements


def _statements(toks: list[_Tok]) -> list[tuple[list[_Tok], bool]]:
    """The statements, each with True when it sits inside a ``{...}`` block or follows a
    control keyword (``if (...) $CFG->x = ...;``): PHP may or may not run it."""
    out: list[tuple[list[_Tok], bool]] = []
    cur: list[_Tok] = []
    depth = 0  # ( and [
    braces = 0
    for tok in toks:
        if tok.text in ("(", "["):
            depth += 1
        elif tok.text in (")", "]"):
            depth = max(0, depth - 1)
        if depth == 0 and tok.text in (";", "{", "}"):
            if cur:
                out.append((cur, braces > 0))
            cur = []
            if tok.text == "{":
                braces += 1
            elif tok.text == "}":
                braces = max(0, braces - 1)
            continue
        cur.append(tok)
    if cur:
        out.append((cur, braces > 0))
    return out


_CONTROL = {"if", "elseif", "else", "while", "for", "foreach", "switch", "case", "default", "do"}


def parse_moodle_config(
    text: str, path: str = "config.php", env: Mapping[str, str] | None = None
) -> MoodleConfig:
    """The :data:`KEYS` that ``text`` (a config.php) assigns; pure (see the module).

    :param path: the file's name, for messages.
    :param env: the environment ``getenv('X')`` reads; None: every getenv is unreadable.
    """
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for stmt, in_block in _statements(_tokens(text)):
        for at in range(len(stmt) - 2):
            tok = stmt[at]
            if not (tok.kind == "var" and tok.text == "$CFG" and stmt[at + 1].text == "->"):
                continue
            key_tok = stmt[at + 2]
            if key_tok.kind != "name" or key_tok.text not in KEYS:
                continue
            rest = stmt[at + 3 :]
            sub: str | None = None
            if rest and rest[0].text == "[":
                sub = ""  # a computed key: the element is unknown
                if len(rest) >= 3 and rest[1].kind in ("sq", "dq") and rest[2].text == "]":
                    with contextlib.suppress(_Unknown):
                        sub = str(_Expr([rest[1]], None).item())
                rest = rest[3:] if sub else rest[1:]
                while rest and rest[0].text != "=" and sub == "":
                    rest = rest[1:]
            if not rest or rest[0].text not in ("=", ".=", "??="):
                continue  # read, not assigned
            key, line = key_tok.text, key_tok.line
            first = stmt[0]
            conditional = (
                in_block or at > 0 or (first.kind == "name" and first.text.lower() in _CONTROL)
            )
            value: Any
            if rest[0].text != "=":
                value = Unreadable(line, f"changed with {rest[0].text}")
            elif conditional:
                value = Unreadable(line, "assigned inside a condition or a block (if, function)")
            elif sub == "":
                value = Unreadable(line, "assigned to an array element with a computed key")
            else:
                try:
                    value = _Expr(rest[1:], env).whole()
                except _Unknown as exc:
                    value = Unreadable(line, str(exc))
            if sub:
                old = values.get(key)
                values[key] = {**(old if isinstance(old, dict) else {}), sub: value}
            else:
                values[key] = value
            lines[key] = line
            break
    return MoodleConfig(path, values, lines)
