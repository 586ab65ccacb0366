"""One point in time across all tables and workers, while the site keeps writing.

Writers move amounts between rows of three tables inside transactions, so the total is
invariant. Each dump uses two workers and small chunks (many tasks, so both workers and
several key ranges interleave with the writes); the restored total must equal the
invariant every time.
"""

from __future__ import annotations

import threading
import time

import pytest

from helpers import run_sql
from moodump.db import connect
from moodump.db.connection import quote_ident
from moodump.dump import DumpOptions, ProgressEvent, dump
from moodump.errors import ServerError, SnapshotError
from moodump.manifest import read_done_manifest
from moodump.restore import RestoreOptions, restore

TABLES = ("acct_a", "acct_b", "acct_c")
ROWS = 4000
TOTAL = len(TABLES) * ROWS * 1000


def _setup(settings, db):
    sql = []
    for t in TABLES:
        sql.append(
            f"CREATE TABLE {t} (id INT PRIMARY KEY, amount BIGINT NOT NULL, pad CHAR(200) NOT NULL DEFAULT '')"
        )
        sql.append(f"INSERT INTO {t} SELECT seq, 1000, REPEAT('p', 200) FROM seq_1_to_{ROWS}")
    sql.append("ANALYZE TABLE " + ", ".join(TABLES))  # fresh statistics -> planned chunks
    run_sql(settings, ";\n".join(sql) + ";", db)


def _writer(settings, db, stop: threading.Event, counter: list[int], seed: int) -> None:
    import random

    rnd = random.Random(seed)
    with connect(settings.with_database(db)) as c:
        c.execute("SET autocommit = 0")
        while not stop.is_set():
            a, b = rnd.sample(TABLES, 2)
            ia, ib = rnd.randint(1, ROWS), rnd.randint(1, ROWS)
            amt = rnd.randint(1, 50)
            # Lock rows in one global order so the two writers cannot deadlock.
            steps = sorted([(a, ia, -amt), (b, ib, amt)])
            try:
                for table, row, delta in steps:
                    c.execute(f"UPDATE {table} SET amount = amount + ({delta}) WHERE id = {row}")
                c.execute("COMMIT")
                counter[0] += 1
            except ServerError:
                c.execute("ROLLBACK")


def _total(settings, db) -> int:
    with connect(settings) as c:
        return sum(
            int(c.scalar(f"SELECT SUM(amount) FROM {quote_ident(db)}.{t}") or 0) for t in TABLES
        )


def test_invariant_holds_in_every_parallel_dump(root_settings, fresh_db, tmp_path):
    _setup(root_settings, fresh_db)
    stop = threading.Event()
    counters = [[0], [0]]
    writers = [
        threading.Thread(target=_writer, args=(root_settings, fresh_db, stop, counters[i], i))
        for i in range(2)
    ]
    for w in writers:
        w.start()
    runs = 20
    try:
        while counters[0][0] + counters[1][0] < 50:
            time.sleep(0.01)
        for i in range(runs):
            out = tmp_path / f"run{i}"
            before = counters[0][0] + counters[1][0]
            m = dump(
                root_settings, fresh_db, out, DumpOptions(threads=2, chunk_bytes=64 * 1024)
            ).manifest
            assert m.snapshot["method"] == "lock-tables" and m.snapshot["workers"] == 2
            assert len(m.table("acct_a").chunks) > 1
            target = f"{fresh_db}_r{i}"
            restore(out, root_settings, target, RestoreOptions(threads=2))
            assert _total(root_settings, target) == TOTAL, f"run {i}: total differs"
            with connect(root_settings) as c:
                c.execute(f"DROP DATABASE {quote_ident(target)}")
            # the writers really were writing during this dump
            assert counters[0][0] + counters[1][0] > before
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert _total(root_settings, fresh_db) == TOTAL


@pytest.mark.parametrize(
    "ddl", ["ADD COLUMN extra INT", "FORCE", "DROP COLUMN pad", "RENAME TO {q}.small_renamed"]
)
def test_ddl_during_dump_fails_the_dump(root_settings, fresh_db, tmp_path, ddl):
    """DDL on a table not read yet must fail the dump, never produce a mixed one.

    A table renamed (or dropped) before it was read failed with "doesn't exist" (exit 5,
    "check the table name"), not as the schema change it is, which a dump during a
    Moodle upgrade retries (MOODUMP_UPGRADE_WAIT)."""
    q = quote_ident(fresh_db)
    run_sql(
        root_settings,
        "CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(200));"
        "INSERT INTO big SELECT seq, 'x' FROM seq_1_to_20000;"
        "CREATE TABLE small (id INT PRIMARY KEY, pad CHAR(10));"
        "INSERT INTO small VALUES (1, 'a'), (2, 'b');",
        fresh_db,
    )
    fired = threading.Event()

    def on_progress(ev: ProgressEvent) -> None:
        # Runs in the worker while it streams `big` (the largest table goes first);
        # `small` has not been touched by the snapshot yet, so nothing blocks this ALTER.
        if ev.phase == "data" and not fired.is_set():
            fired.set()
            with connect(root_settings) as c:
                c.execute("SET SESSION lock_wait_timeout = 5")
                c.execute(f"ALTER TABLE {q}.small {ddl.format(q=q)}")

    out = tmp_path / "b"
    with pytest.raises(SnapshotError) as err:
        dump(root_settings, fresh_db, out, DumpOptions(threads=1), progress=on_progress)
    assert fired.is_set()
    assert type(err.value).__name__ == "SchemaChanged"
    assert "small" in str(err.value) or "definition" in str(err.value).lower()
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_no_ddl_means_the_same_dump_succeeds(root_settings, fresh_db, tmp_path):
    run_sql(
        root_settings, "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);", fresh_db
    )
    m = dump(root_settings, fresh_db, tmp_path / "b", DumpOptions(threads=1)).manifest
    assert m.status == "DONE"
    assert read_done_manifest(tmp_path / "b").table("t").rows == 1
