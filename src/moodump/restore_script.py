"""Write ``restore-with-mariadb.sh`` and ``objects.sql`` into a backup: restore with stock tools.

A moodump backup never *needs* moodump to come back: the script creates the database,
replays the schema files, pipes every data file through ``gzip -dc``/``zstd -dc`` into
``mariadb -e "LOAD DATA LOCAL INFILE '/dev/stdin' ..."`` and finally replays the views,
routines, triggers and events from ``objects.sql`` (each with its own session settings).

Usage (documented in docs/format.md)::

    MYSQL_PWD=... sh restore-with-mariadb.sh TARGET_DB [mariadb client options]
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from moodump.ddl import retarget_trigger, retarget_view
from moodump.formats import RESTORE_MAX_HEAP_TABLE_SIZE, SESSION_SQL_MODE
from moodump.fsmodes import dir_mode, write_bytes, write_text
from moodump.manifest import FileEntry, Manifest

_SESSION = (
    "SET NAMES utf8mb4; SET time_zone = '+00:00'; "
    f"SET sql_mode = '{SESSION_SQL_MODE}'; SET foreign_key_checks = 0; SET unique_checks = 0; "
    "/*M!100201 SET check_constraint_checks = 0 */; SET innodb_strict_mode = 0; "
    "/*M!100108 SET explicit_defaults_for_timestamp = 1 */; "
    f"SET max_heap_table_size = {RESTORE_MAX_HEAP_TABLE_SIZE}; "
    "/*M!101100 SET system_versioning_insert_history = 1 */;"
)


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def database_options(ddl: str) -> str:
    """The ``CHARACTER SET ... COLLATE ...`` part of a CREATE DATABASE statement."""
    m = re.search(r"(DEFAULT CHARACTER SET \S+(?: COLLATE \S+)?)", ddl)
    opts = m.group(1) if m else ""
    m2 = re.search(r"(COMMENT '(?:[^'\\]|\\.|'')*')", ddl)
    if m2:
        opts += " " + m2.group(1)
    return opts.strip()


def sequence_sql(table: str, state: dict[str, int]) -> list[str]:
    """The statements that give a new sequence the state the dump read.

    SETVAL alone never moves a sequence back within a round, so a sequence restarted
    below its START value (ALTER SEQUENCE ... RESTART WITH) would keep START: RESTART
    WITH sets the next value (and round 0), SETVAL then sets the round.
    """
    nxt = int(state["next_not_cached_value"])
    return [
        f"ALTER SEQUENCE {_ident(table)} RESTART WITH {nxt}",
        f"SELECT SETVAL({_ident(table)}, {nxt}, 0, {int(state.get('cycle_count', 0))})",
    ]


def object_session_sql(rec: dict[str, Any]) -> list[str]:
    """The SET statements that must precede one stored object's CREATE."""
    stmts = [
        f"SET character_set_client = {_sql_str(rec['character_set_client'])}",
        f"SET collation_connection = {_sql_str(rec['collation_connection'])}",
        f"SET sql_mode = {_sql_str(rec['sql_mode'])}",
    ]
    if rec.get("time_zone"):
        stmts.append(f"SET time_zone = {_sql_str(rec['time_zone'])}")
    if rec.get("defined_at"):  # an event: the clock of its definition (see StoredObject)
        stmts.append(f"SET timestamp = {int(rec['defined_at'])}")
    return stmts


def retarget_token(records: list[dict[str, Any]]) -> str:
    """A plain identifier that no object's text contains: it stands for the target
    database's name in objects.sql, where :func:`write_objects_sql` retargets."""
    texts = [base64.b64decode(r["create_b64"]) for r in records]
    n = 0
    while True:
        token = f"moodump_target_db_{n}"
        if not any(token.encode() in t for t in texts):
            return token
        n += 1


def write_objects_sql(
    root: Path,
    records: list[dict[str, Any]],
    source: str = "",
    token: str = "",
    database_ddl: str = "",
) -> tuple[bytes, list[tuple[int, int]]]:
    """objects.sql for the mariadb client: DELIMITER blocks, one per object.

    With a ``token``, the trigger headers and view calls that name ``source`` (the ones
    the Python restore retargets: :func:`moodump.ddl.retarget_trigger`,
    :func:`moodump.ddl.retarget_view`) name ``token`` instead, quoted as written; the
    script replaces it with the target database's name.

    Returns the file's bytes and, for each record, the first and last line (from 1) of
    its block, session settings included: the script runs the views one at a time.
    """
    out = bytearray(b"-- views, routines, triggers and events (moodump)\n")
    spans: list[tuple[int, int]] = []
    # The backup's database options, set again after an object created under another
    # collation; without COLLATE (the character set's default), after each such object.
    m = re.search(r"DEFAULT CHARACTER SET (\S+)(?: COLLATE (\S+))?", database_ddl)
    db_options = m.group(0) if m else ""
    db_collation = (m.group(2) or "") if m else ""
    if not db_options:  # nothing to set back: as before
        records = [{**r, "db_collation": ""} for r in records]
    for rec in records:
        first = out.count(b"\n") + 1
        create = base64.b64decode(rec["create_b64"])
        if token:
            charset = rec.get("character_set_client") or "utf8mb4"
            if rec["kind"] == "trigger":
                create = retarget_trigger(create, source, token, charset)
            elif rec["kind"] == "view":
                create = retarget_view(create, source, token, charset)
        delim = b";;"
        while delim in create:
            delim += b";"
        # The database's collation the object was created under (see
        # moodump.restore.objects), then the backup's database options again.
        collation = rec.get("db_collation") or ""
        if collation and collation != db_collation:
            out += f"ALTER DATABASE COLLATE {collation};\n".encode()
        else:
            collation = ""
        for stmt in object_session_sql(rec):
            out += stmt.encode() + b";\n"
        out += b"DELIMITER " + delim + b"\n" + create + delim + b"\nDELIMITER ;\n"
        out += b"SET NAMES utf8mb4; SET timestamp = DEFAULT;\n"
        if collation:
            out += f"ALTER DATABASE {db_options};\n".encode()
        spans.append((first, out.count(b"\n")))
    data = bytes(out)
    write_bytes(root / "objects.sql", data)
    return data, spans


_VIEWS_SH = r"""# Views one at a time, retried while others appear (one may read a view created after
# it); one that still fails (a table of another database that is not on this server) is
# skipped with a warning, as moodump restore does, and the rest is restored.
pending=@PENDING@
while [ -n "$pending" ]; do
  failed=
  for v in $pending; do
    part "${v%,*}" "${v#*,}" | run "$@" -D "$db" 2>/dev/null || failed="$failed${failed:+ }$v"
  done
  if [ "$failed" = "$pending" ]; then
    for v in $failed; do
      err=$(part "${v%,*}" "${v#*,}" | run "$@" -D "$db" 2>&1 >/dev/null | sed -n '$p') || true
      echo "restore-with-mariadb.sh: warning: view $(view_name "$v") not created: $err" >&2
    done
    break
  fi
  pending=$failed
done"""


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Line ranges with adjacent ones joined (one client run for consecutive blocks)."""
    out: list[tuple[int, int]] = []
    for first, last in spans:
        if out and out[-1][1] + 1 == first:
            out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def _object_lines(records: list[dict[str, Any]], spans: list[tuple[int, int]]) -> list[str]:
    """Shell that runs objects.sql (``part FIRST LAST`` prints its lines) as the Python
    restore creates the objects (:mod:`moodump.restore.objects`): the routines, then the
    views (one that cannot be created is skipped with a warning), then the triggers and
    events (a failure stops the script, exit status non-zero)."""
    kinds = [r["kind"] for r in records]
    routines = [
        sp for k, sp in zip(kinds, spans, strict=True) if k not in ("view", "trigger", "event")
    ]
    views = [(r["name"], sp) for r, sp in zip(records, spans, strict=True) if r["kind"] == "view"]
    rest = [sp for k, sp in zip(kinds, spans, strict=True) if k in ("trigger", "event")]
    lines = [f'part {first} {last} | run "$@" -D "$db"' for first, last in _merged(routines)]
    if views:
        cases = " ".join(
            f"{first},{last}) printf '%s' {_sh_quote(repr(name))} ;;"
            for name, (first, last) in views
        )
        lines.append(f'view_name() {{ case "$1" in {cases} esac; }}')
        pending = " ".join(f"{first},{last}" for _, (first, last) in views)
        lines += _VIEWS_SH.replace("@PENDING@", _sh_quote(pending)).split("\n")
    lines += [f'part {first} {last} | run "$@" -D "$db"' for first, last in _merged(rest)]
    return lines


_RETARGET_SH = r"""src=@SOURCE@
nl='
'
case "$db" in *"$nl"*) echo "restore-with-mariadb.sh: a target name with a line break cannot be written into objects.sql; choose another name" >&2; exit 2 ;; esac
sedq() { printf '%s' "$1" | LC_ALL=C sed 's/[\\&|]/\\&/g'; }
bt=$(sedq "\`$dbq\`")
dq=$(sedq "\"$(printf '%s' "$db" | LC_ALL=C sed 's/"/""/g')\"")
if [ "$db" = "$src" ] || printf '%s' "$db" | LC_ALL=C grep -Eqx '[0-9A-Za-z_$]*[A-Za-z_$][0-9A-Za-z_$]*'; then bare=$(sedq "$db"); else bare=$bt; fi
retarget() { LC_ALL=C sed -e "s|\`@TOKEN@\`|$bt|g" -e "s|\"@TOKEN@\"|$dq|g" -e "s|@TOKEN@|$bare|g"; }"""


def _retarget_lines(source: str, token: str) -> list[str]:
    """Shell that defines ``retarget``: objects.sql with ``token`` replaced by the target
    database's name, quoted as the Python restore quotes it (in backticks, in ANSI
    quotes, or bare when the name is a plain identifier or the source's own)."""
    text = _RETARGET_SH.replace("@SOURCE@", _sh_quote(source)).replace("@TOKEN@", token)
    return text.split("\n")


def write_stock_restore_script(root: Path, manifest: Manifest) -> None:
    """Write restore-with-mariadb.sh (and objects.sql) for the backup in ``root``."""
    from moodump.compression import sha256_file

    lines = [
        "#!/bin/sh",
        "# Restore this moodump backup with stock tools only (mariadb/mysql client, gzip, zstd).",
        "# usage: MYSQL_PWD=... sh restore-with-mariadb.sh TARGET_DB [mariadb client options]",
        "# The target database is created if missing; existing tables of the same names fail.",
        "set -eu",
        'cd "$(dirname "$0")"',
        "db=${1:?usage: sh restore-with-mariadb.sh TARGET_DB [mariadb options]}",
        "shift",
        "client=$(command -v mariadb || command -v mysql)",
        "dbq=$(printf '%s' \"$db\" | sed 's/`/``/g')",
        'run() { "$client" --binary-mode --local-infile=1 "$@"; }',
        'unpack() { case "$1" in *.gz) gzip -dc "$1" ;; *.zst) zstd -dcq "$1" ;; *) cat "$1" ;; esac; }',
        'load() { unpack "$1" | run "$@" -D "$db" -e "' + _SESSION.replace('"', '\\"') + ' $2"; }',
    ]
    # `load` passes extra client options before -D; keep them in "$@" order-safe form:
    lines[-1] = (
        'load() { f=$1; stmt=$2; shift 2; unpack "$f" | run "$@" -D "$db" -e "'
        + _SESSION.replace('"', '\\"')
        + ' $stmt"; }'
    )
    # The options (a COMMENT is any text) single-quoted: data to the shell, not code.
    opts = database_options(manifest.database_ddl)
    lines.append(
        'run "$@" -e "CREATE DATABASE IF NOT EXISTS \\`$dbq\\` "' + _sh_quote(opts)
    )
    # Sequences first: a table whose DEFAULT calls nextval() needs its sequence.
    for t in sorted(manifest.tables, key=lambda t: t.kind != "sequence"):
        if t.schema_file:
            lines.append(
                f'{{ echo "{_SESSION}"; cat {_sh_quote(t.schema_file)}; }} | run "$@" -D "$db"'
            )
    for t in manifest.tables:
        if t.kind == "sequence" and t.sequence:
            stmts = "; ".join(sequence_sql(t.name, t.sequence))
            lines.append(f'run "$@" -D "$db" -e {_sh_quote(stmts)}')
        for c in t.chunks:
            stmt = (
                f"LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE {_ident(t.name)} CHARACTER SET "
                "binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                + t.load_clause
            )
            lines.append(f'load {_sh_quote(c.file)} {_sh_quote(stmt)} "$@"')
    if manifest.objects.get("definitions"):
        records = json.loads((root / manifest.objects["definitions"]).read_text())
        token = retarget_token(records)
        data, spans = write_objects_sql(
            root, records, manifest.database, token, manifest.database_ddl
        )
        size, sha = sha256_file(root / "objects.sql")
        manifest.files.append(FileEntry("objects.sql", size, sha, "objects"))
        if token.encode() in data:
            lines += _retarget_lines(manifest.database, token)
            lines.append("part() { LC_ALL=C sed -n \"$1,$2p\" objects.sql | retarget; }")
        else:
            lines.append("part() { LC_ALL=C sed -n \"$1,$2p\" objects.sql; }")
        lines += _object_lines(records, spans)
    lines.append('echo "restored into $db"')
    path = root / "restore-with-mariadb.sh"
    # Executable for its owner and group (x where r is set), like the directories.
    write_text(path, "\n".join(lines) + "\n", mode=dir_mode())
