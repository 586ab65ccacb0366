"""The PostgreSQL adapter: the only package that talks to ``psycopg`` (3) and runs the
PostgreSQL client tools (``pg_dump``, ``psql``).

- :mod:`.connection`: connecting (libpq reads ``PG*`` variables and ``.pgpass`` itself),
  quoting, driver errors mapped to moodump's exception tree;
- :mod:`.catalog`: tables, columns, keys and sequences of a database, read in a snapshot;
- :mod:`.tools`: finding client binaries whose major version is at least the server's,
  and running them with the password in a private ``PGPASSFILE`` (never on a command line).

(Nothing is imported here: importing psycopg takes about 0.2 s, which a MySQL-only run
should not pay. Import the modules.)
"""
