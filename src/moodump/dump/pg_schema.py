"""The schema of a PostgreSQL dump: ``pg_dump --schema-only`` in the dump's exported
snapshot, one run per section, into ``schema/pre-data.sql`` (what the data loads into)
and ``schema/post-data.sql`` (indexes, constraints, triggers, rules, materialized view
data), kept as pg_dump wrote them, in the database's own encoding.
"""

from __future__ import annotations

from pathlib import Path

from moodump.dump.model import DumpOptions
from moodump.dump.pg_plan import is_name, named_parents, pattern_hits
from moodump.fsmodes import write_bytes
from moodump.pg.catalog import PgTable
from moodump.pg.connection import quote_ident, sql_bytes
from moodump.pg.tools import dbname_arg, run_tool

PRE_DATA = "schema/pre-data.sql"
POST_DATA = "schema/post-data.sql"


def write_section(
    bindir: Path, env: dict[str, str], database: str, section: str, path: Path, snap: str,
    selected: list[PgTable], opts: DumpOptions, every: list[PgTable] | None = None,
) -> None:  # fmt: skip
    """``pg_dump --schema-only --section=SECTION`` in the snapshot ``snap`` into ``path``
    (with ``--table``: of the ``selected`` tables only, and the partitioned tables the
    patterns name; ``every``: all the tables, which ``--exclude`` patterns are matched
    against as the dump's own selection matches them)."""
    argv: list[str | bytes] = [
        str(bindir / "pg_dump"), "--schema-only", f"--section={section}", f"--snapshot={snap}",
        "--no-password", "--quote-all-identifiers", "-d", dbname_arg(database),
    ]  # fmt: skip
    # names go in the session's client_encoding (the database's): pg_dump matches the
    # patterns' bytes as they are, and its script is in that encoding too
    encoding = env.get("PGCLIENTENCODING", "")
    every = every if every is not None else selected
    if opts.tables:
        argv += [sql_bytes(f"--table={_pattern(t)}", encoding) for t in selected]
        parents = {a for pat in opts.tables for a in named_parents(every, pat)}
        argv += [sql_bytes(f"--table={_pattern(PgTable(*a))}", encoding) for a in sorted(parents)]
    for pat in opts.exclude:
        # the tables the dump leaves out (partitions of a partitioned table named too:
        # pg_dump would leave out its definition, not theirs, whose ATTACH then fails),
        # each by its exact name; the pattern itself too (views, sequences…) unless it
        # is a table's name as it is (as a pg_dump pattern, "x[1]" would match "x1")
        hits = [_pattern(t) for t in pattern_hits(every, pat)]
        hits += [_pattern(PgTable(*a)) for a in sorted(named_parents(every, pat))]
        raw = [] if is_name(every, pat) else [pat]
        argv += [sql_bytes(f"--exclude-table={x}", encoding) for x in raw + hits]
    text = run_tool(argv, env, f"pg_dump --section={section}").decode("utf-8", "surrogateescape")
    if opts.tables and section == "pre-data":
        # pg_dump --table writes no schemas; the tables' own are made if missing
        schemas = "".join(
            f"CREATE SCHEMA IF NOT EXISTS {quote_ident(s)};\n"
            for s in sorted({t.schema for t in selected})
        )
        text = sql_bytes(schemas, encoding).decode("utf-8", "surrogateescape") + text
    # the script's own bytes (in the database's encoding, which need not be UTF-8)
    write_bytes(path, text.encode("utf-8", "surrogateescape"))


def _pattern(t: PgTable) -> str:
    """A pg_dump ``--table`` pattern naming exactly one table (quoted, so no wildcards)."""
    return f'"{t.schema.replace(chr(34), chr(34) * 2)}"."{t.name.replace(chr(34), chr(34) * 2)}"'
