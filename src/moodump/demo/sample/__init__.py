"""A Moodle-shaped sample database: Moodle's real schema, filled deterministically.

- :func:`ddl` -- the CREATE TABLE statements Moodle 4.4 runs on MariaDB, for all 483
  tables of its XMLDB schema (shipped as ``moodle_schema.json``; see README.md here);
- :func:`create_moodle_database` -- create those tables in a database and fill them
  server-side at a scale factor (1 ~ 2 GB), the same bytes every time;
- :func:`load_schema` -- the schema as plain data.

Used by ``moodump demo``, the README demo, the benchmarks and the tests.
"""

from __future__ import annotations

from moodump.demo.sample.generate import create_moodle_database, plan, table_sizes
from moodump.demo.sample.schema import ddl, load_schema, tables

TABLE_COUNT = 483

__all__ = [
    "TABLE_COUNT",
    "create_moodle_database",
    "ddl",
    "load_schema",
    "plan",
    "table_sizes",
    "tables",
]
